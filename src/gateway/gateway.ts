/**
 * The gateway (issue 15): a synack stack as the whole network of a guest — a VM, a container, the
 * kernel behind a TAP device. The LAN half (src/gateway/lan.ts) gives the guest ARP/NDP, DHCP,
 * Router Advertisements and DNS; this adds the world:
 *
 * - every TCP connection the guest opens, to any address and port, is terminated here
 *   (stack.forwardTcp) and relayed through an Upstream (direct, Wisp, in-process). The upstream is
 *   opened first; the guest's handshake completes only once it has answered, so a refused
 *   destination is a RST at once and an unreachable or forbidden one an ICMP unreachable — never
 *   a hang. Half-open attempts are bounded (`maxPending`);
 * - every UDP flow likewise (src/gateway/udp-flows.ts), with NAT-like idle timeouts;
 * - the host alias: the gateway's own address (10.0.2.2, as in QEMU) reaches the host's loopback;
 * - policy before any upstream is opened (src/gateway/policy.ts); refusals counted and reported;
 * - names: the guest's DNS resolves through the upstream — the host's resolver for direct; for an
 *   upstream that connects by name (Wisp), fake IPs (src/gateway/fake-ip.ts): each name gets an
 *   address from a reserved pool, and a connection to it goes out by name;
 * - into the guest: `connectToGuest` opens a connection from JavaScript (port forwarding in Node
 *   is src/gateway/hostfwd-node.ts).
 *
 * Core: no Node built-ins; the direct upstream is passed in by Node code (src/cli/gateway.ts).
 */
import type { DnsUpstream } from '../services/dns-server.js';
import type { TcpForwardRequest, ForwardRejection, UdpForwardVerdict } from '../stack/forward.js';
import type { StreamConnection } from '../socket/streams.js';
import type { TcpConnection } from '../tcp/user.js';
import { formatEndpoint, parseAddress } from '../wire/address.js';
import { LanGateway, type LanGatewayEvent, type LanGatewayOptions } from './lan.js';
import { FakeIpDns, type FakeIpOptions } from './fake-ip.js';
import { Policy, type PolicyOptions } from './policy.js';
import { TcpRelay, type RelayStats } from './relay.js';
import { UdpFlows, type UdpFlowClosed, type UdpFlowInfo } from './udp-flows.js';
import { UpstreamError, type Upstream, type UpstreamTarget } from './upstream.js';

export interface GatewayOptions extends Omit<LanGatewayOptions, 'onEvent' | 'dnsUpstream'> {
  /** The way out; null: the LAN only (DHCP, DNS for static names, no relaying). */
  upstream: Upstream | null;
  /** The gateway's own address reaches the host's loopback (QEMU's 10.0.2.2). Default true. */
  hostAlias?: boolean;
  /** What the guest may reach (a Policy, or its options). Default: the default denies. */
  policy?: Policy | PolicyOptions;
  /** Relayed TCP connections at most; more are refused with a RST. Default 4096. */
  maxConnections?: number;
  /** SYNs waiting for their upstream at most (half-open attempts). Default 256. */
  maxPending?: number;
  /** Opening an upstream takes at most this long, else ICMP host unreachable (ms). Default 10,000. */
  connectTimeoutMs?: number;
  /** UDP flows at most (the least recently active makes room). Default 1024. */
  maxUdpFlows?: number;
  /** A UDP flow idle this long is forgotten (ms). Default 300,000 (RFC 4787 REQ-5). */
  udpIdleMs?: number;
  /**
   * Answer the guest's A/AAAA queries with fake IPs and connect by name. Default: when the
   * upstream connects by name (Wisp). Options pick the pools.
   */
  fakeIp?: boolean | Omit<FakeIpOptions, 'now'>;
  /** Resolver for the guest's DNS when not fake-IP (default the upstream's own, e.g. the host's). */
  dnsUpstream?: DnsUpstream | null;
  /**
   * Keep-alive on relayed connections (ms of idleness before probing; 0 off) and the user timeout
   * (RFC 5482) after which a guest that stopped answering is given up and its upstream closed.
   * Defaults 60,000 and 120,000.
   */
  keepAliveMs?: number;
  userTimeoutMs?: number;
  /** Largest TCP buffer of a relayed connection, each direction (bytes). Default 1 MiB. */
  bufferMax?: number;
  onEvent?: (e: GatewayEvent) => void;
}

/**
 * One line each in `synack gateway --json` (CONTRACT.md): `open`, `refused`, `close` for every relayed
 * TCP connection and UDP flow (`protocol`), besides the LAN's events. Bytes are counted from the
 * guest's side: `bytesOut` it sent out to the destination, `bytesIn` it received from there.
 */
export type GatewayEvent =
  | LanGatewayEvent
  | { event: 'open'; protocol: 'tcp' | 'udp'; t: number; id: number; guest: string; destination: string; target: string; upstream: string }
  | { event: 'refused'; protocol: 'tcp' | 'udp'; t: number; guest: string; destination: string; reason: string; answer: ForwardRejection | 'port-unreachable' }
  | { event: 'close'; protocol: 'tcp'; t: number; id: number; guest: string; destination: string; target: string; bytesOut: number; bytesIn: number; durationMs: number; error: string | null }
  | { event: 'close'; protocol: 'udp'; t: number; id: number; guest: string; destination: string; target: string; datagramsOut: number; datagramsIn: number; bytesOut: number; bytesIn: number; durationMs: number; reason: string };

export interface GatewayCounters {
  tcpOpened: number;
  tcpClosed: number;
  tcpActive: number;
  tcpRefusedPolicy: number;
  tcpRefusedUpstream: number;
  tcpRefusedLimit: number;
  bytesUp: number;
  bytesDown: number;
}

/** What the guest sees when the upstream fails to open (RFC 1812 §5.2.7.1 for the ICMP codes). */
function answerFor(e: unknown): ForwardRejection {
  const code = e instanceof UpstreamError ? e.code : 'error';
  switch (code) {
    case 'refused': return 'reset';
    case 'unreachable': case 'timeout': case 'dns': return 'host-unreachable';
    case 'forbidden': return 'prohibited';
    default: return 'reset';
  }
}

const target = (t: UpstreamTarget): string => formatEndpoint(t.host, t.port);

export class Gateway {
  readonly lan: LanGateway;
  readonly upstream: Upstream | null;
  readonly policy: Policy;
  readonly fakeIp: FakeIpDns | null;
  readonly udp: UdpFlows | null;
  readonly counters: GatewayCounters = {
    tcpOpened: 0, tcpClosed: 0, tcpActive: 0, tcpRefusedPolicy: 0, tcpRefusedUpstream: 0, tcpRefusedLimit: 0, bytesUp: 0, bytesDown: 0,
  };
  private readonly relays = new Set<TcpRelay>();
  private opening = 0;
  private nextId = 1;
  private readonly hostAlias: boolean;
  private readonly maxConnections: number;
  private readonly connectTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly userTimeoutMs: number;
  private readonly emit: ((e: GatewayEvent) => void) | undefined;
  /** Guest addresses from DHCP, newest last (connectToGuest's default). */
  private readonly leases: string[] = [];
  private closed = false;

  constructor(options: GatewayOptions) {
    this.upstream = options.upstream;
    this.emit = options.onEvent;
    this.hostAlias = options.hostAlias ?? true;
    this.maxConnections = options.maxConnections ?? 4096;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.keepAliveMs = options.keepAliveMs ?? 60_000;
    this.userTimeoutMs = options.userTimeoutMs ?? 120_000;
    if (!(Number.isInteger(this.maxConnections) && this.maxConnections >= 1)) throw new RangeError(`maxConnections must be an integer >= 1 (got ${options.maxConnections})`);
    if (!(this.connectTimeoutMs > 0)) throw new RangeError(`connectTimeoutMs must be > 0 (got ${options.connectTimeoutMs})`);
    this.policy = options.policy instanceof Policy ? options.policy : new Policy(options.policy ?? {});
    const wantFake = options.fakeIp ?? (options.upstream?.byName === true);
    let fake: FakeIpDns | null = null;
    if (wantFake !== false && options.upstream !== null) {
      const clockNow = (): number => this.lan.stack.clock.now();
      fake = new FakeIpDns({ ...(typeof wantFake === 'object' ? wantFake : {}), now: clockNow });
    }
    this.fakeIp = fake;
    const dnsUpstream = fake ?? (options.dnsUpstream !== undefined ? options.dnsUpstream : options.upstream?.dns ?? null);
    // Per relayed connection, each direction's buffer starts at 256 KiB and grows (auto-tuning, for
    // a reader that keeps up) to at most `bufferMax`: a guest one switch away needs no more for
    // line rate, and the total stays maxConnections × 2 × bufferMax at worst.
    const bufferMax = options.bufferMax ?? 1024 * 1024;
    this.lan = new LanGateway({
      ...options,
      tcp: { receiveBufferMax: bufferMax, sendBufferMax: bufferMax, ...options.tcp },
      dnsUpstream,
      onEvent: (e) => {
        if (e.event === 'lease') {
          const i = this.leases.indexOf(e.address);
          if (i >= 0) this.leases.splice(i, 1);
          this.leases.push(e.address);
        }
        this.emit?.(e);
      },
    });
    const stack = this.lan.stack;
    if (options.upstream !== null) {
      stack.forwardTcp((r) => this.onSyn(r), { maxPending: options.maxPending ?? 256, pendingTimeoutMs: this.connectTimeoutMs + 5000 });
      this.udp = new UdpFlows({
        stack, upstream: options.upstream, clock: stack.clock,
        ...(options.udpIdleMs !== undefined ? { idleMs: options.udpIdleMs } : {}),
        ...(options.maxUdpFlows !== undefined ? { maxFlows: options.maxUdpFlows } : {}),
        target: (d) => this.udpTarget(d.src, d.srcPort, d.dst, d.dstPort, d.toLocal),
        onOpen: (f: UdpFlowInfo) => this.emit?.({
          event: 'open', protocol: 'udp', t: this.now(), id: f.id, guest: f.guest, destination: f.destination, target: target(f.target), upstream: options.upstream!.name,
        }),
        onClose: (f: UdpFlowClosed) => this.emit?.({
          event: 'close', protocol: 'udp', t: this.now(), id: f.id, guest: f.guest, destination: f.destination, target: target(f.target),
          datagramsOut: f.datagramsUp, datagramsIn: f.datagramsDown, bytesOut: f.bytesUp, bytesIn: f.bytesDown, durationMs: Math.round(f.durationMs), reason: f.reason,
        }),
      });
      stack.forwardUdp(this.udp.handle);
    } else {
      this.udp = null;
    }
  }

  get stack(): LanGateway['stack'] {
    return this.lan.stack;
  }

  /** Relayed TCP connections now open. */
  get activeConnections(): number {
    return this.relays.size;
  }

  private now(): number {
    return this.lan.stack.clock.now() / 1000;
  }

  /**
   * Where a guest's connection to `address`:`port` goes, or why not. The gateway's own address is
   * the host alias; a fake IP goes out by its name; anything else by address, if the policy allows.
   */
  private resolveTarget(address: string, port: number, toLocal: boolean, protocol: 'tcp' | 'udp'): UpstreamTarget | { refuse: string; how: 'reset' | 'prohibited' | 'host-unreachable' | 'port-unreachable' } {
    const layout = this.lan.layout;
    if (toLocal) {
      if (this.hostAlias && address === layout.gateway) return { host: '127.0.0.1', port };
      if (this.hostAlias && address === layout.gateway6) return { host: '::1', port };
      return { refuse: `nothing listens on ${formatEndpoint(address, port)}`, how: protocol === 'tcp' ? 'reset' : 'port-unreachable' };
    }
    if (this.fakeIp !== null && this.fakeIp.inPool(address)) {
      // In fake-IP mode the destination is a name the upstream resolves: the policy cannot see its
      // address (the README says so). A pool address nobody asked for (a mapping forgotten by a
      // restart, or a guest guessing) leads nowhere.
      const name = this.fakeIp.lookup(address);
      if (name !== null) return { host: name, port };
      return { refuse: `${address} is a fake IP with no name (expired or never asked for)`, how: 'host-unreachable' };
    }
    const verdict = this.policy.check(address, port, protocol);
    if (!verdict.allowed) return { refuse: `policy: ${verdict.reason}`, how: 'prohibited' };
    return { host: address, port };
  }

  private refuse(r: TcpForwardRequest, reason: string, how: ForwardRejection): void {
    r.reject(how);
    this.emit?.({ event: 'refused', protocol: 'tcp', t: this.now(), guest: formatEndpoint(r.remoteAddress, r.remotePort), destination: formatEndpoint(r.localAddress, r.localPort), reason, answer: how });
  }

  private onSyn(r: TcpForwardRequest): void {
    const upstream = this.upstream!;
    if (this.closed) return r.reject('drop');
    if (this.relays.size + this.opening >= this.maxConnections) {
      this.counters.tcpRefusedLimit++;
      return this.refuse(r, `at most ${this.maxConnections} relayed connections`, 'reset');
    }
    const t = this.resolveTarget(r.localAddress, r.localPort, r.toLocal, 'tcp');
    if ('refuse' in t) {
      this.counters.tcpRefusedPolicy++;
      return this.refuse(r, t.refuse, t.how === 'port-unreachable' ? 'reset' : t.how);
    }
    const clock = this.lan.stack.clock;
    const abort = new AbortController();
    const timer = clock.schedule(clock.now() + this.connectTimeoutMs, () => abort.abort());
    this.opening++;
    const openedAt = clock.now();
    upstream.openTcp(t, { signal: abort.signal }).then((stream) => {
      this.opening--;
      clock.cancel(timer);
      let c: TcpConnection;
      try {
        if (this.closed || !r.pending) throw new Error('gone');
        c = r.accept();
      } catch {
        // The SYN expired, or the stack is full: the upstream is not wanted any more.
        stream.destroy();
        return;
      }
      const id = this.nextId++;
      const guest = formatEndpoint(r.remoteAddress, r.remotePort);
      const destination = formatEndpoint(r.localAddress, r.localPort);
      // A fake IP in use keeps its name (the pool recycles only mappings nobody uses).
      const fake = this.fakeIp !== null && this.fakeIp.retain(r.localAddress) ? r.localAddress : null;
      if (this.keepAliveMs > 0) c.setKeepAlive(true, this.keepAliveMs);
      if (this.userTimeoutMs > 0) c.setUserTimeout(this.userTimeoutMs);
      this.counters.tcpOpened++;
      this.counters.tcpActive++;
      this.emit?.({ event: 'open', protocol: 'tcp', t: this.now(), id, guest, destination, target: target(t), upstream: upstream.name });
      const relay = new TcpRelay(c, stream, {
        onClose: (s: RelayStats) => {
          this.relays.delete(relay);
          if (fake !== null) this.fakeIp!.release(fake);
          this.counters.tcpClosed++;
          this.counters.tcpActive--;
          this.counters.bytesUp += s.bytesUp;
          this.counters.bytesDown += s.bytesDown;
          this.emit?.({
            event: 'close', protocol: 'tcp', t: this.now(), id, guest, destination, target: target(t), bytesOut: s.bytesUp, bytesIn: s.bytesDown,
            durationMs: Math.round(clock.now() - openedAt), error: s.error,
          });
        },
      });
      this.relays.add(relay);
    }, (e: unknown) => {
      this.opening--;
      clock.cancel(timer);
      this.counters.tcpRefusedUpstream++;
      const reason = e instanceof Error ? e.message : String(e);
      if (r.pending) this.refuse(r, `upstream: ${reason}`, answerFor(abort.signal.aborted ? new UpstreamError('timeout', 'connect timed out') : e));
    });
  }

  private udpTarget(src: string, srcPort: number, dst: string, port: number, toLocal: boolean): UpstreamTarget | Exclude<UdpForwardVerdict, true> {
    const t = this.resolveTarget(dst, port, toLocal, 'udp');
    if (!('refuse' in t)) return t;
    if (toLocal) return false; // the stack's own answer: port unreachable
    const answer = t.how === 'reset' ? 'port-unreachable' : t.how;
    this.emit?.({ event: 'refused', protocol: 'udp', t: this.now(), guest: formatEndpoint(src, srcPort), destination: formatEndpoint(dst, port), reason: t.refuse, answer });
    return answer;
  }

  /** The guest's address: the newest DHCP lease, else the first address of the pool. */
  guestAddress(): string {
    return this.leases[this.leases.length - 1] ?? this.lan.layout.poolStart;
  }

  /** A TCP connection from the gateway into the guest (a page talking to its guest's server). */
  connectToGuest(port: number, address = this.guestAddress()): Promise<StreamConnection> {
    return this.lan.stack.connect({ host: address, port });
  }

  /** The raw form of connectToGuest (port forwarding relays it). */
  tcpConnectToGuest(port: number, address = this.guestAddress()): TcpConnection {
    if (parseAddress(address) === null) throw new RangeError(`not an IP address: ${JSON.stringify(address)}`);
    return this.lan.stack.tcpConnect({ host: address, port });
  }

  /** Counters of every layer, for `--stats`. */
  allCounters(): Record<string, unknown> {
    return {
      ...this.lan.counters(),
      relay: { ...this.counters, pending: this.lan.stack.forwardPending },
      ...(this.udp !== null ? { udp: { ...this.udp.counters, active: this.udp.size } } : {}),
      policy: this.policy.counters,
    };
  }

  /** Stops relaying (RST to the guest's connections, upstreams destroyed) and the LAN services. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lan.stack.forwardTcp(null);
    this.lan.stack.forwardUdp(null);
    for (const r of [...this.relays]) r.abort();
    // And whatever lingers (TIME-WAIT, connections into the guest): a stopped gateway keeps no
    // timers, so the process that ran it can exit.
    for (const c of this.lan.stack.connections()) c.abort();
    this.udp?.close();
    this.upstream?.close();
    this.lan.close();
  }
}
