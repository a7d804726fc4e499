/**
 * The transfer mechanisms beyond RFC 9293, each tested through one connection so that every test
 * would fail without its mechanism: window scaling and timestamps (RFC 7323), SACK and D-SACK
 * (RFC 2018, RFC 2883), SACK-based loss recovery (RFC 6675), RACK-TLP (RFC 8985), delayed ACKs
 * (RFC 5681 §4.2), Nagle (RFC 9293 §3.7.4), buffer auto-tuning, the bounds a peer cannot push
 * past, and congestion control as the connection drives it (RFC 6928, RFC 5681, RFC 9438).
 *
 * The harness turns every one of these off; each test turns on what it tests. Numbers as in the
 * harness: ISS 1000 (data from 1001), IRS 5000 (data from 5001), SYN,ACK at t = 10 ms, so
 * SRTT = 10, RTO = 200 ms.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { windowScaleFor } from '../../src/tcp/connection.js';
import { MAX_RANGES } from '../../src/tcp/reassembly.js';
import { MAX_RECORDS } from '../../src/tcp/scoreboard.js';
import { parseTcp, writeTcp, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';
import {
  ACK, FIN, LOCAL_ISS, LOCAL_PORT, REMOTE_IRS, REMOTE_PORT, RST, SYN, advance, bytes, established,
  expectSent, fireNext, newRig, out, send, synReceived, synSent, text,
  type Rig, type RigOptions, type Sent, type SentFull,
} from './harness.js';

const MiB = 1 << 20;

/** A sent segment with the SACK blocks it carries (null when none). */
interface SentSack extends Sent {
  sack: Array<[number, number]> | null;
}

function takeSack(r: Rig): SentSack[] {
  return r.host.takeFull().map((s) => ({ flags: s.flags, seq: s.seq, ack: s.ack, win: s.win, len: s.len, sack: s.options.sack ?? null }));
}

function outSack(flags: string, seq: number, ack: number, win: number, sack: Array<[number, number]> | null, len = 0): SentSack {
  return { ...out(flags, seq, ack, win, len), sack };
}

/** The options of a sent segment as they reach the wire: encoded by writeTcp, parsed back. */
function onWire(s: SentFull): TcpOptions {
  const seg: TcpSegment = {
    srcPort: LOCAL_PORT, dstPort: REMOTE_PORT, seq: s.seq, ack: s.ack, flags: ACK, window: s.win,
    urgent: 0, options: s.options, payload: s.payload,
  };
  const buf = new Uint8Array(60 + s.len);
  const n = writeTcp(buf, 0, seg, 0);
  const parsed = parseTcp(buf.subarray(0, n), 0, false);
  assert.ok(typeof parsed !== 'string', `parsed: ${String(parsed)}`);
  return parsed.options;
}

/** A SACK-enabled connection with MSS 100 and `n` segments (1001, 1101, …; n ≤ IW = 10) sent at t = 10. */
function inFlight(n: number, config: RigOptions['config'] = {}): Rig {
  const r = established({ peerMss: 100, peerSackOk: true, config: { sack: true, ...config } });
  r.conn.write(bytes(100 * n));
  const sent = r.host.take();
  assert.deepEqual(sent.map((s) => s.seq), Array.from({ length: n }, (_, i) => 1001 + 100 * i));
  return r;
}

/** Ten segments, 1001..2001, a whole initial window (RFC 6928). */
function tenInFlight(config: RigOptions['config'] = {}): Rig {
  return inFlight(10, config);
}

/** Data segments (len > 0) among `sent`, as [seq, len]. */
function dataOf(sent: Sent[]): Array<[number, number]> {
  return sent.filter((s) => s.len > 0).map((s) => [s.seq, s.len]);
}

// ====================================================================================== RFC 7323 §2

describe('window scaling (RFC 7323 §2)', () => {
  const WS = { windowScaling: true, receiveBufferSize: 256 * 1024, receiveBufferMax: 6 * MiB };

  test('our SYN offers WS = the smallest shift covering receiveBufferMax (6 MiB → 7); the SYN window is not scaled (§2.2, §2.3)', () => {
    const r = newRig(false, { config: WS });
    r.conn.openActive(LOCAL_ISS);
    const [syn] = r.host.takeFull();
    assert.equal(syn!.flags, 'SYN');
    assert.equal(syn!.options.wscale, 7);
    assert.equal(syn!.win, 65535, '256 KiB of buffer, but a SYN carries the unscaled field, at most 65535');
    assert.equal(windowScaleFor(6 * MiB), 7);
    assert.equal(windowScaleFor(65535), 0);
    assert.equal(windowScaleFor(65536), 1);
    assert.equal(windowScaleFor(2 ** 31), 14, 'never above 14');
    const off = newRig(false, { config: { ...WS, windowScaling: false } });
    off.conn.openActive(LOCAL_ISS);
    assert.equal(off.host.takeFull()[0]!.options.wscale, undefined);
  });

  test('in effect only if both SYNs carry it: a peer without WS gets raw windows both ways (§2.2)', () => {
    const r = established({ config: WS, peerWindow: 8192 });
    assert.equal(r.conn.info().windowScaling, null);
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 8192, payload: bytes(100) });
    assert.equal(r.conn.info().sndWnd, 8192, 'the peer\'s field is not shifted');
    // Our buffer holds 256 KiB, but the field is capped at 65535 and means bytes.
    expectSent(r, [out('ACK', 1001, 5101, 65535)]);
  });

  test('passive open: the SYN,ACK carries WS only when the SYN did (§2.2)', () => {
    const withWs = synReceived({ config: WS, peerWscale: 2, peerWindow: 1000 });
    assert.equal(withWs.conn.info().sndWnd, 1000, 'the SYN window is not scaled');
    assert.equal(withWs.host.lastSyn!.flags, 'SYN,ACK');
    assert.equal(withWs.host.lastSyn!.options.wscale, 7);
    assert.equal(withWs.host.lastSyn!.win, 65535, 'SYN,ACK window unscaled');
    send(withWs, { seq: 5001, ack: 1001, flags: ACK, win: 1000 });
    assert.deepEqual(withWs.conn.info().windowScaling, { snd: 2, rcv: 7 });
    assert.equal(withWs.conn.info().sndWnd, 4000, 'the ACK completing the handshake is scaled, the SYN was not');
    const without = synReceived({ config: WS });
    assert.equal(without.host.lastSyn!.options.wscale, undefined);
    // We do not scale, the peer offered: still off, and its window is taken raw.
    const notOurs = synReceived({ config: { windowScaling: false }, peerWscale: 2 });
    assert.equal(notOurs.host.lastSyn!.options.wscale, undefined);
    send(notOurs, { seq: 5001, ack: 1001, flags: ACK, win: 1000 });
    assert.equal(notOurs.conn.info().windowScaling, null);
    assert.equal(notOurs.conn.info().sndWnd, 1000);
  });

  test('the peer\'s window field is shifted by its WS, except on its SYN,ACK (§2.2, §2.3)', () => {
    const r = established({ config: WS, peerWscale: 7, peerWindow: 8192 });
    assert.deepEqual(r.conn.info().windowScaling, { snd: 7, rcv: 7 });
    assert.equal(r.conn.info().sndWnd, 8192, 'the SYN,ACK window is never scaled');
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 8192 });
    assert.equal(r.conn.info().sndWnd, 8192 << 7);
  });

  test('our window field is the window >> our shift (§2.3)', () => {
    const r = synSent({ config: WS });
    r.host.t = 10;
    send(r, { seq: REMOTE_IRS, ack: LOCAL_ISS + 1, flags: SYN | ACK, win: 8192, options: { mss: 1460, wscale: 7 } });
    // The ACK completing the handshake offers the whole 256 KiB: 262144 >> 7.
    expectSent(r, [out('ACK', 1001, 5001, 2048)]);
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 8192, payload: bytes(100) });
    // 262044 bytes left, rounded down to units of 128.
    expectSent(r, [out('ACK', 1001, 5101, Math.floor((262144 - 100) / 128))]);
  });

  function flightAfterSlowStart(peer: RigOptions): number {
    const r = established({
      peerMss: 1460, ...peer,
      config: { windowScaling: true, receiveBufferMax: 6 * MiB, sendBufferSize: MiB, sendBufferMax: MiB },
    });
    assert.equal(r.conn.write(bytes(MiB)), MiB);
    let maxFlight = 0;
    // Slow start, each segment acknowledged by its own ACK: cwnd doubles per round (RFC 5681 §3.1).
    for (let round = 0; round < 4; round++) {
      for (const s of r.host.take()) {
        if (s.len === 0) continue;
        send(r, { seq: 5001, ack: s.seq + s.len, flags: ACK, win: peer.peerWindow ?? 65535 });
        maxFlight = Math.max(maxFlight, r.conn.info().unacked);
      }
    }
    return maxFlight;
  }

  test('a window beyond 64 KiB is used: field 8192 << 7 = 1 MiB lets more than 65535 bytes fly (§2)', () => {
    const flight = flightAfterSlowStart({ peerWscale: 7, peerWindow: 8192 });
    assert.ok(flight > 65535, `in flight: ${flight}`);
  });

  test('without scaling the same transfer never has more than 65535 bytes in flight (RFC 9293 §3.1)', () => {
    const flight = flightAfterSlowStart({ peerWindow: 65535 });
    assert.ok(flight <= 65535 && flight > 60000, `in flight: ${flight}`);
  });

  test('a peer shift of 15 is used as 14 (§2.3)', () => {
    const r = synSent({ config: WS });
    r.host.t = 10;
    send(r, { seq: REMOTE_IRS, ack: LOCAL_ISS + 1, flags: SYN | ACK, options: { mss: 1460, wscale: 15 } });
    assert.deepEqual(r.conn.info().windowScaling, { snd: 14, rcv: 7 });
    send(r, { seq: 5001, ack: 1001, flags: ACK, win: 3 });
    assert.equal(r.conn.info().sndWnd, 3 << 14);
    assert.ok(r.host.notes.some((n) => n.rfc === 'RFC 7323 §2.3'), 'noted');
  });
});

// ================================================================================ RFC 7323 §3–5

describe('timestamps (RFC 7323 §3–§5)', () => {
  const TS = { timestamps: true };

  test('our SYN offers TS with TSecr 0; the SYN,ACK of a passive open echoes the peer\'s TSval (§3.2)', () => {
    const r = newRig(false, { config: TS });
    r.conn.openActive(LOCAL_ISS);
    const ts = r.host.lastSyn!.options.timestamp;
    assert.ok(ts !== undefined);
    assert.equal(ts.ecr, 0);
    const p = synReceived({ config: TS, peerTsVal: 4242 });
    assert.equal(p.host.lastSyn!.options.timestamp?.ecr, 4242);
    const none = synReceived({ config: TS });
    assert.equal(none.host.lastSyn!.options.timestamp, undefined, 'not offered by the peer: not sent');
    send(none, { seq: 5001, ack: 1001, flags: ACK });
    assert.equal(none.conn.info().timestamps, false);
  });

  test('every later non-RST segment carries TS, TSecr = TS.Recent; TSval ticks in ms (§3.2, §4.3)', () => {
    const r = synSent({ config: TS });
    r.host.t = 10;
    send(r, { seq: REMOTE_IRS, ack: LOCAL_ISS + 1, flags: SYN | ACK, options: { mss: 1460 }, tsVal: 700 });
    assert.equal(r.conn.info().timestamps, true);
    const [ackOfSyn] = r.host.takeFull();
    assert.equal(ackOfSyn!.options.timestamp?.ecr, 700);
    r.host.t = 35;
    r.conn.write(bytes(10));
    const [data] = r.host.takeFull();
    assert.deepEqual(data!.options.timestamp, { val: ackOfSyn!.options.timestamp!.val + 25, ecr: 700 });
    send(r, { seq: 5001, ack: 1011, flags: ACK, payload: 'x', tsVal: 800 });
    const [ack] = r.host.takeFull();
    assert.equal(ack!.options.timestamp?.ecr, 800, 'TS.Recent follows the segment at the left edge');
    r.conn.close();
    const [fin] = r.host.takeFull();
    assert.equal(fin!.flags, 'FIN,ACK');
    assert.equal(fin!.options.timestamp?.ecr, 800);
    r.conn.abort();
    const [rst] = r.host.takeFull();
    assert.equal(rst!.flags, 'RST');
    assert.equal(rst!.options.timestamp, undefined, 'a RST carries no timestamp');
  });

  test('the effective MSS leaves room for the option: segments of 1460 − 12 bytes (RFC 7323 §3.2, RFC 6691)', () => {
    const r = established({ config: TS, peerTsVal: 1 });
    r.conn.setNoDelay(true);
    r.conn.write(bytes(3000));
    assert.deepEqual(r.host.take().map((s) => s.len), [1448, 1448, 104]);
  });

  test('TS.Recent is not taken from an out-of-order segment (§4.3 (2))', () => {
    const r = established({ config: TS, peerTsVal: 1000 });
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(10), tsVal: 2000 });
    assert.equal(r.host.takeFull()[0]!.options.timestamp?.ecr, 1000);
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100), tsVal: 1500 });
    assert.equal(r.host.takeFull()[0]!.options.timestamp?.ecr, 1500);
  });

  test('RTT from the echo: an ACK of a retransmission that echoes its TSval is a sample (§4.1, unlike Karn)', () => {
    const r = established({ config: TS, peerTsVal: 1000 });
    r.conn.write(bytes(10));
    r.host.take();
    assert.equal(fireNext(r), 210); // the RTO resends; RTO now 400
    r.host.take();
    r.host.t = 260;
    send(r, { seq: 5001, ack: 1011, flags: ACK, tsVal: 1001 }); // echoes the retransmission's TSval
    const i = r.conn.info();
    assert.equal(i.srtt, 15); // 7/8·10 + 1/8·50
    assert.equal(i.rto, 200, 'a sample collapses the backoff');
  });

  test('an echo of the first transmission, acknowledging a retransmission, is no sample (§4.3)', () => {
    const r = established({ config: TS, peerTsVal: 1000 });
    r.conn.write(bytes(10));
    const firstTs = r.host.takeFull()[0]!.options.timestamp!.val;
    fireNext(r);
    r.host.take();
    r.host.t = 260;
    send(r, { seq: 5001, ack: 1011, flags: ACK, tsVal: 1001, tsEcr: firstTs });
    assert.equal(r.conn.info().srtt, 10);
  });

  test('the first ACK of a passive open gives SRTT from its echo (§4.1)', () => {
    const r = synReceived({ config: TS, peerTsVal: 50 });
    r.host.t = 37;
    send(r, { seq: 5001, ack: 1001, flags: ACK, tsVal: 60 });
    assert.equal(r.conn.state, 'ESTABLISHED');
    assert.equal(r.conn.info().srtt, 37);
  });

  test('PAWS: data with TSval < TS.Recent is dropped, answered with an ACK, and counted (§5.3 R1)', () => {
    const r = established({ config: TS, peerTsVal: 1000 });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc', tsVal: 1005 });
    r.host.take();
    // An old duplicate: in the window, at RCV.NXT — it would be accepted but for its timestamp.
    send(r, { seq: 5004, ack: 1001, flags: ACK, payload: 'OLD', tsVal: 1004 });
    const [reply] = r.host.takeFull();
    assert.deepEqual({ flags: reply!.flags, seq: reply!.seq, ack: reply!.ack, len: reply!.len }, { flags: 'ACK', seq: 1001, ack: 5004, len: 0 });
    assert.equal(reply!.options.timestamp?.ecr, 1005);
    assert.equal(r.conn.info().pawsDrops, 1);
    assert.equal(r.conn.info().rcvNxt, 5004);
    assert.equal(text(r.conn.read()), 'abc', 'the old data was not delivered');
    // The same bytes with a current timestamp are taken (TSval = TS.Recent is not "older").
    send(r, { seq: 5004, ack: 1001, flags: ACK, payload: 'new', tsVal: 1005 });
    assert.equal(r.conn.info().rcvNxt, 5007);
    assert.equal(text(r.conn.read()), 'new');
    assert.equal(r.conn.info().pawsDrops, 1);
  });

  test('PAWS compares modulo 2^32: a TSval just past a wrap is newer (§5.2)', () => {
    const r = established({ config: TS, peerTsVal: 0xfffffff0 });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: 'abc', tsVal: 0x10 });
    assert.equal(r.conn.info().pawsDrops, 0);
    assert.equal(r.conn.info().rcvNxt, 5004);
  });

  test('a RST with an old TSval is not dropped by PAWS (§5.3: R1 skips RST)', () => {
    const r = established({ config: TS, peerTsVal: 1000 });
    send(r, { seq: 5001, flags: RST, tsVal: 1 });
    assert.equal(r.conn.state, 'CLOSED');
    assert.deepEqual(r.host.events, ['closed:ECONNRESET']);
    assert.equal(r.conn.info().pawsDrops, 0);
  });
});

// ========================================================================= RFC 2018 / RFC 2883

describe('SACK: the receiver (RFC 2018, RFC 2883)', () => {
  const SACK_RX = { sack: true, receiveBufferSize: 4096 };
  const rx = (config = {}): Rig => established({ peerSackOk: true, config: { ...SACK_RX, ...config } });

  test('SACK-permitted on our SYN; in use only when both SYNs carry it (RFC 2018 §2)', () => {
    const r = newRig(false, { config: { sack: true } });
    r.conn.openActive(LOCAL_ISS);
    assert.equal(r.host.lastSyn!.options.sackPermitted, true);
    assert.equal(established({ peerSackOk: true, config: { sack: true } }).conn.info().sack, true);
    assert.equal(established({ config: { sack: true } }).conn.info().sack, false);
    assert.equal(established({ peerSackOk: true }).conn.info().sack, false);
    const p = synReceived({ config: { sack: true } });
    assert.equal(p.host.lastSyn!.options.sackPermitted, undefined, 'SYN,ACK: only if the SYN offered it');
  });

  test('out-of-order data: an immediate ACK with SACK blocks, the newest block first (RFC 2018 §4)', () => {
    const r = rx();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5001, 4096, [[5101, 5201]])]);
    send(r, { seq: 5301, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5001, 4096, [[5301, 5401], [5101, 5201]])]);
    // Extending the older block makes it the newest.
    send(r, { seq: 5201, ack: 1001, flags: ACK, payload: bytes(50) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5001, 4096, [[5101, 5251], [5301, 5401]])]);
    send(r, { seq: 5501, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5001, 4096, [[5501, 5601], [5101, 5251], [5301, 5401]])]);
    // The hole at RCV.NXT fills: the ACK moves and the blocks it covers are gone.
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5251, 4096 - 250, [[5501, 5601], [5301, 5401]])]);
  });

  test('no SACK option once nothing is held', () => {
    const r = rx();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    const acks = takeSack(r);
    assert.deepEqual(acks.map((a) => a.sack), [[[5101, 5201]], null]);
  });

  test('D-SACK: a duplicate below RCV.NXT is reported as the first block, once (RFC 2883 §4.1)', () => {
    const r = rx();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    r.host.take();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5101, 4096 - 100, [[5001, 5101]])]);
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5201, 4096 - 200, null)]);
  });

  test('D-SACK: a segment partly duplicate reports just the duplicate part', () => {
    const r = rx();
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    r.host.take();
    send(r, { seq: 5051, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5151, 4096 - 150, [[5051, 5101]])]);
  });

  test('D-SACK: a duplicate of a held out-of-order block is reported first, the held blocks after it (RFC 2883 §4.2)', () => {
    const r = rx();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    send(r, { seq: 5301, ack: 1001, flags: ACK, payload: bytes(100) });
    r.host.take();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    const [a] = takeSack(r);
    assert.deepEqual(a!.sack![0], [5101, 5201]);
    assert.deepEqual([...a!.sack!.slice(1)].sort((x, y) => x[0] - y[0]), [[5101, 5201], [5301, 5401]]);
    // Reported once: the next ACK has the held blocks only.
    send(r, { seq: 5501, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r)[0]!.sack, [[5501, 5601], [5301, 5401], [5101, 5201]]);
  });

  test('D-SACK: the second block is the one containing the duplicate (RFC 2883 §4.2)', () => {
    const r = rx();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    send(r, { seq: 5301, ack: 1001, flags: ACK, payload: bytes(100) });
    r.host.take();
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    assert.deepEqual(takeSack(r), [outSack('ACK', 1001, 5001, 4096, [[5101, 5201], [5101, 5201], [5301, 5401]])]);
  });

  /** Five held blocks, 5101, 5301, … 5901 (100 bytes each); returns the ACK of the last. */
  function fiveHoles(r: Rig, tsVal?: number): SentFull {
    for (let i = 0; i < 5; i++) send(r, { seq: 5101 + 200 * i, ack: 1001, flags: ACK, payload: bytes(100), ...(tsVal === undefined ? {} : { tsVal }) });
    const last = r.host.takeFull().at(-1)!;
    return last;
  }

  test('at most 4 blocks on the wire without timestamps, the most recent ones (RFC 2018 §3, §4)', () => {
    const r = rx();
    const ack = fiveHoles(r);
    assert.deepEqual(onWire(ack).sack, [[5901, 6001], [5701, 5801], [5501, 5601], [5301, 5401]]);
  });

  test('at most 3 blocks on the wire with timestamps (RFC 2018 §3: 40 bytes of options)', () => {
    const r = established({ peerSackOk: true, peerTsVal: 1, config: { ...SACK_RX, timestamps: true } });
    const ack = fiveHoles(r, 2);
    const wire = onWire(ack);
    assert.ok(wire.timestamp !== undefined);
    assert.deepEqual(wire.sack, [[5901, 6001], [5701, 5801], [5501, 5601]]);
  });

  test(`holes are bounded: the ${MAX_RANGES + 1}th disjoint range is neither held nor SACKed`, () => {
    const r = rx();
    // Ranges of 10 bytes with 10-byte holes: [5011, 5021), [5031, 5041), …
    for (let i = 0; i <= MAX_RANGES; i++) send(r, { seq: 5011 + 20 * i, ack: 1001, flags: ACK, payload: bytes(10) });
    const acks = takeSack(r);
    assert.equal(acks.length, MAX_RANGES + 1, 'each arrival is answered');
    const lastHeld = 5011 + 20 * (MAX_RANGES - 1);
    const extra = 5011 + 20 * MAX_RANGES;
    assert.deepEqual(acks[MAX_RANGES - 1]!.sack![0], [lastHeld, lastHeld + 10]);
    const final = acks[MAX_RANGES]!;
    assert.equal(final.ack, 5001);
    assert.ok(final.sack!.every(([left]) => left !== extra), `not SACKed: ${JSON.stringify(final.sack)}`);
    // Every hole but the one before the extra range fills: RCV.NXT reaches the extra range's start
    // and stops there, because its bytes were not kept.
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(extra - 5001) });
    assert.equal(r.conn.info().rcvNxt, extra);
  });
});

// ================================================================================== RFC 6675

describe('SACK-based loss recovery (RFC 6675) and fast retransmit', () => {
  test('one lost segment, three later ones SACKed: it alone is resent, no RTO; recovery ends at the recovery point (§5)', () => {
    const r = tenInFlight();
    advance(r, 10);
    const sent: Sent[] = [];
    // Segment 1001 is lost; the peer SACKs what follows, one segment per ACK.
    for (let k = 1; k <= 9; k++) {
      send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1101 + 100 * k]] });
      sent.push(...r.host.take());
      if (dataOf(sent).length > 0) break;
    }
    assert.deepEqual(dataOf(sent), [[1001, 100]], 'only the hole is resent');
    const i = r.conn.info();
    assert.equal(i.caState, 'recovery');
    assert.equal(i.recoveries, 1);
    assert.equal(i.rtoExpirations, 0);
    assert.equal(r.host.t, 20, 'no timer fired');
    // The retransmission arrives: everything up to SND.MAX is acknowledged and recovery ends.
    send(r, { seq: 5001, ack: 2001, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().totalRetransmits, 1);
    expectSent(r, []);
  });

  test('five in flight: the retransmission goes at the third SACKed segment (RFC 6675 §5 (4.3))', () => {
    const r = inFlight(5);
    advance(r, 10);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1201]] });
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1301]] });
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1401]] });
    assert.equal(r.conn.info().caState, 'recovery');
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
  });

  test('a whole window in flight: the retransmission goes at the third SACKed segment too (RFC 6675 §5 (4.3))', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1201]] });
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1301]] });
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1401]] });
    assert.equal(r.conn.info().caState, 'recovery');
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)], 'fast retransmit with DupThresh SACKed segments');
  });

  test('two holes: both resent, none of the SACKed segments; a partial ACK keeps recovery going', () => {
    const r = tenInFlight();
    advance(r, 10);
    // 1001 and 1201 lost; 1101 and 1301..1801 arrive.
    const sackSeq: Array<Array<[number, number]>> = [
      [[1101, 1201]],
      [[1301, 1401], [1101, 1201]],
      [[1301, 1501], [1101, 1201]],
      [[1301, 1601], [1101, 1201]],
      [[1301, 1701], [1101, 1201]],
      [[1301, 1801], [1101, 1201]],
    ];
    const sent: Sent[] = [];
    for (const sack of sackSeq) {
      send(r, { seq: 5001, ack: 1001, flags: ACK, sack });
      sent.push(...r.host.take());
    }
    assert.deepEqual(dataOf(sent), [[1001, 100], [1201, 100]]);
    assert.equal(r.conn.info().lost, 0, 'nothing left to resend');
    // The first retransmission arrives: a partial ACK, still in recovery.
    send(r, { seq: 5001, ack: 1201, flags: ACK, sack: [[1301, 1801]] });
    assert.equal(r.conn.info().caState, 'recovery');
    // The rest (the second retransmission, 1801 and 1901) arrive.
    send(r, { seq: 5001, ack: 2001, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().rtoExpirations, 0);
    assert.equal(r.conn.info().totalRetransmits, 2);
    expectSent(r, []);
  });

  test('a segment deemed lost and then SACKed before its retransmission is not resent (RFC 6675 §4 NextSeg)', () => {
    const r = tenInFlight();
    advance(r, 10);
    // 1101, 1301, 1501 SACKed: RACK deems 1001, 1201 and 1401 lost; cwnd − pipe has room for one.
    const sent: Sent[] = [];
    const sacks: Array<Array<[number, number]>> = [
      [[1101, 1201]],
      [[1301, 1401], [1101, 1201]],
      [[1501, 1601], [1301, 1401], [1101, 1201]],
      // 1201 was only late: it arrives before being resent.
      [[1101, 1401], [1501, 1601]],
      [[1501, 1701], [1101, 1401]],
    ];
    for (const sack of sacks) {
      send(r, { seq: 5001, ack: 1001, flags: ACK, sack });
      sent.push(...r.host.take());
    }
    assert.deepEqual(dataOf(sent), [[1001, 100], [1401, 100]]);
    assert.equal(r.conn.info().lost, 0);
  });

  test('without SACK, a whole window in flight: the third duplicate ACK retransmits (RFC 5681 §3.2 step 2)', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(1000));
    assert.equal(r.host.take().length, 10);
    for (let i = 0; i < 3; i++) send(r, { seq: 5001, ack: 1001, flags: ACK });
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
  });

  test('without SACK, several holes are repaired by fast retransmit and partial ACKs (RFC 6582 §3.2)', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(600));
    assert.equal(r.host.take().length, 6);
    // 1001 and 1201 lost: the peer ACKs 1001 for each of 1101, 1301, 1401, 1501, 1601.
    const sent: Sent[] = [];
    for (let i = 0; i < 5; i++) {
      send(r, { seq: 5001, ack: 1001, flags: ACK });
      sent.push(...r.host.take());
    }
    assert.deepEqual(dataOf(sent), [[1001, 100]]);
    send(r, { seq: 5001, ack: 1201, flags: ACK });
    expectSent(r, [out('ACK', 1201, 5001, 1024, 100)], 'partial ACK: the next hole at once');
    send(r, { seq: 5001, ack: 1601, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().rtoExpirations, 0);
  });
});

// ================================================================================== RFC 8985

describe('RACK-TLP (RFC 8985)', () => {
  test('one SACKed segment above a hole: lost only after the reordering window, by the RACK timer (§6.2, §6.3)', () => {
    // Three in flight, so that the halved cwnd has room for the retransmission at once.
    const r = inFlight(3);
    advance(r, 10);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1201]] });
    expectSent(r, [], 'not at once: fewer than DupThresh SACKed, the path may reorder');
    assert.equal(r.conn.info().lost, 0);
    // Sent at 10, RACK.rtt 10, reordering window min(RTT_min/4, SRTT) = 2.5 ms.
    assert.equal(r.conn.deadline, 22.5);
    assert.equal(fireNext(r), 22.5);
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
    assert.equal(r.conn.info().caState, 'recovery');
    assert.equal(r.conn.info().rtoExpirations, 0);
  });

  test('a hole that fills within the reordering window is not resent (§6.2)', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1201]] });
    r.host.t = 21;
    send(r, { seq: 5001, ack: 1201, flags: ACK });
    advance(r, 5);
    expectSent(r, []);
    assert.equal(r.conn.info().totalRetransmits, 0);
    assert.equal(r.conn.info().caState, 'open');
  });

  test('tail loss: the last segment is probed at 2·SRTT, long before the RTO (§7.2, §7.3)', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1801, flags: ACK }); // 1801 and 1901 lost
    expectSent(r, []);
    assert.equal(fireNext(r), 20 + 2 * 10);
    expectSent(r, [out('PSH,ACK', 1901, 5001, 1024, 100)]);
    const i = r.conn.info();
    assert.equal(i.tailLossProbes, 1);
    assert.equal(i.rtoExpirations, 0);
    // The probe's ACK SACKs it: RACK finds 1801 lost and fast recovery repairs it, still no RTO.
    r.host.t = 50;
    send(r, { seq: 5001, ack: 1801, flags: ACK, sack: [[1901, 2001]] });
    expectSent(r, [out('ACK', 1801, 5001, 1024, 100)]);
    send(r, { seq: 5001, ack: 2001, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().rtoExpirations, 0);
  });

  test('the probe is new data when some is waiting and the window allows (§7.3)', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1801, flags: ACK });
    r.conn.write(bytes(50)); // held by Nagle: 200 bytes unacknowledged
    expectSent(r, []);
    assert.equal(fireNext(r), 40);
    expectSent(r, [out('PSH,ACK', 2001, 5001, 1024, 50)]);
    assert.equal(r.conn.info().tailLossProbes, 1);
  });

  test('a lone segment in flight is probed at the RTO time, instead of the RTO (§7.2: PTO capped by the RTO)', () => {
    const r = inFlight(1);
    advance(r, 10);
    // 2·SRTT + WCDelAckT (200 ms) is later than the RTO: the probe takes the RTO's place.
    assert.equal(fireNext(r), 210);
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 100)]);
    const i = r.conn.info();
    assert.equal(i.tailLossProbes, 1);
    assert.equal(i.rtoExpirations, 0);
    assert.equal(i.cwnd, 1000, 'a probe does not collapse cwnd as an RTO would');
  });

  test('a tail lost during recovery is found by RACK from the ACK of a retransmission (§6.2: send order, not sequence)', () => {
    // Ten out at t=10, 1001 and 1901 lost. SACKs of 1101..1901 start recovery: 1001 is resent.
    const r = tenInFlight();
    r.host.t = 30;
    for (const right of [1201, 1301, 1401]) send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, right]] });
    expectSent(r, [out('ACK', 1001, 5001, 1024, 100)]);
    for (const right of [1501, 1601, 1701, 1801, 1901]) send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, right]] });
    r.host.take();
    // The ACK of the retransmission (sent at 30) makes it the RACK segment: 1901, sent at 10 and
    // never SACKed, is lost — resent now, not at the RTO.
    r.host.t = 50;
    send(r, { seq: 5001, ack: 1901, flags: ACK });
    assert.deepEqual(dataOf(r.host.take()), [[1901, 100]]);
    assert.equal(r.conn.info().rtoExpirations, 0);
  });

  test('no probe without SACK: the RTO handles the tail (§7.1)', () => {
    const r = established({ peerMss: 100 });
    r.conn.write(bytes(1000));
    r.host.take();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1801, flags: ACK });
    assert.equal(fireNext(r), 20 + 200);
    assert.equal(r.conn.info().tailLossProbes, 0);
    assert.equal(r.conn.info().rtoExpirations, 1);
  });

  test('a D-SACK widens the reordering window (RACK.reo_wnd_mult, §6.2 step 4) but is not itself reordering', () => {
    const r = inFlight(5);
    advance(r, 10);
    assert.equal(r.conn.info().reorderingSeen, false);
    // A duplicate of 1001 arrived (D-SACK below the cumulative ACK); then 1201 is SACKed, 1101 missing.
    send(r, { seq: 5001, ack: 1101, flags: ACK, sack: [[1001, 1101]] });
    assert.equal(r.conn.info().dsacksReceived, 1);
    assert.equal(r.conn.info().reorderingSeen, false);
    send(r, { seq: 5001, ack: 1101, flags: ACK, sack: [[1201, 1301]] });
    expectSent(r, [], 'one SACKed segment: wait the reordering window');
    // reo_wnd = min(RTT_min/4 · 2, SRTT) = 5 ms after RACK.rtt (10 ms) from 1101's send at 10.
    assert.equal(fireNext(r), 10 + 10 + 5);
    expectSent(r, [out('ACK', 1101, 5001, 1024, 100)]);
  });

  test('an original delivered below one delivered before it is reordering (§6.2 step 3)', () => {
    const r = inFlight(5);
    advance(r, 10);
    send(r, { seq: 5001, ack: 1101, flags: ACK, sack: [[1201, 1301]] });
    assert.equal(r.conn.info().reorderingSeen, false);
    // 1101 was only late: the cumulative ACK covers it, never resent, below RACK.fack (1301).
    send(r, { seq: 5001, ack: 1301, flags: ACK });
    assert.equal(r.conn.info().reorderingSeen, true);
    expectSent(r, []);
  });

  test('without reordering seen, DupThresh SACKed segments mark the hole lost at once (§6.2 step 4)', () => {
    const r = inFlight(5);
    advance(r, 10);
    send(r, { seq: 5001, ack: 1101, flags: ACK });
    for (const right of [1301, 1401, 1501]) send(r, { seq: 5001, ack: 1101, flags: ACK, sack: [[1201, right]] });
    expectSent(r, [out('ACK', 1101, 5001, 1024, 100)]);
    assert.equal(r.conn.info().reorderingSeen, false);
    assert.equal(r.conn.info().caState, 'recovery');
    assert.equal(r.host.t, 20);
  });
});

// ============================================================================= RFC 5681 §4.2

describe('delayed ACKs (RFC 5681 §4.2, RFC 9293 §3.8.6.3)', () => {
  const DELACK = { delayedAckMs: 40, receiveBufferSize: 8192 };

  test('one full-sized segment: the ACK waits exactly delayedAckMs', () => {
    const r = established({ config: DELACK });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1460) });
    expectSent(r, []);
    assert.equal(r.conn.deadline, 10 + 40);
    advance(r, 39);
    expectSent(r, []);
    advance(r, 1);
    assert.equal(r.host.t, 50);
    expectSent(r, [out('ACK', 1001, 6461, 8192 - 1460)]);
    assert.equal(r.conn.deadline, Infinity);
  });

  test('two full-sized segments: ACK at once (at least every second segment)', () => {
    const r = established({ config: DELACK });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(1460) });
    expectSent(r, []);
    send(r, { seq: 6461, ack: 1001, flags: ACK, payload: bytes(1460) });
    expectSent(r, [out('ACK', 1001, 7921, 8192 - 2920)]);
    assert.equal(r.conn.deadline, Infinity, 'the delayed-ACK timer is cancelled');
  });

  test('out-of-order data, a hole fill and a duplicate are acknowledged at once', () => {
    const r = established({ config: DELACK });
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    expectSent(r, [out('ACK', 1001, 5001, 8192)], 'out of order');
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    expectSent(r, [out('ACK', 1001, 5201, 8192 - 200)], 'fills the hole');
    send(r, { seq: 5101, ack: 1001, flags: ACK, payload: bytes(100) });
    expectSent(r, [out('ACK', 1001, 5201, 8192 - 200)], 'duplicate');
  });

  test('a FIN is acknowledged at once, even after delayed data', () => {
    const r = established({ config: DELACK });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    expectSent(r, []);
    send(r, { seq: 5101, ack: 1001, flags: FIN | ACK });
    // The FIN takes one sequence number of the window promised before it.
    expectSent(r, [out('ACK', 1001, 5102, 8192 - 101)]);
    assert.equal(r.conn.state, 'CLOSE-WAIT');
  });

  test('data we send carries the delayed ACK: no separate pure ACK', () => {
    const r = established({ config: DELACK });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    r.host.t = 20;
    r.conn.write(bytes(5));
    expectSent(r, [out('PSH,ACK', 1001, 5101, 8192 - 100, 5)]);
    send(r, { seq: 5101, ack: 1006, flags: ACK });
    advance(r, 100);
    expectSent(r, []);
  });

  test('delayedAckMs 0: every segment is acknowledged at once', () => {
    const r = established({ config: { receiveBufferSize: 8192 } });
    send(r, { seq: 5001, ack: 1001, flags: ACK, payload: bytes(100) });
    expectSent(r, [out('ACK', 1001, 5101, 8192 - 100)]);
  });
});

// ============================================================================ RFC 9293 §3.7.4

describe('Nagle (RFC 9293 §3.7.4); data.test.ts covers one held write and setNoDelay flushing it', () => {
  test('several small writes while data is in flight go out as one segment after the ACK', () => {
    const r = established();
    r.conn.write(bytes(10));
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10)]);
    r.conn.write(bytes(5));
    r.conn.write(bytes(5));
    r.conn.write(bytes(5));
    expectSent(r, []);
    send(r, { seq: 5001, ack: 1011, flags: ACK });
    expectSent(r, [out('PSH,ACK', 1011, 5001, 1024, 15)]);
  });

  test('with setNoDelay(true), each small write goes at once though data is in flight', () => {
    const r = established();
    r.conn.setNoDelay(true);
    r.conn.write(bytes(10));
    r.conn.write(bytes(5));
    r.conn.write(bytes(5));
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10), out('PSH,ACK', 1011, 5001, 1024, 5), out('PSH,ACK', 1016, 5001, 1024, 5)]);
  });

  test('setNoDelay(false) again: small writes are held again', () => {
    const r = established();
    r.conn.setNoDelay(true);
    r.conn.setNoDelay(false);
    r.conn.write(bytes(10));
    r.conn.write(bytes(5));
    expectSent(r, [out('PSH,ACK', 1001, 5001, 1024, 10)]);
  });
});

// ============================================================================== auto-tuning

describe('buffer auto-tuning', () => {
  const TUNE = { windowScaling: true, receiveBufferSize: 4096, receiveBufferMax: MiB };

  /**
   * The peer fills whatever window we offer, in 1460-byte segments, once per RTT (10 ms); the
   * application reads `readPerRtt` bytes after each flight. Returns the buffer size and the largest
   * window (bytes) we advertised after each round.
   */
  function run(r: Rig, shift: number, rounds: number, readPerRtt: number): Array<{ buf: number; wnd: number }> {
    let peerNxt = 5001;
    let right = 5001 + 4096;
    const trace: Array<{ buf: number; wnd: number }> = [];
    const hear = (): number => {
      let wnd = 0;
      for (const s of r.host.take()) {
        wnd = Math.max(wnd, s.win * 2 ** shift);
        right = Math.max(right, s.ack + s.win * 2 ** shift);
      }
      return wnd;
    };
    for (let round = 0; round < rounds; round++) {
      advance(r, 10);
      let wnd = 0;
      for (let n = 0; n < 2000 && peerNxt < right; n++) {
        const len = Math.min(1460, right - peerNxt);
        send(r, { seq: peerNxt, ack: 1001, flags: ACK, payload: bytes(len) });
        peerNxt += len;
        wnd = Math.max(wnd, hear());
      }
      if (readPerRtt > 0) r.conn.read(readPerRtt);
      wnd = Math.max(wnd, hear());
      trace.push({ buf: r.conn.info().rcvBufSize, wnd });
    }
    return trace;
  }

  test('a reader that keeps up: the buffer grows each RTT to 4× what it read (powers of two) up to receiveBufferMax, and the window with it', () => {
    const r = established({ peerWscale: 7, config: TUNE });
    assert.deepEqual(r.conn.info().windowScaling, { snd: 7, rcv: 5 });
    const trace = run(r, 5, 6, Infinity);
    assert.deepEqual(trace.map((t) => t.buf), [16384, 65536, 262144, MiB, MiB, MiB]);
    assert.ok(trace.at(-1)!.wnd > 65535, `advertised ${trace.at(-1)!.wnd}`);
    assert.ok(trace.at(-1)!.wnd <= MiB);
  });

  test('a reader that does not read: the buffer stays at its initial size and the window closes', () => {
    const r = established({ peerWscale: 7, config: TUNE });
    const trace = run(r, 5, 3, 0);
    assert.deepEqual(trace.map((t) => t.buf), [4096, 4096, 4096]);
    assert.equal(r.conn.info().rcvWnd, 0);
  });

  test('a slow reader (a quarter of the buffer per RTT or less): no growth', () => {
    const r = established({ peerWscale: 7, config: TUNE });
    const trace = run(r, 5, 4, 1024);
    assert.deepEqual(trace.map((t) => t.buf), [4096, 4096, 4096, 4096]);
  });

  test('without window scaling the buffer does not grow (the window could not follow)', () => {
    const r = established({ config: TUNE });
    assert.equal(r.conn.info().windowScaling, null);
    const trace = run(r, 0, 4, Infinity);
    assert.deepEqual(trace.map((t) => t.buf), [4096, 4096, 4096, 4096]);
  });

  test('the send buffer grows to 2·cwnd (a power of two) as ACKs arrive, up to sendBufferMax', () => {
    const r = established({ config: { sendBufferSize: 4096, sendBufferMax: MiB } });
    assert.equal(r.conn.write(bytes(8192)), 4096);
    r.host.take();
    send(r, { seq: 5001, ack: 2461, flags: ACK });
    const i = r.conn.info();
    assert.equal(i.cwnd, 14600);
    assert.equal(i.sndBufSize, 32768); // 2 · 14600 → 32768
    assert.equal(r.conn.writableSpace, 32768 - (4096 - 1460));
    const capped = established({ config: { sendBufferSize: 4096, sendBufferMax: 8192 } });
    capped.conn.write(bytes(4096));
    send(capped, { seq: 5001, ack: 2461, flags: ACK });
    assert.equal(capped.conn.info().sndBufSize, 8192);
  });
});

// ==================================================================================== bounds

describe('bounds', () => {
  test('a peer that never opens its window, answering every probe: setUserTimeout(T) aborts with ETIMEDOUT after ~T (RFC 5482, RFC 9293 §3.8.6.1)', () => {
    const r = established({ peerWindow: 0 });
    r.conn.setUserTimeout(5000);
    const t0 = r.host.t;
    r.conn.write(bytes(5));
    const state = (): string => r.conn.state;
    let probes = 0;
    for (let i = 0; i < 100 && state() !== 'CLOSED' && r.host.t - t0 < 60_000 && r.conn.deadline !== Infinity; i++) {
      fireNext(r);
      if (state() === 'CLOSED') break;
      probes += r.host.take().length;
      send(r, { seq: 5001, ack: 1001, flags: ACK, win: 0 });
    }
    assert.ok(probes >= 3, `${probes} probes answered`);
    assert.equal(state(), 'CLOSED', `still ${state()} at ${r.host.t - t0} ms`);
    assert.deepEqual(r.host.events.slice(-1), ['closed:ETIMEDOUT']);
    assert.equal(r.host.t - t0, 5000, 'from the moment the data started waiting on the closed window');
  });

  test('the SACK option: at most 4 blocks are written, and a longer option does not parse (RFC 2018 §3)', () => {
    const seg: TcpSegment = {
      srcPort: LOCAL_PORT, dstPort: REMOTE_PORT, seq: 1, ack: 1, flags: ACK, window: 1, urgent: 0,
      options: { sack: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]] }, payload: new Uint8Array(0),
    };
    const buf = new Uint8Array(60);
    const n = writeTcp(buf, 0, seg, 0);
    assert.equal(n, 20 + 36);
    const back = parseTcp(buf.subarray(0, n), 0, false);
    assert.ok(typeof back !== 'string');
    assert.deepEqual(back.options.sack, [[1, 2], [3, 4], [5, 6], [7, 8]]);
    // A SACK option claiming 5 blocks (42 bytes) cannot fit in 40 bytes of options: malformed.
    buf[12] = 15 << 4;
    buf.fill(1, 20, 60);
    buf[22] = 5;
    buf[23] = 42;
    assert.equal(parseTcp(buf.subarray(0, 60), 0, false), 'tcp-bad-options');
  });

  test('an ACK with more than 4 SACK blocks (no parser makes one) is applied safely, garbage ignored', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, {
      seq: 5001, ack: 1001, flags: ACK,
      sack: [[1101, 1201], [1301, 1401], [1201, 1101], [1501, 1551], [1701, 1801], [900, 950]],
    });
    const i = r.conn.info();
    assert.equal(i.sacked, 300, 'the three whole segments');
    assert.equal(i.state, 'ESTABLISHED');
    assert.equal(i.sndUna, 1001);
    send(r, { seq: 5001, ack: 2001, flags: ACK });
    assert.equal(r.conn.info().sacked, 0);
    assert.equal(r.conn.info().pipe, 0);
  });

  test('a SACK block above SND.NXT is ignored: it claims no reordering and no delivery', () => {
    const r = tenInFlight();
    advance(r, 10);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[3001, 4001]] });
    assert.equal(r.conn.info().sacked, 0);
    send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1201]] });
    assert.equal(r.conn.info().sacked, 100);
    assert.equal(r.conn.info().reorderingSeen, false, 'in-order delivery is not reordering');
  });

  test(`the retransmission queue holds at most MAX_RECORDS (${MAX_RECORDS}) segments`, () => {
    // MSS 1 byte: a segment per byte, so the bound is reached with a 32 KiB window.
    const r = established({ peerMss: 1, config: { sendBufferSize: 4 * MAX_RECORDS, sendBufferMax: 4 * MAX_RECORDS } });
    assert.equal(r.conn.write(bytes(4 * MAX_RECORDS)), 4 * MAX_RECORDS);
    // Slow start, one ACK per segment (cwnd doubles per round), until cwnd passes MAX_RECORDS bytes.
    for (let round = 0; round < 20 && r.conn.info().cwnd <= MAX_RECORDS; round++) {
      for (const s of r.host.take()) send(r, { seq: 5001, ack: s.seq + s.len, flags: ACK });
      assert.ok(r.conn.info().unacked <= MAX_RECORDS, `round ${round}: ${r.conn.info().unacked} segments out`);
    }
    r.host.take();
    const i = r.conn.info();
    assert.ok(i.cwnd > MAX_RECORDS + 1000, `cwnd ${i.cwnd}`);
    assert.ok(i.sndWnd > MAX_RECORDS + 1000 && i.sndBufUsed - i.unacked > 1000, 'window and data for more');
    assert.equal(i.unacked, MAX_RECORDS, 'only the queue bound holds the sender back');
  });
});

// ================================================================================== congestion

describe('congestion control through the connection', () => {
  test('IW = min(10·SMSS, max(2·SMSS, 14600)) (RFC 6928 §2): 10 segments of 1460', () => {
    const r = established({ config: { sendBufferSize: 65536 } });
    r.conn.write(bytes(30000));
    const sent = r.host.take();
    assert.deepEqual(sent.map((s) => s.len), Array(10).fill(1460));
    assert.equal(r.conn.info().cwnd, 14600);
  });

  test('IW with timestamps counts the effective SMSS: 10 × 1448 (RFC 6928 §2, RFC 6691)', () => {
    const r = established({ config: { timestamps: true, sendBufferSize: 65536 }, peerTsVal: 1 });
    r.conn.write(bytes(30000));
    assert.deepEqual(r.host.take().map((s) => s.len), Array(10).fill(1448));
    assert.equal(r.conn.info().cwnd, 14480);
  });

  test('IW with a large MSS is capped at 14600 bytes (RFC 6928 §2)', () => {
    const r = established({ peerMss: 4000, config: { linkMss: 8960, sendBufferSize: 65536 } });
    r.conn.write(bytes(30000));
    const sent = r.host.take();
    assert.equal(r.conn.info().cwnd, 14600);
    const flight = sent.reduce((n, s) => n + s.len, 0);
    assert.ok(flight <= 14600 && flight >= 12000, `flight ${flight}`);
  });

  /** MSS 100, cwnd 1000, 600 bytes (6 segments) in flight; 1001 lost and 1101..1401 SACKed. */
  function recoveryWith(cc: 'newreno' | 'cubic'): Rig {
    const r = established({ peerMss: 100, peerSackOk: true, config: { sack: true, congestionControl: cc } });
    r.conn.write(bytes(600));
    assert.equal(r.host.take().length, 6);
    advance(r, 10);
    for (const right of [1201, 1301, 1401]) send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, right]] });
    assert.equal(r.conn.info().caState, 'recovery');
    return r;
  }

  // In recovery the sending window is PRR's (RFC 6937 §3): pipe + sndcnt. Here pipe = 600 sent −
  // 300 SACKed − 100 lost = 200 is below ssthresh, so PRR-SSRB allows min(ssthresh − pipe,
  // max(prr_delivered − prr_out, DeliveredData) + MSS) = min(ssthresh − 200, 200). When recovery
  // ends, cwnd = ssthresh.
  test('CUBIC: entering recovery sets ssthresh = 0.7 × cwnd (RFC 9438 §4.6); PRR paces, then cwnd = ssthresh', () => {
    const r = recoveryWith('cubic');
    const i = r.conn.info();
    assert.equal(i.congestionControl, 'cubic');
    assert.equal(i.ssthresh, 700);
    assert.equal(i.cwnd, 200 + 200);
    send(r, { seq: 5001, ack: 1601, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().cwnd, 700);
  });

  test('NewReno: entering recovery sets ssthresh = FlightSize / 2 (RFC 6675 §5 (4.2), RFC 5681 eq. 4); PRR paces, then cwnd = ssthresh', () => {
    const r = recoveryWith('newreno');
    const i = r.conn.info();
    assert.equal(i.ssthresh, 300);
    assert.equal(i.cwnd, 200 + 100);
    send(r, { seq: 5001, ack: 1601, flags: ACK });
    assert.equal(r.conn.info().caState, 'open');
    assert.equal(r.conn.info().cwnd, 300);
  });

  for (const cc of ['newreno', 'cubic'] as const) {
    test(`${cc}: after an RTO cwnd = 1 SMSS, and only the first segment is resent (RFC 5681 §3.1, RFC 9438 §4.8)`, () => {
      const r = established({ config: { congestionControl: cc, timestamps: true, sendBufferSize: 65536 }, peerTsVal: 1 });
      r.conn.write(bytes(14480));
      assert.equal(r.host.take().length, 10);
      assert.equal(fireNext(r), 210);
      expectSent(r, [out('ACK', 1001, 5001, 1024, 1448)]);
      const i = r.conn.info();
      assert.equal(i.cwnd, 1448, 'one effective SMSS');
      assert.equal(i.ssthresh, cc === 'cubic' ? Math.floor(14480 * 0.7) : 7240);
      assert.equal(i.caState, 'loss');
      assert.equal(i.rtoExpirations, 1);
    });
  }
});

describe('user timeout (RFC 5482)', () => {
  test('covers a FIN that is never acknowledged: ETIMEDOUT after the timeout, not after all retries', () => {
    const r = established();
    r.conn.setUserTimeout(5000);
    r.conn.close();
    expectSent(r, [out('FIN,ACK', 1001, 5001, 1024)]);
    const t0 = r.host.t;
    advance(r, 6000);
    assert.equal(r.conn.state, 'CLOSED');
    assert.ok(r.host.events.includes('closed:ETIMEDOUT'), r.host.events.join(' '));
    assert.ok(r.host.states.some((s) => s.to === 'CLOSED' && s.cause.startsWith('user timeout')));
    assert.ok(r.host.t - t0 >= 5000);
  });
});

describe('Proportional Rate Reduction in fast recovery (RFC 6937)', () => {
  test('the fast retransmit goes at once; then about ssthresh/RecoverFS of what is delivered is sent, never a burst', () => {
    // Ten segments out, 1001 lost; the other nine are SACKed one ACK at a time, with more data
    // queued so that every sending opportunity can be seen.
    const r = inFlight(10, { congestionControl: 'newreno', sendBufferSize: 65536 });
    r.conn.write(bytes(2000));
    r.host.take();
    advance(r, 10);
    const perAck: Array<Array<[number, number]>> = [];
    for (let k = 1; k <= 9; k++) {
      send(r, { seq: 5001, ack: 1001, flags: ACK, sack: [[1101, 1101 + 100 * k]] });
      perAck.push(dataOf(r.host.take()));
    }
    const i = r.conn.info();
    // The first two SACKs grew cwnd by slow start (2 new segments each): FlightSize 1400 at the
    // third, which starts recovery with ssthresh 700 (RFC 6675 §5 (4.2)).
    assert.deepEqual(perAck.slice(0, 2).map((a) => a.length), [2, 2]);
    assert.equal(i.ssthresh, 700);
    // Entering recovery, pipe (1000) is above ssthresh, yet the lost segment is resent at once
    // (RFC 6675 §5 (4.3)), alone.
    assert.deepEqual(perAck[2], [[1001, 100]]);
    // Then PRR: 6 more ACKs deliver 600 bytes; sndcnt = ceil(prr_delivered × 700/1400) − prr_out
    // allows 2 more segments while pipe stays above ssthresh, one at a time.
    const later = perAck.slice(3).map((a) => a.length);
    assert.ok(later.every((n) => n <= 1), `no burst: ${later.join(' ')}`);
    assert.equal(later.reduce((a, b) => a + b, 0), 2, `per ACK: ${later.join(' ')}`);
  });
});
