/**
 * UDP against the Linux kernel (issue 14): a Stack on a TAP device whose kernel side lives in a
 * namespace the test makes runs a UDP echo server on port 7 (IPv4 and IPv6, `stack.udpBind`); a
 * python3 socket in that namespace sends 10,000 datagrams per family of sizes spread over 1..65,507
 * (the edges 1, 1452, 1453, 1472, 1473 and 65,507 included: the largest unfragmented IPv6 and IPv4
 * payloads on a 1,500-byte link and one byte more), each with a pattern of its own, and checks every
 * byte of every echo. Large datagrams are fragmented both ways: the kernel fragments what it sends
 * and synack reassembles (RFC 791 §3.2, RFC 8200 §4.5); synack fragments its echo and the kernel
 * reassembles. Lock-step: one datagram in flight, a per-datagram timeout and a bounded number of
 * retransmissions (counted), so a lost fragment costs a retry, not the test. The echo rate is
 * reported as a diagnostic, never asserted. Needs root and python3; skipped otherwise (a failure
 * under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RealClock } from '../../src/link/clock.js';
import { TapLink } from '../../src/link/tap.js';
import { Stack } from '../../src/stack/stack.js';
import { python, tunTestsMissing, withNetns } from '../support/netns.js';

const missing = tunTestsMissing([]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (process.env['CI'] === 'true' && missing.length > 0) {
  test('kernel UDP tests can run (required under CI)', () => {
    assert.fail(`they need ${missing.join(', ')}: under CI=true a skip is a failure`);
  });
}

const COUNT = 10_000;
const MAX_RETRIES = 5;

/** What the kernel-side peer reports. */
interface EchoResult {
  count: number;
  bytes: number;
  seconds: number;
  retries: number;
  stale: number;
  maxSize: number;
  fragmented: number;
  failures: string[];
}

/**
 * The kernel-side peer: argv = family, synack's address, count, max retries. A warm-up datagram
 * first (ARP/NDP, and synack's DAD of its IPv6 address, RFC 4862 §5.4, may still be running), then
 * the timed loop. Datagram i carries its index (4 bytes, big-endian) then bytes (i + k) mod 256, so
 * an echo of an earlier datagram (a late answer to a retransmission) is told apart from a corrupt one.
 */
const PEER = String.raw`
import json, socket, struct, sys, time
fam, addr, count, max_retries = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET if fam == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.connect((addr, 7))
# Warm-up: up to 20 s for the first echo.
s.settimeout(0.5)
deadline = time.time() + 20
while True:
    s.send(b'warm-up')
    try:
        if s.recv(100) == b'warm-up': break
    except socket.timeout:
        pass
    if time.time() > deadline: raise SystemExit('no echo of the warm-up datagram in 20 s')
edges = [1, 1452, 1453, 1472, 1473, 65507]
sizes = edges + [1 + (i * 7919) % 65507 for i in range(count - len(edges))]
base = bytes(range(256)) * 258
frag_at = 1472 if fam == 4 else 1452
res = dict(count=0, bytes=0, seconds=0.0, retries=0, stale=0, maxSize=max(sizes),
           fragmented=sum(1 for n in sizes if n > frag_at), failures=[])
s.settimeout(1.0)
t0 = time.perf_counter()
for i, n in enumerate(sizes):
    o = i & 0xff
    msg = (struct.pack('>I', i) + base[o:o + n - 4]) if n >= 4 else base[o:o + n]
    tries = 0
    s.send(msg)
    while True:
        try:
            got = s.recv(70000)
        except socket.timeout:
            tries += 1
            if tries > max_retries: break
            res['retries'] += 1
            s.send(msg)
            continue
        if got == msg: break
        # An earlier datagram's echo (a retransmission answered twice) is skipped; anything else is corrupt.
        if res['retries'] > 0 and (len(got) < 4 or struct.unpack('>I', got[:4])[0] < i):
            res['stale'] += 1
            continue
        diff = next((k for k in range(min(len(got), n)) if got[k] != msg[k]), min(len(got), n))
        res['failures'].append('datagram %d (%d bytes): echo of %d bytes differs at byte %d' % (i, n, len(got), diff))
        break
    if tries > max_retries:
        res['failures'].append('datagram %d (%d bytes): no echo after %d retransmissions' % (i, n, max_retries))
    else:
        res['count'] += 1
        res['bytes'] += n
    if len(res['failures']) >= 10: break
res['seconds'] = time.perf_counter() - t0
print(json.dumps(res))
`;

test(`UDP echo with the kernel: ${COUNT} datagrams of 1..65,507 bytes each over IPv4 and IPv6, fragmented both ways, every byte checked`,
  { skip, timeout: 120_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      const name = `sudp${randomBytes(3).toString('hex')}`;
      const link = TapLink.open({ name, netns: ns.name, kernelAddresses: ['10.0.2.15/24', 'fd00:0:2::15/64'] });
      const stack = new Stack({ link, clock: new RealClock(), addresses: ['10.0.2.2/24', 'fd00:0:2::2/64'] });
      try {
        for (const family of [4, 6] as const) {
          const sock = stack.udpBind({ port: 7, family });
          // The echo server: the datagram back to where it came from (onMessage's data is ours).
          sock.onMessage = (data, remote) => sock.send(data, remote.address, remote.port);
        }
        for (const family of [4, 6] as const) {
          const before = { ...stack.counters };
          const addr = family === 4 ? '10.0.2.2' : 'fd00:0:2::2';
          const out = await python(ns, PEER, [String(family), addr, String(COUNT), String(MAX_RETRIES)], 100_000);
          const r = JSON.parse(out.trim().split('\n').pop()!) as EchoResult;
          const c = stack.counters;
          const fragsIn = c.fragmentsIn - before.fragmentsIn;
          const reassembled = c.reassembled - before.reassembled;
          const fragsOut = c.fragmentsOut - before.fragmentsOut;
          t.diagnostic(`IPv${family}: ${r.count} datagrams (${r.fragmented} fragmented), ${(r.bytes / 1e6).toFixed(1)} MB each way in ${r.seconds.toFixed(2)} s: `
            + `${Math.round(r.count / r.seconds)} datagrams/s, ${(r.bytes / 1e6 / r.seconds).toFixed(1)} MB/s echoed; `
            + `${r.retries} retransmissions, ${r.stale} stale echoes; synack: ${fragsIn} fragments in, ${reassembled} reassembled, ${fragsOut} fragments out`);
          assert.deepEqual(r.failures, [], `IPv${family}`);
          assert.equal(r.count, COUNT);
          assert.equal(r.maxSize, 65507);
          // Every datagram larger than the link takes reassembly on the way in and fragmentation on the
          // way out (a retransmission may add more).
          assert.ok(reassembled >= r.fragmented, `IPv${family}: ${reassembled} reassembled, ${r.fragmented} fragmented datagrams sent`);
          assert.ok(fragsIn > reassembled && fragsOut > r.fragmented, `IPv${family}: ${fragsIn} in, ${fragsOut} out`);
          assert.equal(c.internalErrors, 0);
        }
      } finally {
        stack.interface?.close();
        link.close();
      }
    });
  });
