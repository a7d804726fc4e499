/**
 * Flatness: the cost of a timer operation and of demultiplexing one incoming segment, with 1k, 10k
 * and 100k connections. Each figure at 10k and 100k stands beside the same figure at 1k measured in
 * the same run; the ratio (ideally 1) is the point: O(1) timers and demux keep it flat.
 *
 * Timers — the stack's own TimerWheel (src/stack/timerWheel.ts, 1 ms ticks, 4096 slots, as
 * `Stack` makes it), driven the way `Stack` drives it: N entries, one per connection, armed 200 ms
 * to 1.2 s ahead (a spread of retransmission timeouts); then, per millisecond of (simulated) time,
 * N/256 operations on random entries — so every entry sees the same rates at every N, and the mix
 * of operations is the same at 1k and 100k: re-arm (an ACK restarts the retransmission timer,
 * RFC 6298 §5.3), one in eight a cancel (everything acknowledged, §5.2) and a re-arm, each followed
 * by `nextDeadline()` (the stack's one host timer follows the earliest deadline); then `expire()`
 * for the millisecond, whose fired entries are re-armed further out (a retransmission backs the
 * timer off, §5.5); fires and their re-arms are about a sixth of all operations. Cost = time /
 * (arms + cancels + fires + re-arms after a fire). The lowest of the runs.
 *
 * Demux — in a child process (src/bench/population-child.ts): N idle established pairs of synack
 * connections, then copies of real pure ACKs fed straight to the server stack's link receiver, each
 * to one connection among N; ns per segment for the whole input path. See that file.
 *
 * Memory reference — what part of the growth is the memory hierarchy. At 1k connections everything
 * sits in the CPU caches; at 100k a random connection's state does not, and any program pays cache
 * and TLB misses for it whatever its algorithm. So, in the same run, plain JavaScript that does the
 * same memory-access pattern without synack, measured at the same N with the same random sequence:
 *   - for demux, N pairs of connection-shaped records (a class of 42 fields — integers, boxed
 *     times, references — with an RTT record, a scoreboard record and two 512-byte typed-array
 *     rings; the second record of a pair stands for the client end, allocated alongside and never
 *     touched, as in the population) in a `Map<number, record>`, grown 1k → 10k → 100k like the
 *     population; per step, a 64-byte "segment" of a random connection is read (key and 40 bytes
 *     summed, as a checksum would), the key looked up, and a dozen fields spread over the record,
 *     its sub-records and its rings read and written (a duplicate ACK's work, minus the TCP);
 *   - for timers, N timer-entry-shaped objects (deadline, prev, next, slot, seq, owner), of which
 *     each operation re-times a random one (the same xorshift draws as the wheel benchmark).
 * (The plain pair is ~4.3 KB, heap and array buffers, against ~4.6 KB for a synack pair.) The
 * growth of the reference from 1k to N is what the memory hierarchy alone costs on this machine; the
 * rows "... vs random access" set synack's growth beside it: `value` = synack's ns at N / ns at 1k,
 * `reference` = the same ratio for the plain program. Read it with `detail`: the plain step is a
 * few times cheaper than synack's at 1k, so the same added miss cost makes its ratio grow faster —
 * a ratio below 1 does not by itself mean synack touches less memory. `detail` has the ns of both
 * at 1k and N and the ns each adds between them (`synackAddedNs`, `plainAddedNs`): their quotient
 * says how many plain record-sized random accesses' worth of misses one synack step pays. The
 * lowest of the runs, as above.
 */
import { performance } from 'node:perf_hooks';
import { TimerEntry, TimerWheel } from '../stack/timerWheel.js';
import { result, round, runChild } from './common.js';
import type { DemuxFigure, SynackPopulationFigures } from './population-child.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

export const FLATNESS_SIZES = [1000, 10_000, 100_000] as const;

/** ns per timer operation with `n` armed entries, over at least `ops` operations. */
export function timerCost(n: number, ops: number): number {
  const wheel = new TimerWheel<number>(1);
  const entries: Array<TimerEntry<number>> = [];
  let x = 0x2545f491;
  const rand = (): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  let now = 0;
  const rto = (): number => now + 200 + rand() * 1000;
  for (let i = 0; i < n; i++) {
    const e = new TimerEntry(i);
    entries.push(e);
    wheel.arm(e, rto());
  }
  wheel.nextDeadline();
  let fired = 0;
  const fire = (i: number): void => {
    fired++;
    wheel.arm(entries[i]!, now + 400 + rand() * 2000);
  };
  const perMs = Math.max(1, Math.round(n / 256));
  let sink = 0;
  let done = 0;
  const t0 = performance.now();
  while (done < ops) {
    for (let k = 0; k < perMs; k++) {
      const e = entries[Math.floor(rand() * n)]!;
      if ((k & 7) === 7) {
        wheel.cancel(e);
        sink += wheel.nextDeadline();
        done++;
      }
      wheel.arm(e, rto());
      sink += wheel.nextDeadline();
      done++;
    }
    now += 1;
    const before = fired;
    wheel.expire(now, fire);
    done += 2 * (fired - before);
  }
  const ms = performance.now() - t0;
  if (sink === -1) throw new Error('unreachable');
  return (ms * 1e6) / done;
}

/** xorshift32, as in the wheel benchmark: a fixed sequence, so every run measures the same accesses. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

/** A timer entry's shape without the wheel: what re-timing a random one of N costs in memory alone. */
class PlainTimer {
  deadline = Infinity;
  prev: PlainTimer | null = null;
  next: PlainTimer | null = null;
  slot = -1;
  seq = 0;
  constructor(readonly owner: number) {}
}

/**
 * ns per operation re-timing a random one of `n` timer-entry-shaped objects (a boxed double
 * deadline written, two fields read and written): the memory reference of `timerCost`.
 */
export function plainTimerCost(n: number, ops: number): number {
  const rand = xorshift(0x2545f491);
  const entries: PlainTimer[] = [];
  for (let i = 0; i < n; i++) {
    const e = new PlainTimer(i);
    e.deadline = 200 + (rand() / 4294967296) * 1000;
    entries.push(e);
  }
  let sink = 0;
  let seq = 0;
  const t0 = performance.now();
  for (let k = 0; k < ops; k++) {
    const r = rand();
    const e = entries[Math.floor((r / 4294967296) * n)]!;
    sink += e.slot + e.owner;
    e.deadline = k * 0.004 + 200 + (r & 1023);
    e.seq = ++seq;
  }
  const ms = performance.now() - t0;
  if (sink === -1) throw new Error('unreachable');
  return (ms * 1e6) / ops;
}

class PlainRtt {
  srtt = 0.5;
  rttvar = 0.25;
  rto = 1000.5;
  samples = 0;
  constructor(readonly conn: number) {}
}

class PlainScoreboard {
  blocks: number[] = [];
  sacked = 0;
  lost = 0;
  highest = 0;
}

/** A connection-shaped record: 42 fields (integers, boxed times, references), two sub-records, two rings. */
class PlainConn {
  state = 4; localPort = 0; remotePort = 0; localAddr = 0; remoteAddr = 0;
  iss = 0; irs = 0; sndUna = 0; sndNxt = 0; sndWnd = 65535;
  sndWl1 = 0; sndWl2 = 0; sndMax = 0; rcvNxt = 0; rcvWnd = 65535;
  rcvAdv = 0; mss = 1460; sndScale = 7; rcvScale = 7; flags = 0;
  dupAcks = 0; cwnd = 14600; ssthresh = 0x7fffffff; inFlight = 0; recover = 0;
  lastAckAt = 0.5; lastSendAt = 0.5; lastRecvAt = 0.5; tsRecent = 0; tsRecentAt = 0.5;
  keepaliveAt = 0.5; rtoAt = Infinity; persistAt = Infinity; createdAt = 0.5; segsIn = 0;
  segsOut = 0; bytesAcked = 0; bytesReceived = 0;
  rtt: PlainRtt;
  board = new PlainScoreboard();
  sendRing = new Uint8Array(512);
  recvRing = new Uint8Array(512);
  constructor(i: number) {
    this.localPort = 80;
    this.remotePort = 1024 + (i % 60000);
    this.remoteAddr = 0x0a000000 + Math.floor(i / 60000);
    this.iss = (i * 2654435761) >>> 0;
    this.sndUna = this.iss + 1;
    this.sndNxt = this.sndUna;
    this.rtt = new PlainRtt(i);
    this.createdAt = i + 0.5;
  }
}

/** Bytes per segment slot in the plain demux (as `ACK_SLOT` in the population). */
const PLAIN_SLOT = 64;

/**
 * The memory reference of the demux benchmark: N pairs of connection-shaped records in a Map,
 * grown to each size in turn; ns per "segment" at each size, each to a random connection (the same
 * draws as the population child), the lowest of `runs` runs of `steps`.
 */
export function plainDemuxCosts(sizes: readonly number[], steps: number, runs: number): number[] {
  const max = sizes[sizes.length - 1]!;
  const map = new Map<number, PlainConn>();
  const peers: PlainConn[] = [];
  const segments = new Uint8Array(max * PLAIN_SLOT);
  const keyOf = (i: number): number => (i * 2654435761) >>> 0;
  let built = 0;
  const out: number[] = [];
  for (const n of sizes) {
    for (; built < n; built++) {
      const c = new PlainConn(built);
      peers.push(new PlainConn(built)); // the client end: allocated alongside, never touched
      map.set(keyOf(built), c);
      const off = built * PLAIN_SLOT;
      const k = keyOf(built);
      segments[off] = k & 0xff; segments[off + 1] = (k >>> 8) & 0xff;
      segments[off + 2] = (k >>> 16) & 0xff; segments[off + 3] = k >>> 24;
      for (let b = 4; b < 40; b++) segments[off + b] = (built + b) & 0xff;
    }
    const next = xorshift(0x9e3779b9);
    const order = new Uint32Array(1 << 16);
    for (let i = 0; i < order.length; i++) order[i] = next() % n;
    const mask = order.length - 1;
    let sink = 0;
    let now = 0.25;
    const feed = (count: number, start: number): void => {
      for (let i = 0; i < count; i++) {
        const off = order[(i + start) & mask]! * PLAIN_SLOT;
        // The "checksum": every byte of a 40-byte header read.
        let sum = 0;
        for (let b = 0; b < 40; b++) sum += segments[off + b]!;
        const key = (segments[off]! | (segments[off + 1]! << 8) | (segments[off + 2]! << 16) | (segments[off + 3]! << 24)) >>> 0;
        const c = map.get(key);
        if (c === undefined || c.state !== 4) throw new Error('plain demux: no connection');
        // A duplicate ACK's reads and writes, spread over the record, its sub-records and its rings.
        if (c.sndUna === c.sndNxt && c.sndWnd === 65535) c.dupAcks++;
        c.lastAckAt = now;
        c.segsIn++;
        now += 0.001;
        sum += c.rcvNxt + c.mss + c.cwnd + c.rtt.srtt + c.board.sacked + c.board.blocks.length;
        sum += c.sendRing[c.segsIn & 511]! + c.recvRing.length + c.bytesAcked;
        c.rtt.samples++;
        sink += sum;
      }
    };
    feed(Math.min(steps, 20_000), 0);
    let ms = Infinity;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      feed(steps, r * 7919);
      ms = Math.min(ms, performance.now() - t0);
    }
    if (sink === -1 || peers.length !== built) throw new Error('unreachable');
    out.push((ms * 1e6) / steps);
  }
  return out;
}

/**
 * Rows setting synack's growth from the first size to each larger one beside a plain program's:
 * value = synack's ratio, reference = the plain program's ratio (see the module comment).
 */
function vsRandomRows(what: string, sizes: readonly number[], synack: number[], plain: number[], detail: BenchResult['detail']): BenchResult[] {
  const rows: BenchResult[] = [];
  for (let i = 1; i < sizes.length; i++) {
    const n = sizes[i]!;
    rows.push(result(`${what} n=${n} vs random access`, round(synack[i]! / synack[0]!), '×',
      { name: `random access n=${n} / n=${sizes[0]}`, value: round(plain[i]! / plain[0]!) },
      {
        ...detail,
        lowerIsBetter: true,
        synackNs1k: round(synack[0]!), synackNs: round(synack[i]!),
        plainNs1k: round(plain[0]!), plainNs: round(plain[i]!),
        synackAddedNs: round(synack[i]! - synack[0]!), plainAddedNs: round(plain[i]! - plain[0]!),
      }));
  }
  return rows;
}

/** One child run serves both the memory and the demux benchmarks (building 100k pairs takes seconds). */
let populationRun: Promise<SynackPopulationFigures> | undefined;
let populationQuick: boolean | undefined;

export function populationFigures(ctx: BenchContext): Promise<SynackPopulationFigures> {
  if (populationRun === undefined || populationQuick !== ctx.quick) {
    populationQuick = ctx.quick;
    const segments = ctx.quick ? 100_000 : 1_000_000;
    populationRun = runChild<SynackPopulationFigures>('./population-child.js', ['synack', String(segments)], 600_000, (line) => {
      const [, fraction, ...label] = line.split(' ');
      ctx.progress(Number(fraction), label.join(' '));
    });
  }
  return populationRun;
}

/** Rows at each size, those beyond the first referred to the first. */
function flatRows(what: string, unit: string, sizes: readonly number[], values: number[], detail: BenchResult['detail']): BenchResult[] {
  const base = values[0]!;
  return sizes.map((n, i) =>
    i === 0
      ? result(`${what} n=${n}`, round(values[i]!), unit, undefined, { ...detail, lowerIsBetter: true })
      : result(`${what} n=${n}`, round(values[i]!), unit, { name: `${what} n=${sizes[0]}`, value: round(base) }, { ...detail, lowerIsBetter: true }));
}

export const flatnessBenchmark: Benchmark = {
  name: 'flatness',
  describe: 'ns per timer-wheel operation and per incoming segment (demux) at 1k/10k/100k connections — reference: the same at 1k, and plain JS touching N connection-sized records',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const ops = ctx.quick ? 500_000 : 5_000_000;
    const runs = ctx.quick ? 2 : 3;
    const timer: number[] = [];
    timerCost(1000, 200_000); // warm-up
    FLATNESS_SIZES.forEach((n, i) => {
      let best = Infinity;
      for (let r = 0; r < runs; r++) best = Math.min(best, timerCost(n, ops));
      timer.push(best);
      ctx.progress(((i + 1) / FLATNESS_SIZES.length) * 0.2, `timers, ${n} entries`);
    });
    const results = flatRows('timer op', 'ns/op', FLATNESS_SIZES, timer, { operations: ops, runs, wheel: '1 ms ticks, 4096 slots' });
    // Memory references (module comment), measured before the child builds its population, not
    // while it does: both would share the caches and the two cores.
    plainTimerCost(1000, 200_000); // warm-up
    const plainTimer = FLATNESS_SIZES.map((n) => {
      let best = Infinity;
      for (let r = 0; r < runs; r++) best = Math.min(best, plainTimerCost(n, ops));
      return best;
    });
    const plainSteps = ctx.quick ? 100_000 : 1_000_000;
    const plainDemux = plainDemuxCosts(FLATNESS_SIZES, plainSteps, 3);
    const pop = await populationFigures({ ...ctx, progress: (f, label) => ctx.progress(0.2 + 0.8 * f, label) });
    for (const pattern of ['random', 'hot'] as const) {
      const rows = FLATNESS_SIZES.map((n) => pop.demux.find((d: DemuxFigure) => d.connections === n && d.pattern === pattern));
      if (rows.some((r) => r === undefined)) throw new Error(`demux figures missing for pattern ${pattern}`);
      const figures = rows as DemuxFigure[];
      const replies = figures.reduce((s, d) => s + d.repliesSent, 0);
      results.push(...flatRows(pattern === 'random' ? 'demux' : 'demux hot', 'ns/seg', FLATNESS_SIZES, figures.map((d) => d.nsPerSegment), {
        segments: figures[0]!.segments,
        pattern: pattern === 'random' ? 'each segment to a connection drawn among all N' : 'segments to 1,000 of the N connections only',
        repliesSent: replies,
      }));
    }
    results.push(...vsRandomRows('timer op', FLATNESS_SIZES, timer, plainTimer, {
      plain: 're-time a random one of N timer-entry-shaped objects', operations: ops,
    }));
    const random = FLATNESS_SIZES.map((n) => pop.demux.find((d) => d.connections === n && d.pattern === 'random')!.nsPerSegment);
    results.push(...vsRandomRows('demux', FLATNESS_SIZES, random, plainDemux, {
      plain: 'Map lookup + a dozen fields of a random one of N connection-shaped records', steps: plainSteps,
    }));
    return results;
  },
};
