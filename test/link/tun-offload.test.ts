/**
 * TunLink's offloads against the real kernel, inside a namespace of the test's own. Receive
 * (`offload: true`: IFF_VNET_HDR, TUNSETOFFLOAD with TUN_F_CSUM|TSO4|TSO6): the kernel hands synack
 * 64 KiB GSO super-packets with partial checksums, the link completes the checksums, and the stack
 * takes them as they are. Send (`gso: true`): back-to-back segments of one connection cross as one
 * super-packet the kernel takes whole. Runs test/link/fixtures/tun-host.js with --offload [--gso].
 * Needs root; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lastJson, python, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns, NsProcess } from '../support/netns.js';
import { TUN_HOST as HOST, assertGsoBothWays, sendToKernel, stopHost, type OffloadLinkStats } from '../support/tun.js';
import { ECHO_PY, SEND_PY } from '../../src/bench/kernel-peers.js';

const NODE = process.execPath;
const MiB = 1024 * 1024;

const missing = tunTestsMissing([HOST]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (process.env['CI'] === 'true' && missing.length > 0) {
  test('TUN offload tests can run (required under CI)', () => {
    assert.fail(`TUN offload tests need ${missing.join(', ')}: under CI=true a skip is a failure`);
  });
}

interface LinkStats extends OffloadLinkStats {
  packetsOut: number;
  drops: number;
}

interface HostStats {
  link: LinkStats;
  counters: { internalErrors: number; tcpIn: number; drops: Record<string, number> };
}

async function startHost(ns: Netns, args: string[] = []): Promise<{ host: NsProcess; offload: boolean }> {
  const host = ns.start(NODE, [HOST, '--host', '--offload', '--gso', ...args]);
  const ready = await host.waitForLine(/^ready /, 15_000);
  return { host, offload: (JSON.parse(ready.slice('ready '.length)) as { offload: boolean }).offload };
}


for (const [family, target] of [['IPv4', '10.9.0.2'], ['IPv6', 'fd09::2']] as const) {
  test(`TUN offload: 4 MiB to synack's echo port over ${family} comes back byte-identical, through GSO super-packets both ways`, { skip, timeout: 60_000 }, async () => {
    await withNetns(async (ns) => {
      const { host, offload } = await startHost(ns);
      assert.equal(offload, true, 'this kernel grants TUN_F_CSUM|TSO4|TSO6');
      const r = lastJson<{ sent: number; received: number; identical: boolean }>(
        await python(ns, ECHO_PY, [target, '7', String(4 * MiB)], 40_000),
      );
      assert.deepEqual(r, { sent: 4 * MiB, received: 4 * MiB, identical: true });
      const stats = await stopHost<HostStats>(host);
      // Segments larger than the 1500-byte MTU; had a completed checksum been wrong, the echo would
      // not be identical — and the bad-checksum counter says so directly.
      assertGsoBothWays(stats.link, 1500);
      assert.equal(stats.counters.drops['tcp-bad-checksum'] ?? 0, 0, JSON.stringify(stats.counters.drops));
      assert.equal(stats.counters.drops['ipv4-bad-checksum'] ?? 0, 0, JSON.stringify(stats.counters.drops));
      assert.equal(stats.counters.internalErrors, 0);
      assert.equal(stats.link.drops, 0);
    });
  });
}

test('TUN offload: 64 MiB kernel → synack takes far fewer reads than without, same bytes', { skip, timeout: 120_000 }, async (t: TestContext) => {
  const size = 64 * MiB;
  const run = (offload: boolean): Promise<{ mbps: number; link: LinkStats }> => withNetns(async (ns) => {
    const host = ns.start(NODE, [HOST, '--host', ...(offload ? ['--offload'] : [])]);
    await host.waitForLine(/^ready /, 15_000);
    const r = lastJson<{ bytes: number; mbps: number }>(await python(ns, SEND_PY, ['10.9.0.2', '9', String(size)], 60_000));
    await host.waitForLine(new RegExp(`^discarded ${size}$`), 5000);
    const stats = await stopHost<HostStats>(host);
    assert.equal(stats.counters.internalErrors, 0);
    return { mbps: r.mbps, link: stats.link };
  });
  const plain = await run(false);
  const offloaded = await run(true);
  t.diagnostic(`kernel → synack 64 MiB at MTU 1500: plain ${plain.mbps.toFixed(0)} Mbit/s in ${plain.link.packetsIn} reads; ` +
    `offload ${offloaded.mbps.toFixed(0)} Mbit/s in ${offloaded.link.packetsIn} reads (${offloaded.link.gsoPacketsIn} GSO)`);
  assert.equal(plain.link.gsoPacketsIn, 0);
  assert.equal(plain.link.checksumsCompleted, 0);
  assert.ok(plain.link.packetsIn >= size / 1500, JSON.stringify(plain.link));
  // 64 KiB super-packets: at least 10× fewer reads (about 45× when every one is full size).
  assert.ok(offloaded.link.packetsIn * 10 < plain.link.packetsIn, `${offloaded.link.packetsIn} vs ${plain.link.packetsIn}`);
  assert.ok(offloaded.link.gsoPacketsIn > 0);
});

test('TUN gso: 64 MiB synack → kernel arrives in order, byte for byte, in far fewer writes than without', { skip, timeout: 120_000 }, async (t: TestContext) => {
  const size = 64 * MiB;
  const run = (gso: boolean): Promise<{ mbps: number; link: LinkStats }> => withNetns(async (ns) => {
    // SINK_PY's `check`: every byte against the pattern the fixture writes (a segment joined out of
    // order, or a payload cut wrong, shows up there; the kernel trusts a super-packet's partial checksum).
    const { sent, sink } = await sendToKernel<{ mbps: number; link: LinkStats }, { received: number; firstBadOffset: number }>(
      ns, gso ? ['--offload', '--gso'] : [], size, 60_000, ['check'],
    );
    assert.deepEqual({ received: sink.received, firstBadOffset: sink.firstBadOffset }, { received: size, firstBadOffset: -1 });
    return sent;
  });
  const plain = await run(false);
  const gso = await run(true);
  t.diagnostic(`synack → kernel 64 MiB at MTU 1500: plain ${plain.mbps.toFixed(0)} Mbit/s in ${plain.link.packetsOut} writes; ` +
    `gso ${gso.mbps.toFixed(0)} Mbit/s in ${gso.link.packetsOut} writes (${gso.link.gsoPacketsOut} super-packets carrying ${gso.link.gsoSegmentsOut} segments)`);
  assert.equal(plain.link.gsoPacketsOut, 0);
  assert.ok(plain.link.packetsOut >= size / 1500);
  assert.ok(gso.link.gsoPacketsOut > 0);
  assert.ok(gso.link.packetsOut * 5 < plain.link.packetsOut, `${gso.link.packetsOut} vs ${plain.link.packetsOut} writes`);
  assert.equal(gso.link.drops, 0);
});
