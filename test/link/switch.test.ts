import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import type { EthernetPort, EthernetSwitchOptions, SwitchDropReason } from '../../src/link/switch.js';
import { isEthernetLink } from '../../src/link/link.js';

const BROADCAST = 'ff:ff:ff:ff:ff:ff';

function mac(n: number): string {
  return `02:00:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
}

function macBytes(text: string): number[] {
  return text.split(':').map((h) => parseInt(h, 16));
}

/** An Ethernet II frame dst ← src carrying `id` in its first two payload bytes; `len` bytes in all. */
function frame(dst: string, src: string, id = 0, len = 64): Uint8Array {
  const f = new Uint8Array(len);
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  f[12] = 0x08; // IPv4 ethertype: the switch does not care
  if (len >= 16) {
    f[14] = id >> 8;
    f[15] = id & 0xff;
  }
  return f;
}
const idOf = (f: Uint8Array): number => (f[14]! << 8) | f[15]!;

interface Host {
  port: EthernetPort;
  got: Uint8Array[];
  bursts: number;
}

function lan(n: number, options: EthernetSwitchOptions = {}) {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, ...options });
  const hosts: Host[] = [];
  for (let i = 0; i < n; i++) {
    const h: Host = { port: sw.port(), got: [], bursts: 0 };
    h.port.onFrame((f) => h.got.push(f));
    h.port.onBurstEnd(() => h.bursts++);
    hosts.push(h);
  }
  return { clock, sw, hosts };
}

test('a port is an Ethernet link end with the switch MTU', () => {
  const { sw, hosts } = lan(1, { mtu: 9000 });
  assert.equal(isEthernetLink(hosts[0]!.port), true);
  assert.equal(hosts[0]!.port.mtu, 9000);
  assert.equal(sw.mtu, 9000);
});

test('unknown unicast is flooded to every port but the ingress; the reply is forwarded to one port only', () => {
  const { clock, sw, hosts } = lan(4);
  const [a, b, c, d] = hosts as [Host, Host, Host, Host];
  a.port.send(frame(mac(2), mac(1), 1));
  assert.equal(b.got.length, 0, 'never inside send()');
  clock.runUntilIdleSync();
  assert.equal(a.got.length, 0, 'not echoed to the ingress port');
  for (const h of [b, c, d]) assert.deepEqual(h.got.map(idOf), [1]);
  // b answers: a's MAC was learned on port 0, so only a gets it.
  b.port.send(frame(mac(1), mac(2), 2));
  clock.runUntilIdleSync();
  assert.deepEqual(a.got.map(idOf), [2]);
  assert.equal(c.got.length, 1);
  assert.equal(d.got.length, 1);
  // And a → b now goes to b alone, learned from b's reply.
  a.port.send(frame(mac(2), mac(1), 3));
  clock.runUntilIdleSync();
  assert.deepEqual(b.got.map(idOf), [1, 3]);
  assert.equal(c.got.length, 1);
  assert.equal(sw.stats.flooded, 1);
  assert.equal(sw.stats.forwarded, 2);
  assert.equal(sw.stats.learned, 2);
  assert.deepEqual(
    sw.macTable().map((e) => [e.mac, e.port]).sort(),
    [[mac(1), 0], [mac(2), 1]],
  );
  assert.equal(a.port.stats.sent, 2);
  assert.equal(a.port.stats.received, 1);
  assert.equal(a.port.stats.receivedBytes, 64);
});

test('broadcast and multicast are flooded even to a learned MAC; the same bytes reach every port (no copies)', () => {
  const { clock, sw, hosts } = lan(5);
  const [a, b] = hosts as [Host, Host];
  b.port.send(frame(mac(1), mac(2), 0)); // learn b
  clock.runUntilIdleSync();
  for (const h of hosts) h.got.length = 0;
  const bcast = frame(BROADCAST, mac(1), 7);
  a.port.send(bcast);
  a.port.send(frame('33:33:00:00:00:01', mac(1), 8)); // IPv6 all-nodes multicast
  clock.runUntilIdleSync();
  assert.equal(a.got.length, 0);
  for (const h of hosts.slice(1)) {
    assert.deepEqual(h.got.map(idOf), [7, 8]);
    assert.equal(h.got[0], bcast, 'the very array the sender gave: receivers treat frames as read-only');
  }
  assert.equal(sw.stats.flooded, 3);
  assert.equal(sw.stats.deliveries, 4 + 2 * 4, "the first (unknown unicast) flooded too");
});

test('a frame for a MAC learned on the ingress port is filtered, not sent back', () => {
  const { clock, sw, hosts } = lan(3);
  const [a, b, c] = hosts as [Host, Host, Host];
  a.port.send(frame(BROADCAST, mac(1)));
  a.port.send(frame(BROADCAST, mac(11))); // a second station behind port 0 (a host behind a hub)
  clock.runUntilIdleSync();
  a.port.send(frame(mac(11), mac(1), 5));
  clock.runUntilIdleSync();
  assert.equal(a.got.length, 0);
  assert.equal(b.got.length, 2);
  assert.equal(c.got.length, 2);
  assert.equal(sw.stats.filtered, 1);
});

test('a station that moves to another port is followed', () => {
  const { clock, sw, hosts } = lan(3);
  const [a, b, c] = hosts as [Host, Host, Host];
  a.port.send(frame(BROADCAST, mac(9)));
  clock.runUntilIdleSync();
  b.port.send(frame(BROADCAST, mac(9))); // mac 9 now behind port 1
  clock.runUntilIdleSync();
  c.port.send(frame(mac(9), mac(3), 4));
  clock.runUntilIdleSync();
  assert.deepEqual(b.got.filter((f) => idOf(f) === 4).length, 1);
  assert.equal(a.got.filter((f) => idOf(f) === 4).length, 0);
  assert.equal(sw.stats.moved, 1);
});

test('every port that received in a burst gets one onBurstEnd call after it', () => {
  const { clock, hosts } = lan(3);
  const [a, b, c] = hosts as [Host, Host, Host];
  const order: string[] = [];
  b.port.onFrame((f) => order.push(`frame ${idOf(f)}`));
  b.port.onBurstEnd(() => order.push('end'));
  for (let i = 0; i < 3; i++) a.port.send(frame(BROADCAST, mac(1), i));
  clock.runUntilIdleSync();
  assert.deepEqual(order, ['frame 0', 'frame 1', 'frame 2', 'end']);
  assert.equal(c.bursts, 1);
  assert.equal(a.bursts, 0);
});

test('the MAC table is bounded: sources beyond it are not learned and frames to them are flooded', () => {
  const { clock, sw, hosts } = lan(3, { macTableSize: 4 });
  const [a, b, c] = hosts as [Host, Host, Host];
  for (let i = 1; i <= 6; i++) a.port.send(frame(BROADCAST, mac(100 + i)));
  clock.runUntilIdleSync();
  assert.equal(sw.macTable().length, 4);
  assert.equal(sw.stats.learned, 4);
  assert.equal(sw.stats.tableFull, 2);
  b.got.length = 0;
  c.got.length = 0;
  // 101 was learned: forwarded to a only. 106 was not: flooded (to a and c).
  b.port.send(frame(mac(101), mac(2), 1));
  clock.runUntilIdleSync();
  assert.equal(c.got.length, 0);
  // Port 1's own MAC could not be learned either (full): that does not matter here.
  b.port.send(frame(mac(106), mac(2), 2));
  clock.runUntilIdleSync();
  assert.deepEqual(c.got.map(idOf), [2]);
  assert.ok(a.got.some((f) => idOf(f) === 2));
});

test('entries age out after ageingMs (default 300 s); a full table makes room from aged entries', async () => {
  const { clock, sw, hosts } = lan(3, { macTableSize: 2 });
  const [a, b, c] = hosts as [Host, Host, Host];
  a.port.send(frame(BROADCAST, mac(1)));
  clock.runUntilIdleSync();
  clock.advanceSync(299_000);
  c.port.send(frame(mac(1), mac(3), 1));
  clock.runUntilIdleSync();
  assert.equal(b.got.filter((f) => idOf(f) === 1).length, 0, 'still known at 299 s: forwarded to a only');
  clock.advanceSync(1_000);
  c.port.send(frame(mac(1), mac(3), 2));
  clock.runUntilIdleSync();
  assert.equal(b.got.filter((f) => idOf(f) === 2).length, 1, 'forgotten at 300 s: flooded');
  assert.equal(sw.stats.aged, 1);
  assert.deepEqual(sw.macTable().map((e) => e.mac), [mac(3)]);
  // mac(3) learned at 299 s; the table (size 2) fills with mac(4); at 600 s both aged → room again.
  b.port.send(frame(BROADCAST, mac(4)));
  clock.runUntilIdleSync();
  a.port.send(frame(BROADCAST, mac(5)));
  clock.runUntilIdleSync();
  assert.equal(sw.stats.tableFull, 1);
  clock.advanceSync(301_000);
  a.port.send(frame(BROADCAST, mac(5)));
  clock.runUntilIdleSync();
  assert.deepEqual(sw.macTable().map((e) => e.mac), [mac(5)]);
});

test('frames longer than mtu + 18, runts and bad sources are dropped, with reasons', () => {
  const { clock, sw, hosts } = lan(2, { mtu: 1500 });
  const [a, b] = hosts as [Host, Host];
  const drops: SwitchDropReason[] = [];
  a.port.onDrop((_f, reason) => drops.push(reason));
  a.port.send(frame(BROADCAST, mac(1), 1, 1518)); // passes: 1500 + 14 + a VLAN tag
  a.port.send(frame(BROADCAST, mac(1), 2, 1519));
  a.port.send(new Uint8Array(13));
  a.port.send(frame(BROADCAST, BROADCAST, 3));
  a.port.send(frame(BROADCAST, '00:00:00:00:00:00', 4));
  clock.runUntilIdleSync();
  assert.deepEqual(b.got.map(idOf), [1]);
  assert.deepEqual(drops, ['mtu', 'runt', 'bad-source', 'bad-source']);
  assert.equal(sw.stats.runts, 1);
  assert.equal(sw.stats.badSource, 2);
  assert.equal(a.port.stats.dropped, 1, "the wire's own drops (mtu)");
});

test('a removed port receives nothing, its entries go, and what it sends is dropped', () => {
  const { clock, sw, hosts } = lan(3);
  const [a, b, c] = hosts as [Host, Host, Host];
  b.port.send(frame(BROADCAST, mac(2)));
  clock.runUntilIdleSync();
  b.got.length = 0;
  b.port.send(frame(BROADCAST, mac(2), 9)); // in flight when removed
  b.port.remove();
  b.port.remove();
  assert.equal(b.port.removed, true);
  assert.deepEqual(sw.ports.map((p) => p.id), [0, 2]);
  assert.equal(sw.macTable().length, 0);
  a.port.send(frame(mac(2), mac(1), 1));
  b.port.send(frame(BROADCAST, mac(2), 2));
  clock.runUntilIdleSync();
  assert.equal(b.got.length, 0);
  assert.deepEqual(c.got.map(idOf), [0, 1], 'the frame in flight from b was lost; the unknown unicast flooded to c');
  // A new port gets a new number.
  assert.equal(sw.port().id, 3);
});

test('a port removed by a receiver during a flood is skipped without disturbing the flood', () => {
  const { clock, hosts } = lan(4);
  const [a, b, c, d] = hosts as [Host, Host, Host, Host];
  b.port.onFrame(() => c.port.remove());
  a.port.send(frame(BROADCAST, mac(1)));
  clock.runUntilIdleSync();
  assert.equal(c.got.length, 0);
  assert.equal(d.got.length, 1);
});

/** Sends 200 broadcasts from every one of 3 ports under `options`; what each port received, with times. */
function impairedRun(options: EthernetSwitchOptions): string {
  const { clock, hosts } = lan(3, { delayMs: 5, lossRate: 0.2, reorderRate: 0.1, duplicateRate: 0.05, corruptRate: 0.05, ...options });
  const log: string[] = [];
  hosts.forEach((h, i) => h.port.onFrame((f) => log.push(`${i}<${f[11]}:${idOf(f)}@${clock.now().toFixed(3)}:${f[40]}`)));
  for (let k = 0; k < 200; k++) {
    hosts.forEach((h, i) => h.port.send(frame(BROADCAST, mac(i + 1), k)));
  }
  clock.runUntilIdleSync();
  return log.join(' ');
}

test('impairments replay exactly for a seed, differ across seeds, and each port has its own stream', () => {
  const a = impairedRun({ seed: 7 });
  assert.equal(impairedRun({ seed: 7 }), a);
  assert.notEqual(impairedRun({ seed: 8 }), a);
  // Each port draws from its own stream: port 0's fate does not depend on what port 1 sends.
  const clock = new VirtualClock();
  const fate = (extra: boolean): string => {
    const sw = new EthernetSwitch({ clock, seed: 3, lossRate: 0.5 });
    const p0 = sw.port();
    const p1 = sw.port();
    const sink = sw.port();
    const got: number[] = [];
    sink.onFrame((f) => {
      if (f[11] === 1) got.push(idOf(f));
    });
    for (let k = 0; k < 100; k++) {
      p0.send(frame(BROADCAST, mac(1), k));
      if (extra) p1.send(frame(BROADCAST, mac(2), k));
    }
    clock.runUntilIdleSync();
    return got.join(',');
  };
  assert.equal(fate(true), fate(false));
  const lost = 100 - fate(false).split(',').length;
  assert.ok(lost > 30 && lost < 70, `about half lost: ${lost}`);
});

test('a port can have impairments of its own', () => {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, delayMs: 1 });
  const slow = sw.port({ delayMs: 50 });
  const fast = sw.port();
  const sink = sw.port();
  const at: Record<number, number> = {};
  sink.onFrame((f) => (at[f[11]!] = clock.now()));
  slow.send(frame(BROADCAST, mac(1)));
  fast.send(frame(BROADCAST, mac(2)));
  clock.runUntilIdleSync();
  assert.deepEqual(at, { 1: 50, 2: 1 });
  assert.throws(() => new EthernetSwitch({ clock, lossRate: 2 }), /lossRate/);
});

test('1,000 ports: a broadcast from each reaches the other 999; unicast between learned hosts touches one port', () => {
  const { clock, sw, hosts } = lan(1000);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) hosts[i]!.port.send(frame(BROADCAST, mac(i + 1), i));
  clock.runUntilIdleSync();
  const ms = performance.now() - t0;
  assert.equal(sw.stats.deliveries, 1000 * 999);
  for (const h of hosts) assert.equal(h.got.length, 999);
  assert.equal(sw.macTable().length, 1000);
  assert.ok(ms < 5000, `1,000 broadcasts to 1,000 ports took ${ms.toFixed(0)} ms`);
  const before = sw.stats.deliveries;
  for (let i = 0; i < 1000; i++) hosts[i]!.port.send(frame(mac(((i + 1) % 1000) + 1), mac(i + 1), i));
  clock.runUntilIdleSync();
  assert.equal(sw.stats.deliveries - before, 1000);
});

test('an observer sees every frame entering the switch', () => {
  const { clock, sw, hosts } = lan(2);
  const seen: number[] = [];
  sw.onFrame((f, from) => seen.push(from.id * 100 + idOf(f)));
  const tx: number[] = [];
  hosts[0]!.port.onTransmit((f) => tx.push(idOf(f)));
  hosts[0]!.port.send(frame(BROADCAST, mac(1), 1));
  hosts[1]!.port.send(frame(BROADCAST, mac(2), 2));
  clock.runUntilIdleSync();
  assert.deepEqual(seen.sort(), [1, 102]);
  assert.deepEqual(tx, [1]);
});
