/**
 * Memory per idle established connection, at 10k and 100k connections.
 *
 * Methodology (src/bench/population-child.ts, a child process started with --expose-gc): two
 * synack stacks in one process on a MemoryLink, N pairs of connections opened and left idle (the
 * handshakes done, the delayed ACKs sent, nothing buffered); forced full collections; then V8's
 * `heapUsed` + `arrayBuffers` less the same figure taken before the first connection, with the
 * stacks, the link and the listeners already made. Per pair = that / N; per end = per pair / 2
 * (both ends of a pair are synack connections). Heap sizes are exact and the run is deterministic
 * (virtual time), so one run suffices.
 *
 * Reference: the same for node:net over loopback in another child, both ends in the one process —
 * the JavaScript side only: a kernel socket also costs kernel memory (socket, buffers, file) that
 * `process.memoryUsage()` does not see, and a synack connection has no kernel side at all. node:net
 * is measured at 10k connections, or fewer when the open-file limit (two descriptors per pair)
 * does not allow 10k; it has no figure at 100k (200k descriptors).
 */
import { spawnSync } from 'node:child_process';
import { result, round, runChild } from './common.js';
import { populationFigures } from './flatness.js';
import type { NodeMemoryFigure } from './population-child.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

/** The soft limit on open files of a child (inherited from this process), or undefined. */
function openFileLimit(): number | undefined {
  const r = spawnSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && Number.isFinite(n) && n > 0 ? n : r.stdout?.trim() === 'unlimited' ? Infinity : undefined;
}

export const memoryBenchmark: Benchmark = {
  name: 'memory',
  describe: 'heap + array-buffer bytes per idle established connection at 10k and 100k — reference: node:net (JS side only)',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const limit = openFileLimit() ?? 1024;
    const nodeCount = Math.max(100, Math.min(10_000, Math.floor((limit - 200) / 2)));
    ctx.progress(0, 'node:net connections');
    const node = await runChild<NodeMemoryFigure>('./population-child.js', ['node', String(nodeCount)], 300_000, (line) => {
      ctx.progress(0.2 * Number(line.split(' ')[1]), 'node:net connections');
    });
    const pop = await populationFigures({ ...ctx, progress: (f, label) => ctx.progress(0.2 + 0.8 * f, label) });
    const ref = {
      name: `node:net per end, ${node.connections} connections (JS heap + array buffers; kernel memory not counted)`,
      value: round(node.bytesPerPair / 2),
    };
    const refPair = { name: `node:net per pair, ${node.connections} connections (JS side only)`, value: round(node.bytesPerPair) };
    const results: BenchResult[] = [];
    for (const [i, m] of pop.memory.entries()) {
      // The cost of each connection beyond the previous count: what is allocated once (pools,
      // tables) drops out.
      const prev = pop.memory[i - 1];
      const marginal: Record<string, number> = prev === undefined ? {} : {
        marginalPerPair: round((m.bytesPerPair * m.connections - prev.bytesPerPair * prev.connections) / (m.connections - prev.connections)),
      };
      const detail = {
        connections: m.connections, heapPerPair: round(m.heapPerPair), arrayBuffersPerPair: round(m.arrayBuffersPerPair),
        ...marginal, lowerIsBetter: true, target: 'at most 4096 bytes per end at 100k',
      };
      const at10k = m.connections === 10_000;
      const note: Record<string, string> = at10k ? {} : { note: 'no node:net figure at this count: it would need two file descriptors per pair' };
      results.push(result(`memory per end n=${m.connections}`, round(m.bytesPerPair / 2), 'bytes/conn', at10k ? ref : undefined, { ...detail, ...note }));
      results.push(result(`memory per pair n=${m.connections}`, round(m.bytesPerPair), 'bytes/pair', at10k ? refPair : undefined, { ...detail, ...note }));
    }
    return results;
  },
};
