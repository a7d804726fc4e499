/**
 * `synack get URL (--tun IF | --tap IF [--mac MAC] [--dhcp]) [--kernel-address CIDR]... [--address IP...] [-o F]`:
 * one HTTP/1.1 GET with node's own `http` client over a synack socket (`createConnection`), the stack
 * on a TUN or TAP device (CONTRACT.md, CLI). The body is streamed to F or stdout; a progress bar goes
 * to stderr when stderr is a terminal. Exit 0 on a 2xx, 1 on an HTTP error, a failed connection or an interrupt, 2 on bad
 * usage.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Net, Socket } from '../socket/net.js';
import type { TcpInfo } from '../tcp/user.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, oneLine, parseCommandArgs, type CliIO } from './io.js';
import {
  TUN_HELP, TUN_OPTIONS, formatBytes, openStack, parseTunValues, stopSignal,
  type StackOnLink, type TunConfig, type TunDeps,
} from './tun-options.js';
import { DHCP_TIMEOUT_MS, acquireLease, describeLease, type DhcpDeps, type DhcpRun } from './dhcp-option.js';

export const GET_HELP = `Usage: synack get URL (--tun IF | --tap IF [--mac MAC]) [--kernel-address CIDR]...
                  (--address IP... | --tap IF --dhcp) [-o F]

One HTTP/1.1 GET through the synack stack on a Linux TUN or TAP device (node's http client over a
synack socket). URL is http:// with an IP address, http://10.9.0.1:8000/file or
http://[fd09::1]:8000/file, or with --dhcp a host name, http://files.lan:8000/file, looked up by
synack's own resolver through the DNS servers the DHCP server gave (never the host's resolver).
Needs root or CAP_NET_ADMIN.

Options:
  -o, --output F           write the body to F (default: stdout)
${TUN_HELP}
  --timeout S              give up after S seconds without progress (connecting included; default 30)
  --json                   print a JSON summary on stdout (needs -o)
  -h, --help               this help

A progress bar is drawn on stderr when it is a terminal. Exit status: 0 on a 2xx response, 1 on
another status (the body is not written), a failed connection (ECONNREFUSED, ECONNRESET, ETIMEDOUT),
a body cut short, or Ctrl-C; 2 on bad usage.
`;

/** Where a GET goes. */
export interface GetTarget {
  url: string;
  /** The address alone (no brackets), or a host name (lower case). */
  host: string;
  /** The address's family; 0 for a host name (looked up through the stack's DNS servers). */
  family: 0 | 4 | 6;
  port: number;
  /** Path and query, as sent in the request line. */
  path: string;
  /** The Host header (RFC 9112 §3.2): host and port as in the URL. */
  hostHeader: string;
}

/** Checks an http:// URL whose host is an IP address or a name (family 0). Throws UsageError. */
export function parseGetUrl(text: string): GetTarget {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`bad URL '${text}': expected e.g. http://10.9.0.1:8000/file or http://[fd09::1]:8000/file`);
  }
  if (u.protocol !== 'http:') throw new UsageError(`bad URL '${text}': only http:// is supported (no TLS)`);
  if (u.username !== '' || u.password !== '') throw new UsageError(`bad URL '${text}': credentials in URLs are not supported`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const ip = isIP(host);
  const family = ip === 4 || ip === 6 ? ip : 0;
  return {
    url: u.href,
    host,
    family,
    port: u.port === '' ? 80 : Number(u.port),
    path: `${u.pathname}${u.search}`,
    hostHeader: u.host,
  };
}

// ---------------------------------------------------------------------------------------------------
// Progress bar

/** A one-line progress bar redrawn in place with '\r', at most every `intervalMs`. */
export class ProgressBar {
  #last = -Infinity;
  readonly #started: number;
  #received = 0;
  #total: number | undefined;

  constructor(
    private readonly write: (text: string) => void,
    private readonly columns: number,
    private readonly now: () => number = () => performance.now(),
    private readonly intervalMs = 100,
  ) {
    this.#started = now();
  }

  setTotal(total: number | undefined): void {
    this.#total = total;
  }

  update(received: number): void {
    this.#received = received;
    const t = this.now();
    if (t - this.#last < this.intervalMs) return;
    this.#last = t;
    this.write(`\r${this.line()}`);
  }

  /** The final state, and a newline so that what follows starts on its own line. */
  done(): void {
    this.write(`\r${this.line()}\n`);
  }

  line(): string {
    const seconds = Math.max((this.now() - this.#started) / 1000, 1e-3);
    const rate = `${formatBytes(this.#received / seconds)}/s`;
    const total = this.#total;
    const width = Math.max(this.columns - 1, 20);
    if (total === undefined || total === 0) {
      return `${formatBytes(this.#received)}  ${rate}`.slice(0, width).padEnd(width);
    }
    const fraction = Math.min(this.#received / total, 1);
    const text = ` ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(this.#received)} / ${formatBytes(total)}  ${rate}`;
    const barWidth = width - text.length - 2;
    // Too narrow for a bar worth the name: the numbers alone.
    if (barWidth < 10) return text.trimStart().slice(0, width).padEnd(width);
    const filled = Math.round(fraction * barWidth);
    return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]${text}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// The download

/**
 * Why a GET failed: `code` is node's (ECONNREFUSED, ECONNRESET, ETIMEDOUT…), `HTTP`, `EINTR`,
 * `PARTIAL` when the server closed the connection (FIN) before the end of the body (curl's "partial
 * file"), or `EMPTY` when it closed it without a response (curl's "empty reply from server").
 */
export class GetError extends Error {
  override readonly name = 'GetError';
  /** Body bytes received (passed on to the output) before the failure. */
  received = 0;
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
  }
}

export interface GetResult {
  status: number;
  statusMessage: string;
  /** Body bytes received (and written). */
  bytes: number;
  /** Content-Length, when the server sent one. */
  contentLength: number | undefined;
  seconds: number;
  /** The connection's tcp_info when the body was complete. */
  tcpInfo: TcpInfo | undefined;
  /** The server's address (a host name's, as looked up). */
  remoteAddress: string | undefined;
}

export interface GetOptions {
  /** Idle time (no bytes in or out) before the GET fails with ETIMEDOUT; connecting included. */
  timeoutMs: number;
  /** Opened when a 2xx arrives; the body is piped to it (and ended unless `endOutput` is false). */
  openOutput: () => NodeJS.WritableStream;
  endOutput?: boolean;
  signal?: AbortSignal;
  onResponse?: (status: number, contentLength: number | undefined) => void;
  onProgress?: (received: number) => void;
  /** The family a host name is looked up in (0, the default: either). */
  family?: 0 | 4 | 6;
}

function codeOf(e: unknown): string | undefined {
  const c = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

/**
 * GETs `target` with node's http client over a socket from `net` (synack's node:net look-alike).
 * Resolves on a 2xx whose body was received whole and written; rejects with a GetError otherwise.
 */
export function httpGet(net: Pick<Net, 'connect'>, target: GetTarget, opts: GetOptions): Promise<GetResult> {
  const started = performance.now();
  return new Promise<GetResult>((resolvePromise, reject) => {
    let settled = false;
    let sock: Socket | undefined;
    /** The socket's own error (a RST is ECONNRESET), and whether the server's FIN arrived. */
    let sockError: unknown;
    let serverClosed = false;
    let contentLength: number | undefined;
    let inBody = false;
    let received = 0;
    const finish = (err: GetError | null, result?: GetResult): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) {
        err.received = received;
        // An HTTP error status ends like any response (its body read and dropped, then FIN); a GET
        // given up half-way is aborted (RST, RFC 9293 §3.10.5) so the server stops sending at once.
        if (err.code !== 'HTTP') sock?.resetAndDestroy();
        req.destroy();
        reject(err);
      } else resolvePromise(result!);
    };
    const fromError = (e: unknown): GetError => {
      if (e instanceof GetError) return e;
      const code = codeOf(e) ?? 'EIO';
      const message = oneLine(e instanceof Error ? e.message : String(e));
      // node says 'aborted' or 'socket hang up' (ECONNRESET) when the connection ends before the
      // response does, reset or closed; name what happened.
      if (message === 'aborted' || message === 'socket hang up' || code === 'ECONNRESET') return cutShort();
      return new GetError(code, message.includes(code) ? message : `${code}: ${message}`);
    };
    /**
     * The connection ended before the response did: reset (RST), or closed (FIN) by the server —
     * before any response (curl's "empty reply"), or part-way through the body (curl's "partial file").
     */
    const cutShort = (): GetError => {
      const resetCode = codeOf(sockError);
      if (!inBody) {
        if (resetCode !== undefined) return new GetError(resetCode, `${resetCode}: the connection was reset before a response`);
        return new GetError(serverClosed ? 'EMPTY' : 'ECONNRESET', 'the server closed the connection without a response');
      }
      const of = contentLength === undefined ? '' : ` of ${contentLength}`;
      if (resetCode !== undefined) {
        return new GetError(resetCode, `${resetCode}: the connection was reset after ${received}${of} bytes of the body`);
      }
      if (serverClosed) return new GetError('PARTIAL', `the server closed the connection after ${received}${of} bytes of the body`);
      return new GetError('ECONNRESET', `ECONNRESET: the connection ended after ${received}${of} bytes of the body`);
    };
    const onAbort = (): void => {
      finish(new GetError('EINTR', `interrupted after ${formatBytes(received)} of the body`));
    };

    const req = http.request({
      host: target.host,
      port: target.port,
      path: target.path,
      method: 'GET',
      headers: { host: target.hostHeader, 'user-agent': 'synack-get', accept: '*/*' },
      // No agent: one connection, 'Connection: close', as curl does for a single URL.
      createConnection: () => {
        sock = net.connect({ host: target.host, port: target.port, ...(opts.family ? { family: opts.family } : {}) });
        sock.on('error', (e) => (sockError ??= e));
        sock.on('end', () => (serverClosed = true));
        sock.setTimeout(opts.timeoutMs);
        sock.on('timeout', () => {
          const seconds = opts.timeoutMs / 1000;
          const e = new GetError('ETIMEDOUT', sock?.connecting
            ? `connect ETIMEDOUT ${target.hostHeader}: no answer in ${seconds} s`
            : `ETIMEDOUT: nothing received for ${seconds} s (after ${received} bytes of the body)`);
          finish(e);
          sock?.destroy(e);
        });
        return sock;
      },
    });
    req.on('error', (e) => finish(fromError(e)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const statusMessage = res.statusMessage ?? '';
      const cl = res.headers['content-length'];
      contentLength = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined;
      if (status < 200 || status > 299) {
        res.resume();
        finish(new GetError('HTTP', `HTTP ${status} ${statusMessage}`.trim(), status));
        return;
      }
      inBody = true;
      opts.onResponse?.(status, contentLength);
      let out: NodeJS.WritableStream;
      try {
        out = opts.openOutput();
      } catch (e) {
        finish(fromError(e));
        return;
      }
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length;
          opts.onProgress?.(received);
          cb(null, chunk);
        },
      });
      let tcpInfo: TcpInfo | undefined;
      res.once('end', () => (tcpInfo = sock?.tcpInfo()));
      pipeline(res, count, out as Writable, { end: opts.endOutput !== false }).then(() => {
        // A body cut short by a FIN ends the stream without an error when no length was given.
        if (!res.complete) return finish(cutShort());
        finish(null, {
          status, statusMessage, bytes: received, contentLength, seconds: (performance.now() - started) / 1000, tcpInfo,
          remoteAddress: sock?.remoteAddress,
        });
      }, (err: unknown) => finish(fromError(err)));
    });
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------
// The command

export interface GetArgs {
  help: false;
  json: boolean;
  target: GetTarget;
  tun: TunConfig;
  output: string | undefined;
  timeoutMs: number;
}

/** Parses `synack get` arguments; throws UsageError with a one-line reason. */
export function parseGetArgs(args: string[]): GetArgs | { help: true } {
  const parsed = parseCommandArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...TUN_OPTIONS,
      output: { type: 'string', short: 'o' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const v = parsed.values;
  if (v.help) return { help: true };
  if (parsed.positionals.length !== 1) {
    throw new UsageError(parsed.positionals.length === 0 ? 'give the URL to get, e.g. http://10.9.0.1:8000/file' : `one URL at a time (got ${parsed.positionals.length})`);
  }
  const target = parseGetUrl(parsed.positionals[0]!);
  const tun = parseTunValues(v);
  if (target.family === 0) {
    // Names go to the DNS servers DHCP gives; there is no other source of them (never the host's resolver).
    if (!tun.dhcp) throw new UsageError(`bad URL '${target.url}': without --dhcp the host must be an IP address (a name is looked up through the DNS servers DHCP gives)`);
  } else if (!tun.addresses.some((a) => a.family === target.family) && !(tun.dhcp && target.family === 4)) {
    throw new UsageError(`no IPv${target.family} --address to reach ${target.host} from`);
  }
  if (tun.addresses.some((a) => a.address === target.host)) {
    throw new UsageError(`${target.host} is the stack's own --address: the URL must name the other side`);
  }
  let timeoutMs = 30_000;
  if (v.timeout !== undefined) {
    const s = Number(v.timeout);
    if (v.timeout.trim() === '' || !Number.isFinite(s) || s <= 0 || s > 86_400) {
      throw new UsageError(`bad --timeout '${v.timeout}': expected seconds, more than 0 and at most 86400`);
    }
    timeoutMs = s * 1000;
  }
  if (v.json === true && v.output === undefined) throw new UsageError('--json needs -o F (stdout is for the JSON summary)');
  return { help: false, json: v.json === true, target, tun, output: v.output, timeoutMs };
}

export interface GetDeps extends TunDeps, DhcpDeps {
  /** Where the body goes without -o (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** Whether stderr is a terminal (the progress bar; default process.stderr.isTTY). */
  stderrIsTTY?: boolean;
  /** Its width (default process.stderr.columns). */
  stderrColumns?: number;
}

/** `synack get …`; returns the exit status. */
export async function getCommand(args: string[], io: CliIO, deps: GetDeps = {}): Promise<number> {
  let a: GetArgs;
  try {
    const parsed = parseGetArgs(args);
    if (parsed.help) {
      io.stdout(GET_HELP);
      return EXIT_OK;
    }
    a = parsed;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack get: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  for (const note of a.tun.notes) io.stderr(`synack get: note: ${note}\n`);
  const stop = stopSignal(deps.signal);
  const interrupt = new AbortController();
  void stop.stopped.then(() => interrupt.abort());
  let s: StackOnLink;
  try {
    s = await openStack(a.tun, deps, 'get');
  } catch (e) {
    stop.dispose();
    io.stderr(`synack get: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_FAILED;
  }
  for (const note of s.notes) io.stderr(`synack get: note: ${note}\n`);
  stop.onAgain(() => s.hurry());
  let dhcp: DhcpRun | undefined;
  if (a.tun.dhcp) {
    try {
      dhcp = await acquireLease(s.stack, s.link.name, { timeoutMs: deps.dhcpTimeoutMs ?? DHCP_TIMEOUT_MS, hostname: 'synack-get', signal: interrupt.signal });
    } catch (e) {
      await s.shutdown(0);
      stop.dispose();
      io.stderr(`synack get: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
      return EXIT_FAILED;
    }
    io.stderr(`synack get: ${describeLease(dhcp.summary)}\n`);
  }
  const tty = deps.stderrIsTTY ?? process.stderr.isTTY === true;
  const bar = tty ? new ProgressBar(io.stderr, deps.stderrColumns ?? (process.stderr.columns || 80)) : undefined;
  let result: GetResult | undefined;
  let failure: GetError | undefined;
  let opened = false;
  let file: WriteStream | undefined;
  try {
    const output = a.output;
    result = await httpGet(s.stack.net, a.target, {
      timeoutMs: a.timeoutMs,
      signal: interrupt.signal,
      openOutput: () => {
        if (output === undefined) return deps.stdout ?? process.stdout;
        // Only a file that was created can be left incomplete (a bad -o path fails before that).
        file = createWriteStream(output).once('open', () => (opened = true));
        return file;
      },
      // stdout is not ours to close.
      endOutput: output !== undefined,
      onResponse: (_status, length) => bar?.setTotal(length),
      onProgress: (n) => bar?.update(n),
      // Only the families the stack has an address of (with --dhcp alone: IPv4).
      family: familyToLookUp(s.stack.addresses),
    });
    if (bar) {
      bar.update(result.bytes);
      bar.done();
    }
  } catch (e) {
    failure = e instanceof GetError ? e : new GetError(codeOf(e) ?? 'EIO', oneLine(e instanceof Error ? e.message : String(e)));
    if (bar) io.stderr('\n');
    // The file may still be opening (a body cut short at once): whether it exists is known once
    // the stream, destroyed by the failure, has closed.
    if (file !== undefined && !file.closed) {
      const closed = new Promise<void>((r) => file!.once('close', () => r()));
      file.destroy(); // already destroyed by the failure in every case; this makes 'close' certain
      await closed;
    }
  }
  await s.shutdown(1000);
  // No RELEASE (dhcp-option.ts): the client only stops, once the connection has closed.
  dhcp?.handle.close();
  stop.dispose();
  if (failure) io.stderr(`synack get: ${failure.message}${a.output !== undefined && opened ? ` (${a.output} is incomplete)` : ''}\n`);
  if (a.json) {
    io.stdout(`${JSON.stringify({
      ok: failure === undefined,
      url: a.target.url,
      ...(failure ? { error: failure.message, code: failure.code } : {}),
      status: result?.status ?? failure?.status ?? null,
      bytes: result?.bytes ?? failure?.received ?? 0,
      contentLength: result?.contentLength ?? null,
      seconds: result?.seconds ?? null,
      output: a.output,
      [a.tun.kind]: s.link.name,
      addresses: [...(dhcp ? [`${dhcp.summary.address}/${dhcp.summary.prefix}`] : []), ...a.tun.addresses.map((x) => x.cidr)],
      ...(dhcp ? { dhcp: dhcp.summary } : {}),
      remoteAddress: result?.remoteAddress ?? null,
      tcpInfo: result?.tcpInfo ?? null,
      stack: s.stack.counters,
      ...(s.link.stats !== undefined ? { link: s.link.stats } : {}),
    })}\n`);
  }
  return failure ? EXIT_FAILED : EXIT_OK;
}

/** The family to look a host name up in: the one the stack has addresses of, or 0 (either) with both. */
function familyToLookUp(addresses: readonly string[]): 0 | 4 | 6 {
  const v6 = addresses.some((x) => x.includes(':') && !x.toLowerCase().startsWith('fe80:'));
  const v4 = addresses.some((x) => !x.includes(':'));
  return v4 && !v6 ? 4 : v6 && !v4 ? 6 : 0;
}
