/**
 * The stack layer: RST for closed ports (RFC 9293 §3.10.7.1), LISTEN (§3.10.7.2), ports (RFC 6056),
 * ISNs (RFC 6528), ICMP echo and errors, trace events, TIME-WAIT reuse, the RFC 5961 §7 challenge-ACK
 * limit, and whole connections between two stacks in virtual time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/link/clock.js';
import { EPHEMERAL_MAX, EPHEMERAL_MIN } from '../../src/stack/ports.js';
import { Stack } from '../../src/stack/stack.js';
import { IsnGenerator } from '../../src/tcp/isn.js';
import { TcpError, type TcpConnection, type TcpErrorCode } from '../../src/tcp/user.js';
import type { TraceEvent } from '../../src/trace/events.js';
import type { LinkEnd } from '../../src/link/link.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import {
  ICMPV4_DEST_UNREACHABLE, ICMPV6_DEST_UNREACHABLE, parseIcmpv4, parseIcmpv6, writeIcmpEcho, writeIcmpError,
  icmpErrorLength,
} from '../../src/wire/icmp.js';
import { parseIpPacket, PROTO_ICMP, PROTO_ICMPV6 } from '../../src/wire/ip.js';
import { ACK, FIN, PSH, RST, SYN } from '../../src/wire/tcp.js';
import {
  PEER4, PEER6, US4, US6, addr, handshake, harness, ipPacket, parseReply, tcpPacket, type Harness,
} from './raw.js';

function codeOf(fn: () => unknown): TcpErrorCode | 'no error' {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcpError, `expected a TcpError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

// ============================================================== RFC 9293 §3.10.7.1: CLOSED

for (const [family, peer, us] of [['IPv4', PEER4, US4], ['IPv6', PEER6, US6]] as const) {
  test(`${family}: a segment with ACK to a closed port gets <SEQ=SEG.ACK><CTL=RST>`, () => {
    const h = harness();
    h.inject(tcpPacket(peer, us, { srcPort: 40001, dstPort: 81, seq: 777, ack: 0xdeadbeef, flags: ACK | PSH, payload: 'data' }));
    const replies = h.takeTcp();
    assert.equal(replies.length, 1);
    const { ip, seg } = replies[0]!;
    assert.equal(ip.version, family === 'IPv4' ? 4 : 6);
    assert.deepEqual([...ip.src], [...addr(us)]);
    assert.deepEqual([...ip.dst], [...addr(peer)]);
    assert.equal(seg.srcPort, 81);
    assert.equal(seg.dstPort, 40001);
    assert.equal(seg.seq, 0xdeadbeef);
    assert.equal(seg.ack, 0);
    assert.equal(seg.flags, RST, 'RST alone, no ACK');
    assert.equal(seg.payload.length, 0);
    assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 });
    assert.equal(h.stack.counters.rstOut, 1);
    assert.equal(h.stack.connections().length, 0);
  });

  test(`${family}: a segment without ACK to a closed port gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`, () => {
    const h = harness();
    const cases: Array<[string, number, number, string, number]> = [
      ['SYN', 1000, SYN, '', 1001],
      ['SYN with 5 bytes and FIN', 1000, SYN | FIN, 'hello', 1007],
      ['bare FIN', 2000, FIN, '', 2001],
      ['data alone', 3000, PSH, 'abc', 3003],
      ['nothing at all', 4000, 0, '', 4000],
      ['SYN at the top of sequence space', 0xffffffff, SYN, '', 0],
      ['data wrapping sequence space', 0xfffffffe, 0, 'wxyz', 2],
    ];
    for (const [what, seq, flags, payload, ack] of cases) {
      h.inject(tcpPacket(peer, us, { srcPort: 40002, dstPort: 82, seq, flags, payload }));
      const replies = h.takeTcp();
      assert.equal(replies.length, 1, what);
      const { seg } = replies[0]!;
      assert.equal(seg.seq, 0, what);
      assert.equal(seg.ack, ack, what);
      assert.equal(seg.flags, RST | ACK, what);
      assert.equal(seg.srcPort, 82, what);
      assert.equal(seg.dstPort, 40002, what);
    }
    assert.equal(h.stack.counters.rstOut, cases.length);
  });

  test(`${family}: a RST to a closed port is answered with nothing`, () => {
    const h = harness();
    h.inject(tcpPacket(peer, us, { dstPort: 83, seq: 5, flags: RST }));
    h.inject(tcpPacket(peer, us, { dstPort: 83, seq: 5, ack: 9, flags: RST | ACK }));
    h.inject(tcpPacket(peer, us, { dstPort: 83, seq: 5, flags: RST | SYN }));
    assert.equal(h.sent.length, 0);
    assert.equal(h.stack.counters.rstOut, 0);
    assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 3 });
  });
}

// ============================================================== RFC 9293 §3.10.7.2: LISTEN

test('LISTEN: an incoming RST is ignored', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { dstPort: 80, flags: RST }));
  h.inject(tcpPacket(PEER4, US4, { dstPort: 80, flags: RST | ACK, ack: 55 }));
  h.inject(tcpPacket(PEER6, US6, { dstPort: 80, flags: RST | SYN }));
  assert.equal(h.sent.length, 0);
  assert.equal(h.stack.connections().length, 0);
});

test('LISTEN: any ACK gets <SEQ=SEG.ACK><CTL=RST>, a SYN,ACK included', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 41000, dstPort: 80, seq: 10, ack: 123456, flags: ACK }));
  h.inject(tcpPacket(PEER6, US6, { srcPort: 41001, dstPort: 80, seq: 10, ack: 654321, flags: SYN | ACK }));
  const [a, b] = h.takeTcp();
  assert.deepEqual([a!.seg.seq, a!.seg.ack, a!.seg.flags, a!.seg.dstPort], [123456, 0, RST, 41000]);
  assert.deepEqual([b!.seg.seq, b!.seg.ack, b!.seg.flags, b!.seg.dstPort], [654321, 0, RST, 41001]);
  assert.equal(h.stack.connections().length, 0);
});

test('LISTEN: a SYN gets SYN,ACK with ACK=SEG.SEQ+1 and MSS 1460 (IPv4) / 1440 (IPv6) on a 1500 MTU', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 42000, dstPort: 80, seq: 0xfffffffe, flags: SYN, options: { mss: 1000 } }));
  h.inject(tcpPacket(PEER6, US6, { srcPort: 42000, dstPort: 80, seq: 99, flags: SYN }));
  const [v4, v6] = h.takeTcp();
  assert.equal(v4!.seg.flags, SYN | ACK);
  assert.equal(v4!.seg.ack, 0xffffffff);
  assert.deepEqual(v4!.seg.options, { mss: 1460 });
  assert.equal(v4!.seg.dstPort, 42000);
  assert.equal(v4!.seg.srcPort, 80);
  assert.equal(v6!.seg.flags, SYN | ACK);
  assert.equal(v6!.seg.ack, 100);
  assert.deepEqual(v6!.seg.options, { mss: 1440 });
  assert.equal(h.stack.counters.passiveOpens, 2);
  assert.deepEqual(h.stack.connections().map((c) => c.state), ['SYN-RECEIVED', 'SYN-RECEIVED']);
  // The sender MSS follows the peer's option (1000), bounded by ours.
  const c4 = h.stack.connections().find((c) => c.remoteAddress === PEER4)!;
  assert.equal(c4.info().sndMss, 1000);
  const c6 = h.stack.connections().find((c) => c.remoteAddress === PEER6)!;
  assert.equal(c6.info().sndMss, 1220, 'no MSS option on IPv6: 1220 (RFC 8200 §5)');
});

test('LISTEN: the SYN,ACK MSS follows the link MTU (9000 → 8960)', () => {
  const h = harness({ mtu: 9000 });
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { dstPort: 80, flags: SYN }));
  assert.deepEqual(h.takeTcp()[0]!.seg.options, { mss: 8960 });
});

test('a listener bound to one address does not take SYNs for another', () => {
  const h = harness({ addresses: [`${US4}/24`, '10.0.0.3/24', `${US6}/64`] });
  const l = h.stack.tcpListen({ port: 80, host: US4 });
  assert.equal(l.localAddress, US4);
  h.inject(tcpPacket(PEER4, '10.0.0.3', { dstPort: 80, seq: 1, flags: SYN }));
  h.inject(tcpPacket(PEER6, US6, { dstPort: 80, seq: 1, flags: SYN }));
  const [other, v6] = h.takeTcp();
  assert.equal(other!.seg.flags, RST | ACK, 'closed on 10.0.0.3');
  assert.equal(v6!.seg.flags, RST | ACK, 'closed on fd00::1');
  h.inject(tcpPacket(PEER4, US4, { dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);

  // A 0.0.0.0 listener takes IPv4 only; '::' (or no host) takes both.
  const h2 = harness();
  h2.stack.tcpListen({ port: 80, host: '0.0.0.0' });
  h2.inject(tcpPacket(PEER6, US6, { dstPort: 80, seq: 1, flags: SYN }));
  h2.inject(tcpPacket(PEER4, US4, { dstPort: 80, seq: 1, flags: SYN }));
  assert.deepEqual(h2.takeTcp().map((r) => r.seg.flags), [RST | ACK, SYN | ACK]);
  const h3 = harness();
  h3.stack.tcpListen({ port: 80, host: '::' });
  h3.inject(tcpPacket(PEER6, US6, { dstPort: 80, seq: 1, flags: SYN }));
  h3.inject(tcpPacket(PEER4, US4, { dstPort: 80, seq: 1, flags: SYN }));
  assert.deepEqual(h3.takeTcp().map((r) => r.seg.flags), [SYN | ACK, SYN | ACK]);
});

test('a full backlog drops the SYN and counts it; after accept() a SYN is taken again', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, backlog: 1 });
  handshake(h, PEER4, US4, 43000, 80);
  assert.equal(h.take().length, 0);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 43001, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.sent.length, 0, 'no SYN,ACK and no RST: the client will retry');
  assert.equal(h.stack.counters.listenOverflows, 1);
  assert.deepEqual(h.stack.counters.drops, { 'tcp-listen-overflow': 1 });
  const c = l.accept();
  assert.equal(c?.remotePort, 43000);
  assert.equal(c?.state, 'ESTABLISHED');
  h.inject(tcpPacket(PEER4, US4, { srcPort: 43001, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);
  assert.equal(h.stack.counters.listenOverflows, 1);
});

test('half-open connections are bounded too: max(backlog, 128) in SYN-RECEIVED, then SYNs are dropped (SYN cookies off)', () => {
  const h = harness({ synCookies: false });
  h.stack.tcpListen({ port: 80, backlog: 1 });
  for (let i = 0; i < 129; i++) h.inject(tcpPacket(PEER4, US4, { srcPort: 20000 + i, dstPort: 80, seq: i, flags: SYN }));
  const replies = h.takeTcp();
  assert.equal(replies.length, 128);
  assert.ok(replies.every((r) => r.seg.flags === (SYN | ACK)));
  assert.equal(h.stack.counters.listenOverflows, 1);
  assert.equal(h.stack.connections().length, 128);
});

test('listener.close() resets the connections nobody accepted and refuses new SYNs', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  const established = handshake(h, PEER4, US4, 44000, 80);
  h.inject(tcpPacket(PEER6, US6, { srcPort: 44001, dstPort: 80, seq: 70, flags: SYN }));
  const synAck = h.takeTcp()[0]!;
  assert.equal(h.stack.connections().length, 2);
  l.close();
  const resets = h.takeTcp();
  assert.equal(resets.length, 2);
  const byPort = new Map(resets.map((r) => [r.seg.dstPort, r.seg]));
  // RFC 9293 §3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST>.
  assert.equal(byPort.get(44000)!.flags, RST);
  assert.equal(byPort.get(44000)!.seq, established.ourNxt);
  assert.equal(byPort.get(44001)!.flags, RST);
  assert.equal(byPort.get(44001)!.seq, (synAck.seg.seq + 1) >>> 0);
  assert.equal(h.stack.connections().length, 0);
  assert.equal(l.accept(), null);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 44002, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, RST | ACK);
  // The port is free again.
  assert.doesNotThrow(() => h.stack.tcpListen({ port: 80 }).close());
});

test('listener.close() leaves accepted connections alone', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  handshake(h, PEER4, US4, 44100, 80);
  const c = l.accept()!;
  l.close();
  assert.equal(h.sent.length, 0);
  assert.equal(c.state, 'ESTABLISHED');
});

test('accept() hands out connections in the order they were established; onAcceptable fires for each', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  let acceptable = 0;
  l.onAcceptable = () => acceptable++;
  // SYNs arrive 1, 2, 3 but the handshakes complete 3, 1, 2.
  const isn = new Map<number, number>();
  for (const port of [45001, 45002, 45003]) {
    h.inject(tcpPacket(PEER4, US4, { srcPort: port, dstPort: 80, seq: port, flags: SYN }));
    isn.set(port, h.takeTcp()[0]!.seg.seq);
  }
  for (const port of [45003, 45001, 45002]) {
    h.inject(tcpPacket(PEER4, US4, { srcPort: port, dstPort: 80, seq: port + 1, ack: (isn.get(port)! + 1) >>> 0, flags: ACK }));
  }
  assert.equal(acceptable, 3);
  assert.deepEqual([l.accept()?.remotePort, l.accept()?.remotePort, l.accept()?.remotePort], [45003, 45001, 45002]);
  assert.equal(l.accept(), null);
});

test('with onConnection set, connections are handed over at once and never queued', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80, backlog: 1 });
  const got: TcpConnection[] = [];
  l.onConnection = (c) => got.push(c);
  let acceptable = 0;
  l.onAcceptable = () => acceptable++;
  handshake(h, PEER4, US4, 46000, 80);
  handshake(h, PEER6, US6, 46001, 80); // backlog 1 does not limit handed-over connections
  assert.deepEqual(got.map((c) => [c.remotePort, c.state]), [[46000, 'ESTABLISHED'], [46001, 'ESTABLISHED']]);
  assert.equal(l.accept(), null);
  assert.equal(acceptable, 0);
  assert.equal(h.stack.counters.listenOverflows, 0);
});

test('a half-open connection reset by the peer goes; the listener stays', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 46100, dstPort: 80, seq: 500, flags: SYN }));
  h.take();
  h.inject(tcpPacket(PEER4, US4, { srcPort: 46100, dstPort: 80, seq: 501, flags: RST }));
  assert.equal(h.stack.connections().length, 0);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 46100, dstPort: 80, seq: 900, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);
  l.close();
});

// ============================================================== ports (RFC 6056)

test('ephemeral ports are in 49152–65535 and distinct for concurrent connections to one peer', () => {
  const h = harness();
  const conns = [];
  for (let i = 0; i < 300; i++) conns.push(h.stack.tcpConnect({ host: PEER4, port: 80 }));
  const ports = conns.map((c) => c.localPort);
  for (const p of ports) assert.ok(p >= EPHEMERAL_MIN && p <= EPHEMERAL_MAX, `port ${p}`);
  assert.equal(new Set(ports).size, ports.length);
  assert.equal(EPHEMERAL_MIN, 49152);
  assert.equal(EPHEMERAL_MAX, 65535);
  // Each SYN leaves from the port the connection reports.
  const syns = h.takeTcp();
  assert.deepEqual(syns.map((r) => r.seg.srcPort), ports);
  assert.ok(syns.every((r) => r.seg.flags === SYN && r.seg.dstPort === 80));
  assert.equal(h.stack.counters.activeOpens, 300);
});

test('an ephemeral port is not one a listener holds', () => {
  const h = harness();
  const first = h.stack.tcpConnect({ host: PEER4, port: 80 });
  const port = first.localPort;
  first.abort();
  const h2 = harness(); // same seed: the same first choice
  h2.stack.tcpListen({ port });
  const c = h2.stack.tcpConnect({ host: PEER4, port: 80 });
  assert.notEqual(c.localPort, port);
});

test('EADDRINUSE: listening twice on one port, or reusing an explicit local port for the same 4-tuple', () => {
  const h = harness({ addresses: [`${US4}/24`, '10.0.0.3/24', `${US6}/64`] });
  h.stack.tcpListen({ port: 80 });
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80 })), 'EADDRINUSE');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80, host: US4 })), 'EADDRINUSE');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80, host: US6 })), 'EADDRINUSE');
  h.stack.tcpListen({ port: 81, host: US4 });
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 81, host: US4 })), 'EADDRINUSE');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 81 })), 'EADDRINUSE', 'a wildcard overlaps a bound listener');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 81, host: '10.0.0.3' })), 'no error', 'another address is fine');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 81, host: US6 })), 'no error');

  const c = h.stack.tcpConnect({ host: PEER4, port: 7, localPort: 5000 });
  assert.equal(c.localPort, 5000);
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 7, localPort: 5000 })), 'EADDRINUSE');
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 8, localPort: 5000 })), 'no error', 'another remote port');
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 7, localPort: 5000, localAddress: '10.0.0.3' })), 'no error');
  c.abort();
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 7, localPort: 5000 })), 'no error', 'free again once closed');
});

test('listen on port 0 picks a free ephemeral port, and it listens there', () => {
  const h = harness();
  const a = h.stack.tcpListen({ port: 0 });
  const b = h.stack.tcpListen({ port: 0 });
  for (const l of [a, b]) assert.ok(l.localPort >= EPHEMERAL_MIN && l.localPort <= EPHEMERAL_MAX);
  assert.notEqual(a.localPort, b.localPort);
  h.inject(tcpPacket(PEER4, US4, { dstPort: a.localPort, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);
  // A port used by a connection is not picked either.
  const h2 = harness();
  const c = h2.stack.tcpConnect({ host: PEER4, port: 80 });
  const l = h2.stack.tcpListen({ port: 0 });
  assert.notEqual(l.localPort, c.localPort);
});

test('EINVAL for bad host strings and ports', () => {
  const h = harness();
  for (const host of ['example.com', '10.0.0', '10.0.0.256', '010.0.0.2', '', 'fd00:::2', '10.0.0.2:80']) {
    assert.equal(codeOf(() => h.stack.tcpConnect({ host, port: 80 })), 'EINVAL', `host ${JSON.stringify(host)}`);
  }
  for (const port of [0, -1, 65536, 1.5, Number.NaN]) {
    assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port })), 'EINVAL', `connect port ${port}`);
    assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 80, localPort: port === 0 ? -2 : port })), 'EINVAL', `local port ${port}`);
  }
  for (const port of [-1, 65536, 2.5, Number.NaN]) {
    assert.equal(codeOf(() => h.stack.tcpListen({ port })), 'EINVAL', `listen port ${port}`);
  }
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80, host: 'not an address' })), 'EINVAL');
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 80, localAddress: 'nope' })), 'EINVAL');
  // A local address of the other family.
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER6, port: 80, localAddress: US4 })), 'EINVAL');
  // Nothing was created by any of these.
  assert.equal(h.stack.connections().length, 0);
  assert.equal(h.sent.length, 0);
  // Bad stack addresses.
  const [end] = MemoryLink.pair({ clock: new VirtualClock() });
  assert.equal(codeOf(() => new Stack({ link: end, addresses: ['10.0.0.1/33'] })), 'EINVAL');
  assert.equal(codeOf(() => new Stack({ link: end, addresses: ['10.0.0/24'] })), 'EINVAL');
  assert.equal(codeOf(() => new Stack({ link: end, addresses: [] })), 'EINVAL');
});

test('EADDRNOTAVAIL for a local address that is not the stack\'s', () => {
  const h = harness();
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER4, port: 80, localAddress: '10.0.0.9' })), 'EADDRNOTAVAIL');
  assert.equal(codeOf(() => h.stack.tcpConnect({ host: PEER6, port: 80, localAddress: 'fd00::9' })), 'EADDRNOTAVAIL');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80, host: '10.0.0.9' })), 'EADDRNOTAVAIL');
  assert.equal(codeOf(() => h.stack.tcpListen({ port: 80, host: 'fd00::9' })), 'EADDRNOTAVAIL');
});

test('ENETUNREACH when the stack has no address of the family', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock });
  const v4only = new Stack({ link: a, addresses: [`${US4}/24`], clock, seed: 1 });
  const v6only = new Stack({ link: b, addresses: [`${US6}/64`], clock, seed: 1 });
  assert.equal(codeOf(() => v4only.tcpConnect({ host: PEER6, port: 80 })), 'ENETUNREACH');
  assert.equal(codeOf(() => v6only.tcpConnect({ host: PEER4, port: 80 })), 'ENETUNREACH');
  assert.equal(v4only.connections().length + v6only.connections().length, 0);
});

test('the source address is the one on the peer\'s subnet', () => {
  const h = harness({ addresses: ['192.168.1.1/24', `${US4}/24`, `${US6}/64`] });
  const c = h.stack.tcpConnect({ host: PEER4, port: 80 });
  assert.equal(c.localAddress, US4);
  const r = h.takeTcp()[0]!;
  assert.deepEqual([...r.ip.src], [...addr(US4)]);
  // Off every subnet: the first address of the family.
  const far = h.stack.tcpConnect({ host: '172.16.0.1', port: 80 });
  assert.equal(far.localAddress, '192.168.1.1');
});

// ============================================================== ISN (RFC 6528)

function isnOf(h: Harness, localPort: number, host = PEER4, port = 80): number {
  const c = h.stack.tcpConnect({ host, port, localPort });
  const syn = h.takeTcp()[0]!.seg;
  assert.equal(syn.seq, c.info().iss);
  c.abort(); // SYN-SENT: the TCB goes without a RST
  assert.equal(h.sent.length, 0);
  return syn.seq;
}

test('ISN: different for different 4-tuples at the same instant', () => {
  const h = harness();
  const isns = new Set<number>();
  for (let p = 1; p <= 50; p++) isns.add(isnOf(h, 30000 + p));
  isns.add(isnOf(h, 30001, PEER6));
  isns.add(isnOf(h, 30001, PEER4, 81));
  assert.equal(isns.size, 52);
});

test('ISN: for one 4-tuple it grows with the 4 µs clock (250 per ms), modulo 2^32', () => {
  const h = harness();
  const first = isnOf(h, 31000);
  h.clock.advanceSync(1);
  assert.equal(isnOf(h, 31000), (first + 250) >>> 0);
  h.clock.advanceSync(999);
  assert.equal(isnOf(h, 31000), (first + 250_000) >>> 0);
  // M wraps after 2^32 ticks (~4.77 h): still first + M mod 2^32.
  h.clock.advanceSync(5 * 3600_000 - 1000);
  assert.equal(isnOf(h, 31000), (first + 5 * 3600 * 250_000) >>> 0);

  const gen = new IsnGenerator(1, 2);
  const a = addr(US4);
  const b = addr(PEER4);
  assert.equal((gen.isn(10, a, 1, b, 2) - gen.isn(0, a, 1, b, 2)) >>> 0, 2500);
  assert.equal((gen.isn(0.004, a, 1, b, 2) - gen.isn(0, a, 1, b, 2)) >>> 0, 1, 'one tick is 4 µs');
});

test('ISN: deterministic for a seed, different across seeds', () => {
  const seven = [isnOf(harness({ seed: 7 }), 32000), isnOf(harness({ seed: 7 }), 32000)];
  assert.equal(seven[0], seven[1]);
  const eight = isnOf(harness({ seed: 8 }), 32000);
  assert.notEqual(eight, seven[0]);
  // Ephemeral port choice is seeded the same way.
  const port = (seed: number): number => harness({ seed }).stack.tcpConnect({ host: PEER4, port: 80 }).localPort;
  assert.equal(port(7), port(7));
  const ports = new Set([1, 2, 3, 4, 5, 6, 7, 8].map(port));
  assert.ok(ports.size >= 6, 'different seeds pick different ports');
});

// ============================================================== ICMP

test('ICMPv4 echo request gets a reply with the same id, sequence and data, checksums valid', () => {
  const h = harness();
  const data = new TextEncoder().encode('ping payload, odd length');
  const body = new Uint8Array(8 + data.length);
  writeIcmpEcho(body, 0, 4, false, 0x1234, 0xbeef, data, 0);
  h.inject(ipPacket(PEER4, US4, PROTO_ICMP, body));
  const [out] = h.take();
  assert.ok(out);
  const ip = parseIpPacket(out); // verifies the IPv4 header checksum
  assert.ok(typeof ip !== 'string', String(ip));
  assert.equal(ip.protocol, PROTO_ICMP);
  assert.deepEqual([...ip.src], [...addr(US4)]);
  assert.deepEqual([...ip.dst], [...addr(PEER4)]);
  assert.equal(ip.ttl, 64);
  const msg = parseIcmpv4(out.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength)); // verifies the ICMP checksum
  assert.ok(typeof msg !== 'string', String(msg));
  assert.equal(msg.kind, 'echo-reply');
  assert.ok(msg.kind === 'echo-reply');
  assert.equal(msg.id, 0x1234);
  assert.equal(msg.sequence, 0xbeef);
  assert.deepEqual([...msg.data], [...data]);
  assert.equal(h.stack.counters.icmpIn, 1);
  assert.equal(h.stack.counters.icmpOut, 1);
  assert.deepEqual(h.stack.counters.drops, {});
});

test('ICMPv6 echo request gets a reply with the same id, sequence and data, checksum valid', () => {
  const h = harness();
  const data = new Uint8Array(57).map((_, i) => i * 7);
  const len = 8 + data.length;
  const body = new Uint8Array(len);
  writeIcmpEcho(body, 0, 6, false, 0xabcd, 3, data, pseudoHeaderSum(addr(PEER6), addr(US6), PROTO_ICMPV6, len));
  h.inject(ipPacket(PEER6, US6, PROTO_ICMPV6, body));
  const [out] = h.take();
  assert.ok(out);
  const ip = parseIpPacket(out);
  assert.ok(typeof ip !== 'string');
  assert.equal(ip.version, 6);
  assert.equal(ip.protocol, PROTO_ICMPV6);
  assert.deepEqual([...ip.src], [...addr(US6)]);
  assert.deepEqual([...ip.dst], [...addr(PEER6)]);
  const msg = parseIcmpv6(out.subarray(ip.payloadOffset), pseudoHeaderSum(ip.src, ip.dst, PROTO_ICMPV6, ip.payloadLength));
  assert.ok(typeof msg !== 'string', String(msg));
  assert.ok(msg.kind === 'echo-reply');
  assert.equal(msg.id, 0xabcd);
  assert.equal(msg.sequence, 3);
  assert.deepEqual([...msg.data], [...data]);
  assert.equal(out[40], 129, 'type 129, echo reply');
});

test('ICMP with a bad checksum is dropped, and echo replies are not answered', () => {
  const h = harness();
  const body = new Uint8Array(12);
  writeIcmpEcho(body, 0, 4, false, 1, 1, new Uint8Array(4), 0);
  body[9] ^= 0xff;
  h.inject(ipPacket(PEER4, US4, PROTO_ICMP, body));
  const reply = new Uint8Array(8);
  writeIcmpEcho(reply, 0, 4, true, 1, 1, new Uint8Array(0), 0);
  h.inject(ipPacket(PEER4, US4, PROTO_ICMP, reply));
  h.inject(ipPacket(PEER4, US4, PROTO_ICMP, new Uint8Array(4)));
  assert.deepEqual(h.stack.counters.drops, { 'icmp-bad-checksum': 1, 'icmp-unhandled': 1, 'icmp-truncated': 1 });
  assert.equal(h.sent.length, 0);
});

for (const [family, peer, us] of [['IPv4', PEER4, US4], ['IPv6', PEER6, US6]] as const) {
  test(`${family}: an ICMP error quoting a TCP connection is noted, not fatal`, () => {
    const h = harness();
    const c = h.stack.tcpConnect({ host: peer, port: 80 });
    const [syn] = h.take();
    const v = family === 'IPv4' ? 4 : 6;
    const router = family === 'IPv4' ? '10.0.0.254' : 'fd00::fe';
    // Host unreachable (v4 type 3 code 1 / v6 type 1 code 3) from a router, quoting our SYN.
    const len = icmpErrorLength(v, syn!.length);
    const body = new Uint8Array(len);
    const pseudo = v === 4 ? 0 : pseudoHeaderSum(addr(router), addr(us), PROTO_ICMPV6, len);
    writeIcmpError(body, 0, v, v === 4 ? ICMPV4_DEST_UNREACHABLE : ICMPV6_DEST_UNREACHABLE, v === 4 ? 1 : 3, syn!, pseudo);
    h.inject(ipPacket(router, us, v === 4 ? PROTO_ICMP : PROTO_ICMPV6, body));
    const notes = h.trace.filter((e) => e.type === 'note');
    assert.equal(notes.length, 1);
    const n = notes[0]!;
    assert.ok(n.type === 'note');
    assert.match(n.what, /ICMP unreachable/);
    assert.equal(n.rfc, 'RFC 1122 §4.2.3.9');
    assert.deepEqual(n.conn, { localAddress: us, localPort: c.localPort, remoteAddress: peer, remotePort: 80 });
    assert.equal(c.state, 'SYN-SENT', 'a soft error: the connection carries on');
    assert.deepEqual(h.stack.counters.drops, {});
    assert.equal(h.stack.counters.icmpIn, 1);
    assert.equal(h.sent.length, 0);
    // RFC 5927 §4.1: one quoting a sequence number we never sent (a blind attacker's guess) is dropped.
    const forged = Uint8Array.from(syn!);
    const seqAt = (v === 4 ? 20 : 40) + 4;
    new DataView(forged.buffer).setUint32(seqAt, (new DataView(syn!.buffer, syn!.byteOffset).getUint32(seqAt) + 100_000) >>> 0);
    const forgedBody = new Uint8Array(len);
    writeIcmpError(forgedBody, 0, v, v === 4 ? ICMPV4_DEST_UNREACHABLE : ICMPV6_DEST_UNREACHABLE, v === 4 ? 1 : 3, forged, pseudo);
    h.trace.length = 0;
    h.inject(ipPacket(router, us, v === 4 ? PROTO_ICMP : PROTO_ICMPV6, forgedBody));
    assert.deepEqual(h.stack.counters.drops, { 'icmp-bad-sequence': 1 });
    assert.equal(h.trace.filter((e) => e.type === 'note').length, 0);
    h.stack.counters.drops = {};
    // The same error for a connection that does not exist is dropped as unhandled.
    c.abort();
    h.trace.length = 0;
    h.inject(ipPacket(router, us, v === 4 ? PROTO_ICMP : PROTO_ICMPV6, body));
    assert.deepEqual(h.stack.counters.drops, { 'icmp-unhandled': 1 });
    assert.equal(h.trace.filter((e) => e.type === 'note').length, 0);
  });
}

// ============================================================== trace events

test('trace: a segment event for every segment in and out, with the SegmentInfo of the wire', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  const synPacket = tcpPacket(PEER4, US4, { srcPort: 47000, dstPort: 80, seq: 100, window: 4321, flags: SYN, options: { mss: 1400 } });
  h.inject(synPacket);
  const [synAckPacket] = h.take();
  const synAck = parseReply(synAckPacket!).seg;
  h.inject(tcpPacket(PEER4, US4, { srcPort: 47000, dstPort: 80, seq: 101, ack: synAck.seq + 1, flags: ACK | PSH, payload: 'hi!' }));
  assert.equal(h.take().length, 0, 'the ACK of one segment is delayed (RFC 5681 §4.2)');
  h.clock.advanceSync(40);
  const [ackPacket] = h.take();
  const segs = h.trace.filter((e): e is Extract<TraceEvent, { type: 'segment' }> => e.type === 'segment');
  assert.deepEqual(segs.map((e) => e.dir), ['in', 'out', 'in', 'out']);
  assert.deepEqual(segs[0]!.segment, {
    srcAddress: PEER4, srcPort: 47000, dstAddress: US4, dstPort: 80, seq: 100, ack: 0,
    flags: ['SYN'], flagBits: SYN, window: 4321, len: 0, options: ['MSS=1400'],
  });
  assert.deepEqual([...segs[0]!.packet], [...synPacket]);
  assert.deepEqual(segs[1]!.segment, {
    srcAddress: US4, srcPort: 80, dstAddress: PEER4, dstPort: 47000, seq: synAck.seq, ack: 101,
    flags: ['SYN', 'ACK'], flagBits: SYN | ACK, window: synAck.window, len: 0, options: ['MSS=1460'],
  });
  assert.deepEqual([...segs[1]!.packet], [...synAckPacket!], 'the out event carries the bytes sent');
  assert.deepEqual(segs[2]!.segment.flags, ['PSH', 'ACK']);
  assert.equal(segs[2]!.segment.len, 3);
  const ack = parseReply(ackPacket!).seg;
  assert.deepEqual(segs[3]!.segment, {
    srcAddress: US4, srcPort: 80, dstAddress: PEER4, dstPort: 47000, seq: (synAck.seq + 1) >>> 0, ack: 104,
    flags: ['ACK'], flagBits: ACK, window: ack.window, len: 0, options: [],
  });
  assert.equal(segs.filter((e) => e.dir === 'out').length, h.stack.counters.tcpOut);
  assert.equal(segs.filter((e) => e.dir === 'in').length, h.stack.counters.tcpIn);
});

test('trace: state events carry the cause and the RFC rule', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  handshake(h, PEER6, US6, 47100, 80);
  const states = h.trace.filter((e): e is Extract<TraceEvent, { type: 'state' }> => e.type === 'state');
  const conn = { localAddress: US6, localPort: 80, remoteAddress: PEER6, remotePort: 47100 };
  assert.equal(states.length, 2);
  assert.deepEqual({ ...states[0]!, t: 0 }, {
    type: 'state', t: 0, conn, from: 'LISTEN', to: 'SYN-RECEIVED',
    cause: 'rcv SYN in LISTEN: SYN,ACK sent', rfc: 'RFC 9293 §3.10.7.2',
  });
  assert.deepEqual({ ...states[1]!, t: 0 }, {
    type: 'state', t: 0, conn, from: 'SYN-RECEIVED', to: 'ESTABLISHED', cause: 'rcv ACK of SYN', rfc: 'RFC 9293 §3.10.7.4',
  });
  h.trace.length = 0;
  const c = h.stack.tcpConnect({ host: PEER4, port: 9 });
  const st = h.trace.filter((e) => e.type === 'state');
  assert.equal(st.length, 1);
  assert.ok(st[0]!.type === 'state');
  assert.equal(st[0]!.from, 'CLOSED');
  assert.equal(st[0]!.to, 'SYN-SENT');
  assert.equal(st[0]!.rfc, 'RFC 9293 §3.10.1');
  assert.equal(st[0]!.conn.localPort, c.localPort);
});

test('trace: drop events name the reason and carry the packet', () => {
  const h = harness();
  const bad = tcpPacket(PEER4, US4, { flags: SYN });
  bad[bad.length - 1] ^= 0x10;
  h.inject(bad);
  const drops = h.trace.filter((e) => e.type === 'drop');
  assert.equal(drops.length, 1);
  assert.ok(drops[0]!.type === 'drop');
  assert.equal(drops[0]!.reason, 'tcp-bad-checksum');
  assert.deepEqual([...drops[0]!.packet], [...bad]);
  assert.equal(h.trace.filter((e) => e.type === 'segment').length, 0, 'a dropped packet is no segment');
});

test('trace: with no listener nothing is emitted, and counters still count', () => {
  const h = harness({ traced: false });
  const seen: TraceEvent[] = [];
  const fn = (e: TraceEvent): void => {
    seen.push(e);
  };
  h.stack.on('trace', fn);
  h.stack.off('trace', fn);
  h.stack.tcpListen({ port: 80 });
  handshake(h, PEER4, US4, 47200, 80);
  const bad = tcpPacket(PEER4, US4, { flags: SYN });
  bad[10] ^= 1;
  h.inject(bad);
  h.inject(tcpPacket(PEER4, US4, { flags: SYN, dstPort: 9 }));
  assert.equal(seen.length, 0);
  const c = h.stack.counters;
  assert.equal(c.ipIn, 4);
  assert.equal(c.tcpIn, 3);
  assert.equal(c.tcpOut, 2); // SYN,ACK and the RST,ACK
  assert.equal(c.rstOut, 1);
  assert.equal(c.passiveOpens, 1);
  assert.deepEqual(c.drops, { 'ipv4-bad-checksum': 1, 'tcp-no-socket': 1 });
  // A listener added later sees what happens from then on.
  h.stack.on('trace', fn);
  h.inject(tcpPacket(PEER4, US4, { flags: SYN, dstPort: 9 }));
  assert.deepEqual(seen.map((e) => e.type), ['segment', 'drop', 'segment']);
});

test('trace: a throwing trace listener does not break packet processing', () => {
  const h = harness({ traced: false });
  h.stack.on('trace', () => {
    throw new Error('listener bug');
  });
  h.stack.tcpListen({ port: 80 });
  assert.doesNotThrow(() => h.inject(tcpPacket(PEER4, US4, { flags: SYN, dstPort: 80, seq: 1 })));
  // The observer's error is counted; the SYN was still fully processed and answered.
  assert.ok(h.stack.counters.internalErrors >= 3, 'segment in, state change, segment out');
  const [synAck] = h.takeTcp();
  assert.equal(synAck!.seg.flags, SYN | ACK);
  assert.equal(synAck!.seg.ack, 2);
  assert.deepEqual(h.stack.connections().map((c) => c.state), ['SYN-RECEIVED']);
  // And a bad packet is still only counted.
  const bad = tcpPacket(PEER4, US4, { flags: SYN });
  bad[10] ^= 1;
  assert.doesNotThrow(() => h.inject(bad));
  assert.deepEqual(h.stack.counters.drops, { 'ipv4-bad-checksum': 1 });
});

// ============================================================== TIME-WAIT and RFC 5961

/** The stack, listening on 80, actively closes a connection with the raw peer: it ends in TIME-WAIT. */
function serverInTimeWait(h: Harness, srcPort: number): { conn: TcpConnection; peerNxt: number; ourNxt: number } {
  const l = h.stack.tcpListen({ port: 80 });
  const { peerNxt, ourNxt } = handshake(h, PEER4, US4, srcPort, 80);
  const conn = l.accept()!;
  conn.close();
  const [fin] = h.takeTcp();
  assert.equal(fin!.seg.flags, FIN | ACK);
  assert.equal(fin!.seg.seq, ourNxt);
  h.inject(tcpPacket(PEER4, US4, { srcPort, dstPort: 80, seq: peerNxt, ack: ourNxt + 1, flags: ACK }));
  assert.equal(conn.state, 'FIN-WAIT-2');
  h.inject(tcpPacket(PEER4, US4, { srcPort, dstPort: 80, seq: peerNxt, ack: ourNxt + 1, flags: FIN | ACK }));
  assert.equal(conn.state, 'TIME-WAIT');
  const [lastAck] = h.takeTcp();
  assert.equal(lastAck!.seg.flags, ACK);
  assert.equal(lastAck!.seg.ack, peerNxt + 1);
  return { conn, peerNxt: peerNxt + 1, ourNxt: ourNxt + 1 };
}

test('TIME-WAIT: a new SYN with a higher sequence number reopens the connection (RFC 9293 §3.10.7.4, RFC 6191)', () => {
  const h = harness();
  const { conn, peerNxt } = serverInTimeWait(h, 48000);
  h.trace.length = 0;
  const newIss = peerNxt + 100_000;
  h.inject(tcpPacket(PEER4, US4, { srcPort: 48000, dstPort: 80, seq: newIss, flags: SYN }));
  const [synAck] = h.takeTcp();
  assert.equal(synAck!.seg.flags, SYN | ACK);
  assert.equal(synAck!.seg.ack, newIss + 1);
  assert.equal(conn.state, 'CLOSED', 'the old incarnation is gone');
  const live = h.stack.connections();
  assert.equal(live.length, 1);
  assert.equal(live[0]!.state, 'SYN-RECEIVED');
  assert.notEqual(live[0], conn);
  const notes = h.trace.filter((e) => e.type === 'note');
  assert.ok(notes.some((e) => e.type === 'note' && e.rfc === 'RFC 9293 §3.10.7.4' && /TIME-WAIT/.test(e.what)));
  assert.deepEqual(
    h.trace.filter((e) => e.type === 'state').map((e) => e.type === 'state' && `${e.from}>${e.to}`),
    ['TIME-WAIT>CLOSED', 'LISTEN>SYN-RECEIVED'],
  );
});

test('TIME-WAIT: an old SYN (sequence number not higher) does not reopen; it is answered with an ACK', () => {
  const h = harness();
  const { conn, peerNxt, ourNxt } = serverInTimeWait(h, 48100);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 48100, dstPort: 80, seq: peerNxt - 10, flags: SYN }));
  const [r] = h.takeTcp();
  assert.equal(r!.seg.flags, ACK);
  assert.equal(r!.seg.seq, ourNxt);
  assert.equal(r!.seg.ack, peerNxt);
  assert.equal(conn.state, 'TIME-WAIT');
  assert.equal(h.stack.connections().length, 1);
});

test('TIME-WAIT on the active opener (no listener): a new SYN does not reopen it', () => {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair({ clock });
  const client = new Stack({ link: a, addresses: [`${PEER4}/24`], clock, seed: 3 });
  const server = new Stack({ link: b, addresses: [`${US4}/24`], clock, seed: 4 });
  server.tcpListen({ port: 80 }).onConnection = (s) => {
    s.events = { onEnd: () => s.close() };
  };
  const c = client.tcpConnect({ host: US4, port: 80, localPort: 5555 });
  c.events = { onEstablished: () => c.close() };
  clock.advanceSync(10);
  assert.equal(c.state, 'TIME-WAIT');
  // The client stack now gets a SYN to its TIME-WAIT port: no listener there, so the TIME-WAIT TCB
  // answers it (an ACK), and it is not replaced.
  const seen: TraceEvent[] = [];
  client.on('trace', (e) => seen.push(e));
  b.send(tcpPacket(US4, PEER4, { srcPort: 80, dstPort: 5555, seq: c.info().rcvNxt + 1000, flags: SYN }));
  clock.advanceSync(0);
  assert.equal(c.state, 'TIME-WAIT');
  assert.equal(seen.filter((e) => e.type === 'state').length, 0);
});

test('RFC 5961 §7: challenge ACKs are limited stack-wide (challengeAckLimit: 2 per second) and per connection (one per 500 ms)', () => {
  const h = harness({ challengeAckLimit: 2 });
  const l = h.stack.tcpListen({ port: 80 });
  const ports = [49000, 49001, 49002, 49003];
  const hs = ports.map((p) => handshake(h, PEER4, US4, p, 80));
  const conns = ports.map(() => l.accept()!);
  // In-window RSTs with SEG.SEQ != RCV.NXT (RFC 5961 §3.2) each call for a challenge ACK.
  const badRst = (k: number, off = 1): void => {
    h.inject(tcpPacket(PEER4, US4, { srcPort: ports[k]!, dstPort: 80, seq: hs[k]!.peerNxt + off, flags: RST }));
  };
  for (let k = 0; k < 4; k++) badRst(k);
  const acks = h.takeTcp();
  assert.equal(acks.length, 2, 'only two challenge ACKs in the first second, across the connections');
  assert.deepEqual(acks.map((a) => a.seg.dstPort), [49000, 49001]);
  for (const [k, a] of acks.entries()) {
    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
    assert.equal(a.seg.flags, ACK);
    assert.equal(a.seg.seq, hs[k]!.ourNxt);
    assert.equal(a.seg.ack, hs[k]!.peerNxt);
  }
  assert.equal(h.stack.counters.challengeAcks, 2);
  assert.ok(conns.every((c) => c.state === 'ESTABLISHED'), 'no RST took effect');
  h.clock.advanceSync(999);
  badRst(2);
  assert.equal(h.sent.length, 0, 'still the same second');
  h.clock.advanceSync(1);
  // A new second: the stack-wide budget is back, but connection 0 answered one 1000 ms ago and
  // connection 2 none yet: each gets one, and a second RST on either inside 500 ms gets nothing.
  badRst(0, 2);
  badRst(0, 3);
  badRst(2, 2);
  const next = h.takeTcp();
  assert.deepEqual(next.map((a) => a.seg.dstPort), [49000, 49002]);
  assert.equal(h.stack.counters.challengeAcks, 4);
  assert.ok(conns[0]!.info().challengeAcksSuppressed >= 1);
  h.clock.advanceSync(1000);
  for (let k = 0; k < 4; k++) badRst(3, 2 + k);
  assert.equal(h.takeTcp().length, 1, 'one per connection per 500 ms, even with budget left');
  // A RST exactly at RCV.NXT still resets.
  h.inject(tcpPacket(PEER4, US4, { srcPort: 49001, dstPort: 80, seq: hs[1]!.peerNxt, flags: RST }));
  assert.equal(conns[1]!.state, 'CLOSED');
  assert.equal(conns[0]!.state, 'ESTABLISHED');
});

// ============================================================== two stacks over a MemoryLink

interface Pair {
  clock: VirtualClock;
  a: Stack;
  b: Stack;
}

function pair(delayMs = 5): Pair {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, delayMs });
  const a = new Stack({ link: la, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock, seed: 11, name: 'a' });
  const b = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock, seed: 12, name: 'b' });
  return { clock, a, b };
}

/** An echo server: whatever arrives goes back; the server closes when the client has. */
function echoServer(s: Stack, port: number): { closed: Array<TcpError | null> } {
  const closed: Array<TcpError | null> = [];
  s.tcpListen({ port }).onConnection = (c) => {
    c.events = {
      onReadable: () => {
        const d = c.read();
        if (d !== null) assert.equal(c.write(d), d.length);
      },
      onEnd: () => c.close(),
      onClosed: (e) => closed.push(e),
    };
  };
  return { closed };
}

/** A client that sends `text`, reads the echo, then closes. */
function echoClient(s: Stack, host: string, port: number, text: string): { got: () => string; closed: Array<TcpError | null>; conn: TcpConnection } {
  const c = s.tcpConnect({ host, port });
  let got = '';
  const closed: Array<TcpError | null> = [];
  const bytes = new TextEncoder().encode(text);
  c.events = {
    onEstablished: () => {
      assert.equal(c.write(bytes), bytes.length);
    },
    onReadable: () => {
      got += new TextDecoder().decode(c.read()!);
      if (got.length === text.length) c.close();
    },
    onClosed: (e) => closed.push(e),
  };
  return { got: () => got, closed, conn: c };
}

for (const [family, host] of [['IPv4', '10.0.0.2'], ['IPv6', 'fd00::2']] as const) {
  test(`two stacks, ${family}: connect, echo, close cleanly, TIME-WAIT on the active closer, then nothing left`, () => {
    const { clock, a, b } = pair();
    const states: string[] = [];
    a.on('trace', (e) => {
      if (e.type === 'state') states.push(e.to);
    });
    const server = echoServer(b, 7);
    const text = 'x'.repeat(5000) + ' the end';
    const client = echoClient(a, host, 7, text);
    assert.equal(client.conn.state, 'SYN-SENT');
    clock.advanceSync(1000);
    assert.equal(client.got(), text);
    assert.equal(client.conn.state, 'TIME-WAIT', 'the client closed first');
    assert.deepEqual(client.closed, [null]);
    assert.deepEqual(server.closed, [null]);
    assert.equal(b.connections().length, 0, 'the passive closer is gone after LAST-ACK');
    assert.deepEqual(states, ['SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT']);
    clock.runUntilIdleSync();
    assert.equal(client.conn.state, 'CLOSED');
    assert.equal(a.connections().length, 0);
    assert.ok(clock.now() >= 60_000, 'TIME-WAIT lasted 2×MSL (default MSL 30 s)');
    for (const s of [a, b]) {
      assert.deepEqual(s.counters.drops, {});
      assert.equal(s.counters.rstOut, 0);
      assert.equal(s.counters.internalErrors, 0);
      assert.equal(s.counters.retransmits, 0);
    }
  });
}

test('two stacks: 200 concurrent connections to one listener all complete', () => {
  const { clock, a, b } = pair(2);
  const server = echoServer(b, 7);
  const clients = [];
  for (let i = 0; i < 200; i++) clients.push(echoClient(a, i % 2 === 0 ? '10.0.0.2' : 'fd00::2', 7, `connection ${i}`));
  assert.equal(new Set(clients.map((c) => `${c.conn.localAddress}|${c.conn.localPort}`)).size, 200);
  clock.runUntilIdleSync({ maxMs: 5 * 60_000 });
  clients.forEach((c, i) => {
    assert.equal(c.got(), `connection ${i}`);
    assert.deepEqual(c.closed, [null]);
  });
  assert.equal(server.closed.length, 200);
  assert.ok(server.closed.every((e) => e === null));
  assert.equal(a.connections().length, 0);
  assert.equal(b.connections().length, 0);
  assert.equal(a.counters.activeOpens, 200);
  assert.equal(b.counters.passiveOpens, 200);
  assert.equal(b.counters.listenOverflows, 0);
  assert.deepEqual(a.counters.drops, {});
  assert.deepEqual(b.counters.drops, {});
});

test('two stacks: connecting to a closed port is refused with ECONNREFUSED', () => {
  const { clock, a } = pair();
  const c = a.tcpConnect({ host: 'fd00::2', port: 9 });
  const closed: Array<TcpError | null> = [];
  c.events = { onClosed: (e) => closed.push(e) };
  clock.runUntilIdleSync();
  assert.equal(closed.length, 1);
  assert.equal(closed[0]?.code, 'ECONNREFUSED');
  assert.equal(a.connections().length, 0);
});

test('maxConnections bounds the connections a stack holds: connect() fails with ENOBUFS, a SYN is dropped and counted', () => {
  assert.throws(() => harness({ maxConnections: 0 }), RangeError);
  const h = harness({ maxConnections: 2 });
  h.stack.tcpListen({ port: 80 });
  handshake(h, PEER4, US4, 49000, 80);
  const out = h.stack.tcpConnect({ host: PEER4, port: 7 });
  h.take();
  assert.throws(() => h.stack.tcpConnect({ host: PEER4, port: 8 }), { code: 'ENOBUFS' });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 49001, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.take().length, 0, 'no SYN,ACK');
  assert.equal(h.stack.counters.connectionLimitDrops, 1);
  assert.deepEqual(h.stack.counters.drops, { 'tcp-connection-limit': 1 });
  // Room again once a connection is gone.
  out.abort();
  h.take();
  h.inject(tcpPacket(PEER4, US4, { srcPort: 49001, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);
});

test('the per-connection challenge-ACK limit spares segments with data (Linux tcp_oow_rate_limited); synBacklog 0 needs SYN cookies', () => {
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  const hs = handshake(h, PEER4, US4, 49100, 80);
  l.accept();
  h.take();
  // Data whose ACK is beyond SND.NXT (RFC 5961 §5.2): each draws a challenge ACK, even 1 ms apart.
  for (let i = 0; i < 3; i++) {
    h.inject(tcpPacket(PEER4, US4, { srcPort: 49100, dstPort: 80, seq: hs.peerNxt, ack: (hs.ourNxt + 100_000) >>> 0, flags: ACK, payload: 'data' }));
    h.clock.advanceSync(1);
  }
  assert.equal(h.takeTcp().filter((r) => r.seg.flags === ACK).length, 3);
  // Empty ones: one per 500 ms.
  for (let i = 0; i < 3; i++) {
    h.inject(tcpPacket(PEER4, US4, { srcPort: 49100, dstPort: 80, seq: hs.peerNxt, ack: (hs.ourNxt + 100_000) >>> 0, flags: ACK }));
    h.clock.advanceSync(1);
  }
  assert.equal(h.takeTcp().length, 0, 'the last challenge ACK went out under 500 ms ago');
  assert.throws(() => harness({ synCookies: false }).stack.tcpListen({ port: 80, synBacklog: 0 }), { code: 'EINVAL' });
});

test('a super-packet (TUN receive offload) does not make the stack wait for 64 KiB before it ACKs: the peer\'s segment size is capped at our MSS (Linux tcp_measure_rcv_mss)', () => {
  const clock = new VirtualClock();
  const out: Uint8Array[] = [];
  let deliver: (p: Uint8Array) => void = () => {};
  // A link of MTU 1500 that hands over larger packets, as TunLink with `offload` does (GSO).
  const link: LinkEnd = { mtu: 1500, send: (p) => void out.push(p.slice()), onPacket: (fn) => void (deliver = fn) };
  const stack = new Stack({ link, addresses: [`${US4}/24`], clock, seed: 1 });
  stack.tcpListen({ port: 80 });
  const inject = (p: Uint8Array): void => {
    deliver(p);
    clock.advanceSync(0);
  };
  inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 100, flags: 0x02, options: { mss: 1460 } }));
  const synAck = parseReply(out.shift()!);
  const ourNxt = (synAck.seg.seq + 1) >>> 0;
  inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 101, ack: ourNxt, flags: 0x10 }));
  out.length = 0;
  // A 8000-byte super-packet, then 1448 + 552 bytes: more than one full segment unacknowledged, so
  // RFC 5681 §4.2 wants an ACK now — not after the delayed-ACK timer.
  inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 101, ack: ourNxt, flags: 0x10, payload: new Uint8Array(8000) }));
  out.length = 0;
  inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 8101, ack: ourNxt, flags: 0x10, payload: new Uint8Array(1448) }));
  inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 9549, ack: ourNxt, flags: 0x10, payload: new Uint8Array(552) }));
  const acks = out.map(parseReply).filter((r) => r.seg.ack === 10101);
  assert.equal(acks.length, 1, `an ACK of all 10,000 bytes at once, no time passed (sent: ${out.length})`);
});
