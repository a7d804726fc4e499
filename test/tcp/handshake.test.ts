/**
 * SYN-SENT and SYN-RECEIVED (RFC 9293 §3.10.7.3 and the SYN-RECEIVED parts of §3.10.7.4), with the
 * RFC 5961 rules that apply before the connection is synchronized.
 * Local ISS = 1000, remote IRS = 5000, our window 1024 (see harness.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ACK, FIN, RST, SYN, advance, bytes, established, expectSent, fireNext, newRig, out, send, synReceived,
  synReceivedSimultaneous, synSent, text,
} from './harness.js';

describe('SYN-SENT', () => {
  test('active OPEN sends <SEQ=ISS><CTL=SYN> with our MSS and enters SYN-SENT (RFC 9293 §3.10.1)', () => {
    const r = newRig(false);
    r.conn.openActive(1000);
    const [syn] = r.host.takeFull();
    assert.deepEqual({ flags: syn!.flags, seq: syn!.seq, ack: syn!.ack, win: syn!.win, len: syn!.len },
      out('SYN', 1000, 0, 1024));
    assert.deepEqual(syn!.options, { mss: 1460 });
    assert.equal(r.conn.state, 'SYN-SENT');
    assert.deepEqual(r.host.states.map((s) => `${s.from}>${s.to}`), ['CLOSED>SYN-SENT']);
  });

  test('acceptable SYN,ACK: ACK <SEQ=1001><ACK=5001>, ESTABLISHED, onEstablished (§3.10.7.3 fourth)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK, options: { mss: 1460 } });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.deepEqual(r.host.events, ['established']);
    const i = r.conn.info();
    assert.equal(i.sndUna, 1001);
    assert.equal(i.rcvNxt, 5001);
    assert.equal(i.irs, 5000);
  });

  test('the ACK of the SYN,ACK is out before onEstablished runs', () => {
    const r = synSent();
    let sentBefore = -1;
    r.conn.events = { onEstablished: () => { sentBefore = r.host.sent.length; } };
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    assert.equal(sentBefore, 1);
  });

  test('SYN,ACK with SEG.ACK = ISS is unacceptable: <SEQ=SEG.ACK><CTL=RST>, stay SYN-SENT (§3.10.7.3 first)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1000, flags: SYN | ACK });
    expectSent(r, [out('RST', 1000, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('SYN,ACK with SEG.ACK > SND.NXT: <SEQ=SEG.ACK><CTL=RST> (§3.10.7.3 first)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1002, flags: SYN | ACK });
    expectSent(r, [out('RST', 1002, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('bare ACK acking something far off: RST <SEQ=SEG.ACK> (§3.10.7.3 first)', () => {
    const r = synSent();
    send(r, { seq: 777, ack: 90000, flags: ACK });
    expectSent(r, [out('RST', 90000, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('RST,ACK acking our SYN: CLOSED with ECONNREFUSED, nothing sent (§3.10.7.3 second)', () => {
    const r = synSent();
    send(r, { seq: 0, ack: 1001, flags: RST | ACK, win: 0 });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNREFUSED']);
    assert.equal(r.host.releasedCount, 1);
  });

  test('RST,ACK with an unacceptable ACK is dropped without reply (§3.10.7.3 first: unless RST)', () => {
    const r = synSent();
    send(r, { seq: 0, ack: 1005, flags: RST | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('RST without ACK is dropped (§3.10.7.3 second; RFC 5961 §3.2 blind reset)', () => {
    const r = synSent();
    send(r, { seq: 5000, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
    assert.deepEqual(r.host.events, []);
  });

  test('SYN,RST without ACK is dropped', () => {
    const r = synSent();
    send(r, { seq: 5000, flags: SYN | RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('bare SYN (simultaneous open): SYN,ACK <SEQ=ISS><ACK=5001>, SYN-RECEIVED (§3.10.7.3 fourth)', () => {
    const r = synSent();
    send(r, { seq: 5000, flags: SYN, options: { mss: 1460 } });
    const [s] = r.host.takeFull();
    assert.deepEqual({ flags: s!.flags, seq: s!.seq, ack: s!.ack, win: s!.win, len: s!.len }, out('SYN,ACK', 1000, 5001, 1024));
    assert.deepEqual(s!.options, { mss: 1460 });
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('SYN,FIN without ACK: treated as the SYN of a simultaneous open, the FIN is not acked', () => {
    const r = synSent();
    send(r, { seq: 5000, flags: SYN | FIN });
    expectSent(r, [out('SYN,ACK', 1000, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('acceptable ACK without SYN or RST is dropped (§3.10.7.3 fifth)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('FIN,ACK (acceptable ACK, no SYN) is dropped (§3.10.7.3 fifth)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: FIN | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('segment with no control bits is dropped', () => {
    const r = synSent();
    send(r, { seq: 5000, flags: 0, payload: 'x' });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-SENT');
  });

  test('SYN,ACK carrying data: data delivered and acked <ACK=5006> (§3.10.7.3: continue at the sixth step)', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK, payload: 'hello' });
    expectSent(r, [out('ACK', 1001, 5006, 1019)]);
    assert.deepEqual(r.host.events, ['established', 'readable']);
    assert.equal(text(r.conn.read()), 'hello');
  });

  test('SYN,ACK,FIN: ESTABLISHED then CLOSE-WAIT, FIN acked <ACK=5002>, events established then end', () => {
    const r = synSent();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK | FIN });
    // Our SYN offered 1024 after the peer's SYN; the FIN took one of those sequence numbers, and a
    // one-byte increase is not offered (receiver SWS avoidance, RFC 9293 §3.8.6.2.2).
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, ['established', 'end']);
    assert.equal(r.conn.finReceived, true);
  });

  test('send MSS: the peer\'s option bounded by ours; 536 when absent (RFC 9293 §3.7.1, RFC 6691)', () => {
    assert.equal(established({ peerMss: 100 }).conn.info().sndMss, 100);
    assert.equal(established({ peerMss: 9000 }).conn.info().sndMss, 1460);
    assert.equal(established({ peerMss: null }).conn.info().sndMss, 536);
  });

  test('SND.WND is taken from the SYN,ACK window (§3.10.7.3: SND.WND <- SEG.WND)', () => {
    const r = established({ peerWindow: 3000 });
    assert.equal(r.conn.info().sndWnd, 3000);
  });

  test('SEND before ESTABLISHED is queued, then goes with the ACK of the SYN,ACK (§3.10.2)', () => {
    const r = synSent();
    assert.equal(r.conn.write(bytes(5)), 5);
    expectSent(r, []);
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    const [d] = r.host.takeFull();
    assert.deepEqual({ flags: d!.flags, seq: d!.seq, ack: d!.ack, len: d!.len }, { flags: 'PSH,ACK', seq: 1001, ack: 5001, len: 5 });
    assert.deepEqual([...d!.payload], [0, 1, 2, 3, 4]);
  });

  test('CLOSE in SYN-SENT: CLOSED without a segment, onClosed(null) (§3.10.4)', () => {
    const r = synSent();
    r.conn.close();
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:null']);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('ABORT in SYN-SENT: CLOSED without a RST (§3.10.5)', () => {
    const r = synSent();
    r.conn.abort();
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.releasedCount, 1);
  });

  test('SYN retransmitted at 1 s, 3 s, 7 s, 15 s, 31 s, 63 s, ETIMEDOUT at 127 s (RFC 6298 (2.1), (5.5); synRetries 6)', () => {
    const r = synSent();
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      times.push(fireNext(r));
      expectSent(r, [out('SYN', 1000, 0, 1024)]);
      assert.equal(r.conn.state, 'SYN-SENT');
    }
    assert.deepEqual(times, [1000, 3000, 7000, 15000, 31000, 63000]);
    assert.equal(fireNext(r), 127000);
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('synRetries bounds the SYN retransmissions', () => {
    const r = synSent({ config: { synRetries: 1 } });
    assert.equal(fireNext(r), 1000);
    expectSent(r, [out('SYN', 1000, 0, 1024)]);
    assert.equal(fireNext(r), 3000);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ETIMEDOUT']);
  });

  test('Karn: a SYN,ACK answering a retransmitted SYN gives no RTT sample (RFC 6298 §3)', () => {
    const r = synSent();
    advance(r, 1500);
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.equal(r.conn.info().srtt, 0);
  });

  test('an RTT sample from a SYN,ACK answering the first SYN (RFC 6298 (2.2))', () => {
    const r = established({ rttMs: 100 });
    const i = r.conn.info();
    assert.equal(i.srtt, 100);
    assert.equal(i.rttvar, 50);
    assert.equal(i.rto, 300);
  });

  test('RTO re-initialized to 3 s when data transmission begins after a SYN timeout (RFC 6298 (5.7))', () => {
    const r = synSent();
    advance(r, 1500);
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    assert.equal(r.conn.info().rto, 3000);
  });
});

describe('SYN-RECEIVED (passive)', () => {
  test('SYN in LISTEN: SYN,ACK <SEQ=1000><ACK=5001> with our MSS (RFC 9293 §3.10.7.2)', () => {
    const r = newRig(true);
    r.conn.openPassive({ srcPort: 80, dstPort: 49152, seq: 5000, ack: 0, flags: SYN, window: 65535, urgent: 0, options: { mss: 1460 }, payload: new Uint8Array(0) }, 1000);
    const [s] = r.host.takeFull();
    assert.deepEqual({ flags: s!.flags, seq: s!.seq, ack: s!.ack, win: s!.win, len: s!.len }, out('SYN,ACK', 1000, 5001, 1024));
    assert.deepEqual(s!.options, { mss: 1460 });
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('acceptable ACK: ESTABLISHED, handed to the listener, onEstablished, nothing sent (§3.10.7.4 fifth)', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.equal(r.host.passiveEstablishedCount, 1);
    assert.deepEqual(r.host.events, ['established']);
  });

  test('ACK with SEG.ACK = ISS: <SEQ=SEG.ACK><CTL=RST>, stay SYN-RECEIVED (§3.10.7.4 fifth)', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1000, flags: ACK });
    expectSent(r, [out('RST', 1000, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('ACK acking unsent data: <SEQ=SEG.ACK><CTL=RST> (§3.10.7.4 fifth)', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1002, flags: ACK });
    expectSent(r, [out('RST', 1002, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('RST with SEQ = RCV.NXT: back to LISTEN (this TCB goes, no error, no reply) (§3.10.7.4 second)', () => {
    const r = synReceived();
    send(r, { seq: 5001, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.releasedCount, 1);
    assert.equal(r.host.passiveEstablishedCount, 0);
  });

  test('RST,ACK with SEQ = RCV.NXT: back to LISTEN', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1001, flags: RST | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('RST in window but not exact: challenge ACK <SEQ=1001><ACK=5001> (RFC 5961 §3.2)', () => {
    const r = synReceived();
    send(r, { seq: 5002, flags: RST });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('RST out of window: dropped silently (§3.10.7.4 first)', () => {
    const r = synReceived();
    send(r, { seq: 5001 + 1024, flags: RST });
    send(r, { seq: 4000, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('retransmitted SYN (SEQ = IRS): our SYN,ACK is repeated', () => {
    const r = synReceived();
    send(r, { seq: 5000, flags: SYN });
    expectSent(r, [out('SYN,ACK', 1000, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('a new SYN in window: passive connection returns to LISTEN (TCB deleted, no reply) (§3.10.7.4 fourth)', () => {
    const r = synReceived();
    send(r, { seq: 5001, flags: SYN });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.equal(r.host.releasedCount, 1);
  });

  test('SYN,ACK from the peer (its SEQ left of the window): ACK <SEQ=1001><ACK=5001> and drop (§3.10.7.4 first)', () => {
    const r = synReceived();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('data without ACK: dropped, no reply (§3.10.7.4 fifth: if the ACK bit is off drop the segment)', () => {
    const r = synReceived();
    send(r, { seq: 5001, flags: 0, payload: 'abc' });
    assert.equal(r.conn.state, 'SYN-RECEIVED');
    assert.equal(r.conn.readableLength, 0);
    expectSent(r, []);
  });

  test('ACK carrying data: ESTABLISHED and the data acked <ACK=5004>', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1001, flags: ACK | 0x08, payload: 'abc' });
    expectSent(r, [out('ACK', 1001, 5004, 1021)]);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.deepEqual(r.host.events, ['established', 'readable']);
    assert.equal(text(r.conn.read()), 'abc');
  });

  test('FIN,ACK: ESTABLISHED then CLOSE-WAIT, <ACK=5002> (§3.10.7.4 eighth)', () => {
    const r = synReceived();
    send(r, { seq: 5001, ack: 1001, flags: FIN | ACK });
    // The FIN takes one of the 1024 bytes promised on the SYN,ACK; the right edge stays at 6025.
    expectSent(r, [out('ACK', 1001, 5002, 1023)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.deepEqual(r.host.events, ['established', 'end']);
  });

  test('data beyond the window: ACK <SEQ=1001><ACK=5001> and drop', () => {
    const r = synReceived();
    send(r, { seq: 5001 + 1024, ack: 1001, flags: ACK, payload: 'z' });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('SYN,ACK retransmitted at 1, 3, 7, 15, 31 s; the half-open TCB dropped at 63 s with no error', () => {
    const r = synReceived();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      times.push(fireNext(r));
      expectSent(r, [out('SYN,ACK', 1000, 5001, 1024)]);
    }
    assert.deepEqual(times, [1000, 3000, 7000, 15000, 31000]);
    assert.equal(fireNext(r), 63000);
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:null']);
  });

  test('ABORT: <SEQ=SND.NXT><CTL=RST> = RST 1001 (§3.10.5)', () => {
    const r = synReceived();
    r.conn.abort();
    expectSent(r, [out('RST', 1001, 0, 0)]);
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('SEND in SYN-RECEIVED is queued and sent once ESTABLISHED (§3.10.2)', () => {
    const r = synReceived();
    r.conn.write(bytes(4));
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 4)]);
  });

  test('CLOSE in SYN-RECEIVED with data queued: FIN follows the data once ESTABLISHED (§3.10.4)', () => {
    const r = synReceived();
    r.conn.write(bytes(4));
    r.conn.close();
    assert.equal(r.conn.state, 'SYN-RECEIVED');
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    assert.equal(r.conn.state, 'FIN-WAIT-1');
    expectSent(r, [out('FIN,PSH,ACK', 1001, 5001, 1024, 4)]);
  });
});

describe('SYN-RECEIVED (simultaneous open, RFC 9293 §3.5 Figure 7)', () => {
  test('the peer\'s SYN,ACK completes the handshake: ESTABLISHED, no further segment', () => {
    const r = synReceivedSimultaneous();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.deepEqual(r.host.events, ['established']);
    assert.equal(r.host.passiveEstablishedCount, 0);
  });

  test('a plain ACK of our SYN completes it too', () => {
    const r = synReceivedSimultaneous();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
  });

  test('RST with SEQ = RCV.NXT: CLOSED with ECONNREFUSED (§3.10.7.4 second: active OPEN)', () => {
    const r = synReceivedSimultaneous();
    send(r, { seq: 5001, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNREFUSED']);
  });

  test('a new in-window SYN gets a challenge ACK, as in the synchronized states (§3.10.7.4 fourth, RFC 5961 §4.2)', () => {
    const r = synReceivedSimultaneous();
    send(r, { seq: 5001, flags: SYN });
    expectSent(r, [out('ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('SYN,ACK acking something else: RST <SEQ=SEG.ACK>', () => {
    const r = synReceivedSimultaneous();
    send(r, { seq: 5001, ack: 1005, flags: ACK });
    expectSent(r, [out('RST', 1005, 0, 0)]);
    assert.equal(r.conn.state, 'SYN-RECEIVED');
  });

  test('CLOSE with nothing queued: FIN now, FIN-WAIT-1 (§3.10.4 SYN-RECEIVED)', () => {
    const r = synReceivedSimultaneous();
    r.conn.close();
    assert.equal(r.conn.state, 'FIN-WAIT-1');
    expectSent(r, [out('FIN,ACK', 1001, 5001, 1024)]);
  });

  test('after CLOSE in SYN-RECEIVED, an ACK of SYN and FIN completes the handshake and reaches FIN-WAIT-2', () => {
    const r = synReceivedSimultaneous();
    r.conn.close();
    r.host.take();
    send(r, { seq: 5001, ack: 1002, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-2');
    assert.ok(r.host.events.includes('established'), 'the user hears the handshake completed');
  });

  test('after CLOSE in SYN-RECEIVED, an ACK of the SYN only leaves FIN-WAIT-1 and the FIN outstanding', () => {
    const r = synReceivedSimultaneous();
    r.conn.close();
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, []);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
    assert.notEqual(r.conn.deadline, Infinity, 'the FIN is still timed');
  });

  test('after CLOSE in SYN-RECEIVED, the RTO resends the SYN,ACK and then the FIN (RFC 6298 §5)', () => {
    const r = synReceivedSimultaneous();
    r.conn.close();
    r.host.take();
    fireNext(r);
    expectSent(r, [out('SYN,ACK', 1000, 5001, 1024), out('FIN,ACK', 1001, 5001, 1024)]);
    assert.equal(r.conn.state, 'FIN-WAIT-1');
  });
});
