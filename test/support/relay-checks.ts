/**
 * The checks the relay tests (test/cli/gateway-relay-*.test.ts) run whatever the upstream, against a
 * RelayLab whose gateway is up: each does the guest's side and the assertions every upstream must
 * pass, and returns what a test checks further for its own upstream. `label` names the upstream in
 * the diagnostics ('direct', 'Wisp').
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { writeFileSync } from 'node:fs';
import {
  BIG, SMALL, curl, fileDigest, isClose, isOpen, isRefused, mbytes, startCurl, startHttpServer, startManyClient, udpExchange,
  type CurlResult, type RelayLab,
} from './relay.js';
import type { GatewayEvent } from './gateway-process.js';

type Seen = GatewayEvent & { seenAt: number };

/** curl's connection lines (-v), for a diagnostic. */
const connectLines = (r: CurlResult): string => r.stderr.split('\n').filter((l) => /connect|curl:/i.test(l)).join(' | ');

/** Guest curl downloads big.bin through the host alias from guest port `localPort`, byte-identical; the relay's open and close events. */
export async function checkDownload(t: TestContext, lab: RelayLab, label: string, localPort: number): Promise<{ open: Seen; close: Seen }> {
  const out = lab.path('down.bin');
  const r = await curl(lab.guestNs, ['--max-time', '100', '--local-port', String(localPort), '-o', out, `http://10.0.2.2:${lab.http.port}/big.bin`]);
  assert.equal(r.exit, 0, `curl: ${r.stderr}`);
  assert.equal(r.http, 200);
  assert.deepEqual(await fileDigest(out), lab.big);
  t.diagnostic(`${label} download 64 MiB: ${mbytes(r.speedDown)} (${r.timeTotal.toFixed(2)} s)`);
  const open = await lab.gw.waitEvent(isOpen('tcp', lab.http.port, localPort), 5000, 'tcp open');
  const close = await lab.gw.waitEvent(isClose('tcp', open.id), 10_000, 'tcp close');
  assert.ok(Number(close.bytesIn) >= BIG, JSON.stringify(close));
  return { open, close };
}

/** Guest curl uploads big.bin (curl -T) through the host alias to the sink, byte-identical. */
export async function checkUpload(t: TestContext, lab: RelayLab, label: string): Promise<void> {
  const r = await curl(lab.guestNs, ['--max-time', '100', '-T', lab.path('www/big.bin'), `http://10.0.2.2:${lab.http.port}/upload`]);
  assert.equal(r.exit, 0, `curl: ${r.stderr}`);
  assert.equal(r.http, 200, r.body);
  const got = JSON.parse(r.body) as { sha256: string; length: number };
  assert.deepEqual({ sha256: got.sha256, length: got.length }, lab.big);
  t.diagnostic(`${label} upload 64 MiB: ${mbytes(r.speedUp)} (${r.timeTotal.toFixed(2)} s)`);
}

/** 10,000 datagrams to the UDP echo through the host alias, every byte checked, none lost or sent again; the relay's open event. */
export async function checkUdpEcho(t: TestContext, lab: RelayLab, label: string): Promise<Seen> {
  const r = await udpExchange(lab.guestNs, '10.0.2.2', lab.udp.port, 10_000, 110_000);
  t.diagnostic(`${label} UDP: 10,000 request-echo pairs in ${r.ms} ms (${(r.ms / 10_000 * 1000).toFixed(0)} µs each), resends ${r.resends}, lost ${r.lost}, stale ${r.stale}`);
  assert.equal(r.mismatched, 0, JSON.stringify(r));
  assert.equal(r.lost, 0, JSON.stringify(r));
  assert.equal(r.resends, 0, `a clean link loses nothing: ${JSON.stringify(r)}`);
  return lab.gw.waitEvent(isOpen('udp', lab.udp.port), 5000, 'udp open');
}

/** A connection the gateway cannot make: its URL, its destination in the `refused` event, and (optionally) the reason that event must give. */
export interface FailureCase {
  what: string;
  url: string;
  dest: string;
  reason?: RegExp;
}

/**
 * Failures are fast and clear: the host alias's port 9, where nothing listens in the gateway's
 * namespace, is "Connection refused" within a second; each case fails (not by curl's timeout)
 * within two, with a `refused` event.
 */
export async function checkFastFailures(t: TestContext, lab: RelayLab, cases: FailureCase[]): Promise<void> {
  // -v: curl 7.88 says only "Couldn't connect to server" on its error line; the errno is in the log.
  const refused = await curl(lab.guestNs, ['-v', '--max-time', '10', '-o', '/dev/null', 'http://10.0.2.2:9/']);
  t.diagnostic(`refused: curl exit ${refused.exit} in ${refused.wallMs} ms: ${connectLines(refused)}`);
  assert.equal(refused.exit, 7, refused.stderr);
  assert.match(refused.stderr, /Connection refused/);
  assert.ok(refused.wallMs < 1000, `refused after ${refused.wallMs} ms`);
  for (const c of cases) {
    const r = await curl(lab.guestNs, ['-v', '--max-time', '10', '-o', '/dev/null', c.url]);
    t.diagnostic(`${c.what}: curl exit ${r.exit} in ${r.wallMs} ms: ${connectLines(r)}`);
    assert.notEqual(r.exit, 0, `${c.what}: curl succeeded`);
    assert.notEqual(r.exit, 28, `${c.what}: curl timed out: ${r.stderr}`);
    assert.ok(r.wallMs < 2000, `${c.what}: failed after ${r.wallMs} ms`);
    const ev = await lab.gw.waitEvent(isRefused('tcp', c.dest), 5000, `tcp refused ${c.dest}`);
    t.diagnostic(`${c.what}: ${JSON.stringify(ev)}`);
    if (c.reason !== undefined) assert.match(String(ev.reason), c.reason);
  }
}

/**
 * Guest curl fetches the endless /slow from the host alias's `port` (from guest port `localPort`
 * when given); once the relay has opened it and half a second has passed, `kill()`: curl must fail,
 * not time out, within a second of the kill.
 */
export async function checkCurlFailsOnKill(
  t: TestContext, lab: RelayLab, what: string, port: number, kill: () => void, localPort?: number,
): Promise<void> {
  const local = localPort === undefined ? [] : ['--local-port', String(localPort)];
  const c = startCurl(lab.guestNs, ['--max-time', '30', ...local, '-o', '/dev/null', `http://10.0.2.2:${port}/slow`]);
  await lab.gw.waitEvent(isOpen('tcp', port, localPort), 10_000, 'tcp open');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(c.proc.exitStatus, undefined, `curl ended before the kill: ${c.proc.stderr}`);
  const killedAt = Date.now();
  kill();
  const r = await c.result();
  const ms = Date.now() - killedAt;
  t.diagnostic(`${what}: curl exit ${r.exit} ${ms} ms after the kill (${r.downloaded} bytes before): ${r.stderr}`);
  assert.notEqual(r.exit, 0);
  assert.notEqual(r.exit, 28, r.stderr);
  assert.ok(ms < 1000, `curl failed ${ms} ms after the kill`);
}

/** An HTTP server of the test's own in the gateway's namespace, killed mid-transfer: the guest's curl fails within a second. */
export async function checkUpstreamKilled(t: TestContext, lab: RelayLab, label: string): Promise<void> {
  const server = await startHttpServer(lab.gwNs, lab.www);
  lab.track(server.proc);
  await checkCurlFailsOnKill(t, lab, `upstream killed (${label})`, server.port, () => server.proc.kill('SIGKILL'));
}

/**
 * Guest curl uploads big.bin at 4 MB/s from guest port `localPort` and is killed mid-upload: the
 * relay's close event comes within 5 s, and the sink saw the body end early. The close event.
 */
export async function checkGuestKilledMidUpload(t: TestContext, lab: RelayLab, label: string, localPort: number): Promise<Seen> {
  const c = startCurl(lab.guestNs, ['--max-time', '60', '--limit-rate', '4M', '--local-port', String(localPort), '-T', lab.path('www/big.bin'), `http://10.0.2.2:${lab.http.port}/upload`]);
  const open = await lab.gw.waitEvent(isOpen('tcp', lab.http.port, localPort), 10_000, 'tcp open');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(c.proc.exitStatus, undefined, `curl ended before the kill: ${c.proc.stderr}`);
  const killedAt = Date.now();
  c.proc.kill('SIGKILL');
  await c.proc.waitExit(5000);
  const close = await lab.gw.waitEvent(isClose('tcp', open.id), 15_000, 'tcp close of the killed upload');
  const ms = close.seenAt - killedAt;
  t.diagnostic(`guest killed mid-upload (${label}): tcp-close ${ms} ms after the kill: ${JSON.stringify(close)}`);
  assert.ok(ms < 5000, `tcp-close ${ms} ms after the kill`);
  // The sink saw the body end early (EOF or reset), not a complete upload.
  const sink = await lab.http.proc.waitForLine(/^UPLOAD .*"complete": false/, 10_000);
  t.diagnostic(`the sink: ${sink}`);
  return close;
}

/**
 * 1,000 concurrent guest connections to the host alias, all open at once, then each fetches
 * small.bin: all succeed, and the gateway's heap with all open (its stats event) stays under 256 MiB.
 */
export async function checkManyConnections(t: TestContext, lab: RelayLab, label: string): Promise<void> {
  const idle = await lab.gw.stats();
  const go = lab.path('go-many');
  const client = lab.track(startManyClient(lab.guestNs, '10.0.2.2', lab.http.port, 1000, '/small.bin', go, lab.small));
  const line = await client.waitForLine(/^CONNECTED/, 90_000);
  const [, connected, , failed, , ms] = line.split(' ').map(Number);
  const peak = await lab.gw.stats();
  const st = (peak.stack ?? {}) as Record<string, unknown>;
  t.diagnostic(`SYNs while 1,000 connect: forwardedSyns ${String(st.forwardedSyns)}, forwardOverflows (over --max-pending) ${String(st.forwardOverflows)}, forwardSynRetransmits ${String(st.forwardSynRetransmits)}`);
  t.diagnostic(`1,000 connections (${label}): ${connected} open (${failed} failed) after ${ms} ms; heapUsed ${(idle.heapUsed / 2 ** 20).toFixed(1)} MiB before, ${(peak.heapUsed / 2 ** 20).toFixed(1)} MiB with all open; relay ${JSON.stringify(peak.relay)}`);
  writeFileSync(go, '');
  const exit = await client.waitExit(120_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `client: ${client.stderr}`);
  const result = JSON.parse(client.lines[client.lines.length - 1] ?? '{}') as { ok: number; failed: number; fetchMs: number; errors: string[] };
  const after = await lab.gw.stats();
  t.diagnostic(`1,000 fetches of ${SMALL} bytes (${label}): ${result.ok} ok in ${result.fetchMs} ms; heapUsed after ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB`);
  assert.equal(connected, 1000, line);
  assert.equal(result.ok, 1000, JSON.stringify(result));
  assert.ok(peak.heapUsed < 256 * 2 ** 20, `heapUsed ${peak.heapUsed} with 1,000 connections`);
}
