/**
 * A host on one link: its addresses, and the layers that share them.
 *
 *   link (or EthernetInterface over an Ethernet link: ARP, NDP, src/net/interface.ts)
 *     → IpLayer   src/net/ip.ts         parse, reassemble (src/net/fragments.ts), dispatch; output
 *       → TcpLayer  src/stack/tcp.ts    demux by 4-tuple, listeners, SYN cookies, timers
 *       → UdpLayer  src/udp/udp.ts      ports, sockets, port unreachable
 *       → IcmpLayer src/net/icmp.ts     echo, errors in and out (rate limited)
 *
 * Data flows one way: link → wire decode → demux → TCB or socket → wire encode → link; trace events
 * are emitted at each hop, and cost nothing when nobody listens. This class is the public face:
 * options, the user API, and the wiring.
 */
import { dnsLookup, type LookupAddress, type LookupOptions } from '../services/dns-stub.js';
import { RealClock, type Clock } from '../link/clock.js';
import { isEthernetLink, type LinkEnd } from '../link/link.js';
import { AddressTable, isLinkLocal6 } from '../net/addresses.js';
import { IcmpLayer } from '../net/icmp.js';
import { EthernetInterface } from '../net/interface.js';
import { IpLayer } from '../net/ip.js';
import { connectStream, listenStream, type StreamConnection, type StreamListener } from '../socket/streams.js';
import { udpStream, type UdpStream, type UdpStreamOptions } from '../socket/udp-streams.js';
import { TcpError, type TcpConnection, type TcpListener } from '../tcp/user.js';
import type { TraceListener } from '../trace/events.js';
import { UdpError, type UdpBindOptions, type UdpSocket } from '../udp/socket.js';
import { UdpLayer, checkUdpPort } from '../udp/udp.js';
import { formatAddress, parseAddress } from '../wire/address.js';
import { StackCore, type StackCounters } from './core.js';
import type { ConnectOptions, ListenOptions, StackOptions } from './options.js';
import type { TcpForwardHandler, TcpForwardOptions, UdpForwardHandler } from './forward.js';
import { TcpLayer } from './tcp.js';

export type { StackCounters } from './core.js';
export { tupleHash } from './tcp.js';

/** 32-bit words from a seed (splitmix32), for deterministic secrets. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function randomWords(seed: number | undefined): () => number {
  if (seed !== undefined) return splitmix32(seed);
  const c = (globalThis as { crypto?: { getRandomValues<T extends ArrayBufferView>(a: T): T } }).crypto;
  if (c !== undefined) {
    return () => c.getRandomValues(new Uint32Array(1))[0]!;
  }
  return splitmix32((Date.now() ^ (Math.random() * 0x100000000)) >>> 0);
}

export class Stack {
  readonly clock: Clock;
  readonly name: string;
  readonly counters: StackCounters;
  /** The Ethernet interface (ARP, NDP) when the link carries frames; null on an IP link. */
  readonly interface: EthernetInterface | null;

  private readonly core: StackCore;
  private readonly table = new AddressTable();
  private readonly link: LinkEnd;
  private readonly ip: IpLayer;
  private readonly icmp: IcmpLayer;
  private readonly tcp: TcpLayer;
  private readonly udp: UdpLayer;
  private receiving = false;
  private dns: readonly string[] = [];
  /** Add the interface's link-local address with the first IPv6 address (or at once, advertising). */
  private readonly wantLinkLocal: boolean;

  constructor(options: StackOptions) {
    this.clock = options.clock ?? new RealClock();
    this.name = options.name ?? 'stack';
    this.core = new StackCore(this.clock, this.name);
    this.counters = this.core.counters;
    for (const cidr of options.addresses ?? []) this.table.add(cidr);
    const words = randomWords(options.seed);
    const given = options.link;
    if (isEthernetLink(given)) {
      const core = this.core;
      const table = this.table;
      this.interface = new EthernetInterface(given, {
        clock: this.clock,
        addresses: () => table.list,
        router: (version) => table.router(version),
        drop: (reason, data) => core.drop(reason, data),
        tracing: () => core.traced,
        trace: (e) => {
          if (core.traced) core.trace(e);
        },
      }, {
        ...(options.mac !== undefined ? { mac: options.mac } : {}),
        seed: options.seed ?? words(),
        ...(options.advertise !== undefined ? { advertise: options.advertise } : {}),
      });
      this.link = this.interface;
      this.wantLinkLocal = options.advertise !== undefined && options.advertise !== false;
      this.addLinkLocal();
    } else {
      if (this.table.list.length === 0) throw new TcpError('EINVAL', 'a stack needs at least one address');
      this.interface = null;
      this.link = given;
      this.wantLinkLocal = false;
    }
    if (options.dnsServers !== undefined) this.setDnsServers(options.dnsServers);
    this.ip = new IpLayer(this.core, this.table, this.link, options.ttl ?? 64, 0);
    this.tcp = new TcpLayer(this.core, this.table, this.link, this.ip, options, words);
    // Drawn after TCP's keys, so a seeded stack's ISNs and ports are what they always were.
    this.udp = new UdpLayer(this.core, this.table, this.ip, this.link.checksumOffload === true, words(), words());
    const rate = options.icmpErrorRate ?? 1000;
    if (!(rate >= 0)) throw new RangeError(`icmpErrorRate must be >= 0 (got ${options.icmpErrorRate})`);
    this.icmp = new IcmpLayer(this.core, this.table, this.ip, rate);
    this.ip.tcp = this.tcp;
    this.ip.udp = this.udp;
    this.ip.icmp = this.icmp;
    this.tcp.icmp = this.icmp;
    this.icmp.tcp = this.tcp;
    this.icmp.udp = this.udp;
    this.udp.icmp = this.icmp;
    this.link.onPacket((p) => this.receive(p));
    if (typeof this.link.onBurstEnd === 'function') {
      this.tcp.batched = true;
      this.link.onBurstEnd(() => this.tcp.burstEnd());
    }
  }

  // ====================================================================== public API

  on(event: 'trace', fn: TraceListener): this {
    this.core.emitter.on(event, fn);
    this.core.traced = this.core.emitter.listenerCount('trace') > 0;
    return this;
  }

  off(event: 'trace', fn: TraceListener): this {
    this.core.emitter.off(event, fn);
    this.core.traced = this.core.emitter.listenerCount('trace') > 0;
    return this;
  }

  /** The stack's addresses (without prefix), in the order added. */
  get addresses(): readonly string[] {
    return this.table.addresses;
  }

  /**
   * Adds an address, "10.0.0.5/24" or "fd00::5/64" (a DHCP lease, SLAAC, a user). Throws EINVAL for
   * a bad one and EADDRINUSE when the stack has it already. On an Ethernet link the interface
   * announces it (gratuitous ARP, RFC 5227 §3) or checks it (DAD, RFC 4862 §5.4).
   */
  addAddress(cidr: string): void {
    const a = this.table.add(cidr);
    if (a.version === 6) this.addLinkLocal();
    this.interface?.addressesChanged();
  }

  /**
   * Removes an address ("10.0.0.5" or "10.0.0.5/24"); false when the stack does not have it.
   * Connections and sockets bound to it stay, but nothing more arrives for them (as on Linux).
   */
  removeAddress(address: string): boolean {
    const removed = this.table.remove(address);
    if (removed) this.interface?.addressesChanged();
    return removed;
  }

  /** The default router for off-link destinations of one family (null: none, on-link only). */
  setRouter(address: string | null, version: 4 | 6): void {
    this.table.setRouter(address, version);
  }

  router(version: 4 | 6): string | null {
    const r = this.table.router(version);
    return r === null ? null : formatAddress(r);
  }

  /** The DNS servers this host uses (options.dnsServers, a DHCP lease, RA RDNSS), canonical text. */
  get dnsServers(): readonly string[] {
    return this.dns;
  }

  setDnsServers(list: readonly string[]): void {
    const out: string[] = [];
    for (const s of list) {
      const b = parseAddress(String(s));
      if (b === null) throw new TcpError('EINVAL', `bad DNS server address ${JSON.stringify(s)}`);
      out.push(formatAddress(b));
    }
    this.dns = Object.freeze(out);
  }

  /** Active OPEN (RFC 9293 §3.10.1). */
  tcpConnect(options: ConnectOptions): TcpConnection {
    return this.tcp.tcpConnect(options);
  }

  /** Passive OPEN (RFC 9293 §3.10.1). */
  tcpListen(options: ListenOptions): TcpListener {
    return this.tcp.tcpListen(options);
  }

  /** WHATWG-streams active open (the same in Node and the browser). */
  connect(options: ConnectOptions): Promise<StreamConnection> {
    return connectStream(this, options);
  }

  /** WHATWG-streams passive open: an async iterable of connections. */
  listen(options: ListenOptions): StreamListener {
    return listenStream(this, options);
  }

  /** Every connection the stack holds (any state but CLOSED), for STATUS-like views. */
  connections(): TcpConnection[] {
    return this.tcp.connections();
  }

  /**
   * A UDP socket (RFC 768): bound at once (port 0 or omitted: an ephemeral port). Throws EINVAL,
   * EADDRINUSE or EADDRNOTAVAIL (UdpError, node's codes).
   */
  /**
   * Name to address through the stack's DNS servers (`dnsServers`, e.g. learned from DHCP), by the
   * stub resolver in src/services/dns-stub.ts; `stack.net.connect({ host: 'name' })` uses it. Core:
   * the same in a browser. IP literals and 'localhost' answer without a query.
   */
  lookup(name: string, options: LookupOptions & { all: true }): Promise<LookupAddress[]>;
  lookup(name: string, options?: LookupOptions & { all?: false }): Promise<LookupAddress>;
  lookup(name: string, options: LookupOptions = {}): Promise<LookupAddress | LookupAddress[]> {
    return dnsLookup(this, name, options);
  }

  udpBind(options: UdpBindOptions = {}): UdpSocket {
    return this.udp.bind(options);
  }

  /** The UDP sockets open now. */
  udpSockets(): UdpSocket[] {
    return this.udp.sockets();
  }

  /**
   * Catch-all TCP (src/stack/forward.ts): SYNs to any address and port that no connection or
   * listener claims go to `handler`, which accepts (SYN,ACK now) or rejects (RST, ICMP) each once
   * the way out has answered. null: back to RST for every such SYN.
   */
  forwardTcp(handler: TcpForwardHandler | null, options?: TcpForwardOptions): void {
    this.tcp.setForwarder(handler, options);
  }

  /** Catch-all UDP: datagrams to any unicast address and port that no socket takes go to `handler`. */
  forwardUdp(handler: UdpForwardHandler | null): void {
    this.udp.forwarder = handler;
  }

  /**
   * One UDP datagram from any address and port (the forwarder answering as the address the guest
   * wrote to). Throws UdpError EINVAL for bad addresses or ports, EMSGSIZE when too large.
   */
  udpSendFrom(from: { address: string; port: number }, to: { address: string; port: number }, data: Uint8Array): void {
    const local = parseAddress(String(from.address));
    const remote = parseAddress(String(to.address));
    if (local === null || remote === null) throw new UdpError('EINVAL', `bad address ${JSON.stringify(local === null ? from.address : to.address)}`, 'send');
    checkUdpPort(from.port, 'send');
    checkUdpPort(to.port, 'send');
    this.udp.sendRaw(local, from.port, remote, to.port, data);
  }

  /** SYNs waiting for the TCP forwarder's decision. */
  get forwardPending(): number {
    return this.tcp.forwardPending;
  }

  /** WHATWG-streams UDP socket (the same in Node and the browser). */
  udpStream(options: UdpStreamOptions = {}): UdpStream {
    return udpStream(this, options);
  }

  // ====================================================================== input

  /**
   * One IP packet from the link. Never throws: bad input is dropped and counted. The clock is read
   * once per packet (as Linux stamps each skb): everything the packet causes happens "now".
   */
  private receive(packet: Uint8Array): void {
    const tcp = this.tcp;
    if (tcp.batched) tcp.inBurst = true;
    // A link that delivers from inside send() (none of ours does) would nest a receive() in one:
    // the inner one then parses into new objects, not into the scratch the outer one is using.
    const nested = this.receiving;
    this.receiving = true;
    const core = this.core;
    core.inputNow = core.clock.now();
    core.timeFrozen = true;
    try {
      this.ip.input(packet, !nested);
    } catch (err) {
      core.internalError(err);
    } finally {
      core.timeFrozen = nested;
      this.receiving = nested;
    }
  }

  /** The interface's fe80:: address, once the stack speaks IPv6 (or advertises as a router). */
  private addLinkLocal(): void {
    const iface = this.interface;
    if (iface === null) return;
    const ll = iface.linkLocal;
    if (this.table.find(ll) !== undefined) return;
    const hasV6 = this.table.list.some((a) => a.version === 6 && !isLinkLocal6(a.bytes));
    if (!hasV6 && !this.wantLinkLocal) return;
    this.table.add(`${formatAddress(ll)}/64`);
  }
}
