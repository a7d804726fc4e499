/**
 * Throughput against the number of parallel bulk connections (1, 8, 64, 512), MTU 65535, the same
 * total bytes split evenly between them; reference: the same through node:net over loopback. This
 * is the second series of the SVG chart: it shows what per-connection overhead (timers, demux,
 * window updates for many flows) costs once the CPU is the bottleneck. Method as in throughput.ts
 * (64 KiB writes, the receiver reading everything, timed from the first connect to the last byte);
 * synack and kernel each the best of their runs.
 */
import { kernelBulk, result, round, stackPair, synackBulk, turn } from './common.js';
import { CHUNK, TIMEOUT_MS, throughputSettings } from './throughput.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

export const CONNECTION_COUNTS = [1, 8, 64, 512] as const;

export const throughputConnsBenchmark: Benchmark = {
  name: 'throughput-conns',
  describe: 'bulk throughput at MTU 65535 with 1/8/64/512 parallel connections — reference: the same through node:net over loopback',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const s = throughputSettings(ctx.quick);
    const bytes = ctx.quick ? 32 * 2 ** 20 : 128 * 2 ** 20;
    const runs = ctx.quick ? 2 : 3;
    const steps = 1 + CONNECTION_COUNTS.length * runs * 2;
    let step = 0;
    const tick = (label: string): void => ctx.progress(++step / steps, label);
    await synackBulk(stackPair({ mtu: 65535 }), { bytes: s.warmupBytes, conns: 8, chunk: CHUNK, timeoutMs: TIMEOUT_MS });
    await kernelBulk({ bytes: s.warmupBytes, conns: 8, chunk: CHUNK, timeoutMs: TIMEOUT_MS });
    tick('warm-up');
    const results: BenchResult[] = [];
    for (const conns of CONNECTION_COUNTS) {
      const o = { bytes, conns, chunk: CHUNK, timeoutMs: TIMEOUT_MS };
      // Alternating synack / kernel, so that load from elsewhere falls on both; best of each.
      const syn: number[] = [];
      const ker: number[] = [];
      for (let r = 0; r < runs; r++) {
        syn.push((await synackBulk(stackPair({ mtu: 65535 }), o)).gbps);
        tick(`${conns} connections`);
        await turn();
        ker.push((await kernelBulk(o)).gbps);
        tick('kernel');
        await turn();
      }
      results.push(result(`throughput conns=${conns}`, round(Math.max(...syn)), 'Gbit/s',
        { name: `kernel loopback (node:net), ${conns} connection${conns === 1 ? '' : 's'}`, value: round(Math.max(...ker)) },
        { bytes, connections: conns, mtu: 65535, runs, synackRuns: syn.map(round).join(' '), kernelRuns: ker.map(round).join(' ') }));
    }
    return results;
  },
};
