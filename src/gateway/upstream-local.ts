/**
 * The in-process way out (issue 15): each connection the guest opens is handed to a JavaScript
 * handler — a page serving HTTP to its VM, a test playing the far end. Core: no Node built-ins;
 * WHATWG streams, which Node and browsers both have.
 *
 *   new LocalUpstream({
 *     tcp(conn) {                                   // conn.target: where the guest connected
 *       if (conn.target.port !== 80) return false;  // refuse: the guest's SYN gets a RST
 *       void serve(conn.readable, conn.writable);   // bytes from / to the guest
 *     },
 *     udp(flow) { flow.onmessage = (d) => flow.send(d); },   // an echo
 *   });
 *
 * Backpressure goes through the streams' queues: the guest's bytes are queued in `readable` up to
 * its high-water mark, then the relay stops reading the guest (its receive window closes) until
 * the handler reads; the handler's writes wait on `writer.ready` while the relay cannot pass them
 * to the guest. `writable.close()` half-closes (FIN to the guest) and `readable` ends at the
 * guest's FIN; `writable.abort()` resets the connection, and a reset from the guest errors both.
 */
import type { DnsUpstream } from '../services/dns-server.js';
import { formatEndpoint } from '../wire/address.js';
import { UpstreamError, type Upstream, type UpstreamDatagrams, type UpstreamStream, type UpstreamTarget } from './upstream.js';

/** One TCP connection from the guest, as the handler sees it. */
export interface LocalTcpConnection {
  /** The address and port the guest connected to. */
  readonly target: UpstreamTarget;
  /** Bytes from the guest; closes at its FIN, errors when the connection is reset. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the guest (Uint8Array chunks); `close()`: FIN after them; `abort()`: RST. */
  readonly writable: WritableStream<Uint8Array>;
}

/** One UDP flow from the guest (its address and port ↔ `target`). */
export interface LocalUdpFlow {
  readonly target: UpstreamTarget;
  /** A datagram from the guest. */
  onmessage: ((data: Uint8Array) => void) | null;
  /** The flow ended (the gateway's idle timeout, `close()`, the upstream closed). Once. */
  onclose: (() => void) | null;
  /** A datagram to the guest (the data may be kept: pass a copy if you reuse it). */
  send(data: Uint8Array): void;
  close(): void;
}

/**
 * A handler refuses (the guest's SYN gets a RST, its UDP an ICMP port unreachable) by throwing or
 * returning false — an async one before its first `await`; an async handler that rejects later
 * resets the connection (ends the flow).
 */
export type LocalTcpHandler = (conn: LocalTcpConnection) => void | boolean | Promise<void | boolean>;
export type LocalUdpHandler = (flow: LocalUdpFlow) => void | boolean | Promise<void | boolean>;

export interface LocalUpstreamOptions {
  /** Missing: every TCP connection is refused. */
  tcp?: LocalTcpHandler;
  /** Missing: every UDP flow is refused (the guest gets ICMP port unreachable). */
  udp?: LocalUdpHandler;
  /** A resolver for the guest's DNS, if the page has one. */
  dns?: DnsUpstream;
  /** Targets may be host names (with the gateway's fake-IP mode). Default false. */
  byName?: boolean;
  /** Bytes from the guest `readable` queues before the guest is throttled. Default 64 KiB. */
  readableHighWaterMark?: number;
  /** Bytes the handler's `writable` queues before `writer.ready` waits. Default 64 KiB. */
  writableHighWaterMark?: number;
}

function describe(target: UpstreamTarget): string {
  return formatEndpoint(target.host, target.port);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Calls a handler and tells whether it accepted. Refused: it threw or returned false, or — an
 * async handler — its promise settled that way before its first real wait (by the next microtask
 * turn; the rejection of an async function that throws before any `await` is already queued).
 * A rejection after that goes to `later` (the connection is open by then: it is reset).
 */
async function decide(call: () => unknown, later: (err: unknown) => void): Promise<{ refused: string } | null> {
  let result: unknown;
  try {
    result = call();
  } catch (err) {
    return { refused: `handler threw: ${errorMessage(err)}` };
  }
  if (result === false) return { refused: 'refused by the handler' };
  if (!isThenable(result)) return null;
  let early: { refused: string } | null = null;
  let decided = false;
  result.then(
    (v) => {
      if (!decided && v === false) early = { refused: 'refused by the handler' };
    },
    (err: unknown) => {
      if (!decided) early = { refused: `handler threw: ${errorMessage(err)}` };
      else later(err);
    },
  );
  await Promise.resolve();
  decided = true;
  return early;
}

/**
 * Both halves of one local TCP connection: the UpstreamStream the relay drives, and the streams the
 * handler holds.
 */
class LocalStream implements UpstreamStream {
  ondata: ((data: Uint8Array) => void) | null = null;
  onend: (() => void) | null = null;
  ondrain: (() => void) | null = null;
  onclose: ((error: UpstreamError | null) => void) | null = null;
  readonly halfClose = true;

  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;

  #readCtl!: ReadableStreamDefaultController<Uint8Array>;
  #writeCtl!: WritableStreamDefaultController;
  /** The relay has had its turn to set the callbacks (a macrotask after openTcp resolved). */
  #live = false;
  #liveWaiters: Array<() => void> = [];
  #paused = false;
  #resumeWaiters: Array<() => void> = [];
  /** write() returned false: call ondrain when the handler has read below the high-water mark. */
  #wantDrain = false;
  /** guest → handler finished (FIN passed on, or the handler cancelled reading). */
  #inDone = false;
  /** handler → guest finished (FIN passed to the relay). */
  #outDone = false;
  #closed = false;

  constructor(readonly target: UpstreamTarget, readableHwm: number, writableHwm: number, readonly forget: () => void) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#readCtl = c;
        },
        pull: () => {
          // The handler read below the high-water mark: the relay may read the guest again.
          if (this.#wantDrain && !this.#closed) {
            this.#wantDrain = false;
            this.ondrain?.();
          }
        },
        cancel: () => {
          // The handler will not read: what the guest still sends is dropped, and it can finish.
          this.#inDone = true;
          if (this.#wantDrain) {
            this.#wantDrain = false;
            this.ondrain?.();
          }
          this.#maybeDone();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: readableHwm }),
    );
    this.writable = new WritableStream<Uint8Array>(
      {
        start: (c) => {
          this.#writeCtl = c;
        },
        write: async (chunk) => {
          if (!(chunk instanceof Uint8Array)) {
            const e = new TypeError(`local upstream ${describe(target)}: write a Uint8Array (got ${typeof chunk})`);
            this.#fail(new UpstreamError('error', e.message));
            throw e;
          }
          await this.#ready();
          if (this.#closed) throw new UpstreamError('reset', `${describe(target)}: connection closed`);
          if (chunk.length > 0) this.ondata?.(chunk);
        },
        close: async () => {
          await this.#ready();
          if (this.#closed || this.#outDone) return;
          this.#outDone = true;
          this.onend?.();
          this.#maybeDone();
        },
        abort: (reason) => {
          this.#fail(new UpstreamError('reset', `${describe(target)}: aborted by the handler${reason === undefined ? '' : ` (${errorMessage(reason)})`}`));
        },
      },
      // Counted in bytes; a chunk that is not bytes counts 1 and is refused by write() above (a
      // throwing size() would error the stream without telling the sink).
      { highWaterMark: writableHwm, size: (chunk: unknown) => (chunk instanceof Uint8Array ? chunk.byteLength : 1) },
    );
  }

  /** Called a macrotask after openTcp resolved: the relay's callbacks are set by now. */
  goLive(): void {
    this.#live = true;
    for (const w of this.#liveWaiters.splice(0)) w();
  }

  /** Resolves when a chunk may go to the relay: live, not paused (or closed: the caller checks). */
  #ready(): Promise<void> | void {
    if (this.#closed || (this.#live && !this.#paused)) return;
    return new Promise<void>((resolve) => {
      if (!this.#live) this.#liveWaiters.push(resolve);
      else this.#resumeWaiters.push(resolve);
    }).then(() => this.#ready());
  }

  // ---------------------------------------------------------------- UpstreamStream (the relay)

  write(data: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#inDone) return true; // cancelled by the handler: dropped
    if (data.length === 0) return true;
    this.#readCtl.enqueue(data);
    const room = (this.#readCtl.desiredSize ?? 0) > 0;
    if (!room) this.#wantDrain = true;
    return room;
  }

  end(): void {
    if (this.#closed || this.#inDone) return;
    this.#inDone = true;
    this.#readCtl.close();
    this.#maybeDone();
  }

  destroy(): void {
    if (this.#closed) return;
    this.#finish(null, new UpstreamError('reset', `${describe(this.target)}: reset by the guest`));
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const w of this.#resumeWaiters.splice(0)) w();
  }

  // ---------------------------------------------------------------- endings

  /** The handler failed or aborted: the relay sees `error` (it resets the guest). */
  #fail(error: UpstreamError): void {
    if (this.#closed) return;
    this.#finish(error, error);
  }

  #maybeDone(): void {
    if (!this.#closed && this.#inDone && this.#outDone) this.#finish(null, null);
  }

  /** Once: errors the handler's streams (when `handlerSees`), tells the relay `relaySees`. */
  #finish(relaySees: UpstreamError | null, handlerSees: UpstreamError | null): void {
    this.#closed = true;
    this.forget();
    if (handlerSees !== null) {
      try {
        this.#readCtl.error(handlerSees);
      } catch {
        // already closed or errored
      }
      try {
        this.#writeCtl.error(handlerSees);
      } catch {
        // already closed or errored
      }
    }
    for (const w of this.#liveWaiters.splice(0)) w();
    for (const w of this.#resumeWaiters.splice(0)) w();
    // Never from inside the caller's own destroy(): on a later turn, as a socket's 'close'; and
    // not before the relay has set its callbacks (the handler may fail while the stream opens).
    const tell = (): void => this.onclose?.(relaySees);
    if (this.#live) queueMicrotask(tell);
    else this.#liveWaiters.push(tell);
  }

  /** The handler's promise rejected: reset. */
  handlerFailed(err: unknown): void {
    this.#fail(new UpstreamError('error', `${describe(this.target)}: handler failed: ${errorMessage(err)}`));
  }

  /** The upstream is closing: reset. */
  kill(): void {
    this.#fail(new UpstreamError('reset', `${describe(this.target)}: upstream closed`));
  }
}

class LocalFlow implements UpstreamDatagrams {
  /** To the relay (from the handler's send). */
  onmessage: ((data: Uint8Array) => void) | null = null;
  /** To the relay. */
  onclose: ((error: UpstreamError | null) => void) | null = null;
  #live = false;
  #early: Uint8Array[] = [];
  #closed = false;
  readonly handler: { onmessage: ((data: Uint8Array) => void) | null; onclose: (() => void) | null };

  constructor(readonly target: UpstreamTarget, readonly forget: () => void) {
    // What the handler sets; kept apart from the relay's callbacks of the same name.
    this.handler = { onmessage: null, onclose: null };
  }

  /** The handler's side of this flow. */
  view(): LocalUdpFlow {
    const self = this;
    const h = this.handler;
    return {
      target: this.target,
      get onmessage() {
        return h.onmessage;
      },
      set onmessage(fn) {
        h.onmessage = fn;
      },
      get onclose() {
        return h.onclose;
      },
      set onclose(fn) {
        h.onclose = fn;
      },
      send: (data: Uint8Array) => self.#toGuest(data),
      close: () => self.#end(null),
    };
  }

  goLive(): void {
    this.#live = true;
    const early = this.#early.splice(0);
    for (const d of early) {
      if (this.#closed) break;
      this.onmessage?.(d);
    }
    this.#tellClosed?.();
  }

  /** The relay's onclose, held until it has had its turn to set it. */
  #tellClosed: (() => void) | null = null;

  #toGuest(data: Uint8Array): void {
    if (this.#closed) return;
    if (!this.#live) {
      // Sent before the relay could listen: kept (a few) until it can.
      if (this.#early.length < 64) this.#early.push(data);
      return;
    }
    this.onmessage?.(data);
  }

  /** UpstreamDatagrams.send: from the guest to the handler. */
  send(data: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.handler.onmessage?.(data);
    } catch (err) {
      this.#end(new UpstreamError('error', `${describe(this.target)}: handler threw: ${errorMessage(err)}`));
    }
  }

  /** UpstreamDatagrams.close: the relay ends the flow. */
  close(): void {
    this.#end(null);
  }

  #end(why: UpstreamError | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#early.length = 0;
    this.forget();
    queueMicrotask(() => {
      try {
        this.handler.onclose?.();
      } catch {
        // the flow is over either way
      }
      if (this.#live) this.onclose?.(why);
      else this.#tellClosed = () => this.onclose?.(why);
    });
  }

  handlerFailed(err: unknown): void {
    this.#end(new UpstreamError('error', `${describe(this.target)}: handler failed: ${errorMessage(err)}`));
  }

  kill(): void {
    this.#end(new UpstreamError('error', `${describe(this.target)}: upstream closed`));
  }
}

/** Hands each connection and flow to a JavaScript handler (core: Node and the browser). */
export class LocalUpstream implements Upstream {
  readonly name = 'local';
  readonly dns?: DnsUpstream;
  readonly byName: boolean;
  readonly counters = { tcpOpened: 0, tcpRefused: 0, udpOpened: 0, udpRefused: 0 };
  readonly #tcp: LocalTcpHandler | undefined;
  readonly #udp: LocalUdpHandler | undefined;
  readonly #readableHwm: number;
  readonly #writableHwm: number;
  readonly #live = new Set<LocalStream | LocalFlow>();
  #closed = false;

  constructor(options: LocalUpstreamOptions = {}) {
    this.#tcp = options.tcp;
    this.#udp = options.udp;
    if (options.dns !== undefined) this.dns = options.dns;
    this.byName = options.byName ?? false;
    this.#readableHwm = options.readableHighWaterMark ?? 64 * 1024;
    this.#writableHwm = options.writableHighWaterMark ?? 64 * 1024;
    for (const [k, v] of [['readableHighWaterMark', this.#readableHwm], ['writableHighWaterMark', this.#writableHwm]] as const) {
      if (!(v >= 1)) throw new RangeError(`${k} must be >= 1 (got ${v})`);
    }
  }

  async openTcp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamStream> {
    const what = `local tcp ${describe(target)}`;
    if (this.#closed) throw new UpstreamError('error', `${what}: upstream closed`);
    if (options.signal?.aborted === true) throw new UpstreamError('error', `${what}: aborted`);
    const handler = this.#tcp;
    if (handler === undefined) {
      this.counters.tcpRefused++;
      throw new UpstreamError('refused', `${what}: no tcp handler`);
    }
    const stream: LocalStream = new LocalStream(target, this.#readableHwm, this.#writableHwm, () => this.#live.delete(stream));
    this.#live.add(stream);
    const no = await decide(
      () => handler({ target, readable: stream.readable, writable: stream.writable }),
      (err) => stream.handlerFailed(err),
    );
    if (no !== null || this.#closed) {
      this.counters.tcpRefused++;
      stream.kill();
      throw new UpstreamError(no !== null ? 'refused' : 'error', `${what}: ${no?.refused ?? 'upstream closed'}`);
    }
    this.counters.tcpOpened++;
    // The relay sets its callbacks when this promise resolves; data flows a macrotask later.
    setTimeout(() => stream.goLive(), 0);
    return stream;
  }

  async openUdp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamDatagrams> {
    const what = `local udp ${describe(target)}`;
    if (this.#closed) throw new UpstreamError('error', `${what}: upstream closed`);
    if (options.signal?.aborted === true) throw new UpstreamError('error', `${what}: aborted`);
    const handler = this.#udp;
    if (handler === undefined) {
      this.counters.udpRefused++;
      throw new UpstreamError('refused', `${what}: no udp handler`);
    }
    const flow: LocalFlow = new LocalFlow(target, () => this.#live.delete(flow));
    this.#live.add(flow);
    const no = await decide(() => handler(flow.view()), (err) => flow.handlerFailed(err));
    if (no !== null || this.#closed) {
      this.counters.udpRefused++;
      flow.kill();
      throw new UpstreamError(no !== null ? 'refused' : 'error', `${what}: ${no?.refused ?? 'upstream closed'}`);
    }
    this.counters.udpOpened++;
    setTimeout(() => flow.goLive(), 0);
    return flow;
  }

  /** Connections and flows open now. */
  get open(): number {
    return this.#live.size;
  }

  /** Resets every connection and ends every flow; later opens fail. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#live]) s.kill();
    this.#live.clear();
  }
}
