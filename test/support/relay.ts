/**
 * The real peers of the gateway's relay tests (issue 15, test/cli/gateway-relay-*.test.ts): a lab
 * of two network namespaces of the test's own — `gw`, where `synack gateway` runs with nothing but
 * loopback (plus the TEST-NET addresses 192.0.2.10, 192.0.2.11 and 2001:db8::10 on its lo) and a
 * resolv.conf naming a dnsmasq of the test's on 127.0.0.1 there; and `guest`, where the TAP
 * device's kernel side lives, at 10.0.2.15/24 with its default route through 10.0.2.2 and a
 * resolv.conf naming the gateway's DNS 10.0.2.3 — and the servers the tests start inside them:
 *  - an HTTP server (python3's http.server module: its SimpleHTTPRequestHandler serving a folder,
 *    on a dual-stack socket with a listen backlog of 1,024 for the 1,000-connection test), whose
 *    PUT is an upload sink that reports the sha256 and length of what it received, and whose
 *    /slow is an endless trickle (a transfer that is surely in progress when the server is killed);
 *  - a UDP echo server, and a guest-side UDP client that checks every byte of every echo;
 *  - a client of 1,000 concurrent connections, each held open until all are, then fetching a file;
 *  - `@mercuryworkshop/wisp-js`'s server (from node_modules) on 127.0.0.1, loopback and private
 *    destinations allowed.
 * Nothing here reaches the machine's network or resolver: every server listens inside a namespace
 * the test made, and `RelayLab.destroy` kills what runs in both and deletes them, failure included.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GatewayProcess, type GatewayEvent } from './gateway-process.js';
import { startDnsmasq } from './lan.js';
import { Netns, have } from './netns.js';
import type { NsProcess } from './netns.js';
import { repoRoot } from './repo.js';

export const WISP_SERVER = join(repoRoot(), 'node_modules', '@mercuryworkshop', 'wisp-js', 'src', 'entrypoints', 'server.mjs');

/** The tools the relay tests drive (beyond root, ip and python3: tunTestsMissing). */
export function relayToolsMissing(): string[] {
  const missing: string[] = [];
  if (!have('curl', ['--version'])) missing.push('curl');
  if (!have('dig', ['-v'])) missing.push('dig');
  if (!have('dnsmasq', ['--version'])) missing.push('dnsmasq');
  return missing;
}

/** A device name of this run's own: two runs (or the two relay files) at once must not share a TAP. */
export const tapName = (): string => `sgr${randomBytes(4).toString('hex')}`;

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** sha256 and length of a file, streamed. */
export async function fileDigest(path: string): Promise<{ sha256: string; length: number }> {
  const h = createHash('sha256');
  let length = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), length };
}

export const mbytes = (bytesPerSecond: number): string => `${(bytesPerSecond / 1e6).toFixed(bytesPerSecond < 1e7 ? 2 : 1)} MB/s`;

/** The python3 that `python3` runs here (pyenv shims and the like resolved once: faster starts). */
let pythonPath: string | undefined;
export function python3(): string {
  if (pythonPath === undefined) {
    const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
    pythonPath = r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : 'python3';
  }
  return pythonPath;
}

/**
 * The HTTP server: `http.server`'s own handler for GET (files of argv[1]); PUT reads the body
 * (Content-Length bytes, or to EOF) into sha256 and answers, and prints, `{"sha256","length",
 * "complete"}`; GET /slow sends 64 KiB every 5 ms for ever. argv[2] is the port (0: any; the
 * bound one printed as `LISTENING N`); argv[3] the HTTP version of the answers, 1.0 (the server
 * closes after each, as `python3 -m http.server` does) or 1.1 (it keeps the connection open). A dual-stack socket (IPv4-mapped too), backlog 1,024,
 * a thread per connection; no reverse lookup at bind (HTTPServer.server_bind's getfqdn), no log.
 */
const HTTP_SERVER = String.raw`
import hashlib, http.server, json, socket, socketserver, sys, time
directory, port, version = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/' + version
    def __init__(self, *a, **k):
        super().__init__(*a, directory=directory, **k)
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path.startswith('/slow'):
            self.send_response(200)
            self.send_header('Content-Length', str(1 << 40))
            self.end_headers()
            chunk = b'z' * 65536
            try:
                while True:
                    self.wfile.write(chunk)
                    time.sleep(0.005)
            except OSError:
                return
        return super().do_GET()
    def do_PUT(self):
        n = int(self.headers.get('Content-Length', '-1'))
        h = hashlib.sha256()
        got = 0
        while n < 0 or got < n:
            try:
                b = self.rfile.read1(1 << 20 if n < 0 else min(1 << 20, n - got))
            except OSError:
                b = b''
            if not b:
                break
            h.update(b)
            got += len(b)
        result = {'sha256': h.hexdigest(), 'length': got, 'complete': n < 0 or got == n}
        print('UPLOAD ' + json.dumps(result), flush=True)
        if not result['complete']:
            self.close_connection = True
            return
        body = json.dumps(result).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_PUT

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    request_queue_size = 1024
    daemon_threads = True
    allow_reuse_address = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name = 'localhost'
        self.server_port = self.server_address[1]

srv = Server(('::', port), Handler)
print('LISTENING', srv.server_address[1], flush=True)
srv.serve_forever()
`;

/** A UDP echo server on a dual-stack socket; argv[1] the port (0: any), printed as `LISTENING N`. */
const UDP_ECHO = String.raw`
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.bind(('::', int(sys.argv[1])))
print('LISTENING', s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
`;

/**
 * The UDP client: argv host, port, count. Datagram i is 8 bytes of i then 0..1392 bytes of a
 * pattern that shifts with i (every size from 8 to 1400 bytes over the run); each is sent and its
 * echo awaited (500 ms, at most 5 sends) before the next, and compared byte for byte. Late echoes
 * of earlier datagrams (after a resend) are counted apart. Prints one JSON line.
 */
const UDP_CLIENT = String.raw`
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
pattern = bytes(range(256)) * 8
resends = lost = mismatched = stale = refused = 0
t0 = time.monotonic()
for i in range(count):
    off = (i * 37) % 256
    p = i.to_bytes(8, 'big') + pattern[off:off + (i * 7919) % 1393]
    ok = False
    for attempt in range(5):
        if attempt:
            resends += 1
        s.send(p)
        deadline = time.monotonic() + 0.5
        while not ok:
            remain = deadline - time.monotonic()
            if remain <= 0:
                break
            s.settimeout(remain)
            try:
                d = s.recv(65535)
            except socket.timeout:
                break
            except ConnectionRefusedError:
                refused += 1
                continue
            if d == p:
                ok = True
            elif len(d) >= 8 and int.from_bytes(d[:8], 'big') < i:
                stale += 1
            else:
                mismatched += 1
        if ok:
            break
    if not ok:
        lost += 1
ms = (time.monotonic() - t0) * 1000
print(json.dumps({'count': count, 'lost': lost, 'resends': resends, 'mismatched': mismatched, 'stale': stale, 'refused': refused, 'ms': round(ms)}), flush=True)
`;

/**
 * The 1,000-connection client: argv host, port, n, path, go-file, expected length, expected sha256.
 * Each of n threads connects (30 s timeout) and waits; once all have connected (or failed) it
 * prints `CONNECTED k failed f ms T`, then waits (at most 60 s) for the go-file to exist — the test
 * reads the gateway's heap meanwhile — and then every thread sends `GET path?i=N HTTP/1.0`, reads
 * to EOF and checks status, length and sha256. Prints one JSON line.
 */
const MANY_CLIENT = String.raw`
import hashlib, json, os, socket, sys, threading, time
host, port, n, path, gofile, want_len, want_sha = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7]
threading.stack_size(256 * 1024)
lock = threading.Lock()
connected = failed = ok = 0
errors = []
go = threading.Event()
all_in = threading.Event()
def count(kind, err=None):
    global connected, failed, ok
    with lock:
        if kind == 'connected': connected += 1
        elif kind == 'failed': failed += 1
        elif kind == 'ok': ok += 1
        if err is not None and len(errors) < 20: errors.append(err)
        if connected + failed >= n: all_in.set()
def worker(i):
    try:
        s = socket.create_connection((host, port), timeout=30)
    except Exception as e:
        count('failed', 'connect %d: %r' % (i, e))
        return
    count('connected')
    try:
        if not go.wait(90):
            raise Exception('no go')
        s.settimeout(60)
        s.sendall(('GET %s?i=%d HTTP/1.0\r\nHost: files\r\n\r\n' % (path, i)).encode())
        data = bytearray()
        while True:
            b = s.recv(65536)
            if not b: break
            data += b
        head, _, body = bytes(data).partition(b'\r\n\r\n')
        if not (head.startswith(b'HTTP/1.0 200') or head.startswith(b'HTTP/1.1 200')) or len(body) != want_len or hashlib.sha256(body).hexdigest() != want_sha:
            raise Exception('bad answer %r (%d bytes)' % (head[:40], len(body)))
        count('ok')
    except Exception as e:
        count('bad', 'fetch %d: %r' % (i, e))
    finally:
        s.close()
t0 = time.monotonic()
threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
for t in threads: t.start()
all_in.wait(60)
print('CONNECTED %d failed %d ms %d' % (connected, failed, (time.monotonic() - t0) * 1000), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(gofile) and time.monotonic() < deadline:
    time.sleep(0.02)
t1 = time.monotonic()
go.set()
for t in threads: t.join(max(0.1, t1 + 90 - time.monotonic()))
print(json.dumps({'n': n, 'connected': connected, 'failed': failed, 'ok': ok, 'fetchMs': round((time.monotonic() - t1) * 1000), 'errors': errors}), flush=True)
`;

/** A UDP request-answer in the gateway namespace (for --forward udp): argv host port count. */
const UDP_PINGER = UDP_CLIENT;

/**
 * wisp-js's server (the library, as its own CLI uses it: node:http with `routeRequest` on
 * upgrade) on 127.0.0.1, any port (printed as `LISTENING N`), loopback and private destinations
 * allowed: the test's servers are on the gateway namespace's loopback. argv[1]: the module's file
 * URL; argv[2]: extra options as JSON.
 */
const WISP_LAUNCHER = String.raw`
import http from 'node:http';
const { server: wisp, logging } = await import(process.argv[1]);
logging.set_level(logging.WARN);
Object.assign(wisp.options, { allow_loopback_ips: true, allow_private_ips: true }, JSON.parse(process.argv[2] || '{}'));
const srv = http.createServer((req, res) => { res.writeHead(200); res.end('wisp-js server\n'); });
srv.on('upgrade', (req, socket, head) => wisp.routeRequest(req, socket, head));
srv.listen(0, '127.0.0.1', () => console.log('LISTENING ' + srv.address().port));
`;

/** A server started in a namespace with the port it bound. */
export interface Server {
  proc: NsProcess;
  port: number;
}

async function listening(proc: NsProcess, what: string): Promise<number> {
  const line = await proc.waitForLine(/^LISTENING \d+/, 15_000).catch((e: Error) => {
    throw new Error(`${what} did not start: ${e.message}`);
  });
  return Number(line.split(' ')[1]);
}

export async function startHttpServer(ns: Netns, dir: string, port = 0, options: { keepAlive?: boolean } = {}): Promise<Server> {
  const proc = ns.start(python3(), ['-u', '-c', HTTP_SERVER, dir, String(port), options.keepAlive === true ? '1.1' : '1.0']);
  return { proc, port: await listening(proc, 'the HTTP server') };
}

export async function startUdpEcho(ns: Netns, port = 0): Promise<Server> {
  const proc = ns.start(python3(), ['-u', '-c', UDP_ECHO, String(port)]);
  return { proc, port: await listening(proc, 'the UDP echo server') };
}

export async function startWispServer(ns: Netns, options: Record<string, unknown> = {}): Promise<Server> {
  const proc = ns.start(process.execPath, ['--input-type=module', '-e', WISP_LAUNCHER, pathToFileURL(WISP_SERVER).href, JSON.stringify(options)]);
  return { proc, port: await listening(proc, 'the wisp-js server') };
}

export interface UdpResult { count: number; lost: number; resends: number; mismatched: number; stale: number; refused: number; ms: number }

/** Runs the UDP client in `ns` against host:port (count datagrams); its result. */
export async function udpExchange(ns: Netns, host: string, port: number, count: number, timeoutMs: number): Promise<UdpResult> {
  const r = await ns.run(python3(), ['-u', '-c', UDP_PINGER, host, String(port), String(count)], { timeoutMs });
  assert.equal(r.timedOut, false, `UDP client timed out after ${timeoutMs} ms; stderr: ${r.stderr}`);
  assert.equal(r.status, 0, `UDP client exited ${r.status ?? r.signal}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as UdpResult;
}

export interface ManyResult { n: number; connected: number; failed: number; ok: number; fetchMs: number; errors: string[] }

/** Starts the 1,000-connection client in `ns`; see MANY_CLIENT. */
export function startManyClient(ns: Netns, host: string, port: number, n: number, path: string, goFile: string, want: { length: number; sha256: string }): NsProcess {
  return ns.start(python3(), ['-u', '-c', MANY_CLIENT, host, String(port), String(n), path, goFile, String(want.length), want.sha256]);
}

/** What curl reported (-w): exit code and status, bytes, speeds, times in seconds, its error text. */
export interface CurlResult {
  exit: number | null;
  signal: NodeJS.Signals | null;
  http: number;
  downloaded: number;
  uploaded: number;
  speedDown: number;
  speedUp: number;
  timeTotal: number;
  wallMs: number;
  stderr: string;
  body: string;
}

const WRITE_OUT = '\nCURL %{http_code} %{size_download} %{size_upload} %{speed_download} %{speed_upload} %{time_total}\n';

/** Starts curl in `ns` with `args` (plus -sS and the -w line); `result` parses what it printed. */
export function startCurl(ns: Netns, args: string[]): { proc: NsProcess; started: number; result(): Promise<CurlResult> } {
  const started = Date.now();
  const proc = ns.start('curl', ['-sS', '-g', '-H', 'Expect:', '-w', WRITE_OUT, ...args]);
  return {
    proc,
    started,
    result: async () => {
      const exit = await proc.waitExit(330_000);
      const wallMs = Date.now() - started;
      if (exit === undefined) proc.kill('SIGKILL');
      const line = proc.lines.find((l) => l.startsWith('CURL ')) ?? 'CURL 0 0 0 0 0 0';
      const [http, downloaded, uploaded, speedDown, speedUp, timeTotal] = line.split(' ').slice(1).map(Number);
      return {
        exit: exit?.code ?? null,
        signal: exit?.signal ?? null,
        http: http!,
        downloaded: downloaded!,
        uploaded: uploaded!,
        speedDown: speedDown!,
        speedUp: speedUp!,
        timeTotal: timeTotal!,
        wallMs,
        stderr: proc.stderr.trim(),
        body: proc.lines.filter((l) => !l.startsWith('CURL ')).join('\n').trim(),
      };
    },
  };
}

/** curl run to completion (bounded by --max-time and the wait). */
export function curl(ns: Netns, args: string[]): Promise<CurlResult> {
  return startCurl(ns, args).result();
}

/**
 * The relay's events (CONTRACT.md's names): `open`, `refused` and `close`, each with `protocol`
 * tcp|udp; `destination` what the guest addressed, `target` where the upstream went, `guest` the
 * guest's address:port; bytesOut/bytesIn counted from the guest's side.
 */
export const isOpen = (protocol: 'tcp' | 'udp', port: number, guestPort?: number) => (e: GatewayEvent): boolean =>
  e.event === 'open' && e.protocol === protocol && String(e.destination).endsWith(`:${port}`) &&
  (guestPort === undefined || String(e.guest).endsWith(`:${guestPort}`));
export const isClose = (protocol: 'tcp' | 'udp', id: unknown) => (e: GatewayEvent): boolean =>
  e.event === 'close' && e.protocol === protocol && e.id === id;
export const isRefused = (protocol: 'tcp' | 'udp', destination: string) => (e: GatewayEvent): boolean =>
  e.event === 'refused' && e.protocol === protocol && e.destination === destination;
/** The relay's counters from the last block a gateway printed on stderr (--stats at exit), one line. */
export function exitCounters(stderr: string): string {
  const last = stderr.slice(stderr.lastIndexOf('counters:'));
  const lines = last.split('\n').map((l) => l.trim()).filter((l) => /^(relay|udp|policy|process)\./.test(l));
  return lines.length > 0 ? `the gateway's counters at exit: ${lines.join(', ')}` : 'no counters at exit';
}

/** Sizes of the files the lab serves. */
export const BIG = 64 * 1024 * 1024;
export const SMALL = 16 * 1024;

/**
 * The lab: the two namespaces, dnsmasq (files.test → 192.0.2.10 and 2001:db8::10, other.test →
 * 192.0.2.11; everything else under .test NXDOMAIN), the HTTP server and the UDP echo server in
 * `gw`, a folder with big.bin (64 MiB of random bytes) and small.bin (16 KiB), and the gateway.
 */
export class RelayLab {
  gwNs!: Netns;
  guestNs!: Netns;
  /** The TAP device of the gateway started last. */
  tap = '';
  dir = '';
  www = '';
  big = { sha256: '', length: BIG };
  small = { sha256: '', length: SMALL };
  http!: Server;
  udp!: Server;
  gateway: GatewayProcess | undefined;
  readonly #servers: NsProcess[] = [];

  /**
   * Namespaces, files, dnsmasq and the servers (not the gateway: `startGateway`). `keepAlive`:
   * the HTTP server answers HTTP/1.1 and keeps connections open (see startHttpServer).
   */
  async setUp(options: { keepAlive?: boolean } = {}): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'synack-relay-'));
    this.www = join(this.dir, 'www');
    mkdirSync(this.www);
    const big = randomBytes(BIG);
    this.big.sha256 = sha256(big);
    writeFileSync(join(this.www, 'big.bin'), big);
    const small = randomBytes(SMALL);
    this.small.sha256 = sha256(small);
    writeFileSync(join(this.www, 'small.bin'), small);
    // The gateway's namespace: loopback only, the test's servers on it, its resolver the test's dnsmasq.
    this.gwNs = Netns.create({ resolvConf: 'nameserver 127.0.0.1\n' });
    // The guest's names come from the gateway's DNS, and from nothing else.
    this.guestNs = Netns.create({ resolvConf: 'nameserver 10.0.2.3\n' });
    for (const a of ['192.0.2.10/32', '192.0.2.11/32']) await this.gwNs.check('ip', ['addr', 'add', a, 'dev', 'lo']);
    await this.gwNs.check('ip', ['-6', 'addr', 'add', '2001:db8::10/128', 'dev', 'lo', 'nodad']);
    this.#servers.push(await startDnsmasq(this.gwNs, [
      '--listen-address=127.0.0.1', '--bind-interfaces', '--port=53',
      '--local=/test/', '--local-ttl=300',
      '--host-record=files.test,192.0.2.10,2001:db8::10',
      '--host-record=other.test,192.0.2.11',
    ]));
    this.http = await startHttpServer(this.gwNs, this.www, 0, options);
    this.udp = await startUdpEcho(this.gwNs);
    this.#servers.push(this.http.proc, this.udp.proc);
  }

  /** A process to stop in `destroy` (servers a test starts itself). */
  track(p: NsProcess): NsProcess {
    this.#servers.push(p);
    return p;
  }

  /**
   * Starts the gateway on a fresh TAP and configures the guest statically (10.0.2.15/24, default
   * route 10.0.2.2; IPv6 by SLAAC from the gateway's RA, waited for). A gateway already running is
   * stopped.
   */
  async startGateway(extra: string[]): Promise<GatewayProcess> {
    if (this.gateway !== undefined) {
      await this.gateway.stop().catch(() => undefined);
      this.gateway = undefined;
    }
    const tap = tapName();
    this.tap = tap;
    this.gateway = await GatewayProcess.start(this.gwNs, this.guestNs, tap, ['--dns', ...extra]);
    await this.guestNs.check('ip', ['link', 'set', 'dev', tap, 'up']);
    await this.guestNs.check('ip', ['addr', 'replace', '10.0.2.15/24', 'dev', tap]);
    await this.guestNs.check('ip', ['route', 'replace', 'default', 'via', '10.0.2.2', 'dev', tap]);
    const ping = await this.guestNs.run('ping', ['-c', '1', '-W', '2', '10.0.2.2'], { timeoutMs: 10_000 });
    assert.equal(ping.status, 0, `the guest pings its gateway: ${ping.stdout} ${ping.stderr}`);
    // The guest's IPv6 address by SLAAC, past duplicate address detection: until then Linux has no
    // source address for a global destination and sends its SYNs from ::1 (seen on the wire).
    let addr6 = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      addr6 = await this.guestNs.check('ip', ['-6', '-o', 'addr', 'show', 'dev', tap, 'scope', 'global']);
      if (/inet6 fd00:/.test(addr6) && !/tentative/.test(addr6)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(addr6, /inet6 fd00:[0-9a-f:]+\/64 scope global/, `no SLAAC address in the guest: ${addr6}`);
    assert.doesNotMatch(addr6, /tentative/, `the guest's SLAAC address is still tentative: ${addr6}`);
    return this.gateway;
  }

  /** The gateway started last (asserted present). */
  get gw(): GatewayProcess {
    assert.ok(this.gateway !== undefined, 'no gateway');
    return this.gateway;
  }

  /** A file path of the lab's folder (shared by both namespaces: one filesystem). */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** Stops the gateway and every server, deletes the namespaces and the folder. Never throws. */
  async destroy(): Promise<string | undefined> {
    let stderr: string | undefined;
    if (this.gateway !== undefined) stderr = await this.gateway.stop().catch((e: Error) => `(gateway stop: ${e.message})`);
    await Promise.all(this.#servers.map((p) => p.stop(1000).catch(() => undefined)));
    await this.guestNs?.destroy();
    await this.gwNs?.destroy();
    if (this.dir !== '' && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
    return stderr;
  }
}
