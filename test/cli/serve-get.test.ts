/**
 * `synack serve` and `synack get` without a TUN device: usage and argument checks, the file server
 * over two synack stacks joined by a MemoryLink in real time (node's http client on the other stack),
 * and both commands run whole with a MemoryLink end in place of the TUN device.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Stack } from '../../src/index.node.js';
import { RealClock } from '../../src/link/clock.js';
import { MemoryLink, type MemoryLinkEnd } from '../../src/link/memory.js';
import type { Socket } from '../../src/socket/net.js';
import { createFileServer, parseServeArgs, resolveTarget, serveCommand, startService } from '../../src/cli/serve.js';
import { ProgressBar, getCommand, httpGet, parseGetArgs, parseGetUrl } from '../../src/cli/get.js';
import { StoppableClock, openStack, parseTunValues, stopSignal, type CommandLink } from '../../src/cli/tun-options.js';
import { collect, pattern, twoStacks, type Net2 } from '../socket/harness.js';
import { tunTestsMissing, withNetns } from '../support/netns.js';
import { repoRoot } from '../support/repo.js';
import { capture } from './helpers.js';

/** Bytes of the big file: 64 MiB streams over a real-time MemoryLink in about a second. */
const BIG = 64 << 20;
/** Wall-time bound for every test that moves data. */
const TIMEOUT_MS = 30_000;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A served folder, with a secret beside it (outside) and a symlink pointing at the secret. */
function makeSite(): { root: string; dir: string; big: Uint8Array; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), 'synack-serve-'));
  const dir = join(root, 'www');
  mkdirSync(join(dir, 'sub dir'), { recursive: true });
  writeFileSync(join(root, 'secret.txt'), 'TOP SECRET\n');
  const big = pattern(BIG, 7);
  writeFileSync(join(dir, 'big.bin'), big);
  writeFileSync(join(dir, 'hello.txt'), 'hello, synack\n');
  writeFileSync(join(dir, 'sub dir', 'a&b.html'), '<p>a</p>\n');
  symlinkSync(join(root, 'secret.txt'), join(dir, 'leak.txt'));
  return { root, dir, big, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A MemoryLink end dressed as the commands' link (a name, close(), stats). */
function commandLink(end: MemoryLinkEnd, name: string): CommandLink & { closed: boolean } {
  let closed = false;
  return {
    name,
    mtu: end.mtu,
    send: (p) => {
      if (!closed) end.send(p);
    },
    onPacket: (fn) => end.onPacket((p) => {
      if (!closed) fn(p);
    }),
    close: () => void (closed = true),
    get closed() {
      return closed;
    },
    get stats() {
      return end.stats;
    },
  };
}

/** A real-time MemoryLink: one end for a command, the other for a stack the test owns (10.0.0.2, fd00::2). */
function peerAndLink(): { peer: Stack; link: CommandLink & { closed: boolean } } {
  const [la, lb] = MemoryLink.pair({ clock: new RealClock() });
  const peer = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock: new StoppableClock(), name: 'peer', mslMs: 100 });
  return { peer, link: commandLink(la, 'mem0') };
}

function stopPeer(peer: Stack): void {
  (peer.clock as StoppableClock).stop();
}

interface Reply {
  status: number | undefined;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
}

function request(options: http.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      collect(res).then((body) => resolve({ status: res.statusCode, headers: res.headers, body, reused: req.reusedSocket }), reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits for `p` at most `ms` of wall time. */
async function within<T>(p: Promise<T>, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------

describe('usage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-usage-'));
  const file = join(dir, 'f.txt');
  writeFileSync(file, 'x');
  const TUN = ['--tun', 'synack0', '--address', '10.9.0.2/24'];

  test('serve: bad usage exits 2 with a one-line reason, before touching any device', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /--tun IF is required/],
      [['--address', '10.9.0.2', '--port', '80', '--echo'], /--tun IF is required/],
      [['--tun', 'synack0', '--port', '80', '--echo'], /--address IP is required/],
      [[...TUN, '--echo'], /--port P is required/],
      [[...TUN, '--port', '0', '--echo'], /bad --port '0'/],
      [[...TUN, '--port', '65536', '--echo'], /bad --port/],
      [[...TUN, '--port', 'http', '--echo'], /bad --port/],
      [[...TUN, '--port', '80'], /say what to serve/],
      [[...TUN, '--port', '80', '--http', dir, '--echo'], /--http and --echo exclude each other/],
      [[...TUN, '--port', '80', '--echo', '--discard'], /--echo and --discard exclude each other/],
      [[...TUN, '--port', '80', '--http', join(dir, 'missing')], /no such folder/],
      [[...TUN, '--port', '80', '--http', file], /not a folder/],
      [['--tun', 'synack0', '--address', '10.9.0.300', '--port', '80', '--echo'], /bad --address '10\.9\.0\.300'/],
      [['--tun', 'synack0', '--address', '10.9.0.2/33', '--port', '80', '--echo'], /bad --address/],
      [['--tun', 'synack0', '--address', 'fd09::2/129', '--port', '80', '--echo'], /bad --address/],
      [['--tun', 'synack0', '--address', 'example.com', '--port', '80', '--echo'], /bad --address/],
      [[...TUN, '--kernel-address', '10.9.0.2/24', '--port', '80', '--echo'], /also an --address/],
      [[...TUN, '--kernel-address', 'nope', '--port', '80', '--echo'], /bad --kernel-address 'nope'/],
      [['--tun', 'a-name-that-is-too-long', '--address', '10.9.0.2', '--port', '80', '--echo'], /bad --tun/],
      [['--tun', 'a/b', '--address', '10.9.0.2', '--port', '80', '--echo'], /bad --tun/],
      [[...TUN, '--mtu', '100', '--port', '80', '--echo'], /bad --mtu '100'/],
      [['--tun', 'synack0', '--address', 'fd09::2', '--mtu', '1000', '--port', '80', '--echo'], /from 1280 to 65535/],
      [[...TUN, '--address', '10.9.0.2', '--port', '80', '--echo'], /given twice/],
      [[...TUN, '--port', '80', '--echo', '--bogus'], /Unknown option '--bogus'/],
      [[...TUN, '--port', '80', '--echo', 'extra'], /Unexpected argument 'extra'/],
      [[...TUN, '--port', '80', '--echo', '--loss', '2'], /bad --loss '2': expected a probability from 0 to 1/],
      [[...TUN, '--port', '80', '--echo', '--delay=-5'], /bad --delay '-5'/],
      [[...TUN, '--port', '80', '--echo', '--reorder', 'often'], /bad --reorder 'often'/],
      [[...TUN, '--port', '80', '--echo', '--seed', '1.5'], /bad --seed '1.5'/],
      [[...TUN, '--port', '80', '--echo', '--bandwidth', '0'], /bad --bandwidth '0'/],
      [[...TUN, '--port', '80', '--echo', '--offload', '--loss', '0.1'], /--offload cannot be combined with the impairment flags/],
    ];
    for (const [args, reason] of cases) {
      const c = capture();
      assert.equal(await runServe(args, c), 2, args.join(' '));
      assert.equal(c.out(), '', args.join(' '));
      assert.equal(c.err().split('\n').length, 2, `one line for ${args.join(' ')}: ${c.err()}`);
      assert.match(c.err(), /^synack serve: /);
      assert.match(c.err(), reason, args.join(' '));
    }
  });

  test('get: bad usage exits 2 with a one-line reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[...TUN], /give the URL/],
      [['http://10.9.0.1/', 'http://10.9.0.1/b', ...TUN], /one URL at a time/],
      [['https://10.9.0.1/', ...TUN], /only http:\/\//],
      [['http://example.com/', ...TUN], /must be an IP address/],
      [['not a url', ...TUN], /bad URL 'not a url'/],
      [['http://user:pw@10.9.0.1/', ...TUN], /credentials/],
      [['http://[fd09::1]:8000/', ...TUN], /no IPv6 --address to reach fd09::1/],
      [['http://10.9.0.2/', ...TUN], /the stack's own --address/],
      [['http://10.9.0.1/', '--address', '10.9.0.2'], /--tun IF is required/],
      [['http://10.9.0.1/', '--tun', 'synack0'], /--address IP is required/],
      [['http://10.9.0.1/', ...TUN, '--json'], /--json needs -o F/],
      [['http://10.9.0.1/', ...TUN, '--timeout', '0'], /bad --timeout '0'/],
      [['http://10.9.0.1/', ...TUN, '--timeout', 'soon'], /bad --timeout/],
      [['http://10.9.0.1/', ...TUN, '-x'], /Unknown option '-x'/],
      [['http://10.9.0.1/', ...TUN, '--duplicate=-0.1'], /bad --duplicate '-0\.1'/],
      [['http://10.9.0.1/', ...TUN, '--corrupt', ''], /bad --corrupt ''/],
    ];
    for (const [args, reason] of cases) {
      const c = capture();
      assert.equal(await getCommand(args, c.io, { openLink: () => assert.fail('no link for bad usage') }), 2, args.join(' '));
      assert.equal(c.out(), '', args.join(' '));
      assert.equal(c.err().split('\n').length, 2, `one line for ${args.join(' ')}: ${c.err()}`);
      assert.match(c.err(), /^synack get: /);
      assert.match(c.err(), reason, args.join(' '));
    }
  });

  test('--help prints the usage on stdout and exits 0, for both', async () => {
    for (const [cmd, run] of [['serve', runServe], ['get', runGet]] as const) {
      for (const h of ['--help', '-h']) {
        const c = capture();
        assert.equal(await run([h], c), 0);
        assert.match(c.out(), new RegExp(`^Usage: synack ${cmd} `));
        assert.match(c.out(), /--kernel-address CIDR/);
        assert.equal(c.err(), '');
      }
    }
  });

  test('a TUN device that cannot be opened: exit 1 and one line with the reason', async () => {
    // A TunError's message is shown as it is; a system error gets its code in front.
    const tunError = (): never => {
      throw Object.assign(new Error('no permission to create synack0 (needs CAP_NET_ADMIN)'), { name: 'TunError', code: 'permission' });
    };
    const s = capture();
    assert.equal(await serveCommand([...TUN, '--port', '80', '--echo'], s.io, { openLink: tunError }), 1);
    assert.equal(s.err(), 'synack serve: cannot open TUN device synack0: no permission to create synack0 (needs CAP_NET_ADMIN)\n');
    const systemError = (): never => {
      throw Object.assign(new Error('open /dev/net/tun failed\nmore detail'), { code: 'ENOENT' });
    };
    const g = capture();
    assert.equal(await getCommand(['http://10.9.0.1/', ...TUN], g.io, { openLink: systemError }), 1);
    assert.equal(g.err(), 'synack get: cannot open TUN device synack0: ENOENT: open /dev/net/tun failed\n');
  });

  test.after(() => rmSync(dir, { recursive: true, force: true }));
});

function runServe(args: string[], c: ReturnType<typeof capture>): Promise<number> {
  return serveCommand(args, c.io, { openLink: () => assert.fail('no link for bad usage') });
}
function runGet(args: string[], c: ReturnType<typeof capture>): Promise<number> {
  return getCommand(args, c.io, { openLink: () => assert.fail('no link for bad usage') });
}

describe('argument parsing', () => {
  test('addresses with and without a prefix, both families, canonical forms', () => {
    const c = parseTunValues({
      tun: 'synack0',
      address: ['10.9.0.2', 'FD09:0:0::2/64'],
      'kernel-address': ['10.9.0.1/24', 'fd09::1'],
    });
    assert.deepEqual(c.addresses.map((a) => [a.cidr, a.family]), [['10.9.0.2/32', 4], ['fd09::2/64', 6]]);
    // A plain kernel address takes the prefix written on the stack's address of its family.
    assert.deepEqual(c.kernelAddresses.map((a) => a.cidr), ['10.9.0.1/24', 'fd09::1/64']);
    assert.deepEqual(c.notes, []);
    assert.equal(c.mtu, undefined);
  });

  test('a stack address outside the kernel\'s prefix gets a note (the kernel would not route to it)', () => {
    const c = parseTunValues({ tun: 't0', address: ['10.8.0.2'], 'kernel-address': ['10.9.0.1/24'], mtu: '9000' });
    assert.equal(c.notes.length, 1);
    assert.match(c.notes[0]!, /10\.8\.0\.2 is outside 10\.9\.0\.1\/24/);
    assert.equal(c.mtu, 9000);
    assert.deepEqual(parseTunValues({ tun: 't0', address: ['10.9.0.2'] }).kernelAddresses, []);
  });

  test('the impairment flags: checked, described in a note, absent or all-zero means no wrapper', () => {
    const base = { tun: 't0', address: ['10.9.0.2/24'], 'kernel-address': ['10.9.0.1/24'] };
    const c = parseTunValues({ ...base, loss: '0.02', delay: '20', reorder: '0.05', seed: '7' });
    assert.deepEqual(c.impairment, { seed: 7, lossRate: 0.02, delayMs: 20, reorderRate: 0.05 });
    assert.deepEqual(c.notes, ['the path to the kernel is impaired both ways: 2% loss, 20 ms delay, 5% reordering, seed 7']);
    assert.deepEqual(parseTunValues(base).impairment, {});
    assert.deepEqual(parseTunValues(base).notes, []);
    // A seed alone, or zero rates, change nothing: no note, and openStack puts no wrapper around the link.
    assert.deepEqual(parseTunValues({ ...base, seed: '3', loss: '0' }).notes, []);
    const d = parseTunValues({ ...base, duplicate: '0.001', corrupt: '0.5', bandwidth: '1e6' });
    assert.match(d.notes[0]!, /0\.1% duplication, 50% corruption, 1000000 bit\/s, seed 1$/);
  });

  test('openStack wraps the link in the impairments when they change anything; its stats then count each direction', async () => {
    const base = { tun: 't0', address: ['10.9.0.2/24'] };
    for (const [values, wrapped] of [[{ loss: '0.5' }, true], [{ seed: '4' }, false]] as const) {
      const [end] = MemoryLink.pair({ clock: new RealClock() });
      const link = commandLink(end, 'mem0');
      const s = await openStack(parseTunValues({ ...base, ...values }), { openLink: () => link }, 'test');
      try {
        assert.equal(s.link.name, 'mem0');
        assert.equal(s.link === link, !wrapped);
        const stats = s.link.stats as { impairment?: { out: { sent: number } } };
        assert.equal(stats.impairment !== undefined, wrapped);
      } finally {
        await s.shutdown(0);
      }
      assert.equal(link.closed, true, 'closing the wrapper closes the link');
    }
  });

  test('serve: modes, port, folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'synack-args-'));
    try {
      const base = ['--tun', 'synack0', '--kernel-address', '10.9.0.1/24', '--address', '10.9.0.2/24', '--address', 'fd09::2/64', '--port', '8000'];
      const http1 = parseServeArgs([...base, '--http', dir]);
      assert.ok(!http1.help);
      if (http1.help) return;
      assert.deepEqual(http1.mode, { kind: 'http', dir });
      assert.equal(http1.port, 8000);
      assert.equal(http1.json, false);
      assert.deepEqual(http1.tun.addresses.map((a) => a.cidr), ['10.9.0.2/24', 'fd09::2/64']);
      const echo = parseServeArgs([...base, '--echo', '--json']);
      assert.ok(!echo.help && echo.mode.kind === 'echo' && echo.json);
      const discard = parseServeArgs([...base, '--discard']);
      assert.ok(!discard.help && discard.mode.kind === 'discard');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('get: URLs with IPv4 and IPv6 hosts, default port, query kept', () => {
    assert.deepEqual(parseGetUrl('http://[FD09::1]:8000/a%20b?x=1#frag'), {
      url: 'http://[fd09::1]:8000/a%20b?x=1#frag', host: 'fd09::1', family: 6, port: 8000, path: '/a%20b?x=1', hostHeader: '[fd09::1]:8000',
    });
    const v4 = parseGetUrl('http://10.9.0.1');
    assert.deepEqual([v4.host, v4.family, v4.port, v4.path, v4.hostHeader], ['10.9.0.1', 4, 80, '/', '10.9.0.1']);
    const a = parseGetArgs(['http://[fd09::1]:8000/f', '--tun', 't0', '--address', '10.9.0.2/24', '--address', 'fd09::2', '-o', 'out', '--timeout', '2.5']);
    assert.ok(!a.help);
    if (a.help) return;
    assert.equal(a.output, 'out');
    assert.equal(a.timeoutMs, 2500);
    assert.equal(a.target.port, 8000);
  });

  test('the progress bar: percentage, sizes, rate; no total → sizes and rate only; redraws throttled', () => {
    let t = 0;
    let out = '';
    const bar = new ProgressBar((s) => void (out += s), 60, () => t, 100);
    bar.setTotal(1 << 20);
    bar.update(0);
    t = 50;
    bar.update(1000); // within 100 ms of the last draw: not drawn
    assert.equal(out.split('\r').length, 2);
    t = 1000;
    bar.update(512 * 1024);
    const line = out.split('\r').at(-1)!;
    assert.equal(line.length, 59);
    assert.match(line, /^\[#+\.+\]  50% 512\.0 KiB \/ 1\.00 MiB  512\.0 KiB\/s$/);
    bar.done();
    assert.ok(out.endsWith('\n'));
    const narrow = new ProgressBar(() => {}, 40, () => t);
    narrow.setTotal(1 << 20);
    narrow.update(1 << 19);
    assert.match(narrow.line(), /^50% 512\.0 KiB \/ 1\.00 MiB  [\d.]+ (B|KiB|MiB|GiB)\/s *$/);
    assert.equal(narrow.line().length, 39);
    t = 0;
    const open = new ProgressBar(() => {}, 60, () => t);
    t = 2000;
    open.update(3 << 20);
    assert.match(open.line(), /^3\.00 MiB {2}1\.50 MiB\/s *$/);
  });

  test('stopSignal: SIGINT resolves it, a second one calls onAgain, dispose removes the handlers', async (t) => {
    const before = process.listenerCount('SIGINT');
    if (before > 0) {
      t.skip('skipped: the test runner handles SIGINT in this process');
      return;
    }
    const s = stopSignal(undefined);
    assert.equal(process.listenerCount('SIGINT'), 1);
    assert.equal(process.listenerCount('SIGTERM'), 1);
    let again = 0;
    s.onAgain(() => again++);
    process.emit('SIGINT');
    assert.equal(await s.stopped, 'SIGINT');
    process.emit('SIGINT');
    assert.equal(again, 1);
    s.dispose();
    assert.equal(process.listenerCount('SIGINT'), 0);
    assert.equal(process.listenerCount('SIGTERM'), 0);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('the file server, over two synack stacks (MemoryLink, real time)', () => {
  const site = makeSite();
  test.after(() => site.cleanup());

  test('resolveTarget: files, folders, redirects, missing; ".." in every spelling and symlinks out refused', async () => {
    const { realpathSync } = await import('node:fs');
    const root = realpathSync(site.dir);
    const ok = await resolveTarget(root, '/hello.txt?x=1');
    assert.equal(ok.kind, 'path');
    assert.equal(ok.kind === 'path' && ok.size, 14);
    const sub = await resolveTarget(root, '/sub%20dir/');
    assert.equal(sub.kind === 'path' && sub.isDirectory, true);
    assert.deepEqual(await resolveTarget(root, '/sub%20dir?q'), { kind: 'redirect', location: '/sub%20dir/?q' });
    assert.equal((await resolveTarget(root, '/nothing-here')).kind, 'error');
    assert.equal((await resolveTarget(root, '/nothing-here') as { status: number }).status, 404);
    for (const bad of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/sub%20dir/../../secret.txt', '/leak.txt']) {
      const r = await resolveTarget(root, bad);
      assert.equal(r.kind, 'error', bad);
      assert.equal((r as { status: number }).status, 403, bad);
    }
    assert.equal(((await resolveTarget(root, '/%zz')) as { status: number }).status, 400);
    assert.equal(((await resolveTarget(root, '/a%00b')) as { status: number }).status, 400);
    assert.equal(((await resolveTarget(root, 'http://x/')) as { status: number }).status, 400);
  });

  test(`a ${BIG >> 20} MiB file streamed byte-identical; then 404, traversal, listing, HEAD, 405 on the same keep-alive connection`, async () => {
    const n = twoStacks('real');
    const svc = await startService(n.b, 8000, { kind: 'http', dir: site.dir });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const created: Socket[] = [];
    agent.createConnection = () => {
      const s = n.a.net.connect({ host: 'fd00::2', port: 8000 });
      created.push(s);
      return s;
    };
    const opts = { host: 'fd00::2', port: 8000, agent };
    try {
      const t0 = performance.now();
      const big = await n.run(request({ ...opts, path: '/big.bin' }), TIMEOUT_MS);
      const ms = performance.now() - t0;
      assert.equal(big.status, 200);
      assert.equal(big.headers['content-length'], String(BIG));
      assert.equal(big.headers['content-type'], 'application/octet-stream');
      assert.equal(big.body.length, BIG);
      assert.equal(sha256(big.body), sha256(site.big));
      console.log(`# ${BIG >> 20} MiB over a real-time MemoryLink in ${ms.toFixed(0)} ms (${(BIG * 8 / ms / 1e6).toFixed(2)} Gbit/s)`);

      const hello = await n.run(request({ ...opts, path: '/hello.txt' }));
      assert.equal(hello.status, 200);
      assert.equal(hello.body.toString(), 'hello, synack\n');
      assert.equal(hello.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(hello.reused, true, 'the second request went over the first connection');

      const missing = await n.run(request({ ...opts, path: '/no-such-file' }));
      assert.equal(missing.status, 404);
      for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/leak.txt']) {
        const r = await n.run(request({ ...opts, path }));
        assert.equal(r.status, 403, path);
        assert.doesNotMatch(r.body.toString(), /TOP SECRET/, path);
      }
      const redirect = await n.run(request({ ...opts, path: '/sub%20dir' }));
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.location, '/sub%20dir/');
      const list = await n.run(request({ ...opts, path: '/sub%20dir/' }));
      assert.equal(list.status, 200);
      assert.match(list.headers['content-type'] ?? '', /^text\/html/);
      assert.match(list.body.toString(), /<a href="a%26b\.html">a&#38;b\.html<\/a>/);
      assert.match(list.body.toString(), /<a href="\.\.\/">\.\.\/<\/a>/);
      const top = await n.run(request({ ...opts, path: '/' }));
      assert.match(top.body.toString(), /big\.bin.*\n.*hello\.txt.*\n.*leak\.txt.*\n.*sub%20dir\//);
      const head = await n.run(request({ ...opts, path: '/big.bin', method: 'HEAD' }));
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(BIG));
      assert.equal(head.body.length, 0);
      const post = await n.run(request({ ...opts, path: '/hello.txt', method: 'POST' }));
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');

      assert.equal(created.length, 1, 'every request went over one connection');
      const st = svc.stats();
      assert.equal(st.connections, 1);
      assert.equal(st.requests, 12);
      assert.deepEqual(st.statuses, { 200: 5, 301: 1, 403: 4, 404: 1, 405: 1 });
      assert.ok(st.bytesOut > BIG && st.bytesIn > 0, JSON.stringify(st));
    } finally {
      agent.destroy();
      svc.close();
    }
    await closeDown(n);
  });

  test('a client that goes away mid-file: the server stops reading the file and the connection ends', async () => {
    const n = twoStacks('real');
    const svc = await startService(n.b, 8000, { kind: 'http', dir: site.dir });
    let got = 0;
    await n.run(new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '10.0.0.2', port: 8000, path: '/big.bin', createConnection: () => n.a.net.connect({ host: '10.0.0.2', port: 8000 }) }, (res) => {
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 1 << 20) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (e) => {
        if (got <= 1 << 20) reject(e);
      });
    }), TIMEOUT_MS);
    // The server's side closes (its socket is gone from the open set) well before the file could
    // have been sent whole.
    await n.run(waitFor(() => svc.stats().open === 0), 10_000);
    assert.ok(svc.stats().bytesOut < BIG, `sent ${svc.stats().bytesOut} of ${BIG}`);
    svc.close();
    await closeDown(n);
  });
});

/** Resolves once `cond()` holds (polled every 5 ms; the caller bounds the wait). */
function waitFor(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const tick = (): void => {
      if (cond()) resolve();
      else setTimeout(tick, 5);
    };
    tick();
  });
}

/** Both stacks of a twoStacks('real') pair hold no connection but TIME-WAIT ones (which end in 2×100 ms). */
async function closeDown(n: Net2): Promise<void> {
  await n.run(waitFor(() => [...n.a.connections(), ...n.b.connections()].length === 0), 5000);
}

// ---------------------------------------------------------------------------------------------------

describe('synack serve, whole, on a MemoryLink end', () => {
  test('--echo --json: the listening line on stderr, echoes, stops on the signal with exit 0 and a JSON summary', async () => {
    const { peer, link } = peerAndLink();
    const stop = new AbortController();
    const c = capture();
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const exit = serveCommand(
      ['--tun', 'mem0', '--kernel-address', '10.0.0.2/24', '--address', '10.0.0.1/24', '--address', 'fd00::1/64', '--port', '7', '--echo', '--json'],
      c.io,
      { openLink: () => link, signal: stop.signal, onListening: () => listening() },
    );
    await within(ready);
    assert.equal(c.out(), '');
    assert.equal(c.err(), 'synack serve: echo on 10.0.0.1:7, [fd00::1]:7 via mem0; Ctrl-C stops\n');
    const data = pattern(300_000, 3);
    for (const host of ['10.0.0.1', 'fd00::1']) {
      const sock = peer.net.connect({ host, port: 7 });
      sock.end(data);
      const back = await within(collect(sock));
      assert.equal(sha256(back), sha256(data), host);
    }
    stop.abort();
    assert.equal(await within(exit), 0);
    const summary = JSON.parse(c.out()) as Record<string, unknown>;
    assert.equal(summary['ok'], true);
    assert.equal(summary['mode'], 'echo');
    assert.equal(summary['connections'], 2);
    assert.equal(summary['bytesIn'], 600_000);
    assert.equal(summary['bytesOut'], 600_000);
    assert.deepEqual(summary['addresses'], ['10.0.0.1/24', 'fd00::1/64']);
    assert.equal((summary['stack'] as { passiveOpens: number }).passiveOpens, 2);
    assert.equal(link.closed, true, 'the link was closed on exit');
    stopPeer(peer);
  });

  test('--discard: reads and drops; an open connection is closed with FIN on stop', async () => {
    const { peer, link } = peerAndLink();
    const stop = new AbortController();
    const c = capture();
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const exit = serveCommand(['--tun', 'mem0', '--address', '10.0.0.1', '--port', '9', '--discard', '--stats'], c.io,
      { openLink: () => link, signal: stop.signal, onListening: () => listening() });
    await within(ready);
    assert.equal(c.out(), 'synack serve: discard on 10.0.0.1:9 via mem0; Ctrl-C stops\n');
    const sock = peer.net.connect({ host: '10.0.0.1', port: 9 });
    const ended = new Promise<string>((resolve) => {
      sock.on('end', () => resolve('end'));
      sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    sock.resume();
    sock.write(pattern(100_000));
    await within(waitFor(() => sock.tcpInfo()?.bytesAcked !== undefined && (sock.tcpInfo()!.bytesAcked >= 100_000)));
    stop.abort();
    assert.equal(await within(ended), 'end', 'the server closed with FIN');
    assert.equal(await within(exit), 0);
    // --stats: the counters after the summary line, netstat -s style.
    const [summary, head, ...counters] = c.err().trimEnd().split('\n');
    assert.match(summary!, /^synack serve: stopped \(aborted\): 1 connection, 97\.7 KiB in, 0 B out$/);
    assert.equal(head, 'synack serve: counters');
    assert.ok(counters.includes('  passiveOpens 1'), counters.join('\n'));
    assert.ok(counters.includes('  internalErrors 0'));
    assert.ok(counters.some((l) => /^  tcpIn \d+$/.test(l)));
    assert.ok(counters.every((l) => /^  [A-Za-z]+(\.[a-z0-9-]+)? \d+$|^  drops \(none\)$/.test(l)), counters.join('\n'));
    sock.destroy();
    stopPeer(peer);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('synack get, whole, on a MemoryLink end', () => {
  const site = makeSite();
  test.after(() => site.cleanup());

  /** The peer stack serves `site.dir` on port 8000 (both families). */
  async function filePeer(): Promise<{ peer: Stack; link: CommandLink & { closed: boolean }; resets: string[]; close(): void }> {
    const { peer, link } = peerAndLink();
    const files = createFileServer(site.dir);
    const resets: string[] = [];
    const server = peer.net.createServer((sock) => {
      sock.on('error', (e: NodeJS.ErrnoException) => resets.push(e.code ?? 'error'));
      files.server.emit('connection', sock);
    });
    await new Promise<void>((r) => server.listen(8000, r));
    return { peer, link, resets, close: () => { server.close(); stopPeer(peer); } };
  }

  const TUN = ['--tun', 'mem0', '--address', '10.0.0.1/24', '--address', 'fd00::1/64'];

  test(`-o F over IPv6: ${BIG >> 20} MiB byte-identical, exit 0, --json summary, no progress bar when stderr is no terminal`, async () => {
    const p = await filePeer();
    const out = join(site.root, 'got.bin');
    const c = capture();
    const code = await within(getCommand(['http://[fd00::2]:8000/big.bin', ...TUN, '-o', out, '--json'], c.io,
      { openLink: () => p.link, stderrIsTTY: false }));
    assert.equal(c.err(), '');
    assert.equal(code, 0);
    const got = readFileSync(out);
    assert.equal(got.length, BIG);
    assert.equal(sha256(got), sha256(site.big));
    const summary = JSON.parse(c.out()) as { ok: boolean; status: number; bytes: number; contentLength: number; tcpInfo: { bytesReceived: number } };
    assert.equal(summary.ok, true);
    assert.equal(summary.status, 200);
    assert.equal(summary.bytes, BIG);
    assert.equal(summary.contentLength, BIG);
    assert.ok(summary.tcpInfo.bytesReceived > BIG);
    assert.equal(p.link.closed, true);
    assert.deepEqual(p.resets, []);
    p.close();
  });

  test('to stdout over IPv4 with a progress bar on a terminal stderr', async () => {
    const p = await filePeer();
    const chunks: Buffer[] = [];
    const stdout = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk); cb(); } });
    const c = capture();
    const code = await within(getCommand(['http://10.0.0.2:8000/hello.txt', ...TUN], c.io,
      { openLink: () => p.link, stdout, stderrIsTTY: true, stderrColumns: 70 }));
    assert.equal(code, 0);
    assert.equal(Buffer.concat(chunks).toString(), 'hello, synack\n');
    assert.equal(stdout.writableEnded, false, 'stdout is not ended');
    // Drawn as the body arrives, then once more when done, each time in place ('\r').
    assert.match(c.err(), /^(\r\[#+\] 100% 14 B \/ 14 B {2}[\d.]+ (B|KiB|MiB)\/s)+\n$/);
    assert.equal(c.out(), '');
    p.close();
  });

  test('HTTP 404: exit 1, one line, no file written', async () => {
    const p = await filePeer();
    const out = join(site.root, 'never.bin');
    const c = capture();
    assert.equal(await within(getCommand(['http://10.0.0.2:8000/missing', ...TUN, '-o', out], c.io, { openLink: () => p.link, stderrIsTTY: false })), 1);
    assert.equal(c.err(), 'synack get: HTTP 404 Not Found\n');
    assert.throws(() => readFileSync(out), /ENOENT/);
    p.close();
  });

  test('-o into a folder that does not exist: exit 1, one line naming the file error', async () => {
    const p = await filePeer();
    const c = capture();
    const bad = join(site.root, 'no-such-folder', 'f.bin');
    assert.equal(await within(getCommand(['http://10.0.0.2:8000/big.bin', ...TUN, '-o', bad], c.io, { openLink: () => p.link, stderrIsTTY: false })), 1);
    assert.equal(c.err(), `synack get: ENOENT: no such file or directory, open '${bad}'\n`);
    p.close();
  });

  test('ECONNREFUSED (no listener) and ETIMEDOUT (no one at the address): exit 1, one line naming the code', async () => {
    const p = await filePeer();
    const refused = capture();
    assert.equal(await within(getCommand(['http://10.0.0.2:81/', ...TUN], refused.io, { openLink: () => p.link, stderrIsTTY: false })), 1);
    assert.equal(refused.err(), 'synack get: connect ECONNREFUSED 10.0.0.2:81\n');
    p.close();
    const q = await filePeer();
    const silent = capture();
    const t0 = Date.now();
    assert.equal(await within(getCommand(['http://10.0.0.99:80/', ...TUN, '--timeout', '0.4'], silent.io, { openLink: () => q.link, stderrIsTTY: false })), 1);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(silent.err(), 'synack get: connect ETIMEDOUT 10.0.0.99: no answer in 0.4 s\n');
    q.close();
  });

  test('ECONNRESET mid-body: exit 1, the file reported incomplete', async () => {
    const { peer, link } = peerAndLink();
    const server = peer.net.createServer((sock) => {
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        sock.write(Buffer.alloc(5000, 1), () => setTimeout(() => sock.resetAndDestroy(), 20));
      });
    });
    await new Promise<void>((r) => server.listen(8000, r));
    const out = join(site.root, 'cut.bin');
    const c = capture();
    assert.equal(await within(getCommand(['http://10.0.0.2:8000/x', ...TUN, '-o', out], c.io, { openLink: () => link, stderrIsTTY: false })), 1);
    assert.equal(c.err(), `synack get: ECONNRESET: the connection was reset after 5000 of 100000 bytes of the body (${out} is incomplete)\n`);
    server.close();
    stopPeer(peer);
  });

  test('the server closes (FIN) before the end of the body: exit 1, PARTIAL, the file reported incomplete', async () => {
    const { peer, link } = peerAndLink();
    const server = peer.net.createServer((sock) => {
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        sock.end(Buffer.alloc(7000, 1));
      });
    });
    await new Promise<void>((r) => server.listen(8000, r));
    const out = join(site.root, 'short.bin');
    const c = capture();
    assert.equal(await within(getCommand(['http://10.0.0.2:8000/x', ...TUN, '-o', out, '--json'], c.io, { openLink: () => link, stderrIsTTY: false })), 1);
    assert.equal(c.err(), `synack get: the server closed the connection after 7000 of 100000 bytes of the body (${out} is incomplete)\n`);
    const summary = JSON.parse(c.out()) as { ok: boolean; code: string; bytes: number };
    assert.equal(summary.ok, false);
    assert.equal(summary.code, 'PARTIAL');
    assert.equal(summary.bytes, 7000);
    server.close();
    stopPeer(peer);
  });

  test('the server closes (FIN) or resets before any response: exit 1, EMPTY or ECONNRESET, no file', async () => {
    for (const [how, code, line] of [
      ['close', 'EMPTY', 'synack get: the server closed the connection without a response\n'],
      ['reset', 'ECONNRESET', 'synack get: ECONNRESET: the connection was reset before a response\n'],
    ] as const) {
      const { peer, link } = peerAndLink();
      const server = peer.net.createServer((sock) => {
        sock.on('error', () => {});
        sock.once('data', () => (how === 'close' ? sock.end() : sock.resetAndDestroy()));
      });
      await new Promise<void>((r) => server.listen(8000, r));
      const out = join(site.root, `none-${how}.bin`);
      const c = capture();
      assert.equal(await within(getCommand(['http://10.0.0.2:8000/x', ...TUN, '-o', out, '--json'], c.io, { openLink: () => link, stderrIsTTY: false })), 1);
      assert.equal(c.err(), line);
      assert.equal((JSON.parse(c.out()) as { code: string }).code, code);
      assert.throws(() => readFileSync(out), /ENOENT/);
      server.close();
      stopPeer(peer);
    }
  });

  test('interrupted mid-download: exit 1 at once, the server sees the connection reset', async () => {
    const p = await filePeer();
    const stop = new AbortController();
    const out = join(site.root, 'partial.bin');
    const c = capture();
    const code = getCommand(['http://10.0.0.2:8000/big.bin', ...TUN, '-o', out, '--json'], c.io,
      { openLink: () => p.link, signal: stop.signal, stderrIsTTY: false });
    await within(waitFor(() => {
      try {
        return readFileSync(out).length > 1 << 20;
      } catch {
        return false;
      }
    }));
    stop.abort();
    assert.equal(await within(code, 5000), 1);
    assert.match(c.err(), /^synack get: interrupted after [\d.]+ MiB of the body \(.*partial\.bin is incomplete\)\n$/);
    assert.ok(readFileSync(out).length < BIG);
    const summary = JSON.parse(c.out()) as { ok: boolean; code: string; stack: { rstOut: number } };
    assert.equal(summary.ok, false);
    assert.equal(summary.code, 'EINTR');
    // The GET was aborted with RST; segments still in flight to it each draw one more (RFC 9293 §3.10.7.1).
    assert.ok(summary.stack.rstOut >= 1, 'the GET was aborted with RST');
    // The server learns at once: its socket fails (EPIPE when the RST meets its pending write, as in Linux).
    await within(waitFor(() => p.resets.length > 0), 5000);
    assert.equal(p.resets.length, 1);
    assert.match(p.resets[0]!, /^(ECONNRESET|EPIPE)$/);
    p.close();
  });

  test('httpGet alone (the download logic): 2xx body to any writable, over a twoStacks pair', async () => {
    const n = twoStacks('real');
    const svc = await startService(n.b, 8000, { kind: 'http', dir: site.dir });
    const chunks: Buffer[] = [];
    let progress = 0;
    const r = await n.run(httpGet(n.a.net, parseGetUrl('http://10.0.0.2:8000/sub%20dir/a%26b.html'), {
      timeoutMs: 5000,
      openOutput: () => new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk); cb(); } }),
      onProgress: (b) => (progress = b),
    }));
    assert.equal(r.status, 200);
    assert.equal(r.bytes, 9);
    assert.equal(progress, 9);
    assert.equal(Buffer.concat(chunks).toString(), '<p>a</p>\n');
    svc.close();
    await closeDown(n);
  });
});

describe('serve and get together on one MemoryLink', () => {
  test('get fetches from serve --http, byte-identical; serve counts one connection and one request', async () => {
    const site = makeSite();
    const [la, lb] = MemoryLink.pair({ clock: new RealClock() });
    const serveLink = commandLink(lb, 'serve0');
    const getLink = commandLink(la, 'get0');
    const stop = new AbortController();
    const s = capture();
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const serving = serveCommand(['--tun', 'serve0', '--address', '10.9.0.2/24', '--port', '8000', '--http', site.dir, '--json'], s.io,
      { openLink: () => serveLink, signal: stop.signal, onListening: () => listening() });
    try {
      await within(ready);
      const out = join(site.root, 'copy.bin');
      const g = capture();
      assert.equal(await within(getCommand(['http://10.9.0.2:8000/big.bin', '--tun', 'get0', '--address', '10.9.0.1/24', '-o', out], g.io,
        { openLink: () => getLink, stderrIsTTY: false })), 0, g.err());
      assert.equal(sha256(readFileSync(out)), sha256(site.big));
      stop.abort();
      assert.equal(await within(serving), 0);
      const summary = JSON.parse(s.out()) as { connections: number; requests: number; bytesOut: number; statuses: Record<string, number> };
      assert.equal(summary.connections, 1);
      assert.equal(summary.requests, 1);
      assert.deepEqual(summary.statuses, { 200: 1 });
      assert.ok(summary.bytesOut > BIG);
    } finally {
      stop.abort();
      site.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// On real TUN devices, in a network namespace of the test's own (test/support/netns.ts)

/** The compiled commands, run as `node -e` shims (the same functions `synack serve|get` call). */
const DIST_CLI = join(repoRoot(), 'dist', 'src', 'cli');
const shim = (command: 'serve' | 'get'): string[] => [
  '--input-type=module', '-e',
  `import { nodeIO } from ${JSON.stringify(pathToFileURL(join(DIST_CLI, 'io.js')).href)};
   import { ${command}Command } from ${JSON.stringify(pathToFileURL(join(DIST_CLI, `${command}.js`)).href)};
   process.exitCode = await ${command}Command(process.argv.slice(1), nodeIO());`,
  '--',
];

const tunMissing = tunTestsMissing([join(DIST_CLI, 'serve.js'), join(DIST_CLI, 'get.js')]);

/**
 * The kernel's HTTP client: GETs each path on host:port over ONE connection (HTTP/1.1 keep-alive),
 * prints status, length and sha256 of each body as a JSON line.
 */
const FETCH_PY = `
import hashlib, http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, port, timeout=20)
out = []
for path in sys.argv[3:]:
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    out.append({"path": path, "status": r.status, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                "secret": b"TOP SECRET" in body})
print(json.dumps({"responses": out, "sockets": 1}))
`;

describe('on real TUN devices, in a network namespace', () => {
  const skip = tunMissing.length > 0 ? `skipped: needs ${tunMissing.join(', ')}` : false;
  if (skip !== false && process.env['CI'] === 'true') {
    test('TUN tests can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
    return;
  }

  test('serve --http to the kernel\'s client, get through the kernel from serve and from a kernel server; SIGINT exits 0', { skip, timeout: 90_000 }, async () => {
    const site = makeSite();
    try {
      await withNetns(async (ns) => {
        // The kernel forwards between the two TUN devices: get (10.8.0.2) → kernel → serve (10.9.0.2).
        await ns.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
        const serve = ns.start(process.execPath, [...shim('serve'), '--tun', 'synack0', '--kernel-address', '10.9.0.1/24',
          '--kernel-address', 'fd09::1/64', '--address', '10.9.0.2/24', '--address', 'fd09::2/64', '--port', '8000', '--http', site.dir, '--json', '--offload']);
        await within(waitFor(() => /synack serve: http .* on 10\.9\.0\.2:8000, \[fd09::2\]:8000 via synack0/.test(serve.stderr) || serve.exitStatus !== undefined), 15_000);
        assert.equal(serve.exitStatus, undefined, `serve exited: ${serve.stderr}`);

        // The kernel's client, over IPv4 and IPv6, several requests on one connection each.
        const want = sha256(site.big);
        for (const host of ['10.9.0.2', 'fd09::2']) {
          const r = await ns.run('python3', ['-c', FETCH_PY, host, '8000', '/big.bin', '/hello.txt', '/missing', '/../secret.txt', '/leak.txt'], { timeoutMs: 30_000 });
          assert.equal(r.status, 0, r.stderr);
          const { responses } = JSON.parse(r.stdout) as { responses: Array<{ status: number; length: number; sha256: string; secret: boolean }> };
          assert.deepEqual(responses.map((x) => x.status), [200, 200, 404, 403, 403], host);
          assert.equal(responses[0]!.length, BIG);
          assert.equal(responses[0]!.sha256, want, host);
          assert.ok(responses.every((x) => !x.secret));
        }

        // synack get, on its own TUN device, from synack serve through the kernel's forwarding.
        for (const url of ['http://10.9.0.2:8000/big.bin', 'http://[fd09::2]:8000/big.bin']) {
          const out = join(site.root, 'via-kernel.bin');
          const g = await ns.run(process.execPath, [...shim('get'), url, '--tun', 'synack1', '--kernel-address', '10.8.0.1/24',
            '--kernel-address', 'fd08::1/64', '--address', '10.8.0.2/24', '--address', 'fd08::2/64', '-o', out, '--json'], { timeoutMs: 30_000 });
          assert.equal(g.status, 0, `${url}: ${g.stderr}`);
          assert.equal((JSON.parse(g.stdout) as { bytes: number }).bytes, BIG);
          assert.equal(sha256(readFileSync(out)), want, url);
          rmSync(out);
        }

        // synack get from the kernel's own HTTP server, and its errors.
        const py = ns.start('python3', ['-m', 'http.server', '8001', '--bind', '::', '--directory', site.dir]);
        try {
          // With virtio-net offloads: the kernel's 64 KiB super-packets, partial checksums completed by the link.
          const getArgs = ['--tun', 'synack1', '--kernel-address', '10.8.0.1/24', '--address', '10.8.0.2/24', '--offload'];
          const out = join(site.root, 'from-kernel.bin');
          let g = await ns.run(process.execPath, [...shim('get'), 'http://10.8.0.1:8001/big.bin', ...getArgs, '-o', out], { timeoutMs: 30_000 });
          for (let i = 0; i < 20 && g.status !== 0 && /ECONNREFUSED/.test(g.stderr); i++) {
            // python may not be listening yet.
            await new Promise((r) => setTimeout(r, 250));
            g = await ns.run(process.execPath, [...shim('get'), 'http://10.8.0.1:8001/big.bin', ...getArgs, '-o', out], { timeoutMs: 30_000 });
          }
          assert.equal(g.status, 0, g.stderr);
          assert.equal(sha256(readFileSync(out)), want);
          const missing = await ns.run(process.execPath, [...shim('get'), 'http://10.8.0.1:8001/missing', ...getArgs], { timeoutMs: 30_000 });
          assert.equal(missing.status, 1);
          assert.match(missing.stderr, /^synack get: HTTP 404 .*\n$/);
          const refused = await ns.run(process.execPath, [...shim('get'), 'http://10.8.0.1:8002/', ...getArgs], { timeoutMs: 30_000 });
          assert.equal(refused.status, 1);
          assert.equal(refused.stderr, 'synack get: connect ECONNREFUSED 10.8.0.1:8002\n');
        } finally {
          await py.stop(2000);
        }

        serve.kill('SIGINT');
        const exit = await serve.waitExit(10_000);
        assert.deepEqual(exit, { code: 0, signal: null }, serve.stderr);
        const summary = JSON.parse(serve.lines.join('\n')) as {
          stoppedBy: string; connections: number; requests: number; statuses: Record<string, number>;
          link: { gsoPacketsOut: number; gsoSegmentsOut: number };
        };
        // --offload: the big files left as GSO super-packets of several segments each.
        assert.ok(summary.link.gsoPacketsOut > 0 && summary.link.gsoSegmentsOut > 2 * summary.link.gsoPacketsOut, JSON.stringify(summary.link));
        assert.equal(summary.stoppedBy, 'SIGINT');
        assert.equal(summary.connections, 4, 'two kernel connections, two from get');
        assert.equal(summary.requests, 12);
        assert.deepEqual(summary.statuses, { 200: 6, 403: 4, 404: 2 });
      });
    } finally {
      site.cleanup();
    }
  });
});
