/**
 * `synack bench`: the benchmarks of src/bench/, each figure beside a reference measured in the same
 * run (CONTRACT.md: `synack bench [--quick]`, JSON `{ results: [{ name, value, unit, reference:
 * { name, value }, ratio }] }`). A benchmark that cannot run here (TUN without root) is reported as
 * unavailable with its reason; one that throws is reported and makes the exit status 1, after the
 * others have run.
 */
import { BENCHMARKS } from '../bench/index.js';
import { renderChart } from '../bench/svg.js';
import type { BenchContext, BenchResult, Benchmark } from '../bench/types.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, parseCommandArgs, type CliIO } from './io.js';

export const BENCH_HELP = `Usage: synack bench [options]

Benchmarks of synack, each beside a reference measured in the same run on this machine (the Linux
kernel through node:net, unless said otherwise). Ratio = value / reference. A full run takes about
two minutes; --quick under one (fewer bytes and samples, the same measurements).

Benchmarks:
${BENCHMARKS.map((b) => `  ${b.name.padEnd(17)}${b.describe}`).join('\n')}

Options:
  --quick          short runs (what CI runs)
  --only A,B       run only these benchmarks (names above)
  --json           print { "results": [...], "unavailable": [...], "failed": [...] } on stdout
  --svg F          write a chart of throughput against MTU and connection count to F (SVG)
  --list           list the benchmarks and whether each can run here, then exit
  -h, --help       this help

A progress bar goes to stderr when it is a terminal. Exit status: 0 every selected benchmark ran,
1 one failed (the others still ran), 2 bad usage.
`;

export interface BenchArgs {
  quick: boolean;
  json: boolean;
  list: boolean;
  svg: string | undefined;
  selected: Benchmark[];
}

/** Parse `synack bench` arguments; throws UsageError with a one-line reason. */
export function parseBenchArgs(args: string[], all: readonly Benchmark[] = BENCHMARKS): BenchArgs | 'help' {
  const { values } = parseCommandArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      json: { type: 'boolean' },
      list: { type: 'boolean' },
      only: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help === true) return 'help';
  if (values.svg === '') throw new UsageError('--svg needs a file name');
  let selected = [...all];
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (names.length === 0) throw new UsageError('--only needs benchmark names, e.g. --only throughput,latency');
    for (const n of names) {
      if (!all.some((b) => b.name === n)) {
        throw new UsageError(`unknown benchmark '${n}' (valid: ${all.map((b) => b.name).join(', ')})`);
      }
    }
    selected = all.filter((b) => names.includes(b.name));
  }
  return { quick: values.quick === true, json: values.json === true, list: values.list === true, svg: values.svg, selected };
}

export interface Unavailable {
  benchmark: string;
  reason: string;
}

export interface Failed {
  benchmark: string;
  error: string;
}

export interface BenchReport {
  results: BenchResult[];
  unavailable: Unavailable[];
  failed: Failed[];
}

/** One line, never a stack trace. */
function message(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0] ?? text;
}

/** A progress bar on stderr, redrawn in place (only when stderr is a terminal). */
class Progress {
  private shown = false;
  private lastDraw = 0;
  constructor(private readonly io: CliIO, private readonly enabled: boolean, private readonly width: number) {}

  draw(fraction: number, label: string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 50 && fraction < 1) return;
    this.lastDraw = now;
    const f = Math.max(0, Math.min(1, fraction));
    const barWidth = 24;
    const full = Math.round(f * barWidth);
    const pct = `${Math.floor(f * 100)}%`.padStart(4);
    let line = `[${'█'.repeat(full)}${'░'.repeat(barWidth - full)}] ${pct} ${label}`;
    if (line.length > this.width - 1) line = line.slice(0, this.width - 1);
    this.io.stderr(`\r\x1b[2K${line}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.io.stderr('\r\x1b[2K');
    this.shown = false;
  }
}

/** Runs the selected benchmarks one after the other, catching failures. */
async function runBenchmarks(selected: readonly Benchmark[], quick: boolean, io: CliIO, progress: Progress | null): Promise<BenchReport> {
  const report: BenchReport = { results: [], unavailable: [], failed: [] };
  for (const [i, b] of selected.entries()) {
    const overall = (f: number): number => (i + Math.max(0, Math.min(1, f))) / selected.length;
    let reason: string | undefined;
    try {
      reason = b.unavailable?.();
    } catch (e) {
      reason = `cannot tell whether it can run: ${message(e)}`;
    }
    if (reason !== undefined) {
      report.unavailable.push({ benchmark: b.name, reason });
      continue;
    }
    progress?.draw(overall(0), b.name);
    const ctx: BenchContext = {
      quick,
      progress: (f, label) => progress?.draw(overall(f), label === undefined ? b.name : `${b.name}: ${label}`),
      log: (line) => {
        progress?.clear();
        io.stderr(`${line}\n`);
      },
    };
    try {
      const results = await b.run(ctx);
      report.results.push(...results);
    } catch (e) {
      report.failed.push({ benchmark: b.name, error: message(e) });
      progress?.clear();
      io.stderr(`synack bench: ${b.name} failed: ${message(e)}\n`);
    }
  }
  progress?.clear();
  return report;
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/**
 * The human-readable table: benchmark, synack's value, ratio, then the reference (its value and
 * what it is — the long column, last so that the others line up).
 */
export function formatTable(report: BenchReport): string {
  const rows: string[][] = [['benchmark', 'synack', 'ratio', 'reference']];
  for (const r of report.results) {
    const lower = r.detail?.['lowerIsBetter'] === true;
    rows.push([
      r.name,
      `${formatNumber(r.value)} ${r.unit}`,
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×${lower ? ' (lower is better)' : ''}`,
      r.reference === undefined ? '—' : `${formatNumber(r.reference.value)} ${r.unit}  ${r.reference.name}`,
    ]);
  }
  const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`.trimEnd());
  const out = [lines.join('\n')];
  if (report.results.length === 0) out.push('(no results)');
  for (const u of report.unavailable) out.push(`${u.benchmark}: unavailable — ${u.reason}`);
  for (const f of report.failed) out.push(`${f.benchmark}: FAILED — ${f.error}`);
  return out.join('\n') + '\n';
}

export function benchCommand(args: string[], io: CliIO): Promise<number> {
  return runBenchCommand(args, io, BENCHMARKS);
}

/** `synack bench` over a given list of benchmarks (tests pass their own). */
export async function runBenchCommand(args: string[], io: CliIO, all: readonly Benchmark[]): Promise<number> {
  let parsed: BenchArgs | 'help';
  try {
    parsed = parseBenchArgs(args, all);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack bench: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (parsed === 'help') {
    io.stdout(BENCH_HELP);
    return EXIT_OK;
  }
  const a = parsed;
  if (a.list) {
    const list = a.selected.map((b) => {
      let reason: string | undefined;
      try {
        reason = b.unavailable?.();
      } catch (e) {
        reason = message(e);
      }
      return { name: b.name, describe: b.describe, ...(reason !== undefined ? { unavailable: reason } : {}) };
    });
    if (a.json) io.stdout(JSON.stringify({ benchmarks: list }, null, 2) + '\n');
    else io.stdout(list.map((b) => `${b.name.padEnd(17)}${b.describe}${b.unavailable !== undefined ? `\n${' '.repeat(17)}unavailable here: ${b.unavailable}` : ''}`).join('\n') + '\n');
    return EXIT_OK;
  }
  const progress = new Progress(io, io.stderrIsTTY === true, Math.max(40, io.columns ?? 80));
  const report = await runBenchmarks(a.selected, a.quick, io, progress);
  if (a.svg !== undefined) {
    const command = `synack bench${a.quick ? ' --quick' : ''}${a.selected.length < all.length ? ` --only ${a.selected.map((b) => b.name).join(',')}` : ''}`;
    try {
      io.writeFile(a.svg, new TextEncoder().encode(renderChart(report.results, `${command} — Gbit/s, higher is better`)));
    } catch (e) {
      report.failed.push({ benchmark: 'svg', error: `cannot write ${a.svg}: ${message(e)}` });
      io.stderr(`synack bench: cannot write ${a.svg}: ${message(e)}\n`);
    }
  }
  if (a.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
  else io.stdout(formatTable(report));
  return report.failed.length > 0 ? EXIT_FAILED : EXIT_OK;
}
