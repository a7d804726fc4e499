/**
 * IPv6 header codec (RFC 8200 §3) and extension header walk (RFC 8200 §4).
 *
 *   |Version| Traffic Class |           Flow Label                  |
 *   |         Payload Length        |  Next Header  |   Hop Limit   |
 *   |                  Source Address (16 bytes)                    |
 *   |               Destination Address (16 bytes)                  |
 */
import type { DropReason } from './drop.js';
import type { IpPacketInfo } from './ip.js';

export const IPV6_HEADER_LENGTH = 40;

// RFC 8200 §4 extension header types that a host processes itself.
export const NEXT_HOP_BY_HOP = 0;
export const NEXT_ROUTING = 43;
export const NEXT_FRAGMENT = 44;
export const NEXT_NO_NEXT_HEADER = 59;
export const NEXT_DESTINATION_OPTIONS = 60;

/**
 * Walks the options of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2) and says whether
 * the packet may be processed. Pad1 and PadN are padding; any other option is unknown to synack, and
 * its type's two high bits say what to do: 00 skip it, anything else discard the packet (01 silently,
 * 10/11 with an ICMP Parameter Problem that synack does not send). So e.g. a Jumbo Payload option
 * (0xC2, RFC 2675) is refused rather than misread.
 */
function optionsAcceptable(packet: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const type = packet[i];
    if (type === 0) {
      i++; // Pad1
      continue;
    }
    if (i + 1 >= end) return false;
    const len = packet[i + 1];
    if (i + 2 + len > end) return false;
    if (type !== 1 && (type & 0xc0) !== 0) return false;
    i += 2 + len;
  }
  return true;
}

/**
 * Validates an IPv6 header, walks its extension headers, and locates the upper-layer payload.
 * A buffer longer than 40 + Payload Length is trimmed to it. With `into` (whose `src`/`dst` are
 * 16-byte arrays) the result is written there, addresses copied, as `parseIpv4` does.
 */
export function parseIpv6(packet: Uint8Array, into?: IpPacketInfo): IpPacketInfo | DropReason {
  if (packet.length < IPV6_HEADER_LENGTH) return 'ip-truncated';
  if (packet[0] >>> 4 !== 6) return 'ip-bad-version';
  const payloadLength = (packet[4] << 8) | packet[5];
  // A zero Payload Length with a Jumbo Payload option (RFC 2675) is not supported: the option walk
  // below refuses the Jumbo option, and a plain zero means an empty payload.
  const end = IPV6_HEADER_LENGTH + payloadLength;
  if (end > packet.length) return 'ipv6-bad-length';
  let next = packet[6];
  let offset = IPV6_HEADER_LENGTH;
  for (;;) {
    if (next === NEXT_FRAGMENT) {
      // synack does not reassemble; like IPv4 fragments, these are dropped (RFC 8200 §4.5).
      return 'ipv6-fragment';
    }
    if (next === NEXT_NO_NEXT_HEADER) return 'ipv6-no-next-header';
    if (next !== NEXT_HOP_BY_HOP && next !== NEXT_ROUTING && next !== NEXT_DESTINATION_OPTIONS) break;
    // RFC 8200 §4.1: Hop-by-Hop Options may only come first, right after the IPv6 header.
    if (next === NEXT_HOP_BY_HOP && offset !== IPV6_HEADER_LENGTH) return 'ipv6-bad-extension';
    // Every one of these is at least 8 bytes; Hdr Ext Len counts further 8-byte units.
    if (offset + 8 > end) return 'ipv6-bad-extension';
    const headerLength = (packet[offset + 1] + 1) * 8;
    if (offset + headerLength > end) return 'ipv6-bad-extension';
    if (next === NEXT_ROUTING) {
      // RFC 8200 §4.4: a host that is not the last hop of a source route (Segments Left != 0)
      // would have to forward it; synack is a host, not a router, so the packet is discarded.
      if (packet[offset + 3] !== 0) return 'ipv6-bad-extension';
    } else if (!optionsAcceptable(packet, offset + 2, offset + headerLength)) {
      return 'ipv6-bad-extension';
    }
    next = packet[offset];
    offset += headerLength;
  }
  if (into !== undefined) {
    const src = into.src;
    const dst = into.dst;
    for (let i = 0; i < 16; i++) {
      src[i] = packet[8 + i];
      dst[i] = packet[24 + i];
    }
    into.version = 6;
    into.protocol = next;
    into.ttl = packet[7];
    into.payloadOffset = offset;
    into.payloadLength = end - offset;
    return into;
  }
  return {
    version: 6,
    src: packet.subarray(8, 24),
    dst: packet.subarray(24, 40),
    protocol: next,
    ttl: packet[7],
    payloadOffset: offset,
    payloadLength: end - offset,
  };
}

/**
 * Writes a 40-byte IPv6 header with traffic class and flow label zero. Returns 40.
 * (A flow label per connection, RFC 6437, would be a later refinement.)
 */
export function writeIpv6Header(
  out: Uint8Array,
  offset: number,
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  payloadLength: number,
  hopLimit: number,
): number {
  out[offset] = 0x60;
  out[offset + 1] = 0;
  out[offset + 2] = 0;
  out[offset + 3] = 0;
  out[offset + 4] = (payloadLength >>> 8) & 0xff;
  out[offset + 5] = payloadLength & 0xff;
  out[offset + 6] = nextHeader;
  out[offset + 7] = hopLimit;
  out.set(src, offset + 8);
  out.set(dst, offset + 24);
  return IPV6_HEADER_LENGTH;
}
