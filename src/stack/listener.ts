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
  ) {}

  /** Linux-like: a SYN is dropped while the accept queue is full (the client retries). */
  get full(): boolean {
    return this.acceptQueue.length >= this.backlog || this.halfOpen.size >= Math.max(this.backlog, 128);
  }

  established(c: Connection): void {
    this.halfOpen.delete(c);
    if (this.onConnection !== null) {
      c.listener = null;
      this.onConnection(c);
      return;
    }
    this.acceptQueue.push(c);
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
