/**
 * `synack serve (--tun IF | --tap IF [--mac MAC] [--dhcp]) [--kernel-address CIDR]... --address IP... --port P
 * (--http DIR | --echo | --discard)`: the stack on a TUN or TAP device, serving files over HTTP/1.1
 * (node's own `http` server fed synack sockets), or echoing, or discarding, until SIGINT/SIGTERM
 * (CONTRACT.md, CLI).
 *
 * The file server takes any node:net-like socket (`fileServer.emit('connection', socket)`), so the
 * tests run it over two stacks joined by a MemoryLink; the command only adds the device and the signals.
 */
import { createReadStream, statSync } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import http from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';
import type { Server, Socket } from '../socket/net.js';
import type { Stack } from '../index.node.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, oneLine, parseCommandArgs, type CliIO } from './io.js';
import {
  TUN_HELP, TUN_OPTIONS, formatBytes, formatCounters, hostPort, openStack, parseTunValues, stopSignal,
  type StackOnLink, type TunConfig, type TunDeps,
} from './tun-options.js';
import { DHCP_TIMEOUT_MS, acquireLease, describeLease, type DhcpDeps, type DhcpRun } from './dhcp-option.js';

export const SERVE_HELP = `Usage: synack serve (--tun IF | --tap IF [--mac MAC]) [--kernel-address CIDR]...
                    (--address IP... | --tap IF --dhcp) --port P (--http DIR | --echo | --discard)
                    [--json] [--stats]

Runs the synack stack on a Linux TUN device (IP packets) or TAP device (Ethernet frames: the stack
answers ARP and neighbour discovery) and serves on its own address until SIGINT or SIGTERM,
then closes its connections (FIN, or RST for a response cut short) and exits 0. Needs root or
CAP_NET_ADMIN.

Options:
${TUN_HELP}
  --port P                 the TCP port to listen on
  --http DIR               serve the files under DIR over HTTP/1.1 (GET and HEAD; keep-alive; files
                           streamed; a directory gets a listing; nothing outside DIR, symlinks
                           included, is served)
  --echo                   send back every byte received
  --discard                read and drop every byte received
  --json                   on exit, print a JSON summary on stdout (the 'listening' line goes to stderr)
  --stats                  on exit, print the stack's counters on stderr, netstat -s style (drops by
                           reason, SYN cookies, challenge ACKs, retransmissions…); SIGUSR1 prints
                           them at any time
  -h, --help               this help

Example (as root):
  ip netns add demo
  ip netns exec demo synack serve --tun synack0 --kernel-address 10.9.0.1/24 \\
      --address 10.9.0.2/24 --port 8000 --http ./public &
  ip netns exec demo curl -O http://10.9.0.2:8000/file
  (or --tap synack0 for an Ethernet link: the kernel then ARPs for 10.9.0.2; or, on a LAN with a
  DHCP server, --tap synack0 --dhcp instead of the addresses: the lease is printed on stderr)
`;

// ---------------------------------------------------------------------------------------------------
// The file server

/** Content types by extension; anything else is application/octet-stream. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/vnd.microsoft.icon',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.pcap': 'application/vnd.tcpdump.pcap',
  '.pcapng': 'application/octet-stream',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
  '.mp4': 'video/mp4',
};

/** Where a request path leads: a file or directory to serve, or an error status. */
export type Target =
  | { kind: 'path'; path: string; isDirectory: boolean; size: number; mtime: Date }
  | { kind: 'redirect'; location: string }
  | { kind: 'error'; status: 400 | 403 | 404; reason: string };

/**
 * Resolves a request target (`/a/b%20c.txt?x`) under `root` (a real path). Refuses, before touching
 * the file system, any `..` segment (raw or percent-encoded, e.g. `/..%2fetc`) and NUL bytes; then
 * follows symlinks and refuses what ends up outside `root`, so a link pointing out is no way out.
 * A directory requested without its trailing '/' is redirected to it, so relative links in its
 * listing resolve inside it.
 */
export async function resolveTarget(root: string, url: string): Promise<Target> {
  if (!url.startsWith('/')) return { kind: 'error', status: 400, reason: 'the request target must be a path' };
  const rawPath = url.split(/[?#]/, 1)[0] ?? '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { kind: 'error', status: 400, reason: 'bad percent-encoding' };
  }
  if (decoded.includes('\0')) return { kind: 'error', status: 400, reason: 'NUL in path' };
  if (decoded.split('/').includes('..')) return { kind: 'error', status: 403, reason: "'..' leads outside the served folder" };
  const full = resolve(root, `.${decoded}`);
  if (full !== root && !full.startsWith(root + sep)) return { kind: 'error', status: 403, reason: 'outside the served folder' };
  let real: string;
  try {
    real = await realpath(full);
  } catch {
    return { kind: 'error', status: 404, reason: 'not found' };
  }
  if (real !== root && !real.startsWith(root + sep)) return { kind: 'error', status: 403, reason: 'links outside the served folder' };
  let st;
  try {
    st = await stat(real);
  } catch {
    return { kind: 'error', status: 404, reason: 'not found' };
  }
  if (st.isDirectory()) {
    if (!rawPath.endsWith('/')) return { kind: 'redirect', location: `${rawPath}/${url.slice(rawPath.length)}` };
    return { kind: 'path', path: real, isDirectory: true, size: 0, mtime: st.mtime };
  }
  // Devices, FIFOs and sockets are not files to serve (a FIFO would hang the response forever).
  if (!st.isFile()) return { kind: 'error', status: 404, reason: 'not a regular file' };
  return { kind: 'path', path: real, isDirectory: false, size: st.size, mtime: st.mtime };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A plain HTML listing of a directory, entries sorted, folders with a trailing '/'. */
async function listing(dir: string, urlPath: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const title = escapeHtml(`Index of ${urlPath}`);
  const items = (urlPath === '/' ? names : ['../', ...names]).map((n) => {
    const href = n.endsWith('/') ? `${encodeURIComponent(n.slice(0, -1))}/` : encodeURIComponent(n);
    return `<li><a href="${escapeHtml(href)}">${escapeHtml(n)}</a></li>`;
  });
  return `<!doctype html>\n<meta charset="utf-8">\n<title>${title}</title>\n<h1>${title}</h1>\n<ul>\n${items.join('\n')}\n</ul>\n`;
}

export interface FileServerStats {
  requests: number;
  /** Responses by status code. */
  statuses: Record<number, number>;
}

/**
 * node's http.Server serving the files under `dir` (GET and HEAD). It never listens: feed it
 * connections with `server.emit('connection', socket)`. Files are streamed (`createReadStream` piped
 * to the response, whose back-pressure reaches TCP's window), never read whole; keep-alive is
 * node's (5 s idle). Directories get a listing.
 */
export function createFileServer(dir: string): { server: http.Server; stats: FileServerStats } {
  const root = resolve(dir);
  if (!statSync(root).isDirectory()) throw new Error(`${dir} is not a directory`);
  const stats: FileServerStats = { requests: 0, statuses: {} };
  let realRoot: string | undefined;

  const server = http.createServer((req, res) => {
    stats.requests++;
    res.on('finish', () => void (stats.statuses[res.statusCode] = (stats.statuses[res.statusCode] ?? 0) + 1));
    const fail = (status: number, reason: string, headers: http.OutgoingHttpHeaders = {}): void => {
      const body = `${status} ${http.STATUS_CODES[status] ?? ''}: ${reason}\n`;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(405, `${req.method ?? '?'} is not served here`, { allow: 'GET, HEAD' });
      return;
    }
    void (async () => {
      realRoot ??= await realpath(root);
      const target = await resolveTarget(realRoot, req.url ?? '/');
      if (target.kind === 'error') return fail(target.status, target.reason);
      if (target.kind === 'redirect') return fail(301, `see ${target.location}`, { location: target.location });
      const common = { 'last-modified': target.mtime.toUTCString() };
      if (target.isDirectory) {
        const urlPath = decodeURIComponent((req.url ?? '/').split(/[?#]/, 1)[0] ?? '/');
        const html = await listing(target.path, urlPath);
        res.writeHead(200, { ...common, 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
        res.end(req.method === 'HEAD' ? undefined : html);
        return;
      }
      res.writeHead(200, {
        ...common,
        'content-type': CONTENT_TYPES[extname(target.path).toLowerCase()] ?? 'application/octet-stream',
        'content-length': target.size,
      });
      if (req.method === 'HEAD' || target.size === 0) {
        res.end();
        return;
      }
      // Exactly the bytes announced, even if the file grows meanwhile. pipeline destroys the file
      // stream when the client goes away, and the response (so the connection, with RST: the body is
      // cut short) when the file cannot be read to its end.
      pipeline(createReadStream(target.path, { start: 0, end: target.size - 1 }), res, () => {});
    })().catch((e: unknown) => {
      if (!res.headersSent) fail(500, e instanceof Error ? e.message : String(e));
      else res.destroy();
    });
  });
  // Clients that send nothing for a while are dropped (node's defaults; HTTP/1.1 keep-alive 5 s).
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 60_000;
  return { server, stats };
}

// ---------------------------------------------------------------------------------------------------
// The service on a stack

export type ServeMode = { kind: 'http'; dir: string } | { kind: 'echo' } | { kind: 'discard' };

export interface ServeStats {
  /** Connections accepted. */
  connections: number;
  /** Connections still open. */
  open: number;
  bytesIn: number;
  bytesOut: number;
  /** HTTP requests answered (--http only). */
  requests?: number;
  statuses?: Record<number, number>;
}

export interface Service {
  server: Server;
  stats(): ServeStats;
  /**
   * Stops listening and closes every connection: an orderly close (FIN) when everything written has
   * reached TCP's send buffer, else an abort (RST) — a response cut short must not look complete.
   */
  close(): void;
}

/** Listens on `port` on every address of `stack` and serves each connection as `mode` says. */
export function startService(stack: Stack, port: number, mode: ServeMode): Promise<Service> {
  const files = mode.kind === 'http' ? createFileServer(mode.dir) : undefined;
  const open = new Set<Socket>();
  let connections = 0;
  let closedIn = 0;
  let closedOut = 0;

  const server = stack.net.createServer((sock) => {
    connections++;
    open.add(sock);
    sock.once('close', () => {
      open.delete(sock);
      closedIn += sock.bytesRead;
      closedOut += sock.bytesWritten;
    });
    // A peer's RST or a timeout ends the connection; it is not the server's failure.
    sock.on('error', () => {});
    if (files) files.server.emit('connection', sock);
    else if (mode.kind === 'echo') sock.pipe(sock);
    else {
      sock.resume();
      sock.on('end', () => sock.end());
    }
  });

  const service: Service = {
    server,
    stats() {
      let bytesIn = closedIn;
      let bytesOut = closedOut;
      for (const s of open) {
        bytesIn += s.bytesRead;
        bytesOut += s.bytesWritten;
      }
      const st: ServeStats = { connections, open: open.size, bytesIn, bytesOut };
      if (files) {
        st.requests = files.stats.requests;
        st.statuses = files.stats.statuses;
      }
      return st;
    },
    close() {
      server.close();
      for (const s of open) s.destroy();
    },
  };
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolvePromise(service);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// The command

export interface ServeArgs {
  help: boolean;
  json: boolean;
  /** Print the stack's counters (netstat -s style) on stderr at exit. */
  stats: boolean;
  tun: TunConfig;
  port: number;
  mode: ServeMode;
}

/** Parses `synack serve` arguments; throws UsageError with a one-line reason. */
export function parseServeArgs(args: string[]): ServeArgs | { help: true } {
  const parsed = parseCommandArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...TUN_OPTIONS,
      port: { type: 'string' },
      http: { type: 'string' },
      echo: { type: 'boolean' },
      discard: { type: 'boolean' },
      json: { type: 'boolean' },
      stats: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const v = parsed.values;
  if (v.help) return { help: true };
  const tun = parseTunValues(v);
  if (v.port === undefined) throw new UsageError('--port P is required');
  const port = Number(v.port);
  if (v.port.trim() === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`bad --port '${v.port}': expected an integer from 1 to 65535`);
  }
  const modes = [v.http !== undefined && '--http', v.echo === true && '--echo', v.discard === true && '--discard'].filter(Boolean);
  if (modes.length !== 1) {
    throw new UsageError(modes.length === 0
      ? 'say what to serve: --http DIR, --echo or --discard'
      : `${modes.join(' and ')} exclude each other: choose one`);
  }
  let mode: ServeMode;
  if (v.http !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(v.http).isDirectory();
    } catch {
      throw new UsageError(`--http ${v.http}: no such folder`);
    }
    if (!isDir) throw new UsageError(`--http ${v.http}: not a folder`);
    mode = { kind: 'http', dir: resolve(v.http) };
  } else mode = v.echo === true ? { kind: 'echo' } : { kind: 'discard' };
  return { help: false, json: v.json === true, stats: v.stats === true, tun, port, mode };
}

export interface ServeDeps extends TunDeps, DhcpDeps {
  /** Called once the server listens (tests start their clients here). */
  onListening?: (stack: Stack) => void;
}

/** `synack serve …`; returns the exit status once stopped. */
export async function serveCommand(args: string[], io: CliIO, deps: ServeDeps = {}): Promise<number> {
  let a: ServeArgs;
  try {
    const parsed = parseServeArgs(args);
    if (parsed.help) {
      io.stdout(SERVE_HELP);
      return EXIT_OK;
    }
    a = parsed as ServeArgs;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack serve: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  for (const note of a.tun.notes) io.stderr(`synack serve: note: ${note}\n`);
  // Handlers first: a Ctrl-C while the device is being set up must not kill the process half-way.
  const stop = stopSignal(deps.signal);
  const started = Date.now();
  let s: StackOnLink;
  try {
    s = await openStack(a.tun, deps, 'serve');
  } catch (e) {
    stop.dispose();
    io.stderr(`synack serve: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_FAILED;
  }
  for (const note of s.notes) io.stderr(`synack serve: note: ${note}\n`);
  let dhcp: DhcpRun | undefined;
  if (a.tun.dhcp) {
    const interrupted = new AbortController();
    void stop.stopped.then(() => interrupted.abort());
    try {
      dhcp = await acquireLease(s.stack, s.link.name, { timeoutMs: deps.dhcpTimeoutMs ?? DHCP_TIMEOUT_MS, hostname: 'synack-serve', signal: interrupted.signal });
    } catch (e) {
      stop.dispose();
      await s.shutdown(0);
      io.stderr(`synack serve: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
      return EXIT_FAILED;
    }
    io.stderr(`synack serve: ${describeLease(dhcp.summary)}\n`);
  }
  // The leased address first, then the ones given.
  const addresses = [...(dhcp ? [{ address: dhcp.summary.address, cidr: `${dhcp.summary.address}/${dhcp.summary.prefix}` }] : []), ...a.tun.addresses];
  let service: Service;
  try {
    service = await startService(s.stack, a.port, a.mode);
  } catch (e) {
    dhcp?.handle.close();
    stop.dispose();
    await s.shutdown(0);
    io.stderr(`synack serve: cannot listen on port ${a.port}: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_FAILED;
  }
  const where = addresses.map((x) => hostPort(x.address, a.port)).join(', ');
  const what = a.mode.kind === 'http' ? `http (files under ${a.mode.dir})` : a.mode.kind;
  // --json keeps stdout for the summary alone (CONTRACT.md, CLI).
  const say = a.json ? io.stderr : io.stdout;
  say(`synack serve: ${what} on ${where} via ${s.link.name}; Ctrl-C stops\n`);
  deps.onListening?.(s.stack);

  // `kill -USR1` shows the counters while serving, as `netstat -s` would.
  const showCounters = (): void => io.stderr(`synack serve: counters\n${formatCounters(s.stack.counters)}`);
  const onUsr1 = deps.signal === undefined ? showCounters : undefined;
  if (onUsr1) process.on('SIGUSR1', onUsr1);
  const why = await stop.stopped;
  if (onUsr1) process.off('SIGUSR1', onUsr1);
  stop.onAgain(() => s.hurry());
  service.close();
  // No RELEASE (dhcp-option.ts): the client only stops, once the connections have closed.
  await s.shutdown();
  dhcp?.handle.close();
  stop.dispose();
  const st = service.stats();
  if (a.json) {
    io.stdout(`${JSON.stringify({
      ok: true,
      stoppedBy: why,
      mode: a.mode.kind,
      ...(a.mode.kind === 'http' ? { dir: a.mode.dir } : {}),
      [a.tun.kind]: s.link.name,
      addresses: addresses.map((x) => x.cidr),
      ...(dhcp ? { dhcp: dhcp.summary } : {}),
      kernelAddresses: a.tun.kernelAddresses.map((x) => x.cidr),
      port: a.port,
      durationS: (Date.now() - started) / 1000,
      ...st,
      stack: s.stack.counters,
      ...(s.link.stats !== undefined ? { link: s.link.stats } : {}),
    })}\n`);
  } else {
    const reqs = st.requests !== undefined ? `, ${st.requests} request${st.requests === 1 ? '' : 's'}` : '';
    io.stderr(`synack serve: stopped (${why}): ${st.connections} connection${st.connections === 1 ? '' : 's'}${reqs}, ` +
      `${formatBytes(st.bytesIn)} in, ${formatBytes(st.bytesOut)} out\n`);
  }
  if (a.stats) showCounters();
  return EXIT_OK;
}
