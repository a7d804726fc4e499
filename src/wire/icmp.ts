/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443) messages that a TCP host acts on: echo, so the stack answers
 * ping, and the error messages that RFC 1122 §4.2.3.9 and RFC 5927 have TCP react to, with the
 * ports and sequence number of the segment that caused them so the stack can find the connection
 * and check the error is plausible (RFC 5927 §4.1).
 */
import { sum16 } from './checksum.js';
import type { DropReason } from './drop.js';

export type IcmpErrorCategory =
  | 'unreachable'
  | 'port-unreachable'
  | 'proto-unreachable'
  | 'frag-needed'
  | 'packet-too-big'
  | 'time-exceeded'
  | 'parameter-problem'
  | 'other';

/** The start of the packet an ICMP error quotes. */
export interface IcmpOriginal {
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  /** Present when the quote reaches the transport ports (TCP or UDP). */
  srcPort?: number;
  dstPort?: number;
  /** TCP only: SEG.SEQ of the quoted segment. */
  seq?: number;
}

export type IcmpMessage =
  | { kind: 'echo-request'; id: number; sequence: number; data: Uint8Array }
  | { kind: 'echo-reply'; id: number; sequence: number; data: Uint8Array }
  | {
      kind: 'error';
      type: number;
      code: number;
      category: IcmpErrorCategory;
      /** Next-hop MTU of IPv4 frag-needed (RFC 1191 §4) or IPv6 Packet Too Big (RFC 4443 §3.2). */
      mtu?: number;
      original: IcmpOriginal | null;
    };

export const ICMP_HEADER_LENGTH = 8;

// RFC 792 types and codes.
export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV4_SOURCE_QUENCH = 4;
export const ICMPV4_REDIRECT = 5;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV4_TIME_EXCEEDED = 11;
export const ICMPV4_PARAMETER_PROBLEM = 12;
export const ICMPV4_CODE_PROTO_UNREACHABLE = 2;
export const ICMPV4_CODE_PORT_UNREACHABLE = 3;
export const ICMPV4_CODE_FRAG_NEEDED = 4;

// RFC 4443 types and codes.
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_CODE_PORT_UNREACHABLE = 4;
export const ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER = 1;

const PROTO_TCP = 6;
const PROTO_UDP = 17;

function read16(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

/** Reads ports (and the TCP sequence number) from a quoted transport header, when present. */
function quoteTransport(b: Uint8Array, at: number, original: IcmpOriginal): void {
  const p = original.protocol;
  if ((p === PROTO_TCP || p === PROTO_UDP) && at + 4 <= b.length) {
    original.srcPort = read16(b, at);
    original.dstPort = read16(b, at + 2);
    // RFC 792 quotes at least the first 8 bytes of the original data: for TCP, ports and SEQ.
    if (p === PROTO_TCP && at + 8 <= b.length) {
      original.seq = ((b[at + 4] << 24) | (b[at + 5] << 16) | (b[at + 6] << 8) | b[at + 7]) >>> 0;
    }
  }
}

/** The quoted IPv4 packet of an ICMP error; lenient, as routers may have trimmed or altered it. */
function quotedIpv4(b: Uint8Array, at: number): IcmpOriginal | null {
  if (at + 20 > b.length || b[at] >>> 4 !== 4) return null;
  const ihl = (b[at] & 0x0f) * 4;
  if (ihl < 20 || at + ihl > b.length) return null;
  const original: IcmpOriginal = {
    src: b.subarray(at + 12, at + 16),
    dst: b.subarray(at + 16, at + 20),
    protocol: b[at + 9],
  };
  // Only the first fragment carries the transport header.
  if ((read16(b, at + 6) & 0x1fff) === 0) quoteTransport(b, at + ihl, original);
  return original;
}

/** The quoted IPv6 packet of an ICMPv6 error, extension headers walked as far as the quote goes. */
function quotedIpv6(b: Uint8Array, at: number): IcmpOriginal | null {
  if (at + 40 > b.length || b[at] >>> 4 !== 6) return null;
  const original: IcmpOriginal = {
    src: b.subarray(at + 8, at + 24),
    dst: b.subarray(at + 24, at + 40),
    protocol: b[at + 6],
  };
  let next = b[at + 6];
  let i = at + 40;
  // The quote may stop anywhere; `protocol` is the last next header that could be read.
  for (;;) {
    if (next === 0 || next === 43 || next === 60) {
      if (i + 2 > b.length) break;
      next = b[i];
      i += (b[i + 1] + 1) * 8;
    } else if (next === 44) {
      if (i + 8 > b.length) break;
      next = b[i];
      // RFC 8200 §4.5: only the fragment with offset 0 carries the upper-layer header.
      if ((read16(b, i + 2) & 0xfff8) !== 0) {
        original.protocol = next;
        return original;
      }
      i += 8;
    } else {
      original.protocol = next;
      quoteTransport(b, i, original);
      return original;
    }
  }
  original.protocol = next;
  return original;
}

function echo(kind: 'echo-request' | 'echo-reply', payload: Uint8Array): IcmpMessage {
  return {
    kind,
    id: read16(payload, 4),
    sequence: read16(payload, 6),
    data: payload.subarray(ICMP_HEADER_LENGTH),
  };
}

/**
 * Parses an ICMPv4 message (the IPv4 payload). The checksum covers the ICMP message only (RFC 792).
 * Queries other than echo, and anything unknown, are 'icmp-unhandled'.
 */
export function parseIcmpv4(payload: Uint8Array): IcmpMessage | DropReason {
  if (payload.length < ICMP_HEADER_LENGTH) return 'icmp-truncated';
  if (sum16(payload, 0, payload.length) !== 0xffff) return 'icmp-bad-checksum';
  const type = payload[0];
  const code = payload[1];
  switch (type) {
    case ICMPV4_ECHO_REQUEST:
      return echo('echo-request', payload);
    case ICMPV4_ECHO_REPLY:
      return echo('echo-reply', payload);
    case ICMPV4_DEST_UNREACHABLE: {
      let category: IcmpErrorCategory = 'unreachable';
      if (code === ICMPV4_CODE_PORT_UNREACHABLE) category = 'port-unreachable';
      else if (code === ICMPV4_CODE_PROTO_UNREACHABLE) category = 'proto-unreachable';
      else if (code === ICMPV4_CODE_FRAG_NEEDED) category = 'frag-needed';
      const original = quotedIpv4(payload, ICMP_HEADER_LENGTH);
      if (category === 'frag-needed') {
        // RFC 1191 §4: Next-Hop MTU in the low 16 bits of the second word (0 from old routers).
        return { kind: 'error', type, code, category, mtu: read16(payload, 6), original };
      }
      return { kind: 'error', type, code, category, original };
    }
    case ICMPV4_TIME_EXCEEDED:
      return { kind: 'error', type, code, category: 'time-exceeded', original: quotedIpv4(payload, 8) };
    case ICMPV4_PARAMETER_PROBLEM:
      return { kind: 'error', type, code, category: 'parameter-problem', original: quotedIpv4(payload, 8) };
    case ICMPV4_SOURCE_QUENCH: // deprecated, to be ignored (RFC 6633), but still an error message
    case ICMPV4_REDIRECT:
      return { kind: 'error', type, code, category: 'other', original: quotedIpv4(payload, 8) };
    default:
      return 'icmp-unhandled';
  }
}

/**
 * Parses an ICMPv6 message (the upper-layer payload after the IPv6 extension headers). The checksum
 * includes the IPv6 pseudo-header with next header 58 (RFC 4443 §2.3), passed as its folded sum.
 * Error types are below 128 (RFC 4443 §2.1); unknown ones are still errors to pass up with their
 * quote (§2.4 b). Unknown informational types (NDP, MLD, ...) are 'icmp-unhandled'.
 */
export function parseIcmpv6(payload: Uint8Array, pseudoHeaderSum: number): IcmpMessage | DropReason {
  if (payload.length < ICMP_HEADER_LENGTH) return 'icmp-truncated';
  if (sum16(payload, 0, payload.length, pseudoHeaderSum) !== 0xffff) return 'icmp-bad-checksum';
  const type = payload[0];
  const code = payload[1];
  if (type === ICMPV6_ECHO_REQUEST) return echo('echo-request', payload);
  if (type === ICMPV6_ECHO_REPLY) return echo('echo-reply', payload);
  if (type >= 128) return 'icmp-unhandled';
  const original = quotedIpv6(payload, ICMP_HEADER_LENGTH);
  switch (type) {
    case ICMPV6_DEST_UNREACHABLE:
      return {
        kind: 'error',
        type,
        code,
        category: code === ICMPV6_CODE_PORT_UNREACHABLE ? 'port-unreachable' : 'unreachable',
        original,
      };
    case ICMPV6_PACKET_TOO_BIG: {
      const mtu = ((payload[4] << 24) | (payload[5] << 16) | (payload[6] << 8) | payload[7]) >>> 0;
      return { kind: 'error', type, code, category: 'packet-too-big', mtu, original };
    }
    case ICMPV6_TIME_EXCEEDED:
      return { kind: 'error', type, code, category: 'time-exceeded', original };
    case ICMPV6_PARAMETER_PROBLEM:
      // Code 1, "unrecognized Next Header", is IPv6's protocol unreachable; RFC 5461 §2 counts it a
      // hard error like ICMPv4 protocol unreachable.
      return {
        kind: 'error',
        type,
        code,
        category: code === ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER ? 'proto-unreachable' : 'parameter-problem',
        original,
      };
    default:
      return { kind: 'error', type, code, category: 'other', original };
  }
}

function finishChecksum(out: Uint8Array, offset: number, length: number, pseudoHeaderSum: number): void {
  out[offset + 2] = 0;
  out[offset + 3] = 0;
  const checksum = ~sum16(out, offset, length, pseudoHeaderSum) & 0xffff;
  out[offset + 2] = checksum >>> 8;
  out[offset + 3] = checksum & 0xff;
}

/**
 * Writes an echo request or reply (RFC 792; RFC 4443 §4.1-4.2) with its checksum. For ICMPv4 pass 0
 * as `pseudoHeaderSum`; for ICMPv6 the pseudo-header sum with next header 58 and upperLength =
 * 8 + data.length. Returns the bytes written.
 */
export function writeIcmpEcho(
  out: Uint8Array,
  offset: number,
  version: 4 | 6,
  reply: boolean,
  id: number,
  sequence: number,
  data: Uint8Array,
  pseudoHeaderSum: number,
): number {
  if (version === 4) out[offset] = reply ? ICMPV4_ECHO_REPLY : ICMPV4_ECHO_REQUEST;
  else out[offset] = reply ? ICMPV6_ECHO_REPLY : ICMPV6_ECHO_REQUEST;
  out[offset + 1] = 0;
  out[offset + 4] = (id >>> 8) & 0xff;
  out[offset + 5] = id & 0xff;
  out[offset + 6] = (sequence >>> 8) & 0xff;
  out[offset + 7] = sequence & 0xff;
  out.set(data, offset + ICMP_HEADER_LENGTH);
  const length = ICMP_HEADER_LENGTH + data.length;
  finishChecksum(out, offset, length, pseudoHeaderSum);
  return length;
}

/**
 * How many bytes of the offending packet an error quotes: as much as fits in 576 bytes of IPv4
 * (RFC 1812 §4.3.2.3; RFC 1122 §3.2.2 asks for at least the header + 8 bytes) or in the IPv6
 * minimum MTU of 1280 (RFC 4443 §2.4 c).
 */
export function icmpErrorQuoteLength(version: 4 | 6, originalLength: number): number {
  const limit = version === 4 ? 576 - 20 - ICMP_HEADER_LENGTH : 1280 - 40 - ICMP_HEADER_LENGTH;
  return Math.min(originalLength, limit);
}

/** Length of the message `writeIcmpError` writes: compute the ICMPv6 pseudo-header sum with it. */
export function icmpErrorLength(version: 4 | 6, originalLength: number): number {
  return ICMP_HEADER_LENGTH + icmpErrorQuoteLength(version, originalLength);
}

/**
 * Writes an ICMP error quoting the start of `original` (the whole offending IP packet), e.g.
 * port unreachable (v4 type 3 code 3, v6 type 1 code 4) to answer a datagram for a closed port.
 * `word` is the second 32-bit word (unused = 0; the MTU for frag-needed / Packet Too Big; the
 * pointer for parameter problems). For ICMPv6 pass the pseudo-header sum with upperLength =
 * `icmpErrorLength(6, original.length)`; for ICMPv4 pass 0. Returns the bytes written.
 */
export function writeIcmpError(
  out: Uint8Array,
  offset: number,
  version: 4 | 6,
  type: number,
  code: number,
  original: Uint8Array,
  pseudoHeaderSum: number,
  word = 0,
): number {
  const quote = icmpErrorQuoteLength(version, original.length);
  out[offset] = type;
  out[offset + 1] = code;
  out[offset + 4] = word >>> 24;
  out[offset + 5] = (word >>> 16) & 0xff;
  out[offset + 6] = (word >>> 8) & 0xff;
  out[offset + 7] = word & 0xff;
  out.set(original.subarray(0, quote), offset + ICMP_HEADER_LENGTH);
  const length = ICMP_HEADER_LENGTH + quote;
  finishChecksum(out, offset, length, pseudoHeaderSum);
  return length;
}
