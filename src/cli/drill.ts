/**
 * `synack drill PATH...`: run packetdrill scripts (files, or folders searched for `.pkt`) against
 * fresh synack stacks in virtual time, in parallel on worker threads; PASS/FAIL per script, and a
 * last line `N passed, M failed` (CONTRACT.md). Exit 0 when none failed, 1 otherwise, 2 on bad usage.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { runDrillFile, type DrillFileResult } from '../drill/file.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, oneLine, type CliIO } from './io.js';

export const DRILL_HELP = `Usage: synack drill [options] PATH...

Runs packetdrill scripts (.pkt files, or folders searched recursively for them) against synack in
virtual time: each script gets a fresh stack at packetdrill's addresses (192.168.0.1 ↔ 192.0.2.1, or
fd3d:fa7b:d17d::1 ↔ 2001:db8::1 with --ip_version=ipv6 in the script); its '<' lines are injected,
its '>' lines must match what the stack sends, its system calls run with Unix semantics.

Options:
  --json        print { results: [{ file, ok, error, … }], passed, failed, skipped } only
  --jobs N      scripts run at once (default: the number of CPUs)
  --verbose     print warnings (ignored options, shell commands, unchecked socket options)
  -h, --help    this help

Prints PASS, FAIL (with the line, the expected and the actual segment or call) or SKIP (a feature
synack does not model) per script, then 'N passed, M failed[, K skipped]'. Exit 1 if any failed.
`;

/** Files to run: each PATH, or the .pkt files under it (sorted, so runs are reproducible). */
export function collectScripts(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UsageError(`no such file or folder: ${p}`);
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        const child = join(p, name);
        if (statSync(child).isDirectory()) walk(child);
        else if (name.endsWith('.pkt')) out.push(child);
      }
    } else {
      out.push(p);
    }
  };
  for (const p of paths) walk(p);
  return out;
}

/** Runs the scripts on up to `jobs` worker threads (in this thread when there are few). */
export async function runScripts(files: string[], jobs: number): Promise<DrillFileResult[]> {
  const workerUrl = new URL('./drill-worker.js', import.meta.url);
  // Under tsx (sources, no build) there is no worker file to start: run in this thread.
  if (jobs <= 1 || files.length < 8 || !existsSync(fileURLToPath(workerUrl))) {
    return files.map((f) => runDrillFile(f, readFileSync(f, 'utf8')));
  }
  const results: DrillFileResult[] = new Array(files.length);
  let next = 0;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const w = new Worker(workerUrl);
    const feed = (): void => {
      if (next >= files.length) {
        void w.terminate().then(() => resolve());
        return;
      }
      const i = next++;
      w.postMessage({ i, file: files[i] });
    };
    w.on('message', (m: { i: number; result: DrillFileResult }) => {
      results[m.i] = m.result;
      feed();
    });
    w.on('error', reject);
    feed();
  });
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, one));
  return results;
}

export async function drillCommand(args: string[], io: CliIO): Promise<number> {
  let values: { json?: boolean; jobs?: string; verbose?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        jobs: { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr(`synack drill: ${oneLine((e as Error).message)}\n`);
    return EXIT_USAGE;
  }
  if (values.help) {
    io.stdout(DRILL_HELP);
    return EXIT_OK;
  }
  let files: string[];
  let jobs: number;
  try {
    if (positionals.length === 0) throw new UsageError('give at least one .pkt file or folder');
    jobs = values.jobs === undefined ? availableParallelism() : Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`bad --jobs '${values.jobs}': expected a whole number ≥ 1`);
    files = collectScripts(positionals);
    if (files.length === 0) throw new UsageError(`no .pkt files in ${positionals.join(', ')}`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack drill: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  const results = await runScripts(files, jobs);
  const passed = results.filter((r) => r.ok && r.skipped === undefined).length;
  const skipped = results.filter((r) => r.skipped !== undefined).length;
  const failed = results.filter((r) => !r.ok).length;
  if (values.json) {
    io.stdout(`${JSON.stringify({ results, passed, failed, skipped }, null, 2)}\n`);
    return failed > 0 ? EXIT_FAILED : EXIT_OK;
  }
  const lines: string[] = [];
  for (const r of results) {
    if (r.skipped !== undefined) lines.push(`SKIP ${r.file}: ${r.skipped}`);
    else if (r.ok) lines.push(`PASS ${r.file}`);
    else {
      lines.push(`FAIL ${r.file}${r.line !== undefined ? `:${r.line}` : ''}: ${r.error}`);
      if (r.expected !== undefined) lines.push(`       expected: ${r.expected}`);
      if (r.actual !== undefined) lines.push(`       actual:   ${r.actual}`);
    }
    if (values.verbose) for (const w of r.warnings) lines.push(`       note: ${w}`);
  }
  lines.push(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  io.stdout(`${lines.join('\n')}\n`);
  return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
