/**
 * Resource attacks (issue 8): a peer that punches holes with 1-byte segments, or advertises a zero
 * window forever, must not grow memory or CPU without bound. Driven by raw packets (test/stack/raw.ts)
 * in virtual time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RANGES } from '../../src/tcp/reassembly.js';
import { ACK, SYN } from '../../src/wire/tcp.js';
import type { TcpConnection } from '../../src/tcp/user.js';
import { PEER4, US4, handshake, harness, tcpPacket } from './raw.js';

const byteAt = (i: number): number => (i * 7 + 3) & 0xff;

function drain(c: TcpConnection): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = c.read(); d !== null; d = c.read()) out.push(d);
  return out;
}

test('1-byte segments punching holes across the whole window: at most MAX_RANGES held, memory bounded, state intact', () => {
  const h = harness({ traced: false });
  const l = h.stack.tcpListen({ port: 80 });
  const { peerNxt, ourNxt } = handshake(h, PEER4, US4, 49000, 80);
  const c = l.accept()!;
  h.take();
  const window = 65535;
  const started = performance.now();
  // Every other byte of the window, from the far end backwards (the worst order for a sorted list).
  let segments = 0;
  for (let off = window - 1; off >= 1; off -= 2) {
    h.peer.send(tcpPacket(PEER4, US4, { srcPort: 49000, dstPort: 80, seq: (peerNxt + off) >>> 0, ack: ourNxt, flags: ACK, payload: Uint8Array.of(byteAt(off)) }));
    segments++;
    if (segments % 1024 === 0) h.clock.advanceSync(0);
  }
  h.clock.advanceSync(0);
  const ms = performance.now() - started;
  const dupAcks = h.takeTcp();
  const info = c.info();
  assert.equal(h.stack.counters.internalErrors, 0);
  assert.ok(info.rcvBufSize <= 6 * 1024 * 1024, `receive buffer ${info.rcvBufSize}`);
  // Each out-of-order segment is answered at once (RFC 5681 §4.2), with SACK blocks of at most
  // MAX_RANGES held ranges; the rest are dropped, not queued.
  assert.equal(dupAcks.length, segments);
  assert.ok(dupAcks.every((r) => r.seg.ack === peerNxt), 'nothing in order yet');
  assert.ok(ms < 5000, `${segments} segments took ${ms.toFixed(0)} ms`);
  // Then the whole window in order, in full-sized segments: every byte arrives once, in order.
  for (let off = 0; off < window; off += 1460) {
    const n = Math.min(1460, window - off);
    const payload = Uint8Array.from({ length: n }, (_, i) => byteAt(off + i));
    h.inject(tcpPacket(PEER4, US4, { srcPort: 49000, dstPort: 80, seq: (peerNxt + off) >>> 0, ack: ourNxt, flags: ACK, payload }));
    // The application reads as it goes, as a real one would.
    const got = drain(c);
    void got;
  }
  h.take();
  assert.equal(c.info().bytesReceived, window);
  assert.equal(h.stack.counters.internalErrors, 0);
  assert.ok(MAX_RANGES <= 64);
});

test('a peer that advertises a zero window forever: our probes back off, the send buffer stays bounded, nothing times out', () => {
  const h = harness({ traced: false, sendBufferMax: 1 << 20 });
  const c = h.stack.tcpConnect({ host: PEER4, port: 80 });
  const syn = h.takeTcp()[0]!;
  const peerIss = 9000;
  // SYN,ACK with a zero window: the connection opens, but no data may be sent.
  h.inject(tcpPacket(PEER4, US4, { srcPort: 80, dstPort: syn.seg.srcPort, seq: peerIss, ack: (syn.seg.seq + 1) >>> 0, flags: SYN | ACK, window: 0, options: { mss: 1460 } }));
  h.take();
  assert.equal(c.state, 'ESTABLISHED');
  // The application writes far more than any buffer: what is taken is bounded.
  const chunk = new Uint8Array(64 * 1024);
  let taken = 0;
  for (let i = 0; i < 256; i++) taken += c.write(chunk);
  assert.ok(taken <= 1 << 20, `send buffer took ${taken}`);
  // One hour of a peer answering every probe with a zero window.
  let probes = 0;
  const hour = 3600_000;
  for (let t = 0; t < hour; t += 1000) {
    h.clock.advanceSync(1000);
    for (const r of h.takeTcp()) {
      // Linux's probe, which we send: an empty segment at SND.UNA − 1 that must draw an ACK.
      probes++;
      assert.ok(r.seg.payload.length <= 1, 'a probe carries at most one byte');
      h.inject(tcpPacket(PEER4, US4, { srcPort: 80, dstPort: syn.seg.srcPort, seq: peerIss + 1, ack: (syn.seg.seq + 1) >>> 0, flags: ACK, window: 0 }));
    }
  }
  assert.equal(c.state, 'ESTABLISHED', 'a peer that answers its probes is alive (RFC 9293 §3.8.6.1)');
  // Backed-off probes: at most one a minute or two after the first few (Linux caps at 120 s).
  assert.ok(probes >= 20 && probes <= 120, `${probes} probes in an hour`);
  assert.ok(c.info().sndBufSize <= 1 << 20);
  assert.equal(h.stack.counters.internalErrors, 0);
});
