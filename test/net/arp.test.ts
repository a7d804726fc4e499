import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { parseAddress } from '../../src/wire/address.js';
import { formatMac } from '../../src/wire/ethernet.js';
import { Hub, arpFrame, arpOf, ipv4, station } from './harness.js';

const A_MAC = '02:00:00:00:00:0a';
const B_MAC = '02:00:00:00:00:0b';

function lan() {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24'], A_MAC);
  const b = station(clock, hub, ['10.0.0.2/24'], B_MAC);
  clock.runUntilIdleSync();
  hub.log.length = 0;
  return { clock, hub, a, b };
}

test('gratuitous ARP when the interface comes up and when an address is added (RFC 5227 §3)', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24', 'fd00::1/64'], A_MAC);
  assert.equal(hub.log.length, 0, 'nothing before the stack is done building');
  clock.runUntilIdleSync();
  const garps = hub.sent(0).map(arpOf).filter((x) => x !== null);
  assert.deepEqual(garps, [{ op: 1, sha: A_MAC, spa: '10.0.0.1', tpa: '10.0.0.1', dst: 'ff:ff:ff:ff:ff:ff' }]);
  a.host.add('10.0.1.1/24');
  a.ifc.addressesChanged();
  a.ifc.addressesChanged(); // idempotent: announced once
  const after = hub.sent(0).map(arpOf).filter((x) => x !== null);
  assert.equal(after.length, 2);
  assert.equal(after[1]!.spa, '10.0.1.1');
  assert.equal(after[1]!.tpa, '10.0.1.1');
});

test('ARP resolution: one broadcast request, packets queued meanwhile go out in order after the reply', () => {
  const { clock, hub, a, b } = lan();
  for (let i = 1; i <= 3; i++) a.ifc.send(ipv4('10.0.0.1', '10.0.0.2', i));
  const requests = hub.sent(0).map(arpOf);
  assert.deepEqual(requests, [{ op: 1, sha: A_MAC, spa: '10.0.0.1', tpa: '10.0.0.2', dst: 'ff:ff:ff:ff:ff:ff' }]);
  clock.runUntilIdleSync();
  // B answered with a unicast reply, and learnt A from the request that targeted it (RFC 826).
  const reply = hub.sent(1).map(arpOf).find((x) => x?.op === 2);
  assert.deepEqual(reply, { op: 2, sha: B_MAC, spa: '10.0.0.2', tpa: '10.0.0.1', dst: A_MAC });
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [1, 2, 3]);
  assert.deepEqual(a.ifc.neighbours(), [{ address: '10.0.0.2', mac: B_MAC, state: 'reachable' }]);
  assert.deepEqual(b.ifc.neighbours(), [{ address: '10.0.0.1', mac: A_MAC, state: 'stale' }]);
  assert.equal(a.ifc.counters.resolved, 1);
  assert.equal(b.ifc.counters.resolved, 0, 'learning from a request resolves nothing');
  // Now resolved: the next packet goes at once, no new request.
  hub.log.length = 0;
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2', 4));
  assert.equal(hub.sent(0).length, 1);
  assert.equal(arpOf(hub.sent(0)[0]!), null);
  assert.equal(formatMac(hub.sent(0)[0]!.subarray(0, 6)), B_MAC);
  assert.ok(a.host.notes.some((n) => n.includes('10.0.0.2 is at 02:00:00:00:00:0b')));
});

test('the pending queue is bounded (3): the oldest packets go, counted neighbour-queue-full', () => {
  const { clock, a, b } = lan();
  for (let i = 1; i <= 5; i++) a.ifc.send(ipv4('10.0.0.1', '10.0.0.2', i));
  assert.equal(a.host.count('neighbour-queue-full'), 2);
  clock.runUntilIdleSync();
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [3, 4, 5]);
});

test('no answer: 3 requests 1 s apart, then the queued packets are dropped as neighbour-unreachable', () => {
  const { clock, hub, a } = lan();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.77', 1));
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.77', 2));
  const start = clock.now();
  const times: number[] = [];
  const seen = (): number => hub.sent(0).filter((f) => arpOf(f)?.tpa === '10.0.0.77').length;
  let last = 0;
  while (clock.now() < start + 5000) {
    if (seen() > last) {
      last = seen();
      times.push(Math.round(clock.now() - start));
    }
    clock.advanceSync(100);
  }
  assert.equal(seen(), 3);
  assert.deepEqual(times, [0, 1000, 2000]);
  assert.equal(a.host.count('neighbour-unreachable'), 2);
  assert.equal(a.ifc.counters.resolutionFailures, 1);
  assert.deepEqual(a.ifc.neighbours(), []);
  // A new packet starts over.
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.77', 3));
  assert.equal(seen(), 4);
});

test('an unsolicited ARP reply creates no entry; a reply for someone else neither', () => {
  const { clock, hub, a } = lan();
  hub.inject(0, arpFrame(A_MAC, 2, '02:66:66:66:66:66', '10.0.0.66', A_MAC, '10.0.0.1'));
  hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 2, '02:66:66:66:66:67', '10.0.0.67', '02:00:00:00:00:99', '10.0.0.99'));
  clock.runUntilIdleSync();
  assert.deepEqual(a.ifc.neighbours(), []);
  assert.equal(a.host.count('arp-unsolicited'), 1);
  assert.equal(a.host.count('arp-not-for-us'), 1);
  // And traffic to 10.0.0.66 still needs a request: nothing was believed.
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.66'));
  assert.equal(arpOf(hub.sent(0).at(-1)!)?.op, 1);
});

test('RFC 826 merge: a known neighbour\'s new MAC is taken from any ARP it sends, but is only stale', () => {
  const { clock, hub, a } = lan();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  clock.runUntilIdleSync();
  assert.equal(a.ifc.neighbours()[0]!.state, 'reachable');
  // B moved to another NIC and announces it (gratuitous ARP).
  hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:0b:0b', '10.0.0.2', '00:00:00:00:00:00', '10.0.0.2'));
  clock.runUntilIdleSync();
  assert.deepEqual(a.ifc.neighbours(), [{ address: '10.0.0.2', mac: '02:00:00:00:0b:0b', state: 'stale' }]);
});

test('a station claiming our address is counted and our address defended, at most once per 10 s (RFC 5227 §2.4)', () => {
  const { clock, hub, a } = lan();
  const claim = arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:ba:d0:00:00:01', '10.0.0.1', '00:00:00:00:00:00', '10.0.0.1');
  hub.inject(0, claim);
  hub.inject(0, claim);
  clock.runUntilIdleSync();
  assert.equal(a.ifc.counters.addressConflicts, 2);
  const defences = hub.sent(0).map(arpOf).filter((x) => x?.spa === '10.0.0.1' && x.tpa === '10.0.0.1');
  assert.equal(defences.length, 1);
  assert.deepEqual(a.ifc.neighbours(), []);
  assert.ok(a.host.notes.some((n) => n.includes('also claimed by 02:ba:d0:00:00:01')));
});

test('requests: answered only for our addresses; probes (sender 0.0.0.0) answered but not learnt', () => {
  const { clock, hub, a } = lan();
  hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:00:c1', '10.0.0.50', '00:00:00:00:00:00', '10.0.0.99'));
  hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:00:c2', '0.0.0.0', '00:00:00:00:00:00', '10.0.0.1'));
  clock.runUntilIdleSync();
  assert.equal(a.host.count('arp-not-for-us'), 1);
  const replies = hub.sent(0).map(arpOf).filter((x) => x?.op === 2);
  assert.deepEqual(replies, [{ op: 2, sha: A_MAC, spa: '10.0.0.1', tpa: '0.0.0.0', dst: '02:00:00:00:00:c2' }]);
  assert.deepEqual(a.ifc.neighbours(), []);
});

test('invalid senders are refused: group MACs, multicast addresses, bad hardware types', () => {
  const { clock, hub, a } = lan();
  hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:00:c1', '224.0.0.1', '00:00:00:00:00:00', '10.0.0.1'));
  const bad = arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:00:c1', '10.0.0.9', '00:00:00:00:00:00', '10.0.0.1');
  bad[22] = 0x03; // sender hardware address with the group bit
  hub.inject(0, bad);
  const other = arpFrame('ff:ff:ff:ff:ff:ff', 1, '02:00:00:00:00:c1', '10.0.0.9', '00:00:00:00:00:00', '10.0.0.1');
  other[15] = 6; // hardware type IEEE 802
  hub.inject(0, other);
  clock.runUntilIdleSync();
  assert.equal(a.host.count('arp-invalid'), 2);
  assert.equal(a.host.count('arp-unsupported'), 1);
  assert.deepEqual(a.ifc.neighbours(), []);
});

test('a flood of lying ARP keeps the cache bounded: 20,000 requests from random senders, 20,000 fake replies', () => {
  const { clock, hub, a } = lan();
  let seed = 1;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 20_000; i++) {
    const r = next();
    const sender = `10.${(r >>> 16) & 255}.${(r >>> 8) & 255}.${r & 255}`;
    const mac = `02:${[r >>> 24, r >>> 16, r >>> 8, r, i].map((x) => (x & 255).toString(16).padStart(2, '0')).join(':')}`;
    hub.inject(0, arpFrame('ff:ff:ff:ff:ff:ff', 1, mac, sender, '00:00:00:00:00:00', '10.0.0.1'));
    hub.inject(0, arpFrame(A_MAC, 2, mac, `10.0.0.${(r & 127) + 100}`, A_MAC, '10.0.0.1'));
  }
  clock.runUntilIdleSync();
  const n = a.ifc.neighbours();
  assert.ok(n.length <= 1024, `cache holds ${n.length}`);
  assert.ok(n.length >= 1000);
  assert.ok(n.every((e) => e.state === 'stale'));
  // The cache still works for real traffic: a resolution evicts a stale entry and succeeds.
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2', 9));
  clock.runUntilIdleSync();
  assert.ok(a.ifc.neighbours().some((e) => e.address === '10.0.0.2' && e.state === 'reachable'));
  assert.ok(a.ifc.neighbours().length <= 1024);
  assert.equal(hub.sent(1).filter((f) => arpOf(f) === null).length, 0);
});

test('a stale entry is checked when used: unicast probes after 5 s, removed when unanswered (RFC 4861 §7.3.3 for ARP)', () => {
  const { clock, hub, a, b } = lan();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  clock.runUntilIdleSync();
  clock.advanceSync(31_000);
  assert.equal(a.ifc.neighbours()[0]!.state, 'stale');
  // B goes away.
  b.port.onFrame(() => {});
  hub.log.length = 0;
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  assert.equal(hub.sent(0).length, 1, 'the packet still goes to the known MAC');
  clock.advanceSync(4_900);
  assert.equal(hub.sent(0).length, 1);
  clock.advanceSync(3_200);
  const probes = hub.sent(0).map(arpOf).filter((x) => x !== null);
  assert.equal(probes.length, 3);
  assert.ok(probes.every((p) => p!.dst === B_MAC && p!.tpa === '10.0.0.2'), 'unicast');
  clock.advanceSync(1_000);
  assert.deepEqual(a.ifc.neighbours(), []);
});

test('a confirmed probe keeps the entry', () => {
  const { clock, a } = lan();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  clock.runUntilIdleSync();
  clock.advanceSync(31_000);
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  clock.advanceSync(10_000);
  assert.deepEqual(a.ifc.neighbours(), [{ address: '10.0.0.2', mac: B_MAC, state: 'reachable' }]);
});

test('next hop: off-link via the default router, none is net-no-route; broadcast and multicast need no ARP', () => {
  const { clock, hub, a, b } = lan();
  a.ifc.send(ipv4('10.0.0.1', '192.0.2.1', 1));
  assert.equal(a.host.count('net-no-route'), 1);
  a.host.routers[4] = parseAddress('10.0.0.2');
  a.ifc.send(ipv4('10.0.0.1', '192.0.2.1', 2));
  clock.runUntilIdleSync();
  assert.equal(hub.sent(0).map(arpOf).find((x) => x?.op === 1)?.tpa, '10.0.0.2');
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [2]);
  hub.log.length = 0;
  a.ifc.send(ipv4('0.0.0.0', '255.255.255.255', 3));
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.255', 4));
  a.ifc.send(ipv4('10.0.0.1', '224.0.0.251', 5));
  const notForB = b.host.count('eth-not-for-us');
  const dsts = hub.sent(0).map((f) => formatMac(f.subarray(0, 6)));
  assert.deepEqual(dsts, ['ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:fb']);
  clock.runUntilIdleSync();
  // B takes the two broadcasts; the mDNS group is not one it is in.
  assert.deepEqual(b.host.received.slice(1).map((p) => p[p.length - 1]), [3, 4]);
  assert.equal(b.host.count('eth-not-for-us'), notForB + 1);
  a.ifc.send(new Uint8Array([0x45, 0, 0]));
  assert.equal(a.host.count('net-bad-packet'), 1);
});

test('a full cache gives up on the oldest pending neighbour: its packets dropped, not counted as a failed resolution', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24'], A_MAC, { neighbourCacheSize: 2 });
  clock.runUntilIdleSync();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.71'));
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.72'));
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.73'));
  assert.deepEqual(a.ifc.neighbours().map((n) => n.address), ['10.0.0.72', '10.0.0.73']);
  assert.equal(a.host.count('neighbour-unreachable'), 1);
  assert.equal(a.ifc.counters.resolutionFailures, 0);
  assert.ok(a.host.notes.some((n) => n.includes('cache full, gave up on 10.0.0.71')));
  a.ifc.close();
  assert.equal(a.host.count('neighbour-unreachable'), 3);
  assert.deepEqual(a.ifc.neighbours(), []);
});
