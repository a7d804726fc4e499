/**
 * The shape every benchmark of `synack bench` reports (CONTRACT.md, "JSON shapes": bench). Node-only
 * module family: benchmarks use node:net, node:perf_hooks, TUN devices.
 */

/** A figure measured in the same run for comparison, e.g. kernel loopback through node:net. */
export interface BenchReference {
  name: string;
  value: number;
}

export interface BenchResult {
  /** e.g. "throughput mtu=1500". */
  name: string;
  value: number;
  /** e.g. "Gbit/s", "conn/s", "µs", "bytes/conn". */
  unit: string;
  reference?: BenchReference;
  /** value / reference.value, when there is a reference. */
  ratio?: number;
  /** Anything else worth keeping (samples, settings, why a figure is missing). */
  detail?: Record<string, number | string | boolean>;
}

export interface BenchContext {
  /** Short runs for CI: same measurements, fewer bytes and samples. */
  quick: boolean;
  /** Report progress of the current benchmark, 0..1 (drives the progress bar). */
  progress(fraction: number, label?: string): void;
  /** A line for stderr (never stdout: --json keeps stdout clean). */
  log(line: string): void;
}

/** One benchmark: a name for `--only`, and a function returning its results. */
export interface Benchmark {
  name: string;
  /** What it measures and against what, one line (for --help and the docs). */
  describe: string;
  /** Why it cannot run here (e.g. "needs root and /dev/net/tun"), or undefined when it can. */
  unavailable?(): string | undefined;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}
