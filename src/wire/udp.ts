/**
 * UDP header codec (RFC 768).
 *
 *   0      7 8     15 16    23 24    31
 *  |     Source      |   Destination   |
 *  |      Port       |      Port       |
 *  |     Length      |    Checksum     |
 *  |          data octets ...
 *
 * The checksum covers the same pseudo-header as TCP's (RFC 768; RFC 8200 §8.1 for IPv6), the
 * header and the data. Over IPv4 a checksum field of 0 means "none computed" and is accepted; over
 * IPv6 it is mandatory, and a 0 field is a drop (RFC 8200 §8.1: "IPv6 receivers must discard UDP
 * packets containing a zero checksum"). A computed checksum of 0 is sent as 0xffff (RFC 768).
 */
import { sum16 } from './checksum.js';

export const UDP_HEADER_LENGTH = 8;

/** Why a UDP datagram was dropped. */
export type UdpDropReason =
  | 'udp-truncated'
  /** The Length field is below 8 or beyond the IP payload. */
  | 'udp-bad-length'
  | 'udp-bad-checksum'
  /** A 0 checksum field over IPv6 (RFC 8200 §8.1). */
  | 'udp-checksum-zero'
  /** Destination port 0, or a broadcast/multicast source (RFC 1122 §3.2.1.3, §4.1.3.6). */
  | 'udp-bad-address'
  /** No socket for the destination port and address (answered with ICMP port unreachable when
   *  the datagram was unicast, RFC 1122 §4.1.3.1, and the rate limit allows). */
  | 'udp-no-socket'
  /** A socket's receive queue (the streams form, `stack.udpStream`) was full. */
  | 'udp-queue-full';

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  /** A view of the data (the Length field's extent; IP padding beyond it is trimmed). */
  payload: Uint8Array;
  /** The checksum field as received (0: none, IPv4 only). */
  checksum: number;
}

/**
 * Parses a UDP datagram (the IP payload). `pseudoHeaderSum` is the folded pseudo-header sum for
 * protocol 17 and the UDP length (`pseudoHeaderSum(src, dst, 17, length)` from checksum.ts).
 * `version` decides whether a 0 checksum field is allowed; `verify` false skips the checksum (a
 * link with checksum offload). Never throws.
 */
export function parseUdp(body: Uint8Array, pseudoHeaderSum: number, version: 4 | 6, verify = true): UdpDatagram | UdpDropReason {
  if (body.length < UDP_HEADER_LENGTH) return 'udp-truncated';
  const length = (body[4]! << 8) | body[5]!;
  // RFC 768: Length counts header and data. Longer than what IP carried is a truncated datagram;
  // shorter is allowed (the rest is IP padding, ignored).
  if (length < UDP_HEADER_LENGTH || length > body.length) return 'udp-bad-length';
  const checksum = (body[6]! << 8) | body[7]!;
  if (checksum === 0) {
    if (version === 6) return 'udp-checksum-zero';
  } else if (verify && sum16(body, 0, length, pseudoHeaderSum) !== 0xffff) {
    return 'udp-bad-checksum';
  }
  return {
    srcPort: (body[0]! << 8) | body[1]!,
    dstPort: (body[2]! << 8) | body[3]!,
    payload: body.subarray(UDP_HEADER_LENGTH, length),
    checksum,
  };
}

/**
 * Writes a UDP header and `payload` at `offset` with its checksum, given the folded pseudo-header
 * sum for protocol 17 and length 8 + payload.length. Returns the bytes written. With
 * `checksum` false the field is left 0 (IPv4 only: "no checksum").
 */
export function writeUdp(
  out: Uint8Array,
  offset: number,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
  pseudoHeaderSum: number,
  checksum = true,
): number {
  const length = UDP_HEADER_LENGTH + payload.length;
  out[offset] = srcPort >>> 8;
  out[offset + 1] = srcPort & 0xff;
  out[offset + 2] = dstPort >>> 8;
  out[offset + 3] = dstPort & 0xff;
  out[offset + 4] = (length >>> 8) & 0xff;
  out[offset + 5] = length & 0xff;
  out[offset + 6] = 0;
  out[offset + 7] = 0;
  out.set(payload, offset + UDP_HEADER_LENGTH);
  if (checksum) {
    // RFC 768: "If the computed checksum is zero, it is transmitted as all ones."
    const c = ~sum16(out, offset, length, pseudoHeaderSum) & 0xffff;
    const field = c === 0 ? 0xffff : c;
    out[offset + 6] = field >>> 8;
    out[offset + 7] = field & 0xff;
  }
  return length;
}
