/**
 * SYN cookies (RFC 4987 §3.6) and the SYN queue: the cookie codec (MSS table, the 64 s counter,
 * keying by tuple and secret, window scale and SACK in the TSval), the stack answering a full SYN
 * queue with cookies and rebuilding the connection from the ACK, forged ACKs dropped and counted, and
 * the acceptance test of issue 8: 200,000 spoofed SYNs leave the heap bounded while legitimate
 * clients, with and without timestamps, connect, exchange data and close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { VirtualClock } from '../../src/link/clock.js';
import type { LinkEnd } from '../../src/link/link.js';
import { MemoryLink } from '../../src/link/memory.js';
import { Stack } from '../../src/stack/stack.js';
import {
  COOKIE_PERIOD_MS, COOKIE_VALID_MS, MSS_TABLE_V4, MSS_TABLE_V6, SynCookies, decodeCookieTsecr, encodeCookieTsval,
  mssIndex, type CookieTsOptions,
} from '../../src/stack/syncookie.js';
import { windowScaleFor } from '../../src/tcp/connection.js';
import type { TcpConnection, TcpError, TcpInfo } from '../../src/tcp/user.js';
import { ACK, FIN, PSH, RST, SYN, type TcpOptions } from '../../src/wire/tcp.js';
import {
  PEER4, PEER6, US4, US6, addr, fixIpv4Checksum, fixTcpChecksum, harness, tcpPacket, type Harness, type Reply,
} from './raw.js';

// ============================================================== the codec

const KEYS = [0x01234567, 0x89abcdef, 0xdeadbeef, 0x0badf00d] as const;
const cookies = new SynCookies(...KEYS);
const L4 = addr('10.0.0.1');
const R4 = addr('198.51.100.7');
const L6 = addr('fd00::1');
const R6 = addr('2001:db8::7');
const P = COOKIE_PERIOD_MS;

test('MSS table: the largest entry not above the peer MSS, the first entry below them all (Linux msstab)', () => {
  assert.deepEqual(MSS_TABLE_V4, [536, 1300, 1440, 1460]);
  assert.deepEqual(MSS_TABLE_V6, [1220, 1420, 1440, 8940]);
  const v4: Array<[number, number]> = [[9000, 3], [1460, 3], [1459, 2], [1440, 2], [1439, 1], [1300, 1], [1299, 0], [536, 0], [100, 0]];
  for (const [mss, i] of v4) assert.equal(mssIndex(MSS_TABLE_V4, mss), i, `v4 MSS ${mss}`);
  const v6: Array<[number, number]> = [[65535, 3], [8940, 3], [1500, 2], [1440, 2], [1420, 1], [1419, 0], [1220, 0], [600, 0]];
  for (const [mss, i] of v6) assert.equal(mssIndex(MSS_TABLE_V6, mss), i, `v6 MSS ${mss}`);
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 1, max: 65535 });
const tuple = fc.boolean().chain((v6) => fc.record({
  local: fc.uint8Array({ minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
  remote: fc.uint8Array({ minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
  localPort: port,
  remotePort: port,
}));

test('a cookie gives back its MSS index during its own 64 s count and the next, and not before or after', () => {
  fc.assert(fc.property(tuple, u32, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 2 ** 30 }),
    fc.integer({ min: 0, max: P - 1 }), fc.integer({ min: 0, max: P - 1 }),
    (t, isn, index, count, at, later) => {
      const made = count * P + at;
      const c = cookies.make(made, t.local, t.localPort, t.remote, t.remotePort, isn, index);
      const check = (now: number): number => cookies.check(now, t.local, t.localPort, t.remote, t.remotePort, isn, c);
      assert.equal(check(made), index);
      assert.equal(check(count * P + later), index, 'same count');
      assert.equal(check((count + 1) * P + later), index, 'next count');
      assert.equal(check((count + 2) * P + later), -1, 'two counts later: stale');
      assert.equal(check((count - 1) * P + later), -1, 'a count before it was made');
    }), { seed: 8, numRuns: 300 });
});

test('the 8-bit count in the cookie rolls over: made in count 255, good in count 256, stale in 257', () => {
  for (const index of [0, 3]) {
    const c = cookies.make(255 * P + 10, L4, 80, R4, 40000, 12345, index);
    assert.equal(cookies.check(256 * P + 5, L4, 80, R4, 40000, 12345, c), index);
    assert.equal(cookies.check(257 * P, L4, 80, R4, 40000, 12345, c), -1);
    // A full wrap of the 8 bits later the count field matches again, but H1 is keyed by the full
    // count: still rejected.
    assert.equal(cookies.check(511 * P + 10, L4, 80, R4, 40000, 12345, c), -1);
  }
});

test('a cookie is not valid for another tuple, peer ISN or secret', () => {
  const other = new SynCookies(KEYS[0], KEYS[1], KEYS[2], KEYS[3] ^ 1);
  fc.assert(fc.property(tuple, u32, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 40 }),
    fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 0xffff }),
    (t, isn, index, now, which, delta) => {
      const c = cookies.make(now, t.local, t.localPort, t.remote, t.remotePort, isn, index);
      const local = Uint8Array.from(t.local);
      const remote = Uint8Array.from(t.remote);
      let { localPort, remotePort } = t;
      let peerIsn = isn;
      let codec = cookies;
      switch (which) {
        case 0: local[local.length - 1] ^= delta & 0xff || 1; break;
        case 1: remote[0] ^= delta & 0xff || 1; break;
        case 2: localPort = ((localPort - 1 + (delta % 65534 || 1)) % 65535) + 1; break;
        case 3: remotePort = ((remotePort - 1 + (delta % 65534 || 1)) % 65535) + 1; break;
        case 4: peerIsn = (isn + delta) >>> 0; break;
        default: codec = other;
      }
      assert.equal(codec.check(now, local, localPort, remote, remotePort, peerIsn, c), -1);
    }), { seed: 4987, numRuns: 600 });
});

test('guessing: of 200,000 random cookies for one tuple at most one passes (odds 2^-21 each)', () => {
  let x = 0x9e3779b9;
  let passed = 0;
  for (let i = 0; i < 200_000; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    if (cookies.check(7 * P, L6, 443, R6, 50000, 777, x >>> 0) >= 0) passed++;
  }
  assert.ok(passed <= 1, `${passed} random cookies passed`);
  // And the real one does, so the loop above was asking the right question.
  assert.equal(cookies.check(7 * P, L6, 443, R6, 50000, 777, cookies.make(7 * P, L6, 443, R6, 50000, 777, 2)), 2);
});

test('window scale and SACK-permitted ride in the 6 low bits of the TSval, which never runs ahead of the clock', () => {
  const clocks = [0, 5, 63, 64, 65, 1_000_000, 0x7fffffff, 0xffffffc0, 0xffffffff];
  for (const tsval of clocks) {
    for (const wscale of [null, 0, 1, 7, 9, 14] as const) {
      for (const sack of [false, true]) {
        const o: CookieTsOptions = { wscale, sack };
        const v = encodeCookieTsval(tsval, o);
        assert.deepEqual(decodeCookieTsecr(v), o, `tsval ${tsval} ${JSON.stringify(o)}`);
        // RFC 7323 §5.4: the TSvals that follow (≥ tsval) must not be older than this one.
        assert.ok(((tsval - v) >>> 0) < 64, `tsval ${tsval}: encoded ${v} is ${(tsval - v) >>> 0} behind`);
      }
    }
  }
  // A shift above 14 is used as 14 (RFC 7323 §2.3).
  assert.deepEqual(decodeCookieTsecr(encodeCookieTsval(1000, { wscale: 15, sack: false })), { wscale: 14, sack: false });
});

// ============================================================== the stack, with raw packets

const SYN_OPTIONS: TcpOptions = { mss: 1400, wscale: 9, sackPermitted: true, timestamp: { val: 1000, ecr: 0 } };
const OUR_WSCALE = windowScaleFor(6 * 1024 * 1024);

function synAck(h: Harness, src: string, dst: string, srcPort: number, seq: number, options: TcpOptions): Reply {
  h.inject(tcpPacket(src, dst, { srcPort, dstPort: 80, seq, flags: SYN, options }));
  const r = h.takeTcp();
  assert.equal(r.length, 1, 'one reply to the SYN');
  assert.equal(r[0]!.seg.flags, SYN | ACK);
  assert.equal(r[0]!.seg.ack, (seq + 1) >>> 0);
  return r[0]!;
}

for (const [family, peer, us, table] of [['IPv4', PEER4, US4, MSS_TABLE_V4], ['IPv6', PEER6, US6, MSS_TABLE_V6]] as const) {
  test(`${family}: with synBacklog 0 a SYN gets a cookie and no state; the ACK rebuilds MSS, window scale, SACK and timestamps`, () => {
    const h = harness();
    const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
    const sa = synAck(h, peer, us, 40000, 5000, SYN_OPTIONS);
    assert.equal(h.stack.connections().length, 0, 'nothing kept for the SYN');
    const o = sa.seg.options;
    assert.equal(o.mss, family === 'IPv4' ? 1460 : 1440);
    assert.equal(o.sackPermitted, true);
    assert.equal(o.wscale, OUR_WSCALE);
    assert.equal(o.timestamp?.ecr, 1000);
    assert.equal(o.timestamp!.val & 0x1f, 0x10 | 9, 'peer shift 9 and SACK in the low bits');
    assert.equal(sa.seg.window, 65535);
    assert.equal(h.stack.counters.synCookiesSent, 1);
    assert.equal(h.stack.counters.synQueueOverflows, 1);
    assert.equal(h.stack.counters.passiveOpens, 0);

    const cookie = sa.seg.seq;
    const tsval = o.timestamp!.val;
    h.clock.advanceSync(30);
    h.inject(tcpPacket(peer, us, {
      srcPort: 40000, dstPort: 80, seq: 5001, ack: (cookie + 1) >>> 0, flags: ACK | PSH, window: 1000,
      options: { timestamp: { val: 1030, ecr: tsval } }, payload: 'hello',
    }));
    const c = l.accept();
    assert.ok(c !== null, 'the connection reached the accept queue');
    assert.equal(c.state, 'ESTABLISHED');
    assert.equal(new TextDecoder().decode(c.read()!), 'hello');
    const info = (c as unknown as { info(): TcpInfo }).info();
    assert.equal(info.iss, cookie);
    assert.equal(info.irs, 5000);
    // Peer MSS 1400 is carried as the table entry below it, less the timestamp option (RFC 6691).
    assert.equal(info.sndMss, table[mssIndex(table, 1400)]! - 12);
    assert.deepEqual(info.windowScaling, { snd: 9, rcv: OUR_WSCALE });
    assert.equal(info.sack, true);
    assert.equal(info.timestamps, true);
    assert.equal(info.sndWnd, 1000 * 2 ** 9, 'the ACK window, scaled');
    assert.equal(h.stack.counters.synCookiesValid, 1);
    assert.equal(h.stack.counters.passiveOpens, 1);

    // Our side: data goes out from ISS + 1, acknowledging the 5 bytes, on the same timestamp clock.
    assert.equal(c.write(new TextEncoder().encode('world')), 5);
    const out = h.takeTcp().filter((r) => r.seg.payload.length > 0);
    assert.equal(out.length, 1);
    const d = out[0]!.seg;
    assert.equal(d.seq, (cookie + 1) >>> 0);
    assert.equal(d.ack, 5006);
    assert.equal(d.options.timestamp?.ecr, 1030);
    const ahead = (d.options.timestamp!.val - tsval) >>> 0;
    assert.ok(ahead >= 30 && ahead < 30 + 64, `TSval moved ${ahead} ticks in 30 ms`);
    assert.equal(h.stack.counters.synCookiesFailed, 0);
    assert.equal(h.stack.counters.rstOut, 0);
  });
}

test('without timestamps the cookie SYN,ACK offers only MSS, and the connection runs without window scaling and SACK', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
  const sa = synAck(h, PEER4, US4, 40001, 7000, { mss: 1460, wscale: 9, sackPermitted: true });
  assert.deepEqual(sa.seg.options, { mss: 1460 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 40001, dstPort: 80, seq: 7001, ack: (sa.seg.seq + 1) >>> 0, flags: ACK, window: 30000 }));
  const c = l.accept();
  assert.equal(c?.state, 'ESTABLISHED');
  const info = (c as unknown as { info(): TcpInfo }).info();
  assert.equal(info.windowScaling, null);
  assert.equal(info.sack, false);
  assert.equal(info.timestamps, false);
  assert.equal(info.sndMss, 1460);
  assert.equal(info.sndWnd, 30000, 'unscaled');
});

test('timestamps without window scale or SACK: the TSval says "none", and none is used', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
  const sa = synAck(h, PEER4, US4, 40002, 9000, { timestamp: { val: 77, ecr: 0 } });
  assert.equal(sa.seg.options.wscale, undefined);
  assert.equal(sa.seg.options.sackPermitted, undefined);
  assert.equal(sa.seg.options.mss, 1460);
  assert.equal(sa.seg.options.timestamp!.val & 0x3f, 0x0f);
  h.inject(tcpPacket(PEER4, US4, {
    srcPort: 40002, dstPort: 80, seq: 9001, ack: (sa.seg.seq + 1) >>> 0, flags: ACK,
    options: { timestamp: { val: 78, ecr: sa.seg.options.timestamp!.val } },
  }));
  const info = (l.accept() as unknown as { info(): TcpInfo }).info();
  assert.equal(info.state, 'ESTABLISHED');
  assert.equal(info.windowScaling, null);
  assert.equal(info.sack, false);
  assert.equal(info.timestamps, true);
  // No MSS option: 536 (RFC 9293 §3.7.1), table entry 0, less 12 for timestamps.
  assert.equal(info.sndMss, 536 - 12);
});

test('forged ACKs (wrong cookie, another port\'s cookie, another peer ISN) are counted and reset, as any bad ACK in LISTEN (like Linux)', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
  const sa = synAck(h, PEER4, US4, 41000, 100, { mss: 1460 });
  const cookie = sa.seg.seq;
  const forged = [
    { srcPort: 41000, seq: 101, ack: (cookie + 2) >>> 0 },
    { srcPort: 41000, seq: 101, ack: (cookie ^ 0x80000000) >>> 0 },
    { srcPort: 41001, seq: 101, ack: (cookie + 1) >>> 0 },
    { srcPort: 41000, seq: 102, ack: (cookie + 1) >>> 0 },
  ];
  for (const [i, f] of forged.entries()) {
    h.inject(tcpPacket(PEER4, US4, { ...f, dstPort: 80, flags: ACK, payload: 'GET /' }));
    // RFC 9293 §3.10.7.2: <SEQ=SEG.ACK><CTL=RST>, and no connection made.
    assert.deepEqual(h.takeTcp().map((r) => [r.seg.flags, r.seg.seq]), [[RST, f.ack]], `forged ACK ${i}`);
    assert.equal(h.stack.counters.synCookiesFailed, i + 1);
  }
  assert.deepEqual(h.stack.counters.drops, { 'tcp-bad-syn-cookie': forged.length });
  assert.equal(h.stack.counters.rstOut, forged.length);
  assert.equal(h.stack.connections().length, 0);
  assert.equal(l.accept(), null);
  // The right one still works.
  h.inject(tcpPacket(PEER4, US4, { srcPort: 41000, dstPort: 80, seq: 101, ack: (cookie + 1) >>> 0, flags: ACK }));
  assert.equal(l.accept()?.state, 'ESTABLISHED');
  assert.equal(h.stack.counters.synCookiesValid, 1);
});

test('cookie lifetime: good in the next 64 s count, stale after; 128 s after the last cookie, ACKs get the RFC 9293 RST again', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
  h.clock.advanceSync(1000);
  const a = synAck(h, PEER4, US4, 42001, 1, { mss: 1460 }).seg.seq;
  const b = synAck(h, PEER4, US4, 42002, 1, { mss: 1460 }).seg.seq;
  const ack = (srcPort: number, cookie: number): Uint8Array =>
    tcpPacket(PEER4, US4, { srcPort, dstPort: 80, seq: 2, ack: (cookie + 1) >>> 0, flags: ACK });
  // Made in count 0, checked in count 1.
  h.clock.advanceSync(P + 10_000);
  assert.equal(Math.floor(h.clock.now() / P), 1);
  h.inject(ack(42001, a));
  assert.equal(l.accept()?.state, 'ESTABLISHED');
  // Count 2: a new SYN keeps cookies "recent", and b's cookie (count 0) is stale: counted, reset.
  h.clock.advanceSync(P);
  synAck(h, PEER4, US4, 42003, 1, { mss: 1460 });
  h.inject(ack(42002, b));
  assert.deepEqual(h.takeTcp().map((x) => x.seg.flags), [RST]);
  assert.equal(h.stack.counters.synCookiesFailed, 1);
  assert.equal(l.accept(), null);
  // No cookie for COOKIE_VALID_MS: an ACK is a bad ACK in LISTEN again, <SEQ=SEG.ACK><CTL=RST>.
  h.clock.advanceSync(COOKIE_VALID_MS + 1);
  h.inject(ack(42002, b));
  const r = h.takeTcp();
  assert.equal(r.length, 1);
  assert.equal(r[0]!.seg.flags, RST);
  assert.equal(r[0]!.seg.seq, (b + 1) >>> 0);
  assert.equal(h.stack.counters.synCookiesFailed, 1, 'not checked as a cookie');
});

test('a listener that never sent a cookie answers an ACK with a RST, as before (no cookie check)', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 43000, dstPort: 80, seq: 1, ack: 12345, flags: ACK }));
  const r = h.takeTcp();
  assert.deepEqual(r.map((x) => [x.seg.flags, x.seg.seq]), [[RST, 12345]]);
  assert.equal(h.stack.counters.synCookiesFailed, 0);
});

test('the accept queue still bounds the listener: a good cookie ACK finding it full is dropped; after accept() a retransmission gets in', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, backlog: 1, synBacklog: 0 });
  const c1 = synAck(h, PEER4, US4, 44001, 10, { mss: 1460 }).seg.seq;
  const c2 = synAck(h, PEER4, US4, 44002, 20, { mss: 1460 }).seg.seq;
  h.inject(tcpPacket(PEER4, US4, { srcPort: 44001, dstPort: 80, seq: 11, ack: (c1 + 1) >>> 0, flags: ACK }));
  const second = tcpPacket(PEER4, US4, { srcPort: 44002, dstPort: 80, seq: 21, ack: (c2 + 1) >>> 0, flags: ACK | PSH, payload: 'data' });
  h.inject(second);
  assert.equal(h.take().length, 0);
  assert.equal(h.stack.connections().length, 1);
  assert.equal(h.stack.counters.synCookiesValid, 2);
  assert.equal(h.stack.counters.listenOverflows, 1);
  // A SYN now is dropped too (accept queue full), with or without cookies.
  h.inject(tcpPacket(PEER4, US4, { srcPort: 44003, dstPort: 80, seq: 30, flags: SYN }));
  assert.equal(h.take().length, 0);
  assert.equal(h.stack.counters.listenOverflows, 2);
  assert.equal(l.accept()?.remotePort, 44001);
  h.inject(second.slice());
  const c = l.accept();
  assert.equal(c?.remotePort, 44002);
  assert.equal(new TextDecoder().decode(c!.read()!), 'data');
});

test('the SYN queue: max(backlog, 128) half-open by default, then cookies; synBacklog sets it; without cookies the SYN is dropped', () => {
  const run = (opts: { synCookies?: boolean; synBacklog?: number }, syns: number) => {
    const h = harness(opts.synCookies === undefined ? {} : { synCookies: opts.synCookies });
    h.stack.tcpListen({ port: 80, backlog: 1, ...(opts.synBacklog !== undefined ? { synBacklog: opts.synBacklog } : {}) });
    for (let i = 0; i < syns; i++) h.inject(tcpPacket(PEER4, US4, { srcPort: 20000 + i, dstPort: 80, seq: i, flags: SYN }));
    return { h, replies: h.takeTcp() };
  };
  const def = run({}, 130);
  assert.equal(def.replies.length, 130);
  assert.ok(def.replies.every((r) => r.seg.flags === (SYN | ACK)));
  assert.equal(def.h.stack.connections().length, 128);
  assert.equal(def.h.stack.counters.synCookiesSent, 2);
  assert.equal(def.h.stack.counters.synQueueOverflows, 2);
  assert.equal(def.h.stack.counters.listenOverflows, 0);

  const three = run({ synBacklog: 3 }, 5);
  assert.equal(three.h.stack.connections().length, 3);
  assert.equal(three.h.stack.counters.synCookiesSent, 2);

  const off = run({ synCookies: false }, 129);
  assert.equal(off.replies.length, 128);
  assert.equal(off.h.stack.connections().length, 128);
  assert.equal(off.h.stack.counters.listenOverflows, 1);
  assert.equal(off.h.stack.counters.synQueueOverflows, 1);
  assert.equal(off.h.stack.counters.synCookiesSent, 0);
  assert.deepEqual(off.h.stack.counters.drops, { 'tcp-listen-overflow': 1 });
  // Without cookies an ACK to the listener is a bad ACK in LISTEN, however recent the overflow.
  off.h.inject(tcpPacket(PEER4, US4, { srcPort: 30000, dstPort: 80, seq: 1, ack: 99, flags: ACK }));
  assert.equal(off.h.takeTcp()[0]?.seg.flags, RST);

  assert.throws(() => harness().stack.tcpListen({ port: 80, synBacklog: -1 }), /synBacklog/);
  assert.throws(() => harness().stack.tcpListen({ port: 80, synBacklog: Number.NaN }), /synBacklog/);
});

test('a cookie ACK carrying FIN: the connection is built and goes straight to CLOSE-WAIT', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, synBacklog: 0 });
  const cookie = synAck(h, PEER4, US4, 45000, 500, { mss: 1460 }).seg.seq;
  h.inject(tcpPacket(PEER4, US4, { srcPort: 45000, dstPort: 80, seq: 501, ack: (cookie + 1) >>> 0, flags: ACK | FIN | PSH, payload: 'bye' }));
  const c = l.accept()!;
  assert.equal(c.state, 'CLOSE-WAIT');
  assert.equal(new TextDecoder().decode(c.read()!), 'bye');
  const r = h.takeTcp();
  assert.ok(r.some((x) => x.seg.flags === ACK && x.seg.ack === 505), 'data and FIN acknowledged');
});

// ============================================================== issue 8: the flood

/** A second hop behind the server's MemoryLink end: packets go to the client whose address they carry. */
class HubPort implements LinkEnd {
  readonly mtu = 1500;
  receiver: ((p: Uint8Array) => void) | null = null;
  constructor(private readonly up: LinkEnd) {}
  send(p: Uint8Array): void {
    this.up.send(p);
  }
  onPacket(fn: (p: Uint8Array) => void): void {
    this.receiver = fn;
  }
}

function bestEffortGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = vm.runInNewContext('gc') as unknown;
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

const SERVER4 = '10.0.0.1';
const SERVER6 = 'fd00::1';
const CLIENT_A = '10.0.0.2'; // timestamps, window scaling, SACK
const CLIENT_B = 'fd00::2'; // timestamps off
const FLOOD = 200_000;
const FLOOD_MS = 4000;
const MIB = 1024 * 1024;

test('issue 8: 200,000 spoofed SYNs grow the heap < 64 MiB, and clients with and without timestamps connect, echo and close meanwhile', { timeout: 120_000 }, (t) => {
  const gc = bestEffortGc();
  const clock = new VirtualClock();
  const [serverEnd, hubEnd] = MemoryLink.pair({ clock, delayMs: 1 });
  const server = new Stack({ link: serverEnd, addresses: [`${SERVER4}/24`, `${SERVER6}/64`], clock, name: 'server', seed: 11 });
  const portA = new HubPort(hubEnd);
  const portB = new HubPort(hubEnd);
  const a = new Stack({ link: portA, addresses: [`${CLIENT_A}/24`], clock, name: 'a', seed: 12 });
  const b = new Stack({ link: portB, addresses: [`${CLIENT_B}/64`], clock, name: 'b', seed: 13, timestamps: false });
  const bBytes = addr(CLIENT_B);
  let toSpoofed = 0;
  hubEnd.onPacket((p) => {
    if (p[0]! >>> 4 === 4 && p[16] === 10 && p[17] === 0 && p[18] === 0 && p[19] === 2) portA.receiver?.(p);
    else if (p[0]! >>> 4 === 6 && bBytes.every((x, i) => p[24 + i] === x)) portB.receiver?.(p);
    else toSpoofed++;
  });

  // The server: an echo service; what each connection negotiated is noted when it is handed over.
  const l = server.tcpListen({ port: 80 });
  const negotiated = new Map<string, TcpInfo>();
  const serverClosed: Array<TcpError | null> = [];
  l.onConnection = (c) => {
    negotiated.set(c.remoteAddress, (c as unknown as { info(): TcpInfo }).info());
    c.events = {
      onReadable: () => {
        const d = c.read();
        if (d !== null) assert.equal(c.write(d), d.length);
      },
      onEnd: () => c.close(),
      onClosed: (e) => serverClosed.push(e),
    };
  };

  const TEXT = 'x'.repeat(20_000) + ' through the flood';
  const client = (s: Stack, host: string) => {
    const out = { got: '', closedAt: -1, error: null as TcpError | null, conn: null as TcpConnection | null };
    const bytes = new TextEncoder().encode(TEXT);
    let sent = 0;
    const c = s.tcpConnect({ host, port: 80 });
    out.conn = c;
    const pump = (): void => {
      while (sent < bytes.length) {
        const n = c.write(bytes.subarray(sent));
        if (n === 0) return;
        sent += n;
      }
    };
    c.events = {
      onEstablished: pump,
      onWritable: pump,
      onReadable: () => {
        out.got += new TextDecoder().decode(c.read()!);
        if (out.got.length === TEXT.length) c.close();
      },
      onClosed: (e) => {
        out.closedAt = clock.now();
        out.error = e;
      },
    };
    return out;
  };

  // Spoofed SYNs from 198.18.0.0/15 and 2001:db8::/32 (RFC 2544, RFC 3849), random ports and ISNs,
  // with the options a real client sends.
  const opts: TcpOptions = { mss: 1460, sackPermitted: true, timestamp: { val: 1, ecr: 0 }, wscale: 7 };
  const t4 = tcpPacket('198.18.0.1', SERVER4, { srcPort: 1, dstPort: 80, seq: 0, flags: SYN, options: opts });
  const t6 = tcpPacket('2001:db8::1', SERVER6, { srcPort: 1, dstPort: 80, seq: 0, flags: SYN, options: opts });
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return x >>> 0;
  };
  // Tuples are distinct by construction (a SYN that hit a half-open connection's tuple would get
  // that connection's ACK, not a cookie, and blur the count below).
  const spoofed = (i: number): Uint8Array => {
    const v6 = i % 4 === 3;
    const p = (v6 ? t6 : t4).slice();
    const hl = v6 ? 40 : 20;
    let srcPort = 1024 + (rnd() % 60000);
    if (v6) {
      new DataView(p.buffer).setUint32(8 + 4, rnd());
      new DataView(p.buffer).setUint32(8 + 12, i);
    } else {
      // 2^17 addresses, permuted (an odd multiplier is a bijection mod 2^17); a second lap of the
      // addresses takes the upper half of the port range.
      const a = Math.imul(i, 0x9e37) & 0x1ffff;
      p[12] = 198; p[13] = 18 | (a >>> 16); p[14] = (a >>> 8) & 0xff; p[15] = a & 0xff;
      srcPort = 1024 + (i >= 0x20000 ? 30000 : 0) + (srcPort % 30000);
      fixIpv4Checksum(p);
    }
    const dv = new DataView(p.buffer, hl);
    dv.setUint16(0, srcPort);
    dv.setUint32(4, rnd());
    fixTcpChecksum(p);
    return p;
  };

  gc?.(); gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPeak = heapBefore;
  let maxConns = 0;
  const started = performance.now();
  let ca: ReturnType<typeof client> | null = null;
  let cb: ReturnType<typeof client> | null = null;
  const perMs = FLOOD / FLOOD_MS;
  for (let ms = 0; ms < FLOOD_MS; ms++) {
    if (ms === 1000) ca = client(a, SERVER4);
    if (ms === 1500) cb = client(b, SERVER6);
    for (let k = 0; k < perMs; k++) hubEnd.send(spoofed(ms * perMs + k));
    clock.advanceSync(1);
    if (ms % 200 === 0) {
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      maxConns = Math.max(maxConns, server.connections().length);
    }
  }
  clock.advanceSync(100);
  const floodSeconds = (performance.now() - started) / 1000;
  gc?.(); gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const growth = heapAfter - heapBefore;
  const c = server.counters;
  const report = `heap ${(heapBefore / MIB).toFixed(1)} → ${(heapAfter / MIB).toFixed(1)} MiB ` +
    `(growth ${(growth / MIB).toFixed(1)} MiB, peak without gc ${(heapPeak / MIB).toFixed(1)} MiB, gc ${gc ? 'yes' : 'no'}); ` +
    `${FLOOD} SYNs in ${floodSeconds.toFixed(1)} s; cookies sent ${c.synCookiesSent}, valid ${c.synCookiesValid}, ` +
    `failed ${c.synCookiesFailed}; half-open max ${maxConns}; passive opens ${c.passiveOpens}; tcpIn ${c.tcpIn}`;
  t.diagnostic(report);

  // Memory: the SYN queue is full of spoofed half-open connections (511, the default backlog), and
  // everything beyond it was answered with a cookie and forgotten.
  assert.ok(growth < 64 * MIB, report);
  assert.ok(maxConns <= 511 + 2, report);
  assert.equal(c.synCookiesSent, FLOOD + 2 - 511, 'every SYN past the 511 half-open got a cookie, the clients\' too');
  assert.equal(c.synQueueOverflows, c.synCookiesSent);
  assert.equal(c.synCookiesValid, 2);
  assert.equal(c.synCookiesFailed, 0);
  assert.equal(c.listenOverflows, 0);
  assert.ok(toSpoofed >= c.synCookiesSent - 2, 'the cookie SYN,ACKs went out (to the spoofed sources)');

  // The clients: echoed, closed cleanly, during the flood.
  for (const [name, cl] of [['A (timestamps)', ca], ['B (no timestamps)', cb]] as const) {
    assert.ok(cl !== null);
    assert.equal(cl.got.length, TEXT.length, `${name}: echo complete`);
    assert.equal(cl.got, TEXT);
    assert.equal(cl.error, null, `${name}: closed cleanly`);
    assert.ok(cl.closedAt > 0 && cl.closedAt < FLOOD_MS, `${name}: done at ${cl.closedAt} ms, during the flood`);
  }
  assert.deepEqual(serverClosed, [null, null]);
  // Each connection came from a cookie, with what its SYN offered.
  const na = negotiated.get(CLIENT_A)!;
  assert.equal(na.timestamps, true);
  assert.equal(na.sack, true);
  assert.ok(na.windowScaling !== null && na.windowScaling.snd === windowScaleFor(6 * 1024 * 1024));
  assert.equal(na.sndMss, 1460 - 12);
  const nb = negotiated.get(CLIENT_B)!;
  assert.equal(nb.timestamps, false);
  assert.equal(nb.sack, false);
  assert.equal(nb.windowScaling, null);
  assert.equal(nb.sndMss, 1440);
  assert.deepEqual(a.counters.drops, {});
});
