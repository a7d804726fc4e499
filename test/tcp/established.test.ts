/**
 * ESTABLISHED: every kind of incoming segment, against RFC 9293 §3.10.7.4 and RFC 5961 §3–5.
 * After `established()`: SND.UNA = SND.NXT = 1001, RCV.NXT = 5001, RCV.WND = 1024 (right edge
 * 6025), the peer's window 65535 (= MAX.SND.WND), send MSS 1460, RTO 200 ms.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { seqAdd } from '../../src/wire/seq.js';
import { ACK, FIN, RST, SYN, bytes, established, expectSent, out, send, text } from './harness.js';

const PSH = 0x08;

describe('ESTABLISHED: sequence number acceptability (RFC 9293 §3.10.7.4 first step)', () => {
  test('zero-length segment at RCV.NXT (left edge) is acceptable: processed, no reply', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('zero-length segment inside the window (RCV.NXT+1023) is acceptable: no reply', () => {
    const r = established();
    send(r, { seq: 5001 + 1023, ack: 1001, flags: ACK, win: 500 });
    expectSent(r, []);
    // Its window was taken (SND.WL1 < SEG.SEQ).
    assert.equal(r.conn.info().sndWnd, 500);
  });

  test('zero-length segment at the right edge (RCV.NXT+RCV.WND) is not acceptable: ACK and drop', () => {
    const r = established();
    send(r, { seq: 5001 + 1024, ack: 1001, flags: ACK, win: 500 });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.info().sndWnd, 65535, 'window of a dropped segment not taken');
  });

  test('zero-length segment left of the window (SEQ = RCV.NXT−1, a keep-alive probe): ACK (§3.8.4)', () => {
    const r = established();
    send(r, { seq: 5000, ack: 1001, flags: ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
  });

  test('segment far outside the window (half the sequence space away): ACK and drop', () => {
    const r = established();
    send(r, { seq: seqAdd(5001, 0x80000000), ack: 1001, flags: ACK, payload: 'x' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
  });
});

describe('ESTABLISHED: data (RFC 9293 §3.10.7.4 seventh step)', () => {
  test('in order: delivered, ACK <SEQ=1001><ACK=5006><WND=1019>, onReadable', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK | PSH, payload: 'hello' });
    expectSent(r, [out('ACK', 1001, 5006, 1019)]);
    assert.deepEqual(r.host.events, ['readable']);
    assert.equal(r.conn.readableLength, 5);
    assert.equal(text(r.conn.read()), 'hello');
    assert.equal(r.conn.read(), null);
  });

  test('out of order: held, duplicate ACK <ACK=5001> at once (RFC 5681 §4.2), nothing readable', () => {
    const r = established();
    send(r, { seq: 5011, ack: 1001, flags: ACK, payload: 'world' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
    assert.deepEqual(r.host.events, []);
  });

  test('left-overlapping: only the new bytes are delivered, ACK covers them', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(10, 0) });
    expectSent(r, [out('ACK', 1001, 5011, 1014)]);
    send(r, { seq: 5006, ack: 1001, flags: ACK, payload: bytes(10, 5) });
    expectSent(r, [out('ACK', 1001, 5016, 1009)]);
    assert.deepEqual([...r.conn.read()!], [...bytes(15, 0)]);
  });

  test('entirely old (a retransmission of received data): duplicate ACK, not delivered twice', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'hello' });
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'hello' });
    expectSent(r, [out('ACK', 1001, 5006, 1019)]);
    assert.equal(r.conn.readableLength, 5);
  });

  test('starting at the right edge: not acceptable, ACK <ACK=5001>, dropped', () => {
    const r = established();
    send(r, { seq: 5001 + 1024, ack: 1001, flags: ACK, payload: 'z' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
  });

  test('straddling the right edge: the part inside is kept, the rest trimmed', () => {
    const r = established();
    send(r, { seq: 5001 + 1020, ack: 1001, flags: ACK, payload: bytes(10, 100) });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1020, 0) });
    // 1020 in order + the 4 held bytes: the whole window, now closed.
    expectSent(r, [out('ACK', 1001, 6025, 0)]);
    const got = r.conn.read()!;
    assert.equal(got.length, 1024);
    assert.deepEqual([...got.subarray(1020)], [100, 101, 102, 103]);
  });

  test('filling the window exactly: ACK with window 0', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    expectSent(r, [out('ACK', 1001, 6025, 0)]);
  });

  test('zero window: a data segment at RCV.NXT is ACKed (window 0) and its text dropped', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    send(r, { seq: 6025, ack: 1001, flags: ACK, payload: 'more' });
    expectSent(r, [out('ACK', 1001, 6025, 0)]);
    assert.equal(r.conn.readableLength, 1024);
  });

  test('zero window: a zero-length ACK at RCV.NXT is acceptable and processed', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    send(r, { seq: 6025, ack: 1011, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.info().sndUna, 1011);
  });

  test('zero window: the ACK field of a data segment at RCV.NXT is still processed (§3.10.7.4: "special allowance … to accept valid ACKs")', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    expectSent(r, [out('ACK', 1011, 6025, 0)]);
    send(r, { seq: 6025, ack: 1011, flags: ACK, payload: 'more' });
    expectSent(r, [out('ACK', 1011, 6025, 0)]);
    assert.equal(r.conn.info().sndUna, 1011);
    assert.equal(r.conn.deadline, Infinity, 'retransmission timer stopped: all data acked');
    assert.equal(r.conn.readableLength, 1024);
  });

  test('zero window: the peer\'s one-byte window probe at RCV.NXT is answered <ACK=6025><WND=0> (§3.8.6.1)', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    send(r, { seq: 6025, ack: 1001, flags: ACK, payload: 'p' });
    expectSent(r, [out('ACK', 1001, 6025, 0)]);
  });

  test('zero window: a Linux-style probe (SEQ = RCV.NXT−1, no data) is answered with the window', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.conn.read();
    r.host.take();
    send(r, { seq: 6024, ack: 1001, flags: ACK });
    expectSent(r, [out('ACK', 1001, 6025, 1024)]);
  });

  test('zero window: data beyond RCV.NXT is not acceptable: ACK and drop', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    send(r, { seq: 6026, ack: 1001, flags: ACK, payload: 'q' });
    expectSent(r, [out('ACK', 1001, 6025, 0)]);
  });

  test('zero window: RST with SEQ = RCV.NXT is still accepted (§3.10.7.4: "special allowance … RSTs")', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    send(r, { seq: 6025, flags: RST });
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('zero window: a bare FIN at RCV.NXT is taken (it needs no buffer space; as Linux does)', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    send(r, { seq: 6025, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1001, 6026, 0)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
  });

  test('window update after the reader drains a closed window (RFC 9293 §3.8.6.2.2)', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1024) });
    r.host.take();
    r.conn.read(100);
    expectSent(r, [], 'no update for less than min(RCV.BUFF/2, MSS) = 512');
    r.conn.read();
    expectSent(r, [out('ACK', 1001, 6025, 1024)]);
  });

  test('receiver SWS avoidance: after a small read the window is not reopened by a few bytes', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1000) });
    expectSent(r, [out('ACK', 1001, 6001, 24)]);
    r.conn.read(10);
    send(r, { seq: 6001, ack: 1001, flags: ACK, payload: bytes(4) });
    // free = 30, promised = 20: the increase of 10 is below 512, so the promised edge is kept.
    expectSent(r, [out('ACK', 1001, 6005, 20)]);
  });
});

describe('ESTABLISHED: RST (RFC 9293 §3.10.7.4 second step, RFC 5961 §3.2)', () => {
  test('RST with SEQ = RCV.NXT: CLOSED, ECONNRESET, no reply, receive queue flushed', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc' });
    r.host.take();
    send(r, { seq: 5004, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.conn.readableLength, 0);
    assert.deepEqual(r.host.events, ['readable', 'closed:ECONNRESET']);
    assert.equal(r.host.releasedCount, 1);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('RST,ACK with SEQ = RCV.NXT: reset as well', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: RST | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
  });

  test('RST in window, SEQ = RCV.NXT+1: challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT>, stay', () => {
    const r = established();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 5961 §3.2'));
  });

  test('RST at the last in-window sequence number (RCV.NXT+RCV.WND−1): challenge ACK', () => {
    const r = established();
    send(r, { seq: 6024, flags: RST });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('RST at the right edge (RCV.NXT+RCV.WND): out of window, silently dropped', () => {
    const r = established();
    send(r, { seq: 6025, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('RST left of the window (RCV.NXT−1): silently dropped', () => {
    const r = established();
    send(r, { seq: 5000, flags: RST | ACK, ack: 1001 });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('challenge ACKs are rate limited by the stack (RFC 5961 §7)', () => {
    const r = established();
    r.host.challengeAcksAllowed = false;
    send(r, { seq: 5002, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 5961 §7'));
  });

  test('SYN,RST with SEQ = RCV.NXT: the RST check (second step) comes before the SYN check', () => {
    const r = established();
    send(r, { seq: 5001, flags: SYN | RST });
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
  });
});

describe('ESTABLISHED: SYN (RFC 9293 §3.10.7.4 fourth step, RFC 5961 §4.2)', () => {
  test('in-window SYN: challenge ACK <SEQ=1001><ACK=5001>, connection kept', () => {
    const r = established();
    send(r, { seq: 5001, flags: SYN });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 5961 §4.2'));
  });

  test('in-window SYN at the last window byte: challenge ACK', () => {
    const r = established();
    send(r, { seq: 6024, flags: SYN });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('old SYN (SEQ = IRS): ACK and drop, connection kept', () => {
    const r = established();
    send(r, { seq: 5000, flags: SYN });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('retransmitted SYN,ACK (our ACK was lost): ACK <SEQ=1001><ACK=5001> again', () => {
    const r = established();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('in-window SYN with challenge ACKs exhausted: nothing sent, connection kept', () => {
    const r = established();
    r.host.challengeAcksAllowed = false;
    send(r, { seq: 5001, flags: SYN });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('SYN,FIN in window: challenge ACK; the FIN is not processed', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: SYN | FIN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.equal(r.conn.finReceived, false);
  });

  test('SYN carrying data in window: challenge ACK, the data is not delivered', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: SYN | ACK, payload: 'evil' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
  });
});

describe('ESTABLISHED: ACK (RFC 9293 §3.10.7.4 fifth step, RFC 5961 §5.2)', () => {
  test('acceptable ACK frees the acked bytes and stops the retransmission timer (RFC 6298 (5.2))', () => {
    const r = established();
    r.conn.write(bytes(10));
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10)]);
    assert.equal(r.conn.deadline, r.host.t + 200);
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    expectSent(r, []);
    const i = r.conn.info();
    assert.equal(i.sndUna, 1011);
    assert.equal(i.sndBufUsed, 0);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('partial ACK restarts the retransmission timer (RFC 6298 (5.3))', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.take();
    r.host.t += 50;
    send(r, { seq: 5001, ack: 1005, flags: ACK });
    assert.equal(r.conn.info().sndUna, 1005);
    assert.equal(r.conn.deadline, r.host.t + r.conn.info().rto);
  });

  test('duplicate ACK with nothing outstanding: ignored, no reply', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
  });

  test('ACK of something not yet sent (SEG.ACK > SND.NXT): ACK and drop, its data not taken', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1002, flags: ACK, payload: 'data' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
    assert.equal(r.conn.info().sndUna, 1001);
  });

  test('old ACK inside SND.UNA − MAX.SND.WND: accepted as a duplicate, its data delivered', () => {
    const r = established();
    send(r, { seq: 5001, ack: seqAdd(1001, -65535), flags: ACK, payload: 'x' });
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(text(r.conn.read()), 'x');
  });

  test('old ACK below SND.UNA − MAX.SND.WND: challenge ACK and drop (RFC 5961 §5.2)', () => {
    const r = established();
    send(r, { seq: 5001, ack: seqAdd(1001, -65536), flags: ACK, payload: 'x' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 5961 §5.2'));
  });

  test('window update: SND.WND follows a newer segment (SND.WL1 < SEG.SEQ)', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 2000 });
    assert.equal(r.conn.info().sndWnd, 2000);
  });

  test('no window update from an older segment (SEG.SEQ < SND.WL1)', () => {
    const r = established();
    send(r, { seq: 5010, ack: 1001, flags: ACK, win: 2000 });
    assert.equal(r.conn.info().sndWnd, 2000);
    // A reordered segment from before it: same ACK, older SEQ (still acceptable).
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc', win: 100 });
    assert.equal(r.conn.readableLength, 3);
    assert.equal(r.conn.info().sndWnd, 2000);
  });

  test('segment without the ACK bit: dropped after the SYN check (no reply, no data)', () => {
    const r = established();
    send(r, { seq: 5001, flags: PSH, payload: 'abc' });
    expectSent(r, []);
    assert.equal(r.conn.readableLength, 0);
  });
});

describe('ESTABLISHED: FIN (RFC 9293 §3.10.7.4 eighth step)', () => {
  test('FIN,ACK: CLOSE-WAIT, ACK <ACK=5002>, onEnd', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, ['end']);
    assert.equal(r.conn.finReceived, true);
  });

  test('FIN with data: data then EOF; events readable then end', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: FIN | PSH | ACK, payload: 'bye' });
    expectSent(r, [out('ACK', 1001, 5005, 1020)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, ['readable', 'end']);
    assert.equal(text(r.conn.read()), 'bye');
  });

  test('FIN without ACK bit: dropped (fifth step), no state change', () => {
    const r = established();
    send(r, { seq: 5001, flags: FIN });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('out-of-order FIN: held until the gap fills, then CLOSE-WAIT', () => {
    const r = established();
    send(r, { seq: 5006, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'hello' });
    expectSent(r, [out('ACK', 1001, 5007, 1018)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, ['readable', 'end']);
  });

  test('out-of-order data with FIN: held, delivered with the EOF when the gap fills', () => {
    const r = established();
    send(r, { seq: 5004, ack: 1001, flags: FIN | ACK, payload: 'def' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc' });
    expectSent(r, [out('ACK', 1001, 5008, 1017)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.equal(text(r.conn.read()), 'abcdef');
  });

  test('FIN beyond the window: ACK <ACK=5001>, dropped', () => {
    const r = established();
    send(r, { seq: 6025, ack: 1001, flags: FIN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });
});
