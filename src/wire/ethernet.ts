/**
 * Ethernet II frames (IEEE 802.3 §3.2.6 with an EtherType, "DIX"), an optional IEEE 802.1Q VLAN
 * tag, MAC addresses, and the mapping of IP multicast groups to Ethernet multicast MACs
 * (RFC 1112 §6.4 for IPv4, RFC 2464 §7 for IPv6). Frames here carry no FCS: TAP devices and the
 * in-memory switch hand over the frame without it.
 *
 *   | destination MAC (6) | source MAC (6) | [0x8100 | PCP DEI VID (2)] | EtherType (2) | payload |
 */

/**
 * Why a frame (or a packet the Ethernet interface was asked to send) was dropped. The interface's
 * own reasons live here too, beside the frame's, so that drop.ts has one line for this layer.
 */
export type EthernetDropReason =
  /** Shorter than a header (14 bytes, or 18 with a VLAN tag). */
  | 'eth-truncated'
  /** A length field (< 0x0600, IEEE 802.3 LLC frame) or an undefined value where an EtherType goes. */
  | 'eth-bad-type'
  /** A well-formed EtherType the interface does not speak (not IPv4, IPv6 or ARP). */
  | 'eth-unknown-type'
  /** A frame tagged for a VLAN (VID other than 0): the interface is untagged. */
  | 'eth-vlan'
  /** A source MAC with the group bit set: no station sends from a multicast address (802.3 §3.2.3). */
  | 'eth-bad-source'
  /** Unicast to another station, or to a multicast group the interface is not listening to. */
  | 'eth-not-for-us'
  /** An outgoing packet to an off-link destination with no default router for its family. */
  | 'net-no-route'
  /** An outgoing packet whose next hop did not answer ARP/NDP in time (RFC 1122 §2.3.2.2). */
  | 'neighbour-unreachable'
  /** An outgoing packet pushed out of the bounded queue of a neighbour still being resolved. */
  | 'neighbour-queue-full'
  /** An outgoing packet that is not IPv4 or IPv6, or too short to carry a destination. */
  | 'net-bad-packet';

export const ETHERNET_HEADER_LENGTH = 14;
export const VLAN_TAG_LENGTH = 4;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;

/** IEEE 802.3 §3.2.6: values up to 1500 are a length; 0x0600 and above an EtherType. */
const MIN_ETHERTYPE = 0x0600;

/** 802.1Q tag control information. */
export interface VlanTag {
  /** Priority code point, 0..7. */
  pcp: number;
  /** Drop eligible indicator. */
  dei: boolean;
  /** VLAN identifier, 0..4095 (0: priority tag only, no VLAN). */
  vid: number;
}

export interface EthernetHeader {
  /** Views into the frame, not copies. */
  dst: Uint8Array;
  src: Uint8Array;
  /** The EtherType of the payload (after the VLAN tag when there is one). */
  etherType: number;
  vlan: VlanTag | null;
  /** 14, or 18 with a VLAN tag. */
  payloadOffset: number;
}

/**
 * Parses an Ethernet II header, with at most one 802.1Q tag. A second tag (QinQ) shows up as
 * EtherType 0x8100 for the caller to refuse. Never throws.
 */
export function parseEthernet(frame: Uint8Array): EthernetHeader | EthernetDropReason {
  if (frame.length < ETHERNET_HEADER_LENGTH) return 'eth-truncated';
  let etherType = (frame[12] << 8) | frame[13];
  let vlan: VlanTag | null = null;
  let payloadOffset = ETHERNET_HEADER_LENGTH;
  if (etherType === ETHERTYPE_VLAN) {
    if (frame.length < ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH) return 'eth-truncated';
    const tci = (frame[14] << 8) | frame[15];
    vlan = { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff };
    etherType = (frame[16] << 8) | frame[17];
    payloadOffset += VLAN_TAG_LENGTH;
  }
  if (etherType < MIN_ETHERTYPE) return 'eth-bad-type';
  return { dst: frame.subarray(0, 6), src: frame.subarray(6, 12), etherType, vlan, payloadOffset };
}

/**
 * Writes an Ethernet II header (with an 802.1Q tag when `vlan` is given). Returns the header length,
 * where the payload starts.
 */
export function writeEthernetHeader(
  out: Uint8Array,
  offset: number,
  dst: Uint8Array,
  src: Uint8Array,
  etherType: number,
  vlan?: VlanTag | null,
): number {
  for (let i = 0; i < 6; i++) {
    out[offset + i] = dst[i];
    out[offset + 6 + i] = src[i];
  }
  let at = offset + 12;
  if (vlan) {
    const tci = ((vlan.pcp & 7) << 13) | (vlan.dei ? 0x1000 : 0) | (vlan.vid & 0x0fff);
    out[at] = ETHERTYPE_VLAN >>> 8;
    out[at + 1] = ETHERTYPE_VLAN & 0xff;
    out[at + 2] = tci >>> 8;
    out[at + 3] = tci & 0xff;
    at += VLAN_TAG_LENGTH;
  }
  out[at] = (etherType >>> 8) & 0xff;
  out[at + 1] = etherType & 0xff;
  return at + 2 - offset;
}

// ------------------------------------------------------------------------------------------ MACs

export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
export const ZERO_MAC: Uint8Array = new Uint8Array(6);

/** "02:00:5e:10:00:01" or "02-00-5E-10-00-01" (IEEE 802 canonical form) into 6 bytes; null if not. */
export function parseMac(s: string): Uint8Array | null {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(s);
  if (!m) return null;
  const out = new Uint8Array(6);
  const groups = [m[1], m[3], m[4], m[5], m[6], m[7]];
  for (let i = 0; i < 6; i++) out[i] = parseInt(groups[i]!, 16);
  return out;
}

/** Lowercase, colon-separated: one MAC always prints the same way (as `ip link` shows it). */
export function formatMac(b: Uint8Array, offset = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    if (i > 0) s += ':';
    s += (b[offset + i] ?? 0).toString(16).padStart(2, '0');
  }
  return s;
}

/** The I/G bit (IEEE 802 §8.2): the least significant bit of the first byte marks a group address. */
export function isMulticastMac(b: Uint8Array, offset = 0): boolean {
  return (b[offset] & 1) !== 0;
}

export function isBroadcastMac(b: Uint8Array, offset = 0): boolean {
  return (b[offset] & b[offset + 1] & b[offset + 2] & b[offset + 3] & b[offset + 4] & b[offset + 5]) === 0xff;
}

/** Whether 6 bytes of `a` at `offset` equal `mac`. */
export function macEquals(a: Uint8Array, offset: number, mac: Uint8Array): boolean {
  return a[offset] === mac[0] && a[offset + 1] === mac[1] && a[offset + 2] === mac[2] &&
    a[offset + 3] === mac[3] && a[offset + 4] === mac[4] && a[offset + 5] === mac[5];
}

/**
 * The Ethernet multicast MAC of an IPv4 group (RFC 1112 §6.4): 01:00:5e followed by the low 23 bits
 * of the group address. `addr` is read at `offset` (4 bytes); the MAC is written to `out` at `at`.
 */
export function ipv4MulticastMac(addr: Uint8Array, offset = 0, out: Uint8Array = new Uint8Array(6), at = 0): Uint8Array {
  out[at] = 0x01;
  out[at + 1] = 0x00;
  out[at + 2] = 0x5e;
  out[at + 3] = addr[offset + 1] & 0x7f;
  out[at + 4] = addr[offset + 2];
  out[at + 5] = addr[offset + 3];
  return out;
}

/**
 * The Ethernet multicast MAC of an IPv6 group (RFC 2464 §7): 33:33 followed by the last 32 bits of
 * the group address. `addr` is read at `offset` (16 bytes); the MAC is written to `out` at `at`.
 */
export function ipv6MulticastMac(addr: Uint8Array, offset = 0, out: Uint8Array = new Uint8Array(6), at = 0): Uint8Array {
  out[at] = 0x33;
  out[at + 1] = 0x33;
  out[at + 2] = addr[offset + 12];
  out[at + 3] = addr[offset + 13];
  out[at + 4] = addr[offset + 14];
  out[at + 5] = addr[offset + 15];
  return out;
}

/**
 * The IPv6 link-local address of an interface with this MAC (RFC 4862 §5.3, RFC 2464 §5): fe80::/64
 * and the modified EUI-64 interface identifier (RFC 4291 Appendix A): the MAC split by ff:fe with
 * the universal/local bit inverted.
 */
export function linkLocalFromMac(mac: Uint8Array): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xfe;
  a[1] = 0x80;
  a[8] = mac[0] ^ 0x02;
  a[9] = mac[1];
  a[10] = mac[2];
  a[11] = 0xff;
  a[12] = 0xfe;
  a[13] = mac[3];
  a[14] = mac[4];
  a[15] = mac[5];
  return a;
}
