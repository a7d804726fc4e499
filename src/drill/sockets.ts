/**
 * The system calls of a packetdrill script, with Unix semantics, over synack's user interface
 * (RFC 9293 §3.9.1): file descriptors from 3, blocking and non-blocking calls, SO_ERROR, errno names.
 *
 * A call either completes now (`{ done: true, … }`) or would block (`{ done: false }`); the runner
 * asks again as virtual time passes, so a blocking call can return while later script lines run.
 */
import type { Stack } from '../stack/stack.js';
import { TcpError, type TcpConnection, type TcpListener } from '../tcp/user.js';
import type { Expr } from './ast.js';

export type CallOutcome =
  | { done: false }
  | { done: true; result: number; errno?: string; mismatch?: string };

const O_RDWR = 0x2;
const O_NONBLOCK = 0x800;
const POLLIN = 0x1;
const POLLPRI = 0x2;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLRDHUP = 0x2000;
const POLL_BITS: Record<string, number> = { POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLRDHUP, POLLRDNORM: 0x40, POLLWRNORM: 0x100 };
const SYMBOLS: Record<string, number> = {
  ...POLL_BITS, O_RDWR, O_NONBLOCK, O_RDONLY: 0, O_WRONLY: 1,
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2, AF_INET: 2, AF_INET6: 10, SOCK_STREAM: 1, IPPROTO_TCP: 6,
  MSG_DONTWAIT: 0x40, MSG_PEEK: 0x2, MSG_NOSIGNAL: 0x4000,
};

/** Socket options whose behaviour a script would depend on and synack does not have. */
const UNSUPPORTED_OPTIONS = new Set([
  'SO_ZEROCOPY', 'TCP_MD5SIG', 'TCP_MD5SIG_EXT', 'TCP_INQ', 'TCP_FASTOPEN', 'TCP_FASTOPEN_CONNECT',
  'TCP_FASTOPEN_KEY', 'TCP_ZEROCOPY_RECEIVE', 'SO_TIMESTAMPING', 'TCP_REPAIR', 'TCP_ULP', 'SO_TXTIME',
  'TCP_AO_ADD_KEY', 'SO_MAX_PACING_RATE', 'TCP_CONGESTION',
]);
/** send/recv flags likewise. */
const UNSUPPORTED_FLAGS = ['MSG_ZEROCOPY', 'MSG_ERRQUEUE', 'MSG_FASTOPEN', 'MSG_OOB'];

interface Sock {
  fd: number;
  nonblocking: boolean;
  /** bind()'s port (0: none). */
  port: number;
  listener: TcpListener | null;
  conn: TcpConnection | null;
  /** A pending error for SO_ERROR (cleared when read), as an errno name. */
  soError: string | null;
  /** The connection failed or was reset: later calls see this. */
  failed: string | null;
  /** connect() was called (non-blocking: in progress until established or failed). */
  connecting: boolean;
  lingerZero: boolean;
  noDelay: boolean;
  shutWr: boolean;
  /** Set when connect() completed and a second connect() must say EISCONN. */
  connected: boolean;
}

/** Where the remote peer is, and the default port packetdrill binds and connects to. */
export interface SocketEnv {
  stack: Stack;
  remoteAddress: string;
  defaultPort: number;
  warn(message: string): void;
  now(): number;
}

export class DrillSockets {
  private readonly socks = new Map<number, Sock>();
  /**
   * The descriptor the script expects a new socket to get: like packetdrill, the script's numbers
   * name sockets (Linux's selftests start at 4), so a new socket takes the number the script gives.
   */
  private wantFd: number | null = null;
  /** The socket most recently used, for `%{ tcpi_… }%` assertions. */
  lastConnection: TcpConnection | null = null;

  constructor(private readonly env: SocketEnv) {}

  /**
   * Runs one call, first made at `startedAt` (ms; a blocking call is asked again as time passes).
   * Throws an Error (a script the runner cannot model) only for unknown calls.
   */
  call(name: string, args: Expr[], startedAt = this.env.now(), wantFd: number | null = null): CallOutcome {
    this.wantFd = wantFd;
    if (mentions(args, UNSUPPORTED_FLAGS)) {
      throw new Error(`${name}() with ${UNSUPPORTED_FLAGS.filter((f) => mentions(args, [f])).join('|')} is not supported`);
    }
    switch (name) {
      case 'socket': return this.socket();
      case 'bind': return this.withSock(args, (s) => this.bind(s, args));
      case 'listen': return this.withSock(args, (s) => this.listen(s, args));
      case 'accept': case 'accept4': return this.withSock(args, (s) => this.accept(s));
      case 'connect': return this.withSock(args, (s) => this.connect(s, args));
      case 'read': case 'recv': case 'recvfrom': case 'readv': case 'recvmsg':
        return this.withSock(args, (s) => this.read(s, this.lengthArg(name, args)));
      case 'write': case 'send': case 'sendto': case 'writev': case 'sendmsg':
        return this.withSock(args, (s) => this.write(s, this.lengthArg(name, args)));
      case 'close': return this.withSock(args, (s) => this.close(s));
      case 'shutdown': return this.withSock(args, (s) => this.shutdown(s, args));
      case 'getsockopt': return this.withSock(args, (s) => this.getsockopt(s, args));
      case 'setsockopt': return this.withSock(args, (s) => this.setsockopt(s, args));
      case 'fcntl': return this.withSock(args, (s) => this.fcntl(s, args));
      case 'poll': return this.poll(args, startedAt);
      default:
        throw new Error(`system call ${name}() is not supported`);
    }
  }

  // ---------------------------------------------------------------- helpers

  private withSock(args: Expr[], fn: (s: Sock) => CallOutcome): CallOutcome {
    const fd = num(args[0]);
    const s = fd === null ? undefined : this.socks.get(fd);
    if (s === undefined) return fail('EBADF');
    if (s.conn !== null) this.lastConnection = s.conn;
    return fn(s);
  }

  private lengthArg(name: string, args: Expr[]): number {
    // read(fd, buf, len), recv(fd, buf, len, flags), writev/readv(fd, iov, iovcnt): take the length.
    if (name === 'writev' || name === 'readv' || name === 'sendmsg' || name === 'recvmsg') {
      return iovLength(args[1]) ?? 0;
    }
    return num(args[2]) ?? 0;
  }

  private takeError(s: Sock): string | null {
    const e = s.soError;
    s.soError = null;
    return e;
  }

  private watch(s: Sock, c: TcpConnection): void {
    c.events = {
      onClosed: (error) => {
        if (error !== null) {
          const code = error instanceof TcpError ? error.code : 'EIO';
          s.soError = code;
          s.failed = code;
        }
      },
    };
  }

  // ---------------------------------------------------------------- calls

  private socket(): CallOutcome {
    let fd = 3;
    while (this.socks.has(fd)) fd++;
    if (this.wantFd !== null && this.wantFd >= 0 && !this.socks.has(this.wantFd)) fd = this.wantFd;
    this.socks.set(fd, {
      fd, nonblocking: false, port: 0, listener: null, conn: null, soError: null, failed: null,
      connecting: false, lingerZero: false, noDelay: false, shutWr: false, connected: false,
    });
    return ok(fd);
  }

  private bind(s: Sock, args: Expr[]): CallOutcome {
    s.port = sockaddrPort(args[1]) ?? this.env.defaultPort;
    return ok(0);
  }

  private listen(s: Sock, args: Expr[]): CallOutcome {
    const backlog = Math.max(num(args[1]) ?? 1, 0);
    if (s.listener !== null) return ok(0);
    try {
      // Linux accepts backlog + 1 connections into the queue (sk_acceptq_is_full uses >).
      s.listener = this.env.stack.tcpListen({ port: s.port || this.env.defaultPort, backlog: backlog + 1 });
      return ok(0);
    } catch (e) {
      return failFrom(e);
    }
  }

  private accept(s: Sock): CallOutcome {
    if (s.listener === null) return fail('EINVAL');
    const c = s.listener.accept();
    if (c === null) return s.nonblocking ? fail('EAGAIN') : { done: false };
    const child = this.socket();
    const n = this.socks.get((child as { result: number }).result)!;
    n.conn = c;
    n.connected = true;
    n.noDelay = s.noDelay;
    if (s.noDelay) c.setNoDelay(true);
    this.watch(n, c);
    this.lastConnection = c;
    // The connection may have failed between the handshake and accept().
    return ok(n.fd);
  }

  private connect(s: Sock, args: Expr[]): CallOutcome {
    if (s.conn === null) {
      if (s.connected) return fail('EISCONN');
      try {
        const c = this.env.stack.tcpConnect({
          host: this.env.remoteAddress,
          port: sockaddrPort(args[1]) ?? this.env.defaultPort,
          ...(s.port !== 0 ? { localPort: s.port } : {}),
        });
        s.conn = c;
        s.connecting = true;
        this.watch(s, c);
        if (s.noDelay) c.setNoDelay(true);
        this.lastConnection = c;
      } catch (e) {
        return failFrom(e);
      }
      if (s.nonblocking) return fail('EINPROGRESS');
      return { done: false };
    }
    // A second call (or a blocking one, asked again).
    const c = s.conn;
    if (c.state === 'SYN-SENT' || c.state === 'SYN-RECEIVED') {
      return s.nonblocking && !s.connecting ? fail('EALREADY') : s.nonblocking ? fail('EALREADY') : { done: false };
    }
    if (s.failed !== null && s.connecting) {
      s.connecting = false;
      return fail(this.takeError(s) ?? s.failed);
    }
    if (s.connecting && s.nonblocking && !s.connected) {
      // Linux: connect() again after a non-blocking one completed returns 0 once, then EISCONN.
      s.connecting = false;
      s.connected = true;
      return ok(0);
    }
    if (s.connecting) {
      s.connecting = false;
      s.connected = true;
      return ok(0);
    }
    return fail('EISCONN');
  }

  private read(s: Sock, len: number): CallOutcome {
    const c = s.conn;
    if (c === null) return fail('ENOTCONN');
    if (c.readableLength > 0) {
      const data = c.read(len);
      return ok(data === null ? 0 : data.length);
    }
    const err = this.takeError(s);
    if (err !== null) return fail(err);
    if (c.finReceived || s.failed !== null || c.state === 'CLOSED') return ok(0);
    if (c.state === 'SYN-SENT' || c.state === 'SYN-RECEIVED') return s.nonblocking ? fail('EAGAIN') : { done: false };
    return s.nonblocking ? fail('EAGAIN') : { done: false };
  }

  private pendingWrite = new Map<number, number>();

  private write(s: Sock, len: number): CallOutcome {
    const c = s.conn;
    if (c === null) return fail(s.connecting ? 'EAGAIN' : 'EPIPE');
    const err = this.takeError(s);
    if (err !== null) return fail(err);
    if (s.failed !== null || s.shutWr) return fail('EPIPE');
    if (c.state === 'SYN-SENT' || c.state === 'SYN-RECEIVED') return s.nonblocking ? fail('EAGAIN') : { done: false };
    // A blocking write takes everything before it returns (what is left is remembered across polls).
    const left = this.pendingWrite.get(s.fd) ?? len;
    let n: number;
    try {
      n = c.write(new Uint8Array(left));
    } catch (e) {
      return failFrom(e);
    }
    if (s.nonblocking) {
      this.pendingWrite.delete(s.fd);
      return n === 0 && left > 0 ? fail('EAGAIN') : ok(n);
    }
    if (n < left) {
      this.pendingWrite.set(s.fd, left - n);
      return { done: false };
    }
    this.pendingWrite.delete(s.fd);
    return ok(len);
  }

  private close(s: Sock): CallOutcome {
    this.socks.delete(s.fd);
    if (s.listener !== null) s.listener.close();
    const c = s.conn;
    if (c !== null) {
      // RFC 9293 §3.10.4 / RFC 2525 §2.17 (as Linux): closing with unread data, or with SO_LINGER
      // 0, aborts with RST instead of the orderly FIN.
      if (s.lingerZero || c.readableLength > 0) c.abort();
      else c.close({ discardInput: true });
    }
    return ok(0);
  }

  private shutdown(s: Sock, args: Expr[]): CallOutcome {
    const how = num(args[1]) ?? symbol(args[1]);
    const c = s.conn;
    if (c === null) return fail('ENOTCONN');
    if (how === 1 || how === 2) {
      s.shutWr = true;
      c.close();
    }
    return ok(0);
  }

  private getsockopt(s: Sock, args: Expr[]): CallOutcome {
    const opt = symName(args[2]);
    if (opt === 'SO_ERROR') {
      const err = this.takeError(s);
      const want = listFirst(args[3]);
      const got = err ?? '0';
      const wantName = want === null ? null : want.t === 'num' ? String(want.v) : want.t === 'sym' ? want.v : null;
      if (wantName !== null && wantName !== got) {
        return { done: true, result: 0, mismatch: `SO_ERROR is [${got}], expected [${wantName}]` };
      }
      return ok(0);
    }
    if (opt === 'TCP_NODELAY') return this.checkInt(args[3], s.noDelay ? 1 : 0, opt);
    this.env.warn(`getsockopt ${opt} is not checked`);
    return ok(0);
  }

  private checkInt(arg: Expr | undefined, got: number, what: string): CallOutcome {
    const want = listFirst(arg);
    if (want !== null && want.t === 'num' && want.v !== got) {
      return { done: true, result: 0, mismatch: `${what} is [${got}], expected [${want.v}]` };
    }
    return ok(0);
  }

  private setsockopt(s: Sock, args: Expr[]): CallOutcome {
    const opt = symName(args[2]);
    const v = listFirst(args[3]);
    const value = v !== null && v.t === 'num' ? v.v : null;
    switch (opt) {
      case 'SO_REUSEADDR':
      case 'SO_REUSEPORT':
        return ok(0);
      case 'TCP_NODELAY':
        s.noDelay = value !== 0;
        s.conn?.setNoDelay(s.noDelay);
        return ok(0);
      case 'SO_LINGER': {
        const st = args[3];
        if (st !== undefined && st.t === 'struct') {
          const onoff = st.fields.find((f) => f.name === 'onoff' || f.name === 'l_onoff') ?? st.fields[0];
          const linger = st.fields.find((f) => f.name === 'linger' || f.name === 'l_linger') ?? st.fields[1];
          s.lingerZero = num(onoff?.value) === 1 && num(linger?.value) === 0;
        }
        return ok(0);
      }
      case 'SO_KEEPALIVE':
        s.conn?.setKeepAlive(value !== 0);
        return ok(0);
      default:
        if (UNSUPPORTED_OPTIONS.has(opt)) throw new Error(`socket option ${opt} is not supported`);
        this.env.warn(`setsockopt ${opt} is accepted and ignored`);
        return ok(0);
    }
  }

  private fcntl(s: Sock, args: Expr[]): CallOutcome {
    const cmd = symName(args[1]);
    if (cmd === 'F_GETFL') {
      const flags = O_RDWR | (s.nonblocking ? O_NONBLOCK : 0);
      return ok(flags);
    }
    if (cmd === 'F_SETFL') {
      const flags = evalFlags(args[2]);
      s.nonblocking = (flags & O_NONBLOCK) !== 0;
      return ok(0);
    }
    return fail('EINVAL');
  }

  /** poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, timeout). */
  private poll(args: Expr[], startedAt: number): CallOutcome {
    const list = args[0];
    if (list === undefined || list.t !== 'list') return fail('EINVAL');
    let ready = 0;
    const mismatches: string[] = [];
    for (const item of list.items) {
      if (item.t !== 'struct') continue;
      const field = (n: string): Expr | undefined => item.fields.find((f) => f.name === n)?.value;
      const fd = num(field('fd')) ?? -1;
      const events = evalFlags(field('events'));
      const s = this.socks.get(fd);
      const revents = s === undefined ? 0x20 /* POLLNVAL */ : this.revents(s, events);
      if (revents !== 0) ready++;
      const want = field('revents');
      if (want !== undefined) {
        const w = evalFlags(want);
        if (w !== revents) mismatches.push(`fd ${fd} revents ${pollNames(revents)}, expected ${pollNames(w)}`);
      }
    }
    if (ready === 0) {
      // The timeout (ms; negative: forever): 0 when nothing became ready in time.
      const timeout = num(args[2]) ?? -1;
      if (timeout >= 0 && this.env.now() - startedAt >= timeout) return ok(0);
      return { done: false };
    }
    return { done: true, result: ready, ...(mismatches.length > 0 ? { mismatch: mismatches.join('; ') } : {}) };
  }

  private revents(s: Sock, events: number): number {
    let r = 0;
    if (s.listener !== null) {
      // A listener is readable when a connection can be accepted.
      const l = s.listener as TcpListener & { acceptQueue?: unknown[] };
      if ((l.acceptQueue?.length ?? 0) > 0) r |= POLLIN & events;
      return r;
    }
    const c = s.conn;
    if (c === null) return POLLOUT & events | POLLHUP;
    if (s.failed !== null) return POLLERR | POLLHUP | (events & (POLLIN | POLLOUT));
    if (c.readableLength > 0 || c.finReceived) r |= events & POLLIN;
    if (c.finReceived) r |= events & POLLRDHUP;
    const open = c.state === 'ESTABLISHED' || c.state === 'CLOSE-WAIT';
    if (open && c.writableSpace > 0 && !s.shutWr) r |= events & POLLOUT;
    if (c.state === 'CLOSED' || (c.finReceived && s.shutWr)) r |= POLLHUP;
    return r;
  }
}

// -------------------------------------------------------------------- expression helpers

function ok(result: number): CallOutcome {
  return { done: true, result };
}

function fail(errno: string): CallOutcome {
  return { done: true, result: -1, errno };
}

function failFrom(e: unknown): CallOutcome {
  if (e instanceof TcpError) return fail(e.code);
  throw e;
}

/** Whether a symbol from `names` appears anywhere in the arguments. */
function mentions(args: Expr[], names: string[]): boolean {
  const seen = (e: Expr): boolean => {
    switch (e.t) {
      case 'sym': return names.includes(e.v);
      case 'or': case 'list': return e.items.some(seen);
      case 'struct': return e.fields.some((f) => seen(f.value));
      case 'call': return e.args.some(seen);
      default: return false;
    }
  };
  return args.some(seen);
}

function num(e: Expr | undefined): number | null {
  if (e === undefined) return null;
  if (e.t === 'num') return e.v;
  if (e.t === 'list' && e.items.length === 1) return num(e.items[0]);
  if (e.t === 'sym' && e.v in SYMBOLS) return SYMBOLS[e.v]!;
  return null;
}

function symbol(e: Expr | undefined): number | null {
  return e !== undefined && e.t === 'sym' && e.v in SYMBOLS ? SYMBOLS[e.v]! : null;
}

function symName(e: Expr | undefined): string {
  return e !== undefined && e.t === 'sym' ? e.v : e !== undefined && e.t === 'num' ? String(e.v) : '?';
}

function listFirst(e: Expr | undefined): Expr | null {
  if (e === undefined) return null;
  if (e.t === 'list') return e.items[0] ?? null;
  if (e.t === 'ellipsis') return null;
  return e;
}

function evalFlags(e: Expr | undefined): number {
  if (e === undefined) return 0;
  if (e.t === 'num') return e.v;
  if (e.t === 'sym') return SYMBOLS[e.v] ?? 0;
  if (e.t === 'or') return e.items.reduce((a, x) => a | evalFlags(x), 0);
  return 0;
}

function pollNames(bits: number): string {
  const names = Object.entries(POLL_BITS).filter(([, b]) => bits & b).map(([n]) => n);
  return names.length > 0 ? names.join('|') : '0';
}

/** The port of a sockaddr written as a struct (`{sa_family=AF_INET, sin_port=htons(8080), …}`). */
function sockaddrPort(e: Expr | undefined): number | null {
  if (e === undefined || e.t !== 'struct') return null;
  const p = e.fields.find((f) => f.name === 'sin_port' || f.name === 'sin6_port')?.value;
  if (p === undefined) return null;
  if (p.t === 'call' && p.name === 'htons') return num(p.args[0]);
  return num(p);
}

function iovLength(e: Expr | undefined): number | null {
  if (e === undefined || e.t !== 'list') return null;
  let total = 0;
  for (const item of e.items) {
    if (item.t !== 'struct') continue;
    const len = item.fields.find((f) => f.name === 'iov_len')?.value ?? item.fields[1]?.value;
    total += num(len) ?? 0;
  }
  return total;
}
