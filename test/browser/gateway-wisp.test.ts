/**
 * Issue 15, "a page (library use with Wisp)": a page gives its VM real internet through a Wisp server
 * with the browser's own WebSocket, and the gateway's core bundles for the browser without polyfills.
 *
 * 1. esbuild (`bundle`, `platform: 'browser'`, `format: 'esm'`) bundles
 *    test/browser/fixtures/gateway-wisp.js, which imports `Gateway`, `WispUpstream`, `EthernetSwitch`,
 *    `Stack` and `runDhcpClient` from the package by its own name, from the build output (run
 *    `npm run build` first). Checked in the metafile: only dist/src/ went in, the gateway's core is in,
 *    its Node-only parts (direct upstream, ws WebSocket, host listeners) are not, and no import is
 *    left to a node: module or external.
 * 2. On this machine's loopback: a real Wisp server (`@mercuryworkshop/wisp-js`'s, in a child
 *    process, loopback and private destinations allowed), an HTTP server with 4 MiB of random bytes,
 *    a UDP echo server. The Wisp server's resolver (its `dns_method` option) knows two names,
 *    files.synack.test and echo.synack.test (RFC 6761 §6.2: .test is for tests), both 127.0.0.1,
 *    and nothing else: the honest fake-IP path — the page never learns an address for them, the
 *    guest gets fake IPs (198.18.0.0/15) from the gateway's DNS, and the gateway's CONNECT goes out by
 *    name for the Wisp server to resolve. ('localhost' would not do: the fake-IP DNS answers it with
 *    127.0.0.1 itself, RFC 6761 §6.3, and the connection would go by address.)
 * 3. Headless Chromium (Debian's, driven by playwright-core) loads the bundle from a page on
 *    127.0.0.1; in the page an EthernetSwitch joins a Gateway (upstream: WispUpstream over the
 *    browser's WebSocket) and a guest synack Stack with no address. The guest takes a DHCP lease
 *    (address, router, DNS server), resolves files.synack.test, fetches the file with HTTP/1.1
 *    written by hand on a guest TCP connection and hashes it with crypto.subtle; the test compares
 *    the SHA-256 with its own; a second request rides the same WebSocket (Wisp multiplexes). Failures
 *    are fast and clear: a closed port and a name the Wisp server cannot resolve are each a refused
 *    connect for the guest within a second. Then 500 datagrams of 4–1203 bytes go to
 *    echo.synack.test's UDP echo through the gateway, every byte checked. The Wisp server reports each
 *    WebSocket upgrade it took: one, from Chromium, from the page's origin.
 *
 * Needs esbuild, playwright-core, /usr/bin/chromium and @mercuryworkshop/wisp-js; without them the
 * tests say `skipped: needs …`, and under CI=true that is a failure instead. Loopback only.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../support/repo.js';
import {
  PAGE_TIMEOUT_MS, assertBrowserBundle, bundleForBrowser, bundlePageServer, closeBrowser, closeServer, findChromium, launch,
  listen, needs, openBundlePage, withTimeout, type Browser, type Bundle,
} from './support.js';

/** Every wait in this file is bounded; a hang fails the test instead of holding CI. */
const RUN_TIMEOUT_MS = 120_000;
const FILE_BYTES = 4 * 1024 * 1024;
const DATAGRAMS = 500;
const HTTP_NAME = 'files.synack.test';
const UDP_NAME = 'echo.synack.test';
const UNKNOWN_NAME = 'nowhere.synack.test';
const HELLO = Buffer.from('hello, guest: this came through Wisp\n');

const ROOT = repoRoot();
const ENTRY = join(ROOT, 'test', 'browser', 'fixtures', 'gateway-wisp.js');

/** The page bundle (built once); null when esbuild is not installed. */
const bundle = (): Promise<Bundle | null> => bundleForBrowser(ENTRY, join(ROOT, 'dist', 'browser-gateway-wisp-bundle.js'));

// --- The Node side: a Wisp server, an HTTP server, a UDP echo server, all on 127.0.0.1.

interface WispServer {
  url: string;
  child: ChildProcess;
  /** One line per WebSocket upgrade the server took: its User-Agent, Origin and subprotocol. */
  upgrades: Array<{ userAgent: string; origin: string; protocol: string }>;
  /** Names the server's resolver was asked for. */
  lookups: string[];
}

/**
 * wisp-js's server in a child process; `names` are all its resolver knows (options.dns_method as a
 * function), `options` the rest of its `server.options` (README "Changing Server Settings").
 */
async function startWispServer(names: Record<string, string>, options: Record<string, unknown>): Promise<WispServer | null> {
  if (!existsSync(join(ROOT, 'node_modules', '@mercuryworkshop', 'wisp-js', 'package.json'))) return null;
  const code = `
    import http from 'node:http';
    import { server as wisp, logging } from '@mercuryworkshop/wisp-js/server';
    logging.set_level(logging.NONE);
    const [names, options] = JSON.parse(process.argv[1]);
    Object.assign(wisp.options, options);
    wisp.options.dns_method = async (hostname) => {
      process.stdout.write(JSON.stringify({ lookup: hostname }) + '\\n');
      if (Object.hasOwn(names, hostname)) return names[hostname];
      throw Object.assign(new Error('getaddrinfo ENOTFOUND ' + hostname), { code: 'ENOTFOUND' });
    };
    const s = http.createServer((req, res) => res.end('wisp'));
    s.on('upgrade', (req, sock, head) => {
      process.stdout.write(JSON.stringify({ upgrade: { userAgent: req.headers['user-agent'] ?? '', origin: req.headers.origin ?? '', protocol: req.headers['sec-websocket-protocol'] ?? '' } }) + '\\n');
      wisp.routeRequest(req, sock, head);
    });
    s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, JSON.stringify([names, options])], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server: WispServer = { url: '', child, upgrades: [], lookups: [] };
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wisp-js server did not start within 10 s: ${stderr}`)), 10_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = JSON.parse(line) as { port?: number; upgrade?: WispServer['upgrades'][number]; lookup?: string };
        if (m.port !== undefined) {
          clearTimeout(timer);
          resolve(m.port);
        }
        if (m.upgrade !== undefined) server.upgrades.push(m.upgrade);
        if (m.lookup !== undefined) server.lookups.push(m.lookup);
      }
    });
    child.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`wisp-js server exited (${c}): ${stderr}`));
    });
  });
  server.url = `ws://127.0.0.1:${port}/`;
  return server;
}

function kill(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return withTimeout(
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
    5_000,
    'wisp-js server exit',
  ).catch(() => {});
}

// ------------------------------------------------------------------------------------------------

test('esbuild bundles the gateway with its Wisp upstream for the browser: only the core, no Node import, no polyfill', async (t) => {
  assert.ok(existsSync(join(ROOT, 'dist', 'src', 'index.js')), 'dist/src/index.js is missing: run `npm run build` first');
  const b = await bundle();
  if (b === null) return needs(t, 'esbuild', 'npm install');
  const files = assertBrowserBundle(b, ENTRY);
  for (const f of files) assert.ok(!f.startsWith('dist/src/cli/'), `the CLI is in the browser bundle: ${f}`);
  // The Node-only parts of the gateway stay apart (issue 15: "the direct upstream is Node-only").
  for (const f of [
    'dist/src/index.node.js', 'dist/src/socket/net.js', 'dist/src/gateway/upstream-direct.js',
    'dist/src/gateway/websocket-node.js', 'dist/src/gateway/hostfwd-node.js',
  ]) {
    assert.ok(!files.includes(f), `a Node-only module is in the browser bundle: ${f}`);
  }
  // The gateway's core is in.
  for (const f of [
    'dist/src/gateway/gateway.js', 'dist/src/gateway/wisp.js', 'dist/src/gateway/fake-ip.js', 'dist/src/gateway/relay.js',
    'dist/src/gateway/udp-flows.js', 'dist/src/gateway/policy.js', 'dist/src/gateway/lan.js', 'dist/src/link/switch.js',
    'dist/src/services/dhcp.js',
  ]) {
    assert.ok(files.includes(f), `${f} missing from the bundle`);
  }
  t.diagnostic(`${files.length} modules, ${(b.js.length / 1024).toFixed(0)} KiB of JavaScript`);
});

test('a page gives its guest the network through a real Wisp server with the browser\'s WebSocket: DHCP, DNS by fake IP, 4 MiB over HTTP, 500 UDP datagrams', { timeout: RUN_TIMEOUT_MS + 60_000 }, async (t: TestContext) => {
  const chromium = await findChromium(t);
  if (chromium === null) return;
  const b = await bundle();
  if (b === null) return needs(t, 'esbuild', 'npm install');

  const file = randomBytes(FILE_BYTES);
  const fileSha256 = createHash('sha256').update(file).digest('hex');
  let httpRequests = 0;
  const files: Server = createServer((req, res) => {
    httpRequests++;
    if (req.method === 'GET' && req.url === '/blob.bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.length) }).end(file);
    } else if (req.method === 'GET' && req.url === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(HELLO.length) }).end(HELLO);
    } else {
      res.writeHead(404).end();
    }
  });
  const echo = dgram.createSocket('udp4');
  echo.on('message', (msg, rinfo) => echo.send(msg, rinfo.port, rinfo.address));

  const pages = bundlePageServer('synack gateway through Wisp', b.js);

  let wisp: WispServer | null = null;
  let browser: Browser | undefined;
  try {
    const httpPort = await listen(files);
    const udpPort = await withTimeout(
      new Promise<number>((resolve, reject) => {
        echo.once('error', reject);
        echo.bind(0, '127.0.0.1', () => resolve(echo.address().port));
      }),
      PAGE_TIMEOUT_MS,
      'udp bind',
    );
    const pagePort = await listen(pages);
    // A port nobody listens on: bound, then closed (loopback; nothing else takes it in this moment).
    const closedPort = await (async () => {
      const s = createServer();
      const p = await listen(s);
      await closeServer(s);
      return p;
    })();
    wisp = await startWispServer(
      { [HTTP_NAME]: '127.0.0.1', [UDP_NAME]: '127.0.0.1' },
      { allow_loopback_ips: true, allow_private_ips: true },
    );
    if (wisp === null) return needs(t, '@mercuryworkshop/wisp-js', 'npm install');

    browser = await launch(chromium);
    const origin = `http://127.0.0.1:${pagePort}`;
    const { page, problems } = await openBundlePage(browser, `${origin}/`, 'synackGatewayTest');

    const opts = { wispUrl: wisp.url, httpName: HTTP_NAME, httpPort, path: '/blob.bin', smallPath: '/hello', closedPort, unknownName: UNKNOWN_NAME, udpName: UDP_NAME, udpPort, datagrams: DATAGRAMS };
    const started = Date.now();
    const r = await withTimeout(page.evaluate(`synackGatewayTest.run(${JSON.stringify(opts)})`), RUN_TIMEOUT_MS, 'the page\'s run').catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}${problems.length > 0 ? `\npage: ${problems.join('\n')}` : ''}`);
    }) as {
      lease: { address: string; prefix: number; router: string | null; dnsServers: string[] };
      guestDnsServers: string[];
      names: { http: string; httpAgain: string; udp: string };
      http: { statusLine: string; contentLength: number; bodyBytes: number; sha256: string };
      small: { statusLine: string; bodyBytes: number; sha256: string };
      refused: { code: string; message?: string; ms: number };
      unresolvable: { code: string; message?: string; ms: number; address: string };
      udp: { sent: number; echoed: number; corrupt: number; stray: number; retransmitted: number };
      timings: { dhcpMs: number; lookupMs: number; connectMs: number; downloadMs: number; secondConnectMs: number; udpMs: number };
      wispVersion: number | null;
      events: Array<Record<string, unknown> & { event: string }>;
      counters: Record<string, number>;
      globals: Record<string, string>;
      nativeWebSocket: boolean;
      userAgent: string;
    };
    const wallMs = Date.now() - started;
    const ms = (x: number): string => `${x.toFixed(0)} ms`;
    const mibps = (FILE_BYTES / (1024 * 1024)) / (r.timings.downloadMs / 1000);
    t.diagnostic(`${r.userAgent}; Wisp v${r.wispVersion}`);
    t.diagnostic(
      `DHCP ${ms(r.timings.dhcpMs)}, 3 lookups ${ms(r.timings.lookupMs)}, connect ${ms(r.timings.connectMs)}, ` +
        `${FILE_BYTES / (1024 * 1024)} MiB ${ms(r.timings.downloadMs)} (${mibps.toFixed(1)} MiB/s), second connect ${ms(r.timings.secondConnectMs)}, ${DATAGRAMS} datagrams ${ms(r.timings.udpMs)}` +
        ` (${r.udp.retransmitted} sent again); page run ${ms(wallMs)}`,
    );

    // In Chromium, with the browser's own WebSocket and nothing of Node.
    assert.match(r.userAgent, /Chrome\//, 'not running in Chromium');
    assert.equal(r.nativeWebSocket, true, 'globalThis.WebSocket is not the browser\'s own');
    assert.deepEqual(r.globals, { process: 'undefined', Buffer: 'undefined', require: 'undefined' });
    // The Wisp server took one WebSocket, from this page (Chromium, its origin), for every stream.
    assert.equal(wisp.upgrades.length, 1, `Wisp upgrades: ${JSON.stringify(wisp.upgrades)}`);
    assert.match(wisp.upgrades[0]!.userAgent, /Chrome\//);
    assert.equal(wisp.upgrades[0]!.origin, origin);
    assert.equal(r.wispVersion, 2, 'wisp-js 0.5 speaks v2');

    // DHCP: QEMU's user-mode layout.
    assert.equal(r.lease.address, '10.0.2.15');
    assert.equal(r.lease.router, '10.0.2.2');
    assert.deepEqual(r.lease.dnsServers, ['10.0.2.3']);
    assert.deepEqual(r.guestDnsServers, ['10.0.2.3']);

    // DNS: fake IPs from 198.18.0.0/15, one per name, stable; the Wisp server resolved the names.
    for (const a of [r.names.http, r.names.udp]) assert.match(a, /^198\.1[89]\.\d+\.\d+$/, `not a fake IP: ${a}`);
    assert.equal(r.names.httpAgain, r.names.http, 'the same name, the same fake IP');
    assert.notEqual(r.names.udp, r.names.http, 'two names, two fake IPs');
    assert.ok(wisp.lookups.includes(HTTP_NAME) && wisp.lookups.includes(UDP_NAME), `Wisp server lookups: ${wisp.lookups.join(', ')}`);

    // HTTP: byte-identical.
    assert.equal(r.http.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(r.http.contentLength, FILE_BYTES);
    assert.equal(r.http.bodyBytes, FILE_BYTES);
    assert.equal(r.http.sha256, fileSha256, 'SHA-256 of the body the guest received');
    assert.equal(r.small.statusLine, 'HTTP/1.1 200 OK');
    assert.equal(r.small.sha256, createHash('sha256').update(HELLO).digest('hex'), 'the second response');
    assert.equal(httpRequests, 2);
    // The gateway's events (CONTRACT.md's `--json` lines): opened by name, closed cleanly.
    const open = r.events.find((e) => e.event === 'open' && e['protocol'] === 'tcp');
    assert.ok(open, `no TCP open event: ${JSON.stringify(r.events)}`);
    assert.equal(open['target'], `${HTTP_NAME}:${httpPort}`, 'the CONNECT goes out by name');
    assert.equal(open['destination'], `${r.names.http}:${httpPort}`);
    assert.equal(open['upstream'], 'wisp');
    const closes = r.events.filter((e) => e.event === 'close' && e['protocol'] === 'tcp');
    assert.equal(closes.length, 2, `TCP close events: ${JSON.stringify(r.events)}`);
    for (const c of closes) assert.equal(c['error'], null);
    // bytesIn: into the guest (headers and body); bytesOut: the request.
    assert.ok((closes[0]!['bytesIn'] as number) > FILE_BYTES, `bytesIn ${String(closes[0]!['bytesIn'])}`);

    // Failures are fast and clear (issue 15: "Connection refused" in under a second).
    t.diagnostic(`closed port: ${r.refused.code} after ${ms(r.refused.ms)}; unresolvable name: ${r.unresolvable.code} after ${ms(r.unresolvable.ms)}`);
    assert.equal(r.refused.code, 'ECONNREFUSED', `closed port: ${JSON.stringify(r.refused)}`);
    assert.ok(r.refused.ms < 1_000, `refused after ${ms(r.refused.ms)}`);
    assert.match(r.unresolvable.address, /^198\.1[89]\./, 'an unknown name still gets a fake IP: only the Wisp server can tell');
    assert.ok(['ECONNREFUSED', 'EHOSTUNREACH'].includes(r.unresolvable.code), `unresolvable name: ${JSON.stringify(r.unresolvable)}`);
    assert.ok(r.unresolvable.ms < 2_000, `unresolvable name failed after ${ms(r.unresolvable.ms)}`);
    assert.ok(wisp.lookups.includes(UNKNOWN_NAME), 'the Wisp server was asked for the unknown name');
    const refusedEvents = r.events.filter((e) => e.event === 'refused');
    assert.equal(refusedEvents.length, 2, `refused events: ${JSON.stringify(refusedEvents)}`);
    t.diagnostic(`refused: ${refusedEvents.map((e) => `${String(e['reason'])} → ${String(e['answer'])}`).join('; ')}`);

    // UDP: every datagram back, every byte right.
    assert.equal(r.udp.corrupt, 0, 'corrupt echoes');
    assert.equal(r.udp.stray, 0, 'datagrams from elsewhere');
    assert.equal(r.udp.echoed, DATAGRAMS, `${r.udp.echoed} of ${DATAGRAMS} datagrams came back`);
    const udpOpen = r.events.find((e) => e.event === 'open' && e['protocol'] === 'udp');
    assert.ok(udpOpen, `no UDP open event: ${JSON.stringify(r.events)}`);
    assert.equal(udpOpen['target'], `${UDP_NAME}:${udpPort}`, 'the UDP flow goes out by name');

    assert.deepEqual(problems, []);
  } finally {
    await closeBrowser(browser);
    await kill(wisp?.child);
    await closeServer(pages);
    await closeServer(files);
    await withTimeout(new Promise<void>((resolve) => echo.close(() => resolve())), 5_000, 'udp close').catch(() => {});
  }
});
