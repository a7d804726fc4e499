/**
 * A `node:net` look-alike over synack's connection API (RFC 9293 §3.9.1 user calls): `Socket` is a
 * `stream.Duplex`, `Server` an `EventEmitter`, with node's events, properties and error codes, so a
 * synack socket works where node expects a socket (`http.createServer().emit('connection', sock)`,
 * `http.request({ createConnection })`, `pipe`, `stream.pipeline`).
 *
 * Node only: this file may use node built-ins; the core it sits on does not.
 *
 * How the two sides meet:
 * - The core calls `ConnectionEvents` synchronously from inside its segment processing. A stream push
 *   can run user code synchronously ('data' handlers that write back, destroy, ...), so every core
 *   event is only recorded there and handled one turn later (`clock.defer`), outside the stack.
 * - Reading is pulled: `_read` takes bytes with `TcpConnection.read()`, which is what opens the
 *   receive window; when `push()` says the readable buffer is full we stop taking, so an application
 *   that does not read closes the TCP window (RFC 9293 §3.8.6) instead of buffering without bound.
 * - Writing: `_write` hands as much as `write()` takes to the send buffer and waits for `onWritable`
 *   for the rest, so `socket.write()` returns false (and 'drain' follows) once the send buffer and the
 *   stream's highWaterMark are full.
 */
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Stack } from '../stack/stack.js';
import type { TcpConnection, TcpInfo, TcpListener } from '../tcp/user.js';
import type { TimerHandle } from '../link/clock.js';

/**
 * A stack's name lookup (`stack.lookup`, the DNS stub of src/services/dns-stub.ts): rejects with
 * node's dns error shape (`code` ENOTFOUND, ETIMEOUT …).
 */
export type NetLookup = (hostname: string, options: { family?: 0 | 4 | 6 }) => Promise<{ address: string; family: 4 | 6 }>;

/** What the socket layer needs from a stack; without `lookup`, a host name is ENOTFOUND. */
export type NetStack = Pick<Stack, 'tcpConnect' | 'tcpListen' | 'clock'> & { lookup?: NetLookup };

/** node's `lookup` option of `socket.connect` (dns.lookup's signature). */
export type LookupFunction = (
  hostname: string,
  options: { family?: number; all?: false },
  callback: (err: Error | null, address: string, family: number) => void,
) => void;

/** An error shaped like node's system errors (`connect ECONNREFUSED 10.0.0.2:7`). */
export interface NetError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
  /** Name lookup errors: the name asked. */
  hostname?: string;
}

/** libuv's (negative, Linux) errno for each code node reports, as node puts in `err.errno`. */
const ERRNO: Record<string, number> = {
  EPIPE: -32,
  EINVAL: -22,
  EADDRINUSE: -98,
  EADDRNOTAVAIL: -99,
  ENETUNREACH: -101,
  ECONNABORTED: -103,
  ECONNRESET: -104,
  ENOBUFS: -105,
  ENOTCONN: -107,
  ETIMEDOUT: -110,
  ECONNREFUSED: -111,
  EHOSTUNREACH: -113,
  ENOTFOUND: -3008,
};

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Turns a core `TcpError` (or anything with a `code`) into node's shape: message `syscall CODE
 * address:port`, with `.code`, `.errno`, `.syscall` (and `.address`/`.port` for connect and listen).
 * The original error is kept as `cause`.
 */
function toNetError(e: unknown, syscall: string, address?: string, port?: number): NetError {
  const code = errorCode(e);
  if (code === undefined) {
    return (e instanceof Error ? e : new Error(String(e))) as NetError;
  }
  let where = '';
  if (address !== undefined) where = port !== undefined ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(`${syscall} ${code}${where}`, { cause: e }) as NetError;
  err.code = code;
  const errno = ERRNO[code];
  if (errno !== undefined) err.errno = errno;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

function familyOf(address: string): 'IPv4' | 'IPv6' {
  return isIPv6(address) ? 'IPv6' : 'IPv4';
}

/** Node's `ERR_SOCKET_BAD_PORT`: thrown synchronously, like node, for a port it cannot use. */
function checkPort(port: unknown, allowZero: boolean): number {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    const err = new RangeError(
      `Port should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${String(port)}.`,
    ) as RangeError & { code: string };
    err.code = 'ERR_SOCKET_BAD_PORT';
    throw err;
  }
  return n;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface SocketConstructorOpts {
  /** Keep our side writable after the peer's FIN (default false: end our side too, like node). */
  allowHalfOpen?: boolean;
  /** The stack to connect through (set for you by `stack.net.Socket`). */
  stack?: NetStack;
}

export interface TcpSocketConnectOpts {
  port: number | string;
  host?: string;
  localAddress?: string;
  localPort?: number;
  /** 4 or 6: the family a host name is looked up in (0, the default: either). */
  family?: number;
  /** Resolve a host name with this instead of the stack's lookup (node's option). */
  lookup?: LookupFunction;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** Idle timeout, as `socket.setTimeout(timeout)`. */
  timeout?: number;
  allowHalfOpen?: boolean;
}

export type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

// Core events recorded inside stack processing, handled one clock turn later (see the file comment).
const EV_ESTABLISHED = 1;
const EV_READABLE = 2;
const EV_WRITABLE = 4;
const EV_CLOSED = 8;

/** Internal entry points the Server uses on the sockets it creates. */
const kAccept = Symbol('accept');
const kStart = Symbol('start');

interface PendingWrite {
  chunk: Uint8Array;
  /** Bytes of `chunk` already taken by the send buffer. */
  taken: number;
  cb: (error?: Error | null) => void;
}

/**
 * node's net.Socket over a synack connection.
 *
 * `destroy()` on an open connection: without an error, and when every byte written has reached the
 * send buffer, it is an orderly CLOSE (FIN after the queued data, RFC 9293 §3.10.4) — what closing a
 * kernel socket does. With an error, or with written bytes that would be thrown away, it is an ABORT
 * (RST, §3.10.5), so the peer learns the stream was cut short instead of seeing a clean end.
 * `resetAndDestroy()` always aborts. Bytes that arrive after destroy are read and discarded so the
 * peer can finish its side.
 */
export class Socket extends Duplex {
  /** True between `connect()` and the end of the handshake. */
  connecting = false;
  /** The idle timeout set by `setTimeout`, in ms (undefined when none). */
  timeout: number | undefined = undefined;
  /** The server that accepted this socket (as node sets it; http reads it). */
  server: Server | null = null;

  #stack: NetStack | undefined;
  #conn: TcpConnection | null = null;
  #remoteHost: string | undefined;
  #remotePortWanted: number | undefined;
  #bytesRead = 0;
  #bytesWritten = 0;
  #pendingWrite: PendingWrite | null = null;
  /** The consumer wants data: `_read` was called and `push()` has not said stop since. */
  #wantRead = false;
  #endPushed = false;
  #finSent = false;
  #connClosed = false;
  #closeError: Error | null = null;
  #events = 0;
  #noDelay: boolean | undefined;
  #keepAlive: { enable: boolean; delay: number } | undefined;
  #timer: TimerHandle | null = null;
  #lastActivity = 0;

  constructor(options: SocketConstructorOpts = {}) {
    // emitClose false: like node's net.Socket, 'close' is emitted by _destroy with its hadError flag.
    super({ allowHalfOpen: options.allowHalfOpen === true, emitClose: false, autoDestroy: true });
    this.#stack = options.stack;
  }

  // --- node's read-only properties ----------------------------------------------------------------

  get bytesRead(): number {
    return this.#bytesRead;
  }
  /** Bytes handed to TCP's send buffer so far. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }
  get pending(): boolean {
    return this.#conn === null || this.connecting;
  }
  get readyState(): ReadyState {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }
  get localAddress(): string | undefined {
    return this.#conn?.localAddress;
  }
  get localPort(): number | undefined {
    return this.#conn?.localPort;
  }
  get localFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.#conn ? familyOf(this.#conn.localAddress) : undefined;
  }
  get remoteAddress(): string | undefined {
    return this.#conn?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#conn?.remotePort;
  }
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.#conn ? familyOf(this.#conn.remoteAddress) : undefined;
  }

  /** The local end, like node: `{}` before a connection exists. */
  address(): AddressInfo | Record<string, never> {
    const c = this.#conn;
    if (!c) return {};
    return { address: c.localAddress, family: familyOf(c.localAddress), port: c.localPort };
  }

  /** A `tcp_info`-like snapshot of the connection (RFC 9293 §3.10.6 STATUS); undefined before connect. */
  tcpInfo(): TcpInfo | undefined {
    return this.#conn?.info();
  }

  // --- connecting ---------------------------------------------------------------------------------

  connect(options: TcpSocketConnectOpts, connectListener?: () => void): this;
  connect(port: number | string, host?: string, connectListener?: () => void): this;
  connect(port: number | string, connectListener?: () => void): this;
  connect(...args: unknown[]): this {
    const { options, cb } = normalizeConnectArgs(args);
    const stack = this.#stack;
    if (!stack) throw new Error('synack Socket: no stack to connect through (use stack.net.Socket)');
    if (this.#conn !== null || this.connecting) {
      const err = new Error('Socket is already connected') as NetError;
      err.code = 'ERR_SOCKET_CONNECTING';
      throw err;
    }
    const port = checkPort(options.port, false);
    let host = options.host ?? 'localhost';
    if (host === 'localhost') host = '127.0.0.1';
    if (cb) this.once('connect', cb);
    if (options.noDelay !== undefined) this.#noDelay = options.noDelay;
    if (options.keepAlive) {
      this.#keepAlive = { enable: true, delay: options.keepAliveInitialDelay ?? 0 };
    }
    if (options.timeout !== undefined) this.setTimeout(options.timeout);
    this.connecting = true;
    this.#remoteHost = host;
    this.#remotePortWanted = port;

    if (isIP(host) === 0) {
      this.#lookupAndOpen(host, port, options);
      return this;
    }
    this.#open(host, port, options);
    return this;
  }

  /**
   * A host name: looked up first (the stack's DNS stub, or `options.lookup`), then connected to,
   * as node's net does: 'lookup' (err, address, family, host) is emitted either way, and a failed
   * lookup destroys the socket with it (`getaddrinfo ENOTFOUND name`).
   */
  #lookupAndOpen(host: string, port: number, options: TcpSocketConnectOpts): void {
    const stack = this.#stack!;
    const family = options.family === 4 || options.family === 6 ? options.family : 0;
    let result: Promise<{ address: string; family: 4 | 6 }>;
    if (options.lookup) {
      const custom = options.lookup;
      result = new Promise((resolve, reject) => {
        custom(host, { family }, (err, address, fam) => {
          if (err) reject(err);
          else resolve({ address, family: fam === 6 ? 6 : 4 });
        });
      });
    } else if (stack.lookup) result = stack.lookup(host, { family });
    else result = Promise.reject(Object.assign(new Error('no resolver'), { code: 'ENOTFOUND' }));
    result.then(({ address, family: fam }) => {
      if (this.destroyed) return;
      this.emit('lookup', null, address, fam, host);
      this.#open(address, port, options);
    }, (e: unknown) => {
      if (this.destroyed) return;
      const code = errorCode(e) ?? 'ENOTFOUND';
      const err = new Error(`getaddrinfo ${code} ${host}`, { cause: e }) as NetError;
      err.code = code;
      const errno = ERRNO[code];
      if (errno !== undefined) err.errno = errno;
      err.syscall = 'getaddrinfo';
      err.hostname = host;
      this.emit('lookup', err, undefined, undefined, host);
      this.destroy(err);
    });
  }

  #open(host: string, port: number, options: TcpSocketConnectOpts): void {
    this.#remoteHost = host;
    let conn: TcpConnection;
    try {
      conn = this.#stack!.tcpConnect({
        host,
        port,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        ...(options.localPort !== undefined ? { localPort: options.localPort } : {}),
      });
    } catch (e) {
      // node reports connect failures asynchronously, through 'error'.
      const err = toNetError(e, 'connect', host, port);
      process.nextTick(() => this.destroy(err));
      return;
    }
    this.#attach(conn);
    // The handshake may already be done (a synchronous stack): events say so one turn later.
    if (conn.state === 'ESTABLISHED') this.#notify(EV_ESTABLISHED);
  }

  /** Server side: adopt a connection that finished its handshake (called inside stack processing). */
  [kAccept](conn: TcpConnection): void {
    this.#attach(conn);
  }

  /** Server side, one turn later: options, then start reading unless paused, as node does. */
  [kStart](pauseOnConnect: boolean): void {
    this.#applyOptions();
    if (pauseOnConnect) this.pause();
    else this.read(0); // like node: start taking bytes at once, up to the highWaterMark
  }

  #attach(conn: TcpConnection): void {
    this.#conn = conn;
    conn.events = {
      onEstablished: () => this.#notify(EV_ESTABLISHED),
      onReadable: () => this.#notify(EV_READABLE),
      onEnd: () => this.#notify(EV_READABLE),
      onWritable: () => this.#notify(EV_WRITABLE),
      onClosed: (err) => {
        this.#closeError = err;
        this.#notify(EV_CLOSED);
      },
    };
  }

  #applyOptions(): void {
    const conn = this.#conn;
    if (!conn) return;
    if (this.#noDelay !== undefined) conn.setNoDelay(this.#noDelay);
    if (this.#keepAlive) conn.setKeepAlive(this.#keepAlive.enable, this.#keepAlive.delay);
  }

  /** Record a core event; handle all recorded events in one turn, outside the stack's processing. */
  #notify(flag: number): void {
    if (this.#events === 0) {
      const clock = this.#clock();
      if (clock) clock.defer(this.#runEvents);
      else process.nextTick(this.#runEvents);
    }
    this.#events |= flag;
  }

  #clock(): NetStack['clock'] | undefined {
    return this.#stack?.clock;
  }

  readonly #runEvents = (): void => {
    const events = this.#events;
    this.#events = 0;
    if (this.destroyed) return;
    if (events & EV_ESTABLISHED && this.connecting) this.#onEstablished();
    if (events & EV_READABLE) this.#pull();
    if (events & EV_WRITABLE) this.#flushWrite();
    if (events & EV_CLOSED) this.#onClosed();
  };

  #onEstablished(): void {
    this.connecting = false;
    this.#applyOptions();
    this.#touch();
    this.emit('connect');
    this.emit('ready');
    this.#flushWrite();
    if (this.#pendingFinal) {
      const cb = this.#pendingFinal;
      this.#pendingFinal = null;
      this._final(cb);
    }
    if (this.destroyed) return;
    // A _read that came while connecting is waiting (the stream will not call it again until we
    // push); otherwise start reading as node does once connected, unless paused.
    if (this.#wantRead) this.#pull();
    else if (!this.isPaused()) this.read(0);
  }

  #onClosed(): void {
    this.#connClosed = true;
    const err = this.#closeError;
    if (err) {
      const syscall = this.connecting ? 'connect' : 'read';
      const ne =
        syscall === 'connect'
          ? toNetError(err, syscall, this.#remoteHost, this.#remotePortWanted)
          : toNetError(err, syscall);
      // A write still waiting for room fails with the same error (as node's does when the handle
      // goes), so whoever waits on its callback hears of it.
      const pending = this.#pendingWrite;
      this.#pendingWrite = null;
      this.destroy(ne);
      pending?.cb(ne);
      return;
    }
    // Orderly close: both FINs are done. Whatever was received before the peer's FIN is still read
    // by the consumer (#pull ends the readable side once it is drained).
    this.#pull();
  }

  // --- reading ------------------------------------------------------------------------------------

  override _read(): void {
    this.#wantRead = true;
    // Reading is deferred until the handshake completes; #onEstablished calls read(0) again.
    if (!this.connecting) this.#pull();
  }

  /** Take what the connection has buffered while the consumer wants it (RFC 9293 §3.10.3 RECEIVE). */
  #pull(): void {
    const conn = this.#conn;
    if (!conn || this.#endPushed || this.destroyed) return;
    while (this.#wantRead) {
      const data = conn.read();
      if (data === null || data.length === 0) break;
      this.#bytesRead += data.length;
      this.#touch();
      const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      if (!this.push(buf)) this.#wantRead = false;
      if (this.destroyed) return;
    }
    // The peer's FIN ends our readable side once everything before it has been taken.
    if (this.#wantRead && conn.finReceived && conn.readableLength === 0) {
      this.#endPushed = true;
      this.push(null);
    }
  }

  // --- writing ------------------------------------------------------------------------------------

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#pendingWrite = { chunk, taken: 0, cb: callback };
    this.#flushWrite();
  }

  /** Move the pending chunk into the send buffer (RFC 9293 §3.10.2 SEND) as space allows. */
  #flushWrite(): void {
    const p = this.#pendingWrite;
    const conn = this.#conn;
    if (!p || !conn || this.connecting) return;
    try {
      while (p.taken < p.chunk.length) {
        const n = conn.write(p.taken === 0 ? p.chunk : p.chunk.subarray(p.taken));
        if (n === 0) return; // full: onWritable resumes
        p.taken += n;
        this.#bytesWritten += n;
      }
    } catch (e) {
      this.#pendingWrite = null;
      // The connection was aborted (RST, timeout) in this batch of events, which #onClosed reports
      // next: that, not the EPIPE of writing into it, is the news.
      p.cb(toNetError(this.#closeError ?? e, 'write'));
      return;
    }
    this.#pendingWrite = null;
    this.#touch();
    p.cb();
  }

  #pendingFinal: ((error?: Error | null) => void) | null = null;

  /** end(): CLOSE after every written byte is in the send buffer — FIN follows them (§3.10.4). */
  override _final(callback: (error?: Error | null) => void): void {
    const conn = this.#conn;
    if (this.connecting || !conn) {
      this.#pendingFinal = callback;
      return;
    }
    if (!this.#finSent && !this.#connClosed) {
      this.#finSent = true;
      try {
        conn.close();
      } catch (e) {
        callback(toNetError(e, 'shutdown'));
        return;
      }
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    const conn = this.#conn;
    if (conn && !this.#connClosed) {
      const unsent = this.#pendingWrite !== null || this.writableLength > 0;
      if (error || unsent) conn.abort();
      else if (!this.#finSent) {
        this.#finSent = true;
        conn.close();
      }
      // Let the connection finish its side: take and drop what still arrives.
      conn.events = {
        onReadable: () => {
          while (conn.read() !== null);
        },
      };
      while (conn.read() !== null);
    }
    this.connecting = false;
    this.#pendingWrite = null;
    this.#pendingFinal = null;
    callback(error);
    // After 'error' (which the stream emits on the next tick), as node does.
    process.nextTick(() => this.emit('close', error !== null && error !== undefined));
  }

  /** node's resetAndDestroy(): ABORT with RST (RFC 9293 §3.10.5) whatever is queued. */
  resetAndDestroy(): this {
    if (this.#conn && !this.#connClosed) {
      this.#connClosed = true;
      this.#conn.abort();
    }
    this.destroy();
    return this;
  }

  /** End our side, then destroy once the end has been written. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  // --- options ------------------------------------------------------------------------------------

  setNoDelay(noDelay = true): this {
    this.#noDelay = noDelay;
    if (this.#conn && !this.#connClosed) this.#conn.setNoDelay(noDelay);
    return this;
  }

  /** Keep-alive probes (RFC 9293 §3.8.4) after `initialDelay` ms idle. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#keepAlive = { enable, delay: initialDelay };
    if (this.#conn && !this.#connClosed) this.#conn.setKeepAlive(enable, initialDelay);
    return this;
  }

  /**
   * Emit 'timeout' after `ms` of inactivity (no bytes read or written), on the stack's clock — so it
   * fires in virtual time under a VirtualClock. 0 disables it. Like node, it only notifies: the
   * socket stays open.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.#clearTimer();
    if (ms === 0 || !Number.isFinite(ms)) {
      this.timeout = undefined;
      return this;
    }
    this.timeout = ms;
    this.#lastActivity = this.#now();
    this.#armTimer(this.#lastActivity + ms);
    return this;
  }

  #now(): number {
    return this.#clock()?.now() ?? performance.now();
  }

  #armTimer(at: number): void {
    const clock = this.#clock();
    if (!clock || this.destroyed) return;
    this.#timer = clock.schedule(at, this.#onTimer);
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    const ms = this.timeout;
    if (ms === undefined || this.destroyed) return;
    const due = this.#lastActivity + ms;
    // Activity only records its time; the timer re-checks here instead of being re-armed per chunk.
    if (this.#now() < due) {
      this.#armTimer(due);
      return;
    }
    this.emit('timeout');
  };

  #touch(): void {
    if (this.timeout === undefined) return;
    this.#lastActivity = this.#now();
    // After a 'timeout', activity starts the idle period again (node refreshes its timer the same way).
    if (this.#timer === null) this.#armTimer(this.#lastActivity + this.timeout);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      this.#clock()?.cancel(this.#timer);
      this.#timer = null;
    }
  }

  /** No event loop handle to keep alive: accepted for compatibility. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

function normalizeConnectArgs(args: unknown[]): {
  options: TcpSocketConnectOpts;
  cb: (() => void) | undefined;
} {
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as () => void) : undefined;
  const first = args[0];
  if (typeof first === 'object' && first !== null) {
    return { options: first as TcpSocketConnectOpts, cb };
  }
  if (typeof first === 'number' || typeof first === 'string') {
    const host = typeof args[1] === 'string' ? args[1] : undefined;
    return { options: host !== undefined ? { port: first, host } : { port: first }, cb };
  }
  const err = new TypeError('synack: connect(port[, host][, cb]) or connect(options[, cb])') as
    TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  throw err;
}

// --- Server -----------------------------------------------------------------------------------------

export interface ServerOpts {
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused. */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

export interface ListenOptions {
  port?: number | string;
  host?: string;
  backlog?: number;
}

type SocketFactory = (options: SocketConstructorOpts) => Socket;

/** node's net.Server over synack's passive OPEN (RFC 9293 §3.10.1). */
export class Server extends EventEmitter {
  /** Connections beyond this many are aborted on arrival (node closes them). */
  maxConnections: number | undefined = undefined;

  readonly #stack: NetStack;
  readonly #options: ServerOpts;
  readonly #newSocket: SocketFactory;
  #listener: TcpListener | null = null;
  #host: string | undefined;
  #connections = 0;
  #closeEmitPending = false;
  #closing = false;

  constructor(stack: NetStack, options: ServerOpts = {}, connectionListener?: (s: Socket) => void,
    newSocket?: SocketFactory) {
    super();
    this.#stack = stack;
    this.#options = options;
    this.#newSocket = newSocket ?? ((o) => new Socket({ ...o, stack }));
    if (connectionListener) this.on('connection', connectionListener);
  }

  get listening(): boolean {
    return this.#listener !== null;
  }

  listen(port?: number | string, host?: string, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number | string, host?: string, listeningListener?: () => void): this;
  listen(port?: number | string, backlog?: number, listeningListener?: () => void): this;
  listen(port?: number | string, listeningListener?: () => void): this;
  listen(options: ListenOptions, listeningListener?: () => void): this;
  listen(listeningListener?: () => void): this;
  listen(...args: unknown[]): this {
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    const rest = cb ? args.slice(0, -1) : args;
    let options: ListenOptions = {};
    const first = rest[0];
    if (typeof first === 'object' && first !== null) options = first as ListenOptions;
    else if (first !== undefined && first !== null) {
      options = { port: first as number | string };
      if (typeof rest[1] === 'string') {
        options.host = rest[1];
        if (typeof rest[2] === 'number') options.backlog = rest[2];
      } else if (typeof rest[1] === 'number') options.backlog = rest[1];
    }
    if (this.#listener) {
      const err = new Error('Listen method has been called more than once without closing.') as
        NetError;
      err.code = 'ERR_SERVER_ALREADY_LISTEN';
      throw err;
    }
    const port = checkPort(options.port ?? 0, true);
    if (cb) this.once('listening', cb);
    const host = options.host === 'localhost' ? '127.0.0.1' : options.host;
    this.#closing = false;
    try {
      this.#listener = this.#stack.tcpListen({
        port,
        ...(host !== undefined ? { host } : {}),
        ...(options.backlog !== undefined ? { backlog: options.backlog } : {}),
      });
    } catch (e) {
      // EADDRINUSE and friends come as an 'error' event, like node.
      const err = toNetError(e, 'listen', host ?? '::', port);
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this.#host = host;
    this.#listener.onConnection = (conn) => this.#onConnection(conn);
    process.nextTick(() => {
      if (this.#listener) this.emit('listening');
    });
    return this;
  }

  #onConnection(conn: TcpConnection): void {
    if (this.maxConnections !== undefined && this.#connections >= this.maxConnections) {
      conn.abort();
      this.emit('drop', {
        localAddress: conn.localAddress,
        localPort: conn.localPort,
        remoteAddress: conn.remoteAddress,
        remotePort: conn.remotePort,
        remoteFamily: familyOf(conn.remoteAddress),
      });
      return;
    }
    const opts = this.#options;
    const sock = this.#newSocket({ allowHalfOpen: opts.allowHalfOpen === true });
    sock.server = this;
    sock[kAccept](conn);
    this.#connections++;
    sock.once('close', () => {
      this.#connections--;
      this.#emitCloseIfDrained();
    });
    // We are inside the stack's segment processing: touch the connection and run the user's handler
    // one turn later.
    this.#stack.clock.defer(() => {
      if (sock.destroyed) return;
      if (opts.noDelay) sock.setNoDelay(true);
      if (opts.keepAlive) sock.setKeepAlive(true, opts.keepAliveInitialDelay ?? 0);
      sock[kStart](opts.pauseOnConnect === true);
      this.emit('connection', sock);
    });
  }

  /** Stop accepting; 'close' follows once every accepted connection has closed (as in node). */
  close(callback?: (err?: Error) => void): this {
    if (callback) {
      if (!this.#listener) {
        this.once('close', () => {
          const err = new Error('Server is not running.') as NetError;
          err.code = 'ERR_SERVER_NOT_RUNNING';
          callback(err);
        });
      } else this.once('close', () => callback());
    }
    if (this.#listener) {
      this.#listener.onConnection = null;
      this.#listener.close();
      this.#listener = null;
    }
    this.#closing = true;
    this.#emitCloseIfDrained();
    return this;
  }

  #emitCloseIfDrained(): void {
    if (!this.#closing || this.#listener || this.#connections > 0 || this.#closeEmitPending) return;
    this.#closeEmitPending = true;
    process.nextTick(() => {
      this.#closeEmitPending = false;
      this.#closing = false;
      this.emit('close');
    });
  }

  /** Where the server listens; an unbound host is reported as '::' (node's dual-stack any). */
  address(): AddressInfo | null {
    const l = this.#listener;
    if (!l) return null;
    const address = this.#host === undefined ? '::' : l.localAddress;
    return { address, family: familyOf(address), port: l.localPort };
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.#connections;
    process.nextTick(() => cb(null, n));
    return this;
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

// --- the per-stack module object --------------------------------------------------------------------

export type SocketClass = new (options?: SocketConstructorOpts) => Socket;
export type ServerClass = new (options?: ServerOpts, connectionListener?: (s: Socket) => void) =>
  Server;

/**
 * `node:net` for one stack: `stack.net.createServer(...)`, `stack.net.connect(...)`,
 * `new stack.net.Socket()`.
 */
export class Net {
  /** `new net.Socket()` bound to this stack (instances are also `instanceof` the exported Socket). */
  readonly Socket: SocketClass;
  readonly Server: ServerClass;
  readonly isIP = isIP;
  readonly isIPv4 = isIPv4;
  readonly isIPv6 = isIPv6;

  constructor(readonly stack: NetStack) {
    const BoundSocket = class extends Socket {
      constructor(options: SocketConstructorOpts = {}) {
        super({ ...options, stack });
      }
    };
    const newSocket: SocketFactory = (o) => new BoundSocket(o);
    this.Socket = BoundSocket;
    this.Server = class extends Server {
      constructor(options?: ServerOpts, connectionListener?: (s: Socket) => void) {
        super(stack, options, connectionListener, newSocket);
      }
    };
  }

  createServer(connectionListener?: (socket: Socket) => void): Server;
  createServer(options?: ServerOpts, connectionListener?: (socket: Socket) => void): Server;
  createServer(
    a?: ServerOpts | ((socket: Socket) => void),
    b?: (socket: Socket) => void,
  ): Server {
    if (typeof a === 'function') return new this.Server({}, a);
    return new this.Server(a ?? {}, b);
  }

  connect(options: TcpSocketConnectOpts, connectListener?: () => void): Socket;
  connect(port: number | string, host?: string, connectListener?: () => void): Socket;
  connect(port: number | string, connectListener?: () => void): Socket;
  connect(...args: unknown[]): Socket {
    const { options } = normalizeConnectArgs(args);
    const sock = new this.Socket(
      options.allowHalfOpen !== undefined ? { allowHalfOpen: options.allowHalfOpen } : {},
    );
    return (sock.connect as (...a: unknown[]) => Socket)(...args);
  }

  createConnection(options: TcpSocketConnectOpts, connectListener?: () => void): Socket;
  createConnection(port: number | string, host?: string, connectListener?: () => void): Socket;
  createConnection(port: number | string, connectListener?: () => void): Socket;
  createConnection(...args: unknown[]): Socket {
    return (this.connect as (...a: unknown[]) => Socket)(...args);
  }
}
