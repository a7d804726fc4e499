/**
 * State inference from captures (src/diagram/infer.ts), checked against the truth: for every demo
 * scenario the stacks *report* their states, and `draw` of the demo's own capture must infer exactly
 * the same sequence for both sides. (The demo captures each packet when its sender puts it on the
 * link, so inferred times are send times: a receipt is timed when the causing segment was sent, not
 * when it arrived — only the sequence of state names is compared, never the times.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, runScenario, type ScenarioName, type ScenarioOptions } from '../../src/demo/scenarios.js';
import { readCapture } from '../../src/trace/capture.js';
import { extractTcp, inferStream, listStreams, splitStreams, TIME_WAIT_S } from '../../src/diagram/infer.js';
import type { DiagramModel } from '../../src/diagram/model.js';
import { buildPcap } from '../trace/capture-builders.js';

function inferFrom(pcap: Uint8Array, stream = 0): DiagramModel {
  const streams = splitStreams(extractTcp(readCapture(pcap).packets).segments);
  return inferStream(streams[stream]!);
}

function statesOf(model: DiagramModel, address: string, port: number): string[] {
  const ep = model.endpoints.find((e) => e.address === address && e.port === port);
  assert.ok(ep !== undefined, `endpoint ${address}:${port} in ${model.endpoints.map((e) => e.name).join(', ')}`);
  return ep.states.map((s) => s.state);
}

const CASES: Array<[ScenarioName, ScenarioOptions, string]> = [
  ...SCENARIOS.map((s): [ScenarioName, ScenarioOptions, string] => [s, { bytes: 30000 }, s]),
  ['handshake', { ipv6: true }, 'handshake over IPv6'],
  ['simultaneous-close', { ipv6: true }, 'simultaneous-close over IPv6'],
  ['transfer', { loss: 0.05, bytes: 200000 }, 'transfer, 5% loss'],
  ['transfer', { loss: 0.2, bytes: 60000, seed: 3 }, 'transfer, 20% loss'],
  ['transfer', { loss: 0.1, reorder: 0.1, duplicate: 0.05, bytes: 100000, seed: 7, ipv6: true }, 'transfer over IPv6, 10% loss, reordering, duplicates'],
  ['syn-lost', { loss: 0.1, seed: 5 }, 'syn-lost with 10% loss'],
  ['half-close', { loss: 0.15, seed: 2 }, 'half-close with 15% loss'],
];

for (const [scenario, opts, name] of CASES) {
  test(`demo ${name}: the states inferred from its capture are the states the stacks reported`, () => {
    const run = runScenario(scenario, opts);
    assert.ok(run.summary.ok, `the scenario itself passed: ${JSON.stringify(run.summary.checks.filter((c) => !c.ok))}`);
    const model = inferFrom(run.pcap);
    assert.equal(model.inferred, true);
    assert.equal(model.endpoints.length, 2);
    for (const ep of run.model.endpoints) {
      const want = ep.states.map((s) => s.state);
      assert.deepEqual(statesOf(model, ep.address, ep.port), want, `${ep.name} ${ep.address}:${ep.port}`);
    }
    // Every segment of the capture is in the model, with the stack's own numbers and option strings.
    assert.equal(model.segments.length, run.model.segments.length);
    model.segments.forEach((s, i) => {
      const w = { ...run.model.segments[i]! };
      // The stack's trace lists every SACK block it wanted to send; the wire (and so the capture)
      // carries only those that fit in 40 bytes of options beside the timestamp (RFC 2018 §3: 3).
      if (s.options.length < w.options.length && w.options.slice(s.options.length).every((o) => o.startsWith('SACK='))) {
        w.options = w.options.slice(0, s.options.length);
      }
      const wantFrom = run.model.endpoints.find((e) => e.name === w.from)!;
      assert.equal(s.from, wantFrom.address.includes(':') ? `[${wantFrom.address}]:${wantFrom.port}` : `${wantFrom.address}:${wantFrom.port}`);
      assert.deepEqual(
        [s.flags, s.seqAbs, s.ackAbs, s.seq, s.ack, s.len, s.win, s.options],
        [w.flags, w.seqAbs, w.ackAbs, w.seq, w.ack, w.len, w.win, w.options],
        `segment ${i}`,
      );
    });
    // States are ordered in time, and consistently with their order numbers.
    for (const ep of model.endpoints) {
      for (let k = 2; k < ep.states.length; k++) {
        assert.ok(ep.states[k]!.t >= ep.states[k - 1]!.t, `${ep.name}: states in time order`);
        assert.ok(ep.states[k]!.order! > ep.states[k - 1]!.order!, `${ep.name}: states in event order`);
      }
      for (const st of ep.states.slice(1)) {
        assert.ok(st.cause.length > 0 && st.rfc.startsWith('RFC'), `${ep.name} ${st.state}: cause and rule given`);
      }
    }
    // Lost segments are in the capture (taken at send time): each lost one that carried data or a
    // SYN/FIN is sent again later, and the resend is marked as a retransmission.
    for (const lost of run.model.segments.filter((s) => s.dropped && (s.len > 0 || s.flags.includes('SYN') || s.flags.includes('FIN')))) {
      const i = run.model.segments.indexOf(lost);
      const again = model.segments.slice(i + 1).find((s) => s.seqAbs === lost.seqAbs && s.from === model.segments[i]!.from && (s.len > 0 || s.flags.includes('SYN') || s.flags.includes('FIN')));
      if (again === undefined) continue; // covered by a later, larger retransmission or the peer's SACK…
      assert.ok(
        again.marks?.some((m) => m === 'retransmission' || m === 'spurious-retransmission'),
        `segment ${i} (seq ${lost.seq}) lost; its resend is marked: ${JSON.stringify(again.marks)}`,
      );
    }
  });
}

test('a lossy transfer shows retransmission, dup-ack marks; a clean one shows none', () => {
  const lossy = inferFrom(runScenario('transfer', { loss: 0.05, bytes: 200000 }).pcap);
  const count = (m: DiagramModel, k: string): number => m.segments.filter((s) => s.marks?.includes(k as never)).length;
  assert.ok(count(lossy, 'retransmission') + count(lossy, 'spurious-retransmission') >= 5);
  assert.ok(count(lossy, 'dup-ack') >= 3);
  const clean = inferFrom(runScenario('transfer', { bytes: 200000 }).pcap);
  const trouble = ['retransmission', 'spurious-retransmission', 'dup-ack', 'out-of-order', 'lost-segment'];
  assert.equal(clean.segments.filter((s) => s.marks?.some((m) => trouble.includes(m))).length, 0, 'no loss marks without loss');
});

test('syn-lost: the resent SYN is a retransmission; the server listened and answered the second copy', () => {
  const model = inferFrom(runScenario('syn-lost').pcap);
  const syns = model.segments.filter((s) => s.flags.join(',') === 'SYN');
  assert.equal(syns.length, 2);
  assert.equal(syns[0]!.marks, undefined);
  assert.deepEqual(syns[1]!.marks, ['retransmission']);
  const server = model.endpoints[1]!;
  assert.equal(server.states[0]!.state, 'LISTEN');
  assert.equal(server.states[1]!.state, 'SYN-RECEIVED');
  assert.equal(server.states[1]!.t, syns[1]!.t, 'SYN-RECEIVED timed at the copy of the SYN it answered');
});

test('zero-window: zero-window, probe and window-update marks', () => {
  const model = inferFrom(runScenario('zero-window').pcap);
  const marked = (k: string) => model.segments.filter((s) => s.marks?.includes(k as never));
  const zero = marked('zero-window');
  assert.ok(zero.length >= 1 && zero.every((s) => s.win === 0 && s.from === model.endpoints[1]!.name));
  const probes = marked('zero-window-probe');
  assert.ok(probes.length >= 1 && probes.every((s) => s.from === model.endpoints[0]!.name));
  assert.ok(probes[0]!.t > zero[0]!.t);
  const updates = marked('window-update');
  assert.ok(updates.some((s) => s.win > 0 && s.t > probes[0]!.t && s.from === model.endpoints[1]!.name));
});

test('names, ISN-relative numbers, TIME-WAIT expiry assumed 2×MSL later', () => {
  const run = runScenario('handshake');
  const model = inferFrom(run.pcap);
  const [client, server] = model.endpoints;
  const c = run.model.endpoints[0]!;
  assert.equal(client!.name, `${c.address}:${c.port}`);
  assert.equal(server!.name, '10.0.0.2:80');
  assert.equal(model.segments[0]!.seq, 0);
  const last = client!.states[client!.states.length - 1]!;
  const tw = client!.states[client!.states.length - 2]!;
  assert.equal(tw.state, 'TIME-WAIT');
  assert.equal(last.state, 'CLOSED');
  assert.equal(last.assumed, true);
  assert.match(last.cause, /assumed/);
  assert.ok(Math.abs(last.t - tw.t - TIME_WAIT_S) < 1e-9);
  assert.equal(client!.states[0]!.state, 'CLOSED');
  assert.match(client!.states[1]!.cause, /^sent SYN \(seq 0\)$/);
  assert.match(server!.states[3]!.cause, /^received FIN,ACK \(seq \d+, ack \d+\) → sent ACK$/);
});

test('a capture that starts mid-connection: unknown, then ESTABLISHED (assumed); absolute numbers', () => {
  const pcap = runScenario('handshake').pcap;
  // Drop the first three records (the handshake).
  const v = new DataView(pcap.buffer, pcap.byteOffset);
  let off = 24;
  for (let i = 0; i < 3; i++) off += 16 + v.getUint32(off + 8, true);
  const cut = new Uint8Array(24 + pcap.length - off);
  cut.set(pcap.subarray(0, 24));
  cut.set(pcap.subarray(off), 24);
  const model = inferFrom(cut);
  const [a, b] = model.endpoints.map((e) => e.states.map((s) => s.state));
  assert.deepEqual(a, ['unknown', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
  assert.deepEqual(b, ['unknown', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
  assert.equal(model.endpoints[0]!.states[1]!.assumed, true);
  assert.equal(model.segments[0]!.seq, model.segments[0]!.seqAbs, 'no SYN: absolute sequence numbers');
  assert.ok(model.notes.some((n) => /absolute/.test(n.what)));
});

test('streams: several connections in one capture are listed and drawn apart', () => {
  // Two demo runs with different seeds (different client ports), merged in time order.
  const recs = (pcap: Uint8Array, dt: number) => {
    const v = new DataView(pcap.buffer, pcap.byteOffset);
    const out: Array<{ t: number; frame: Uint8Array }> = [];
    for (let off = 24; off < pcap.length; ) {
      const incl = v.getUint32(off + 8, true);
      out.push({ t: 1000 + dt + v.getUint32(off, true) + v.getUint32(off + 4, true) / 1e6, frame: pcap.slice(off + 16, off + 16 + incl) });
      off += 16 + incl;
    }
    return out;
  };
  const one = runScenario('refused', { seed: 1 });
  const two = runScenario('handshake', { seed: 2 });
  const merged = buildPcap(101, [...recs(one.pcap, 0), ...recs(two.pcap, 0.005)].sort((x, y) => x.t - y.t));
  const segments = extractTcp(readCapture(merged).packets).segments;
  const streams = listStreams(segments);
  assert.equal(streams.length, 2);
  assert.equal(streams[0]!.b.port, 81);
  assert.equal(streams[0]!.rst, true);
  assert.equal(streams[1]!.b.port, 80);
  assert.equal(streams[1]!.fin, true);
  assert.equal(streams[1]!.a.bytes, 34);
  const refused = inferFrom(merged, 0);
  assert.deepEqual(refused.endpoints.map((e) => e.states.map((s) => s.state)), [['CLOSED', 'SYN-SENT', 'CLOSED'], ['CLOSED']]);
  assert.match(refused.endpoints[0]!.states[2]!.cause, /connection refused/);
  assert.match(refused.endpoints[1]!.states[0]!.cause, /nothing listened/);
});
