/**
 * `synack gateway --upstream ws://…` (issue 15): the way out is a real Wisp server —
 * `@mercuryworkshop/wisp-js`'s, started by the test on 127.0.0.1 in the gateway's namespace with
 * loopback and private destinations allowed — and the guest is the Linux kernel behind the TAP
 * device in a namespace of its own (see gateway-relay-direct.test.ts for the lab: the gateway's
 * namespace has only loopback, the TEST-NET addresses where the test's servers listen, and a
 * dnsmasq as the resolver, which here is the Wisp server's). Checked:
 *  - curl in the guest downloads and uploads 64 MiB through the host alias (the Wisp server
 *    connects to its own 127.0.0.1:P), byte-identical both ways, MB/s reported;
 *  - fake-IP DNS: a name only dnsmasq knows resolves in the guest to an address of 198.18.0.0/15,
 *    and curl by that name reaches the server (the CONNECT goes out by name; wisp-js resolves it);
 *  - 10,000 UDP datagrams echoed through Wisp UDP streams, every byte checked, none lost;
 *  - failures fast and clear: refused (< 1 s, "Connection refused"), unreachable and blocked by the
 *    Wisp server's own policy (< 2 s); the upstream server killed mid-transfer (the guest's curl
 *    fails within a second); the guest's curl killed mid-upload (the stream closed within seconds);
 *  - 1,000 concurrent guest connections (1,000 Wisp streams on one WebSocket), each fetching a
 *    small file: all succeed; the heap reported;
 *  - the Wisp server itself killed mid-transfer: the guest's curl fails within a second.
 * Needs root, curl, dig, dnsmasq, python3 and node_modules/@mercuryworkshop/wisp-js; skipped
 * otherwise (a failure under CI=true).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { tunTestsMissing } from '../support/netns.js';
import {
  BIG, MAIN, RelayLab, SMALL, WISP_SERVER, curl, fileDigest, mbytes, relayToolsMissing, startCurl, startHttpServer,
  startManyClient, startWispServer, udpExchange, isClose, isOpen, isRefused, exitCounters,
} from '../support/relay.js';
import type { Server } from '../support/relay.js';

const missing = [...tunTestsMissing([MAIN]), ...relayToolsMissing(), ...(existsSync(WISP_SERVER) ? [] : ['@mercuryworkshop/wisp-js (npm ci)'])];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;
if (skip !== false && process.env['CI'] === 'true') {
  test('gateway relay tests (Wisp) can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
}

/** A port the Wisp server refuses by its own policy (port_blacklist): its CLOSE reason, not ours. */
const WISP_BLOCKED_PORT = 7;


/** Whether an IPv4 address is in 198.18.0.0/15 (RFC 2544's benchmarking range, the fake-IP pool). */
const inFakePool = (ip: string): boolean => /^198\.(18|19)\.\d{1,3}\.\d{1,3}$/.test(ip);

describe('synack gateway --upstream ws:// (wisp-js server) with a Linux guest', { skip, concurrency: false }, () => {
  const lab = new RelayLab();
  let wisp: Server;

  before(async () => {
    // HTTP/1.1, the connection kept open after each answer. wisp-js 0.5.0's server loses data when
    // the destination closes while it is held back: it buffers up to 32 MiB for the WebSocket
    // (AsyncWebSocket.send_buffer_size) and then queues what the destination sends (NodeTCPSocket's
    // data_queue); on the destination's close, AsyncQueue.close() empties that queue, and the
    // stream's tcp_to_ws loop then waits in recv() for ever — the client gets neither the rest nor
    // a CLOSE. A gateway that lets the guest set the pace (the whole point of backpressure) holds
    // the server back whenever the destination is faster than the guest: a 64 MiB download from a
    // server that closes at once after it (HTTP/1.0) stalls at ~40 MB. Keep-alive leaves the
    // destination open until curl has it all, which is what the test is about.
    await lab.setUp({ keepAlive: true });
    wisp = await startWispServer(lab.gwNs, { port_blacklist: [WISP_BLOCKED_PORT] });
    lab.track(wisp.proc);
    await lab.startGateway(['--upstream', `ws://127.0.0.1:${wisp.port}/`, '--stats']);
  });

  after(async () => {
    const stderr = await lab.destroy();
    if (stderr !== undefined) process.stderr.write(`gateway-relay-wisp: ${exitCounters(stderr)}\n`);
  });

  test('the up event names the Wisp upstream', () => {
    assert.match(String(lab.gw.up.upstream), new RegExp(`ws://127\\.0\\.0\\.1:${wisp.port}/`), JSON.stringify(lab.gw.up));
  });

  test('guest curl downloads 64 MiB through Wisp, byte-identical', { timeout: 120_000 }, async (t: TestContext) => {
    const out = lab.path('down.bin');
    const r = await curl(lab.guestNs, ['--max-time', '100', '--local-port', '42001', '-o', out, `http://10.0.2.2:${lab.http.port}/big.bin`]);
    assert.equal(r.exit, 0, `curl: ${r.stderr}`);
    assert.equal(r.http, 200);
    assert.deepEqual(await fileDigest(out), lab.big);
    t.diagnostic(`Wisp download 64 MiB: ${mbytes(r.speedDown)} (${r.timeTotal.toFixed(2)} s)`);
    const open = await lab.gw.waitEvent(isOpen('tcp', lab.http.port, 42001), 5000, 'tcp open');
    t.diagnostic(`tcp-open: ${JSON.stringify(open)}`);
    const close = await lab.gw.waitEvent(isClose('tcp', open.id), 10_000, 'tcp close');
    assert.ok(Number(close.bytesIn) >= BIG, JSON.stringify(close));
  });

  test('guest curl uploads 64 MiB (curl -T) through Wisp to a sink, byte-identical', { timeout: 120_000 }, async (t: TestContext) => {
    const r = await curl(lab.guestNs, ['--max-time', '100', '-T', lab.path('www/big.bin'), `http://10.0.2.2:${lab.http.port}/upload`]);
    assert.equal(r.exit, 0, `curl: ${r.stderr}`);
    assert.equal(r.http, 200, r.body);
    const got = JSON.parse(r.body) as { sha256: string; length: number };
    assert.deepEqual({ sha256: got.sha256, length: got.length }, lab.big);
    t.diagnostic(`Wisp upload 64 MiB: ${mbytes(r.speedUp)} (${r.timeTotal.toFixed(2)} s)`);
  });

  test('DNS by fake IPs: a name only the resolver behind Wisp knows gets a 198.18.0.0/15 address, and curl reaches it', { timeout: 60_000 }, async (t: TestContext) => {
    const a = (await lab.guestNs.check('dig', ['+tries=1', '+time=3', '+short', '@10.0.2.3', 'files.test', 'A'], { timeoutMs: 15_000 })).trim();
    t.diagnostic(`files.test A → ${a}`);
    assert.ok(inFakePool(a), `files.test → ${JSON.stringify(a)}, not in 198.18.0.0/15`);
    // The same name again: the same fake address (the mapping is remembered).
    const again = (await lab.guestNs.check('dig', ['+tries=1', '+time=3', '+short', '@10.0.2.3', 'files.test', 'A'], { timeoutMs: 15_000 })).trim();
    assert.equal(again, a);
    const out = lab.path('small-by-name.bin');
    const r = await curl(lab.guestNs, ['--max-time', '20', '-4', '-o', out, `http://files.test:${lab.http.port}/small.bin`]);
    assert.equal(r.exit, 0, `curl by name: ${r.stderr}`);
    assert.equal(r.http, 200);
    assert.deepEqual(await fileDigest(out), lab.small);
    t.diagnostic(`curl -4 http://files.test:${lab.http.port}/small.bin through Wisp: ${(r.timeTotal * 1000).toFixed(0)} ms (name lookup included)`);
    const open = await lab.gw.waitEvent((e) => isOpen('tcp', lab.http.port)(e) && String(e.destination).startsWith(`${a}:`), 5000, 'tcp open to the fake IP');
    t.diagnostic(`tcp-open: ${JSON.stringify(open)}`);
    assert.equal(open.target, `files.test:${lab.http.port}`, 'the CONNECT goes out by name');
  });

  test('UDP: 10,000 datagrams echoed through Wisp, every byte checked', { timeout: 120_000 }, async (t: TestContext) => {
    const r = await udpExchange(lab.guestNs, '10.0.2.2', lab.udp.port, 10_000, 110_000);
    t.diagnostic(`Wisp UDP: 10,000 request-echo pairs in ${r.ms} ms (${(r.ms / 10_000 * 1000).toFixed(0)} µs each), resends ${r.resends}, lost ${r.lost}, stale ${r.stale}`);
    assert.equal(r.mismatched, 0, JSON.stringify(r));
    assert.equal(r.lost, 0, JSON.stringify(r));
    assert.equal(r.resends, 0, `a clean link loses nothing: ${JSON.stringify(r)}`);
    await lab.gw.waitEvent(isOpen('udp', lab.udp.port), 5000, 'udp open');
  });

  test('failures are fast and clear: refused, unreachable, blocked by the Wisp server', { timeout: 60_000 }, async (t: TestContext) => {
    // -v: curl 7.88 says only "Couldn't connect to server" on its error line; the errno is in the log.
    const refused = await curl(lab.guestNs, ['-v', '--max-time', '10', '-o', '/dev/null', 'http://10.0.2.2:9/']);
    t.diagnostic(`refused: curl exit ${refused.exit} in ${refused.wallMs} ms: ${refused.stderr.split('\n').filter((l) => /connect|curl:/i.test(l)).join(' | ')}`);
    assert.equal(refused.exit, 7, refused.stderr);
    assert.match(refused.stderr, /Connection refused/);
    assert.ok(refused.wallMs < 1000, `refused after ${refused.wallMs} ms`);
    const cases = [
      { what: 'unreachable 198.51.100.1 (no route in the Wisp server\'s namespace)', url: 'http://198.51.100.1:80/', dest: '198.51.100.1:80' },
      { what: `blocked by wisp-js (port_blacklist ${WISP_BLOCKED_PORT})`, url: `http://10.0.2.2:${WISP_BLOCKED_PORT}/`, dest: `10.0.2.2:${WISP_BLOCKED_PORT}` },
      { what: 'default-denied 10.9.9.9 (our policy, before Wisp)', url: 'http://10.9.9.9:80/', dest: '10.9.9.9:80' },
    ];
    for (const c of cases) {
      const r = await curl(lab.guestNs, ['-v', '--max-time', '10', '-o', '/dev/null', c.url]);
      t.diagnostic(`${c.what}: curl exit ${r.exit} in ${r.wallMs} ms: ${r.stderr.split('\n').filter((l) => /connect|curl:/i.test(l)).join(' | ')}`);
      assert.notEqual(r.exit, 0, `${c.what}: curl succeeded`);
      assert.notEqual(r.exit, 28, `${c.what}: curl timed out: ${r.stderr}`);
      assert.ok(r.wallMs < 2000, `${c.what}: failed after ${r.wallMs} ms`);
      const ev = await lab.gw.waitEvent(isRefused('tcp', c.dest), 5000, `tcp refused ${c.dest}`);
      t.diagnostic(`${c.what}: ${JSON.stringify(ev)}`);
    }
  });

  test('the upstream server killed mid-transfer: the guest\'s curl fails within a second', { timeout: 60_000 }, async (t: TestContext) => {
    const server = await startHttpServer(lab.gwNs, lab.www);
    lab.track(server.proc);
    const c = startCurl(lab.guestNs, ['--max-time', '30', '-o', '/dev/null', `http://10.0.2.2:${server.port}/slow`]);
    await lab.gw.waitEvent(isOpen('tcp', server.port), 10_000, 'tcp open');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.proc.exitStatus, undefined, `curl ended before the kill: ${c.proc.stderr}`);
    const killedAt = Date.now();
    server.proc.kill('SIGKILL');
    const r = await c.result();
    const ms = Date.now() - killedAt;
    t.diagnostic(`upstream killed (behind Wisp): curl exit ${r.exit} ${ms} ms after the kill (${r.downloaded} bytes before): ${r.stderr}`);
    assert.notEqual(r.exit, 0);
    assert.notEqual(r.exit, 28, r.stderr);
    assert.ok(ms < 1000, `curl failed ${ms} ms after the kill`);
  });

  test('the guest\'s curl killed mid-upload: the gateway closes the Wisp stream within seconds', { timeout: 60_000 }, async (t: TestContext) => {
    const c = startCurl(lab.guestNs, ['--max-time', '60', '--limit-rate', '4M', '--local-port', '42002', '-T', lab.path('www/big.bin'), `http://10.0.2.2:${lab.http.port}/upload`]);
    const open = await lab.gw.waitEvent(isOpen('tcp', lab.http.port, 42002), 10_000, 'tcp open');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(c.proc.exitStatus, undefined, `curl ended before the kill: ${c.proc.stderr}`);
    const killedAt = Date.now();
    c.proc.kill('SIGKILL');
    await c.proc.waitExit(5000);
    const close = await lab.gw.waitEvent(isClose('tcp', open.id), 15_000, 'tcp close of the killed upload');
    const ms = close.seenAt - killedAt;
    t.diagnostic(`guest killed mid-upload (Wisp): tcp-close ${ms} ms after the kill: ${JSON.stringify(close)}`);
    assert.ok(ms < 5000, `tcp-close ${ms} ms after the kill`);
    const sink = await lab.http.proc.waitForLine(/^UPLOAD .*"complete": false/, 10_000);
    t.diagnostic(`the sink: ${sink}`);
  });

  test('1,000 concurrent guest connections through one Wisp WebSocket, each fetch a small file; the heap stays bounded', { timeout: 180_000 }, async (t: TestContext) => {
    const idle = await lab.gw.stats();
    const go = lab.path('go-many');
    const client = lab.track(startManyClient(lab.guestNs, '10.0.2.2', lab.http.port, 1000, '/small.bin', go, lab.small));
    const line = await client.waitForLine(/^CONNECTED/, 90_000);
    const [, connected, , failed, , ms] = line.split(' ').map(Number);
    const peak = await lab.gw.stats();
    const st = (peak.stack ?? {}) as Record<string, unknown>;
    t.diagnostic(`SYNs while 1,000 connect: forwardedSyns ${String(st.forwardedSyns)}, forwardOverflows (over --max-pending) ${String(st.forwardOverflows)}, forwardSynRetransmits ${String(st.forwardSynRetransmits)}`);
    t.diagnostic(`1,000 connections through Wisp: ${connected} open (${failed} failed) after ${ms} ms; heapUsed ${(idle.heapUsed / 2 ** 20).toFixed(1)} MiB before, ${(peak.heapUsed / 2 ** 20).toFixed(1)} MiB with all open`);
    writeFileSync(go, '');
    const exit = await client.waitExit(120_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `client: ${client.stderr}`);
    const result = JSON.parse(client.lines[client.lines.length - 1] ?? '{}') as { ok: number; failed: number; fetchMs: number; errors: string[] };
    const after = await lab.gw.stats();
    t.diagnostic(`1,000 fetches of ${SMALL} bytes through Wisp: ${result.ok} ok in ${result.fetchMs} ms; heapUsed after ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(connected, 1000, line);
    assert.equal(result.ok, 1000, JSON.stringify(result));
    assert.ok(peak.heapUsed < 256 * 2 ** 20, `heapUsed ${peak.heapUsed} with 1,000 connections`);
  });

  // Last: the gateway has no way out afterwards.
  test('the Wisp server itself killed mid-transfer: the guest\'s curl fails within a second', { timeout: 60_000 }, async (t: TestContext) => {
    const c = startCurl(lab.guestNs, ['--max-time', '30', '--local-port', '42003', '-o', '/dev/null', `http://10.0.2.2:${lab.http.port}/slow`]);
    await lab.gw.waitEvent(isOpen('tcp', lab.http.port, 42003), 10_000, 'tcp open');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.proc.exitStatus, undefined, `curl ended before the kill: ${c.proc.stderr}`);
    const killedAt = Date.now();
    wisp.proc.kill('SIGKILL');
    const r = await c.result();
    const ms = Date.now() - killedAt;
    t.diagnostic(`Wisp server killed: curl exit ${r.exit} ${ms} ms after the kill (${r.downloaded} bytes before): ${r.stderr}`);
    assert.notEqual(r.exit, 0);
    assert.notEqual(r.exit, 28, r.stderr);
    assert.ok(ms < 1000, `curl failed ${ms} ms after the kill`);
    // And a new connection now fails fast instead of hanging.
    const next = await curl(lab.guestNs, ['--max-time', '10', '-o', '/dev/null', `http://10.0.2.2:${lab.http.port}/small.bin`]);
    t.diagnostic(`a new connection with the Wisp server gone: curl exit ${next.exit} in ${next.wallMs} ms: ${next.stderr}`);
    assert.notEqual(next.exit, 0);
    assert.ok(next.wallMs < 2000, `failed after ${next.wallMs} ms`);
  });
});
