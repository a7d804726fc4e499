/**
 * Bulk throughput between two synack stacks in one process, at MTU 1500, 9000 and 65535, beside the
 * kernel's loopback driven through node:net in the same process.
 *
 * Methodology:
 * - synack: two stacks on real time (RealClock) joined by a MemoryLink with no delay, no loss and no
 *   bandwidth limit, so the only limit is the CPU: the sender writes its bytes in 64 KiB writes
 *   (refilled on onWritable), the receiver reads everything in its onReadable callback. Default
 *   stack options (256 KiB buffers, auto-tuned; CUBIC; SACK, timestamps, window scaling).
 * - kernel: a node:net server and client on 127.0.0.1, the same byte count in the same 64 KiB writes
 *   (waiting for 'drain'), the server counting 'data' bytes. Linux loopback has an MTU of 65536 and
 *   skips checksums (the packets never leave memory); its MTU cannot be changed without root and
 *   without disturbing everything else on the machine, so the same kernel figure stands beside
 *   every synack MTU: it is the bar.
 * - Both are timed from the first connect to the last byte received, after a short warm-up of each
 *   (JIT compilation, buffer growth). Runs alternate synack / kernel so that load from elsewhere on
 *   the machine falls on both; each figure is the best of its runs (the least disturbed).
 * - Both run on the same event loop in one process, one after the other, never at the same time.
 */
import { kernelBulk, result, round, stackPair, synackBulk, turn } from './common.js';
import { checksumVariants } from './checksum.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

export const THROUGHPUT_MTUS = [1500, 9000, 65535] as const;
/** Bytes per write, on both sides. */
export const CHUNK = 64 * 1024;

export interface ThroughputSettings {
  bytes: number;
  runs: number;
  warmupBytes: number;
}

export function throughputSettings(quick: boolean): ThroughputSettings {
  return quick
    ? { bytes: 32 * 2 ** 20, runs: 2, warmupBytes: 8 * 2 ** 20 }
    : { bytes: 256 * 2 ** 20, runs: 3, warmupBytes: 32 * 2 ** 20 };
}

export const TIMEOUT_MS = 120_000;

export const throughputBenchmark: Benchmark = {
  name: 'throughput',
  describe: 'bulk transfer between two stacks over a MemoryLink at MTU 1500/9000/65535 — reference: kernel loopback through node:net',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const s = throughputSettings(ctx.quick);
    const variants = checksumVariants();
    const steps = 1 + THROUGHPUT_MTUS.length * variants.length * s.runs * 2;
    let step = 0;
    const tick = (label: string): void => ctx.progress(++step / steps, label);

    // Warm-up: compile the hot paths of both before anything is timed.
    await synackBulk(stackPair({ mtu: 65535 }), { bytes: s.warmupBytes, conns: 1, chunk: CHUNK, timeoutMs: TIMEOUT_MS });
    await kernelBulk({ bytes: s.warmupBytes, conns: 1, chunk: CHUNK, timeoutMs: TIMEOUT_MS });
    tick('warm-up');

    // The kernel figure is one bar for every row (its MTU is its own); it is measured between the
    // synack runs, and the best of all its runs stands as the reference of each row.
    const rows: Array<{ name: string; runs: number[]; checksums: boolean }> = [];
    const kernelRuns: number[] = [];
    for (const mtu of THROUGHPUT_MTUS) {
      for (const v of variants) {
        const runs: number[] = [];
        for (let r = 0; r < s.runs; r++) {
          const pair = stackPair({ mtu, ...v.link }, v.stack);
          runs.push((await synackBulk(pair, { bytes: s.bytes, conns: 1, chunk: CHUNK, timeoutMs: TIMEOUT_MS })).gbps);
          tick(`mtu ${mtu}${v.suffix}`);
          await turn();
          kernelRuns.push((await kernelBulk({ bytes: s.bytes, conns: 1, chunk: CHUNK, timeoutMs: TIMEOUT_MS })).gbps);
          tick('kernel');
          await turn();
        }
        rows.push({ name: `throughput mtu=${mtu}${v.suffix}`, runs, checksums: v.checksums });
      }
    }
    const reference = { name: 'kernel loopback (node:net, MTU 65536)', value: round(Math.max(...kernelRuns)) };
    return rows.map((row) => result(row.name, round(Math.max(...row.runs)), 'Gbit/s', reference, {
      bytes: s.bytes, writeBytes: CHUNK, runs: s.runs, synackRuns: row.runs.map(round).join(' '),
      kernelRuns: kernelRuns.map(round).join(' '), checksums: row.checksums,
    }));
  },
};
