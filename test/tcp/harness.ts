/**
 * A test host for one sans-IO `Connection`, in the style of smoltcp's socket/tcp.rs tests: it
 * records every transmitted segment (copied: the core reuses its segment object), state changes
 * with their causes, notes and user events, and keeps a settable virtual `now`. Helpers build a
 * connection already in each state by driving it through real segments, with fixed ISNs so every
 * expected number in a test is a literal:
 *
 *   local  10.0.0.1:49152  ISS = 1000  (SND.NXT = 1001 after the SYN)
 *   remote 10.0.0.2:80     IRS = 5000  (RCV.NXT = 5001 after the SYN)
 *
 * Our receive buffer is 1024 bytes, so the window we offer starts at 1024.
 *
 * The options of RFC 7323 and RFC 2018 are off in DEFAULT_CONFIG; a test that turns one on in
 * `config` also makes the peer offer it on its SYN (`peerWscale`, `peerSackOk`, `peerTsVal`), and
 * puts timestamps or SACK blocks on injected segments with `tsVal` / `sack` (see `SegSpec`).
 */
import assert from 'node:assert/strict';
import { Connection, type ConnectionConfig, type ConnectionHost } from '../../src/tcp/connection.js';
import type { TcpState } from '../../src/tcp/state.js';
import type { TcpError } from '../../src/tcp/user.js';
import { ACK, FIN, RST, SYN, flagNames, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';

export const LOCAL_ISS = 1000;
export const REMOTE_IRS = 5000;
export const LOCAL_PORT = 49152;
export const REMOTE_PORT = 80;
export const RCV_BUF = 1024;
export const MSL = 30_000;

/** What the connection sent: the header fields that matter, and a copy of the payload. */
export interface Sent {
  flags: string;
  seq: number;
  ack: number;
  win: number;
  len: number;
}

export interface SentFull extends Sent {
  payload: Uint8Array;
  options: TcpOptions;
  t: number;
}

export interface StateChange {
  from: TcpState;
  to: TcpState;
  cause: string;
  rfc: string;
}

export const DEFAULT_CONFIG: ConnectionConfig = {
  mslMs: MSL,
  synRetries: 6,
  dataRetries: 15,
  sendBufferSize: 4096,
  receiveBufferSize: RCV_BUF,
  linkMss: 1460,
  defaultMss: 536,
  // The per-state tests predate these mechanisms and assert RFC 9293 behaviour alone: each is off
  // here, and the tests of each mechanism turn it on.
  receiveBufferMax: RCV_BUF,
  sendBufferMax: 4096,
  windowScaling: false,
  timestamps: false,
  sack: false,
  delayedAckMs: 0,
  congestionControl: 'newreno',
};

export class TestHost implements ConnectionHost {
  t = 0;
  sent: SentFull[] = [];
  states: StateChange[] = [];
  notes: Array<{ what: string; rfc: string | undefined }> = [];
  /** User events in the order delivered, e.g. 'established', 'readable', 'end', 'closed:ECONNRESET'. */
  events: string[] = [];
  releasedCount = 0;
  passiveEstablishedCount = 0;
  challengeAcksAllowed = true;
  /** The TSval of the last segment we sent with a timestamp (what the peer echoes); kept by `clear`. */
  lastTsVal: number | undefined = undefined;
  /** The last SYN or SYN,ACK we sent (its options are the offer); kept by `clear`. */
  lastSyn: SentFull | undefined = undefined;

  now(): number {
    return this.t;
  }

  transmit(_c: Connection, seg: TcpSegment): void {
    const options: TcpOptions = { ...seg.options };
    if (seg.options.timestamp) {
      options.timestamp = { ...seg.options.timestamp };
      this.lastTsVal = seg.options.timestamp.val;
    }
    if (seg.options.sack) options.sack = seg.options.sack.map(([l, r]): [number, number] => [l, r]);
    const s: SentFull = {
      flags: flagNames(seg.flags).join(','),
      seq: seg.seq,
      ack: seg.ack,
      win: seg.window,
      len: seg.payload.length,
      payload: Uint8Array.from(seg.payload),
      options,
      t: this.t,
    };
    this.sent.push(s);
    if (seg.flags & SYN) this.lastSyn = s;
  }

  timersChanged(): void {}

  stateChanged(_c: Connection, from: TcpState, to: TcpState, cause: string, rfc: string): void {
    this.states.push({ from, to, cause, rfc });
  }

  released(): void {
    this.releasedCount++;
  }

  passiveEstablished(): void {
    this.passiveEstablishedCount++;
  }

  challengeAckAllowed(): boolean {
    return this.challengeAcksAllowed;
  }

  note(_c: Connection, what: string, rfc?: string): void {
    this.notes.push({ what, rfc });
  }

  /** The segments sent since the last call (header summary), and forget them. */
  take(): Sent[] {
    const out = this.sent.map(({ flags, seq, ack, win, len }) => ({ flags, seq, ack, win, len }));
    this.sent = [];
    return out;
  }

  /** Like `take` but with payloads and send times. */
  takeFull(): SentFull[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }

  clear(): void {
    this.sent = [];
    this.states = [];
    this.notes = [];
    this.events = [];
  }
}

/** A connection and its host. */
export interface Rig {
  host: TestHost;
  conn: Connection;
}

export interface RigOptions {
  config?: Partial<ConnectionConfig>;
  /** The MSS option the peer sends on its SYN / SYN,ACK (omit the option with null). */
  peerMss?: number | null;
  /** The window the peer offers on its SYN / SYN,ACK. */
  peerWindow?: number;
  /** Time at which the peer's SYN,ACK (active) or ACK (passive) arrives; the first RTT sample. */
  rttMs?: number;
  /** RFC 7323 §2: the window-scale shift on the peer's SYN / SYN,ACK (omitted: no WS option). */
  peerWscale?: number;
  /** RFC 2018 §2: SACK-permitted on the peer's SYN / SYN,ACK. */
  peerSackOk?: boolean;
  /**
   * RFC 7323 §3: the TSval on the peer's SYN / SYN,ACK (omitted: no timestamps). A SYN,ACK echoes
   * the TSval of our SYN; the peer's first SYN echoes 0.
   */
  peerTsVal?: number;
}

export function newRig(passive: boolean, opts: RigOptions = {}): Rig {
  const host = new TestHost();
  const conn = new Connection(host, { ...DEFAULT_CONFIG, ...opts.config }, '10.0.0.1', LOCAL_PORT, '10.0.0.2', REMOTE_PORT, passive);
  conn.events = {
    onEstablished: () => host.events.push('established'),
    onReadable: () => host.events.push('readable'),
    onEnd: () => host.events.push('end'),
    onWritable: () => host.events.push('writable'),
    onClosed: (e: TcpError | null) => host.events.push(`closed:${e === null ? 'null' : e.code}`),
  };
  return { host, conn };
}

export interface SegSpec {
  seq: number;
  ack?: number;
  flags: number;
  win?: number;
  payload?: Uint8Array | string;
  options?: TcpOptions;
  /** RFC 7323 §3: a timestamps option with this TSval; TSecr is `tsEcr`, else (with `send`) the
   *  TSval of the last segment we sent, as a peer would echo it. */
  tsVal?: number;
  tsEcr?: number;
  /** RFC 2018 §3: SACK blocks [left, right). */
  sack?: Array<[number, number]>;
}

/** A segment from the peer (10.0.0.2:80 → 10.0.0.1:49152). */
export function seg(s: SegSpec): TcpSegment {
  const payload = typeof s.payload === 'string' ? new TextEncoder().encode(s.payload) : s.payload ?? new Uint8Array(0);
  let options = s.options ?? {};
  if (s.tsVal !== undefined) options = { ...options, timestamp: { val: s.tsVal >>> 0, ecr: (s.tsEcr ?? 0) >>> 0 } };
  if (s.sack !== undefined) options = { ...options, sack: s.sack.map(([l, r]): [number, number] => [l >>> 0, r >>> 0]) };
  return {
    srcPort: REMOTE_PORT,
    dstPort: LOCAL_PORT,
    seq: s.seq >>> 0,
    ack: (s.ack ?? 0) >>> 0,
    flags: s.flags,
    window: s.win ?? 65535,
    urgent: 0,
    options,
    payload,
  };
}

/** `n` bytes with values start, start+1, … (mod 256), so reordering is visible. */
export function bytes(n: number, start = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

export function text(b: Uint8Array | null): string {
  return b === null ? '<null>' : new TextDecoder().decode(b);
}

/** Inject a segment from the peer. */
export function send(r: Rig, s: SegSpec): void {
  const echo = s.tsVal !== undefined && s.tsEcr === undefined ? { tsEcr: r.host.lastTsVal ?? 0 } : {};
  r.conn.segmentArrives(seg({ ...s, ...echo }));
}

/**
 * Let virtual time run to `host.t + ms`, firing the connection's timers at their exact deadlines
 * (as the stack's timer wheel would).
 */
export function advance(r: Rig, ms: number): void {
  const target = r.host.t + ms;
  for (let guard = 0; guard < 100_000; guard++) {
    const d = r.conn.deadline;
    if (d > target) break;
    r.host.t = Math.max(r.host.t, d);
    r.conn.onTimer(r.host.t);
  }
  r.host.t = target;
}

/** Run time to the connection's next deadline (asserting there is one) and return it. */
export function fireNext(r: Rig): number {
  const d = r.conn.deadline;
  assert.notEqual(d, Infinity, 'a timer is armed');
  r.host.t = Math.max(r.host.t, d);
  r.conn.onTimer(r.host.t);
  return r.host.t;
}

/** The options of the peer's SYN (`ecr` 0) or SYN,ACK (`ecr`: the TSval of our SYN). */
function peerSynOptions(opts: RigOptions, ecr = 0): TcpOptions {
  const mss = opts.peerMss === undefined ? 1460 : opts.peerMss;
  const o: TcpOptions = mss === null ? {} : { mss };
  if (opts.peerSackOk) o.sackPermitted = true;
  if (opts.peerTsVal !== undefined) o.timestamp = { val: opts.peerTsVal >>> 0, ecr: ecr >>> 0 };
  if (opts.peerWscale !== undefined) o.wscale = opts.peerWscale;
  return o;
}

// ------------------------------------------------------------------ connections in each state

/** Active OPEN: our SYN <SEQ=1000> is out; SYN-SENT. */
export function synSent(opts: RigOptions = {}): Rig {
  const r = newRig(false, opts);
  r.conn.openActive(LOCAL_ISS);
  assert.equal(r.conn.state, 'SYN-SENT');
  r.host.clear();
  return r;
}

/** Passive: a listener got <SEQ=5000><CTL=SYN>; we answered SYN,ACK <SEQ=1000><ACK=5001>. */
export function synReceived(opts: RigOptions = {}): Rig {
  const r = newRig(true, opts);
  r.conn.openPassive(seg({ seq: REMOTE_IRS, flags: SYN, win: opts.peerWindow ?? 65535, options: peerSynOptions(opts) }), LOCAL_ISS);
  assert.equal(r.conn.state, 'SYN-RECEIVED');
  r.host.clear();
  return r;
}

/** Simultaneous open (RFC 9293 §3.5 Figure 7): SYN-SENT, then the peer's bare SYN crosses ours. */
export function synReceivedSimultaneous(opts: RigOptions = {}): Rig {
  const r = synSent(opts);
  send(r, { seq: REMOTE_IRS, flags: SYN, win: opts.peerWindow ?? 65535, options: peerSynOptions(opts) });
  assert.equal(r.conn.state, 'SYN-RECEIVED');
  r.host.clear();
  return r;
}

/** Active open completed by <SEQ=5000><ACK=1001><CTL=SYN,ACK> after `rttMs` (default 10). */
export function established(opts: RigOptions = {}): Rig {
  const r = synSent(opts);
  r.host.t += opts.rttMs ?? 10;
  send(r, { seq: REMOTE_IRS, ack: LOCAL_ISS + 1, flags: SYN | ACK, win: opts.peerWindow ?? 65535, options: peerSynOptions(opts, r.host.lastTsVal) });
  assert.equal(r.conn.state, 'ESTABLISHED');
  r.host.clear();
  return r;
}

/** ESTABLISHED, then CLOSE: FIN <SEQ=1001> sent. SND.NXT = 1002. */
export function finWait1(opts: RigOptions = {}): Rig {
  const r = established(opts);
  r.conn.close();
  assert.equal(r.conn.state, 'FIN-WAIT-1');
  r.host.clear();
  return r;
}

/** FIN-WAIT-1, then the peer acks our FIN (<ACK=1002>). */
export function finWait2(opts: RigOptions = {}): Rig {
  const r = finWait1(opts);
  send(r, { seq: REMOTE_IRS + 1, ack: LOCAL_ISS + 2, flags: ACK });
  assert.equal(r.conn.state, 'FIN-WAIT-2');
  r.host.clear();
  return r;
}

/** ESTABLISHED, then the peer's FIN <SEQ=5001>: RCV.NXT = 5002. */
export function closeWait(opts: RigOptions = {}): Rig {
  const r = established(opts);
  send(r, { seq: REMOTE_IRS + 1, ack: LOCAL_ISS + 1, flags: FIN | ACK });
  assert.equal(r.conn.state, 'CLOSE-WAIT');
  r.host.clear();
  return r;
}

/** FIN-WAIT-1, then the peer's FIN crosses ours (simultaneous close, <ACK=1001>). */
export function closing(opts: RigOptions = {}): Rig {
  const r = finWait1(opts);
  send(r, { seq: REMOTE_IRS + 1, ack: LOCAL_ISS + 1, flags: FIN | ACK });
  assert.equal(r.conn.state, 'CLOSING');
  r.host.clear();
  return r;
}

/** CLOSE-WAIT, then CLOSE: FIN <SEQ=1001><ACK=5002> sent. */
export function lastAck(opts: RigOptions = {}): Rig {
  const r = closeWait(opts);
  r.conn.close();
  assert.equal(r.conn.state, 'LAST-ACK');
  r.host.clear();
  return r;
}

/** FIN-WAIT-2, then the peer's FIN <SEQ=5001><ACK=1002>: TIME-WAIT, RCV.NXT = 5002. */
export function timeWait(opts: RigOptions = {}): Rig {
  const r = finWait2(opts);
  send(r, { seq: REMOTE_IRS + 1, ack: LOCAL_ISS + 2, flags: FIN | ACK });
  assert.equal(r.conn.state, 'TIME-WAIT');
  r.host.clear();
  return r;
}

export { ACK, FIN, RST, SYN };

/** An expected segment, as `TestHost.take` reports it. */
export function out(flags: string, seq: number, ack: number, win: number, len = 0): Sent {
  return { flags, seq, ack, win, len };
}

/** Assert exactly these segments were sent since the last check. */
export function expectSent(r: Rig, expected: Sent[], message?: string): void {
  assert.deepEqual(r.host.take(), expected, message);
}
