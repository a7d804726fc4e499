import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { RealClock, VirtualClock } from '../../src/link/clock.js';

test('VirtualClock runs timers in (time, insertion) order, each at its own instant', () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  clock.schedule(20, () => log.push(`b@${clock.now()}`));
  clock.schedule(10, () => log.push(`a@${clock.now()}`));
  clock.schedule(20, () => log.push(`c@${clock.now()}`));
  clock.schedule(15.5, () => log.push(`x@${clock.now()}`));
  assert.equal(clock.pending(), 4);
  clock.runUntilIdleSync();
  assert.deepEqual(log, ['a@10', 'x@15.5', 'b@20', 'c@20']);
  assert.equal(clock.now(), 20);
  assert.equal(clock.pending(), 0);
});

test('schedule in the past and defer never run synchronously; defer queues behind what is due now', () => {
  const clock = new VirtualClock();
  clock.advanceSync(100);
  const log: string[] = [];
  clock.schedule(50, () => log.push(`past@${clock.now()}`));
  clock.defer(() => {
    log.push('d1');
    clock.defer(() => log.push('d3'));
  });
  clock.defer(() => log.push('d2'));
  clock.schedule(101, () => log.push('later'));
  assert.deepEqual(log, []);
  clock.advanceSync(0);
  assert.deepEqual(log, ['past@100', 'd1', 'd2', 'd3']);
  clock.advanceSync(1);
  assert.deepEqual(log, ['past@100', 'd1', 'd2', 'd3', 'later']);
});

test('a timer due at the current instant runs before work deferred during that instant', () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  clock.schedule(5, () => {
    log.push('t1');
    clock.defer(() => log.push('deferred-by-t1'));
  });
  clock.schedule(5, () => log.push('t2'));
  clock.runUntilIdleSync();
  assert.deepEqual(log, ['t1', 't2', 'deferred-by-t1']);
});

test('cancel removes a timer (also one due now, and from inside another callback)', () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  const h1 = clock.schedule(10, () => log.push('h1'));
  const h2 = clock.schedule(20, () => log.push('h2'));
  clock.schedule(15, () => clock.cancel(h2));
  const now = clock.schedule(0, () => log.push('now'));
  clock.cancel(h1);
  clock.cancel(now);
  clock.cancel(now); // twice is harmless
  assert.equal(clock.pending(), 2);
  clock.runUntilIdleSync();
  assert.deepEqual(log, []);
  assert.equal(clock.now(), 15);
});

test('re-arming a timer many times does not grow without bound and keeps the right one', () => {
  const clock = new VirtualClock();
  let fired = 0;
  let h = clock.schedule(1000, () => fired++);
  for (let i = 0; i < 10_000; i++) {
    clock.cancel(h);
    h = clock.schedule(1000 + i, () => fired++);
  }
  assert.equal(clock.pending(), 1);
  clock.runUntilIdleSync();
  assert.equal(fired, 1);
  assert.equal(clock.now(), 1000 + 9_999);
});

test('advanceSync stops at now+ms and sets the time there', () => {
  const clock = new VirtualClock();
  const log: number[] = [];
  for (const t of [5, 10, 10.0001, 30]) clock.schedule(t, () => log.push(clock.now()));
  clock.advanceSync(10);
  assert.deepEqual(log, [5, 10]);
  assert.equal(clock.now(), 10);
  assert.equal(clock.pending(), 2);
  clock.advanceSync(100);
  assert.deepEqual(log, [5, 10, 10.0001, 30]);
  assert.equal(clock.now(), 110);
});

test('runUntilIdleSync({ maxMs }) stops a timer that always re-arms (a keepalive)', () => {
  const clock = new VirtualClock();
  let beats = 0;
  const beat = (): void => {
    beats++;
    clock.schedule(clock.now() + 1000, beat);
  };
  clock.schedule(1000, beat);
  clock.runUntilIdleSync({ maxMs: 10_500 });
  assert.equal(beats, 10);
  assert.equal(clock.now(), 10_500);
  assert.equal(clock.pending(), 1);
});

test('runUntilIdleSync without maxMs stops after 24 h of virtual time', () => {
  const clock = new VirtualClock();
  const beat = (): void => void clock.schedule(clock.now() + 60_000, beat);
  beat();
  clock.runUntilIdleSync();
  assert.equal(clock.now(), 24 * 3600 * 1000);
});

test('a livelock (always deferring more work) throws a clear error instead of hanging', () => {
  const clock = new VirtualClock({ maxSteps: 10_000 });
  const spin = (): void => clock.defer(spin);
  spin();
  assert.throws(() => clock.runUntilIdleSync(), /livelock/);
});

test('advancing from inside a clock callback is refused', () => {
  const clock = new VirtualClock();
  let error: unknown;
  clock.schedule(1, () => {
    try {
      clock.advanceSync(1);
    } catch (e) {
      error = e;
    }
  });
  clock.runUntilIdleSync();
  assert.match(String(error), /inside a clock callback/);
});

test('async runUntilIdle lets promise code run at the virtual instant it belongs to', async () => {
  const clock = new VirtualClock();
  const seen: Array<[string, number]> = [];
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => clock.schedule(clock.now() + ms, resolve));
  const task = (async () => {
    await sleep(10);
    seen.push(['after-10', clock.now()]);
    await sleep(5);
    seen.push(['after-15', clock.now()]);
  })();
  clock.schedule(12, () => seen.push(['timer-12', clock.now()]));
  await clock.runUntilIdle();
  await task;
  assert.deepEqual(seen, [
    ['after-10', 10],
    ['timer-12', 12],
    ['after-15', 15],
  ]);
  assert.equal(clock.now(), 15);
});

test('async advance lets node streams deliver at the right instant', async () => {
  const clock = new VirtualClock();
  const stream = new Readable({ read() {} });
  const got: Array<[string, number]> = [];
  stream.on('data', (chunk: Buffer) => got.push([chunk.toString(), clock.now()]));
  clock.schedule(5, () => stream.push('five'));
  clock.schedule(7, () => stream.push('seven'));
  await clock.advance(20);
  assert.deepEqual(got, [
    ['five', 5],
    ['seven', 7],
  ]);
  assert.equal(clock.now(), 20);
});

test('async runs see work added by the host turn at the same instant', async () => {
  const clock = new VirtualClock();
  const log: string[] = [];
  clock.schedule(3, () => {
    // Work queued by promise code (not by a clock callback) still runs at t=3.
    void Promise.resolve().then(() => clock.defer(() => log.push(`deferred@${clock.now()}`)));
  });
  clock.schedule(4, () => log.push('t4'));
  await clock.runUntilIdle();
  assert.deepEqual(log, ['deferred@3', 't4']);
});

test('async runUntilIdle respects maxMs and refuses to run twice at once', async () => {
  const clock = new VirtualClock();
  const beat = (): void => void clock.schedule(clock.now() + 100, beat);
  beat();
  const run = clock.runUntilIdle({ maxMs: 1000 });
  await assert.rejects(clock.runUntilIdle(), /already running/);
  await run;
  assert.equal(clock.now(), 1000);
});

test('an async run of many instants is fast (one host yield per instant)', async () => {
  const clock = new VirtualClock();
  let n = 0;
  const tick = (): void => {
    if (++n < 5000) clock.schedule(clock.now() + 1, tick);
  };
  clock.schedule(1, tick);
  const start = performance.now();
  await clock.runUntilIdle();
  assert.equal(n, 5000);
  assert.equal(clock.now(), 5000);
  assert.ok(performance.now() - start < 5000, 'took too long');
});

test('RealClock: defer is batched into one later macrotask, in order, never synchronously', async () => {
  const clock = new RealClock();
  const log: string[] = [];
  clock.defer(() => {
    log.push('a');
    clock.defer(() => log.push('c'));
  });
  clock.defer(() => log.push('b'));
  assert.deepEqual(log, []);
  await Promise.resolve();
  assert.deepEqual(log, [], 'not a microtask either');
  await new Promise<void>((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(log, ['a', 'b', 'c']);
});

test('RealClock: schedule fires no earlier than asked; past times run soon; cancel works', async () => {
  const clock = new RealClock();
  const t0 = clock.now();
  assert.ok(t0 > 0);
  const fired: Array<[string, number]> = [];
  clock.schedule(t0 + 30, () => fired.push(['30', clock.now() - t0]));
  clock.schedule(t0 - 1000, () => fired.push(['past', clock.now() - t0]));
  const h = clock.schedule(t0 + 10, () => fired.push(['cancelled', 0]));
  clock.cancel(h);
  assert.equal(fired.length, 0, "nothing runs synchronously");
  await new Promise<void>((resolve) => setTimeout(resolve, 80));
  assert.deepEqual(
    fired.map(([name]) => name),
    ['past', '30'],
  );
  assert.ok(fired[1]![1] >= 30, `fired at ${fired[1]![1]}`);
});

test('RealClock: endless deferred work still lets host timers run (batches yield)', async () => {
  const clock = new RealClock();
  let spins = 0;
  let stop = false;
  const spin = (): void => {
    spins++;
    if (!stop && spins < 1_000_000) clock.defer(spin);
  };
  const timerFiredAt = new Promise<number>((resolve) =>
    setTimeout(() => {
      stop = true;
      resolve(spins);
    }, 0),
  );
  clock.defer(spin);
  const at = await timerFiredAt;
  assert.ok(at < 1_000_000, 'the host timer waited for the whole spin');
});

test('RealClock: a turn of deferred work ends once its ~4 ms budget is spent, checked after every callback', async () => {
  // Callbacks of 1 ms each (a burst of 64 KB packets and the stack's work on it takes 0.4–10 ms):
  // with the budget checked only every 64 callbacks, a host timer waited for all 64 (64+ ms).
  const clock = new RealClock();
  let ran = 0;
  const busy = (): void => {
    const until = performance.now() + 1;
    while (performance.now() < until);
    ran++;
  };
  for (let i = 0; i < 64; i++) clock.defer(busy);
  const ranWhenTimerFired = await new Promise<number>((resolve) => setTimeout(() => resolve(ran), 0));
  assert.ok(ranWhenTimerFired >= 1 && ranWhenTimerFired <= 16,
    `${ranWhenTimerFired} callbacks of 1 ms ran before a host timer due at once`);
  await new Promise<void>((resolve) => {
    let polls = 0;
    const poll = (): void => (ran === 64 || ++polls > 400 ? resolve() : void setTimeout(poll, 5));
    poll();
  });
  assert.equal(ran, 64, 'every deferred callback still runs, in later turns');
});
