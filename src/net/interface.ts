/**
 * An Ethernet interface: an IP `LinkEnd` over an `EthernetLinkEnd`, so the stack above sends and
 * receives IP packets exactly as over a TUN device. Outgoing packets go to their next hop — the
 * destination when it is on-link, else the default router — whose MAC ARP (IPv4) or NDP (IPv6)
 * find; broadcast and multicast go to their group MACs without resolution. Incoming frames are
 * filtered by destination MAC (ours, broadcast, the multicast groups we are in); ARP and NDP are
 * handled here and never reach the stack; IPv4 and IPv6 go up.
 */
import { isEthernetLink, type EthernetLinkEnd, type LinkEnd } from '../link/link.js';
import { Rng } from '../link/rng.js';
import { formatAddress, parseAddress } from '../wire/address.js';
import {
  BROADCAST_MAC, ETHERNET_HEADER_LENGTH, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN,
  formatMac, ipv4MulticastMac, ipv6MulticastMac, isBroadcastMac, linkLocalFromMac, macEquals, parseMac,
  writeEthernetHeader,
} from '../wire/ethernet.js';
import { parseIpv6 } from '../wire/ipv6.js';
import { ALL_ROUTERS, ALL_NODES, isNdpType } from '../wire/ndp.js';
import { allocPacket } from '../wire/packet.js';
import { Arp } from './arp.js';
import {
  newInterfaceCounters, type InterfaceCounters, type InterfaceHost, type LinkContext,
} from './host.js';
import { Ndp, type OwnAddressState, type RouterAdvertisementHook } from './ndp.js';
import { RouterAdvertiser, type AdvertiseOptions } from './router-advert.js';

export type { InterfaceAddress, InterfaceCounters, InterfaceHost } from './host.js';
export type { AdvertiseOptions } from './router-advert.js';
export type { OwnAddressState, RouterAdvertisementHook } from './ndp.js';

export interface EthernetInterfaceOptions {
  /** Random locally administered when omitted (from `seed`). */
  mac?: string | Uint8Array;
  seed?: number;
  /** Router mode: send RAs for the stack's IPv6 /64 prefixes (RFC 4861 §6, RFC 8106). */
  advertise?: AdvertiseOptions | false;
  /** Neighbour cache entries per family at most. Default 1024. */
  neighbourCacheSize?: number;
  /** Packets waiting per unresolved neighbour. Default 3. */
  pendingPackets?: number;
  /** Duplicate Address Detection for our IPv6 addresses (RFC 4862 §5.4). Default true. */
  dad?: boolean;
}

/** All-hosts 224.0.0.1, which every IPv4 host is a member of (RFC 1112 §4). */
const ALL_HOSTS_V4_MAC = new Uint8Array([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);

/** Seeds for interfaces built without one: distinct, and the same from run to run. */
let defaultSeed = 0x5eed;

export class EthernetInterface implements LinkEnd {
  readonly linkType = 'ip' as const;
  readonly mac: Uint8Array;
  readonly mtu: number;
  /** The IPv6 link-local address fe80::/64 + modified EUI-64 of the MAC (RFC 4291 App. A, RFC 4862 §5.3). */
  readonly linkLocal: Uint8Array;
  readonly counters: InterfaceCounters = newInterfaceCounters();
  /**
   * Sees every frame the interface sends (`out`) and every frame it is handed (`in`, before
   * filtering), ARP and NDP included: for an Ethernet capture (pcap LINKTYPE_ETHERNET). The frame is
   * a view into a shared slab: keep `frame.slice()`. Null (the default) costs nothing.
   */
  frameObserver: ((dir: 'in' | 'out', frame: Uint8Array) => void) | null = null;
  readonly onBurstEnd?: (fn: () => void) => void;
  readonly receivePending?: () => void;

  private readonly link: EthernetLinkEnd;
  private readonly host: InterfaceHost;
  private readonly rng: Rng;
  private readonly arp: Arp;
  private readonly ndp: Ndp;
  private readonly advertiser: RouterAdvertiser | null;
  private receiver: ((packet: Uint8Array) => void) | null = null;
  /** Multicast MACs we accept (besides broadcast). */
  private groups: Uint8Array[] = [];
  /** IPv4 addresses already announced by gratuitous ARP. */
  private announced = new Set<string>();
  private readonly ctx: LinkContext;

  constructor(link: EthernetLinkEnd, host: InterfaceHost, options: EthernetInterfaceOptions = {}) {
    if (!isEthernetLink(link)) throw new TypeError('EthernetInterface needs an Ethernet link end (linkType "ethernet")');
    this.link = link;
    this.host = host;
    this.mtu = link.mtu;
    this.rng = new Rng(options.seed ?? defaultSeed++);
    this.mac = this.chooseMac(options.mac);
    this.linkLocal = linkLocalFromMac(this.mac);
    this.ctx = {
      mac: this.mac,
      linkLocal: this.linkLocal,
      host,
      counters: this.counters,
      frame: (dst, dstOffset, etherType, payloadLength) => {
        const f = allocPacket(ETHERNET_HEADER_LENGTH + payloadLength);
        writeEthernetHeader(f, 0, dst.subarray(dstOffset, dstOffset + 6), this.mac, etherType);
        return f;
      },
      transmit: (frame) => this.transmit(frame),
      random: () => this.rng.next(),
      note: (what, rfc) => {
        host.trace(rfc === undefined ? { type: 'note', t: host.clock.now(), what } : { type: 'note', t: host.clock.now(), what, rfc });
      },
    };
    const sendTo = (mac: Uint8Array, etherType: number, packet: Uint8Array): void => this.sendFrame(mac, 0, etherType, packet);
    this.arp = new Arp(this.ctx, sendTo, { cacheSize: options.neighbourCacheSize, queueLength: options.pendingPackets });
    this.ndp = new Ndp(this.ctx, sendTo, { cacheSize: options.neighbourCacheSize, queueLength: options.pendingPackets, dad: options.dad });
    if (options.advertise) {
      this.ndp.router = true;
      this.advertiser = new RouterAdvertiser(this.ctx, this.ndp, this.mtu, options.advertise);
      this.ndp.onRouterSolicitation = () => this.advertiser!.solicited();
    } else {
      this.advertiser = null;
    }
    if (typeof link.onBurstEnd === 'function') this.onBurstEnd = (fn) => link.onBurstEnd!(fn);
    if (typeof link.receivePending === 'function') this.receivePending = () => link.receivePending!();
    link.onFrame((frame) => this.receive(frame));
    this.refreshGroups();
    // The interface comes up once the stack that built it has its addresses: announce them then.
    host.clock.defer(() => {
      this.addressesChanged();
      this.advertiser?.start();
    });
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.receiver = fn;
  }

  /** Hook for a host that wants Router Advertisements (SLAAC, default router, RDNSS); null by default. */
  get onRouterAdvertisement(): RouterAdvertisementHook | null {
    return this.ndp.onRouterAdvertisement;
  }

  set onRouterAdvertisement(fn: RouterAdvertisementHook | null) {
    this.ndp.onRouterAdvertisement = fn;
  }

  /**
   * The stack added or removed an address: announce new IPv4 ones (gratuitous ARP, RFC 5227 §3),
   * start DAD for new IPv6 ones (RFC 4862 §5.4), join their solicited-node groups, and in router
   * mode readvertise the prefixes.
   */
  addressesChanged(): void {
    const addresses = this.host.addresses();
    const v4 = new Set<string>();
    const v6: Uint8Array[] = [this.linkLocal];
    for (const a of addresses) {
      if (a.version === 4) {
        const key = formatAddress(a.bytes);
        v4.add(key);
        if (!this.announced.has(key)) this.arp.announce(a.bytes);
      } else if (!v6.some((b) => b.every((x, i) => x === a.bytes[i]))) {
        v6.push(a.bytes);
      }
    }
    this.announced = v4;
    this.ndp.sync(v6);
    this.refreshGroups();
    this.advertiser?.addressesChanged();
  }

  /** The DAD state of one of our IPv6 addresses, or null when it is not ours. */
  addressState(address: string | Uint8Array): OwnAddressState | null {
    const bytes = typeof address === 'string' ? this.parse6(address) : address;
    return bytes === null ? null : this.ndp.state(bytes);
  }

  /** The neighbour caches, IPv4 then IPv6. */
  neighbours(): { address: string; mac: string | null; state: string }[] {
    const out: { address: string; mac: string | null; state: string }[] = [];
    for (const cache of [this.arp.cache, this.ndp.cache]) {
      for (const n of cache.entries()) {
        out.push({ address: formatAddress(n.address), mac: n.mac === null ? null : formatMac(n.mac), state: cache.state(n) });
      }
    }
    return out;
  }

  /** The Router Advertisement this interface would send now (router mode), or null. */
  routerAdvertisement(): ReturnType<RouterAdvertiser['advertisement']> | null {
    return this.advertiser === null ? null : this.advertiser.advertisement();
  }

  /** Stops the periodic RAs and forgets the neighbours (their waiting packets are dropped). */
  close(): void {
    this.advertiser?.stop();
    this.arp.cache.clear();
    this.ndp.cache.clear();
  }

  // =========================================================================== outgoing

  /** One IP packet from the stack. Takes ownership, as `LinkEnd.send` does. */
  send(packet: Uint8Array): void {
    const version = packet.length > 0 ? packet[0] >>> 4 : 0;
    if (version === 4 && packet.length >= 20) this.send4(packet);
    else if (version === 6 && packet.length >= 40) this.send6(packet);
    else this.host.drop('net-bad-packet', packet);
  }

  private send4(packet: Uint8Array): void {
    const d0 = packet[16];
    if (d0 >= 224) {
      // 255.255.255.255 (and the rest of 240/4, which nobody sends to) as broadcast; 224/4 to its
      // group MAC (RFC 1112 §6.4).
      if (d0 >= 240) this.sendFrame(BROADCAST_MAC, 0, ETHERTYPE_IPV4, packet);
      else this.sendFrameV4Multicast(packet);
      return;
    }
    const addresses = this.host.addresses();
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      if (a.version !== 4 || !prefixMatch(packet, 16, a.bytes, a.prefix)) continue;
      // The subnet's broadcast address (all host bits set; RFC 919, RFC 922), except on /31 and /32.
      if (a.prefix < 31 && hostBitsAllOnes(packet, 16, 4, a.prefix)) {
        this.sendFrame(BROADCAST_MAC, 0, ETHERTYPE_IPV4, packet);
      } else {
        this.arp.output(packet, 16, packet);
      }
      return;
    }
    const router = this.host.router(4);
    if (router === null) {
      this.host.drop('net-no-route', packet);
      return;
    }
    this.arp.output(router, 0, packet);
  }

  private send6(packet: Uint8Array): void {
    if (packet[24] === 0xff) {
      // Multicast: 33:33 + the group's last 32 bits (RFC 2464 §7).
      const f = this.frameFor(ETHERTYPE_IPV6, packet);
      ipv6MulticastMac(packet, 24, f, 0);
      this.transmit(f);
      return;
    }
    // fe80::/10 is on-link by definition (RFC 4861 §5.2, RFC 4291 §2.5.6).
    if (packet[24] === 0xfe && (packet[25] & 0xc0) === 0x80) {
      this.ndp.output(packet, 24, packet);
      return;
    }
    const addresses = this.host.addresses();
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      if (a.version === 6 && prefixMatch(packet, 24, a.bytes, a.prefix)) {
        this.ndp.output(packet, 24, packet);
        return;
      }
    }
    const router = this.host.router(6);
    if (router === null) {
      this.host.drop('net-no-route', packet);
      return;
    }
    this.ndp.output(router, 0, packet);
  }

  private sendFrameV4Multicast(packet: Uint8Array): void {
    const f = this.frameFor(ETHERTYPE_IPV4, packet);
    ipv4MulticastMac(packet, 16, f, 0);
    this.transmit(f);
  }

  /** A frame carrying `packet`, source MAC and EtherType written, destination left to the caller. */
  private frameFor(etherType: number, packet: Uint8Array): Uint8Array {
    const f = allocPacket(ETHERNET_HEADER_LENGTH + packet.length);
    const mac = this.mac;
    for (let i = 0; i < 6; i++) f[6 + i] = mac[i];
    f[12] = etherType >>> 8;
    f[13] = etherType & 0xff;
    f.set(packet, ETHERNET_HEADER_LENGTH);
    return f;
  }

  private sendFrame(dst: Uint8Array, dstOffset: number, etherType: number, packet: Uint8Array): void {
    const f = this.frameFor(etherType, packet);
    for (let i = 0; i < 6; i++) f[i] = dst[dstOffset + i];
    this.transmit(f);
  }

  private transmit(frame: Uint8Array): void {
    this.counters.framesOut++;
    if (this.frameObserver !== null) this.frameObserver('out', frame);
    this.link.send(frame);
  }

  // =========================================================================== incoming

  /**
   * No check of a frame's length against the MTU, on purpose: a link with receive offload (TapLink
   * `offload`) hands over TCP GSO super-frames of up to 64 KiB of IP, already checksummed, which
   * the stack takes whole as it does over TUN (the IP layer goes by the IP header's length). What
   * we send is still sized by `mtu` (the real one): the link joins segments, the kernel cuts them.
   */
  private receive(frame: Uint8Array): void {
    const host = this.host;
    this.counters.framesIn++;
    if (this.frameObserver !== null) this.frameObserver('in', frame);
    if (frame.length < ETHERNET_HEADER_LENGTH) {
      host.drop('eth-truncated', frame);
      return;
    }
    // The group bit of the source (IEEE 802 §8.2): no station sends from a group address.
    if ((frame[6] & 1) !== 0) {
      host.drop('eth-bad-source', frame);
      return;
    }
    if (!macEquals(frame, 0, this.mac) && !this.accepts(frame)) {
      host.drop('eth-not-for-us', frame);
      return;
    }
    let etherType = (frame[12] << 8) | frame[13];
    let offset = ETHERNET_HEADER_LENGTH;
    if (etherType === ETHERTYPE_VLAN) {
      if (frame.length < ETHERNET_HEADER_LENGTH + 4) {
        host.drop('eth-truncated', frame);
        return;
      }
      // 802.1Q: VID 0 is a priority tag on an untagged interface; any other VLAN is not ours.
      if ((((frame[14] << 8) | frame[15]) & 0x0fff) !== 0) {
        host.drop('eth-vlan', frame);
        return;
      }
      etherType = (frame[16] << 8) | frame[17];
      offset += 4;
    }
    switch (etherType) {
      case ETHERTYPE_IPV4:
        this.receiver?.(frame.subarray(offset));
        return;
      case ETHERTYPE_IPV6:
        this.receive6(frame, offset);
        return;
      case ETHERTYPE_ARP:
        this.arp.input(frame.subarray(offset), frame);
        return;
      default:
        host.drop(etherType < 0x0600 ? 'eth-bad-type' : 'eth-unknown-type', frame);
    }
  }

  private receive6(frame: Uint8Array, offset: number): void {
    const packet = frame.subarray(offset);
    // NDP (ICMPv6 133-137) is the interface's: found directly after the header in the usual case,
    // behind extension headers by a full parse in the rare other.
    if (packet.length >= 41 && packet[0] >>> 4 === 6) {
      const next = packet[6];
      if (next === 58) {
        if (isNdpType(packet[40])) {
          const length = (packet[4] << 8) | packet[5];
          if (40 + length > packet.length) this.host.drop('ipv6-bad-length', frame);
          else this.ndp.input(packet, 40, length, frame.subarray(6, 12), frame);
          return;
        }
      } else if (next === 0 || next === 43 || next === 60) {
        const info = parseIpv6(packet);
        if (typeof info !== 'string' && info.protocol === 58 && info.payloadLength > 0 && isNdpType(packet[info.payloadOffset])) {
          this.ndp.input(packet, info.payloadOffset, info.payloadLength, frame.subarray(6, 12), frame);
          return;
        }
      }
    }
    this.receiver?.(packet);
  }

  /** Broadcast, or a multicast group we are in. */
  private accepts(frame: Uint8Array): boolean {
    if ((frame[0] & 1) === 0) return false;
    if (isBroadcastMac(frame, 0)) return true;
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++) if (macEquals(frame, 0, groups[i]!)) return true;
    return false;
  }

  private refreshGroups(): void {
    const groups = [ALL_HOSTS_V4_MAC, ipv6MulticastMac(ALL_NODES)];
    if (this.advertiser !== null) groups.push(ipv6MulticastMac(ALL_ROUTERS));
    for (const g of this.ndp.groups()) {
      const mac = ipv6MulticastMac(g);
      if (!groups.some((m) => macEquals(m, 0, mac))) groups.push(mac);
    }
    this.groups = groups;
  }

  private chooseMac(mac: string | Uint8Array | undefined): Uint8Array {
    if (mac === undefined) {
      // Locally administered (bit 1 set), unicast (bit 0 clear): IEEE 802 §8.2.
      const m = new Uint8Array(6);
      for (let i = 0; i < 6; i++) m[i] = this.rng.int(0, 255);
      m[0] = (m[0] & 0xfc) | 0x02;
      return m;
    }
    const bytes = typeof mac === 'string' ? parseMac(mac) : mac.length === 6 ? mac.slice() : null;
    if (bytes === null) throw new TypeError(`bad MAC address ${JSON.stringify(typeof mac === 'string' ? mac : formatMac(mac))}: expected e.g. 02:00:5e:10:00:01`);
    if ((bytes[0] & 1) !== 0) throw new TypeError(`MAC address ${formatMac(bytes)} is a group address: an interface needs a unicast one`);
    return bytes;
  }

  private parse6(s: string): Uint8Array | null {
    const a = parseAddress(s);
    return a !== null && a.length === 16 ? a : null;
  }
}

/** Whether the address at `buf[offset]` is in `net`/`prefix` (same family). */
function prefixMatch(buf: Uint8Array, offset: number, net: Uint8Array, prefix: number): boolean {
  const whole = prefix >>> 3;
  for (let i = 0; i < whole; i++) if (buf[offset + i] !== net[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (buf[offset + whole] & mask) === (net[whole] & mask);
}

function hostBitsAllOnes(buf: Uint8Array, offset: number, length: number, prefix: number): boolean {
  for (let bit = prefix; bit < length * 8; bit++) {
    if ((buf[offset + (bit >>> 3)] & (0x80 >>> (bit & 7))) === 0) return false;
  }
  return true;
}
