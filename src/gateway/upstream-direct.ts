/**
 * The direct way out (issue 15), Node only: each relayed TCP stream is a `node:net` socket and each
 * UDP flow a connected `node:dgram` socket, so the host's kernel does the routing, and names resolve
 * through the host's resolver (`NodeDnsUpstream`, src/services/dns-upstream-node.ts).
 *
 * Errors from the host's sockets are mapped to the words the relay understands (UpstreamError,
 * src/gateway/upstream.ts): a refused connect becomes a RST to the guest's SYN, an unreachable or
 * silent destination an ICMP unreachable, a reset mid-stream a RST.
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { Socket, connect, isIP } from 'node:net';
import { NodeDnsUpstream, type NodeDnsUpstreamOptions } from '../services/dns-upstream-node.js';
import type { DnsUpstream } from '../services/dns-server.js';
import { formatEndpoint } from '../wire/address.js';
import {
  UpstreamError,
  type Upstream,
  type UpstreamDatagrams,
  type UpstreamErrorCode,
  type UpstreamStream,
  type UpstreamTarget,
} from './upstream.js';

/** The errno-like code of a Node error (an AggregateError from happy eyeballs: its first error's). */
function nodeCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors) && e.errors.length > 0) return nodeCode(e.errors[0]);
  return undefined;
}

/** Node's socket errors in the relay's words (see UpstreamErrorCode). */
export function upstreamErrorFromNode(err: unknown, what: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = nodeCode(err);
  let mapped: UpstreamErrorCode;
  switch (code) {
    case 'ECONNREFUSED':
      mapped = 'refused';
      break;
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      mapped = 'unreachable';
      break;
    case 'ETIMEDOUT':
      mapped = 'timeout';
      break;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      mapped = 'reset';
      break;
    case 'EACCES':
    case 'EPERM':
      mapped = 'forbidden';
      break;
    default:
      mapped = code === 'ENOTFOUND' || (code?.startsWith('EAI_') ?? false) ? 'dns' : 'error';
  }
  const detail = code ?? (err instanceof Error ? err.message : String(err));
  return new UpstreamError(mapped, `${what}: ${detail}`);
}

/**
 * A connected `net.Socket` as an UpstreamStream. The socket must have been created with
 * `allowHalfOpen: true` (a server's sockets too: `net.createServer({ allowHalfOpen: true })`),
 * or Node ends our side as soon as the peer's FIN arrives and half-close does not pass through.
 *
 * `write` returns `sock.write()`'s verdict (false above the socket's writableHighWaterMark; then
 * `ondrain`); `end` is a half-close (FIN after what was written); `destroy` sends a RST
 * (`resetAndDestroy`, SO_LINGER 0). `onclose` is called once, from the socket's 'close': null when
 * both directions ended in order (or after our own `destroy`), UpstreamError 'reset' (or what the
 * socket's error maps to) otherwise. Chunks handed to `ondata` are Node Buffers owned by the caller.
 */
export function socketStream(sock: Socket): UpstreamStream {
  let error: UpstreamError | null = null;
  let destroyed = false;
  let ended = false; // we sent FIN
  let gotEnd = false; // the peer's FIN
  let closed = false;
  const where = (): string => `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? '?'}`;

  const stream: UpstreamStream = {
    write(data: Uint8Array): boolean {
      if (closed || destroyed || ended || sock.destroyed) return false;
      return sock.write(data);
    },
    end(): void {
      if (closed || destroyed || ended) return;
      ended = true;
      sock.end();
    },
    destroy(): void {
      if (destroyed || closed) return;
      destroyed = true;
      try {
        sock.resetAndDestroy();
      } catch {
        sock.destroy();
      }
      // resetAndDestroy does nothing on a socket without a handle: make sure 'close' comes.
      if (!sock.destroyed) sock.destroy();
    },
    pause(): void {
      if (!closed) sock.pause();
    },
    resume(): void {
      if (!closed) sock.resume();
    },
    ondata: null,
    onend: null,
    ondrain: null,
    onclose: null,
    halfClose: true,
  };

  sock.on('data', (chunk: Buffer) => {
    if (!destroyed) stream.ondata?.(chunk);
  });
  sock.on('end', () => {
    gotEnd = true;
    if (!destroyed) stream.onend?.();
  });
  sock.on('drain', () => {
    if (!destroyed) stream.ondrain?.();
  });
  sock.on('error', (err) => {
    error ??= upstreamErrorFromNode(err, where());
  });
  sock.on('close', () => {
    if (closed) return;
    closed = true;
    let why: UpstreamError | null = null;
    if (destroyed) why = null;
    else if (error !== null) why = error;
    else if (!(ended && gotEnd)) why = new UpstreamError('reset', `${where()} closed before both directions ended`);
    stream.onclose?.(why);
  });
  return stream;
}

export interface DirectUpstreamOptions {
  /** Bound on a TCP connect or UDP connect (ms). Default 10 000. */
  connectTimeoutMs?: number;
  /** Node's stream high-water mark for each socket (bytes); default Node's own. */
  highWaterMark?: number;
  /** The resolver for the guest's DNS. Default: `new NodeDnsUpstream(dnsOptions)` (the host's). */
  dns?: DnsUpstream;
  dnsOptions?: NodeDnsUpstreamOptions;
}

function abortError(signal: AbortSignal, what: string): UpstreamError {
  const r = signal.reason as { name?: unknown } | undefined;
  return r !== undefined && r !== null && r.name === 'TimeoutError'
    ? new UpstreamError('timeout', `${what}: aborted (timeout)`)
    : new UpstreamError('error', `${what}: aborted`);
}

/** `tcp 192.0.2.1:80`, `udp [2001:db8::1]:53`: how errors name a target. */
function targetName(protocol: 'tcp' | 'udp', target: UpstreamTarget): string {
  return `${protocol} ${formatEndpoint(target.host, target.port)}`;
}

function checkTarget(target: UpstreamTarget, what: string): void {
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new UpstreamError('error', `${what}: bad port ${target.port}`);
  }
  if (typeof target.host !== 'string' || target.host === '') throw new UpstreamError('error', `${what}: no host`);
}

/** Connects through the host's own sockets (Node only). */
export class DirectUpstream implements Upstream {
  readonly name = 'direct';
  readonly dns: DnsUpstream;
  readonly byName = false;
  /** Streams and flows opened, failed to open, open now. */
  readonly counters = { tcpOpened: 0, tcpFailed: 0, udpOpened: 0, udpFailed: 0 };
  readonly #timeoutMs: number;
  readonly #highWaterMark: number | undefined;
  readonly #tcp = new Set<Socket>();
  /** Each open UDP flow's way to end itself. */
  readonly #udp = new Map<DgramSocket, (why: UpstreamError | null) => void>();
  #closed = false;

  constructor(options: DirectUpstreamOptions = {}) {
    this.#timeoutMs = options.connectTimeoutMs ?? 10_000;
    if (!(this.#timeoutMs > 0)) throw new RangeError(`connectTimeoutMs must be > 0 (got ${options.connectTimeoutMs})`);
    this.#highWaterMark = options.highWaterMark;
    this.dns = options.dns ?? new NodeDnsUpstream(options.dnsOptions ?? {});
  }

  /** Sockets open now (TCP streams and UDP flows). */
  get open(): { tcp: number; udp: number } {
    return { tcp: this.#tcp.size, udp: this.#udp.size };
  }

  /** Why an open fails before any socket: the upstream closed, the signal aborted, a bad target; else null. */
  #refuseEarly(target: UpstreamTarget, signal: AbortSignal | undefined, what: string): UpstreamError | null {
    if (this.#closed) return new UpstreamError('error', `${what}: upstream closed`);
    if (signal?.aborted === true) return abortError(signal, what);
    try {
      checkTarget(target, what);
    } catch (e) {
      return upstreamErrorFromNode(e, what);
    }
    return null;
  }

  openTcp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamStream> {
    const what = targetName('tcp', target);
    return new Promise<UpstreamStream>((resolve, reject) => {
      const fail = (e: UpstreamError): void => {
        this.counters.tcpFailed++;
        reject(e);
      };
      const signal = options.signal;
      const refused = this.#refuseEarly(target, signal, what);
      if (refused !== null) return fail(refused);
      let sock: Socket;
      try {
        sock = connect({
          host: target.host,
          port: target.port,
          allowHalfOpen: true,
          noDelay: true,
          ...(this.#highWaterMark !== undefined ? { highWaterMark: this.#highWaterMark } : {}),
        });
      } catch (e) {
        return fail(upstreamErrorFromNode(e, what));
      }
      this.#tcp.add(sock);
      sock.once('close', () => this.#tcp.delete(sock));
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        sock.off('connect', onConnect);
        sock.off('error', onError);
        sock.off('close', onEarlyClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const giveUp = (e: UpstreamError): void => {
        if (settled) return;
        cleanup();
        // Keep a listener: a late error on a socket being torn down must not crash the process.
        sock.on('error', () => {});
        sock.destroy();
        fail(e);
      };
      const onConnect = (): void => {
        if (settled) return;
        cleanup();
        this.counters.tcpOpened++;
        resolve(socketStream(sock));
      };
      const onError = (err: Error): void => giveUp(upstreamErrorFromNode(err, what));
      const onAbort = (): void => giveUp(abortError(signal!, what));
      // Closed before connecting without an error: only our own close() does that.
      const onEarlyClose = (): void => giveUp(new UpstreamError('error', `${what}: upstream closed`));
      const timer = setTimeout(() => giveUp(new UpstreamError('timeout', `${what}: no answer in ${this.#timeoutMs} ms`)), this.#timeoutMs);
      sock.once('connect', onConnect);
      sock.once('error', onError);
      sock.once('close', onEarlyClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  openUdp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamDatagrams> {
    const what = targetName('udp', target);
    return new Promise<UpstreamDatagrams>((resolve, reject) => {
      const fail = (e: UpstreamError): void => {
        this.counters.udpFailed++;
        reject(e);
      };
      const signal = options.signal;
      const refused = this.#refuseEarly(target, signal, what);
      if (refused !== null) return fail(refused);
      const sock = createSocket(isIP(target.host) === 6 ? 'udp6' : 'udp4');
      this.#udp.set(sock, (why) => finish(why));
      let settled = false;
      let closed = false;
      const flow: UpstreamDatagrams = {
        send: (data: Uint8Array): void => {
          if (closed) return;
          sock.send(data, (err) => {
            if (err) onFlowError(err);
          });
        },
        onmessage: null,
        onclose: null,
        close: (): void => finish(null),
      };
      const finish = (why: UpstreamError | null): void => {
        if (!settled) return giveUp(why ?? new UpstreamError('error', `${what}: closed`));
        if (closed) return;
        closed = true;
        this.#udp.delete(sock);
        try {
          sock.close();
        } catch {
          // already closed
        }
        // As TCP's onclose: not from inside the caller's own close().
        queueMicrotask(() => flow.onclose?.(why));
      };
      // A connected UDP socket hears ICMP errors (Linux udp_err): port unreachable means nobody
      // listens there, so the flow ends and the relay can tell the guest; per-datagram trouble
      // (too big, no buffer space) only loses that datagram, as UDP may.
      const onFlowError = (err: Error): void => {
        const code = nodeCode(err);
        if (code === 'EMSGSIZE' || code === 'ENOBUFS' || code === 'EAGAIN' || code === 'EWOULDBLOCK') return;
        finish(upstreamErrorFromNode(err, what));
      };
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const giveUp = (e: UpstreamError): void => {
        if (settled) return;
        cleanup();
        closed = true;
        this.#udp.delete(sock);
        try {
          sock.close();
        } catch {
          // already closed
        }
        fail(e);
      };
      const onAbort = (): void => giveUp(abortError(signal!, what));
      const timer = setTimeout(() => giveUp(new UpstreamError('timeout', `${what}: connect took over ${this.#timeoutMs} ms`)), this.#timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.on('error', (err) => {
        if (!settled) giveUp(upstreamErrorFromNode(err, what));
        else onFlowError(err);
      });
      sock.on('message', (msg: Buffer) => {
        if (!closed) flow.onmessage?.(msg);
      });
      try {
        sock.connect(target.port, target.host, () => {
          if (settled) return;
          cleanup();
          this.counters.udpOpened++;
          resolve(flow);
        });
      } catch (e) {
        giveUp(upstreamErrorFromNode(e, what));
      }
    });
  }

  /** Resets every open stream, closes every flow and the resolver; later opens fail. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#tcp]) {
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
      if (!s.destroyed) s.destroy();
    }
    this.#tcp.clear();
    for (const end of [...this.#udp.values()]) end(new UpstreamError('error', 'upstream closed'));
    this.#udp.clear();
    this.dns.close?.();
  }
}
