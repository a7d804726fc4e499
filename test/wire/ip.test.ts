import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/wire/address.js';
import { sum16 } from '../../src/wire/checksum.js';
import { parseIpPacket, type IpPacketInfo } from '../../src/wire/ip.js';
import { parseIpv4, writeIpv4Header } from '../../src/wire/ipv4.js';
import { parseIpv6, writeIpv6Header } from '../../src/wire/ipv6.js';
import { hex, LINUX_SYN_V4, LINUX_SYN_V6, toHex } from './helpers.js';

function info(x: IpPacketInfo | string): IpPacketInfo {
  assert.equal(typeof x, 'object', `expected a packet, got ${String(x)}`);
  return x as IpPacketInfo;
}

/** Recomputes the IPv4 header checksum after a test edits the header. */
function refreshIpv4Checksum(p: Uint8Array): void {
  const ihl = (p[0] & 0xf) * 4;
  p[10] = 0;
  p[11] = 0;
  const c = ~sum16(p, 0, ihl) & 0xffff;
  p[10] = c >>> 8;
  p[11] = c & 0xff;
}

const SRC4 = parseAddress('10.0.0.1')!;
const DST4 = parseAddress('10.0.0.2')!;
const SRC6 = parseAddress('fd00::1')!;
const DST6 = parseAddress('fd00::2')!;

function ipv4Packet(payload: Uint8Array, protocol = 6): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  writeIpv4Header(p, 0, SRC4, DST4, protocol, payload.length, 64, 0x1234);
  p.set(payload, 20);
  return p;
}

test('a real Linux IPv4 SYN parses', () => {
  const i = info(parseIpv4(LINUX_SYN_V4));
  assert.equal(i.version, 4);
  assert.equal(toHex(i.src), '0a630001');
  assert.equal(toHex(i.dst), '0a630002');
  assert.equal(i.protocol, 6);
  assert.equal(i.ttl, 64);
  assert.equal(i.payloadOffset, 20);
  assert.equal(i.payloadLength, 40);
  // src/dst are views into the packet, not copies.
  assert.equal(i.src.buffer, LINUX_SYN_V4.buffer);
});

test('a real Linux IPv6 SYN parses', () => {
  const i = info(parseIpPacket(LINUX_SYN_V6));
  assert.equal(i.version, 6);
  assert.equal(toHex(i.src), 'fd990000000000000000000000000001');
  assert.equal(i.protocol, 6);
  assert.equal(i.ttl, 64);
  assert.equal(i.payloadOffset, 40);
  assert.equal(i.payloadLength, 40);
});

test('writeIpv4Header: the bytes of a known header (DF, checksum) and its parse', () => {
  const out = new Uint8Array(24);
  assert.equal(writeIpv4Header(out, 2, SRC4, DST4, 6, 40, 64, 0xbeef), 20);
    const h = out.subarray(2, 22);
  assert.equal(toHex(h.subarray(0, 10)), '4500003cbeef40004006');
  assert.equal(toHex(h.subarray(12)), '0a0000010a000002');
  assert.equal(sum16(h, 0, 20), 0xffff);
  // 4500+003c+beef+4000+4006+0a00+0001+0a00+0002 = 0x19834 -> folded 0x9835 -> complemented 0x67ca
  assert.equal(toHex(h.subarray(10, 12)), '67ca');
});

test('IPv4 trailing link padding is trimmed to Total Length', () => {
  const p = new Uint8Array(70);
  p.set(LINUX_SYN_V4);
  const i = info(parseIpv4(p));
  assert.equal(i.payloadLength, 40);
});

test('IPv4 options are skipped by IHL', () => {
  const payload = hex('deadbeef');
  const p = new Uint8Array(24 + 4);
  writeIpv4Header(p, 0, SRC4, DST4, 6, 8, 64, 1);
  p[0] = 0x46; // IHL 6: one word of options
  p[20] = 1; // NOP NOP NOP EOL
  p[21] = 1;
  p[22] = 1;
  p[23] = 0;
  p.set(payload, 24);
  refreshIpv4Checksum(p);
  const i = info(parseIpv4(p));
  assert.equal(i.payloadOffset, 24);
  assert.equal(i.payloadLength, 4);
});

test('IPv4 drops', () => {
  const good = ipv4Packet(new Uint8Array(8));
  assert.equal(parseIpv4(good.subarray(0, 19)), 'ip-truncated');
  assert.equal(parseIpPacket(new Uint8Array(0)), 'ip-truncated');

  let p = good.slice();
  p[0] = 0x55;
  assert.equal(parseIpPacket(p), 'ip-bad-version');
  assert.equal(parseIpv4(p), 'ip-bad-version');

  p = good.slice();
  p[0] = 0x44; // IHL 4 < 5
  refreshIpv4Checksum(p);
  assert.equal(parseIpv4(p), 'ipv4-bad-ihl');
  p = good.slice();
  p[0] = 0x4f; // IHL 15 = 60 bytes > 28-byte packet
  assert.equal(parseIpv4(p), 'ipv4-bad-ihl');

  p = good.slice();
  p[3] = 29; // total length past the buffer
  refreshIpv4Checksum(p);
  assert.equal(parseIpv4(p), 'ipv4-bad-length');
  p = good.slice();
  p[3] = 19; // total length shorter than the header
  refreshIpv4Checksum(p);
  assert.equal(parseIpv4(p), 'ipv4-bad-length');

  p = good.slice();
  p[8] ^= 1; // TTL changed without fixing the checksum
  assert.equal(parseIpv4(p), 'ipv4-bad-checksum');

  p = good.slice();
  p[6] = 0x20; // MF
  refreshIpv4Checksum(p);
  assert.equal(parseIpv4(p), 'ipv4-fragment');
  p = good.slice();
  p[6] = 0x40; // DF and offset 8: a later fragment
  p[7] = 1;
  refreshIpv4Checksum(p);
  assert.equal(parseIpv4(p), 'ipv4-fragment');
  p = good.slice();
  p[6] = 0x40; // DF alone is fine
  p[7] = 0;
  refreshIpv4Checksum(p);
  assert.equal(typeof parseIpv4(p), 'object');
});

test('writeIpv6Header writes the fixed header', () => {
  const out = new Uint8Array(40);
  assert.equal(writeIpv6Header(out, 0, SRC6, DST6, 6, 0x0123, 255), 40);
  assert.equal(toHex(out.subarray(0, 8)), '60000000012306ff');
  assert.equal(toHex(out.subarray(8, 24)), toHex(SRC6));
  assert.equal(toHex(out.subarray(24, 40)), toHex(DST6));
});

/** An IPv6 packet whose payload is `chain` (extension headers + upper layer), first next header `nh`. */
function ipv6Packet(nh: number, chain: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + chain.length);
  writeIpv6Header(p, 0, SRC6, DST6, nh, chain.length, 64);
  p.set(chain, 40);
  return p;
}

test('IPv6 extension headers are walked to the upper layer', () => {
  // Hop-by-Hop (8 bytes: next=60, len 0, PadN 4) -> Destination Options (16 bytes: next=43, len 1,
  // Pad1 then a skippable unknown option 0x1e and PadN) -> Routing (8 bytes, segments left 0,
  // next=6) -> 4 bytes of "TCP".
  const chain = hex(
    '3c00' + '0104' + '00000000' +
      '2b01' + '00' + '1e03aabbcc' + '0106' + '000000000000' +
      '0600' + '0000' + '00000000' +
      'cafef00d',
  );
  const i = info(parseIpv6(ipv6Packet(0, chain)));
  assert.equal(i.protocol, 6);
  assert.equal(i.payloadOffset, 40 + 8 + 16 + 8);
  assert.equal(i.payloadLength, 4);
});

test('IPv6 drops', () => {
  const tcp = hex('cafef00d');
  assert.equal(parseIpv6(ipv6Packet(6, tcp).subarray(0, 39)), 'ip-truncated');
  let p = ipv6Packet(6, tcp);
  p[0] = 0x40;
  assert.equal(parseIpv6(p), 'ip-bad-version');
  p = ipv6Packet(6, tcp);
  assert.equal(parseIpv6(p.subarray(0, 43)), 'ipv6-bad-length');
  // Trailing bytes past Payload Length are trimmed, not an error.
  const padded = new Uint8Array(p.length + 10);
  padded.set(p);
  assert.equal(info(parseIpv6(padded)).payloadLength, 4);

  // Fragment header (44).
  assert.equal(parseIpv6(ipv6Packet(44, hex('0600000112345678cafef00d'))), 'ipv6-fragment');
  // Behind a Destination Options header too.
  assert.equal(parseIpv6(ipv6Packet(60, hex('2c00010400000000' + '0600000112345678'))), 'ipv6-fragment');
  // No Next Header.
  assert.equal(parseIpv6(ipv6Packet(59, new Uint8Array(0))), 'ipv6-no-next-header');
  // A chain running past the payload: Hdr Ext Len 1 (16 bytes) with only 8 present.
  assert.equal(parseIpv6(ipv6Packet(60, hex('0601010400000000'))), 'ipv6-bad-extension');
  // An extension header shorter than its minimum 8 bytes.
  assert.equal(parseIpv6(ipv6Packet(0, hex('0600'))), 'ipv6-bad-extension');
  // Hop-by-Hop anywhere but first (RFC 8200 §4.1).
  assert.equal(parseIpv6(ipv6Packet(60, hex('0000010400000000' + '0600010400000000'))), 'ipv6-bad-extension');
  // An unknown option whose type says "discard" (high bits 01), and the Jumbo option (0xc2).
  assert.equal(parseIpv6(ipv6Packet(60, hex('0600' + '7f0400000000'))), 'ipv6-bad-extension');
  assert.equal(parseIpv6(ipv6Packet(0, hex('0600' + 'c20400010000'))), 'ipv6-bad-extension');
  // An option overrunning its header.
  assert.equal(parseIpv6(ipv6Packet(60, hex('0600' + '01050000000000'.slice(0, 12)))), 'ipv6-bad-extension');
  // A routing header with segments left: we are not the final destination (RFC 8200 §4.4).
  assert.equal(parseIpv6(ipv6Packet(43, hex('0600040100000000'))), 'ipv6-bad-extension');
});

test('an unknown upper-layer next header is returned as the protocol for the stack to refuse', () => {
  const i = info(parseIpv6(ipv6Packet(17, hex('00350035000c0000aabbccdd'))));
  assert.equal(i.protocol, 17);
  assert.equal(i.payloadLength, 12);
});
