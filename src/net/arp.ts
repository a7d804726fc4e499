/**
 * ARP on an Ethernet interface (RFC 826, RFC 1122 §2.3.2): resolves IPv4 next hops through a
 * bounded neighbour cache, answers requests for our addresses, announces them (gratuitous ARP,
 * RFC 5227 §3) and notices when another station claims one (RFC 5227 §2.4).
 */
import { formatAddress, inPrefix } from '../wire/address.js';
import { ARP_LENGTH, ARP_REPLY, ARP_REQUEST, parseArp, writeArp } from '../wire/arp.js';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ZERO_MAC, formatMac, isMulticastMac, macEquals } from '../wire/ethernet.js';
import type { InterfaceAddress, LinkContext } from './host.js';
import { NeighbourCache, type Neighbour } from './neighbour.js';

/** RFC 5227 DEFEND_INTERVAL: at most one defence of an address per 10 s. */
const DEFEND_INTERVAL_MS = 10_000;

const ZERO_IPV4 = new Uint8Array(4);

export interface ArpOptions {
  /** Neighbour cache entries at most. Default 1024. */
  cacheSize?: number;
  /** Packets waiting per unresolved neighbour. Default 3. */
  queueLength?: number;
}

function isOurs(addresses: readonly InterfaceAddress[], buf: Uint8Array, offset: number): InterfaceAddress | undefined {
  for (const a of addresses) {
    if (a.version !== 4) continue;
    const b = a.bytes;
    if (b[0] === buf[offset] && b[1] === buf[offset + 1] && b[2] === buf[offset + 2] && b[3] === buf[offset + 3]) return a;
  }
  return undefined;
}

export class Arp {
  readonly cache: NeighbourCache;
  private lastDefence = -Infinity;

  constructor(
    private readonly ctx: LinkContext,
    /** Sends an IP packet in a frame to a resolved neighbour. */
    private readonly sendTo: (mac: Uint8Array, etherType: number, packet: Uint8Array) => void,
    options: ArpOptions = {},
  ) {
    this.cache = new NeighbourCache({
      clock: ctx.host.clock,
      addressLength: 4,
      size: options.cacheSize,
      queueLength: options.queueLength,
      solicit: (n, unicast) => this.request(n.address, unicast ? n.mac : null),
      resolved: (n, queued) => {
        ctx.counters.resolved++;
        if (ctx.host.tracing()) ctx.note(`ARP: ${formatAddress(n.address)} is at ${formatMac(n.mac!)}`, 'RFC 826');
        for (const p of queued) this.sendTo(n.mac!, ETHERTYPE_IPV4, p);
      },
      failed: (n, queued, why) => this.failed(n, queued, why),
    });
  }

  /** Sends `packet` to the IPv4 next hop at `hop[offset]`, resolving it first if need be. */
  output(hop: Uint8Array, offset: number, packet: Uint8Array): void {
    const pushed = this.cache.output(hop, offset, packet, this.deliver);
    if (pushed !== null) this.ctx.host.drop('neighbour-queue-full', pushed);
  }

  /** The send callback, made once (no closure per packet). */
  private readonly deliver = (n: Neighbour, packet: Uint8Array): void => this.sendTo(n.mac!, ETHERTYPE_IPV4, packet);

  /** An ARP packet from the link (the Ethernet payload). */
  input(payload: Uint8Array, frame: Uint8Array): void {
    const ctx = this.ctx;
    const host = ctx.host;
    ctx.counters.arpIn++;
    const p = parseArp(payload);
    if (typeof p === 'string') {
      host.drop(p, frame);
      return;
    }
    const spa = p.senderIp;
    // No station has a group MAC or a multicast/broadcast address of its own.
    if (isMulticastMac(p.senderMac) || macEquals(p.senderMac, 0, ctx.mac) || spa[0] >= 224) {
      host.drop('arp-invalid', frame);
      return;
    }
    const addresses = host.addresses();
    const senderIsUs = isOurs(addresses, spa, 0);
    if (senderIsUs !== undefined) {
      this.conflict(senderIsUs, p.senderMac);
      return;
    }
    const target = isOurs(addresses, p.targetIp, 0);
    // An ARP probe (RFC 5227 §2.1.1) has sender address 0.0.0.0: nothing to learn from it.
    const probe = spa[0] === 0 && spa[1] === 0 && spa[2] === 0 && spa[3] === 0;
    // RFC 826 "merge": update an existing entry for the sender, whoever the packet was for. A reply
    // to us confirms reachability (RFC 1122 §2.3.2.1).
    const merged = probe ? undefined :
      this.cache.learn(spa, 0, p.senderMac, 0, p.op === ARP_REPLY && target !== undefined, false);
    if (target === undefined) {
      // An announcement (RFC 5227 §3: sender = target address) is news for the merge above, not a
      // request to anyone; other requests and replies between other stations are not for us.
      const announcement = spa[0] === p.targetIp[0] && spa[1] === p.targetIp[1] && spa[2] === p.targetIp[2] && spa[3] === p.targetIp[3];
      if (merged === undefined && !announcement) host.drop('arp-not-for-us', frame);
      return;
    }
    if (p.op === ARP_REPLY) {
      // No entry is made from a reply nobody asked for (an entry exists while we resolve).
      if (merged === undefined) host.drop('arp-unsolicited', frame);
      return;
    }
    // A request for our address: RFC 826 adds the sender when it is not known yet ("If the merge_flag
    // is false, add the triplet"); unconfirmed, so stale until used and checked.
    if (merged === undefined && !probe) this.cache.learn(spa, 0, p.senderMac, 0, false, true);
    const f = ctx.frame(p.senderMac, 0, ETHERTYPE_ARP, ARP_LENGTH);
    writeArp(f, 14, ARP_REPLY, ctx.mac, target.bytes, p.senderMac, spa);
    ctx.counters.arpOut++;
    ctx.transmit(f);
  }

  /** A gratuitous ARP announcing `address` (RFC 5227 §3: a request with sender = target = it). */
  announce(address: Uint8Array): void {
    const ctx = this.ctx;
    const f = ctx.frame(BROADCAST_MAC, 0, ETHERTYPE_ARP, ARP_LENGTH);
    writeArp(f, 14, ARP_REQUEST, ctx.mac, address, ZERO_MAC, address);
    ctx.counters.arpOut++;
    ctx.transmit(f);
    if (ctx.host.tracing()) ctx.note(`ARP: announcing ${formatAddress(address)} at ${formatMac(ctx.mac)}`, 'RFC 5227 §3');
  }

  /** A request for `target`: broadcast, or unicast to `mac` to recheck a stale entry. */
  private request(target: Uint8Array, mac: Uint8Array | null): void {
    const ctx = this.ctx;
    // The sender address: ours on the target's subnet, else any of ours, else 0.0.0.0 (no address yet).
    let spa: Uint8Array = ZERO_IPV4;
    for (const a of ctx.host.addresses()) {
      if (a.version !== 4) continue;
      if (spa === ZERO_IPV4) spa = a.bytes;
      if (inPrefix(target, a.bytes, a.prefix)) {
        spa = a.bytes;
        break;
      }
    }
    const f = ctx.frame(mac ?? BROADCAST_MAC, 0, ETHERTYPE_ARP, ARP_LENGTH);
    writeArp(f, 14, ARP_REQUEST, ctx.mac, spa, ZERO_MAC, target);
    ctx.counters.arpOut++;
    ctx.transmit(f);
  }

  private failed(n: Neighbour, queued: Uint8Array[], why: 'unanswered' | 'evicted' | 'cleared'): void {
    const ctx = this.ctx;
    if (why === 'unanswered') ctx.counters.resolutionFailures++;
    if (ctx.host.tracing()) {
      const what = why === 'unanswered' ? 'no answer from' : why === 'evicted' ? 'cache full, gave up on' : 'interface closed, gave up on';
      ctx.note(`ARP: ${what} ${formatAddress(n.address)}; ${queued.length} packet(s) dropped`, 'RFC 1122 §2.3.2.2');
    }
    for (const p of queued) ctx.host.drop('neighbour-unreachable', p);
  }

  /** Another station uses one of our addresses (RFC 5227 §2.4): count it, defend once per 10 s. */
  private conflict(address: InterfaceAddress, mac: Uint8Array): void {
    const ctx = this.ctx;
    ctx.counters.addressConflicts++;
    if (ctx.host.tracing()) {
      ctx.note(`ARP: ${formatAddress(address.bytes)} is also claimed by ${formatMac(mac)}`, 'RFC 5227 §2.4');
    }
    const now = ctx.host.clock.now();
    if (now - this.lastDefence >= DEFEND_INTERVAL_MS) {
      this.lastDefence = now;
      this.announce(address.bytes);
    }
  }
}
