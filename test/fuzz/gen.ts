/**
 * Shared generators for the fuzz tests: fast-check arbitraries for the wire codecs' inputs, seeded
 * (Rng) builders and mutators for the stack input flood, and packet builders that reach what the
 * codecs do not emit (IPv4 options, IPv6 extension headers). Importing this module does nothing.
 */
import fc from 'fast-check';
import type { Arbitrary } from 'fast-check';
import type { Rng } from '../../src/link/rng.js';
import { internetChecksum, pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import type { DropReason } from '../../src/wire/drop.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { tcpOptionsLength, writeTcp, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';

// ================================================================================ drop reasons

/**
 * Every DropReason. `satisfies Record<DropReason, true>` makes this fail to compile when a reason is
 * added to or removed from src/wire/drop.ts, so "a parser returned a known reason" stays exact.
 */
const REASONS = {
  'ip-truncated': true, 'ip-bad-version': true, 'ipv4-bad-ihl': true, 'ipv4-bad-checksum': true,
  'ipv4-bad-length': true, 'ipv4-fragment': true, 'ipv6-bad-length': true, 'ipv6-bad-extension': true,
  'ipv6-fragment': true, 'ipv6-no-next-header': true, 'ip-not-for-us': true, 'ip-unknown-protocol': true,
  'tcp-truncated': true, 'tcp-bad-offset': true, 'tcp-bad-checksum': true, 'tcp-bad-options': true,
  'tcp-checksum-zero': true, 'tcp-bad-address': true, 'icmp-truncated': true, 'icmp-bad-checksum': true, 'icmp-unhandled': true, 'icmp-bad-sequence': true,
  'tcp-no-socket': true, 'tcp-invalid-state': true, 'tcp-listen-overflow': true, 'tcp-bad-syn-cookie': true, 'tcp-connection-limit': true,
  'tcp-forward-pending': true, 'tcp-forward-overflow': true,
  'dhcp-truncated': true, 'dhcp-bad-op': true, 'dhcp-bad-hlen': true, 'dhcp-bad-cookie': true,
  'dhcp-option-overrun': true, 'dhcp-bad-option': true, 'dhcp-bad-overload': true,
  'dns-truncated': true, 'dns-bad-count': true, 'dns-bad-label': true, 'dns-pointer-loop': true,
  'dns-name-too-long': true, 'dns-bad-rdata': true, 'dns-bad-opt': true,
  'eth-truncated': true, 'eth-bad-type': true, 'eth-unknown-type': true, 'eth-vlan': true, 'eth-bad-source': true,
  'eth-not-for-us': true, 'net-no-route': true, 'neighbour-unreachable': true, 'neighbour-queue-full': true, 'net-bad-packet': true,
  'arp-truncated': true, 'arp-unsupported': true, 'arp-bad-op': true, 'arp-invalid': true, 'arp-not-for-us': true, 'arp-unsolicited': true,
  'ndp-truncated': true, 'ndp-bad-checksum': true, 'ndp-bad-code': true, 'ndp-bad-option': true, 'ndp-bad-hop-limit': true,
  'ndp-invalid': true, 'ndp-not-for-us': true, 'ndp-unsolicited': true, 'ndp-unhandled': true,
  'udp-truncated': true, 'udp-bad-length': true, 'udp-bad-checksum': true, 'udp-checksum-zero': true,
  'udp-bad-address': true, 'udp-no-socket': true, 'udp-queue-full': true,
  'ip-fragment-bad': true, 'ip-fragment-overlap': true, 'ip-fragment-duplicate': true,
  'ip-reassembly-timeout': true, 'ip-reassembly-evicted': true,
} as const satisfies Record<DropReason, true>;

export const DROP_REASONS: ReadonlySet<string> = new Set(Object.keys(REASONS));

/**
 * Reasons the stack counts before a packet reaches TCP, UDP or ICMP input (before `tcpIn++`,
 * `udpIn++`, `icmpIn++`) or reassembly (`fragmentsIn++`): with these, every packet in is exactly one
 * of: such a drop, a TCP, UDP or ICMP input, a fragment taken in.
 */
export const PRE_TRANSPORT_REASONS: ReadonlySet<string> = new Set<DropReason>([
  'ip-truncated', 'ip-bad-version', 'ipv4-bad-ihl', 'ipv4-bad-checksum', 'ipv4-bad-length',
  'ipv4-fragment', 'ipv6-bad-length', 'ipv6-bad-extension', 'ipv6-fragment', 'ipv6-no-next-header',
  'ip-not-for-us', 'ip-unknown-protocol', 'tcp-truncated', 'tcp-bad-offset', 'tcp-bad-checksum',
  'tcp-checksum-zero', 'tcp-bad-options', 'tcp-bad-address',
  'udp-truncated', 'udp-bad-length', 'udp-bad-checksum', 'udp-checksum-zero', 'udp-bad-address',
  // Fragments refused on arrival (a fragment taken in counts in `fragmentsIn` instead).
  'ip-fragment-bad', 'ip-fragment-overlap', 'ip-fragment-duplicate', 'ip-reassembly-evicted',
]);

// ================================================================================ fast-check

export const u8: Arbitrary<number> = fc.integer({ min: 0, max: 0xff });
export const u16: Arbitrary<number> = fc.integer({ min: 0, max: 0xffff });
export const u32: Arbitrary<number> = fc.integer({ min: 0, max: 0xffffffff });

export function ipv4Bytes(): Arbitrary<Uint8Array> {
  return fc.uint8Array({ minLength: 4, maxLength: 4 });
}

/** 16 bytes, biased to runs of zero groups (what RFC 5952 compression is about) and to ::ffff:0:0/96. */
export function ipv6Bytes(): Arbitrary<Uint8Array> {
  const word = fc.oneof(
    { arbitrary: fc.constant(0), weight: 4 },
    { arbitrary: fc.constantFrom(1, 0xffff, 0xdb8, 0xfe80, 0xabcd), weight: 1 },
    { arbitrary: u16, weight: 3 },
  );
  const fromWords = fc.array(word, { minLength: 8, maxLength: 8 }).map(wordsToBytes);
  const mapped = ipv4Bytes().map((v4) => {
    const b = new Uint8Array(16);
    b[10] = 0xff;
    b[11] = 0xff;
    b.set(v4, 12);
    return b;
  });
  return fc.oneof(
    { arbitrary: fromWords, weight: 6 },
    { arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }), weight: 2 },
    { arbitrary: mapped, weight: 1 },
  );
}

export function wordsToBytes(words: readonly number[]): Uint8Array {
  const b = new Uint8Array(words.length * 2);
  words.forEach((w, i) => {
    b[2 * i] = w >>> 8;
    b[2 * i + 1] = w & 0xff;
  });
  return b;
}

/** Options that `writeTcp` can emit, each kind present or absent. */
export function tcpOptionsArb(): Arbitrary<TcpOptions> {
  return fc.record(
    {
      mss: u16,
      wscale: u8,
      sackPermitted: fc.boolean(),
      sack: fc.array(fc.tuple(u32, u32), { minLength: 0, maxLength: 5 }),
      timestamp: fc.record({ val: u32, ecr: u32 }),
    },
    { requiredKeys: [] },
  ) as Arbitrary<TcpOptions>;
}

export function tcpSegmentArb(maxPayload = 64): Arbitrary<TcpSegment> {
  return fc.record({
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    options: tcpOptionsArb(),
    payload: fc.uint8Array({ maxLength: maxPayload, size: 'max' }),
  });
}

/** A pair of addresses of one family, for pseudo-headers and IP packets. */
export function addressPairArb(): Arbitrary<{ src: Uint8Array; dst: Uint8Array }> {
  return fc.oneof(
    fc.record({ src: ipv4Bytes(), dst: ipv4Bytes() }),
    fc.record({ src: ipv6Bytes(), dst: ipv6Bytes() }),
  );
}

// ================================================================================ IPv6 extension headers

/** RFC 8200 §4 types this suite builds. */
export type ExtKind = 'hop-by-hop' | 'routing' | 'fragment' | 'destination';
export const EXT_TYPE: Record<ExtKind, number> = { 'hop-by-hop': 0, routing: 43, fragment: 44, destination: 60 };

/** One extension header, its Next Header byte left for `extChain` to fill. */
export interface ExtHeader {
  kind: ExtKind;
  bytes: Uint8Array;
}

/**
 * Fills an options area of exactly `area` bytes (RFC 8200 §4.2) with options a host must accept:
 * Pad1, PadN, and unknown types whose two high bits are 00 ("skip over this option"). `picks` steer
 * the choice; the rest is padded.
 */
export function fillOptions(area: number, picks: readonly number[]): Uint8Array {
  const out = new Uint8Array(area);
  let i = 0;
  for (const p of picks) {
    const left = area - i;
    if (left <= 0) break;
    if (left === 1 || p % 3 === 0) {
      out[i++] = 0; // Pad1
      continue;
    }
    const len = (p >>> 2) % (left - 1); // data bytes: 0..left-2
    out[i] = p % 3 === 1 ? 1 : 2 + ((p >>> 8) % 62); // PadN, or an unknown type 0x02..0x3f
    out[i + 1] = len;
    for (let k = 0; k < len; k++) out[i + 2 + k] = (p >>> (k % 24)) & 0xff;
    i += 2 + len;
  }
  // Pad what is left: PadN when it takes two bytes or more, else Pad1.
  const left = area - i;
  if (left === 1) out[i] = 0;
  else if (left >= 2) {
    out[i] = 1;
    out[i + 1] = left - 2;
  }
  return out;
}

/** Hop-by-Hop or Destination Options: (len8 + 1) * 8 bytes, options area filled by `fillOptions`. */
export function optionsHeader(kind: 'hop-by-hop' | 'destination', len8: number, picks: readonly number[]): ExtHeader {
  const bytes = new Uint8Array((len8 + 1) * 8);
  bytes[1] = len8;
  bytes.set(fillOptions(bytes.length - 2, picks), 2);
  return { kind, bytes };
}

/** A Routing header (RFC 8200 §4.4); synack accepts it only with Segments Left 0. */
export function routingHeader(len8: number, routingType: number, segmentsLeft: number, fill: number): ExtHeader {
  const bytes = new Uint8Array((len8 + 1) * 8);
  bytes[1] = len8;
  bytes[2] = routingType;
  bytes[3] = segmentsLeft;
  for (let i = 4; i < bytes.length; i++) bytes[i] = (fill * (i + 1)) & 0xff;
  return { kind: 'routing', bytes };
}

/** A Fragment header (RFC 8200 §4.5): offset in 8-byte units, M flag, identification. */
export function fragmentHeader(offset: number, more: boolean, id: number): ExtHeader {
  const bytes = new Uint8Array(8);
  const w = ((offset & 0x1fff) << 3) | (more ? 1 : 0);
  bytes[2] = w >>> 8;
  bytes[3] = w & 0xff;
  bytes[4] = id >>> 24;
  bytes[5] = (id >>> 16) & 0xff;
  bytes[6] = (id >>> 8) & 0xff;
  bytes[7] = id & 0xff;
  return { kind: 'fragment', bytes };
}

/** A chain a host processes: an optional Hop-by-Hop first, then Destination Options / Routing. */
export function acceptableExtChainArb(maxLength = 3): Arbitrary<ExtHeader[]> {
  const picks = fc.array(fc.nat(), { maxLength: 8 });
  const len8 = fc.integer({ min: 0, max: 3 });
  const later = fc.oneof(
    fc.tuple(len8, picks).map(([l, p]) => optionsHeader('destination', l, p)),
    fc.tuple(len8, u8, u32).map(([l, t, f]) => routingHeader(l, t, 0, f)),
  );
  return fc.tuple(
    fc.option(fc.tuple(len8, picks).map(([l, p]) => optionsHeader('hop-by-hop', l, p)), { nil: undefined }),
    fc.array(later, { maxLength }),
  ).map(([hbh, rest]) => (hbh ? [hbh, ...rest] : rest));
}

/** The bytes of a chain ending in `upper`, Next Header fields linked. */
export function extChain(headers: readonly ExtHeader[], upper: number): Uint8Array {
  const total = headers.reduce((n, h) => n + h.bytes.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  headers.forEach((h, i) => {
    out.set(h.bytes, at);
    out[at] = i + 1 < headers.length ? EXT_TYPE[headers[i + 1]!.kind] : upper;
    at += h.bytes.length;
  });
  return out;
}

// ================================================================================ packet builders

export interface Ipv4Extra {
  /** IPv4 options (RFC 791 §3.1), a multiple of 4 bytes, at most 40. */
  options?: Uint8Array;
  ttl?: number;
  id?: number;
  /** The flags/fragment-offset word; default DF. */
  fragment?: number;
  tos?: number;
}

/** An IPv4 packet with a correct header checksum (built by hand, so options can be present). */
export function ipv4Packet(src: Uint8Array, dst: Uint8Array, protocol: number, body: Uint8Array, extra: Ipv4Extra = {}): Uint8Array {
  const opts = extra.options ?? new Uint8Array(0);
  if (opts.length % 4 !== 0 || opts.length > 40) throw new Error('IPv4 options: a multiple of 4, at most 40 bytes');
  const hl = 20 + opts.length;
  const p = new Uint8Array(hl + body.length);
  const total = p.length;
  const frag = extra.fragment ?? 0x4000;
  const id = extra.id ?? 1;
  p[0] = 0x40 | (hl / 4);
  p[1] = extra.tos ?? 0;
  p[2] = total >>> 8;
  p[3] = total & 0xff;
  p[4] = (id >>> 8) & 0xff;
  p[5] = id & 0xff;
  p[6] = frag >>> 8;
  p[7] = frag & 0xff;
  p[8] = extra.ttl ?? 64;
  p[9] = protocol;
  p.set(src, 12);
  p.set(dst, 16);
  p.set(opts, 20);
  const c = internetChecksum(p, 0, hl);
  p[10] = c >>> 8;
  p[11] = c & 0xff;
  p.set(body, hl);
  return p;
}

/** An IPv6 packet, extension headers (if any) between the fixed header and `body`. */
export function ipv6Packet(src: Uint8Array, dst: Uint8Array, upper: number, body: Uint8Array, ext: readonly ExtHeader[] = [], hopLimit = 64): Uint8Array {
  const chain = extChain(ext, upper);
  const p = new Uint8Array(40 + chain.length + body.length);
  writeIpv6Header(p, 0, src, dst, ext.length > 0 ? EXT_TYPE[ext[0]!.kind] : upper, chain.length + body.length, hopLimit);
  p.set(chain, 40);
  p.set(body, 40 + chain.length);
  return p;
}

/** The TCP bytes of `seg` with a checksum for this address pair (writeTcp, the codec under test). */
export function tcpBytes(src: Uint8Array, dst: Uint8Array, seg: TcpSegment): Uint8Array {
  const len = 20 + tcpOptionsLength(seg.options) + seg.payload.length;
  const out = new Uint8Array(len);
  writeTcp(out, 0, seg, pseudoHeaderSum(src, dst, 6, len));
  return out;
}

/** TCP in IPv4 or IPv6 (by the address length), every checksum correct. */
export function tcpIpPacket(src: Uint8Array, dst: Uint8Array, seg: TcpSegment, ext: readonly ExtHeader[] = []): Uint8Array {
  const body = tcpBytes(src, dst, seg);
  return src.length === 4 ? ipv4Packet(src, dst, 6, body) : ipv6Packet(src, dst, 6, body, ext);
}

/**
 * Best effort, never throws: recomputes the IPv4 header checksum and the TCP / ICMP checksum of a
 * (possibly mutated) packet from what its header says, so mutations reach past the checksum checks.
 * Extension headers are not walked: an IPv6 upper layer is fixed only right after the fixed header.
 */
export function refreshChecksums(p: Uint8Array): void {
  if (p.length < 1) return;
  const v = p[0]! >>> 4;
  let hl: number;
  let end: number;
  let proto: number;
  let src: Uint8Array;
  let dst: Uint8Array;
  if (v === 4) {
    if (p.length < 20) return;
    hl = (p[0]! & 0x0f) * 4;
    if (hl < 20 || hl > p.length) return;
    p[10] = 0;
    p[11] = 0;
    const c = internetChecksum(p, 0, hl);
    p[10] = c >>> 8;
    p[11] = c & 0xff;
    end = Math.min(p.length, (p[2]! << 8) | p[3]!);
    proto = p[9]!;
    src = p.subarray(12, 16);
    dst = p.subarray(16, 20);
  } else if (v === 6) {
    if (p.length < 40) return;
    hl = 40;
    end = Math.min(p.length, 40 + ((p[4]! << 8) | p[5]!));
    proto = p[6]!;
    src = p.subarray(8, 24);
    dst = p.subarray(24, 40);
  } else {
    return;
  }
  const len = end - hl;
  if (len < 0) return;
  if (proto === 6 && len >= 18) {
    p[hl + 16] = 0;
    p[hl + 17] = 0;
    const c = ~sum16(p, hl, len, pseudoHeaderSum(src, dst, 6, len)) & 0xffff;
    p[hl + 16] = c >>> 8;
    p[hl + 17] = c & 0xff;
  } else if ((proto === 1 || proto === 58) && len >= 4) {
    p[hl + 2] = 0;
    p[hl + 3] = 0;
    const initial = proto === 58 ? pseudoHeaderSum(src, dst, 58, len) : 0;
    const c = ~sum16(p, hl, len, initial) & 0xffff;
    p[hl + 2] = c >>> 8;
    p[hl + 3] = c & 0xff;
  }
}

// ================================================================================ seeded (Rng) builders

export function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const w = rng.nextU32();
    b[i] = w & 0xff;
    if (i + 1 < n) b[i + 1] = (w >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (w >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = w >>> 24;
  }
  return b;
}

/** A length skewed to small values, up to `max`. */
export function skewedLength(rng: Rng, max: number): number {
  const r = rng.next();
  return Math.floor(r * r * r * (max + 1));
}

/** Where to aim sequence-space fields: the target connection's numbers, when there is one. */
export interface SeqHint {
  /** The stack's SND.UNA and SND.NXT (what an ACK from the peer would acknowledge). */
  sndUna: number;
  sndNxt: number;
  /** The stack's RCV.NXT (what the peer's next SEQ should be). */
  rcvNxt: number;
}

/** A sequence number near `base` (exactly it, a little off, in or past a window) or anywhere. */
export function nearSeq(rng: Rng, base: number | undefined): number {
  const r = rng.next();
  if (base === undefined || r < 0.3) return rng.nextU32();
  if (r < 0.6) return base >>> 0;
  if (r < 0.85) return (base + rng.int(-3000, 3000)) >>> 0;
  return (base + rng.int(-(2 ** 20), 2 ** 20)) >>> 0;
}

/** Random options of every kind the codec writes, SACK blocks and timestamps sometimes aimed. */
export function randomTcpOptions(rng: Rng, hint?: SeqHint, tsVal?: number): TcpOptions {
  const o: TcpOptions = {};
  if (rng.next() < 0.25) o.mss = rng.next() < 0.2 ? rng.int(0, 100) : rng.int(0, 0xffff);
  if (rng.next() < 0.2) o.wscale = rng.next() < 0.7 ? rng.int(0, 15) : rng.int(0, 0xff);
  if (rng.next() < 0.2) o.sackPermitted = true;
  if (rng.next() < 0.3) {
    const n = rng.int(1, 4);
    o.sack = [];
    const outstanding = hint ? (hint.sndNxt - hint.sndUna) >>> 0 : 0;
    for (let i = 0; i < n; i++) {
      if (hint && outstanding > 1 && outstanding < 2 ** 30 && rng.next() < 0.5) {
        // A block of what is really in flight, above SND.UNA (RFC 2018 §4): scoreboard and recovery.
        const a = rng.int(1, outstanding - 1);
        o.sack.push([(hint.sndUna + a) >>> 0, (hint.sndUna + rng.int(a + 1, outstanding)) >>> 0]);
        continue;
      }
      const l = nearSeq(rng, hint ? (rng.next() < 0.5 ? hint.sndUna : hint.sndNxt) : undefined);
      const r = rng.next() < 0.8 ? (l + rng.int(0, 5000)) >>> 0 : rng.nextU32();
      o.sack.push([l, r]);
    }
  }
  if (rng.next() < 0.5) {
    o.timestamp = {
      val: tsVal !== undefined && rng.next() < 0.7 ? tsVal >>> 0 : rng.nextU32(),
      ecr: rng.next() < 0.2 ? 0 : rng.nextU32(),
    };
  }
  return o;
}

/**
 * A segment with random flags, numbers, window, options and payload, aimed by `hint` if given. The
 * default payload bound leaves room in a 1500-byte MTU for IPv6, extension headers, 40 bytes of TCP
 * options and what `mutate` inserts.
 */
export function randomSegment(rng: Rng, srcPort: number, dstPort: number, hint?: SeqHint, tsVal?: number, maxPayload = 1300): TcpSegment {
  const r = rng.next();
  // Mostly one of the common flag combinations, else any of the 256.
  const common = [0x02, 0x12, 0x10, 0x18, 0x11, 0x19, 0x04, 0x14, 0x01, 0x03, 0x00, 0x06, 0x07];
  const flags = r < 0.6 ? common[rng.int(0, common.length - 1)]! : rng.int(0, 0xff);
  const seq = nearSeq(rng, hint?.rcvNxt);
  const ack = nearSeq(rng, hint ? (rng.next() < 0.6 ? hint.sndNxt : hint.sndUna) : undefined);
  const payloadLength = rng.next() < 0.5 ? 0 : skewedLength(rng, maxPayload);
  return {
    srcPort,
    dstPort,
    seq,
    ack,
    flags,
    window: rng.next() < 0.1 ? 0 : rng.int(0, 0xffff),
    urgent: rng.next() < 0.9 ? 0 : rng.int(0, 0xffff),
    options: randomTcpOptions(rng, hint, tsVal),
    payload: randomBytes(rng, payloadLength),
  };
}

/**
 * A mutated copy of `p`: truncated, bits flipped, bytes overwritten, or bytes inserted/removed;
 * checksums refreshed afterwards half the time, so the mutation is seen past them.
 */
export function mutate(rng: Rng, p: Uint8Array): Uint8Array {
  let q = p.slice();
  const ops = rng.int(1, 3);
  for (let k = 0; k < ops; k++) {
    const op = rng.int(0, 4);
    if (op === 0 && q.length > 0) {
      q = q.slice(0, rng.int(0, q.length - 1));
    } else if (op === 1 && q.length > 0) {
      const flips = rng.int(1, 4);
      for (let f = 0; f < flips; f++) q[rng.int(0, q.length - 1)]! ^= 1 << rng.int(0, 7);
    } else if (op === 2 && q.length > 0) {
      // Header bytes are where the parsers branch: overwrite one of the first 80 more often.
      const at = rng.next() < 0.7 ? rng.int(0, Math.min(q.length, 80) - 1) : rng.int(0, q.length - 1);
      q[at] = rng.next() < 0.3 ? [0, 0xff, 0x40, 0x45, 0x60, 0x0f, 0xf0][rng.int(0, 6)]! : rng.int(0, 0xff);
    } else if (op === 3) {
      const at = rng.int(0, q.length);
      const ins = randomBytes(rng, rng.int(1, 12));
      const r = new Uint8Array(q.length + ins.length);
      r.set(q.subarray(0, at));
      r.set(ins, at);
      r.set(q.subarray(at), at + ins.length);
      q = r;
    } else if (q.length > 1) {
      const at = rng.int(0, q.length - 1);
      const n = rng.int(1, Math.min(8, q.length - at));
      const r = new Uint8Array(q.length - n);
      r.set(q.subarray(0, at));
      r.set(q.subarray(at + n), at);
      q = r;
    }
  }
  if (rng.next() < 0.5) refreshChecksums(q);
  return q;
}
