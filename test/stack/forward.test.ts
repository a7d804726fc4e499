/**
 * Catch-all termination (src/stack/forward.ts): SYNs and UDP datagrams for addresses and ports
 * nobody serves, handed to a forwarder, and the exact answers on the wire — SYN,ACK only once the
 * forwarder accepts, RST,ACK (RFC 9293 §3.10.7.1) or ICMP Destination Unreachable (RFC 1812
 * §5.2.7.1, RFC 4443 §3.1) when it refuses; the bound on pending SYNs; UDP replies from the
 * address the guest wrote to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpForwardRequest, UdpForwardDatagram } from '../../src/stack/forward.js';
import { TcpError } from '../../src/tcp/user.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { parseIcmpv4, parseIcmpv6 } from '../../src/wire/icmp.js';
import { parseIpPacket, PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP } from '../../src/wire/ip.js';
import { ACK, PSH, RST, SYN } from '../../src/wire/tcp.js';
import { parseUdp, writeUdp } from '../../src/wire/udp.js';
import { PEER4, PEER6, US4, US6, addr, harness, ipPacket, tcpPacket, type Harness } from './raw.js';

const FAR4 = '203.0.113.5';
const FAR6 = '2001:db8::5';

function udpPacket(src: string, dst: string, srcPort: number, dstPort: number, data: string): Uint8Array {
  const payload = new TextEncoder().encode(data);
  const body = new Uint8Array(8 + payload.length);
  writeUdp(body, 0, srcPort, dstPort, payload, pseudoHeaderSum(addr(src), addr(dst), PROTO_UDP, body.length));
  return ipPacket(src, dst, PROTO_UDP, body);
}

function icmpOf(packet: Uint8Array): { src: string; type: number; code: number; quotedDst: string | null } {
  const ip = parseIpPacket(packet);
  if (typeof ip === 'string') throw new Error(ip);
  const body = packet.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
  const m = ip.protocol === PROTO_ICMP ? parseIcmpv4(body) : parseIcmpv6(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_ICMPV6, body.length));
  if (typeof m === 'string' || m.kind !== 'error') throw new Error(`not an ICMP error: ${JSON.stringify(m)}`);
  const src = [...ip.src].join('.');
  return { src: ip.version === 4 ? src : 'v6', type: m.type, code: m.code, quotedDst: m.original === null ? null : [...m.original.dst].join('.') };
}

function forwarding(h: Harness): TcpForwardRequest[] {
  const got: TcpForwardRequest[] = [];
  h.stack.forwardTcp((r) => got.push(r), { maxPending: 2, pendingTimeoutMs: 5000 });
  return got;
}

for (const [family, peer, far] of [['IPv4', PEER4, FAR4], ['IPv6', PEER6, FAR6]] as const) {
  test(`${family}: a SYN for any address waits for the forwarder; accept() answers SYN,ACK as that address`, () => {
    const h = harness();
    const got = forwarding(h);
    const syn = tcpPacket(peer, far, { srcPort: 40000, dstPort: 80, seq: 1000, flags: SYN, options: { mss: 1400, sackPermitted: true, wscale: 7 } });
    h.inject(syn);
    assert.equal(got.length, 1);
    const r = got[0]!;
    assert.deepEqual([r.localAddress, r.localPort, r.remoteAddress, r.remotePort, r.family, r.toLocal, r.pending],
      [far, 80, peer, 40000, family === 'IPv4' ? 4 : 6, false, true]);
    assert.equal(h.take().length, 0, 'nothing before the forwarder decides');
    // The guest's retransmission while the upstream opens: dropped, not a second request.
    h.inject(syn);
    assert.equal(got.length, 1);
    assert.equal(h.stack.counters.drops['tcp-forward-pending'], 1);
    const c = r.accept();
    assert.equal(r.pending, false);
    const [synAck] = h.takeTcp();
    assert.equal(synAck!.seg.flags, SYN | ACK);
    assert.equal(synAck!.seg.ack, 1001);
    assert.equal(synAck!.seg.srcPort, 80);
    assert.deepEqual([...synAck!.ip.src], [...addr(far)], 'from the address the guest asked for');
    assert.ok(synAck!.seg.options.sackPermitted && synAck!.seg.options.wscale !== undefined, 'the SYN\'s options were kept');
    const ours = (synAck!.seg.seq + 1) >>> 0;
    h.inject(tcpPacket(peer, far, { srcPort: 40000, dstPort: 80, seq: 1001, ack: ours, flags: ACK | PSH, payload: 'GET /' }));
    assert.equal(c.state, 'ESTABLISHED');
    assert.equal(new TextDecoder().decode(c.read()!), 'GET /');
    assert.throws(() => r.accept(), (e: unknown) => e instanceof TcpError && e.code === 'EINVAL');
    assert.equal(h.stack.counters.forwardedSyns, 1);
  });

  test(`${family}: reject('reset') is <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> from the asked address`, () => {
    const h = harness();
    const got = forwarding(h);
    h.inject(tcpPacket(peer, far, { srcPort: 40001, dstPort: 81, seq: 7000, flags: SYN }));
    got[0]!.reject('reset');
    const [rst] = h.takeTcp();
    assert.equal(rst!.seg.flags, RST | ACK);
    assert.equal(rst!.seg.seq, 0);
    assert.equal(rst!.seg.ack, 7001);
    assert.deepEqual([...rst!.ip.src], [...addr(far)]);
    got[0]!.reject('reset');
    assert.equal(h.take().length, 0, 'a second decision is ignored');
    assert.equal(h.stack.counters.forwardRejected, 1);
  });

  for (const [how, v4, v6] of [['host-unreachable', [3, 1], [1, 3]], ['net-unreachable', [3, 0], [1, 0]], ['prohibited', [3, 13], [1, 1]]] as const) {
    test(`${family}: reject('${how}') is ICMP ${family === 'IPv4' ? v4.join('/') : v6.join('/')} from the gateway, quoting the SYN`, () => {
      const h = harness();
      const got = forwarding(h);
      h.inject(tcpPacket(peer, far, { srcPort: 40002, dstPort: 82, seq: 9, flags: SYN }));
      got[0]!.reject(how);
      const out = h.take();
      assert.equal(out.length, 1);
      const m = icmpOf(out[0]!);
      assert.deepEqual([m.type, m.code], family === 'IPv4' ? [...v4] : [...v6]);
      if (family === 'IPv4') {
        assert.equal(m.src, US4, 'a router answers from its own address (RFC 1812 §4.3.2.4)');
        assert.equal(m.quotedDst, FAR4);
      }
    });
  }
}

test('a SYN or datagram from a loopback or unspecified source is never offered (RFC 4291 §2.5.3)', () => {
  const h = harness();
  const got = forwarding(h);
  const udp: UdpForwardDatagram[] = [];
  h.stack.forwardUdp((d) => (udp.push(d), true));
  h.inject(tcpPacket('::1', FAR6, { srcPort: 40000, dstPort: 80, seq: 1, flags: SYN }));
  h.inject(tcpPacket('127.0.0.1', FAR4, { srcPort: 40000, dstPort: 80, seq: 1, flags: SYN }));
  h.inject(udpPacket('0.0.0.0', FAR4, 5353, 53, 'x'));
  assert.equal(got.length, 0);
  assert.equal(udp.length, 0);
  assert.equal(h.stack.counters.drops['tcp-bad-address'], 2);
});

test('pending SYNs are bounded; an undecided request expires and its tuple may ask again', () => {
  const h = harness();
  const got = forwarding(h);
  for (let i = 0; i < 3; i++) h.inject(tcpPacket(PEER4, FAR4, { srcPort: 41000 + i, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(got.length, 2);
  assert.equal(h.stack.counters.drops['tcp-forward-overflow'], 1);
  assert.equal(h.stack.forwardPending, 2);
  h.clock.advanceSync(5000);
  h.inject(tcpPacket(PEER4, FAR4, { srcPort: 41002, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(got.length, 3, 'expired requests made room');
  assert.equal(got[0]!.pending, false);
  assert.throws(() => got[0]!.accept(), /EINVAL/);
  assert.equal(h.stack.counters.forwardExpired, 2);
});

test('without a forwarder: a SYN for another address is not ours, and a closed local port still gets a RST', () => {
  const h = harness();
  h.inject(tcpPacket(PEER4, FAR4, { srcPort: 40000, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.take().length, 0);
  assert.equal(h.stack.counters.drops['ip-not-for-us'], 1);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 80, seq: 1, flags: SYN }));
  assert.equal(h.takeTcp()[0]!.seg.flags, RST | ACK);
});

test('with a forwarder: a SYN to one of our addresses with no listener is offered too (toLocal), a listener still wins', () => {
  const h = harness();
  const got = forwarding(h);
  const l = h.stack.tcpListen({ port: 22 });
  h.inject(tcpPacket(PEER4, US4, { srcPort: 40000, dstPort: 22, seq: 1, flags: SYN }));
  assert.equal(got.length, 0);
  assert.equal(h.takeTcp()[0]!.seg.flags, SYN | ACK);
  h.inject(tcpPacket(PEER4, US4, { srcPort: 40001, dstPort: 8080, seq: 1, flags: SYN }));
  assert.equal(got.length, 1);
  assert.equal(got[0]!.toLocal, true);
  // Segments other than a SYN for no connection: RST as always (RFC 9293 §3.10.7.1).
  h.inject(tcpPacket(PEER4, FAR4, { srcPort: 40003, dstPort: 80, seq: 1, ack: 99, flags: ACK }));
  const [rst] = h.takeTcp();
  assert.equal(rst!.seg.flags, RST);
  assert.equal(rst!.seg.seq, 99);
  l.close();
  h.stack.forwardTcp(null);
  assert.equal(got[0]!.pending, false, 'removing the forwarder drops its pending requests');
});

test('UDP: a datagram for any address goes to the forwarder; replies leave from the address it was sent to', () => {
  const h = harness();
  const got: UdpForwardDatagram[] = [];
  let verdict: boolean | 'prohibited' = true;
  h.stack.forwardUdp((d) => {
    got.push(d);
    return verdict;
  });
  h.inject(udpPacket(PEER4, FAR4, 5353, 53, 'query'));
  assert.equal(got.length, 1);
  const d = got[0]!;
  assert.deepEqual([d.src, d.srcPort, d.dst, d.dstPort, d.family, d.toLocal, new TextDecoder().decode(d.data)],
    [PEER4, 5353, FAR4, 53, 4, false, 'query']);
  assert.equal(h.stack.counters.udpForwarded, 1);
  h.stack.udpSendFrom({ address: FAR4, port: 53 }, { address: PEER4, port: 5353 }, new TextEncoder().encode('answer'));
  const [out] = h.take();
  const ip = parseIpPacket(out!);
  if (typeof ip === 'string') throw new Error(ip);
  assert.equal(ip.protocol, PROTO_UDP);
  assert.deepEqual([...ip.src], [...addr(FAR4)]);
  const u = parseUdp(out!.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength), pseudoHeaderSum(ip.src, ip.dst, PROTO_UDP, ip.payloadLength), 4);
  if (typeof u === 'string') throw new Error(u);
  assert.deepEqual([u.srcPort, u.dstPort, new TextDecoder().decode(u.payload)], [53, 5353, 'answer']);
  verdict = 'prohibited';
  h.inject(udpPacket(PEER4, FAR4, 5353, 54, 'no'));
  const m = icmpOf(h.take()[0]!);
  assert.deepEqual([m.type, m.code, m.src], [3, 13, US4]);
  verdict = false;
  h.inject(udpPacket(PEER4, US4, 5353, 9999, 'closed'));
  const closed = icmpOf(h.take()[0]!);
  assert.deepEqual([closed.type, closed.code], [3, 3], 'false: the usual port unreachable');
  // A broadcast is not relayed.
  const before = got.length;
  h.inject(udpPacket(PEER4, '255.255.255.255', 68, 67, 'dhcp'));
  assert.equal(got.length, before);
  assert.throws(() => h.stack.udpSendFrom({ address: 'x', port: 1 }, { address: PEER4, port: 1 }, new Uint8Array(1)), /EINVAL/);
  void US6;
});
