/** The UDP codec (RFC 768; RFC 8200 §8.1 for the IPv6 checksum rule). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import { PROTO_UDP } from '../../src/wire/ip.js';
import { parseUdp, writeUdp, UDP_HEADER_LENGTH } from '../../src/wire/udp.js';

const a4 = parseAddress('10.0.0.1')!;
const b4 = parseAddress('10.0.0.2')!;
const a6 = parseAddress('fd00::1')!;
const b6 = parseAddress('fd00::2')!;

function datagram(src: Uint8Array, dst: Uint8Array, payload: Uint8Array, srcPort = 5353, dstPort = 53): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LENGTH + payload.length);
  writeUdp(out, 0, srcPort, dstPort, payload, pseudoHeaderSum(src, dst, PROTO_UDP, out.length));
  return out;
}

test('writeUdp lays out RFC 768: ports, length, checksum over the pseudo-header; parseUdp reads it back', () => {
  const payload = new TextEncoder().encode('hello');
  const d = datagram(a4, b4, payload);
  assert.deepEqual([...d.subarray(0, 6)], [0x14, 0xe9, 0x00, 0x35, 0x00, 13]);
  assert.equal(sum16(d, 0, d.length, pseudoHeaderSum(a4, b4, PROTO_UDP, d.length)), 0xffff);
  const p = parseUdp(d, pseudoHeaderSum(a4, b4, PROTO_UDP, d.length), 4);
  assert.ok(typeof p !== 'string');
  assert.equal(p.srcPort, 5353);
  assert.equal(p.dstPort, 53);
  assert.deepEqual([...p.payload], [...payload]);
});

test('a checksum that computes to 0 is sent as 0xffff (RFC 768) and still verifies', () => {
  // Search a 2-byte payload that makes the checksum 0 before the substitution.
  const sum = pseudoHeaderSum(a4, b4, PROTO_UDP, 10);
  let found: Uint8Array | null = null;
  for (let x = 0; x < 0x10000 && found === null; x++) {
    const payload = new Uint8Array([x >>> 8, x & 0xff]);
    const d = new Uint8Array(10);
    writeUdp(d, 0, 1, 2, payload, sum, false);
    if ((~sum16(d, 0, 10, sum) & 0xffff) === 0) found = payload;
  }
  assert.ok(found !== null);
  const d = datagram(a4, b4, found, 1, 2);
  assert.deepEqual([d[6], d[7]], [0xff, 0xff]);
  assert.ok(typeof parseUdp(d, sum, 4) !== 'string');
});

test('checksum 0 means none over IPv4 and is accepted; over IPv6 it is a drop (RFC 8200 §8.1)', () => {
  const d4 = new Uint8Array(12);
  writeUdp(d4, 0, 1, 2, new Uint8Array([9, 9, 9, 9]), 0, false);
  assert.equal(d4[6], 0);
  const p = parseUdp(d4, pseudoHeaderSum(a4, b4, PROTO_UDP, 12), 4);
  assert.ok(typeof p !== 'string' && p.checksum === 0);
  assert.equal(parseUdp(d4, pseudoHeaderSum(a6, b6, PROTO_UDP, 12), 6), 'udp-checksum-zero');
});

test('bad checksum, short header, Length out of range; verify false skips the checksum; padding trimmed', () => {
  const d = datagram(a6, b6, new Uint8Array([1, 2, 3]));
  const sum = pseudoHeaderSum(a6, b6, PROTO_UDP, d.length);
  const bad = d.slice();
  bad[8] ^= 1;
  assert.equal(parseUdp(bad, sum, 6), 'udp-bad-checksum');
  assert.ok(typeof parseUdp(bad, sum, 6, false) !== 'string');
  assert.equal(parseUdp(d.subarray(0, 7), sum, 6), 'udp-truncated');
  const long = d.slice();
  long[5] = d.length + 1;
  assert.equal(parseUdp(long, sum, 6), 'udp-bad-length');
  const short = d.slice();
  short[5] = 7;
  assert.equal(parseUdp(short, sum, 6), 'udp-bad-length');
  // Link padding after the datagram: Length decides where the payload ends.
  const padded = new Uint8Array(d.length + 4);
  padded.set(d);
  const p = parseUdp(padded, sum, 6);
  assert.ok(typeof p !== 'string');
  assert.deepEqual([...p.payload], [1, 2, 3]);
});
