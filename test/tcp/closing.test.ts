/**
 * The closing states: FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT
 * (RFC 9293 §3.10.4, §3.10.7.4, RFC 5961, RFC 1337).
 * Our FIN is <SEQ=1001> (SND.NXT = 1002 after it); the peer's FIN is <SEQ=5001> (RCV.NXT = 5002).
 * After the peer's FIN the window we offer is 1023: its right edge stays at 6025.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TcpError } from '../../src/tcp/user.js';
import {
  ACK, FIN, MSL, RST, SYN, advance, bytes, closeWait, closing, established, expectSent, finWait1, finWait2,
  fireNext, lastAck, out, send, text, timeWait,
} from './harness.js';

const PSH = 0x08;

function assertEpipe(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof TcpError && e.code === 'EPIPE');
}

describe('FIN-WAIT-1', () => {
  test('CLOSE in ESTABLISHED: FIN,ACK <SEQ=1001><ACK=5001>, FIN-WAIT-1 (§3.10.4)', () => {
    const r = established();
    r.conn.close();
    expectSent(r, [out('FIN,ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
    assert.deepEqual(r.host.events, []);
  });

  test('CLOSE with data queued: the FIN rides on the last data segment (§3.10.4: FIN after queued SENDs)', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.conn.write(bytes(5, 10)); // held by Nagle: a small segment while 10 bytes are unacknowledged
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10)]);
    r.conn.close();
    expectSent(r, [out('FIN,PSH,ACK', 1011, 5001, 1024, 5)]);
    send(r, { seq: 5001, ack: 1017, flags: ACK });
    assert.equal(r.conn.state, 'FIN-WAIT-2');
  });

  test('CLOSE with data blocked by a zero window: no FIN until the data can go', () => {
    const r = established({ peerWindow: 0 });
    r.conn.write(bytes(3));
    r.conn.close();
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 1000 });
    expectSent(r, [out('FIN,PSH,ACK', 1001, 5001, 1024, 3)]);
  });

  test('ACK of our FIN: FIN-WAIT-2, no reply, retransmission timer stopped', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1002, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-2');
    assert.equal(r.conn.deadline, Infinity);
  });

  test('ACK not covering the FIN: stay FIN-WAIT-1', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('FIN without the ACK of ours (simultaneous close): CLOSING, ACK <SEQ=1002><ACK=5002>', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
    assert.deepEqual(r.host.events, ['end']);
  });

  test('FIN,ACK acking our FIN: TIME-WAIT, ACK, events end then closed(null), 2×MSL timer', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.deepEqual(r.host.events, ['end', 'closed:null']);
    assert.equal(r.conn.deadline, r.host.t + 2 * MSL);
    assert.deepEqual(r.host.states.map((s) => s.to), ['FIN-WAIT-2', 'TIME-WAIT']);
  });

  test('data: still received (half-close), ACK <SEQ=1002><ACK=5004>', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc' });
    expectSent(r, [out('ACK', 1002, 5004, 1021)]);
    assert.equal(text(r.conn.read()), 'abc');
  });

  test('RST with SEQ = RCV.NXT: CLOSED, ECONNRESET', () => {
    const r = finWait1();
    send(r, { seq: 5001, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
  });

  test('RST in window, not exact: challenge ACK <SEQ=1002><ACK=5001> (RFC 5961 §3.2)', () => {
    const r = finWait1();
    send(r, { seq: 5100, flags: RST });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('RST out of window: dropped', () => {
    const r = finWait1();
    send(r, { seq: 6025, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('SYN in window: challenge ACK (RFC 5961 §4.2)', () => {
    const r = finWait1();
    send(r, { seq: 5001, flags: SYN });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('ACK of something not yet sent: ACK and drop', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1003, flags: ACK });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('segment at the right edge of the window: ACK and drop', () => {
    const r = finWait1();
    send(r, { seq: 6025, ack: 1002, flags: ACK });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });

  test('FIN retransmitted after the RTO (200 ms), then 400 ms later (RFC 6298 (5.4), (5.5))', () => {
    const r = finWait1();
    const t0 = r.host.t;
    assert.equal(fireNext(r), t0 + 200);
    expectSent(r, [out('FIN,ACK', 1001, 5001, 1024)]);
    assert.equal(fireNext(r), t0 + 600);
    expectSent(r, [out('FIN,ACK', 1001, 5001, 1024)]);
    send(r, { seq: 5001, ack: 1002, flags: ACK });
    assert.equal(r.conn.state, 'FIN-WAIT-2');
  });

  test('ABORT: RST <SEQ=SND.NXT=1002> (§3.10.5)', () => {
    const r = finWait1();
    r.conn.abort();
    expectSent(r, [out('RST', 1002, 0, 0)]);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('SEND after CLOSE: EPIPE (§3.10.2 "connection closing")', () => {
    const r = finWait1();
    assertEpipe(() => r.conn.write(bytes(1)));
    assert.equal(r.conn.writableSpace, 0);
  });

  test('CLOSE again: nothing happens', () => {
    const r = finWait1();
    r.conn.close();
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });
});

describe('FIN-WAIT-2', () => {
  test('data: received and ACKed <SEQ=1002><ACK=5004>', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1002, flags: ACK | PSH, payload: 'abc' });
    expectSent(r, [out('ACK', 1002, 5004, 1021)]);
    assert.deepEqual(r.host.events, ['readable']);
  });

  test('FIN: TIME-WAIT, ACK <SEQ=1002><ACK=5002>, events end, closed(null)', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.deepEqual(r.host.events, ['end', 'closed:null']);
  });

  test('FIN with data: data, then EOF, then closed', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK, payload: 'xy' });
    expectSent(r, [out('ACK', 1002, 5004, 1021)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.deepEqual(r.host.events, ['readable', 'end', 'closed:null']);
    assert.equal(text(r.conn.read()), 'xy');
  });

  test('out-of-order FIN: duplicate ACK, stay FIN-WAIT-2', () => {
    const r = finWait2();
    send(r, { seq: 5003, ack: 1002, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-2');
  });

  test('RST with SEQ = RCV.NXT: CLOSED, ECONNRESET', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1002, flags: RST | ACK });
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
  });

  test('RST in window: challenge ACK', () => {
    const r = finWait2();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-2');
  });

  test('SYN in window: challenge ACK', () => {
    const r = finWait2();
    send(r, { seq: 5500, flags: SYN });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-2');
  });

  test('duplicate ACK of our FIN: nothing', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1002, flags: ACK });
    expectSent(r, []);
  });

  test('ACK of something not yet sent: ACK and drop', () => {
    const r = finWait2();
    send(r, { seq: 5001, ack: 1010, flags: ACK, payload: 'x' });
    expectSent(r, [out('ACK', 1002, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
  });

  test('no timer is armed: FIN-WAIT-2 waits for the peer (RFC 9293 has no FIN-WAIT-2 timeout)', () => {
    const r = finWait2();
    assert.equal(r.conn.deadline, Infinity);
  });

  test('ABORT: RST <SEQ=1002>', () => {
    const r = finWait2();
    r.conn.abort();
    expectSent(r, [out('RST', 1002, 0, 0)]);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('SEND: EPIPE', () => {
    assertEpipe(() => finWait2().conn.write(bytes(1)));
  });
});

describe('CLOSE-WAIT', () => {
  test('SEND still works: PSH,ACK <SEQ=1001><ACK=5002>', () => {
    const r = closeWait();
    assert.equal(r.conn.write(bytes(3)), 3);
    expectSent(r, [out('PSH,ACK', 1001, 5002, 1023, 3)]);
  });

  test('CLOSE: FIN,ACK <SEQ=1001><ACK=5002>, LAST-ACK (§3.10.4)', () => {
    const r = closeWait();
    r.conn.close();
    expectSent(r, [out('FIN,ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('CLOSE with unacknowledged data: the FIN follows it (Nagle does not hold the last piece)', () => {
    const r = closeWait();
    r.conn.write(bytes(10));
    r.conn.write(bytes(2));
    expectSent(r, [out('PSH,ACK', 1001, 5002, 1023, 10)]);
    r.conn.close();
    expectSent(r, [out('FIN,PSH,ACK', 1011, 5002, 1023, 2)]);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('retransmitted FIN from the peer: ACK <ACK=5002> again', () => {
    const r = closeWait();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, []);
  });

  test('data after the FIN is ignored: not delivered, not acknowledged (§3.10.7.4 seventh step, as Linux)', () => {
    const r = closeWait();
    send(r, { seq: 5002, ack: 1001, flags: ACK, payload: 'late' });
    expectSent(r, []);
    assert.equal(r.conn.readableLength, 0);
  });

  test('RST with SEQ = RCV.NXT: CLOSED, ECONNRESET', () => {
    const r = closeWait();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
  });

  test('RST in window, not exact: challenge ACK <SEQ=1001><ACK=5002>', () => {
    const r = closeWait();
    send(r, { seq: 5003, flags: RST });
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
  });

  test('RST on the peer\'s old FIN sequence number (RCV.NXT−1): dropped', () => {
    const r = closeWait();
    send(r, { seq: 5001, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
  });

  test('SYN in window: challenge ACK', () => {
    const r = closeWait();
    send(r, { seq: 5002, flags: SYN });
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
  });

  test('ACK of our data: acknowledged bytes freed', () => {
    const r = closeWait();
    r.conn.write(bytes(3));
    r.host.take();
    send(r, { seq: 5002, ack: 1004, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.info().sndUna, 1004);
  });

  test('ABORT: RST <SEQ=1001>', () => {
    const r = closeWait();
    r.conn.abort();
    expectSent(r, [out('RST', 1001, 0, 0)]);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('data buffered before the FIN stays readable in CLOSE-WAIT', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc' });
    send(r, { seq: 5004, ack: 1001, flags: FIN | ACK });
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.equal(text(r.conn.read()), 'abc');
    assert.equal(r.conn.read(), null);
  });
});

describe('CLOSING', () => {
  test('ACK of our FIN: TIME-WAIT, no reply, closed(null), 2×MSL timer', () => {
    const r = closing();
    send(r, { seq: 5002, ack: 1002, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.deepEqual(r.host.events, ['closed:null']);
    assert.equal(r.conn.deadline, r.host.t + 2 * MSL);
  });

  test('ACK not covering our FIN: stay CLOSING', () => {
    const r = closing();
    send(r, { seq: 5002, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('retransmitted FIN from the peer: ACK <SEQ=1002><ACK=5002>', () => {
    const r = closing();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('retransmitted FIN that also acks ours: unacceptable by SEQ (RCV.NXT−1), so ACKed and dropped whole', () => {
    // RFC 9293 §3.10.7.4 first step: SEG.SEQ+SEG.LEN−1 = 5001 < RCV.NXT; the ACK field is not looked at.
    const r = closing();
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('our FIN is retransmitted on RTO: FIN,ACK <SEQ=1001><ACK=5002>', () => {
    const r = closing();
    fireNext(r);
    expectSent(r, [out('FIN,ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('RST with SEQ = RCV.NXT: CLOSED (§3.10.7.4: CLOSING enters CLOSED)', () => {
    const r = closing();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.releasedCount, 1);
  });

  test('RST in window, not exact: challenge ACK', () => {
    const r = closing();
    send(r, { seq: 5010, flags: RST });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('SYN in window: challenge ACK', () => {
    const r = closing();
    send(r, { seq: 5002, flags: SYN });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSING');
  });

  test('ABORT: no RST, CLOSED (§3.10.5)', () => {
    const r = closing();
    r.conn.abort();
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
  });
});

describe('LAST-ACK', () => {
  test('ACK of our FIN: CLOSED, no reply, closed(null), released', () => {
    const r = lastAck();
    send(r, { seq: 5002, ack: 1002, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:null']);
    assert.equal(r.host.releasedCount, 1);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('ACK not covering our FIN: stay LAST-ACK', () => {
    const r = lastAck();
    send(r, { seq: 5002, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('retransmitted FIN from the peer: ACK <SEQ=1002><ACK=5002>', () => {
    const r = lastAck();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('RST with SEQ = RCV.NXT: CLOSED', () => {
    const r = lastAck();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('RST in window, not exact: challenge ACK', () => {
    const r = lastAck();
    send(r, { seq: 5003, flags: RST });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('SYN in window: challenge ACK', () => {
    const r = lastAck();
    send(r, { seq: 5002, flags: SYN });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'LAST-ACK');
  });

  test('FIN retransmitted on RTO; ETIMEDOUT after dataRetries', () => {
    const r = lastAck({ config: { dataRetries: 2 } });
    const t0 = r.host.t;
    assert.equal(fireNext(r), t0 + 200);
    expectSent(r, [out('FIN,ACK', 1001, 5002, 1023)]);
    assert.equal(fireNext(r), t0 + 600);
    expectSent(r, [out('FIN,ACK', 1001, 5002, 1023)]);
    assert.equal(fireNext(r), t0 + 1400);
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('ABORT: no RST, CLOSED (§3.10.5)', () => {
    const r = lastAck();
    r.conn.abort();
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
  });
});

describe('TIME-WAIT', () => {
  test('lasts exactly 2×MSL, then CLOSED without a segment (RFC 9293 §3.4.2, §3.10.8)', () => {
    const r = timeWait();
    const t0 = r.host.t;
    advance(r, 2 * MSL - 1);
    assert.equal(r.conn.state, 'TIME-WAIT');
    advance(r, 1);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.t, t0 + 2 * MSL);
    expectSent(r, []);
    assert.equal(r.host.releasedCount, 1);
    assert.deepEqual(r.host.events, [], 'onClosed was already delivered on entering TIME-WAIT');
  });

  test('a retransmitted FIN is ACKed and restarts the 2×MSL wait (§3.10.7.4 eighth step)', () => {
    const r = timeWait();
    const t0 = r.host.t;
    advance(r, MSL);
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.deadline, t0 + 3 * MSL);
    advance(r, 2 * MSL - 1);
    assert.equal(r.conn.state, 'TIME-WAIT');
    advance(r, 1);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('RST with SEQ = RCV.NXT is ignored (RFC 1337 §3: TIME-WAIT assassination)', () => {
    const r = timeWait();
    send(r, { seq: 5002, flags: RST });
    send(r, { seq: 5002, ack: 1002, flags: RST | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 1337 §3'));
  });

  test('RST in window, not exact: challenge ACK, TIME-WAIT kept (RFC 5961 §3.2)', () => {
    const r = timeWait();
    send(r, { seq: 5003, flags: RST });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
  });

  test('RST out of window: dropped', () => {
    const r = timeWait();
    send(r, { seq: 4000, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'TIME-WAIT');
  });

  test('SYN in window: challenge ACK, TIME-WAIT kept (RFC 5961 §4.2)', () => {
    const r = timeWait();
    send(r, { seq: 5002, flags: SYN });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
  });

  test('duplicate ACK: nothing', () => {
    const r = timeWait();
    send(r, { seq: 5002, ack: 1002, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'TIME-WAIT');
  });

  test('data: not delivered, ACK <SEQ=1002><ACK=5002>', () => {
    const r = timeWait();
    send(r, { seq: 5002, ack: 1002, flags: ACK, payload: 'zzz' });
    expectSent(r, [out('ACK', 1002, 5002, 1023)]);
    assert.equal(r.conn.readableLength, 0);
  });

  test('ABORT: CLOSED without a RST (§3.10.5)', () => {
    const r = timeWait();
    r.conn.abort();
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('CLOSE: nothing happens; SEND: EPIPE', () => {
    const r = timeWait();
    r.conn.close();
    expectSent(r, []);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assertEpipe(() => r.conn.write(bytes(1)));
  });

  test('keep-alive is not armed in TIME-WAIT', () => {
    const r = timeWait();
    r.conn.setKeepAlive(true, 1000);
    assert.equal(r.conn.deadline, r.host.t + 2 * MSL);
  });

  test('simultaneous close end to end: FIN-WAIT-1 → CLOSING → TIME-WAIT → CLOSED', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    send(r, { seq: 5002, ack: 1002, flags: ACK });
    advance(r, 2 * MSL);
    assert.deepEqual(r.host.states.map((s) => s.to), ['CLOSING', 'TIME-WAIT', 'CLOSED']);
    assert.deepEqual(r.host.events, ['end', 'closed:null']);
  });
});

describe('user calls in every closing state (RFC 9293 §3.10.2, §3.10.4)', () => {
  const builders = { 'FIN-WAIT-1': finWait1, 'FIN-WAIT-2': finWait2, CLOSING: closing, 'LAST-ACK': lastAck, 'TIME-WAIT': timeWait };
  for (const [state, build] of Object.entries(builders)) {
    test(`${state}: CLOSE is a no-op ("connection closing"), SEND fails with EPIPE`, () => {
      const r = build();
      r.conn.close();
      expectSent(r, []);
      assert.equal(r.conn.state, state);
      assertEpipe(() => r.conn.write(bytes(1)));
      assert.equal(r.conn.writableSpace, 0);
    });
  }
});
