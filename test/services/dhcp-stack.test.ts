/**
 * serveDhcp and runDhcpClient on real stacks: a gateway and guests on an in-memory Ethernet switch,
 * in virtual time. The guests start with no address; DHCP gives them one, a router and DNS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { runDhcpClient, serveDhcp } from '../../src/services/dhcp.js';
import type { DhcpLease } from '../../src/services/dhcp-client.js';
import type { DhcpServerEvent } from '../../src/services/dhcp-server.js';
import { Stack } from '../../src/stack/stack.js';

function lan(seed = 1): { clock: VirtualClock; sw: EthernetSwitch; gw: Stack; guest: (n: number) => Stack } {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, seed });
  const gw = new Stack({ name: 'gw', link: sw.port(), addresses: ['10.0.2.2/24'], clock, seed, mac: '52:54:00:00:00:02' });
  const guest = (n: number): Stack =>
    new Stack({ name: `guest${n}`, link: sw.port(), addresses: [], clock, seed: seed * 100 + n, mac: `52:54:00:12:34:${(0x50 + n).toString(16)}` });
  return { clock, sw, gw, guest };
}

test('a guest with no address gets a lease over the switch: address, router and DNS configured', async () => {
  const { clock, gw, guest } = lan();
  const events: DhcpServerEvent[] = [];
  const srv = serveDhcp(gw, { leaseTime: 600, onEvent: (e) => events.push(e) });
  const g = guest(1);
  assert.deepEqual(g.addresses, []);
  const leases: (DhcpLease | null)[] = [];
  const c = runDhcpClient(g, { seed: 5, hostname: 'guest1', onLease: (l) => leases.push(l) });
  clock.advanceSync(1000);
  const lease = await c.ready;
  assert.equal(lease.address, '10.0.2.15');
  assert.equal(lease.prefix, 24);
  assert.deepEqual(g.addresses, ['10.0.2.15']);
  assert.equal(g.router(4), '10.0.2.2');
  assert.deepEqual(g.dnsServers, ['10.0.2.3']);
  assert.equal(c.client.state, 'BOUND');
  assert.deepEqual(events.map((e) => [e.type, 'address' in e ? e.address : '']), [['lease-granted', '10.0.2.15']]);
  assert.equal(events[0].type === 'lease-granted' && events[0].hostname, 'guest1');
  // The chaddr is the guest interface's MAC.
  assert.equal(srv.server.leases(clock.now())[0].mac, '52:54:00:12:34:51');

  // The address works: a UDP datagram from the guest reaches the gateway from 10.0.2.15.
  const echo = gw.udpBind({ port: 7 });
  const got: string[] = [];
  echo.onMessage = (data, remote) => got.push(`${remote.address} ${new TextDecoder().decode(data)}`);
  const s = g.udpBind({});
  s.send(new TextEncoder().encode('hi'), '10.0.2.2', 7);
  clock.advanceSync(100);
  assert.deepEqual(got, ['10.0.2.15 hi']);

  // T1 (300 s): the guest renews by unicast; the lease is extended, nothing reconfigured.
  clock.advanceSync(300_000);
  const renewed = events.at(-1)!;
  assert.equal(renewed.type, 'lease-granted');
  assert.ok(renewed.type === 'lease-granted' && renewed.renewed);
  assert.equal(c.client.state, 'BOUND');
  assert.ok(c.client.lease!.expiresAt > 600_000);
  assert.equal(leases.length, 2);
  assert.deepEqual(g.addresses, ['10.0.2.15']);
  assert.equal(srv.server.counters.acks, 2);

  // RELEASE: the server frees the lease, the guest drops the address, router and DNS.
  c.release();
  clock.advanceSync(100);
  assert.equal(events.at(-1)!.type, 'lease-released');
  assert.equal(srv.server.leases(clock.now())[0].state, 'free');
  assert.deepEqual(g.addresses, []);
  assert.equal(g.router(4), null);
  assert.deepEqual(g.dnsServers, []);
  assert.equal(leases.at(-1), null);
  c.close();
  srv.close();
});

test('three guests get three addresses; the gateway stopping makes them rebind, then lose the lease', async () => {
  const { clock, gw, guest } = lan(2);
  const srv = serveDhcp(gw, { leaseTime: 120 });
  const guests = [1, 2, 3].map((n) => guest(n));
  const clients = guests.map((g, i) => runDhcpClient(g, { seed: 10 + i }));
  clock.advanceSync(2000);
  const leases = await Promise.all(clients.map((c) => c.ready));
  assert.deepEqual(leases.map((l) => l.address).sort(), ['10.0.2.15', '10.0.2.16', '10.0.2.17']);
  srv.close();
  clock.advanceSync(105_000); // past T2 (105 s)
  assert.deepEqual(clients.map((c) => c.client.state), ['REBINDING', 'REBINDING', 'REBINDING']);
  clock.advanceSync(20_000); // past the lease's end (120 s)
  assert.deepEqual(clients.map((c) => c.client.state), ['SELECTING', 'SELECTING', 'SELECTING']);
  assert.deepEqual(guests.map((g) => g.addresses.length), [0, 0, 0]);
  // A server again: they are back.
  const again = serveDhcp(gw, { leaseTime: 120 });
  clock.advanceSync(70_000);
  assert.deepEqual(clients.map((c) => c.client.state), ['BOUND', 'BOUND', 'BOUND']);
  assert.deepEqual(guests.map((g) => g.addresses.length), [1, 1, 1]);
  for (const c of clients) c.close();
  again.close();
});

test('close() before a lease rejects ready; garbage on port 67 and 68 is counted, not fatal', async () => {
  const { clock, gw, guest } = lan(3);
  const g = guest(1);
  const c = runDhcpClient(g, { seed: 1 });
  clock.advanceSync(10_000);
  assert.equal(c.client.state, 'SELECTING');
  c.close();
  await assert.rejects(c.ready, /closed/);
  assert.equal(clock.pending() < 100, true);
  const srv = serveDhcp(gw);
  const junk = g.udpBind({ port: 1068, broadcast: true });
  junk.send(new Uint8Array(10), '255.255.255.255', 67, '0.0.0.0');
  const c2 = runDhcpClient(g, { seed: 2 });
  const noCookie = new Uint8Array(300);
  noCookie[0] = 1; // not DHCP: no magic cookie (a BOOTREPLY would not even be parsed unless it is this client's)
  gw.udpBind({ port: 1067, broadcast: true }).send(noCookie, '255.255.255.255', 68);
  clock.advanceSync(1000);
  assert.deepEqual(srv.drops, { 'dhcp-truncated': 1 });
  assert.deepEqual(c2.drops, { 'dhcp-bad-cookie': 1 });
  assert.equal((await c2.ready).address, '10.0.2.15');
  c2.close({ release: true });
  clock.advanceSync(100);
  assert.equal(srv.server.counters.releases, 1);
  srv.close();
});
