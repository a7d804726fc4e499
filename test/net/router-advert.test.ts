import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { formatMac, parseMac } from '../../src/wire/ethernet.js';
import { findOption, ndpLength, type NdpMessage } from '../../src/wire/ndp.js';
import { Hub, ndpFrame, ndpOf, station } from './harness.js';

const R_MAC = '02:00:00:00:00:01';
const H_MAC = '02:00:00:00:00:0f';

function routerLan(intervalMs = 60_000) {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const r = station(clock, hub, ['fd00:0:2::2/64', '10.0.2.2/24', 'fd00:0:3::1/48', 'fd00:0:4::1/64'], R_MAC, {
    advertise: { dns: ['fd00:0:2::3', '10.0.2.3'], intervalMs },
  });
  const h = station(clock, hub, [], H_MAC);
  return { clock, hub, r, h };
}

type Ra = Extract<NdpMessage, { type: 'router-advertisement' }>;

function ras(frames: Uint8Array[]): { ra: Ra; src: string; dst: string; dstMac: string; hop: number }[] {
  const out = [];
  for (const f of frames) {
    const x = ndpOf(f);
    if (x?.m.type === 'router-advertisement') {
      out.push({ ra: x.m, src: formatAddress(x.src), dst: formatAddress(x.dst), dstMac: formatMac(x.dstMac), hop: x.hop });
    }
  }
  return out;
}

test('RA contents: /64 prefixes with A and L, MTU, RDNSS (IPv6 servers only), our MAC, from the link-local address', () => {
  const { clock, hub, r } = routerLan();
  clock.advanceSync(1);
  const [first] = ras(hub.sent(0));
  assert.ok(first, 'an RA goes out when the interface comes up');
  assert.equal(first.src, formatAddress(r.ifc.linkLocal));
  assert.equal(first.src, 'fe80::ff:fe00:1');
  assert.equal(first.dst, 'ff02::1');
  assert.equal(first.dstMac, '33:33:00:00:00:01');
  assert.equal(first.hop, 255);
  const ra = first.ra;
  assert.equal(ra.curHopLimit, 64);
  assert.equal(ra.routerLifetime, 180, '3 × MaxRtrAdvInterval (RFC 4861 §6.2.1)');
  assert.deepEqual([ra.managed, ra.other], [false, false]);
  const prefixes = ra.options.filter((o) => o.kind === 'prefix');
  assert.deepEqual(prefixes.map((p) => p.kind === 'prefix' && [formatAddress(p.prefix), p.prefixLength, p.onLink, p.autonomous, p.validLifetime, p.preferredLifetime]), [
    ['fd00:0:2::', 64, true, true, 2592000, 604800],
    ['fd00:0:4::', 64, true, true, 2592000, 604800],
  ]);
  assert.equal(findOption(ra.options, 'mtu')?.mtu, 1500);
  const rdnss = findOption(ra.options, 'rdnss')!;
  assert.deepEqual(rdnss.servers.map(formatAddress), ['fd00:0:2::3']);
  assert.equal(rdnss.lifetime, 180, 'at least 3 × MaxRtrAdvInterval (RFC 8106 §5.1)');
  assert.equal(formatMac(findOption(ra.options, 'source-link-layer')!.address), R_MAC);
  assert.equal(r.ifc.counters.raOut, 1);
  assert.deepEqual(r.ifc.routerAdvertisement(), ra);
});

test('RA timing: the first three at most 16 s apart, then between MinRtrAdvInterval and MaxRtrAdvInterval', () => {
  const { clock, hub } = routerLan(60_000);
  const times: number[] = [];
  let seen = 0;
  while (clock.now() < 600_000) {
    clock.advanceSync(100);
    const n = ras(hub.sent(0)).length;
    if (n > seen) {
      seen = n;
      times.push(clock.now());
    }
  }
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  assert.ok(gaps.length >= 9);
  assert.ok(gaps.slice(0, 3).every((g) => g <= 16_100), `initial gaps ${gaps.slice(0, 3)}`);
  assert.ok(gaps.slice(3).every((g) => g >= 19_800 - 100 && g <= 60_100), `gaps ${gaps.slice(3)}`);
});

test('a Router Solicitation is answered within MAX_RA_DELAY_TIME, no sooner than 3 s after the last RA', () => {
  const { clock, hub, r, h } = routerLan();
  clock.advanceSync(10_000);
  hub.log.length = 0;
  const rs = ndpFrame('33:33:00:00:00:02', H_MAC, 'fe80::ff:fe00:f', 'ff02::2', {
    type: 'router-solicitation', options: [{ kind: 'source-link-layer', address: parseMac(H_MAC)! }],
  });
  hub.inject(r.port.index, rs);
  clock.advanceSync(500);
  assert.equal(ras(hub.sent(0)).length, 1);
  // The router learnt the soliciting host (RFC 4861 §6.2.6).
  assert.ok(r.ifc.neighbours().some((n) => n.address === 'fe80::ff:fe00:f' && n.mac === H_MAC && n.state === 'stale'));
  // Another right away: held until 3 s after the previous one (MIN_DELAY_BETWEEN_RAS).
  hub.inject(r.port.index, rs);
  clock.advanceSync(2000);
  assert.equal(ras(hub.sent(0)).length, 1);
  clock.advanceSync(1100);
  assert.equal(ras(hub.sent(0)).length, 2);
  // An RS from :: with a link-layer option is invalid (§6.1.1); to a host it is not even for its MAC.
  hub.inject(r.port.index, ndpFrame('33:33:00:00:00:02', H_MAC, '::', 'ff02::2', {
    type: 'router-solicitation', options: [{ kind: 'source-link-layer', address: parseMac(H_MAC)! }],
  }));
  hub.inject(h.port.index, rs);
  clock.advanceSync(10);
  assert.equal(r.host.count('ndp-invalid'), 1);
  assert.equal(h.host.count('eth-not-for-us') >= 1, true);
});

test('a host receives the RA: counted, the router learnt, the hook called; NDP not passed up', () => {
  const { clock, r, h } = routerLan();
  const seen: string[] = [];
  h.ifc.onRouterAdvertisement = (ra, from) => {
    seen.push(`${formatAddress(from)} ${ra.routerLifetime}`);
  };
  clock.advanceSync(100);
  assert.deepEqual(seen, ['fe80::ff:fe00:1 180']);
  assert.equal(h.ifc.counters.raIn, 1);
  assert.deepEqual(h.ifc.neighbours(), [{ address: 'fe80::ff:fe00:1', mac: R_MAC, state: 'stale' }]);
  assert.deepEqual(h.host.received, []);
  assert.ok(h.host.notes.some((n) => n.includes('router advertisement from fe80::ff:fe00:1') && n.includes('fd00:0:2::/64')));
  void r;
});

test('a router answers solicitations with the R flag (RFC 4861 §7.2.4); a host does not', () => {
  const { clock, hub, r, h } = routerLan();
  clock.advanceSync(3000);
  hub.log.length = 0;
  const ns = (target: string, sn: string, snMac: string): Uint8Array => ndpFrame(snMac, '02:00:00:00:00:77', 'fe80::77', sn, {
    type: 'neighbor-solicitation', target: parseAddress(target)!, options: [{ kind: 'source-link-layer', address: parseMac('02:00:00:00:00:77')! }],
  });
  hub.inject(r.port.index, ns('fd00:0:2::2', 'ff02::1:ff00:2', '33:33:ff:00:00:02'));
  hub.inject(h.port.index, ns('fe80::ff:fe00:f', 'ff02::1:ff00:f', '33:33:ff:00:00:0f'));
  clock.advanceSync(10);
  const rNa = hub.sent(r.port.index).map(ndpOf).find((x) => x?.m.type === 'neighbor-advertisement')!;
  const hNa = hub.sent(h.port.index).map(ndpOf).find((x) => x?.m.type === 'neighbor-advertisement')!;
  assert.equal(rNa.m.type === 'neighbor-advertisement' && rNa.m.router, true);
  assert.equal(hNa.m.type === 'neighbor-advertisement' && hNa.m.router, false);
});

test('a new prefix is advertised soon after addressesChanged', () => {
  const { clock, hub, r } = routerLan();
  clock.advanceSync(40_000);
  const before = ras(hub.sent(0)).length;
  r.host.add('fd00:0:9::1/64');
  r.ifc.addressesChanged();
  clock.advanceSync(3000);
  const all = ras(hub.sent(0));
  assert.equal(all.length, before + 1);
  assert.ok(all.at(-1)!.ra.options.some((o) => o.kind === 'prefix' && formatAddress(o.prefix) === 'fd00:0:9::'));
  r.ifc.close();
  const n = ras(hub.sent(0)).length;
  clock.advanceSync(3_600_000);
  assert.equal(ras(hub.sent(0)).length, n, 'close() stops the RAs');
});

test('an RA carries at most 16 prefixes, so it fits the IPv6 minimum MTU', () => {
  const { r } = routerLan();
  for (let i = 0x10; i < 0x30; i++) r.host.add(`fd00:0:${i.toString(16)}::1/64`);
  const ra = r.ifc.routerAdvertisement()!;
  assert.equal(ra.options.filter((o) => o.kind === 'prefix').length, 16);
  assert.ok(ndpLength(ra) + 40 <= 1280, `${ndpLength(ra)} bytes`);
});
