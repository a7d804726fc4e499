/**
 * Input flood against an Ethernet interface: random frames, and ARP and NDP that lie (random
 * senders, targets, flags, options, hop limits, with valid checksums so they reach the protocol
 * logic), to our MAC, broadcast and our groups. Nothing may throw, every dropped frame carries a
 * known reason, the neighbour caches stay within their bound, and answers never outnumber inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { Rng } from '../../src/link/rng.js';
import { writeArp } from '../../src/wire/arp.js';
import { ETHERTYPE_ARP, ETHERTYPE_IPV6, writeEthernetHeader } from '../../src/wire/ethernet.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { ndpLength, writeNdp, type NdpMessage, type NdpOption } from '../../src/wire/ndp.js';
import { DROP_REASONS } from '../fuzz/gen.js';
import { Hub, station } from './harness.js';

const OUR_MAC = [2, 0, 0, 0, 0, 0x0a];
const DSTS = [OUR_MAC, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x33, 0x33, 0, 0, 0, 1], [0x33, 0x33, 0xff, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 2]];

function bytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
}

/** Mostly addresses near ours (so targets and senders hit), sometimes anything. */
function v6(rng: Rng): Uint8Array {
  const r = rng.int(0, 9);
  if (r < 2) return bytes(rng, 16);
  const a = new Uint8Array(16);
  if (r < 5) a.set([0xfd, 0x00]);
  else if (r < 8) a.set([0xfe, 0x80]);
  else a.set([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]);
  a[13] = rng.int(0, 3) === 0 ? rng.int(0, 255) : 0;
  a[14] = rng.int(0, 3) === 0 ? rng.int(0, 255) : 0;
  a[15] = rng.int(0, 3);
  if (rng.int(0, 3) === 0) a[11] = 0xff, a[12] = 0xfe, a[15] = 0x0a;
  return a;
}

function v4(rng: Rng): Uint8Array {
  return rng.int(0, 3) === 0 ? bytes(rng, 4) : new Uint8Array([10, 0, 0, rng.int(0, 3) === 0 ? 1 : rng.int(0, 255)]);
}

function options(rng: Rng): NdpOption[] {
  const out: NdpOption[] = [];
  for (let i = rng.int(0, 3); i > 0; i--) {
    switch (rng.int(0, 5)) {
      case 0: out.push({ kind: 'source-link-layer', address: bytes(rng, rng.int(0, 4) === 0 ? 14 : 6) }); break;
      case 1: out.push({ kind: 'target-link-layer', address: bytes(rng, 6) }); break;
      case 2: out.push({ kind: 'prefix', prefixLength: rng.int(0, 255), onLink: true, autonomous: true, validLifetime: rng.nextU32(), preferredLifetime: rng.nextU32(), prefix: v6(rng) }); break;
      case 3: out.push({ kind: 'mtu', mtu: rng.nextU32() }); break;
      case 4: out.push({ kind: 'rdnss', lifetime: rng.nextU32(), servers: [v6(rng)] }); break;
      default: out.push({ kind: 'unknown', type: rng.int(6, 24), data: bytes(rng, 6) });
    }
  }
  return out;
}

function ndp(rng: Rng): NdpMessage {
  switch (rng.int(0, 4)) {
    case 0: return { type: 'router-solicitation', options: options(rng) };
    case 1: return { type: 'router-advertisement', curHopLimit: rng.int(0, 255), managed: false, other: false, routerLifetime: rng.int(0, 0xffff), reachableTime: 0, retransTimer: 0, options: options(rng) };
    case 2: return { type: 'neighbor-solicitation', target: v6(rng), options: options(rng) };
    case 3: return { type: 'neighbor-advertisement', router: rng.int(0, 1) === 1, solicited: rng.int(0, 1) === 1, override: rng.int(0, 1) === 1, target: v6(rng), options: options(rng) };
    default: return { type: 'redirect', target: v6(rng), destination: v6(rng), options: options(rng) };
  }
}

function frame(rng: Rng): Uint8Array {
  const dst = new Uint8Array(DSTS[rng.int(0, DSTS.length - 1)]!);
  const src = bytes(rng, 6);
  if (rng.int(0, 20) !== 0) src[0]! &= 0xfe; // mostly unicast sources
  const kind = rng.int(0, 9);
  if (kind === 0) return bytes(rng, rng.int(0, 80));
  if (kind <= 4) {
    const f = new Uint8Array(42 + rng.int(0, 18));
    writeEthernetHeader(f, 0, dst, src, ETHERTYPE_ARP);
    writeArp(f, 14, rng.int(0, 5) === 0 ? 2 : 1, rng.int(0, 3) === 0 ? bytes(rng, 6) : src, v4(rng), bytes(rng, 6), v4(rng));
    if (rng.int(0, 10) === 0) f[14 + rng.int(0, 27)] ^= 1 << rng.int(0, 7);
    return f;
  }
  const m = ndp(rng);
  const s = rng.int(0, 4) === 0 ? new Uint8Array(16) : v6(rng);
  const d = v6(rng);
  const len = ndpLength(m);
  const f = new Uint8Array(54 + len);
  writeEthernetHeader(f, 0, dst, src, ETHERTYPE_IPV6);
  writeIpv6Header(f, 14, s, d, 58, len, rng.int(0, 8) === 0 ? rng.int(0, 255) : 255);
  writeNdp(f, 54, m, s, d);
  if (rng.int(0, 10) === 0) f[rng.int(0, f.length - 1)] ^= 1 << rng.int(0, 7);
  return f;
}

for (const router of [false, true]) {
  test(`flood of random and lying frames, ${router ? 'router' : 'host'} mode: no throw, known reasons, bounded caches`, () => {
    const clock = new VirtualClock();
    const hub = new Hub(clock);
    const a = station(clock, hub, ['10.0.0.1/24', 'fd00::1/64'], '02:00:00:00:00:0a', {
      neighbourCacheSize: 128,
      ...(router ? { advertise: { dns: ['fd00::53'], intervalMs: 30_000 } } : {}),
    });
    clock.runUntilIdleSync({ maxMs: 3000 });
    const rng = new Rng(router ? 2 : 1);
    const N = 30_000;
    for (let i = 0; i < N; i++) {
      hub.inject(0, frame(rng));
      if (i % 1000 === 999) clock.advanceSync(50);
    }
    // Some of our own traffic meanwhile, to unresolvable and resolvable neighbours.
    clock.advanceSync(10_000);
    const framesIn = a.ifc.counters.framesIn;
    assert.ok(framesIn >= N);
    for (const [reason] of a.host.drops) assert.ok(DROP_REASONS.has(reason), `unknown drop reason ${reason}`);
    const n = a.ifc.neighbours();
    assert.ok(n.filter((e) => e.address.includes('.')).length <= 128);
    assert.ok(n.filter((e) => e.address.includes(':')).length <= 128);
    // Answers (ARP replies, NAs, RAs and probes) are bounded by what came in.
    assert.ok(a.ifc.counters.framesOut <= framesIn, `${a.ifc.counters.framesOut} out for ${framesIn} in`);
    assert.ok(a.host.received.length < N / 10, 'ARP and NDP are not passed up');
    assert.ok(a.host.drops.size >= 10, [...a.host.drops.keys()].join(" "));
  });
}
