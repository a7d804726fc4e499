import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import {
  icmpErrorLength, parseIcmpv4, parseIcmpv6, writeIcmpEcho, writeIcmpError, type IcmpMessage,
} from '../../src/wire/icmp.js';
import { parseIpPacket, type IpPacketInfo } from '../../src/wire/ip.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { ACK, writeTcp } from '../../src/wire/tcp.js';
import { hex, toHex } from './helpers.js';

// Real messages written by Linux 6.x on a TUN device: echo replies to pings from 10.98.0.2 and
// fd98::2, and port unreachables for UDP datagrams to a closed port 9.
const LINUX_ECHO_REPLY_V4 = hex('45000022ef4b0000400176c90a6200010a620002000078764242000173796e61636b');
const LINUX_UNREACH_V4 = hex(
  '45c0003cef4c0000400175ee0a6200010a620002030311e1000000004500002012344000401113d3' +
    '0a6200020a6200019c400009000c6ff570696e67',
);
const LINUX_ECHO_REPLY_V6 = hex(
  '6003f25d000e3a40fd980000000000000000000000000001fd980000000000000000000000000002' +
    '8100faf64343000273796e61636b',
);
const LINUX_UNREACH_V6 = hex(
  '6007b803003c3a40fd980000000000000000000000000001fd980000000000000000000000000002' +
    '010492210000000060000000000c1140fd980000000000000000000000000002fd98000000000000' +
    '0000000000000001' + '9c410009000c898670696e67',
);

function ip(p: Uint8Array): IpPacketInfo {
  const i = parseIpPacket(p);
  assert.equal(typeof i, 'object');
  return i as IpPacketInfo;
}

function parse(p: Uint8Array): IcmpMessage | string {
  const i = ip(p);
  const payload = p.subarray(i.payloadOffset, i.payloadOffset + i.payloadLength);
  if (i.version === 4) return parseIcmpv4(payload);
  return parseIcmpv6(payload, pseudoHeaderSum(i.src, i.dst, 58, payload.length));
}

function msg(x: IcmpMessage | string): IcmpMessage {
  assert.equal(typeof x, 'object', `expected a message, got ${String(x)}`);
  return x as IcmpMessage;
}

test('real Linux echo replies parse (v4 checksum over the message, v6 with pseudo-header)', () => {
  const m4 = msg(parse(LINUX_ECHO_REPLY_V4));
  assert.equal(m4.kind, 'echo-reply');
  if (m4.kind !== 'echo-reply') return;
  assert.equal(m4.id, 0x4242);
  assert.equal(m4.sequence, 1);
  assert.equal(new TextDecoder().decode(m4.data), 'synack');
  const m6 = msg(parse(LINUX_ECHO_REPLY_V6));
  assert.equal(m6.kind, 'echo-reply');
  if (m6.kind !== 'echo-reply') return;
  assert.equal(m6.id, 0x4343);
  assert.equal(m6.sequence, 2);
});

test('real Linux port unreachables parse with the quoted addresses and ports', () => {
  for (const p of [LINUX_UNREACH_V4, LINUX_UNREACH_V6]) {
    const m = msg(parse(p));
    assert.equal(m.kind, 'error');
    if (m.kind !== 'error') return;
    assert.equal(m.category, 'port-unreachable');
    assert.ok(m.original);
    assert.equal(m.original.protocol, 17);
    assert.equal(m.original.dstPort, 9);
    assert.equal(m.original.seq, undefined); // UDP has none
    assert.match(formatAddress(m.original.src), /^(10\.98\.0\.2|fd98::2)$/);
  }
});

test('writeIcmpEcho reproduces Linux echo replies byte for byte', () => {
  const v4 = LINUX_ECHO_REPLY_V4.subarray(20);
  const out4 = new Uint8Array(v4.length);
  assert.equal(writeIcmpEcho(out4, 0, 4, true, 0x4242, 1, new TextEncoder().encode('synack'), 0), v4.length);
  assert.equal(toHex(out4), toHex(v4));
  const v6 = LINUX_ECHO_REPLY_V6.subarray(40);
  const phs = pseudoHeaderSum(LINUX_ECHO_REPLY_V6.subarray(8, 24), LINUX_ECHO_REPLY_V6.subarray(24, 40), 58, v6.length);
  const out6 = new Uint8Array(v6.length + 2);
  assert.equal(writeIcmpEcho(out6, 2, 6, true, 0x4343, 2, new TextEncoder().encode('synack'), phs), v6.length);
  assert.equal(toHex(out6.subarray(2)), toHex(v6));
});

test('echo request round trip, and drops: truncated, bad checksum, unhandled types', () => {
  const out = new Uint8Array(20);
  const n = writeIcmpEcho(out, 0, 4, false, 7, 9, hex('0102030405'), 0);
  const m = msg(parseIcmpv4(out.subarray(0, n)));
  assert.deepEqual({ ...m, data: null }, { kind: 'echo-request', id: 7, sequence: 9, data: null });
  assert.equal(parseIcmpv4(out.subarray(0, 7)), 'icmp-truncated');
  const bad = out.slice(0, n);
  bad[9] ^= 1;
  assert.equal(parseIcmpv4(bad), 'icmp-bad-checksum');
  // A v6 message checked without the right pseudo-header fails.
  const v6 = LINUX_ECHO_REPLY_V6.subarray(40);
  assert.equal(parseIcmpv6(v6, 0), 'icmp-bad-checksum');
  assert.equal(parseIcmpv6(v6.subarray(0, 4), 0), 'icmp-truncated');
  // Timestamp request (13) and a v6 Neighbor Solicitation (135) are not handled here.
  // (writeIcmpError writes any type/code with a correct checksum.)
  const ts = new Uint8Array(20);
  writeIcmpError(ts, 0, 4, 13, 0, new Uint8Array(12), 0);
  assert.equal(parseIcmpv4(ts), 'icmp-unhandled');
  const src = parseAddress('fe80::1')!;
  const dst = parseAddress('ff02::1:ff00:2')!;
  const ns = new Uint8Array(24);
  writeIcmpError(ns, 0, 6, 135, 0, new Uint8Array(16), pseudoHeaderSum(src, dst, 58, 24));
  assert.equal(parseIcmpv6(ns, pseudoHeaderSum(src, dst, 58, 24)), 'icmp-unhandled');
});

/** The IP packet of a TCP segment from 10.0.0.1:49152 to 10.0.0.2:80 (or fd00::1 -> fd00::2). */
function tcpPacket(version: 4 | 6, seq: number): Uint8Array {
  const src = parseAddress(version === 4 ? '10.0.0.1' : 'fd00::1')!;
  const dst = parseAddress(version === 4 ? '10.0.0.2' : 'fd00::2')!;
  const hl = version === 4 ? 20 : 40;
  const p = new Uint8Array(hl + 20 + 100);
  writeTcp(p, hl, { srcPort: 49152, dstPort: 80, seq, ack: 1, flags: ACK, window: 100, urgent: 0, options: {}, payload: new Uint8Array(100) },
    pseudoHeaderSum(src, dst, 6, 120));
  if (version === 4) writeIpv4Header(p, 0, src, dst, 6, 120, 64, 1);
  else writeIpv6Header(p, 0, src, dst, 6, 120, 64);
  return p;
}

/** An ICMP error from a router at 192.0.2.1 / 2001:db8::1 back to the TCP sender. */
function errorPacket(version: 4 | 6, type: number, code: number, original: Uint8Array, word = 0): Uint8Array {
  const src = parseAddress(version === 4 ? '192.0.2.1' : '2001:db8::1')!;
  const dst = parseAddress(version === 4 ? '10.0.0.1' : 'fd00::1')!;
  const hl = version === 4 ? 20 : 40;
  const len = icmpErrorLength(version, original.length);
  const p = new Uint8Array(hl + len);
  const phs = version === 4 ? 0 : pseudoHeaderSum(src, dst, 58, len);
  assert.equal(writeIcmpError(p, hl, version, type, code, original, phs, word), len);
  if (version === 4) writeIpv4Header(p, 0, src, dst, 1, len, 64, 2);
  else writeIpv6Header(p, 0, src, dst, 58, len, 64);
  return p;
}

test('errors quoting TCP give ports and SEQ, per category (RFC 792, RFC 4443, RFC 1191)', () => {
  const cases: Array<[4 | 6, number, number, string, number, number | undefined]> = [
    [4, 3, 0, 'unreachable', 0, undefined],
    [4, 3, 1, 'unreachable', 0, undefined],
    [4, 3, 2, 'proto-unreachable', 0, undefined],
    [4, 3, 3, 'port-unreachable', 0, undefined],
    [4, 3, 4, 'frag-needed', 1400, 1400],
    [4, 11, 0, 'time-exceeded', 0, undefined],
    [4, 12, 0, 'parameter-problem', 0, undefined],
    [4, 4, 0, 'other', 0, undefined],
    [6, 1, 0, 'unreachable', 0, undefined],
    [6, 1, 4, 'port-unreachable', 0, undefined],
    [6, 2, 0, 'packet-too-big', 1280, 1280],
    [6, 3, 0, 'time-exceeded', 0, undefined],
    [6, 4, 0, 'parameter-problem', 0, undefined],
    [6, 4, 1, 'proto-unreachable', 0, undefined],
    [6, 100, 0, 'other', 0, undefined],
  ];
  for (const [v, type, code, category, word, mtu] of cases) {
    const m = msg(parse(errorPacket(v, type, code, tcpPacket(v, 0xdeadbeef), word)));
    assert.equal(m.kind, 'error');
    if (m.kind !== 'error') return;
    const label = `v${v} type ${type} code ${code}`;
    assert.equal(m.type, type, label);
    assert.equal(m.code, code, label);
    assert.equal(m.category, category, label);
    assert.equal(m.mtu, mtu, label);
    assert.ok(m.original, label);
    assert.equal(formatAddress(m.original.src), v === 4 ? '10.0.0.1' : 'fd00::1');
    assert.equal(formatAddress(m.original.dst), v === 4 ? '10.0.0.2' : 'fd00::2');
    assert.equal(m.original.protocol, 6);
    assert.equal(m.original.srcPort, 49152);
    assert.equal(m.original.dstPort, 80);
    assert.equal(m.original.seq, 0xdeadbeef);
  }
});

test('a quote of only the IP header plus 4 bytes gives ports but no SEQ; less gives no original', () => {
  const full = tcpPacket(4, 5);
  let m = msg(parse(errorPacket(4, 3, 1, full.subarray(0, 24))));
  assert.ok(m.kind === 'error' && m.original);
  assert.equal(m.original.dstPort, 80);
  assert.equal(m.original.seq, undefined);
  m = msg(parse(errorPacket(4, 3, 1, full.subarray(0, 12))));
  assert.ok(m.kind === 'error');
  assert.equal(m.original, null);
});

test('an IPv6 quote with extension headers is walked to TCP; a non-first fragment has no ports', () => {
  const t = tcpPacket(6, 77);
  // Insert a Destination Options header (PadN) between the IPv6 header and TCP.
  const withExt = new Uint8Array(t.length + 8);
  withExt.set(t.subarray(0, 40));
  withExt[6] = 60;
  withExt.set(hex('0600010400000000'), 40);
  withExt.set(t.subarray(40), 48);
  let m = msg(parse(errorPacket(6, 1, 4, withExt)));
  assert.ok(m.kind === 'error' && m.original);
  assert.equal(m.original.protocol, 6);
  assert.equal(m.original.seq, 77);
  // Fragment header with offset 8: the bytes after it are not a TCP header.
  const frag = withExt.slice();
  frag[6] = 44;
  frag.set(hex('0600004012345678'), 40);
  m = msg(parse(errorPacket(6, 1, 4, frag)));
  assert.ok(m.kind === 'error' && m.original);
  assert.equal(m.original.protocol, 6);
  assert.equal(m.original.srcPort, undefined);
});

test('error quotes are capped: 576 bytes of IPv4, 1280 of IPv6', () => {
  assert.equal(icmpErrorLength(4, 2000), 576 - 20);
  assert.equal(icmpErrorLength(6, 2000), 1280 - 40);
  assert.equal(icmpErrorLength(4, 100), 108);
  const big = new Uint8Array(1500);
  big.set(tcpPacket(4, 1));
  const p = errorPacket(4, 3, 3, big);
  assert.equal(p.length, 576);
});
