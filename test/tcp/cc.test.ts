/**
 * Congestion control algorithms behind one interface (src/tcp/cc): NewReno (RFC 5681, RFC 3465,
 * RFC 7661) and CUBIC (RFC 9438). Time is simulated: ACKs carry a plain `now` in ms, one window of
 * ACKs spread evenly across each round trip.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  Cubic,
  NewReno,
  createCongestionControl,
  type CongestionControl,
  type CongestionControlName,
} from '../../src/tcp/cc/index.js';

const MSS = 1000;
const IW = 10 * MSS;
const ALGORITHMS: CongestionControlName[] = ['newreno', 'cubic'];
// RFC 9438 constants, restated here so the tests do not trust the implementation's.
const C = 0.4;
const BETA = 0.7;
const ALPHA = (3 * (1 - BETA)) / (1 + BETA);

function started<T extends CongestionControl>(cc: T): T {
  cc.init(MSS, IW, 0);
  return cc;
}

/**
 * One round trip: a window's worth of ACKs (as cwnd stood when the round began), `perAck` bytes each,
 * spread evenly over `rttMs`. Returns the time at the end of the round.
 */
function ackRound(cc: CongestionControl, now: number, rttMs: number, perAck = MSS): number {
  const acks = Math.max(1, Math.floor(cc.cwnd / perAck));
  assert.ok(acks < 100_000, 'window out of bounds for a test');
  for (let i = 1; i <= acks; i++) cc.onAck(perAck, rttMs, true, now + (i * rttMs) / acks);
  return now + rttMs;
}

/** ACKs of `perAck` bytes, 1 ms apart, until slow start ends at ssthresh. Returns the time of the last. */
function ackToSsthresh(cc: CongestionControl, now: number, rttMs: number, perAck = MSS): number {
  for (let i = 0; i < 10_000 && cc.cwnd < cc.ssthresh; i++) cc.onAck(perAck, rttMs, true, ++now);
  return now;
}

/** A controller in congestion avoidance just after a loss at cwnd = 160 SMSS and its recovery. */
function afterLoss(cc: CongestionControl, rttMs: number): number {
  let now = 0;
  for (let i = 0; i < 4; i++) now = ackRound(cc, now, rttMs); // 10 -> 160 SMSS in slow start
  assert.equal(cc.cwnd, 160 * MSS);
  cc.onLoss(cc.cwnd, now);
  now += rttMs;
  cc.onRecoveryEnd(now);
  return now;
}

describe('slow start (RFC 5681 §3.1, RFC 3465 byte counting as Linux does it: no L cap)', () => {
  for (const name of ALGORITHMS) {
    test(`${name}: doubles per RTT even with one ACK per two segments`, () => {
      const cc = started(createCongestionControl(name));
      assert.equal(cc.name, name);
      assert.equal(cc.cwnd, IW);
      let now = ackRound(cc, 0, 50, 2 * MSS);
      assert.equal(cc.cwnd, 2 * IW);
      now = ackRound(cc, now, 50, 2 * MSS);
      assert.equal(cc.cwnd, 4 * IW);
    });

    test(`${name}: a stretch ACK grows cwnd by every byte it acknowledges, as Linux's tcp_slow_start (no RFC 3465 L cap)`, () => {
      const cc = started(createCongestionControl(name));
      cc.onAck(8 * MSS, 50, true, 50);
      assert.equal(cc.cwnd, IW + 8 * MSS);
      cc.onAck(MSS / 2, 50, true, 60);
      assert.equal(cc.cwnd, IW + 8 * MSS + MSS / 2, 'bytes, not ACKs, are counted');
    });

    test(`${name}: no growth when cwnd did not limit sending (RFC 7661)`, () => {
      const cc = started(createCongestionControl(name));
      for (let i = 1; i <= 20; i++) cc.onAck(MSS, 50, false, i);
      assert.equal(cc.cwnd, IW, 'slow start');
      afterLoss(cc, 50);
      const cwnd = cc.cwnd;
      for (let i = 1; i <= 1000; i++) cc.onAck(MSS, 50, false, 1000 + i * 10);
      assert.equal(cc.cwnd, cwnd, 'congestion avoidance');
    });

    test(`${name}: RTO sets cwnd to 1 SMSS; a repeated RTO keeps ssthresh; slow start stops at ssthresh`, () => {
      const cc = started(createCongestionControl(name));
      let now = 0;
      for (let i = 0; i < 4; i++) now = ackRound(cc, now, 50);
      cc.onRetransmissionTimeout(100 * MSS, now);
      assert.equal(cc.cwnd, MSS);
      // NewReno halves the flight (RFC 5681 eq. 4); CUBIC cuts cwnd by beta (RFC 9438 §4.8).
      const ssthresh = name === 'newreno' ? 50 * MSS : 0.7 * 160 * MSS;
      assert.equal(cc.ssthresh, ssthresh);
      cc.onRetransmissionTimeout(MSS, now + 200);
      assert.equal(cc.ssthresh, ssthresh, 'RFC 5681 §3.1: held on a second timeout of the same segment');
      assert.equal(cc.cwnd, MSS);
      // Two SMSS per ACK from 1 SMSS climbs in odd multiples, which would step over an even ssthresh.
      now = ackToSsthresh(cc, now + 200, 50, 2 * MSS);
      assert.equal(cc.cwnd, ssthresh);
      cc.onAck(MSS, 50, true, ++now);
      assert.ok(cc.cwnd - ssthresh < MSS, 'then congestion avoidance');
      // Once new data is acked, a further RTO is a new event and cuts again.
      cc.onRetransmissionTimeout(20 * MSS, now);
      assert.ok(cc.ssthresh < ssthresh);
    });

    test(`${name}: an RTO in fast recovery keeps ssthresh; recovery end does not reinflate`, () => {
      const cc = started(createCongestionControl(name));
      let now = 0;
      for (let i = 0; i < 4; i++) now = ackRound(cc, now, 50);
      cc.onLoss(160 * MSS, now);
      const ssthresh = cc.ssthresh;
      cc.onRetransmissionTimeout(cc.cwnd, now + 300);
      assert.equal(cc.ssthresh, ssthresh);
      assert.equal(cc.cwnd, MSS);
      cc.onRecoveryEnd(now + 400);
      assert.equal(cc.cwnd, MSS);
    });

    test(`${name}: idle restart caps cwnd at the initial window (RFC 5681 §4.1)`, () => {
      const cc = started(createCongestionControl(name));
      let now = 0;
      for (let i = 0; i < 3; i++) now = ackRound(cc, now, 50);
      assert.equal(cc.cwnd, 8 * IW);
      cc.onIdleRestart(IW, now + 5000);
      assert.equal(cc.cwnd, IW);
      cc.onRetransmissionTimeout(IW, now + 5000);
      cc.onIdleRestart(IW, now + 10_000);
      assert.equal(cc.cwnd, MSS, 'a window below IW is kept');
    });
  }
});

describe('NewReno', () => {
  test('loss halves the flight, not below 2 SMSS (RFC 5681 eq. 4), and cwnd = ssthresh', () => {
    const cc = started(new NewReno());
    cc.onLoss(41 * MSS, 100);
    assert.equal(cc.ssthresh, 20.5 * MSS);
    assert.equal(cc.cwnd, 20.5 * MSS);
    cc.onRecoveryEnd(200);
    assert.equal(cc.cwnd, cc.ssthresh);
    cc.onLoss(3 * MSS, 300);
    assert.equal(cc.ssthresh, 2 * MSS);
  });

  test('congestion avoidance: one SMSS per cwnd of acknowledged bytes (RFC 3465 §2.1)', () => {
    const cc = started(new NewReno());
    cc.onLoss(40 * MSS, 0);
    cc.onRecoveryEnd(50);
    assert.equal(cc.cwnd, 20 * MSS);
    for (let i = 1; i < 20; i++) cc.onAck(MSS, 50, true, 50 + i);
    assert.equal(cc.cwnd, 20 * MSS, 'one byte short of a window: no growth yet');
    cc.onAck(MSS, 50, true, 100);
    assert.equal(cc.cwnd, 21 * MSS);
    let now = 100;
    for (let i = 0; i < 10; i++) now = ackRound(cc, now, 50);
    assert.equal(cc.cwnd, 31 * MSS, 'ten round trips, ten SMSS');
  });
});

describe('CUBIC (RFC 9438)', () => {
  test('loss multiplies cwnd (not flight) by beta = 0.7 (§4.6); W_max is cwnd at the loss', () => {
    const cc = started(new Cubic());
    let now = 0;
    for (let i = 0; i < 4; i++) now = ackRound(cc, now, 50);
    cc.onLoss(20 * MSS, now);
    assert.equal(cc.ssthresh, 112 * MSS);
    assert.equal(cc.cwnd, 112 * MSS);
    assert.equal(cc.wMax, 160 * MSS);
  });

  test('after a loss, cwnd is back at W_max after K seconds: concave before, convex after', () => {
    const rtt = 100;
    const cc = started(new Cubic());
    let now = afterLoss(cc, rtt);
    const wMax = 160 * MSS;
    const k = Math.cbrt((wMax - cc.cwnd) / MSS / C); // eq. 2: about 4.93 s
    const epoch = now;
    const samples = new Map<number, number>(); // fraction of K -> cwnd
    const fractions = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75];
    for (let round = 0; round < 200 && samples.size < fractions.length; round++) {
      now = ackRound(cc, now, rtt);
      const t = (now - epoch) / 1000;
      for (const f of fractions) if (!samples.has(f) && t >= f * k) samples.set(f, cc.cwnd);
    }
    assert.ok(Math.abs(cc.k - k) < 1e-9, `K = ${cc.k}, expected ${k}`);
    const at = (f: number): number => samples.get(f)!;
    assert.ok(Math.abs(at(1) - wMax) / wMax < 0.03, `cwnd at K: ${at(1)} vs W_max ${wMax}`);
    // Concave (§4.4): each quarter of K adds less than the one before.
    const before = [at(0.5) - at(0.25), at(0.75) - at(0.5), at(1) - at(0.75)];
    assert.ok(before[0]! > before[1]! && before[1]! > before[2]!, `concave: ${before}`);
    // Convex (§4.5): after K, each quarter adds more.
    const after = [at(1.25) - at(1), at(1.5) - at(1.25), at(1.75) - at(1.5)];
    assert.ok(after[0]! < after[1]! && after[1]! < after[2]!, `convex: ${after}`);
    // And it really follows eq. 1, not some other curve of that shape (cwnd tracks W_cubic(t + RTT)).
    const wCubic = (t: number): number => (C * (t - k) ** 3 + wMax / MSS) * MSS;
    for (const f of [0.5, 1.5]) assert.ok(Math.abs(at(f) - wCubic(f * k)) / wMax < 0.03, `at ${f} K`);
  });

  test('each ACK closes (target - cwnd) / cwnd of the gap to W_cubic(t + RTT) (§4.2, eq. 1)', () => {
    for (const rtt of [100, 400]) {
      const cc = started(new Cubic());
      let now = afterLoss(cc, rtt);
      const wMax = 160 * MSS;
      const k = Math.cbrt((wMax - cc.cwnd) / MSS / C);
      cc.onAck(MSS, rtt, true, now); // t = 0: the epoch starts
      const c = cc.cwnd;
      now += 10;
      cc.onAck(MSS, rtt, true, now);
      const target = (C * ((10 + rtt) / 1000 - k) ** 3 + wMax / MSS) * MSS;
      const expected = c + ((target - c) * MSS) / c;
      assert.ok(Math.abs(cc.cwnd - expected) <= 1, `RTT ${rtt}: ${cc.cwnd} vs ${expected}`);
      assert.ok(cc.cwnd - c > 10, 'it grew');
    }
  });

  test('fast convergence (§4.7): a loss below the previous W_max lowers W_max to cwnd * (1 + beta) / 2', () => {
    const rtt = 100;
    const cc = started(new Cubic());
    let now = afterLoss(cc, rtt);
    for (let round = 0; round < 100 && cc.cwnd < 130 * MSS; round++) now = ackRound(cc, now, rtt);
    const below = cc.cwnd;
    assert.ok(below < 160 * MSS);
    cc.onLoss(below, now);
    assert.equal(cc.wMax, (below * (1 + BETA)) / 2);
    assert.equal(cc.ssthresh, Math.floor(below * BETA));
    now += rtt;
    cc.onRecoveryEnd(now);
    // A loss above the (lowered) W_max sets W_max to cwnd itself.
    const lowered = cc.wMax;
    for (let round = 0; round < 200 && cc.cwnd <= lowered * 1.05; round++) now = ackRound(cc, now, rtt);
    const above = cc.cwnd;
    assert.ok(above > lowered);
    cc.onLoss(above, now);
    assert.equal(cc.wMax, above);
  });

  test('Reno-friendly region (§4.3): at small BDP cwnd grows like Reno, not along the slow cubic curve', () => {
    const rtt = 1;
    const cc = started(new Cubic());
    let now = ackRound(cc, 0, rtt); // 10 -> 20 SMSS
    cc.onLoss(cc.cwnd, now);
    cc.onRecoveryEnd(now + rtt);
    now += rtt;
    assert.equal(cc.cwnd, 14 * MSS);
    const epoch = now;
    const rounds = 30;
    for (let i = 0; i < rounds; i++) now = ackRound(cc, now, rtt);
    const k = Math.cbrt((20 - 14) / C);
    const cubicOnly = C * ((now - epoch) / 1000 - k) ** 3 + 20; // segments, about 14.2
    const segments = cc.cwnd / MSS;
    assert.ok(segments >= 14 + rounds * ALPHA * 0.95, `at least alpha_cubic per RTT: ${segments}`);
    assert.ok(segments <= 14 + rounds, `no faster than Reno's 1 SMSS per RTT: ${segments}`);
    assert.ok(segments > 1.5 * cubicOnly, `well above W_cubic(t) = ${cubicOnly}`);
  });

  test('the target is clamped to 1.5 cwnd (§4.2): a long gap between ACKs grows cwnd at most 50% per RTT', () => {
    const rtt = 100;
    const cc = started(new Cubic());
    let now = afterLoss(cc, rtt);
    now = ackRound(cc, now, rtt); // the epoch starts here
    const before = cc.cwnd;
    ackRound(cc, now + 60_000, rtt); // t = 60 s: W_cubic is far above
    assert.ok(cc.cwnd <= 1.5 * before && cc.cwnd > 1.4 * before, `${before} -> ${cc.cwnd}`);
  });

  test('timeout (§4.8): the first congestion avoidance after it starts convex from its own cwnd (K = 0)', () => {
    const rtt = 100;
    const cc = started(new Cubic());
    let now = 0;
    for (let i = 0; i < 4; i++) now = ackRound(cc, now, rtt);
    cc.onRetransmissionTimeout(cc.cwnd, now);
    now = ackToSsthresh(cc, now + 1000, rtt);
    const start = cc.cwnd;
    const grown: number[] = [];
    for (let i = 0; i < 30; i++) {
      const c = cc.cwnd;
      now = ackRound(cc, now, rtt);
      grown.push(cc.cwnd - c);
    }
    assert.equal(cc.k, 0);
    assert.equal(cc.wMax, start);
    assert.ok(grown[29]! > grown[5]!, `growth speeds up: ${grown}`);
  });

  test('idle restart (§5.8) resets the epoch: the idle time does not count as congestion avoidance', () => {
    const rtt = 100;
    const cc = started(new Cubic());
    let now = afterLoss(cc, rtt);
    for (let i = 0; i < 3; i++) now = ackRound(cc, now, rtt);
    now += 20_000; // idle for 20 s
    cc.onIdleRestart(IW, now);
    assert.equal(cc.cwnd, IW);
    now = ackToSsthresh(cc, now, rtt);
    assert.equal(cc.cwnd, cc.ssthresh);
    const before = cc.cwnd;
    ackRound(cc, now, rtt);
    // With t counted from the old epoch W_cubic(20 s) is far above, and cwnd would grow by 50%.
    assert.ok(cc.cwnd < before * 1.1, `${before} -> ${cc.cwnd}`);
    assert.ok(cc.k > 0, 'W_max kept: K measured from the restart cwnd towards it');
  });
});

test('createCongestionControl returns a fresh controller of each kind', () => {
  const a = createCongestionControl('cubic');
  const b = createCongestionControl('cubic');
  assert.ok(a instanceof Cubic && b instanceof Cubic && a !== b);
  assert.ok(createCongestionControl('newreno') instanceof NewReno);
});
