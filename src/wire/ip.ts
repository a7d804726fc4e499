/**
 * IP dispatch: one entry point for a packet from a link, whichever version it is.
 */
import type { DropReason } from './drop.js';
import { parseIpv4 } from './ipv4.js';
import { parseIpv6 } from './ipv6.js';

/** What the stack needs from an IP header to hand the payload to TCP or ICMP. */
export interface IpPacketInfo {
  version: 4 | 6;
  /** Views into the packet, not copies: valid only while the packet is. */
  src: Uint8Array;
  dst: Uint8Array;
  /** IPv4 protocol, or the IPv6 upper-layer next header after any extension headers. */
  protocol: number;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl: number;
  /** Where the upper-layer message starts in the packet, and its length. */
  payloadOffset: number;
  payloadLength: number;
}

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

/**
 * Parses an IPv4 or IPv6 packet, chosen by the version nibble (RFC 791 §3.1, RFC 8200 §3).
 * `verifyChecksum` false skips the IPv4 header checksum (captures taken with checksum offload).
 */
export function parseIpPacket(packet: Uint8Array, verifyChecksum = true): IpPacketInfo | DropReason {
  if (packet.length === 0) return 'ip-truncated';
  const version = packet[0] >>> 4;
  if (version === 4) return parseIpv4(packet, undefined, verifyChecksum);
  if (version === 6) return parseIpv6(packet);
  return 'ip-bad-version';
}
