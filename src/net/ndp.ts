/**
 * IPv6 Neighbor Discovery on an Ethernet interface (RFC 4861 §7): resolves IPv6 next hops with
 * Neighbor Solicitations to the solicited-node multicast group, answers solicitations for our
 * addresses, and runs Duplicate Address Detection for them (RFC 4862 §5.4). Router Solicitations
 * go to the router advertiser (router-advert.ts) when the interface is a router; Router
 * Advertisements received are counted, their source learnt, and handed to a hook.
 */
import type { TimerHandle } from '../link/clock.js';
import { formatAddress, inPrefix } from '../wire/address.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { ETHERTYPE_IPV6, formatMac, ipv6MulticastMac } from '../wire/ethernet.js';
import { writeIpv6Header } from '../wire/ipv6.js';
import {
  ALL_NODES, UNSPECIFIED_V6, findOption, isSolicitedNode, ndpLength, parseNdp, solicitedNodeAddress, writeNdp,
  type NdpMessage,
} from '../wire/ndp.js';
import type { LinkContext } from './host.js';
import { NeighbourCache, type Neighbour } from './neighbour.js';

/** RFC 4862 §5.1 RetransTimer for DAD probes, and §5.4.2 MAX_RTR_SOLICITATION_DELAY before the first. */
const DAD_WAIT_MS = 1000;
const DAD_MAX_DELAY_MS = 1000;

export type OwnAddressState = 'tentative' | 'preferred' | 'duplicate';

interface OwnAddress {
  bytes: Uint8Array;
  state: OwnAddressState;
  timer: TimerHandle | null;
}

export interface NdpOptions {
  cacheSize?: number;
  queueLength?: number;
  /** Run DAD for our addresses (RFC 4862 §5.4). Default true. */
  dad?: boolean;
}

/** The sender of a Router Advertisement and the message. */
export type RouterAdvertisementHook = (ra: Extract<NdpMessage, { type: 'router-advertisement' }>, from: Uint8Array) => void;

function equal16(a: Uint8Array, buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== buf[offset + i]) return false;
  return true;
}

function isUnspecified(buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[offset + i] !== 0) return false;
  return true;
}

/** A 6-byte link-layer address option (RFC 2464 §6), or null when absent or not Ethernet-sized. */
function linkLayer(m: NdpMessage, kind: 'source-link-layer' | 'target-link-layer'): Uint8Array | null {
  const o = findOption(m.options, kind);
  return o !== undefined && o.address.length === 6 ? o.address : null;
}

export class Ndp {
  readonly cache: NeighbourCache;
  /** Our IPv6 addresses, the link-local one included, with their DAD state. */
  private readonly own: OwnAddress[] = [];
  private readonly dad: boolean;
  /** Router mode: we answer as a router (NA with R) and take Router Solicitations. */
  router = false;
  onRouterSolicitation: (() => void) | null = null;
  onRouterAdvertisement: RouterAdvertisementHook | null = null;

  constructor(
    private readonly ctx: LinkContext,
    private readonly sendTo: (mac: Uint8Array, etherType: number, packet: Uint8Array) => void,
    options: NdpOptions = {},
  ) {
    this.dad = options.dad ?? true;
    this.cache = new NeighbourCache({
      clock: ctx.host.clock,
      addressLength: 16,
      size: options.cacheSize,
      queueLength: options.queueLength,
      solicit: (n, unicast) => this.solicit(n, unicast),
      resolved: (n, queued) => {
        ctx.counters.resolved++;
        if (ctx.host.tracing()) ctx.note(`NDP: ${formatAddress(n.address)} is at ${formatMac(n.mac!)}`, 'RFC 4861 §7.2.5');
        for (const p of queued) this.sendTo(n.mac!, ETHERTYPE_IPV6, p);
      },
      failed: (n, queued, why) => {
        if (why === 'unanswered') ctx.counters.resolutionFailures++;
        if (ctx.host.tracing()) {
          const what = why === 'unanswered' ? 'no answer from' : why === 'evicted' ? 'cache full, gave up on' : 'interface closed, gave up on';
          ctx.note(`NDP: ${what} ${formatAddress(n.address)}; ${queued.length} packet(s) dropped`, 'RFC 4861 §7.3.3');
        }
        for (const p of queued) ctx.host.drop('neighbour-unreachable', p);
      },
    });
  }

  /** Sends `packet` to the IPv6 next hop at `hop[offset]`, resolving it first if need be. */
  output(hop: Uint8Array, offset: number, packet: Uint8Array): void {
    const pushed = this.cache.output(hop, offset, packet, this.deliver);
    if (pushed !== null) this.ctx.host.drop('neighbour-queue-full', pushed);
  }

  /** The send callback, made once (no closure per packet). */
  private readonly deliver = (n: Neighbour, packet: Uint8Array): void => this.sendTo(n.mac!, ETHERTYPE_IPV6, packet);

  /** Our addresses' DAD states, for `EthernetInterface.addressState`. */
  state(address: Uint8Array): OwnAddressState | null {
    const o = this.find(address, 0);
    return o === undefined ? null : o.state;
  }

  /** Our IPv6 addresses now (the link-local one first): new ones start DAD, gone ones are forgotten. */
  sync(addresses: readonly Uint8Array[]): void {
    for (let i = this.own.length - 1; i >= 0; i--) {
      const o = this.own[i]!;
      if (!addresses.some((a) => equal16(a, o.bytes, 0))) {
        if (o.timer !== null) this.ctx.host.clock.cancel(o.timer);
        this.own.splice(i, 1);
      }
    }
    for (const a of addresses) {
      if (this.find(a, 0) !== undefined) continue;
      const o: OwnAddress = { bytes: a.slice(), state: this.dad ? 'tentative' : 'preferred', timer: null };
      this.own.push(o);
      if (this.dad) this.startDad(o);
    }
  }

  /** The multicast groups we listen to: solicited-node of each address (RFC 4861 §7.2.1). */
  groups(): Uint8Array[] {
    return this.own.map((o) => solicitedNodeAddress(o.bytes));
  }

  /** A preferred address of ours to send from: on the prefix of `dst` if there is one, else link-local. */
  sourceFor(dst: Uint8Array, dstOffset: number): Uint8Array {
    for (const a of this.ctx.host.addresses()) {
      if (a.version !== 6 || this.state(a.bytes) !== 'preferred') continue;
      if (inPrefix(dst.subarray(dstOffset, dstOffset + 16), a.bytes, a.prefix)) return a.bytes;
    }
    return this.ctx.linkLocal;
  }

  /**
   * An NDP message: `packet` is the IPv6 packet, the ICMPv6 message at `payloadOffset`,
   * `payloadLength` long; `frameSrc` the frame's source MAC (where an answer goes when the
   * solicitation carries no link-layer address).
   */
  input(packet: Uint8Array, payloadOffset: number, payloadLength: number, frameSrc: Uint8Array, frame: Uint8Array): void {
    const ctx = this.ctx;
    const host = ctx.host;
    ctx.counters.ndpIn++;
    const src = packet.subarray(8, 24);
    const dst = packet.subarray(24, 40);
    const m = parseNdp(packet.subarray(payloadOffset, payloadOffset + payloadLength), pseudoHeaderSum(src, dst, 58, payloadLength));
    if (typeof m === 'string') {
      host.drop(m, frame);
      return;
    }
    // RFC 4861 §6.1, §7.1: a hop limit of 255 proves the message was not forwarded from off-link.
    if (packet[7] !== 255) {
      host.drop('ndp-bad-hop-limit', frame);
      return;
    }
    const fromUnspecified = isUnspecified(src, 0);
    switch (m.type) {
      case 'neighbor-solicitation':
        this.solicitation(m, src, dst, fromUnspecified, frameSrc, frame);
        return;
      case 'neighbor-advertisement':
        this.advertisement(m, dst, frame);
        return;
      case 'router-solicitation': {
        const slla = linkLayer(m, 'source-link-layer');
        // §6.1.1: from the unspecified address there is no source link-layer address option.
        if (fromUnspecified && slla !== null) {
          host.drop('ndp-invalid', frame);
          return;
        }
        if (!this.router || this.onRouterSolicitation === null) {
          host.drop('ndp-unhandled', frame);
          return;
        }
        // §6.2.6: the router records the sender's link-layer address (stale).
        if (slla !== null) this.cache.learn(src, 0, slla, 0, false, true);
        this.onRouterSolicitation();
        return;
      }
      case 'router-advertisement': {
        // §6.1.2: Router Advertisements come from link-local addresses.
        if (src[0] !== 0xfe || (src[1] & 0xc0) !== 0x80) {
          host.drop('ndp-invalid', frame);
          return;
        }
        ctx.counters.raIn++;
        const slla = linkLayer(m, 'source-link-layer');
        // §6.3.4: record the router's link-layer address, creating an entry if necessary.
        if (slla !== null) this.cache.learn(src, 0, slla, 0, false, true);
        if (host.tracing()) {
          const prefixes = m.options.flatMap((o) => (o.kind === 'prefix' ? [`${formatAddress(o.prefix)}/${o.prefixLength}`] : []));
          ctx.note(`NDP: router advertisement from ${formatAddress(src)}, lifetime ${m.routerLifetime} s, prefixes ${prefixes.join(' ') || 'none'}`, 'RFC 4861 §6.3.4');
        }
        this.onRouterAdvertisement?.(m, src.slice());
        return;
      }
      default:
        // Redirects (§8) are for hosts with a routing table; synack's routes are the stack's.
        host.drop('ndp-unhandled', frame);
    }
  }

  private solicitation(
    m: Extract<NdpMessage, { type: 'neighbor-solicitation' }>,
    src: Uint8Array,
    dst: Uint8Array,
    fromUnspecified: boolean,
    frameSrc: Uint8Array,
    frame: Uint8Array,
  ): void {
    const ctx = this.ctx;
    const host = ctx.host;
    const slla = linkLayer(m, 'source-link-layer');
    // §7.1.1: the target is not multicast; a DAD probe (source ::) goes to a solicited-node group
    // and carries no source link-layer address.
    if (m.target[0] === 0xff || (fromUnspecified && (!isSolicitedNode(dst) || slla !== null))) {
      host.drop('ndp-invalid', frame);
      return;
    }
    const own = this.find(m.target, 0);
    if (own === undefined || own.state === 'duplicate') {
      host.drop('ndp-not-for-us', frame);
      return;
    }
    if (own.state === 'tentative') {
      // RFC 4862 §5.4.3: another node probing our tentative address means it is a duplicate; an
      // ordinary solicitation for it is not answered until DAD is done.
      if (fromUnspecified) this.duplicate(own, 'a DAD probe from another node');
      else host.drop('ndp-not-for-us', frame);
      return;
    }
    // §7.2.3: learn the sender (stale: an NS proves nothing about the path back).
    if (!fromUnspecified && slla !== null) this.cache.learn(src, 0, slla, 0, false, true);
    // §7.2.4: to a DAD probe, an unsolicited NA to all nodes; otherwise a solicited one to the sender.
    const na: NdpMessage = {
      type: 'neighbor-advertisement',
      router: this.router,
      solicited: !fromUnspecified,
      override: true,
      target: own.bytes,
      options: [{ kind: 'target-link-layer', address: ctx.mac }],
    };
    if (fromUnspecified) this.send(ipv6MulticastMac(ALL_NODES), own.bytes, ALL_NODES, na);
    else this.send(slla ?? frameSrc, own.bytes, src, na);
  }

  private advertisement(m: Extract<NdpMessage, { type: 'neighbor-advertisement' }>, dst: Uint8Array, frame: Uint8Array): void {
    const ctx = this.ctx;
    const host = ctx.host;
    // §7.1.2: the target is not multicast; an NA to a multicast address is not solicited.
    if (m.target[0] === 0xff || (dst[0] === 0xff && m.solicited)) {
      host.drop('ndp-invalid', frame);
      return;
    }
    const tlla = linkLayer(m, 'target-link-layer');
    const own = this.find(m.target, 0);
    if (own !== undefined) {
      if (tlla !== null && tlla.every((b, i) => b === ctx.mac[i])) return; // our own, looped back
      if (own.state === 'tentative') this.duplicate(own, 'an advertisement from another node');
      else {
        ctx.counters.addressConflicts++;
        if (host.tracing()) ctx.note(`NDP: ${formatAddress(own.bytes)} is also advertised by ${tlla ? formatMac(tlla) : 'another node'}`, 'RFC 4862 §5.4.4');
      }
      return;
    }
    const n = this.cache.lookup(m.target, 0);
    if (n === undefined) {
      // §7.2.5: "If no entry exists, the advertisement SHOULD be silently discarded."
      host.drop('ndp-unsolicited', frame);
      return;
    }
    if (n.mac === null) {
      if (tlla === null) {
        host.drop('ndp-invalid', frame);
        return;
      }
      // INCOMPLETE → REACHABLE when solicited, else STALE; the waiting packets go now.
      this.cache.update(n, tlla, 0, m.solicited);
      return;
    }
    const differs = tlla !== null && !tlla.every((b, i) => b === n.mac![i]);
    if (!m.override && differs) {
      // §7.2.5: without Override a different address does not replace ours; a reachable entry turns stale.
      this.cache.makeStale(n);
      return;
    }
    this.cache.update(n, tlla ?? n.mac, 0, m.solicited);
  }

  private solicit(n: Neighbour, unicast: boolean): void {
    // §7.2.2: to the solicited-node group (or unicast when probing), with our link-layer address.
    const dst = unicast ? n.address : solicitedNodeAddress(n.address);
    const mac = unicast && n.mac !== null ? n.mac : ipv6MulticastMac(dst);
    const src = this.sourceFor(n.address, 0);
    this.send(mac, src, dst, {
      type: 'neighbor-solicitation',
      target: n.address,
      options: [{ kind: 'source-link-layer', address: this.ctx.mac }],
    });
  }

  /** Writes and transmits an NDP message in an IPv6 packet with hop limit 255 (§6.1, §7.1). */
  send(mac: Uint8Array, src: Uint8Array, dst: Uint8Array, m: NdpMessage): void {
    const ctx = this.ctx;
    const length = ndpLength(m);
    const f = ctx.frame(mac, 0, ETHERTYPE_IPV6, 40 + length);
    writeIpv6Header(f, 14, src, dst, 58, length, 255);
    writeNdp(f, 54, m, src, dst);
    ctx.counters.ndpOut++;
    ctx.transmit(f);
  }

  // ------------------------------------------------------------------------------------ DAD

  private startDad(o: OwnAddress): void {
    const clock = this.ctx.host.clock;
    // RFC 4862 §5.4.2: a random delay before the first probe, so hosts that start together do not collide.
    o.timer = clock.schedule(clock.now() + this.ctx.random() * DAD_MAX_DELAY_MS, () => {
      const group = solicitedNodeAddress(o.bytes);
      // The probe: from ::, to the solicited-node group of the address, without options (§5.4.2).
      this.send(ipv6MulticastMac(group), UNSPECIFIED_V6, group, { type: 'neighbor-solicitation', target: o.bytes, options: [] });
      o.timer = clock.schedule(clock.now() + DAD_WAIT_MS, () => {
        o.timer = null;
        o.state = 'preferred';
        if (this.ctx.host.tracing()) this.ctx.note(`NDP: DAD found no other user of ${formatAddress(o.bytes)}`, 'RFC 4862 §5.4');
      });
    });
  }

  private duplicate(o: OwnAddress, why: string): void {
    if (o.timer !== null) this.ctx.host.clock.cancel(o.timer);
    o.timer = null;
    o.state = 'duplicate';
    this.ctx.counters.dadConflicts++;
    // RFC 4862 §5.4.5: the address must not be used; the stack decides what to do (the note says why).
    if (this.ctx.host.tracing()) {
      this.ctx.note(`NDP: DAD failed: ${formatAddress(o.bytes)} is in use on the link (${why})`, 'RFC 4862 §5.4.5');
    }
  }

  private find(buf: Uint8Array, offset: number): OwnAddress | undefined {
    for (const o of this.own) if (equal16(o.bytes, buf, offset)) return o;
    return undefined;
  }
}
