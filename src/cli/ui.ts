/**
 * `synack ui [--port P] [--host H] [--json] [--open]`: serves the interactive page (dist/web, built
 * from web/ by `npm run build`) on 127.0.0.1 until SIGINT or SIGTERM (CONTRACT.md, CLI).
 *
 * The server is static and knows nothing of TCP: the two stacks run in the page, in the browser. It
 * serves exactly the files that are in dist/web when it starts (by name, no path is ever joined from
 * the request, so nothing outside can be reached), with their content types, and a Content-Security-
 * Policy that lets the page load only from this origin and connect nowhere.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, numberOption, oneLine, parseCommandArgs, type CliIO } from './io.js';

export const UI_HELP = `Usage: synack ui [--port P] [--host H] [--json] [--open]

Serves the interactive page on http://127.0.0.1:P/ until SIGINT or SIGTERM. The page runs two synack
stacks in the browser, in virtual time: pick a scenario, set loss, delay and seed, then Play, Step or
Reset, and watch the ladder diagram grow beside RFC 9293's state diagram (Figure 5) and each side's
TCB variables. The server only hands out the page's static files; the page makes no request.

Options:
  --port P     TCP port to listen on, 0..65535 (default 0: any free port; the URL is printed)
  --host H     address to listen on (default 127.0.0.1)
  --json       print {"url": "…"} on stdout once listening, nothing else
  --open       also open the page in the default browser (xdg-open / open / start)
  -h, --help   this help

The page is built by 'npm run build' (or 'npm install' in a clone) into dist/web.
`;

/** The content types of what the build writes into dist/web. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/vnd.microsoft.icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Only this origin, and no connection anywhere: the page needs none (the stacks talk over an
 * in-memory link). Inline styles are allowed for the <style> inside the ladder SVG.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** dist/web beside this module's dist/src/cli/ (the package layout, and the build's). */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

export interface UiArgs {
  help: boolean;
  port: number;
  host: string;
  json: boolean;
  open: boolean;
}

export function parseUiArgs(args: string[]): UiArgs {
  const { values: v } = parseCommandArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      json: { type: 'boolean' },
      open: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const port = numberOption('port', v.port, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'an integer from 0 to 65535') ?? 0;
  const host = v.host ?? '127.0.0.1';
  if (host.trim() === '') throw new UsageError('bad --host: empty');
  return { help: v.help === true, port, host, json: v.json === true, open: v.open === true };
}

/** The files to serve: the regular files directly in `dir`, by name. */
function servedFiles(dir: string): Set<string> {
  const names = new Set<string>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && CONTENT_TYPES[extname(e.name).toLowerCase()] !== undefined) names.add(e.name);
  }
  return names;
}

/** A static server for the files of `dir` (the set is fixed now; their bytes are read per request). */
export function createUiServer(dir: string): http.Server {
  const files = servedFiles(dir);
  return http.createServer((req, res) => {
    const fail = (status: number, reason: string, headers: http.OutgoingHttpHeaders = {}): void => {
      const body = `${status} ${http.STATUS_CODES[status] ?? ''}: ${reason}\n`;
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'x-content-type-options': 'nosniff',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method ?? '?'} is not served here`, { allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/';
    // Only a name from the set: '/x' → 'x', '/' → 'index.html'. Anything with another '/' or a
    // '..' or an escape simply is not a name in the set.
    const name = path === '/' ? 'index.html' : path.slice(1);
    if (!path.startsWith('/') || !files.has(name)) return fail(404, 'not found');
    let body: Buffer;
    try {
      body = readFileSync(join(dir, name));
    } catch {
      return fail(404, 'not found');
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(name).toLowerCase()]!,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy': CSP,
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
}

/** Best effort: the desktop's "open this URL" command, detached. */
function openBrowser(url: string, io: CliIO): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => io.stderr(`synack ui: could not run ${cmd}; open ${url} yourself\n`));
    child.unref();
  } catch {
    io.stderr(`synack ui: could not run ${cmd}; open ${url} yourself\n`);
  }
}

export interface UiDeps {
  /** Where the built page is (default: dist/web beside this module). */
  webDir?: string;
  /** Stop when aborted (tests); SIGINT/SIGTERM otherwise. */
  signal?: AbortSignal;
  /** Called with the URL once listening (tests). */
  onListening?: (url: string) => void;
}

/** `synack ui …`; resolves with the exit status once stopped. */
export async function uiCommand(args: string[], io: CliIO, deps: UiDeps = {}): Promise<number> {
  let a: UiArgs;
  try {
    a = parseUiArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack ui: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (a.help) {
    io.stdout(UI_HELP);
    return EXIT_OK;
  }
  const dir = deps.webDir ?? defaultWebDir();
  const missing = ['index.html', 'app.js'].find((f) => !existsSync(join(dir, f)) || !statSync(join(dir, f)).isFile());
  if (missing !== undefined) {
    io.stderr(`synack ui: the page is not built (${join(dir, missing)} is missing): run npm run build\n`);
    return EXIT_FAILED;
  }
  const server = createUiServer(dir);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: a.port, host: a.host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = `${a.host} port ${a.port}`;
    const why =
      err.code === 'EADDRINUSE' ? `${where} is already in use (try another --port, or 0 for any free one)`
      : err.code === 'EACCES' ? `no permission to listen on ${where}`
      : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' ? `cannot listen on ${a.host}: no such local address`
      : `cannot listen on ${where}: ${oneLine(err.message)}`;
    io.stderr(`synack ui: ${why}\n`);
    return EXIT_FAILED;
  }
  const { port } = server.address() as AddressInfo;
  const url = urlOf(a.host, port);
  if (a.json) io.stdout(`${JSON.stringify({ url })}\n`);
  else io.stdout(`synack ui: serving the page on ${url} (Ctrl-C to stop)\n`);
  deps.onListening?.(url);
  if (a.open) openBrowser(url, io);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      deps.signal?.removeEventListener('abort', stop);
      resolve();
    };
    if (deps.signal !== undefined) {
      if (deps.signal.aborted) return stop();
      deps.signal.addEventListener('abort', stop);
    } else {
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    }
  });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return EXIT_OK;
}
