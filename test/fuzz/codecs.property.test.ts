/**
 * Property tests (fast-check) for every codec in src/wire. They extend test/wire/fuzz.test.ts, which
 * throws seeded noise at the parsers and compares address parsing with node:net, with:
 *  - round trips: for arbitrary well-formed inputs, parse(emit(x)) gives x back and the checksums
 *    verify (IPv4 with and without options, IPv6 with extension headers, TCP with every option kind
 *    including unknown ones, ICMP and ICMPv6 echo and errors, addresses in RFC 5952 form);
 *  - totality: every parser returns a value or a known drop reason for any bytes, truncations and
 *    bit flips of valid packets included, and the checksums catch what they must catch.
 * Run counts are explicit so that the file takes a few seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { IProperty } from 'fast-check';
import { addressEquals, formatAddress, inPrefix, parseAddress, parseCidr } from '../../src/wire/address.js';
import { checksumFinish, internetChecksum, pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import {
  icmpErrorLength, parseIcmpv4, parseIcmpv6, writeIcmpEcho, writeIcmpError, type IcmpMessage,
} from '../../src/wire/icmp.js';
import { parseIpPacket, type IpPacketInfo } from '../../src/wire/ip.js';
import { parseIpv4, writeIpv4Header } from '../../src/wire/ipv4.js';
import { parseIpv6, writeIpv6Header } from '../../src/wire/ipv6.js';
import { seqAdd, seqDiff, seqGeq, seqGt, seqInWindow, seqLeq, seqLt, seqMax, seqMin } from '../../src/wire/seq.js';
import { parseTcp, tcpOptionsLength, writeTcp, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';
import {
  DROP_REASONS, EXT_TYPE, acceptableExtChainArb, addressPairArb, fragmentHeader, ipv4Bytes, ipv4Packet,
  ipv6Bytes, ipv6Packet, optionsHeader, routingHeader, tcpBytes, tcpSegmentArb, u16, u32, u8,
  wordsToBytes, type ExtHeader,
} from './gen.js';

const NON_EXTENSION = u8.filter((n) => n !== 0 && n !== 43 && n !== 44 && n !== 59 && n !== 60);

function run<Ts>(p: IProperty<Ts>, numRuns: number): void {
  fc.assert(p, { numRuns });
}

function isReason(x: unknown): boolean {
  return typeof x === 'string' && DROP_REASONS.has(x);
}

function ipInfo(x: IpPacketInfo | string): IpPacketInfo {
  if (typeof x === 'string') assert.fail(`expected a packet, got drop '${x}'`);
  return x;
}

function segment(x: TcpSegment | string): TcpSegment {
  if (typeof x === 'string') assert.fail(`expected a segment, got drop '${x}'`);
  return x;
}

function message(x: IcmpMessage | string): IcmpMessage {
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

const bytes = (b: Uint8Array): number[] => Array.from(b);

// =================================================================================== IPv4

test('IPv4: parse(writeIpv4Header(x)) gives x back; the header sums to all ones; link padding is trimmed', () => {
  run(fc.property(
    ipv4Bytes(), ipv4Bytes(), u8, fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 65515 })),
    u8, u16, fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 7 }),
    (src, dst, protocol, payloadLength, ttl, id, padding, at) => {
      const buf = new Uint8Array(at + 20 + payloadLength + padding);
      assert.equal(writeIpv4Header(buf, at, src, dst, protocol, payloadLength, ttl, id), 20);
      const p = buf.subarray(at);
      // RFC 1071: a correct header, checksum included, sums to all ones.
      assert.equal(sum16(p, 0, 20), 0xffff);
      // RFC 791 §3.1 fixed fields: version 4, IHL 5, ToS 0, DF, no fragment offset, the id.
      assert.deepEqual([p[0], p[1], p[6], p[7], (p[4]! << 8) | p[5]!], [0x45, 0, 0x40, 0, id]);
      for (const parsed of [parseIpv4(p), parseIpPacket(p)]) {
        const i = ipInfo(parsed);
        assert.deepEqual(
          { version: i.version, src: bytes(i.src), dst: bytes(i.dst), protocol: i.protocol, ttl: i.ttl, off: i.payloadOffset, len: i.payloadLength },
          { version: 4, src: bytes(src), dst: bytes(dst), protocol, ttl, off: 20, len: payloadLength },
        );
      }
    },
  ), 300);
});

test('IPv4 with options: the payload starts at IHL × 4; MF or a fragment offset is a fragment', () => {
  run(fc.property(
    ipv4Bytes(), ipv4Bytes(), u8, fc.integer({ min: 0, max: 10 }).chain((w) => fc.uint8Array({ minLength: 4 * w, maxLength: 4 * w })),
    fc.uint8Array({ maxLength: 100, size: 'max' }), u8, u8, fc.constantFrom(0, 0x4000, 0x8000, 0xc000), fc.integer({ min: 0, max: 0x3fff }),
    (src, dst, protocol, options, body, ttl, tos, flags, fragBits) => {
      const whole = ipv4Packet(src, dst, protocol, body, { options, ttl, tos, fragment: flags });
      const i = ipInfo(parseIpv4(whole));
      assert.equal(i.payloadOffset, 20 + options.length);
      assert.equal(i.payloadLength, body.length);
      assert.deepEqual(bytes(whole.subarray(i.payloadOffset, i.payloadOffset + i.payloadLength)), bytes(body));
      assert.equal(i.ttl, ttl);
      // RFC 791: MF (0x2000) or a nonzero offset make it a fragment, which synack does not reassemble.
      const frag = (fragBits & 0x3fff) | flags;
      const fragmented = ipv4Packet(src, dst, protocol, body, { options, fragment: frag });
      if ((frag & 0x3fff) !== 0) assert.equal(parseIpv4(fragmented), 'ipv4-fragment');
      else ipInfo(parseIpv4(fragmented));
    },
  ), 300);
});

// =================================================================================== IPv6

test('IPv6: parse(writeIpv6Header(x)) gives x back, link padding trimmed', () => {
  run(fc.property(
    ipv6Bytes(), ipv6Bytes(), NON_EXTENSION, fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 65535 })),
    u8, fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 7 }),
    (src, dst, next, payloadLength, hop, padding, at) => {
      const buf = new Uint8Array(at + 40 + payloadLength + padding);
      assert.equal(writeIpv6Header(buf, at, src, dst, next, payloadLength, hop), 40);
      const p = buf.subarray(at);
      for (const parsed of [parseIpv6(p), parseIpPacket(p)]) {
        const i = ipInfo(parsed);
        assert.deepEqual(
          { version: i.version, src: bytes(i.src), dst: bytes(i.dst), protocol: i.protocol, ttl: i.ttl, off: i.payloadOffset, len: i.payloadLength },
          { version: 6, src: bytes(src), dst: bytes(dst), protocol: next, ttl: hop, off: 40, len: payloadLength },
        );
      }
    },
  ), 300);
});

test('IPv6 extension headers (RFC 8200 §4): acceptable chains are walked to the upper layer', () => {
  run(fc.property(
    ipv6Bytes(), ipv6Bytes(), acceptableExtChainArb(), NON_EXTENSION, fc.uint8Array({ maxLength: 64, size: 'max' }),
    (src, dst, chain, upper, body) => {
      const p = ipv6Packet(src, dst, upper, body, chain);
      const extLength = chain.reduce((n, h) => n + h.bytes.length, 0);
      const i = ipInfo(parseIpPacket(p));
      assert.equal(i.protocol, upper);
      assert.equal(i.payloadOffset, 40 + extLength);
      assert.equal(i.payloadLength, body.length);
      // The same chain ending in a Fragment header, or in No Next Header, is not for an upper layer.
      const frag = ipv6Packet(src, dst, upper, body, [...chain, fragmentHeader(0, true, 1)]);
      assert.equal(parseIpPacket(frag), 'ipv6-fragment');
      assert.equal(parseIpPacket(ipv6Packet(src, dst, 59, body, chain)), 'ipv6-no-next-header');
    },
  ), 300);
});

test('IPv6 extension headers that a host must refuse are ipv6-bad-extension', () => {
  const badKind = fc.constantFrom('hop-by-hop-late', 'segments-left', 'option-type', 'overrun');
  run(fc.property(
    ipv6Bytes(), ipv6Bytes(), acceptableExtChainArb(2), badKind, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 255 }),
    fc.integer({ min: 0x40, max: 0xff }), fc.uint8Array({ maxLength: 40, size: 'max' }),
    (src, dst, chain, kind, len8, n, optType, body) => {
      let bad: ExtHeader[];
      if (kind === 'hop-by-hop-late') {
        // §4.1: Hop-by-Hop Options only right after the IPv6 header.
        bad = [optionsHeader('destination', len8, []), ...chain.filter((h) => h.kind !== 'hop-by-hop'), optionsHeader('hop-by-hop', 0, [])];
      } else if (kind === 'segments-left') {
        // §4.4: Segments Left != 0 means the packet is to be forwarded; a host discards it.
        bad = [...chain, routingHeader(len8, n & 3, n, n)];
      } else if (kind === 'option-type') {
        // §4.2: an unrecognized option type whose two high bits are not 00 discards the packet.
        const h = optionsHeader('destination', len8, []);
        h.bytes[2] = optType === 1 ? 0x41 : optType;
        h.bytes[3] = 0;
        bad = [...chain, h];
      } else {
        // Hdr Ext Len past the end of the payload.
        const h = optionsHeader('destination', 0, []);
        bad = [...chain, h];
        const p = ipv6Packet(src, dst, 6, body, bad);
        p[40 + chain.reduce((m, x) => m + x.bytes.length, 0) + 1] = Math.ceil((body.length + 1) / 8) + (n % 8);
        assert.equal(parseIpPacket(p), 'ipv6-bad-extension');
        return;
      }
      assert.equal(parseIpPacket(ipv6Packet(src, dst, 6, body, bad)), 'ipv6-bad-extension');
    },
  ), 300);
});

// =================================================================================== TCP

/**
 * What parseTcp must give back for options written by writeTcp: Linux's layout (mss 4 bytes;
 * sackOK+TS or nop,nop,TS 12; nop,nop,sackOK 4; nop,wscale 4) and SACK blocks cut from the end to
 * what fits in the 40 bytes beside them (nop,nop,kind,len + 8 per block, RFC 2018 §3: at most 4).
 */
function expectedOptions(o: TcpOptions): TcpOptions {
  const e: TcpOptions = {};
  if (o.mss !== undefined) e.mss = o.mss;
  if (o.wscale !== undefined) e.wscale = o.wscale;
  if (o.sackPermitted) e.sackPermitted = true;
  if (o.timestamp) e.timestamp = { val: o.timestamp.val, ecr: o.timestamp.ecr };
  const base = (o.mss !== undefined ? 4 : 0) + (o.timestamp ? 12 : o.sackPermitted ? 4 : 0) + (o.wscale !== undefined ? 4 : 0);
  const fit = Math.min(4, Math.floor((40 - base - 4) / 8));
  if (o.sack && o.sack.length > 0 && fit > 0) e.sack = o.sack.slice(0, fit).map(([l, r]) => [l, r]);
  return e;
}

test('TCP: parse(writeTcp(x)) gives x back for every option kind, at any buffer offset, and the checksum verifies', () => {
  run(fc.property(addressPairArb(), tcpSegmentArb(300), fc.integer({ min: 0, max: 9 }), ({ src, dst }, seg, at) => {
    const optLength = tcpOptionsLength(seg.options);
    assert.ok(optLength % 4 === 0 && optLength <= 40, `options length ${optLength}`);
    const len = 20 + optLength + seg.payload.length;
    const buf = new Uint8Array(at + len + 5);
    const pseudo = pseudoHeaderSum(src, dst, 6, len);
    assert.equal(writeTcp(buf, at, seg, pseudo), len);
    const wire = buf.subarray(at, at + len);
    // RFC 9293 §3.1: pseudo-header + header + data sum to all ones.
    assert.equal(sum16(wire, 0, len, pseudo), 0xffff);
    assert.equal(wire[12]! >>> 4, (20 + optLength) / 4, 'data offset');
    const r = segment(parseTcp(wire, pseudo));
    assert.deepEqual(
      { ...r, payload: bytes(r.payload) },
      { ...seg, options: expectedOptions(seg.options), payload: bytes(seg.payload) },
    );
    assert.equal(r.payload.buffer, buf.buffer, 'the payload is a view into the segment');
    // The pseudo-header is covered: the same bytes from another source (one bit off) fail.
    const other = src.slice();
    other[other.length - 1]! ^= 1;
    assert.equal(parseTcp(wire, pseudoHeaderSum(other, dst, 6, len)), 'tcp-bad-checksum');
    // Without verification the same fields come back.
    assert.deepEqual(segment(parseTcp(wire, 0, false)).options, expectedOptions(seg.options));
  }), 1000);
});

test('TCP: writeTcp with the payload already in place writes the same bytes as with a copy', () => {
  run(fc.property(addressPairArb(), tcpSegmentArb(100), ({ src, dst }, seg) => {
    const copied = tcpBytes(src, dst, seg);
    const hl = 20 + tcpOptionsLength(seg.options);
    const inPlace = new Uint8Array(copied.length);
    inPlace.set(seg.payload, hl);
    writeTcp(inPlace, 0, { ...seg, payload: inPlace.subarray(hl) }, pseudoHeaderSum(src, dst, 6, copied.length));
    assert.deepEqual(bytes(inPlace), bytes(copied));
  }), 200);
});

/** One option as raw bytes, for option lists writeTcp cannot emit (unknown kinds, any order, repeats). */
type RawOption =
  | { k: 'nop' }
  | { k: 'mss'; v: number }
  | { k: 'ws'; v: number }
  | { k: 'sackok' }
  | { k: 'sack'; blocks: Array<[number, number]> }
  | { k: 'ts'; val: number; ecr: number }
  | { k: 'unknown'; kind: number; data: Uint8Array };

const rawOptionArb: fc.Arbitrary<RawOption> = fc.oneof(
  fc.constant({ k: 'nop' } as const),
  u16.map((v) => ({ k: 'mss', v }) as const),
  u8.map((v) => ({ k: 'ws', v }) as const),
  fc.constant({ k: 'sackok' } as const),
  fc.array(fc.tuple(u32, u32), { minLength: 1, maxLength: 4 }).map((blocks) => ({ k: 'sack', blocks }) as const),
  fc.record({ val: u32, ecr: u32 }).map(({ val, ecr }) => ({ k: 'ts', val, ecr }) as const),
  fc.record({
    // Kinds synack does not know (IANA: 6, 7 obsolete echo, 19 MD5, 28 UTO, 29 TCP-AO, 30 MPTCP, 34 TFO, 253/254 experiments…).
    kind: fc.integer({ min: 6, max: 255 }).filter((k) => k !== 8),
    data: fc.uint8Array({ maxLength: 12, size: 'max' }),
  }).map(({ kind, data }) => ({ k: 'unknown', kind, data }) as const),
);

function be32(v: number): number[] {
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function rawOptionBytes(o: RawOption): number[] {
  switch (o.k) {
    case 'nop': return [1];
    case 'mss': return [2, 4, o.v >>> 8, o.v & 0xff];
    case 'ws': return [3, 3, o.v];
    case 'sackok': return [4, 2];
    case 'sack': return [5, 2 + 8 * o.blocks.length, ...o.blocks.flatMap(([l, r]) => [...be32(l), ...be32(r)])];
    case 'ts': return [8, 10, ...be32(o.val), ...be32(o.ecr)];
    case 'unknown': return [o.kind, 2 + o.data.length, ...o.data];
  }
}

/** A segment with these option bytes (padded to 32 bits by the caller) and a correct checksum. */
function segmentWithOptions(src: Uint8Array, dst: Uint8Array, optionBytes: readonly number[], payload: Uint8Array): Uint8Array {
  const hl = 20 + optionBytes.length;
  const s = new Uint8Array(hl + payload.length);
  s.set([0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, (hl / 4) << 4, 0x10, 0xff, 0xff], 0);
  s.set(optionBytes, 20);
  s.set(payload, hl);
  const c = checksumFinish(sum16(s, 0, s.length, pseudoHeaderSum(src, dst, 6, s.length)));
  s[16] = c >>> 8;
  s[17] = c & 0xff;
  return s;
}

test('TCP options in any order, repeated, with unknown kinds (skipped by length) and EOL padding parse to the last of each', () => {
  run(fc.property(
    addressPairArb(), fc.array(rawOptionArb, { maxLength: 10, size: 'max' }), fc.boolean(), fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 20, size: 'max' }),
    ({ src, dst }, list, eolPad, junk, payload) => {
      // Keep the options that fit in 40 bytes, in order.
      const kept: RawOption[] = [];
      let raw: number[] = [];
      for (const o of list) {
        const b = rawOptionBytes(o);
        if (raw.length + b.length > 40) break;
        kept.push(o);
        raw = raw.concat(b);
      }
      // Pad to 32 bits: NOPs, or EOL and anything after it (RFC 9293 §3.2: EOL ends the list).
      if (eolPad && raw.length < 40) {
        raw.push(0);
        let j = 0;
        while (raw.length % 4 !== 0) raw.push(junk[j++ % Math.max(1, junk.length)] ?? 0);
      } else {
        while (raw.length % 4 !== 0) raw.push(1);
      }
      const expected: TcpOptions = {};
      for (const o of kept) {
        if (o.k === 'mss') expected.mss = o.v;
        else if (o.k === 'ws') expected.wscale = o.v;
        else if (o.k === 'sackok') expected.sackPermitted = true;
        else if (o.k === 'sack') expected.sack = o.blocks.map(([l, r]) => [l, r]);
        else if (o.k === 'ts') expected.timestamp = { val: o.val, ecr: o.ecr };
      }
      const s = segmentWithOptions(src, dst, raw, payload);
      const r = segment(parseTcp(s, pseudoHeaderSum(src, dst, 6, s.length)));
      assert.deepEqual(r.options, expected);
      assert.deepEqual(bytes(r.payload), bytes(payload));
    },
  ), 1000);
});

test('TCP options with a wrong length for their kind, or running past the header, are tcp-bad-options', () => {
  // RFC 9293 §3.1: "must be prepared to handle an illegal option length (e.g., zero)" — by dropping.
  const wrongLength = fc.oneof(
    fc.tuple(fc.constant(2), fc.integer({ min: 2, max: 12 }).filter((l) => l !== 4)),
    fc.tuple(fc.constant(3), fc.integer({ min: 2, max: 12 }).filter((l) => l !== 3)),
    fc.tuple(fc.constant(4), fc.integer({ min: 3, max: 12 })),
    fc.tuple(fc.constant(5), fc.integer({ min: 2, max: 38 }).filter((l) => l === 2 || (l - 2) % 8 !== 0)),
    fc.tuple(fc.constant(8), fc.integer({ min: 2, max: 12 }).filter((l) => l !== 10)),
    fc.tuple(fc.integer({ min: 2, max: 255 }), fc.constantFrom(0, 1)),
  );
  run(fc.property(addressPairArb(), fc.integer({ min: 0, max: 3 }), wrongLength, u8, ({ src, dst }, nops, [kind, len], fill) => {
    const raw: number[] = new Array<number>(nops).fill(1);
    raw.push(kind, len);
    while (raw.length < nops + Math.max(2, len)) raw.push(fill);
    while (raw.length % 4 !== 0) raw.push(0);
    if (raw.length > 40) return;
    const s = segmentWithOptions(src, dst, raw, new Uint8Array(0));
    assert.equal(parseTcp(s, pseudoHeaderSum(src, dst, 6, s.length)), 'tcp-bad-options', JSON.stringify(raw));
    // A length that reaches past the end of the header, and a kind in its last byte without a length.
    const past = [...new Array<number>(nops).fill(1), 0x22, 40];
    while (past.length % 4 !== 0) past.push(1);
    const s2 = segmentWithOptions(src, dst, past, new Uint8Array([1, 2, 3, 4]));
    assert.equal(parseTcp(s2, pseudoHeaderSum(src, dst, 6, s2.length)), 'tcp-bad-options');
    const last = [1, 1, 1, kind];
    const s3 = segmentWithOptions(src, dst, last, new Uint8Array(0));
    assert.equal(parseTcp(s3, pseudoHeaderSum(src, dst, 6, s3.length)), 'tcp-bad-options');
  }), 300);
});

// =================================================================================== ICMP

test('ICMP and ICMPv6 echo: parse(writeIcmpEcho(x)) gives x back and the checksum verifies', () => {
  run(fc.property(
    fc.constantFrom(4 as const, 6 as const), fc.boolean(), u16, u16, fc.uint8Array({ maxLength: 200, size: 'max' }), ipv6Bytes(), ipv6Bytes(),
    fc.integer({ min: 0, max: 5 }),
    (version, reply, id, sequence, data, src, dst, at) => {
      const len = 8 + data.length;
      const pseudo = version === 4 ? 0 : pseudoHeaderSum(src, dst, 58, len);
      const buf = new Uint8Array(at + len);
      assert.equal(writeIcmpEcho(buf, at, version, reply, id, sequence, data, pseudo), len);
      const wire = buf.subarray(at);
      assert.equal(sum16(wire, 0, len, pseudo), 0xffff);
      const m = message(version === 4 ? parseIcmpv4(wire) : parseIcmpv6(wire, pseudo));
      assert.deepEqual(
        m.kind === 'error' ? m : { ...m, data: bytes(m.data) },
        { kind: reply ? 'echo-reply' : 'echo-request', id, sequence, data: bytes(data) },
      );
      if (version === 6) {
        // RFC 4443 §2.3: the pseudo-header is covered; another destination fails.
        const other = dst.slice();
        other[0]! ^= 0x80;
        assert.equal(parseIcmpv6(wire, pseudoHeaderSum(src, other, 58, len)), 'icmp-bad-checksum');
      }
    },
  ), 300);
});

/** The original-packet fields an error quoting `quote` bytes of a packet must give back. */
interface ExpectedOriginal {
  protocol: number;
  srcPort?: number;
  dstPort?: number;
  seq?: number;
}

function transportFields(body: Uint8Array, protocol: number, at: number, q: number, o: ExpectedOriginal): void {
  // RFC 792 / RFC 4443 quotes: ports when 4 bytes of TCP/UDP made it, SEQ when 8 of TCP did.
  if ((protocol === 6 || protocol === 17) && at + 4 <= q) {
    o.srcPort = (body[0]! << 8) | body[1]!;
    o.dstPort = (body[2]! << 8) | body[3]!;
    if (protocol === 6 && at + 8 <= q) o.seq = ((body[4]! << 24) | (body[5]! << 16) | (body[6]! << 8) | body[7]!) >>> 0;
  }
}

function originalOf(m: IcmpMessage): Record<string, unknown> | null {
  if (m.kind !== 'error') assert.fail(`expected an error, got ${m.kind}`);
  if (m.original === null) return null;
  const { src, dst, ...rest } = m.original;
  return { src: bytes(src), dst: bytes(dst), ...rest };
}

const quotedBody = (protocol: number): fc.Arbitrary<Uint8Array> =>
  protocol === 6
    ? fc.tuple(ipv4Bytes(), ipv4Bytes(), tcpSegmentArb(40)).map(([s, d, seg]) => tcpBytes(s, d, seg))
    : fc.uint8Array({ maxLength: 60, size: 'max' });

test('ICMPv4 errors (RFC 792, RFC 1191): type, code, category, MTU and the quoted addresses, ports and SEQ', () => {
  const typeCode = fc.oneof(
    fc.tuple(fc.constant(3), fc.integer({ min: 0, max: 15 })),
    fc.tuple(fc.constantFrom(4, 5, 11, 12), u8),
  );
  const quoted = fc.constantFrom(6, 17, 1, 50).chain((protocol) => fc.record({
    protocol: fc.constant(protocol),
    body: quotedBody(protocol),
    src: ipv4Bytes(),
    dst: ipv4Bytes(),
    options: fc.integer({ min: 0, max: 10 }).chain((w) => fc.uint8Array({ minLength: 4 * w, maxLength: 4 * w })),
    fragment: fc.oneof(fc.constant(0x4000), fc.integer({ min: 0, max: 0xffff })),
    padTo: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 700 })),
  }));
  run(fc.property(typeCode, u32, quoted, fc.option(fc.nat({ max: 120 }), { nil: undefined }), ([type, code], word, qp, cut) => {
    let orig = ipv4Packet(qp.src, qp.dst, qp.protocol, qp.body, { options: qp.options, fragment: qp.fragment });
    if (qp.padTo > orig.length) {
      const big = new Uint8Array(qp.padTo);
      big.set(orig);
      orig = big;
    }
    if (cut !== undefined) orig = orig.subarray(0, Math.min(cut, orig.length));
    const len = icmpErrorLength(4, orig.length);
    const q = Math.min(orig.length, 576 - 20 - 8);
    assert.equal(len, 8 + q);
    const buf = new Uint8Array(len);
    assert.equal(writeIcmpError(buf, 0, 4, type, code, orig, 0, word), len);
    assert.equal(sum16(buf, 0, len), 0xffff);
    const m = message(parseIcmpv4(buf));
    const category = type === 3
      ? ({ 2: 'proto-unreachable', 3: 'port-unreachable', 4: 'frag-needed' } as Record<number, string>)[code] ?? 'unreachable'
      : type === 11 ? 'time-exceeded' : type === 12 ? 'parameter-problem' : 'other';
    assert.ok(m.kind === 'error');
    assert.deepEqual(
      { type: m.type, code: m.code, category: m.category, mtu: m.mtu },
      // RFC 1191 §4: the next-hop MTU is the low 16 bits of the second word.
      { type, code, category, mtu: category === 'frag-needed' ? word & 0xffff : undefined },
    );
    const hl = 20 + qp.options.length;
    let expected: Record<string, unknown> | null = null;
    if (q >= hl) {
      const o: ExpectedOriginal = { protocol: qp.protocol };
      // Only the first fragment (offset 0) carries the transport header.
      if ((qp.fragment & 0x1fff) === 0) transportFields(qp.body, qp.protocol, hl, q, o);
      expected = { src: bytes(qp.src), dst: bytes(qp.dst), ...o };
    }
    assert.deepEqual(originalOf(m), expected);
  }), 400);
});

test('ICMPv6 errors (RFC 4443): category, MTU, and the quote walked through extension headers', () => {
  const quotedChain = fc.array(fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(fc.nat(), { maxLength: 4 })).map(([l, p]) => optionsHeader('destination', l, p)),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.array(fc.nat(), { maxLength: 4 })).map(([l, p]) => optionsHeader('hop-by-hop', l, p)),
    fc.tuple(fc.integer({ min: 0, max: 3 }), u8, u32).map(([l, n, f]) => routingHeader(l, n, n, f)),
    fc.tuple(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x1fff })), fc.boolean(), u32).map(([o, m, id]) => fragmentHeader(o, m, id)),
  ), { maxLength: 3 });
  const quoted = fc.constantFrom(6, 17, 58, 50).chain((upper) => fc.record({
    upper: fc.constant(upper),
    body: quotedBody(upper),
    src: ipv6Bytes(),
    dst: ipv6Bytes(),
    chain: quotedChain,
    padTo: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1500 })),
  }));
  run(fc.property(
    fc.integer({ min: 0, max: 127 }), u8, u32, quoted, fc.option(fc.nat({ max: 140 }), { nil: undefined }), ipv6Bytes(), ipv6Bytes(),
    (type, code, word, qp, cut, esrc, edst) => {
      let orig = ipv6Packet(qp.src, qp.dst, qp.upper, qp.body, qp.chain);
      if (qp.padTo > orig.length) {
        const big = new Uint8Array(qp.padTo);
        big.set(orig);
        orig = big;
      }
      if (cut !== undefined) orig = orig.subarray(0, Math.min(cut, orig.length));
      const len = icmpErrorLength(6, orig.length);
      const q = Math.min(orig.length, 1280 - 40 - 8);
      assert.equal(len, 8 + q);
      const pseudo = pseudoHeaderSum(esrc, edst, 58, len);
      const buf = new Uint8Array(len);
      assert.equal(writeIcmpError(buf, 0, 6, type, code, orig, pseudo, word), len);
      const m = message(parseIcmpv6(buf, pseudo));
      let category = 'other';
      if (type === 1) category = code === 4 ? 'port-unreachable' : 'unreachable';
      else if (type === 2) category = 'packet-too-big';
      else if (type === 3) category = 'time-exceeded';
      else if (type === 4) category = code === 1 ? 'proto-unreachable' : 'parameter-problem';
      assert.ok(m.kind === 'error');
      assert.deepEqual(
        { type: m.type, code: m.code, category: m.category, mtu: m.mtu },
        { type, code, category, mtu: type === 2 ? word : undefined },
      );
      // The walk, from the chain as built: a header the quote cuts off before its first two bytes
      // (eight for a Fragment header) ends it; a non-first fragment has no transport header.
      let expected: Record<string, unknown> | null = null;
      if (q >= 40) {
        const o: ExpectedOriginal = { protocol: qp.upper };
        let at = 40;
        let done = false;
        for (let i = 0; i < qp.chain.length && !done; i++) {
          const h = qp.chain[i]!;
          const nextType = i + 1 < qp.chain.length ? EXT_TYPE[qp.chain[i + 1]!.kind] : qp.upper;
          if (at + (h.kind === 'fragment' ? 8 : 2) > q) {
            o.protocol = EXT_TYPE[h.kind];
            done = true;
          } else if (h.kind === 'fragment' && (((h.bytes[2]! << 8) | h.bytes[3]!) & 0xfff8) !== 0) {
            o.protocol = nextType;
            done = true;
          }
          at += h.bytes.length;
        }
        if (!done) transportFields(qp.body, qp.upper, at, q, o);
        expected = { src: bytes(qp.src), dst: bytes(qp.dst), ...o };
      }
      assert.deepEqual(originalOf(m), expected);
    },
  ), 400);
});

// =================================================================================== addresses

/** RFC 5952 §4 and §5, written from the text: the canonical form of 16 bytes. */
function rfc5952(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  // §4.2.1-3: the longest run of 2+ zero groups, the first of equal ones.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i >= 2 && j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':'); // §4.1, §4.3
  return best < 0 ? hex(w) : `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

test('formatAddress is RFC 5952 canonical (and agrees with the WHATWG URL serializer); parseAddress inverts it', () => {
  run(fc.property(fc.oneof(ipv6Bytes(), ipv4Bytes()), (b) => {
    const text = formatAddress(b);
    const back = parseAddress(text);
    assert.ok(back !== null, text);
    assert.deepEqual(bytes(back), bytes(b));
    if (b.length === 4) {
      assert.equal(text, Array.from(b).join('.'));
      return;
    }
    assert.equal(text, rfc5952(b));
    if (!text.includes('.')) assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
  }), 1000);
});

/** Any RFC 4291 §2.2 spelling of 16 bytes: case, leading zeros, "::" over any zero run (or none), a dotted tail. */
const spellingArb = fc.record({
  b: ipv6Bytes(),
  pads: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
  upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  dotted: fc.boolean(),
  run: fc.nat(),
  compress: fc.boolean(),
}).map(({ b, pads, upper, dotted, run: pick, compress }) => {
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  const n = dotted ? 6 : 8;
  const groups = w.slice(0, n).map((x, i) => {
    let s = x.toString(16);
    s = '0'.repeat(Math.min(pads[i]!, 4 - s.length)) + s;
    return upper[i] ? s.toUpperCase() : s;
  });
  // Candidate "::" runs: every non-empty run of zero groups among the hex groups.
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j <= n && w[j - 1] === 0; j++) runs.push([i, j]);
  let text: string;
  if (compress && runs.length > 0) {
    const [s, e] = runs[pick % runs.length]!;
    text = `${groups.slice(0, s).join(':')}::${groups.slice(e).join(':')}`;
    if (dotted) text += (e === n ? '' : ':') + `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  } else {
    text = groups.join(':');
    if (dotted) text += `:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  return { b, text };
});

test('every RFC 4291 spelling of an IPv6 address parses to its bytes and formats to the one canonical text', () => {
  run(fc.property(spellingArb, ({ b, text }) => {
    const parsed = parseAddress(text);
    assert.ok(parsed !== null, `refused ${text}`);
    assert.deepEqual(bytes(parsed), bytes(b), text);
    assert.equal(formatAddress(parsed), rfc5952(b));
    // Zone ids and brackets are not part of an address here.
    assert.equal(parseAddress(`${text}%eth0`), null);
    assert.equal(parseAddress(`[${text}]`), null);
  }), 1000);
});

test('IPv6 spellings that are not addresses are refused: 9 groups, "::" beside 8 groups, two "::", 5 hex digits', () => {
  run(fc.property(fc.array(u16, { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 7 }), (w, at, g) => {
    const groups = w.map((x) => x.toString(16));
    assert.equal(parseAddress([...groups, '1'].join(':')), null);
    // RFC 4291 §2.2: "::" stands for one or more groups of zeros, so never beside eight groups.
    assert.equal(parseAddress(`${groups.slice(0, at).join(':')}::${groups.slice(at).join(':')}`), null);
    assert.equal(parseAddress(`${groups.slice(0, 2).join(':')}::${groups[3]}::${groups[4]}`), null);
    const five = groups.slice();
    five[g] = `1${five[g]!.padStart(4, '0')}`;
    assert.equal(parseAddress(five.join(':')), null);
    assert.equal(parseAddress(`${groups.slice(0, 3).join(':')}:::${groups[4]}`), null);
  }), 300);
});

test('dotted quads: leading zeros, out-of-range octets and wrong part counts are refused', () => {
  run(fc.property(ipv4Bytes(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 256, max: 999 }), (b, i, big) => {
    const parts = Array.from(b, String);
    const zero = parts.slice();
    zero[i] = `0${zero[i]}`; // octal to inet_aton: refused, not guessed
    assert.equal(parseAddress(zero.join('.')), null);
    const over = parts.slice();
    over[i] = String(big);
    assert.equal(parseAddress(over.join('.')), null);
    assert.equal(parseAddress(parts.slice(0, 3).join('.')), null);
    assert.equal(parseAddress(`${parts.join('.')}.1`), null);
  }), 300);
});

test('parseCidr: address/prefix round trips for every prefix in range, none outside it', () => {
  run(fc.property(fc.oneof(ipv4Bytes(), ipv6Bytes()), fc.nat({ max: 200 }), (b, p) => {
    const text = formatAddress(b);
    const max = b.length * 8;
    const r = parseCidr(`${text}/${p}`);
    if (p <= max) {
      assert.ok(r !== null);
      assert.deepEqual({ address: bytes(r.address), prefix: r.prefix }, { address: bytes(b), prefix: p });
    } else {
      assert.equal(r, null);
    }
    assert.equal(parseCidr(text)?.prefix, max);
    assert.equal(parseCidr(`${text}/0${p}`), null, 'no leading zeros in the prefix');
    assert.equal(parseCidr(`${text}/`), null);
  }), 500);
});

test('inPrefix: an address is in each of its own prefixes, and a flipped bit k is outside exactly the prefixes longer than k', () => {
  run(fc.property(fc.oneof(ipv4Bytes(), ipv6Bytes()), fc.nat(), fc.nat(), (b, pi, ki) => {
    const max = b.length * 8;
    const p = pi % (max + 1);
    const k = ki % max;
    assert.ok(inPrefix(b, b, p));
    const flipped = b.slice();
    flipped[k >>> 3]! ^= 0x80 >>> (k & 7);
    assert.equal(inPrefix(flipped, b, p), k >= p, `bit ${k}, prefix ${p}`);
    assert.ok(addressEquals(b, b.slice()));
    assert.ok(!addressEquals(b, flipped));
    assert.equal(inPrefix(b, b, max + 1), false);
    assert.equal(inPrefix(b, b.length === 4 ? new Uint8Array(16) : new Uint8Array(4), 0), false, 'families differ');
  }), 500);
});

// =================================================================================== checksum, seq

/** RFC 1071 §4.1, word by word. */
function referenceSum(b: Uint8Array, off: number, len: number, initial: number): number {
  let s = initial;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

test('sum16 equals the RFC 1071 definition at any alignment and length; a written checksum makes the range verify', () => {
  run(fc.property(
    fc.uint8Array({ minLength: 0, maxLength: 400, size: 'max' }), fc.nat(), fc.nat(), u16, fc.integer({ min: 0, max: 7 }),
    (data, o, l, initial, shift) => {
      // A view at an arbitrary byteOffset into a larger buffer exercises the aligned word path.
      const backing = new Uint8Array(data.length + shift + 3);
      backing.set(data, shift);
      const view = backing.subarray(shift, shift + data.length);
      const off = data.length === 0 ? 0 : o % data.length;
      const len = l % (data.length - off + 1);
      assert.equal(sum16(view, off, len, initial), referenceSum(view, off, len, initial));
      // Another buffer in between (sum16 caches a word view of the last buffer seen).
      sum16(new Uint8Array(64), 0, 64);
      assert.equal(sum16(view, off, len, initial), referenceSum(view, off, len, initial));
      // Writing internetChecksum into a zeroed, even-aligned field makes the whole range sum to ones.
      if (len >= 2) {
        const copy = view.slice(off, off + len);
        const at = (o % (len >>> 1)) * 2;
        copy[at] = 0;
        copy[at + 1] = 0;
        const c = internetChecksum(copy, 0, len);
        copy[at] = c >>> 8;
        copy[at + 1] = c & 0xff;
        assert.equal(sum16(copy, 0, len), 0xffff);
      }
    },
  ), 1000);
});

test('pseudoHeaderSum equals the sum over the literal pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1)', () => {
  run(fc.property(addressPairArb(), u8, fc.oneof(u16, u32), ({ src, dst }, protocol, length) => {
    let literal: Uint8Array;
    if (src.length === 4) {
      length &= 0xffff; // a 16-bit TCP Length in IPv4
      literal = new Uint8Array([...src, ...dst, 0, protocol, length >>> 8, length & 0xff]);
    } else {
      literal = new Uint8Array([...src, ...dst, ...be32(length), 0, 0, 0, protocol]);
    }
    assert.equal(pseudoHeaderSum(src, dst, protocol, length), referenceSum(literal, 0, literal.length, 0));
  }), 500);
});

test('sequence arithmetic is modular (RFC 9293 §3.4)', () => {
  run(fc.property(u32, u32, fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 31 }), (a, b, d, len) => {
    assert.equal(seqAdd(a, seqDiff(b, a)), b);
    assert.equal(seqLt(a, b), seqGt(b, a));
    assert.equal(seqLeq(a, b), !seqGt(a, b));
    assert.equal(seqGeq(a, b), !seqLt(a, b));
    assert.equal([seqLt(a, b), a === b, seqGt(a, b)].filter(Boolean).length, 1);
    const ahead = seqAdd(a, d);
    assert.ok(seqLt(a, ahead) && seqGt(ahead, a) && seqDiff(ahead, a) === d);
    assert.equal(seqMax(a, ahead), ahead);
    assert.equal(seqMin(a, ahead), a);
    const k = seqDiff(b, a) >>> 0; // b = a + k
    assert.equal(seqInWindow(b, a, len), k < len);
  }), 1000);
});

// =================================================================================== totality

/** The stack's decode path for one packet; asserts on what every successful parse promises. */
function decodeAll(p: Uint8Array): string {
  const ip = parseIpPacket(p);
  if (typeof ip === 'string') {
    assert.ok(isReason(ip), ip);
    return ip;
  }
  assert.ok(ip.version === 4 || ip.version === 6);
  assert.equal(ip.src.length, ip.version === 4 ? 4 : 16);
  assert.equal(ip.dst.length, ip.src.length);
  assert.ok(ip.payloadOffset >= (ip.version === 4 ? 20 : 40) && ip.payloadLength >= 0 && ip.payloadOffset + ip.payloadLength <= p.length);
  const body = p.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
  if (ip.protocol === 6) return checkTcp(body, pseudoHeaderSum(ip.src, ip.dst, 6, body.length));
  if (ip.protocol === 1) return checkIcmp(parseIcmpv4(body));
  if (ip.protocol === 58) return checkIcmp(parseIcmpv6(body, pseudoHeaderSum(ip.src, ip.dst, 58, body.length)));
  return 'other';
}

function checkTcp(s: Uint8Array, pseudo: number): string {
  let out = '';
  for (const verify of [true, false]) {
    const r = parseTcp(s, pseudo, verify);
    if (typeof r === 'string') {
      assert.ok(isReason(r), r);
      out ||= r;
      continue;
    }
    const hl = (s[12]! >>> 4) * 4;
    assert.ok(hl >= 20 && r.payload.length === s.length - hl && r.payload.buffer === s.buffer);
    const o = r.options;
    if (o.sack) assert.ok(o.sack.length >= 1 && o.sack.length <= 4);
    for (const v of [r.seq, r.ack, o.timestamp?.val ?? 0, o.timestamp?.ecr ?? 0, ...(o.sack ?? []).flat()]) {
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    }
    out ||= 'tcp';
  }
  return out;
}

function checkIcmp(m: IcmpMessage | string): string {
  if (typeof m === 'string') {
    assert.ok(isReason(m), m);
    return m;
  }
  if (m.kind === 'error' && m.original !== null) {
    assert.ok(m.original.src.length === m.original.dst.length && (m.original.src.length === 4 || m.original.src.length === 16));
    if (m.original.seq !== undefined) assert.ok(m.original.seq >= 0 && m.original.seq <= 0xffffffff);
  }
  return m.kind;
}

test('random bytes: every parser returns a value or a known drop reason, never throws', () => {
  run(fc.property(fc.uint8Array({ maxLength: 160, size: 'max' }), u16, (b, pseudo) => {
    decodeAll(b);
    for (const r of [parseIpv4(b), parseIpv6(b)]) assert.ok(typeof r === 'object' || isReason(r));
    checkTcp(b, pseudo);
    checkIcmp(parseIcmpv4(b));
    checkIcmp(parseIcmpv6(b, pseudo));
  }), 3000);
});

test('random bytes behind valid IP headers (and valid checksums) reach TCP option parsing and ICMP quotes without throwing', () => {
  run(fc.property(
    addressPairArb(), fc.constantFrom(6, 6, 1, 58, 17), fc.uint8Array({ maxLength: 120, size: 'max' }), fc.boolean(), acceptableExtChainArb(2),
    ({ src, dst }, protocol, body, fix, chain) => {
      const b = body.slice();
      if (fix && protocol === 6 && b.length >= 18) {
        b[16] = 0;
        b[17] = 0;
        const c = checksumFinish(sum16(b, 0, b.length, pseudoHeaderSum(src, dst, 6, b.length)));
        b[16] = c >>> 8;
        b[17] = c & 0xff;
      } else if (fix && (protocol === 1 || protocol === 58) && b.length >= 4) {
        b[2] = 0;
        b[3] = 0;
        const c = checksumFinish(sum16(b, 0, b.length, src.length === 16 ? pseudoHeaderSum(src, dst, 58, b.length) : 0));
        b[2] = c >>> 8;
        b[3] = c & 0xff;
      }
      const p = src.length === 4 ? ipv4Packet(src, dst, protocol, b) : ipv6Packet(src, dst, protocol, b, chain);
      decodeAll(p);
    },
  ), 2000);
});

/** A valid packet of any kind the stack receives: TCP, ICMP echo, ICMP error; IPv4 or IPv6. */
const validPacketArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(addressPairArb(), tcpSegmentArb(80), acceptableExtChainArb(2)).map(([{ src, dst }, seg, chain]) => {
    const body = tcpBytes(src, dst, seg);
    return src.length === 4 ? ipv4Packet(src, dst, 6, body) : ipv6Packet(src, dst, 6, body, chain);
  }),
  fc.tuple(addressPairArb(), fc.boolean(), u16, u16, fc.uint8Array({ maxLength: 40, size: 'max' })).map(([{ src, dst }, reply, id, sq, data]) => {
    const v = src.length === 4 ? 4 : 6;
    const body = new Uint8Array(8 + data.length);
    writeIcmpEcho(body, 0, v, reply, id, sq, data, v === 4 ? 0 : pseudoHeaderSum(src, dst, 58, body.length));
    return v === 4 ? ipv4Packet(src, dst, 1, body) : ipv6Packet(src, dst, 58, body);
  }),
  fc.tuple(addressPairArb(), fc.constantFrom(3, 4, 5, 11, 12), u8, u8, fc.uint8Array({ maxLength: 80, size: 'max' })).map(([{ src, dst }, type4, type6, code, quote]) => {
    const v = src.length === 4 ? 4 : 6;
    const body = new Uint8Array(icmpErrorLength(v, quote.length));
    // Error types: the five RFC 792 ones for IPv4, any below 128 for IPv6 (RFC 4443 §2.1).
    writeIcmpError(body, 0, v, v === 4 ? type4 : type6 & 0x7f, code, quote, v === 4 ? 0 : pseudoHeaderSum(src, dst, 58, body.length));
    return v === 4 ? ipv4Packet(src, dst, 1, body) : ipv6Packet(src, dst, 58, body);
  }),
);

test('truncations and bit flips of valid packets never make a parser throw', () => {
  run(fc.property(
    validPacketArb, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 6 }),
    (valid, cut, flips) => {
      assert.ok(!isReason(decodeAll(valid)), 'the unmutated packet decodes');
      const p = valid.slice(0, cut % (valid.length + 1));
      for (const [at, bit] of flips) if (p.length > 0) p[at % p.length]! ^= 1 << bit;
      decodeAll(p);
    },
  ), 2000);
});

test('what the checksums must catch: any truncation of an IP packet, any single bit flip in a TCP segment or an ICMP message', () => {
  run(fc.property(validPacketArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (valid, n, bit) => {
    const v4 = valid[0]! >>> 4 === 4;
    const info = ipInfo(parseIpPacket(valid));
    // A packet cut short of its Total Length / Payload Length is refused at the IP layer.
    const short = valid.subarray(0, n % valid.length);
    const r = parseIpPacket(short);
    assert.ok(typeof r === 'string' && /^ip/.test(r), `truncated to ${short.length}: ${String(r)}`);
    // One flipped bit in the transport message (IP header intact): RFC 1071 sums detect every
    // single-bit error, so it is dropped, by the checksum or an earlier header check.
    const at = info.payloadOffset + (n % Math.max(1, info.payloadLength));
    if (info.payloadLength === 0) return;
    const flipped = valid.slice();
    flipped[at]! ^= 1 << bit;
    const out = decodeAll(flipped);
    if (info.protocol === 6) assert.ok(out === 'tcp-bad-checksum' || out === 'tcp-bad-offset', out);
    else assert.ok(out === 'icmp-bad-checksum' || out === 'icmp-truncated', out);
    // One flipped bit in an IPv4 header outside IHL is caught by the header checksum or a header check.
    if (v4) {
      const hdr = valid.slice();
      const hb = n % 20;
      if (hb === 0 && bit < 4) return; // the IHL nibble moves the checksummed range itself
      hdr[hb]! ^= 1 << bit;
      const h = parseIpv4(hdr);
      assert.ok(typeof h === 'string', `IPv4 header byte ${hb} bit ${bit} flipped and accepted`);
    }
  }), 2000);
});

test('random strings never make address parsing throw; what parses formats back to itself', () => {
  const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF:./%'.split(''));
  run(fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 45, size: 'max' }), fc.string({ unit: 'binary', maxLength: 45, size: 'max' })), (s) => {
    for (const a of [parseAddress(s), parseCidr(s)?.address ?? null]) {
      if (a === null) continue;
      assert.ok(a.length === 4 || a.length === 16);
      assert.deepEqual(bytes(parseAddress(formatAddress(a))!), bytes(a), s);
    }
  }), 3000);
  // Words → bytes → text is the identity on canonical text, IPv4-mapped included.
  assert.equal(formatAddress(wordsToBytes([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304])), '::ffff:1.2.3.4');
});
