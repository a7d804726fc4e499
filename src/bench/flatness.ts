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
  describe: 'ns per timer-wheel operation and per incoming segment (demux) at 1k/10k/100k connections — reference: the same at 1k',
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
    return results;
  },
};
