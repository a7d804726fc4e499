/**
 * Property tests for the UDP codec (src/wire/udp.ts): round trips over both families with any
 * ports and payloads, totality on arbitrary bytes, and that the checksum catches every single-bit
 * flip of the header or payload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { PROTO_UDP } from '../../src/wire/ip.js';
import { parseUdp, writeUdp } from '../../src/wire/udp.js';
import { DROP_REASONS, addressPairArb, u16 } from './gen.js';

test('UDP: parse(writeUdp(x)) gives x back in both families, at any offset, with link padding', () => {
  fc.assert(fc.property(
    addressPairArb(), u16, u16, fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }),
    ({ src, dst }, srcPort, dstPort, payload, at, padding) => {
      const len = 8 + payload.length;
      const buf = new Uint8Array(at + len + padding);
      const sum = pseudoHeaderSum(src, dst, PROTO_UDP, len);
      assert.equal(writeUdp(buf, at, srcPort, dstPort, payload, sum), len);
      const version = src.length === 4 ? 4 : 6;
      const p = parseUdp(buf.subarray(at), sum, version);
      if (typeof p === 'string') assert.fail(`dropped: ${p}`);
      assert.equal(p.srcPort, srcPort);
      assert.equal(p.dstPort, dstPort);
      assert.deepEqual([...p.payload], [...payload]);
      assert.notEqual(p.checksum, 0, 'a computed checksum is never sent as 0');
    },
  ), { numRuns: 300 });
});

test('UDP: any bytes parse to a datagram or a known drop reason, never a throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), u16, fc.constantFrom(4 as const, 6 as const), fc.boolean(), (bytes, sum, version, verify) => {
    const p = parseUdp(bytes, sum, version, verify);
    if (typeof p === 'string') assert.ok(DROP_REASONS.has(p), p);
    else assert.ok(p.payload.length <= bytes.length - 8);
  }), { numRuns: 2000 });
});

test('UDP: every single-bit flip of a datagram outside the Length field is caught by the checksum', () => {
  fc.assert(fc.property(addressPairArb(), u16, u16, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), ({ src, dst }, sp, dp, payload, pick) => {
    const len = 8 + payload.length;
    const d = new Uint8Array(len);
    const sum = pseudoHeaderSum(src, dst, PROTO_UDP, len);
    writeUdp(d, 0, sp, dp, payload, sum);
    // Not the Length field (bits 32..47): a shorter Length drops bytes from the sum, which a
    // checksum catches almost always, not always.
    let bit = pick % (len * 8 - 16);
    if (bit >= 32) bit += 16;
    d[bit >>> 3] ^= 1 << (bit & 7);
    const p = parseUdp(d, sum, src.length === 4 ? 4 : 6);
    // A flip in the checksum field that turns it to 0 over IPv4 means "no checksum": allowed.
    if (typeof p !== 'string') assert.ok(p.checksum === 0 && src.length === 4, 'a flipped datagram passed');
  }), { numRuns: 500 });
});
