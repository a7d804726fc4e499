import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink } from '../../src/link/memory.js';
import type { LinkDropReason, MemoryLinkOptions } from '../../src/link/memory.js';

/** A packet of `len` bytes whose first two bytes carry `id`. */
function pkt(id: number, len = 100): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = id >> 8;
  p[1] = id & 0xff;
  return p;
}
const idOf = (p: Uint8Array): number => (p[0]! << 8) | p[1]!;

/** Sends `n` packets from a to b at t=0 and records what arrives at b, and when. */
function run(options: MemoryLinkOptions, n: number, len = 100) {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ ...options, clock });
  const arrivals: Array<{ id: number; t: number; bytes: Uint8Array }> = [];
  const drops: Array<{ id: number; reason: LinkDropReason }> = [];
  b.onPacket((p) => arrivals.push({ id: idOf(p), t: clock.now(), bytes: p }));
  a.onDrop((p, reason) => drops.push({ id: idOf(p), reason }));
  const sent: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const p = pkt(i, len);
    sent.push(p);
    a.send(p);
  }
  clock.runUntilIdleSync();
  return { a, b, clock, arrivals, drops, sent };
}

test('delivery is asynchronous, after delayMs, in send order', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock, delayMs: 10 });
  const got: Array<[number, number]> = [];
  b.onPacket((p) => got.push([idOf(p), clock.now()]));
  a.send(pkt(1));
  a.send(pkt(2));
  assert.deepEqual(got, [], 'never inside send()');
  clock.advanceSync(9.999);
  assert.deepEqual(got, []);
  clock.advanceSync(0.001);
  assert.deepEqual(got, [
    [1, 10],
    [2, 10],
  ]);
  assert.equal(a.mtu, 1500);
  assert.deepEqual(a.stats, { sent: 2, delivered: 2, dropped: 0, duplicated: 0, corrupted: 0, reordered: 0 });
  assert.equal(b.stats.sent, 0);
});

test('zero delay still delivers on a later turn of the clock, never inside send()', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock });
  let inSend = false;
  let got = 0;
  b.onPacket(() => {
    assert.equal(inSend, false);
    got++;
  });
  inSend = true;
  a.send(pkt(1));
  inSend = false;
  assert.equal(got, 0);
  clock.runUntilIdleSync();
  assert.equal(got, 1);
  assert.equal(clock.now(), 0);
});

test('two ends that answer each other do not recurse (ping-pong 1000 times)', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock });
  let depth = 0;
  let maxDepth = 0;
  let bounces = 0;
  const bounce = (from: typeof a) => (p: Uint8Array) => {
    depth++;
    maxDepth = Math.max(maxDepth, depth);
    if (++bounces < 1000) from.send(p);
    depth--;
  };
  a.onPacket(bounce(a));
  b.onPacket(bounce(b));
  a.send(pkt(0));
  clock.runUntilIdleSync();
  assert.equal(bounces, 1000);
  assert.equal(maxDepth, 1);
});

test('packets larger than the mtu are dropped with reason mtu', () => {
  const { arrivals, drops, a } = run({ mtu: 576 }, 1, 577);
  assert.deepEqual(arrivals, []);
  assert.deepEqual(drops, [{ id: 0, reason: 'mtu' }]);
  assert.equal(a.stats.dropped, 1);
  const ok = run({ mtu: 576 }, 1, 576);
  assert.equal(ok.arrivals.length, 1);
});

test('bandwidth serializes packets one after another', () => {
  // 1000 bytes at 8 Mbit/s take 1 ms each.
  const { arrivals } = run({ bandwidthBps: 8e6, delayMs: 5 }, 3, 1000);
  assert.deepEqual(
    arrivals.map((x) => [x.id, x.t]),
    [
      [0, 6],
      [1, 7],
      [2, 8],
    ],
  );
});

test('a finite queue is a drop-tail bottleneck', () => {
  // One packet is serialized at once, two wait, the rest find the queue full.
  const { arrivals, drops, a } = run({ bandwidthBps: 8e6, queuePackets: 2 }, 5, 1000);
  assert.deepEqual(arrivals.map((x) => x.id), [0, 1, 2]);
  assert.deepEqual(drops, [
    { id: 3, reason: 'queue' },
    { id: 4, reason: 'queue' },
  ]);
  assert.equal(a.stats.dropped, 2);

  // Once the queue drains there is room again.
  const clock = new VirtualClock();
  const [x, y] = MemoryLink.pair({ clock, bandwidthBps: 8e6, queuePackets: 1 });
  let got = 0;
  y.onPacket(() => got++);
  x.send(pkt(0, 1000));
  x.send(pkt(1, 1000));
  x.send(pkt(2, 1000)); // dropped: one is on the wire, one waiting
  clock.advanceSync(1);
  x.send(pkt(3, 1000)); // #1 is now on the wire, nothing waits
  clock.runUntilIdleSync();
  assert.equal(got, 3);
  assert.equal(x.stats.dropped, 1);
});

test('loss is random at the given rate and replays exactly for a seed', () => {
  const n = 10_000;
  const r1 = run({ lossRate: 0.1, seed: 5 }, n);
  const r2 = run({ lossRate: 0.1, seed: 5 }, n);
  const r3 = run({ lossRate: 0.1, seed: 6 }, n);
  assert.ok(r1.drops.length > 850 && r1.drops.length < 1150, `${r1.drops.length} lost`);
  assert.ok(r1.drops.every((d) => d.reason === 'loss'));
  assert.equal(r1.drops.length + r1.arrivals.length, n);
  assert.deepEqual(r1.drops, r2.drops);
  assert.notDeepEqual(r1.drops, r3.drops);
});

test('each direction has its own random stream', () => {
  const lossPattern = (reverseTraffic: number): number[] => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, lossRate: 0.3, seed: 9 });
    const lost: number[] = [];
    a.onDrop((p) => lost.push(idOf(p)));
    for (let i = 0; i < 200; i++) {
      a.send(pkt(i));
      for (let j = 0; j < reverseTraffic; j++) b.send(pkt(j));
    }
    clock.runUntilIdleSync();
    return lost;
  };
  assert.deepEqual(lossPattern(0), lossPattern(3));
});

test('reordering lets later packets overtake, and loses nothing', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock, delayMs: 10, reorderRate: 0.2, seed: 3 });
  const ids: number[] = [];
  b.onPacket((p) => ids.push(idOf(p)));
  for (let i = 0; i < 500; i++) {
    a.send(pkt(i));
    clock.advanceSync(1);
  }
  clock.runUntilIdleSync();
  assert.equal(ids.length, 500);
  assert.deepEqual([...ids].sort((x, y) => x - y), Array.from({ length: 500 }, (_, i) => i));
  const inversions = ids.filter((id, i) => i > 0 && id < ids[i - 1]!).length;
  assert.ok(inversions > 20, `${inversions} inversions`);
  assert.ok(a.stats.reordered > 60 && a.stats.reordered < 140, `${a.stats.reordered} reordered`);
});

test('duplication delivers a second identical copy a little later', () => {
  const { arrivals, a } = run({ delayMs: 4, duplicateRate: 0.25, seed: 11 }, 1000);
  assert.ok(a.stats.duplicated > 180 && a.stats.duplicated < 320, `${a.stats.duplicated}`);
  assert.equal(arrivals.length, 1000 + a.stats.duplicated);
  assert.equal(a.stats.delivered, arrivals.length);
  const byId = new Map<number, number[]>();
  for (const x of arrivals) byId.set(x.id, [...(byId.get(x.id) ?? []), x.t]);
  for (const [, times] of byId) {
    assert.ok(times.length <= 2);
    assert.equal(times[0], 4);
    if (times.length === 2) assert.ok(times[1]! > 4);
  }
});

test('corruption flips exactly one bit of a copy, never the sender buffer', () => {
  const { arrivals, sent, a } = run({ corruptRate: 0.5, seed: 2 }, 400, 64);
  assert.ok(a.stats.corrupted > 150 && a.stats.corrupted < 250, `${a.stats.corrupted}`);
  assert.equal(arrivals.length, 400);
  let flipped = 0;
  // Without reordering, arrival i is packet i (its id bytes may be the corrupted ones).
  arrivals.forEach((x, i) => {
    const pristine = pkt(i, 64);
    assert.deepEqual(sent[i], pristine, 'sender buffer mutated');
    let bits = 0;
    for (let j = 0; j < 64; j++) {
      let d = x.bytes[j]! ^ pristine[j]!;
      while (d) {
        bits += d & 1;
        d >>= 1;
      }
    }
    assert.ok(bits <= 1);
    if (bits === 0) assert.equal(x.bytes, sent[i], 'an intact packet is passed through, not copied');
    flipped += bits;
  });
  assert.equal(flipped, a.stats.corrupted);
});

test('observers see transmits, drops with reasons and deliveries; several may listen', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock, mtu: 200, lossRate: 0.5, seed: 4 });
  const tx: number[] = [];
  const tx2: number[] = [];
  const dropped: string[] = [];
  const delivered: number[] = [];
  const received: number[] = [];
  a.onTransmit((p) => tx.push(idOf(p)));
  a.onTransmit((p) => tx2.push(idOf(p)));
  a.onDrop((p, reason) => dropped.push(`${idOf(p)}:${reason}`));
  a.onDeliver((p) => delivered.push(idOf(p)));
  b.onPacket((p) => received.push(idOf(p)));
  for (let i = 0; i < 40; i++) a.send(pkt(i, i === 7 ? 201 : 100));
  clock.runUntilIdleSync();
  assert.deepEqual(tx, Array.from({ length: 40 }, (_, i) => i));
  assert.deepEqual(tx2, tx);
  assert.ok(dropped.includes('7:mtu'));
  assert.deepEqual(delivered, received);
  assert.equal(dropped.length + delivered.length, 40);
  assert.deepEqual(a.stats, {
    sent: 40,
    delivered: delivered.length,
    dropped: dropped.length,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  });
});

test('a later onPacket replaces the receiver', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock });
  const first: number[] = [];
  const second: number[] = [];
  b.onPacket((p) => first.push(idOf(p)));
  b.onPacket((p) => second.push(idOf(p)));
  a.send(pkt(1));
  clock.runUntilIdleSync();
  assert.deepEqual(first, []);
  assert.deepEqual(second, [1]);
});

test('with the default RealClock packets arrive after the delay', async () => {
  const [a, b] = MemoryLink.pair({ delayMs: 5 });
  const start = performance.now();
  const arrived = new Promise<number>((resolve) => b.onPacket(() => resolve(performance.now() - start)));
  a.send(pkt(1));
  const elapsed = await arrived;
  assert.ok(elapsed >= 4.9, `arrived after ${elapsed} ms`);
});

test('a whole impaired run is deterministic', () => {
  const opts: MemoryLinkOptions = {
    delayMs: 3,
    bandwidthBps: 1e7,
    queuePackets: 20,
    lossRate: 0.05,
    reorderRate: 0.05,
    duplicateRate: 0.05,
    corruptRate: 0.05,
    seed: 77,
  };
  const trace = () => {
    const r = run(opts, 300, 500);
    return JSON.stringify([r.arrivals.map((x) => [x.id, x.t, Array.from(x.bytes).join()]), r.drops]);
  };
  assert.equal(trace(), trace());
});
