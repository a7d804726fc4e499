/**
 * IPv4 header codec (RFC 791 §3.1).
 *
 *   0                   1                   2                   3
 *   |Version|  IHL  |Type of Service|          Total Length         |
 *   |         Identification        |Flags|      Fragment Offset    |
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   |                       Source Address                          |
 *   |                    Destination Address                        |
 *   |                    Options                    |    Padding    |
 */
import { internetChecksum, sum16 } from './checksum.js';
import type { DropReason } from './drop.js';
import type { IpPacketInfo } from './ip.js';

export const IPV4_HEADER_LENGTH = 20;

/** RFC 791 §3.1 flags, in the 16-bit flags/fragment-offset word. */
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const FRAGMENT_OFFSET_MASK = 0x1fff;

/**
 * Validates an IPv4 header and locates its payload. A buffer longer than Total Length (link
 * padding) is trimmed to it. With `into` (whose `src`/`dst` are 4-byte arrays), the result is
 * written there instead of a new object — the addresses then are copies, not views — so a stack's
 * input path allocates nothing per packet. Fragments are dropped: synack does not reassemble (it sends with DF
 * and an MSS that fits the path; RFC 8900 explains why fragmentation is fragile anyway).
 */
export function parseIpv4(packet: Uint8Array, into?: IpPacketInfo, verifyChecksum = true): IpPacketInfo | DropReason {
  if (packet.length < IPV4_HEADER_LENGTH) return 'ip-truncated';
  if (packet[0] >>> 4 !== 4) return 'ip-bad-version';
  const headerLength = (packet[0] & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LENGTH || headerLength > packet.length) return 'ipv4-bad-ihl';
  const totalLength = (packet[2] << 8) | packet[3];
  if (totalLength < headerLength || totalLength > packet.length) return 'ipv4-bad-length';
  // RFC 1071: a correct header, checksum field included, sums to all ones.
  // (Not with verifyChecksum false: a capture analyser reads headers whose checksum the sending
  // host's NIC fills in after the capture point — checksum offload.)
  if (verifyChecksum && sum16(packet, 0, headerLength) !== 0xffff) return 'ipv4-bad-checksum';
  const fragment = (packet[6] << 8) | packet[7];
  if ((fragment & (FLAG_MF | FRAGMENT_OFFSET_MASK)) !== 0) return 'ipv4-fragment';
  if (into !== undefined) {
    const src = into.src;
    const dst = into.dst;
    src[0] = packet[12]; src[1] = packet[13]; src[2] = packet[14]; src[3] = packet[15];
    dst[0] = packet[16]; dst[1] = packet[17]; dst[2] = packet[18]; dst[3] = packet[19];
    into.version = 4;
    into.protocol = packet[9];
    into.ttl = packet[8];
    into.payloadOffset = headerLength;
    into.payloadLength = totalLength - headerLength;
    return into;
  }
  return {
    version: 4,
    src: packet.subarray(12, 16),
    dst: packet.subarray(16, 20),
    protocol: packet[9],
    ttl: packet[8],
    payloadOffset: headerLength,
    payloadLength: totalLength - headerLength,
  };
}

/** Recomputes the checksum of the IPv4 header of `headerLength` bytes at `packet[0]` (after a field changed). */
export function setIpv4HeaderChecksum(packet: Uint8Array, headerLength: number): void {
  packet[10] = 0;
  packet[11] = 0;
  const c = internetChecksum(packet, 0, headerLength);
  packet[10] = c >>> 8;
  packet[11] = c & 0xff;
}

/**
 * Writes a 20-byte IPv4 header (no options) with DF set, since TCP sizes its segments to the path
 * (RFC 1191 path MTU discovery), and a correct header checksum. Returns 20.
 */
export function writeIpv4Header(
  out: Uint8Array,
  offset: number,
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  payloadLength: number,
  ttl: number,
  id: number,
): number {
  const totalLength = IPV4_HEADER_LENGTH + payloadLength;
  out[offset] = 0x45; // version 4, IHL 5
  out[offset + 1] = 0; // DSCP/ECN
  out[offset + 2] = totalLength >>> 8;
  out[offset + 3] = totalLength & 0xff;
  out[offset + 4] = (id >>> 8) & 0xff;
  out[offset + 5] = id & 0xff;
  out[offset + 6] = FLAG_DF >>> 8;
  out[offset + 7] = 0;
  out[offset + 8] = ttl;
  out[offset + 9] = protocol;
  out[offset + 10] = 0;
  out[offset + 11] = 0;
  out.set(src, offset + 12);
  out.set(dst, offset + 16);
  const checksum = internetChecksum(out, offset, IPV4_HEADER_LENGTH);
  out[offset + 10] = checksum >>> 8;
  out[offset + 11] = checksum & 0xff;
  return IPV4_HEADER_LENGTH;
}
