/**
 * The connection-level fuzzer (test/fuzz/connection.fuzz.ts) by hand, for longer than CI runs it.
 *
 *   node dist/bench/fuzz.js [--minutes N] [--seed S] [--steps K] [--keep-going]      (npm run fuzz -- …)
 *   node dist/bench/fuzz.js --seed S --one [--log] [--steps K]      replay one seed (every step with --log)
 *
 * --minutes defaults to 1. Episodes take seeds S, S+1, … (S defaults to a value from the clock, printed first, so any run can be
 * repeated). Progress goes to stderr every 10 s; the summary (steps, steps/s, connections, states and
 * transitions covered) to stdout. A failure prints its seed, step, the broken invariant and the steps
 * before it, and how to replay it; the exit status is then 1 (2 for bad usage).
 */
import { parseArgs } from 'node:util';
import {
  addEpisode, emptySummary, formatFailure, REQUIRED_STATES, runEpisode, type FuzzSummary,
} from '../test/fuzz/connection.fuzz.js';

function usage(msg: string): never {
  process.stderr.write(`fuzz: ${msg}\nusage: node dist/bench/fuzz.js --minutes N [--seed S] [--steps K] [--keep-going] | --seed S --one [--log]\n`);
  process.exit(2);
}

function num(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) usage(`--${name} needs a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

function summaryText(s: FuzzSummary): string {
  const secs = s.elapsedMs / 1000;
  const states = [...s.coverage.states.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  const transitions = [...s.coverage.transitions.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  const missing = s.coverage.missing(REQUIRED_STATES);
  return [
    `seeds ${s.seeds}, steps ${s.steps} in ${secs.toFixed(1)} s (${Math.round(s.steps / Math.max(secs, 0.001))} steps/s)`,
    `connections ${s.stats.connections}, segments injected ${s.stats.injected}, packets sent by the stacks ${s.stats.packets}`,
    `bytes written ${s.stats.bytesWritten}, read (and checked) ${s.stats.bytesRead}`,
    `states (entered): ${states.join(', ')}`,
    `transitions: ${transitions.join(', ')}`,
    missing.length === 0 ? 'every required state reached' : `required states NOT reached: ${missing.join(', ')}`,
    `failures: ${s.failures.length}`,
  ].join('\n');
}

function main(): void {
  let args;
  try {
    args = parseArgs({
      options: {
        minutes: { type: 'string' },
        seed: { type: 'string' },
        steps: { type: 'string' },
        one: { type: 'boolean', default: false },
        log: { type: 'boolean', default: false },
        'keep-going': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  if (args.help) {
    process.stdout.write('usage: node dist/bench/fuzz.js --minutes N [--seed S] [--steps K] [--keep-going] | --seed S --one [--log]\n');
    return;
  }
  const steps = num('steps', args.steps, 800);
  if (args.one) {
    if (args.seed === undefined) usage('--one needs --seed');
    const seed = num('seed', args.seed, 0);
    const log = args.log ? (l: string) => process.stdout.write(`${l}\n`) : undefined;
    const t0 = Date.now();
    const r = runEpisode(seed, { steps, ...(log ? { log } : {}) });
    const s = emptySummary();
    addEpisode(s, r);
    s.elapsedMs = Date.now() - t0;
    process.stdout.write(`${summaryText(s)}\n`);
    if (r.failure) {
      process.stdout.write(`${formatFailure(r.failure)}\n`);
      process.exitCode = 1;
    }
    return;
  }
  const minutes = num('minutes', args.minutes, 1);
  const firstSeed = args.seed !== undefined ? num('seed', args.seed, 0) : Date.now() % 1_000_000_000;
  process.stdout.write(`fuzz: ${minutes} min from seed ${firstSeed}, ${steps} steps per seed\n`);
  const start = Date.now();
  const deadline = start + minutes * 60_000;
  const summary = emptySummary();
  let lastProgress = start;
  // Bounded by the deadline (and, never reached, by 2^31 seeds).
  for (let seed = firstSeed; Date.now() < deadline && seed < 0x7fffffff; seed++) {
    const r = runEpisode(seed, { steps, deadline });
    addEpisode(summary, r);
    summary.elapsedMs = Date.now() - start;
    if (r.failure) {
      process.stdout.write(`\n${formatFailure(r.failure)}\n\n`);
      if (!args['keep-going']) break;
    }
    if (Date.now() - lastProgress >= 10_000) {
      lastProgress = Date.now();
      const secs = summary.elapsedMs / 1000;
      process.stderr.write(`  ${secs.toFixed(0)} s: seed ${seed}, ${summary.steps} steps (${Math.round(summary.steps / secs)}/s), ` +
        `${summary.stats.connections} connections, ${summary.coverage.states.size} states, ` +
        `${summary.coverage.transitions.size} transitions, ${summary.failures.length} failures\n`);
    }
  }
  summary.elapsedMs = Date.now() - start;
  process.stdout.write(`${summaryText(summary)}\n`);
  if (summary.failures.length > 0) {
    process.stdout.write(`failed seeds: ${summary.failures.map((f) => `${f.seed}@${f.step === 0 ? 'end' : f.step}`).join(' ')}\n`);
    process.exitCode = 1;
  }
}

main();
