/**
 * `synack gateway` (issue 14, the LAN half) against real Linux peers. Two namespaces of the test's
 * own: the gateway runs in `gw`, which has nothing but loopback, a resolv.conf naming the test's
 * dnsmasq on 127.0.0.1 there (the upstream for names synack does not know) and nothing else; the
 * TAP device's kernel side is moved into `guest`, where Debian's own tools are the guest:
 *  - busybox udhcpc and ISC dhclient each obtain a lease, and get the address, router and DNS server
 *    synack offered; RELEASE frees the address (synack reports it); a pool of one address, taken,
 *    offers nothing to a second client (counted, reported);
 *  - ping and ping -6 reach the gateway; `ip neigh` shows synack's MAC; the guest configures an IPv6
 *    address by SLAAC from synack's Router Advertisement and learns its DNS server (RFC 8106);
 *  - dig: A, AAAA and PTR of static names over UDP and TCP; names forwarded to dnsmasq, NXDOMAIN
 *    included; an answer larger than 1,500 bytes (EDNS0, IP fragments towards the guest); and a
 *    truncated one that dig retries over TCP.
 * Needs root, busybox, dhclient, dig, dnsmasq, ping; skipped otherwise (a failure under CI=true).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GatewayProcess, MAIN } from '../support/gateway-process.js';
import { DhcpClientFiles, missingTools, parseLeaseLine, startDnsmasq } from '../support/lan.js';
import { Netns, tunTestsMissing } from '../support/netns.js';

const missing = [...tunTestsMissing([MAIN]), ...missingTools(['busybox', 'dhclient', 'dig', 'dnsmasq', 'ping'])];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;
if (skip !== false && process.env['CI'] === 'true') {
  test('gateway kernel tests can run (required under CI)', () => assert.fail(`${skip}: under CI=true a skip is a failure`));
}

/** A device name of this run's own: two runs at once must not share a TAP. */
const tapName = (): string => `sgw${randomBytes(4).toString('hex')}`;

/** A TXT string of 200 bytes: eight of them make an answer over 1,500 bytes. */
const TXT = 'x'.repeat(200);
const BIG_TXT_COUNT = 8;

describe('synack gateway with Linux guests', { skip, concurrency: false }, () => {
  let gwNs: Netns;
  let guestNs: Netns;
  let gateway: GatewayProcess;
  let files: DhcpClientFiles;
  const TAP = tapName();

  before(async () => {
    // The gateway's namespace: loopback only; its resolver is the test's dnsmasq there.
    gwNs = Netns.create({ resolvConf: 'nameserver 127.0.0.1\n' });
    guestNs = Netns.create();
    files = new DhcpClientFiles();
    await startDnsmasq(gwNs, [
      '--listen-address=127.0.0.1', '--bind-interfaces', '--port=53',
      // dnsmasq is authoritative-ish for .test: unknown names there are NXDOMAIN, not REFUSED.
      '--local=/test/', '--local-ttl=300',
      '--host-record=fwd.test,192.0.2.10,2001:db8::10',
      ...Array.from({ length: BIG_TXT_COUNT }, (_, i) => `--txt-record=big.test,${i}${TXT}`),
    ]);
    gateway = await GatewayProcess.start(gwNs, guestNs, TAP, [
      '--dhcp', '--dns', '--dns-record', 'host.lan=10.0.2.2', '--dns-record', 'host.lan=fd00:0:0:2::2',
      '--dns-record', 'printer.lan=10.0.2.9',
    ]);
  });

  after(async () => {
    await gateway?.stop().catch(() => undefined);
    files?.dispose();
    await guestNs?.destroy();
    await gwNs?.destroy();
  });

  /**
   * A client sends its RELEASE unicast to the server through the kernel, then its script flushes the
   * address at once. If the kernel had still to ARP for the server, removing the interface's last
   * address flushes the neighbour table with the queued RELEASE in it (fib_disable_ip → arp_ifdown):
   * a Linux-side race that the clients' own Debian scripts share, lost whenever synack's ARP reply
   * takes longer than the script. A real guest has talked through its gateway by then; so does the
   * test, with one ping, so the RELEASE goes out at once.
   */
  const guestKnowsGateway = async (): Promise<void> => {
    const ping = await guestNs.run('ping', ['-c', '1', '-W', '2', '10.0.2.2'], { timeoutMs: 10_000 });
    assert.equal(ping.status, 0, `ping the gateway: ${ping.stdout} ${ping.stderr}`);
  };

  test('busybox udhcpc gets the lease synack offers, and RELEASE frees it', async (t: TestContext) => {
    const started = Date.now();
    // -R: release the lease on SIGTERM (with -q busybox exits before it counts itself bound, and
    // releases nothing).
    const client = guestNs.start('busybox', files.udhcpcArgs(TAP, ['-R']));
    let exit;
    try {
      const line = await client.waitForLine(/^LEASE udhcpc-bound/, 30_000);
      const ms = Date.now() - started;
      const lease = parseLeaseLine(line);
      assert.equal(lease.ip, '10.0.2.15');
      assert.equal(lease.mask, '24');
      assert.equal(lease.router, '10.0.2.2');
      assert.deepEqual(lease.dns, ['10.0.2.3']);
      assert.equal(lease.lease, 86400);
      assert.equal(lease.mtu, 1500);
      t.diagnostic(`udhcpc: lease in ${ms} ms (process start to bound)`);
      await guestKnowsGateway();
    } finally {
      client.kill('SIGTERM');
      exit = await client.waitExit(10_000);
    }
    assert.notEqual(exit, undefined, 'udhcpc exits on SIGTERM');
    const granted = await gateway.waitEvent((e) => e.event === 'lease' && e.address === '10.0.2.15', 15_000, 'lease');
    const released = await gateway.waitEvent((e) => e.event === 'release' && e.address === '10.0.2.15', 15_000, 'release');
    assert.equal(released.mac, granted.mac);
  });

  test('ISC dhclient gets a lease with the same address, router and DNS server', async (t: TestContext) => {
    const started = Date.now();
    const client = guestNs.start('dhclient', files.dhclientArgs(TAP));
    try {
      const line = await client.waitForLine(/^LEASE dhclient-(BOUND|REBOOT)/, 30_000);
      const ms = Date.now() - started;
      const lease = parseLeaseLine(line);
      // Another client to the server (dhclient sends no client identifier, udhcpc does): it gets
      // an address of the pool (not necessarily the released one: RFC 2131 §4.3.1 has a server
      // keep a client's old address for it when it can).
      assert.match(lease.ip, /^10\.0\.2\.(1[5-9]|[2-9]\d|1\d\d|2[0-4]\d|25[0-4])$/);
      assert.equal(lease.mask, '255.255.255.0');
      assert.equal(lease.router, '10.0.2.2');
      assert.deepEqual(lease.dns, ['10.0.2.3']);
      t.diagnostic(`dhclient: lease in ${ms} ms (process start to BOUND)`);
      // The guest's own view: address and default route as offered.
      const addr = await guestNs.check('ip', ['-4', '-o', 'addr', 'show', 'dev', TAP]);
      assert.match(addr, new RegExp(`inet ${lease.ip.replace(/\./g, '\\.')}/24`));
      const route = await guestNs.check('ip', ['-4', 'route', 'show', 'default']);
      assert.match(route, new RegExp(`default via 10\\.0\\.2\\.2 dev ${TAP}`));
      await guestKnowsGateway();
    } finally {
      client.kill('SIGKILL');
      await client.waitExit(5000);
    }
    // dhclient -r: a RELEASE for the lease in its lease file.
    const rel = await guestNs.run('dhclient', files.dhclientArgs(TAP, ['-r']).filter((a) => a !== '-d' && a !== '-1'), { timeoutMs: 20_000 });
    assert.equal(rel.status, 0, `dhclient -r: ${rel.stderr}`);
    await gateway.waitEvent((e) => e.event === 'release' && gateway.events().filter((x) => x.event === 'release').length >= 2, 15_000, 'second release');
  });

  test('ping and ping -6 reach the gateway; ip neigh shows its MAC; SLAAC from its RA', async () => {
    await guestNs.check('ip', ['addr', 'replace', '10.0.2.15/24', 'dev', TAP]);
    const ping = await guestNs.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.0.2.2'], { timeoutMs: 15_000 });
    assert.equal(ping.status, 0, `ping: ${ping.stdout} ${ping.stderr}`);
    assert.match(ping.stdout, /3 received/);
    // SLAAC: the RA's /64 and the interface identifier from the guest's MAC (RFC 4862 §5.5.3).
    let addr6 = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      addr6 = await guestNs.check('ip', ['-6', '-o', 'addr', 'show', 'dev', TAP, 'scope', 'global']);
      if (/fd00:0:0:2:|fd00::2:/.test(addr6) && !/tentative/.test(addr6)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(addr6, /inet6 fd00::2:[0-9a-f:]+\/64 scope global dynamic/, `no SLAAC address: ${addr6}`);
    const ping6 = await guestNs.run('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd00:0:0:2::2'], { timeoutMs: 15_000 });
    assert.equal(ping6.status, 0, `ping -6: ${ping6.stdout} ${ping6.stderr}`);
    const neigh = await guestNs.check('ip', ['neigh', 'show', 'dev', TAP]);
    assert.match(neigh, new RegExp(`10\\.0\\.2\\.2 lladdr ${gateway.up.mac}`));
    assert.match(neigh, new RegExp(`fd00:0:0:2::2 lladdr ${gateway.up.mac} router`));
    // The default IPv6 route the RA installed points at the gateway's link-local address.
    const route6 = await guestNs.check('ip', ['-6', 'route', 'show', 'default']);
    assert.match(route6, new RegExp(`default via fe80::[0-9a-f:]+ dev ${TAP} proto ra`));
  });

  const dig = async (args: string[]): Promise<string> => {
    const r = await guestNs.run('dig', ['+tries=1', '+time=3', ...args], { timeoutMs: 15_000 });
    assert.equal(r.status, 0, `dig ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    return r.stdout;
  };

  test('dig: static A, AAAA and PTR over UDP and TCP', async () => {
    await guestNs.check('ip', ['addr', 'replace', '10.0.2.15/24', 'dev', TAP]);
    for (const transport of ['+notcp', '+tcp']) {
      assert.match(await dig(['@10.0.2.3', transport, 'host.lan', 'A']), /^host\.lan\.\s+\d+\s+IN\s+A\s+10\.0\.2\.2$/m);
      assert.match(await dig(['@10.0.2.3', transport, 'host.lan', 'AAAA']), /^host\.lan\.\s+\d+\s+IN\s+AAAA\s+fd00:0:0:2::2$/m);
      assert.match(await dig(['@10.0.2.3', transport, '-x', '10.0.2.9']), /IN\s+PTR\s+printer\.lan\.$/m);
      assert.match(await dig(['@10.0.2.3', transport, '-x', 'fd00:0:0:2::2']), /IN\s+PTR\s+host\.lan\.$/m);
      // And the same over IPv6, to the DNS address the RA advertised.
      assert.match(await dig(['@fd00:0:0:2::3', transport, 'host.lan', 'A']), /IN\s+A\s+10\.0\.2\.2$/m);
    }
    const events = gateway.events().filter((e) => e.event === 'dns' && e.name === 'host.lan');
    assert.ok(events.some((e) => e.transport === 'udp') && events.some((e) => e.transport === 'tcp'));
  });

  test('dig: names forwarded to the upstream resolver, NXDOMAIN included', async () => {
    assert.match(await dig(['@10.0.2.3', 'fwd.test', 'A']), /^fwd\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
    assert.match(await dig(['@10.0.2.3', 'fwd.test', 'AAAA']), /IN\s+AAAA\s+2001:db8::10$/m);
    assert.match(await dig(['@10.0.2.3', 'nothing.test', 'A']), /status: NXDOMAIN/);
    // A second time: from synack's cache.
    assert.match(await dig(['@10.0.2.3', 'fwd.test', 'A']), /192\.0\.2\.10/);
    const fwd = gateway.events().filter((e) => e.event === 'dns' && e.name === 'fwd.test' && e.type === 'A');
    assert.ok(fwd.some((e) => e.forwarded === true), JSON.stringify(fwd));
    assert.ok(fwd.some((e) => e.cached === true), JSON.stringify(fwd));
  });

  test('dig: an answer over 1,500 bytes by EDNS0 (IP fragments), and a truncated one retried over TCP', async () => {
    const big = await dig(['@10.0.2.3', '+bufsize=4096', '+notcp', 'big.test', 'TXT']);
    const size = Number(/MSG SIZE\s+rcvd: (\d+)/.exec(big)?.[1]);
    assert.ok(size > 1500, `answer of ${size} bytes`);
    assert.equal(big.match(/IN\s+TXT\s+"\dx+"/g)?.length, BIG_TXT_COUNT, big);
    assert.doesNotMatch(big, /Truncated/);
    // Without EDNS the limit is 512 bytes (RFC 1035 §4.2.1): TC, and dig asks again over TCP.
    const small = await dig(['@10.0.2.3', '+noedns', 'big.test', 'TXT']);
    assert.match(small, /Truncated, retrying in TCP mode/);
    assert.equal(small.match(/IN\s+TXT\s+"\dx+"/g)?.length, BIG_TXT_COUNT, small);
    const ev = gateway.events().filter((e) => e.event === 'dns' && e.name === 'big.test');
    assert.ok(ev.some((e) => e.transport === 'udp' && e.truncated === true), JSON.stringify(ev));
    assert.ok(ev.some((e) => e.transport === 'tcp' && e.truncated === false), JSON.stringify(ev));
  });
});

describe('synack gateway with an exhausted pool, then a release', { skip }, () => {
  test('a second client gets no offer (counted, reported) until the first releases its address', async () => {
    const gwNs = Netns.create();
    const guestNs = Netns.create();
    const files = new DhcpClientFiles();
    const TAP = tapName();
    let gateway: GatewayProcess | undefined;
    try {
      gateway = await GatewayProcess.start(gwNs, guestNs, TAP, ['--dhcp', '--pool-end', '10.0.2.15', '--stats']);
      const first = guestNs.start('busybox', files.udhcpcArgs(TAP, ['-R']));
      await first.waitForLine(/^LEASE udhcpc-bound ip=10\.0\.2\.15 /, 30_000);
      // Another guest: the same NIC with another MAC (and another client identifier with it).
      const otherMac = async (mac: string): Promise<void> => {
        await guestNs.check('ip', ['link', 'set', 'dev', TAP, 'down']);
        await guestNs.check('ip', ['link', 'set', 'dev', TAP, 'address', mac]);
        await guestNs.check('ip', ['link', 'set', 'dev', TAP, 'up']);
      };
      await otherMac('02:00:00:00:00:99');
      const second = await guestNs.run('busybox', files.udhcpcArgs(TAP, ['-q', '-t', '3']), { timeoutMs: 30_000 });
      assert.notEqual(second.status, 0, 'udhcpc -n exits non-zero without a lease');
      assert.doesNotMatch(second.stdout, /LEASE/);
      const ex = await gateway.waitEvent((e) => e.event === 'pool-exhausted', 5000, 'pool-exhausted');
      assert.equal(ex.mac, '02:00:00:00:00:99');
      // The first client releases (-R on SIGTERM): the address is free, and the other client gets it.
      // (The second udhcpc flushed the interface's address as it started: put it back, so the
      // first can send its RELEASE from it.)
      await guestNs.check('ip', ['addr', 'replace', '10.0.2.15/24', 'dev', TAP]);
      first.kill('SIGTERM');
      await first.waitExit(10_000);
      await gateway.waitEvent((e) => e.event === 'release' && e.address === '10.0.2.15', 15_000, 'release');
      const third = await guestNs.run('busybox', files.udhcpcArgs(TAP, ['-q']), { timeoutMs: 30_000 });
      assert.match(third.stdout, /LEASE udhcpc-bound ip=10\.0\.2\.15 /, third.stderr);
      const stderr = await gateway.stop();
      gateway = undefined;
      assert.match(stderr, /dhcp\.pool-exhausted [1-9]/);
    } finally {
      if (gateway !== undefined) await gateway.stop().catch(() => undefined);
      files.dispose();
      await guestNs.destroy();
      await gwNs.destroy();
    }
  });
});
