/**
 * Invalid input reaching a stack: every bad packet is dropped and counted by reason in
 * `stack.counters.drops`, never thrown, and never answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/link/rng.js';
import { Stack } from '../../src/stack/stack.js';
import type { TcpConnection } from '../../src/tcp/user.js';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/wire/ip.js';
import { ACK, FIN, RST, SYN } from '../../src/wire/tcp.js';
import type { DropReason } from '../../src/wire/drop.js';
import {
  PEER4, PEER6, US4, US6, fixIpv4Checksum, fixTcpChecksum, harness, ipPacket, tcpPacket,
  tcpWithRawOptions,
} from './raw.js';

const syn4 = (): Uint8Array => tcpPacket(PEER4, US4, { flags: SYN, seq: 1000, dstPort: 9 });
const syn6 = (): Uint8Array => tcpPacket(PEER6, US6, { flags: SYN, seq: 1000, dstPort: 9 });

/** One packet into a fresh stack: it must be dropped with exactly `reason` and draw no reply. */
function assertDropped(packet: Uint8Array, reason: DropReason): void {
  const h = harness();
  h.inject(packet);
  assert.deepEqual(h.stack.counters.drops, { [reason]: 1 }, `expected one '${reason}' drop`);
  assert.equal(h.stack.counters.ipIn, 1);
  assert.equal(h.stack.counters.tcpIn, 0, 'a dropped packet never reaches TCP');
  assert.equal(h.stack.counters.internalErrors, 0);
  assert.equal(h.sent.length, 0, 'nothing is sent in reply');
  const drops = h.trace.filter((e) => e.type === 'drop');
  assert.equal(drops.length, 1);
  assert.equal(drops[0]!.type === 'drop' && drops[0]!.reason, reason);
  assert.equal(h.stack.connections().length, 0);
}

test('controls: a well-formed SYN to a closed port, IPv4 and IPv6, is answered (so the drops below are real)', () => {
  for (const p of [syn4(), syn6()]) {
    const h = harness();
    h.inject(p);
    assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 });
    assert.equal(h.stack.counters.tcpIn, 1);
    assert.equal(h.takeTcp()[0]!.seg.flags, RST | ACK);
  }
});

test('truncated IP headers are dropped as ip-truncated', () => {
  assertDropped(new Uint8Array(0), 'ip-truncated');
  assertDropped(syn4().subarray(0, 19), 'ip-truncated');
  assertDropped(syn4().subarray(0, 10), 'ip-truncated');
  assertDropped(syn6().subarray(0, 39), 'ip-truncated');
  assertDropped(syn6().subarray(0, 30), 'ip-truncated');
});

test('IP version other than 4 or 6 is dropped', () => {
  const p = syn4();
  p[0] = 0x55;
  assertDropped(p, 'ip-bad-version');
});

test('IPv4 header length, total length and checksum are checked', () => {
  const shortIhl = syn4();
  shortIhl[0] = 0x44;
  fixIpv4Checksum(shortIhl);
  assertDropped(shortIhl, 'ipv4-bad-ihl');

  const longIhl = syn4().subarray(0, 30).slice();
  longIhl[0] = 0x4f; // 60 bytes of header in a 30-byte packet
  assertDropped(longIhl, 'ipv4-bad-ihl');

  const tooLong = syn4();
  tooLong[3] = tooLong[3]! + 1; // Total Length one past the buffer
  fixIpv4Checksum(tooLong);
  assertDropped(tooLong, 'ipv4-bad-length');

  const badSum = syn4();
  badSum[10] = badSum[10]! ^ 0x01;
  assertDropped(badSum, 'ipv4-bad-checksum');

  const badTtlNoFix = syn4();
  badTtlNoFix[8] = 3; // a header field changed in flight without the checksum following it
  assertDropped(badTtlNoFix, 'ipv4-bad-checksum');
});

test('IPv6 payload length past the buffer is dropped', () => {
  const p = syn6();
  p[5] = p[5]! + 1;
  assertDropped(p, 'ipv6-bad-length');
});

test('link padding after IPv4 Total Length is trimmed, not taken for TCP data', () => {
  const p = syn4();
  const padded = new Uint8Array(p.length + 6);
  padded.set(p);
  padded.fill(0xee, p.length);
  const h = harness();
  h.inject(padded);
  const [r] = h.takeTcp();
  // SEG.LEN is 1 (the SYN), not 7: the padding was not data.
  assert.equal(r!.seg.ack, 1001);
  assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 });
});

test('bad TCP checksum is dropped, IPv4 and IPv6', () => {
  const p4 = syn4();
  p4[20 + 17] = p4[20 + 17]! ^ 0x40;
  assertDropped(p4, 'tcp-bad-checksum');
  const p6 = syn6();
  p6[40 + 17] = p6[40 + 17]! ^ 0x40;
  assertDropped(p6, 'tcp-bad-checksum');
  // The pseudo-header is covered: the same segment claimed from another source fails.
  const spoofed = syn4();
  spoofed[15] = 7; // source 10.0.0.7
  fixIpv4Checksum(spoofed);
  assertDropped(spoofed, 'tcp-bad-checksum');
  // A payload byte flipped.
  const data = tcpPacket(PEER4, US4, { flags: ACK, seq: 1, ack: 1, payload: 'hello' });
  data[data.length - 1] = data[data.length - 1]! ^ 0x01;
  assertDropped(data, 'tcp-bad-checksum');
});

test('TCP shorter than its fixed header is dropped as tcp-truncated', () => {
  const p = ipPacket(PEER4, US4, PROTO_TCP, new Uint8Array(19));
  assertDropped(p, 'tcp-truncated');
});

test('TCP data offset below 5 or past the packet is dropped as tcp-bad-offset', () => {
  for (const words of [0, 4]) {
    const p = syn4();
    p[20 + 12] = words << 4;
    fixTcpChecksum(p);
    assertDropped(p, 'tcp-bad-offset');
  }
  const past = syn4(); // 20-byte segment claiming a 24- and a 60-byte header
  past[20 + 12] = 6 << 4;
  fixTcpChecksum(past);
  assertDropped(past, 'tcp-bad-offset');
  const past15 = syn6();
  past15[40 + 12] = 15 << 4;
  fixTcpChecksum(past15);
  assertDropped(past15, 'tcp-bad-offset');
});

test('malformed TCP options are dropped as tcp-bad-options', () => {
  const spec = { flags: SYN, seq: 1000, dstPort: 9 };
  const cases: Array<[string, number[]]> = [
    ['option length 0', [2, 0, 0, 0]],
    ['option length 1', [8, 1, 0, 0]],
    ['unknown kind with length 0', [253, 0, 1, 1]],
    ['length overruns the header', [8, 10, 0, 0]],
    ['length overruns after a NOP', [1, 254, 6, 0]],
    ['kind without its length byte', [1, 1, 1, 2]],
    ['MSS of length 3', [2, 3, 5, 0]],
    ['MSS of length 6', [2, 6, 5, 180, 0, 0, 0, 0]],
    ['window scale of length 4', [3, 4, 7, 0]],
    ['SACK-permitted of length 3', [4, 3, 0, 0]],
    ['timestamps of length 8', [8, 8, 0, 0, 0, 1, 0, 0]],
    ['SACK with half a block', [5, 6, 0, 0, 0, 1, 0, 0]],
  ];
  for (const [what, bytes] of cases) {
    const h = harness();
    h.inject(tcpWithRawOptions(PEER4, US4, spec, bytes));
    assert.deepEqual(h.stack.counters.drops, { 'tcp-bad-options': 1 }, what);
    assert.equal(h.sent.length, 0, what);
  }
  // IPv6 too.
  assertDropped(tcpWithRawOptions(PEER6, US6, spec, [2, 0, 0, 0]), 'tcp-bad-options');
});

test('well-formed odd options are accepted: unknown kinds skipped, EOL ends the list', () => {
  const spec = { flags: SYN, seq: 1000, dstPort: 9 };
  for (const bytes of [[254, 4, 0, 0], [0, 99, 99, 99], [1, 1, 1, 1], [2, 4, 1, 0, 254, 2, 0, 0]]) {
    const h = harness();
    h.inject(tcpWithRawOptions(PEER4, US4, spec, bytes));
    assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 }, String(bytes));
    assert.equal(h.takeTcp()[0]!.seg.flags, RST | ACK);
  }
});

test('IPv4 fragments go to reassembly (MF set or a fragment offset), nothing answered until complete; DF alone is fine', () => {
  // A fragment whose data is not a multiple of 8 bytes while more follow is refused (RFC 791 §3.2).
  const odd = syn4();
  odd[6] = 0x20;
  fixIpv4Checksum(odd);
  assertDropped(odd, 'ip-fragment-bad');
  // A last fragment (offset 8, no MF) is held, waiting for the first: no drop yet, no reply.
  const offset = syn4();
  offset[6] = 0x00;
  offset[7] = 0x01;
  fixIpv4Checksum(offset);
  const held = harness();
  held.inject(offset);
  assert.deepEqual(held.stack.counters.drops, {});
  assert.equal(held.stack.counters.fragmentsIn, 1);
  assert.equal(held.sent.length, 0);
  const df = syn4();
  df[6] = 0x40;
  df[7] = 0;
  fixIpv4Checksum(df);
  const h = harness();
  h.inject(df);
  assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 });
});

test('an IPv6 atomic fragment (offset 0, M = 0) is processed at once (RFC 6946); other extension headers are walked', () => {
  const seg = syn6().subarray(40);
  // Fragment header (44): next header TCP, offset 0, M=0.
  const frag = new Uint8Array(8 + seg.length);
  frag.set([PROTO_TCP, 0, 0, 0, 0, 0, 0, 1]);
  frag.set(seg, 8);
  const a = harness();
  a.inject(ipPacket(PEER6, US6, 44, frag));
  assert.deepEqual(a.stack.counters.drops, { 'tcp-no-socket': 1 });
  assert.equal(a.takeTcp()[0]!.seg.ack, 1001);

  // A Destination Options header (60) with PadN in front of the same segment is fine.
  const dest = new Uint8Array(8 + seg.length);
  dest.set([PROTO_TCP, 0, 1, 4, 0, 0, 0, 0]);
  dest.set(seg, 8);
  const h = harness();
  h.inject(ipPacket(PEER6, US6, 60, dest));
  assert.deepEqual(h.stack.counters.drops, { 'tcp-no-socket': 1 });
  assert.equal(h.takeTcp()[0]!.seg.ack, 1001);
});

test('unknown protocols are dropped: SCTP over IPv4 and IPv6, ICMPv4 inside IPv6, ICMPv6 inside IPv4', () => {
  assertDropped(ipPacket(PEER4, US4, 132, new Uint8Array(12)), 'ip-unknown-protocol');
  assertDropped(ipPacket(PEER6, US6, 132, new Uint8Array(12)), 'ip-unknown-protocol');
  assertDropped(ipPacket(PEER6, US6, PROTO_ICMP, new Uint8Array(12)), 'ip-unknown-protocol');
  assertDropped(ipPacket(PEER4, US4, 58, new Uint8Array(12)), 'ip-unknown-protocol');
  // UDP is a protocol of the stack now: a bad datagram is UDP's drop.
  assertDropped(ipPacket(PEER4, US4, PROTO_UDP, new Uint8Array(12)), 'udp-bad-length');
});

test('packets not addressed to the stack are dropped', () => {
  assertDropped(tcpPacket(PEER4, '10.0.0.9', { flags: SYN, dstPort: 9 }), 'ip-not-for-us');
  assertDropped(tcpPacket(PEER6, 'fd00::9', { flags: SYN, dstPort: 9 }), 'ip-not-for-us');
  assertDropped(tcpPacket(PEER4, '10.0.0.255', { flags: SYN, dstPort: 9 }), 'ip-not-for-us');
});

test('port 0 and multicast/broadcast sources are not for TCP (RFC 1122 §4.2.3.10)', () => {
  assertDropped(tcpPacket(PEER4, US4, { flags: SYN, srcPort: 0, dstPort: 9 }), 'tcp-bad-address');
  assertDropped(tcpPacket(PEER4, US4, { flags: SYN, srcPort: 1234, dstPort: 0 }), 'tcp-bad-address');
  assertDropped(tcpPacket(PEER6, US6, { flags: SYN, srcPort: 0, dstPort: 9 }), 'tcp-bad-address');
  assertDropped(tcpPacket('224.0.0.1', US4, { flags: SYN, dstPort: 9 }), 'tcp-bad-address');
  assertDropped(tcpPacket('239.1.2.3', US4, { flags: SYN, dstPort: 9 }), 'tcp-bad-address');
  assertDropped(tcpPacket('255.255.255.255', US4, { flags: SYN, dstPort: 9 }), 'tcp-bad-address');
  assertDropped(tcpPacket('ff02::1', US6, { flags: SYN, dstPort: 9 }), 'tcp-bad-address');
  // Even a listening port does not take them.
  const h = harness();
  const l = h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket('224.0.0.5', US4, { flags: SYN, dstPort: 80 }));
  assert.deepEqual(h.stack.counters.drops, { 'tcp-bad-address': 1 });
  assert.equal(h.sent.length, 0);
  assert.equal(h.stack.connections().length, 0);
  l.close();
});

test('a non-SYN, non-ACK, non-RST segment to a listener is dropped as tcp-invalid-state', () => {
  const h = harness();
  h.stack.tcpListen({ port: 80 });
  h.inject(tcpPacket(PEER4, US4, { flags: FIN, dstPort: 80 }));
  h.inject(tcpPacket(PEER4, US4, { flags: 0, dstPort: 80, payload: 'x' }));
  assert.deepEqual(h.stack.counters.drops, { 'tcp-invalid-state': 2 });
  assert.equal(h.sent.length, 0);
});

/** One seeded random packet: raw noise, a valid IP header around random TCP, or a mutated segment. */
function randomPacket(rng: Rng, i: number): Uint8Array {
  const kind = i % 4;
  if (kind === 0) {
    const p = new Uint8Array(rng.int(0, 120));
    for (let j = 0; j < p.length; j++) p[j] = rng.int(0, 255);
    // Half the time make it look like IPv4 or IPv6 so it gets past the version nibble.
    if (p.length > 0 && rng.next() < 0.5) p[0] = rng.next() < 0.5 ? 0x45 : 0x60;
    return p;
  }
  const v6 = rng.next() < 0.5;
  const [src, dst] = v6 ? [PEER6, US6] : [PEER4, US4];
  if (kind === 1) {
    // Random TCP header and options with a correct checksum: reaches option parsing and demux.
    const body = new Uint8Array(rng.int(0, 80));
    for (let j = 0; j < body.length; j++) body[j] = rng.int(0, 255);
    if (body.length >= 4) {
      body[2] = 0;
      body[3] = rng.next() < 0.5 ? 80 : rng.int(0, 3); // the listening port, or closed/zero ones
    }
    const p = ipPacket(src, dst, PROTO_TCP, body);
    if (body.length >= 20) fixTcpChecksum(p);
    return p;
  }
  // A well-formed segment with random flags, numbers and payload, sometimes with bytes flipped.
  const p = tcpPacket(src, dst, {
    srcPort: rng.int(1, 65535), dstPort: rng.next() < 0.7 ? 80 : rng.int(1, 65535),
    seq: rng.nextU32(), ack: rng.nextU32(), flags: rng.int(0, 255), window: rng.int(0, 65535),
    options: rng.next() < 0.5 ? { mss: rng.int(0, 65535) } : {},
    payload: new Uint8Array(rng.int(0, 40)).map(() => rng.int(0, 255)),
  });
  if (kind === 3) {
    const flips = rng.int(1, 3);
    for (let f = 0; f < flips; f++) p[rng.int(0, p.length - 1)] ^= 1 << rng.int(0, 7);
  }
  return p;
}

test('4000 seeded random packets never throw, and the stack still makes connections afterwards', () => {
  const h = harness({ traced: false });
  const listener = h.stack.tcpListen({ port: 80 });
  const served: TcpConnection[] = [];
  listener.onConnection = (c) => {
    served.push(c);
    c.events = {
      onReadable: () => {
        const d = c.read();
        if (d !== null) c.write(d);
      },
      onEnd: () => c.close(),
    };
  };
  const rng = new Rng(0x5eed);
  const N = 4000;
  for (let i = 0; i < N; i++) {
    const p = randomPacket(rng, i);
    assert.doesNotThrow(() => h.peer.send(p));
  }
  assert.doesNotThrow(() => h.clock.advanceSync(0));
  const c = h.stack.counters;
  assert.equal(c.ipIn, N);
  assert.equal(c.internalErrors, 0, 'no exception was caught at the stack boundary');
  const dropped = Object.values(c.drops).reduce((a, b) => a + b, 0);
  assert.ok(dropped > N / 2, `most random packets are dropped (${dropped})`);
  assert.ok(c.tcpIn > 0, 'some reached TCP');
  // Distinct reasons were exercised, not just one early check.
  assert.ok(Object.keys(c.drops).length >= 8, `drop reasons seen: ${Object.keys(c.drops).join(' ')}`);

  // Now a real peer on the same link end: it connects to the fuzzed stack and is connected to.
  const peer = new Stack({ link: h.peer, addresses: [`${PEER4}/24`, `${PEER6}/64`], clock: h.clock, seed: 2 });
  const peerListener = peer.tcpListen({ port: 7 });
  peerListener.onConnection = (s) => {
    s.events = {
      onReadable: () => {
        const d = s.read();
        if (d !== null) s.write(d);
      },
      onEnd: () => s.close(),
    };
  };
  const echoed: string[] = [];
  const open = (from: Stack, host: string, port: number, text: string): void => {
    const conn = from.tcpConnect({ host, port });
    let got = '';
    conn.events = {
      onEstablished: () => {
        conn.write(new TextEncoder().encode(text));
      },
      onReadable: () => {
        got += new TextDecoder().decode(conn.read()!);
        if (got === text) {
          echoed.push(got);
          conn.close();
        }
      },
      onEnd: () => conn.close(),
    };
  };
  open(peer, US4, 80, 'to the fuzzed stack v4');
  open(peer, US6, 80, 'to the fuzzed stack v6');
  open(h.stack, PEER4, 7, 'from the fuzzed stack');
  h.clock.runUntilIdleSync({ maxMs: 10 * 60_000 });
  assert.deepEqual(echoed.sort(), ['from the fuzzed stack', 'to the fuzzed stack v4', 'to the fuzzed stack v6']);
  assert.equal(h.stack.counters.internalErrors, 0);
  assert.equal(peer.counters.internalErrors, 0);
});
