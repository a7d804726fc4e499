/**
 * `impair()`: synack's impairment model around any link end. Here the inner link is a perfect
 * MemoryLink, so whatever happens to the packets is the wrapper's doing; the same wrapper goes around
 * a TunLink in `synack serve|get --loss …` (test/cli/kernel-http.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { impair, ImpairedWire } from '../../src/link/impair.js';
import type { ImpairOptions } from '../../src/link/impair.js';
import { MemoryLink } from '../../src/link/memory.js';
import { Stack } from '../../src/index.node.js';
import type { Socket } from '../../src/socket/net.js';
import { pattern } from '../socket/harness.js';

function pkt(id: number): Uint8Array {
  const p = new Uint8Array(100);
  p[0] = id >> 8;
  p[1] = id & 0xff;
  return p;
}
const idOf = (p: Uint8Array): number => (p[0]! << 8) | p[1]!;

/** n packets each way through an impaired end (a) and a plain one (b); what arrives where, and when. */
function exchange(options: ImpairOptions, n: number) {
  const clock = new VirtualClock();
  const [inner, b] = MemoryLink.pair({ clock });
  const a = impair(inner, { ...options, clock });
  const atB: Array<[number, number]> = [];
  const atA: Array<[number, number]> = [];
  b.onPacket((p) => atB.push([idOf(p), clock.now()]));
  a.onPacket((p) => atA.push([idOf(p), clock.now()]));
  for (let i = 0; i < n; i++) {
    a.send(pkt(i));
    b.send(pkt(i));
  }
  clock.runUntilIdleSync();
  return { a, atA, atB };
}

test('impair(): the delay applies to each direction; nothing is lost on a clean setting', () => {
  const { a, atA, atB } = exchange({ delayMs: 20 }, 5);
  assert.deepEqual(atB, [0, 1, 2, 3, 4].map((i) => [i, 20]), 'out: 20 ms later, in order');
  assert.deepEqual(atA, [0, 1, 2, 3, 4].map((i) => [i, 20]), 'in: 20 ms later, in order');
  assert.equal(a.mtu, 1500, 'the inner link\'s MTU');
  assert.deepEqual(a.stats.out, { sent: 5, delivered: 5, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0 });
  assert.deepEqual(a.stats.in, { sent: 5, delivered: 5, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0 });
});

test('impair(): loss and reordering in both directions, at about the rates asked, the same for a seed', () => {
  const n = 4000;
  const one = exchange({ lossRate: 0.02, reorderRate: 0.05, delayMs: 20, seed: 9 }, n);
  const again = exchange({ lossRate: 0.02, reorderRate: 0.05, delayMs: 20, seed: 9 }, n);
  const other = exchange({ lossRate: 0.02, reorderRate: 0.05, delayMs: 20, seed: 10 }, n);
  for (const dir of ['out', 'in'] as const) {
    const s = one.a.stats[dir];
    assert.ok(s.dropped > n * 0.01 && s.dropped < n * 0.03, `${dir}: ${s.dropped} lost of ${n}`);
    assert.ok(s.reordered > n * 0.035 && s.reordered < n * 0.065, `${dir}: ${s.reordered} reordered of ${n}`);
    assert.equal(s.delivered, n - s.dropped);
  }
  // The directions draw from different streams.
  assert.notDeepEqual(one.atA.map(([id]) => id), one.atB.map(([id]) => id));
  // Reordered: some packet arrives after one sent later.
  assert.ok(one.atB.some(([id], i) => i > 0 && id < one.atB[i - 1]![0]));
  // Replays exactly for a seed; another seed is another run.
  assert.deepEqual(again.atA, one.atA);
  assert.deepEqual(again.atB, one.atB);
  assert.notDeepEqual(other.atB, one.atB);
});

test('impair(): the same model as MemoryLink — one direction of a MemoryLink with a seed drops what an ImpairedWire with that seed drops', () => {
  const options = { lossRate: 0.1, reorderRate: 0.1, duplicateRate: 0.05, delayMs: 5, seed: 3 };
  const clock = new VirtualClock();
  const [m, peer] = MemoryLink.pair({ ...options, clock });
  const viaLink: number[] = [];
  peer.onPacket((p) => viaLink.push(idOf(p)));
  const wire = new ImpairedWire(clock, options, 3);
  const viaWire: number[] = [];
  wire.receiver = (p) => viaWire.push(idOf(p));
  for (let i = 0; i < 500; i++) {
    m.send(pkt(i));
    wire.send(pkt(i));
  }
  clock.runUntilIdleSync();
  assert.deepEqual(viaWire, viaLink);
  assert.deepEqual(wire.stats, m.stats);
});

test('impair(): out-of-range settings are refused with a RangeError naming the setting', () => {
  const [inner] = MemoryLink.pair({ clock: new VirtualClock() });
  assert.throws(() => impair(inner, { lossRate: 1.5 }), { name: 'RangeError', message: /lossRate/ });
  assert.throws(() => impair(inner, { delayMs: -1 }), { name: 'RangeError', message: /delayMs/ });
  assert.throws(() => impair(inner, { reorderRate: Number.NaN }), { name: 'RangeError', message: /reorderRate/ });
  assert.throws(() => impair(inner, { bandwidthBps: 0 }), { name: 'RangeError', message: /bandwidthBps/ });
});

test('impair(): two stacks over an impaired end move 1 MiB each way byte-identical (2% loss, 20 ms, 5% reordering)', async () => {
  const clock = new VirtualClock();
  const [inner, lb] = MemoryLink.pair({ clock });
  const la = impair(inner, { clock, lossRate: 0.02, delayMs: 20, reorderRate: 0.05, seed: 5 });
  const a = new Stack({ link: la, addresses: ['10.0.0.1/24'], clock, seed: 1, name: 'a' });
  const b = new Stack({ link: lb, addresses: ['10.0.0.2/24'], clock, seed: 2, name: 'b' });
  const data = pattern(1 << 20, 4);
  const echoed: Buffer[] = [];
  b.net.createServer((s: Socket) => s.pipe(s)).listen(7);
  const sock = a.net.connect({ host: '10.0.0.2', port: 7 });
  sock.on('data', (d: Buffer) => echoed.push(d));
  const done = new Promise<void>((resolve, reject) => {
    sock.on('end', resolve);
    sock.on('error', reject);
  });
  sock.end(data);
  let finished = false;
  void done.then(() => (finished = true));
  for (let i = 0; i < 600 && !finished; i++) await clock.advance(1000);
  assert.equal(finished, true, 'the echo finished within 600 s of virtual time');
  assert.ok(Buffer.concat(echoed).equals(Buffer.from(data)), 'byte-identical');
  assert.ok(la.stats.out.dropped > 0 && la.stats.in.dropped > 0, JSON.stringify(la.stats));
  assert.ok(la.stats.out.reordered > 0 && la.stats.in.reordered > 0, JSON.stringify(la.stats));
});
