/**
 * `synack bench`: the real CLI (dist/src/cli/main.js) with --quick --json, the contract's JSON shape,
 * --only, --svg, --list, bad usage; and the command's handling of unavailable and failing
 * benchmarks with stand-ins. Never gates on absolute times or on meeting the performance targets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netConnRate } from '../../src/bench/connrate.js';
import { kernelNet, type NetLike } from '../../src/bench/netlike.js';
import { renderChart } from '../../src/bench/svg.js';
import type { BenchResult, Benchmark } from '../../src/bench/types.js';
import { runBenchCommand } from '../../src/cli/bench.js';
import { runCli } from '../../src/cli/program.js';
import { capture } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Report {
  results: BenchResult[];
  unavailable: Array<{ benchmark: string; reason: string }>;
  failed: Array<{ benchmark: string; error: string }>;
}

/** Runs the CLI, bounded in time; resolves with its exit status and output. */
function cli(args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`synack ${args.join(' ')} did not finish within ${timeoutMs / 1000} s; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The contract shape of one result, and ratio = value / reference.value (both rounded to 4 digits). */
function checkResult(r: BenchResult): void {
  assert.equal(typeof r.name, 'string');
  assert.ok(r.name.length > 0);
  assert.equal(typeof r.unit, 'string');
  assert.ok(Number.isFinite(r.value) && r.value > 0, `${r.name}: value ${r.value} should be positive`);
  if (r.reference !== undefined) {
    assert.equal(typeof r.reference.name, 'string', r.name);
    assert.ok(Number.isFinite(r.reference.value) && r.reference.value > 0, `${r.name}: reference ${r.reference.value}`);
    assert.equal(typeof r.ratio, 'number', `${r.name}: a result with a reference has a ratio`);
    const expected = r.value / r.reference.value;
    assert.ok(Math.abs(r.ratio! - expected) <= 2e-3 * expected, `${r.name}: ratio ${r.ratio} vs ${expected}`);
  } else {
    assert.equal(r.ratio, undefined, `${r.name}: no reference, no ratio`);
  }
}

/** Well-formed enough: one root <svg>, every element closed in order, no stray '<'. */
function assertWellFormedSvg(svg: string): void {
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'), 'an SVG document');
  const body = svg.replace(/^<\?xml[^>]*\?>/, '');
  const stack: string[] = [];
  let roots = 0;
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  assert.deepEqual(stack, [], 'every element is closed');
  assert.equal(roots, 1, 'one root element');
  // Text content has no raw '<' or '&' outside entities.
  const text = body.replace(/<[^>]*>/g, '');
  assert.ok(!/&(?!amp;|lt;|gt;|quot;)/.test(text), 'entities escaped');
}

const IN_PROCESS = ['throughput', 'throughput-conns', 'connrate', 'latency', 'memory', 'flatness'];

test('bench --quick --json: the contract shape, a reference where promised, ratio = value/reference; --svg writes the chart', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-bench-'));
  try {
    const svgPath = join(dir, 'chart.svg');
    const r = await cli(['bench', '--quick', '--json', '--only', IN_PROCESS.join(','), '--svg', svgPath], 540_000);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stderr.includes('█') && !r.stderr.includes('\r'), 'no progress bar when stderr is not a terminal');
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(Object.keys(report).sort(), ['failed', 'results', 'unavailable']);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(report.unavailable, []);
    for (const res of report.results) checkResult(res);
    const byName = new Map(report.results.map((x) => [x.name, x]));
    // What each benchmark promises, with a reference measured in the same run where one exists.
    const withReference = [
      'throughput mtu=1500', 'throughput mtu=9000', 'throughput mtu=65535',
      'throughput mtu=1500 no-checksum', 'throughput mtu=9000 no-checksum', 'throughput mtu=65535 no-checksum',
      'throughput conns=1', 'throughput conns=8', 'throughput conns=64', 'throughput conns=512',
      'connection rate', 'connection rate stack.net', 'latency p50', 'latency p99',
      'memory per end n=10000', 'memory per pair n=10000',
      'timer op n=10000', 'timer op n=100000', 'demux n=10000', 'demux n=100000', 'demux hot n=10000', 'demux hot n=100000',
      'timer op n=10000 vs random access', 'timer op n=100000 vs random access', 'demux n=10000 vs random access', 'demux n=100000 vs random access',
    ];
    for (const name of withReference) {
      const x = byName.get(name);
      assert.ok(x !== undefined, `result '${name}' is missing`);
      assert.ok(x.reference !== undefined, `'${name}' has a reference`);
    }
    for (const name of ['memory per end n=100000', 'memory per pair n=100000', 'timer op n=1000', 'demux n=1000']) {
      assert.ok(byName.has(name), `result '${name}' is missing`);
    }
    assert.equal(byName.get('throughput mtu=1500')!.unit, 'Gbit/s');
    assert.equal(byName.get('connection rate')!.unit, 'conn/s');
    assert.equal(byName.get('latency p50')!.unit, 'µs');
    assert.equal(byName.get('memory per end n=100000')!.unit, 'bytes/conn');
    // Per pair is twice per end, from the same measurement.
    const end = byName.get('memory per end n=100000')!.value;
    const pair = byName.get('memory per pair n=100000')!.value;
    assert.ok(Math.abs(pair - 2 * end) <= 2e-3 * pair, `${pair} vs 2 × ${end}`);
    // The demux runs fed the server only duplicate ACKs: it must not have answered any.
    assert.equal(byName.get('demux n=100000')!.detail?.['repliesSent'], 0);
    // The 1k figure is the reference of the 10k and 100k ones.
    assert.equal(byName.get('timer op n=100000')!.reference!.value, byName.get('timer op n=1000')!.value);
    // The memory-reference rows carry synack's growth from the flatness rows themselves.
    const vs = byName.get('demux n=100000 vs random access')!;
    assert.equal(vs.detail?.['synackNs'], byName.get('demux n=100000')!.value);
    assert.equal(vs.detail?.['synackNs1k'], byName.get('demux n=1000')!.value);

    const svg = readFileSync(svgPath, 'utf8');
    assertWellFormedSvg(svg);
    for (const label of ['1500', '9000', '65535', '512', 'kernel loopback (node:net)', 'synack, no checksums']) {
      assert.ok(svg.includes(`>${label}<`), `the chart shows '${label}' as text`);
    }
    // Deterministic, and drawn from the very results reported.
    assert.equal(svg, renderChart(report.results, `synack bench --quick --only ${IN_PROCESS.join(',')} — Gbit/s, higher is better`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--only runs just the benchmarks named; the table lists each result', { timeout: 120_000 }, async () => {
  const j = await cli(['bench', '--quick', '--json', '--only', 'latency'], 110_000);
  assert.equal(j.status, 0, j.stderr);
  const report = JSON.parse(j.stdout) as Report;
  assert.deepEqual(report.results.map((x) => x.name), ['latency p50', 'latency p99']);
  for (const res of report.results) checkResult(res);
  const t = await cli(['bench', '--quick', '--only', 'latency'], 110_000);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^benchmark\s+synack\s+ratio\s+reference\n/);
  assert.match(t.stdout, /\nlatency p50\s+[\d.,]+ µs\s+[\d.]+× \(lower is better\)\s+[\d.,]+ µs {2}node:net over kernel loopback, p50\n/);
});

test('--list names every benchmark, the TUN and loss ones included, with why one cannot run here', () => {
  const r = spawnSync(process.execPath, [MAIN, 'bench', '--list', '--json'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const list = (JSON.parse(r.stdout) as { benchmarks: Array<{ name: string; describe: string; unavailable?: string }> }).benchmarks;
  assert.deepEqual(list.map((b) => b.name), [...IN_PROCESS, 'tun', 'loss', 'gateway']);
  for (const b of list) {
    assert.ok(b.describe.length > 10, b.name);
    if (b.unavailable !== undefined) assert.ok(b.unavailable.length > 0);
  }
  const h = spawnSync(process.execPath, [MAIN, 'bench', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(h.status, 0);
  for (const b of list) assert.match(h.stdout, new RegExp(`\\n  ${b.name} +\\S`), `--help lists ${b.name}`);
});

test('bad usage exits 2 with a one-line reason', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--only', 'nope'], /unknown benchmark 'nope' \(valid: throughput, throughput-conns, .*gateway\)/],
    [['--only', ','], /--only needs benchmark names/],
    [['--svg', ''], /--svg needs a file name/],
    [['--svg'], /argument missing/],
    [['extra'], /Unexpected argument 'extra'/],
  ];
  for (const [args, reason] of cases) {
    const c = capture();
    assert.equal(await runCli(['bench', ...args], c.io), 2, args.join(' '));
    assert.match(c.err(), reason);
    assert.equal(c.err().trimEnd().split('\n').length, 1, `one line: ${c.err()}`);
    assert.equal(c.out(), '');
  }
});

// Stand-ins: what the command does with a benchmark that cannot run here and one that throws.
const fine: Benchmark = {
  name: 'fine',
  describe: 'a benchmark that works',
  run: (ctx) => {
    ctx.progress(0.5, 'half way');
    ctx.log('a line for stderr');
    return Promise.resolve([{ name: 'fine rate', value: 3, unit: 'op/s', reference: { name: 'ref', value: 2 }, ratio: 1.5 }]);
  },
};
const absent: Benchmark = {
  name: 'absent',
  describe: 'needs what this machine lacks',
  unavailable: () => 'needs root and /dev/net/tun',
  run: () => Promise.reject(new Error('must not run')),
};
const broken: Benchmark = {
  name: 'broken',
  describe: 'throws',
  run: () => Promise.reject(new Error('link went away\n    at somewhere (file.js:1:1)')),
};
let ranAfterBroken = false;
const after: Benchmark = {
  name: 'after',
  describe: 'runs after the broken one',
  run: () => {
    ranAfterBroken = true;
    return Promise.resolve([{ name: 'after value', value: 1, unit: 'x' }]);
  },
};

test('an unavailable benchmark is reported with its reason; a failing one exits 1 after the others ran', async () => {
  const c = capture();
  assert.equal(await runBenchCommand(['--json'], c.io, [fine, absent, broken, after]), 1);
  const report = JSON.parse(c.out()) as Report;
  assert.deepEqual(report.results.map((r) => r.name), ['fine rate', 'after value']);
  assert.deepEqual(report.unavailable, [{ benchmark: 'absent', reason: 'needs root and /dev/net/tun' }]);
  assert.deepEqual(report.failed, [{ benchmark: 'broken', error: 'link went away' }]);
  assert.ok(ranAfterBroken);
  assert.match(c.err(), /^a line for stderr\nsynack bench: broken failed: link went away\n$/);

  const t = capture();
  assert.equal(await runBenchCommand([], t.io, [fine, absent]), 0);
  assert.match(t.out(), /\nfine rate +3\.00 op\/s +1\.50× +2\.00 op\/s {2}ref\n/);
  assert.match(t.out(), /\nabsent: unavailable — needs root and \/dev\/net\/tun\n$/);
});

test('the progress bar goes to stderr only when stderr is a terminal', async () => {
  const tty = capture({ columns: 100 });
  tty.io.stderrIsTTY = true;
  assert.equal(await runBenchCommand(['--json'], tty.io, [fine]), 0);
  assert.match(tty.err(), /\r\x1b\[2K\[█*░*\] +\d+% fine/);
  // Cleared before a log line and at the end: no bar is left on the screen.
  assert.match(tty.err(), /\r\x1b\[2Ka line for stderr\n/);
  const tail = tty.err().slice(tty.err().lastIndexOf('\n') + 1);
  assert.ok(tail === '' || tail.endsWith('\r\x1b[2K'), 'the bar is cleared at the end');
  JSON.parse(tty.out());
  const pipe = capture();
  assert.equal(await runBenchCommand(['--json'], pipe.io, [fine]), 0);
  assert.equal(pipe.err(), 'a line for stderr\n');
});

test('the chart: well-formed, deterministic, text as text, "not measured" panels when a series is absent', () => {
  const results: BenchResult[] = [
    { name: 'throughput mtu=1500', value: 1.2, unit: 'Gbit/s', reference: { name: 'k', value: 10 }, ratio: 0.12 },
    { name: 'throughput mtu=65535', value: 6, unit: 'Gbit/s', reference: { name: 'k', value: 10 }, ratio: 0.6 },
  ];
  const a = renderChart(results, 'a <test> & more');
  assertWellFormedSvg(a);
  assert.equal(a, renderChart(results, 'a <test> & more'));
  assert.ok(a.includes('a &lt;test&gt; &amp; more'));
  assert.ok(a.includes('>1.20<') && a.includes('>6.00<') && a.includes('>10.0<'), 'bar values as text');
  assert.ok(a.includes('not measured in this run'), 'the connection-count panel has no data');
  assert.ok(!a.includes('no checksums'), 'no no-checksum series when none was measured');
});

test('--svg goes through the command\'s file writer; a file that cannot be written is a failure (exit 1), the results still printed', async () => {
  const ok = capture();
  assert.equal(await runBenchCommand(['--json', '--svg', 'out.svg'], ok.io, [fine]), 0);
  const svg = new TextDecoder().decode(ok.files.get('out.svg'));
  assertWellFormedSvg(svg);
  assert.ok(svg.includes('synack bench — Gbit/s, higher is better'));
  const bad = capture();
  bad.io.writeFile = () => {
    throw new Error("ENOENT: no such file or directory, open '/nope/out.svg'");
  };
  assert.equal(await runBenchCommand(['--json', '--svg', '/nope/out.svg'], bad.io, [fine]), 1);
  const report = JSON.parse(bad.out()) as Report;
  assert.deepEqual(report.results.map((r) => r.name), ['fine rate']);
  assert.equal(report.failed.length, 1);
  assert.match(report.failed[0]!.error, /^cannot write \/nope\/out\.svg: ENOENT/);
  assert.match(bad.err(), /synack bench: cannot write \/nope\/out\.svg: ENOENT/);
});

test('a connection-rate run that cannot finish fails within its deadline and leaves nothing open (no hang in CI)', { timeout: 30_000 }, async () => {
  // node:net whose servers accept but never answer: every client waits for its echo for ever, and a
  // server's close() would wait for those connections.
  const real = kernelNet();
  const mute: NetLike = {
    ...real,
    createServer: (listener) => real.createServer((sock) => listener({
      write: () => true, // the echo that never comes
      end: () => sock.end(), destroy: () => sock.destroy(), setNoDelay: (x) => sock.setNoDelay(x),
      on: (e, f) => sock.on(e, f), once: (e, f) => sock.once(e, f),
    })),
  };
  const t0 = performance.now();
  await assert.rejects(netConnRate(mute, 8, 4, 500), /not done within 0\.5 s/);
  const ms = performance.now() - t0;
  assert.ok(ms < 5000, `failed and cleaned up in ${ms.toFixed(0)} ms`);
  // Every socket was destroyed: nothing keeps the event loop busy (the test runner would hang).
  const handles = (process as unknown as { _getActiveHandles(): Array<{ constructor: { name: string }; remotePort?: number }> })._getActiveHandles();
  assert.equal(handles.filter((h) => h.constructor.name === 'Socket' && h.remotePort !== undefined).length, 0);
});
