/**
 * IP input and output for one stack (RFC 791, RFC 8200; RFC 1122 §3.2 for what a host must do).
 *
 * Input: parse (into reused scratch objects: nothing allocated per packet), reassemble fragments
 * (src/net/fragments.ts), check the destination, hand the payload to TCP, UDP or ICMP. A packet to
 * a broadcast address (255.255.255.255 or one of our subnets' directed broadcasts) is taken only
 * by UDP (RFC 1122 §3.3.6: a host must accept them; TCP never uses them, RFC 1122 §4.2.3.10), and
 * a UDP socket bound with `anyDestination` (a DHCP client with no address yet) takes datagrams for
 * its port whatever their destination.
 *
 * Output: headers with DF for TCP (it sizes segments to the path: RFC 1191); UDP is sent with DF
 * clear and fragmented when larger than the link MTU (IPv4, RFC 791 §3.2; IPv6 with a Fragment
 * header, RFC 8200 §4.5) — what Linux does for a socket with IP_PMTUDISC_DONT.
 * @internal
 */
import type { LinkEnd } from '../link/link.js';
import type { StackCore } from '../stack/core.js';
import type { TcpLayer } from '../stack/tcp.js';
import type { UdpLayer } from '../udp/udp.js';
import { parseIpPacket, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type IpPacketInfo } from '../wire/ip.js';
import { parseIpv4, setIpv4HeaderChecksum, writeIpv4Header } from '../wire/ipv4.js';
import { parseIpv6, writeIpv6Header } from '../wire/ipv6.js';
import { isMulticastOrBroadcast, type AddressTable } from './addresses.js';
import { Reassembler, fragmentV4, fragmentV6, type ReassemblyLimits } from './fragments.js';
import type { IcmpLayer } from './icmp.js';

export class IpLayer {
  /** Set by the Stack once every layer exists. */
  tcp!: TcpLayer;
  udp!: UdpLayer;
  icmp!: IcmpLayer;
  readonly reassembler: Reassembler;
  private ipId = 0;
  private ip6Id: number;
  /** Parse results of the packet being processed (never kept past it). */
  private readonly ipScratch: IpPacketInfo = {
    version: 4, src: new Uint8Array(4), dst: new Uint8Array(4), protocol: 0, ttl: 0, payloadOffset: 0, payloadLength: 0,
  };
  private readonly ip6Scratch: IpPacketInfo = {
    version: 6, src: new Uint8Array(16), dst: new Uint8Array(16), protocol: 0, ttl: 0, payloadOffset: 0, payloadLength: 0,
  };

  constructor(
    private readonly core: StackCore,
    private readonly addresses: AddressTable,
    private readonly link: LinkEnd,
    readonly ttl: number,
    fragmentIdSeed: number,
    limits?: ReassemblyLimits,
  ) {
    this.ip6Id = fragmentIdSeed >>> 0;
    this.reassembler = new Reassembler({ core, timeExceeded: (first, version) => this.icmp.reassemblyTimeExceeded(first, version) }, limits);
  }

  get mtu(): number {
    return this.link.mtu;
  }

  /** One packet from the link. `scratch`: parse into the reused objects (not when nested). */
  input(packet: Uint8Array, scratch: boolean): void {
    this.core.counters.ipIn++;
    this.process(packet, scratch);
  }

  private process(packet: Uint8Array, scratch: boolean): void {
    const version = packet.length > 0 ? packet[0]! >>> 4 : 0;
    const ip = !scratch ? parseIpPacket(packet)
      : version === 4 ? parseIpv4(packet, this.ipScratch)
      : version === 6 ? parseIpv6(packet, this.ip6Scratch)
      : parseIpPacket(packet);
    if (typeof ip === 'string') {
      if (ip === 'ipv4-fragment' || ip === 'ipv6-fragment') return this.fragment(packet, ip === 'ipv4-fragment' ? 4 : 6, scratch);
      return this.core.drop(ip, packet);
    }
    const protocol = ip.protocol;
    if (!this.addresses.isLocal(ip.dst)) {
      // RFC 1122 §3.3.6 / §3.2.1.3: broadcasts are for UDP; and a socket with anyDestination.
      if (protocol === PROTO_UDP && (this.udp.anyDestination > 0 || this.udp.forwarder !== null || this.addresses.isBroadcast(ip.dst))) {
        return this.udp.input(ip, packet, false);
      }
      // Catch-all termination (src/stack/forward.ts): TCP for any unicast destination.
      if (protocol === PROTO_TCP && this.tcp.forwarding && !isMulticastOrBroadcast(ip.dst) && !this.addresses.isBroadcast(ip.dst)) {
        return this.tcp.input(ip, packet, scratch);
      }
      return this.core.drop('ip-not-for-us', packet);
    }
    if (protocol === PROTO_TCP) return this.tcp.input(ip, packet, scratch);
    switch (protocol) {
      case PROTO_UDP:
        return this.udp.input(ip, packet, true);
      case PROTO_ICMP:
      case PROTO_ICMPV6:
        if ((protocol === PROTO_ICMP) !== (ip.version === 4)) return this.core.drop('ip-unknown-protocol', packet);
        return this.icmp.input(ip, packet);
      default:
        return this.core.drop('ip-unknown-protocol', packet);
    }
  }

  /**
   * A fragment: only for us (or a broadcast / an anyDestination socket, which only UDP can use:
   * the reassembled datagram is checked again), then reassembled and processed as a whole.
   */
  private fragment(packet: Uint8Array, version: 4 | 6, scratch: boolean): void {
    const dst = version === 4 ? packet.subarray(16, 20) : packet.subarray(24, 40);
    const forwarding = this.tcp.forwarding || this.udp.forwarder !== null;
    if (!forwarding && !this.addresses.isLocal(dst) && !(version === 4 && (this.udp.anyDestination > 0 || this.addresses.isBroadcast(dst)))) {
      return this.core.drop('ip-not-for-us', packet);
    }
    const whole = version === 4 ? this.reassembler.inputV4(packet) : this.reassembler.inputV6(packet);
    if (whole !== null) this.process(whole, scratch);
  }

  /**
   * Writes a 20-byte IPv4 header (DF set, a fresh identification) or a 40-byte IPv6 header at the
   * start of `out`; returns its length.
   */
  writeHeader(out: Uint8Array, local: Uint8Array, remote: Uint8Array, protocol: number, payloadLength: number): number {
    if (local.length === 4) {
      this.ipId = (this.ipId + 1) & 0xffff;
      return writeIpv4Header(out, 0, local, remote, protocol, payloadLength, this.ttl, this.ipId);
    }
    return writeIpv6Header(out, 0, local, remote, protocol, payloadLength, this.ttl);
  }

  /**
   * Sends a packet that `writeHeader` began, with DF cleared when IPv4 (a datagram routers may
   * fragment), fragmented when larger than the link MTU. Returns the packets sent.
   */
  sendFragmentable(packet: Uint8Array): number {
    if (packet[0]! >>> 4 === 4) {
      packet[6] = 0;
      setIpv4HeaderChecksum(packet, 20);
    }
    const mtu = this.link.mtu;
    if (packet.length <= mtu) {
      this.core.counters.ipOut++;
      this.link.send(packet);
      return 1;
    }
    let pieces: Uint8Array[];
    if (packet[0]! >>> 4 === 4) {
      pieces = fragmentV4(packet, mtu);
    } else {
      // RFC 7739: identifications that are hard to predict (a keyed counter would be better still).
      this.ip6Id = (Math.imul(this.ip6Id ^ 0x5bd1e995, 0x9e3779b1) + 1) >>> 0;
      pieces = fragmentV6(packet, mtu, this.ip6Id);
    }
    for (const f of pieces) {
      this.core.counters.ipOut++;
      this.core.counters.fragmentsOut++;
      this.link.send(f);
    }
    return pieces.length;
  }

  /** Sends a packet as it is (ICMP, and TCP's own path which calls the link directly). */
  send(packet: Uint8Array): void {
    this.core.counters.ipOut++;
    this.link.send(packet);
  }
}
