/**
 * One relayed TCP connection: the guest's connection (terminated by synack) joined to an upstream
 * stream, with backpressure end to end and no unbounded buffer between them:
 *
 *   guest → upstream: bytes are read from the TCB only while the upstream takes them
 *     (`write` true). When it is full the relay stops reading, the TCB's receive buffer fills and
 *     the window it advertises shrinks to zero (RFC 9293 §3.8.6.2) — the guest waits, memory does
 *     not grow; `ondrain` resumes.
 *   upstream → guest: bytes go into the TCB's send buffer (`write` takes what fits); what does not
 *     fit is held and the upstream paused until the guest acknowledges (`onWritable`), so the
 *     upstream is read only as fast as the guest takes it.
 *
 * Memory per connection is therefore the TCB's two buffers (allocated on first data, released when
 * drained) plus at most what an upstream delivers between `pause()` and its taking effect.
 *
 * Closing: a FIN from either side becomes a half-close on the other where the upstream can express
 * one (direct); Wisp streams cannot, and the guest's FIN closes the stream (the README says so). A
 * reset or failure on either side aborts the other: RST to the guest, destroy() upstream.
 */
import type { TcpConnection, TcpError } from '../tcp/user.js';
import type { UpstreamError, UpstreamStream } from './upstream.js';

/** Largest read from the guest's receive buffer at once (a few segments' worth per upstream write). */
const READ_CHUNK = 64 * 1024;

export interface RelayStats {
  /** Guest → upstream. */
  bytesUp: number;
  /** Upstream → guest. */
  bytesDown: number;
  /** Why it ended, null for an orderly close both ways: 'guest: ECONNRESET …', 'upstream: reset …'. */
  error: string | null;
}

export interface RelayOptions {
  /** Once, when both sides are closed. */
  onClose?: (stats: RelayStats) => void;
}

export class TcpRelay implements RelayStats {
  bytesUp = 0;
  bytesDown = 0;
  error: string | null = null;
  /** Upstream data waiting for room in the guest's send buffer. */
  private held: Uint8Array[] = [];
  private upFull = false;
  private guestFinPassed = false;
  private upEnded = false;
  private guestClosed = false;
  private upClosed = false;
  private finished = false;

  constructor(readonly guest: TcpConnection, readonly up: UpstreamStream, private readonly options: RelayOptions = {}) {
    guest.events = {
      onReadable: () => this.schedulePumpUp(),
      onEnd: () => this.pumpUp(),
      onWritable: () => this.flushDown(),
      onClosed: (e) => this.guestClosedWith(e),
    };
    up.ondata = (d) => this.down(d);
    up.onend = () => this.upEnd();
    up.ondrain = () => {
      this.upFull = false;
      this.pumpUp();
    };
    up.onclose = (e) => this.upClosedWith(e);
    // The relay adds no delay of its own: the guest's and the destination's Nagle decide.
    guest.setNoDelay(true);
    this.pumpUp();
  }

  /**
   * The stack reports each segment of a burst as it is processed: reading once after the burst
   * (a microtask, in Node and in a browser) hands the upstream one large write instead of one per
   * segment — fewer system calls for direct, fewer packets (and credits) for Wisp.
   */
  private schedulePumpUp(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(this.pumpLater);
  }

  private pumpScheduled = false;
  private readonly pumpLater = (): void => {
    this.pumpScheduled = false;
    this.pumpUp();
  };

  /** Guest → upstream, while the upstream takes it. */
  private pumpUp(): void {
    if (this.upClosed) return;
    while (!this.upFull) {
      const d = this.guest.read(READ_CHUNK);
      if (d === null) break;
      this.bytesUp += d.length;
      if (!this.up.write(d)) this.upFull = true;
    }
    if (!this.guestFinPassed && this.guest.finReceived && this.guest.readableLength === 0) {
      // RFC 9293 §3.10.7.4: the guest's FIN, after its last byte — a half-close upstream.
      this.guestFinPassed = true;
      this.up.end();
    }
  }

  /** Upstream → guest: into the send buffer, the rest held with the upstream paused. */
  private down(d: Uint8Array): void {
    if (this.guestClosed) return;
    this.bytesDown += d.length;
    if (this.held.length > 0) {
      this.held.push(d);
      return;
    }
    let n: number;
    try {
      n = this.guest.write(d);
    } catch {
      // EPIPE: the guest's side cannot take data any more (it reset or closed).
      this.up.destroy();
      return;
    }
    if (n < d.length) {
      this.held.push(n === 0 ? d : d.subarray(n));
      this.up.pause();
    }
  }

  private flushDown(): void {
    while (this.held.length > 0 && !this.guestClosed) {
      const d = this.held[0]!;
      let n: number;
      try {
        n = this.guest.write(d);
      } catch {
        this.held = [];
        this.up.destroy();
        return;
      }
      if (n < d.length) {
        this.held[0] = d.subarray(n);
        return;
      }
      this.held.shift();
    }
    if (this.upEnded) this.guest.close();
    else if (!this.upClosed) this.up.resume();
  }

  private upEnd(): void {
    if (this.upEnded) return;
    this.upEnded = true;
    // The destination's FIN: ours follows the bytes still held (RFC 9293 §3.10.4).
    if (this.held.length === 0 && !this.guestClosed) this.guest.close();
  }

  private upClosedWith(e: UpstreamError | null): void {
    if (this.upClosed) return;
    this.upClosed = true;
    if (e !== null) {
      this.error ??= `upstream: ${e.message}`;
      // A reset (or failure) far away becomes a reset here: the guest must not take a truncated
      // stream for a complete one.
      this.held = [];
      if (!this.guestClosed) this.guest.abort();
    } else {
      this.upEnd();
    }
    this.maybeFinish();
  }

  private guestClosedWith(e: TcpError | null): void {
    if (this.guestClosed) return;
    this.guestClosed = true;
    this.held = [];
    if (e !== null) this.error ??= `guest: ${e.message}`;
    if (!this.upClosed) {
      // A reset or a timeout tears the upstream down. An orderly close means both FINs went
      // through: what the guest sent and the upstream has not yet taken still goes, then its FIN.
      if (e !== null) this.up.destroy();
      else this.pumpUp();
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.finished || !this.guestClosed || !this.upClosed) return;
    this.finished = true;
    this.options.onClose?.(this);
  }

  /** Tears both sides down (the gateway closing): RST to the guest, destroy upstream. */
  abort(): void {
    if (!this.guestClosed) this.guest.abort();
    if (!this.upClosed) this.up.destroy();
  }
}

/** Relays `guest` and `up` until both close (see TcpRelay). */
export function relayTcp(guest: TcpConnection, up: UpstreamStream, options?: RelayOptions): TcpRelay {
  return new TcpRelay(guest, up, options);
}
