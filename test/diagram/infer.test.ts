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
import { buildPcap, pcapRecords, tcpIpv4 } from '../trace/capture-builders.js';

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
      const w = run.model.segments[i]!;
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
  // Drop the first three records (the handshake).
  const cut = buildPcap(101, pcapRecords(runScenario('handshake').pcap).slice(3));
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
  const one = runScenario('refused', { seed: 1 });
  const two = runScenario('handshake', { seed: 2 });
  const merged = buildPcap(101, [...pcapRecords(one.pcap, 1000), ...pcapRecords(two.pcap, 1000.005)].sort((x, y) => x.t - y.t));
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

// ---------------------------------------------------------------------------------------------
// Hand-built captures: what the demo (captured at send time, at both ends, by a stack that follows
// the RFC) never produces — a capture started late, asymmetric routing, RFC 9293 §3.5's recovery
// figures, reordering seen at a receiver, a gap, a reused 4-tuple.

const A = ['10.0.0.1', 1000] as const;
const B = ['10.0.0.2', 80] as const;
type Spec = [t: number, from: typeof A | typeof B, flags: string, seq: number, ack?: number, len?: number];

function handBuilt(specs: Spec[], o: { options?: Map<number, number[]> } = {}): Uint8Array {
  return buildPcap(101, specs.map(([t, from, flags, seq, ack, len], i) => ({
    t: 1_700_000_000 + t,
    frame: tcpIpv4({ from, to: from === A ? B : A, flags, seq, ack: ack ?? 0, len: len ?? 0, options: o.options?.get(i) }),
  })));
}

/** Times in these tests are 1.7e9 + t: equal to the microsecond. */
function near(actual: number, expected: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what} ${actual} ≈ ${expected}`);
}

function states(model: DiagramModel): string[][] {
  return model.endpoints.map((e) => e.states.map((s) => `${s.state}${s.assumed === true ? '*' : ''}`));
}

const a = 100;
const b = 5000;

test('a capture that starts at the SYN,ACK: SYN-RECEIVED and ESTABLISHED assumed, then the close as seen', () => {
  const m = inferFrom(handBuilt([
    [1, B, 'SA', b, a + 1], [2, A, 'A', a + 1, b + 1], [2.5, A, 'PA', a + 1, b + 1, 10], [3, B, 'A', b + 1, a + 11],
    [4, A, 'FA', a + 11, b + 1], [5, B, 'FA', b + 1, a + 12], [6, A, 'A', a + 12, b + 2],
  ]));
  // Side a is the first sender (no bare SYN in the capture): B.
  assert.equal(m.endpoints[0]!.name, '10.0.0.2:80');
  assert.deepEqual(states(m), [
    ['unknown', 'SYN-RECEIVED*', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'],
    ['unknown', 'ESTABLISHED*', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED*'],
  ]);
  assert.match(m.endpoints[0]!.states[1]!.cause, /SYN that is not in the capture/);
  near(m.endpoints[0]!.states[1]!.t, 0, 'SYN-RECEIVED at its SYN,ACK');
  near(m.endpoints[1]!.states[1]!.t, 0, 'ESTABLISHED on receipt of the SYN,ACK');
});

test('the SYN,ACK not captured (asymmetric routing): the opener is ESTABLISHED (assumed) when it ACKs', () => {
  const m = inferFrom(handBuilt([
    [0, A, 'S', a], [2, A, 'A', a + 1, b + 1], [2.5, A, 'PA', a + 1, b + 1, 10], [3, B, 'A', b + 1, a + 11],
    [4, A, 'FA', a + 11, b + 1], [5, B, 'FA', b + 1, a + 12], [6, A, 'A', a + 12, b + 2],
  ]));
  assert.deepEqual(states(m), [
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED*', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED*'],
    ['unknown', 'ESTABLISHED*', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'],
  ]);
  near(m.endpoints[0]!.states[2]!.t, 2);
  assert.match(m.endpoints[0]!.states[2]!.cause, /SYN,ACK that is not in the capture/);
});

test('a FIN received in SYN-SENT (its SYN,ACK not captured): ESTABLISHED assumed first, then CLOSE-WAIT', () => {
  const m = inferFrom(handBuilt([[0, A, 'S', a], [1, B, 'FA', b + 1, a + 1], [2, A, 'A', a + 1, b + 2]]));
  assert.deepEqual(states(m), [
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED*', 'CLOSE-WAIT'],
    ['unknown', 'ESTABLISHED*', 'FIN-WAIT-1', 'FIN-WAIT-2'],
  ]);
});

test('RFC 9293 §3.5 Figure 8, recovery from an old duplicate SYN: the RST keeps SYN-SENT; LISTEN, then SYN-RECEIVED again', () => {
  // The figure's numbers: A's ISS 100, an old duplicate SYN 90, B's ISS 300 then 400.
  const m = inferFrom(handBuilt([
    [0, A, 'S', 100], [0.1, A, 'S', 90], [0.2, B, 'SA', 300, 91], [0.3, A, 'R', 91],
    [0.4, B, 'SA', 400, 101], [0.5, A, 'A', 101, 401],
  ]));
  assert.deepEqual(states(m), [
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED'],
    ['LISTEN', 'SYN-RECEIVED', 'LISTEN', 'SYN-RECEIVED', 'ESTABLISHED'],
  ]);
  const [, bSide] = m.endpoints;
  near(bSide!.states[2]!.t, 0.3, 'back to LISTEN on the RST');
  assert.match(bSide!.states[2]!.rfc, /§3\.10\.7\.4/);
  assert.match(bSide!.states[3]!.rfc, /§3\.5 Figure 8/);
  near(bSide!.states[4]!.t, 0.5);
  near(m.endpoints[0]!.states[2]!.t, 0.4, 'A is ESTABLISHED at the second SYN,ACK, not the first');
});

test('RFC 9293 §3.5 Figure 10: a RST sent from SYN-SENT in reply to an unacceptable ACK keeps SYN-SENT; the peer aborts', () => {
  const m = inferFrom(handBuilt([[0, A, 'S', 400], [0.1, B, 'A', 300, 100], [0.2, A, 'R', 100], [1.2, A, 'S', 400]]));
  assert.deepEqual(states(m), [
    ['CLOSED', 'SYN-SENT'],
    ['unknown', 'ESTABLISHED*', 'CLOSED'],
  ]);
  near(m.endpoints[1]!.states[2]!.t, 0.2);
});

test('a RST sent from SYN-RECEIVED in reply to an unacceptable ACK keeps SYN-RECEIVED (§3.10.7.4)', () => {
  const stray = (b + 1 + 2 ** 30) >>> 0; // an old segment's ACK, far outside anything B sent
  const m = inferFrom(handBuilt([
    [0, A, 'S', a], [0.1, B, 'SA', b, a + 1], [0.15, A, 'A', a + 1, stray], [0.16, B, 'R', stray], [0.2, A, 'A', a + 1, b + 1],
  ]));
  assert.deepEqual(states(m), [
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED'],
    ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED'],
  ]);
  near(m.endpoints[1]!.states[2]!.t, 0.2);
});

test('a reused 4-tuple with a new SYN after the close is a new stream, drawn on its own', () => {
  const pcap = handBuilt([
    [0, A, 'S', a], [0.1, B, 'SA', b, a + 1], [0.2, A, 'A', a + 1, b + 1], [0.3, A, 'FA', a + 1, b + 1], [0.4, B, 'FA', b + 1, a + 2], [0.5, A, 'A', a + 2, b + 2],
    [1, A, 'S', a + 99999], [1.1, B, 'SA', b + 99999, a + 100000], [1.2, A, 'A', a + 100000, b + 100000],
  ]);
  const streams = listStreams(extractTcp(readCapture(pcap).packets).segments);
  assert.deepEqual(streams.map((s) => [s.packets, s.fin, s.a.name]), [[6, true, '10.0.0.1:1000'], [3, false, '10.0.0.1:1000']]);
  assert.deepEqual(states(inferFrom(pcap, 0)), [
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED*'],
    ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'],
  ]);
  const second = inferFrom(pcap, 1);
  assert.deepEqual(states(second), [['CLOSED', 'SYN-SENT', 'ESTABLISHED'], ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED']]);
  assert.equal(second.segments[0]!.seq, 0, 'relative to the new ISN');
});

test('TIME-WAIT: a FIN received again restarts the assumed 2×MSL', () => {
  const m = inferFrom(handBuilt([
    [0, A, 'S', a], [0.1, B, 'SA', b, a + 1], [0.2, A, 'A', a + 1, b + 1], [0.3, A, 'FA', a + 1, b + 1], [0.4, B, 'FA', b + 1, a + 2], [0.5, A, 'A', a + 2, b + 2],
    // B did not get the last ACK: its FIN again 10 s later, acknowledged again.
    [10.4, B, 'FA', b + 1, a + 2], [10.5, A, 'A', a + 2, b + 2],
  ]));
  const client = m.endpoints[0]!.states;
  const tw = client[client.length - 2]!;
  const closed = client[client.length - 1]!;
  assert.equal(tw.state, 'TIME-WAIT');
  near(tw.t, 0.4);
  assert.deepEqual([closed.state, closed.assumed], ['CLOSED', true]);
  assert.ok(Math.abs(closed.t - (10.4 + TIME_WAIT_S)) < 1e-6, `CLOSED at ${closed.t}: 2×MSL after the last FIN, not the first`);
  // Its ACK was captured, so the resent FIN is a spurious retransmission (as Wireshark says).
  assert.deepEqual(m.segments[6]!.marks, ['spurious-retransmission']);
});

test('marks: out-of-order at the receiver, and a gap (previous segment not captured)', () => {
  // Captured at B: the RTT is 50 ms; the second data segment arrives 1 ms after the third.
  const ooo = inferFrom(handBuilt([
    [0, A, 'S', a], [0.0001, B, 'SA', b, a + 1], [0.05, A, 'A', a + 1, b + 1],
    [0.1, A, 'PA', a + 1, b + 1, 100], [0.1001, B, 'A', b + 1, a + 101],
    [0.101, A, 'PA', a + 201, b + 1, 100], [0.1011, B, 'A', b + 1, a + 101],
    [0.102, A, 'PA', a + 101, b + 1, 100], [0.1021, B, 'A', b + 1, a + 301],
  ]));
  assert.deepEqual(ooo.segments.map((s) => s.marks ?? []), [[], [], [], [], [], ['lost-segment'], ['dup-ack'], ['out-of-order'], []]);
  // The same hole filled 200 ms later (well past the initial RTT) is a retransmission, not a reordering.
  const late = inferFrom(handBuilt([
    [0, A, 'S', a], [0.0001, B, 'SA', b, a + 1], [0.05, A, 'A', a + 1, b + 1],
    [0.1, A, 'PA', a + 1, b + 1, 100], [0.1001, B, 'A', b + 1, a + 101],
    [0.101, A, 'PA', a + 201, b + 1, 100], [0.1011, B, 'A', b + 1, a + 101],
    [0.3, A, 'PA', a + 101, b + 1, 100], [0.3001, B, 'A', b + 1, a + 301],
  ]));
  assert.deepEqual(late.segments[7]!.marks, ['retransmission']);
  const gap = inferFrom(handBuilt([
    [0, A, 'S', a], [0.0001, B, 'SA', b, a + 1], [0.05, A, 'A', a + 1, b + 1], [0.1, A, 'PA', a + 101, b + 1, 100], [0.1001, B, 'A', b + 1, a + 201],
  ]));
  assert.deepEqual(gap.segments.map((s) => s.marks ?? []), [[], [], [], ['lost-segment'], []]);
});

test('capture oddities: IPv4 checksum offload, malformed and unknown TCP options, the exact data offset', () => {
  const pcap = handBuilt([[0, A, 'S', a], [0.1, B, 'SA', b, a + 1], [0.2, A, 'A', a + 1, b + 1], [0.3, A, 'PA', a + 1, b + 1, 10]], {
    options: new Map([
      [0, [2, 4, 5, 180, 30, 4, 0xab, 0xcd]], // MSS 1460, then kind 30 (MPTCP), length 4
      [1, [2, 3, 5]], // MSS with length 3: malformed
      [3, [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]], // NOP NOP TS
    ]),
  });
  // A capture at A with IPv4 checksum offload: A's packets carry a zero IP header checksum.
  const offloaded = readCapture(pcap);
  for (const p of offloaded.packets) if (p.bytes[15] === 1) p.bytes.fill(0, 10, 12);
  const { segments, skipped } = extractTcp(offloaded.packets);
  assert.deepEqual(skipped, {});
  assert.equal(segments.length, 4);
  const m = inferStream(splitStreams(segments)[0]!);
  assert.deepEqual(m.segments.map((s) => s.options), [['MSS=1460', 'opt30(len 4)'], ['malformed options (MSS with length 3)'], [], ['TS=1/2']]);
  assert.deepEqual(m.segments.map((s) => s.dataOffset), [28, 24, 20, 32]);
  assert.deepEqual(m.segments.map((s) => [s.seqAbs, s.ackAbs, s.len]), [[a, 0, 0], [b, a + 1, 0], [a + 1, b + 1, 0], [a + 1, b + 1, 10]]);
  assert.deepEqual(states(m), [['CLOSED', 'SYN-SENT', 'ESTABLISHED'], ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED']]);
});

test('a record cut by the snaplen with an absurd original length: the buffer is the IP packet\'s length', () => {
  const ip = tcpIpv4({ from: A, to: B, flags: 'PA', seq: a, ack: b, len: 1000 });
  const [p] = readCapture(buildPcap(101, [{ t: 1, frame: ip.subarray(0, 60), orig: 0xffffffff }])).packets;
  assert.equal(p!.truncated, true);
  // Beyond any array length: padding to it would throw (or, at 4 GiB, allocate that much).
  const { segments } = extractTcp([{ ...p!, origLength: Number.MAX_SAFE_INTEGER }]);
  assert.equal(segments.length, 1);
  assert.equal(segments[0]!.len, 1000, 'payload length from the IP header');
  assert.equal(segments[0]!.truncated, true);
});
