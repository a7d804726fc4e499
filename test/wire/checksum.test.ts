import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumFinish, internetChecksum, pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import { hex, LINUX_SYN_V4, LINUX_SYN_V6, randomBytes, rng } from './helpers.js';

/** The definition, 16 bits at a time, for comparison. */
function naiveSum(b: Uint8Array, offset: number, length: number, initial = 0): number {
  let s = initial;
  for (let i = 0; i < length; i += 2) {
    const hi = b[offset + i];
    const lo = i + 1 < length ? b[offset + i + 1] : 0;
    s += (hi << 8) | lo;
  }
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

test('RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
  const b = hex('0001f203f4f5f6f7');
  assert.equal(sum16(b, 0, 8), 0xddf2);
  assert.equal(internetChecksum(b, 0, 8), 0x220d);
});

test('a real IPv4 header (checksum b861) verifies, and recomputes to b861', () => {
  const h = hex('45000073000040004011b861c0a80001c0a800c7');
  assert.equal(sum16(h, 0, 20), 0xffff);
  h[10] = 0;
  h[11] = 0;
  assert.equal(internetChecksum(h, 0, 20), 0xb861);
});

test('matches the 16-bit definition for every offset and length, odd ones included', () => {
  const next = rng(1);
  const backing = randomBytes(next, 400);
  for (let shift = 0; shift < 4; shift++) {
    // Views that start at unaligned byteOffsets exercise the aligned-word path's head handling.
    const buf = backing.subarray(shift);
    for (let offset = 0; offset < 9; offset++) {
      for (let length = 0; length < 300; length += length < 70 ? 1 : 37) {
        assert.equal(sum16(buf, offset, length), naiveSum(buf, offset, length), `${shift}/${offset}/${length}`);
        assert.equal(sum16(buf, offset, length, 0xfffe), naiveSum(buf, offset, length, 0xfffe));
      }
    }
  }
});

test('all-ones data does not overflow and folds to ffff', () => {
  const b = new Uint8Array(70000).fill(0xff);
  assert.equal(sum16(b, 0, b.length), naiveSum(b, 0, b.length));
  assert.equal(sum16(b, 3, 65535), naiveSum(b, 3, 65535));
});

test('sums compose when the first piece has even length', () => {
  const b = randomBytes(rng(2), 1500);
  const whole = sum16(b, 0, 1500);
  for (const cut of [0, 2, 20, 40, 64, 1000, 1500]) {
    assert.equal(sum16(b, cut, 1500 - cut, sum16(b, 0, cut)), whole);
  }
});

test('the same buffer summed through different ArrayBuffers gives the same answer', () => {
  const a = randomBytes(rng(3), 200);
  const b = new Uint8Array(a);
  assert.equal(sum16(a, 1, 150), sum16(b, 1, 150));
  assert.equal(sum16(a, 0, 64), naiveSum(a, 0, 64));
});

test('checksumFinish complements', () => {
  assert.equal(checksumFinish(0), 0xffff);
  assert.equal(checksumFinish(0xffff), 0);
  assert.equal(checksumFinish(0x1234), 0xedcb);
});

test('pseudo-header sums verify real Linux SYNs (IPv4 RFC 9293 §3.1, IPv6 RFC 8200 §8.1)', () => {
  const v4 = LINUX_SYN_V4;
  const p4 = pseudoHeaderSum(v4.subarray(12, 16), v4.subarray(16, 20), 6, v4.length - 20);
  assert.equal(sum16(v4, 20, v4.length - 20, p4), 0xffff);
  const v6 = LINUX_SYN_V6;
  const p6 = pseudoHeaderSum(v6.subarray(8, 24), v6.subarray(24, 40), 6, v6.length - 40);
  assert.equal(sum16(v6, 40, v6.length - 40, p6), 0xffff);
  // A wrong protocol or length must break it.
  assert.notEqual(sum16(v4, 20, v4.length - 20, pseudoHeaderSum(v4.subarray(12, 16), v4.subarray(16, 20), 17, 40)), 0xffff);
  assert.notEqual(sum16(v6, 40, v6.length - 40, pseudoHeaderSum(v6.subarray(8, 24), v6.subarray(24, 40), 6, 41)), 0xffff);
});

test('pseudoHeaderSum equals the sum over the literal IPv6 pseudo-header, 32-bit length included', () => {
  const next = rng(4);
  const src = randomBytes(next, 16);
  const dst = randomBytes(next, 16);
  const len = 0x12345; // above 16 bits: both halves of the 32-bit length count
  const ph = new Uint8Array(40);
  ph.set(src, 0);
  ph.set(dst, 16);
  ph[32] = 0;
  ph[33] = 1;
  ph[34] = 0x23;
  ph[35] = 0x45;
  ph[39] = 58;
  assert.equal(pseudoHeaderSum(src, dst, 58, len), naiveSum(ph, 0, 40));
});
