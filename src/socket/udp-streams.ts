/**
 * UDP as WHATWG streams — the same in Node and the browser (no Node import): `stack.udpStream()`.
 *
 * - `readable` yields `{ data, address, port, family }` per datagram. UDP has no flow control, so
 *   the queue is bounded (`highWaterMark` datagrams, default 64) and a datagram arriving while it
 *   is full is dropped and counted (`dropped`, and the stack's 'udp-queue-full' drop reason), as a
 *   kernel drops when a socket's receive buffer is full.
 * - `writable` takes `{ data, address?, port? }` (no address on a connected socket); a write that
 *   the socket refuses (EMSGSIZE, EACCES…) rejects and errors the stream, as streams do.
 * - `close()` closes the socket and ends `readable`.
 */
import type { UdpBindOptions, UdpError, UdpSocket } from '../udp/socket.js';

export interface UdpStreamOptions extends UdpBindOptions {
  /** Datagrams queued for the reader at most (default 64). */
  highWaterMark?: number;
  /** Connect at once (send without an address, receive from this peer only). */
  connect?: { address: string; port: number };
}

export interface UdpStreamMessage {
  data: Uint8Array;
  address: string;
  port: number;
  family: 4 | 6;
}

export interface UdpStreamOutgoing {
  data: Uint8Array;
  address?: string;
  port?: number;
}

export interface UdpStream {
  readonly readable: ReadableStream<UdpStreamMessage>;
  readonly writable: WritableStream<UdpStreamOutgoing>;
  readonly localAddress: string;
  readonly localPort: number;
  readonly family: 4 | 6;
  /** The core socket underneath (for `broadcast`, `connect`, `onError`). */
  readonly socket: UdpSocket;
  /** Datagrams dropped because the reader was behind. */
  readonly dropped: number;
  close(): void;
}

/** What the stream form needs from a stack. */
export interface UdpStreamStack {
  udpBind(options: UdpBindOptions): UdpSocket;
}

export function udpStream(stack: UdpStreamStack, options: UdpStreamOptions = {}): UdpStream {
  const { highWaterMark, connect, ...bind } = options;
  const hwm = highWaterMark ?? 64;
  if (!(Number.isInteger(hwm) && hwm >= 1)) throw new RangeError(`highWaterMark must be an integer >= 1 (got ${String(highWaterMark)})`);
  const socket = stack.udpBind(bind);
  if (connect !== undefined) {
    try {
      socket.connect(connect.address, connect.port);
    } catch (err) {
      socket.close();
      throw err;
    }
  }
  let dropped = 0;
  let controller: ReadableStreamDefaultController<UdpStreamMessage> | null = null;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    try {
      controller?.close();
    } catch {
      // already closed or errored by the reader
    }
  };
  const readable = new ReadableStream<UdpStreamMessage>({
    start(c) {
      controller = c;
      socket.onMessage = (data, remote) => {
        if (ended) return;
        if ((c.desiredSize ?? 0) <= 0) {
          dropped++;
          (socket as UdpSocket & { queueFull?: (data: Uint8Array) => void }).queueFull?.(data);
          return;
        }
        c.enqueue({ data, address: remote.address, port: remote.port, family: remote.family });
      };
    },
    cancel() {
      ended = true;
      socket.close();
    },
  }, new CountQueuingStrategy({ highWaterMark: hwm }));
  const writable = new WritableStream<UdpStreamOutgoing>({
    write(chunk) {
      socket.send(chunk.data, chunk.address, chunk.port);
    },
    close() {
      socket.close();
      end();
    },
    abort() {
      socket.close();
      end();
    },
  });
  return {
    readable,
    writable,
    localAddress: socket.localAddress,
    localPort: socket.localPort,
    family: socket.family,
    socket,
    get dropped() {
      return dropped;
    },
    close() {
      socket.close();
      end();
    },
  };
}

export type { UdpError };
