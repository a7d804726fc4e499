/**
 * IP fragments (RFC 791 §3.2, RFC 8200 §4.5): reassembly in any order, duplicates, overlaps
 * (RFC 5722), timeouts with ICMP Time Exceeded, memory bounds; fragmentation of UDP on send, never
 * of TCP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reassembler, fragmentV4, fragmentV6, REASSEMBLY_PER_SOURCE_BYTES } from '../../src/net/fragments.js';
import { VirtualClock } from '../../src/link/clock.js';
import { StackCore } from '../../src/stack/core.js';
import { parseIcmpv4, parseIcmpv6, writeIcmpEcho } from '../../src/wire/icmp.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { PROTO_ICMPV6 } from '../../src/wire/ip.js';
import { SYN, RST, ACK } from '../../src/wire/tcp.js';
import { fixIpv4Checksum, harness, ipPacket, tcpPacket } from '../stack/raw.js';
import { collect, ip, pair, str, text, udpPacket } from './support.js';

const payload = (n: number, seed = 0): Uint8Array => new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);

/** A datagram of `n` bytes from `src` to port 7 of the harness stack, cut for `mtu`, with IPv4 id / IPv6 id `id`. */
function fragments(src: string, dst: string, n: number, mtu: number, id: number, seed = 0): Uint8Array[] {
  const p = udpPacket(src, dst, 1000, 7, payload(n, seed));
  if (p[0]! >>> 4 === 4) {
    p[4] = id >>> 8;
    p[5] = id & 0xff;
    return fragmentV4(p, mtu);
  }
  return fragmentV6(p, mtu, id);
}

test('IPv4 and IPv6 fragments reassemble in any order into the datagram; a fragmented TCP SYN is answered too', () => {
  for (const [src, dst] of [['10.0.0.2', '10.0.0.1'], ['fd00::2', 'fd00::1']] as const) {
    const h = harness();
    const got = collect(h.stack.udpBind({ port: 7, family: src.includes(':') ? 6 : 4 }));
    const f = fragments(src, dst, 3000, 576, 77);
    assert.ok(f.length >= 6);
    h.inject(...[...f].reverse());
    assert.equal(got.length, 1);
    assert.equal(got[0]!.data, str(payload(3000)));
    assert.equal(h.stack.counters.fragmentsIn, f.length);
    assert.equal(h.stack.counters.reassembled, 1);
    assert.deepEqual(h.stack.counters.drops, {});
  }
  const h = harness();
  const syn = tcpPacket('10.0.0.2', '10.0.0.1', { flags: SYN, seq: 1000, dstPort: 9, payload: 'x'.repeat(100) });
  syn[6] = 0;
  h.inject(...fragmentV4(syn, 68));
  const r = h.takeTcp();
  assert.equal(r.length, 1);
  assert.equal(r[0]!.seg.flags, RST | ACK);
});

test('an exact duplicate is dropped alone; the datagram still completes (RFC 8200 §4.5)', () => {
  const h = harness();
  const got = collect(h.stack.udpBind({ port: 7 }));
  const f = fragments('10.0.0.2', '10.0.0.1', 2000, 576, 5);
  h.inject(f[0]!, f[1]!, f[1]!.slice(), ...f.slice(2));
  assert.equal(got.length, 1);
  assert.deepEqual(h.stack.counters.drops, { 'ip-fragment-duplicate': 1 });
});

test('overlapping fragments discard the whole datagram, and its later fragments, until the timeout (RFC 5722)', () => {
  const h = harness();
  const got = collect(h.stack.udpBind({ port: 7 }));
  const f = fragments('10.0.0.2', '10.0.0.1', 2000, 576, 9);
  // A forged fragment overlapping the second one at an offset of 8 bytes.
  const forged = f[1]!.slice();
  const word = ((forged[6]! << 8) | forged[7]!) + 1;
  forged[6] = word >>> 8;
  forged[7] = word & 0xff;
  fixIpv4Checksum(forged);
  h.inject(f[0]!, f[1]!, forged, ...f.slice(2));
  assert.equal(got.length, 0);
  assert.equal(h.stack.counters.reassemblyOverlaps, 1);
  assert.deepEqual(h.stack.counters.drops, { 'ip-fragment-overlap': 1 + f.length - 2 });
  // After the timeout the identification may be used again.
  h.clock.advanceSync(30_001);
  h.inject(...f);
  assert.equal(got.length, 1);
});

test('IPv4 reassembly times out after 30 s with ICMP Time Exceeded code 1 when the first fragment came; silently without it', () => {
  const h = harness();
  h.stack.udpBind({ port: 7 });
  const f = fragments('10.0.0.2', '10.0.0.1', 2000, 576, 1);
  h.inject(f[0]!, f[2]!);
  h.clock.advanceSync(29_000);
  assert.equal(h.take().length, 0);
  h.clock.advanceSync(1_001);
  const out = h.take();
  assert.equal(out.length, 1);
  const r = ip(out[0]!);
  const m = parseIcmpv4(out[0]!.subarray(r.payloadOffset));
  assert.ok(typeof m !== 'string' && m.kind === 'error');
  assert.deepEqual([m.type, m.code], [11, 1]);
  assert.equal(m.original?.dstPort, 7, 'quotes the first fragment, ports included');
  assert.equal(h.stack.counters.reassemblyTimeouts, 1);
  assert.equal(h.stack.counters.drops['ip-reassembly-timeout'], 1);
  // Without the first fragment: no message (RFC 792: the sender could not tell which datagram).
  const g = fragments('10.0.0.2', '10.0.0.1', 2000, 576, 2);
  h.inject(g[1]!, g[2]!);
  h.clock.advanceSync(31_000);
  assert.equal(h.take().length, 0);
  assert.equal(h.stack.counters.reassemblyTimeouts, 2);
});

test('IPv6 reassembly waits 60 s (RFC 8200 §4.5), then ICMPv6 Time Exceeded code 1', () => {
  const h = harness();
  const f = fragments('fd00::2', 'fd00::1', 2000, 576, 0x12345678);
  h.inject(f[0]!);
  h.clock.advanceSync(45_000);
  assert.equal(h.take().length, 0);
  h.clock.advanceSync(15_001);
  const out = h.take();
  assert.equal(out.length, 1);
  const r = ip(out[0]!);
  const body = out[0]!.subarray(r.payloadOffset);
  const m = parseIcmpv6(body, pseudoHeaderSum(r.src, r.dst, PROTO_ICMPV6, body.length));
  assert.ok(typeof m !== 'string' && m.kind === 'error');
  assert.deepEqual([m.type, m.code], [3, 1]);
});

test('bad fragments: a non-last one not a multiple of 8 bytes, one past 65535 bytes; fragments not for us', () => {
  const h = harness();
  const f = fragments('10.0.0.2', '10.0.0.1', 2000, 576, 3);
  const odd = f[0]!.slice(0, f[0]!.length - 3);
  odd[2] = odd.length >>> 8;
  odd[3] = odd.length & 0xff;
  fixIpv4Checksum(odd);
  h.inject(odd);
  const far = f[1]!.slice();
  far[6] = 0x1f;
  far[7] = 0xff; // offset 65528
  fixIpv4Checksum(far);
  h.inject(far);
  h.inject(...fragments('10.0.0.2', '10.0.0.9', 2000, 576, 4).slice(0, 1));
  assert.deepEqual(h.stack.counters.drops, { 'ip-fragment-bad': 2, 'ip-not-for-us': 1 });
});

test('memory is bounded per source (256 KiB): the oldest incomplete datagrams of that source go, other sources keep theirs', () => {
  const h = harness();
  const got = collect(h.stack.udpBind({ port: 7 }));
  // Another source's datagram, incomplete, held first.
  const other = fragments('10.0.0.3', '10.0.0.1', 2000, 576, 1);
  h.inject(...other.slice(1));
  // One source floods first fragments of 1480 bytes: ~1564 bytes charged each.
  const n = Math.ceil((REASSEMBLY_PER_SOURCE_BYTES * 1.5) / 1564);
  for (let id = 0; id < n; id++) h.inject(fragments('10.0.0.2', '10.0.0.1', 3000, 1500, id)[0]!);
  assert.ok(h.stack.counters.reassemblyEvictions >= n / 3 - 2, String(h.stack.counters.reassemblyEvictions));
  // The newest of the flood are still held: completing one works.
  const last = fragments('10.0.0.2', '10.0.0.1', 3000, 1500, n - 1);
  h.inject(...last.slice(1));
  // And the other source was not evicted.
  h.inject(other[0]!);
  assert.equal(got.length, 2);
});

test('memory is bounded in total (4 MiB) across sources', () => {
  const h = harness({ addresses: ['10.0.0.1/8'] });
  for (let s = 0; s < 24; s++) {
    for (let id = 0; id < 150; id++) h.inject(fragments(`10.1.${s}.1`, '10.0.0.1', 3000, 1500, id)[0]!);
  }
  const held = 24 * 150 - h.stack.counters.reassemblyEvictions;
  assert.ok(held * 1564 <= 4 * 1024 * 1024, `${held} datagrams held`);
  assert.ok(h.stack.counters.reassemblyEvictions > 0);
});

test('on send: UDP larger than the MTU is fragmented (IPv4 DF clear, IPv6 Fragment header); TCP never is and keeps DF', () => {
  const { a, b, step, wireAB } = pair({ mtu: 1280 });
  const got4 = collect(b.udpBind({ port: 7 }));
  const got6 = collect(b.udpBind({ port: 7, family: 6 }));
  a.udpBind().send(payload(5000), '10.0.0.2', 7);
  a.udpBind({ family: 6 }).send(payload(5000), 'fd00::2', 7);
  step();
  assert.equal(got4.length, 1);
  assert.equal(got6.length, 1);
  const v4 = wireAB.filter((p) => p[0]! >>> 4 === 4);
  const v6 = wireAB.filter((p) => p[0]! >>> 4 === 6);
  assert.ok(v4.length >= 4 && v4.every((p) => p.length <= 1280 && (p[6]! & 0x40) === 0));
  assert.ok(v4.slice(0, -1).every((p) => (p[6]! & 0x20) !== 0) && (v4[v4.length - 1]![6]! & 0x20) === 0);
  assert.ok(v6.length >= 4 && v6.every((p) => p.length <= 1280 && p[6] === 44));
  assert.equal(a.counters.fragmentsOut, v4.length + v6.length);
  // A small datagram is one packet, DF clear.
  wireAB.length = 0;
  a.udpBind().send(text('small'), '10.0.0.2', 7);
  step();
  assert.equal(wireAB.length, 1);
  assert.equal(wireAB[0]![6]! & 0x60, 0);
  // TCP: segments sized to the MTU, DF on every one.
  wireAB.length = 0;
  const l = b.tcpListen({ port: 80 });
  l.onConnection = (c) => {
    c.events = { onReadable: () => void c.read() };
  };
  const c = a.tcpConnect({ host: '10.0.0.2', port: 80 });
  c.events = { onEstablished: () => c.write(payload(20000)) };
  step(200);
  const tcp = wireAB.filter((p) => p[9] === 6);
  assert.ok(tcp.length > 10);
  assert.ok(tcp.every((p) => p.length <= 1280 && (p[6]! & 0x40) !== 0 && (p[6]! & 0x3f) === 0 && p[7] === 0));
});

test('a fragmented echo request (ping -s 3000) is answered with a fragmented echo reply that fits the link', () => {
  const h = harness({ mtu: 1500 });
  const data = payload(3000);
  const body = new Uint8Array(8 + data.length);
  writeIcmpEcho(body, 0, 4, false, 7, 1, data, 0);
  const req = ipPacket('10.0.0.2', '10.0.0.1', 1, body);
  req[6] = 0;
  h.inject(...fragmentV4(req, 1500));
  const out = h.take();
  assert.ok(out.length >= 3 && out.every((p) => p.length <= 1500), out.map((p) => p.length).join(' '));
  // Reassembled on the test's side, the reply carries the request's data.
  const re = new Reassembler({ core: new StackCore(new VirtualClock(), 'peer'), timeExceeded: () => undefined });
  let whole: Uint8Array | null = null;
  for (const p of out) whole = re.inputV4(p) ?? whole;
  assert.ok(whole !== null);
  const m = parseIcmpv4(whole.subarray(20));
  assert.ok(typeof m !== 'string' && m.kind === 'echo-reply');
  assert.equal(str(m.data), str(data));
});
