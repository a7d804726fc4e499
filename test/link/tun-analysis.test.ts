/**
 * synack on a real TUN device, judged by others: Wireshark's TCP analysis of a capture of clean
 * transfers with the kernel, and undici (Node's HTTP client) running over synack sockets against the
 * kernel's python HTTP server. Each test makes a fresh network namespace (test/support/netns.ts) and
 * runs test/link/fixtures/tun-peer.js inside it: a TunLink `synack0`, the kernel at 10.9.0.1/24 and
 * fd09::1/64, a synack Stack at 10.9.0.2/24 and fd09::2/64. Needs root (and tshark for the capture);
 * skipped otherwise, a failure under CI=true.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { have, lastJson, python, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns, NsProcess } from '../support/netns.js';
import { repoRoot } from '../support/repo.js';

const PEER = join(repoRoot(), 'dist', 'test', 'link', 'fixtures', 'tun-peer.js');
const NODE = process.execPath;
const MiB = 1024 * 1024;

const missing = tunTestsMissing([PEER]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;
// tshark reads the captures; dumpcap (its capture engine, same package) writes them without
// dissecting every packet, so the capture takes little CPU from the transfer it watches.
const haveTshark = have('tshark', ['--version']) && have('dumpcap', ['--version']);
const skipTshark = skip || (haveTshark ? false : 'skipped: needs tshark');

if (process.env['CI'] === 'true') {
  const cannot = [...missing, ...(haveTshark ? [] : ['tshark'])];
  if (cannot.length > 0) {
    test('TUN analysis tests can run (required under CI)', () => {
      assert.fail(`TUN analysis tests need ${cannot.join(', ')}: under CI=true a skip is a failure`);
    });
  }
}

// ---------------------------------------------------------------------------------------- python

/** Sends N bytes to host:port, half-closes, reads to EOF, closes; prints the byte count. */
const UPLOAD_PY = `
import json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(range(256)) * 256
s = socket.create_connection((host, port), timeout=20)
left = n
while left > 0:
    left -= s.send(memoryview(chunk)[:min(left, len(chunk))])
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16):
    pass
s.close()
print(json.dumps({"sent": n}))
`;

/** Connects to host:port, reads to EOF, closes; prints the count and whether byte i was i mod 251. */
const DOWNLOAD_PY = `
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=20)
got = bytearray()
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    got += b
s.close()
want = bytes(i % 251 for i in range(len(got)))
print(json.dumps({"received": len(got), "pattern": bytes(got) == want}))
`;

/** One UDP datagram to host:5 — only something for the capture to see. */
const PROBE_PY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"probe", (sys.argv[1], 5))
`;

// ---------------------------------------------------------------------------------------- helpers


/** A display filter for what the kernel sent (its end of the link). */
const FROM_KERNEL = '(ip.src == 10.9.0.1 || ipv6.src == fd09::1)';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lines of `tshark -r` output (`timeoutMs` bounded), failing on a non-zero exit. */
async function tshark(ns: Netns, args: string[]): Promise<string[]> {
  const r = await ns.run('tshark', ['-n', '-o', 'tcp.check_checksum:TRUE', ...args], { timeoutMs: 60_000 });
  assert.equal(r.status, 0, `tshark ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/**
 * Starts `dumpcap -i synack0 -w file` and returns once it demonstrably captures: dumpcap counts what
 * it has written on stderr ("Packets: N"), and a UDP probe sent to the device is awaited there.
 */
async function startCapture(ns: Netns, file: string): Promise<NsProcess> {
  const cap = ns.start('dumpcap', ['-n', '-i', 'synack0', '-w', file]);
  for (let i = 0; i < 40; i++) {
    if (cap.exitStatus !== undefined) throw new Error(`dumpcap exited: ${cap.stderr}`);
    if (/Capturing on/.test(cap.stderr)) {
      await python(ns, PROBE_PY, ['10.9.0.2'], 5000);
      for (let j = 0; j < 10; j++) {
        if (/Packets: [1-9]/.test(cap.stderr)) return cap;
        await sleep(50);
      }
    } else {
      await sleep(250);
    }
  }
  throw new Error(`dumpcap never counted the probe; stderr: ${cap.stderr}`);
}

// ---------------------------------------------------------------------------------------- tests

// A kernel sender with a microsecond RTT can send a whole 64 KiB window while synack is still
// processing its first batch of TUN packets, before the application has read anything: Wireshark
// flagged "Window Full" in every run until the stack's first window became 256 KiB
// (src/stack/options.ts). Later in a transfer the kernel may still fill the window when synack is
// the slower side; see the comment at the assertion.
test('TUN: Wireshark\'s TCP analysis of 1 MiB each way between the kernel and synack flags nothing but window updates (and the kernel filling our window); every checksum is good', {
  skip: skipTshark, timeout: 120_000,
}, async (t: TestContext) => {
  // SYNACK_KEEP_CAPTURE=DIR keeps the capture there (DIR/synack0.pcapng), for a look in Wireshark.
  const keep = process.env['SYNACK_KEEP_CAPTURE'];
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'synack-capture-'));
  const file = join(dir, 'synack0.pcapng');
  try {
    await withNetns(async (ns) => {
      const peer = ns.start(NODE, [PEER, '--peer', '--mode', 'transfer', '--bytes', String(MiB)]);
      await peer.waitForLine(/^ready$/, 15_000);
      const cap = await startCapture(ns, file);

      for (const target of ['10.9.0.2', 'fd09::2']) {
        const up = lastJson<{ sent: number }>(await python(ns, UPLOAD_PY, [target, '9', String(MiB)], 30_000));
        assert.equal(up.sent, MiB);
        const down = lastJson<{ received: number; pattern: boolean }>(await python(ns, DOWNLOAD_PY, [target, '19'], 30_000));
        assert.deepEqual(down, { received: MiB, pattern: true }, target);
      }
      // synack counted every byte, and all four connections closed on its side too (their last ACKs are in the capture).
      const closedAll = async (): Promise<void> => {
        for (let i = 0; i < 40; i++) {
          const closed = peer.lines.filter((l) => l.startsWith('closed ')).length;
          if (closed >= 4) return;
          await sleep(100);
        }
        assert.fail(`synack closed only: ${peer.lines.join(' | ')}`);
      };
      await closedAll();
      assert.deepEqual(peer.lines.filter((l) => l.startsWith('discarded ')), [`discarded ${MiB}`, `discarded ${MiB}`]);
      await sleep(300);

      cap.kill('SIGINT');
      assert.notEqual(await cap.waitExit(10_000), undefined, 'dumpcap stopped');
      const exit = await peer.stop(5000);
      assert.deepEqual(exit, { code: 0, signal: null }, peer.stderr);

      // Every TCP segment's checksum verified Good (tcp.checksum.status 1), in both directions.
      const sums = await tshark(ns, ['-r', file, '-Y', 'tcp', '-T', 'fields', '-e', 'frame.number', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'tcp.checksum.status']);
      assert.ok(sums.length > (4 * MiB) / 1500, `only ${sums.length} TCP frames captured`);
      const notGood = sums.filter((l) => l.split('\t')[3] !== '1');
      assert.deepEqual(notGood, [], 'frames whose TCP checksum is not Good (frame, src, src6, status)');
      const fromSynack = sums.filter((l) => /\t(10\.9\.0\.2|fd09::2)\t/.test(l)).length;
      assert.ok(fromSynack > 700, `only ${fromSynack} segments from synack`);

      // Wireshark's expert analysis: nothing but window updates — and "Window Full" on the kernel's
      // segments, when it happens: the kernel sends faster than synack reads, and what it has sent
      // waits in the device's queue (500 packets); the window is what keeps that queue from
      // overflowing. That note is flow control doing its job, on the sender's side; everything else
      // (retransmissions, duplicate ACKs, zero windows, out-of-order or lost segments) must be absent.
      const all = await tshark(ns, ['-r', file, '-Y', 'tcp.analysis.flags', '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message']);
      const kernelFull = await tshark(ns, ['-r', file, '-Y', `tcp.analysis.window_full && ${FROM_KERNEL}`, '-T', 'fields', '-e', 'frame.number']);
      t.diagnostic(`${sums.length} TCP frames; tcp.analysis.flags on ${all.length}: ${all.slice(0, 10).join(' | ')}`);
      t.diagnostic(`window full on the kernel's segments (synack the slower side): ${kernelFull.length}`);
      const flagged = await tshark(ns, ['-r', file, '-Y', `tcp.analysis.flags && !tcp.analysis.window_update && !(tcp.analysis.window_full && ${FROM_KERNEL})`,
        '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message']);
      if (flagged.length > 0) {
        const frames = flagged.slice(0, 5).map((l) => Number(l.split('\t')[0]));
        const around = frames.map((n) => `frame.number >= ${n - 3} && frame.number <= ${n + 1}`).join(' || ');
        const context = await tshark(ns, ['-r', file, '-Y', around]);
        assert.fail(`tshark flagged ${flagged.length} frames:\n${flagged.slice(0, 40).join('\n')}\naround the first ones:\n${context.join('\n')}`);
      }
    });
  } finally {
    if (keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
});

test('TUN: undici over synack sockets GETs from the kernel\'s python http.server, IPv4 and IPv6, 1 MiB byte-identical, two requests on one connection', { skip, timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-undici-'));
  try {
    const big = randomBytes(MiB);
    const small = Buffer.from('hello from the kernel\n');
    writeFileSync(join(dir, 'big.bin'), big);
    writeFileSync(join(dir, 'hello.txt'), small);
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

    await withNetns(async (ns) => {
      // HTTP/1.1, so that the connection is kept alive between requests (http.server's default is 1.0).
      const py = ns.start('python3', ['-u', '-m', 'http.server', '8001', '--bind', '::', '--protocol', 'HTTP/1.1', '--directory', dir]);
      await py.waitForLine(/^Serving HTTP/, 10_000);
      const r = await ns.run(NODE, [PEER, '--peer', '--mode', 'undici', '--url', 'http://10.9.0.1:8001', '--url', 'http://[fd09::1]:8001',
        '--path', '/big.bin', '--path', '/hello.txt'], { timeoutMs: 60_000 });
      assert.equal(r.timedOut, false, `the undici peer timed out; stderr: ${r.stderr}`);
      assert.equal(r.status, 0, `the undici peer exited ${r.status ?? r.signal}: ${r.stderr}`);
      const line = r.stdout.split('\n').find((l) => l.startsWith('result '));
      assert.ok(line !== undefined, `no result: ${r.stdout} ${r.stderr}`);
      const results = JSON.parse(line.slice('result '.length)) as Array<{
        url: string; connections: number; localPorts: number[];
        responses: Array<{ path: string; status: number; length: number; sha256: string }>;
      }>;
      assert.deepEqual(results.map((x) => x.url), ['http://10.9.0.1:8001', 'http://[fd09::1]:8001']);
      for (const x of results) {
        assert.deepEqual(x.responses, [
          { path: '/big.bin', status: 200, length: MiB, sha256: sha(big) },
          { path: '/hello.txt', status: 200, length: small.length, sha256: sha(small) },
        ], x.url);
        assert.equal(x.connections, 1, `${x.url}: both requests on one connection (keep-alive); local ports ${x.localPorts.join(', ')}`);
      }
      // The kernel's server logged both requests from each family's synack address.
      await py.stop(2000);
      const log = py.stderr;
      assert.equal((log.match(/10\.9\.0\.2 .*"GET \/big\.bin HTTP\/1\.1" 200/g) ?? []).length, 1, log);
      assert.equal((log.match(/fd09::2 .*"GET \/hello\.txt HTTP\/1\.1" 200/g) ?? []).length, 1, log);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
