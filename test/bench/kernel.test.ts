/**
 * The benchmarks of `synack bench` that need the real kernel: `tun` (throughput through a TUN
 * device, beside kernel → kernel over veth) and `loss` (goodput at 1% loss, 50 ms RTT, 100 Mbit/s,
 * beside Linux CUBIC through a TUN bridge), run in quick mode; the tests check the shape of what they
 * report and the facts the figures rest on (offload really cut the reads, the kernel really ran
 * CUBIC, losses really happened on both paths), and that an interrupted run leaves no namespace
 * behind. Needs root, /dev/net/tun, iproute2 and python3; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tunBenchmark, tunBytes } from '../../src/bench/tun.js';
import { LOSS_PATH, lossBenchmark, lossSeconds, mathisMbps, synackLossGoodput } from '../../src/bench/loss.js';
import type { BenchContext, BenchResult } from '../../src/bench/types.js';

const INTERRUPT = fileURLToPath(new URL('./fixtures/interrupt.js', import.meta.url));
const why = tunBenchmark.unavailable?.() ?? lossBenchmark.unavailable?.();
const skip = why === undefined ? false : `skipped: ${why}`;

if (process.env['CI'] === 'true' && why !== undefined) {
  test('kernel benchmarks can run (required under CI)', () => {
    assert.fail(`the tun and loss benchmarks ${why}: under CI=true a skip is a failure`);
  });
}

function context(): BenchContext & { fractions: number[]; lines: string[] } {
  const fractions: number[] = [];
  const lines: string[] = [];
  return {
    quick: true,
    fractions,
    lines,
    progress: (f) => {
      fractions.push(f);
    },
    log: (l) => {
      lines.push(l);
    },
  };
}

/** The CONTRACT bench shape: name, finite positive value, unit, reference, ratio = value / reference. */
function assertShape(r: BenchResult, unit: string): void {
  assert.equal(typeof r.name, 'string');
  assert.equal(r.unit, unit, r.name);
  assert.ok(Number.isFinite(r.value) && r.value > 0, `${r.name}: value ${r.value}`);
  assert.ok(r.reference !== undefined, `${r.name}: a reference`);
  assert.ok(r.reference.name.length > 0);
  assert.ok(Number.isFinite(r.reference.value) && r.reference.value > 0, `${r.name}: reference ${r.reference.value}`);
  assert.ok(r.ratio !== undefined && Math.abs(r.ratio - r.value / r.reference.value) <= 0.01 * r.ratio + 1e-3,
    `${r.name}: ratio ${r.ratio} vs ${r.value}/${r.reference.value}`);
  assert.ok(r.detail !== undefined);
  // JSON round trip: only numbers, strings and booleans.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
}

test('bench tun (quick): both directions at MTU 1500, 1500 with offload and 65535, beside veth', { skip, timeout: 180_000 }, async (t: TestContext) => {
  const ctx = context();
  const results = await tunBenchmark.run(ctx);
  const names = results.map((r) => r.name);
  assert.deepEqual(names, [
    'tun kernel→synack mtu=1500', 'tun synack→kernel mtu=1500',
    'tun kernel→synack mtu=1500 offload', 'tun synack→kernel mtu=1500 offload',
    'tun kernel→synack mtu=65535', 'tun synack→kernel mtu=65535',
  ]);
  for (const r of results) {
    assertShape(r, 'Gbit/s');
    assert.equal(r.detail!['bytes'], tunBytes(true));
    assert.match(r.reference!.name, /^kernel → kernel over veth mtu=(1500|65535)$/);
    t.diagnostic(`${r.name}: ${r.value} Gbit/s, veth ${r.reference!.value} (${r.ratio}×), reads/MiB ${r.detail!['readsPerMiB']}, writes/MiB ${r.detail!['writesPerMiB']}`);
  }
  const byName = new Map(results.map((r) => [r.name, r.detail!]));
  const plainIn = byName.get('tun kernel→synack mtu=1500')!;
  const offIn = byName.get('tun kernel→synack mtu=1500 offload')!;
  const bigIn = byName.get('tun kernel→synack mtu=65535')!;
  // Plain MTU 1500: one read per packet of at most 1500 bytes.
  assert.ok((plainIn['readsPerMiB'] as number) >= (1 << 20) / 1500, JSON.stringify(plainIn));
  assert.equal(plainIn['gsoPacketsIn'], 0);
  // Offload granted, and the kernel's 64 KiB super-packets cut the reads by well over 10×.
  assert.equal(offIn['offload'], true, JSON.stringify(offIn));
  assert.ok((offIn['gsoPacketsIn'] as number) > 0);
  assert.ok((offIn['readsPerMiB'] as number) * 10 < (plainIn['readsPerMiB'] as number), `${offIn['readsPerMiB']} vs ${plainIn['readsPerMiB']}`);
  assert.ok((bigIn['readsPerMiB'] as number) * 10 < (plainIn['readsPerMiB'] as number));
  // With offload, synack's segments cross as super-packets: far fewer writes.
  const offOut = byName.get('tun synack→kernel mtu=1500 offload')!;
  assert.equal(offOut['gso'], true);
  assert.ok((offOut['gsoPacketsOut'] as number) > 0);
  assert.ok((offOut['writesPerMiB'] as number) * 5 < (byName.get('tun synack→kernel mtu=1500')!['writesPerMiB'] as number), JSON.stringify(offOut));
  // Writes at MTU 65535 carry 64 KiB segments too.
  const bigOut = byName.get('tun synack→kernel mtu=65535')!;
  assert.ok((bigOut['writesPerMiB'] as number) * 10 < (byName.get('tun synack→kernel mtu=1500')!['writesPerMiB'] as number));
  // Progress went from 0 to 1.
  assert.equal(ctx.fractions[0], 0);
  assert.equal(ctx.fractions.at(-1), 1);
  assert.ok(ctx.fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= ctx.fractions[i - 1]!)));
});

test('bench loss (quick): synack CUBIC in real and virtual time beside Linux CUBIC on the same impaired path', { skip, timeout: 120_000 }, async (t: TestContext) => {
  const ctx = context();
  const started = Date.now();
  const results = await lossBenchmark.run(ctx);
  const wall = (Date.now() - started) / 1000;
  assert.deepEqual(results.map((r) => r.name), ['loss goodput 1% 50ms 100Mbit/s', 'loss goodput 1% 50ms 100Mbit/s (virtual time)']);
  const mathis = mathisMbps(1448, 50, 0.01);
  for (const r of results) {
    assertShape(r, 'Mbit/s');
    const d = r.detail!;
    assert.equal(r.reference!.name, 'Linux CUBIC, same path (TUN bridge)');
    assert.equal(d['seconds'], lossSeconds(true));
    assert.equal(d['rttMs'], 50);
    assert.equal(d['lossRate'], 0.01);
    assert.equal(d['queuePackets'], LOSS_PATH.queuePackets);
    assert.equal(d['sndMss'], 1448);
    assert.ok(Math.abs((d['mathisMbps'] as number) - mathis) < 0.01, `Mathis ${d['mathisMbps']} vs ${mathis}`);
    // Goodput below the bottleneck's payload rate, and loss really happened on the link.
    assert.ok(r.value < 100 * (1448 / 1500), `${r.name}: ${r.value}`);
    assert.ok(r.reference!.value < 100 * (1448 / 1500));
    assert.ok((d['linkLossDrops'] as number) > 0 && (d['retransmits'] as number) > 0, JSON.stringify(d));
    t.diagnostic(`${r.name}: synack ${r.value} Mbit/s (${d['clock']} time), Linux CUBIC ${r.reference!.value} (${r.ratio}×), Mathis ${d['mathisMbps']}`);
  }
  const real = results[0]!.detail!;
  assert.equal(real['kernelCc'], 'cubic', 'the kernel sender really ran CUBIC');
  assert.ok((real['bridgeLossDrops'] as number) > 0, 'the bridge dropped packets');
  assert.equal(real['kernelSndMss'], 1448);
  // The real-time runs are D seconds long and go side by side: quick is about 10 s, not 2×.
  assert.ok(wall < lossSeconds(true) * 2, `wall ${wall} s`);
  t.diagnostic(`wall ${wall.toFixed(1)} s`);
});

test('bench loss: the virtual-time synack figure is deterministic', { timeout: 60_000 }, async () => {
  const a = await synackLossGoodput(true, 4, 30_000);
  const b = await synackLossGoodput(true, 4, 30_000);
  assert.equal(a.bytes, b.bytes);
  assert.equal(a.retransmits, b.retransmits);
  assert.ok(a.lossDrops > 0 && a.bytes > 0);
  assert.equal(a.seconds, b.seconds);
});

test('bench tun: SIGINT mid-run removes the namespaces it made', { skip, timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [INTERRUPT, '--bench-interrupt'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let names: string[] = [];
  try {
    const deadline = Date.now() + 20_000;
    while (!/^netns /m.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const seen = (): string[] => out.split('\n').filter((l) => l.startsWith('netns ')).flatMap((l) => l.slice('netns '.length).split(' '));
    const present = listNetns();
    names = seen();
    assert.ok(names.length > 0, `the benchmark made a namespace: ${out} ${err}`);
    assert.ok(names.every((n) => /^synack-[0-9a-f]{8}$/.test(n)), names.join(' '));
    assert.ok(names.some((n) => present.includes(n)), 'a namespace of its own exists while the benchmark runs');
    child.kill('SIGINT');
    const exit = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
    assert.deepEqual(exit, { code: null, signal: 'SIGINT' }, `died of the signal, as without the handler: ${err}`);
    assert.ok(!out.includes('finished'));
    names = seen();
    const left = listNetns();
    for (const n of names) assert.ok(!left.includes(n), `${n} was removed`);
  } finally {
    child.kill('SIGKILL');
    // Should the test fail half-way, its namespaces still go.
    for (const n of names) if (listNetns().includes(n)) spawnSync('ip', ['netns', 'del', n], { timeout: 10_000 });
  }
});

function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}
