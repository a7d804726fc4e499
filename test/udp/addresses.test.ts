/**
 * Addresses that change while the stack runs (addAddress, removeAddress, setRouter, DNS servers),
 * and a stack on an Ethernet link (EthernetInterface: ARP, NDP, link-local address).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink } from '../../src/link/memory.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { TcpError } from '../../src/tcp/user.js';
import { collect, pair, text } from './support.js';

test('addAddress / removeAddress: the address list follows, TCP and UDP use a new address at once, a removed one is not ours', () => {
  const { a, b, step } = pair();
  b.addAddress('10.0.0.20/24');
  assert.deepEqual(b.addresses, ['10.0.0.2', 'fd00::2', '10.0.0.20']);
  assert.throws(() => b.addAddress('10.0.0.20/24'), (e: unknown) => e instanceof TcpError && e.code === 'EADDRINUSE');
  assert.throws(() => b.addAddress('10.0.0/24'), (e: unknown) => e instanceof TcpError && e.code === 'EINVAL');
  const got = collect(b.udpBind({ port: 7 }));
  a.udpBind().send(text('to the new address'), '10.0.0.20', 7);
  let established = false;
  b.tcpListen({ port: 80, host: '10.0.0.20' });
  const c = a.tcpConnect({ host: '10.0.0.20', port: 80 });
  c.events = { onEstablished: () => { established = true; } };
  step(50);
  assert.deepEqual(got.map((m) => m.local.address), ['10.0.0.20']);
  assert.ok(established);
  assert.equal(b.removeAddress('10.0.0.20/24'), true);
  assert.equal(b.removeAddress('10.0.0.20'), false);
  assert.deepEqual(b.addresses, ['10.0.0.2', 'fd00::2']);
  a.udpBind().send(text('gone'), '10.0.0.20', 7);
  step();
  assert.equal(got.length, 1);
  assert.equal(b.counters.drops['ip-not-for-us'], 1);
});

test('setRouter / router, dnsServers option and setDnsServers (canonical text, EINVAL for a bad one)', () => {
  const { a } = pair({ a: { dnsServers: ['10.0.0.53', 'FD00::0053'] } });
  assert.deepEqual(a.dnsServers, ['10.0.0.53', 'fd00::53']);
  a.setDnsServers(['1.1.1.1']);
  assert.deepEqual(a.dnsServers, ['1.1.1.1']);
  assert.throws(() => a.setDnsServers(['dns.example']), (e: unknown) => e instanceof TcpError && e.code === 'EINVAL');
  assert.equal(a.router(4), null);
  a.setRouter('10.0.0.254', 4);
  a.setRouter('fd00::fe', 6);
  assert.deepEqual([a.router(4), a.router(6)], ['10.0.0.254', 'fd00::fe']);
  assert.throws(() => a.setRouter('fd00::fe', 4), (e: unknown) => e instanceof TcpError && e.code === 'EINVAL');
  a.setRouter(null, 4);
  assert.equal(a.router(4), null);
  assert.equal(a.interface, null, 'an IP link has no Ethernet interface');
});

test('an IP link still needs an address; an Ethernet link may start with none', () => {
  const clock = new VirtualClock();
  const [l] = MemoryLink.pair({ clock });
  assert.throws(() => new Stack({ link: l, addresses: [], clock }), (e: unknown) => e instanceof TcpError && e.code === 'EINVAL');
  const sw = new EthernetSwitch({ clock });
  const s = new Stack({ link: sw.port(), addresses: [], clock, seed: 3 });
  assert.ok(s.interface !== null);
  assert.deepEqual(s.addresses, []);
});

test('on an Ethernet switch: the interface wraps the link (MAC option), IPv6 brings the link-local address, TCP and UDP broadcast work', () => {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, seed: 1 });
  const a = new Stack({ link: sw.port(), addresses: ['192.168.1.1/24', 'fd01::1/64'], clock, seed: 1, mac: '52:54:00:00:00:01' });
  const b = new Stack({ link: sw.port(), addresses: [], clock, seed: 2 });
  assert.ok(a.interface !== null && b.interface !== null);
  assert.deepEqual([...a.interface.mac], [0x52, 0x54, 0, 0, 0, 1]);
  assert.ok(a.addresses.includes('fe80::5054:ff:fe00:1'), a.addresses.join(' '));
  assert.deepEqual(b.addresses, [], 'no IPv6, no link-local address');
  // A DHCP-like exchange: b has no address, listens with anyDestination, a broadcasts.
  const client = b.udpBind({ address: '0.0.0.0', port: 68, anyDestination: true, broadcast: true });
  const atClient = collect(client);
  const server = a.udpBind({ port: 67, broadcast: true });
  const atServer = collect(server);
  client.send(text('DISCOVER'), '255.255.255.255', 67, '0.0.0.0');
  clock.advanceSync(10);
  assert.deepEqual(atServer.map((m) => m.remote.address), ['0.0.0.0']);
  server.send(text('OFFER'), '255.255.255.255', 68);
  clock.advanceSync(10);
  assert.deepEqual(atClient.map((m) => m.data), ['OFFER']);
  // The lease arrives: the address, then TCP to the server over ARP.
  b.addAddress('192.168.1.50/24');
  b.setRouter('192.168.1.1', 4);
  a.tcpListen({ port: 80 }).onConnection = (c) => {
    c.events = { onReadable: () => { c.write(c.read()!); } };
  };
  const c = b.tcpConnect({ host: '192.168.1.1', port: 80 });
  let echoed = '';
  c.events = {
    onEstablished: () => c.write(text('over ethernet')),
    onReadable: () => { echoed += new TextDecoder().decode(c.read()!); },
  };
  clock.advanceSync(2000);
  assert.equal(echoed, 'over ethernet');
  assert.ok(a.interface.neighbours().some((n) => n.address === '192.168.1.50' && n.mac !== null));
  // IPv6 added later brings the link-local address too.
  b.addAddress('fd01::50/64');
  const now: readonly string[] = b.addresses;
  assert.ok(now.some((x) => x.startsWith('fe80::')), now.join(' '));
});
