/**
 * One TCP connection: the TCB of RFC 9293 §3.3.1 and the event processing of §3.10, sans-IO.
 *
 * Inputs: user calls (write/read/close/abort), arriving segments (`segmentArrives`) and timer
 * expiry (`onTimer`), each at the host's current time. Outputs: segments handed to
 * `host.transmit`, state changes with their cause, and user events. Nothing here does I/O.
 */
import { ACK, FIN, PSH, RST, SYN, type TcpOptions, type TcpSegment } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGeq, seqGt, seqLeq, seqLt, seqMax } from '../wire/seq.js';
import { ByteRing } from './buffer.js';
import { RttEstimator, MAX_RTO_MS } from './rto.js';
import { isSynchronized, type TcpState } from './state.js';
import { TcpError, type ConnectionEvents, type TcpConnection, type TcpInfo } from './user.js';
import { Reassembly } from './reassembly.js';

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
  /** A passively opened connection reached ESTABLISHED: hand it to its listener. */
  passiveEstablished(c: Connection): void;
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

export class Connection implements TcpConnection {
  state: TcpState;
  events: ConnectionEvents = {};
  /** Set for connections created from a listener (affects RST handling in SYN-RECEIVED). */
  readonly passive: boolean;
  /** The listener that made this connection, until it is accepted. Opaque to the connection. */
  listener: unknown = null;

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

  // --- congestion control (RFC 5681: slow start, congestion avoidance, fast retransmit/recovery)
  cwnd = 0;
  ssthresh = 0x7fffffff;
  private dupAcks = 0;
  private inRecovery = false;
  private recover = 0;
  /** The highest sequence number sent so far (retransmission after RTO rewinds sndNxt). */
  private sndMax = 0;
  /** Whether cwnd (not the peer's window or the application) limited sending since the last ACK. */
  private cwndLimited = false;

  private noDelay = false;
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
    this.cwnd = this.initialWindow();
    // RFC 6298 (5.7): a SYN that timed out leaves no sample; start data transfer at RTO = 3 s.
    if (this.synTimedOut) this.rtt.fallBackAfterSynTimeout();
    this.retries = 0;
    this.pendingEvents |= EV_ESTABLISHED;
  }

  private enterTimeWait(cause: string): void {
    this.rtxAt = this.persistAt = this.keepaliveAt = this.userTimeoutAt = Infinity;
    this.setState('TIME-WAIT', cause, 'RFC 9293 §3.10.7.4');
    // RFC 9293 §3.4.2: wait 2×MSL so old duplicates die and a lost last ACK can be repeated.
    this.timeWaitAt = this.host.now() + 2 * this.config.mslMs;
    this.host.timersChanged(this);
  }

  private initialWindow(): number {
    // RFC 6928 §2: min(10*MSS, max(2*MSS, 14600)).
    return Math.min(INITIAL_WINDOW_SEGMENTS * this.sndMss, Math.max(2 * this.sndMss, 14600));
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

  private initSend(iss: number): void {
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.sndMax = iss;
    this.sndBufSeq = seqAdd(iss, 1);
  }

  /** SND.WND = SEG.WND, SND.WL1 = SEG.SEQ, SND.WL2 = SEG.ACK (RFC 9293 §3.10.7.3–4). */
  private takeWindow(seg: TcpSegment): void {
    this.sndWnd = seg.window;
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
  }

  /** RFC 9293 §3.7.1, RFC 6691: the send MSS is the peer's option (or the default) bounded by ours. */
  private takeSynOptions(seg: TcpSegment): void {
    const peer = seg.options.mss ?? this.config.defaultMss;
    this.sndMss = Math.max(1, Math.min(peer, this.config.linkMss));
  }

  private sendSyn(): void {
    const flags = this.state === 'SYN-SENT' ? SYN : SYN | ACK;
    this.emit(this.iss, flags, EMPTY, { mss: this.rcvMss });
    if (seqGeq(this.sndNxt, seqAdd(this.iss, 1)) === false) this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
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
    if (n < data.length) this.wantWritable = true;
    if (n > 0) this.output();
    this.fireEvents();
    return n;
  }

  read(max?: number): Uint8Array | null {
    const have = this.recvBuf.length;
    if (have === 0) return null;
    const out = this.recvBuf.shift(max === undefined ? have : Math.max(0, max));
    if (this.recvBuf.length === 0 && this.reasm.empty) this.recvBuf.release();
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

  close(): void {
    this.userClose();
    this.fireEvents();
  }

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
      sndMss: this.sndMss,
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
      bytesAcked: this.bytesAcked,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      segsOut: this.segsOut,
      segsIn: this.segsIn,
      unacked: seqDiff(this.sndMax, this.sndUna),
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
    this.rcvAdvRight = this.rcvNxt;
    this.takeSynOptions(seg);
    this.lastHeardAt = this.host.now();
    if (ackAcceptable) {
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
      this.emit(this.iss, SYN | ACK, EMPTY, { mss: this.rcvMss });
      return;
    }

    // Simultaneous open (RFC 9293 §3.5 Figure 8): in SYN-RECEIVED reached from SYN-SENT, the peer's
    // SYN,ACK acknowledges our SYN and completes the handshake. Its SYN lies left of RCV.NXT, so the
    // literal acceptability test would only ACK it; Linux makes the same exception.
    if (!this.handshakeDone && !this.passive && (f & (SYN | ACK | RST)) === (SYN | ACK) &&
      seqAdd(seg.seq, 1) === this.rcvNxt && seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax)) {
      this.takeWindow(seg);
      this.lastHeardAt = this.host.now();
      this.ackAdvance(seg.ack);
      this.completeHandshakeIn('rcv SYN,ACK in SYN-RECEIVED (simultaneous open)', 'RFC 9293 §3.5', seg.ack);
      return;
    }

    // First: sequence number check (the four cases of the acceptability test).
    const segLen = seg.payload.length + (f & SYN ? 1 : 0) + (f & FIN ? 1 : 0);
    const rcvWnd = this.promisedWindow();
    if (!this.acceptable(seg.seq, segLen, rcvWnd)) {
      // If an incoming segment is not acceptable, an acknowledgment should be sent in reply
      // (unless the RST bit is set), and the segment dropped.
      if (!(f & RST)) {
        if (this.state === 'TIME-WAIT' && (f & FIN)) {
          // RFC 9293 §3.10.7.4 eighth step: a retransmitted FIN in TIME-WAIT restarts the 2 MSL wait.
          this.timeWaitAt = this.host.now() + 2 * this.config.mslMs;
          this.host.timersChanged(this);
        }
        this.sendAck();
      }
      return;
    }

    // Second: the RST bit, RFC 5961 §3.2: exact match resets, in-window gets a challenge ACK.
    if (f & RST) {
      if (seg.seq !== this.rcvNxt) {
        this.challengeAck('in-window RST with SEG.SEQ != RCV.NXT', 'RFC 5961 §3.2');
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
      this.challengeAck('SYN in a synchronized state', 'RFC 5961 §4.2');
      return;
    }

    // Fifth: the ACK field. Without ACK the segment is dropped.
    if (!(f & ACK)) return;
    this.lastHeardAt = this.host.now();
    this.keepaliveProbes = 0;
    this.armKeepalive();

    if (!this.handshakeDone) {
      if (seqLt(this.sndUna, seg.ack) && seqLeq(seg.ack, this.sndMax)) {
        this.takeWindow(seg);
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
    if (seqGt(seg.ack, this.sndMax) || seqLt(seg.ack, oldest)) {
      // An ACK for something not yet sent: ACK and drop (RFC 9293); outside the RFC 5961 range:
      // challenge ACK (rate limited) and drop.
      this.challengeAck('ACK outside the acceptable range', 'RFC 5961 §5.2');
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

  /** RFC 5961 §3.2/§4.2/§5.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate limited (§7). */
  private challengeAck(why: string, rfc: string): void {
    if (!this.host.challengeAckAllowed()) {
      this.host.note(this, `challenge ACK suppressed by rate limit (${why})`, 'RFC 5961 §7');
      return;
    }
    this.host.note(this, `challenge ACK: ${why}`, rfc);
    this.sendAck();
  }

  /**
   * RFC 9293 §3.10.7.4 fifth step for the synchronized states. Returns false when the segment
   * must be dropped.
   */
  private processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    if (seqGt(ack, this.sndNxt) && seqLeq(ack, this.sndMax)) {
      // After an RTO rewound SND.NXT the peer may ack beyond it (data it had); accept it.
      this.sndNxt = ack;
    }
    const newData = seqLt(this.sndUna, ack);
    if (newData) {
      this.ackAdvance(ack);
    } else if (ack === this.sndUna && seg.payload.length === 0 && !(seg.flags & (FIN | SYN)) &&
      seg.window === this.sndWnd && this.sndMax !== this.sndUna) {
      this.duplicateAck();
    }
    // Update the send window: if SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
    if (seqLeq(this.sndUna, ack) &&
      (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, ack)))) {
      const opened = seg.window > this.sndWnd;
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
      case 'TIME-WAIT':
        // Only a retransmitted FIN can arrive (handled at the eighth step).
        break;
      default:
        break;
    }
    return true;
  }

  /** SND.UNA advances: free acked bytes, take an RTT sample, manage timers and congestion. */
  private ackAdvance(ack: number): void {
    const acked = seqDiff(ack, this.sndUna);
    // Free acknowledged data (SYN and FIN occupy sequence space but not the buffer).
    if (seqGt(ack, this.sndBufSeq)) {
      const n = Math.min(seqDiff(ack, this.sndBufSeq), this.sendBuf.length);
      this.sendBuf.consume(n);
      this.sndBufSeq = seqAdd(this.sndBufSeq, n);
      this.bytesAcked += n;
      if (this.sendBuf.length === 0) this.sendBuf.release();
    }
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;

    // RFC 6298 §3 (Karn): only a segment sent once gives a sample.
    if (this.rttSeq !== null && seqGt(ack, this.rttSeq)) {
      this.rtt.sample(this.host.now() - this.rttSentAt);
      this.rttSeq = null;
    }
    this.retries = 0;
    this.congestionOnAck(acked);

    // RFC 6298 (5.2)/(5.3): stop the timer when all is acked, else restart it.
    this.rtxAt = Infinity;
    if (this.sndUna !== this.sndMax) this.armRtx();
    else this.host.timersChanged(this);
    this.armUserTimeout();

    if (this.wantWritable && this.canQueueData() && this.sendBuf.free > 0) {
      this.wantWritable = false;
      this.pendingEvents |= EV_WRITABLE;
    }
  }

  // -------------------------------------------------------------- congestion control (RFC 5681)

  private congestionOnAck(acked: number): void {
    if (this.cwnd === 0) return; // not established yet
    const cwndLimited = this.cwndLimited;
    this.cwndLimited = false;
    if (this.inRecovery) {
      if (seqGeq(this.sndUna, this.recover)) {
        // RFC 6582 §3.2 (5): full acknowledgment — leave fast recovery, deflate the window.
        this.inRecovery = false;
        this.cwnd = Math.min(this.ssthresh, Math.max(this.flightSize(), this.sndMss) + this.sndMss);
      } else {
        // RFC 6582 §3.2 (5): partial acknowledgment — retransmit the next unacknowledged segment.
        this.retransmitFirst('partial ACK in fast recovery', 'RFC 6582 §3.2');
        this.cwnd = Math.max(this.cwnd - acked + this.sndMss, this.sndMss);
      }
      this.dupAcks = 0;
      return;
    }
    this.dupAcks = 0;
    // RFC 7661 §4.1: do not grow cwnd while the sender is not using it (application- or
    // receive-window-limited), or it inflates without bound.
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) {
      // RFC 5681 §3.1 slow start, with RFC 3465 ABC (L = 2 SMSS).
      this.cwnd += Math.min(acked, 2 * this.sndMss);
    } else {
      // RFC 5681 §3.1 congestion avoidance: about one SMSS per RTT.
      this.cwnd += Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd));
    }
  }

  private flightSize(): number {
    return seqDiff(this.sndMax, this.sndUna);
  }

  /** RFC 5681 §3.2 / RFC 6582: three duplicate ACKs trigger fast retransmit. */
  private duplicateAck(): void {
    if (this.cwnd === 0) return;
    this.dupAcks++;
    if (this.inRecovery) {
      this.cwnd += this.sndMss; // RFC 5681 §3.2 (4): inflate for each further duplicate.
      return;
    }
    if (this.dupAcks === 3) {
      // RFC 6582 §3.2 (2): only when the ACK covers more than `recover` do we start a new recovery.
      this.ssthresh = Math.max(Math.floor(this.flightSize() / 2), 2 * this.sndMss);
      this.recover = this.sndMax;
      this.inRecovery = true;
      this.retransmitFirst('three duplicate ACKs: fast retransmit', 'RFC 5681 §3.2');
      this.cwnd = this.ssthresh + 3 * this.sndMss;
    }
  }

  /** Resend the segment at SND.UNA without disturbing SND.NXT. */
  private retransmitFirst(why: string, rfc: string): void {
    const off = seqDiff(this.sndUna, this.sndBufSeq);
    if (off < 0) return;
    const avail = this.sendBuf.length - off;
    const len = Math.min(avail, this.sndMss);
    this.totalRetransmits++;
    this.rttSeq = null;
    this.host.note(this, `retransmit ${why}`, rfc);
    if (len > 0) {
      this.emit(this.sndUna, ACK | PSH, this.sendBuf.view(off, len), NO_OPTIONS);
    } else if (this.closeRequested && this.sndUna === this.finSeq) {
      this.emit(this.finSeq, FIN | ACK, EMPTY, NO_OPTIONS);
    }
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

    if (payload.length > 0 && canReceive && !this.finReceived) {
      // Trim what we already have (left of RCV.NXT) and what lies right of the window.
      const skip = seqDiff(this.rcvNxt, seq);
      if (skip > 0) {
        payload = payload.subarray(Math.min(skip, payload.length));
        seq = this.rcvNxt;
      }
      const offset = seqDiff(seq, this.rcvNxt);
      const room = this.recvBuf.free - offset;
      if (payload.length > room) payload = payload.subarray(0, Math.max(0, room));
      if (payload.length > 0) {
        if (offset === 0) {
          this.recvBuf.push(payload);
          this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
          // Out-of-order data already held may now be contiguous.
          const more = this.reasm.take(this.rcvNxt);
          if (more > 0) {
            this.recvBuf.commit(more);
            this.rcvNxt = seqAdd(this.rcvNxt, more);
          }
          this.bytesReceived += payload.length + more;
          this.pendingEvents |= EV_READABLE;
        } else {
          // Out of order: hold it in place in the ring (no copy later) and say where we are.
          if (this.reasm.add(seq, payload.length)) this.recvBuf.writeAt(this.recvBuf.length + offset, payload);
        }
      }
      // RFC 9293 §3.10.7.4 seventh step: acknowledge. Out-of-order data gets an immediate
      // (duplicate) ACK so the sender's fast retransmit can work (RFC 5681 §4.2).
      this.ackNeeded = true;
    } else if (payload.length > 0) {
      this.ackNeeded = true;
    }

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
    return Math.min(this.recvBuf.free, MAX_UNSCALED_WINDOW);
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
    const st = this.state;
    if (st === 'ESTABLISHED' || st === 'CLOSE-WAIT' || st === 'FIN-WAIT-1' || st === 'CLOSING' || st === 'LAST-ACK') {
      this.sendData();
    }
    if (this.ackNeeded) this.sendAck();
  }

  private sendData(): void {
    const end = this.dataEnd();
    for (;;) {
      const offset = seqDiff(this.sndNxt, this.sndBufSeq);
      const pending = seqDiff(end, this.sndNxt);
      // RFC 5681 §3.1: the usable window is min(cwnd, rwnd) minus what is in flight.
      const window = Math.min(this.sndWnd, this.cwnd);
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const usable = window - inFlight;
      if (pending > 0) {
        if (usable <= 0) {
          if (this.cwnd <= this.sndWnd) this.cwndLimited = true;
          if (this.sndWnd === 0 && inFlight === 0) this.armPersist();
          return;
        }
        const len = Math.min(pending, this.sndMss, usable);
        // RFC 9293 §3.8.6.2.1 (sender SWS avoidance) and §3.7.4 (Nagle): a short segment goes out
        // only if it empties the queue and nothing is in flight (Nagle off or a FIN follows: at once),
        // or, when the window is what limits us, it is at least half the largest window offered.
        // With nothing in flight we send anyway: the override timeout of §3.8.6.2.1 at zero delay,
        // since no ACK is coming to clock us.
        if (len < this.sndMss && inFlight > 0) {
          const windowLimited = len < pending;
          const hold = windowLimited ? len < this.maxSndWnd / 2 : !this.noDelay && !this.closeRequested;
          if (hold) return;
        }
        const isRetransmission = seqLt(this.sndNxt, this.sndMax);
        const last = len === pending;
        const finHere = last && this.closeRequested && seqAdd(this.sndNxt, len) === this.finSeq;
        const flags = ACK | (last ? PSH : 0) | (finHere ? FIN : 0);
        this.emit(this.sndNxt, flags, this.sendBuf.view(offset, len), NO_OPTIONS);
        if (isRetransmission) this.totalRetransmits++;
        else this.bytesSent += len;
        if (!isRetransmission && this.rttSeq === null) {
          this.rttSeq = this.sndNxt;
          this.rttSentAt = this.host.now();
        }
        this.sndNxt = seqAdd(this.sndNxt, len + (finHere ? 1 : 0));
        this.sndMax = seqMax(this.sndMax, this.sndNxt);
        if (this.rtxAt === Infinity) this.armRtx();
        // RFC 9293 §3.8.3 / RFC 5482: the user timeout runs from when data is first outstanding.
        if (this.userTimeoutAt === Infinity) this.armUserTimeout();
        continue;
      }
      // No data pending: send the FIN if CLOSE was called and it is not out yet.
      if (this.closeRequested && this.sndNxt === this.finSeq) {
        this.emit(this.sndNxt, FIN | ACK, EMPTY, NO_OPTIONS);
        this.sndNxt = seqAdd(this.sndNxt, 1);
        this.sndMax = seqMax(this.sndMax, this.sndNxt);
        if (this.rtxAt === Infinity) this.armRtx();
      }
      return;
    }
  }

  private sendAck(): void {
    this.emit(this.sndNxt, ACK, EMPTY, NO_OPTIONS);
  }

  /** RFC 9293 §3.10.7.3/§3.10.7.4: <SEQ=SEG.ACK><CTL=RST>. */
  private sendReset(seq: number): void {
    this.emit(seq, RST, EMPTY, NO_OPTIONS);
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
    s.options = options;
    s.payload = payload;
    if (flags & ACK || !(flags & RST)) {
      // Never move the right edge left (RFC 9293 §3.8.6.2.2), and do not offer a small increase
      // of the window (receiver SWS avoidance): advertise the promised edge until the buffer has
      // room for at least min(RCV.BUFF/2, MSS) more.
      const promised = this.promisedWindow();
      const wnd = this.advertisableWindow();
      const win = wnd - promised >= this.swsStep() || wnd === MAX_UNSCALED_WINDOW ? wnd : Math.max(promised, 0);
      s.window = win;
      if (flags & ACK) this.rcvAdvRight = seqMax(this.rcvAdvRight, seqAdd(this.rcvNxt, win));
    } else {
      s.window = 0;
    }
    if (flags & ACK) this.ackNeeded = false;
    this.segsOut++;
    this.host.transmit(this, s);
  }

  // ======================================================================== TIMERS

  /** The earliest time at which `onTimer` has something to do (Infinity when nothing). */
  get deadline(): number {
    return Math.min(this.rtxAt, this.persistAt, this.timeWaitAt, this.keepaliveAt, this.userTimeoutAt);
  }

  private armRtx(): void {
    this.rtxAt = this.host.now() + this.rtt.rto;
    this.host.timersChanged(this);
  }

  private armPersist(): void {
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

  private armUserTimeout(): void {
    const at = this.userTimeoutMs > 0 && this.sndUna !== this.sndMax ? this.host.now() + this.userTimeoutMs : Infinity;
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
      this.enterClosed('user timeout: data unacknowledged too long', 'RFC 9293 §3.10.8',
        new TcpError('ETIMEDOUT', 'user timeout'));
      return;
    }
    if (this.rtxAt <= now) {
      this.rtxAt = Infinity;
      this.retransmissionTimeout();
      if (this.state === 'CLOSED') return;
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
    if (this.keepaliveAt <= now && this.sndUna !== this.sndMax) {
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
    if (this.sndUna === this.sndMax) return;
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
        this.sndNxt = seqAdd(this.iss, 1);
        this.host.note(this, 'retransmission timeout: SYN,ACK and FIN resent', 'RFC 6298 §5');
        this.emit(this.iss, SYN | ACK, EMPTY, { mss: this.rcvMss });
        this.sendData();
        this.armRtx();
        return;
      }
      this.host.note(this, `retransmission timeout: ${this.state === 'SYN-SENT' ? 'SYN' : 'SYN,ACK'} resent (RTO ${this.rtt.rto} ms next)`, 'RFC 6298 §5');
      this.sendSyn();
      return;
    }
    this.host.note(this, `retransmission timeout: resend from SND.UNA (RTO ${this.rtt.rto} ms next)`, 'RFC 6298 §5');
    // RFC 5681 §3.1 (4): after an RTO, ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS.
    this.ssthresh = Math.max(Math.floor(this.flightSize() / 2), 2 * this.sndMss);
    this.cwnd = this.sndMss;
    this.inRecovery = false;
    this.recover = this.sndMax;
    this.dupAcks = 0;
    // Go back to SND.UNA; the data and FIN are sent again as the window allows.
    this.sndNxt = this.sndUna;
    this.sendData();
    if (this.rtxAt === Infinity) this.armRtx();
  }
}
