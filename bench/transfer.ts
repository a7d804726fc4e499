/**
 * Figures for bulk data transfer: one-way transfers between two synack stacks over a simulated
 * bottleneck, in virtual time, for each congestion control algorithm.
 *
 *   1. A clean path: 1 Gbit/s bottleneck, 10 ms one way (20 ms RTT), a drop-tail queue of one
 *      bandwidth-delay product (1 Gbit/s × 20 ms = 2.5 MB ≈ 1667 packets of 1500 bytes).
 *   2. The same with random loss in the data direction, beside the Mathis et al. bound for
 *      loss-limited TCP throughput (Mathis, Semke, Mahdavi, Ott, "The Macroscopic Behavior of the
 *      TCP Congestion Avoidance Algorithm", CCR 1997): MSS/RTT × sqrt(3/2)/sqrt(p).
 *
 * Goodput is application bytes × 8 over the time from connect to the last byte read; steady-state
 * goodput counts only the bytes after the first 10 MB (from the moment 10 MB had been read), so slow
 * start is left out. The receiver reads inside the stack's readable event, so the application is
 * never the bottleneck; the sender refills its send buffer on every writable event.
 *
 * Usage: npm run figures:transfer -- [--bytes N] [--loss P] [--queue N] [--cc cubic|newreno|both]
 *                                    [--seed N] [--max-sim-s S] [--max-wall-s S] [--json]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { MemoryLink, Stack, VirtualClock } from '../src/index.js';
import type { LinkDropReason, LinkEnd, MemoryLinkEnd, MemoryLinkOptions, TcpConnection } from '../src/index.js';
import { SOURCE, sink } from '../src/bench/common.js';

type Cc = 'cubic' | 'newreno';

const BOTTLENECK_BPS = 1e9;
const ONE_WAY_DELAY_MS = 10;
const PATH_RTT_MS = 2 * ONE_WAY_DELAY_MS;
/** Packets of 1500 bytes in one bandwidth-delay product: 1 Gbit/s × 20 ms / 12 000 bit ≈ 1667. */
const BDP_PACKETS = Math.round((BOTTLENECK_BPS * PATH_RTT_MS) / 1000 / (1500 * 8));
/** Bytes read before the steady-state measurement starts. */
const WARMUP_BYTES = 10e6;
/** Virtual time between checks of whether a transfer is done (and of the wall-time bound). */
const STEP_MS = 100;

interface Config {
  bytes: number;
  loss: number;
  queue: number;
  ccs: Cc[];
  seed: number;
  maxSimMs: number;
  maxWallMs: number;
  json: boolean;
}

interface RunResult {
  scenario: 'clean' | 'loss';
  cc: Cc;
  lossRate: number;
  bytes: number;
  /** Bytes the receiver read (less than `bytes` when the run hit a time bound). */
  bytesRead: number;
  complete: boolean;
  /** Virtual seconds from connect to the last byte read (or to the bound). */
  simSeconds: number;
  goodputMbps: number;
  goodputPercent: number;
  /** Goodput after the first 10 MB; null when fewer bytes than that were moved. */
  steadyMbps: number | null;
  steadyPercent: number | null;
  retransmits: number;
  rtoExpirations: number;
  /** Packets the link dropped in the data direction, by reason. */
  queueDrops: number;
  lossDrops: number;
  sndMss: number;
  srttMs: number;
  /** The receive and send buffers at the end (after auto-tuning). */
  rcvBufBytes: number;
  sndBufBytes: number;
  /** Mathis et al. bound for this loss rate and the MSS used, Mbit/s (loss scenario only). */
  mathisMbps: number | null;
  wallSeconds: number;
}

/**
 * A link whose two directions have their own impairments. MemoryLink.pair applies one set of
 * options to both directions, so this takes the data direction (a → b) from one pair and the ACK
 * direction (b → a) from another, and leaves the other half of each pair unused.
 */
function splitLink(clock: VirtualClock, ab: MemoryLinkOptions, ba: MemoryLinkOptions): {
  a: LinkEnd; b: LinkEnd; data: MemoryLinkEnd; acks: MemoryLinkEnd;
} {
  const [dataA, dataB] = MemoryLink.pair({ ...ab, clock });
  const [ackA, ackB] = MemoryLink.pair({ ...ba, clock });
  const a: LinkEnd = {
    mtu: dataA.mtu,
    send: (p) => dataA.send(p),
    onPacket: (fn) => ackA.onPacket(fn),
  };
  const b: LinkEnd = {
    mtu: dataB.mtu,
    send: (p) => ackB.send(p),
    onPacket: (fn) => dataB.onPacket(fn),
  };
  return { a, b, data: dataA, acks: ackB };
}

function mathisMbps(mssBytes: number, rttMs: number, p: number): number {
  return ((mssBytes * 8) / (rttMs / 1000)) * Math.sqrt(3 / 2) / Math.sqrt(p) / 1e6;
}

function transfer(cfg: Config, cc: Cc, lossRate: number): RunResult {
  const wall0 = performance.now();
  const clock = new VirtualClock();
  const path: MemoryLinkOptions = {
    delayMs: ONE_WAY_DELAY_MS, bandwidthBps: BOTTLENECK_BPS, queuePackets: cfg.queue, seed: cfg.seed,
  };
  const link = splitLink(clock, { ...path, lossRate }, path);
  const drops: Record<LinkDropReason, number> = { loss: 0, mtu: 0, queue: 0 };
  link.data.onDrop((_, reason) => drops[reason]++);
  // The default buffer limits (6 MiB receive, 4 MiB send) hold the 2.5 MB bandwidth-delay product,
  // so none is passed here: the figures are for the defaults.
  const common = { clock, congestionControl: cc, seed: cfg.seed };
  const sender = new Stack({ ...common, link: link.a, addresses: ['10.0.0.1/24'], name: 'sender' });
  const receiver = new Stack({ ...common, link: link.b, addresses: ['10.0.0.2/24'], name: 'receiver' });

  let bytesRead = 0;
  let warmAt = NaN;
  let lastAt = NaN;
  let failure: Error | null = null;
  let server: TcpConnection | null = null;

  const listener = receiver.tcpListen({ port: 5001 });
  listener.onConnection = (c) => {
    server = c;
    sink(
      c,
      (chunk) => {
        bytesRead += chunk.length;
        if (Number.isNaN(warmAt) && bytesRead >= WARMUP_BYTES) warmAt = clock.now();
        if (bytesRead >= cfg.bytes && Number.isNaN(lastAt)) lastAt = clock.now();
      },
      (err) => void (failure ??= err),
    );
  };

  const t0 = clock.now();
  const conn = sender.tcpConnect({ host: '10.0.0.2', port: 5001 });
  let written = 0;
  const fill = (): void => {
    if (conn.state === 'SYN-SENT') return;
    while (written < cfg.bytes) {
      const off = written % SOURCE.length;
      const want = Math.min(SOURCE.length - off, cfg.bytes - written);
      const n = conn.write(SOURCE.subarray(off, off + want));
      written += n;
      // A short write means the send buffer is full; onWritable follows.
      if (n < want) return;
    }
    conn.close();
  };
  conn.events = {
    onEstablished: fill,
    onWritable: fill,
    onClosed: (err) => {
      if (err) failure ??= err;
    },
  };

  while (Number.isNaN(lastAt) && failure === null &&
    clock.now() - t0 < cfg.maxSimMs && performance.now() - wall0 < cfg.maxWallMs) {
    clock.advanceSync(STEP_MS);
  }
  if (failure !== null) throw failure;
  listener.close();

  const complete = !Number.isNaN(lastAt);
  const end = complete ? lastAt : clock.now();
  const seconds = (end - t0) / 1000;
  const goodput = seconds > 0 ? (bytesRead * 8) / seconds / 1e6 : 0;
  const steadySeconds = (end - warmAt) / 1000;
  const steady = !Number.isNaN(warmAt) && steadySeconds > 0 ? ((bytesRead - WARMUP_BYTES) * 8) / steadySeconds / 1e6 : null;
  const info = conn.info();
  const rinfo = (server as TcpConnection | null)?.info();
  const rate = BOTTLENECK_BPS / 1e6;
  return {
    scenario: lossRate > 0 ? 'loss' : 'clean',
    cc,
    lossRate,
    bytes: cfg.bytes,
    bytesRead,
    complete,
    simSeconds: seconds,
    goodputMbps: goodput,
    goodputPercent: (goodput / rate) * 100,
    steadyMbps: steady,
    steadyPercent: steady === null ? null : (steady / rate) * 100,
    retransmits: info.totalRetransmits,
    rtoExpirations: info.rtoExpirations,
    queueDrops: drops.queue,
    lossDrops: drops.loss,
    sndMss: info.sndMss,
    srttMs: info.srtt,
    rcvBufBytes: rinfo?.rcvBufSize ?? 0,
    sndBufBytes: info.sndBufSize,
    mathisMbps: lossRate > 0 ? mathisMbps(info.sndMss, PATH_RTT_MS, lossRate) : null,
    wallSeconds: (performance.now() - wall0) / 1000,
  };
}

function parseConfig(argv: string[]): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      bytes: { type: 'string', default: '100e6' },
      loss: { type: 'string', default: '0.01' },
      queue: { type: 'string', default: String(BDP_PACKETS) },
      cc: { type: 'string', default: 'both' },
      seed: { type: 'string', default: '1' },
      'max-sim-s': { type: 'string', default: '1800' },
      'max-wall-s': { type: 'string', default: '600' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const num = (name: string, v: string, ok: (n: number) => boolean): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || !ok(n)) throw new Error(`--${name}: bad value ${JSON.stringify(v)}`);
    return n;
  };
  const cc = values.cc;
  if (cc !== 'cubic' && cc !== 'newreno' && cc !== 'both') throw new Error('--cc: cubic, newreno or both');
  return {
    bytes: Math.floor(num('bytes', values.bytes, (n) => n >= 1)),
    loss: num('loss', values.loss, (n) => n >= 0 && n < 1),
    queue: Math.floor(num('queue', values.queue, (n) => n >= 1)),
    ccs: cc === 'both' ? ['cubic', 'newreno'] : [cc],
    seed: Math.floor(num('seed', values.seed, (n) => n >= 0)),
    maxSimMs: num('max-sim-s', values['max-sim-s'], (n) => n > 0) * 1000,
    maxWallMs: num('max-wall-s', values['max-wall-s'], (n) => n > 0) * 1000,
    json: values.json,
  };
}

function fmt(n: number | null, digits = 1): string {
  return n === null ? '—' : n.toFixed(digits);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

const USAGE = 'usage: node dist/bench/transfer.js [--bytes N] [--loss P] [--queue N] ' +
  '[--cc cubic|newreno|both] [--seed N] [--max-sim-s S] [--max-wall-s S] [--json]';

function main(): void {
  let cfg: Config;
  try {
    cfg = parseConfig(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const results: RunResult[] = [];
  const scenarios = cfg.loss > 0 ? [0, cfg.loss] : [0];
  for (const loss of scenarios) {
    for (const cc of cfg.ccs) {
      const r = transfer(cfg, cc, loss);
      results.push(r);
      if (!cfg.json) {
        process.stderr.write(`  ${r.scenario} ${cc}: ${fmt(r.goodputMbps)} Mbit/s, wall ${fmt(r.wallSeconds, 2)} s\n`);
      }
    }
  }
  // The most goodput the link can carry: payload per 1500-byte packet (MSS + TCP options).
  const mss = results[0]?.sndMss ?? 0;
  const ceilingMbps = (BOTTLENECK_BPS / 1e6) * (mss / 1500);
  const setup = {
    bottleneckMbps: BOTTLENECK_BPS / 1e6,
    payloadCeilingMbps: ceilingMbps,
    oneWayDelayMs: ONE_WAY_DELAY_MS,
    rttMs: PATH_RTT_MS,
    queuePackets: cfg.queue,
    bdpPackets: BDP_PACKETS,
    bytes: cfg.bytes,
    warmupBytes: WARMUP_BYTES,
    seed: cfg.seed,
    maxSimSeconds: cfg.maxSimMs / 1000,
    lossDirection: 'data only (a separate clean link carries the ACKs)',
    mathis: 'MSS*8/RTT * sqrt(3/2)/sqrt(p), MSS = the sender\'s sndMss, RTT = path RTT',
  };
  if (cfg.json) {
    process.stdout.write(JSON.stringify({ setup, results }, null, 2) + '\n');
    return;
  }
  const out: string[] = [];
  out.push(`synack bulk transfer, virtual time: ${cfg.bytes} bytes one way over a ${BOTTLENECK_BPS / 1e6} Mbit/s ` +
    `bottleneck, ${ONE_WAY_DELAY_MS} ms one way (RTT ${PATH_RTT_MS} ms), drop-tail queue ${cfg.queue} packets ` +
    `(1 BDP = ${BDP_PACKETS}); loss only in the data direction, ACK direction clean; seed ${cfg.seed}.`);
  out.push(`Goodput = bytes×8 / (connect → last byte read); steady = after the first ${WARMUP_BYTES / 1e6} MB. ` +
    `At MSS ${mss} in 1500-byte packets the most goodput can be is ${fmt(ceilingMbps)} Mbit/s ` +
    `(${fmt((ceilingMbps / (BOTTLENECK_BPS / 1e6)) * 100)}% of the link).`);
  const rows: string[][] = [[
    'path', 'cc', 'sim s', 'goodput Mbit/s', '% of link', 'steady Mbit/s', 'steady %', 'Mathis Mbit/s',
    'vs Mathis', 'rexmits', 'RTOs', 'queue drops', 'loss drops', 'MSS', 'rcvbuf KiB', 'wall s',
  ]];
  for (const r of results) {
    rows.push([
      r.scenario === 'clean' ? 'clean' : `loss ${r.lossRate}`,
      r.cc + (r.complete ? '' : ` (incomplete: ${r.bytesRead} B)`),
      fmt(r.simSeconds, 2),
      fmt(r.goodputMbps),
      fmt(r.goodputPercent),
      fmt(r.steadyMbps),
      fmt(r.steadyPercent),
      fmt(r.mathisMbps),
      r.mathisMbps === null ? '—' : `${fmt(r.goodputMbps / r.mathisMbps, 2)}×`,
      String(r.retransmits),
      String(r.rtoExpirations),
      String(r.queueDrops),
      String(r.lossDrops),
      String(r.sndMss),
      fmt(r.rcvBufBytes / 1024, 0),
      fmt(r.wallSeconds, 2),
    ]);
  }
  out.push(table(rows));
  process.stdout.write(out.join('\n') + '\n');
}

main();
