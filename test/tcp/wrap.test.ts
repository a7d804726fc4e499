/**
 * Sequence numbers across 2^32 (RFC 9293 §3.4: all arithmetic modulo 2^32), the unscaled window
 * limit (§3.1), passive-side RTT sampling, and segments that carry several events at once.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { seqAdd } from '../../src/wire/seq.js';
import {
  ACK, FIN, RST, SYN, bytes, established, expectSent, fireNext, newRig, out, send, synReceived, finWait1, text,
} from './harness.js';

const ISS = 0xfffffff0;
const IRS = 0xfffffffa;

function wrapped() {
  const r = newRig(false);
  r.conn.openActive(ISS);
  send(r, { seq: IRS, ack: seqAdd(ISS, 1), flags: SYN | ACK, options: { mss: 100 } });
  assert.equal(r.conn.state, 'ESTABLISHED');
  r.host.clear();
  return r;
}

describe('sequence space wrap-around (RFC 9293 §3.4)', () => {
  test('the handshake near 2^32: ACK <SEQ=ISS+1><ACK=IRS+1>', () => {
    const r = newRig(false);
    r.conn.openActive(ISS);
    send(r, { seq: IRS, ack: seqAdd(ISS, 1), flags: SYN | ACK });
    expectSent(r, [out('SYN', ISS, 0, 1024), out('ACK', 0xfffffff1, 0xfffffffb, 1024)]);
  });

  test('sending across the wrap: segments numbered modulo 2^32, the ACK past 0 accepted', () => {
    const r = wrapped();
    r.conn.setNoDelay(true);
    r.conn.write(bytes(30));
    expectSent(r, [out('PSH,ACK', 0xfffffff1, 0xfffffffb, 1024, 30)]);
    send(r, { seq: IRS + 1, ack: 0x0f, flags: ACK });
    assert.equal(r.conn.info().sndUna, 0x0f);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('receiving across the wrap, out of order: reassembled in order, RCV.NXT past 0', () => {
    const r = wrapped();
    send(r, { seq: 0x05, ack: seqAdd(ISS, 1), flags: ACK, payload: bytes(10, 10) });
    expectSent(r, [out('ACK', 0xfffffff1, 0xfffffffb, 1024)]);
    send(r, { seq: 0xfffffffb, ack: seqAdd(ISS, 1), flags: ACK, payload: bytes(10, 0) });
    expectSent(r, [out('ACK', 0xfffffff1, 0x0f, 1004)]);
    assert.deepEqual(r.conn.read(), bytes(20));
  });

  test('RST checks across the wrap: exact resets, in-window challenges, left-of-window dropped', () => {
    const r = wrapped();
    send(r, { seq: 0x10, flags: RST });
    expectSent(r, [out('ACK', 0xfffffff1, 0xfffffffb, 1024)]);
    send(r, { seq: 0xfffffffa, flags: RST });
    expectSent(r, []);
    assert.equal(r.conn.state, 'ESTABLISHED');
    send(r, { seq: 0xfffffffb, flags: RST });
    assert.equal(r.conn.state, 'CLOSED');
  });

  test('ACK of unsent data across the wrap is still "unsent": ACK and drop', () => {
    const r = wrapped();
    send(r, { seq: 0xfffffffb, ack: 0x05, flags: ACK });
    expectSent(r, [out('ACK', 0xfffffff1, 0xfffffffb, 1024)]);
    assert.equal(r.conn.info().sndUna, 0xfffffff1);
  });
});

function synSentBig() {
  const r = newRig(false, { config: { receiveBufferSize: 200_000 } });
  r.conn.openActive(1000);
  expectSent(r, [out('SYN', 1000, 0, 65535)]);
  return r;
}

describe('window limits', () => {
  test('without window scaling the advertised window is at most 65535 (RFC 9293 §3.1)', () => {
    const r = synSentBig();
    send(r, { seq: 5000, ack: 1001, flags: SYN | ACK });
    expectSent(r, [out('ACK', 1001, 5001, 65535)]);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'x' });
    expectSent(r, [out('ACK', 1001, 5002, 65535)]);
  });
});

describe('passive side RTT (RFC 6298)', () => {
  test('the ACK of our SYN,ACK gives the first RTT sample', () => {
    const r = synReceived();
    r.host.t += 40;
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    assert.equal(r.conn.info().srtt, 40);
  });

  test('Karn: no sample when the SYN,ACK was retransmitted', () => {
    const r = synReceived();
    fireNext(r);
    r.host.t += 40;
    send(r, { seq: 5001, ack: 1001, flags: ACK });
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.equal(r.conn.info().srtt, 0);
  });
});

describe('several events in one segment', () => {
  test('FIN-WAIT-1: data + ACK of our FIN + FIN together → TIME-WAIT, data readable', () => {
    const r = finWait1();
    send(r, { seq: 5001, ack: 1002, flags: FIN | ACK, payload: 'last' });
    expectSent(r, [out('ACK', 1002, 5006, 1019)]);
    assert.equal(r.conn.state, 'TIME-WAIT');
    assert.deepEqual(r.host.events, ['readable', 'end', 'closed:null']);
    assert.equal(text(r.conn.read()), 'last');
  });

  test('ESTABLISHED: ACK of our data + data + FIN → CLOSE-WAIT, our data freed', () => {
    const r = established();
    r.conn.write(bytes(5));
    r.host.take();
    send(r, { seq: 5001, ack: 1006, flags: FIN | ACK, payload: 'ok' });
    expectSent(r, [out('ACK', 1006, 5004, 1021)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
    assert.equal(r.conn.info().sndUna, 1006);
  });
});
