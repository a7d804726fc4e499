/**
 * `synack bench` — throughput through a TUN device to the Linux kernel, beside kernel → kernel over
 * a veth pair between two namespaces, same byte count, same run.
 *
 * Each measurement gets a fresh network namespace (made and removed here; removed on error and on
 * SIGINT/SIGTERM too, see `guardSignals`) holding a TUN device `synack0`: the kernel at 10.9.0.1/24,
 * a synack stack at 10.9.0.2/24 in a child process (src/bench/tun-worker.ts; a TUN device belongs to
 * the namespace of the process that creates it). The kernel side is python3 with plain sockets
 * (src/bench/kernel-peers.ts), as in test/link/tun.test.ts.
 *
 *   kernel → synack: python3 sends N bytes to synack's discard server; the rate is python's, from
 *     connect to synack's FIN, which synack sends only when it has read every byte.
 *   synack → kernel: synack sends N bytes to python's sink; the rate is synack's, from connect to the
 *     kernel's FIN after every byte.
 *   reference: the same python sender and sink in two namespaces joined by a veth pair (which has
 *     GRO/TSO: the kernel's best path at that MTU), same N, same MTU.
 *
 * Three TUN configurations: MTU 1500 plain (one system call per 1500-byte packet); MTU 1500 with
 * offload (`TunLink` `offload: true, gso: true`: IFF_VNET_HDR + TUN_F_TSO4/6, so the kernel hands
 * over 64 KiB GSO super-packets, and the segments synack sends in one turn are joined into
 * super-packets for the kernel); and MTU 65535 plain (both sides use 64 KiB segments, no offload).
 * `detail` has the system calls: packets read or written per MiB moved, and polls.
 *
 * Quick (--quick): 64 MiB per transfer; full: 256 MiB.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { guardSignals, have, isRoot, withNetns } from './netns.js';
import type { Netns } from './netns.js';
import type { TunStats } from '../link/tun.js';
import { SEND_PY, SINK_PY } from './kernel-peers.js';
import type { BenchContext, BenchResult, Benchmark } from './types.js';

const WORKER = fileURLToPath(new URL('./tun-worker.js', import.meta.url));
const MiB = 1 << 20;

export interface TunConfig {
  mtu: number;
  /** TunLink `offload` (receive: GSO super-packets in) and `gso` (send: segments joined into super-packets). */
  offload: boolean;
}

/** The configurations measured, in order. */
export const TUN_CONFIGS: readonly TunConfig[] = [
  { mtu: 1500, offload: false },
  { mtu: 1500, offload: true },
  { mtu: 65535, offload: false },
];

export function tunBytes(quick: boolean): number {
  return (quick ? 64 : 256) * MiB;
}

/** What tun-worker.ts reports of its link: the TunLink's counters and what offload it was granted. */
type LinkStats = TunStats & { offload: boolean; gso: boolean; offloadRefused: string | null };

export interface TunRun {
  mbps: number;
  bytes: number;
  seconds: number;
  link: LinkStats;
}

/** Bounded wait for a transfer of `bytes`: at least 30 s, or 50 Mbit/s. */
function transferTimeoutMs(bytes: number): number {
  return Math.max(30_000, (bytes * 8) / 50e6 * 1000);
}

function workerArgs(mode: 'sink' | 'send', cfg: TunConfig, bytes: number): string[] {
  return [WORKER, '--bench-worker', '--mode', mode, '--mtu', String(cfg.mtu), '--bytes', String(bytes),
    '--limit-s', String(Math.ceil(transferTimeoutMs(bytes) / 1000) + 10), ...(cfg.offload ? ['--offload', '--gso'] : [])];
}

function parseJson<T>(line: string, prefix: string): T {
  return JSON.parse(line.slice(prefix.length)) as T;
}

/** The kernel (python3) sends `bytes` to synack's discard server over the TUN device. */
export async function kernelToSynack(cfg: TunConfig, bytes: number): Promise<TunRun> {
  return withNetns(async (ns?: Netns) => {
    if (ns === undefined) throw new Error('a namespace');
    const worker = ns.start(process.execPath, workerArgs('sink', cfg, bytes));
    const ready = await worker.waitForLine(/^(ready|error) /, 15_000);
    if (ready.startsWith('error ')) throw new Error(`synack bench tun: ${parseJson<{ message: string }>(ready, 'error ').message}`);
    const r = await ns.run('python3', ['-c', SEND_PY, '10.9.0.2', '9', String(bytes)], { timeoutMs: transferTimeoutMs(bytes) });
    if (r.status !== 0) throw new Error(`synack bench tun: the kernel sender ${r.timedOut ? 'timed out' : `failed: ${lastLine(r.stderr)}`}`);
    const sent = JSON.parse(lastLine(r.stdout)) as { bytes: number; seconds: number; mbps: number };
    const done = await worker.waitForLine(/^(done|error) /, 10_000);
    if (done.startsWith('error ')) throw new Error(`synack bench tun: synack's receiver: ${parseJson<{ message: string }>(done, 'error ').message}`);
    const got = parseJson<{ bytes: number; link: LinkStats }>(done, 'done ');
    if (got.bytes !== bytes) throw new Error(`synack bench tun: synack received ${got.bytes} of ${bytes} bytes`);
    await worker.waitExit(5000);
    return { mbps: sent.mbps, bytes, seconds: sent.seconds, link: got.link };
  });
}

/** synack sends `bytes` to the kernel's sink (python3) over the TUN device. */
export async function synackToKernel(cfg: TunConfig, bytes: number): Promise<TunRun> {
  return withNetns(async (ns?: Netns) => {
    if (ns === undefined) throw new Error('a namespace');
    // The sink listens on every address: 10.9.0.1 comes with the device the worker makes.
    const sink = ns.start('python3', ['-c', SINK_PY, '0.0.0.0', '9']);
    await sink.waitForLine(/^listening$/, 10_000);
    const worker = ns.start(process.execPath, workerArgs('send', cfg, bytes));
    const exit = await worker.waitExit(transferTimeoutMs(bytes) + 15_000);
    const line = worker.lines.find((l) => l.startsWith('sent ') || l.startsWith('error '));
    if (exit === undefined || line === undefined) throw new Error(`synack bench tun: the synack sender ${exit === undefined ? 'timed out' : `ended without a result: ${lastLine(worker.stderr)}`}`);
    if (line.startsWith('error ')) throw new Error(`synack bench tun: the synack sender: ${parseJson<{ message: string }>(line, 'error ').message}`);
    const sent = parseJson<{ bytes: number; seconds: number; mbps: number; link: LinkStats }>(line, 'sent ');
    const got = JSON.parse(await sink.waitForLine(/^\{/, 10_000)) as { received: number };
    if (got.received !== bytes) throw new Error(`synack bench tun: the kernel received ${got.received} of ${bytes} bytes`);
    return { mbps: sent.mbps, bytes, seconds: sent.seconds, link: sent.link };
  });
}

/** Kernel → kernel over a veth pair between two namespaces, MTU `mtu`: the reference. */
export async function kernelOverVeth(mtu: number, bytes: number): Promise<{ mbps: number; seconds: number }> {
  return withNetns(async (a?: Netns, b?: Netns) => {
    if (a === undefined || b === undefined) throw new Error('two namespaces');
    await a.check('ip', ['link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', b.name]);
    await a.check('ip', ['addr', 'add', '10.10.0.1/24', 'dev', 'veth-a']);
    await a.check('ip', ['link', 'set', 'veth-a', 'mtu', String(mtu), 'up']);
    await b.check('ip', ['addr', 'add', '10.10.0.2/24', 'dev', 'veth-b']);
    await b.check('ip', ['link', 'set', 'veth-b', 'mtu', String(mtu), 'up']);
    const sink = b.start('python3', ['-c', SINK_PY, '10.10.0.2', '9']);
    await sink.waitForLine(/^listening$/, 10_000);
    const r = await a.run('python3', ['-c', SEND_PY, '10.10.0.2', '9', String(bytes)], { timeoutMs: transferTimeoutMs(bytes) });
    if (r.status !== 0) throw new Error(`synack bench tun: the veth sender ${r.timedOut ? 'timed out' : `failed: ${lastLine(r.stderr)}`}`);
    const got = JSON.parse(await sink.waitForLine(/^\{/, 10_000)) as { received: number };
    if (got.received !== bytes) throw new Error(`synack bench tun: over veth the kernel received ${got.received} of ${bytes} bytes`);
    const sent = JSON.parse(lastLine(r.stdout)) as { mbps: number; seconds: number };
    return { mbps: sent.mbps, seconds: sent.seconds };
  }, 2);
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

export function tunUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (TUN devices, network namespaces)';
  if (!isRoot()) return 'needs root (a network namespace and a TUN device)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!have('ip', ['-V'])) return "needs iproute2's ip";
  if (!have('python3', ['--version'])) return 'needs python3 (the kernel-side sender and sink)';
  if (!existsSync(WORKER)) return `needs the compiled worker ${WORKER}`;
  return undefined;
}

const configName = (c: TunConfig): string => `mtu=${c.mtu}${c.offload ? ' offload' : ''}`;

export const tunBenchmark: Benchmark = {
  name: 'tun',
  describe: 'throughput through a TUN device to the Linux kernel, both directions, MTU 1500 (plain, and with offload: GSO in and out) and 65535 — reference: kernel → kernel over veth',
  unavailable: tunUnavailable,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const bytes = tunBytes(ctx.quick);
    const mtus = [...new Set(TUN_CONFIGS.map((c) => c.mtu))];
    const steps = mtus.length + TUN_CONFIGS.length * 2;
    let step = 0;
    const next = (label: string): void => ctx.progress(step++ / steps, `tun: ${label}`);
    return guardSignals(async () => {
      const veth = new Map<number, { mbps: number; seconds: number }>();
      for (const mtu of mtus) {
        next(`kernel → kernel over veth, mtu ${mtu}`);
        veth.set(mtu, await kernelOverVeth(mtu, bytes));
      }
      const results: BenchResult[] = [];
      for (const cfg of TUN_CONFIGS) {
        const ref = veth.get(cfg.mtu)!;
        const reference = { name: `kernel → kernel over veth mtu=${cfg.mtu}`, value: round(ref.mbps / 1000) };
        for (const dir of ['kernel→synack', 'synack→kernel'] as const) {
          next(`${dir} ${configName(cfg)}`);
          const r = dir === 'kernel→synack' ? await kernelToSynack(cfg, bytes) : await synackToKernel(cfg, bytes);
          const mib = bytes / MiB;
          const gbps = r.mbps / 1000;
          ctx.log(`tun ${dir} ${configName(cfg)}: ${gbps.toFixed(2)} Gbit/s (veth ${(ref.mbps / 1000).toFixed(2)})`);
          results.push({
            name: `tun ${dir} ${configName(cfg)}`,
            value: round(gbps),
            unit: 'Gbit/s',
            reference,
            ratio: round(r.mbps / ref.mbps),
            detail: {
              bytes,
              seconds: round(r.seconds),
              mtu: cfg.mtu,
              offloadAsked: cfg.offload,
              offload: r.link.offload,
              gso: r.link.gso,
              gsoPacketsOut: r.link.gsoPacketsOut,
              gsoSegmentsOut: r.link.gsoSegmentsOut,
              ...(r.link.offloadRefused !== null ? { offloadRefused: r.link.offloadRefused } : {}),
              // System calls on synack's side: one read per packet in, one write per packet out.
              readsPerMiB: round(r.link.packetsIn / mib),
              writesPerMiB: round(r.link.packetsOut / mib),
              packetsIn: r.link.packetsIn,
              packetsOut: r.link.packetsOut,
              gsoPacketsIn: r.link.gsoPacketsIn,
              polls: r.link.polls,
              drops: r.link.drops,
              referenceSeconds: round(ref.seconds),
            },
          });
        }
      }
      ctx.progress(1);
      return results;
    });
  },
};

/** 4 significant digits. */
function round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x))));
  return Number(x.toFixed(Math.min(digits, 6)));
}
