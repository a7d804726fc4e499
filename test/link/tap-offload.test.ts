/**
 * TapLink's offloads against the real kernel, laid out as `synack gateway --tap --netns` lays it
 * out: the synack host (test/link/fixtures/tap-host.js: a TapLink, the Stack's EthernetInterface on
 * it) runs in one namespace of the test's own, the device's kernel side lives in a second one, the
 * "guest", whose python3 is the kernel TCP peer. Receive (`offload: true`: IFF_VNET_HDR,
 * TUNSETOFFLOAD with TUN_F_CSUM|TSO4|TSO6): the kernel hands synack GSO super-frames — one Ethernet
 * header, up to 64 KiB of IP — with partial checksums counted from the start of the frame, the link
 * completes them and the interface takes the frames though they are longer than the MTU. Send
 * (`gso: true`): back-to-back segments of one connection leave as one super-frame the kernel takes
 * whole. 64 MiB each way, byte for byte, with and without offload (the figures are printed as
 * diagnostics). Needs root and python3; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { lastJson, python, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns, NsProcess } from '../support/netns.js';
import { repoRoot } from '../support/repo.js';
import { assertGsoBothWays, stopHost, type OffloadLinkStats } from '../support/tun.js';
import { ECHO_PY } from '../../src/bench/kernel-peers.js';

const HOST = join(repoRoot(), 'dist', 'test', 'link', 'fixtures', 'tap-host.js');
const NODE = process.execPath;
const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

const missing = tunTestsMissing([HOST]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (process.env['CI'] === 'true' && missing.length > 0) {
  test('TAP offload tests can run (required under CI)', () => {
    assert.fail(`TAP offload tests need ${missing.join(', ')}: under CI=true a skip is a failure`);
  });
}

/**
 * The guest's download: connects to host:port, reads to EOF checking every byte against the pattern
 * (stream byte k is k mod 256), prints the count, the first offset that differs (-1: none) and the rate.
 */
const DOWNLOAD_PY = `
import json, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
big = bytes(range(256)) * 260
s = socket.create_connection((host, port), timeout=60)
start = time.monotonic()
n = 0
bad = -1
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    if bad < 0 and b != big[n % 256:n % 256 + len(b)]:
        bad = n
    n += len(b)
secs = time.monotonic() - start
print(json.dumps({"received": n, "firstBadOffset": bad, "seconds": secs, "mbps": n * 8 / secs / 1e6}))
`;

/**
 * The guest's upload: SIZE bytes of the pattern to host:port (`sendall`, so that the stream stays
 * the pattern: SEND_PY's partial sends restart its chunk), half-close, wait for the peer's FIN.
 */
const UPLOAD_PY = `
import json, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(range(256)) * 1024
s = socket.create_connection((host, port), timeout=60)
start = time.monotonic()
left = n
while left > 0:
    k = min(left, len(chunk))
    s.sendall(memoryview(chunk)[:k])
    left -= k
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16):
    pass
secs = time.monotonic() - start
print(json.dumps({"bytes": n, "seconds": secs, "mbps": n * 8 / secs / 1e6}))
`;

interface LinkStats extends OffloadLinkStats {
  packetsOut: number;
  bytesOut: number;
  drops: number;
}

interface HostStats {
  link: LinkStats;
  counters: { internalErrors: number; drops: Record<string, number> };
}

interface Ready {
  offload: boolean;
  gso: boolean;
  offloadRefused: string | null;
}

/** The synack host in `gw`, the device's kernel side in `guest`; waits for it to listen. */
async function startHost(gw: Netns, guest: Netns, args: string[]): Promise<{ host: NsProcess; ready: Ready }> {
  const host = gw.start(NODE, [HOST, '--host', '--netns', guest.name, '--bytes', String(SIZE), ...args]);
  const line = await host.waitForLine(/^(ready|error) /, 15_000);
  assert.ok(line.startsWith('ready '), `host: ${line} ${host.stderr}`);
  return { host, ready: JSON.parse(line.slice('ready '.length)) as Ready };
}

function assertClean(stats: HostStats): void {
  assert.equal(stats.counters.internalErrors, 0);
  assert.equal(stats.counters.drops['tcp-bad-checksum'] ?? 0, 0, JSON.stringify(stats.counters.drops));
  assert.equal(stats.counters.drops['ipv4-bad-checksum'] ?? 0, 0, JSON.stringify(stats.counters.drops));
  assert.equal(stats.link.drops, 0, JSON.stringify(stats.link));
}

for (const [family, target] of [['IPv4', '10.9.0.2'], ['IPv6', 'fd09::2']] as const) {
  test(`TAP offload: 4 MiB to synack's echo port over ${family} comes back byte-identical, through GSO super-frames both ways`, { skip, timeout: 60_000 }, async () => {
    await withNetns(async (gw, guest) => {
      const { host, ready } = await startHost(gw, guest, ['--offload', '--gso']);
      assert.deepEqual(ready.offload && ready.gso, true, `this kernel grants TAP offload: ${JSON.stringify(ready)}`);
      const r = lastJson<{ sent: number; received: number; identical: boolean }>(
        await python(guest, ECHO_PY, [target, '7', String(4 * MiB)], 40_000),
      );
      assert.deepEqual(r, { sent: 4 * MiB, received: 4 * MiB, identical: true });
      const stats = await stopHost<HostStats>(host);
      // Frames longer than the 1514 bytes an MTU of 1500 allows.
      assertGsoBothWays(stats.link, 1514);
      assertClean(stats);
    }, 2);
  });
}

interface Run {
  mbps: number;
  link: LinkStats;
  ready: Ready;
}

/** Guest → synack: UPLOAD_PY writes SIZE bytes to port 9, where synack checks every one. */
function upload(args: string[]): Promise<Run> {
  return withNetns(async (gw, guest) => {
    const { host, ready } = await startHost(gw, guest, args);
    const r = lastJson<{ bytes: number; mbps: number }>(await python(guest, UPLOAD_PY, ['10.9.0.2', '9', String(SIZE)], 90_000));
    const line = await host.waitForLine(/^received /, 10_000);
    assert.deepEqual(JSON.parse(line.slice('received '.length)), { bytes: SIZE, firstBadOffset: -1 });
    const stats = await stopHost<HostStats>(host);
    assertClean(stats);
    return { mbps: r.mbps, link: stats.link, ready };
  }, 2);
}

/** synack → guest: the guest reads SIZE bytes from port 19 and checks every one. */
function download(args: string[]): Promise<Run> {
  return withNetns(async (gw, guest) => {
    const { host, ready } = await startHost(gw, guest, args);
    const r = lastJson<{ received: number; firstBadOffset: number; mbps: number }>(await python(guest, DOWNLOAD_PY, ['10.9.0.2', '19'], 90_000));
    assert.deepEqual({ received: r.received, firstBadOffset: r.firstBadOffset }, { received: SIZE, firstBadOffset: -1 });
    const stats = await stopHost<HostStats>(host);
    assertClean(stats);
    return { mbps: r.mbps, link: stats.link, ready };
  }, 2);
}

test('TAP offload: 64 MiB guest → synack arrives byte for byte in GSO super-frames, far fewer reads than without', { skip, timeout: 240_000 }, async (t: TestContext) => {
  const plain = await upload([]);
  const offloaded = await upload(['--offload']);
  t.diagnostic(`guest → synack 64 MiB over TAP at MTU 1500: plain ${plain.mbps.toFixed(0)} Mbit/s in ${plain.link.packetsIn} reads; ` +
    `offload ${offloaded.mbps.toFixed(0)} Mbit/s in ${offloaded.link.packetsIn} reads (${offloaded.link.gsoPacketsIn} GSO)`);
  assert.equal(plain.ready.offload, false);
  assert.equal(plain.link.gsoPacketsIn, 0);
  assert.equal(plain.link.checksumsCompleted, 0);
  assert.ok(plain.link.packetsIn >= SIZE / 1500, JSON.stringify(plain.link));
  assert.equal(offloaded.ready.offload, true);
  // `offload` alone: receive only, every write a single frame.
  assert.equal(offloaded.ready.gso, false);
  assert.equal(offloaded.link.gsoPacketsOut, 0);
  assert.ok(offloaded.link.gsoPacketsIn > 0);
  // 64 KiB super-frames: at least 10× fewer reads (about 45× when every one is full size).
  assert.ok(offloaded.link.packetsIn * 10 < plain.link.packetsIn, `${offloaded.link.packetsIn} vs ${plain.link.packetsIn}`);
});

test('TAP gso: 64 MiB synack → guest arrives byte for byte, in far fewer writes than without', { skip, timeout: 240_000 }, async (t: TestContext) => {
  const plain = await download([]);
  const gso = await download(['--offload', '--gso']);
  t.diagnostic(`synack → guest 64 MiB over TAP at MTU 1500: plain ${plain.mbps.toFixed(0)} Mbit/s in ${plain.link.packetsOut} writes; ` +
    `gso ${gso.mbps.toFixed(0)} Mbit/s in ${gso.link.packetsOut} writes (${gso.link.gsoPacketsOut} super-frames carrying ${gso.link.gsoSegmentsOut} segments)`);
  assert.equal(plain.link.gsoPacketsOut, 0);
  assert.ok(plain.link.packetsOut >= SIZE / 1500);
  assert.equal(gso.ready.gso, true);
  assert.ok(gso.link.gsoPacketsOut > 0);
  assert.ok(gso.link.packetsOut * 5 < plain.link.packetsOut, `${gso.link.packetsOut} vs ${plain.link.packetsOut} writes`);
});
