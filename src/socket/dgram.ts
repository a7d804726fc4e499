/**
 * A `node:dgram` look-alike over synack's UDP sockets (src/udp/): `stack.dgram.createSocket('udp4')`
 * gives an EventEmitter with node's methods, events, argument forms and error shapes, so code
 * written for node:dgram runs over a synack stack.
 *
 * Node only: this file may use node built-ins; the core under it does not.
 *
 * What follows node (lib/dgram.js) exactly:
 * - `bind()` and `connect()` finish one turn later ('listening', 'connect'); a send before the bind
 *   completes binds implicitly to port 0 and is queued until it has;
 * - argument errors throw synchronously with node's codes (ERR_SOCKET_BAD_PORT,
 *   ERR_SOCKET_DGRAM_IS_CONNECTED, ERR_SOCKET_DGRAM_NOT_CONNECTED, ERR_SOCKET_DGRAM_NOT_RUNNING,
 *   ERR_SOCKET_ALREADY_BOUND, ERR_SOCKET_BAD_TYPE, ERR_INVALID_ARG_TYPE, ERR_BUFFER_OUT_OF_BOUNDS);
 * - system errors are `Error`s with `code`, `errno` (negative, Linux numbers), `syscall`,
 *   `address`/`port` and node's message ("bind EADDRINUSE 0.0.0.0:53"); a send error goes to the
 *   send callback only (node drops it silently without one), bind errors and ICMP errors on a
 *   connected socket (ECONNREFUSED, syscall 'recvmsg') are 'error' events;
 * - 'message' gives `(msg: Buffer, rinfo: { address, family: 'IPv4' | 'IPv6', port, size })`.
 * Differences: no loopback interface (an omitted address means 127.0.0.1 / ::1 as in node, which
 * the stack sends on its link like any other address); no multicast membership; a udp6 socket does
 * not receive IPv4 (no IPv4-mapped dual stack); host names need the stack's resolver (`lookup`).
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { Clock } from '../link/clock.js';
import type { UdpBindOptions, UdpError, UdpSocket } from '../udp/socket.js';

/** What the dgram layer needs from a stack. */
export interface DgramStack {
  readonly clock: Clock;
  udpBind(options: UdpBindOptions): UdpSocket;
  lookup?(hostname: string, options: { family?: 0 | 4 | 6 }): Promise<{ address: string; family: 4 | 6 }>;
}

export type SocketType = 'udp4' | 'udp6';

export interface SocketOptions {
  type: SocketType;
  /** Accepted for compatibility; synack has no SO_REUSEADDR (a second bind is EADDRINUSE). */
  reuseAddr?: boolean;
  ipv6Only?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
}

export interface BindOptions {
  port?: number;
  address?: string;
  exclusive?: boolean;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** A system error as node builds it (ErrnoException / ExceptionWithHostPort). */
export interface DgramError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
}

/** node calls it with `(null, bytes)` after a send, or with `(error)` alone. */
export type SendCallback = (error: DgramError | null, bytes?: number) => void;
type Message = string | ArrayBufferView | ReadonlyArray<string | ArrayBufferView>;

/** Linux errno values, as node reports them (negated). */
const ERRNO: Record<string, number> = {
  EACCES: 13, EADDRINUSE: 98, EADDRNOTAVAIL: 99, EBADF: 9, ECONNREFUSED: 111, EDESTADDRREQ: 89, EHOSTDOWN: 112,
  EHOSTUNREACH: 113, EINVAL: 22, EISCONN: 106, EMSGSIZE: 90, ENETUNREACH: 101, ENONET: 64, ENOPROTOOPT: 92,
  ENOTCONN: 107, EOPNOTSUPP: 95, EPROTO: 71,
};

function systemError(code: string, syscall: string, address?: string, port?: number): DgramError {
  const where = address === undefined ? '' : port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(`${syscall} ${code}${where}`) as DgramError;
  err.code = code;
  if (ERRNO[code] !== undefined) err.errno = -ERRNO[code]!;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined && port > 0) err.port = port;
  return err;
}

function nodeError<E extends Error>(Kind: new (m: string) => E, code: string, message: string): E & { code: string } {
  const err = new Kind(message) as E & { code: string };
  err.code = code;
  return err;
}

function badPort(port: unknown, allowZero: boolean): number {
  // node's validatePort: a number or numeric string 0..65535 (0 only where allowed).
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 0xffff) {
    throw nodeError(RangeError, 'ERR_SOCKET_BAD_PORT', `Port should be ${allowZero ? '>= 0' : '> 0'} and < 65536. Received ${typeof port === 'string' ? `type string ('${port}')` : String(port)}.`);
  }
  return n;
}

function toBuffers(msg: Message): Buffer[] {
  const one = (m: unknown): Buffer | null => {
    if (typeof m === 'string') return Buffer.from(m);
    if (ArrayBuffer.isView(m)) return Buffer.from(m.buffer, m.byteOffset, m.byteLength);
    return null;
  };
  if (Array.isArray(msg)) {
    const out: Buffer[] = [];
    for (const m of msg) {
      const b = one(m);
      if (b === null) throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "buffer list arguments" argument must be of type Buffer, TypedArray, DataView or string');
      out.push(b);
    }
    return out;
  }
  const b = one(msg);
  if (b === null) throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
  return [b];
}

function slice(msg: Message, offset: number, length: number): Buffer {
  let b: Buffer;
  if (typeof msg === 'string') b = Buffer.from(msg);
  else if (ArrayBuffer.isView(msg)) b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  else throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView.');
  const o = offset >>> 0;
  const l = length >>> 0;
  if (o > b.byteLength) throw nodeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"offset" is outside of buffer bounds');
  if (o + l > b.byteLength) throw nodeError(RangeError, 'ERR_BUFFER_OUT_OF_BOUNDS', '"length" is outside of buffer bounds');
  return b.subarray(o, o + l);
}

type BindState = 'unbound' | 'binding' | 'bound';

export class Socket extends EventEmitter {
  readonly type: SocketType;
  #stack: DgramStack;
  #core: UdpSocket | null = null;
  #bindState: BindState = 'unbound';
  #connectState: 'disconnected' | 'connecting' | 'connected' = 'disconnected';
  #closed = false;
  #broadcast = false;
  #queue: Array<() => void> = [];
  #sizes = { recv: 212992, send: 212992 };

  constructor(stack: DgramStack, type: SocketType | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void) {
    super();
    const t = typeof type === 'string' ? type : type?.type;
    if (t !== 'udp4' && t !== 'udp6') {
      throw nodeError(TypeError, 'ERR_SOCKET_BAD_TYPE', 'Bad socket type specified. Valid types are: udp4, udp6');
    }
    this.type = t;
    this.#stack = stack;
    if (typeof listener === 'function') this.on('message', listener);
  }

  private get family(): 4 | 6 {
    return this.type === 'udp4' ? 4 : 6;
  }

  private healthCheck(): void {
    if (this.#closed) throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
  }

  bind(port?: number | BindOptions | (() => void), address?: string | (() => void), callback?: () => void): this {
    this.healthCheck();
    if (this.#bindState !== 'unbound') throw nodeError(Error, 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
    let p: unknown = port;
    let a: unknown = address;
    let cb: unknown = callback;
    if (typeof p === 'function') {
      cb = p;
      p = 0;
      a = undefined;
    } else if (p !== null && typeof p === 'object') {
      const o = p as BindOptions;
      cb = a;
      a = o.address;
      p = o.port;
    }
    if (typeof a === 'function') {
      cb = a;
      a = undefined;
    }
    if (typeof cb === 'function') this.once('listening', cb as () => void);
    const bindPort = p === undefined || p === null ? 0 : badPort(p, true);
    const bindAddress = typeof a === 'string' && a !== '' ? a : this.family === 4 ? '0.0.0.0' : '::';
    this.#bindState = 'binding';
    this.resolve(bindAddress, (err, ip) => {
      if (this.#closed) return;
      if (err !== null) {
        this.#bindState = 'unbound';
        this.emit('error', err);
        return;
      }
      try {
        this.#core = this.#stack.udpBind({ address: ip, port: bindPort, family: this.family, broadcast: this.#broadcast });
      } catch (e) {
        this.#bindState = 'unbound';
        this.emit('error', systemError((e as UdpError).code ?? 'EINVAL', 'bind', ip, bindPort));
        return;
      }
      this.#bindState = 'bound';
      this.attach(this.#core);
      this.emit('listening');
      const queue = this.#queue;
      this.#queue = [];
      for (const fn of queue) fn();
    });
    return this;
  }

  connect(port: number, address?: string | (() => void), callback?: () => void): void {
    let a: unknown = address;
    let cb: unknown = callback;
    if (typeof a === 'function') {
      cb = a;
      a = undefined;
    }
    const remotePort = badPort(port, false);
    this.healthCheck();
    if (this.#connectState !== 'disconnected') throw nodeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    this.#connectState = 'connecting';
    if (typeof cb === 'function') this.once('connect', cb as () => void);
    const remote = typeof a === 'string' && a !== '' ? a : this.family === 4 ? '127.0.0.1' : '::1';
    const go = (): void => {
      this.resolve(remote, (err, ip) => {
        if (this.#closed) return;
        if (err === null && this.#core !== null) {
          try {
            this.#core.connect(ip, remotePort);
          } catch (e) {
            err = systemError((e as UdpError).code ?? 'EINVAL', 'connect', remote, remotePort);
          }
        }
        if (err !== null) {
          this.#connectState = 'disconnected';
          this.emit('error', err);
          return;
        }
        this.#connectState = 'connected';
        this.emit('connect');
      });
    };
    if (this.#bindState === 'unbound') this.bind({ port: 0 });
    if (this.#bindState !== 'bound') this.#queue.push(go);
    else go();
  }

  disconnect(): void {
    this.healthCheck();
    if (this.#connectState !== 'connected') throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    this.#core?.disconnect();
    this.#connectState = 'disconnected';
  }

  send(msg: Message, port?: number, address?: string, callback?: SendCallback): void;
  send(msg: Message, port?: number, callback?: SendCallback): void;
  send(msg: Message, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, port?: number, address?: string, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, callback?: SendCallback): void;
  send(msg: Message, offset?: unknown, length?: unknown, port?: unknown, address?: unknown, callback?: unknown): void {
    let buffers: Buffer[];
    let p: unknown = port;
    let a: unknown = address;
    let cb: unknown = callback;
    const connected = this.#connectState === 'connected';
    // node's argument shuffle (lib/dgram.js Socket.prototype.send).
    if (!connected) {
      if (a || (p && typeof p !== 'function')) {
        buffers = [slice(msg, offset as number, length as number)];
      } else {
        cb = p;
        p = offset;
        a = length;
        buffers = toBuffers(msg);
      }
    } else {
      if (typeof length === 'number') {
        buffers = [slice(msg, offset as number, length)];
        if (typeof p === 'function') {
          cb = p;
          p = null;
        }
      } else {
        buffers = toBuffers(msg);
        cb = offset;
      }
      if (p || a) throw nodeError(Error, 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
    }
    const remotePort = connected ? 0 : badPort(p, false);
    if (typeof cb !== 'function') cb = undefined;
    if (typeof a === 'function') {
      cb = a;
      a = undefined;
    } else if (a !== undefined && a !== null && typeof a !== 'string') {
      throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "address" argument must be of type string.');
    }
    this.healthCheck();
    const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
    const done = cb as SendCallback | undefined;
    const doSend = (): void => {
      if (this.#closed || this.#core === null) return;
      const remote = connected ? undefined : typeof a === 'string' && a !== '' ? a : this.family === 4 ? '127.0.0.1' : '::1';
      const after = (err: DgramError | null, ip: string): void => {
        if (this.#closed || this.#core === null) return;
        if (err === null) {
          try {
            if (connected) this.#core.send(data);
            else this.#core.send(data, ip, remotePort);
          } catch (e) {
            err = systemError((e as UdpError).code ?? 'EINVAL', 'send', remote, connected ? undefined : remotePort);
          }
        }
        if (err !== null) {
          // node: a send error goes to the callback; without one it is dropped (dgram_legacy compatibility).
          if (done !== undefined) process.nextTick(() => (done as (e: DgramError) => void)(err!));
          return;
        }
        if (done !== undefined) process.nextTick(done, null, data.length);
      };
      if (remote === undefined) after(null, '');
      else this.resolve(remote, after);
    };
    if (this.#bindState === 'unbound') this.bind({ port: 0 });
    if (this.#bindState !== 'bound') this.#queue.push(doSend);
    else doSend();
  }

  close(callback?: () => void): this {
    this.healthCheck();
    if (typeof callback === 'function') this.once('close', callback);
    this.#closed = true;
    this.#core?.close();
    this.#core = null;
    this.#queue = [];
    process.nextTick(() => this.emit('close'));
    return this;
  }

  address(): AddressInfo {
    this.healthCheck();
    if (this.#core === null) throw systemError('EBADF', 'getsockname');
    return { address: this.#core.localAddress, family: this.family === 4 ? 'IPv4' : 'IPv6', port: this.#core.localPort };
  }

  remoteAddress(): AddressInfo {
    this.healthCheck();
    const c = this.#core;
    if (this.#connectState !== 'connected' || c === null || c.remoteAddress === null || c.remotePort === null) {
      throw nodeError(Error, 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
    }
    return { address: c.remoteAddress, family: this.family === 4 ? 'IPv4' : 'IPv6', port: c.remotePort };
  }

  setBroadcast(flag: boolean): void {
    if (this.#core === null) throw systemError('EBADF', 'setBroadcast');
    this.#broadcast = Boolean(flag);
    this.#core.broadcast = this.#broadcast;
  }

  /** Accepted (1..255) for compatibility; the stack's TTL applies. */
  setTTL(ttl: number): number {
    if (typeof ttl !== 'number') throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "ttl" argument must be of type number.');
    if (this.#core === null) throw systemError('EBADF', 'setTTL');
    if (!(ttl >= 1 && ttl <= 255)) throw systemError('EINVAL', 'setTTL');
    return ttl;
  }

  /**
   * SO_RCVBUF / SO_SNDBUF as node reports them on Linux (the kernel doubles what is set; default
   * 212992). Recorded only: datagrams go to 'message' as they arrive.
   */
  getRecvBufferSize(): number {
    return this.bufferSize('recv');
  }

  getSendBufferSize(): number {
    return this.bufferSize('send');
  }

  setRecvBufferSize(size: number): void {
    this.bufferSize('recv', size);
  }

  setSendBufferSize(size: number): void {
    this.bufferSize('send', size);
  }

  private bufferSize(which: 'recv' | 'send', size?: number): number {
    if (size !== undefined && !(typeof size === 'number' && Number.isInteger(size) && size >= 0 && size <= 0x7fffffff)) {
      throw nodeError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "size" argument must be a non-negative 32-bit integer');
    }
    if (this.#core === null) {
      throw nodeError(Error, 'ERR_SOCKET_BUFFER_SIZE', `Could not get or set buffer size: uv_${which}_buffer_size returned EBADF (bad file descriptor)`);
    }
    if (size !== undefined) this.#sizes[which] = Math.max(2304, size * 2);
    return this.#sizes[which];
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** Core events arrive inside the stack's processing: user code runs one clock turn later. */
  private attach(core: UdpSocket): void {
    const clock = this.#stack.clock;
    core.onMessage = (data, remote) => {
      const msg = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const rinfo: RemoteInfo = { address: remote.address, family: remote.family === 4 ? 'IPv4' : 'IPv6', port: remote.port, size: msg.length };
      clock.defer(() => {
        if (!this.#closed) this.emit('message', msg, rinfo);
      });
    };
    core.onError = (err) => {
      const e = systemError(err.code, err.syscall);
      clock.defer(() => {
        if (!this.#closed) this.emit('error', e);
      });
    };
  }

  /** An address for `family`: an IP literal as it is, a name through the stack's resolver. */
  private resolve(address: string, cb: (err: DgramError | null, ip: string) => void): void {
    const v = isIP(address);
    if (v !== 0) {
      process.nextTick(() => cb(v === this.family ? null : systemError('EINVAL', 'send', address), address));
      return;
    }
    const lookup = this.#stack.lookup;
    if (typeof lookup !== 'function') {
      process.nextTick(() => cb(systemError('ENOTFOUND', 'getaddrinfo', address), ''));
      return;
    }
    lookup.call(this.#stack, address, { family: this.family }).then(
      (r) => cb(null, r.address),
      (e: unknown) => cb(e instanceof Error ? (e as DgramError) : systemError('ENOTFOUND', 'getaddrinfo', address), ''),
    );
  }
}

/** `node:dgram` bound to one stack: `createSocket` and the `Socket` class. */
export class Dgram {
  constructor(private readonly stack: DgramStack) {}

  createSocket(type: SocketType | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): Socket {
    return new Socket(this.stack, type, listener);
  }
}
