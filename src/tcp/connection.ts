/**
 * One TCP connection: the TCB of RFC 9293 §3.3.1 and the event processing of §3.10, sans-IO.
 *
 * Inputs: user calls (write/read/close/abort), arriving segments (`segmentArrives`) and timer
 * expiry (`onTimer`), each at the host's current time. Outputs: segments handed to
 * `host.transmit`, state changes with their cause, and user events. Nothing here does I/O.
 */
import { ACK, FIN, PSH, RST, SYN, tcpOptionsLength, type TcpOptions, type TcpSegment } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGeq, seqGt, seqLeq, seqLt, seqMax } from '../wire/seq.js';
import { ByteRing } from './buffer.js';
import { RttEstimator, MAX_RTO_MS } from './rto.js';
import { isSynchronized, type TcpState } from './state.js';
import { TcpError, type ConnectionEvents, type TcpConnection, type TcpInfo } from './user.js';
import { Reassembly } from './reassembly.js';
import { Scoreboard, MAX_RECORDS, DUP_THRESH, type SentSegment } from './scoreboard.js';
import { createCongestionControl } from './cc/index.js';
import type { CongestionControl, CongestionControlName } from './cc/types.js';

/** What a connection needs from the stack around it. */
export interface ConnectionHost {
  now(): number;
  /** Encode and send at once; `seg.payload` is only valid during the call. */
  transmit(c: Connection, seg: TcpSegment): void;
  /** The connection's earliest timer changed (see `deadline`). */
  timersChanged(c: Connection): void;
  stateChanged(c: Connection, from: TcpState, to: TcpState, cause: string, rfc: string): void;
  /** The connection reached CLOSED: forget it. */
  released(c: Connection): void;
  /**
   * A passively opened connection completed its handshake: move it from the listener's SYN queue to
   * its accept queue now, even when the user events wait for the end of a burst (the queues bound
   * what a listener admits; RFC 9293 §3.10.7.4, Linux's inet_csk_complete_hashdance).
   */
  passiveAdmitted?(c: Connection): void;
  /** A passively opened connection reached ESTABLISHED: hand it to its listener's user. */
  passiveEstablished(c: Connection): void;
  /**
   * Batched input (LinkEnd.onBurstEnd): true while the host is inside a burst of arriving packets
   * and will call `flushBurst` on this connection after it, when `deferFlush` asked it to.
   */
  inBurst?(): boolean;
  deferFlush?(c: Connection): void;
  /** RFC 5961 §7: may another challenge ACK be sent now? (stack-wide rate limit) */
  challengeAckAllowed(): boolean;
  note(c: Connection, what: string, rfc?: string): void;
}

export interface ConnectionConfig {
  mslMs: number;
  synRetries: number;
  dataRetries: number;
  sendBufferSize: number;
  receiveBufferSize: number;
  /** Largest payload our link can carry in one segment (MTU − IP − TCP headers). */
  linkMss: number;
  /** RFC 9293 §3.7.1 / RFC 6691: the send MSS when the peer sends no MSS option (536 v4, 1220 v6). */
  defaultMss: number;
  /** Auto-tuning caps (bytes); the receive cap also chooses the window scale we offer. */
  receiveBufferMax: number;
  sendBufferMax: number;
  /** Offer (and accept) RFC 7323 window scaling and timestamps and RFC 2018 SACK. */
  windowScaling: boolean;
  timestamps: boolean;
  sack: boolean;
  /** Delayed-ACK timer in ms (RFC 5681 §4.2: at most 500; RFC 9293 §3.8.6.3); 0 ACKs every segment at once. */
  delayedAckMs: number;
  congestionControl: CongestionControlName;
}

// windowScaleFor's last answer: every connection of a stack asks the same question.
let lastScaleFor = -1;
let lastScale = 0;

/** RFC 7323 §2.3: the shift we offer — the smallest that lets the window cover `bufferMax` (≤ 14). */
export function windowScaleFor(bufferMax: number): number {
  if (bufferMax === lastScaleFor) return lastScale;
  let shift = 0;
  while (shift < MAX_WSCALE && MAX_UNSCALED_WINDOW * 2 ** shift < bufferMax) shift++;
  lastScaleFor = bufferMax;
  lastScale = shift;
  return shift;
}

// RFC 9293 §3.8.3 / Linux: the SYN-ACK is retried 5 times before a half-open connection is dropped.
const SYN_ACK_RETRIES = 5;
// RFC 9293 §3.8.4 / Linux defaults: keep-alive probes every 75 s, 9 unanswered probes end it.
const KEEPALIVE_INTERVAL_MS = 75_000;
const KEEPALIVE_PROBES = 9;
// RFC 6928: initial window of 10 segments.
const INITIAL_WINDOW_SEGMENTS = 10;
// The largest window representable without window scaling (RFC 9293 §3.1).
const MAX_UNSCALED_WINDOW = 65535;
// RFC 7323 §2.3: a shift count above 14 is used as 14.
const MAX_WSCALE = 14;
// RFC 7323 §3.2: the timestamp option with its two NOPs takes 12 bytes of every segment.
const TS_OPTION_LENGTH = 12;
// RFC 7323 §5.5: TS.Recent is not trusted for PAWS after 24 days idle.
const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;
// Linux tcp_invalid_ratelimit: at most one ACK per 500 ms per connection in reply to invalid
// segments — those PAWS rejects, and those that draw a challenge ACK (RFC 5961 §7 leaves the
// per-connection limit to the implementation; one shared clock, as Linux's last_oow_ack_time).
const INVALID_ACK_INTERVAL_MS = 500;

/**
 * The most in-order data one ACK covers when a burst is batched: GRO's limit on one merged
 * super-segment (64 KiB), which is how big a Linux receiver's stretch ACKs get.
 */
const BURST_ACK_BYTES = 65536;

/** Linux's test in tcp_oow_rate_limited: no data and no FIN, or a SYN — likely part of an ACK loop. */
function occupiesNoData(seg: TcpSegment): boolean {
  return (seg.payload.length === 0 && !(seg.flags & FIN)) || (seg.flags & SYN) !== 0;
}
// RFC 2018 §3: at most 4 SACK blocks fit in the option space (3 beside timestamps; the encoder cuts).
const MAX_SACK_BLOCKS = 4;
// RFC 8985 §7.2: the worst-case delayed-ACK time added to a probe timeout when one segment is out.
const WC_DEL_ACK_MS = 200;
// RFC 8985 §7.2 (and Linux): the probe timeout is never shorter than this.
const MIN_PTO_MS = 10;
// RFC 8985 §7.2: the probe timeout before any RTT sample.
const INITIAL_PTO_MS = 1000;

/** RFC 7323 §5.2: timestamp comparison modulo 2^32 ("a < b" in the sense of sequence numbers). */
function tsLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Where the connection is in loss recovery (like Linux's Open / Recovery / Loss). */
type RecoveryState = 'open' | 'recovery' | 'loss';

// User events, gathered during processing and delivered once the segments it caused are out
// (so the ACK of a SYN,ACK leaves before the application is woken, as in Linux).
const EV_ESTABLISHED = 1;
const EV_READABLE = 2;
const EV_END = 4;
const EV_WRITABLE = 8;
const EV_CLOSED = 16;

const scratch: TcpSegment = {
  srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0,
  options: {}, payload: new Uint8Array(0),
};
const EMPTY = new Uint8Array(0);
const NO_OPTIONS: TcpOptions = {};
/**
 * The options of every non-SYN segment, shared like `scratch`: `emit` fills them and hands the
 * segment to the host, which encodes it before returning; nothing keeps them. (Per connection,
 * they were two objects each idle connection carried.)
 */
const outOptions: TcpOptions = {};
const outTs = { val: 0, ecr: 0 };

export class Connection implements TcpConnection {
  state: TcpState;
  events: ConnectionEvents = {};
  /** Set for connections created from a listener (affects RST handling in SYN-RECEIVED). */
  readonly passive: boolean;
  /** The listener that made this connection, until it is accepted. Opaque to the connection. */
  listener: unknown = null;
  /** What the host keeps for this connection (its demux entry, timer). Opaque to the connection. */
  hostRef: unknown = undefined;

  // --- RFC 9293 §3.3.1 send sequence variables
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** The peer's window (bytes, already scaled). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** RFC 5961 §5.2: the largest window the peer has offered. */
  maxSndWnd = 0;
  /** RFC 7323 §2: shift applied to the peer's window field / to ours (0 unless both SYNs had WS). */
  private sndWscale = 0;
  private rcvWscale = 0;
  /** What both SYNs agreed on (RFC 7323 §2.2, §3.2; RFC 2018 §2). */
  private wsOk = false;
  private sackOk = false;
  private tsOk = false;
  /** RFC 7323 §4.3: TS.Recent, when it was taken, and Last.ACK.sent. */
  private tsRecent = 0;
  private tsRecentAt = -Infinity;
  private lastAckSent = 0;
  /** RFC 7323 §5.4: a per-connection offset so the timestamp clock reveals nothing. */
  private tsOffset = 0;
  /** The send MSS: the peer's MSS option bounded by our link (RFC 9293 §3.7.1). */
  sndMss: number;

  // --- receive sequence variables
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we last advertised; never moved left (RFC 9293 §3.8.6.2.2). */
  private rcvAdvRight = 0;
  readonly rcvMss: number;

  /** Bytes from `sndBufSeq` on: sent-but-unacknowledged, then not yet sent. */
  private readonly sendBuf: ByteRing;
  /** Sequence number of sendBuf's first byte. */
  private sndBufSeq = 0;
  private readonly recvBuf: ByteRing;
  private readonly reasm = new Reassembly();
  /** Sequence numbers inside the out-of-order blocks most recently received, newest first (RFC 2018 §4). */
  private sackRecent: number[] = [];
  /** A duplicate just received, to report as the first SACK block of the next ACK (RFC 2883). */
  private dsack: [number, number] | null = null;
  /** Receive-buffer auto-tuning: bytes the application read since `rcvSpaceAt`. */
  private rcvCopied = 0;
  private rcvSpaceAt = 0;
  /** Receiver-side RTT estimate from echoed timestamps (ms; 0 when none), for auto-tuning. */
  private rcvRtt = 0;
  /** The largest segment received so far: the "full-sized segment" of RFC 5681 §4.2. */
  private rcvSegMax = 536;
  /** In-order bytes received and not yet acknowledged (delayed ACK). */
  private unackedBytes = 0;
  /** The peer's FIN seen out of order: its sequence number. */
  private pendingFinSeq: number | null = null;

  /** CLOSE was called: a FIN follows the queued data; `finSeq` is its sequence number. */
  private closeRequested = false;
  private finSeq = 0;
  finReceived = false;

  // --- timers (absolute ms; Infinity when not armed)
  private rtxAt = Infinity;
  private persistAt = Infinity;
  private timeWaitAt = Infinity;
  private keepaliveAt = Infinity;
  private userTimeoutAt = Infinity;
  /** Delayed ACK (RFC 5681 §4.2), RACK reordering timer (RFC 8985 §6.2), tail loss probe (§7). */
  private delackAt = Infinity;
  private reoAt = Infinity;
  private tlpAt = Infinity;
  private tlpOutstanding = false;
  private persistBackoff = 0;
  /** Consecutive expiries of the retransmission timer for the same data (RFC 9293 §3.8.3 R2). */
  private retries = 0;
  /** The retransmission timer expired during the handshake (RFC 6298 (5.7)). */
  private synTimedOut = false;
  /** Our SYN has been acknowledged (a CLOSE in SYN-RECEIVED can reach FIN-WAIT-1 before that). */
  private handshakeDone = false;
  private keepaliveProbes = 0;
  private keepaliveEnabled = false;
  private keepaliveDelay = 7_200_000;
  private lastHeardAt = 0;

  readonly rtt = new RttEstimator();
  /** Karn's algorithm (RFC 6298 §3): one timed segment at a time, never a retransmitted one. */
  private rttSeq: number | null = null;
  private rttSentAt = 0;

  // --- loss recovery and congestion control
  /** The retransmission queue with its SACK marks and RACK state (RFC 6675, RFC 8985). */
  private readonly sb = new Scoreboard();
  private readonly cc: CongestionControl;
  private recovery: RecoveryState = 'open';
  /** RFC 6937 PRR state: bytes delivered and sent since recovery began, the flight then, the window. */
  private prrDelivered = 0;
  private prrOut = 0;
  private recoverFs = 1;
  private prrCwnd = 0;
  /** RFC 6675 RecoveryPoint / RFC 6582 "recover": SND.MAX when loss recovery began. */
  private recoveryPoint = 0;
  /** Without SACK, each duplicate ACK stands for one segment that left the network (RFC 5681 §3.2). */
  private renoDupAcks = 0;
  /** Whether cwnd (not the peer's window or the application) limited sending since the last ACK. */
  private cwndLimited = false;
  /** `cwndLimited` as the first ACK of the current burst found it; cleared by the next send round. */
  private burstCwndLimited = false;
  private lastSendAt = 0;
  private recoveries = 0;
  private rtoCount = 0;
  private tlpCount = 0;
  private pawsDrops = 0;
  private challengeAcksSuppressed = 0;
  /** When the last ACK answering an invalid segment (PAWS, challenge) went out. */
  private lastInvalidAckAt = -Infinity;


  private noDelay = false;
  /** Output and user events wait for the end of the current burst (see segmentArrives). */
  private flushDeferred = false;
  private ackNeeded = false;
  private wantWritable = false;
  private userNotified = false;
  private pendingEvents = 0;
  private closedError: TcpError | null = null;
  private firing = false;

  // --- statistics for STATUS / tcpInfo
  private totalRetransmits = 0;
  private bytesAcked = 0;
  private bytesReceived = 0;
  private bytesSent = 0;
  private segsOut = 0;
  private segsIn = 0;

  constructor(
    private readonly host: ConnectionHost,
    private readonly config: ConnectionConfig,
    readonly localAddress: string,
    readonly localPort: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
    passive: boolean,
  ) {
    this.passive = passive;
    this.state = passive ? 'LISTEN' : 'CLOSED';
    this.sendBuf = new ByteRing(config.sendBufferSize);
    this.recvBuf = new ByteRing(config.receiveBufferSize);
    this.rcvMss = config.linkMss;
    this.sndMss = Math.min(config.defaultMss, config.linkMss);
    this.cc = createCongestionControl(config.congestionControl);
  }

  /** cwnd in bytes (0 until the handshake completes). */
  get cwnd(): number {
    return this.handshakeDone ? this.sendCwnd : 0;
  }

  get ssthresh(): number {
    return this.cc.ssthresh;
  }

  /** Payload bytes per full-sized segment: the send MSS less the timestamp option (RFC 6691 §2). */
  private get effMss(): number {
    return Math.max(1, this.sndMss - (this.tsOk ? TS_OPTION_LENGTH : 0));
  }

  /** RFC 6675 pipe; without SACK, duplicate ACKs count as segments that left (RFC 5681 §3.2 (4)). */
  private pipe(): number {
    return Math.max(0, this.sb.pipe - this.renoDupAcks * this.effMss);
  }

  /** Our timestamp clock: ms (RFC 7323 §5.4 allows 1 ms to 1 s per tick) plus the offset. */
  private tsNow(): number {
    return this.tsAt(this.host.now());
  }

  // ======================================================================== state changes

  private setState(to: TcpState, cause: string, rfc: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.host.stateChanged(this, from, to, cause, rfc);
  }

  /** Enter CLOSED: forget timers and buffers, tell the user once, and let the stack release us. */
  private enterClosed(cause: string, rfc: string, error: TcpError | null): void {
    this.rtxAt = this.persistAt = this.timeWaitAt = this.keepaliveAt = this.userTimeoutAt = Infinity;
    this.delackAt = this.reoAt = this.tlpAt = Infinity;
    this.sb.clear();
    this.setState('CLOSED', cause, rfc);
    this.sendBuf.consume(this.sendBuf.length);
    this.sendBuf.release();
    this.host.timersChanged(this);
    this.notifyClosed(error);
    this.host.released(this);
  }

  private notifyClosed(error: TcpError | null): void {
    if (this.userNotified) return;
    this.userNotified = true;
    this.closedError = error;
    this.pendingEvents |= EV_CLOSED;
  }

  /** Deliver gathered user events, in the order a reader expects: established, data, EOF, drain, closed. */
  private fireEvents(): void {
    if (this.firing) return;
    this.firing = true;
    try {
      while (this.pendingEvents !== 0) {
        const ev = this.pendingEvents;
        this.pendingEvents = 0;
        if (ev & EV_ESTABLISHED) {
          // A passive connection that died before anyone saw it is not handed over.
          if (this.passive && this.state === 'CLOSED') return;
          if (this.passive) this.host.passiveEstablished(this);
          this.events.onEstablished?.();
        }
        if (ev & EV_READABLE && this.recvBuf.length > 0) this.events.onReadable?.();
        if (ev & EV_END) this.events.onEnd?.();
        if (ev & EV_WRITABLE) this.events.onWritable?.();
        if (ev & EV_CLOSED) this.events.onClosed?.(this.closedError);
      }
    } finally {
      this.firing = false;
    }
  }

  private enterEstablished(cause: string, rfc: string): void {
    this.setState('ESTABLISHED', cause, rfc);
    this.handshakeComplete();
    if (this.closeRequested) {
      // RFC 9293 §3.10.4: a CLOSE queued in SYN-RECEIVED is processed once ESTABLISHED.
      this.finSeq = this.dataEnd();
      this.setState('FIN-WAIT-1', 'user CLOSE (queued in SYN-RECEIVED)', 'RFC 9293 §3.10.4');
    }
  }

  /** The ACK of our SYN arrived in SYN-RECEIVED, or in FIN-WAIT-1 after a CLOSE there. */
  private completeHandshakeIn(cause: string, rfc: string, ack: number): void {
    if (this.state === 'SYN-RECEIVED') {
      this.enterEstablished(cause, rfc);
      return;
    }
    this.handshakeComplete();
    this.host.note(this, `${cause} (in ${this.state})`, rfc);
    if (this.state === 'FIN-WAIT-1' && seqGt(ack, this.finSeq)) {
      this.setState('FIN-WAIT-2', 'rcv ACK of SYN and FIN', 'RFC 9293 §3.10.7.4');
    }
  }

  /** Our SYN is acknowledged: start the data-transfer machinery and tell the user. */
  private handshakeComplete(): void {
    this.handshakeDone = true;
    this.cc.init(this.effMss, this.initialWindow(), this.host.now());
    this.rcvSpaceAt = this.host.now();
    // RFC 6298 (5.7): a SYN that timed out leaves no sample; start data transfer at RTO = 3 s.
    if (this.synTimedOut) this.rtt.fallBackAfterSynTimeout();
    this.retries = 0;
    this.pendingEvents |= EV_ESTABLISHED;
    if (this.passive) this.host.passiveAdmitted?.(this);
  }

  private enterTimeWait(cause: string): void {
    this.rtxAt = this.persistAt = this.keepaliveAt = this.userTimeoutAt = Infinity;
    this.delackAt = this.reoAt = this.tlpAt = Infinity;
    this.sb.clear();
    this.setState('TIME-WAIT', cause, 'RFC 9293 §3.10.7.4');
    // RFC 9293 §3.4.2: wait 2×MSL so old duplicates die and a lost last ACK can be repeated.
    this.timeWaitAt = this.host.now() + 2 * this.config.mslMs;
    this.host.timersChanged(this);
  }

  private initialWindow(): number {
    // RFC 6928 §2: min(10*MSS, max(2*MSS, 14600)).
    const mss = this.effMss;
    return Math.min(INITIAL_WINDOW_SEGMENTS * mss, Math.max(2 * mss, 14600));
  }

  // ======================================================================== OPEN

  /** Active OPEN (RFC 9293 §3.10.1): send SYN, enter SYN-SENT. */
  openActive(iss: number): void {
    this.initSend(iss);
    this.setState('SYN-SENT', 'user OPEN (active): SYN sent', 'RFC 9293 §3.10.1');
    this.sendSyn();
    this.fireEvents();
  }

  /**
   * A SYN reached a listener (RFC 9293 §3.10.7.2): this new TCB takes it and answers SYN,ACK.
   */
  openPassive(seg: TcpSegment, iss: number): void {
    this.initSend(iss);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.rcvAdvRight = this.rcvNxt;
    this.takeSynOptions(seg);
    this.takeWindow(seg);
    this.lastHeardAt = this.host.now();
    this.segsIn++;
    this.setState('SYN-RECEIVED', 'rcv SYN in LISTEN: SYN,ACK sent', 'RFC 9293 §3.10.7.2');
    this.sendSyn();
  }

  /**
   * SYN cookies (RFC 4987 §3.6): the ACK that returns a cookie reached a listener that kept no TCB.
   * The stack has checked the cookie (our ISS = SEG.ACK − 1) and decoded what the SYN offered into
   * `syn` (MSS; window scale and SACK-permitted if timestamps carried them; the ACK's timestamp).
   * Rebuild the TCB as SYN-RECEIVED held it after our SYN,ACK — same ISS, receive window and
   * timestamp clock (`tsOffset`, the one the SYN,ACK's TSval used) — and let this ACK complete the
   * handshake by the usual rules (RFC 9293 §3.10.7.4), its text and FIN included.
   */
  openFromCookie(seg: TcpSegment, iss: number, syn: TcpOptions, tsOffset: number): void {
    this.initSend(iss);
    this.tsOffset = tsOffset;
    this.sndNxt = seqAdd(iss, 1);
    this.irs = seqAdd(seg.seq, -1);
    this.rcvNxt = seg.seq;
    this.takeSynOptions({ ...seg, options: syn });
    this.rcvAdvRight = seqAdd(this.rcvNxt, this.windowField(SYN));
    this.lastAckSent = this.rcvNxt;
    this.setState('SYN-RECEIVED', 'rcv ACK with a valid SYN cookie: TCB rebuilt', 'RFC 4987 §3.6');
    this.segmentArrives(seg);
  }

  private initSend(iss: number): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndBufSeq = seqAdd(iss, 1);
    this.sb.reset(this.sndBufSeq);
    // RFC 7323 §5.4: start the timestamp clock at an unpredictable value (derived from the ISN,
    // itself a keyed hash of the connection, RFC 6528).
    this.tsOffset = Math.imul(iss ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  }

  /**
   * SND.WND = SEG.WND, SND.WL1 = SEG.SEQ, SND.WL2 = SEG.ACK (RFC 9293 §3.10.7.3–4). The window of
   * a SYN is never scaled (RFC 7323 §2.2).
   */
  private takeWindow(seg: TcpSegment): void {
    this.sndWnd = seg.flags & SYN ? seg.window : seg.window * (1 << this.sndWscale);
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
  }

  /**
   * The peer's SYN: the send MSS is its option (or the default) bounded by ours (RFC 9293 §3.7.1,
   * RFC 6691), and each of window scaling, SACK and timestamps is in effect only if both SYNs carry
   * it (RFC 7323 §2.2, §3.2; RFC 2018 §2). In SYN-SENT this is the SYN,ACK, answering our offer; in
   * LISTEN the SYN, which our SYN,ACK will answer with the same set.
   */
  private takeSynOptions(seg: TcpSegment): void {
    const o = seg.options;
    const peer = o.mss ?? this.config.defaultMss;
    this.sndMss = Math.max(1, Math.min(peer, this.config.linkMss));
    this.wsOk = this.config.windowScaling && o.wscale !== undefined;
    if (this.wsOk) {
      // RFC 7323 §2.3: a shift above 14 is treated as 14.
      const peerShift = o.wscale!;
      if (peerShift > MAX_WSCALE) this.host.note(this, `peer window scale ${peerShift} > 14: using 14`, 'RFC 7323 §2.3');
      this.sndWscale = Math.min(peerShift, MAX_WSCALE);
      this.rcvWscale = windowScaleFor(this.config.receiveBufferMax);
    } else {
      this.sndWscale = this.rcvWscale = 0;
    }
    this.sackOk = this.config.sack && o.sackPermitted === true;
    this.tsOk = this.config.timestamps && o.timestamp !== undefined;
    if (this.tsOk) {
      this.tsRecent = o.timestamp!.val;
      this.tsRecentAt = this.host.now();
    }
  }

  /** Options of our SYN (all we support) or SYN,ACK (what the peer's SYN offered). */
  private synOptions(): TcpOptions {
    const offer = this.state === 'SYN-SENT';
    const c = this.config;
    const o: TcpOptions = { mss: this.rcvMss };
    if (c.sack && (offer || this.sackOk)) o.sackPermitted = true;
    if (c.timestamps && (offer || this.tsOk)) {
      o.timestamp = { val: this.tsNow(), ecr: this.tsOk ? this.tsRecent : 0 };
    }
    if (c.windowScaling && (offer || this.wsOk)) o.wscale = windowScaleFor(c.receiveBufferMax);
    return o;
  }

  private sendSyn(): void {
    const flags = this.state === 'SYN-SENT' ? SYN : SYN | ACK;
    this.emit(this.iss, flags, EMPTY, this.synOptions());
    if (seqGeq(this.sndNxt, seqAdd(this.iss, 1)) === false) this.sndNxt = seqAdd(this.iss, 1);
    if (this.rttSeq === null && this.retries === 0) {
      this.rttSeq = this.iss;
      this.rttSentAt = this.host.now();
    }
    this.armRtx();
  }

  // ======================================================================== SEND / RECEIVE

  get writableSpace(): number {
    return this.canQueueData() ? this.sendBuf.free : 0;
  }

  get readableLength(): number {
    return this.recvBuf.length;
  }

  private canQueueData(): boolean {
    // RFC 9293 §3.10.2: SEND is allowed until the user has CLOSEd.
    return !this.closeRequested &&
      (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED' || this.state === 'ESTABLISHED' ||
        this.state === 'CLOSE-WAIT');
  }

  write(data: Uint8Array): number {
    if (!this.canQueueData()) {
      throw new TcpError('EPIPE', this.closeRequested ? 'connection closing' : `cannot send in ${this.state}`);
    }
    const n = this.sendBuf.push(data);
    // 'writable' follows a write that did not fit, or one that filled the buffer exactly.
    if (n < data.length || this.sendBuf.free === 0) this.wantWritable = true;
    if (n > 0) this.output();
    this.fireEvents();
    return n;
  }

  read(max?: number): Uint8Array | null {
    const have = this.recvBuf.length;
    if (have === 0) return null;
    const out = this.recvBuf.shift(max === undefined ? have : Math.max(0, max));
    if (this.recvBuf.length === 0 && this.reasm.empty) this.recvBuf.release();
    this.tuneReceiveBuffer(out.length);
    // Window update after a read: RFC 9293 §3.8.6.2.2 allows one once the window has grown by
    // min(RCV.BUFF/2, MSS); like Linux (tcp_cleanup_rbuf) we send it only when that also at least
    // doubles what the peer last heard, so a steady reader does not double the ACK count.
    const promised = this.promisedWindow();
    const now = this.advertisableWindow();
    if (isSynchronized(this.state) && this.state !== 'TIME-WAIT' && !this.finReceived &&
      now - promised >= this.swsStep() && now >= 2 * promised) {
      this.ackNeeded = true;
      this.output();
    }
    this.fireEvents();
    return out;
  }

  /**
   * Receive-buffer auto-tuning (Linux's dynamic right-sizing, tcp_rcv_space_adjust): once per RTT,
   * if the application read more than a quarter of the buffer in that RTT, grow the buffer to four
   * times that amount — twice what the sender moves per RTT, and twice again so slow start can
   * double — up to the configured maximum. Only with window scaling can the window follow.
   */
  private tuneReceiveBuffer(n: number): void {
    if (!this.wsOk) return;
    this.rcvCopied += n;
    const now = this.host.now();
    const rtt = Math.max(this.rcvRtt > 0 ? this.rcvRtt : this.rtt.srtt, 1);
    if (now - this.rcvSpaceAt < rtt) return;
    // Powers of two: few distinct sizes, so drained buffers are reused (buffer.ts pool).
    const want = Math.min(2 ** Math.ceil(Math.log2(Math.max(4 * this.rcvCopied, 1))), this.config.receiveBufferMax);
    if (want > this.recvBuf.capacity) this.recvBuf.grow(want);
    this.rcvCopied = 0;
    this.rcvSpaceAt = now;
  }

  /** Send-buffer auto-tuning (Linux tcp_sndbuf_expand): room for two congestion windows. */
  private tuneSendBuffer(): void {
    // Called on every ACK: the common answer (no growth) without a logarithm. The power of two
    // above 2·cwnd exceeds the capacity exactly when 2·cwnd exceeds the power of two below it.
    const cap = this.sendBuf.capacity;
    if (cap >= this.config.sendBufferMax || (cap < 2 ** 30 && 2 * this.cc.cwnd <= 2 ** (31 - Math.clz32(cap)))) return;
    const want = Math.min(2 ** Math.ceil(Math.log2(Math.max(2 * this.cc.cwnd, 1))), this.config.sendBufferMax);
    if (want > this.sendBuf.capacity) this.sendBuf.grow(want);
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay) this.output();
  }

  setKeepAlive(enable: boolean, delayMs?: number): void {
    this.keepaliveEnabled = enable;
    if (delayMs !== undefined && delayMs > 0) this.keepaliveDelay = delayMs;
    this.keepaliveProbes = 0;
    this.armKeepalive();
  }

  /** RFC 9293 §3.8.3 / RFC 5482: abort if data stays unacknowledged this long (0 = off). */
  setUserTimeout(ms: number): void {
    this.userTimeoutMs = ms;
    this.armUserTimeout();
  }
  private userTimeoutMs = 0;

  // ======================================================================== CLOSE / ABORT

  close(options?: { discardInput?: boolean }): void {
    if (options?.discardInput) this.discardInput = true;
    this.userClose();
    this.fireEvents();
  }
  /** The application closed both directions: data arriving now would be lost (RFC 1122 §4.2.2.13). */
  private discardInput = false;

  private userClose(): void {
    switch (this.state) {
      case 'CLOSED':
      case 'LISTEN':
        return;
      case 'SYN-SENT':
        // RFC 9293 §3.10.4: delete the TCB; nothing was synchronized.
        this.enterClosed('user CLOSE in SYN-SENT', 'RFC 9293 §3.10.4', null);
        return;
      case 'SYN-RECEIVED':
        // RFC 9293 §3.10.4: with nothing queued, send FIN now and enter FIN-WAIT-1; otherwise the
        // CLOSE waits for ESTABLISHED.
        this.closeRequested = true;
        if (this.sendBuf.length === 0) {
          this.finSeq = this.dataEnd();
          this.setState('FIN-WAIT-1', 'user CLOSE in SYN-RECEIVED: FIN sent', 'RFC 9293 §3.10.4');
          this.output();
        }
        return;
      case 'ESTABLISHED':
        this.closeRequested = true;
        this.finSeq = this.dataEnd();
        this.setState('FIN-WAIT-1', 'user CLOSE: FIN queued after data', 'RFC 9293 §3.10.4');
        this.output();
        return;
      case 'CLOSE-WAIT':
        this.closeRequested = true;
        this.finSeq = this.dataEnd();
        this.setState('LAST-ACK', 'user CLOSE in CLOSE-WAIT: FIN queued after data', 'RFC 9293 §3.10.4');
        this.output();
        return;
      default:
        // FIN-WAIT-*, CLOSING, LAST-ACK, TIME-WAIT: "connection closing" — already done.
        return;
    }
  }

  abort(): void {
    this.userAbort();
    this.fireEvents();
  }

  private userAbort(): void {
    switch (this.state) {
      case 'CLOSED':
        return;
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        // RFC 9293 §3.10.5: send <SEQ=SND.NXT><CTL=RST>, flush everything, CLOSED.
        this.emit(this.sndNxt, RST, EMPTY, NO_OPTIONS);
        this.enterClosed('user ABORT: RST sent', 'RFC 9293 §3.10.5', null);
        return;
      default:
        // LISTEN, SYN-SENT, CLOSING, LAST-ACK, TIME-WAIT: no RST, just delete the TCB.
        this.enterClosed('user ABORT', 'RFC 9293 §3.10.5', null);
    }
  }

  // ======================================================================== STATUS

  info(): TcpInfo {
    return {
      state: this.state,
      rto: this.rtt.rto,
      srtt: this.rtt.srtt,
      rttvar: this.rtt.rttvar,
      cwnd: this.cwnd,
      ssthresh: this.ssthresh,
      sndMss: this.effMss,
      rcvMss: this.rcvMss,
      sndWnd: this.sndWnd,
      rcvWnd: this.advertisableWindow(),
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      rcvNxt: this.rcvNxt,
      iss: this.iss,
      irs: this.irs,
      retransmits: this.retries,
      totalRetransmits: this.totalRetransmits,
      congestionControl: this.cc.name,
      caState: this.recovery,
      pipe: this.pipe(),
      sacked: this.sb.sackedBytes,
      lost: this.sb.lostBytes,
      recoveries: this.recoveries,
      rtoExpirations: this.rtoCount,
      tailLossProbes: this.tlpCount,
      dsacksReceived: this.sb.dsacks,
      reorderingSeen: this.sb.reorderingSeen,
      pawsDrops: this.pawsDrops,
      challengeAcksSuppressed: this.challengeAcksSuppressed,
      windowScaling: this.wsOk ? { snd: this.sndWscale, rcv: this.rcvWscale } : null,
      sack: this.sackOk,
      timestamps: this.tsOk,
      sndBufSize: this.sendBuf.capacity,
      rcvBufSize: this.recvBuf.capacity,
      bytesAcked: this.bytesAcked,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      segsOut: this.segsOut,
      segsIn: this.segsIn,
      unacked: seqDiff(this.sndNxt, this.sndUna),
      sndBufUsed: this.sendBuf.length,
      rcvBufUsed: this.recvBuf.length,
    };
  }

  // ======================================================================== SEGMENT ARRIVES

  /** RFC 9293 §3.10.7. The segment is borrowed: nothing of it is kept after return. */
  segmentArrives(seg: TcpSegment): void {
    this.segsIn++;
    if (this.state === 'SYN-SENT') {
      this.synSentArrives(seg);
    } else if (this.state !== 'CLOSED' && this.state !== 'LISTEN') {
      this.otherStatesArrive(seg);
    }
    // Inside a burst, the common case (in-order data and ACKs of an established connection, no
    // loss) waits for the burst's end: one ACK for the burst's data (RFC 5681 §4.2 asks for at least
    // one per two full-sized segments; a burst is one arrival, as a GRO-merged segment is for Linux),
    // one round of sending for all the ACKs, one wakeup of the application. Anything that calls for
    // an immediate reply — out-of-order data, a D-SACK, loss recovery, a state change — goes now.
    // Like GRO, which merges at most 64 KiB into one super-segment, a burst that leaves
    // BURST_ACK_BYTES unacknowledged gets an ACK at once (only the ACK: events and data still wait):
    // a whole flight arriving together (a link with delay and no rate limit) then still gets one ACK
    // per 64 KiB, so the sender's clock keeps going and its slow start (which counts every acked
    // byte, cc/newreno.ts) doubles each RTT.
    const st = this.state;
    if ((st === 'ESTABLISHED' || st === 'CLOSE-WAIT') && this.recovery === 'open' && this.reasm.empty && this.dsack === null &&
      this.sb.lostBytes === 0 && this.host.inBurst?.() === true) {
      if (!this.flushDeferred) {
        this.flushDeferred = true;
        this.host.deferFlush!(this);
      }
      if (seqDiff(this.rcvNxt, this.lastAckSent) >= BURST_ACK_BYTES) this.sendAck();
      return;
    }
    if (this.state !== 'CLOSED') this.output();
    this.fireEvents();
  }

  /**
   * The burst that deferred our output is over: notify, then send. The application hears first, so
   * what it sends in reply (the request after the handshake, the echo of data, the FIN after the
   * peer's) carries the ACK this burst owes instead of following a pure ACK — Linux's delayed ACK
   * in SYN-SENT with a write pending, and ACKs piggybacked on replies, in one rule.
   */
  flushBurst(): void {
    this.flushDeferred = false;
    this.fireEvents();
    if (this.state !== 'CLOSED') this.output();
    this.fireEvents();
  }

  /** RFC 9293 §3.10.7.3. */
  private synSentArrives(seg: TcpSegment): void {
    const f = seg.flags;
    let ackAcceptable = false;
    // First: check the ACK bit.
    if (f & ACK) {
      // If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless RST is set) and drop.
      if (seqLeq(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt)) {
        if (!(f & RST)) this.sendReset(seg.ack);
        this.host.note(this, 'unacceptable ACK in SYN-SENT: RST sent', 'RFC 9293 §3.10.7.3');
        return;
      }
      ackAcceptable = seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndNxt);
    }
    // Second: the RST bit. RFC 5961 §3.2: in SYN-SENT a RST is valid if its ACK acknowledges the SYN.
    if (f & RST) {
      if (ackAcceptable) {
        this.enterClosed('rcv RST,ACK in SYN-SENT: connection refused', 'RFC 9293 §3.10.7.3',
          new TcpError('ECONNREFUSED', `connection refused by ${this.remoteAddress}:${this.remotePort}`));
      }
      return;
    }
    // Fourth: the SYN bit.
    if (!(f & SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    // Our SYN offered its (unscaled) window: that much after the peer's SYN is promised.
    this.rcvAdvRight = seqAdd(this.rcvNxt, this.windowField(SYN));
    this.takeSynOptions(seg);
    this.lastHeardAt = this.host.now();
    if (ackAcceptable) {
      this.rttSampleFrom(seg, seg.ack);
      this.ackAdvance(seg.ack);
      this.takeWindow(seg);
      this.ackNeeded = true;
      this.enterEstablished('rcv SYN,ACK acceptable: ACK sent', 'RFC 9293 §3.10.7.3');
      // Data or FIN carried on the SYN,ACK continue at the sixth step.
      if (this.state !== 'CLOSED') this.processText(seg, seqAdd(seg.seq, 1));
    } else {
      // Simultaneous open: SYN without ACK — send SYN,ACK, enter SYN-RECEIVED (RFC 9293 §3.5 fig. 8).
      this.sndWnd = seg.window;
      this.maxSndWnd = this.sndWnd;
      this.sndWl1 = seg.seq;
      this.setState('SYN-RECEIVED', 'rcv SYN in SYN-SENT (simultaneous open): SYN,ACK sent', 'RFC 9293 §3.10.7.3');
      this.retries = 0;
      this.sendSyn();
    }
  }

  /** RFC 9293 §3.10.7.4: SYN-RECEIVED and the synchronized states. */
  private otherStatesArrive(seg: TcpSegment): void {
    const f = seg.flags;
    // A retransmitted SYN in SYN-RECEIVED means our SYN,ACK was lost: repeat it (as Linux does).
    if (this.state === 'SYN-RECEIVED' && (f & SYN) && !(f & (ACK | RST)) && seg.seq === this.irs) {
      this.host.note(this, 'duplicate SYN in SYN-RECEIVED: SYN,ACK repeated', 'RFC 9293 §3.10.7.4');
      this.emit(this.iss, SYN | ACK, EMPTY, this.synOptions());
      return;
    }

    // Simultaneous open (RFC 9293 §3.5 Figure 7): in SYN-RECEIVED reached from SYN-SENT, the peer's
    // SYN,ACK acknowledges our SYN and completes the handshake. Its SYN lies left of RCV.NXT, so the
    // literal acceptability test would only ACK it; Linux makes the same exception.
    if (!this.handshakeDone && !this.passive && (f & (SYN | ACK | RST)) === (SYN | ACK) &&
      seqAdd(seg.seq, 1) === this.rcvNxt && seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndNxt)) {
      this.takeWindow(seg);
      this.lastHeardAt = this.host.now();
      this.rttSampleFrom(seg, seg.ack);
      this.ackAdvance(seg.ack);
      this.completeHandshakeIn('rcv SYN,ACK in SYN-RECEIVED (simultaneous open)', 'RFC 9293 §3.5', seg.ack);
      return;
    }

    // RFC 7323 §5.3 R1 (PAWS), before the sequence number check: a segment whose timestamp is older
    // than TS.Recent is an old duplicate from an earlier incarnation or a wrapped sequence space.
    const ts = seg.options.timestamp;
    if (this.tsOk && ts !== undefined && !(f & RST) && tsLt(ts.val, this.tsRecent) &&
      this.host.now() - this.tsRecentAt <= PAWS_IDLE_MS) {
      this.pawsDrops++;
      this.host.note(this, `PAWS: TSval ${ts.val >>> 0} older than TS.Recent ${this.tsRecent >>> 0}: dropped`, 'RFC 7323 §5.3');
      // The ACK in reply is rate limited, as Linux does for out-of-window segments
      // (tcp_invalid_ratelimit), so reordered old ACKs do not each draw one.
      if (!this.invalidAckLimited(seg)) this.sendAck();
      return;
    }

    // First: sequence number check (the four cases of the acceptability test).
    const segLen = seg.payload.length + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    const rcvWnd = this.promisedWindow();
    if (!this.acceptable(seg.seq, segLen, rcvWnd)) {
      // If an incoming segment is not acceptable, an acknowledgment should be sent in reply
      // (unless the RST bit is set), and the segment dropped.
      if (!(f & RST)) {
        // RFC 2883 §4.1: a duplicate wholly below RCV.NXT is reported as a D-SACK block.
        if (this.sackOk && seg.payload.length > 0 && seqLeq(seqAdd(seg.seq, seg.payload.length), this.rcvNxt)) {
          this.dsack = [seg.seq, seqAdd(seg.seq, seg.payload.length)];
        }
        if (this.state === 'TIME-WAIT' && (f & FIN)) {
          // RFC 9293 §3.10.7.4 eighth step: a retransmitted FIN in TIME-WAIT restarts the 2 MSL wait.
          this.timeWaitAt = this.host.now() + 2 * this.config.mslMs;
          this.host.timersChanged(this);
        }
        // Rate limited too, so two ends that disagree about the sequence space do not answer
        // each other's ACKs forever (an ACK war).
        if (!this.invalidAckLimited(seg)) this.sendAck();
      }
      return;
    }

    // RFC 7323 §4.3 (3): remember the timestamp of the segment that holds the left edge.
    if (this.tsOk && ts !== undefined && !tsLt(ts.val, this.tsRecent) && seqLeq(seg.seq, this.lastAckSent)) {
      this.tsRecent = ts.val;
      this.tsRecentAt = this.host.now();
    }

    // Second: the RST bit, RFC 5961 §3.2: exact match resets, in-window gets a challenge ACK.
    if (f & RST) {
      if (seg.seq !== this.rcvNxt) {
        this.challengeAck('in-window RST with SEG.SEQ != RCV.NXT', 'RFC 5961 §3.2', seg);
        return;
      }
      this.resetArrives();
      return;
    }

    // Fourth: the SYN bit. RFC 5961 §4.2: in any synchronized state (and SYN-RECEIVED reached
    // actively), answer a SYN with a challenge ACK rather than resetting.
    if (f & SYN) {
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        // RFC 9293 §3.10.7.4: "return this connection to the LISTEN state" — the listener stays; we go.
        this.enterClosed('rcv SYN in SYN-RECEIVED (passive): back to LISTEN', 'RFC 9293 §3.10.7.4', null);
        return;
      }
      this.challengeAck('SYN in a synchronized state', 'RFC 5961 §4.2', seg);
      return;
    }

    // Fifth: the ACK field. Without ACK the segment is dropped.
    if (!(f & ACK)) return;
    this.lastHeardAt = this.host.now();
    this.keepaliveProbes = 0;
    this.armKeepalive();

    if (!this.handshakeDone) {
      if (seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndNxt)) {
        this.takeWindow(seg);
        this.rttSampleFrom(seg, seg.ack);
        this.ackAdvance(seg.ack);
        this.completeHandshakeIn('rcv ACK of SYN', 'RFC 9293 §3.10.7.4', seg.ack);
      } else {
        // <SEQ=SEG.ACK><CTL=RST>
        this.sendReset(seg.ack);
        return;
      }
    }

    // RFC 5961 §5.2: acceptable ACKs satisfy (SND.UNA − MAX.SND.WND) =< SEG.ACK =< SND.NXT.
    const oldest = seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1));
    if (seqGt(seg.ack, this.sndNxt) || seqLt(seg.ack, oldest)) {
      // An ACK for something not yet sent: ACK and drop (RFC 9293); outside the RFC 5961 range:
      // challenge ACK (rate limited) and drop.
      this.challengeAck('ACK outside the acceptable range', 'RFC 5961 §5.2', seg);
      return;
    }

    if (!this.processAck(seg)) return;

    // Sixth (URG) is not acted on beyond keeping the pointer out of the data: RFC 6093 advises
    // against urgent data, and data are delivered in order regardless.
    // Seventh: the segment text; eighth: FIN.
    this.processText(seg, seg.seq);
  }

  /** RFC 9293 §3.10.7.4 first step: the four cases of the acceptability test. */
  private acceptable(seq: number, segLen: number, rcvWnd: number): boolean {
    if (segLen === 0) {
      if (rcvWnd === 0) return seq === this.rcvNxt;
      return seqLeq(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, rcvWnd));
    }
    // RFC 9293 §3.10.7.4: with a zero window "special allowance should be made to accept valid
    // ACKs, URGs, and RSTs": a segment at RCV.NXT is let through for its control fields; its text
    // finds no room at the seventh step and is dropped there (and acknowledged).
    if (rcvWnd === 0) return seq === this.rcvNxt;
    const end = seqAdd(seq, segLen - 1);
    const right = seqAdd(this.rcvNxt, rcvWnd);
    return (seqLeq(this.rcvNxt, seq) && seqLt(seq, right)) || (seqLeq(this.rcvNxt, end) && seqLt(end, right));
  }

  /** RFC 9293 §3.10.7.4 second step, RST with SEG.SEQ = RCV.NXT. */
  private resetArrives(): void {
    switch (this.state) {
      case 'SYN-RECEIVED':
        if (this.passive) {
          // Return to LISTEN: the listener keeps listening; this half-open TCB simply goes.
          this.enterClosed('rcv RST in SYN-RECEIVED (passive): back to LISTEN', 'RFC 9293 §3.10.7.4', null);
        } else {
          this.enterClosed('rcv RST in SYN-RECEIVED (active): connection refused', 'RFC 9293 §3.10.7.4',
            new TcpError('ECONNREFUSED', 'connection refused'));
        }
        return;
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        this.recvBuf.consume(this.recvBuf.length);
        this.enterClosed(`rcv RST in ${this.state}: connection reset`, 'RFC 9293 §3.10.7.4',
          new TcpError('ECONNRESET', `connection reset by ${this.remoteAddress}:${this.remotePort}`));
        return;
      case 'TIME-WAIT':
        // RFC 1337 §3 (TIME-WAIT assassination): ignore RST in TIME-WAIT.
        this.host.note(this, 'RST ignored in TIME-WAIT', 'RFC 1337 §3');
        return;
      default:
        // CLOSING, LAST-ACK: enter CLOSED.
        this.enterClosed(`rcv RST in ${this.state}`, 'RFC 9293 §3.10.7.4', null);
    }
  }

  /**
   * Like Linux's tcp_oow_rate_limited: may an ACK answer this invalid segment (PAWS-rejected or
   * unacceptable)? One that occupies no sequence space (or a SYN) is answered at most once per
   * 500 ms; one carrying data or FIN always is — its sender is retransmitting and needs the ACK.
   * True when the ACK must not be sent; otherwise a limited one is recorded as answered now.
   */
  private invalidAckLimited(seg: TcpSegment): boolean {
    if (!occupiesNoData(seg)) return false;
    const now = this.host.now();
    if (now - this.lastInvalidAckAt < INVALID_ACK_INTERVAL_MS) return true;
    this.lastInvalidAckAt = now;
    return false;
  }

  /** RFC 5961 §3.2/§4.2/§5.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate limited (§7). */
  private challengeAck(why: string, rfc: string, seg: TcpSegment): void {
    const now = this.host.now();
    // The per-connection limit spares a segment with data (Linux: tcp_oow_rate_limited), whose
    // sender needs the answer; the stack-wide limit below still bounds everything.
    if (occupiesNoData(seg) && now - this.lastInvalidAckAt < INVALID_ACK_INTERVAL_MS) {
      this.challengeAcksSuppressed++;
      this.host.note(this, `challenge ACK suppressed by the per-connection limit (${why})`, 'RFC 5961 §7');
      return;
    }
    if (!this.host.challengeAckAllowed()) {
      this.challengeAcksSuppressed++;
      this.host.note(this, `challenge ACK suppressed by the stack-wide limit (${why})`, 'RFC 5961 §7');
      return;
    }
    this.lastInvalidAckAt = now;
    this.host.note(this, `challenge ACK: ${why}`, rfc);
    this.sendAck();
  }

  /**
   * RFC 9293 §3.10.7.4 fifth step for the synchronized states. Returns false when the segment
   * must be dropped.
   */
  private processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    const now = this.host.now();
    const newData = seqLt(this.sndUna, ack);
    // RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN, the same ACK and window, with data
    // outstanding. (Checked before the window is taken from this segment.)
    const dupAck = !newData && ack === this.sndUna && seg.payload.length === 0 && !(seg.flags & (FIN | SYN)) &&
      this.scaledWindow(seg) === this.sndWnd && this.sndNxt !== this.sndUna;
    let delivered = 0;
    let rttSample = -1;
    if (newData) {
      delivered = this.ackAdvance(ack, seg.options.timestamp?.ecr);
      rttSample = this.rttSampleFrom(seg, ack, this.sb.ackedXmitAt !== Infinity, this.sb.ackedKarnXmitAt);
    }
    if (this.handshakeDone && this.sackOk && seg.options.sack) {
      delivered += this.sb.applySack(seg.options.sack, seg.ack, this.sndNxt, now);
    }
    // Update the send window: if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
    if (seqLeq(this.sndUna, ack) &&
      (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, ack)))) {
      const opened = this.scaledWindow(seg) > this.sndWnd;
      this.takeWindow(seg);
      if (this.sndWnd > 0 && this.persistAt !== Infinity) {
        this.persistAt = Infinity;
        this.persistBackoff = 0;
        this.host.timersChanged(this);
        if (opened) this.host.note(this, 'window reopened: persist timer stopped', 'RFC 9293 §3.8.6.1');
      }
    }
    // A peer answering with a zero window is alive: it may keep the window closed indefinitely
    // without the connection timing out (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17).
    if (this.sndWnd === 0) this.retries = 0;
    if (this.handshakeDone) this.lossRecovery(newData, dupAck, delivered, rttSample, now);

    const finAcked = this.closeRequested && seqGt(this.sndUna, this.finSeq);
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) this.setState('FIN-WAIT-2', 'rcv ACK of FIN', 'RFC 9293 §3.10.7.4');
        break;
      case 'CLOSING':
        if (finAcked) {
          this.enterTimeWait('rcv ACK of FIN in CLOSING');
          this.notifyClosed(null);
        }
        return true;
      case 'LAST-ACK':
        if (finAcked) {
          this.enterClosed('rcv ACK of FIN in LAST-ACK', 'RFC 9293 §3.10.7.4', null);
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  }

  /** The peer's window field scaled (RFC 7323 §2.3); a SYN's window is never scaled. */
  private scaledWindow(seg: TcpSegment): number {
    return seg.flags & SYN ? seg.window : seg.window * (1 << this.sndWscale);
  }

  /**
   * An RTT measurement from an ACK of new data (RFC 7323 §4 RTTM with timestamps, else RFC 6298).
   * `segmentsAcked`: the ACK removed segments from the retransmission queue (false for a SYN);
   * `karnXmitAt`: the send time of the oldest of them if none was ever retransmitted, else Infinity.
   *
   * Like Linux (tcp_clean_rtx_queue): the send time of the oldest segment acknowledged when none of
   * them was retransmitted; otherwise the echoed timestamp (RFC 7323 §4.1) — but only when it is the
   * timestamp of the last transmission of a segment this ACK covers. Any other echo (an earlier copy,
   * or one of our pure ACKs taken as TS.Recent while the peer held a hole) measures how long the
   * peer waited for a retransmission: RFC 7323 §4.3 calls that over-estimate conservative, but after
   * backed-off retransmissions it is the backoff itself (minutes at heavy loss), and it would inflate
   * the RTO for good. Returns -1 when there is no sample.
   */
  private rttSampleFrom(seg: TcpSegment, ack: number, segmentsAcked = false, karnXmitAt = Infinity): number {
    const now = this.host.now();
    let r = -1;
    const ts = seg.options.timestamp;
    if (karnXmitAt !== Infinity) {
      r = now - karnXmitAt;
    } else if (this.tsOk && ts !== undefined && ts.ecr !== 0 && (!segmentsAcked || this.sb.ackedEchoMatched)) {
      const d = (this.tsNow() - ts.ecr) >>> 0;
      if (d < 0x7fffffff) r = d;
    } else if (this.rttSeq !== null && seqGt(ack, this.rttSeq)) {
      r = now - this.rttSentAt;
    }
    if (this.rttSeq !== null && seqGt(ack, this.rttSeq)) this.rttSeq = null;
    if (r >= 0) this.rtt.sample(r);
    return r;
  }

  /** The timestamp we put on a segment sent at `t`. */
  private tsAt(t: number): number {
    // Scoreboard.ackTo computes the same from tsOffset (no closure per connection).
    return (Math.floor(t) + this.tsOffset) >>> 0;
  }

  /**
   * SND.UNA advances: free acknowledged bytes, manage timers and buffers. Returns the bytes newly
   * delivered (bytes already SACKed were counted when SACKed).
   */
  private ackAdvance(ack: number, echo?: number): number {
    // Free acknowledged data (SYN and FIN occupy sequence space but not the buffer).
    if (seqGt(ack, this.sndBufSeq)) {
      const n = Math.min(seqDiff(ack, this.sndBufSeq), this.sendBuf.length);
      this.sendBuf.consume(n);
      this.sndBufSeq = seqAdd(this.sndBufSeq, n);
      this.bytesAcked += n;
      if (this.sendBuf.length === 0) this.sendBuf.release();
    }
    const delivered = echo !== undefined && this.tsOk
      ? this.sb.ackTo(ack, this.host.now(), echo >>> 0, this.tsOffset)
      : this.sb.ackTo(ack, this.host.now());
    this.sndUna = ack;
    this.retries = 0;
    this.tlpOutstanding = false;

    // RFC 6298 (5.2)/(5.3): stop the timer when all is acked, else restart it.
    this.rtxAt = Infinity;
    if (this.sndUna !== this.sndNxt) this.armRtx();
    else this.host.timersChanged(this);
    this.armUserTimeout();

    if (this.handshakeDone) this.tuneSendBuffer();
    if (this.wantWritable && this.canQueueData() && this.sendBuf.free > 0) {
      this.wantWritable = false;
      this.pendingEvents |= EV_WRITABLE;
    }
    return delivered;
  }

  // -------------------------------------------------------------- loss recovery and congestion control

  /**
   * After each ACK: leave recovery once the recovery point is acknowledged, detect losses (RACK with
   * SACK, RFC 8985 §6; duplicate ACKs and partial ACKs without, RFC 5681 §3.2 and RFC 6582 §3.2),
   * enter fast recovery (RFC 6675 §5) on the first loss, pace it with PRR (RFC 6937), and let the
   * congestion controller grow cwnd outside recovery.
   */
  private lossRecovery(newData: boolean, dupAck: boolean, delivered: number, rttSample: number, now: number): void {
    if (this.recovery !== 'open' && seqGeq(this.sndUna, this.recoveryPoint)) {
      // RFC 6675 §5 (C) / RFC 6582 §3.2 (5): the recovery point is acknowledged: recovery ends.
      if (this.recovery === 'recovery') {
        this.cc.onRecoveryEnd(now);
        this.sb.recoveryEnded();
      }
      this.recovery = 'open';
      this.renoDupAcks = 0;
    }
    if (this.sackOk) {
      this.rackDetect(now);
    } else if (dupAck) {
      // RFC 5681 §3.2: each duplicate ACK means a segment left the network; the third one means the
      // segment at SND.UNA was lost (but not right after an RTO: RFC 6582 §4.1, "recover").
      if (this.renoDupAcks < this.sb.count - 1) this.renoDupAcks++;
      if (this.recovery === 'open' && this.renoDupAcks === DUP_THRESH) {
        const first = this.sb.first();
        if (first) this.markLost(first, 'three duplicate ACKs: fast retransmit', 'RFC 5681 §3.2');
      }
    } else if (newData) {
      if (this.recovery === 'recovery') {
        // RFC 6582 §3.2 (5): a partial ACK — the next segment was lost too; resend it.
        this.renoDupAcks = Math.max(0, this.renoDupAcks - Math.ceil(delivered / this.effMss));
        const first = this.sb.first();
        if (first && !first.retrans) this.markLost(first, 'partial ACK in fast recovery', 'RFC 6582 §3.2');
      } else {
        this.renoDupAcks = 0;
      }
    }
    this.maybeEnterRecovery(now);
    // RFC 6937 §3: without SACK, each duplicate ACK stands for one segment delivered.
    if (this.recovery === 'recovery') this.prrOnAck(delivered + (dupAck && !this.sackOk ? this.effMss : 0));
    // Within a batched burst nothing is sent between the ACKs (output waits for the burst's end), so
    // what the last send round found holds for every ACK of the burst, not only the first.
    const cwndLimited = this.cwndLimited || this.burstCwndLimited;
    this.cwndLimited = false;
    if (this.host.inBurst?.() === true) this.burstCwndLimited = cwndLimited;
    // Growth resumes after fast recovery (in 'loss', after an RTO, slow start runs as usual).
    if (this.recovery !== 'recovery' && delivered > 0) this.cc.onAck(delivered, rttSample, cwndLimited, now);
    if (this.recovery === 'open') this.armTlp();
  }

  private markLost(r: SentSegment, why: string, rfc: string): void {
    this.sb.markLost(r);
    this.lossReason = why;
    this.lossRfc = rfc;
  }
  private lossReason = '';
  private lossRfc = '';

  /** RFC 8985 §6.2: mark lost what RACK can, and arm the reordering timer for the rest. */
  private rackDetect(now: number): void {
    const srtt = this.rtt.hasSample ? this.rtt.srtt : Infinity;
    if (this.sb.detectLoss(now, this.sb.reoWnd(srtt, this.recovery !== 'open')) > 0) {
      this.lossReason = 'RACK: a segment sent later was delivered (SACK)';
      this.lossRfc = 'RFC 8985 §6.2';
    }
    const at = this.sb.reoTimeout === Infinity ? Infinity : now + this.sb.reoTimeout;
    if (at !== this.reoAt) {
      this.reoAt = at;
      this.host.timersChanged(this);
    }
  }

  /** RFC 6675 §5 (4)/(5): the first loss in the window starts fast recovery. */
  private maybeEnterRecovery(now: number): void {
    if (this.recovery !== 'open' || this.sb.lostBytes <= 0) return;
    this.recovery = 'recovery';
    this.recoveryPoint = this.sndNxt;
    this.recoveries++;
    this.tlpAt = Infinity;
    this.cc.onLoss(this.flightSize(), now);
    // RFC 6937 §3: PRR starts from the flight at the loss.
    this.prrDelivered = 0;
    this.prrOut = 0;
    this.recoverFs = Math.max(this.flightSize(), 1);
    this.prrCwnd = this.pipe() + this.effMss;
    this.host.note(this, `fast recovery: ${this.lossReason}; cwnd ${this.cc.cwnd}, ssthresh ${this.cc.ssthresh}`,
      this.sackOk ? 'RFC 6675 §5' : 'RFC 6582 §3.2');
  }

  private flightSize(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }

  /**
   * Proportional Rate Reduction (RFC 6937 §3, PRR-SSRB), on every ACK in fast recovery: send about
   * ssthresh/RecoverFS of what is delivered while pipe is above ssthresh, so the window comes down
   * smoothly instead of in one silent half-RTT; below ssthresh, grow back towards it no faster than
   * slow start. As in Linux, the first ACK always lets one segment go: the fast retransmit itself
   * (RFC 6675 §5 (4.3)), whatever pipe says.
   */
  private prrOnAck(delivered: number): void {
    this.prrDelivered += delivered;
    const pipe = this.pipe();
    const ssthresh = this.cc.ssthresh;
    let sndcnt: number;
    if (pipe > ssthresh) {
      sndcnt = Math.ceil((this.prrDelivered * ssthresh) / this.recoverFs) - this.prrOut;
    } else {
      const limit = Math.max(this.prrDelivered - this.prrOut, delivered) + this.effMss;
      sndcnt = Math.min(ssthresh - pipe, limit);
    }
    if (this.prrOut === 0) sndcnt = Math.max(sndcnt, this.effMss);
    this.prrCwnd = pipe + Math.max(sndcnt, 0);
  }

  /** The window the sender may fill: PRR's during fast recovery, the controller's otherwise. */
  private get sendCwnd(): number {
    return this.recovery === 'recovery' ? this.prrCwnd : this.cc.cwnd;
  }

  /** Resend one segment of the retransmission queue (data, FIN or both), leaving SND.NXT alone. */
  private retransmit(r: SentSegment, now: number): void {
    const len = seqDiff(r.end, r.start) - (r.fin ? 1 : 0);
    const off = seqDiff(r.start, this.sndBufSeq);
    // PSH as on a first transmission: when the segment ends what is queued.
    const push = len > 0 && seqAdd(r.start, len) === this.dataEnd();
    const flags = ACK | (push ? PSH : 0) | (r.fin ? FIN : 0);
    this.emit(r.start, flags, len > 0 ? this.sendBuf.view(off, len) : EMPTY, NO_OPTIONS);
    this.sb.retransmitted(r, now);
    this.totalRetransmits++;
    if (this.recovery === 'recovery') this.prrOut += seqDiff(r.end, r.start);
    this.rttSeq = null; // Karn (RFC 6298 §3): nothing in flight now is timed unambiguously
    this.lastSendAt = now;
  }

  /** RFC 8985 §7.2: arm the tail loss probe when the tail of the flight may be lost unnoticed. */
  private armTlp(): void {
    let at = Infinity;
    if (this.sackOk && this.recovery === 'open' && !this.tlpOutstanding && !this.sb.empty &&
      this.rtxAt !== Infinity) {
      let pto = this.rtt.hasSample ? Math.max(2 * this.rtt.srtt, MIN_PTO_MS) : INITIAL_PTO_MS;
      if (this.sb.count === 1) pto += WC_DEL_ACK_MS;
      // RFC 8985 §7.2: never later than the RTO; when both are due the probe goes (timersExpire).
      at = Math.min(this.host.now() + pto, this.rtxAt);
    }
    if (at !== this.tlpAt) {
      this.tlpAt = at;
      this.host.timersChanged(this);
    }
  }

  /** RFC 8985 §7.3: the probe — new data if the window allows, else the last segment again. */
  private tailLossProbe(now: number): void {
    if (this.recovery !== 'open' || this.sb.empty) return;
    this.tlpOutstanding = true;
    this.tlpCount++;
    this.host.note(this, 'tail loss probe', 'RFC 8985 §7.3');
    const pending = seqDiff(this.dataEnd(), this.sndNxt);
    const rwnd = seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    if (pending > 0 && rwnd >= Math.min(pending, this.effMss)) {
      this.sendNew(Math.min(pending, this.effMss), now);
    } else {
      const last = this.sb.lastUnsacked();
      if (last) this.retransmit(last, now);
    }
    this.armRtx();
  }

  // -------------------------------------------------------------- text and FIN (steps 7 and 8)

  /**
   * RFC 9293 §3.10.7.4 seventh and eighth steps. `dataSeq` is the sequence number of the first
   * payload byte (the SYN, when present, is not data).
   */
  private processText(seg: TcpSegment, dataSeq: number): void {
    const st = this.state;
    const fin = (seg.flags & FIN) !== 0;
    const canReceive = st === 'ESTABLISHED' || st === 'FIN-WAIT-1' || st === 'FIN-WAIT-2' || st === 'SYN-RECEIVED';
    let payload = seg.payload;
    let seq = dataSeq;

    if (payload.length > 0 && canReceive && this.discardInput && seqGt(seqAdd(seq, payload.length), this.rcvNxt)) {
      // RFC 1122 §4.2.2.13 (RFC 9293 §3.6.1): the application closed for reading too, so new data
      // would be lost: say so with a RST, as Linux does.
      this.emit(this.sndNxt, RST, EMPTY, NO_OPTIONS);
      this.enterClosed('data after CLOSE: RST sent, the data would be lost', 'RFC 1122 §4.2.2.13', null);
      return;
    }
    if (payload.length > 0 && canReceive && !this.finReceived) {
      // The peer's segment size, for the every-second-segment ACK rule (RFC 5681 §4.2). A link with
      // receive offload hands over 64 KiB super-packets: capped at the MSS we advertised, as Linux's
      // tcp_measure_rcv_mss caps its GSO size, or ACKs would wait for 64 KiB of small segments.
      if (payload.length > this.rcvSegMax) this.rcvSegMax = Math.min(payload.length, this.rcvMss);
      this.noteReceiverRtt(seg);
      // Trim what we already have (left of RCV.NXT) and what lies right of the window.
      const skip = seqDiff(this.rcvNxt, seq);
      if (skip > 0) {
        // RFC 2883 §4: report the duplicate as the first SACK block of the ACK it triggers.
        if (this.sackOk) this.dsack = [seq, seqAdd(seq, Math.min(skip, payload.length))];
        payload = payload.subarray(Math.min(skip, payload.length));
        seq = this.rcvNxt;
      }
      const offset = seqDiff(seq, this.rcvNxt);
      // RFC 9293 §3.10.7.4: text beyond the window we offered is trimmed — even the byte a zero-window
      // probe carries — although the buffer may have a little more room.
      const room = Math.min(this.recvBuf.free, this.promisedWindow()) - offset;
      if (payload.length > room) payload = payload.subarray(0, Math.max(0, room));
      let immediate = skip > 0 || this.state === 'SYN-RECEIVED';
      if (payload.length > 0) {
        if (offset === 0) {
          const hadHoles = !this.reasm.empty;
          this.recvBuf.push(payload);
          this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
          // Out-of-order data already held may now be contiguous.
          const more = this.reasm.take(this.rcvNxt);
          if (more > 0) {
            this.recvBuf.commit(more);
            this.rcvNxt = seqAdd(this.rcvNxt, more);
          }
          this.bytesReceived += payload.length + more;
          this.unackedBytes += payload.length + more;
          this.pendingEvents |= EV_READABLE;
          // RFC 5681 §4.2: a segment that fills (part of) a gap is acknowledged at once.
          if (hadHoles) immediate = true;
        } else {
          // Out of order: hold it in place in the ring (no copy later) and say where we are. RFC 5681
          // §4.2: an immediate (duplicate) ACK, with SACK blocks, so the sender can recover quickly.
          immediate = true;
          if (this.sackOk && this.reasm.holds(seq, payload.length)) {
            this.dsack = [seq, seqAdd(seq, payload.length)];
          } else if (this.reasm.add(seq, payload.length)) {
            this.recvBuf.writeAt(this.recvBuf.length + offset, payload);
            this.noteSackBlock(seq);
          }
        }
      } else {
        immediate = true;
      }
      // RFC 9293 §3.10.7.4 seventh step: acknowledge — at once, or delayed (RFC 9293 §3.8.6.3,
      // RFC 5681 §4.2): at least every second full-sized segment, and within the delayed-ACK time.
      if (immediate || this.config.delayedAckMs <= 0 || this.unackedBytes > this.rcvSegMax) {
        this.ackNeeded = true;
      } else if (this.delackAt === Infinity) {
        this.delackAt = this.host.now() + this.config.delayedAckMs;
        this.host.timersChanged(this);
      }
    } else if (payload.length > 0 && st === 'TIME-WAIT') {
      this.ackNeeded = true;
    }
    // RFC 9293 §3.10.7.4 seventh step: in CLOSE-WAIT, CLOSING and LAST-ACK "this should not occur
    // since a FIN has been received from the remote side. Ignore the segment text." (as Linux does).

    // Eighth: the FIN bit — only processed once everything before it has arrived.
    if (fin && st !== 'CLOSED' && st !== 'LISTEN' && st !== 'SYN-SENT') {
      const finAt = seqAdd(dataSeq, seg.payload.length);
      if (finAt === this.rcvNxt) this.finArrives();
      else if (seqGt(finAt, this.rcvNxt) && !this.finReceived) {
        this.pendingFinSeq = finAt;
        // RFC 5681 §4.2: an out-of-order segment (a bare FIN too) gets an immediate duplicate ACK.
        this.ackNeeded = true;
      }
    } else if (this.pendingFinSeq !== null && this.pendingFinSeq === this.rcvNxt) {
      this.finArrives();
    }
  }

  /** The out-of-order block holding `seq` was just extended: it goes first in our SACK option. */
  private noteSackBlock(seq: number): void {
    if (!this.sackOk) return;
    const r = this.sackRecent;
    const block = this.reasm.rangeContaining(seq);
    for (let i = r.length - 1; i >= 0; i--) {
      if (block !== undefined && this.reasm.rangeContaining(r[i]!) === block) r.splice(i, 1);
    }
    r.unshift(seq);
    if (r.length > 4) r.length = 4;
  }

  /**
   * RFC 2018 §4: the SACK blocks of an ACK — a D-SACK first if one is owed (RFC 2883), then the block
   * holding the most recent arrival, then the other recent ones, then any other held block.
   */
  private sackBlocks(): Array<[number, number]> | undefined {
    if (!this.sackOk || (this.dsack === null && this.reasm.empty)) return undefined;
    const out: Array<[number, number]> = [];
    // Held blocks are listed after the D-SACK block, once each (a block is known by its left edge).
    const from = this.dsack === null ? 0 : 1;
    const add = (b: readonly [number, number] | undefined): void => {
      if (b === undefined || out.length >= MAX_SACK_BLOCKS) return;
      for (let k = from; k < out.length; k++) if (out[k]![0] === b[0]) return;
      out.push([b[0], b[1]]);
    };
    if (this.dsack !== null) {
      out.push(this.dsack);
      // RFC 2883 §4: a duplicate of data held above RCV.NXT is followed by the block that holds it.
      add(this.reasm.rangeContaining(this.dsack[0]));
    }
    const recent = this.sackRecent;
    for (let i = 0; i < recent.length; i++) {
      const b = this.reasm.rangeContaining(recent[i]!);
      if (b === undefined) recent.splice(i--, 1);
      else add(b);
    }
    const all = this.reasm.blocks;
    for (let i = all.length - 1; i >= 0 && out.length < MAX_SACK_BLOCKS; i--) add(all[i]);
    return out;
  }

  /**
   * The receiver's RTT for auto-tuning (Linux tcp_rcv_rtt_measure_ts): data that echoes the timestamp
   * of one of our ACKs arrives about one RTT after it.
   */
  private noteReceiverRtt(seg: TcpSegment): void {
    const ts = seg.options.timestamp;
    if (!this.tsOk || ts === undefined || ts.ecr === 0) return;
    const d = (this.tsNow() - ts.ecr) >>> 0;
    if (d >= 0x7fffffff) return;
    const r = Math.max(d, 1);
    this.rcvRtt = this.rcvRtt === 0 || r < this.rcvRtt ? r : this.rcvRtt + (r - this.rcvRtt) / 8;
  }

  private finArrives(): void {
    this.pendingFinSeq = null;
    this.ackNeeded = true;
    if (this.finReceived) {
      // A retransmitted FIN: just ACK it (and in TIME-WAIT restart the wait).
      if (this.state === 'TIME-WAIT') {
        this.timeWaitAt = this.host.now() + 2 * this.config.mslMs;
        this.host.timersChanged(this);
      }
      return;
    }
    this.finReceived = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.rcvAdvRight = seqMax(this.rcvAdvRight, this.rcvNxt);
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.setState('CLOSE-WAIT', 'rcv FIN: ACK sent, peer has closed its side', 'RFC 9293 §3.10.7.4');
        break;
      case 'FIN-WAIT-1':
        if (seqGt(this.sndUna, this.finSeq)) this.enterTimeWait('rcv FIN after our FIN was acked');
        else this.setState('CLOSING', 'rcv FIN before the ACK of our FIN (simultaneous close)', 'RFC 9293 §3.10.7.4');
        break;
      case 'FIN-WAIT-2':
        this.enterTimeWait('rcv FIN in FIN-WAIT-2');
        break;
      default:
        break;
    }
    this.pendingEvents |= EV_END;
    if (this.state === 'TIME-WAIT') this.notifyClosed(null);
  }

  // ======================================================================== OUTPUT

  /** Bytes we could still take into the receive buffer — the basis of RCV.WND. */
  private advertisableWindow(): number {
    return Math.min(this.recvBuf.free, MAX_UNSCALED_WINDOW * (1 << this.rcvWscale));
  }

  /** How much of the window we advertised is still open (right edge − RCV.NXT). */
  private promisedWindow(): number {
    return Math.max(0, seqDiff(this.rcvAdvRight, this.rcvNxt));
  }

  /** RFC 9293 §3.8.6.2.2: the window is only opened in steps of min(RCV.BUFF/2, MSS). */
  private swsStep(): number {
    return Math.min(this.recvBuf.capacity / 2, this.rcvMss);
  }

  /** The sequence number just past the last byte queued for sending. */
  private dataEnd(): number {
    return seqAdd(this.sndBufSeq, this.sendBuf.length);
  }

  /** Send what the windows allow: data, then FIN, and an ACK if one is owed and nothing carried it. */
  private output(): void {
    this.burstCwndLimited = false;
    const st = this.state;
    if (st === 'ESTABLISHED' || st === 'CLOSE-WAIT' || st === 'FIN-WAIT-1' || st === 'CLOSING' || st === 'LAST-ACK') {
      this.sendData();
    }
    if (this.ackNeeded) this.sendAck();
  }

  private sendData(): void {
    const now = this.host.now();
    const mss = this.effMss;
    // RFC 6675 §5 NextSeg rule (1): segments deemed lost go first, as cwnd − pipe allows.
    while (this.sb.lostBytes > 0 && this.handshakeDone) {
      if (this.pipe() >= this.sendCwnd) {
        this.cwndLimited = true;
        return;
      }
      const r = this.sb.nextLost();
      if (r === undefined) break;
      this.host.note(this, `retransmit ${seqDiff(r.start, this.iss)}: ${this.lossReason}`, this.lossRfc);
      this.retransmit(r, now);
    }
    const end = this.dataEnd();
    let sentNew = false;
    for (;;) {
      const pending = seqDiff(end, this.sndNxt);
      if (pending > 0) {
        // RFC 5681 §3.1 / RFC 6675 §5: new data needs room in the peer's window and in cwnd − pipe.
        const inFlight = seqDiff(this.sndNxt, this.sndUna);
        const rwndRoom = this.sndWnd - inFlight;
        const cwndRoom = this.sendCwnd - this.pipe();
        const usable = Math.min(rwndRoom, cwndRoom);
        if (usable <= 0 || this.sb.count >= MAX_RECORDS) {
          if (cwndRoom <= rwndRoom) this.cwndLimited = true;
          if (this.sndWnd === 0 && inFlight === 0) this.armPersist();
          break;
        }
        const len = Math.min(pending, mss, usable);
        // RFC 9293 §3.8.6.2.1 (sender SWS avoidance) and §3.7.4 (Nagle): a short segment goes out
        // only if it empties the queue and nothing is in flight (Nagle off or a FIN follows: at once),
        // or, when the window is what limits us, it is at least half the largest window offered.
        // With nothing in flight we send anyway: the override timeout of §3.8.6.2.1 at zero delay,
        // since no ACK is coming to clock us.
        if (len < mss && inFlight > 0) {
          const windowLimited = len < pending;
          const hold = windowLimited ? len < this.maxSndWnd / 2 : !this.noDelay && !this.closeRequested;
          if (hold) {
            if (windowLimited && cwndRoom < rwndRoom) this.cwndLimited = true;
            break;
          }
        }
        // PSH on the last segment of a burst, too — the one the window stops us after — as Linux
        // does (a receiver may deliver at once; RFC 9293 §3.9.1 leaves when to push to us).
        const burstEnds = usable - len < Math.min(mss, pending - len);
        this.sendNew(len, now, burstEnds);
        sentNew = true;
        continue;
      }
      // No data pending: send the FIN if CLOSE was called and it is not out yet.
      if (this.closeRequested && this.sndNxt === this.finSeq) {
        this.emit(this.sndNxt, FIN | ACK, EMPTY, NO_OPTIONS);
        this.sb.sent(this.sndNxt, seqAdd(this.sndNxt, 1), true, now);
        this.sndNxt = seqAdd(this.sndNxt, 1);
        if (this.rtxAt === Infinity) this.armRtx();
        // The user timeout covers an unacknowledged FIN too (RFC 5482: "transmitted data").
        if (this.userTimeoutAt === Infinity) this.armUserTimeout();
        sentNew = true;
      }
      break;
    }
    if (sentNew && this.recovery === 'open') this.armTlp();
  }

  /** Send `len` new bytes at SND.NXT (with FIN when they end the stream) and record them. */
  private sendNew(len: number, now: number, push = false): void {
    // RFC 5681 §4.1 / RFC 9438 §5.8: after an idle period longer than the RTO, restart from IW.
    if (this.sb.empty && this.handshakeDone && this.bytesSent > 0 && now - this.lastSendAt > this.rtt.rto) {
      this.cc.onIdleRestart(this.initialWindow(), now);
    }
    const start = this.sndNxt;
    const pending = seqDiff(this.dataEnd(), start);
    const last = len === pending;
    const finHere = last && this.closeRequested && seqAdd(start, len) === this.finSeq;
    const flags = ACK | (last || push ? PSH : 0) | (finHere ? FIN : 0);
    this.emit(start, flags, this.sendBuf.view(seqDiff(start, this.sndBufSeq), len), NO_OPTIONS);
    this.bytesSent += len;
    if (this.rttSeq === null && !this.tsOk && this.sb.lostBytes === 0) {
      this.rttSeq = start;
      this.rttSentAt = now;
    }
    const end = seqAdd(start, len + (finHere ? 1 : 0));
    this.sb.sent(start, end, finHere, now);
    if (this.recovery === 'recovery') this.prrOut += len;
    this.sndNxt = end;
    this.lastSendAt = now;
    if (this.rtxAt === Infinity) this.armRtx();
    // RFC 9293 §3.8.3 / RFC 5482: the user timeout runs from when data is first outstanding.
    if (this.userTimeoutAt === Infinity) this.armUserTimeout();
  }

  private sendAck(): void {
    this.emit(this.sndNxt, ACK, EMPTY, NO_OPTIONS);
  }

  /** RFC 9293 §3.10.7.3/§3.10.7.4: <SEQ=SEG.ACK><CTL=RST>. */
  private sendReset(seq: number): void {
    this.emit(seq, RST, EMPTY, NO_OPTIONS);
  }

  /**
   * The window field of a segment: never moving the right edge left (RFC 9293 §3.8.6.2.2), not
   * offering a small increase (receiver SWS avoidance: advertise the promised edge until the buffer
   * has room for at least min(RCV.BUFF/2, MSS) more), scaled (RFC 7323 §2.3; never on a SYN).
   */
  private windowField(flags: number): number {
    if (flags & SYN) return Math.min(this.recvBuf.free, MAX_UNSCALED_WINDOW);
    const shift = this.rcvWscale;
    const unit = 1 << shift; // shift <= 14 (RFC 7323 §2.3)
    const promised = this.promisedWindow();
    const wnd = this.advertisableWindow();
    const max = MAX_UNSCALED_WINDOW * unit;
    const win = wnd - promised >= this.swsStep() || wnd >= max ? wnd : promised;
    // Rounded down: the edge the peer sees may sit up to 2^S − 1 bytes left of the one we keep to
    // (RFC 7323 §2.4 accepts this granularity); rounding up instead would promise room we lack,
    // a little more with every ACK.
    return Math.min(Math.floor(win / unit), MAX_UNSCALED_WINDOW);
  }

  /** Build and hand one segment to the host. Every segment but a bare RST (or SYN) carries ACK. */
  private emit(seq: number, flags: number, payload: Uint8Array, options: TcpOptions): void {
    const s = scratch;
    s.srcPort = this.localPort;
    s.dstPort = this.remotePort;
    s.seq = seq;
    s.flags = flags;
    s.ack = flags & ACK ? this.rcvNxt : 0;
    s.urgent = 0;
    s.payload = payload;
    let sackDeferred = false;
    if (flags & SYN || !(flags & ACK)) {
      s.options = options;
    } else {
      // RFC 7323 §3.2: once negotiated, every segment but a RST carries timestamps. RFC 2018 §4:
      // every ACK while out-of-order data is held carries SACK blocks.
      const o = outOptions;
      o.timestamp = undefined;
      o.sack = undefined;
      if (this.tsOk && !(flags & RST)) {
        outTs.val = this.tsNow();
        outTs.ecr = this.tsRecent;
        o.timestamp = outTs;
      }
      const blocks = this.sackBlocks();
      if (blocks !== undefined) {
        o.sack = blocks;
        // A full-sized segment has no room for them within the peer's MSS: a pure ACK follows.
        if (payload.length > 0 && payload.length + tcpOptionsLength(o) > this.sndMss) {
          o.sack = undefined;
          sackDeferred = true;
        }
      }
      s.options = o.timestamp === undefined && o.sack === undefined ? NO_OPTIONS : o;
    }
    if (flags & ACK || !(flags & RST)) {
      const field = this.windowField(flags);
      s.window = field;
      if (flags & ACK) {
        const unit = flags & SYN ? 1 : 1 << this.rcvWscale;
        this.rcvAdvRight = seqMax(this.rcvAdvRight, seqAdd(this.rcvNxt, field * unit));
      }
    } else {
      s.window = 0;
    }
    if (flags & ACK && !sackDeferred) {
      this.ackNeeded = false;
      this.unackedBytes = 0;
      this.lastAckSent = this.rcvNxt;
      if (s.options.sack !== undefined) this.dsack = null;
      if (this.delackAt !== Infinity) {
        this.delackAt = Infinity;
        this.host.timersChanged(this);
      }
    }
    this.segsOut++;
    this.host.transmit(this, s);
  }

  // ======================================================================== TIMERS

  /** The earliest time at which `onTimer` has something to do (Infinity when nothing). */
  get deadline(): number {
    return Math.min(this.rtxAt, this.persistAt, this.timeWaitAt, this.keepaliveAt, this.userTimeoutAt,
      this.delackAt, this.reoAt, this.tlpAt);
  }

  private armRtx(): void {
    this.rtxAt = this.host.now() + this.rtt.rto;
    this.host.timersChanged(this);
  }

  private armPersist(): void {
    this.armUserTimeout(false);
    if (this.persistAt !== Infinity) return;
    // RFC 9293 §3.8.6.1: probe a zero window after an RTO, backing off exponentially.
    this.persistAt = this.host.now() + Math.min(this.rtt.rto * 2 ** this.persistBackoff, MAX_RTO_MS);
    this.host.timersChanged(this);
  }

  private armKeepalive(): void {
    const on = this.keepaliveEnabled && isSynchronized(this.state) && this.state !== 'TIME-WAIT';
    const at = on ? this.lastHeardAt + (this.keepaliveProbes === 0 ? this.keepaliveDelay : KEEPALIVE_INTERVAL_MS * this.keepaliveProbes + this.keepaliveDelay) : Infinity;
    if (at !== this.keepaliveAt) {
      this.keepaliveAt = at;
      this.host.timersChanged(this);
    }
  }

  /**
   * RFC 5482 / RFC 9293 §3.8.3: the user timeout runs while sent data is unacknowledged, restarting
   * on progress — and, as in Linux, while queued data waits on a zero window, so a peer that
   * answers probes but never opens its window cannot hold the connection forever. `restart` false
   * keeps a running timer (called when persisting starts or continues).
   */
  private armUserTimeout(restart = true): void {
    const waiting = this.sndUna !== this.sndNxt || (this.sndWnd === 0 && seqDiff(this.dataEnd(), this.sndNxt) > 0);
    const at = this.userTimeoutMs <= 0 || !waiting ? Infinity
      : restart || this.userTimeoutAt === Infinity ? this.host.now() + this.userTimeoutMs : this.userTimeoutAt;
    if (at !== this.userTimeoutAt) {
      this.userTimeoutAt = at;
      this.host.timersChanged(this);
    }
  }

  /** Called by the stack when `deadline` has passed. */
  onTimer(now: number): void {
    this.timersExpire(now);
    this.fireEvents();
  }

  private timersExpire(now: number): void {
    if (this.timeWaitAt <= now) {
      this.timeWaitAt = Infinity;
      this.enterClosed('2×MSL TIME-WAIT timeout expired', 'RFC 9293 §3.10.8', null);
      return;
    }
    if (this.userTimeoutAt <= now) {
      this.userTimeoutAt = Infinity;
      this.enterClosed(this.sndWnd === 0 ? 'user timeout: the peer kept its window closed' : 'user timeout: data unacknowledged too long', 'RFC 5482 §2',
        new TcpError('ETIMEDOUT', 'user timeout'));
      return;
    }
    if (this.delackAt <= now) {
      // RFC 5681 §4.2: the delayed-ACK time is up.
      this.delackAt = Infinity;
      this.ackNeeded = true;
      this.output();
    }
    if (this.tlpAt <= now) {
      // RFC 8985 §7.3: the probe comes first; it re-arms the RTO.
      this.tlpAt = Infinity;
      this.tailLossProbe(now);
    }
    if (this.rtxAt <= now) {
      this.rtxAt = Infinity;
      this.tlpAt = this.reoAt = Infinity;
      this.retransmissionTimeout();
      if (this.state === 'CLOSED') return;
    }
    if (this.reoAt <= now) {
      // RFC 8985 §6.3: the reordering window has passed for a segment RACK was waiting on.
      this.reoAt = Infinity;
      this.rackDetect(now);
      this.maybeEnterRecovery(now);
      this.output();
    }

    if (this.persistAt <= now) {
      this.persistAt = Infinity;
      this.persistBackoff++;
      if (this.sndWnd === 0 && seqDiff(this.dataEnd(), this.sndNxt) > 0) {
        // Unanswered probes count like retransmissions (Linux: tcp_retries2); any ACK from the
        // peer resets the count, so a live receiver may keep its window closed indefinitely
        // (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17).
        if (++this.retries > this.config.dataRetries) {
          this.enterClosed('zero-window probes unanswered', 'RFC 9293 §3.8.6.1', new TcpError('ETIMEDOUT', 'connection timed out'));
          return;
        }
        // Linux's zero-window probe: a segment with an old sequence number (SND.UNA − 1) that the
        // receiver must answer with an ACK carrying its current window (RFC 9293 §3.8.6.1, §3.10.7.4).
        this.host.note(this, 'zero window: persist probe', 'RFC 9293 §3.8.6.1');
        this.emit(seqAdd(this.sndUna, -1), ACK, EMPTY, NO_OPTIONS);
        this.armPersist();
      } else {
        this.persistBackoff = 0;
        this.output();
      }
    }
    if (this.keepaliveAt <= now && this.sndUna !== this.sndNxt) {
      // RFC 9293 §3.8.4 (MUST-26): keep-alives only when no sent data is outstanding; the
      // retransmission timer is watching the peer. Look again one idle delay from now.
      this.keepaliveAt = now + this.keepaliveDelay;
    } else if (this.keepaliveAt <= now) {
      this.keepaliveAt = Infinity;
      if (this.keepaliveProbes >= KEEPALIVE_PROBES) {
        this.enterClosed('keep-alive: peer unresponsive', 'RFC 9293 §3.8.4', new TcpError('ETIMEDOUT', 'keep-alive timeout'));
        return;
      }
      this.keepaliveProbes++;
      // RFC 9293 §3.8.4: a probe with SEG.SEQ = SND.NXT − 1 (and no data) elicits an ACK.
      this.host.note(this, `keep-alive probe ${this.keepaliveProbes}`, 'RFC 9293 §3.8.4');
      this.emit(seqAdd(this.sndNxt, -1), ACK, EMPTY, NO_OPTIONS);
      this.armKeepalive();
    }
    this.host.timersChanged(this);
  }

  /** RFC 9293 §3.8.1 / RFC 6298 §5: the retransmission timer expired. */
  private retransmissionTimeout(): void {
    if (this.sndUna === this.sndNxt) return;
    this.retries++;
    const limit = this.state === 'SYN-SENT' ? this.config.synRetries
      : this.state === 'SYN-RECEIVED' ? SYN_ACK_RETRIES : this.config.dataRetries;
    if (this.retries > limit) {
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        this.enterClosed('SYN,ACK retries exhausted', 'RFC 9293 §3.8.3', null);
      } else {
        this.enterClosed(`retransmission limit (${limit}) reached`, 'RFC 9293 §3.8.3',
          new TcpError('ETIMEDOUT', 'connection timed out'));
      }
      return;
    }
    // RFC 6298 (5.5): back off; (5.4): retransmit the earliest unacknowledged segment.
    this.rtt.backOff();
    this.rttSeq = null;
    if (!this.handshakeDone) {
      this.totalRetransmits++;
      this.synTimedOut = true;
      if (this.closeRequested && this.state === 'FIN-WAIT-1') {
        // SYN,ACK and then the FIN of a CLOSE made in SYN-RECEIVED go again.
        this.host.note(this, 'retransmission timeout: SYN,ACK and FIN resent', 'RFC 6298 §5');
        this.emit(this.iss, SYN | ACK, EMPTY, this.synOptions());
        const fin = this.sb.first();
        if (fin) this.retransmit(fin, this.host.now());
        this.armRtx();
        return;
      }
      this.host.note(this, `retransmission timeout: ${this.state === 'SYN-SENT' ? 'SYN' : 'SYN,ACK'} resent (RTO ${this.rtt.rto} ms next)`, 'RFC 6298 §5');
      this.sendSyn();
      return;
    }
    const now = this.host.now();
    this.rtoCount++;
    this.host.note(this, `retransmission timeout: resend from SND.UNA (RTO ${this.rtt.rto} ms next)`, 'RFC 6298 §5');
    // RFC 5681 §3.1 (4) / RFC 9438 §4.8: ssthresh from the flight, cwnd = 1 SMSS (the controller's rule).
    this.cc.onRetransmissionTimeout(this.flightSize(), now);
    // A SACKed segment at SND.UNA means the peer discarded what it had SACKed (RFC 2018 §8).
    if (this.sb.first()?.sacked) this.sb.clearSacks();
    // RFC 6675 §5.1, RFC 8985 §6.3: everything not SACKed is lost, resent in order as cwnd grows;
    // RFC 6582 §3.2 (1): no fast recovery until what is outstanding now is acknowledged.
    this.sb.markAllLost();
    this.lossReason = 'retransmission timeout';
    this.lossRfc = 'RFC 6298 §5';
    this.recovery = 'loss';
    this.recoveryPoint = this.sndNxt;
    this.renoDupAcks = 0;
    this.tlpOutstanding = false;
    this.sendData();
    if (this.rtxAt === Infinity) this.armRtx();
  }
}
