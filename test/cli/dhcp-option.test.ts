/**
 * `--dhcp` for `synack get` and `synack serve` on a TAP: the checks (no device touched), and the
 * commands on a TAP-like link — an EthernetSwitch port standing in for the device — whose peer is a
 * second stack running synack's own DHCP server, DNS server and an HTTP or echo client: the command
 * takes its lease, reports it (stderr line, `dhcp` in the JSON summary), resolves the URL's name
 * through the DNS server the lease named, and a bounded wait with no server ends in exit 1. The run
 * against Linux's dnsmasq is dhcp-client-kernel.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoppableClock, parseTunValues, type CommandLink } from '../../src/cli/tun-options.js';
import { getCommand, parseGetArgs } from '../../src/cli/get.js';
import { parseServeArgs, serveCommand } from '../../src/cli/serve.js';
import { UsageError } from '../../src/cli/io.js';
import { capture } from './helpers.js';
import { Stack } from '../../src/index.node.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { serveDhcp } from '../../src/services/dhcp.js';
import { serveDns } from '../../src/services/dns-server.js';

const usage = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'));
};

test('--dhcp goes with --tap, replaces the IPv4 --address, and lets get take a host name', () => {
  usage(() => parseTunValues({ tun: 'synack0', dhcp: true }), /--dhcp goes with --tap: DHCP needs Ethernet/);
  usage(() => parseTunValues({ tap: 'synack0', dhcp: true, address: ['10.0.3.9/24'] }), /--dhcp gives the IPv4 address: drop --address 10\.0\.3\.9/);
  usage(() => parseTunValues({ tap: 'synack0' }), /--address IP is required .*or --dhcp with --tap/);
  const c = parseTunValues({ tap: 'synack0', dhcp: true });
  assert.equal(c.dhcp, true);
  assert.deepEqual(c.addresses, []);
  // An IPv6 address may stay beside a DHCPv4 lease.
  assert.deepEqual(parseTunValues({ tap: 'synack0', dhcp: true, address: ['fd09::2'] }).addresses.map((a) => a.cidr), ['fd09::2/64']);
  assert.equal(parseTunValues({ tap: 'synack0', address: ['10.0.3.9'] }).dhcp, false);

  const g = parseGetArgs(['http://Files.Test:8000/big.bin', '--tap', 'tap0', '--dhcp']);
  assert.ok(!g.help);
  if (!g.help) {
    assert.deepEqual([g.target.host, g.target.family, g.target.port, g.target.hostHeader], ['files.test', 0, 8000, 'files.test:8000']);
    assert.equal(g.tun.dhcp, true);
  }
  // An IPv4 literal with --dhcp alone: the lease will be IPv4.
  assert.ok(!parseGetArgs(['http://10.0.3.1:8000/', '--tap', 'tap0', '--dhcp']).help);
  usage(() => parseGetArgs(['http://[fd09::1]/', '--tap', 'tap0', '--dhcp']), /no IPv6 --address to reach fd09::1/);
  usage(() => parseGetArgs(['http://files.test/', '--tap', 'tap0', '--address', '10.0.3.9']), /without --dhcp the host must be an IP address/);
  usage(() => parseGetArgs(['http://files.test/', '--tun', 'tun0', '--dhcp']), /--dhcp goes with --tap/);
  const s = parseServeArgs(['--tap', 'tap0', '--dhcp', '--port', '7', '--echo']);
  assert.ok(!s.help && s.tun.dhcp);
});

/** A LAN on an EthernetSwitch: a peer stack at 10.0.2.2 with DHCP, DNS and a service on it; a port for the command. */
function lan(serverSide: boolean): { clock: StoppableClock; sw: EthernetSwitch; peer: Stack; link: () => CommandLink; close(): void } {
  // Stopped at the end: the peer's timers (TIME-WAIT, the lease table) must not hold the test process.
  const clock = new StoppableClock();
  const sw = new EthernetSwitch({ clock });
  const peer = new Stack({ link: sw.port(), addresses: ['10.0.2.2/24'], clock, mac: '02:00:00:00:00:02' });
  const closers: Array<() => void> = [];
  if (serverSide) {
    const dhcp = serveDhcp(peer, { serverAddress: '10.0.2.2', subnet: '10.0.2.0/24', router: '10.0.2.2', dnsServers: ['10.0.2.2'], poolStart: '10.0.2.50', poolEnd: '10.0.2.60', leaseTime: 3600 });
    const dns = serveDns(peer, { records: { 'files.test': '10.0.2.2' } });
    closers.push(() => dhcp.close(), () => dns.close());
  }
  return {
    clock,
    sw,
    peer,
    link: () => {
      const port = sw.port();
      return {
        linkType: 'ethernet', name: 'tap-test', mtu: port.mtu,
        send: (f) => port.send(f), onFrame: (fn) => port.onFrame(fn), onBurstEnd: (fn) => port.onBurstEnd(fn), close: () => {},
      };
    },
    close: () => {
      for (const c of closers) c();
      clock.stop();
    },
  };
}

test('get --tap --dhcp: the lease from the LAN\'s server, the URL\'s name through the DNS server it named, the JSON summary', { timeout: 30_000 }, async () => {
  const net = lan(true);
  const body = 'x'.repeat(100_000);
  const web = http.createServer((req, res) => {
    // The Host header names the URL's host and port, not the address it resolved to (RFC 9112 §3.2).
    const status = req.headers.host === 'files.test:8000' ? 200 : 400;
    res.writeHead(status, { 'content-length': body.length });
    res.end(body);
  });
  const listener = net.peer.net.createServer((sock) => web.emit('connection', sock));
  await new Promise<void>((r) => listener.listen(8000, r));
  const dir = mkdtempSync(join(tmpdir(), 'synack-dhcp-get-'));
  try {
    const c = capture();
    const file = join(dir, 'out');
    const status = await getCommand(['http://files.test:8000/f', '--tap', 'tap-test', '--mac', '02:00:00:00:00:33', '--dhcp', '-o', file, '--json'], c.io, { openLink: net.link });
    assert.equal(status, 0, c.err());
    assert.equal(readFileSync(file, 'utf8'), body);
    assert.match(c.err(), /^synack get: DHCP lease 10\.0\.2\.5\d\/24 from 10\.0\.2\.2 in [\d.]+ ms: router 10\.0\.2\.2, DNS 10\.0\.2\.2, lease 1 h$/m);
    const r = JSON.parse(c.out()) as { ok: boolean; addresses: string[]; remoteAddress: string; dhcp: { mac: string; address: string; prefix: number; router: string; dns: string[]; server: string; leaseTime: number; ms: number } };
    assert.equal(r.ok, true);
    assert.equal(r.remoteAddress, '10.0.2.2', 'files.test resolved through the leased DNS server');
    assert.equal(r.dhcp.mac, '02:00:00:00:00:33');
    assert.match(r.dhcp.address, /^10\.0\.2\.(5\d|60)$/);
    assert.deepEqual([r.dhcp.prefix, r.dhcp.router, r.dhcp.dns, r.dhcp.server, r.dhcp.leaseTime], [24, '10.0.2.2', ['10.0.2.2'], '10.0.2.2', 3600]);
    assert.ok(r.dhcp.ms >= 0 && r.dhcp.ms < 10_000);
    assert.deepEqual(r.addresses, [`${r.dhcp.address}/24`]);
    // The peer's neighbour table learned the leased address at synack's MAC (ARP after the ACK).
    assert.ok(net.peer.interface?.neighbours().some((n) => n.address === r.dhcp.address && n.mac === '02:00:00:00:00:33'));
  } finally {
    listener.close();
    net.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('get --tap --dhcp: a name the DNS server does not know fails with ENOTFOUND, exit 1', { timeout: 30_000 }, async () => {
  const net = lan(true);
  try {
    const c = capture();
    const status = await getCommand(['http://nowhere.test:8000/f', '--tap', 'tap-test', '--dhcp'], c.io, { openLink: net.link, stdout: process.stdout });
    assert.equal(status, 1);
    assert.match(c.err(), /synack get: getaddrinfo ENOTFOUND nowhere\.test/);
  } finally {
    net.close();
  }
});

test('get --tap --dhcp with no DHCP server: a bounded wait, then exit 1 with one line saying so', { timeout: 30_000 }, async () => {
  const net = lan(false);
  try {
    const c = capture();
    const started = Date.now();
    const status = await getCommand(['http://files.test/f', '--tap', 'tap-test', '--dhcp'], c.io, { openLink: net.link, dhcpTimeoutMs: 300 });
    assert.equal(status, 1);
    assert.ok(Date.now() - started < 5000);
    const lines = c.err().trim().split('\n');
    assert.match(lines.at(-1)!, /^synack get: no DHCP lease on tap-test within 0\.3 s \(the DHCP client was SELECTING; synack's MAC is [0-9a-f:]{17}\)$/);
    assert.equal(c.out(), '');
  } finally {
    net.close();
  }
});

test('serve --tap --dhcp: listens on the leased address, which a peer reaches', { timeout: 30_000 }, async () => {
  const net = lan(true);
  const ac = new AbortController();
  const c = capture();
  let exit: number | undefined;
  try {
    const listening = new Promise<void>((resolve) => {
      void serveCommand(['--tap', 'tap-test', '--dhcp', '--port', '7', '--echo', '--json'], c.io, { openLink: net.link, signal: ac.signal, onListening: () => resolve() })
        .then((s) => (exit = s));
    });
    await listening;
    const m = /synack serve: echo on (10\.0\.2\.\d+):7 via tap-test/.exec(c.err());
    assert.ok(m, c.err());
    const echoed = await new Promise<string>((resolve, reject) => {
      const conn = net.peer.net.connect({ host: m[1]!, port: 7 });
      let got = '';
      conn.on('data', (d: Uint8Array) => {
        got += Buffer.from(d).toString();
        if (got.length >= 5) {
          conn.end();
          resolve(got);
        }
      });
      conn.on('error', reject);
      conn.write('hello');
    });
    assert.equal(echoed, 'hello');
    ac.abort();
    for (let i = 0; i < 500 && exit === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(exit, 0, c.err());
    const summary = JSON.parse(c.out()) as { addresses: string[]; dhcp: { address: string; leaseTime: number } };
    assert.deepEqual(summary.addresses, [`${m[1]}/24`]);
    assert.equal(summary.dhcp.address, m[1]);
    assert.equal(summary.dhcp.leaseTime, 3600);
  } finally {
    ac.abort();
    net.close();
  }
});
