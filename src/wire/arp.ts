/**
 * ARP (RFC 826) for IPv4 over Ethernet, the only pairing synack speaks: hardware type 1 with
 * 6-byte addresses, protocol type 0x0800 with 4-byte addresses. Anything else is a drop reason.
 *
 *   | hrd (2) | pro (2) | hln (1) | pln (1) | op (2) | sha (6) | spa (4) | tha (6) | tpa (4) |
 */

export type ArpDropReason =
  /** Fewer than the 28 bytes of an Ethernet/IPv4 ARP packet. */
  | 'arp-truncated'
  /** Another hardware or protocol type or address length (RFC 826: "?Do I have the hardware type"). */
  | 'arp-unsupported'
  /** An opcode other than request (1) or reply (2): RARP, InARP and the rest. */
  | 'arp-bad-op'
  /** A sender address no station may have: a group MAC, or a multicast/broadcast IPv4 address. */
  | 'arp-invalid'
  /** A request for, or a reply to, another station's address. */
  | 'arp-not-for-us'
  /** A reply nobody asked for: ignored, no cache entry made from it (a classic poisoning vector). */
  | 'arp-unsolicited';

export const ARP_LENGTH = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

const HRD_ETHERNET = 1;
const PRO_IPV4 = 0x0800;

export interface ArpPacket {
  op: 1 | 2;
  /** Views into the packet, not copies. */
  senderMac: Uint8Array;
  senderIp: Uint8Array;
  targetMac: Uint8Array;
  targetIp: Uint8Array;
}

/** Parses an ARP packet (the Ethernet payload; link padding after the 28 bytes is ignored). */
export function parseArp(payload: Uint8Array): ArpPacket | ArpDropReason {
  if (payload.length < ARP_LENGTH) return 'arp-truncated';
  const hrd = (payload[0] << 8) | payload[1];
  const pro = (payload[2] << 8) | payload[3];
  if (hrd !== HRD_ETHERNET || pro !== PRO_IPV4 || payload[4] !== 6 || payload[5] !== 4) {
    return 'arp-unsupported';
  }
  const op = (payload[6] << 8) | payload[7];
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return 'arp-bad-op';
  return {
    op,
    senderMac: payload.subarray(8, 14),
    senderIp: payload.subarray(14, 18),
    targetMac: payload.subarray(18, 24),
    targetIp: payload.subarray(24, 28),
  };
}

/** Writes an Ethernet/IPv4 ARP packet. Returns 28. */
export function writeArp(
  out: Uint8Array,
  offset: number,
  op: 1 | 2,
  senderMac: Uint8Array,
  senderIp: Uint8Array,
  targetMac: Uint8Array,
  targetIp: Uint8Array,
): number {
  out[offset] = 0;
  out[offset + 1] = HRD_ETHERNET;
  out[offset + 2] = PRO_IPV4 >>> 8;
  out[offset + 3] = PRO_IPV4 & 0xff;
  out[offset + 4] = 6;
  out[offset + 5] = 4;
  out[offset + 6] = 0;
  out[offset + 7] = op;
  for (let i = 0; i < 6; i++) {
    out[offset + 8 + i] = senderMac[i];
    out[offset + 18 + i] = targetMac[i];
  }
  for (let i = 0; i < 4; i++) {
    out[offset + 14 + i] = senderIp[i];
    out[offset + 24 + i] = targetIp[i];
  }
  return ARP_LENGTH;
}
