/**
 * Data transfer in ESTABLISHED: segmentation, windows and Nagle on the sending side, fast
 * retransmit / NewReno (RFC 5681 §3.2, RFC 6582), out-of-order reassembly on the receiving side,
 * and the user calls and events (RFC 9293 §3.9.1, §3.10.2–§3.10.5).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TcpError } from '../../src/tcp/user.js';
import {
  ACK, FIN, RST, bytes, established, expectSent, out, send, synReceived, synSent, text,
} from './harness.js';

const PSH = 0x08;

describe('sending', () => {
  test('a write is cut into MSS-sized segments; PSH on the last (RFC 9293 §3.7.1, §3.9.1)', () => {
    const r = established({ peerMss: 100 });
    r.conn.setNoDelay(true);
    assert.equal(r.conn.write(bytes(250)), 250);
    expectSent(r, [
      out('ACK', 1001, 5001, 1024, 100),
      out('ACK', 1101, 5001, 1024, 100),
      out('PSH,ACK', 1201, 5001, 1024, 50),
    ]);
  });

  test('Nagle holds the short tail of a write while full segments are unacknowledged (RFC 9293 §3.7.4)', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(250));
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100), out('ACK', 1101, 5001, 1024, 100)]);
    send(r, { seq: 5001, ack: 1201, flags: ACK });
    expectSent(r, [out('PSH,ACK', 1201, 5001, 1024, 50)]);
  });

  test('the peer\'s window bounds what is in flight (RFC 9293 §3.8.6)', () => {
    const r = established({ peerMss: 100, peerWindow: 300 });
    r.conn.write(bytes(1000));
    assert.equal(r.host.take().length, 3);
    send(r, { seq: 5001, ack: 1101, flags: ACK, win: 300 });
    // One more segment fits; the window stops the burst there, so it carries PSH (as Linux does).
    expectSent(r, [out('PSH,ACK', 1301, 5001, 1024, 100)]);
  });

  test('initial window 10 segments (RFC 6928); slow start opens it with each ACK (RFC 5681 §3.1)', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(1500));
    const first = r.host.take();
    assert.equal(first.length, 10);
    assert.equal(r.conn.info().cwnd, 1000);
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    // cwnd 1000 → 1100, 900 in flight: two more segments, the last of the burst with PSH.
    expectSent(r, [out('ACK', 2001, 5001, 1024, 100), out('PSH,ACK', 2101, 5001, 1024, 100)]);
    assert.equal(r.conn.info().cwnd, 1100);
  });

  test('Nagle: a small segment waits while data is unacknowledged, and goes with the ACK (RFC 9293 §3.7.4)', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.conn.write(bytes(10));
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10)]);
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    expectSent(r, [out('PSH,ACK', 1011, 5001, 1024, 10)]);
  });

  test('setNoDelay(true) sends the held small segment at once', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.conn.write(bytes(10));
    r.host.take();
    r.conn.setNoDelay(true);
    expectSent(r, [out('PSH,ACK', 1011, 5001, 1024, 10)]);
    r.conn.write(bytes(3));
    expectSent(r, [out('PSH,ACK', 1021, 5001, 1024, 3)]);
  });

  test('sent bytes are what was written, in order, across segments', () => {
    const r = established({ peerMss: 100 });
    r.conn.setNoDelay(true);
    r.conn.write(bytes(150, 7));
    const segs = r.host.takeFull();
    const all = new Uint8Array(segs.reduce((n, s) => n + s.len, 0));
    let at = 0;
    for (const s of segs) { all.set(s.payload, at); at += s.len; }
    assert.deepEqual(all, bytes(150, 7));
  });

  test('the send buffer bounds a write; onWritable when ACKs free space (node "drain")', () => {
    const r = established();
    assert.equal(r.conn.write(bytes(5000)), 4096);
    assert.equal(r.conn.writableSpace, 0);
    assert.equal(r.conn.write(bytes(1)), 0);
    // Two full segments go; Nagle holds the 1176-byte tail.
    expectSent(r, [out('ACK', 1001, 5001, 1024, 1460), out('ACK', 2461, 5001, 1024, 1460)]);
    send(r, { seq: 5001, ack: 3921, flags: ACK });
    assert.deepEqual(r.host.events, ['writable']);
    assert.equal(r.conn.writableSpace, 2920);
    expectSent(r, [out('PSH,ACK', 3921, 5001, 1024, 1176)]);
  });
});

describe('fast retransmit and recovery (RFC 5681 §3.2, RFC 6582)', () => {
  function fiveInFlight() {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(500));
    assert.equal(r.host.take().length, 5);
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    return r;
  }

  test('three duplicate ACKs: the first unacknowledged segment is resent at once, without an RTO', () => {
    const r = fiveInFlight();
    const t = r.host.t;
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    expectSent(r, [], 'two duplicates are not enough');
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    const [re] = r.host.takeFull();
    assert.deepEqual({ flags: re!.flags, seq: re!.seq, ack: re!.ack, len: re!.len }, { flags: 'ACK', seq: 1101, ack: 5001, len: 100 });
    assert.deepEqual(re!.payload, bytes(100, 100));
    assert.equal(r.host.t, t);
    // ssthresh = max(FlightSize/2, 2·SMSS) = 200 and cwnd = ssthresh (RFC 6675 §5 (4.2)); instead of
    // inflating cwnd (RFC 5681 §3.2), the three duplicates count as segments that left: pipe =
    // 400 outstanding − 3·SMSS.
    assert.equal(r.conn.info().ssthresh, 200);
    assert.equal(r.conn.info().cwnd, 200);
    assert.equal(r.conn.info().pipe, 100);
    assert.equal(r.conn.info().caState, 'recovery');
  });

  test('duplicate ACKs carrying data do not count (RFC 5681 §2 definition)', () => {
    const r = fiveInFlight();
    for (let i = 0; i < 3; i++) send(r, { seq: 5001 + i, ack: 1101, flags: ACK, payload: 'x' });
    for (const s of r.host.take()) assert.equal(s.len, 0, 'only ACKs of the data, no retransmission');
  });

  test('ACKs that change the window are not duplicates', () => {
    const r = fiveInFlight();
    for (let i = 0; i < 3; i++) send(r, { seq: 5001, ack: 1101, flags: ACK, win: 60000 + i });
    expectSent(r, []);
  });

  test('partial ACK in recovery: the next hole is resent at once (RFC 6582 §3.2 (5))', () => {
    const r = fiveInFlight();
    for (let i = 0; i < 3; i++) send(r, { seq: 5001, ack: 1101, flags: ACK });
    r.host.take();
    send(r, { seq: 5001, ack: 1201, flags: ACK });
    expectSent(r, [out('ACK', 1201, 5001, 1024, 100)]);
  });

  test('full ACK ends recovery: cwnd deflated to ≤ ssthresh, nothing resent', () => {
    const r = fiveInFlight();
    for (let i = 0; i < 3; i++) send(r, { seq: 5001, ack: 1101, flags: ACK });
    r.host.take();
    send(r, { seq: 5001, ack: 1501, flags: ACK });
    expectSent(r, []);
    assert.ok(r.conn.info().cwnd <= 200);
    assert.equal(r.conn.info().sndUna, 1501);
  });
});

describe('reassembly (RFC 9293 §3.10.7.4 seventh step: out-of-order segments held)', () => {
  test('three segments in reverse order: held, then delivered in order when the gap fills', () => {
    const r = established();
    send(r, { seq: 5021, ack: 1001, flags: ACK, payload: bytes(10, 20) });
    send(r, { seq: 5011, ack: 1001, flags: ACK, payload: bytes(10, 10) });
    expectSent(r, [out('ACK', 1001, 5001, 1024), out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.readableLength, 0);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(10, 0) });
    expectSent(r, [out('ACK', 1001, 5031, 994)]);
    assert.deepEqual(r.conn.read(), bytes(30));
    assert.deepEqual(r.host.events, ['readable']);
  });

  test('a segment spanning the gap and part of the held data', () => {
    const r = established();
    send(r, { seq: 5011, ack: 1001, flags: ACK, payload: bytes(10, 10) });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(15, 0) });
    expectSent(r, [out('ACK', 1001, 5001, 1024), out('ACK', 1001, 5021, 1004)]);
    assert.deepEqual(r.conn.read(), bytes(20));
  });

  test('a second hole stays a hole: RCV.NXT stops at it', () => {
    const r = established();
    send(r, { seq: 5011, ack: 1001, flags: ACK, payload: bytes(5, 10) });
    send(r, { seq: 5021, ack: 1001, flags: ACK, payload: bytes(5, 20) });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(10, 0) });
    assert.equal(r.conn.info().rcvNxt, 5016);
    send(r, { seq: 5016, ack: 1001, flags: ACK, payload: bytes(5, 15) });
    assert.equal(r.conn.info().rcvNxt, 5026);
    assert.deepEqual(r.conn.read(), bytes(25));
  });

  test('regression: data read out while out-of-order bytes are held does not move them', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(10, 0) });
    send(r, { seq: 5021, ack: 1001, flags: ACK, payload: bytes(10, 20) });
    // The reader empties the buffer: the held bytes sit past its end and must stay there.
    assert.deepEqual(r.conn.read(), bytes(10, 0));
    send(r, { seq: 5011, ack: 1001, flags: ACK, payload: bytes(10, 10) });
    assert.equal(r.conn.info().rcvNxt, 5031);
    assert.deepEqual(r.conn.read(), bytes(20, 10));
  });

  test('out-of-order bytes wrapping around the end of the receive ring', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1000, 0) });
    assert.equal(r.conn.read(990)!.length, 990); // ring head now at 990, 10 bytes left
    r.host.take();
    // Held 20 bytes past RCV.NXT = 6001: ring position 1020, wrapping at 1024.
    send(r, { seq: 6021, ack: 1001, flags: ACK, payload: bytes(30, 20) });
    send(r, { seq: 6001, ack: 1001, flags: ACK, payload: bytes(20, 0) });
    assert.equal(r.conn.info().rcvNxt, 6051);
    const got = r.conn.read()!;
    assert.deepEqual(got.subarray(0, 10), bytes(10, 990 & 0xff));
    assert.deepEqual(got.subarray(10), bytes(50, 0));
  });
});

describe('user calls and events (RFC 9293 §3.9.1, §3.10)', () => {
  test('event order of a whole connection: established, readable, end, closed(null)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: 0x12 });
    send(r, { seq: 5001, ack: 1001, flags: ACK | PSH, payload: 'hi' });
    send(r, { seq: 5003, ack: 1001, flags: FIN | ACK });
    r.conn.close();
    send(r, { seq: 5004, ack: 1002, flags: ACK });
    assert.deepEqual(r.host.events, ['established', 'readable', 'end', 'closed:null']);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(text(r.conn.read()), 'hi', 'data survives an orderly close until read');
  });

  test('read(max) takes at most max bytes', () => {
    const r = established();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abcdef' });
    assert.equal(text(r.conn.read(2)), 'ab');
    assert.equal(r.conn.readableLength, 4);
    assert.equal(text(r.conn.read()), 'cdef');
  });

  test('ABORT in ESTABLISHED: RST <SEQ=SND.NXT>, queued data discarded, onClosed(null) (§3.10.5)', () => {
    const r = established({ peerWindow: 0 });
    r.conn.write(bytes(10));
    r.conn.abort();
    expectSent(r, [out('RST', 1001, 0, 0)]);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:null']);
    assert.equal(r.conn.info().sndBufUsed, 0);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('ABORT with data sent: RST carries SND.NXT (after the data)', () => {
    const r = established();
    r.conn.write(bytes(10));
    r.host.take();
    r.conn.abort();
    expectSent(r, [out('RST', 1011, 0, 0)]);
  });

  test('ABORT twice, CLOSE after ABORT: nothing more', () => {
    const r = established();
    r.conn.abort();
    r.host.take();
    r.conn.abort();
    r.conn.close();
    expectSent(r, []);
    assert.equal(r.host.releasedCount, 1);
    assert.deepEqual(r.host.events, ['closed:null']);
  });

  test('SEND after the connection was reset: EPIPE', () => {
    const r = established();
    send(r, { seq: 5001, flags: RST });
    assert.throws(() => r.conn.write(bytes(1)), (e: unknown) => e instanceof TcpError && e.code === 'EPIPE');
  });

  test('segments arriving in CLOSED are not answered by the connection (the stack does that)', () => {
    const r = established();
    r.conn.abort();
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'x' });
    expectSent(r, []);
  });

  test('onClosed fires once, even when more events follow', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    send(r, { seq: 5001, flags: RST });
    r.conn.abort();
    assert.deepEqual(r.host.events, ['established', 'closed:ECONNRESET']);
  });

  test('STATUS: info() counts segments and bytes', () => {
    const r = established();
    r.conn.write(bytes(10));
    send(r, { seq: 5001, ack: 1011, flags: ACK, payload: 'abc' });
    const i = r.conn.info();
    assert.equal(i.state, 'ESTABLISHED');
    assert.equal(i.bytesSent, 10);
    assert.equal(i.bytesAcked, 10);
    assert.equal(i.bytesReceived, 3);
    assert.equal(i.segsIn, 2);
    assert.equal(i.segsOut, 4); // SYN, ACK, data, ACK of data
    assert.equal(i.unacked, 0);
  });
});
