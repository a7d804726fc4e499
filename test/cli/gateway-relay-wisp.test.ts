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
import { existsSync } from 'node:fs';
import { MAIN } from '../support/gateway-process.js';
import { tunTestsMissing } from '../support/netns.js';
import { RelayLab, WISP_SERVER, curl, fileDigest, relayToolsMissing, startWispServer, isOpen, exitCounters } from '../support/relay.js';
import {
  checkCurlFailsOnKill, checkDownload, checkFastFailures, checkGuestKilledMidUpload, checkManyConnections, checkUdpEcho, checkUpload,
  checkUpstreamKilled,
} from '../support/relay-checks.js';
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
    const { open } = await checkDownload(t, lab, 'Wisp', 42001);
    t.diagnostic(`tcp-open: ${JSON.stringify(open)}`);
  });

  test('guest curl uploads 64 MiB (curl -T) through Wisp to a sink, byte-identical', { timeout: 120_000 }, (t: TestContext) => checkUpload(t, lab, 'Wisp'));

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
    await checkUdpEcho(t, lab, 'Wisp');
  });

  test('failures are fast and clear: refused, unreachable, blocked by the Wisp server', { timeout: 60_000 }, (t: TestContext) =>
    checkFastFailures(t, lab, [
      { what: 'unreachable 198.51.100.1 (no route in the Wisp server\'s namespace)', url: 'http://198.51.100.1:80/', dest: '198.51.100.1:80' },
      { what: `blocked by wisp-js (port_blacklist ${WISP_BLOCKED_PORT})`, url: `http://10.0.2.2:${WISP_BLOCKED_PORT}/`, dest: `10.0.2.2:${WISP_BLOCKED_PORT}` },
      { what: 'default-denied 10.9.9.9 (our policy, before Wisp)', url: 'http://10.9.9.9:80/', dest: '10.9.9.9:80' },
    ]));

  test('the upstream server killed mid-transfer: the guest\'s curl fails within a second', { timeout: 60_000 }, (t: TestContext) => checkUpstreamKilled(t, lab, 'Wisp'));

  test('the guest\'s curl killed mid-upload: the gateway closes the Wisp stream within seconds', { timeout: 60_000 }, async (t: TestContext) => {
    await checkGuestKilledMidUpload(t, lab, 'Wisp', 42002);
  });

  test('1,000 concurrent guest connections through one Wisp WebSocket, each fetch a small file; the heap stays bounded', { timeout: 180_000 }, (t: TestContext) => checkManyConnections(t, lab, 'Wisp'));

  // Last: the gateway has no way out afterwards.
  test('the Wisp server itself killed mid-transfer: the guest\'s curl fails within a second', { timeout: 60_000 }, async (t: TestContext) => {
    await checkCurlFailsOnKill(t, lab, 'Wisp server killed', lab.http.port, () => wisp.proc.kill('SIGKILL'), 42003);
    // And a new connection now fails fast instead of hanging.
    const next = await curl(lab.guestNs, ['--max-time', '10', '-o', '/dev/null', `http://10.0.2.2:${lab.http.port}/small.bin`]);
    t.diagnostic(`a new connection with the Wisp server gone: curl exit ${next.exit} in ${next.wallMs} ms: ${next.stderr}`);
    assert.notEqual(next.exit, 0);
    assert.ok(next.wallMs < 2000, `failed after ${next.wallMs} ms`);
  });
});
