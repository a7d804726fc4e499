/**
 * `synack serve --tap` and `synack get --tap`, the commands as users run them (dist/src/cli/main.js),
 * against the Linux kernel on an Ethernet link: a TAP device in a network namespace of the test's own,
 * the kernel at 10.9.0.1/24 and fd09::1/64 on one side, synack (its EthernetInterface answering the
 * kernel's ARP and neighbour solicitations) on the other. The kernel's `curl` downloads 64 MiB from
 * `synack serve --http` over IPv4 and IPv6, and `synack get` downloads 64 MiB from the kernel's
 * `python3 -m http.server`, byte-identical. The TUN version of these is kernel-http.test.ts. Needs
 * root, curl and python3; skipped otherwise (a failure under CI=true).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pattern } from '../socket/harness.js';
import { NsProcess, have, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns } from '../support/netns.js';
import { repoRoot } from '../support/repo.js';

const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const SIZE = 64 * 1024 * 1024;
const MAC = '02:53:59:4e:41:43';
const TAP = ['--kernel-address', '10.9.0.1/24', '--kernel-address', 'fd09::1/64', '--address', '10.9.0.2', '--address', 'fd09::2'];

const haveCurl = have('curl', ['--version']);
const missing = [...tunTestsMissing([MAIN]), ...(haveCurl ? [] : ['curl'])];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const mbps = (bytesPerSecond: number): string => `${((bytesPerSecond * 8) / 1e6).toFixed(0)} Mbit/s`;

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let root = '';
let site = '';
let want = '';

before(() => {
  if (skip !== false) return;
  root = mkdtempSync(join(tmpdir(), 'synack-kernel-tap-'));
  site = join(root, 'www');
  mkdirSync(site);
  const big = pattern(SIZE, 77);
  want = sha256(big);
  writeFileSync(join(site, 'big.bin'), big);
});

after(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

/** The kernel's curl: GET url to a file; status, bytes and speed as curl measured them. */
async function curl(ns: Netns, url: string, file: string): Promise<{ status: number; bytes: number; speed: number }> {
  const c = ns.start('curl', ['-sS', '-g', '--max-time', '90', '-o', file, '-w', '%{http_code} %{size_download} %{speed_download}\n', url]);
  const exit = await c.waitExit(100_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `curl: ${c.stderr}`);
  const [status, bytes, speed] = (c.lines[0] ?? '').split(' ').map(Number);
  return { status: status!, bytes: bytes!, speed: speed! };
}

describe('synack serve and get on a TAP device with the kernel\'s curl and http.server, 64 MiB', () => {
  if (skip !== false && process.env['CI'] === 'true') {
    test('kernel TAP tests can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
    return;
  }

  test('curl ← synack serve --tap, IPv4 and IPv6, byte-identical; the kernel resolved synack\'s MAC', { skip, timeout: 240_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      const serve: NsProcess = ns.start(process.execPath, [MAIN, 'serve', '--tap', 'synack0', '--mac', MAC, ...TAP, '--port', '8000', '--http', site, '--json']);
      await waitFor(() => /synack serve: http .* via synack0/.test(serve.stderr) || serve.exitStatus !== undefined, 15_000, 'serve to listen');
      assert.equal(serve.exitStatus, undefined, `serve exited: ${serve.stderr}`);
      assert.match(serve.stderr, new RegExp(`note: synack's MAC on synack0 is ${MAC}`));
      // A plain --address on a TAP took the kernel side's prefix: on-link, reached by ARP/NDP.
      assert.match(serve.stderr, /on 10\.9\.0\.2:8000, \[fd09::2\]:8000 via synack0/);
      const link = await ns.check('ip', ['link', 'show', 'dev', 'synack0']);
      assert.match(link, /link\/ether /, 'an Ethernet device');
      for (const [family, url] of [['IPv4', 'http://10.9.0.2:8000/big.bin'], ['IPv6', 'http://[fd09::2]:8000/big.bin']] as const) {
        const file = join(root, `curl-${family}.bin`);
        const r = await curl(ns, url, file);
        assert.equal(r.status, 200);
        assert.equal(r.bytes, SIZE);
        assert.equal(sha256(readFileSync(file)), want, `curl over ${family}: byte-identical`);
        rmSync(file);
        t.diagnostic(`kernel curl ← synack serve --tap, ${family}: ${mbps(r.speed)}`);
      }
      const neigh = await ns.check('ip', ['neigh', 'show', 'dev', 'synack0']);
      assert.match(neigh, new RegExp(`10\\.9\\.0\\.2 lladdr ${MAC}`), neigh);
      assert.match(neigh, new RegExp(`fd09::2 lladdr ${MAC}`), neigh);
      serve.kill('SIGINT');
      assert.deepEqual(await serve.waitExit(10_000), { code: 0, signal: null }, serve.stderr);
      const summary = JSON.parse(serve.lines.join('\n')) as { ok: boolean; tap: string; requests: number; link: { packetsOut: number; drops: number } };
      assert.equal(summary.ok, true);
      assert.equal(summary.tap, 'synack0');
      assert.equal(summary.requests, 2);
      assert.ok(summary.link.packetsOut > SIZE / 1500, 'the frames went out through the TAP');
      // The device went with the command.
      assert.notEqual((await ns.run('ip', ['link', 'show', 'dev', 'synack0'])).status, 0);
    });
  });

  test('synack get --tap ← the kernel\'s http.server, IPv4 with get outside the namespace (--netns), IPv6 inside, byte-identical', { skip, timeout: 240_000 }, async (t: TestContext) => {
    await withNetns(async (ns) => {
      const py = ns.start('python3', ['-u', '-m', 'http.server', '8001', '--bind', '::', '--directory', site]);
      try {
        await waitFor(() => /Serving HTTP/.test(py.lines.join('\n')) || py.exitStatus !== undefined, 10_000, 'python http.server');
        for (const [family, url] of [['IPv4', 'http://10.9.0.1:8001/big.bin'], ['IPv6', 'http://[fd09::1]:8001/big.bin']] as const) {
          const file = join(root, `get-${family}.bin`);
          let g: NsProcess;
          let tap: string;
          if (family === 'IPv4') {
            // From this namespace: the device is made here and its kernel side moved into ns (a name
            // of its own, since it starts out beside this machine's devices).
            tap = `stap${randomBytes(4).toString('hex')}`;
            g = new NsProcess(spawn(process.execPath, [MAIN, 'get', url, '--tap', tap, '--netns', ns.name, ...TAP, '-o', file, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] }));
          } else {
            tap = 'synack1';
            g = ns.start(process.execPath, [MAIN, 'get', url, '--tap', tap, ...TAP, '-o', file, '--json']);
          }
          const exit = await g.waitExit(100_000).finally(() => g.stop(2000));
          assert.deepEqual(exit, { code: 0, signal: null }, `get: ${g.stderr}`);
          const r = JSON.parse(g.lines.join('\n')) as { ok: boolean; bytes: number; seconds: number; tap: string };
          assert.equal(r.ok, true);
          assert.equal(r.tap, tap);
          assert.equal(r.bytes, SIZE);
          assert.equal(sha256(readFileSync(file)), want, `get over ${family}: byte-identical`);
          rmSync(file);
          t.diagnostic(`synack get --tap ← kernel http.server, ${family}: ${mbps(SIZE / r.seconds)} (${r.seconds.toFixed(2)} s)`);
          // The device went with the command, from the namespace too.
          assert.notEqual((await ns.run('ip', ['link', 'show', 'dev', tap])).status, 0);
        }
      } finally {
        await py.stop(2000);
      }
    });
  });
});
