/**
 * Property tests (fast-check) for the LAN codecs: Ethernet II with 802.1Q, ARP (RFC 826) and IPv6
 * Neighbor Discovery (RFC 4861, RDNSS RFC 8106). As test/fuzz/codecs.property.test.ts does for the
 * IP codecs:
 *  - round trips: parse(emit(x)) gives x back for arbitrary well-formed x, checksums verify;
 *  - totality: every parser returns a value or a known drop reason for any bytes, truncations and
 *    bit flips of valid messages included; an NDP bit flip is caught by the checksum or still parses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Arbitrary, IProperty } from 'fast-check';
import { ARP_LENGTH, parseArp, writeArp } from '../../src/wire/arp.js';
import { pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import {
  formatMac, ipv4MulticastMac, ipv6MulticastMac, isMulticastMac, linkLocalFromMac, parseEthernet, parseMac,
  writeEthernetHeader, type VlanTag,
} from '../../src/wire/ethernet.js';
import { ndpLength, parseNdp, writeNdp, type NdpMessage, type NdpOption } from '../../src/wire/ndp.js';
import { DROP_REASONS, ipv4Bytes, ipv6Bytes, u16, u32, u8 } from './gen.js';

function run<Ts>(p: IProperty<Ts>, numRuns: number): void {
  fc.assert(p, { numRuns });
}

function isReason(x: unknown): boolean {
  return typeof x === 'string' && DROP_REASONS.has(x);
}

const bytes = (b: Uint8Array): number[] => Array.from(b);
const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 });
const etherTypeArb = fc.integer({ min: 0x0600, max: 0xffff }).filter((t) => t !== 0x8100);
const vlanArb: Arbitrary<VlanTag | null> = fc.option(
  fc.record({ pcp: fc.integer({ min: 0, max: 7 }), dei: fc.boolean(), vid: fc.integer({ min: 0, max: 4095 }) }),
);

// ============================================================================= Ethernet

test('Ethernet: parse(writeEthernetHeader(x)) gives x back, with and without a VLAN tag', () => {
  run(fc.property(macArb, macArb, etherTypeArb, vlanArb, fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 5 }),
    (dst, src, etherType, vlan, payload, at) => {
      const buf = new Uint8Array(at + 18 + payload.length);
      const n = writeEthernetHeader(buf, at, dst, src, etherType, vlan);
      assert.equal(n, vlan ? 18 : 14);
      buf.set(payload, at + n);
      const h = parseEthernet(buf.subarray(at, at + n + payload.length));
      if (typeof h === 'string') assert.fail(h);
      assert.deepEqual(
        { dst: bytes(h.dst), src: bytes(h.src), etherType: h.etherType, vlan: plain(h.vlan), off: h.payloadOffset },
        { dst: bytes(dst), src: bytes(src), etherType, vlan: plain(vlan), off: n },
      );
    }), 300);
});

test('Ethernet: any bytes parse to a header or a known reason', () => {
  run(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
    const h = parseEthernet(b);
    if (typeof h === 'string') assert.ok(isReason(h), h);
    else assert.ok(h.payloadOffset <= b.length && h.etherType >= 0x0600);
  }), 1000);
});

test('MAC text: parseMac(formatMac(m)) = m; multicast maps set the group bit', () => {
  run(fc.property(macArb, ipv4Bytes(), ipv6Bytes(), (m, v4, v6) => {
    assert.deepEqual(bytes(parseMac(formatMac(m))!), bytes(m));
    assert.ok(isMulticastMac(ipv4MulticastMac(v4)));
    assert.ok(isMulticastMac(ipv6MulticastMac(v6)));
    // RFC 4291 App. A: the interface identifier gives the MAC back (bit 1 inverted, ff:fe dropped).
    const ll = linkLocalFromMac(m);
    assert.deepEqual([ll[8]! ^ 2, ll[9], ll[10], ll[13], ll[14], ll[15]], bytes(m));
  }), 300);
});

// ================================================================================== ARP

test('ARP: parse(writeArp(x)) gives x back; truncations are arp-truncated', () => {
  run(fc.property(fc.constantFrom(1 as const, 2 as const), macArb, ipv4Bytes(), macArb, ipv4Bytes(), fc.integer({ min: 0, max: 27 }),
    (op, sha, spa, tha, tpa, cut) => {
      const b = new Uint8Array(ARP_LENGTH);
      assert.equal(writeArp(b, 0, op, sha, spa, tha, tpa), ARP_LENGTH);
      const p = parseArp(b);
      if (typeof p === 'string') assert.fail(p);
      assert.deepEqual(
        [p.op, bytes(p.senderMac), bytes(p.senderIp), bytes(p.targetMac), bytes(p.targetIp)],
        [op, bytes(sha), bytes(spa), bytes(tha), bytes(tpa)],
      );
      assert.equal(parseArp(b.subarray(0, cut)), 'arp-truncated');
    }), 300);
});

test('ARP: any bytes, and any bit flip of a valid packet, parse or give a known reason', () => {
  run(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
    const p = parseArp(b);
    if (typeof p === 'string') assert.ok(isReason(p), p);
  }), 1000);
  run(fc.property(macArb, ipv4Bytes(), fc.integer({ min: 0, max: ARP_LENGTH * 8 - 1 }), (sha, spa, bit) => {
    const b = new Uint8Array(ARP_LENGTH);
    writeArp(b, 0, 1, sha, spa, new Uint8Array(6), new Uint8Array(4));
    b[bit >>> 3] ^= 0x80 >>> (bit & 7);
    const p = parseArp(b);
    // Flips in the fixed header (hrd, pro, hln, pln, op) are refused; elsewhere they change addresses.
    if (bit < 64) assert.ok(typeof p === 'string' && isReason(p), `bit ${bit}`);
    else assert.equal(typeof p, 'object');
  }), 500);
});

// ================================================================================== NDP

/** Bytes whose length makes 2 + length a multiple of 8: what an option body round-trips as. */
const optionBody = (extra = 2): Arbitrary<Uint8Array> =>
  fc.integer({ min: 1, max: 4 }).chain((units) => fc.uint8Array({ minLength: 8 * units - extra, maxLength: 8 * units - extra }));

const optionArb: Arbitrary<NdpOption> = fc.oneof(
  fc.record({ kind: fc.constant('source-link-layer' as const), address: fc.oneof(macArb, optionBody()) }),
  fc.record({ kind: fc.constant('target-link-layer' as const), address: fc.oneof(macArb, optionBody()) }),
  fc.record({
    kind: fc.constant('prefix' as const), prefixLength: fc.integer({ min: 0, max: 128 }), onLink: fc.boolean(),
    autonomous: fc.boolean(), validLifetime: u32, preferredLifetime: u32, prefix: ipv6Bytes(),
  }),
  fc.record({ kind: fc.constant('redirected-header' as const), data: optionBody(8).filter((d) => d.length > 0) }),
  fc.record({ kind: fc.constant('mtu' as const), mtu: u32 }),
  fc.record({ kind: fc.constant('rdnss' as const), lifetime: u32, servers: fc.array(ipv6Bytes(), { minLength: 1, maxLength: 4 }) }),
  fc.record({
    kind: fc.constant('unknown' as const),
    type: u8.filter((t) => ![1, 2, 3, 4, 5, 25].includes(t)),
    data: optionBody(),
  }),
);

const optionsArb = fc.array(optionArb, { maxLength: 5 });

const ndpArb: Arbitrary<NdpMessage> = fc.oneof(
  fc.record({ type: fc.constant('router-solicitation' as const), options: optionsArb }),
  fc.record({
    type: fc.constant('router-advertisement' as const), curHopLimit: u8, managed: fc.boolean(), other: fc.boolean(),
    routerLifetime: u16, reachableTime: u32, retransTimer: u32, options: optionsArb,
  }),
  fc.record({ type: fc.constant('neighbor-solicitation' as const), target: ipv6Bytes(), options: optionsArb }),
  fc.record({
    type: fc.constant('neighbor-advertisement' as const), router: fc.boolean(), solicited: fc.boolean(),
    override: fc.boolean(), target: ipv6Bytes(), options: optionsArb,
  }),
  fc.record({ type: fc.constant('redirect' as const), target: ipv6Bytes(), destination: ipv6Bytes(), options: optionsArb }),
);

/** Uint8Arrays compared by content, whatever buffer they view. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return Array.from(x);
  if (Array.isArray(x)) return x.map(plain);
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

test('NDP: parse(writeNdp(x)) gives x back and the checksum covers the pseudo-header', () => {
  run(fc.property(ndpArb, ipv6Bytes(), ipv6Bytes(), fc.integer({ min: 0, max: 7 }), (m, src, dst, at) => {
    const len = ndpLength(m);
    const buf = new Uint8Array(at + len);
    assert.equal(writeNdp(buf, at, m, src, dst), len);
    const b = buf.subarray(at);
    assert.equal(sum16(b, 0, len, pseudoHeaderSum(src, dst, 58, len)), 0xffff);
    const p = parseNdp(b, pseudoHeaderSum(src, dst, 58, len));
    if (typeof p === 'string') assert.fail(p);
    assert.deepEqual(plain(p), plain(m));
  }), 500);
});

test('NDP: any bytes parse to a message or a known reason', () => {
  run(fc.property(fc.uint8Array({ maxLength: 120 }), u16, fc.constantFrom(133, 134, 135, 136, 137), fc.boolean(), (b, sum, type, typed) => {
    if (typed && b.length > 0) b[0] = type;
    const p = parseNdp(b, sum);
    if (typeof p === 'string') assert.ok(isReason(p), p);
  }), 2000);
});

test('NDP: truncations and bit flips of valid messages never throw; flips are caught or still parse', () => {
  run(fc.property(ndpArb, ipv6Bytes(), ipv6Bytes(), fc.nat(), fc.nat(), (m, src, dst, cutSeed, bitSeed) => {
    const len = ndpLength(m);
    const b = new Uint8Array(len);
    writeNdp(b, 0, m, src, dst);
    const cut = cutSeed % len;
    // A truncated message fails its checksum, its fixed length or its options; never an exception.
    const t = parseNdp(b.subarray(0, cut), pseudoHeaderSum(src, dst, 58, cut));
    if (typeof t === 'string') assert.ok(isReason(t), t);
    const bit = bitSeed % (len * 8);
    const flipped = b.slice();
    flipped[bit >>> 3] ^= 0x80 >>> (bit & 7);
    const f = parseNdp(flipped, pseudoHeaderSum(src, dst, 58, len));
    // One flipped bit always changes the ones'-complement sum (RFC 1071): the checksum catches it,
    // unless the flip is in the type byte, which is read first (another type, maybe longer or not NDP).
    if (bit >= 8) assert.equal(f, 'ndp-bad-checksum');
    else assert.ok(f === 'ndp-bad-checksum' || f === 'ndp-truncated' || f === 'ndp-unhandled', String(f));
  }), 500);
});
