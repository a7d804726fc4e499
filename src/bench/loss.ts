/**
 * `synack bench` — goodput at 1% loss, 50 ms RTT, 100 Mbit/s bottleneck, beside Linux CUBIC on the
 * same path in the same run.
 *
 * The path, in both directions (as `MemoryLink` applies its options): 25 ms one-way delay, a
 * 100 Mbit/s bottleneck with a drop-tail queue of one bandwidth-delay product (100 Mbit/s × 50 ms =
 * 625 000 bytes ≈ 417 packets of 1500 bytes), 1% random loss, MTU 1500; seed 1.
 *
 * synack: two stacks with CUBIC (RFC 9438) on a `MemoryLink` with those impairments, one sending as
 * fast as its window allows for D seconds, the other reading. Measured twice:
 *   - in real time (RealClock), the headline figure: the same wall-clock conditions the kernel gets
 *     (timer granularity, the event loop's jitter), so the two compare directly;
 *   - in virtual time (VirtualClock), in `detail`: deterministic for the seed and not bound by the CPU,
 *     so it shows what the algorithm does on the model with no host noise at all.
 * Kernel: two network namespaces joined by two TUN devices and a bridge process
 * (src/bench/loss-bridge.ts) that forwards between them through the same `ImpairedWire`s, seeds
 * included; python3 sends with TCP_CONGESTION=cubic set on its socket (this kernel defaults to BBR,
 * and a namespace cannot change that default) and python3 receives. The synack real-time run and the
 * kernel run go at the same time (neither is CPU-bound at 100 Mbit/s; it halves the wall time).
 *
 * Goodput = application bytes read in the D seconds after the connection is established × 8 / D.
 * `detail` also carries the Mathis et al. bound for loss-limited TCP (Mathis, Semke, Mahdavi, Ott,
 * CCR 1997): MSS/RTT × sqrt(3/2)/sqrt(p) — what a Reno sender gets; CUBIC's TCP-friendly region
 * (RFC 9438 §4.3) keeps it at least there. One random-loss run is noisy (at 1% there are only a few
 * hundred loss events in 30 s): the figures are for one seed, not a mean.
 *
 * Quick (--quick): D = 8 s; full: D = 30 s. Every wait is bounded.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { RealClock, VirtualClock } from '../link/clock.js';
import type { Clock } from '../link/clock.js';
import { MemoryLink } from '../link/memory.js';
import type { LinkDropReason } from '../link/impair.js';
import { Stack } from '../stack/stack.js';
import type { TcpConnection } from '../tcp/user.js';
import { guardSignals, have, isRoot, withNetns } from './netns.js';
import type { Netns } from './netns.js';
import { TIMED_SEND_PY, TIMED_SINK_PY } from './kernel-peers.js';
import { SOURCE, sink } from './common.js';
import type { BenchContext, BenchResult, Benchmark } from './types.js';

export const LOSS_PATH = {
  /** One-way delay, ms (RTT 50 ms). */
  delayMs: 25,
  bandwidthBps: 100e6,
  lossRate: 0.01,
  /** One bandwidth-delay product of 1500-byte packets: 100e6 × 0.050 / 8 / 1500 ≈ 417. */
  queuePackets: Math.round((100e6 * 0.05) / 8 / 1500),
  mtu: 1500,
  seed: 1,
} as const;

const RTT_MS = 2 * LOSS_PATH.delayMs;
const BRIDGE = fileURLToPath(new URL('./loss-bridge.js', import.meta.url));

/** Mathis et al.: MSS × 8 / RTT × sqrt(3/2) / sqrt(p), in Mbit/s. */
export function mathisMbps(mssBytes: number, rttMs: number, p: number): number {
  return ((mssBytes * 8) / (rttMs / 1000)) * Math.sqrt(3 / 2) / Math.sqrt(p) / 1e6;
}

export function lossSeconds(quick: boolean): number {
  return quick ? 8 : 30;
}

interface Goodput {
  mbps: number;
  bytes: number;
  seconds: number;
  retransmits: number;
  sndMss: number;
  lossDrops: number;
  queueDrops: number;
  wallSeconds: number;
}

/**
 * Two synack stacks (CUBIC) on a MemoryLink with the loss path's impairments: sends for `seconds`
 * from the moment the connection is established, counts what the receiver read by then.
 * Virtual time runs as fast as the CPU allows (bounded by `maxWallMs`); real time takes `seconds`.
 */
export async function synackLossGoodput(virtual: boolean, seconds: number, maxWallMs: number): Promise<Goodput> {
  const wall0 = performance.now();
  const clock: Clock = virtual ? new VirtualClock() : new RealClock();
  const [ea, eb] = MemoryLink.pair({ ...LOSS_PATH, clock });
  const drops: Record<LinkDropReason, number> = { loss: 0, mtu: 0, queue: 0 };
  ea.onDrop((_, reason) => drops[reason]++);
  const common = { clock, congestionControl: 'cubic' as const, seed: LOSS_PATH.seed };
  const sender = new Stack({ ...common, link: ea, addresses: ['10.0.0.1/24'], name: 'sender' });
  const receiver = new Stack({ ...common, link: eb, addresses: ['10.0.0.2/24'], name: 'receiver' });

  let bytesRead = 0;
  let startAt = NaN;
  let bytesAtEnd = NaN;
  let failure: Error | null = null;
  const listener = receiver.tcpListen({ port: 5001 });
  listener.onConnection = (c: TcpConnection) =>
    sink(c, (chunk) => void (bytesRead += chunk.length), (err) => void (failure ??= err));

  const conn = sender.tcpConnect({ host: '10.0.0.2', port: 5001 });
  let written = 0;
  let stop = false;
  const fill = (): void => {
    if (conn.state === 'SYN-SENT' || stop) return;
    for (;;) {
      const off = written % SOURCE.length;
      const n = conn.write(SOURCE.subarray(off));
      written += n;
      if (n < SOURCE.length - off) return; // the send buffer is full: onWritable follows
    }
  };
  conn.events = {
    onEstablished: () => {
      startAt = clock.now();
      fill();
    },
    onWritable: fill,
    onClosed: (err) => {
      if (err) failure ??= err;
    },
  };
  const ended = (): boolean => !Number.isNaN(startAt) && clock.now() - startAt >= seconds * 1000;

  try {
    if (clock instanceof VirtualClock) {
      // 10 ms steps: the measurement ends within 10 ms of simulated time of D.
      while (!ended() && failure === null && clock.now() < seconds * 1000 + 10_000) {
        if (performance.now() - wall0 > maxWallMs) throw new Error(`synack bench loss: the virtual-time run took over ${maxWallMs / 1000} s`);
        clock.advanceSync(10);
      }
    } else {
      const deadline = performance.now() + seconds * 1000 + 10_000;
      while (!ended() && failure === null && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, startAt + seconds * 1000 - clock.now()))));
      }
    }
    if (failure !== null) throw failure;
    if (!ended()) throw new Error('synack bench loss: the synack connection was not established in time');
    bytesAtEnd = bytesRead;
    const elapsed = (clock.now() - startAt) / 1000;
    const info = conn.info();
    return {
      mbps: (bytesAtEnd * 8) / elapsed / 1e6,
      bytes: bytesAtEnd,
      seconds: elapsed,
      retransmits: info.totalRetransmits,
      sndMss: info.sndMss,
      lossDrops: drops.loss,
      queueDrops: drops.queue,
      wallSeconds: (performance.now() - wall0) / 1000,
    };
  } finally {
    stop = true;
    conn.abort();
    listener.close();
    // A virtual clock simply stops; a real one has timers left (the aborted connections' are gone).
    if (clock instanceof VirtualClock) clock.advanceSync(1);
  }
}

interface KernelGoodput {
  mbps: number;
  bytes: number;
  seconds: number;
  cc: string;
  totalRetrans: number;
  sndMss: number;
  bridge: { lossDrops: number; queueDrops: number; delivered: number };
}

/**
 * Linux CUBIC between two namespaces joined by the bridge. A: `lossa` 10.11.0.1/24 (sender), B:
 * `lossb` 10.11.0.2/24 (receiver); the bridge runs in A, and `lossb` moves to B after it is opened.
 */
async function kernelLossGoodput(seconds: number): Promise<KernelGoodput> {
  return withNetns(async (a?: Netns, b?: Netns) => {
    if (a === undefined || b === undefined) throw new Error('two namespaces');
    const bridge = a.start(process.execPath, [
      BRIDGE, '--bench-bridge', '--a', 'lossa', '--b', 'lossb', '--mtu', String(LOSS_PATH.mtu),
      '--delay', String(LOSS_PATH.delayMs), '--bandwidth', String(LOSS_PATH.bandwidthBps),
      '--loss', String(LOSS_PATH.lossRate), '--queue', String(LOSS_PATH.queuePackets), '--seed', String(LOSS_PATH.seed),
    ]);
    const ready = await Promise.race([bridge.waitForLine(/^(ready|error) /, 15_000)]);
    if (ready.startsWith('error ')) throw new Error(`synack bench loss: the bridge could not open its TUN devices: ${(JSON.parse(ready.slice(6)) as { message: string }).message}`);
    await a.check('ip', ['addr', 'add', '10.11.0.1/24', 'dev', 'lossa']);
    // The open fd stays the bridge's; the device changes namespace (and goes down on the way).
    await a.check('ip', ['link', 'set', 'lossb', 'netns', b.name]);
    await b.check('ip', ['addr', 'add', '10.11.0.2/24', 'dev', 'lossb']);
    await b.check('ip', ['link', 'set', 'lossb', 'mtu', String(LOSS_PATH.mtu), 'up']);

    const sink = b.start('python3', ['-c', TIMED_SINK_PY, '10.11.0.2', '5001', String(seconds)]);
    await sink.waitForLine(/^listening$/, 10_000);
    const send = a.start('python3', ['-c', TIMED_SEND_PY, '10.11.0.2', '5001', 'cubic', String(seconds + 10)]);
    const sinkLine = await sink.waitForLine(/^\{/, (seconds + 20) * 1000);
    const got = JSON.parse(sinkLine) as { received: number; seconds: number; mbps: number };
    const sendLine = await send.waitForLine(/^\{/, 20_000).catch(() => undefined);
    const sent = sendLine === undefined ? undefined : (JSON.parse(sendLine) as { cc: string; totalRetrans?: number; sndMss?: number });
    if (sent !== undefined && sent.cc !== 'cubic') throw new Error(`synack bench loss: the kernel sender ran ${sent.cc}, not cubic`);
    await bridge.stop(3000);
    const statsLine = bridge.lines.find((l) => l.startsWith('stats '));
    const stats = statsLine === undefined ? undefined
      : (JSON.parse(statsLine.slice(6)) as { ab: { delivered: number; drops: Record<LinkDropReason, number> } });
    return {
      mbps: got.mbps,
      bytes: got.received,
      seconds: got.seconds,
      cc: sent?.cc ?? 'cubic (sender report missing)',
      totalRetrans: sent?.totalRetrans ?? -1,
      sndMss: sent?.sndMss ?? -1,
      bridge: { lossDrops: stats?.ab.drops.loss ?? -1, queueDrops: stats?.ab.drops.queue ?? -1, delivered: stats?.ab.delivered ?? -1 },
    };
  }, 2);
}

function lossUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (TUN devices, network namespaces)';
  if (!isRoot()) return 'needs root (network namespaces and TUN devices for the kernel reference)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!have('ip', ['-V'])) return "needs iproute2's ip";
  if (!have('python3', ['--version'])) return 'needs python3 (the kernel-side sender and receiver)';
  if (!existsSync(BRIDGE)) return `needs the compiled bridge ${BRIDGE}`;
  return undefined;
}

export const lossBenchmark: Benchmark = {
  name: 'loss',
  describe: 'goodput at 1% loss, 50 ms RTT, 100 Mbit/s (synack CUBIC on a MemoryLink) — reference: Linux CUBIC through a TUN bridge with the same impairment model',
  unavailable: lossUnavailable,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const seconds = lossSeconds(ctx.quick);
    ctx.progress(0, 'loss: synack, virtual time');
    const virtual = await synackLossGoodput(true, seconds, 60_000);
    ctx.progress(0.1, `loss: synack and Linux CUBIC in real time, ${seconds} s`);
    const started = performance.now();
    const tick = setInterval(() => ctx.progress(0.1 + 0.9 * Math.min(1, (performance.now() - started) / 1000 / (seconds + 3)), 'loss: real time'), 500);
    let real: Goodput;
    let kernel: KernelGoodput;
    try {
      [real, kernel] = await guardSignals(() => Promise.all([synackLossGoodput(false, seconds, (seconds + 30) * 1000), kernelLossGoodput(seconds)]));
    } finally {
      clearInterval(tick);
    }
    ctx.progress(1);
    const mss = real.sndMss;
    const mathis = mathisMbps(mss, RTT_MS, LOSS_PATH.lossRate);
    const reference = { name: 'Linux CUBIC, same path (TUN bridge)', value: round(kernel.mbps) };
    const path = {
      rttMs: RTT_MS, bottleneckMbps: LOSS_PATH.bandwidthBps / 1e6, lossRate: LOSS_PATH.lossRate,
      queuePackets: LOSS_PATH.queuePackets, seconds, seed: LOSS_PATH.seed,
    };
    const ratio = (v: number): number => (kernel.mbps > 0 ? round(v / kernel.mbps) : 0);
    ctx.log(`loss: synack ${real.mbps.toFixed(2)} Mbit/s (real time), ${virtual.mbps.toFixed(2)} (virtual), Linux CUBIC ${kernel.mbps.toFixed(2)}, Mathis ${mathis.toFixed(2)}`);
    return [
      {
        name: 'loss goodput 1% 50ms 100Mbit/s',
        value: round(real.mbps),
        unit: 'Mbit/s',
        reference,
        ratio: ratio(real.mbps),
        detail: {
          ...path,
          clock: 'real',
          mathisMbps: round(mathis),
          vsMathis: round(real.mbps / mathis),
          sndMss: mss,
          bytes: real.bytes,
          retransmits: real.retransmits,
          linkLossDrops: real.lossDrops,
          linkQueueDrops: real.queueDrops,
          kernelBytes: kernel.bytes,
          kernelCc: kernel.cc,
          kernelRetransmits: kernel.totalRetrans,
          kernelSndMss: kernel.sndMss,
          kernelVsMathis: round(kernel.mbps / mathis),
          bridgeLossDrops: kernel.bridge.lossDrops,
          bridgeQueueDrops: kernel.bridge.queueDrops,
        },
      },
      {
        name: 'loss goodput 1% 50ms 100Mbit/s (virtual time)',
        value: round(virtual.mbps),
        unit: 'Mbit/s',
        reference,
        ratio: ratio(virtual.mbps),
        detail: {
          ...path,
          clock: 'virtual',
          mathisMbps: round(mathis),
          vsMathis: round(virtual.mbps / mathis),
          sndMss: virtual.sndMss,
          bytes: virtual.bytes,
          retransmits: virtual.retransmits,
          linkLossDrops: virtual.lossDrops,
          linkQueueDrops: virtual.queueDrops,
          wallSeconds: round(virtual.wallSeconds),
        },
      },
    ];
  },
};

/** 4 significant digits. */
function round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x))));
  return Number(x.toFixed(Math.min(digits, 6)));
}
