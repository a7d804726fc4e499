import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerEntry, TimerWheel } from '../../src/stack/timerWheel.js';
import { Rng } from '../../src/link/rng.js';

function collect(wheel: TimerWheel<string>, now: number): string[] {
  const fired: string[] = [];
  wheel.expire(now, (owner) => fired.push(owner));
  return fired;
}

test('fires due entries in deadline order, equal deadlines in arming order', () => {
  const wheel = new TimerWheel<string>();
  const entries = new Map<string, TimerEntry<string>>();
  const arm = (name: string, at: number): void => {
    const e = entries.get(name) ?? new TimerEntry(name);
    entries.set(name, e);
    wheel.arm(e, at);
  };
  arm('d', 40);
  arm('a', 10.5);
  arm('b', 10.7);
  arm('c1', 25);
  arm('c2', 25);
  arm('late', 5000);
  assert.equal(wheel.size, 6);
  assert.deepEqual(collect(wheel, 10.6), ['a'], 'b shares the tick but is not due yet');
  assert.equal(entries.get('a')!.deadline, Infinity);
  assert.equal(entries.get('a')!.armed, false);
  assert.deepEqual(collect(wheel, 10.6), [], 'exactly once');
  assert.deepEqual(collect(wheel, 40), ['b', 'c1', 'c2', 'd']);
  assert.equal(wheel.size, 1);
  assert.deepEqual(collect(wheel, 4999.99), []);
  assert.deepEqual(collect(wheel, 5000), ['late']);
  assert.equal(wheel.size, 0);
});

test('cancel removes an entry in O(1); cancelling twice or an unarmed entry is harmless', () => {
  const wheel = new TimerWheel<string>();
  const a = new TimerEntry('a');
  const b = new TimerEntry('b');
  const c = new TimerEntry('c');
  wheel.arm(a, 5);
  wheel.arm(b, 5);
  wheel.arm(c, 5);
  wheel.cancel(b);
  wheel.cancel(b);
  wheel.cancel(new TimerEntry('never-armed'));
  assert.equal(wheel.size, 2);
  assert.equal(b.deadline, Infinity);
  assert.deepEqual(collect(wheel, 10), ['a', 'c']);
});

test('re-arming moves an entry instead of adding a second one', () => {
  const wheel = new TimerWheel<string>();
  const rto = new TimerEntry('rto');
  wheel.arm(rto, 100);
  wheel.arm(rto, 300);
  wheel.arm(rto, 200);
  assert.equal(wheel.size, 1);
  assert.deepEqual(collect(wheel, 199), []);
  assert.deepEqual(collect(wheel, 250), ['rto']);
});

test('arming in the past fires at the next expire()', () => {
  const wheel = new TimerWheel<string>();
  wheel.expire(1000, () => assert.fail('empty'));
  const e = new TimerEntry('past');
  wheel.arm(e, 3);
  assert.ok(wheel.nextDeadline() <= 3);
  assert.deepEqual(collect(wheel, 1000), ['past']);
});

test('an entry cancelled or re-armed by an earlier fire in the same expire() does not fire', () => {
  const wheel = new TimerWheel<string>();
  const a = new TimerEntry('a');
  const b = new TimerEntry('b');
  const c = new TimerEntry('c');
  wheel.arm(a, 1);
  wheel.arm(b, 2);
  wheel.arm(c, 3);
  const fired: string[] = [];
  wheel.expire(10, (owner) => {
    fired.push(owner);
    if (owner === 'a') {
      wheel.cancel(b);
      wheel.arm(c, 50);
    }
  });
  assert.deepEqual(fired, ['a']);
  assert.equal(wheel.size, 1);
  assert.deepEqual(collect(wheel, 50), ['c']);
});

test('re-arming from inside fire() keeps the entry: later times wait, due times fire next call', () => {
  const wheel = new TimerWheel<string>();
  const keepalive = new TimerEntry('ka');
  const spin = new TimerEntry('spin');
  wheel.arm(keepalive, 10);
  wheel.arm(spin, 10);
  const fire = (owner: string): void => {
    if (owner === 'ka') wheel.arm(keepalive, 20);
    else wheel.arm(spin, 5); // already due: must not loop forever within this expire()
  };
  let fired: string[] = [];
  wheel.expire(10, (o) => {
    fired.push(o);
    fire(o);
  });
  assert.deepEqual(fired, ['ka', 'spin']);
  assert.equal(wheel.size, 2);
  fired = [];
  wheel.expire(11, (o) => fired.push(o));
  assert.deepEqual(fired, ['spin']);
  assert.equal(keepalive.deadline, 20);
  assert.deepEqual(collect(wheel, 20), ['ka']);
});

test('time may jump by hours in one expire() (more than a revolution)', () => {
  const wheel = new TimerWheel<string>(1, 64);
  const hour = 3600_000;
  const names = ['2h', '5ms', '1h', '1h+64ms', '3h'];
  const at = [2 * hour, 5, hour, hour + 64, 3 * hour];
  names.forEach((n, i) => wheel.arm(new TimerEntry(n), at[i]!));
  const start = performance.now();
  assert.deepEqual(collect(wheel, 2.5 * hour), ['5ms', '1h', '1h+64ms', '2h']);
  assert.ok(performance.now() - start < 50, 'must not walk every tick');
  assert.equal(wheel.nextDeadline(), 3 * hour);
  assert.deepEqual(collect(wheel, 3 * hour - 1), []);
  assert.deepEqual(collect(wheel, 10 * hour), ['3h']);
});

test('entries in the same slot but later revolutions wait for their own time', () => {
  const wheel = new TimerWheel<string>(1, 32);
  wheel.arm(new TimerEntry('r0'), 7);
  wheel.arm(new TimerEntry('r1'), 7 + 32);
  wheel.arm(new TimerEntry('r2'), 7 + 64);
  assert.equal(wheel.nextDeadline(), 7);
  assert.deepEqual(collect(wheel, 8), ['r0']);
  assert.equal(wheel.nextDeadline(), 39);
  assert.deepEqual(collect(wheel, 40), ['r1']);
  assert.equal(wheel.nextDeadline(), 71);
  assert.deepEqual(collect(wheel, 100), ['r2']);
  assert.equal(wheel.nextDeadline(), Infinity);
});

test('a coarse tick still fires nothing early', () => {
  const wheel = new TimerWheel<string>(10, 64);
  wheel.arm(new TimerEntry('a'), 13);
  wheel.arm(new TimerEntry('b'), 17);
  assert.deepEqual(collect(wheel, 15), ['a']);
  assert.deepEqual(collect(wheel, 16.9), []);
  assert.deepEqual(collect(wheel, 17), ['b']);
});

test('nextDeadline is never later than the true earliest deadline (randomized against a model)', () => {
  const rng = new Rng(2024);
  const wheel = new TimerWheel<number>(1, 256);
  const entries = Array.from({ length: 200 }, (_, i) => new TimerEntry(i));
  const model = new Map<number, number>(); // owner -> deadline
  let now = 0;
  for (let step = 0; step < 20_000; step++) {
    const r = rng.next();
    const e = entries[rng.int(0, entries.length - 1)]!;
    if (r < 0.5) {
      // Mostly near-future deadlines, some far beyond one revolution, some in the past.
      const kind = rng.next();
      const at = kind < 0.8 ? now + rng.next() * 300 : kind < 0.95 ? now + rng.next() * 100_000 : now - 5;
      wheel.arm(e, at);
      model.set(e.owner, at);
    } else if (r < 0.65) {
      wheel.cancel(e);
      model.delete(e.owner);
    } else if (r < 0.9) {
      now += rng.next() < 0.98 ? rng.next() * 50 : rng.next() * 200_000;
      const expected = new Map([...model].filter(([, d]) => d <= now));
      const fired: number[] = [];
      wheel.expire(now, (owner) => {
        fired.push(owner);
        model.delete(owner);
      });
      assert.deepEqual([...fired].sort((x, y) => x - y), [...expected.keys()].sort((x, y) => x - y));
      const deadlines = fired.map((o) => expected.get(o)!);
      for (let i = 1; i < deadlines.length; i++) assert.ok(deadlines[i - 1]! <= deadlines[i]!, 'deadline order');
    } else {
      const trueMin = Math.min(...model.values());
      const next = wheel.nextDeadline();
      assert.ok(next <= trueMin, `nextDeadline ${next} > true ${trueMin}`);
      if (model.size === 0) assert.equal(next, Infinity);
    }
    assert.equal(wheel.size, model.size);
  }
});

test('after an expire() or a cancel of the earliest, nextDeadline is exact again', () => {
  const wheel = new TimerWheel<string>();
  const a = new TimerEntry('a');
  const b = new TimerEntry('b');
  wheel.arm(a, 100);
  wheel.arm(b, 300);
  assert.equal(wheel.nextDeadline(), 100);
  wheel.cancel(a);
  assert.equal(wheel.nextDeadline(), 300);
  wheel.arm(a, 50);
  assert.equal(wheel.nextDeadline(), 50);
  wheel.arm(a, 400); // the earliest moved later
  assert.equal(wheel.nextDeadline(), 300);
  wheel.expire(300, () => {});
  assert.equal(wheel.nextDeadline(), 400);
  wheel.cancel(a);
  assert.equal(wheel.nextDeadline(), Infinity);
});

test('an exception in fire() loses no other due entry', () => {
  const wheel = new TimerWheel<string>();
  for (const [n, t] of [['a', 1], ['boom', 2], ['c', 3]] as const) wheel.arm(new TimerEntry(n), t);
  const fired: string[] = [];
  assert.throws(() =>
    wheel.expire(10, (o) => {
      fired.push(o);
      if (o === 'boom') throw new Error('boom');
    }),
  );
  assert.deepEqual(fired, ['a', 'boom']);
  assert.equal(wheel.size, 1);
  assert.deepEqual(collect(wheel, 10), ['c']);
});

test('100k entries: arm, re-arm, cancel and expire stay fast', () => {
  const n = 100_000;
  const rng = new Rng(1);
  const wheel = new TimerWheel<number>();
  const entries = Array.from({ length: n }, (_, i) => new TimerEntry(i));
  const start = performance.now();
  for (const e of entries) wheel.arm(e, rng.next() * 10_000);
  for (const e of entries) wheel.arm(e, rng.next() * 10_000); // re-arm all (RFC 6298 5.3 on every ACK)
  for (let i = 0; i < n; i += 2) wheel.cancel(entries[i]!);
  assert.equal(wheel.size, n / 2);
  let fired = 0;
  for (let now = 0; now <= 10_000; now += 7) {
    wheel.expire(now, (owner) => {
      assert.ok(owner % 2 === 1, 'a cancelled entry fired');
      fired++;
    });
    assert.ok(wheel.nextDeadline() > now || wheel.size === 0);
  }
  wheel.expire(10_000, () => fired++);
  const elapsed = performance.now() - start;
  assert.equal(fired, n / 2);
  assert.equal(wheel.size, 0);
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
});

test('equal deadlines fire in arming order, also when the first waited in the overflow list', () => {
  // F is armed first, more than one revolution away (overflow list); G later, for the same instant,
  // straight into the slot. Migration appends F behind G in the slot: the sort must restore F, G.
  const w = new TimerWheel<string>(1, 4096);
  const F = new TimerEntry('F');
  const G = new TimerEntry('G');
  w.arm(F, 5000);
  w.expire(100, () => {});
  w.expire(2000, () => {});
  w.arm(G, 5000);
  const order: string[] = [];
  w.expire(5000, (o) => order.push(o));
  assert.deepEqual(order, ['F', 'G']);
});

test('equal deadlines fire in arming order: differential run against a sorted model (small wheel, overflow in use)', () => {
  const w = new TimerWheel<number>(1, 64);
  const entries = Array.from({ length: 64 }, (_, i) => new TimerEntry(i));
  const model = new Map<number, { at: number; seq: number }>();
  let seq = 0;
  let now = 0;
  let x = 12345;
  const rand = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  let violations = 0;
  let fired = 0;
  for (let op = 0; op < 60_000; op++) {
    const r = rand(10);
    const e = entries[rand(entries.length)]!;
    if (r < 6) {
      // Few distinct deadlines, some beyond a revolution: many ties, across slot and overflow.
      const at = now + [0, 5, 40, 64, 100, 200][rand(6)]! + (rand(3) === 0 ? 0.5 : 0);
      w.arm(e, at);
      model.set(e.owner, { at, seq: seq++ });
    } else if (r < 7) {
      w.cancel(e);
      model.delete(e.owner);
    } else {
      now += rand(60);
      const got: number[] = [];
      w.expire(now, (o) => got.push(o));
      const want = [...model.entries()].filter(([, v]) => v.at <= now)
        .sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq).map(([k]) => k);
      for (const k of want) model.delete(k);
      if (got.join(',') !== want.join(',')) violations++;
      fired += got.length;
    }
  }
  assert.ok(fired > 10_000, `${fired} fired`);
  assert.equal(violations, 0);
});
