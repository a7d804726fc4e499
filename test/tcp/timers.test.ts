/**
 * Timers of one connection: retransmission (RFC 6298, Karn), zero-window persist (RFC 9293 §3.8.6.1),
 * keep-alive (§3.8.4) and the user timeout (§3.8.3, RFC 5482). SYN and TIME-WAIT timers are tested
 * with their states (handshake.test.ts, closing.test.ts).
 * After `established()` (SYN,ACK after 10 ms): SRTT 10, RTTVAR 5, RTO = max(30, 200) = 200 ms.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ACK, advance, bytes, established, expectSent, fireNext, out, send } from './harness.js';

describe('retransmission timer (RFC 6298)', () => {
  test('data retransmitted after the RTO, then with the timer doubled each time (5.4), (5.5)', () => {
    const r = established();
    const t0 = r.host.t;
    r.conn.write(bytes(10));
    const [first] = r.host.takeFull();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      times.push(fireNext(r));
      const [again] = r.host.takeFull();
      assert.deepEqual({ flags: again!.flags, seq: again!.seq, ack: again!.ack, len: again!.len }, { flags: 'PSH,ACK', seq: 1001, ack: 5001, len: 10 });
      assert.deepEqual(again!.payload, first!.payload);
    }
    assert.deepEqual(times.map((t) => t - t0), [200, 600, 1400]);
    assert.equal(r.conn.info().rto, 1600);
  });

  test('ETIMEDOUT after dataRetries retransmissions; no segment at the end', () => {
    const r = established({ config: { dataRetries: 3 } });
    const t0 = r.host.t;
    r.conn.write(bytes(10));
    r.host.take();
    advance(r, 1400);
    assert.equal(r.host.take().length, 3);
    assert.equal(r.conn.state, 'ESTABLISHED');
    advance(r, 1599);
    assert.equal(r.conn.state, 'ESTABLISHED');
    advance(r, 1);
    assert.equal(r.host.t - t0, 3000);
    assert.equal(r.conn.state, 'CLOSED');
    expectSent(r, []);
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('an ACK of everything stops the timer: no retransmission (5.2)', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.take();
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    advance(r, 10_000);
    expectSent(r, []);
  });

  test('RTT sample from a segment sent once (RFC 6298 (2.3))', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.t += 300;
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    const i = r.conn.info();
    assert.equal(i.srtt, 46.25); // 7/8·10 + 1/8·300
    assert.equal(i.rttvar, 76.25); // 3/4·5 + 1/4·|10 − 300|
    assert.equal(i.rto, 351.25); // SRTT + 4·RTTVAR
  });

  test('Karn: no RTT sample from a retransmitted segment, and the backed-off RTO is kept (RFC 6298 §3, (5.5))', () => {
    const r = established();
    r.conn.write(bytes(10));
    fireNext(r); // retransmission, RTO now 400
    r.host.t += 50;
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    let i = r.conn.info();
    assert.equal(i.srtt, 10, 'ambiguous ACK not sampled');
    assert.equal(i.rto, 400);
    // The next segment sent once gives a sample again and collapses the backoff.
    r.host.take();
    r.conn.write(bytes(10));
    r.host.t += 50;
    send(r, { seq: 5001, ack: 1021, flags: ACK });
    i = r.conn.info();
    assert.equal(i.srtt, 15);
    assert.equal(i.rto, 200);
  });

  test('after an RTO, cwnd = 1 SMSS and ssthresh = max(FlightSize/2, 2·SMSS) (RFC 5681 §3.1 (4))', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(1000));
    assert.equal(r.host.take().length, 10);
    fireNext(r);
    // Only the first segment goes again: cwnd is one segment.
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
    const i = r.conn.info();
    assert.equal(i.cwnd, 100);
    assert.equal(i.ssthresh, 500);
  });

  test('after an RTO rewound SND.NXT, an ACK of everything first sent is accepted, not "unsent data"', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(300));
    r.host.take();
    fireNext(r);
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
    send(r, { seq: 5001, ack: 1301, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.info().sndUna, 1301);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('after an RTO, go-back-N resends from SND.UNA as ACKs arrive', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(300));
    r.host.take();
    fireNext(r);
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    // cwnd grew by one segment (slow start): the next two segments follow.
    expectSent(r, [out('ACK', 1101, 5001, 1024, 100), out('PSH,ACK', 1201, 5001, 1024, 100)]);
  });
});

describe('zero-window persist (RFC 9293 §3.8.6.1)', () => {
  test('probes <SEQ=SND.UNA−1> with no data, backing off 200, 400, 800, 1600 ms', () => {
    const r = established({ peerWindow: 0 });
    const t0 = r.host.t;
    r.conn.write(bytes(5));
    expectSent(r, []);
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      times.push(fireNext(r) - t0);
      expectSent(r, [out('ACK', 1000, 5001, 1024)]);
    }
    assert.deepEqual(times, [200, 600, 1400, 3000]);
    assert.equal(r.conn.state, 'ESTABLISHED', 'an unanswered probe never times the connection out by itself');
  });

  test('a probe answered with a zero window: probing continues', () => {
    const r = established({ peerWindow: 0 });
    r.conn.write(bytes(5));
    fireNext(r);
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 0 });
    expectSent(r, []);
    assert.notEqual(r.conn.deadline, Infinity);
    fireNext(r);
    expectSent(r, [out('ACK', 1000, 5001, 1024)]);
  });

  test('a receiver that keeps answering may keep its window closed indefinitely (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17)', () => {
    const r = established({ peerWindow: 0, config: { dataRetries: 3 } });
    r.conn.write(bytes(5));
    for (let i = 0; i < 20; i++) {
      fireNext(r);
      expectSent(r, [out('ACK', 1000, 5001, 1024)]);
      send(r, { seq: 5001, ack: 1001, flags: ACK, win: 0 });
      expectSent(r, []);
    }
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('probes nobody answers end the connection after dataRetries with ETIMEDOUT (like Linux tcp_retries2)', () => {
    const r = established({ peerWindow: 0, config: { dataRetries: 3 } });
    r.conn.write(bytes(5));
    for (let i = 0; i < 3; i++) {
      fireNext(r);
      expectSent(r, [out('ACK', 1000, 5001, 1024)]);
    }
    fireNext(r);
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events.slice(-1), ['closed:ETIMEDOUT']);
  });

  test('the window reopens: persist stops and the data goes at once', () => {
    const r = established({ peerWindow: 0 });
    r.conn.write(bytes(5));
    fireNext(r);
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 100 });
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 5)]);
    // Only the retransmission timer is left, one RTO from now.
    assert.equal(r.conn.deadline, r.host.t + 200);
    send(r, { seq: 5001, ack: 1006, flags: ACK, win: 100 });
    assert.equal(r.conn.deadline, Infinity);
  });

  test('a window closing again later starts probing from the base interval', () => {
    const r = established({ peerWindow: 0 });
    r.conn.write(bytes(5));
    fireNext(r);
    fireNext(r);
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 5 });
    send(r, { seq: 5001, ack: 1006, flags: ACK, win: 0 });
    r.host.take();
    const t1 = r.host.t;
    r.conn.write(bytes(5));
    assert.equal(fireNext(r) - t1, 200);
    expectSent(r, [out('ACK', 1005, 5001, 1024)]);
  });

  test('window shrunk to zero with data in flight: the sender keeps probing at SND.UNA, then sends when it reopens (§3.8.6.1)', () => {
    const r = established({ peerWindow: 10 });
    r.conn.write(bytes(10));
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 0 });
    r.conn.write(bytes(5));
    r.host.take();
    advance(r, 1000);
    const probes = r.host.take();
    assert.ok(probes.length >= 1, 'regular retransmission even when the window is zero');
    for (const p of probes) assert.ok(p.seq === 1000 || p.seq === 1001, `probe at SND.UNA(−1): ${p.seq}`);
    // The window reopens; the 10 bytes resent at the last RTO are still in flight, so Nagle holds
    // the 5 new ones (RFC 9293 §3.7.4) until they are acknowledged.
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 100 });
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1011, flags: ACK, win: 100 });
    expectSent(r, [out('PSH,ACK', 1011, 5001, 1024, 5)]);
  });
});

describe('keep-alive (RFC 9293 §3.8.4)', () => {
  test('after the idle delay a probe <SEQ=SND.NXT−1><ACK=RCV.NXT> with no data', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    assert.equal(fireNext(r), 10 + 1000);
    expectSent(r, [out('ACK', 1000, 5001, 1024)]);
  });

  test('unanswered probes repeat every 75 s; after 9, the connection ends with ETIMEDOUT', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      times.push(fireNext(r));
      expectSent(r, [out('ACK', 1000, 5001, 1024)]);
    }
    assert.deepEqual(times, [1010, 76010, 151010, 226010, 301010, 376010, 451010, 526010, 601010]);
    assert.equal(fireNext(r), 676010);
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('an answered probe resets the count: next probe one idle delay after the answer', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    fireNext(r);
    r.host.t += 5;
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    r.host.take();
    assert.equal(r.conn.deadline, 1015 + 1000);
  });

  test('traffic from the peer postpones the first probe', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    advance(r, 500);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'x' });
    r.host.take();
    assert.equal(r.conn.deadline, 510 + 1000);
  });

  test('no keep-alive probe while sent data is outstanding (RFC 9293 §3.8.4 MUST-26)', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    r.conn.write(bytes(10));
    r.host.take();
    advance(r, 1500); // RTOs at 210, 610, 1410 and the keep-alive time 1010 fall in here
    const sent = r.host.take();
    assert.deepEqual(sent.map((s) => s.len), [10, 10, 10], 'only retransmissions, no probe');
    // Once everything is acked, probing resumes one idle delay after the peer was last heard.
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    assert.equal(r.conn.deadline, r.host.t + 1000);
  });

  test('keep-alive off: no timer', () => {
    const r = established();
    r.conn.setKeepAlive(true, 1000);
    r.conn.setKeepAlive(false);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('the peer\'s keep-alive probe (SEQ = RCV.NXT−1) is answered with an ACK', () => {
    const r = established();
    send(r, { seq: 5000, ack: 1001, flags: ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
  });
});

describe('user timeout (RFC 9293 §3.8.3, RFC 5482)', () => {
  test('data unacknowledged for the user timeout: CLOSED with ETIMEDOUT', () => {
    const r = established();
    r.conn.setUserTimeout(1000);
    const t0 = r.host.t;
    r.conn.write(bytes(10));
    advance(r, 999);
    assert.equal(r.conn.state, 'ESTABLISHED');
    advance(r, 1);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.t - t0, 1000);
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('set while data is outstanding: counts from then', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.conn.setUserTimeout(1000);
    advance(r, 1000);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('progress (an ACK of new data) restarts it; all acked stops it', () => {
    const r = established();
    r.conn.setUserTimeout(1000);
    r.conn.write(bytes(10));
    advance(r, 150);
    send(r, { seq: 5001, ack: 1005, flags: ACK });
    advance(r, 900);
    assert.equal(r.conn.state, 'ESTABLISHED');
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    advance(r, 10_000);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('idle connection: no user timeout', () => {
    const r = established();
    r.conn.setUserTimeout(1000);
    assert.equal(r.conn.deadline, Infinity);
  });
});
