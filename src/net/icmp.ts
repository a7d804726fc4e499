/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443) for one stack: echo replies, errors in (to the TCP
 * connection or UDP socket whose packet they quote), errors out (UDP port unreachable,
 * reassembly time exceeded).
 *
 * Errors out obey RFC 1122 §3.2.2 / RFC 4443 §2.4 (e): none about an ICMP error, a broadcast or
 * multicast destination, a non-unicast source, or a non-first fragment; and a token bucket limits
 * them (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)): `icmpErrorRate` per second, bursts of up to 50
 * (Linux's icmp_msgs_per_sec and icmp_msgs_burst). Errors beyond it are counted, not sent.
 * @internal
 */
import type { StackCore } from '../stack/core.js';
import type { TcpLayer } from '../stack/tcp.js';
import type { UdpLayer } from '../udp/udp.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import {
  ICMPV4_DEST_UNREACHABLE, ICMPV4_TIME_EXCEEDED, ICMPV6_DEST_UNREACHABLE, ICMPV6_TIME_EXCEEDED, icmpErrorLength,
  parseIcmpv4, parseIcmpv6, writeIcmpEcho, writeIcmpError,
} from '../wire/icmp.js';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type IpPacketInfo } from '../wire/ip.js';
import { isMulticastOrBroadcast, type AddressTable } from './addresses.js';
import type { IpLayer } from './ip.js';

const ICMP_BURST = 50;

export class IcmpLayer {
  tcp!: TcpLayer;
  udp!: UdpLayer;
  private tokens = ICMP_BURST;
  private refilledAt = -Infinity;
  private readonly burst: number;

  constructor(
    private readonly core: StackCore,
    private readonly addresses: AddressTable,
    private readonly ip: IpLayer,
    /** Errors per second at most (0: none are sent). */
    private readonly ratePerSecond: number,
  ) {
    this.burst = Math.min(ICMP_BURST, Math.max(0, ratePerSecond));
    this.tokens = this.burst;
  }

  input(ip: IpPacketInfo, packet: Uint8Array): void {
    const core = this.core;
    core.counters.icmpIn++;
    const body = packet.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
    const msg = ip.version === 4
      ? parseIcmpv4(body)
      : parseIcmpv6(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_ICMPV6, ip.payloadLength));
    if (typeof msg === 'string') return core.drop(msg, packet);
    if (msg.kind === 'echo-request') {
      // RFC 1122 §3.2.2.6 / RFC 4443 §4.2: answer with the same identifier, sequence and data.
      const local = Uint8Array.from(ip.dst);
      const remote = Uint8Array.from(ip.src);
      const icmpLen = 8 + msg.data.length;
      const hl = ip.version === 4 ? 20 : 40;
      const out = new Uint8Array(hl + icmpLen);
      this.ip.writeHeader(out, local, remote, ip.version === 4 ? PROTO_ICMP : PROTO_ICMPV6, icmpLen);
      const pseudo = ip.version === 4 ? 0 : pseudoHeaderSum(local, remote, PROTO_ICMPV6, icmpLen);
      writeIcmpEcho(out, hl, ip.version, true, msg.id, msg.sequence, msg.data, pseudo);
      core.counters.icmpOut++;
      // A request that came in fragments (ping -s 3000) gets a reply as large: fragmented too.
      this.ip.sendFragmentable(out);
      return;
    }
    if (msg.kind === 'error' && msg.original !== null) {
      const o = msg.original;
      // Only errors about packets we sent: the quoted source is one of our addresses.
      if (this.addresses.isLocal(o.src)) {
        if (o.protocol === PROTO_TCP) {
          const reason = this.tcp.icmpError(o, `ICMP ${msg.category} (type ${msg.type} code ${msg.code})`);
          if (reason !== null) core.drop(reason, packet);
          return;
        }
        if (o.protocol === PROTO_UDP) {
          const reason = this.udp.icmpError(o, ip.version, msg.type, msg.code);
          if (reason !== null) core.drop(reason, packet);
          return;
        }
      }
    }
    core.drop('icmp-unhandled', packet);
  }

  /** UDP to a port nobody listens on (RFC 1122 §4.1.3.1; RFC 4443 §3.1 code 4). */
  portUnreachable(ip: IpPacketInfo, packet: Uint8Array): void {
    if (ip.version === 4) this.sendError(packet, 4, ICMPV4_DEST_UNREACHABLE, 3);
    else this.sendError(packet, 6, ICMPV6_DEST_UNREACHABLE, 4);
  }

  /** A datagram's reassembly timed out (its first fragment arrived): Time Exceeded code 1. */
  reassemblyTimeExceeded(firstFragment: Uint8Array, version: 4 | 6): void {
    this.sendError(firstFragment, version, version === 4 ? ICMPV4_TIME_EXCEEDED : ICMPV6_TIME_EXCEEDED, 1, true);
  }

  /**
   * An error about `original` (the whole offending packet) back to its source, unless RFC 1122
   * §3.2.2 / RFC 4443 §2.4 (e) forbid one or the rate limit is spent. Returns whether it was sent.
   */
  sendError(original: Uint8Array, version: 4 | 6, type: number, code: number, fragment = false): boolean {
    const src = version === 4 ? original.subarray(12, 16) : original.subarray(8, 24);
    const dst = version === 4 ? original.subarray(16, 20) : original.subarray(24, 40);
    if (isMulticastOrBroadcast(dst) || this.addresses.isBroadcast(dst)) return false;
    if (isMulticastOrBroadcast(src) || src.every((b) => b === 0)) return false;
    if (version === 4) {
      // Not for a non-first fragment (offset != 0), unless it is the reassembly's first fragment.
      if (!fragment && (((original[6]! << 8) | original[7]!) & 0x1fff) !== 0) return false;
      const hl = (original[0]! & 0x0f) * 4;
      if (original[9] === PROTO_ICMP && isIcmpError(original[hl], 4)) return false;
    } else if (original[6] === PROTO_ICMPV6 && isIcmpError(original[40], 6)) {
      return false;
    }
    if (!this.takeToken()) {
      this.core.counters.icmpRateLimited++;
      return false;
    }
    // From the address the offending packet was sent to, when it is ours (RFC 1122 §3.2.2).
    const local = this.addresses.isLocal(dst) ? Uint8Array.from(dst) : this.addresses.source(src)?.bytes;
    if (local === undefined) return false;
    const remote = Uint8Array.from(src);
    const icmpLen = icmpErrorLength(version, original.length);
    const hl = version === 4 ? 20 : 40;
    const out = new Uint8Array(hl + icmpLen);
    this.ip.writeHeader(out, local, remote, version === 4 ? PROTO_ICMP : PROTO_ICMPV6, icmpLen);
    const pseudo = version === 4 ? 0 : pseudoHeaderSum(local, remote, PROTO_ICMPV6, icmpLen);
    writeIcmpError(out, hl, version, type, code, original, pseudo);
    this.core.counters.icmpOut++;
    this.ip.send(out);
    return true;
  }

  /** Token bucket: `ratePerSecond` tokens a second, at most `burst` saved. */
  private takeToken(): boolean {
    const now = this.core.now();
    if (this.refilledAt === -Infinity) this.refilledAt = now;
    const refill = ((now - this.refilledAt) * this.ratePerSecond) / 1000;
    if (refill > 0) {
      this.tokens = Math.min(this.burst, this.tokens + refill);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** ICMP error types (RFC 792: 3, 4, 5, 11, 12; RFC 4443 §2.1: below 128). */
function isIcmpError(type: number | undefined, version: 4 | 6): boolean {
  if (type === undefined) return false;
  if (version === 6) return type < 128;
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}
