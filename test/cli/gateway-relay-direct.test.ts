/**
 * `synack gateway --upstream direct` (issue 15) against real Linux peers: the guest is the kernel
 * behind the TAP device in a namespace of the test's own (10.0.2.15, routed through 10.0.2.2, its
 * names from the gateway's DNS 10.0.2.3); the gateway runs in a second namespace that has nothing
 * but loopback — plus TEST-NET addresses on its lo (192.0.2.10, 192.0.2.11, 2001:db8::10) where the
 * test's servers listen, and a dnsmasq on 127.0.0.1 as its resolver — so the direct upstream can
 * reach those servers and nothing else (any other destination: "network unreachable"). Checked:
 *  - curl in the guest downloads and uploads 64 MiB through the host alias (10.0.2.2:P → the gateway
 *    namespace's 127.0.0.1:P), byte-identical (sha256 on both sides), MB/s reported;
 *  - a name only dnsmasq knows (files.test) resolves to its real addresses, A and AAAA, and curl
 *    connects to it by name over IPv4 and IPv6;
 *  - 10,000 UDP datagrams echoed by a server there, every byte checked, none lost;
 *  - failures fast and clear: refused (< 1 s, "Connection refused"), denied by --deny and by the
 *    default policy, unreachable (< 2 s); the upstream server killed mid-transfer (the guest's curl
 *    fails within a second); the guest's curl killed mid-upload (the gateway closes the relayed
 *    connection within seconds);
 *  - --forward tcp and udp: curl in the gateway's namespace downloads 64 MiB from an http.server
 *    inside the guest, and a UDP echo there answers;
 *  - 1,000 concurrent guest connections, all open at once, each fetching a small file: all succeed;
 *    the gateway's heap then (SIGUSR1 stats event) is reported and bounded;
 *  - the guest link impaired (2% loss, 20 ms delay, 5% reordering, both ways): 64 MiB still
 *    byte-identical.
 * Needs root, curl, dig, dnsmasq, python3; skipped otherwise (a failure under CI=true).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MAIN } from '../support/gateway-process.js';
import { tunTestsMissing } from '../support/netns.js';
import {
  BIG, RelayLab, curl, fileDigest, mbytes, relayToolsMissing, startHttpServer, startUdpEcho, udpExchange, isOpen, exitCounters,
} from '../support/relay.js';
import {
  checkDownload, checkFastFailures, checkGuestKilledMidUpload, checkManyConnections, checkUdpEcho, checkUpload, checkUpstreamKilled,
} from '../support/relay-checks.js';

const missing = [...tunTestsMissing([MAIN]), ...relayToolsMissing()];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;
if (skip !== false && process.env['CI'] === 'true') {
  test('gateway relay tests (direct) can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
}

/** The guest's ports for --forward (inside its own namespace: no clash). */
const GUEST_HTTP = 8080;
const GUEST_UDP = 8081;

// The impaired download takes minutes (2% loss and 40 ms of round trip hold any TCP sender to a few
// hundred kB/s: Mathis et al., MSS/RTT × 1.22/√p), so it runs beside the other tests, each with a
// gateway, a TAP and namespaces of its own; it is light on the CPU.
describe('synack gateway --upstream direct', { skip, concurrency: 2 }, () => {
  describe('with a Linux guest', { concurrency: false }, () => {
    const lab = new RelayLab();

    before(async () => {
      await lab.setUp();
      await lab.startGateway([
        '--upstream', 'direct', '--stats',
        '--deny', '192.0.2.11/32',
        '--forward', `tcp:127.0.0.1:0-:${GUEST_HTTP}`,
        '--forward', `udp:127.0.0.1:0-:${GUEST_UDP}`,
      ]);
    });

    after(async () => {
      const stderr = await lab.destroy();
      if (stderr !== undefined) process.stderr.write(`gateway-relay-direct: ${exitCounters(stderr)}\n`);
    });

    test('the up event names the direct upstream and the bound forwards', () => {
      const up = lab.gw.up;
      assert.equal(up.upstream, 'direct');
      const fw = up.forwards ?? [];
      assert.equal(fw.length, 2, JSON.stringify(up));
      for (const [proto, gp] of [['tcp', GUEST_HTTP], ['udp', GUEST_UDP]] as const) {
        const f = fw.find((x) => x.protocol === proto);
        assert.ok(f !== undefined, `${proto} forward in ${JSON.stringify(up)}`);
        assert.equal(f.host, '127.0.0.1');
        assert.ok(Number.isInteger(f.port) && f.port > 0, JSON.stringify(f));
        assert.match(f.guest, new RegExp(`:${gp}$`));
      }
    });

    test('guest curl downloads 64 MiB through the host alias, byte-identical', { timeout: 120_000 }, async (t: TestContext) => {
      const { open, close } = await checkDownload(t, lab, 'direct', 41001);
      assert.equal(open.upstream, 'direct');
      assert.equal(open.target, `127.0.0.1:${lab.http.port}`);
      assert.equal(close.error ?? null, null, JSON.stringify(close));
    });

    test('guest curl uploads 64 MiB (curl -T) to a sink through the host alias, byte-identical', { timeout: 120_000 }, (t: TestContext) => checkUpload(t, lab, 'direct'));

    test('DNS: a name only the upstream resolver knows, A and AAAA, then curl by name over IPv4 and IPv6', { timeout: 60_000 }, async (t: TestContext) => {
      const a = await lab.guestNs.check('dig', ['+tries=1', '+time=3', '+short', '@10.0.2.3', 'files.test', 'A'], { timeoutMs: 15_000 });
      assert.equal(a.trim(), '192.0.2.10');
      const aaaa = await lab.guestNs.check('dig', ['+tries=1', '+time=3', '+short', '@10.0.2.3', 'files.test', 'AAAA'], { timeoutMs: 15_000 });
      assert.equal(aaaa.trim(), '2001:db8::10');
      for (const family of ['-4', '-6']) {
        const out = lab.path(`small${family}.bin`);
        const r = await curl(lab.guestNs, ['--max-time', '20', family, '-o', out, `http://files.test:${lab.http.port}/small.bin`]);
        assert.equal(r.exit, 0, `curl ${family} by name: ${r.stderr}`);
        assert.equal(r.http, 200);
        assert.deepEqual(await fileDigest(out), lab.small);
        t.diagnostic(`curl ${family} http://files.test:${lab.http.port}/small.bin: ${(r.timeTotal * 1000).toFixed(0)} ms (name lookup included)`);
      }
      const opens = lab.gw.events().filter(isOpen('tcp', lab.http.port));
      assert.ok(opens.some((e) => e.target === `192.0.2.10:${lab.http.port}`), JSON.stringify(opens));
      assert.ok(opens.some((e) => e.target === `[2001:db8::10]:${lab.http.port}` || e.target === `2001:db8::10:${lab.http.port}`), JSON.stringify(opens));
    });

    test('UDP: 10,000 datagrams echoed through the gateway, every byte checked', { timeout: 120_000 }, async (t: TestContext) => {
      const open = await checkUdpEcho(t, lab, 'direct');
      t.diagnostic(`udp-open: ${JSON.stringify(open)}`);
      assert.equal(open.target, `127.0.0.1:${lab.udp.port}`);
    });

    // Refused: nothing listens on 127.0.0.1:9 in the gateway's namespace, a RST from the kernel there
    // passed on to the guest at once.
    test('failures are fast and clear: refused, denied, default-denied, unreachable', { timeout: 60_000 }, (t: TestContext) =>
      checkFastFailures(t, lab, [
        { what: '--deny 192.0.2.11/32', url: `http://192.0.2.11:${lab.http.port}/small.bin`, dest: `192.0.2.11:${lab.http.port}`, reason: /policy/ },
        { what: 'default-denied 10.9.9.9 (private)', url: 'http://10.9.9.9:80/', dest: '10.9.9.9:80', reason: /policy/ },
        { what: 'unreachable 198.51.100.1 (no route there)', url: 'http://198.51.100.1:80/', dest: '198.51.100.1:80', reason: /unreachable|ENETUNREACH/i },
      ]));

    test('the upstream server killed mid-transfer: the guest\'s curl fails within a second', { timeout: 60_000 }, (t: TestContext) => checkUpstreamKilled(t, lab, 'direct'));

    test('the guest\'s curl killed mid-upload: the gateway closes the relayed connection within seconds', { timeout: 60_000 }, async (t: TestContext) => {
      const close = await checkGuestKilledMidUpload(t, lab, 'direct', 41002);
      assert.ok(Number(close.bytesOut) > 0 && Number(close.bytesOut) < BIG, JSON.stringify(close));
    });

    test('--forward tcp: curl in the gateway namespace downloads 64 MiB from an http.server in the guest', { timeout: 120_000 }, async (t: TestContext) => {
      const inGuest = await startHttpServer(lab.guestNs, lab.www, GUEST_HTTP);
      lab.track(inGuest.proc);
      const fw = (lab.gw.up.forwards ?? []).find((f) => f.protocol === 'tcp');
      assert.ok(fw !== undefined);
      const out = lab.path('fwd.bin');
      const r = await curl(lab.gwNs, ['--max-time', '100', '-o', out, `http://127.0.0.1:${fw.port}/big.bin`]);
      assert.equal(r.exit, 0, `curl: ${r.stderr}`);
      assert.equal(r.http, 200);
      assert.deepEqual(await fileDigest(out), lab.big);
      t.diagnostic(`--forward tcp, 64 MiB from the guest: ${mbytes(r.speedDown)} (${r.timeTotal.toFixed(2)} s)`);
    });

    test('--forward udp: a UDP echo in the guest answers 1,000 datagrams, every byte checked', { timeout: 60_000 }, async (t: TestContext) => {
      lab.track((await startUdpEcho(lab.guestNs, GUEST_UDP)).proc);
      const fw = (lab.gw.up.forwards ?? []).find((f) => f.protocol === 'udp');
      assert.ok(fw !== undefined);
      const r = await udpExchange(lab.gwNs, '127.0.0.1', fw.port, 1000, 50_000);
      t.diagnostic(`--forward udp: 1,000 request-echo pairs in ${r.ms} ms, resends ${r.resends}, lost ${r.lost}`);
      assert.equal(r.mismatched, 0, JSON.stringify(r));
      assert.equal(r.lost, 0, JSON.stringify(r));
    });

    test('1,000 concurrent guest connections, all open at once, each fetch a small file; the heap stays bounded', { timeout: 180_000 }, (t: TestContext) => checkManyConnections(t, lab, 'direct'));
  });

  describe('on an impaired link', () => {
    const lab = new RelayLab();

    before(async () => {
      await lab.setUp();
      await lab.startGateway(['--upstream', 'direct', '--loss', '0.02', '--delay', '20', '--reorder', '0.05', '--seed', '15']);
    });

    after(async () => {
      await lab.destroy();
    });

    test('2% loss, 20 ms delay and 5% reordering each way: the 64 MiB download is still byte-identical', { timeout: 330_000 }, async (t: TestContext) => {
      const out = lab.path('down-impaired.bin');
      const r = await curl(lab.guestNs, ['--max-time', '300', '-o', out, `http://10.0.2.2:${lab.http.port}/big.bin`]);
      assert.equal(r.exit, 0, `curl: ${r.stderr}`);
      assert.deepEqual(await fileDigest(out), lab.big);
      t.diagnostic(`impaired download 64 MiB: ${mbytes(r.speedDown)} (${r.timeTotal.toFixed(1)} s)`);
    });
  });
});
