/** Two synack stacks joined by a MemoryLink, in virtual or real time, for the socket-layer tests. */
import type { EventEmitter } from 'node:events';
import { Stack } from '../../src/index.node.js';
import { MemoryLink } from '../../src/link/memory.js';
import type { MemoryLinkOptions } from '../../src/link/memory.js';
import { RealClock, VirtualClock } from '../../src/link/clock.js';
import type { Clock } from '../../src/link/clock.js';
import type { StackOptions } from '../../src/stack/options.js';

export type Mode = 'virtual' | 'real';
export const MODES: readonly Mode[] = ['virtual', 'real'];

export interface Family {
  name: 'IPv4' | 'IPv6';
  a: string;
  b: string;
}
export const FAMILIES: readonly Family[] = [
  { name: 'IPv4', a: '10.0.0.1', b: '10.0.0.2' },
  { name: 'IPv6', a: 'fd00::1', b: 'fd00::2' },
];

export interface Net2 {
  /** The connecting side, 10.0.0.1 / fd00::1. */
  a: Stack;
  /** The listening side, 10.0.0.2 / fd00::2. */
  b: Stack;
  clock: Clock;
  virtual: VirtualClock | undefined;
  /** Wait for `p`, driving virtual time when there is any (at most `maxMs` of it, or of real time). */
  run<T>(p: Promise<T>, maxMs?: number): Promise<T>;
  /** Let `ms` of time pass (virtual: instantly). */
  sleep(ms: number): Promise<void>;
}

export function twoStacks(
  mode: Mode,
  opts: { link?: MemoryLinkOptions; stack?: Partial<StackOptions> } = {},
): Net2 {
  const virtual = mode === 'virtual' ? new VirtualClock() : undefined;
  const clock: Clock = virtual ?? new RealClock();
  const [la, lb] = MemoryLink.pair({ delayMs: mode === 'virtual' ? 5 : 0, ...opts.link, clock });
  // In real time a short TIME-WAIT (2×MSL, RFC 9293 §3.4.2) keeps host timers from holding the test
  // process open for a minute after the last test.
  const msl = mode === 'real' ? { mslMs: 100 } : {};
  const a = new Stack({
    link: la,
    addresses: ['10.0.0.1/24', 'fd00::1/64'],
    clock,
    name: 'a',
    seed: 1,
    ...msl,
    ...opts.stack,
  });
  const b = new Stack({
    link: lb,
    addresses: ['10.0.0.2/24', 'fd00::2/64'],
    clock,
    name: 'b',
    seed: 2,
    ...msl,
    ...opts.stack,
  });

  async function run<T>(p: Promise<T>, maxMs = 60_000): Promise<T> {
    let settled = false;
    let value: T | undefined;
    let error: unknown;
    let failed = false;
    p.then(
      (v) => {
        settled = true;
        value = v;
      },
      (e: unknown) => {
        settled = true;
        failed = true;
        error = e;
      },
    );
    if (virtual) {
      const limit = virtual.now() + maxMs;
      // Small steps: the promise is checked between them, so time stops soon after it settles.
      while (!settled && virtual.now() < limit) await virtual.advance(10);
      // Promise reactions queued in the last host turn.
      for (let i = 0; i < 5 && !settled; i++) await new Promise((r) => setImmediate(r));
    } else {
      const deadline = Date.now() + maxMs;
      while (!settled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    }
    if (!settled) throw new Error(`timed out after ${maxMs} ms (${mode} time)`);
    if (failed) throw error;
    return value as T;
  }

  async function sleep(ms: number): Promise<void> {
    if (virtual) await virtual.advance(ms);
    else await new Promise((r) => setTimeout(r, ms));
  }

  return { a, b, clock, virtual, run, sleep };
}

/** Deterministic bytes (xorshift), so a corrupted or reordered byte shows up in the comparison. */
export function pattern(n: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Resolves with the first emission of `event` (its arguments). */
export function once<T extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
): Promise<T> {
  return new Promise((resolve) => {
    emitter.once(event, (...args: unknown[]) => resolve(args as T));
  });
}

/** Everything a readable emits until 'end', concatenated. */
export function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

/** Read a WHATWG readable to its end, as one array. */
export async function readAll(r: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = r.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
