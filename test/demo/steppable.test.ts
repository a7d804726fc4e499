/**
 * The steppable runner behind the interactive page (`startScenario`): stepping a scenario one clock
 * callback at a time must be the very run `runScenario` makes — same segments, same states, same
 * checks — so the page shows what `synack demo` prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, runScenario, startScenario } from '../../src/demo/scenarios.js';
import { VirtualClock } from '../../src/link/clock.js';

for (const name of SCENARIOS) {
  test(`${name}: stepped to the end, the same run as runScenario`, () => {
    const opts = name === 'transfer' ? { bytes: 64 * 1024, loss: 0.02, seed: 3 } : { seed: 7 };
    const whole = runScenario(name, opts);
    const run = startScenario(name, opts);
    assert.equal(run.done, false);
    // Nothing has happened before the first step: the page starts from the initial states.
    assert.equal(run.recorder.build().segments.length, 0);
    let steps = 0;
    while (!run.done && steps < 100_000) {
      run.step();
      steps++;
    }
    assert.ok(run.done, 'finished within 100 000 steps');
    const stepped = run.result!;
    assert.equal(JSON.stringify(stepped.model), JSON.stringify(whole.model));
    assert.deepEqual(stepped.summary, whole.summary);
    assert.deepEqual(stepped.pcap, whole.pcap);
    assert.ok(stepped.summary.ok, JSON.stringify(stepped.summary.checks.filter((c) => !c.ok)));
    // One step shows little at a time: about one step per segment sent (a bulk transfer sends bursts).
    if (name !== 'transfer') assert.ok(steps >= stepped.model.segments.length / 2, `${steps} steps for ${stepped.model.segments.length} segments`);
  });
}

test('handshake: the first step sends the SYN and nothing else', () => {
  const run = startScenario('handshake');
  run.step();
  const m = run.recorder.build();
  assert.deepEqual(m.segments.map((s) => s.flags.join(',')), ['SYN']);
  assert.deepEqual(m.endpoints[0]!.states.map((s) => s.state), ['CLOSED', 'SYN-SENT']);
  assert.deepEqual(m.endpoints[1]!.states.map((s) => s.state), ['LISTEN']);
  run.step();
  const m2 = run.recorder.build();
  // The SYN arrives 10 ms later: the server answers SYN,ACK and enters SYN-RECEIVED.
  assert.equal(run.clock.now(), 10);
  assert.deepEqual(m2.endpoints[1]!.states.map((s) => s.state), ['LISTEN', 'SYN-RECEIVED']);
  assert.deepEqual(m2.segments.map((s) => s.flags.join(',')), ['SYN', 'SYN,ACK']);
});

test('finish() after a few steps is the same run too', () => {
  const run = startScenario('simultaneous-close', { seed: 2 });
  for (let i = 0; i < 5; i++) run.step();
  const r = run.finish();
  assert.equal(JSON.stringify(r.model), JSON.stringify(runScenario('simultaneous-close', { seed: 2 }).model));
  assert.equal(run.tick(), false, 'nothing left once done');
});

test('VirtualClock.runNext: one callback at a time, then the time moves to `until`', () => {
  const clock = new VirtualClock();
  const ran: string[] = [];
  clock.schedule(10, () => {
    ran.push('a@10');
    clock.defer(() => ran.push('b@10'));
  });
  clock.schedule(30, () => ran.push('c@30'));
  assert.equal(clock.runNext(20), true);
  assert.deepEqual(ran, ['a@10']);
  assert.equal(clock.now(), 10);
  assert.equal(clock.runNext(20), true, 'the callback deferred at 10 ms runs next');
  assert.deepEqual(ran, ['a@10', 'b@10']);
  assert.equal(clock.runNext(20), false, 'nothing else due by 20 ms');
  assert.equal(clock.now(), 20, 'as advanceSync would leave it');
  assert.equal(clock.pending(), 1);
  assert.equal(clock.runNext(Infinity), true);
  assert.deepEqual(ran, ['a@10', 'b@10', 'c@30']);
  assert.equal(clock.runNext(Infinity), false);
  assert.equal(clock.now(), 30, 'an infinite bound leaves the time alone');
});
