/**
 * Issue 8, "no input escapes": one Stack over a MemoryLink in virtual time takes 100,000 random byte
 * strings and then 100,000 random well-formed segments (IPv4/IPv6 + TCP, checksums correct, random
 * flags, numbers, window, options and payload), aimed at
 *   (a) a listening port,
 *   (b) connections held in every state of RFC 9293 §3.3.2 that has a TCB beyond LISTEN (SYN-SENT,
 *       SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT), each set up
 *       with raw packets from the far end of the link, by an active or a passive open, IPv4 and IPv6,
 *       and set up again whenever the fuzz moves it to another state,
 *   (c) closed ports, where a well-formed segment must be answered as RFC 9293 §3.10.7.1 says.
 * After each batch: no exception was caught inside the stack (counters.internalErrors) or escaped
 * from the link's receive path, every packet the link delivered is either a counted drop or a TCP or
 * ICMP input, every packet the stack sent is well-formed, and a legitimate connection (connect, echo,
 * close) still works on the same stack, both ways.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink, type MemoryLinkEnd } from '../../src/link/memory.js';
import { Rng } from '../../src/link/rng.js';
import { Stack, type StackCounters } from '../../src/stack/stack.js';
import { isSynchronized, type TcpState } from '../../src/tcp/state.js';
import type { TcpConnection, TcpError } from '../../src/tcp/user.js';
import { addressEquals, formatAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { seqLeq } from '../../src/wire/seq.js';
import { icmpErrorLength, parseIcmpv4, parseIcmpv6, writeIcmpError } from '../../src/wire/icmp.js';
import { parseIpPacket } from '../../src/wire/ip.js';
import { ACK, FIN, RST, SYN, parseTcp, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';
import {
  PRE_TRANSPORT_REASONS, fragmentHeader, ipv4Packet, ipv6Packet, mutate, nearSeq, optionsHeader, randomBytes, randomSegment,
  randomTcpOptions, refreshChecksums, routingHeader, skewedLength, tcpIpPacket, type ExtHeader,
} from './gen.js';

const PER_BATCH = 100_000;
const US4 = new Uint8Array([10, 0, 0, 1]);
const US6 = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** The stack's listeners: (a) the fuzzed one, with an echo server behind it; and one for setting up (b). */
const LISTEN_PORT = 80;
/** (a) too: a listener that keeps no half-open state, so every SYN is answered with a SYN cookie (RFC 4987 §3.6). */
const COOKIE_PORT = 82;
const SETUP_PORT = 81;
/** (c): nothing listens on these, and the stack's own ports are 80-82 and ephemeral (49152+). */
const CLOSED_PORTS: [number, number] = [1000, 1999];
const EMPTY = new Uint8Array(0);

/** The states a connection can be held in, from the stack's side. */
const HELD: readonly TcpState[] = [
  'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT',
];

/** Peers on the stack's subnets: 10.0.0.2-251 and fd00::2-251 (never the stack's own .1 / ::1). */
function peerAddress(v6: boolean, n: number): Uint8Array {
  const host = 2 + (Math.floor(n / 60_000) % 250);
  if (!v6) return new Uint8Array([10, 0, 0, host]);
  const b = new Uint8Array(16);
  b[0] = 0xfd;
  b[15] = host;
  return b;
}

/** One connection kept in `want` (or being set up again). */
interface Slot {
  want: TcpState;
  v6: boolean;
  /** Alternates per setup where both opens reach `want`; SYN-SENT is active only. */
  active: boolean;
  conn: TcpConnection | null;
  local: Uint8Array;
  remote: Uint8Array;
  localPort: number;
  remotePort: number;
  /** The peer's timestamps, when negotiated (RFC 7323): TSval it sends, the stack's last TSval to echo. */
  ts: boolean;
  tsVal: number;
  tsEcr: number;
  /** The sequence number of the stack's FIN, once seen on the wire. */
  finSeq: number | undefined;
  setups: number;
}

interface Parsed {
  src: Uint8Array;
  dst: Uint8Array;
  tcp: TcpSegment | null;
}

type Kind = 'listen' | 'conn' | 'closed';

interface BatchStats {
  inputs: number;
  byKind: Record<string, number>;
  /** Aimed inputs that found the connection in each state. */
  hits: Record<string, number>;
  transitions: Record<string, number>;
  closedChecked: number;
  closedViolations: string[];
  /** Well-formed inputs with RST that the stack answered with a RST. */
  rstForRst: string[];
  /** Connections left inconsistent by an input (see `tcbProblem`). */
  tcbProblems: string[];
  setupPackets: number;
  setups: number;
  cookieSyns: number;
  cookieSynAcks: number;
}

function newStats(): BatchStats {
  return { inputs: 0, byKind: {}, hits: {}, transitions: {}, closedChecked: 0, closedViolations: [], rstForRst: [], tcbProblems: [], setupPackets: 0, setups: 0, cookieSyns: 0, cookieSynAcks: 0 };
}

const bump = (r: Record<string, number>, k: string, n = 1): void => {
  r[k] = (r[k] ?? 0) + n;
};

class World {
  readonly clock = new VirtualClock();
  readonly ours: MemoryLinkEnd;
  readonly peer: MemoryLinkEnd;
  readonly stack: Stack;
  readonly rng = new Rng(0x1fe8);
  /** What the stack sent, since the last `deliver`. */
  private readonly out: Uint8Array[] = [];
  readonly capture = (p: Uint8Array): void => {
    this.out.push(p);
  };
  /** Exceptions that left the stack's receive function (into the link). */
  readonly escaped: unknown[] = [];
  /** Packets the stack sent that do not parse, checksums included. */
  readonly badOutputs: string[] = [];
  outputs = 0;
  readonly slots: Slot[] = [];
  private peerCounter = 0;
  stats = newStats();

  constructor() {
    [this.ours, this.peer] = MemoryLink.pair({ clock: this.clock });
    // Wrap the stack's receiver as the link calls it: anything thrown out of it is recorded here.
    const register = this.ours.onPacket.bind(this.ours);
    this.ours.onPacket = (fn) => register((p) => {
      try {
        fn(p);
      } catch (e) {
        this.escaped.push(e);
      }
    });
    this.stack = new Stack({ link: this.ours, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock: this.clock, seed: 1, name: 'fuzzed' });
    this.peer.onPacket(this.capture);
    const echo = (c: TcpConnection): void => {
      c.events = {
        onReadable: () => {
          const d = c.read();
          if (d !== null) c.write(d);
        },
        onEnd: () => c.close(),
      };
    };
    this.stack.tcpListen({ port: LISTEN_PORT }).onConnection = echo;
    this.stack.tcpListen({ port: COOKIE_PORT, synBacklog: 0 }).onConnection = echo;
    // Connections set up for (b) are handed over at once and never read: their state is the fuzz's.
    const setup = this.stack.tcpListen({ port: SETUP_PORT, backlog: 100_000 });
    setup.onConnection = () => {};
    for (const want of HELD) {
      for (const v6 of [false, true]) {
        this.slots.push({
          want, v6, active: want === 'SYN-SENT', conn: null, local: v6 ? US6 : US4, remote: US4, localPort: 0, remotePort: 0,
          ts: false, tsVal: 0, tsEcr: 0, finSeq: undefined, setups: 0,
        });
      }
    }
  }

  /** Hands one packet to the stack through the link and returns what the stack sent, parsed. */
  deliver(p: Uint8Array, slot?: Slot): Parsed[] {
    this.peer.send(p);
    this.clock.advanceSync(0);
    return this.drain(slot);
  }

  /** Parses (and checks) everything the stack sent; keeps `slot`'s view of the stack's TSval and FIN. */
  drain(slot?: Slot): Parsed[] {
    const parsed: Parsed[] = [];
    for (const q of this.out) {
      this.outputs++;
      const ip = parseIpPacket(q);
      if (typeof ip === 'string') {
        this.badOutputs.push(`IP: ${ip}`);
        continue;
      }
      const body = q.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
      if (ip.protocol === 6) {
        const seg = parseTcp(body, pseudoHeaderSum(ip.src, ip.dst, 6, body.length));
        if (typeof seg === 'string') {
          this.badOutputs.push(`TCP: ${seg}`);
          continue;
        }
        parsed.push({ src: ip.src, dst: ip.dst, tcp: seg });
        if (slot && seg.dstPort === slot.remotePort && seg.srcPort === slot.localPort && addressEquals(ip.dst, slot.remote)) {
          if (seg.options.timestamp) slot.tsEcr = seg.options.timestamp.val;
          if (seg.flags & FIN) slot.finSeq = (seg.seq + seg.payload.length) >>> 0;
        }
      } else {
        const m = ip.version === 4 ? parseIcmpv4(body) : parseIcmpv6(body, pseudoHeaderSum(ip.src, ip.dst, 58, body.length));
        // Echo replies, and the errors a host sends: port unreachable for UDP to a closed port
        // (RFC 1122 §4.1.3.1), reassembly time exceeded (RFC 792, RFC 8200 §4.5).
        const ok = typeof m !== 'string' && (m.kind === 'echo-reply' ||
          (m.kind === 'error' && (m.category === 'port-unreachable' || m.category === 'time-exceeded')));
        if (!ok) this.badOutputs.push(`ICMP: ${typeof m === 'string' ? m : m.kind}`);
        parsed.push({ src: ip.src, dst: ip.dst, tcp: null });
      }
    }
    this.out.length = 0;
    return parsed;
  }

  /** Lets virtual time pass (timers: retransmissions, timeouts, TIME-WAIT) and re-checks the slots. */
  passTime(ms: number): void {
    this.clock.advanceSync(ms);
    this.drain();
    for (const s of this.slots) this.check(s);
  }

  /** Retires a slot's connection once it has left the state the slot holds. */
  check(s: Slot): void {
    const c = s.conn;
    if (c === null || c.state === s.want) return;
    bump(this.stats.transitions, `${s.want}>${c.state}`);
    if (c.state !== 'CLOSED') c.abort();
    this.drain();
    s.conn = null;
  }

  // ------------------------------------------------------------------------------------- (b) setup

  private fromPeer(s: Slot, flags: number, seq: number, ack: number, options: TcpOptions = {}): void {
    const o: TcpOptions = { ...options };
    if (s.ts) {
      s.tsVal = (s.tsVal + 1) >>> 0;
      o.timestamp = { val: s.tsVal, ecr: flags & SYN && !(flags & ACK) ? 0 : s.tsEcr };
    }
    const seg: TcpSegment = {
      srcPort: s.remotePort, dstPort: s.localPort, seq: seq >>> 0, ack: ack >>> 0, flags, window: 65535, urgent: 0,
      options: o, payload: EMPTY,
    };
    this.stats.setupPackets++;
    this.deliver(tcpIpPacket(s.remote, s.local, seg), s);
  }

  /** Sets a connection up in `s.want`, by raw packets from a fresh peer address and port. */
  open(s: Slot): TcpConnection {
    const rng = this.rng;
    // A 4-tuple the stack holds no connection for (the fuzz may have opened one from any address).
    const taken = new Set(this.stack.connections().map((x) => `${x.remoteAddress}|${x.remotePort}`));
    for (let k = 0; ; k++) {
      if (k > taken.size) throw new Error('no free peer address and port');
      const n = this.peerCounter++;
      s.remote = peerAddress(s.v6, n);
      s.remotePort = 1024 + (n % 60_000);
      if (!taken.has(`${formatAddress(s.remote)}|${s.remotePort}`)) break;
    }
    s.ts = rng.next() < 0.5;
    s.tsVal = rng.nextU32();
    s.tsEcr = 0;
    s.finSeq = undefined;
    s.setups++;
    this.stats.setups++;
    if (s.want !== 'SYN-SENT') s.active = !s.active;
    const synOptions: TcpOptions = { mss: rng.int(536, 1460) };
    if (rng.next() < 0.5) synOptions.wscale = rng.int(0, 14);
    if (rng.next() < 0.5) synOptions.sackPermitted = true;
    const peerIss = rng.nextU32();
    let c: TcpConnection;
    if (s.active) {
      c = this.stack.tcpConnect({ host: formatAddress(s.remote), port: s.remotePort });
      s.localPort = c.localPort;
      this.clock.advanceSync(0);
      this.drain(s);
      if (s.want === 'SYN-RECEIVED') {
        // Simultaneous open (RFC 9293 §3.5, figure 8): their SYN crosses ours.
        this.fromPeer(s, SYN, peerIss, 0, synOptions);
      } else if (s.want !== 'SYN-SENT') {
        this.fromPeer(s, SYN | ACK, peerIss, c.info().iss + 1, synOptions);
      }
    } else {
      s.localPort = SETUP_PORT;
      this.fromPeer(s, SYN, peerIss, 0, synOptions);
      const found = this.stack.connections().find((x) =>
        x.localPort === SETUP_PORT && x.remotePort === s.remotePort && x.remoteAddress === formatAddress(s.remote));
      if (found === undefined) throw new Error(`setup ${s.want}: the SYN to port ${SETUP_PORT} made no connection`);
      c = found;
      if (s.want !== 'SYN-RECEIVED') this.fromPeer(s, ACK, peerIss + 1, c.info().iss + 1);
    }
    s.conn = c;
    let peerNxt = (peerIss + 1) >>> 0;
    const ackAll = (): void => this.fromPeer(s, ACK, peerNxt, c.info().sndNxt);
    if (s.want !== 'SYN-SENT' && s.want !== 'SYN-RECEIVED') {
      // Sometimes data in flight from the stack, so ACKs and SACK blocks have something to cover.
      if (rng.next() < 0.5) {
        c.write(randomBytes(rng, rng.next() < 0.5 ? skewedLength(rng, 4000) : rng.int(4000, 30_000)));
        this.clock.advanceSync(0);
        this.drain(s);
      }
      switch (s.want) {
        case 'CLOSE-WAIT':
        case 'LAST-ACK':
          this.fromPeer(s, FIN | ACK, peerNxt, c.info().sndNxt);
          peerNxt = (peerNxt + 1) >>> 0;
          if (s.want === 'LAST-ACK') c.close();
          break;
        case 'FIN-WAIT-1':
          c.close();
          break;
        case 'FIN-WAIT-2':
        case 'TIME-WAIT':
          c.close();
          // Acknowledge everything sent until the FIN is acknowledged too (Nagle may hold a tail).
          for (let i = 0; i < 8 && c.state === 'FIN-WAIT-1'; i++) ackAll();
          if (s.want === 'TIME-WAIT') this.fromPeer(s, FIN | ACK, peerNxt, c.info().sndNxt);
          break;
        case 'CLOSING':
          c.close();
          this.clock.advanceSync(0);
          this.drain(s);
          for (let i = 0; i < 8 && s.finSeq === undefined; i++) ackAll();
          // Simultaneous close (RFC 9293 §3.6, figure 13): their FIN acknowledges all but our FIN.
          if (s.finSeq !== undefined) this.fromPeer(s, FIN | ACK, peerNxt, s.finSeq);
          break;
        default:
          break;
      }
      this.clock.advanceSync(0);
      this.drain(s);
    }
    if (c.state !== s.want) {
      throw new Error(`setup of ${s.want} (${s.active ? 'active' : 'passive'} open, IPv${s.v6 ? 6 : 4}) reached ${c.state}`);
    }
    return c;
  }

  // ------------------------------------------------------------------------------------- inputs

  /** A well-formed segment aimed at (a), (b) or (c), and what it was aimed at. */
  aimed(): { packet: Uint8Array; kind: Kind; slot?: Slot; seg: TcpSegment } {
    const rng = this.rng;
    const r = rng.next();
    const v6 = rng.next() < 0.5;
    const ext: ExtHeader[] = v6 && rng.next() < 0.1 ? [acceptableExt(rng)] : [];
    if (r < 0.09) return this.cookieAimed(v6);
    if (r < 0.3) {
      // (a) A fresh 4-tuple mostly; half from a small pool of ports so that half-open connections
      // made by earlier SYNs get segments too.
      const src = peerAddress(v6, rng.int(0, 60_000 * 250 - 1));
      const srcPort = rng.next() < 0.5 ? rng.int(30_000, 30_063) : rng.int(1, 65535);
      const seg = randomSegment(rng, srcPort, LISTEN_PORT);
      return { packet: tcpIpPacket(src, v6 ? US6 : US4, seg, ext), kind: 'listen', seg };
    }
    if (r < 0.8) {
      const s = this.slots[rng.int(0, this.slots.length - 1)]!;
      const c = s.conn ?? this.open(s);
      const i = c.info();
      s.tsVal = (s.tsVal + rng.int(0, 3)) >>> 0;
      const seg = randomSegment(rng, s.remotePort, s.localPort, { sndUna: i.sndUna, sndNxt: i.sndNxt, rcvNxt: i.rcvNxt }, s.tsVal);
      const extra: ExtHeader[] = s.v6 && rng.next() < 0.1 ? [acceptableExt(rng)] : [];
      return { packet: tcpIpPacket(s.remote, s.local, seg, extra), kind: 'conn', slot: s, seg };
    }
    const src = peerAddress(v6, rng.int(0, 60_000 * 250 - 1));
    const seg = randomSegment(rng, rng.int(1, 65535), rng.int(CLOSED_PORTS[0], CLOSED_PORTS[1]));
    return { packet: tcpIpPacket(src, v6 ? US6 : US4, seg, ext), kind: 'closed', seg };
  }

  /**
   * (a) with SYN cookies: a SYN with random options to the cookie listener, then a random segment
   * whose numbers are often the ones that return the cookie (SEG.ACK = cookie + 1, SEG.SEQ = ISN + 1),
   * so that connections are rebuilt from cookies with random flags, options and data.
   */
  private cookieAimed(v6: boolean): { packet: Uint8Array; kind: Kind; seg: TcpSegment } {
    const rng = this.rng;
    const src = peerAddress(v6, rng.int(0, 60_000 * 250 - 1));
    const local = v6 ? US6 : US4;
    const srcPort = rng.int(1, 65535);
    const isn = rng.nextU32();
    const tsVal = rng.nextU32();
    const syn: TcpSegment = {
      srcPort, dstPort: COOKIE_PORT, seq: isn, ack: 0, flags: SYN, window: rng.int(0, 65535), urgent: 0,
      options: randomTcpOptions(rng, undefined, tsVal), payload: EMPTY,
    };
    this.stats.setupPackets++;
    this.stats.cookieSyns++;
    const synAck = this.deliver(tcpIpPacket(src, local, syn)).find((p) =>
      p.tcp !== null && p.tcp.flags === (SYN | ACK) && p.tcp.dstPort === srcPort && addressEquals(p.dst, src));
    if (synAck) this.stats.cookieSynAcks++;
    const cookie = synAck?.tcp?.seq ?? rng.nextU32();
    const hint = { sndUna: (cookie + 1) >>> 0, sndNxt: (cookie + 1) >>> 0, rcvNxt: (isn + 1) >>> 0 };
    const seg = randomSegment(rng, srcPort, COOKIE_PORT, hint, (tsVal + rng.int(0, 5)) >>> 0);
    if (seg.options.timestamp && synAck?.tcp?.options.timestamp && rng.next() < 0.7) {
      // TSecr carries the window scale and SACK-permitted of the cookie SYN,ACK back.
      seg.options.timestamp.ecr = synAck.tcp.options.timestamp.val;
    }
    return { packet: tcpIpPacket(src, local, seg), kind: 'listen', seg };
  }

  /** Feeds one input, aimed or not; checks (c) replies, and the slot after it. */
  feed(packet: Uint8Array, kind: Kind | 'pure' | 'steered' | 'icmp-error', slot?: Slot, wellFormed?: TcpSegment): void {
    const st = this.stats;
    st.inputs++;
    bump(st.byKind, kind);
    if (slot) {
      bump(st.hits, slot.conn!.state);
      bump(st.hits, `${slot.conn!.state} IPv${slot.v6 ? 6 : 4}`);
    }
    if (kind === 'listen') bump(st.hits, 'LISTEN');
    const replies = this.deliver(packet);
    if (wellFormed) {
      const mine = this.repliesTo(packet, wellFormed, replies);
      // RFC 9293 §3.10.7: in every state an incoming RST is discarded or acted on, never answered
      // with a RST (which could loop between two stacks).
      if (wellFormed.flags & RST && mine.some((r) => r.flags & RST)) {
        st.rstForRst.push(`${kind}${slot ? ` ${slot.want}` : ''}: in flags=0x${wellFormed.flags.toString(16)} seq=${wellFormed.seq} ack=${wellFormed.ack}`);
      }
      if (kind === 'closed') this.checkClosedReply(wellFormed, mine);
    }
    if (slot) {
      const c = slot.conn!;
      if (c.state !== 'CLOSED') {
        const why = tcbProblem(c);
        if (why !== null && st.tcbProblems.length < 20) st.tcbProblems.push(`${kind} ${slot.want}>${c.state}: ${why}`);
      }
      this.check(slot);
    }
  }

  /** The stack's replies to the sender of `packet` (addresses and ports swapped). */
  private repliesTo(packet: Uint8Array, seg: TcpSegment, replies: Parsed[]): TcpSegment[] {
    const v4 = packet[0]! >>> 4 === 4;
    const from = v4 ? packet.subarray(12, 16) : packet.subarray(8, 24);
    const mine: TcpSegment[] = [];
    for (const r of replies) {
      if (r.tcp && r.tcp.dstPort === seg.srcPort && r.tcp.srcPort === seg.dstPort && addressEquals(r.dst, from)) mine.push(r.tcp);
    }
    return mine;
  }

  /**
   * RFC 9293 §3.10.7.1: to a segment for no connection, nothing when it has RST; else with ACK
   * <SEQ=SEG.ACK><CTL=RST>; without ACK <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   */
  private checkClosedReply(seg: TcpSegment, mine: TcpSegment[]): void {
    const st = this.stats;
    st.closedChecked++;
    const fail = (why: string): void => {
      if (st.closedViolations.length < 5) {
        st.closedViolations.push(`${why}: in flags=0x${seg.flags.toString(16)} seq=${seg.seq} ack=${seg.ack} len=${seg.payload.length}; ` +
          `out ${mine.map((r) => `flags=0x${r.flags.toString(16)} seq=${r.seq} ack=${r.ack}`).join(', ') || 'nothing'}`);
      } else {
        st.closedViolations.push(why);
      }
    };
    if (seg.flags & RST) {
      if (mine.length !== 0) fail('a RST was answered');
      return;
    }
    if (mine.length !== 1) return fail(`${mine.length} replies`);
    const r = mine[0]!;
    if (r.payload.length !== 0) return fail('the RST carries data');
    if (seg.flags & ACK) {
      if (r.flags !== RST || r.seq !== seg.ack) fail('not <SEQ=SEG.ACK><CTL=RST>');
    } else {
      const segLen = seg.payload.length + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
      if (r.flags !== (RST | ACK) || r.seq !== 0 || r.ack !== ((seg.seq + segLen) >>> 0)) fail('not <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>');
    }
  }

  /** Random bytes: noise, noise behind a valid IP header, or a mutated aimed segment. */
  randomInput(): void {
    const rng = this.rng;
    const r = rng.next();
    if (r < 0.2) {
      const p = randomBytes(rng, skewedLength(rng, 200));
      // Half the time the version nibble says 4 or 6, so that more than the first check runs.
      if (p.length > 0 && rng.next() < 0.5) p[0] = (rng.next() < 0.5 ? 0x40 : 0x60) | (p[0]! & 0x0f);
      this.feed(p, 'pure');
    } else if (r < 0.37) {
      this.feed(this.steered(), 'steered');
    } else if (r < 0.4) {
      const s = this.slots[rng.int(0, this.slots.length - 1)]!;
      if (s.conn === null) this.open(s);
      this.feed(this.icmpError(s), 'icmp-error', s);
    } else {
      const a = this.aimed();
      this.feed(mutate(rng, a.packet), a.kind, a.slot);
    }
  }

  /**
   * An ICMP or ICMPv6 error (RFC 792, RFC 4443) from a router or the peer, quoting a segment of one of
   * the stack's connections, its SEQ often in SND.UNA..SND.NXT (RFC 5927 §4.1), the quote sometimes
   * cut to the IP header + 8 bytes; the MTU word random (frag-needed, Packet Too Big).
   */
  private icmpError(s: Slot): Uint8Array {
    const rng = this.rng;
    const c = s.conn!;
    const i = c.info();
    const quoted: TcpSegment = {
      srcPort: s.localPort, dstPort: s.remotePort, seq: nearSeq(rng, rng.next() < 0.5 ? i.sndUna : i.sndNxt), ack: i.rcvNxt,
      flags: ACK, window: 1000, urgent: 0, options: {}, payload: randomBytes(rng, skewedLength(rng, 200)),
    };
    let quote = tcpIpPacket(s.local, s.remote, quoted);
    if (rng.next() < 0.5) quote = quote.subarray(0, rng.int(0, quote.length));
    const v = s.v6 ? 6 : 4;
    const type = v === 4 ? [3, 3, 3, 11, 12, 4, 5][rng.int(0, 6)]! : [1, 1, 2, 3, 4, rng.int(0, 127)][rng.int(0, 5)]!;
    const code = rng.next() < 0.7 ? rng.int(0, 5) : rng.int(0, 255);
    const router = rng.next() < 0.5 ? s.remote : peerAddress(s.v6, rng.int(0, 1_000_000));
    const body = new Uint8Array(icmpErrorLength(v, quote.length));
    const pseudo = v === 4 ? 0 : pseudoHeaderSum(router, s.local, 58, body.length);
    writeIcmpError(body, 0, v, type, code, quote, pseudo, rng.next() < 0.5 ? rng.int(0, 1500) : rng.nextU32());
    return v === 4 ? ipv4Packet(router, s.local, 1, body) : ipv6Packet(router, s.local, 58, body);
  }

  /** A valid IPv4/IPv6 header (sometimes with options or extension headers) around random bytes. */
  private steered(): Uint8Array {
    const rng = this.rng;
    const v6 = rng.next() < 0.5;
    const src = rng.next() < 0.9 ? peerAddress(v6, rng.int(0, 1_000_000)) : randomBytes(rng, v6 ? 16 : 4);
    const dst = rng.next() < 0.9 ? (v6 ? US6 : US4) : randomBytes(rng, v6 ? 16 : 4);
    const protocols = [6, 6, 6, 6, 6, v6 ? 58 : 1, v6 ? 58 : 1, v6 ? 1 : 58, 17, rng.int(0, 255)];
    const protocol = protocols[rng.int(0, protocols.length - 1)]!;
    const body = randomBytes(rng, skewedLength(rng, 160));
    if (protocol === 6 && body.length >= 4 && rng.next() < 0.7) {
      const live = this.slots.filter((s) => s.conn !== null);
      const port = [LISTEN_PORT, COOKIE_PORT, SETUP_PORT, rng.int(CLOSED_PORTS[0], CLOSED_PORTS[1]), live.length ? live[rng.int(0, live.length - 1)]!.localPort : 80][rng.int(0, 4)]!;
      body[2] = port >>> 8;
      body[3] = port & 0xff;
      if (body.length >= 13 && rng.next() < 0.5) body[12] = (rng.int(5, 15) << 4) | (body[12]! & 0x0f);
    }
    if ((protocol === 1 || protocol === 58) && body.length >= 1 && rng.next() < 0.5) {
      // Echo requests and the error types, so ICMP input goes past "unhandled".
      body[0] = protocol === 1 ? [8, 3, 11, 12, 0][rng.int(0, 4)]! : [128, 1, 2, 3, 4, 129][rng.int(0, 5)]!;
    }
    let p: Uint8Array;
    if (v6) {
      p = ipv6Packet(src, dst, protocol, body, rng.next() < 0.2 ? [randomExt(rng)] : [], rng.int(0, 255));
    } else {
      const words = rng.next() < 0.1 ? rng.int(1, 10) : 0;
      const fragment = rng.next() < 0.1 ? rng.int(0, 0xffff) : 0x4000;
      p = ipv4Packet(src, dst, protocol, body, { options: randomBytes(rng, 4 * words), fragment, ttl: rng.int(0, 255), id: rng.int(0, 0xffff) });
    }
    if (rng.next() < 0.7) refreshChecksums(p);
    return p;
  }
}

/**
 * What must hold of a TCB whatever arrived (RFC 9293 §3.3.1, RFC 6675, RFC 5681): SND.UNA =<
 * SND.NXT; SACKed and lost bytes within what is outstanding; a positive RTO, and congestion window once synchronized;
 * buffers within their sizes; every figure a finite number. Null when all hold.
 */
function tcbProblem(c: TcpConnection): string | null {
  const i = c.info();
  for (const [k, v] of Object.entries(i)) {
    if (typeof v === 'number' && !Number.isFinite(v) && k !== 'ssthresh') return `${k} = ${v}`;
  }
  if (!seqLeq(i.sndUna, i.sndNxt)) return `SND.UNA ${i.sndUna} > SND.NXT ${i.sndNxt}`;
  if (i.unacked < 0) return `unacked ${i.unacked}`;
  if (i.sacked < 0 || i.sacked > i.unacked) return `sacked ${i.sacked} of ${i.unacked} outstanding`;
  if (i.lost < 0 || i.lost > i.unacked) return `lost ${i.lost} of ${i.unacked} outstanding`;
  if (i.pipe < 0) return `pipe ${i.pipe}`;
  // The congestion window is set when the handshake completes (RFC 5681 §3.1: IW from the SMSS).
  if (isSynchronized(i.state) && (!(i.cwnd > 0) || !(i.ssthresh > 0))) return `cwnd ${i.cwnd}, ssthresh ${i.ssthresh}`;
  if (!(i.rto > 0)) return `rto ${i.rto}`;
  if (i.rcvWnd < 0 || i.sndWnd < 0) return `windows ${i.rcvWnd}/${i.sndWnd}`;
  if (i.rcvBufUsed < 0 || i.rcvBufUsed > i.rcvBufSize) return `receive buffer ${i.rcvBufUsed} of ${i.rcvBufSize}`;
  if (i.sndBufUsed < 0 || i.sndBufUsed > i.sndBufSize) return `send buffer ${i.sndBufUsed} of ${i.sndBufSize}`;
  return null;
}

/** One IPv6 extension header that a host processes (RFC 8200 §4): the segment behind it is for TCP. */
function acceptableExt(rng: Rng): ExtHeader {
  const picks = [rng.nextU32(), rng.nextU32(), rng.nextU32()];
  switch (rng.int(0, 2)) {
    case 0: return optionsHeader('hop-by-hop', rng.int(0, 2), picks);
    case 1: return routingHeader(rng.int(0, 2), rng.int(0, 4), 0, rng.nextU32());
    default: return optionsHeader('destination', rng.int(0, 2), picks);
  }
}

/** One IPv6 extension header, mostly acceptable (RFC 8200 §4), sometimes one a host refuses. */
function randomExt(rng: Rng): ExtHeader {
  const picks = [rng.nextU32(), rng.nextU32(), rng.nextU32()];
  switch (rng.int(0, 5)) {
    case 0: return optionsHeader('hop-by-hop', rng.int(0, 2), picks);
    case 1: return routingHeader(rng.int(0, 2), rng.int(0, 4), rng.next() < 0.8 ? 0 : rng.int(1, 255), rng.nextU32());
    case 2: return fragmentHeader(rng.int(0, 3), rng.next() < 0.5, rng.nextU32());
    default: return optionsHeader('destination', rng.int(0, 2), picks);
  }
}

/** Connect, echo some bytes, close: a second stack at 10.0.0.2 / fd00::2 takes the link's far end. */
function legitimate(w: World, label: string): number {
  const { clock, stack } = w;
  const start = clock.now();
  const peer = new Stack({ link: w.peer, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock, seed: 7 + w.stats.inputs, name: 'legit' });
  const server = peer.tcpListen({ port: 7 });
  server.onConnection = (s) => {
    s.events = {
      onReadable: () => {
        const d = s.read();
        if (d !== null) s.write(d);
      },
      onEnd: () => s.close(),
    };
  };
  const results: Array<{ what: string; text: string; got: string; closed: TcpError | null | undefined }> = [];
  const client = (from: Stack, host: string, port: number, what: string): void => {
    const text = `${what}, after ${label}: ${'x'.repeat(3000)}`;
    const r = { what, text, got: '', closed: undefined as TcpError | null | undefined };
    const c = from.tcpConnect({ host, port });
    c.events = {
      onEstablished: () => {
        c.write(new TextEncoder().encode(text));
      },
      onReadable: () => {
        r.got += new TextDecoder().decode(c.read()!);
        if (r.got.length >= text.length) c.close();
      },
      onEnd: () => c.close(),
      onClosed: (e) => {
        r.closed = e;
      },
    };
    results.push(r);
  };
  client(peer, '10.0.0.1', LISTEN_PORT, 'to the fuzzed stack over IPv4');
  client(peer, 'fd00::1', LISTEN_PORT, 'to the fuzzed stack over IPv6');
  client(stack, '10.0.0.2', 7, 'from the fuzzed stack over IPv4');
  client(stack, 'fd00::2', 7, 'from the fuzzed stack over IPv6');
  // SYNs are retried (RFC 6298 backoff) if the listener is still busy with half-open fuzz.
  for (let i = 0; i < 20_000 && results.some((r) => r.closed === undefined); i++) clock.advanceSync(10);
  const took = clock.now() - start;
  for (const r of results) {
    assert.equal(r.closed, null, `${r.what} (${label}): closed with ${String(r.closed)}`);
    assert.equal(r.got, r.text, `${r.what} (${label}): echo differs`);
  }
  // TIME-WAIT (2 × MSL) ends; the legitimate peer has nothing left.
  clock.advanceSync(61_000);
  assert.equal(peer.connections().length, 0);
  assert.equal(peer.counters.internalErrors, 0);
  w.drain();
  w.peer.onPacket(w.capture);
  for (const s of w.slots) w.check(s);
  return took;
}

function counterDelta(after: StackCounters, before: StackCounters): {
  drops: Record<string, number>; ipIn: number; tcpIn: number; icmpIn: number; udpIn: number; fragmentsIn: number; reassembled: number;
} {
  const drops: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.drops)) {
    const d = v - (before.drops[k as keyof StackCounters['drops']] ?? 0);
    if (d > 0) drops[k] = d;
  }
  return {
    drops, ipIn: after.ipIn - before.ipIn, tcpIn: after.tcpIn - before.tcpIn, icmpIn: after.icmpIn - before.icmpIn,
    udpIn: after.udpIn - before.udpIn, fragmentsIn: after.fragmentsIn - before.fragmentsIn, reassembled: after.reassembled - before.reassembled,
  };
}

function snapshot(c: StackCounters): StackCounters {
  return { ...c, drops: { ...c.drops } };
}

test('input flood (issue 8): 100,000 random byte strings and 100,000 random well-formed segments, at a listener, connections in every state, and closed ports', (t) => {
  const startedAt = Date.now();
  const w = new World();
  const summary: string[] = [];
  let trace = 0;
  const onTrace = (): void => {
    trace++;
  };
  const runBatch = (name: string, one: (i: number) => void): { stats: BatchStats; delta: ReturnType<typeof counterDelta> } => {
    w.stats = newStats();
    const before = snapshot(w.stack.counters);
    const deliveredBefore = w.peer.stats.delivered;
    for (let i = 0; i < PER_BATCH; i++) {
      // Trace events are built from the fuzz too, for a part of each batch.
      if (i === 0) w.stack.on('trace', onTrace);
      if (i === 5_000) w.stack.off('trace', onTrace);
      one(i);
      if (i % 250 === 249) w.passTime(w.rng.int(0, 25));
      // Now and then minutes: half-open connections, SYN-SENT and TIME-WAIT time out.
      if (i % 20_000 === 19_999) w.passTime(w.rng.int(1_000, 180_000));
    }
    const delta = counterDelta(w.stack.counters, before);
    const delivered = w.peer.stats.delivered - deliveredBefore;
    const c = w.stack.counters;
    assert.equal(c.internalErrors, 0, `${name}: exceptions caught inside the stack`);
    assert.deepEqual(w.escaped, [], `${name}: exceptions thrown out of the link's receive path`);
    assert.deepEqual(w.badOutputs.slice(0, 5), [], `${name}: the stack sent malformed packets`);
    assert.deepEqual(w.stats.tcbProblems, [], `${name}: connections left inconsistent`);
    assert.equal(w.peer.stats.dropped, 0, 'the link dropped nothing (all inputs fit its MTU)');
    assert.ok(w.stats.inputs === PER_BATCH && delivered === PER_BATCH + w.stats.setupPackets, `${name}: ${delivered} delivered`);
    // Every packet is accounted for: a drop before TCP/UDP/ICMP input (by reason), a TCP, UDP or
    // ICMP input, or a fragment held for reassembly; and each datagram reassembled is one more input.
    assert.equal(delta.ipIn, delivered);
    const early = Object.entries(delta.drops).filter(([k]) => PRE_TRANSPORT_REASONS.has(k)).reduce((n, [, v]) => n + v, 0);
    assert.equal(early + delta.tcpIn + delta.icmpIn + delta.udpIn + delta.fragmentsIn, delta.ipIn + delta.reassembled,
      `${name}: packets neither dropped nor taken in`);
    // Every state was reached and fuzzed, in both families.
    for (const s of [...HELD.flatMap((x) => [`${x} IPv4`, `${x} IPv6`]), 'LISTEN']) {
      assert.ok((w.stats.hits[s] ?? 0) >= 500, `${name}: only ${w.stats.hits[s] ?? 0} inputs reached a connection in ${s}`);
    }
    return { stats: w.stats, delta };
  };

  // ----------------------------------------------------------------------------- random bytes
  const a = runBatch('random bytes', () => w.randomInput());
  for (const r of ['ip-truncated', 'ip-bad-version', 'ipv4-bad-checksum', 'ipv4-bad-length', 'ipv4-bad-ihl', 'ip-fragment-bad',
    'ipv6-bad-length', 'ipv6-bad-extension', 'ip-not-for-us', 'ip-unknown-protocol', 'tcp-truncated',
    'tcp-bad-offset', 'tcp-bad-checksum', 'tcp-bad-options', 'icmp-bad-checksum', 'tcp-no-socket']) {
    assert.ok((a.delta.drops[r] ?? 0) > 0, `random bytes: no '${r}' drop among ${JSON.stringify(a.delta.drops)}`);
  }
  const legitA = legitimate(w, 'the random bytes');
  assert.equal(w.stack.counters.internalErrors, 0);

  // ----------------------------------------------------------------------------- well-formed
  const b = runBatch('well-formed segments', () => {
    const x = w.aimed();
    w.feed(x.packet, x.kind, x.slot, x.seg);
  });
  for (const r of ['tcp-no-socket', 'tcp-invalid-state']) {
    assert.ok((b.delta.drops[r] ?? 0) > 0, `well-formed: no '${r}' drop among ${JSON.stringify(b.delta.drops)}`);
  }
  assert.ok(b.stats.closedChecked > 10_000, `only ${b.stats.closedChecked} segments to closed ports`);
  assert.deepEqual(b.stats.rstForRst.slice(0, 5), [], `${b.stats.rstForRst.length} RSTs answered with a RST`);
  assert.deepEqual(b.stats.closedViolations.slice(0, 5), [], `${b.stats.closedViolations.length} closed-port replies break RFC 9293 §3.10.7.1`);
  const legitB = legitimate(w, 'the well-formed segments');
  assert.equal(w.stack.counters.internalErrors, 0);
  assert.deepEqual(w.escaped, []);
  assert.ok(trace > 10_000, `trace events built from fuzz input: ${trace}`);
  const k = w.stack.counters;
  assert.ok(b.stats.cookieSynAcks > 0.95 * b.stats.cookieSyns, `SYN cookie listener answered ${b.stats.cookieSynAcks} of ${b.stats.cookieSyns} SYNs`);
  assert.ok(k.synCookiesValid > 0 && k.synCookiesFailed > 0, 'connections were rebuilt from SYN cookies, and forged cookies refused');
  assert.ok(a.stats.byKind['icmp-error']! > 1000 && k.icmpIn > 1000, 'ICMP errors quoting the connections were taken in');

  for (const [name, r] of [['random bytes', a], ['well-formed', b]] as const) {
    const drops = Object.entries(r.delta.drops).sort(([, x], [, y]) => y - x).map(([k, v]) => `${k}=${v}`).join(' ');
    const hits = [...HELD, 'LISTEN'].map((s) => `${s}=${r.stats.hits[s] ?? 0}`).join(' ');
    const kinds = Object.entries(r.stats.byKind).map(([k, v]) => `${k}=${v}`).join(' ');
    summary.push(`${name}: ${r.stats.inputs} inputs (${kinds}), ${r.stats.setups} set-ups in ${r.stats.setupPackets} packets, ` +
      `${Object.keys(r.stats.transitions).length} kinds of state change; drops: ${drops}; states hit: ${hits}`);
  }
  t.diagnostic(`${summary.join(' | ')} | closed-port RSTs checked ${b.stats.closedChecked}; stack sent ${w.outputs} packets, all well-formed; ` +
    `SYN cookies sent ${k.synCookiesSent}, valid ${k.synCookiesValid}, failed ${k.synCookiesFailed}; challenge ACKs ${k.challengeAcks}; ` +
    `retransmits ${k.retransmits}; ICMP in ${k.icmpIn}; ` +
    `legitimate connections done in ${(legitA / 1000).toFixed(2)} s / ${(legitB / 1000).toFixed(2)} s virtual; ${Date.now() - startedAt} ms`);
});
