/** A passive OPEN (RFC 9293 §3.10.1): a port in LISTEN, its half-open connections and accept queue. */
import type { Connection } from '../tcp/connection.js';
import type { TcpConnection, TcpListener } from '../tcp/user.js';

export class Listener implements TcpListener {
  onConnection: ((c: TcpConnection) => void) | null = null;
  onAcceptable: (() => void) | null = null;
  /** Connections in SYN-RECEIVED made from this listener. */
  readonly halfOpen = new Set<Connection>();
  /** Established, not yet accepted. */
  readonly acceptQueue: Connection[] = [];
  closed = false;

  constructor(
    readonly localAddress: string,
    readonly localPort: number,
    /** Family filter: null accepts both. */
    readonly family: 4 | 6 | null,
    readonly backlog: number,
    private readonly onClose: (l: Listener) => void,
    /** Half-open connections kept at most (the SYN queue); beyond it, SYN cookies or drops. */
    readonly synBacklog: number = Math.max(backlog, 128),
  ) {}

  /**
   * When this listener last answered a SYN with a cookie (stack time, ms). An ACK that finds no
   * connection is checked as a cookie only within COOKIE_VALID_MS of it (Linux
   * tcp_synq_no_recent_overflow); otherwise it is a bad ACK in LISTEN (RFC 9293 §3.10.7.2).
   */
  lastCookieAt = -Infinity;

  /** Linux-like (sk_acceptq_is_full): a SYN is dropped while the accept queue is full (the client retries). */
  get acceptFull(): boolean {
    return this.acceptQueue.length >= this.backlog;
  }

  /** The SYN queue is full: a new SYN gets a cookie, or is dropped without cookies. */
  get synQueueFull(): boolean {
    return this.halfOpen.size >= this.synBacklog;
  }

  /** Either queue is full (what `full` meant before SYN cookies). */
  get full(): boolean {
    return this.acceptFull || this.synQueueFull;
  }

  /**
   * The handshake completed: out of the SYN queue and, unless a callback takes connections, into the
   * accept queue — at once, so `synQueueFull`/`acceptFull` count it even while its user events wait
   * for the end of a burst of arriving packets (then `established` follows).
   */
  admit(c: Connection): void {
    this.halfOpen.delete(c);
    if (this.onConnection === null) this.acceptQueue.push(c);
  }

  /** The connection's ESTABLISHED event fires: hand it to the user (callback, or accept()). */
  established(c: Connection): void {
    this.halfOpen.delete(c);
    // Admitted just before (the most recent entry, usually): searched from the end.
    const i = this.acceptQueue.lastIndexOf(c);
    if (this.onConnection !== null) {
      if (i >= 0) this.acceptQueue.splice(i, 1);
      c.listener = null;
      this.onConnection(c);
      return;
    }
    if (i < 0) this.acceptQueue.push(c);
    this.onAcceptable?.();
  }

  forget(c: Connection): void {
    this.halfOpen.delete(c);
    const i = this.acceptQueue.indexOf(c);
    if (i >= 0) this.acceptQueue.splice(i, 1);
  }

  accept(): TcpConnection | null {
    const c = this.acceptQueue.shift();
    if (c === undefined) return null;
    c.listener = null;
    return c;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this);
    // Connections nobody accepted are reset (as Linux does on close() of a listening socket).
    for (const c of [...this.halfOpen, ...this.acceptQueue]) c.abort();
    this.halfOpen.clear();
    this.acceptQueue.length = 0;
  }
}
