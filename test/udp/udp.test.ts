/**
 * UDP through the stack (stack.udpBind): binding, demultiplexing, connect, ICMP port unreachable
 * (rate limited) and the errors it becomes, broadcast, anyDestination for a DHCP client, sending
 * from 0.0.0.0, size limits, trace events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EPHEMERAL_MAX, EPHEMERAL_MIN } from '../../src/stack/ports.js';
import type { TraceEvent } from '../../src/trace/events.js';
import { UdpError } from '../../src/udp/socket.js';
import { parseIcmpv4, parseIcmpv6 } from '../../src/wire/icmp.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP } from '../../src/wire/ip.js';
import { harness } from '../stack/raw.js';
import { collect, ip, pair, str, text, udpPacket } from './support.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UdpError, String(err));
    return err.code;
  }
  return 'no error';
}

test('bind: port 0 takes an ephemeral port; explicit ports; family from the address; any address by default', () => {
  const { a } = pair();
  const s = a.udpBind();
  assert.ok(s.localPort >= EPHEMERAL_MIN && s.localPort <= EPHEMERAL_MAX, String(s.localPort));
  assert.equal(s.localAddress, '0.0.0.0');
  assert.equal(s.family, 4);
  const t = a.udpBind({ address: 'fd00::1', port: 53 });
  assert.deepEqual([t.localAddress, t.localPort, t.family], ['fd00::1', 53, 6]);
  const u = a.udpBind({ family: 6, port: 0 });
  assert.equal(u.localAddress, '::');
  assert.notEqual(u.localPort, s.localPort);
  assert.equal(a.udpSockets().length, 3);
  u.close();
  assert.equal(a.udpSockets().length, 2);
});

test('bind errors: EADDRINUSE on overlap within a family, EADDRNOTAVAIL for a foreign address, EINVAL for bad input', () => {
  const { a } = pair();
  a.udpBind({ port: 53 });
  assert.equal(code(() => a.udpBind({ port: 53 })), 'EADDRINUSE');
  assert.equal(code(() => a.udpBind({ port: 53, address: '10.0.0.1' })), 'EADDRINUSE');
  a.udpBind({ port: 53, family: 6 }); // the other family is another table
  a.udpBind({ port: 54, address: '10.0.0.1' });
  assert.equal(code(() => a.udpBind({ port: 54, address: '0.0.0.0' })), 'EADDRINUSE');
  assert.equal(code(() => a.udpBind({ address: '10.0.0.9' })), 'EADDRNOTAVAIL');
  assert.equal(code(() => a.udpBind({ address: 'nope' })), 'EINVAL');
  assert.equal(code(() => a.udpBind({ port: 65536 })), 'EINVAL');
  assert.equal(code(() => a.udpBind({ port: -1 })), 'EINVAL');
  assert.equal(code(() => a.udpBind({ address: '10.0.0.1', family: 6 })), 'EINVAL');
  // Closing frees the port.
  const s = a.udpBind({ port: 55 });
  s.close();
  a.udpBind({ port: 55 });
});

test('datagrams both ways, IPv4 and IPv6: payload, remote and local address as sent; the data is the socket\'s own copy', () => {
  for (const [to, from] of [['10.0.0.2', '10.0.0.1'], ['fd00::2', 'fd00::1']] as const) {
    const { a, b, step } = pair();
    const family = to.includes(':') ? 6 : 4;
    const server = b.udpBind({ port: 7, family });
    const got = collect(server);
    const client = a.udpBind({ family });
    const payload = text(`hello over IPv${family}`);
    client.send(payload, to, 7);
    payload.fill(0); // the stack copied it at send
    step();
    assert.deepEqual(got, [{
      data: `hello over IPv${family}`, remote: { address: from, port: client.localPort, family }, local: { address: to, port: 7 },
    }]);
    assert.equal(a.counters.udpOut, 1);
    assert.equal(b.counters.udpIn, 1);
  }
});

test('demux: a socket bound to one address gets only its datagrams; any-address and specific binds of a port exclude each other (no SO_REUSEADDR, as Linux)', () => {
  const { a, b, step } = pair({ b: { addresses: ['10.0.0.2/24', '10.0.0.3/24'] } });
  const two = collect(b.udpBind({ port: 9, address: '10.0.0.2' }));
  const three = collect(b.udpBind({ port: 9, address: '10.0.0.3' }));
  assert.equal(code(() => b.udpBind({ port: 9 })), 'EADDRINUSE');
  const c = a.udpBind({ port: 4000 });
  c.send(text('to .2'), '10.0.0.2', 9);
  c.send(text('to .3'), '10.0.0.3', 9);
  step();
  assert.deepEqual(two.map((m) => m.data), ['to .2']);
  assert.deepEqual(three.map((m) => m.data), ['to .3']);
});

test('connect: send() without an address goes to the peer, only the peer\'s datagrams arrive; EISCONN, EDESTADDRREQ, ENOTCONN', () => {
  const { a, b, step } = pair();
  const server = b.udpBind({ port: 7 });
  server.onMessage = (d, r) => server.send(d, r.address, r.port);
  const other = b.udpBind({ port: 8 });
  const c = a.udpBind();
  assert.equal(code(() => c.send(text('x'))), 'EDESTADDRREQ');
  c.connect('10.0.0.2', 7);
  assert.deepEqual([c.remoteAddress, c.remotePort], ['10.0.0.2', 7]);
  const got = collect(c);
  c.send(text('echo me'));
  other.send(text('not from the peer'), '10.0.0.1', c.localPort);
  step();
  assert.deepEqual(got.map((m) => m.data), ['echo me']);
  assert.equal(code(() => c.send(text('x'), '10.0.0.2', 7)), 'EISCONN');
  c.disconnect();
  assert.equal(code(() => c.disconnect()), 'ENOTCONN');
  assert.equal(c.remoteAddress, null);
  assert.equal(code(() => c.connect('fd00::2', 7)), 'EINVAL');
  c.close();
  assert.equal(code(() => c.send(text('x'), '10.0.0.2', 7)), 'EBADF');
});

test('a closed port answers ICMP port unreachable quoting the datagram (RFC 1122 §4.1.3.1; RFC 4443 §3.1 code 4)', () => {
  for (const [dst, version] of [['10.0.0.2', 4], ['fd00::2', 6]] as const) {
    const { a, b, step, wireBA } = pair();
    const c = a.udpBind({ family: version });
    c.send(text('anyone?'), dst, 9999);
    step();
    assert.equal(b.counters.drops['udp-no-socket'], 1);
    assert.equal(wireBA.length, 1);
    const reply = ip(wireBA[0]!);
    assert.equal(reply.protocol, version === 4 ? PROTO_ICMP : PROTO_ICMPV6);
    const body = wireBA[0]!.subarray(reply.payloadOffset);
    const m = version === 4 ? parseIcmpv4(body) : parseIcmpv6(body, pseudoHeaderSum(reply.src, reply.dst, PROTO_ICMPV6, body.length));
    assert.ok(typeof m !== 'string' && m.kind === 'error');
    assert.equal(m.category, 'port-unreachable');
    assert.equal(m.original?.protocol, PROTO_UDP);
    assert.equal(m.original?.dstPort, 9999);
    assert.equal(m.original?.srcPort, c.localPort);
  }
});

test('ICMP errors reach a connected socket as node reports them (ECONNREFUSED, syscall recvmsg); an unconnected one hears nothing', () => {
  for (const dst of ['10.0.0.2', 'fd00::2']) {
    const { a, step } = pair();
    const family = dst.includes(':') ? 6 : 4;
    const connected = a.udpBind({ family });
    const errors: UdpError[] = [];
    connected.onError = (e) => errors.push(e);
    connected.connect(dst, 9999);
    connected.send(text('x'));
    const loose = a.udpBind({ family });
    const looseErrors: UdpError[] = [];
    loose.onError = (e) => looseErrors.push(e);
    loose.send(text('y'), dst, 9998);
    step();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'ECONNREFUSED');
    assert.equal(errors[0]!.syscall, 'recvmsg');
    assert.deepEqual(looseErrors, []);
    assert.equal(a.counters.icmpIn, 2);
  }
});

test('ICMP errors out are rate limited: a burst of 50, then 1000 per second (RFC 1812 §4.3.2.8, RFC 4443 §2.4 f)', () => {
  const { a, b, step, wireBA } = pair();
  const c = a.udpBind();
  for (let i = 0; i < 120; i++) c.send(text('x'), '10.0.0.2', 9999);
  step(1);
  assert.equal(wireBA.length, 50);
  assert.equal(b.counters.icmpRateLimited, 70);
  step(100); // 100 ms: 100 more tokens, at most 50 kept
  for (let i = 0; i < 120; i++) c.send(text('x'), '10.0.0.2', 9999);
  step(1);
  assert.equal(wireBA.length, 100);
  // icmpErrorRate: 0 sends none.
  const quiet = pair({ b: { icmpErrorRate: 0 } });
  quiet.a.udpBind().send(text('x'), '10.0.0.2', 9999);
  quiet.step();
  assert.equal(quiet.wireBA.length, 0);
  assert.equal(quiet.b.counters.icmpRateLimited, 1);
});

test('broadcast: EACCES without the flag; with it, 255.255.255.255 and the subnet broadcast reach any-address sockets (not TCP, no ICMP)', () => {
  const { a, b, step, wireBA } = pair();
  const any = collect(b.udpBind({ port: 67 }));
  const bound = collect(b.udpBind({ port: 70, address: '10.0.0.2' }));
  const c = a.udpBind({ port: 68 });
  assert.equal(code(() => c.send(text('x'), '255.255.255.255', 67)), 'EACCES');
  assert.equal(code(() => c.send(text('x'), '10.0.0.255', 67)), 'EACCES');
  c.broadcast = true;
  c.send(text('limited'), '255.255.255.255', 67);
  c.send(text('directed'), '10.0.0.255', 67);
  c.send(text('closed port'), '255.255.255.255', 99);
  c.send(text('to a socket bound to a unicast address'), '10.0.0.255', 70);
  step();
  assert.deepEqual(any.map((m) => m.data), ['limited', 'directed']);
  assert.deepEqual(any.map((m) => m.local.address), ['255.255.255.255', '10.0.0.255']);
  assert.deepEqual(bound, []);
  assert.equal(b.counters.drops['udp-no-socket'], 2);
  assert.equal(wireBA.length, 0, 'no ICMP error about a broadcast (RFC 1122 §3.2.2)');
});

test('anyDestination: a DHCP client with no IPv4 address takes datagrams for its port to any destination, and sends from 0.0.0.0', () => {
  // The client stack has only an IPv6 address: no IPv4 address yet.
  const { a, b, step, wireAB } = pair({ a: { addresses: ['fd00::1/64'] } });
  const client = a.udpBind({ address: '0.0.0.0', port: 68, broadcast: true, anyDestination: true });
  const got = collect(client);
  const plain = collect(a.udpBind({ port: 69 }));
  const server = b.udpBind({ port: 67, broadcast: true });
  const atServer = collect(server);
  assert.equal(code(() => client.send(text('DISCOVER'), '255.255.255.255', 67)), 'ENETUNREACH');
  client.send(text('DISCOVER'), '255.255.255.255', 67, '0.0.0.0');
  step();
  assert.deepEqual(atServer.map((m) => [m.data, m.remote.address]), [['DISCOVER', '0.0.0.0']]);
  assert.equal(ip(wireAB[0]!).src.join('.'), '0.0.0.0');
  server.send(text('OFFER to the offered address'), '10.0.0.50', 68);
  server.send(text('OFFER broadcast'), '255.255.255.255', 68);
  server.send(text('not for a plain socket'), '10.0.0.50', 69);
  step();
  assert.deepEqual(got.map((m) => m.data), ['OFFER to the offered address', 'OFFER broadcast']);
  assert.deepEqual(got.map((m) => m.local.address), ['10.0.0.50', '255.255.255.255']);
  assert.deepEqual(plain, []);
  assert.equal(a.counters.drops['udp-no-socket'], 1);
  // Closed, the exception ends: a datagram to a foreign address is not for us again.
  client.close();
  server.send(text('late'), '10.0.0.50', 68);
  step();
  assert.equal(a.counters.drops['ip-not-for-us'], 1);
});

test('sizes: 65507 bytes over IPv4 and 65527 over IPv6 go (fragmented); one more is EMSGSIZE', () => {
  const { a, b, step } = pair({ mtu: 1500 });
  for (const [dst, max] of [['10.0.0.2', 65507], ['fd00::2', 65527]] as const) {
    const family = dst.includes(':') ? 6 : 4;
    const got = collect(b.udpBind({ port: 7, family }));
    const c = a.udpBind({ family });
    const big = new Uint8Array(max).map((_, i) => i & 0xff);
    c.send(big, dst, 7);
    step();
    assert.equal(got.length, 1, `IPv${family}`);
    assert.equal(got[0]!.data, str(big));
    assert.equal(code(() => c.send(new Uint8Array(max + 1), dst, 7)), 'EMSGSIZE');
  }
  assert.equal(b.counters.reassembled, 2);
});

test('other send errors: bad address or port EINVAL, wrong family EINVAL, a foreign source EADDRNOTAVAIL', () => {
  const { a } = pair();
  const c = a.udpBind();
  assert.equal(code(() => c.send(text('x'), 'example.com', 7)), 'EINVAL');
  assert.equal(code(() => c.send(text('x'), '10.0.0.2', 0)), 'EINVAL');
  assert.equal(code(() => c.send(text('x'), 'fd00::2', 7)), 'EINVAL');
  assert.equal(code(() => c.send(text('x'), '10.0.0.2', 7, '10.9.9.9')), 'EADDRNOTAVAIL');
});

test('bad datagrams are dropped by reason: checksum, length, zero IPv6 checksum, port 0, broadcast source', () => {
  const h = harness();
  h.stack.udpBind({ port: 7 });
  h.stack.udpBind({ port: 7, family: 6 });
  const good = udpPacket('10.0.0.2', '10.0.0.1', 1000, 7, text('ok'));
  const bad = good.slice();
  bad[28] ^= 1;
  h.inject(bad);
  const zero6 = udpPacket('fd00::2', 'fd00::1', 1000, 7, text('ok'));
  zero6[46] = 0;
  zero6[47] = 0;
  h.inject(zero6);
  h.inject(udpPacket('10.0.0.2', '10.0.0.1', 1000, 0, text('ok')));
  h.inject(udpPacket('255.255.255.255', '10.0.0.1', 1000, 7, text('ok')));
  h.inject(udpPacket('10.0.0.255', '10.0.0.1', 1000, 7, text('ok')));
  assert.deepEqual(h.stack.counters.drops, {
    'udp-bad-checksum': 1, 'udp-checksum-zero': 1, 'udp-bad-address': 3,
  });
  assert.equal(h.take().length, 0);
});

test('UDP checksum 0 over IPv4 is "none" and the datagram is taken (RFC 768)', () => {
  const h = harness();
  const got = collect(h.stack.udpBind({ port: 7 }));
  const p = udpPacket('10.0.0.2', '10.0.0.1', 1000, 7, text('no sum'));
  p[26] = 0;
  p[27] = 0;
  h.inject(p);
  assert.deepEqual(got.map((m) => m.data), ['no sum']);
});

test('trace: a datagram event each way with addresses, ports, length and the packet; diagram-free consumers ignore it', () => {
  const { a, b, step } = pair();
  const ta: TraceEvent[] = [];
  const tb: TraceEvent[] = [];
  a.on('trace', (e) => ta.push(e));
  b.on('trace', (e) => tb.push(e));
  b.udpBind({ port: 7 });
  a.udpBind({ port: 5000 }).send(text('traced'), '10.0.0.2', 7);
  step();
  const out = ta.find((e) => e.type === 'datagram');
  const inn = tb.find((e) => e.type === 'datagram');
  assert.ok(out?.type === 'datagram' && inn?.type === 'datagram');
  assert.deepEqual([out.dir, out.src, out.dst, out.srcPort, out.dstPort, out.len], ['out', '10.0.0.1', '10.0.0.2', 5000, 7, 6]);
  assert.deepEqual([inn.dir, inn.src, inn.dst, inn.srcPort, inn.dstPort, inn.len], ['in', '10.0.0.1', '10.0.0.2', 5000, 7, 6]);
  assert.equal(ip(inn.packet).protocol, PROTO_UDP);
});

test('a throwing onMessage is counted as an internal error; the stack goes on', () => {
  const { a, b, step } = pair();
  const s = b.udpBind({ port: 7 });
  let n = 0;
  s.onMessage = () => {
    n++;
    throw new Error('user bug');
  };
  const c = a.udpBind();
  c.send(text('1'), '10.0.0.2', 7);
  c.send(text('2'), '10.0.0.2', 7);
  step();
  assert.equal(n, 2);
  assert.equal(b.counters.internalErrors, 2);
});

test('pcap from a trace: PcapWriter.writeEvent records TCP segments and UDP datagrams, readCapture reads them back', async () => {
  const { PcapWriter } = await import('../../src/trace/pcap.js');
  const { readCapture } = await import('../../src/trace/capture.js');
  const { a, b, step } = pair();
  const pcap = new PcapWriter();
  let other = 0;
  a.on('trace', (e) => {
    if (!pcap.writeEvent(e)) other++;
  });
  const s = b.udpBind({ port: 53 });
  s.onMessage = (d, r) => s.send(d, r.address, r.port);
  a.udpBind().send(text('query'), '10.0.0.2', 53);
  b.tcpListen({ port: 80 });
  a.tcpConnect({ host: '10.0.0.2', port: 80 });
  step(50);
  const cap = readCapture(pcap.toBytes());
  const protocols = cap.packets.map((p) => ip(p.bytes).protocol);
  assert.equal(protocols.filter((x) => x === PROTO_UDP).length, 2, 'the query out and the answer in');
  assert.ok(protocols.filter((x) => x === 6).length >= 3, 'the handshake');
  assert.ok(other > 0, 'state changes and notes are not packets');
});

test('no ICMP error about a datagram from 0.0.0.0 (RFC 1122 §3.2.2); TCP to a broadcast address is not for us', async () => {
  const { tcpPacket } = await import('../stack/raw.js');
  const h = harness();
  h.inject(udpPacket('0.0.0.0', '10.0.0.1', 68, 9999, text('from nowhere')));
  assert.equal(h.stack.counters.drops['udp-no-socket'], 1);
  assert.equal(h.take().length, 0);
  h.inject(tcpPacket('10.0.0.2', '255.255.255.255', { flags: 0x02, dstPort: 80 }));
  assert.equal(h.stack.counters.drops['ip-not-for-us'], 1);
  assert.equal(h.take().length, 0);
});

test('the diagram recorder ignores datagram events: a ladder of a TCP connection beside UDP traffic has only TCP segments', async () => {
  const { DiagramRecorder } = await import('../../src/diagram/model.js');
  const { a, b, step } = pair();
  const rec = new DiagramRecorder().attach(a, 'a').attach(b, 'b');
  let tcpOut = 0;
  for (const x of [a, b]) x.on('trace', (e) => { if (e.type === 'segment' && e.dir === 'out') tcpOut++; });
  const s = b.udpBind({ port: 53 });
  s.onMessage = (d, r) => s.send(d, r.address, r.port);
  a.udpBind().send(text('query'), '10.0.0.2', 53);
  b.tcpListen({ port: 80 });
  a.tcpConnect({ host: '10.0.0.2', port: 80 });
  step(50);
  const model = rec.build();
  assert.ok(tcpOut >= 3);
  assert.equal(model.segments.length, tcpOut, 'one ladder segment per TCP segment sent, none for the datagrams');
});
