/**
 * `synack draw` on real Linux captures: in two network namespaces of the test's own joined by a veth
 * pair, `python3 -m http.server` serves and `curl` downloads while `tcpdump -U -w` records — once on
 * the veth (Ethernet) and once on `-i any` (Linux cooked v2) at the same time. The real CLI
 * (dist/src/cli/main.js draw --format json) must infer the right states for both sides, whichever
 * side closes first:
 * - server first: HTTP/1.0 (http.server's default) closes after the reply; the file is large and curl
 *   reads it slowly, so the server's FIN goes out long before curl is done: the server ends in
 *   TIME-WAIT, the client goes CLOSE-WAIT → LAST-ACK.
 * - client first: `--protocol HTTP/1.1` keeps the connection open for another request; curl closes it
 *   when it has the reply: the client ends in TIME-WAIT, the server goes CLOSE-WAIT → LAST-ACK.
 * Needs root (namespaces), tcpdump, python3 and curl; skipped otherwise (a failure under CI=true).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, isRoot, withNetns, type Netns, type NsProcess } from '../support/netns.js';

/** The CLI compiled beside this test (dist/test/cli → dist/src/cli). */
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const missing: string[] = [];
if (!isRoot()) missing.push('root');
if (!have('tcpdump', ['--version'])) missing.push('tcpdump');
if (!have('python3', ['--version'])) missing.push('python3');
if (!have('curl', ['--version'])) missing.push('curl');
if (!have('ip', ['-V'])) missing.push('iproute2');
if (!existsSync(MAIN)) missing.push('the compiled CLI (run tsc first)');
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (skip !== false && process.env['CI'] === 'true') {
  test('draw on real Linux captures can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
}

const CLIENT = '10.77.0.1';
const SERVER = '10.77.0.2';
const PORT = 8000;

interface DrawJson {
  endpoints: Array<{ name: string; address: string; port: number; states: Array<{ t: number; state: string; cause: string; rfc: string; assumed?: boolean }> }>;
  segments: Array<{ t: number; from: string; flags: string[]; seq: number; ack: number; marks?: string[]; options: string[]; dataOffset?: number }>;
  inferred: boolean;
  capture: { warnings: string[] };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait (bounded) until `p`'s stderr matches `re`. */
async function waitStderr(p: NsProcess, re: RegExp, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(p.stderr)) {
    if (p.exitStatus !== undefined) throw new Error(`exited early: ${p.stderr.trim()}`);
    if (Date.now() > end) throw new Error(`no ${re} on stderr within ${timeoutMs} ms: ${p.stderr.trim()}`);
    await sleep(50);
  }
}

function veth(client: Netns, server: Netns): void {
  const ip = (args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  ip(['link', 'add', 'vc', 'netns', client.name, 'type', 'veth', 'peer', 'name', 'vs', 'netns', server.name]);
  ip(['-n', client.name, 'addr', 'add', `${CLIENT}/24`, 'dev', 'vc']);
  ip(['-n', server.name, 'addr', 'add', `${SERVER}/24`, 'dev', 'vs']);
  ip(['-n', client.name, 'link', 'set', 'vc', 'up']);
  ip(['-n', server.name, 'link', 'set', 'vs', 'up']);
}

/** Run one download with two tcpdumps in `where` (on `dev`, and on `any` as SLL2); the two files. */
async function captureDownload(
  t: TestContext,
  o: { dir: string; http11: boolean; file: string; curlArgs: string[]; captureIn: 'client' | 'server' },
): Promise<{ ethernet: string; sll2: string }> {
  return withNetns(async (client, server) => {
    veth(client, server);
    const where = o.captureIn === 'client' ? client : server;
    const dev = o.captureIn === 'client' ? 'vc' : 'vs';
    const ethernet = join(o.dir, `${o.captureIn}-veth.pcap`);
    const sll2 = join(o.dir, `${o.captureIn}-any.pcap`);
    const filter = ['tcp', 'port', String(PORT)];
    const td1 = where.start('tcpdump', ['-U', '--immediate-mode', '-B', '32768', '-n', '-i', dev, '-w', ethernet, ...filter]);
    const td2 = where.start('tcpdump', ['-U', '--immediate-mode', '-B', '32768', '-n', '-i', 'any', '-y', 'LINUX_SLL2', '-w', sll2, ...filter]);
    await waitStderr(td1, /listening on/, 10_000);
    await waitStderr(td2, /listening on/, 10_000);
    const srv = server.start('python3', ['-u', '-m', 'http.server', '--bind', SERVER, '--directory', o.dir, ...(o.http11 ? ['--protocol', 'HTTP/1.1'] : []), String(PORT)]);
    await srv.waitForLine(/Serving HTTP/, 10_000);
    const r = await client.run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', ...o.curlArgs, `http://${SERVER}:${PORT}/${o.file}`], { timeoutMs: 30_000 });
    assert.equal(r.status, 0, `curl: ${r.stderr}`);
    t.diagnostic(`curl: ${r.stdout}`);
    // Let the last ACK pass, then stop tcpdump cleanly (SIGINT; --immediate-mode hands each packet
    // over at once instead of in ring-buffer blocks, and -U writes each one as it comes).
    await sleep(500);
    await srv.stop();
    for (const td of [td1, td2]) {
      td.kill('SIGINT');
      const e = await td.waitExit(5000);
      assert.ok(e !== undefined, 'tcpdump stopped');
      t.diagnostic(td.stderr.trim().split('\n').join(' | '));
    }
    return { ethernet, sll2 };
  }, 2);
}

function draw(file: string): DrawJson {
  const r = spawnSync(process.execPath, [MAIN, 'draw', file, '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `synack draw ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout) as DrawJson;
}

function linkType(file: string): number {
  return readFileSync(file).readUInt32LE(20) & 0xffff;
}

const ACTIVE_CLOSE = ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'];
const PASSIVE_CLOSE_CLIENT = ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'];
const PASSIVE_CLOSE_SERVER = ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'];
const ACTIVE_CLOSE_SERVER = ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'];

function check(t: TestContext, file: string, serverFirst: boolean): void {
  const m = draw(file);
  assert.equal(m.inferred, true);
  const client = m.endpoints.find((e) => e.address === CLIENT);
  const server = m.endpoints.find((e) => e.address === SERVER && e.port === PORT);
  assert.ok(client !== undefined && server !== undefined, m.endpoints.map((e) => e.name).join(', '));
  assert.equal(m.endpoints[0], client, 'the side that sent the SYN comes first');
  assert.equal(server.name, `${SERVER}:${PORT}`);
  // Who closed first, read off the segments themselves.
  const firstFin = m.segments.find((s) => s.flags.includes('FIN'));
  assert.equal(firstFin?.from, serverFirst ? server.name : client.name, 'the intended side closed first');
  const cs = client.states.map((s) => s.state);
  const ss = server.states.map((s) => s.state);
  t.diagnostic(`${file}: client ${cs.join(' → ')}; server ${ss.join(' → ')}`);
  assert.deepEqual(cs, serverFirst ? PASSIVE_CLOSE_CLIENT : ACTIVE_CLOSE);
  assert.deepEqual(ss, serverFirst ? ACTIVE_CLOSE_SERVER : PASSIVE_CLOSE_SERVER);
  const closer = serverFirst ? server : client;
  const last = closer.states[closer.states.length - 1]!;
  assert.equal(last.assumed, true, 'the TIME-WAIT expiry is assumed');
  assert.ok(Math.abs(last.t - closer.states[closer.states.length - 2]!.t - 60) < 1e-6);
  for (const ep of [client, server]) {
    for (let k = 2; k < ep.states.length; k++) assert.ok(ep.states[k]!.t >= ep.states[k - 1]!.t, `${ep.name} states in time order`);
  }
  // The header length is the capture's own: Linux's SYN and SYN,ACK carry MSS, SACK_PERM, TS, NOP
  // and WS (40 bytes of header); its other segments TS and two NOPs (32), plus 12 with a SACK block.
  const [syn, synAck] = m.segments;
  assert.deepEqual([syn!.flags, syn!.dataOffset, synAck!.flags, synAck!.dataOffset], [['SYN'], 40, ['SYN', 'ACK'], 40]);
  for (const s of m.segments.slice(2)) {
    const sack = s.options.filter((o) => o.startsWith('SACK=')).length;
    assert.equal(s.dataOffset, 32 + (sack > 0 ? 4 + 8 * sack : 0), `${s.flags.join(',')} ${s.options.join(' ')}`);
  }
  assert.deepEqual(m.capture.warnings, [], 'nothing left out of a capture in the test\'s own namespaces');
}

test('draw, real Linux capture: the server closes first (HTTP/1.0) — captured at the server on veth (Ethernet) and any (SLL2)', { skip, timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-draw-linux-'));
  try {
    // 1 MiB read at 1 MB/s: the server has written it all and closed long before curl is through.
    writeFileSync(join(dir, 'big.bin'), new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff));
    const f = await captureDownload(t, { dir, http11: false, file: 'big.bin', curlArgs: ['--limit-rate', '1M'], captureIn: 'server' });
    assert.equal(linkType(f.ethernet), 1, 'veth capture is Ethernet');
    assert.equal(linkType(f.sll2), 276, 'any capture is SLL2');
    check(t, f.ethernet, true);
    check(t, f.sll2, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('draw, real Linux capture: the client closes first (HTTP/1.1 keep-alive) — captured at the client on veth (Ethernet) and any (SLL2)', { skip, timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-draw-linux-'));
  try {
    writeFileSync(join(dir, 'index.html'), '<p>hello from http.server</p>\n');
    const f = await captureDownload(t, { dir, http11: true, file: 'index.html', curlArgs: [], captureIn: 'client' });
    assert.equal(linkType(f.ethernet), 1);
    assert.equal(linkType(f.sll2), 276);
    check(t, f.ethernet, false);
    check(t, f.sll2, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
