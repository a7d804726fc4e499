/**
 * What the gateway tests share: a bounded wait, and what the relay would see of an UpstreamStream.
 * Not a test: node --test runs every .js under test/, and importing this does nothing.
 */
import assert from 'node:assert/strict';
import type { UpstreamError, UpstreamStream } from '../../src/gateway/upstream.js';

/** `p`, or a rejection naming `what` after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Everything the stream delivers (copied), and how it ended; onclose must come once. */
export function record(s: UpstreamStream): { chunks: Buffer[]; text(): string; ended: Promise<void>; closed: Promise<UpstreamError | null> } {
  const chunks: Buffer[] = [];
  let endResolve!: () => void;
  const ended = new Promise<void>((r) => (endResolve = r));
  const closed = new Promise<UpstreamError | null>((resolve) => {
    let calls = 0;
    s.onclose = (e) => {
      calls++;
      assert.equal(calls, 1, 'onclose called more than once');
      resolve(e);
    };
  });
  s.ondata = (d) => chunks.push(Buffer.from(d));
  s.onend = () => endResolve();
  return { chunks, text: () => Buffer.concat(chunks).toString(), ended, closed };
}
