/**
 * The user interface of one connection (RFC 9293 §3.9.1: OPEN, SEND, RECEIVE, CLOSE, ABORT, STATUS),
 * as the socket layers (node:net look-alike, WHATWG streams), the demo and the drill runner use it.
 */
import type { TcpState } from './state.js';

/** Errors carry node's codes so the socket layer can hand them on unchanged. */
export type TcpErrorCode =
  | 'ECONNREFUSED'
  | 'ECONNRESET'
  | 'ETIMEDOUT'
  | 'EPIPE'
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  | 'ENETUNREACH'
  | 'EHOSTUNREACH'
  | 'ENOTCONN'
  | 'EINVAL'
  | 'ECONNABORTED'
  | 'ENOBUFS';

export class TcpError extends Error {
  readonly code: TcpErrorCode;
  constructor(code: TcpErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.name = 'TcpError';
  }
}

/** What a connection tells its user. All optional; called synchronously from stack processing. */
export interface ConnectionEvents {
  /** The handshake completed (ESTABLISHED reached). */
  onEstablished?(): void;
  /** New bytes can be read with `read()`. */
  onReadable?(): void;
  /** The peer sent FIN and every byte before it has been read... or is buffered: see `readableLength`. */
  onEnd?(): void;
  /** Send-buffer space freed after having been full (node's 'drain'). */
  onWritable?(): void;
  /**
   * The connection is finished for the user: both directions done (it may linger in TIME-WAIT), or it
   * failed. `error` is null for an orderly close.
   */
  onClosed?(error: import('./user.js').TcpError | null): void;
}

/** A Linux `tcp_info`-like snapshot (times in ms). */
export interface TcpInfo {
  state: TcpState;
  rto: number;
  srtt: number;
  rttvar: number;
  cwnd: number;
  ssthresh: number;
  sndMss: number;
  rcvMss: number;
  sndWnd: number;
  rcvWnd: number;
  sndUna: number;
  sndNxt: number;
  rcvNxt: number;
  iss: number;
  irs: number;
  retransmits: number;
  totalRetransmits: number;
  /** The congestion control algorithm in use. */
  congestionControl: 'cubic' | 'newreno';
  /** 'open', 'recovery' (fast recovery, RFC 6675) or 'loss' (after an RTO). */
  caState: 'open' | 'recovery' | 'loss';
  /** RFC 6675 pipe: bytes thought to be in the network. */
  pipe: number;
  /** Bytes SACKed by the peer above SND.UNA, and bytes deemed lost awaiting retransmission. */
  sacked: number;
  lost: number;
  /** Fast recoveries entered, retransmission timeouts, tail loss probes sent (RFC 8985 §7). */
  recoveries: number;
  rtoExpirations: number;
  tailLossProbes: number;
  dsacksReceived: number;
  reorderingSeen: boolean;
  /** Segments dropped by PAWS (RFC 7323 §5). */
  pawsDrops: number;
  /** Challenge ACKs not sent because of the per-connection (500 ms) or stack-wide limit (RFC 5961 §7). */
  challengeAcksSuppressed: number;
  /** Negotiated options: window scale shifts (null when not in use), SACK, timestamps. */
  windowScaling: { snd: number; rcv: number } | null;
  sack: boolean;
  timestamps: boolean;
  /** Current buffer sizes (they grow by auto-tuning). */
  sndBufSize: number;
  rcvBufSize: number;
  bytesAcked: number;
  bytesReceived: number;
  bytesSent: number;
  segsOut: number;
  segsIn: number;
  unacked: number;
  sndBufUsed: number;
  rcvBufUsed: number;
}

/** One connection as its user sees it. Implemented by tcp/connection.ts. */
export interface TcpConnection {
  readonly state: TcpState;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Set by the user (socket layer) to receive events. */
  events: ConnectionEvents;

  /** SEND: copy up to `data.length` bytes into the send buffer; returns how many were taken (0 when full).
   *  Throws TcpError EPIPE after CLOSE/when the connection cannot send. */
  write(data: Uint8Array): number;
  /** Free space in the send buffer. */
  readonly writableSpace: number;
  /** RECEIVE: take up to `max` buffered bytes (all when omitted); null when none are buffered. */
  read(max?: number): Uint8Array | null;
  /** Bytes buffered for reading. */
  readonly readableLength: number;
  /** True once the peer's FIN has been received (no more data will arrive beyond what is buffered). */
  readonly finReceived: boolean;
  /**
   * CLOSE: no more data from this side; FIN after what is queued (a half-close, RFC 9293 §3.10.4).
   * `discardInput`: the application will not read either (a socket's close(), not shutdown()):
   * data that still arrives is answered with RST (RFC 1122 §4.2.2.13).
   */
  close(options?: { discardInput?: boolean }): void;
  /** ABORT: RST now, discard everything (RFC 9293 §3.10.5). */
  abort(): void;
  /** STATUS (RFC 9293 §3.10.6). */
  info(): TcpInfo;
  /** Nagle's algorithm off (true) or on (false). */
  setNoDelay(noDelay: boolean): void;
  /** Keep-alive probing (RFC 9293 §3.8.4); delay in ms before the first probe. */
  setKeepAlive(enable: boolean, delayMs?: number): void;
  /**
   * User timeout (RFC 5482, RFC 9293 §3.8.3) in ms, 0 = off: abort with ETIMEDOUT when sent data stays
   * unacknowledged, or queued data waits on a zero window, this long without progress.
   */
  setUserTimeout(ms: number): void;
}

/** A passive OPEN. Connections that finish the handshake are handed to `onConnection` or queued. */
export interface TcpListener {
  readonly localAddress: string;
  readonly localPort: number;
  /** When set, established connections are handed over at once instead of queueing. */
  onConnection: ((c: TcpConnection) => void) | null;
  /** Called when a queued connection can be taken with `accept()`. */
  onAcceptable: (() => void) | null;
  /** Take the oldest established, not yet accepted connection. */
  accept(): TcpConnection | null;
  /** Stop listening: queued connections are reset, new SYNs are refused. */
  close(): void;
}
