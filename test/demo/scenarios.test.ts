import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, runScenario, type ScenarioResult } from '../../src/demo/scenarios.js';
import type { DiagramModel } from '../../src/diagram/model.js';

function states(model: DiagramModel, name: string): string[] {
  const ep = model.endpoints.find((e) => e.name === name);
  assert.ok(ep, `endpoint ${name}`);
  return ep.states.map((s) => s.state);
}

function failed(r: ScenarioResult): string {
  return JSON.stringify(r.summary.checks.filter((c) => !c.ok));
}

const ACTIVE = ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'];
const PASSIVE = ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'];

test('handshake: the textbook states on both sides, 3-way handshake, 4-segment close, TIME-WAIT = 2×MSL', () => {
  const r = runScenario('handshake');
  assert.ok(r.summary.ok, failed(r));
  assert.equal(r.model.ok, true);
  assert.deepEqual(states(r.model, 'client'), ACTIVE);
  assert.deepEqual(states(r.model, 'server'), PASSIVE);
  assert.equal(r.model.endpoints[0]!.name, 'client');
  assert.equal(r.model.endpoints[0]!.address, '10.0.0.1');
  assert.equal(r.model.endpoints[1]!.address, '10.0.0.2');
  assert.equal(r.model.endpoints[1]!.port, 80);
  const [syn, synAck, ack] = r.model.segments;
  assert.deepEqual([syn!.flags, syn!.seq, syn!.ack], [['SYN'], 0, 0]);
  assert.deepEqual([synAck!.flags, synAck!.seq, synAck!.ack], [['SYN', 'ACK'], 0, 1]);
  assert.deepEqual([ack!.flags, ack!.seq, ack!.ack], [['ACK'], 1, 1]);
  // Four segments in the close: FIN, ACK, FIN, ACK — the server waits 50 ms before its FIN.
  const fins = r.model.segments.filter((s) => s.flags.includes('FIN'));
  assert.deepEqual(fins.map((s) => s.from), ['client', 'server']);
  assert.ok(fins[1]!.t - fins[0]!.t >= 0.05);
  const cs = r.model.endpoints[0]!.states;
  const tw = cs.findIndex((s) => s.state === 'TIME-WAIT');
  assert.ok(Math.abs(cs[tw + 1]!.t - cs[tw]!.t - 60) < 1e-6, 'TIME-WAIT lasts 2×MSL = 60 s');
  // The textbook mistake the diagram must not make: the side that only ACKs a FIN is CLOSE-WAIT.
  assert.ok(!states(r.model, 'server').includes('TIME-WAIT'));
});

test('the same seed replays the same run', () => {
  const a = JSON.stringify(runScenario('handshake', { seed: 5 }).model);
  const b = JSON.stringify(runScenario('handshake', { seed: 5 }).model);
  assert.equal(a, b);
});

test('IPv6: the handshake runs between fd00::1 and fd00::2', () => {
  const r = runScenario('handshake', { ipv6: true });
  assert.ok(r.summary.ok, failed(r));
  assert.equal(r.model.endpoints[0]!.address, 'fd00::1');
  assert.equal(r.model.endpoints[1]!.address, 'fd00::2');
});

test('simultaneous-open: both sides SYN-SENT → SYN-RECEIVED → ESTABLISHED', () => {
  const r = runScenario('simultaneous-open');
  assert.ok(r.summary.ok, failed(r));
  const opening = ['CLOSED', 'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED'];
  assert.deepEqual(states(r.model, 'client').slice(0, 4), opening);
  assert.deepEqual(states(r.model, 'server').slice(0, 4), opening);
  // Each side sent a SYN before it saw the other's: two bare SYNs cross.
  const syns = r.model.segments.filter((s) => s.flags.length === 1 && s.flags[0] === 'SYN');
  assert.deepEqual(syns.map((s) => s.from).sort(), ['client', 'server']);
});

test('simultaneous-close: FIN-WAIT-1 → CLOSING → TIME-WAIT on both sides', () => {
  const r = runScenario('simultaneous-close');
  assert.ok(r.summary.ok, failed(r));
  const tail = ['ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED'];
  assert.deepEqual(states(r.model, 'client'), ['CLOSED', 'SYN-SENT', ...tail]);
  assert.deepEqual(states(r.model, 'server'), ['LISTEN', 'SYN-RECEIVED', ...tail]);
});

test('half-close: the server sends data after the client`s FIN, which the client receives in FIN-WAIT-2', () => {
  const r = runScenario('half-close');
  assert.ok(r.summary.ok, failed(r));
  assert.deepEqual(states(r.model, 'client'), ACTIVE);
  assert.deepEqual(states(r.model, 'server'), PASSIVE);
  const clientFin = r.model.segments.find((s) => s.from === 'client' && s.flags.includes('FIN'))!;
  const later = r.model.segments.filter((s) => s.from === 'server' && s.len > 0 && s.t > clientFin.t);
  assert.ok(later.reduce((n, s) => n + s.len, 0) > 1000);
});

test('refused: RST,ACK seq=0 ack=1 from the closed port, ECONNREFUSED, client back to CLOSED', () => {
  const r = runScenario('refused');
  assert.ok(r.summary.ok, failed(r));
  assert.deepEqual(states(r.model, 'client'), ['CLOSED', 'SYN-SENT', 'CLOSED']);
  const rst = r.model.segments.find((s) => s.from === 'server')!;
  assert.deepEqual([...rst.flags].sort(), ['ACK', 'RST']);
  assert.equal(rst.seqAbs, 0);
  assert.equal(rst.ack, 1);
  assert.ok(r.summary.checks.some((c) => c.what.includes('ECONNREFUSED') && c.ok));
});

test('abort: RST from the client, both CLOSED, no TIME-WAIT anywhere', () => {
  const r = runScenario('abort');
  assert.ok(r.summary.ok, failed(r));
  assert.deepEqual(states(r.model, 'client'), ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'CLOSED']);
  assert.deepEqual(states(r.model, 'server'), ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSED']);
  const last = r.model.segments[r.model.segments.length - 1]!;
  assert.equal(last.from, 'client');
  assert.ok(last.flags.includes('RST'));
  assert.ok(!r.model.segments.some((s) => s.flags.includes('FIN')));
});

test('syn-lost: the first SYN is dropped and retransmitted 1 s later with the same ISN', () => {
  const r = runScenario('syn-lost');
  assert.ok(r.summary.ok, failed(r));
  const syns = r.model.segments.filter((s) => s.from === 'client' && s.flags.includes('SYN'));
  assert.equal(syns.length, 2);
  assert.equal(syns[0]!.dropped, true);
  assert.equal(syns[1]!.dropped, false);
  assert.ok(Math.abs(syns[1]!.t - syns[0]!.t - 1) < 0.01, `retransmitted after ${syns[1]!.t - syns[0]!.t} s`);
  assert.equal(syns[1]!.seqAbs, syns[0]!.seqAbs);
  assert.deepEqual(states(r.model, 'client'), ACTIVE);
});

test('zero-window: the server advertises win=0, the client probes, the window reopens, all bytes arrive', () => {
  const r = runScenario('zero-window');
  assert.ok(r.summary.ok, failed(r));
  const segs = r.model.segments;
  const zero = segs.findIndex((s) => s.from === 'server' && s.win === 0);
  assert.ok(zero > 0, 'a zero window was advertised');
  const reopen = segs.findIndex((s, i) => i > zero && s.from === 'server' && s.win > 0);
  assert.ok(reopen > zero, 'the window reopened');
  const probes = segs.slice(zero, reopen).filter((s) => s.from === 'client');
  assert.ok(probes.length >= 1, 'persist probes');
  // Probes back off (RFC 9293 §3.8.6.1, SHLD-30): each gap at least as long as the one before.
  const gaps = probes.slice(1).map((p, i) => p.t - probes[i]!.t);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! >= gaps[i - 1]! - 1e-9, `gaps ${gaps}`);
  assert.ok(segs.slice(reopen).some((s) => s.from === 'client' && s.len > 0), 'data flows again');
});

test('transfer: 1 MiB arrives intact; the summary reports goodput, retransmissions and cwnd', () => {
  const r = runScenario('transfer');
  assert.ok(r.summary.ok, failed(r));
  assert.equal(r.summary.stats['bytes'], 1 << 20);
  assert.equal(typeof r.summary.stats['goodput (Mbit/s)'], 'number');
  assert.equal(r.summary.stats['retransmissions'], 0);
  // Slow start from IW10 (RFC 6928): cwnd grows from 10 segments, with no loss and so no ssthresh.
  assert.ok(Number(r.summary.stats['cwnd (bytes, at the end)']) > 10 * 1448);
  assert.equal(r.summary.stats['ssthresh (bytes)'], 'unset (no loss)');
  assert.match(String(r.summary.stats['cwnd (KiB, every 20 ms)']), /^[▁-█]+ 14…\d+$/);
  assert.equal(r.summary.stats['options'], 'WS 7/7, SACK, TS');
});

test('transfer under 2% loss: every byte intact, losses shown in the diagram, retransmissions counted', () => {
  for (const seed of [1, 7]) {
    const r = runScenario('transfer', { loss: 0.02, seed, bytes: 1 << 20 });
    assert.ok(r.summary.ok, `seed ${seed}: ${failed(r)}`);
    assert.ok(r.model.segments.some((s) => s.dropped), 'some segments lost');
    assert.ok(Number(r.summary.stats['retransmissions']) > 0);
    // Losses are repaired by fast recovery (SACK + RACK), not by waiting for the RTO.
    const [recoveries] = String(r.summary.stats['fast recoveries / RTOs / tail loss probes']).split(' / ').map(Number);
    assert.ok(recoveries! > 0, `fast recoveries: ${recoveries}`);
  }
});

test('the capture holds every packet either stack sent, dropped ones included (pcap, LINKTYPE_RAW)', () => {
  const r = runScenario('syn-lost');
  const v = new DataView(r.pcap.buffer, r.pcap.byteOffset, r.pcap.byteLength);
  assert.equal(v.getUint32(0, true), 0xa1b2c3d4);
  assert.equal(v.getUint32(20, true), 101);
  let off = 24;
  let n = 0;
  while (off < r.pcap.length) {
    off += 16 + v.getUint32(off + 8, true);
    n++;
  }
  assert.equal(off, r.pcap.length);
  assert.equal(n, r.model.segments.length);
});

test('every scenario passes its own checks', () => {
  for (const name of SCENARIOS) {
    const r = runScenario(name, { bytes: name === 'transfer' ? 100_000 : undefined });
    assert.ok(r.summary.ok, `${name}: ${failed(r)}`);
    assert.equal(r.summary.scenario, name);
  }
});

test('under 10% loss the scenarios whose point survives loss still pass (retransmissions, TIME-WAIT restart)', () => {
  for (const name of ['handshake', 'half-close', 'refused', 'abort', 'syn-lost', 'zero-window'] as const) {
    for (const seed of [1, 2, 3, 4]) {
      const r = runScenario(name, { seed, loss: 0.1 });
      assert.ok(r.summary.ok, `${name} seed ${seed}: ${failed(r)}`);
    }
  }
  // Seed 10 loses the server's FIN once: its retransmission restarts the client's TIME-WAIT.
  const r = runScenario('handshake', { seed: 10, loss: 0.1 });
  assert.ok(r.summary.checks.some((c) => c.ok && c.what.includes('after the last FIN')), failed(r));
});
