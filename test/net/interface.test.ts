import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import type { EthernetLinkEnd } from '../../src/link/link.js';
import { isEthernetLink } from '../../src/link/link.js';
import { EthernetInterface } from '../../src/net/interface.js';
import { formatMac, parseMac, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { Hub, TestHost, ipv4, ipv6, station } from './harness.js';

const A_MAC = '02:00:00:00:00:0a';
const X_MAC = '02:00:00:00:00:99';

function frame(dst: string, src: string, etherType: number, payload: Uint8Array, vlan?: number): Uint8Array {
  const f = new Uint8Array(18 + payload.length);
  const n = writeEthernetHeader(f, 0, parseMac(dst)!, parseMac(src)!, etherType, vlan === undefined ? null : { pcp: 0, dei: false, vid: vlan });
  f.set(payload, n);
  return f.subarray(0, n + payload.length);
}

function setup(options: { advertise?: { intervalMs: number } } = {}) {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24', 'fd00::1/64'], A_MAC, options);
  clock.runUntilIdleSync({ maxMs: 5000 });
  return { clock, hub, a };
}

test('filtering: our MAC, broadcast and our groups are taken; everything else is dropped with a reason', () => {
  const { clock, hub, a } = setup();
  const p4 = ipv4('10.0.0.9', '10.0.0.1', 1);
  const cases: [Uint8Array, string | null][] = [
    [frame(A_MAC, X_MAC, 0x0800, p4), null],
    [frame('ff:ff:ff:ff:ff:ff', X_MAC, 0x0800, ipv4('10.0.0.9', '255.255.255.255', 2)), null],
    [frame('01:00:5e:00:00:01', X_MAC, 0x0800, ipv4('10.0.0.9', '224.0.0.1', 3)), null],
    [frame('33:33:00:00:00:01', X_MAC, 0x86dd, ipv6('fd00::9', 'ff02::1', 4)), null],
    [frame('33:33:ff:00:00:01', X_MAC, 0x86dd, ipv6('fd00::9', 'ff02::1:ff00:1', 5)), null],
    [frame(A_MAC, X_MAC, 0x0800, p4, 0), null], // 802.1Q priority tag (VID 0)
    [frame('02:00:00:00:00:0b', X_MAC, 0x0800, p4), 'eth-not-for-us'],
    [frame('33:33:00:00:00:02', X_MAC, 0x86dd, ipv6('fd00::9', 'ff02::2')), 'eth-not-for-us'], // all-routers: not a router
    [frame('33:33:ff:00:00:02', X_MAC, 0x86dd, ipv6('fd00::9', 'ff02::1:ff00:2')), 'eth-not-for-us'],
    [frame('01:00:5e:00:00:fb', X_MAC, 0x0800, ipv4('10.0.0.9', '224.0.0.251')), 'eth-not-for-us'],
    [frame(A_MAC, '03:00:00:00:00:01', 0x0800, p4), 'eth-bad-source'],
    [frame(A_MAC, X_MAC, 0x0800, p4, 5), 'eth-vlan'],
    [frame(A_MAC, X_MAC, 0x88cc, p4), 'eth-unknown-type'], // LLDP
    [frame(A_MAC, X_MAC, 0x0040, p4), 'eth-bad-type'], // an 802.3 length
    [new Uint8Array(13), 'eth-truncated'],
    [frame(A_MAC, X_MAC, 0x8100, new Uint8Array(1)).subarray(0, 16), 'eth-truncated'],
  ];
  for (const [f] of cases) hub.inject(0, f);
  clock.advanceSync(0);
  assert.deepEqual(a.host.received.map((p) => p[p.length - 1]), [1, 2, 3, 4, 5, 1]);
  const expected = new Map<string, number>();
  for (const [, r] of cases) if (r !== null) expected.set(r, (expected.get(r) ?? 0) + 1);
  for (const [r, n] of expected) assert.equal(a.host.count(r), n, r);
});

test('in router mode the all-routers group is taken too', () => {
  const { clock, hub, a } = setup({ advertise: { intervalMs: 600_000 } });
  hub.inject(0, frame('33:33:00:00:00:02', X_MAC, 0x86dd, ipv6('fd00::9', 'ff02::2', 7)));
  clock.advanceSync(0);
  assert.deepEqual(a.host.received.map((p) => p[p.length - 1]), [7]);
});

test('IPv4 in a padded minimum-size frame is delivered with its padding (the IP layer trims it)', () => {
  const { clock, hub, a } = setup();
  const p = ipv4('10.0.0.9', '10.0.0.1', 1);
  const f = new Uint8Array(60);
  f.set(frame(A_MAC, X_MAC, 0x0800, p));
  hub.inject(0, f);
  clock.advanceSync(0);
  assert.equal(a.host.received[0]!.length, 46);
  assert.deepEqual(Array.from(a.host.received[0]!.subarray(0, p.length)), Array.from(p));
});

test('MAC: given as text or bytes, else random, locally administered, unicast and seeded', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const host = new TestHost(clock, ['10.0.0.1/24']);
  assert.equal(formatMac(new EthernetInterface(hub.port(), host, { mac: '02-00-5E-00-00-01' }).mac), '02:00:5e:00:00:01');
  assert.equal(formatMac(new EthernetInterface(hub.port(), host, { mac: parseMac('52:54:00:00:00:01')! }).mac), '52:54:00:00:00:01');
  const r1 = new EthernetInterface(hub.port(), host, { seed: 42 }).mac;
  const r2 = new EthernetInterface(hub.port(), host, { seed: 42 }).mac;
  const r3 = new EthernetInterface(hub.port(), host).mac;
  const r4 = new EthernetInterface(hub.port(), host).mac;
  assert.deepEqual(r1, r2);
  assert.notDeepEqual(r3, r4);
  for (const m of [r1, r3, r4]) assert.equal(m[0]! & 3, 2);
  assert.throws(() => new EthernetInterface(hub.port(), host, { mac: '01:00:5e:00:00:01' }), /group address/);
  assert.throws(() => new EthernetInterface(hub.port(), host, { mac: 'nope' }), /bad MAC/);
  const ipLink = { mtu: 1500, send() {}, onPacket() {} };
  assert.equal(isEthernetLink(ipLink), false);
  assert.throws(() => new EthernetInterface(ipLink as unknown as EthernetLinkEnd, host), /Ethernet link/);
});

test('onBurstEnd and receivePending are forwarded, and absent when the link lacks them', () => {
  const clock = new VirtualClock();
  const host = new TestHost(clock, ['10.0.0.1/24']);
  let burst: (() => void) | null = null;
  let pendingCalls = 0;
  const full: EthernetLinkEnd = {
    linkType: 'ethernet', mtu: 9000, send() {}, onFrame() {},
    onBurstEnd(fn) { burst = fn; },
    receivePending() { pendingCalls++; },
  };
  const ifc = new EthernetInterface(full, host);
  assert.equal(ifc.mtu, 9000);
  let ended = 0;
  ifc.onBurstEnd!(() => ended++);
  burst!();
  ifc.receivePending!();
  assert.deepEqual([ended, pendingCalls], [1, 1]);
  const bare = new EthernetInterface({ linkType: 'ethernet', mtu: 1500, send() {}, onFrame() {} }, host);
  assert.equal(bare.onBurstEnd, undefined);
  assert.equal(bare.receivePending, undefined);
});

test('sending to resolved neighbours: one frame per packet, no more ARP or NDP', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24', 'fd00::1/64'], A_MAC);
  station(clock, hub, ['10.0.0.2/24', 'fd00::2/64'], '02:00:00:00:00:0b');
  clock.runUntilIdleSync();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  a.ifc.send(ipv6('fd00::1', 'fd00::2'));
  clock.runUntilIdleSync();
  const p4 = ipv4('10.0.0.1', '10.0.0.2');
  const p6 = ipv6('fd00::1', 'fd00::2');
  const before = hub.log.length;
  for (let i = 0; i < 1000; i++) {
    a.ifc.send(p4);
    a.ifc.send(p6);
  }
  const sent = hub.log.slice(before).map((e) => e.frame);
  assert.equal(sent.length, 2000);
  assert.equal(sent.filter((f) => f[12] === 0x08 && f[13] === 0x00).length, 1000);
  assert.ok(sent.every((f) => formatMac(f.subarray(0, 6)) === '02:00:00:00:00:0b'));
  assert.equal(a.host.count('neighbour-queue-full') + a.host.count('neighbour-unreachable'), 0);
});

test('frameObserver sees every frame in (before filtering) and out, ARP included', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['10.0.0.1/24'], A_MAC, { dad: false });
  const b = station(clock, hub, ['10.0.0.2/24'], '02:00:00:00:00:0b', { dad: false });
  const seen: string[] = [];
  a.ifc.frameObserver = (dir, f) => seen.push(`${dir} ${formatMac(f.subarray(0, 6))} ${((f[12]! << 8) | f[13]!).toString(16)}`);
  clock.runUntilIdleSync();
  a.ifc.send(ipv4('10.0.0.1', '10.0.0.2'));
  hub.inject(0, frame('02:00:00:00:00:0c', X_MAC, 0x0800, ipv4('10.0.0.9', '10.0.0.3')));
  clock.runUntilIdleSync();
  assert.deepEqual(seen, [
    'out ff:ff:ff:ff:ff:ff 806', // gratuitous ARP
    'in ff:ff:ff:ff:ff:ff 806', // B's
    'out ff:ff:ff:ff:ff:ff 806', // who-has 10.0.0.2
    'in 02:00:00:00:00:0c 800', // not for us, still seen
    'in 02:00:00:00:00:0a 806', // B's reply
    'out 02:00:00:00:00:0b 800',
  ]);
  void b;
});
