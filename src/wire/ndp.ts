/**
 * IPv6 Neighbor Discovery messages (RFC 4861 §4), ICMPv6 types 133-137: Router Solicitation and
 * Advertisement, Neighbor Solicitation and Advertisement, Redirect, with their options (§4.6):
 * source/target link-layer address, prefix information, redirected header, MTU, and the Recursive
 * DNS Server option (RFC 8106 §5.1). Other options are kept as raw bytes (§4.6: receivers skip
 * options they do not know).
 *
 * The codec checks what the message itself shows (length, checksum with the IPv6 pseudo-header,
 * code 0, option lengths). The rest of RFC 4861's validation (§6.1, §7.1) needs the IP header — hop
 * limit 255, source and destination addresses — and belongs to the caller.
 */
import { sum16, pseudoHeaderSum } from './checksum.js';

export type NdpDropReason =
  /** Shorter than its type's fixed part (RFC 4861 §6.1.1/§7.1.1: "ICMP length ... is 8 or more"...). */
  | 'ndp-truncated'
  | 'ndp-bad-checksum'
  /** ICMP Code is not 0 (RFC 4861 §6.1, §7.1). */
  | 'ndp-bad-code'
  /** An option of length 0 (§4.6: "MUST silently discard"), one running past the end, or a known
   *  option with a length that cannot hold it. */
  | 'ndp-bad-option'
  /** Hop limit not 255: the message may come from off-link (RFC 4861 §6.1, §7.1). */
  | 'ndp-bad-hop-limit'
  /** Fails another validity rule of RFC 4861 §6.1/§7.1 (a multicast target, options on a DAD probe…). */
  | 'ndp-invalid'
  /** A solicitation for another node's address. */
  | 'ndp-not-for-us'
  /** An advertisement for a neighbour we have no entry for (§7.2.5: silently discarded). */
  | 'ndp-unsolicited'
  /** A valid message this node has no use for (an RS to a host, a Redirect). */
  | 'ndp-unhandled';

export const NDP_ROUTER_SOLICITATION = 133;
export const NDP_ROUTER_ADVERTISEMENT = 134;
export const NDP_NEIGHBOR_SOLICITATION = 135;
export const NDP_NEIGHBOR_ADVERTISEMENT = 136;
export const NDP_REDIRECT = 137;

export const OPT_SOURCE_LINK_LAYER = 1;
export const OPT_TARGET_LINK_LAYER = 2;
export const OPT_PREFIX_INFORMATION = 3;
export const OPT_REDIRECTED_HEADER = 4;
export const OPT_MTU = 5;
export const OPT_RDNSS = 25;

/** Whether an ICMPv6 type is one of the five Neighbor Discovery messages. */
export function isNdpType(type: number): boolean {
  return type >= NDP_ROUTER_SOLICITATION && type <= NDP_REDIRECT;
}

export interface PrefixInformation {
  prefixLength: number;
  /** L: the prefix is on-link (§4.6.2). */
  onLink: boolean;
  /** A: usable for stateless address autoconfiguration (RFC 4862 §5.5.3). */
  autonomous: boolean;
  /** Seconds; 0xffffffff is infinity. */
  validLifetime: number;
  preferredLifetime: number;
  /** 16 bytes. */
  prefix: Uint8Array;
}

export type NdpOption =
  /** On Ethernet `address` is the 6-byte MAC (RFC 2464 §6); other links may pad it longer. */
  | { kind: 'source-link-layer'; address: Uint8Array }
  | { kind: 'target-link-layer'; address: Uint8Array }
  | ({ kind: 'prefix' } & PrefixInformation)
  /** The quoted start of the redirected packet (§4.6.3), as it is. */
  | { kind: 'redirected-header'; data: Uint8Array }
  | { kind: 'mtu'; mtu: number }
  /** RFC 8106 §5.1: lifetime in seconds, one or more 16-byte server addresses. */
  | { kind: 'rdnss'; lifetime: number; servers: Uint8Array[] }
  /** An option this codec does not interpret: its type and the bytes after type and length. */
  | { kind: 'unknown'; type: number; data: Uint8Array };

export type NdpMessage =
  | { type: 'router-solicitation'; options: NdpOption[] }
  | {
      type: 'router-advertisement';
      /** Hop limit hosts should use; 0: unspecified. */
      curHopLimit: number;
      /** M: addresses from DHCPv6. */
      managed: boolean;
      /** O: other configuration from DHCPv6. */
      other: boolean;
      /** Seconds this router may be a default router (0: not a default router). */
      routerLifetime: number;
      /** Milliseconds; 0: unspecified. */
      reachableTime: number;
      retransTimer: number;
      options: NdpOption[];
    }
  | { type: 'neighbor-solicitation'; target: Uint8Array; options: NdpOption[] }
  | {
      type: 'neighbor-advertisement';
      /** R: the sender is a router. */
      router: boolean;
      /** S: sent in response to a Neighbor Solicitation. */
      solicited: boolean;
      /** O: override an existing cache entry. */
      override: boolean;
      target: Uint8Array;
      options: NdpOption[];
    }
  | { type: 'redirect'; target: Uint8Array; destination: Uint8Array; options: NdpOption[] };

/** Bytes before the options, per type (RFC 4861 §4.1-§4.5). */
function fixedLength(icmpType: number): number {
  switch (icmpType) {
    case NDP_ROUTER_SOLICITATION:
      return 8;
    case NDP_ROUTER_ADVERTISEMENT:
      return 16;
    case NDP_NEIGHBOR_SOLICITATION:
    case NDP_NEIGHBOR_ADVERTISEMENT:
      return 24;
    default:
      return 40;
  }
}

function read32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function write32(b: Uint8Array, i: number, v: number): void {
  b[i] = (v >>> 24) & 0xff;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

function parseOptions(b: Uint8Array, start: number): NdpOption[] | NdpDropReason {
  const options: NdpOption[] = [];
  let i = start;
  while (i < b.length) {
    if (i + 2 > b.length) return 'ndp-bad-option';
    const type = b[i];
    const length = b[i + 1] * 8;
    // §4.6: "Nodes MUST silently discard an ND packet that contains an option with length zero."
    if (length === 0 || i + length > b.length) return 'ndp-bad-option';
    const body = b.subarray(i + 2, i + length);
    switch (type) {
      case OPT_SOURCE_LINK_LAYER:
        options.push({ kind: 'source-link-layer', address: body });
        break;
      case OPT_TARGET_LINK_LAYER:
        options.push({ kind: 'target-link-layer', address: body });
        break;
      case OPT_PREFIX_INFORMATION:
        // §4.6.2: Length 4 (32 bytes).
        if (length !== 32) return 'ndp-bad-option';
        options.push({
          kind: 'prefix',
          prefixLength: b[i + 2],
          onLink: (b[i + 3] & 0x80) !== 0,
          autonomous: (b[i + 3] & 0x40) !== 0,
          validLifetime: read32(b, i + 4),
          preferredLifetime: read32(b, i + 8),
          prefix: b.subarray(i + 16, i + 32),
        });
        break;
      case OPT_REDIRECTED_HEADER:
        // §4.6.3: 6 reserved bytes, then the quote.
        options.push({ kind: 'redirected-header', data: b.subarray(i + 8, i + length) });
        break;
      case OPT_MTU:
        // §4.6.4: Length 1.
        if (length !== 8) return 'ndp-bad-option';
        options.push({ kind: 'mtu', mtu: read32(b, i + 4) });
        break;
      case OPT_RDNSS: {
        // RFC 8106 §5.1: Length 3 + 2 per further address; "(Length - 1) / 2" addresses, at least one.
        const units = b[i + 1];
        if (units < 3 || (units & 1) === 0) return 'ndp-bad-option';
        const servers: Uint8Array[] = [];
        for (let a = i + 8; a < i + length; a += 16) servers.push(b.subarray(a, a + 16));
        options.push({ kind: 'rdnss', lifetime: read32(b, i + 4), servers });
        break;
      }
      default:
        options.push({ kind: 'unknown', type, data: body });
    }
    i += length;
  }
  return options;
}

/**
 * Parses a Neighbor Discovery message: the ICMPv6 message (the IPv6 upper-layer payload, exactly
 * Payload Length minus extension headers long). `pseudoHeaderSum` is the IPv6 pseudo-header's folded
 * sum with next header 58 (RFC 4443 §2.3). Types other than 133-137 are 'ndp-unhandled'.
 */
export function parseNdp(payload: Uint8Array, pseudoHeaderSum: number): NdpMessage | NdpDropReason {
  if (payload.length < 4) return 'ndp-truncated';
  const type = payload[0];
  if (!isNdpType(type)) return 'ndp-unhandled';
  if (payload.length < fixedLength(type)) return 'ndp-truncated';
  if (sum16(payload, 0, payload.length, pseudoHeaderSum) !== 0xffff) return 'ndp-bad-checksum';
  if (payload[1] !== 0) return 'ndp-bad-code';
  const options = parseOptions(payload, fixedLength(type));
  if (typeof options === 'string') return options;
  switch (type) {
    case NDP_ROUTER_SOLICITATION:
      return { type: 'router-solicitation', options };
    case NDP_ROUTER_ADVERTISEMENT:
      return {
        type: 'router-advertisement',
        curHopLimit: payload[4],
        managed: (payload[5] & 0x80) !== 0,
        other: (payload[5] & 0x40) !== 0,
        routerLifetime: (payload[6] << 8) | payload[7],
        reachableTime: read32(payload, 8),
        retransTimer: read32(payload, 12),
        options,
      };
    case NDP_NEIGHBOR_SOLICITATION:
      return { type: 'neighbor-solicitation', target: payload.subarray(8, 24), options };
    case NDP_NEIGHBOR_ADVERTISEMENT:
      return {
        type: 'neighbor-advertisement',
        router: (payload[4] & 0x80) !== 0,
        solicited: (payload[4] & 0x40) !== 0,
        override: (payload[4] & 0x20) !== 0,
        target: payload.subarray(8, 24),
        options,
      };
    default:
      return {
        type: 'redirect',
        target: payload.subarray(8, 24),
        destination: payload.subarray(24, 40),
        options,
      };
  }
}

/** The first option of a kind, if any. */
export function findOption<K extends NdpOption['kind']>(
  options: readonly NdpOption[],
  kind: K,
): Extract<NdpOption, { kind: K }> | undefined {
  for (const o of options) if (o.kind === kind) return o as Extract<NdpOption, { kind: K }>;
  return undefined;
}

function optionLength(o: NdpOption): number {
  switch (o.kind) {
    case 'source-link-layer':
    case 'target-link-layer':
      // Padded to a multiple of 8 bytes (§4.6).
      return (2 + o.address.length + 7) & ~7;
    case 'prefix':
      return 32;
    case 'redirected-header':
      return (8 + o.data.length + 7) & ~7;
    case 'mtu':
      return 8;
    case 'rdnss':
      return 8 + 16 * o.servers.length;
    default:
      return (2 + o.data.length + 7) & ~7;
  }
}

function messageTypeNumber(m: NdpMessage): number {
  switch (m.type) {
    case 'router-solicitation':
      return NDP_ROUTER_SOLICITATION;
    case 'router-advertisement':
      return NDP_ROUTER_ADVERTISEMENT;
    case 'neighbor-solicitation':
      return NDP_NEIGHBOR_SOLICITATION;
    case 'neighbor-advertisement':
      return NDP_NEIGHBOR_ADVERTISEMENT;
    default:
      return NDP_REDIRECT;
  }
}

/** The length of the ICMPv6 message `writeNdp` writes for `m`. */
export function ndpLength(m: NdpMessage): number {
  let n = fixedLength(messageTypeNumber(m));
  for (const o of m.options) n += optionLength(o);
  return n;
}

function writeOption(out: Uint8Array, at: number, o: NdpOption): number {
  const length = optionLength(o);
  out.fill(0, at, at + length);
  out[at + 1] = length >>> 3;
  switch (o.kind) {
    case 'source-link-layer':
    case 'target-link-layer':
      out[at] = o.kind === 'source-link-layer' ? OPT_SOURCE_LINK_LAYER : OPT_TARGET_LINK_LAYER;
      out.set(o.address, at + 2);
      break;
    case 'prefix':
      out[at] = OPT_PREFIX_INFORMATION;
      out[at + 2] = o.prefixLength;
      out[at + 3] = (o.onLink ? 0x80 : 0) | (o.autonomous ? 0x40 : 0);
      write32(out, at + 4, o.validLifetime);
      write32(out, at + 8, o.preferredLifetime);
      out.set(o.prefix.subarray(0, 16), at + 16);
      break;
    case 'redirected-header':
      out[at] = OPT_REDIRECTED_HEADER;
      out.set(o.data, at + 8);
      break;
    case 'mtu':
      out[at] = OPT_MTU;
      write32(out, at + 4, o.mtu);
      break;
    case 'rdnss':
      out[at] = OPT_RDNSS;
      write32(out, at + 4, o.lifetime);
      o.servers.forEach((s, k) => out.set(s.subarray(0, 16), at + 8 + 16 * k));
      break;
    default:
      out[at] = o.type;
      out.set(o.data, at + 2);
  }
  return length;
}

/**
 * Writes `m` as an ICMPv6 message at `out[offset]` with its checksum over the IPv6 pseudo-header of
 * `src` and `dst` (RFC 4443 §2.3). Reserved fields are written as zero. Returns the bytes written
 * (`ndpLength(m)`). Option lengths above 2040 bytes do not fit the 8-bit length field: the caller
 * keeps options (an RDNSS list, a redirected header) small.
 */
export function writeNdp(out: Uint8Array, offset: number, m: NdpMessage, src: Uint8Array, dst: Uint8Array): number {
  const type = messageTypeNumber(m);
  const fixed = fixedLength(type);
  out.fill(0, offset, offset + fixed);
  out[offset] = type;
  switch (m.type) {
    case 'router-advertisement':
      out[offset + 4] = m.curHopLimit;
      out[offset + 5] = (m.managed ? 0x80 : 0) | (m.other ? 0x40 : 0);
      out[offset + 6] = (m.routerLifetime >>> 8) & 0xff;
      out[offset + 7] = m.routerLifetime & 0xff;
      write32(out, offset + 8, m.reachableTime);
      write32(out, offset + 12, m.retransTimer);
      break;
    case 'neighbor-solicitation':
      out.set(m.target.subarray(0, 16), offset + 8);
      break;
    case 'neighbor-advertisement':
      out[offset + 4] = (m.router ? 0x80 : 0) | (m.solicited ? 0x40 : 0) | (m.override ? 0x20 : 0);
      out.set(m.target.subarray(0, 16), offset + 8);
      break;
    case 'redirect':
      out.set(m.target.subarray(0, 16), offset + 8);
      out.set(m.destination.subarray(0, 16), offset + 24);
      break;
    default:
      break;
  }
  let at = offset + fixed;
  for (const o of m.options) at += writeOption(out, at, o);
  const length = at - offset;
  const sum = sum16(out, offset, length, pseudoHeaderSum(src, dst, 58, length));
  const checksum = ~sum & 0xffff;
  out[offset + 2] = checksum >>> 8;
  out[offset + 3] = checksum & 0xff;
  return length;
}

// ----------------------------------------------------------------------------- IPv6 addresses

/** ff02::1, all nodes on the link (RFC 4291 §2.7.1). */
export const ALL_NODES: Uint8Array = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** ff02::2, all routers on the link. */
export const ALL_ROUTERS: Uint8Array = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
/** ::, the source of a DAD probe (RFC 4862 §5.4.2). */
export const UNSPECIFIED_V6: Uint8Array = new Uint8Array(16);

/** The solicited-node multicast address of `addr` (RFC 4291 §2.7.1): ff02::1:ff00:0/104 + low 24 bits. */
export function solicitedNodeAddress(addr: Uint8Array, offset = 0): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xff;
  a[1] = 0x02;
  a[11] = 0x01;
  a[12] = 0xff;
  a[13] = addr[offset + 13];
  a[14] = addr[offset + 14];
  a[15] = addr[offset + 15];
  return a;
}

/** Whether 16 bytes at `offset` are a solicited-node multicast address. */
export function isSolicitedNode(a: Uint8Array, offset = 0): boolean {
  if (a[offset] !== 0xff || a[offset + 1] !== 0x02 || a[offset + 11] !== 0x01 || a[offset + 12] !== 0xff) return false;
  for (let i = 2; i < 11; i++) if (a[offset + i] !== 0) return false;
  return true;
}
