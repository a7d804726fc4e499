/**
 * The child process behind the memory and demux benchmarks (started by `runChild` with
 * `--expose-gc`, so that it can force collections and has a heap of its own to measure). It does
 * nothing unless its first argument is one of its modes:
 *
 *   synack <segments>  N idle established pairs of synack connections, N = 1k, 10k, 100k: bytes
 *                      per connection at 10k and 100k, and ns per incoming segment (demux) at each N
 *   node <count>       `count` idle established node:net connections over loopback: bytes per
 *                      connection in the JavaScript heap and array buffers
 *
 * It prints `progress <fraction> <label>` lines, then one line of JSON.
 */
import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { gc } from './common.js';
import { ACK_SLOT, population } from './population.js';

export const POPULATION_SIZES = [1000, 10_000, 100_000] as const;
/** Segments per burst in the demux runs (a power of two). */
const BURST = 16;

export interface MemoryFigure {
  connections: number;
  /** JS heap used + array buffers, after forced collections, less the same before any connection. */
  bytesPerPair: number;
  heapPerPair: number;
  arrayBuffersPerPair: number;
}

export interface DemuxFigure {
  connections: number;
  /** 'random': each segment to a connection drawn among all N; 'hot': among the first 1,000 only. */
  pattern: 'random' | 'hot';
  nsPerSegment: number;
  segments: number;
  /** Segments the server sent while it was fed (0: every segment was a quiet duplicate ACK). */
  repliesSent: number;
}

export interface SynackPopulationFigures {
  memory: MemoryFigure[];
  demux: DemuxFigure[];
}

export interface NodeMemoryFigure {
  connections: number;
  bytesPerPair: number;
  heapPerPair: number;
  arrayBuffersPerPair: number;
}

function used(): { heap: number; ab: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers };
}

function progress(fraction: number, label: string): void {
  process.stdout.write(`progress ${fraction} ${label}\n`);
}

/**
 * Demux cost: `segments` pure ACKs, each a copy of one the client really sent on a connection picked
 * at random among all of them (a fixed pseudo-random sequence), handed straight to the server
 * stack's link receiver in bursts of 16, as a link delivers them. Each one is parsed, checksummed,
 * looked up by 4-tuple and processed by its TCB as a duplicate ACK that needs no answer. The time
 * per segment is the whole input path, of which only the lookup may depend on N; a flat total
 * shows that it does not. Two patterns: 'random' spreads the segments over all N connections, so
 * beside the lookup it measures the CPU caches missing on N connections' state (a real server with
 * N active peers pays that too); 'hot' sends them to 1,000 of the N only, so what grows with N is
 * the lookup table alone. The lowest of three runs of `segments` each.
 */
function demux(pop: ReturnType<typeof population>, n: number, segments: number, pattern: 'random' | 'hot'): DemuxFigure {
  // The first 1,000 connections' handshake ACKs were captured first.
  const count = pattern === 'hot' ? Math.min(1000, pop.ackCount) : pop.ackCount;
  const views: Uint8Array[] = [];
  for (let i = 0; i < count; i++) views.push(pop.acks.subarray(i * ACK_SLOT, i * ACK_SLOT + pop.ackLength(i)));
  const order = new Uint32Array(1 << 16);
  let x = 0x9e3779b9;
  for (let i = 0; i < order.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    order[i] = x % count;
  }
  const deliver = pop.deliverToServer;
  const endBurst = pop.endServerBurst;
  const mask = order.length - 1;
  // Segments arrive in bursts of BURST, as a link delivers them (the stack flushes after each).
  const feed = (count: number, start: number): void => {
    for (let i = 0; i < count; i++) {
      deliver(views[order[(i + start) & mask]!]!);
      if ((i & (BURST - 1)) === BURST - 1) endBurst();
    }
    endBurst();
  };
  // Warm-up: compile the input path for this shape of traffic.
  feed(Math.min(segments, 20_000), 0);
  const out0 = pop.server.counters.tcpOut;
  // The lowest of three runs: on a shared machine the least disturbed one.
  let ms = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    feed(segments, r * 7919);
    ms = Math.min(ms, performance.now() - t0);
  }
  return { connections: n, pattern, nsPerSegment: (ms * 1e6) / segments, segments, repliesSent: pop.server.counters.tcpOut - out0 };
}

async function synackMode(segments: number): Promise<SynackPopulationFigures> {
  const max = POPULATION_SIZES[POPULATION_SIZES.length - 1]!;
  const pop = population(max);
  const base = used();
  const memory: MemoryFigure[] = [];
  const demuxFigures: DemuxFigure[] = [];
  let step = 0;
  for (const n of POPULATION_SIZES) {
    progress(step++ / (POPULATION_SIZES.length * 2), `building ${n} connections`);
    pop.grow(n);
    if (n >= 10_000) {
      const u = used();
      const heap = (u.heap - base.heap) / n;
      const ab = (u.ab - base.ab) / n;
      memory.push({ connections: n, bytesPerPair: heap + ab, heapPerPair: heap, arrayBuffersPerPair: ab });
    }
    progress(step++ / (POPULATION_SIZES.length * 2), `demux among ${n}`);
    demuxFigures.push(demux(pop, n, segments, 'random'), demux(pop, n, segments, 'hot'));
  }
  return { memory, demux: demuxFigures };
}

async function nodeMode(count: number): Promise<NodeMemoryFigure> {
  const accepted: Socket[] = [];
  const server = createServer((s) => void accepted.push(s));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const base = used();
  const clients: Socket[] = [];
  while (clients.length < count) {
    const batch: Array<Promise<void>> = [];
    for (let i = 0; i < 500 && clients.length < count; i++) {
      const s = connect({ host: '127.0.0.1', port });
      clients.push(s);
      batch.push(new Promise((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('error', reject);
      }));
    }
    await Promise.all(batch);
    progress(clients.length / count, `${clients.length} node:net connections`);
  }
  for (let i = 0; i < 1000 && accepted.length < count; i++) await new Promise((r) => setTimeout(r, 10));
  if (accepted.length < count) throw new Error(`node:net: ${accepted.length} accepted of ${count}`);
  const u = used();
  const heap = (u.heap - base.heap) / count;
  const ab = (u.ab - base.ab) / count;
  for (const s of clients) s.destroy();
  for (const s of accepted) s.destroy();
  server.close();
  return { connections: count, bytesPerPair: heap + ab, heapPerPair: heap, arrayBuffersPerPair: ab };
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'synack' || mode === 'node') {
  try {
    const figures = mode === 'synack' ? await synackMode(Number(arg)) : await nodeMode(Number(arg));
    process.stdout.write(JSON.stringify(figures) + '\n');
    process.exit(0);
  } catch (e) {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
