import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { formatMac, parseMac } from '../../src/wire/ethernet.js';
import { findOption, type NdpMessage, type NdpOption } from '../../src/wire/ndp.js';
import { Hub, ipv6, ndpFrame, ndpOf, station } from './harness.js';

const A_MAC = '02:00:00:00:00:0a';
const B_MAC = '02:00:00:00:00:0b';
const X_MAC = '02:00:00:00:00:99';

function lan(opts: { dad?: boolean } = {}) {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['fd00::1/64'], A_MAC, opts);
  const b = station(clock, hub, ['fd00::2/64'], B_MAC, opts);
  // DAD for the link-local and the configured address (≤ 1 s delay + 1 s wait).
  clock.runUntilIdleSync();
  hub.log.length = 0;
  return { clock, hub, a, b };
}

test('link-local address from the MAC; DAD runs for it and for configured addresses', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['fd00::1/64'], A_MAC);
  assert.equal(formatAddress(a.ifc.linkLocal), 'fe80::ff:fe00:a');
  clock.advanceSync(0);
  assert.equal(a.ifc.addressState('fd00::1'), 'tentative');
  assert.equal(a.ifc.addressState(a.ifc.linkLocal), 'tentative');
  clock.runUntilIdleSync();
  assert.equal(a.ifc.addressState('fd00::1'), 'preferred');
  assert.equal(a.ifc.addressState('fe80::ff:fe00:a'), 'preferred');
  assert.equal(a.ifc.addressState('fd00::9'), null);
  // The probes: from ::, to the solicited-node group, hop limit 255, no options (RFC 4862 §5.4.2).
  const probes = hub.sent(0).map(ndpOf).filter((x) => x !== null);
  assert.equal(probes.length, 2);
  for (const p of probes) {
    assert.equal(p!.m.type, 'neighbor-solicitation');
    assert.equal(formatAddress(p!.src), '::');
    assert.equal(p!.hop, 255);
    assert.deepEqual(p!.m.options, []);
  }
  const targets = probes.map((p) => (p!.m.type === 'neighbor-solicitation' ? formatAddress(p!.m.target) : '')).sort();
  assert.deepEqual(targets, ['fd00::1', 'fe80::ff:fe00:a']);
  assert.equal(formatAddress(probes.find((p) => p!.m.type === 'neighbor-solicitation' && p!.m.target[0] === 0xfd)!.dst), 'ff02::1:ff00:1');
  assert.ok(a.host.notes.some((n) => n.includes('DAD found no other user of fd00::1')));
});

test('NDP resolution: NS to the solicited-node group with our MAC, solicited NA back, queued packets flushed', () => {
  const { clock, hub, a, b } = lan();
  for (let i = 1; i <= 2; i++) a.ifc.send(ipv6('fd00::1', 'fd00::2', i));
  const ns = ndpOf(hub.sent(0)[0]!)!;
  assert.equal(ns.m.type, 'neighbor-solicitation');
  assert.equal(formatAddress(ns.dst), 'ff02::1:ff00:2');
  assert.equal(formatMac(ns.dstMac), '33:33:ff:00:00:02');
  assert.equal(formatAddress(ns.src), 'fd00::1', 'from our address on the target\'s prefix (RFC 4861 §7.2.2)');
  assert.equal(formatMac(findOption(ns.m.options, 'source-link-layer')!.address), A_MAC);
  clock.runUntilIdleSync();
  const na = hub.sent(1).map(ndpOf).find((x) => x?.m.type === 'neighbor-advertisement')!;
  assert.ok(na);
  if (na.m.type !== 'neighbor-advertisement') return;
  assert.deepEqual([na.m.router, na.m.solicited, na.m.override], [false, true, true]);
  assert.equal(formatAddress(na.dst), 'fd00::1');
  assert.equal(formatMac(na.dstMac), A_MAC);
  assert.equal(formatMac(findOption(na.m.options, 'target-link-layer')!.address), B_MAC);
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [1, 2]);
  assert.deepEqual(a.ifc.neighbours(), [{ address: 'fd00::2', mac: B_MAC, state: 'reachable' }]);
  // B learnt A from the NS (stale, RFC 4861 §7.2.3).
  assert.deepEqual(b.ifc.neighbours(), [{ address: 'fd00::1', mac: A_MAC, state: 'stale' }]);
  // NDP never reaches the stack.
  assert.ok(b.host.received.every((p) => p[6] !== 58));
  assert.ok(a.host.received.every((p) => p[6] !== 58));
});

test('link-local destinations are on-link; off-link ones go to the router, none is net-no-route', () => {
  const { clock, hub, a, b } = lan();
  a.ifc.send(ipv6('fe80::ff:fe00:a', 'fe80::ff:fe00:b', 1));
  clock.runUntilIdleSync();
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [1]);
  a.ifc.send(ipv6('fd00::1', '2001:db8::1', 2));
  assert.equal(a.host.count('net-no-route'), 1);
  a.host.routers[6] = parseAddress('fe80::ff:fe00:b');
  hub.log.length = 0;
  a.ifc.send(ipv6('fd00::1', '2001:db8::1', 3));
  clock.runUntilIdleSync();
  assert.equal(formatMac(hub.sent(0).at(-1)!.subarray(0, 6)), B_MAC);
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [1, 3]);
  // Multicast goes to 33:33 + the group's low 32 bits, without NDP.
  hub.log.length = 0;
  a.ifc.send(ipv6('fd00::1', 'ff02::1', 4));
  assert.equal(formatMac(hub.sent(0)[0]!.subarray(0, 6)), '33:33:00:00:00:01');
  clock.runUntilIdleSync();
  assert.deepEqual(b.host.received.map((p) => p[p.length - 1]), [1, 3, 4]);
});

test('DAD conflict: an address already in use is found and reported, and never answered for', () => {
  const { clock, hub, a, b } = lan();
  // B takes A's address.
  b.host.add('fd00::1/64');
  b.ifc.addressesChanged();
  assert.equal(b.ifc.addressState('fd00::1'), 'tentative');
  clock.runUntilIdleSync();
  assert.equal(b.ifc.addressState('fd00::1'), 'duplicate');
  assert.equal(b.ifc.counters.dadConflicts, 1);
  assert.ok(b.host.notes.some((n) => n.includes('DAD failed: fd00::1 is in use')));
  // A answered the probe from :: with an NA to all nodes, not solicited (RFC 4861 §7.2.4).
  const na = hub.sent(0).map(ndpOf).find((x) => x?.m.type === 'neighbor-advertisement')!;
  assert.equal(formatAddress(na.dst), 'ff02::1');
  assert.equal(na.m.type === 'neighbor-advertisement' && na.m.solicited, false);
  assert.equal(a.ifc.addressState('fd00::1'), 'preferred');
  // B does not answer solicitations for its duplicate address.
  hub.log.length = 0;
  hub.inject(1, ndpFrame('33:33:ff:00:00:01', X_MAC, 'fd00::99', 'ff02::1:ff00:1', {
    type: 'neighbor-solicitation', target: parseAddress('fd00::1')!, options: [{ kind: 'source-link-layer', address: parseMac(X_MAC)! }],
  }));
  clock.runUntilIdleSync();
  assert.equal(hub.sent(1).length, 0);
  assert.equal(b.host.count('ndp-not-for-us'), 1);
});

test('two nodes probing the same address at once: the later one sees the other\'s probe (RFC 4862 §5.4.3)', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['fd00::7/64'], A_MAC, { seed: 1 });
  const b = station(clock, hub, ['fd00::7/64'], B_MAC, { seed: 2 });
  clock.runUntilIdleSync();
  const states = [a.ifc.addressState('fd00::7'), b.ifc.addressState('fd00::7')].sort();
  assert.deepEqual(states, ['duplicate', 'preferred']);
  assert.equal(a.ifc.counters.dadConflicts + b.ifc.counters.dadConflicts, 1);
});

test('a tentative address is not answered for; one without DAD is preferred at once', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['fd00::1/64'], A_MAC, { dad: false });
  clock.advanceSync(0);
  assert.equal(a.ifc.addressState('fd00::1'), 'preferred');
  assert.equal(hub.sent(0).filter((f) => ndpOf(f) !== null).length, 0, 'no probes');
});

test('NDP validation: hop limit 255, multicast targets, DAD probes with options, NAs nobody asked for', () => {
  const { clock, hub, a } = lan();
  const ns = (target: string, options: NdpOption[]): NdpMessage =>
    ({ type: 'neighbor-solicitation', target: parseAddress(target)!, options });
  const slla: NdpOption[] = [{ kind: 'source-link-layer', address: parseMac(X_MAC)! }];
  hub.inject(0, ndpFrame('33:33:ff:00:00:01', X_MAC, 'fd00::99', 'ff02::1:ff00:1', ns('fd00::1', slla), 64));
  hub.inject(0, ndpFrame('33:33:ff:00:00:01', X_MAC, 'fd00::99', 'ff02::1:ff00:1', ns('ff02::1', slla)));
  hub.inject(0, ndpFrame('33:33:ff:00:00:01', X_MAC, '::', 'ff02::1:ff00:1', ns('fd00::1', slla)));
  hub.inject(0, ndpFrame(A_MAC, X_MAC, 'fd00::99', 'fd00::1', {
    type: 'neighbor-advertisement', router: false, solicited: true, override: true, target: parseAddress('fd00::42')!,
    options: [{ kind: 'target-link-layer', address: parseMac(X_MAC)! }],
  }));
  hub.inject(0, ndpFrame('33:33:00:00:00:01', X_MAC, 'fd00::99', 'ff02::1', {
    type: 'neighbor-advertisement', router: false, solicited: true, override: true, target: parseAddress('fd00::99')!, options: [],
  }));
  clock.runUntilIdleSync();
  assert.equal(a.host.count('ndp-bad-hop-limit'), 1);
  assert.equal(a.host.count('ndp-invalid'), 3);
  assert.equal(a.host.count('ndp-unsolicited'), 1);
  assert.equal(hub.sent(0).length, 0, 'nothing answered');
  assert.deepEqual(a.ifc.neighbours(), []);
});

test('NS for our address from another node is answered; a probe from :: gets an NA to all nodes', () => {
  const { clock, hub, a } = lan();
  hub.inject(0, ndpFrame('33:33:ff:00:00:01', X_MAC, 'fd00::99', 'ff02::1:ff00:1', {
    type: 'neighbor-solicitation', target: parseAddress('fd00::1')!, options: [{ kind: 'source-link-layer', address: parseMac(X_MAC)! }],
  }));
  // A unicast NS (a probe of a stale entry) carries no link-layer option: answered to the frame's source.
  hub.inject(0, ndpFrame(A_MAC, '02:00:00:00:00:98', 'fd00::98', 'fd00::1', {
    type: 'neighbor-solicitation', target: parseAddress('fd00::1')!, options: [],
  }));
  hub.inject(0, ndpFrame('33:33:ff:00:00:01', X_MAC, '::', 'ff02::1:ff00:1', {
    type: 'neighbor-solicitation', target: parseAddress('fd00::1')!, options: [],
  }));
  clock.runUntilIdleSync();
  const nas = hub.sent(0).map(ndpOf).filter((x) => x?.m.type === 'neighbor-advertisement');
  assert.deepEqual(nas.map((x) => [formatMac(x!.dstMac), formatAddress(x!.dst), x!.m.type === 'neighbor-advertisement' && x!.m.solicited]), [
    [X_MAC, 'fd00::99', true],
    ['02:00:00:00:00:98', 'fd00::98', true],
    ['33:33:00:00:00:01', 'ff02::1', false],
  ]);
  assert.deepEqual(a.ifc.neighbours(), [{ address: 'fd00::99', mac: X_MAC, state: 'stale' }]);
});

test('NA rules (RFC 4861 §7.2.5): without Override a different MAC does not replace a known one', () => {
  const { clock, hub, a } = lan();
  a.ifc.send(ipv6('fd00::1', 'fd00::2'));
  clock.runUntilIdleSync();
  const na = (override: boolean, solicited: boolean, mac: string): Uint8Array => ndpFrame(A_MAC, mac, 'fd00::2', 'fd00::1', {
    type: 'neighbor-advertisement', router: false, solicited, override, target: parseAddress('fd00::2')!,
    options: [{ kind: 'target-link-layer', address: parseMac(mac)! }],
  });
  hub.inject(0, na(false, false, '02:00:00:00:0b:0b'));
  clock.runUntilIdleSync();
  assert.deepEqual(a.ifc.neighbours(), [{ address: 'fd00::2', mac: B_MAC, state: 'stale' }]);
  hub.inject(0, na(true, true, '02:00:00:00:0b:0b'));
  clock.runUntilIdleSync();
  assert.deepEqual(a.ifc.neighbours(), [{ address: 'fd00::2', mac: '02:00:00:00:0b:0b', state: 'reachable' }]);
});

test('unresolvable IPv6 neighbour: 3 NS, then neighbour-unreachable', () => {
  const { clock, hub, a } = lan();
  a.ifc.send(ipv6('fd00::1', 'fd00::77'));
  clock.advanceSync(5000);
  const nss = hub.sent(0).map(ndpOf).filter((x) => x?.m.type === 'neighbor-solicitation');
  assert.equal(nss.length, 3);
  assert.equal(a.host.count('neighbour-unreachable'), 1);
  assert.deepEqual(a.ifc.neighbours(), []);
});

test('a flood of lying NDP keeps the cache bounded', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const a = station(clock, hub, ['fd00::1/64'], A_MAC, { neighbourCacheSize: 256 });
  clock.runUntilIdleSync();
  for (let i = 0; i < 5000; i++) {
    const src = `fd00::${(i + 0x1000).toString(16)}`;
    const mac = `02:00:00:01:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    hub.inject(0, ndpFrame('33:33:ff:00:00:01', mac, src, 'ff02::1:ff00:1', {
      type: 'neighbor-solicitation', target: parseAddress('fd00::1')!, options: [{ kind: 'source-link-layer', address: parseMac(mac)! }],
    }));
    hub.inject(0, ndpFrame(A_MAC, mac, src, 'fd00::1', {
      type: 'neighbor-advertisement', router: false, solicited: true, override: true, target: parseAddress(`fd00::${i.toString(16)}:2`)!,
      options: [{ kind: 'target-link-layer', address: parseMac(mac)! }],
    }));
  }
  clock.runUntilIdleSync();
  assert.equal(a.ifc.neighbours().length, 256);
  assert.equal(a.host.count('ndp-unsolicited'), 5000);
});
