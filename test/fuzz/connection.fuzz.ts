/**
 * A connection-level fuzzer (issue 8). Two synack stacks over a seeded, impaired MemoryLink in virtual
 * time; each step is one random action — a user call through the core TCP user API (RFC 9293 §3.9.1:
 * OPEN active and passive, SEND, RECEIVE, CLOSE, ABORT, and the options), a well-formed segment (good
 * checksums) injected at either stack aimed at a connection, a listener or a closed port with sequence
 * and acknowledgment numbers near the right ones, or some virtual time. After every step (and every
 * slice of a time step) the invariants below are checked; the first one broken ends the episode with
 * its seed and step, and `runEpisode(seed, { log })` (`node dist/bench/fuzz.js --seed S --one --log`)
 * replays it exactly: every random choice comes from `Rng(seed)` (src/link/rng.ts) and virtual time.
 *
 * Invariants:
 *  - SND.UNA =< SND.NXT (sequence space, RFC 9293 §3.3.1); SND.UNA, SND.NXT and RCV.NXT never move back;
 *    SND.NXT never beyond ISS + 1 + what the application wrote + FIN.
 *  - Only the transitions of RFC 9293 Figure 5 and §3.10.7.4 (plus RST/ABORT/timeouts to CLOSED, and
 *    SYN-RECEIVED → CLOSED standing for "return to LISTEN" of a passive TCB), each from the state the
 *    trace last reported for that 4-tuple; a new incarnation starts from CLOSED or LISTEN;
 *    `state` agrees with the trace, and the stack holds no CLOSED connection and drops no live one.
 *  - Buffers: used =< size =< the configured maximum; send buffer used + bytes acked = bytes written;
 *    RCV.NXT − IRS − 1 = bytes read + bytes buffered (+ 1 for a FIN); out-of-order data held in the
 *    receive ring lies within its free space (no overwrite of unread data) and above RCV.NXT; the
 *    SACK blocks a stack sends (RFC 2018 §4, D-SACK RFC 2883) lie within its buffer above the ACK.
 *  - Data: every sender writes a keyed pseudo-random pattern (a function of the 4-tuple, ISS and the
 *    stream offset), so whatever a receiver reads must be exactly the pattern at its read offset — a
 *    byte delivered twice, skipped or reordered shifts the stream and shows — and never beyond what the
 *    peer wrote; at EOF exactly what the peer wrote before its CLOSE. Injected payloads carry the same
 *    pattern; one that reaches beyond what the peer wrote (or a forged FIN) lifts those two checks for
 *    that connection only. Every data segment a stack sends, first transmission or retransmission, is
 *    its application's pattern at that offset, and never beyond what it wrote.
 *  - User events: established and closed at most once per connection. API calls throw only the
 *    documented TcpErrors (write: EPIPE, and only after CLOSE or outside the states that may send);
 *    `counters.internalErrors` stays 0; every packet a stack sends parses with good checksums.
 *  - No storm: a slice of time with far more pure ACKs than anything else, more than MAX_SLICE_PACKETS
 *    packets (the link then stops carrying them), or more clock callbacks than MAX_CLOCK_STEPS (a
 *    livelock) fails — an ACK war between two desynchronized ends looks like that.
 *  - At the end every application closes (or aborts, with unread data, as a socket's close() does) and
 *    virtual time runs on: no TCB may outlive its timers, except in FIN-WAIT-2, which RFC 9293 leaves
 *    without one, and on a 4-tuple that saw forged segments (see `leftovers`); nor may packets keep
 *    flowing ten minutes after.
 *
 * This module only defines: importing it runs nothing (node --test runs every file under dist/test).
 */
import { VirtualClock } from '../../src/link/clock.js';
import type { LinkEnd } from '../../src/link/link.js';
import { MemoryLink, type MemoryLinkEnd, type MemoryLinkOptions } from '../../src/link/memory.js';
import { Rng } from '../../src/link/rng.js';
import type { StackOptions } from '../../src/stack/options.js';
import { Stack } from '../../src/stack/stack.js';
import type { Connection } from '../../src/tcp/connection.js';
import type { TcpState } from '../../src/tcp/state.js';
import { TcpError, type TcpListener } from '../../src/tcp/user.js';
import type { TraceEvent } from '../../src/trace/events.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { parseIpPacket, PROTO_TCP } from '../../src/wire/ip.js';
import { seqAdd, seqDiff, seqLeq, seqLt } from '../../src/wire/seq.js';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, parseTcp, type TcpOptions } from '../../src/wire/tcp.js';
import { tcpPacket, tcpWithRawOptions, type SegmentSpec } from '../stack/raw.js';

// ============================================================================ transitions

/**
 * RFC 9293 Figure 5, completed by §3.10.7.4 (SYN-RECEIVED/ESTABLISHED → CLOSE-WAIT on FIN, FIN-WAIT-1 →
 * TIME-WAIT on a FIN that also acknowledges ours), §3.10.4 (CLOSE in SYN-RECEIVED → FIN-WAIT-1) and
 * §3.5 Figure 7 (simultaneous open: SYN-SENT → SYN-RECEIVED). Every state may also go to CLOSED: RST,
 * ABORT, the retransmission/keep-alive/user timeouts, and TIME-WAIT's 2×MSL or its reopening by a new
 * SYN (RFC 9293 §3.10.7.4, RFC 6191). synack's passive TCB that "returns to LISTEN" goes to CLOSED (the
 * listener itself stays), and its connections begin in LISTEN, so LISTEN → SYN-RECEIVED is their first.
 */
export const ALLOWED_TRANSITIONS: Readonly<Record<TcpState, readonly TcpState[]>> = {
  'CLOSED': ['SYN-SENT', 'LISTEN'],
  'LISTEN': ['SYN-RECEIVED', 'SYN-SENT', 'CLOSED'],
  'SYN-SENT': ['SYN-RECEIVED', 'ESTABLISHED', 'CLOSED'],
  'SYN-RECEIVED': ['ESTABLISHED', 'FIN-WAIT-1', 'CLOSE-WAIT', 'CLOSED'],
  'ESTABLISHED': ['FIN-WAIT-1', 'CLOSE-WAIT', 'CLOSED'],
  'FIN-WAIT-1': ['FIN-WAIT-2', 'CLOSING', 'TIME-WAIT', 'CLOSED'],
  'FIN-WAIT-2': ['TIME-WAIT', 'CLOSED'],
  'CLOSE-WAIT': ['LAST-ACK', 'CLOSED'],
  'CLOSING': ['TIME-WAIT', 'CLOSED'],
  'LAST-ACK': ['CLOSED'],
  'TIME-WAIT': ['CLOSED'],
};

export function transitionAllowed(from: TcpState, to: TcpState): boolean {
  return ALLOWED_TRANSITIONS[from]?.includes(to) ?? false;
}

/** The states a fuzz run must have reached for its coverage to count (issue 8). */
export const REQUIRED_STATES: readonly TcpState[] = [
  'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'LAST-ACK',
  'TIME-WAIT', 'CLOSING',
];

// ============================================================================ the data pattern

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a of a string, then mixed: the pattern key of one direction of one connection. */
export function keyHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** The byte at stream offset `off` (mod 2^32) of the stream keyed `h`: a keyed hash, so a shifted
 *  stream differs from the expected one almost everywhere. */
export function patternByte(h: number, off: number): number {
  return mix32((h + Math.imul(off, 0x9e3779b1)) | 0) & 0xff;
}

export function patternBytes(h: number, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = patternByte(h, off + i);
  return out;
}

/** The key of the bytes `src:srcPort` sends to `dst:dstPort` on the connection whose ISS is `iss`. */
export function streamKey(src: string, srcPort: number, dst: string, dstPort: number, iss: number): string {
  return `${src}|${srcPort}|${dst}|${dstPort}|${iss >>> 0}`;
}

// ============================================================================ coverage and results

export class Coverage {
  readonly states = new Map<TcpState, number>();
  readonly transitions = new Map<string, number>();

  /** Counts each state entered (`to`); a passive connection is born in LISTEN, counted when it leaves. */
  noteTransition(from: TcpState, to: TcpState): void {
    if (from === 'LISTEN') this.states.set(from, (this.states.get(from) ?? 0) + 1);
    this.states.set(to, (this.states.get(to) ?? 0) + 1);
    const k = `${from}→${to}`;
    this.transitions.set(k, (this.transitions.get(k) ?? 0) + 1);
  }

  merge(o: Coverage): void {
    for (const [k, v] of o.states) this.states.set(k, (this.states.get(k) ?? 0) + v);
    for (const [k, v] of o.transitions) this.transitions.set(k, (this.transitions.get(k) ?? 0) + v);
  }

  missing(required: readonly TcpState[] = REQUIRED_STATES): TcpState[] {
    return required.filter((s) => !this.states.has(s));
  }
}

export interface EpisodeStats {
  connections: number;
  injected: number;
  packets: number;
  /** Packets with only ACK set and no payload. */
  pureAcks: number;
  /** Bytes the applications wrote (accepted by write()) and read (each checked against the pattern). */
  bytesWritten: number;
  bytesRead: number;
  /** Most clock callbacks run in one slice of virtual time (to size the livelock bound). */
  maxCallbacks: number;
  /** Most packets sent in one slice of virtual time or one step (to size MAX_SLICE_PACKETS). */
  maxSlicePackets: number;
  actions: Record<string, number>;
  tainted: number;
}

export interface Failure {
  seed: number;
  /** The step (1-based) during which the invariant broke; 0 for the end phase. */
  step: number;
  message: string;
  /** The last steps before it, oldest first. */
  recent: string[];
  /** The episode's `steps` option (replay needs the same). */
  episodeSteps: number;
}

export interface EpisodeResult {
  seed: number;
  steps: number;
  failure: Failure | null;
  coverage: Coverage;
  stats: EpisodeStats;
  /** Virtual time the episode ran (ms). */
  virtualMs: number;
}

export interface EpisodeOptions {
  /** Random steps before the end phase (default 800). */
  steps?: number;
  /** Wall-clock time (Date.now()) after which no further step starts; the end phase is skipped. */
  deadline?: number;
  /** Called with a description of every step, for replay. */
  log?: (line: string) => void;
  /** Skip the end phase (closing everything and running the timers out). */
  noEndPhase?: boolean;
  /**
   * Self-test of the checker: deliberately break the system under test the way a bug would, so a
   * test can show the fuzzer notices. 'duplicate-read': the first read of a connection's data is
   * handed to the checker twice (as if delivered twice). 'rcv-nxt-back': once a connection is
   * ESTABLISHED, its RCV.NXT is moved back by one (as a bug in the TCB would).
   */
  sabotage?: 'duplicate-read' | 'rcv-nxt-back';
}

class Violation extends Error {}

// ============================================================================ the episode

const LISTEN_PORTS = [80, 81, 8080];
/** Fixed local ports of active opens: reused 4-tuples meet TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191). */
const FIXED_PORTS = [5000, 5001, 5002];
/** Ports of simultaneous opens (RFC 9293 §3.5 Figure 7): never listened on. */
const SIMOPEN_PORTS = [6000, 6001, 6002];
/** Bound on live connections (both stacks), so episodes stay small. */
const MAX_LIVE = 24;
/** The end phase: virtual time in slices, and what counts as a packet storm (see runEndPhase). */
const END_PHASE_SLICE_MS = 5000;
const END_PHASE_SLICES = 720;
const STORM_AFTER_MS = 10 * 60_000;
const STORM_PACKETS = 500;
/** Callbacks in one slice of virtual time beyond which the clock reports a livelock. */
const MAX_CLOCK_STEPS = 50_000;
/** Packets in one slice of time (at most 250 ms) or one user step beyond which the link stops. */
const MAX_SLICE_PACKETS = 30_000;
/** Pure ACKs in one slice, beyond twice the other packets, that make a storm (see advance). */
const STORM_ACKS_PER_SLICE = 5000;
/** Random steps per episode, before the end phase. */
export const DEFAULT_STEPS = 800;
/** Steps kept for a failure report. */
const RECENT = 40;

interface Side {
  idx: 0 | 1;
  name: 'a' | 'b';
  stack: Stack;
  v4: string;
  v6: string;
  /** The stack's packet input (bypassing the link): injection. */
  input: (p: Uint8Array) => void;
  listeners: ListenerRec[];
  sndMax: number;
  rcvMax: number;
  mslMs: number;
  /** Messages of internal errors the stack traced. */
  internal: string[];
}

interface ListenerRec {
  l: TcpListener;
  port: number;
  host: string;
  queue: boolean;
  closed: boolean;
}

interface Tracker {
  id: number;
  side: Side;
  conn: Connection;
  /** The stream this connection sends (its key includes its ISS). */
  key: string;
  hash: number;
  written: number;
  /** Bytes offered by a write() still running (it may send them before it returns). */
  writing: number;
  /** A read() is running. */
  reading: boolean;
  /** close() was called in a state where it queues a FIN. */
  finQueued: boolean;
  closeCalled: boolean;
  read: number;
  held: boolean;
  taintData: boolean;
  taintFin: boolean;
  lastSndUna: number | null;
  lastSndNxt: number | null;
  lastRcvNxt: number | null;
  established: number;
  closed: number;
  closedCode: string | null;
  eofChecked: boolean;
  autoRead: boolean;
  autoWrite: boolean;
  closeOnEnd: boolean;
}

/** White-box view of a Connection's receive side (private fields; see the reassembly invariant). */
interface ConnInternals {
  reasm?: { blocks: ReadonlyArray<readonly [number, number]> };
  recvBuf?: { capacity: number; length: number };
}

/**
 * A link end that passes through, lets the fuzzer hand the stack a packet directly, and stops
 * carrying packets when `allow` says so (a storm: see Episode.allowSend). It forwards the inner
 * link's `checksumOffload`, and its `onBurstEnd` when `batched` (LinkEnd's contract: a packet handed
 * over directly is a burst of its own, ended at once), so episodes run both input paths.
 */
class TapEnd implements LinkEnd {
  readonly mtu: number;
  readonly checksumOffload: boolean;
  readonly onBurstEnd: ((fn: () => void) => void) | undefined;
  private receiver: (p: Uint8Array) => void = () => {};
  private burstEnd: (() => void) | undefined;
  constructor(private readonly inner: MemoryLinkEnd, private readonly allow: () => boolean, batched: boolean) {
    this.mtu = inner.mtu;
    this.checksumOffload = inner.checksumOffload;
    this.onBurstEnd = batched ? (fn) => {
      this.burstEnd = fn;
      inner.onBurstEnd(fn);
    } : undefined;
  }
  send(p: Uint8Array): void {
    if (this.allow()) this.inner.send(p);
  }
  onPacket(fn: (p: Uint8Array) => void): void {
    this.receiver = fn;
    this.inner.onPacket(fn);
  }
  /** Hand the stack a packet directly (an injected segment): a burst of one. */
  deliver(p: Uint8Array): void {
    this.receiver(p);
    this.burstEnd?.();
  }
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(0, xs.length - 1)]!;
}

function chance(rng: Rng, p: number): boolean {
  return rng.next() < p;
}

function tupleOf(side: Side, local: string, lport: number, remote: string, rport: number): string {
  return `${side.idx}|${local}|${lport}|${remote}|${rport}`;
}

const SENDABLE: ReadonlySet<TcpState> = new Set<TcpState>(['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT']);
const FIN_QUEUEING: ReadonlySet<TcpState> = new Set<TcpState>(['SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT']);

export class Episode {
  readonly rng: Rng;
  readonly clock = new VirtualClock({ maxSteps: MAX_CLOCK_STEPS });
  readonly sides: [Side, Side];
  readonly coverage = new Coverage();
  readonly stats: EpisodeStats = { connections: 0, injected: 0, packets: 0, pureAcks: 0, bytesWritten: 0, bytesRead: 0, maxCallbacks: 0, maxSlicePackets: 0, actions: {}, tainted: 0 };
  step = 0;
  private readonly trackers = new Map<Connection, Tracker>();
  private readonly writers = new Map<string, Tracker>();
  /** The latest tracker of each 4-tuple of each side (the sender of what leaves on it). */
  private readonly byTuple = new Map<string, Tracker>();
  private readonly tupleState = new Map<string, TcpState>();
  /** Last timestamp value each direction of each 4-tuple sent (aiming injected timestamps). */
  private readonly lastTs = new Map<string, number>();
  private held: Tracker[] = [];
  /** The last packets the stacks sent (for a livelock report). */
  private readonly lastPackets: string[] = new Array<string>(6).fill('');
  private lastPacketAt = 0;
  /** 4-tuples (either direction, any incarnation) a segment was injected on: see leftovers(). */
  private readonly forgedTuples = new Set<string>();
  private lastTuple: { side: Side; src: string; sport: number; dst: string; dport: number } | null = null;
  private readonly violations: string[] = [];
  private readonly recent: string[] = [];
  private nextId = 1;
  private sabotaged = false;
  /** The end phase is running: failures there are reported as step 0. */
  inEndPhase = false;
  private current = '';
  /** The path and stack configuration this seed chose. */
  readonly setup: string;
  /** The path has checksum offload: the stacks leave TCP checksums 0 (LinkEnd.checksumOffload). */
  private readonly offload: boolean;

  constructor(readonly seed: number, private readonly opts: EpisodeOptions = {}) {
    const rng = (this.rng = new Rng(seed));
    // The path: one configuration per episode, from the seed.
    const link: MemoryLinkOptions = {
      clock: this.clock,
      seed: rng.nextU32(),
      mtu: pick(rng, [1500, 1500, 1500, 1280, 576]),
      delayMs: pick(rng, [0, 1, 5, 5, 20]),
      lossRate: pick(rng, [0, 0, 0.01, 0.05, 0.2]),
      reorderRate: pick(rng, [0, 0, 0.05, 0.2]),
      duplicateRate: pick(rng, [0, 0, 0.02, 0.1]),
      corruptRate: pick(rng, [0, 0, 0.01, 0.05]),
    };
    if (chance(rng, 0.3)) {
      link.bandwidthBps = pick(rng, [1e6, 10e6, 100e6]);
      link.queuePackets = pick(rng, [4, 20, 100]);
    }
    // The fast path's input options, from a stream of their own (the draws above and every later
    // one stay as they were for a given seed): burst batching per side, checksum offload per path
    // (only without corruption, which must be detected).
    const fast = new Rng((seed ^ 0x6a09e667) >>> 0);
    const batched = [chance(fast, 0.5), chance(fast, 0.5)] as const;
    if (link.corruptRate === 0 && chance(fast, 0.5)) link.checksumOffload = true;
    this.offload = link.checksumOffload === true;
    const [la, lb] = MemoryLink.pair(link);
    const setup = [`link: ${JSON.stringify({ ...link, clock: undefined })}; batched: a ${batched[0]}, b ${batched[1]}`];
    const mk = (idx: 0 | 1, end: MemoryLinkEnd): Side => {
      const sendBufferSize = pick(rng, [1024, 4096, 16384, 65536, 262144]);
      const receiveBufferSize = pick(rng, [1024, 4096, 16384, 65536, 262144]);
      const so: StackOptions = {
        link: new TapEnd(end, () => this.allowSend(), batched[idx]),
        addresses: idx === 0 ? ['10.0.0.1/24', 'fd00::1/64'] : ['10.0.0.2/24', 'fd00::2/64'],
        clock: this.clock,
        name: idx === 0 ? 'a' : 'b',
        seed: rng.nextU32(),
        mslMs: pick(rng, [100, 500, 2000]),
        sendBufferSize,
        receiveBufferSize,
        sendBufferMax: pick(rng, [sendBufferSize, 1 << 20, 4 << 20]),
        receiveBufferMax: pick(rng, [receiveBufferSize, 1 << 20, 6 << 20]),
        congestionControl: pick(rng, ['cubic', 'newreno'] as const),
        windowScaling: chance(rng, 0.8),
        sack: chance(rng, 0.8),
        timestamps: chance(rng, 0.8),
        delayedAckMs: pick(rng, [0, 40, 40, 200]),
        synRetries: rng.int(1, 6),
        dataRetries: rng.int(2, 15),
        challengeAckLimit: pick(rng, [1000, 1000, 5]),
      };
      setup.push(`${so.name}: ${JSON.stringify({ ...so, link: undefined, clock: undefined })}`);
      const tap = so.link as TapEnd;
      const stack = new Stack(so);
      const side: Side = {
        idx, name: idx === 0 ? 'a' : 'b', stack,
        v4: idx === 0 ? '10.0.0.1' : '10.0.0.2', v6: idx === 0 ? 'fd00::1' : 'fd00::2',
        input: (p) => tap.deliver(p),
        listeners: [],
        sndMax: Math.max(so.sendBufferMax!, sendBufferSize),
        rcvMax: Math.max(so.receiveBufferMax!, receiveBufferSize),
        mslMs: so.mslMs!,
        internal: [],
      };
      stack.on('trace', (e) => this.onTrace(side, e));
      end.onTransmit((p) => this.onTransmit(side, p));
      return side;
    };
    this.sides = [mk(0, la), mk(1, lb)];
    this.setup = setup.join('; ');
  }

  // ---------------------------------------------------------------------------- observation

  private violation(msg: string): void {
    this.violations.push(`${msg} (t=${this.clock.now().toFixed(3)} ms)`);
  }

  private onTrace(side: Side, e: TraceEvent): void {
    if (e.type === 'state') {
      const k = tupleOf(side, e.conn.localAddress, e.conn.localPort, e.conn.remoteAddress, e.conn.remotePort);
      const prev = this.tupleState.get(k);
      const where = `${side.name} ${e.conn.localAddress}:${e.conn.localPort}→${e.conn.remoteAddress}:${e.conn.remotePort}`;
      if (prev === undefined || prev === 'CLOSED') {
        if (e.from !== 'CLOSED' && e.from !== 'LISTEN') this.violation(`${where}: new connection starts in ${e.from}`);
      } else if (e.from !== prev) {
        this.violation(`${where}: transition from ${e.from} but the last state traced was ${prev}`);
      }
      if (!transitionAllowed(e.from, e.to)) {
        this.violation(`${where}: transition ${e.from} → ${e.to} not allowed (${e.cause}, ${e.rfc})`);
      }
      this.tupleState.set(k, e.to);
      this.coverage.noteTransition(e.from, e.to);
    } else if (e.type === 'note' && e.what.startsWith('internal error')) {
      side.internal.push(e.what);
    }
  }

  /** Every packet a stack sends: well formed, SACK blocks sane; remember timestamps for aiming. */
  private onTransmit(side: Side, p: Uint8Array): void {
    this.stats.packets++;
    const ip = parseIpPacket(p);
    if (typeof ip === 'string') return this.violation(`${side.name} sent a bad IP packet: ${ip}`);
    if (ip.protocol !== PROTO_TCP) return;
    const body = p.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
    // With offload the checksum field is left 0 (as on Linux loopback); otherwise it must verify.
    const seg = parseTcp(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_TCP, ip.payloadLength), !this.offload);
    if (typeof seg === 'string') return this.violation(`${side.name} sent a bad TCP segment: ${seg}`);
    if (this.offload && (body[16] !== 0 || body[17] !== 0)) return this.violation(`${side.name} set a TCP checksum on an offload path`);
    const src = ip.src.length === 4 ? side.v4 : side.v6;
    const dstSide = this.sides[1 - side.idx]!;
    const dst = ip.dst.length === 4 ? dstSide.v4 : dstSide.v6;
    if (seg.flags === ACK && seg.payload.length === 0) this.stats.pureAcks++;
    if (seg.payload.length > 0) this.checkSent(side, src, dst, seg.srcPort, seg.dstPort, seg.seq, seg.flags, seg.payload);
    this.lastTuple = { side, src, sport: seg.srcPort, dst, dport: seg.dstPort };
    this.lastPackets[this.lastPacketAt++ % this.lastPackets.length] =
      `${side.name} ${seg.srcPort}→${seg.dstPort} ${flagStr(seg.flags)} seq=${seg.seq} ack=${seg.ack} len=${seg.payload.length}`;
    if (seg.options.timestamp) this.lastTs.set(`${src}|${seg.srcPort}|${dst}|${seg.dstPort}`, seg.options.timestamp.val);
    const blocks = seg.options.sack;
    if (blocks !== undefined && seg.flags & ACK) {
      for (let i = 0; i < blocks.length; i++) {
        const [l, r] = blocks[i]!;
        const dsack = i === 0 && (seqLeq(r, seg.ack) ||
          blocks.slice(1).some(([l2, r2]) => seqLeq(l2, l) && seqLeq(r, r2)));
        const bad = !seqLt(l, r) || (!dsack && (!seqLt(seg.ack, l) || seqDiff(r, seg.ack) > side.rcvMax));
        if (bad) {
          this.violation(`${side.name} sent SACK block ${i} [${l}, ${r}) with ACK ${seg.ack}: outside (ACK, ACK + buffer]`);
        }
      }
    }
  }

  /**
   * Data a stack sends — first transmission or retransmission — must be the sender's own bytes at
   * their stream offset, and only bytes the application wrote.
   */
  private checkSent(side: Side, src: string, dst: string, sport: number, dport: number, seq: number, flags: number, payload: Uint8Array): void {
    const t = this.byTuple.get(tupleOf(side, src, sport, dst, dport));
    if (t === undefined) {
      this.violation(`${side.name} sent ${payload.length} bytes on ${src}:${sport}→${dst}:${dport}, a connection the application never wrote on`);
      return;
    }
    const off = seqDiff(flags & SYN ? seqAdd(seq, 1) : seq, seqAdd(t.conn.iss, 1));
    const id = `conn #${t.id} (${side.name} ${t.conn.state})`;
    if (off < 0 || off + payload.length > t.written + t.writing) {
      this.violation(`${id} sent stream bytes [${off}, ${off + payload.length}) but the application wrote ${t.written}`);
      return;
    }
    for (let i = 0; i < payload.length; i++) {
      if (payload[i] !== patternByte(t.hash, off + i)) {
        this.violation(`${id} sent byte ${off + i} of its stream as ${payload[i]}, the application wrote ${patternByte(t.hash, off + i)}`);
        return;
      }
    }
  }

  private tracker(side: Side, c: Connection): Tracker {
    let t = this.trackers.get(c);
    if (t !== undefined) return t;
    const key = streamKey(c.localAddress, c.localPort, c.remoteAddress, c.remotePort, c.iss);
    t = {
      id: this.nextId++, side, conn: c, key, hash: keyHash(key), written: 0, writing: 0, reading: false, finQueued: false,
      closeCalled: false, read: 0, held: false, taintData: false, taintFin: false,
      lastSndUna: null, lastSndNxt: null, lastRcvNxt: null, established: 0, closed: 0, closedCode: null,
      eofChecked: false, autoRead: chance(this.rng, 0.5), autoWrite: chance(this.rng, 0.2),
      closeOnEnd: chance(this.rng, 0.5),
    };
    this.trackers.set(c, t);
    this.writers.set(key, t);
    this.byTuple.set(tupleOf(side, c.localAddress, c.localPort, c.remoteAddress, c.remotePort), t);
    this.stats.connections++;
    return t;
  }

  /** The tracker of the connection that sends what `c` receives (by 4-tuple and ISS = c's IRS). */
  private peerWriter(c: Connection, irs = c.irs): Tracker | undefined {
    return this.writers.get(streamKey(c.remoteAddress, c.remotePort, c.localAddress, c.localPort, irs));
  }

  /** The user now holds `c`: watch its events. */
  private hold(side: Side, c: Connection): Tracker {
    const t = this.tracker(side, c);
    if (t.held) return t;
    t.held = true;
    this.held.push(t);
    c.events = {
      onEstablished: () => {
        if (++t.established > 1) this.violation(`conn #${t.id}: established twice`);
      },
      onReadable: () => {
        if (t.autoRead) this.doRead(t, undefined);
      },
      onEnd: () => {
        if (t.closeOnEnd && !t.closeCalled) this.doClose(t, false);
      },
      onWritable: () => {
        if (t.autoWrite) this.doWrite(t, this.rng.int(1, 4096));
      },
      onClosed: (err) => {
        t.closedCode = err === null ? null : err.code;
        if (++t.closed > 1) this.violation(`conn #${t.id}: closed twice`);
      },
    };
    return t;
  }

  // ---------------------------------------------------------------------------- user calls

  private call<T>(what: string, fn: () => T, allowed: readonly string[]): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TcpError && allowed.includes(err.code)) return undefined;
      this.violation(`${what} threw ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      return undefined;
    }
  }

  private doWrite(t: Tracker, len: number): void {
    // From an event inside this connection's own write(): the offsets would not be known yet.
    if (t.writing > 0) return;
    const c = t.conn;
    const mayWrite = !t.closeCalled && SENDABLE.has(c.state);
    const data = patternBytes(t.hash, t.written, len);
    let n: number | undefined;
    t.writing = len;
    try {
      n = c.write(data);
    } catch (err) {
      t.writing = 0;
      if (!(err instanceof TcpError) || err.code !== 'EPIPE') {
        this.violation(`conn #${t.id}: write threw ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      } else if (mayWrite) {
        this.violation(`conn #${t.id}: write in ${c.state} (no CLOSE yet) threw ${err.message}`);
      }
      return;
    }
    if (!mayWrite) this.violation(`conn #${t.id}: write accepted in ${c.state} after CLOSE=${t.closeCalled}`);
    if (!Number.isInteger(n) || n < 0 || n > len) this.violation(`conn #${t.id}: write returned ${n} for ${len} bytes`);
    t.written += n;
    t.writing = 0;
    this.stats.bytesWritten += n;
  }

  private doRead(t: Tracker, max: number | undefined): void {
    // From an event inside this connection's own read(): its bytes are not accounted yet.
    if (t.reading) return;
    const c = t.conn;
    const before = c.readableLength;
    let got: Uint8Array | null = null;
    t.reading = true;
    try {
      got = c.read(max);
    } catch (err) {
      t.reading = false;
      this.violation(`conn #${t.id}: read threw ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      return;
    }
    t.reading = false;
    if (got === null) {
      if (before > 0) this.violation(`conn #${t.id}: read returned null with ${before} bytes readable`);
      return;
    }
    if (got.length === 0 && (max === undefined || max > 0)) this.violation(`conn #${t.id}: read returned 0 bytes`);
    if (max !== undefined && got.length > max) this.violation(`conn #${t.id}: read returned ${got.length} > max ${max}`);
    this.checkDelivered(t, got);
    if (this.opts.sabotage === 'duplicate-read' && !this.sabotaged && got.length > 0) {
      this.sabotaged = true;
      this.checkDelivered(t, got);
    }
  }

  /** What the application read must continue the peer's stream exactly. */
  private checkDelivered(t: Tracker, got: Uint8Array): void {
    const c = t.conn;
    const peer = this.peerWriter(c);
    const h = keyHash(streamKey(c.remoteAddress, c.remotePort, c.localAddress, c.localPort, c.irs));
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== patternByte(h, t.read + i)) {
        this.violation(`conn #${t.id} (${t.side.name} ${c.state}): byte ${t.read + i} of the stream read is ${got[i]}, ` +
          `the peer's pattern has ${patternByte(h, t.read + i)} there (data corrupted, duplicated, reordered or skipped)`);
        break;
      }
    }
    t.read += got.length;
    this.stats.bytesRead += got.length;
    const written = peer?.written ?? 0;
    if (!t.taintData && t.read > written) {
      this.violation(`conn #${t.id}: read ${t.read} bytes but the peer wrote only ${written}`);
    }
  }

  private doClose(t: Tracker, discardInput: boolean): void {
    const c = t.conn;
    const st = c.state;
    this.call(`conn #${t.id}: close`, () => c.close(discardInput ? { discardInput: true } : undefined), []);
    if (!t.closeCalled && FIN_QUEUEING.has(st)) t.finQueued = true;
    t.closeCalled = true;
  }

  // ---------------------------------------------------------------------------- invariants

  private checkAll(): void {
    for (const side of this.sides) {
      const live = side.stack.connections() as Connection[];
      for (const c of live) {
        if (c.state === 'CLOSED') this.violation(`${side.name}: the stack holds a CLOSED connection ${c.localPort}→${c.remotePort}`);
        this.tracker(side, c);
      }
      if (side.stack.counters.internalErrors !== 0) {
        this.violation(`${side.name}: counters.internalErrors = ${side.stack.counters.internalErrors}: ${side.internal.join('; ')}`);
      }
    }
    const liveSets = this.sides.map((s) => new Set(s.stack.connections()));
    for (const t of this.trackers.values()) this.checkConn(t, liveSets[t.side.idx]!.has(t.conn));
    // Forget what can no longer change.
    for (const [c, t] of this.trackers) {
      if (c.state === 'CLOSED' && (!t.held || c.readableLength === 0)) this.trackers.delete(c);
    }
    if (this.held.length > 64) this.held = this.held.filter((t) => t.conn.state !== 'CLOSED' || t.conn.readableLength > 0);
    if (this.violations.length > 0) throw new Violation(this.violations.join('\n'));
  }

  private checkConn(t: Tracker, live: boolean): void {
    const c = t.conn;
    const st = c.state;
    const id = `conn #${t.id} (${t.side.name} ${c.localAddress}:${c.localPort}→${c.remoteAddress}:${c.remotePort} ${st})`;
    if (live) {
      const traced = this.tupleState.get(tupleOf(t.side, c.localAddress, c.localPort, c.remoteAddress, c.remotePort));
      if (traced !== st) this.violation(`${id}: the trace last said ${traced}`);
    } else if (st !== 'CLOSED') {
      this.violation(`${id}: the stack no longer holds it`);
    }
    if (t.closed > 0 && st !== 'CLOSED' && st !== 'TIME-WAIT') this.violation(`${id}: closed event but still in ${st}`);
    if (st === 'CLOSED') {
      this.checkEof(t, id);
      return;
    }
    if (st === 'LISTEN') return;
    const info = c.info();
    // Send side (RFC 9293 §3.3.1: SND.UNA =< SND.NXT).
    if (!seqLeq(c.sndUna, c.sndNxt)) this.violation(`${id}: SND.UNA ${c.sndUna} > SND.NXT ${c.sndNxt}`);
    if (t.lastSndUna !== null && seqLt(c.sndUna, t.lastSndUna)) this.violation(`${id}: SND.UNA moved back ${t.lastSndUna} → ${c.sndUna}`);
    if (t.lastSndNxt !== null && seqLt(c.sndNxt, t.lastSndNxt)) this.violation(`${id}: SND.NXT moved back ${t.lastSndNxt} → ${c.sndNxt}`);
    t.lastSndUna = c.sndUna;
    t.lastSndNxt = c.sndNxt;
    const sent = seqDiff(c.sndNxt, c.iss);
    if (sent < 0 || sent > t.written + 2) this.violation(`${id}: SND.NXT is ISS+${sent} but only ${t.written} bytes were written`);
    const flight = seqDiff(c.sndNxt, c.sndUna);
    if (flight > info.sndBufUsed + 2) this.violation(`${id}: ${flight} in flight but ${info.sndBufUsed} in the send buffer`);
    if (info.sndBufUsed + info.bytesAcked !== t.written) {
      this.violation(`${id}: send buffer ${info.sndBufUsed} + acked ${info.bytesAcked} ≠ written ${t.written}`);
    }
    // Buffers within their bounds.
    if (info.sndBufUsed > info.sndBufSize || info.sndBufSize > t.side.sndMax) {
      this.violation(`${id}: send buffer ${info.sndBufUsed}/${info.sndBufSize}, max ${t.side.sndMax}`);
    }
    if (info.rcvBufUsed > info.rcvBufSize || info.rcvBufSize > t.side.rcvMax) {
      this.violation(`${id}: receive buffer ${info.rcvBufUsed}/${info.rcvBufSize}, max ${t.side.rcvMax}`);
    }
    if (st === 'SYN-SENT') return;
    // Receive side: RCV.NXT only moves forward, and every byte below it was read or is buffered.
    if (t.lastRcvNxt !== null && seqLt(c.rcvNxt, t.lastRcvNxt)) this.violation(`${id}: RCV.NXT moved back ${t.lastRcvNxt} → ${c.rcvNxt}`);
    t.lastRcvNxt = c.rcvNxt;
    const got = seqDiff(c.rcvNxt, seqAdd(c.irs, 1)) - (c.finReceived ? 1 : 0);
    if (got !== t.read + info.rcvBufUsed) {
      this.violation(`${id}: RCV.NXT is IRS+1+${got} but ${t.read} bytes were read and ${info.rcvBufUsed} are buffered`);
    }
    const w = c as unknown as ConnInternals;
    if (w.reasm === undefined || w.recvBuf === undefined) {
      this.violation(`${id}: Connection has no reasm/recvBuf fields: update the fuzzer's white-box check`);
    } else if (!c.finReceived) {
      const free = w.recvBuf.capacity - w.recvBuf.length;
      for (const [s, e] of w.reasm.blocks) {
        if (!seqLt(c.rcvNxt, s) || !seqLt(s, e) || seqDiff(e, c.rcvNxt) > free) {
          this.violation(`${id}: reassembly holds [${s}, ${e}) with RCV.NXT ${c.rcvNxt} and ${free} bytes free in the ring`);
        }
      }
    }
    this.checkEof(t, id);
  }

  /** At EOF the application has read exactly what the peer wrote before its CLOSE. */
  private checkEof(t: Tracker, id: string): void {
    const c = t.conn;
    if (!t.held || t.eofChecked || t.taintFin || !c.finReceived || c.readableLength > 0) return;
    // A RST in a synchronized state discards unread data (RFC 9293 §3.10.7.4): nothing to compare.
    if (t.closedCode === 'ECONNRESET') return;
    t.eofChecked = true;
    const peer = this.peerWriter(c);
    if (peer === undefined || !peer.finQueued) {
      this.violation(`${id}: FIN received but the peer never closed`);
    } else if (!t.taintData && t.read !== peer.written) {
      this.violation(`${id}: EOF after ${t.read} bytes but the peer wrote ${peer.written} before its FIN`);
    }
  }

  // ---------------------------------------------------------------------------- actions

  private liveCount(): number {
    return this.sides[0].stack.connections().length + this.sides[1].stack.connections().length;
  }

  private randomHeld(preferOpen = true): Tracker | undefined {
    if (this.held.length === 0) return undefined;
    if (preferOpen && chance(this.rng, 0.9)) {
      const open = this.held.filter((t) => t.conn.state !== 'CLOSED');
      if (open.length > 0) return pick(this.rng, open);
    }
    return pick(this.rng, this.held);
  }

  private connect(from: Side, to: Side, port: number, localPort: number | undefined, v6: boolean): void {
    const host = v6 ? to.v6 : to.v4;
    const c = this.call(`${from.name}.tcpConnect`, () => from.stack.tcpConnect(
      localPort === undefined ? { host, port } : { host, port, localPort }), ['EADDRINUSE', 'EADDRNOTAVAIL']);
    if (c !== undefined) this.hold(from, c as Connection);
    this.current += c === undefined ? ' → refused locally' : ` → ${(c as Connection).localPort}`;
  }

  private actConnect(fixed: boolean): void {
    const rng = this.rng;
    if (this.liveCount() >= MAX_LIVE) return;
    const from = pick(rng, this.sides);
    const to = this.sides[1 - from.idx]!;
    const open = to.listeners.filter((l) => !l.closed);
    const port = open.length > 0 && chance(rng, 0.85) ? pick(rng, open).port : pick(rng, LISTEN_PORTS);
    const localPort = fixed ? pick(rng, FIXED_PORTS) : undefined;
    const v6 = chance(rng, 0.3);
    this.current = `${from.name} connect → ${to.name}:${port}${fixed ? ` from ${localPort}` : ''} ${v6 ? 'v6' : 'v4'}`;
    this.connect(from, to, port, localPort, v6);
  }

  private actSimultaneousOpen(): void {
    if (this.liveCount() >= MAX_LIVE - 1) return;
    const [a, b] = this.sides;
    const pa = pick(this.rng, SIMOPEN_PORTS);
    const pb = pick(this.rng, SIMOPEN_PORTS);
    const v6 = chance(this.rng, 0.3);
    this.current = `simultaneous open a:${pa} ⇄ b:${pb} ${v6 ? 'v6' : 'v4'}`;
    this.connect(a, b, pb, pa, v6);
    this.connect(b, a, pa, pb, v6);
  }

  private actListen(): void {
    const rng = this.rng;
    const side = pick(rng, this.sides);
    const port = pick(rng, LISTEN_PORTS);
    const host = pick(rng, [undefined, undefined, '0.0.0.0', side.v4, side.v6]);
    const backlog = pick(rng, [undefined, 1, 2, 8]);
    const queue = chance(rng, 0.4);
    this.current = `${side.name} listen :${port} host=${host} backlog=${backlog} ${queue ? 'accept-queue' : 'handoff'}`;
    const opts = { port, ...(host !== undefined ? { host } : {}), ...(backlog !== undefined ? { backlog } : {}) };
    const l = this.call(`${side.name}.tcpListen`, () => side.stack.tcpListen(opts), ['EADDRINUSE']);
    if (l === undefined) {
      this.current += ' → EADDRINUSE';
      return;
    }
    const rec: ListenerRec = { l, port, host: host ?? '*', queue, closed: false };
    if (!queue) l.onConnection = (c) => this.hold(side, c as Connection);
    side.listeners.push(rec);
  }

  private actCloseListener(): void {
    const side = pick(this.rng, this.sides);
    const open = side.listeners.filter((l) => !l.closed);
    if (open.length === 0) return;
    const rec = pick(this.rng, open);
    this.current = `${side.name} close listener :${rec.port} (${rec.host})`;
    rec.closed = true;
    this.call('listener.close', () => rec.l.close(), []);
    side.listeners = side.listeners.filter((l) => !l.closed);
  }

  private actAccept(): void {
    const side = pick(this.rng, this.sides);
    const qs = side.listeners.filter((l) => l.queue && !l.closed);
    if (qs.length === 0) return;
    const rec = pick(this.rng, qs);
    const c = this.call('accept', () => rec.l.accept(), []);
    this.current = `${side.name} accept :${rec.port} → ${c ? `${(c as Connection).remotePort} ${c.state}` : 'none'}`;
    if (c) this.hold(side, c as Connection);
  }

  private actWrite(): void {
    const t = this.randomHeld();
    if (t === undefined) return;
    const rng = this.rng;
    const len = pick(rng, [() => rng.int(1, 10), () => rng.int(10, 1500), () => rng.int(1500, 20000), () => rng.int(20000, 100000)])();
    this.current = `#${t.id} ${t.side.name} write ${len} (${t.conn.state})`;
    this.doWrite(t, len);
  }

  private actRead(): void {
    const t = this.randomHeld();
    if (t === undefined) return;
    const max = pick(this.rng, [undefined, undefined, 0, 1, this.rng.int(1, 5000)]);
    this.current = `#${t.id} ${t.side.name} read max=${max} (${t.conn.state}, ${t.conn.readableLength} readable)`;
    this.doRead(t, max);
  }

  private actClose(discard: boolean): void {
    const t = this.randomHeld();
    if (t === undefined) return;
    this.current = `#${t.id} ${t.side.name} close${discard ? ' (discardInput)' : ''} (${t.conn.state})`;
    this.doClose(t, discard);
  }

  /** Both ends of one connection close in the same instant: FINs cross (CLOSING, RFC 9293 §3.6). */
  private actClosePair(): void {
    for (const t of this.held) {
      if (t.conn.state !== 'ESTABLISHED' && t.conn.state !== 'SYN-RECEIVED') continue;
      const peer = this.peerWriter(t.conn);
      if (peer === undefined || !peer.held || peer.conn.state === 'CLOSED') continue;
      this.current = `close pair #${t.id} (${t.conn.state}) + #${peer.id} (${peer.conn.state})`;
      this.doClose(t, false);
      this.doClose(peer, false);
      return;
    }
  }

  private actAbort(): void {
    const t = this.randomHeld();
    if (t === undefined) return;
    this.current = `#${t.id} ${t.side.name} abort (${t.conn.state})`;
    this.call(`conn #${t.id}: abort`, () => t.conn.abort(), []);
  }

  private actOptions(): void {
    const t = this.randomHeld();
    if (t === undefined) return;
    const rng = this.rng;
    const c = t.conn;
    switch (rng.int(0, 2)) {
      case 0: {
        const on = chance(rng, 0.7);
        this.current = `#${t.id} setNoDelay(${on})`;
        this.call('setNoDelay', () => c.setNoDelay(on), []);
        break;
      }
      case 1: {
        const on = chance(rng, 0.8);
        const delay = pick(rng, [undefined, 100, 1000, 5000]);
        this.current = `#${t.id} setKeepAlive(${on}, ${delay})`;
        this.call('setKeepAlive', () => c.setKeepAlive(on, delay), []);
        break;
      }
      default: {
        const ms = pick(rng, [0, 500, 3000, 20000]);
        this.current = `#${t.id} setUserTimeout(${ms})`;
        this.call('setUserTimeout', () => c.setUserTimeout(ms), []);
      }
    }
  }

  private randomFlags(): number {
    const rng = this.rng;
    if (chance(rng, 0.05)) return rng.int(0, 255);
    let f = pick(rng, [ACK, ACK, ACK, ACK | PSH, ACK | FIN, RST, RST | ACK, SYN, SYN | ACK, FIN, 0, SYN | FIN]);
    if (chance(rng, 0.05)) f |= URG;
    if (chance(rng, 0.05)) f |= ECE | CWR;
    return f;
  }

  private synOptions(): TcpOptions {
    const rng = this.rng;
    const o: TcpOptions = {};
    if (chance(rng, 0.8)) o.mss = pick(rng, [1460, 1460, 536, 1220, 64, 65535, 1]);
    if (chance(rng, 0.6)) o.wscale = pick(rng, [0, 7, 14, 15]);
    if (chance(rng, 0.6)) o.sackPermitted = true;
    if (chance(rng, 0.6)) o.timestamp = { val: rng.nextU32(), ecr: chance(rng, 0.5) ? 0 : rng.nextU32() };
    return o;
  }

  /** A well-formed segment at a connection, a listener or a closed port of one stack. */
  private actInject(): void {
    const rng = this.rng;
    const side = pick(rng, this.sides);
    const other = this.sides[1 - side.idx]!;
    const conns = side.stack.connections() as Connection[];
    const r = rng.next();
    let src: string;
    let dst: string;
    let spec: SegmentSpec;
    if (conns.length > 0 && r < 0.75) {
      const c = pick(rng, conns);
      src = c.remoteAddress;
      dst = c.localAddress;
      const flags = this.randomFlags();
      const wnd = Math.max(1, c.info().rcvWnd);
      const seq = pick(rng, [
        () => c.rcvNxt, () => c.rcvNxt, () => seqAdd(c.rcvNxt, rng.int(0, wnd - 1)), () => seqAdd(c.rcvNxt, wnd),
        () => seqAdd(c.rcvNxt, wnd + rng.int(1, 3000)), () => seqAdd(c.rcvNxt, -rng.int(1, 3000)),
        () => seqAdd(c.rcvNxt, -rng.int(3000, 0x7fffffff)), () => seqAdd(c.rcvNxt, rng.int(70000, 0x7fffffff)),
        () => c.irs, () => seqAdd(c.rcvNxt, -1), () => rng.nextU32(),
      ])();
      const maxSnd = Math.max(1, c.maxSndWnd);
      const ack = pick(rng, [
        () => c.sndUna, () => c.sndNxt, () => seqAdd(c.sndUna, rng.int(0, Math.max(0, seqDiff(c.sndNxt, c.sndUna)))),
        () => seqAdd(c.sndNxt, rng.int(1, 3000)), () => seqAdd(c.sndUna, -rng.int(1, maxSnd)),
        () => seqAdd(c.sndUna, -maxSnd - rng.int(1, 3000)), () => c.iss, () => seqAdd(c.iss, 1), () => rng.nextU32(),
      ])();
      const options: TcpOptions = flags & SYN ? this.synOptions() : {};
      if (!(flags & SYN)) {
        if (chance(rng, 0.7)) {
          const val = this.lastTs.get(`${src}|${c.remotePort}|${dst}|${c.localPort}`) ?? rng.nextU32();
          const ecr = this.lastTs.get(`${dst}|${c.localPort}|${src}|${c.remotePort}`) ?? 0;
          options.timestamp = {
            val: seqAdd(val, pick(rng, [0, 0, 1, 100, -1, -100000, rng.nextU32()])),
            ecr: pick(rng, [ecr, ecr, seqAdd(ecr, -rng.int(0, 1000)), 0, rng.nextU32()]),
          };
        }
        if (flags & ACK && chance(rng, 0.3)) {
          const n = rng.int(1, 4);
          const span = Math.max(1, seqDiff(c.sndNxt, c.sndUna));
          options.sack = [];
          for (let i = 0; i < n; i++) {
            const l = seqAdd(c.sndUna, rng.int(-2000, span + 2000));
            options.sack.push(chance(rng, 0.9) ? [l, seqAdd(l, rng.int(1, span))] : [l, seqAdd(l, -rng.int(0, 100))]);
          }
        }
      }
      // Payload: the sender's pattern at its stream offset, mostly within what the peer wrote.
      let len = chance(rng, 0.5) ? 0 : pick(rng, [1, rng.int(1, 100), rng.int(100, 1400)]);
      const irs = flags & SYN && (c.state === 'SYN-SENT' || c.state === 'LISTEN') ? seq : c.irs;
      const dataSeq = flags & SYN ? seqAdd(seq, 1) : seq;
      const off = seqDiff(dataSeq, seqAdd(irs, 1));
      const t = this.tracker(side, c);
      const written = this.peerWriter(c, irs)?.written ?? 0;
      if (len > 0 && off + len > written && chance(rng, 0.8)) len = Math.max(0, Math.min(len, written - off));
      if (len > 0 && off + len > written && !t.taintData) {
        t.taintData = true;
        this.stats.tainted++;
      }
      if (flags & FIN) t.taintFin = true;
      const hash = keyHash(streamKey(src, c.remotePort, dst, c.localPort, irs));
      const payload = patternBytes(hash, off, len);
      spec = { srcPort: c.remotePort, dstPort: c.localPort, seq, ack, flags, window: pick(rng, [0, 1, 512, 65535, rng.int(0, 65535)]), options, payload };
      this.current = `inject → ${side.name} #${t.id} (${c.state}) ${flagStr(flags)} seq=rcv${fmtOff(seqDiff(seq, c.rcvNxt))} ` +
        `ack=una${fmtOff(seqDiff(ack, c.sndUna))} len=${len} win=${spec.window} ${JSON.stringify(options)}`;
    } else {
      const v6 = chance(rng, 0.3);
      src = v6 ? other.v6 : other.v4;
      dst = v6 ? side.v6 : side.v4;
      const open = side.listeners.filter((l) => !l.closed);
      const toListener = open.length > 0 && r < 0.9;
      const dstPort = toListener ? pick(rng, open).port : pick(rng, [...LISTEN_PORTS, ...FIXED_PORTS, 7, rng.int(1, 65535)]);
      const srcPort = pick(rng, [...FIXED_PORTS, ...SIMOPEN_PORTS, rng.int(1024, 65535)]);
      const flags = toListener && chance(rng, 0.7) ? SYN : this.randomFlags();
      spec = {
        srcPort, dstPort, seq: rng.nextU32(), ack: rng.nextU32(), flags, window: rng.int(0, 65535),
        options: flags & SYN ? this.synOptions() : {}, payload: chance(rng, 0.2) ? new Uint8Array(rng.int(1, 200)) : new Uint8Array(0),
      };
      this.current = `inject → ${side.name} ${toListener ? 'listener' : 'port'} ${src}:${srcPort}→${dst}:${dstPort} ${flagStr(flags)} ` +
        `len=${(spec.payload as Uint8Array).length} ${JSON.stringify(spec.options)}`;
    }
    let packet: Uint8Array;
    if (chance(rng, 0.04)) {
      const bytes = Array.from({ length: 4 * rng.int(1, 10) }, () => rng.int(0, 255));
      packet = tcpWithRawOptions(src, dst, spec, bytes);
      this.current += ` raw options ${bytes.join(',')}`;
    } else {
      packet = tcpPacket(src, dst, spec);
    }
    this.stats.injected++;
    this.forgedTuples.add(pairKey(src, spec.srcPort ?? 0, dst, spec.dstPort ?? 0));
    side.input(packet);
  }

  /** Let virtual time pass, in slices, checking the invariants after each. */
  /**
   * Packets the stacks sent in the current slice of time (or user step). Past MAX_SLICE_PACKETS the
   * link carries nothing more: a storm that grows (an ACK loop that duplication multiplies) would
   * otherwise run for ever inside one instant; the slice then fails.
   */
  private slicePackets = 0;

  private allowSend(): boolean {
    return ++this.slicePackets <= MAX_SLICE_PACKETS;
  }

  private checkSlicePackets(pure: number, all: number, what: string): void {
    if (this.slicePackets > this.stats.maxSlicePackets) this.stats.maxSlicePackets = this.slicePackets;
    if (this.slicePackets > MAX_SLICE_PACKETS) {
      this.violation(`${this.stormKind(pure, all)}: more than ${MAX_SLICE_PACKETS} packets in ${what} (the link stopped carrying them); ` +
        this.stormDetail());
    }
    this.slicePackets = 0;
  }

  private advance(ms: number): void {
    const slices = Math.min(20, Math.max(1, Math.ceil(ms / 50)));
    for (let i = 0; i < slices; i++) {
      this.slicePackets = 0;
      const packets = this.stats.packets;
      const acks = this.stats.pureAcks;
      try {
        this.clock.advanceSync(ms / slices);
        const n = (this.clock as unknown as { steps?: number }).steps ?? 0;
        if (n > this.stats.maxCallbacks) this.stats.maxCallbacks = n;
      } catch (err) {
        this.violation(`${this.stormKind(this.stats.pureAcks - acks, this.stats.packets - packets)} (livelock: ` +
          `${err instanceof Error ? err.message : String(err)}); ${this.stormDetail()}`);
      }
      // Pure ACKs answer data, and a few timers: far more of them than of anything else in one slice
      // is a storm even when it does not livelock the clock.
      const pure = this.stats.pureAcks - acks;
      const other = this.stats.packets - packets - pure;
      this.checkSlicePackets(pure, pure + other, `${(ms / slices).toFixed(1)} ms`);
      if (pure > 2 * other + STORM_ACKS_PER_SLICE) {
        this.violation(`${this.stormKind(pure, pure + other)}: ${pure} pure ACKs and ${other} other packets in ${(ms / slices).toFixed(1)} ms; ` +
          this.stormDetail());
      }
      this.checkAll();
    }
  }

  /**
   * What a storm is: an ACK loop when nearly all pure ACKs — two ends each answering the other's
   * unacceptable segment with an ACK (RFC 9293 §3.10.7.4 first step) — said with whether the
   * connection of the last packet had seen a forged segment (which is how two ends desynchronize).
   */
  private stormKind(pureAcks: number, packets: number): string {
    if (pureAcks <= 0.9 * packets) return 'packet storm';
    const l = this.lastTuple;
    const c = l === null ? undefined : (l.side.stack.connections() as Connection[]).find((x) =>
      x.localAddress === l.src && x.localPort === l.sport && x.remoteAddress === l.dst && x.remotePort === l.dport);
    return c !== undefined && this.isForged(c) ? 'ACK loop (desynchronized by a forged segment)' : 'ACK loop (no forged segment on this connection)';
  }

  private stormDetail(): string {
    const n = this.lastPackets.length;
    const at = this.lastPacketAt % n;
    const lastSent = [...this.lastPackets.slice(at), ...this.lastPackets.slice(0, at)];
    return `last packets sent: ${lastSent.join(' | ')}; connections: ${this.describeLive()}`;
  }

  private actAdvance(kind: 'small' | 'medium' | 'large'): void {
    const rng = this.rng;
    const msl = Math.max(this.sides[0].mslMs, this.sides[1].mslMs);
    const ms = kind === 'small' ? rng.int(0, 30) : kind === 'medium' ? rng.int(30, 1000) : rng.int(1000, 2 * msl + 1000);
    this.current = `advance ${ms} ms`;
    this.advance(ms);
  }

  private readonly actions: Array<[number, string, () => void]> = [
    [8, 'connect', () => this.actConnect(false)],
    [3, 'connect-fixed', () => this.actConnect(true)],
    [2, 'simultaneous-open', () => this.actSimultaneousOpen()],
    [2, 'listen', () => this.actListen()],
    [0.5, 'close-listener', () => this.actCloseListener()],
    [3, 'accept', () => this.actAccept()],
    [14, 'write', () => this.actWrite()],
    [10, 'read', () => this.actRead()],
    [3, 'close', () => this.actClose(false)],
    [2, 'close-discard', () => this.actClose(true)],
    [2, 'close-pair', () => this.actClosePair()],
    [1, 'abort', () => this.actAbort()],
    [2, 'options', () => this.actOptions()],
    [12, 'inject', () => this.actInject()],
    [20, 'advance-small', () => this.actAdvance('small')],
    [5, 'advance-medium', () => this.actAdvance('medium')],
    [1.5, 'advance-large', () => this.actAdvance('large')],
  ];
  private readonly totalWeight = this.actions.reduce((s, a) => s + a[0], 0);

  /** One random step; throws Violation when an invariant breaks. */
  runStep(): void {
    this.step++;
    let x = this.rng.next() * this.totalWeight;
    let chosen = this.actions[this.actions.length - 1]!;
    for (const a of this.actions) {
      x -= a[0];
      if (x < 0) {
        chosen = a;
        break;
      }
    }
    this.current = chosen[1];
    this.stats.actions[chosen[1]] = (this.stats.actions[chosen[1]] ?? 0) + 1;
    this.slicePackets = 0;
    const packets = this.stats.packets;
    const acks = this.stats.pureAcks;
    try {
      chosen[2]();
      this.checkSlicePackets(this.stats.pureAcks - acks, this.stats.packets - packets, 'one step');
    } finally {
      const line = `${this.step}: ${this.current}`;
      this.recent.push(line);
      if (this.recent.length > RECENT) this.recent.shift();
      this.opts.log?.(line);
    }
    if (this.opts.sabotage === 'rcv-nxt-back' && !this.sabotaged) {
      const c = this.held.find((t) => t.conn.state === 'ESTABLISHED' && t.lastRcvNxt !== null)?.conn;
      if (c !== undefined) {
        this.sabotaged = true;
        c.rcvNxt = seqAdd(c.rcvNxt, -1);
      }
    }
    this.checkAll();
  }

  /**
   * The end: every application closes what it holds (abort when unread data remains, as a socket's
   * close() does), listeners close, and virtual time runs until no TCB is left but in FIN-WAIT-2.
   */
  runEndPhase(): void {
    this.inEndPhase = true;
    this.current = 'end phase: close everything';
    this.opts.log?.(this.current);
    for (const t of this.held) {
      const c = t.conn;
      if (c.state === 'CLOSED') continue;
      if (c.readableLength > 0) this.call(`conn #${t.id}: abort`, () => c.abort(), []);
      else this.doClose(t, true);
    }
    for (const side of this.sides) {
      for (const rec of side.listeners) this.call('listener.close', () => rec.l.close(), []);
      side.listeners = [];
    }
    this.checkAll();
    // At most an hour of virtual time: the longest timers (15 retransmissions backed off to 120 s,
    // nine keep-alive probes 75 s apart) end well within it. After ten minutes nothing but probes
    // (one per connection every 75 s or more) is left to send: more is a packet storm, such as an
    // ACK loop between two desynchronized ends (each answering the other's unacceptable segment,
    // RFC 9293 §3.10.7.4 first step).
    for (let i = 0; i < END_PHASE_SLICES; i++) {
      const before = this.stats.packets;
      const acks = this.stats.pureAcks;
      this.advance(END_PHASE_SLICE_MS);
      const sent = this.stats.packets - before;
      if (i * END_PHASE_SLICE_MS >= STORM_AFTER_MS && sent > STORM_PACKETS) {
        this.violation(`${this.stormKind(this.stats.pureAcks - acks, sent)}: ${sent} packets in ${END_PHASE_SLICE_MS} ms, ` +
          `${Math.round((i * END_PHASE_SLICE_MS) / 60000)} min after every application closed; ${this.stormDetail()}`);
        this.checkAll();
      }
      const all = this.sides.flatMap((x) => x.stack.connections());
      if (all.every((c) => c.state === 'FIN-WAIT-2')) break;
    }
    const left = this.leftovers().map((c) => `${this.trackers.get(c)?.side.name} ${c.localPort}→${c.remotePort} ${c.state}`);
    if (left.length > 0) this.violation(`TCBs left an hour after every application closed: ${left.join(', ')}`);
    this.checkAll();
  }

  private describeLive(): string {
    return this.sides.flatMap((x) => (x.stack.connections() as Connection[]).map((c) =>
      `${x.name} ${c.localAddress}:${c.localPort}→${c.remoteAddress}:${c.remotePort} ${c.state} ` +
      `SND.UNA=${c.sndUna} SND.NXT=${c.sndNxt} RCV.NXT=${c.rcvNxt}${this.isForged(c) ? ' (forged segments seen)' : ''}`)).join('; ');
  }

  /**
   * TCBs that should be gone. FIN-WAIT-2 has no timer in RFC 9293. A connection that received a
   * forged segment (or whose peer did) may be stuck by design of the RFC: an in-window segment with
   * a later SEG.SEQ and a zero window moves SND.WL1 past anything the real peer will send, so its
   * window updates are ignored from then on (RFC 9293 §3.10.7.4 fifth step), while its answers to
   * zero-window probes keep the connection alive indefinitely (RFC 1122 §4.2.2.17).
   */
  private isForged(c: Connection): boolean {
    return this.forgedTuples.has(pairKey(c.localAddress, c.localPort, c.remoteAddress, c.remotePort));
  }

  private leftovers(): Connection[] {
    return this.sides.flatMap((s) => s.stack.connections() as Connection[])
      .filter((c) => c.state !== 'FIN-WAIT-2' && !this.isForged(c));
  }

  failure(err: unknown, step: number): Failure {
    const message = err instanceof Violation ? err.message
      : `exception escaped: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
    return { seed: this.seed, step, message, recent: [...this.recent], episodeSteps: this.opts.steps ?? DEFAULT_STEPS };
  }
}

/** A 4-tuple the same from either end. */
function pairKey(a: string, ap: number, b: string, bp: number): string {
  const x = `${a}|${ap}`;
  const y = `${b}|${bp}`;
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

function flagStr(f: number): string {
  const names: Array<[number, string]> = [[SYN, 'SYN'], [FIN, 'FIN'], [RST, 'RST'], [PSH, 'PSH'], [ACK, 'ACK'], [URG, 'URG'], [ECE, 'ECE'], [CWR, 'CWR']];
  const s = names.filter(([b]) => f & b).map(([, n]) => n).join(',');
  return s === '' ? '(none)' : s;
}

function fmtOff(n: number): string {
  return n >= 0 ? `+${n}` : `${n}`;
}

/** One episode: fresh stacks and path from `seed`, `steps` random steps, then the end phase. */
export function runEpisode(seed: number, opts: EpisodeOptions = {}): EpisodeResult {
  const steps = opts.steps ?? DEFAULT_STEPS;
  const ep = new Episode(seed, opts);
  let failure: Failure | null = null;
  let completed = true;
  try {
    opts.log?.(`seed ${seed}: ${ep.setup}`);
    for (let i = 0; i < steps; i++) {
      if (opts.deadline !== undefined && Date.now() > opts.deadline) {
        completed = false;
        break;
      }
      ep.runStep();
    }
  } catch (err) {
    failure = ep.failure(err, ep.step);
  }
  if (failure === null && completed && !opts.noEndPhase) {
    try {
      ep.runEndPhase();
    } catch (err) {
      failure = ep.failure(err, 0);
    }
  }
  return { seed, steps: ep.step, failure, coverage: ep.coverage, stats: ep.stats, virtualMs: ep.clock.now() };
}

export interface FuzzSummary {
  seeds: number;
  steps: number;
  elapsedMs: number;
  coverage: Coverage;
  stats: EpisodeStats;
  failures: Failure[];
}

export interface FuzzRunOptions {
  /** Wall-clock budget. */
  seconds: number;
  firstSeed?: number;
  steps?: number;
  /** Stop at the first failure (default true). */
  stopOnFailure?: boolean;
  onEpisode?: (r: EpisodeResult, summary: FuzzSummary) => void;
}

export function emptySummary(): FuzzSummary {
  return {
    seeds: 0, steps: 0, elapsedMs: 0, coverage: new Coverage(), failures: [],
    stats: { connections: 0, injected: 0, packets: 0, pureAcks: 0, bytesWritten: 0, bytesRead: 0, maxCallbacks: 0, maxSlicePackets: 0, actions: {}, tainted: 0 },
  };
}

export function addEpisode(s: FuzzSummary, r: EpisodeResult): void {
  s.seeds++;
  s.steps += r.steps;
  s.coverage.merge(r.coverage);
  s.stats.connections += r.stats.connections;
  s.stats.injected += r.stats.injected;
  s.stats.packets += r.stats.packets;
  s.stats.pureAcks += r.stats.pureAcks;
  s.stats.bytesWritten += r.stats.bytesWritten;
  s.stats.bytesRead += r.stats.bytesRead;
  s.stats.maxCallbacks = Math.max(s.stats.maxCallbacks, r.stats.maxCallbacks);
  s.stats.maxSlicePackets = Math.max(s.stats.maxSlicePackets, r.stats.maxSlicePackets);
  s.stats.tainted += r.stats.tainted;
  for (const [k, v] of Object.entries(r.stats.actions)) s.stats.actions[k] = (s.stats.actions[k] ?? 0) + v;
  if (r.failure) s.failures.push(r.failure);
}

/** Episodes with seeds firstSeed, firstSeed+1, … until the time is up (async: yields between them). */
export async function runFuzz(o: FuzzRunOptions): Promise<FuzzSummary> {
  const start = Date.now();
  const deadline = start + o.seconds * 1000;
  const summary = emptySummary();
  let seed = o.firstSeed ?? 1;
  // Bounded in time (deadline) and in count (2^31 seeds, never reached).
  while (Date.now() < deadline && seed < 0x7fffffff) {
    const r = runEpisode(seed, { deadline, ...(o.steps !== undefined ? { steps: o.steps } : {}) });
    addEpisode(summary, r);
    summary.elapsedMs = Date.now() - start;
    o.onEpisode?.(r, summary);
    if (r.failure && (o.stopOnFailure ?? true)) break;
    seed++;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
  summary.elapsedMs = Date.now() - start;
  return summary;
}

export function formatFailure(f: Failure): string {
  return [
    `FAILED seed ${f.seed} at ${f.step === 0 ? 'the end phase' : `step ${f.step}`}:`,
    f.message,
    'last steps:',
    ...f.recent.map((l) => `  ${l}`),
    `replay: node dist/bench/fuzz.js --seed ${f.seed}${f.episodeSteps !== DEFAULT_STEPS ? ` --steps ${f.episodeSteps}` : ''} --one --log`,
  ].join('\n');
}
