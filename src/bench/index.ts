/**
 * Every benchmark of `synack bench`, in the order they run (CONTRACT.md: `synack bench [--quick]`).
 * The in-process ones first; TUN and loss need root and network namespaces and say so when they
 * cannot run.
 */
import { connRateBenchmark } from './connrate.js';
import { flatnessBenchmark } from './flatness.js';
import { gatewayBenchmark } from './gateway.js';
import { latencyBenchmark } from './latency.js';
import { lossBenchmark } from './loss.js';
import { memoryBenchmark } from './memory.js';
import { throughputBenchmark } from './throughput.js';
import { throughputConnsBenchmark } from './throughput-conns.js';
import { tunBenchmark } from './tun.js';
import type { Benchmark } from './types.js';

export const BENCHMARKS: readonly Benchmark[] = [
  throughputBenchmark,
  throughputConnsBenchmark,
  connRateBenchmark,
  latencyBenchmark,
  memoryBenchmark,
  flatnessBenchmark,
  tunBenchmark,
  lossBenchmark,
  gatewayBenchmark,
];

export type { Benchmark, BenchContext, BenchResult, BenchReference } from './types.js';
