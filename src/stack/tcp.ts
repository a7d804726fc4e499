/**
 * TCP above IP: demultiplexing by 4-tuple, listeners (SYN and accept queues, SYN cookies), RST for
 * segments that reach no one (RFC 9293 §3.10.7.1), the connections' timer wheel, and batched
 * output after a burst of input. The Stack owns one and calls it from the IP layer (src/net/ip.ts).
 *
 * The established fast path is: IpLayer.input → TcpLayer.input → hash lookup → Connection. It
 * allocates nothing per segment (IP and TCP headers parse into reused scratch objects, packets are
 * carved from slabs) and builds no trace event unless someone listens.
 * @internal
 */
import type { TimerHandle } from '../link/clock.js';
import type { LinkEnd } from '../link/link.js';
import type { AddressTable, LocalAddress } from '../net/addresses.js';
import { isLoopbackOrUnspecified, isMulticastOrBroadcast } from '../net/addresses.js';
import type { IcmpLayer } from '../net/icmp.js';
import type { IpLayer } from '../net/ip.js';
import { Connection, windowScaleFor, type ConnectionConfig, type ConnectionHost } from '../tcp/connection.js';
import { IsnGenerator } from '../tcp/isn.js';
import type { TcpState } from '../tcp/state.js';
import { TcpError, type TcpConnection, type TcpListener } from '../tcp/user.js';
import type { Endpoints, SegmentInfo, TraceEvent } from '../trace/events.js';
import { addressEquals, formatAddress, parseAddress } from '../wire/address.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import type { DropReason } from '../wire/drop.js';
import type { IcmpOriginal } from '../wire/icmp.js';
import { PROTO_TCP, type IpPacketInfo } from '../wire/ip.js';
import { allocPacket } from '../wire/packet.js';
import { seqAdd, seqGt, seqLeq, seqLt } from '../wire/seq.js';
import {
  ACK, FIN, RST, SYN, TcpParseScratch, flagNames, formatOptions, parseTcp, tcpOptionsLength, writeTcp, type TcpOptions,
  type TcpSegment,
} from '../wire/tcp.js';
import type { StackCore } from './core.js';
import { unreachableCode, type ForwardRejection, type TcpForwardHandler, type TcpForwardOptions, type TcpForwardRequest } from './forward.js';
import { Listener } from './listener.js';
import type { ConnectOptions, ListenOptions, StackOptions } from './options.js';
import { PortAllocator } from './ports.js';
import {
  COOKIE_VALID_MS, MSS_TABLE_V4, MSS_TABLE_V6, SynCookies, decodeCookieTsecr, encodeCookieTsval, mssIndex,
} from './syncookie.js';
import { TimerEntry, TimerWheel } from './timerWheel.js';

/**
 * What the stack keeps per connection beside the TCB (reached through `Connection.hostRef`, so the
 * hot path needs no Map lookup per segment). It is also the demux table's chain link.
 */
class ConnMeta {
  /** The next connection whose 4-tuple hashes to the same demux bucket. */
  nextInBucket: ConnMeta | null = null;
  readonly timer: TimerEntry<Connection>;
  private endpointsCache: Endpoints | null = null;
  constructor(
    readonly conn: Connection,
    readonly hash: number,
    readonly local: Uint8Array,
    readonly localPort: number,
    readonly remote: Uint8Array,
    readonly remotePort: number,
  ) {
    this.timer = new TimerEntry(conn);
  }

  /** Made on first use (tracing): an idle connection does not carry it. */
  get endpoints(): Endpoints {
    const c = this.conn;
    return this.endpointsCache ??= {
      localAddress: c.localAddress, localPort: c.localPort, remoteAddress: c.remoteAddress, remotePort: c.remotePort,
    };
  }

  matches(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): boolean {
    return this.localPort === localPort && this.remotePort === remotePort &&
      addressEquals(this.remote, remote) && addressEquals(this.local, local);
  }
}

function metaOf(c: Connection): ConnMeta | undefined {
  return c.hostRef as ConnMeta | undefined;
}

/** Reads 4 bytes big-endian (address words for the demux hash). */
function word(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

/**
 * The demux hash of a 4-tuple, seeded per stack (as Linux seeds its jhash) so a remote host cannot
 * aim many tuples at one bucket. Each 32-bit word (the ports, then the address words) is mixed in as
 * murmur3 mixes a block: multiply, rotate, multiply. The rotation matters: multiplying by an odd
 * constant carries a difference in bit 31 alone through unchanged, so with only a xorshift between
 * multiplies (the first version) flipping bit 31 of one address word and bits 31 and 16 of the next
 * collided for every seed — 8 IPv6 peers in one bucket whatever the seed. Rotated, that difference
 * reaches the second multiply away from bit 31 and spreads through carries that depend on the
 * seeded state, so no difference passes a word with certainty. A small integer, so the Map keeps it
 * unboxed; no string is built per segment. Exported for tests.
 * @internal
 */
export function tupleHash(seed: number, local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number {
  let h = Math.imul(seed ^ ((localPort << 16) | remotePort), 0x85ebca6b);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
  for (let i = 0; i < remote.length; i += 4) {
    h = Math.imul(h ^ word(remote, i), 0x85ebca6b);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
  }
  for (let i = 0; i < local.length; i += 4) {
    h = Math.imul(h ^ word(local, i), 0xcc9e2d51);
    h = Math.imul((h << 13) | (h >>> 19), 0xc2b2ae35);
  }
  return (h ^ (h >>> 16)) & 0x3fffffff;
}

const EMPTY = new Uint8Array(0);
/** Peer addresses shared between connections (see TcpLayer.peer). */
const PEER_CACHE_MAX = 65536;

/** A SYN waiting for the forwarder's decision (src/stack/forward.ts). */
class PendingForward implements TcpForwardRequest {
  pending = true;
  constructor(
    private readonly layer: TcpLayer,
    readonly key: string,
    readonly local: Uint8Array,
    readonly remote: Uint8Array,
    readonly syn: TcpSegment,
    /** The SYN's IP packet, quoted by an ICMP error. */
    readonly packet: Uint8Array,
    readonly createdAt: number,
    readonly localAddress: string,
    readonly remoteAddress: string,
    readonly toLocal: boolean,
  ) {}

  get localPort(): number {
    return this.syn.dstPort;
  }

  get remotePort(): number {
    return this.syn.srcPort;
  }

  get family(): 4 | 6 {
    return this.local.length === 4 ? 4 : 6;
  }

  accept(): TcpConnection {
    return this.layer.acceptForward(this);
  }

  reject(how: ForwardRejection): void {
    this.layer.rejectForward(this, how);
  }
}

export class TcpLayer {
  /** Set by the Stack once every layer exists (ICMP errors for refused forwarded SYNs). */
  icmp!: IcmpLayer;
  /** Catch-all termination (src/stack/forward.ts); null: a SYN nobody serves gets a RST. */
  private forwarder: TcpForwardHandler | null = null;
  private forwardMaxPending = 1024;
  private forwardTimeoutMs = 30_000;
  private readonly pendingForward = new Map<string, PendingForward>();
  /** The link cannot corrupt packets: no TCP checksums (see LinkEnd.checksumOffload). */
  private readonly checksumOffload: boolean;
  /** The note about a peer with checksum offload (see zeroChecksum) was given. */
  private zeroChecksumNoted = false;
  /** Demultiplexing by 4-tuple: tuple hash → chain of connections (RFC 9293 §3.10.7). */
  private readonly demux = new Map<number, ConnMeta>();
  private readonly demuxSeed: number;
  private connCount = 0;
  private readonly listeners = new Map<string, Listener>();
  private readonly wheel = new TimerWheel<Connection>(1);
  private wakeAt = Infinity;
  private wakeHandle: TimerHandle | null = null;
  private readonly isnGen: IsnGenerator;
  private readonly cookies: SynCookies;
  private readonly synCookies: boolean;
  private readonly ports: PortAllocator;
  private readonly config: Omit<ConnectionConfig, 'linkMss' | 'defaultMss'>;
  private configV4: ConnectionConfig | undefined;
  private configV6: ConnectionConfig | undefined;
  /** Peer addresses shared by their connections (see peer()). */
  private readonly peers = new Map<number | string, { bytes: Uint8Array; text: string }>();
  private readonly challengeAckLimit: number;
  private readonly maxConnections: number;
  private challengeWindowStart = -Infinity;
  private challengeCount = 0;
  private readonly tcpScratch = new TcpParseScratch();
  /** The link delivers bursts (LinkEnd.onBurstEnd): connections flush their output after each. */
  batched = false;
  inBurst = false;
  private readonly deferred: Connection[] = [];
  private readonly host: ConnectionHost;

  /** `words`: the stack's seeded random source, drawn in the order the keys always were. */
  constructor(
    private readonly core: StackCore,
    private readonly addresses: AddressTable,
    private readonly link: LinkEnd,
    private readonly ip: IpLayer,
    options: StackOptions,
    words: () => number,
  ) {
    this.checksumOffload = link.checksumOffload === true;
    this.isnGen = new IsnGenerator(words(), words());
    this.ports = new PortAllocator(words(), words());
    // Drawn after the ISN and port keys, so a seeded stack's ISNs and ports are what they were.
    this.cookies = new SynCookies(words(), words(), words(), words());
    // Drawn last, for the same reason.
    this.demuxSeed = words() | 0;
    this.synCookies = options.synCookies ?? true;
    this.config = {
      mslMs: options.mslMs ?? 30_000,
      synRetries: options.synRetries ?? 6,
      dataRetries: options.dataRetries ?? 15,
      sendBufferSize: options.sendBufferSize ?? 256 * 1024,
      receiveBufferSize: options.receiveBufferSize ?? 256 * 1024,
      receiveBufferMax: Math.max(options.receiveBufferMax ?? 6 * 1024 * 1024, options.receiveBufferSize ?? 0),
      sendBufferMax: Math.max(options.sendBufferMax ?? 4 * 1024 * 1024, options.sendBufferSize ?? 0),
      windowScaling: options.windowScaling ?? true,
      timestamps: options.timestamps ?? true,
      sack: options.sack ?? true,
      delayedAckMs: options.delayedAckMs ?? 40,
      congestionControl: options.congestionControl ?? 'cubic',
    };
    this.challengeAckLimit = options.challengeAckLimit ?? 1000;
    this.maxConnections = options.maxConnections ?? 262_144;
    if (!(this.maxConnections >= 1)) throw new RangeError(`maxConnections must be at least 1 (got ${options.maxConnections})`);
    this.host = this.makeHost();
  }

  /** Active OPEN (RFC 9293 §3.10.1). */
  tcpConnect(options: ConnectOptions): TcpConnection {
    const remote = parseAddress(String(options.host));
    if (remote === null) throw new TcpError('EINVAL', `not an IP address: ${JSON.stringify(options.host)} (synack does no name lookup)`);
    checkPort(options.port, false);
    const version = remote.length === 4 ? 4 : 6;
    let src: LocalAddress | undefined;
    if (options.localAddress !== undefined) {
      const want = parseAddress(options.localAddress);
      // Fix (stack-layer tests): a string that is no IP address at all is EINVAL (as for `host`),
      // not EADDRNOTAVAIL, which says "a real address, but not one of ours".
      if (want === null) throw new TcpError('EINVAL', `not an IP address: ${JSON.stringify(options.localAddress)}`);
      src = this.addresses.find(want);
      if (src === undefined) throw new TcpError('EADDRNOTAVAIL', `${options.localAddress} is not an address of this stack`);
      if (src.version !== version) throw new TcpError('EINVAL', `local ${src.text} and remote ${options.host} differ in family`);
    } else {
      src = this.addresses.source(remote);
      if (src === undefined) throw new TcpError('ENETUNREACH', `no IPv${version} address on this stack to reach ${options.host}`);
    }
    const remoteText = formatAddress(remote);
    let port = options.localPort ?? 0;
    if (port !== 0) {
      checkPort(port, false);
      if (this.findConn(src.bytes, port, remote, options.port) !== undefined) {
        throw new TcpError('EADDRINUSE', `${src.text}:${port} → ${remoteText}:${options.port} is in use`);
      }
    } else {
      const chosen = this.ports.choose(src.bytes, remote, options.port, (p) =>
        this.findConn(src!.bytes, p, remote, options.port) === undefined && !this.listenerOn(src!.text, p));
      if (chosen === null) throw new TcpError('EADDRNOTAVAIL', 'no ephemeral port free');
      port = chosen;
    }
    if (this.connCount >= this.maxConnections) {
      throw new TcpError('ENOBUFS', `the stack already holds maxConnections (${this.maxConnections}) connections`);
    }
    const c = this.createConnection(src, port, remote, remoteText, options.port, false);
    this.core.counters.activeOpens++;
    this.core.guard(() => c.openActive(this.isnGen.isn(this.core.clock.now(), src!.bytes, port, remote, options.port)));
    return c;
  }

  /** Passive OPEN (RFC 9293 §3.10.1). */
  tcpListen(options: ListenOptions): TcpListener {
    let port = options.port ?? 0;
    checkPort(port, true);
    let addr: LocalAddress | null = null;
    let family: 4 | 6 | null = null;
    if (options.host !== undefined && options.host !== '' && options.host !== '::' && options.host !== '0.0.0.0') {
      const want = parseAddress(options.host);
      // Fix (stack-layer tests): EINVAL for a string that is no IP address, as in tcpConnect.
      if (want === null) throw new TcpError('EINVAL', `not an IP address: ${JSON.stringify(options.host)} (synack does no name lookup)`);
      addr = this.addresses.find(want) ?? null;
      if (addr === null) throw new TcpError('EADDRNOTAVAIL', `${options.host} is not an address of this stack`);
      family = addr.version;
    } else if (options.host === '0.0.0.0') {
      family = 4;
    }
    if (port === 0) {
      const none = new Uint8Array(4);
      const chosen = this.ports.choose(none, none, this.listeners.size, (p) => !this.portBusy(p));
      if (chosen === null) throw new TcpError('EADDRNOTAVAIL', 'no ephemeral port free');
      port = chosen;
    }
    const bindText = addr?.text ?? (family === 4 ? '0.0.0.0' : '::');
    for (const l of this.listeners.values()) {
      if (l.localPort !== port) continue;
      const overlap = addr === null || l.localAddress === bindText || l.localAddress === '::' || l.localAddress === '0.0.0.0';
      if (overlap) throw new TcpError('EADDRINUSE', `port ${port} is already listening on ${l.localAddress}`);
    }
    const backlog = Math.max(1, Math.floor(options.backlog ?? 511));
    const sb = options.synBacklog;
    if (sb !== undefined && !(typeof sb === 'number' && Number.isFinite(sb) && sb >= 0)) {
      throw new TcpError('EINVAL', `bad synBacklog ${String(sb)}: expected a number >= 0`);
    }
    const synBacklog = sb === undefined ? Math.max(backlog, 128) : Math.floor(sb);
    if (synBacklog === 0 && !this.synCookies) {
      throw new TcpError('EINVAL', 'synBacklog 0 without SYN cookies would refuse every connection');
    }
    const l = new Listener(bindText, port, family, backlog, (gone) => this.listeners.delete(`${gone.localAddress}|${gone.localPort}`), synBacklog);
    this.listeners.set(`${bindText}|${port}`, l);
    return l;
  }

  /** Every connection the stack holds (any state but CLOSED), for STATUS-like views. */
  connections(): TcpConnection[] {
    const out: Connection[] = [];
    for (const head of this.demux.values()) {
      for (let e: ConnMeta | null = head; e !== null; e = e.nextInBucket) out.push(e.conn);
    }
    return out;
  }

  /** The connection with this 4-tuple, if any (RFC 9293 §3.10.7: demultiplexing). */
  findConn(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): Connection | undefined {
    const h = tupleHash(this.demuxSeed, local, localPort, remote, remotePort);
    for (let m: ConnMeta | null = this.demux.get(h) ?? null; m !== null; m = m.nextInBucket) {
      if (m.matches(local, localPort, remote, remotePort)) return m.conn;
    }
    return undefined;
  }

  /** See deferFlush: a burst the link never ended ends here, one deferred turn later. */
  readonly burstBackstop = (): void => {
    if (this.inBurst && this.deferred.length > 0) this.burstEnd();
  };

  /** The link's burst is over: the connections it touched send their replies, once each. */
  burstEnd(): void {
    this.inBurst = false;
    const list = this.deferred;
    // A flush may run user code that closes, opens or writes: index loop, entries added meanwhile
    // (there are none outside a burst) are flushed too.
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      this.core.inputNow = this.core.clock.now();
      this.core.timeFrozen = true;
      try {
        c.flushBurst();
      } catch (err) {
        this.core.internalError(err);
      } finally {
        this.core.timeFrozen = false;
      }
    }
    list.length = 0;
  }

  /**
   * A segment whose checksum fails and whose checksum field is 0 almost certainly comes from a peer
   * whose link end has `checksumOffload` (it leaves the field 0) while ours does not: every such
   * segment is lost and the connection times out. Say so — a drop reason of its own, and a note
   * once — instead of letting it pass as corruption.
   */
  private zeroChecksum(packet: Uint8Array): void {
    this.core.drop('tcp-checksum-zero', packet);
    if (this.zeroChecksumNoted) return;
    this.zeroChecksumNoted = true;
    if (this.core.traced) {
      this.core.trace({
        type: 'note', t: this.core.clock.now(), rfc: 'RFC 9293 §3.1',
        what: 'TCP checksum 0 does not verify: the peer\'s link end has checksumOffload and ours does not (both ends must agree; a LinkEnd wrapper must forward checksumOffload)',
      });
    }
  }

  input(ip: IpPacketInfo, packet: Uint8Array, scratch: boolean): void {
    const body = packet.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
    const into = scratch ? this.tcpScratch : undefined;
    const seg = this.checksumOffload
      ? parseTcp(body, 0, false, into)
      : parseTcp(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_TCP, ip.payloadLength), true, into);
    if (typeof seg === 'string') {
      if (seg === 'tcp-bad-checksum' && body[16] === 0 && body[17] === 0) return this.zeroChecksum(packet);
      return this.core.drop(seg, packet);
    }
    // RFC 1122 §4.2.3.10: segments from broadcast/multicast sources, and port 0, are not for TCP.
    if (seg.srcPort === 0 || seg.dstPort === 0 || isMulticastOrBroadcast(ip.src)) return this.core.drop('tcp-bad-address', packet);
    this.core.counters.tcpIn++;
    if (this.core.traced) {
      this.core.trace({ type: 'segment', t: this.core.clock.now(), dir: 'in', segment: segmentInfo(formatAddress(ip.src), formatAddress(ip.dst), seg), packet });
    }
    let c = this.findConn(ip.dst, seg.dstPort, ip.src, seg.srcPort);
    if (c !== undefined) {
      if (c.state !== 'TIME-WAIT') {
        c.segmentArrives(seg);
        return;
      }
    }
    // Off the established fast path: the addresses as text, for listeners and new connections.
    const localText = formatAddress(ip.dst);
    const remoteText = formatAddress(ip.src);
    if (c !== undefined && c.state === 'TIME-WAIT' && (seg.flags & (SYN | ACK | RST)) === SYN && seqGt(seg.seq, c.rcvNxt) &&
      (this.forwarder !== null || this.findListener(localText, ip.version, seg.dstPort) !== undefined)) {
      // RFC 9293 §3.10.7.4 (and RFC 6191): a new SYN with a higher sequence number may reopen a
      // connection in TIME-WAIT; the old incarnation goes, the listener takes the SYN.
      this.host.note(c, 'new SYN in TIME-WAIT: old connection closed, listener takes the SYN', 'RFC 9293 §3.10.7.4');
      c.abort();
      c = undefined;
    }
    if (c !== undefined) {
      c.segmentArrives(seg);
      return;
    }
    const l = this.findListener(localText, ip.version, seg.dstPort);
    if (l !== undefined) return this.listenInput(l, ip, seg, localText, remoteText, packet);
    if (this.forwarder !== null && (seg.flags & (SYN | ACK | RST | FIN)) === SYN) return this.forwardSyn(ip, seg, localText, remoteText, packet);
    this.closedInput(ip.dst, ip.src, seg, packet);
  }

  // ------------------------------------------------------------------ catch-all (src/stack/forward.ts)

  /** Installs (or with null removes) the forwarder; pending requests of an old one are dropped. */
  setForwarder(handler: TcpForwardHandler | null, options: TcpForwardOptions = {}): void {
    const max = options.maxPending ?? 1024;
    const timeout = options.pendingTimeoutMs ?? 30_000;
    if (!(Number.isInteger(max) && max >= 1)) throw new TcpError('EINVAL', `maxPending must be an integer >= 1 (got ${String(options.maxPending)})`);
    if (!(timeout > 0)) throw new TcpError('EINVAL', `pendingTimeoutMs must be > 0 (got ${String(options.pendingTimeoutMs)})`);
    for (const r of this.pendingForward.values()) r.pending = false;
    this.pendingForward.clear();
    this.forwarder = handler;
    this.forwardMaxPending = max;
    this.forwardTimeoutMs = timeout;
  }

  get forwarding(): boolean {
    return this.forwarder !== null;
  }

  /** SYNs waiting for the forwarder's decision. */
  get forwardPending(): number {
    return this.pendingForward.size;
  }

  private forwardSyn(ip: IpPacketInfo, seg: TcpSegment, localText: string, remoteText: string, packet: Uint8Array): void {
    // A Linux guest whose IPv6 address is still tentative sends from ::1 (seen on the wire): no
    // such source is routable (RFC 4291 §2.5.3, RFC 1122 §3.2.1.3), and nothing is relayed for it.
    if (isLoopbackOrUnspecified(ip.src)) return this.core.drop('tcp-bad-address', packet);
    const now = this.core.clock.now();
    const key = `${remoteText}|${seg.srcPort}|${localText}|${seg.dstPort}`;
    const old = this.pendingForward.get(key);
    if (old !== undefined) {
      if (now - old.createdAt < this.forwardTimeoutMs) {
        // The guest's retransmitted SYN while the way out is still being opened.
        this.core.counters.forwardSynRetransmits++;
        return this.core.drop('tcp-forward-pending', packet);
      }
      old.pending = false;
      this.pendingForward.delete(key);
    }
    if (this.pendingForward.size >= this.forwardMaxPending) this.expireForwards(now);
    if (this.pendingForward.size >= this.forwardMaxPending) {
      this.core.counters.forwardOverflows++;
      return this.core.drop('tcp-forward-overflow', packet);
    }
    if (this.atConnectionLimit(packet)) return;
    const o = seg.options;
    // The SYN outlives this packet (it may be parsed into scratch): its own copy, without data
    // (no TCP Fast Open here: data on a SYN is sent again after the handshake, RFC 9293 §3.10.7.2).
    const options: TcpOptions = {};
    if (o.mss !== undefined) options.mss = o.mss;
    if (o.wscale !== undefined) options.wscale = o.wscale;
    if (o.sackPermitted === true) options.sackPermitted = true;
    if (o.timestamp !== undefined) options.timestamp = { val: o.timestamp.val, ecr: o.timestamp.ecr };
    const syn: TcpSegment = {
      srcPort: seg.srcPort, dstPort: seg.dstPort, seq: seg.seq, ack: 0, flags: seg.flags, window: seg.window,
      urgent: 0, options, payload: EMPTY,
    };
    const r = new PendingForward(this, key, Uint8Array.from(ip.dst), Uint8Array.from(ip.src), syn, packet.slice(), now,
      localText, remoteText, this.addresses.isLocal(ip.dst));
    this.pendingForward.set(key, r);
    this.core.counters.forwardedSyns++;
    if (this.core.traced) {
      this.core.trace({ type: 'note', t: now, what: `SYN ${remoteText}:${seg.srcPort} → ${localText}:${seg.dstPort} forwarded: the handshake completes once the way out answers` });
    }
    try {
      this.forwarder!(r);
    } catch (err) {
      this.core.internalError(err);
    }
  }

  /** Drops requests older than the timeout (the map is in arrival order: oldest first). */
  private expireForwards(now: number): void {
    for (const [key, r] of this.pendingForward) {
      if (now - r.createdAt < this.forwardTimeoutMs) break;
      r.pending = false;
      this.pendingForward.delete(key);
      this.core.counters.forwardExpired++;
    }
  }

  private settleForward(r: PendingForward): boolean {
    if (!r.pending || this.pendingForward.get(r.key) !== r) return false;
    r.pending = false;
    this.pendingForward.delete(r.key);
    return true;
  }

  /** @internal PendingForward.accept */
  acceptForward(r: PendingForward): TcpConnection {
    if (!this.settleForward(r)) throw new TcpError('EINVAL', 'this forwarded SYN was already accepted, rejected or expired');
    if (this.findConn(r.local, r.localPort, r.remote, r.remotePort) !== undefined) {
      throw new TcpError('EADDRINUSE', `${r.localAddress}:${r.localPort} → ${r.remoteAddress}:${r.remotePort} is in use`);
    }
    if (this.connCount >= this.maxConnections) {
      this.core.counters.connectionLimitDrops++;
      throw new TcpError('ENOBUFS', `the stack already holds maxConnections (${this.maxConnections}) connections`);
    }
    // The connection answers as the address the guest asked for, ours or not (a transparent proxy).
    const src: LocalAddress = this.addresses.find(r.local) ??
      { text: r.localAddress, bytes: r.local, prefix: r.local.length * 8, version: r.family };
    const c = this.createConnection(src, r.localPort, r.remote, r.remoteAddress, r.remotePort, true);
    this.core.counters.passiveOpens++;
    const iss = this.isnGen.isn(this.core.clock.now(), src.bytes, r.localPort, r.remote, r.remotePort);
    this.core.guard(() => c.openPassive(r.syn, iss));
    return c;
  }

  /** @internal PendingForward.reject */
  rejectForward(r: PendingForward, how: ForwardRejection): void {
    if (!this.settleForward(r)) return;
    this.core.counters.forwardRejected++;
    this.core.guard(() => {
      if (this.core.traced) {
        this.core.trace({ type: 'note', t: this.core.clock.now(), what: `forwarded SYN ${r.remoteAddress}:${r.remotePort} → ${r.localAddress}:${r.localPort} refused: ${how}` });
      }
      if (how === 'drop') return;
      if (how === 'reset') {
        // RFC 9293 §3.10.7.1 (CLOSED): <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
        this.sendRst(r.local, r.remote, r.localPort, r.remotePort, 0, seqAdd(r.syn.seq, 1), RST | ACK);
        return;
      }
      const [type, code] = unreachableCode(how, r.family);
      this.icmp.sendError(r.packet, r.family, type, code);
    });
  }

  private findListener(localText: string, version: 4 | 6, port: number): Listener | undefined {
    return this.listeners.get(`${localText}|${port}`) ??
      (version === 4 ? this.listeners.get(`0.0.0.0|${port}`) : undefined) ??
      this.listeners.get(`::|${port}`);
  }

  /** RFC 9293 §3.10.7.2: a segment for a port in LISTEN. */
  private listenInput(l: Listener, ip: IpPacketInfo, seg: TcpSegment, localText: string, remoteText: string, packet: Uint8Array): void {
    if (seg.flags & RST) return; // First: an incoming RST is ignored.
    if (seg.flags & ACK) {
      // RFC 4987 §3.6: while this listener answers SYNs with cookies (and for as long as one may
      // still be valid), an ACK without SYN may be the end of such a handshake. Like Linux
      // (tcp_synq_no_recent_overflow), other ACKs take the RFC 9293 rule below.
      if (this.synCookies && !(seg.flags & SYN) && this.core.clock.now() - l.lastCookieAt <= COOKIE_VALID_MS) {
        return this.cookieAckInput(l, ip, seg, remoteText, packet);
      }
      // Second: any acknowledgment is bad in LISTEN: <SEQ=SEG.ACK><CTL=RST>.
      this.sendRst(ip.dst, ip.src, seg.dstPort, seg.srcPort, seg.ack, 0, RST);
      return;
    }
    if (!(seg.flags & SYN)) return this.core.drop('tcp-invalid-state', packet); // Fourth: other text or control.
    // SYN together with FIN is never a real open (a scan or an attack); RFC 9293 is silent, and Linux
    // (tcp_rcv_state_process) discards it in LISTEN. So do we.
    if (seg.flags & FIN) return this.core.drop('tcp-invalid-state', packet);
    // Linux's order (tcp_conn_request): a full SYN queue calls for a cookie (or a drop without
    // cookies); a full accept queue drops the SYN either way — the client retries.
    let wantCookie = false;
    if (l.synQueueFull) {
      this.core.counters.synQueueOverflows++;
      if (!this.synCookies) {
        this.core.counters.listenOverflows++;
        return this.core.drop('tcp-listen-overflow', packet);
      }
      wantCookie = true;
    }
    if (l.acceptFull) {
      this.core.counters.listenOverflows++;
      return this.core.drop('tcp-listen-overflow', packet);
    }
    if (this.atConnectionLimit(packet)) return;
    if (wantCookie) return this.sendCookieSynAck(l, ip, seg);
    const src = this.addresses.find(ip.dst)!;
    const remote = Uint8Array.from(ip.src);
    const c = this.createConnection(src, seg.dstPort, remote, remoteText, seg.srcPort, true);
    c.listener = l;
    l.halfOpen.add(c);
    this.core.counters.passiveOpens++;
    c.openPassive(seg, this.isnGen.isn(this.core.clock.now(), src.bytes, seg.dstPort, remote, seg.srcPort));
    void localText;
  }

  // ------------------------------------------------------------------ SYN cookies (RFC 4987 §3.6)

  /** The MSS we announce on a link of this family. RFC 9293 §3.7.1: MTU − fixed IP header − fixed TCP header. */
  private linkMss(version: 4 | 6): number {
    return Math.max(this.link.mtu - (version === 4 ? 20 : 40) - 20, 64);
  }

  /**
   * The timestamp clock offset of a connection made from a cookie: a function of the cookie (our
   * ISS), so the ACK's handshake rebuilds the clock the SYN,ACK used. The cookie is keyed and
   * unpredictable, and so is the offset (RFC 7323 §5.4, RFC 9293 §3.4.1).
   */
  private static cookieTsOffset(iss: number): number {
    return Math.imul((iss ^ 0x2f6b1c3d) >>> 0, 0x9e3779b1) >>> 0;
  }

  /**
   * The SYN queue is full: answer SYN,ACK with a cookie for ISS and keep nothing (RFC 4987 §3.6).
   * The SYN,ACK is what a TCB in SYN-RECEIVED would send, except that window scaling and SACK are
   * offered only when timestamps can carry them back (Linux: tcp_clear_options for a cookie
   * without timestamps).
   */
  private sendCookieSynAck(l: Listener, ip: IpPacketInfo, seg: TcpSegment): void {
    const now = this.core.clock.now();
    const version = ip.version;
    const o = seg.options;
    const table = version === 4 ? MSS_TABLE_V4 : MSS_TABLE_V6;
    // RFC 9293 §3.7.1: no MSS option means 536 (IPv4) / 1220 (IPv6).
    const index = mssIndex(table, o.mss ?? (version === 4 ? 536 : 1220));
    const iss = this.cookies.make(now, ip.dst, seg.dstPort, ip.src, seg.srcPort, seg.seq, index);
    const c = this.config;
    const options: TcpOptions = { mss: this.linkMss(version) };
    if (c.timestamps && o.timestamp !== undefined) {
      const sack = c.sack && o.sackPermitted === true;
      const wscale = c.windowScaling && o.wscale !== undefined ? o.wscale : null;
      if (sack) options.sackPermitted = true;
      const tsval = (Math.floor(now) + TcpLayer.cookieTsOffset(iss)) >>> 0;
      options.timestamp = { val: encodeCookieTsval(tsval, { wscale, sack }), ecr: o.timestamp.val };
      if (wscale !== null) options.wscale = windowScaleFor(c.receiveBufferMax);
    }
    l.lastCookieAt = now;
    this.core.counters.synCookiesSent++;
    if (this.core.traced) {
      this.core.trace({ type: 'note', t: now, what: `SYN queue of ${l.localAddress}:${l.localPort} full: SYN,ACK with a SYN cookie, no state kept`, rfc: 'RFC 4987 §3.6' });
    }
    this.sendTcp(ip.dst, ip.src, {
      srcPort: seg.dstPort, dstPort: seg.srcPort, seq: iss, ack: (seg.seq + 1) >>> 0, flags: SYN | ACK,
      // The window of a SYN is never scaled (RFC 7323 §2.2): the receive buffer, at most 65535.
      window: Math.min(c.receiveBufferSize, 65535), urgent: 0, options, payload: EMPTY,
    });
  }

  /**
   * An ACK to a listener that sent cookies recently: if SEG.ACK − 1 is a cookie we made for this
   * tuple and SEG.SEQ − 1, build the connection the SYN would have made, with the MSS (and, from
   * TSecr, the window scale and SACK-permitted) it carried, and let this ACK complete it. Anything
   * else is dropped and counted: answering each forged ACK with a RST would only help a flood.
   */
  private cookieAckInput(l: Listener, ip: IpPacketInfo, seg: TcpSegment, remoteText: string, packet: Uint8Array): void {
    const now = this.core.clock.now();
    const iss = (seg.ack - 1) >>> 0;
    const table = ip.version === 4 ? MSS_TABLE_V4 : MSS_TABLE_V6;
    const index = this.cookies.check(now, ip.dst, seg.dstPort, ip.src, seg.srcPort, (seg.seq - 1) >>> 0, iss, table.length);
    if (index < 0) {
      this.core.counters.synCookiesFailed++;
      if (this.core.traced) {
        this.core.trace({ type: 'note', t: now, what: `ACK to ${l.localAddress}:${l.localPort} with no valid SYN cookie: reset`, rfc: 'RFC 4987 §3.6' });
      }
      // Then the LISTEN rule, as Linux does when cookie_v4_check fails: <SEQ=SEG.ACK><CTL=RST>, so
      // a client whose connection this listener forgot (a restart) learns it at once, flood or not.
      this.core.drop('tcp-bad-syn-cookie', packet);
      this.sendRst(ip.dst, ip.src, seg.dstPort, seg.srcPort, seg.ack, 0, RST);
      return;
    }
    this.core.counters.synCookiesValid++;
    // The accept queue still bounds what a listener holds (Linux: tcp_v4_syn_recv_sock). The client
    // believes it is connected; its next segment brings the cookie again while it stays valid.
    if (l.acceptFull) {
      this.core.counters.listenOverflows++;
      return this.core.drop('tcp-listen-overflow', packet);
    }
    const syn: TcpOptions = { mss: table[index]! };
    const ts = seg.options.timestamp;
    if (this.config.timestamps && ts !== undefined) {
      // Timestamps on the ACK mean both SYNs had them (RFC 7323 §3.2), so TSecr is our cookie TSval.
      const d = decodeCookieTsecr(ts.ecr);
      if (d.wscale !== null) syn.wscale = d.wscale;
      if (d.sack) syn.sackPermitted = true;
      syn.timestamp = ts;
    }
    if (this.atConnectionLimit(packet)) return;
    const src = this.addresses.find(ip.dst)!;
    const c = this.createConnection(src, seg.dstPort, Uint8Array.from(ip.src), remoteText, seg.srcPort, true);
    c.listener = l;
    this.core.counters.passiveOpens++;
    c.openFromCookie(seg, iss, syn, TcpLayer.cookieTsOffset(iss));
  }

  /**
   * An ICMP error quoting a segment of ours (src/net/icmp.ts found TCP ports in the quote). Returns
   * the drop reason when no connection takes it, else null.
   */
  icmpError(original: IcmpOriginal, what: string): DropReason | null {
    if (original.srcPort === undefined || original.dstPort === undefined) return 'icmp-unhandled';
    const c = this.findConn(original.src, original.srcPort, original.dst, original.dstPort);
    if (c === undefined) return 'icmp-unhandled';
    // RFC 5927 §4.1: the quoted segment must be one that can still be in flight (SND.UNA =<
    // SEG.SEQ < SND.NXT); anything else is forged or stale, and ignored.
    const seq = original.seq;
    if (seq === undefined || !(seqLeq(c.sndUna, seq) && seqLt(seq, c.sndNxt))) return 'icmp-bad-sequence';
    // RFC 1122 §4.2.3.9: ICMP errors are soft errors for TCP (no abort); recorded for the user.
    this.host.note(c, `${what} — soft error`, 'RFC 1122 §4.2.3.9');
    return null;
  }

  /** RFC 9293 §3.10.7.1: the connection does not exist — answer anything but a RST with a RST. */
  private closedInput(local: Uint8Array, remote: Uint8Array, seg: TcpSegment, packet: Uint8Array): void {
    this.core.drop('tcp-no-socket', packet);
    if (seg.flags & RST) return;
    if (seg.flags & ACK) {
      // <SEQ=SEG.ACK><CTL=RST>
      this.sendRst(local, remote, seg.dstPort, seg.srcPort, seg.ack, 0, RST);
    } else {
      // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
      const segLen = seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
      this.sendRst(local, remote, seg.dstPort, seg.srcPort, 0, seqAdd(seg.seq, segLen), RST | ACK);
    }
  }

  private sendTcp(local: Uint8Array, remote: Uint8Array, seg: TcpSegment): void {
    const tcpLen = 20 + tcpOptionsLength(seg.options) + seg.payload.length;
    const hl = local.length === 4 ? 20 : 40;
    const packet = allocPacket(hl + tcpLen);
    this.ip.writeHeader(packet, local, remote, PROTO_TCP, tcpLen);
    if (this.checksumOffload) writeTcp(packet, hl, seg, 0, false);
    else writeTcp(packet, hl, seg, pseudoHeaderSum(local, remote, PROTO_TCP, tcpLen));
    this.core.counters.ipOut++;
    this.core.counters.tcpOut++;
    if (seg.flags & RST) this.core.counters.rstOut++;
    if (this.core.traced) {
      this.core.trace({
        type: 'segment', t: this.core.clock.now(), dir: 'out',
        segment: segmentInfo(formatAddress(local), formatAddress(remote), seg), packet,
      });
    }
    this.link.send(packet);
  }

  private sendRst(local: Uint8Array, remote: Uint8Array, localPort: number, remotePort: number, seq: number, ack: number, flags: number): void {
    this.sendTcp(Uint8Array.from(local), Uint8Array.from(remote), {
      srcPort: localPort, dstPort: remotePort, seq, ack, flags, window: 0, urgent: 0, options: {}, payload: EMPTY,
    });
  }

  // ====================================================================== connections and timers

  /** A passive open that would exceed `maxConnections`: dropped and counted (true), else false. */
  private atConnectionLimit(packet: Uint8Array): boolean {
    if (this.connCount < this.maxConnections) return false;
    this.core.counters.connectionLimitDrops++;
    this.core.drop('tcp-connection-limit', packet);
    return true;
  }

  /**
   * One shared copy of each peer address (bytes and text) for the connections that use it: a
   * server's thousands of connections from a few clients keep one each, not one per connection.
   * Bounded: past PEER_CACHE_MAX peers the table starts over (connections keep what they hold).
   */
  private peer(remote: Uint8Array, remoteText: string): { bytes: Uint8Array; text: string } {
    const key: number | string = remote.length === 4 ? word(remote, 0) : remoteText;
    let p = this.peers.get(key);
    if (p === undefined) {
      if (this.peers.size >= PEER_CACHE_MAX) this.peers.clear();
      p = { bytes: Uint8Array.from(remote), text: remoteText };
      this.peers.set(key, p);
    }
    return p;
  }

  private createConnection(src: LocalAddress, localPort: number, remoteIn: Uint8Array, remoteTextIn: string, remotePort: number, passive: boolean): Connection {
    const shared = this.peer(remoteIn, remoteTextIn);
    const remote = shared.bytes;
    const remoteText = shared.text;
    // One frozen config per family, shared by its connections (they only read it).
    const config = src.version === 4
      ? this.configV4 ??= this.familyConfig(4)
      : this.configV6 ??= this.familyConfig(6);
    const c = new Connection(this.host, config, src.text, localPort, remoteText, remotePort, passive);
    const h = tupleHash(this.demuxSeed, src.bytes, localPort, remote, remotePort);
    const m = new ConnMeta(c, h, src.bytes, localPort, remote, remotePort);
    c.hostRef = m;
    // Appended to its bucket's chain, so connections() lists connections in creation order when
    // no two tuples share a bucket.
    const head = this.demux.get(h);
    if (head === undefined) this.demux.set(h, m);
    else {
      let tail = head;
      while (tail.nextInBucket !== null) tail = tail.nextInBucket;
      tail.nextInBucket = m;
    }
    this.connCount++;
    return c;
  }

  private unlinkConn(m: ConnMeta): void {
    const head = this.demux.get(m.hash);
    if (head === m) {
      if (m.nextInBucket === null) this.demux.delete(m.hash);
      else this.demux.set(m.hash, m.nextInBucket);
    } else {
      for (let e = head ?? null; e !== null; e = e.nextInBucket) {
        if (e.nextInBucket === m) {
          e.nextInBucket = m.nextInBucket;
          break;
        }
      }
    }
    m.nextInBucket = null;
    this.connCount--;
  }

  private familyConfig(version: 4 | 6): ConnectionConfig {
    return Object.freeze({
      ...this.config,
      linkMss: this.linkMss(version),
      // RFC 9293 §3.7.1 / RFC 8200 §5: 536 for IPv4, 1220 for IPv6 when the peer sends no MSS.
      defaultMss: version === 4 ? 536 : 1220,
    });
  }

  private listenerOn(addr: string, port: number): boolean {
    for (const l of this.listeners.values()) {
      if (l.localPort === port && (l.localAddress === addr || l.localAddress === '::' || l.localAddress === '0.0.0.0')) return true;
    }
    return false;
  }

  private portBusy(port: number): boolean {
    for (const l of this.listeners.values()) if (l.localPort === port) return true;
    for (const c of this.connections()) if (c.localPort === port) return true;
    return false;
  }

  /** Keep one clock timer at the wheel's earliest deadline. */
  private scheduleWake(): void {
    const next = this.wheel.nextDeadline();
    if (next >= this.wakeAt) return;
    if (this.wakeHandle !== null) this.core.clock.cancel(this.wakeHandle);
    this.wakeAt = next;
    this.wakeHandle = next === Infinity ? null : this.core.clock.schedule(next, () => this.wake());
  }

  private wake(): void {
    this.wakeHandle = null;
    this.wakeAt = Infinity;
    // Input first: packets already waiting on the link (an ACK, say) may make a timer moot — a
    // retransmission must not go out for data whose acknowledgment sits unread in the queue.
    this.core.guard(() => this.link.receivePending?.());
    const now = this.core.clock.now();
    this.core.inputNow = now;
    this.core.timeFrozen = true;
    try {
      this.wheel.expire(now, this.fireTimer);
    } catch (err) {
      this.core.internalError(err);
    } finally {
      this.core.timeFrozen = false;
    }
    this.scheduleWake();
  }

  private readonly fireTimer = (c: Connection): void => {
    const now = this.core.inputNow;
    if (c.deadline <= now) c.onTimer(now);
    else this.host.timersChanged(c);
  };

  private makeHost(): ConnectionHost {
    const trace = (e: TraceEvent): void => {
      if (this.core.traced) this.core.trace(e);
    };
    return {
      now: () => this.core.now(),
      transmit: (c, seg) => {
        const m = metaOf(c);
        if (m !== undefined) this.sendTcp(m.local, m.remote, seg);
      },
      timersChanged: (c) => {
        const m = metaOf(c);
        if (m === undefined) return;
        const d = c.deadline;
        if (d === Infinity) this.wheel.cancel(m.timer);
        else if (m.timer.deadline !== d) this.wheel.arm(m.timer, d);
        this.scheduleWake();
      },
      stateChanged: (c, from: TcpState, to: TcpState, cause, rfc) => {
        const m = metaOf(c);
        if (m === undefined || !this.core.traced) return;
        trace({ type: 'state', t: this.core.clock.now(), conn: m.endpoints, from, to, cause, rfc });
      },
      released: (c) => {
        const m = metaOf(c);
        if (m === undefined) return;
        this.wheel.cancel(m.timer);
        this.unlinkConn(m);
        c.hostRef = undefined;
        // The last connection gone: no timer is left, so neither is the clock's wake-up (a real
        // clock's timer would otherwise keep a process alive until it fired, up to 2×MSL later).
        if (this.connCount === 0 && this.wakeHandle !== null) {
          this.core.clock.cancel(this.wakeHandle);
          this.wakeHandle = null;
          this.wakeAt = Infinity;
        }
        if (c.listener instanceof Listener) c.listener.forget(c);
      },
      passiveAdmitted: (c) => {
        if (c.listener instanceof Listener) c.listener.admit(c);
      },
      passiveEstablished: (c) => {
        if (c.listener instanceof Listener) c.listener.established(c);
      },
      inBurst: () => this.inBurst,
      deferFlush: (c) => {
        // Backstop for a link that delivers without calling onBurstEnd afterwards (LinkEnd's
        // contract): once per burst, a deferred turn ends the burst if the link has not.
        if (this.deferred.length === 0) this.core.clock.defer(this.burstBackstop);
        this.deferred.push(c);
      },
      challengeAckAllowed: () => {
        // RFC 5961 §7: a stack-wide limit on challenge ACKs per second.
        const now = this.core.clock.now();
        if (now - this.challengeWindowStart >= 1000) {
          this.challengeWindowStart = now;
          this.challengeCount = 0;
        }
        if (this.challengeCount >= this.challengeAckLimit) return false;
        this.challengeCount++;
        this.core.counters.challengeAcks++;
        return true;
      },
      note: (c, what, rfc) => {
        if (what.startsWith('retransmit')) this.core.counters.retransmits++;
        if (!this.core.traced) return;
        const m = metaOf(c);
        trace(rfc === undefined
          ? { type: 'note', t: this.core.clock.now(), ...(m ? { conn: m.endpoints } : {}), what }
          : { type: 'note', t: this.core.clock.now(), ...(m ? { conn: m.endpoints } : {}), what, rfc });
      },
    };
  }
}

export function checkPort(port: unknown, allowZero: boolean): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new TcpError('EINVAL', `bad port ${String(port)}: expected an integer ${allowZero ? 0 : 1}..65535`);
  }
}

function segmentInfo(srcAddress: string, dstAddress: string, seg: TcpSegment): SegmentInfo {
  return {
    srcAddress, srcPort: seg.srcPort, dstAddress, dstPort: seg.dstPort, seq: seg.seq, ack: seg.ack,
    flags: flagNames(seg.flags), flagBits: seg.flags, window: seg.window, len: seg.payload.length,
    options: formatOptions(seg.options),
  };
}
