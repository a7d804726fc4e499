/**
 * What the TUN tests (test/link/tun*.test.ts) share about their fixture, test/link/fixtures/tun-host.js:
 * a TunLink `synack0` in a namespace, the kernel at 10.9.0.1 and fd09::1, synack at 10.9.0.2 and
 * fd09::2; and what they share with the TAP offload test (its host prints the same stats). Importing
 * this does nothing (node --test runs every .js under test/).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SINK_PY } from '../../src/bench/kernel-peers.js';
import { lastJson } from './netns.js';
import type { Netns, NsProcess } from './netns.js';
import { repoRoot } from './repo.js';

/** The compiled fixture (the TUN tests run from dist/ or a scratch outDir's copy of the repo root). */
export const TUN_HOST = join(repoRoot(), 'dist', 'test', 'link', 'fixtures', 'tun-host.js');

/** Stops a `--host` fixture (SIGTERM), checks it exited cleanly, and returns the stats it printed. */
export async function stopHost<T>(host: NsProcess): Promise<T> {
  const exit = await host.stop(5000);
  assert.deepEqual(exit, { code: 0, signal: null }, `host exit; stderr: ${host.stderr}`);
  const line = host.lines.find((l) => l.startsWith('stats '));
  assert.ok(line !== undefined, 'the host printed its stats');
  return JSON.parse(line.slice('stats '.length)) as T;
}

/**
 * synack → kernel: SINK_PY (with `sinkArgs`) listens on every address of `ns`, port 9 (the device
 * and 10.9.0.1 come with the host), then the fixture in send mode (`hostArgs` after `--host`) sends
 * it `size` bytes; both must finish, the sender within `timeoutMs`. Returns the sender's `sent`
 * JSON and the sink's.
 */
export async function sendToKernel<S, K>(
  ns: Netns, hostArgs: string[], size: number, timeoutMs: number, sinkArgs: string[] = [],
): Promise<{ sent: S; sink: K }> {
  const sink = ns.start('python3', ['-c', SINK_PY, '0.0.0.0', '9', ...sinkArgs]);
  await sink.waitForLine(/^listening$/, 10_000);
  const sender = ns.start(process.execPath, [TUN_HOST, '--host', ...hostArgs, '--mode', 'send', '--to', '10.9.0.1', '--port', '9', '--bytes', String(size)]);
  const exit = await sender.waitExit(timeoutMs);
  assert.deepEqual(exit, { code: 0, signal: null }, `sender: ${sender.lines.join(' ')} ${sender.stderr}`);
  const line = sender.lines.find((l) => l.startsWith('sent ') || l.startsWith('error '));
  assert.ok(line !== undefined && line.startsWith('sent '), `sender: ${sender.lines.join(' ')}`);
  await sink.waitForLine(/^\{/, 10_000);
  return { sent: JSON.parse(line.slice('sent '.length)) as S, sink: lastJson<K>(sink.lines.join('\n')) };
}

/** The offload counters a TunLink or TapLink host prints in its stats. */
export interface OffloadLinkStats {
  packetsIn: number;
  bytesIn: number;
  gsoPacketsIn: number;
  checksumsCompleted: number;
  gsoPacketsOut: number;
  gsoSegmentsOut: number;
}

/**
 * After an echo through a link with receive offload and gso: the kernel sent super-packets (or, on a
 * TAP, super-frames), each with a partial checksum the link completed (had one been wrong, the stack
 * would have dropped it: tcp-bad-checksum), the reads longer on average than the `largest` bytes the
 * MTU allows one packet (frame); and the echo went back as super-packets too.
 */
export function assertGsoBothWays(link: OffloadLinkStats, largest: number): void {
  assert.ok(link.gsoPacketsIn > 0, JSON.stringify(link));
  assert.ok(link.checksumsCompleted >= link.gsoPacketsIn, JSON.stringify(link));
  assert.ok(link.bytesIn / link.packetsIn > largest, `mean read ${(link.bytesIn / link.packetsIn).toFixed(0)} bytes`);
  assert.ok(link.gsoPacketsOut > 0 && link.gsoSegmentsOut > link.gsoPacketsOut, JSON.stringify(link));
}
