/**
 * Test support for the Ethernet interface: a tiny in-memory hub (every frame to every other port,
 * on the clock's next turn, each delivery followed by a burst end), a host that records what the
 * interface reports, and builders for IP packets and raw ARP/NDP frames.
 */
import type { Clock } from '../../src/link/clock.js';
import { VirtualClock } from '../../src/link/clock.js';
import type { EthernetLinkEnd } from '../../src/link/link.js';
import { EthernetInterface, type EthernetInterfaceOptions } from '../../src/net/interface.js';
import type { InterfaceAddress, InterfaceHost } from '../../src/net/host.js';
import type { TraceEvent } from '../../src/trace/events.js';
import { parseAddress, parseCidr } from '../../src/wire/address.js';
import { writeArp } from '../../src/wire/arp.js';
import type { DropReason } from '../../src/wire/drop.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV6, parseMac, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { ndpLength, parseNdp, writeNdp, type NdpMessage } from '../../src/wire/ndp.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';

export interface HubPort extends EthernetLinkEnd {
  readonly index: number;
}

/** A hub: frames go to every other port on the clock's next turn (so no re-entrant delivery). */
export class Hub {
  readonly log: { from: number; frame: Uint8Array }[] = [];
  private readonly receivers: (((f: Uint8Array) => void) | null)[] = [];
  private readonly bursts: ((() => void) | null)[] = [];

  constructor(private readonly clock: Clock, private readonly mtu = 1500) {}

  port(): HubPort {
    const index = this.receivers.length;
    this.receivers.push(null);
    this.bursts.push(null);
    return {
      linkType: 'ethernet',
      index,
      mtu: this.mtu,
      send: (frame) => {
        const copy = frame.slice();
        this.log.push({ from: index, frame: copy });
        this.clock.defer(() => {
          for (let i = 0; i < this.receivers.length; i++) if (i !== index) this.deliver(i, copy);
        });
      },
      onFrame: (fn) => {
        this.receivers[index] = fn;
      },
      onBurstEnd: (fn) => {
        this.bursts[index] = fn;
      },
    };
  }

  /** A frame into port `to` only, as if from a station that is not one of the ports. */
  inject(to: number, frame: Uint8Array): void {
    this.clock.defer(() => this.deliver(to, frame));
  }

  /** Frames sent by port `from` (all ports when omitted). */
  sent(from?: number): Uint8Array[] {
    return this.log.filter((e) => from === undefined || e.from === from).map((e) => e.frame);
  }

  private deliver(i: number, frame: Uint8Array): void {
    this.receivers[i]?.(frame.slice());
    this.bursts[i]?.();
  }
}

export class TestHost implements InterfaceHost {
  addrs: InterfaceAddress[] = [];
  routers: { 4: Uint8Array | null; 6: Uint8Array | null } = { 4: null, 6: null };
  readonly drops = new Map<string, number>();
  readonly dropped: { reason: DropReason; data: Uint8Array }[] = [];
  readonly notes: string[] = [];
  readonly received: Uint8Array[] = [];

  constructor(readonly clock: Clock, cidrs: string[] = []) {
    for (const c of cidrs) this.add(c);
  }

  add(cidr: string): void {
    const p = parseCidr(cidr)!;
    this.addrs = [...this.addrs, { bytes: p.address, prefix: p.prefix, version: p.address.length === 4 ? 4 : 6 }];
  }

  addresses(): readonly InterfaceAddress[] {
    return this.addrs;
  }

  router(version: 4 | 6): Uint8Array | null {
    return this.routers[version];
  }

  drop(reason: DropReason, data: Uint8Array): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    this.dropped.push({ reason, data: data.slice() });
  }

  tracing(): boolean {
    return true;
  }

  trace(e: TraceEvent): void {
    if (e.type === 'note') this.notes.push(e.what);
  }

  count(reason: string): number {
    return this.drops.get(reason) ?? 0;
  }
}

export interface Station {
  host: TestHost;
  ifc: EthernetInterface;
  port: HubPort;
}

export function station(clock: VirtualClock, hub: Hub, cidrs: string[], mac: string, options: EthernetInterfaceOptions = {}): Station {
  const host = new TestHost(clock, cidrs);
  const port = hub.port();
  const ifc = new EthernetInterface(port, host, { mac, seed: port.index + 1, ...options });
  ifc.onPacket((p) => host.received.push(p.slice()));
  return { host, ifc, port };
}

/** An IPv4 UDP-protocol packet (payload not a real UDP header: the interface does not look). */
export function ipv4(src: string, dst: string, tag = 0, size = 28): Uint8Array {
  const p = new Uint8Array(size);
  writeIpv4Header(p, 0, parseAddress(src)!, parseAddress(dst)!, 17, size - 20, 64, tag);
  p[size - 1] = tag;
  return p;
}

export function ipv6(src: string, dst: string, tag = 0, size = 48, next = 17): Uint8Array {
  const p = new Uint8Array(size);
  writeIpv6Header(p, 0, parseAddress(src)!, parseAddress(dst)!, next, size - 40, 64);
  p[size - 1] = tag;
  return p;
}

export function arpFrame(
  dstMac: string, op: 1 | 2, senderMac: string, senderIp: string, targetMac: string, targetIp: string,
): Uint8Array {
  const f = new Uint8Array(42);
  writeEthernetHeader(f, 0, parseMac(dstMac)!, parseMac(senderMac)!, ETHERTYPE_ARP);
  writeArp(f, 14, op, parseMac(senderMac)!, parseAddress(senderIp)!, parseMac(targetMac)!, parseAddress(targetIp)!);
  return f;
}

export function ndpFrame(dstMac: string, srcMac: string, src: string, dst: string, m: NdpMessage, hopLimit = 255): Uint8Array {
  const len = ndpLength(m);
  const f = new Uint8Array(54 + len);
  writeEthernetHeader(f, 0, parseMac(dstMac)!, parseMac(srcMac)!, ETHERTYPE_IPV6);
  writeIpv6Header(f, 14, parseAddress(src)!, parseAddress(dst)!, 58, len, hopLimit);
  writeNdp(f, 54, m, parseAddress(src)!, parseAddress(dst)!);
  return f;
}

/** The ARP packet in a frame, or null. */
export function arpOf(frame: Uint8Array): { op: number; spa: string; tpa: string; sha: string; dst: string } | null {
  if (frame[12] !== 0x08 || frame[13] !== 0x06) return null;
  const ip = (o: number): string => Array.from(frame.subarray(o, o + 4)).join('.');
  const mac = (o: number): string => Array.from(frame.subarray(o, o + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
  return { op: frame[21]!, sha: mac(22), spa: ip(28), tpa: ip(38), dst: mac(0) };
}

/** The NDP message in a frame (hop limit and addresses too), or null. */
export function ndpOf(frame: Uint8Array): { m: NdpMessage; src: Uint8Array; dst: Uint8Array; hop: number; dstMac: Uint8Array } | null {
  if (frame[12] !== 0x86 || frame[13] !== 0xdd || frame[20] !== 58) return null;
  const len = (frame[18]! << 8) | frame[19]!;
  const src = frame.subarray(22, 38);
  const dst = frame.subarray(38, 54);
  const m = parseNdp(frame.subarray(54, 54 + len), pseudoHeaderSum(src, dst, 58, len));
  if (typeof m === 'string') return null;
  return { m, src, dst, hop: frame[21]!, dstMac: frame.subarray(0, 6) };
}
