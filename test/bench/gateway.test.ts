/**
 * The gateway benchmark of `synack bench` (src/bench/gateway.ts) in quick mode: a Linux guest behind
 * `synack gateway`'s TAP device, direct and Wisp upstreams, each throughput beside its reference
 * (the kernel routing over veth; wisp-js's client alone), the relayed connection rate beside the
 * kernel's, and the heap per idle relayed connection. Checks the shape of every result, that the
 * bytes really moved (the benchmark throws otherwise), that no connection failed, and that the
 * namespaces it made are gone afterwards. Needs root, /dev/net/tun, ip, python3 and sysctl; skipped
 * otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gatewayBenchmark, gatewaySizes } from '../../src/bench/gateway.js';
import { liveNetnsNames } from '../../src/bench/netns.js';
import type { BenchContext, BenchResult } from '../../src/bench/types.js';

const why = gatewayBenchmark.unavailable?.();
const skip = why === undefined ? false : `skipped: ${why}`;

if (process.env['CI'] === 'true' && why !== undefined) {
  test('the gateway benchmark can run (required under CI)', () => {
    assert.fail(`the gateway benchmark ${why}: under CI=true a skip is a failure`);
  });
}

function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

function assertRatio(r: BenchResult, unit: string): void {
  assert.equal(r.unit, unit, r.name);
  assert.ok(Number.isFinite(r.value) && r.value > 0, `${r.name}: value ${r.value}`);
  assert.ok(r.reference !== undefined && r.reference.name.length > 0, `${r.name}: a reference`);
  assert.ok(Number.isFinite(r.reference.value) && r.reference.value > 0, `${r.name}: reference ${r.reference.value}`);
  assert.ok(r.ratio !== undefined && Math.abs(r.ratio - r.value / r.reference.value) <= 0.01 * r.ratio + 1e-3,
    `${r.name}: ratio ${r.ratio} vs ${r.value}/${r.reference.value}`);
  assert.equal(typeof r.detail?.['goalMet'], 'boolean', `${r.name}: says whether the goal is met`);
  // JSON round trip: only numbers, strings and booleans.
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
}

test('bench gateway (quick): direct and Wisp throughput beside their references, connection rate, heap per idle connection', { skip, timeout: 300_000 }, async (t: TestContext) => {
  const fractions: number[] = [];
  const lines: string[] = [];
  const ctx: BenchContext = { quick: true, progress: (f) => void fractions.push(f), log: (l) => void lines.push(l) };
  const before = new Set(listNetns());
  const results = await gatewayBenchmark.run(ctx);
  const sizes = gatewaySizes(true);
  const byName = new Map(results.map((r) => [r.name, r]));
  const wisp = !lines.some((l) => l.startsWith('gateway wisp: skipped'));
  assert.deepEqual(results.map((r) => r.name), [
    'gateway direct download', 'gateway direct upload',
    ...(wisp ? ['gateway wisp download', 'gateway wisp upload'] : []),
    'gateway relayed connections', 'gateway heap per idle relayed connection',
  ]);
  for (const name of ['gateway direct download', 'gateway direct upload', 'gateway wisp download', 'gateway wisp upload']) {
    const r = byName.get(name);
    if (r === undefined) continue;
    assertRatio(r, 'Gbit/s');
    assert.equal(r.detail!['bytes'], sizes.bytes);
    assert.equal(r.detail!['mtu'], 1500);
    t.diagnostic(`${r.name}: ${r.value} Gbit/s, ${r.reference!.name} ${r.reference!.value} (${r.ratio}×)`);
  }
  for (const name of ['gateway direct download', 'gateway direct upload']) assert.match(byName.get(name)!.reference!.name, /^kernel routed/);
  if (wisp) {
    for (const name of ['gateway wisp download', 'gateway wisp upload']) {
      const d = byName.get(name)!.detail!;
      assert.ok((d['wispUpstreamAloneGbps'] as number) > 0, JSON.stringify(d));
    }
  }
  const conns = byName.get('gateway relayed connections')!;
  assertRatio(conns, 'conn/s');
  assert.equal(conns.detail!['connections'], sizes.connections);
  assert.equal(conns.detail!['errors'], 0, 'every relayed connection echoed its byte and closed');
  assert.equal(conns.detail!['referenceErrors'], 0);
  t.diagnostic(`${conns.name}: ${conns.value}/s, kernel routed ${conns.reference!.value}/s (${conns.ratio}×)`);
  const idle = byName.get('gateway heap per idle relayed connection')!;
  assert.equal(idle.unit, 'bytes/conn');
  assert.equal(idle.detail!['held'], sizes.held, 'every connection held through the gateway');
  // Each held connection is a guest TCB, a socket and a relay: more than nothing, far less than 1 MiB.
  assert.ok(idle.value > 0 && idle.value < 1 << 20, `${idle.value} bytes/conn`);
  assert.equal(typeof idle.detail!['goalMet'], 'boolean');
  t.diagnostic(`${idle.name}: ${idle.value} bytes (rss ${idle.detail!['rssPerConn']}), ${idle.detail!['held']} held`);
  // Progress from 0 to 1, never backwards; a log line per figure.
  assert.equal(fractions[0], 0);
  assert.equal(fractions.at(-1), 1);
  assert.ok(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!)));
  assert.ok(lines.length >= results.length);
  // The namespaces it made are gone: none left in its books, and no new one runs its worker.
  assert.deepEqual(liveNetnsNames(), []);
  for (const n of listNetns().filter((x) => !before.has(x))) {
    const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8', timeout: 10_000 }).stdout.split('\n').filter((p) => p !== '');
    for (const pid of pids) {
      const cmd = spawnSync('ps', ['-o', 'args=', '-p', pid], { encoding: 'utf8', timeout: 10_000 }).stdout;
      assert.ok(!cmd.includes('gateway-worker.js'), `a worker still runs in ${n}: ${cmd}`);
    }
  }
});
