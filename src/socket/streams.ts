/**
 * WHATWG streams over synack connections — the same in Node and the browser (no Node import).
 *
 * - `readable` is pull-based with a byte-length queuing strategy: bytes are taken from the
 *   connection (`read()`, which is what reopens the receive window) only while the stream's queue
 *   wants more, so an application that stops reading closes the TCP window (RFC 9293 §3.8.6) rather
 *   than buffering without bound. It closes once the peer's FIN has arrived and every byte before it
 *   was taken, and errors with the `TcpError` when the connection fails (reset, timeout).
 * - `writable.write()` resolves when the bytes are in the send buffer (RFC 9293 §3.10.2 SEND),
 *   waiting for `onWritable` while it is full; `close()` sends FIN after them (§3.10.4 CLOSE, a
 *   half-close: the readable side keeps going); `abort()` resets the connection (§3.10.5 ABORT).
 *
 * Core events arrive synchronously from inside the stack's processing; here they only resolve
 * promises, so stream callbacks and user code run later, outside the stack.
 */
import type { Stack } from '../stack/stack.js';
import type { ConnectOptions, ListenOptions } from '../stack/options.js';
import type { TcpConnection, TcpError, TcpInfo, TcpListener } from '../tcp/user.js';

/** What the stream layer needs from a stack. */
export type StreamStack = Pick<Stack, 'tcpConnect' | 'tcpListen'>;

export interface StreamConnection {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Done with the connection: FIN after what was written (unless the writable already closed it),
   * bytes still arriving are discarded, and the promise resolves once the connection is finished for
   * its user (both FINs exchanged); it rejects with the TcpError if it fails instead.
   */
  close(): Promise<void>;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** A `tcp_info`-like snapshot (RFC 9293 §3.10.6 STATUS). */
  info(): TcpInfo;
}

export interface StreamListener extends AsyncIterable<StreamConnection> {
  /** Stop listening; a pending iteration ends (`done: true`). */
  close(): void;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface StreamOptions {
  /** Bytes the readable stream queues before it stops taking from the connection. Default 64 KiB. */
  readableHighWaterMark?: number;
  /** Bytes the writable stream queues before `writer.ready` waits. Default 16 KiB. */
  writableHighWaterMark?: number;
}

/** Promises that the next core event resolves (each waiter then re-checks the connection). */
class Signal {
  #waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }
  fire(): void {
    if (this.#waiters.length === 0) return;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Wraps an established (or establishing) connection in WHATWG streams. */
function wrap(conn: TcpConnection, opts: StreamOptions): StreamConnection {
  const readSignal = new Signal();
  const writeSignal = new Signal();
  // An accepted connection may have finished while it waited in the accept queue.
  let closed = conn.state === 'CLOSED';
  let failure: TcpError | null = null;
  let readableDone = false;
  let writableDone = false;
  /** The readable was cancelled or close() was called: drop incoming bytes. */
  let discarding = false;
  const closeWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  let readableController: ReadableStreamDefaultController<Uint8Array> | null = null;
  let writableController: WritableStreamDefaultController | null = null;

  const discard = (): void => {
    while (conn.read() !== null);
  };

  conn.events = {
    onReadable: () => {
      if (discarding) discard();
      else readSignal.fire();
    },
    onEnd: () => readSignal.fire(),
    onWritable: () => writeSignal.fire(),
    onClosed: (err) => {
      closed = true;
      failure = err;
      if (err) {
        // A failed connection fails both streams at once, even if nobody is reading or writing.
        if (!readableDone && readableController) {
          readableDone = true;
          readableController.error(err);
        }
        if (!writableDone && writableController) {
          writableDone = true;
          writableController.error(err);
        }
      }
      readSignal.fire();
      writeSignal.fire();
      for (const w of closeWaiters.splice(0)) {
        if (err) w.reject(err);
        else w.resolve();
      }
    },
  };

  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        readableController = controller;
      },
      async pull(controller) {
        for (;;) {
          if (readableDone) return;
          const data = conn.read();
          if (data !== null && data.length > 0) {
            // One chunk per pull: the stream calls pull again while its queue wants more.
            controller.enqueue(data);
            return;
          }
          if (conn.finReceived) {
            readableDone = true;
            controller.close();
            return;
          }
          if (failure) {
            readableDone = true;
            controller.error(failure);
            return;
          }
          if (closed) {
            // Finished without the peer's FIN reaching us (should not happen): end cleanly.
            readableDone = true;
            controller.close();
            return;
          }
          await readSignal.wait();
        }
      },
      cancel() {
        // Nobody will read: keep the window open and drop what comes, so the peer can finish.
        readableDone = true;
        discarding = true;
        discard();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: opts.readableHighWaterMark ?? 64 * 1024 }),
  );

  const sendFin = (): void => {
    if (writableDone) return;
    writableDone = true;
    if (!closed) conn.close();
  };

  const writable = new WritableStream<Uint8Array>(
    {
      start(controller) {
        writableController = controller;
      },
      async write(chunk) {
        let taken = 0;
        while (taken < chunk.length) {
          if (failure) throw failure;
          if (writableDone) throw epipe();
          const n = conn.write(taken === 0 ? chunk : chunk.subarray(taken));
          taken += n;
          if (n === 0) await writeSignal.wait();
        }
      },
      close() {
        if (failure) throw failure;
        sendFin();
      },
      abort(reason) {
        // ABORT is for the whole connection (RFC 9293 §3.10.5): the readable side fails too.
        writableDone = true;
        if (!readableDone && readableController) {
          readableDone = true;
          readableController.error(reason);
        }
        if (!closed) conn.abort();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: opts.writableHighWaterMark ?? 16 * 1024 }),
  );

  return {
    readable,
    writable,
    close(): Promise<void> {
      if (!readable.locked) {
        void readable.cancel().catch(() => {});
      } else discarding = true;
      if (discarding) discard();
      sendFin();
      if (closed) return failure ? Promise.reject(failure) : Promise.resolve();
      return new Promise((resolve, reject) => closeWaiters.push({ resolve, reject }));
    },
    get localAddress() {
      return conn.localAddress;
    },
    get localPort() {
      return conn.localPort;
    },
    get remoteAddress() {
      return conn.remoteAddress;
    },
    get remotePort() {
      return conn.remotePort;
    },
    info: () => conn.info(),
  };
}

/** The error a write after close gets (node and POSIX say EPIPE). */
function epipe(): Error & { code: string } {
  const err = new Error('EPIPE: writing after the connection was closed for sending') as Error & {
    code: string;
  };
  err.code = 'EPIPE';
  err.name = 'TcpError';
  return err;
}

/**
 * Active OPEN: resolves with the streams once the handshake completes; rejects with the TcpError
 * (ECONNREFUSED, ETIMEDOUT, ...) when it fails, or at once for bad input (EINVAL, EADDRINUSE...).
 */
export function connectStream(
  stack: StreamStack,
  options: ConnectOptions & StreamOptions,
): Promise<StreamConnection> {
  return new Promise((resolve, reject) => {
    let conn: TcpConnection;
    try {
      conn = stack.tcpConnect(options);
    } catch (e) {
      reject(e);
      return;
    }
    const settle = (): void => {
      // Wrapping replaces the events; anything that arrived already is in the connection's state.
      resolve(wrap(conn, options));
    };
    if (conn.state !== 'SYN-SENT' && conn.state !== 'CLOSED') {
      settle();
      return;
    }
    conn.events = {
      onEstablished: settle,
      onClosed: (err) => reject(err ?? new Error('connection closed during the handshake')),
    };
  });
}

/**
 * Passive OPEN as an async iterable of connections. Connections wait in the stack's accept queue
 * (bounded by `backlog`) until the iteration asks for them.
 */
export function listenStream(
  stack: StreamStack,
  options: ListenOptions & StreamOptions,
): StreamListener {
  const listener: TcpListener = stack.tcpListen(options);
  const signal = new Signal();
  let listening = true;
  listener.onAcceptable = () => signal.fire();

  async function next(): Promise<IteratorResult<StreamConnection, undefined>> {
    for (;;) {
      if (!listening) return { done: true, value: undefined };
      const conn = listener.accept();
      if (conn) return { done: false, value: wrap(conn, options) };
      await signal.wait();
    }
  }
  const close = (): void => {
    if (!listening) return;
    listening = false;
    listener.onAcceptable = null;
    listener.close();
    signal.fire();
  };

  return {
    [Symbol.asyncIterator](): AsyncIterator<StreamConnection, undefined> {
      return {
        next,
        return: async () => {
          close();
          return { done: true, value: undefined };
        },
      };
    },
    close,
    get localAddress() {
      return listener.localAddress;
    },
    get localPort() {
      return listener.localPort;
    },
  };
}
