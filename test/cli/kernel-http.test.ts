/**
 * `synack serve` and `synack get`, the commands as users run them (dist/src/cli/main.js), against
 * the Linux kernel's own TCP inside a network namespace of the test's own: the kernel's `curl`
 * downloads 64 MiB from `synack serve --http`, `synack get` downloads 64 MiB from the kernel's
 * `python3 -m http.server`, over IPv4 and IPv6; then the same through 2% loss, 20 ms delay and 5%
 * reordering applied by synack's own impairment model around the TUN device, in both directions;
 * and what each side sees when the other is killed mid-transfer.
 *
 * Layout in the namespace: serve on synack0 (kernel 10.9.0.1/24 and fd09::1/64, synack .2), get on
 * synack1 (10.8.0.0/24, fd08::/64) and synack2 (10.7.0.0/24, fd07::/64); python's server listens on
 * every kernel address. Needs root, curl and python3; skipped otherwise (a failure under CI=true).
 */
import { before, after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pattern } from '../socket/harness.js';
import { have, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns, NsProcess } from '../support/netns.js';
import { repoRoot } from '../support/repo.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
/** The impaired path, applied by synack around the TUN device in both directions. */
const IMPAIRED = ['--loss', '0.02', '--delay', '20', '--reorder', '0.05', '--seed', '7'];

const haveCurl = have('curl', ['--version']);
const missing = [...tunTestsMissing([MAIN]), ...(haveCurl ? [] : ['curl'])];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Each link of the layout: the device, the kernel's side, synack's side. */
const LINKS = {
  serve: { tun: 'synack0', kernel: ['10.9.0.1/24', 'fd09::1/64'], synack: ['10.9.0.2/24', 'fd09::2/64'] },
  get4: { tun: 'synack1', kernel: ['10.8.0.1/24', 'fd08::1/64'], synack: ['10.8.0.2/24', 'fd08::2/64'] },
  get6: { tun: 'synack2', kernel: ['10.7.0.1/24', 'fd07::1/64'], synack: ['10.7.0.2/24', 'fd07::2/64'] },
} as const;

function tunArgs(link: (typeof LINKS)[keyof typeof LINKS]): string[] {
  return ['--tun', link.tun, ...link.kernel.flatMap((k) => ['--kernel-address', k]), ...link.synack.flatMap((a) => ['--address', a])];
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Bytes in `file` so far (0 before it exists). */
function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

let root = '';
let site = '';
let want = '';

before(() => {
  if (skip !== false) return;
  root = mkdtempSync(join(tmpdir(), 'synack-kernel-http-'));
  site = join(root, 'www');
  mkdirSync(site);
  const big = pattern(SIZE, 99);
  want = sha256(big);
  writeFileSync(join(site, 'big.bin'), big);
});

after(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

/** `synack serve --http` on synack0, waited for until it listens. */
async function startServe(ns: Netns, extra: string[] = []): Promise<NsProcess> {
  const serve = ns.start(process.execPath, [MAIN, 'serve', ...tunArgs(LINKS.serve), '--port', '8000', '--http', site, '--json', ...extra]);
  await waitFor(() => /synack serve: http .* via synack0/.test(serve.stderr) || serve.exitStatus !== undefined, 15_000, 'serve to listen');
  assert.equal(serve.exitStatus, undefined, `serve exited: ${serve.stderr}`);
  return serve;
}

/** The kernel's HTTP server on every address of the namespace, port 8001, waited for. */
async function startPythonServer(ns: Netns): Promise<NsProcess> {
  const py = ns.start('python3', ['-u', '-m', 'http.server', '8001', '--bind', '::', '--directory', site]);
  await waitFor(() => /Serving HTTP/.test(py.lines.join('\n')) || py.exitStatus !== undefined, 10_000, 'python http.server');
  return py;
}

interface CurlResult {
  status: number;
  bytes: number;
  bytesPerSecond: number;
  seconds: number;
  file: string;
}

/** The kernel's curl: GET url to a file; what curl measured (-w). */
function startCurl(ns: Netns, url: string, file: string, extra: string[] = []): NsProcess {
  return ns.start('curl', ['-sS', '-g', '-o', file, '-w', '%{http_code} %{size_download} %{speed_download} %{time_total}\n', ...extra, url]);
}

async function curlResult(curl: NsProcess, file: string, timeoutMs: number): Promise<CurlResult> {
  const exit = await curl.waitExit(timeoutMs);
  assert.deepEqual(exit, { code: 0, signal: null }, `curl: ${curl.stderr}`);
  const [status, bytes, speed, seconds] = (curl.lines[0] ?? '').split(' ').map(Number);
  return { status: status!, bytes: bytes!, bytesPerSecond: speed!, seconds: seconds!, file };
}

interface GetSummary {
  ok: boolean;
  status: number;
  bytes: number;
  seconds: number;
  code?: string;
  error?: string;
  link: { impairment?: { out: { dropped: number; reordered: number }; in: { dropped: number; reordered: number } } };
  stack: { retransmits: number };
}

function startGet(ns: Netns, link: (typeof LINKS)['get4' | 'get6'], url: string, file: string, extra: string[] = []): NsProcess {
  return ns.start(process.execPath, [MAIN, 'get', url, ...tunArgs(link), '-o', file, '--json', ...extra]);
}

async function getResult(get: NsProcess, timeoutMs: number): Promise<GetSummary> {
  const exit = await get.waitExit(timeoutMs);
  assert.notEqual(exit, undefined, `get still running after ${timeoutMs} ms`);
  return JSON.parse(get.lines.join('\n')) as GetSummary;
}

const mbps = (bytesPerSecond: number): string => {
  const m = (bytesPerSecond * 8) / 1e6;
  return `${m.toFixed(m < 10 ? 2 : 0)} Mbit/s`;
};

function assertSameFile(file: string, what: string): void {
  assert.equal(sha256(readFileSync(file)), want, `${what}: byte-identical`);
}

describe('synack serve and get with the kernel\'s curl and http.server, 64 MiB', () => {
  if (skip !== false && process.env['CI'] === 'true') {
    test('kernel HTTP tests can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
    return;
  }

  test('clean path: curl ← serve and get ← http.server, IPv4 and IPv6, byte-identical', { skip, timeout: 120_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      const serve = await startServe(ns);
      for (const [family, url] of [['IPv4', 'http://10.9.0.2:8000/big.bin'], ['IPv6', 'http://[fd09::2]:8000/big.bin']] as const) {
        const file = join(root, `curl-${family}.bin`);
        const r = await curlResult(startCurl(ns, url, file), file, 60_000);
        assert.equal(r.status, 200);
        assert.equal(r.bytes, SIZE);
        assertSameFile(file, `curl over ${family}`);
        rmSync(file);
        t.diagnostic(`kernel curl ← synack serve, ${family}: ${mbps(r.bytesPerSecond)} (${r.seconds.toFixed(2)} s)`);
      }
      serve.kill('SIGINT');
      assert.deepEqual(await serve.waitExit(10_000), { code: 0, signal: null }, serve.stderr);

      const py = await startPythonServer(ns);
      try {
        for (const [family, link, url] of [['IPv4', LINKS.get4, 'http://10.8.0.1:8001/big.bin'], ['IPv6', LINKS.get6, 'http://[fd07::1]:8001/big.bin']] as const) {
          const file = join(root, `get-${family}.bin`);
          const g = startGet(ns, link, url, file);
          const r = await getResult(g, 60_000);
          assert.equal(g.exitStatus?.code, 0, g.stderr);
          assert.equal(r.ok, true);
          assert.equal(r.bytes, SIZE);
          assertSameFile(file, `get over ${family}`);
          rmSync(file);
          t.diagnostic(`synack get ← kernel http.server, ${family}: ${mbps(SIZE / r.seconds)} (${r.seconds.toFixed(2)} s)`);
        }
      } finally {
        await py.stop(2000);
      }
    });
  });

  test('2% loss, 20 ms delay, 5% reordering both ways: curl ← serve and get ← http.server, IPv4 and IPv6 at once, byte-identical', { skip, timeout: 600_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      const serve = await startServe(ns, IMPAIRED);
      assert.match(serve.stderr, /impaired both ways: 2% loss, 20 ms delay, 5% reordering, seed 7/);
      const py = await startPythonServer(ns);
      try {
        const started = Date.now();
        const files = {
          curl4: join(root, 'i-curl4.bin'), curl6: join(root, 'i-curl6.bin'),
          get4: join(root, 'i-get4.bin'), get6: join(root, 'i-get6.bin'),
        };
        // All four at once: each is a flow of its own (no shared bottleneck), and the slowest bounds the time.
        const curl4 = startCurl(ns, 'http://10.9.0.2:8000/big.bin', files.curl4, ['--max-time', '540']);
        const curl6 = startCurl(ns, 'http://[fd09::2]:8000/big.bin', files.curl6, ['--max-time', '540']);
        const get4 = startGet(ns, LINKS.get4, 'http://10.8.0.1:8001/big.bin', files.get4, IMPAIRED);
        const get6 = startGet(ns, LINKS.get6, 'http://[fd07::1]:8001/big.bin', files.get6, IMPAIRED);
        const [c4, c6, g4, g6] = await Promise.all([
          curlResult(curl4, files.curl4, 560_000), curlResult(curl6, files.curl6, 560_000),
          getResult(get4, 560_000), getResult(get6, 560_000),
        ]);
        for (const [name, r] of [['IPv4', c4], ['IPv6', c6]] as const) {
          assert.equal(r.status, 200);
          assert.equal(r.bytes, SIZE);
          assertSameFile(r.file, `curl over ${name}, impaired`);
          t.diagnostic(`impaired: kernel curl ← synack serve, ${name}: ${mbps(r.bytesPerSecond)} (${r.seconds.toFixed(1)} s)`);
        }
        for (const [name, g, r, file] of [['IPv4', get4, g4, files.get4], ['IPv6', get6, g6, files.get6]] as const) {
          assert.equal(g.exitStatus?.code, 0, g.stderr);
          assert.equal(r.bytes, SIZE);
          assertSameFile(file, `get over ${name}, impaired`);
          // The impairment was there, both ways: packets were lost and reordered in each direction.
          const imp = r.link.impairment;
          assert.ok(imp !== undefined && imp.out.dropped > 0 && imp.in.dropped > 0 && imp.out.reordered > 0 && imp.in.reordered > 0, JSON.stringify(imp));
          t.diagnostic(`impaired: synack get ← kernel http.server, ${name}: ${mbps(SIZE / r.seconds)} (${r.seconds.toFixed(1)} s); ` +
            `lost ${imp.in.dropped} of the kernel's packets and ${imp.out.dropped} of ours, reordered ${imp.in.reordered}/${imp.out.reordered}`);
        }
        serve.kill('SIGINT');
        assert.deepEqual(await serve.waitExit(10_000), { code: 0, signal: null }, serve.stderr);
        const summary = JSON.parse(serve.lines.join('\n')) as GetSummary & { requests: number };
        assert.equal(summary.requests, 2);
        const imp = summary.link.impairment;
        assert.ok(imp !== undefined && imp.out.dropped > 0 && imp.in.dropped > 0 && imp.out.reordered > 0 && imp.in.reordered > 0, JSON.stringify(imp));
        t.diagnostic(`impaired: serve retransmitted ${summary.stack.retransmits} segments for ${imp.out.dropped} lost; all four done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      } finally {
        await py.stop(2000);
        for (const f of ['i-curl4.bin', 'i-curl6.bin', 'i-get4.bin', 'i-get6.bin']) rmSync(join(root, f), { force: true });
      }
    });
  });

  test('killing synack serve mid-download: curl gets a clean error, not a hang (SIGKILL: timed out; SIGTERM: reset)', { skip, timeout: 90_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        const serve = await startServe(ns);
        const file = join(root, 'cut.bin');
        // --limit-rate keeps the download going long enough to be cut; --keepalive-time 1 is how a
        // kernel client learns that a peer which vanished without a word is gone (RFC 1122 §4.2.3.6).
        const curl = startCurl(ns, 'http://10.9.0.2:8000/big.bin', file, ['--limit-rate', '4M', '--keepalive-time', '1']);
        await waitFor(() => sizeOf(file) > MiB, 20_000, 'curl to receive 1 MiB');
        serve.kill(signal);
        const killedAt = Date.now();
        const exit = await curl.waitExit(40_000);
        const elapsed = Date.now() - killedAt;
        assert.ok(exit !== undefined, `curl hung after ${signal}`);
        assert.notEqual(exit.code, 0, 'curl failed');
        const message = curl.stderr.trim();
        assert.match(message, signal === 'SIGKILL' ? /Connection timed out/ : /Connection reset by peer|transfer closed/, message);
        assert.ok(readFileSync(file).length < SIZE);
        assert.ok(elapsed < (signal === 'SIGKILL' ? 30_000 : 5000), `${elapsed} ms`);
        t.diagnostic(`serve ${signal}: curl exit ${exit.code} after ${elapsed} ms: ${message}`);
        await serve.waitExit(10_000);
        rmSync(file);
      }
    });
  });

  test('killing the kernel\'s http.server mid-download: synack get exits 1 with one line (SIGKILL: reset or cut short; SIGSTOP: ETIMEDOUT)', { skip, timeout: 90_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
        const py = await startPythonServer(ns);
        const file = join(root, 'cut.bin');
        // A 40 Mbit/s bottleneck keeps the download going long enough to be cut.
        const g = startGet(ns, LINKS.get4, 'http://10.8.0.1:8001/big.bin', file, ['--bandwidth', '40000000', '--timeout', '2']);
        await waitFor(() => sizeOf(file) > MiB, 20_000, 'get to receive 1 MiB');
        py.kill(signal);
        const killedAt = Date.now();
        const r = await getResult(g, 30_000);
        const elapsed = Date.now() - killedAt;
        assert.equal(g.exitStatus?.code, 1, g.stderr);
        assert.equal(r.ok, false);
        const lines = g.stderr.trim().split('\n').filter((l) => !/note:/.test(l));
        assert.equal(lines.length, 1, g.stderr);
        if (signal === 'SIGKILL') assert.match(r.code ?? '', /^(ECONNRESET|PARTIAL)$/, r.error);
        else assert.equal(r.code, 'ETIMEDOUT', r.error);
        assert.match(lines[0]!, /is incomplete\)$/);
        assert.ok(r.bytes > MiB && r.bytes < SIZE, String(r.bytes));
        t.diagnostic(`http.server ${signal}: get ${r.code} after ${elapsed} ms: ${lines[0]}`);
        py.kill('SIGKILL');
        await py.waitExit(5000);
        rmSync(file);
      }
    });
  });
});
