/**
 * Property tests (fast-check) for EthernetSwitch: random traffic — stations (a small pool of MACs,
 * so they move between ports), broadcast, multicast and unicast, runts and bad sources, time passing
 * past the ageing limit, ports removed — checked frame by frame against a reference model of a
 * learning bridge (802.1D-2004 §7.8: learn the source's port; forward a known unicast there unless it
 * is the reception port; flood the rest to every other port; forget after the ageing time). A second
 * property bounds the table: whatever the traffic, it never holds more than `macTableSize` entries,
 * and a frame goes either to the one port its destination was learned on, or to every other port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualClock } from '../../src/link/clock.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import type { EthernetPort } from '../../src/link/switch.js';

const PORTS = 5;
const STATIONS = 6;
const AGEING_MS = 1000;

type Op =
  | { kind: 'send'; port: number; src: number; dst: 'broadcast' | 'multicast' | number }
  | { kind: 'bad'; port: number; what: 'runt' | 'group-source' | 'zero-source' }
  | { kind: 'wait'; ms: number }
  | { kind: 'remove'; port: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({
    kind: fc.constant('send' as const),
    port: fc.integer({ min: 0, max: PORTS - 1 }),
    src: fc.integer({ min: 0, max: STATIONS - 1 }),
    dst: fc.oneof(fc.constant('broadcast' as const), fc.constant('multicast' as const), fc.integer({ min: 0, max: STATIONS - 1 })),
  }) },
  { weight: 1, arbitrary: fc.record({
    kind: fc.constant('bad' as const),
    port: fc.integer({ min: 0, max: PORTS - 1 }),
    what: fc.constantFrom('runt' as const, 'group-source' as const, 'zero-source' as const),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 700 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), port: fc.integer({ min: 0, max: PORTS - 1 }) }) },
);

function stationMac(n: number): number[] {
  return [0x02, 0, 0, 0, 0, n + 1];
}

function frameFor(op: Op & { kind: 'send' | 'bad' }, id: number): Uint8Array {
  if (op.kind === 'bad' && op.what === 'runt') return new Uint8Array([1, 2, 3]);
  const f = new Uint8Array(60);
  if (op.kind === 'send') {
    f.set(op.dst === 'broadcast' ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : op.dst === 'multicast' ? [0x01, 0x00, 0x5e, 0, 0, 1] : stationMac(op.dst), 0);
    f.set(stationMac(op.src), 6);
  } else {
    f.fill(0xff, 0, 6);
    if (op.what === 'group-source') f.set([0x01, 0x00, 0x5e, 0, 0, 9], 6);
  }
  f[14] = id >> 8;
  f[15] = id & 0xff;
  return f;
}

/** Runs `ops` on a switch; returns, per frame sent, the ports it reached, beside what the model says. */
function check(ops: Op[], macTableSize: number, model: boolean): void {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, macTableSize, ageingMs: AGEING_MS });
  const ports: EthernetPort[] = [];
  const got = new Map<number, number[]>();
  for (let i = 0; i < PORTS; i++) {
    const p = sw.port();
    p.onFrame((f) => {
      const id = (f[14]! << 8) | f[15]!;
      const list = got.get(id) ?? [];
      list.push(i);
      got.set(id, list);
    });
    ports.push(p);
  }
  const live = new Set(ports.map((_, i) => i));
  // The reference: station → { port, seen }.
  const table = new Map<number, { port: number; seen: number }>();
  let id = 0;
  for (const op of ops) {
    if (op.kind === 'wait') {
      clock.advanceSync(op.ms);
      continue;
    }
    if (op.kind === 'remove') {
      ports[op.port]!.remove();
      live.delete(op.port);
      for (const [mac, e] of table) if (e.port === op.port) table.delete(mac);
      continue;
    }
    const frameId = id++;
    ports[op.port]!.send(frameFor(op, frameId));
    clock.runUntilIdleSync();
    const reached = (got.get(frameId) ?? []).sort();
    assert.ok(!reached.includes(op.port), `frame ${frameId} went back to its reception port`);
    assert.ok(reached.every((p) => live.has(p)), 'only to live ports');
    assert.equal(new Set(reached).size, reached.length, 'at most once per port');
    const others = [...live].filter((p) => p !== op.port).sort();
    if (!live.has(op.port) || op.kind === 'bad') {
      assert.deepEqual(reached, [], `frame ${frameId}: dropped (${op.kind === 'bad' ? op.what : 'removed port'})`);
      continue;
    }
    const now = clock.now();
    if (model) {
      const learned = typeof op.dst === 'number' ? table.get(op.dst) : undefined;
      const known = learned !== undefined && now - learned.seen < AGEING_MS ? learned : undefined;
      // Learning happens before forwarding: a frame to itself is filtered.
      const srcEntry = { port: op.port, seen: now };
      const dstEntry = op.dst === op.src ? srcEntry : known;
      const want = typeof op.dst === 'number' && dstEntry !== undefined ? (dstEntry.port === op.port ? [] : [dstEntry.port]) : others;
      assert.deepEqual(reached, want, `frame ${frameId} (${JSON.stringify(op)}) at ${now}`);
      table.set(op.src, srcEntry);
    } else {
      // Bounded table: to one port (the learned one), to none (filtered), or flooded.
      assert.ok(reached.length <= 1 || JSON.stringify(reached) === JSON.stringify(others), `frame ${frameId}: ${reached} of ${others}`);
      if (op.dst === 'broadcast' || op.dst === 'multicast') assert.deepEqual(reached, others);
    }
    assert.ok(sw.macTable().length <= macTableSize, 'the table stays within its bound');
  }
}

test('the switch forwards, floods, filters and forgets as a learning bridge does (reference model)', () => {
  fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), (ops) => check(ops, 1000, true)), { numRuns: 300 });
});

test('with a small table, it never grows past its bound and every frame is forwarded, filtered or flooded', () => {
  fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 0, max: 3 }), (ops, size) => check(ops, size, false)), { numRuns: 300 });
});
