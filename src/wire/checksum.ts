/**
 * The Internet checksum (RFC 1071; used by IPv4 RFC 791 §3.1, TCP RFC 9293 §3.1, ICMP RFC 792,
 * ICMPv6 RFC 4443 §2.3).
 *
 * `sum16` returns the ones'-complement sum folded to 16 bits and NOT complemented, so sums compose:
 * the pseudo-header sum is passed as `initial` to the sum over the segment, and `checksumFinish`
 * complements once at the end.
 */

// RFC 1071 §2(B, C): the ones'-complement sum is independent of byte order and may be taken over
// wider words with the carries folded in at the end. So the aligned middle of the range is read as
// native-order 32-bit words through a Uint32Array (about twice as fast as byte or DataView reads),
// each word's two 16-bit halves added up, and the result byte-swapped when the native halves are
// the reverse of the checksum's big-endian words. One view is kept for the last buffer seen: the
// stack sums segments living in a few long-lived buffers, so the steady state allocates nothing.
// Two entries, since in one process the stack sums its own outgoing packets and verifies its
// peer's (two slabs, packet.ts) alternately.
let cachedBuffer: ArrayBufferLike | null = null;
let cachedWords: Uint32Array = new Uint32Array(0);
let cachedBuffer2: ArrayBufferLike | null = null;
let cachedWords2: Uint32Array = new Uint32Array(0);

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function wordsOf(buf: Uint8Array): Uint32Array {
  const b = buf.buffer;
  // The length check catches a resizable ArrayBuffer that grew since the view was made.
  if (b === cachedBuffer && cachedWords.length === b.byteLength >>> 2) return cachedWords;
  if (b === cachedBuffer2 && cachedWords2.length === b.byteLength >>> 2) {
    const w = cachedWords2;
    cachedBuffer2 = cachedBuffer;
    cachedWords2 = cachedWords;
    cachedBuffer = b;
    cachedWords = w;
    return w;
  }
  cachedBuffer2 = cachedBuffer;
  cachedWords2 = cachedWords;
  cachedBuffer = b;
  cachedWords = new Uint32Array(b, 0, b.byteLength >>> 2);
  return cachedWords;
}

/** Folds a non-negative integer sum (< 2^53) into 16 bits, end-around carries included. */
function fold(sum: number): number {
  // Bitwise operators truncate to 32 bits, so reduce big sums arithmetically first.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum >>> 16) + (sum & 0xffff);
  sum = (sum >>> 16) + (sum & 0xffff);
  return sum;
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/**
 * Ones'-complement sum of `length` bytes of `buf` starting at `offset`, as big-endian 16-bit words,
 * plus `initial`, folded to 0..0xffff. An odd trailing byte is padded with a zero byte (RFC 9293
 * §3.1), so only the last piece of a composed sum may have odd length.
 */
export function sum16(buf: Uint8Array, offset: number, length: number, initial = 0): number {
  let sum = initial;
  const end = offset + length;
  let i = offset;
  if (length >= 32) {
    // Head: single bytes until the absolute address is 4-aligned; even positions (relative to
    // `offset`) are the high byte of a checksum word, odd ones the low byte.
    const base = buf.byteOffset;
    while (((base + i) & 3) !== 0) {
      sum += ((i - offset) & 1) === 0 ? buf[i] << 8 : buf[i];
      i++;
    }
    const words = wordsOf(buf);
    let w = (base + i) >>> 2;
    const wordEnd = w + ((end - i) >>> 2);
    let halves = 0;
    // Whole 32-bit words are added as they are (RFC 1071 §2(C): a sum over wider words, folded at
    // the end, is the same ones'-complement sum, since 2^16 ≡ 1 mod 2^16 − 1). Each word adds
    // < 2^32; folding every 2^20 words (4 MiB) keeps the sum exact in a double (< 2^53).
    while (w < wordEnd) {
      let chunkEnd = w + 0x100000;
      if (chunkEnd > wordEnd) chunkEnd = wordEnd;
      let acc = 0;
      for (; w + 7 < chunkEnd; w += 8) {
        acc += words[w]! + words[w + 1]! + words[w + 2]! + words[w + 3]! +
          words[w + 4]! + words[w + 5]! + words[w + 6]! + words[w + 7]!;
      }
      for (; w < chunkEnd; w++) acc += words[w]!;
      halves = fold(halves + acc);
    }
    const evenStart = ((i - offset) & 1) === 0;
    // Native halves equal the big-endian words only on a big-endian host starting at an even
    // position, or on a little-endian host starting at an odd one (the words straddle pairs).
    sum += LITTLE_ENDIAN === evenStart ? swap16(halves) : halves;
    i = (wordEnd << 2) - base;
  }
  if (((i - offset) & 1) === 0) {
    for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
    if (i < end) sum += buf[i] << 8;
  } else {
    // Only reached after an odd-length head: i is at a low byte.
    for (; i + 1 < end; i += 2) sum += buf[i] | (buf[i + 1] << 8);
    if (i < end) sum += buf[i];
  }
  return fold(sum);
}

/** The checksum field value for a folded sum: its ones' complement. */
export function checksumFinish(sum: number): number {
  return ~sum & 0xffff;
}

/** The Internet checksum of a byte range, ready to store in a header. */
export function internetChecksum(buf: Uint8Array, offset: number, length: number): number {
  return checksumFinish(sum16(buf, offset, length));
}

/**
 * Folded sum of the pseudo-header that TCP, UDP and ICMPv6 checksums cover: RFC 9293 §3.1 for IPv4
 * (src, dst, zero, protocol, TCP length) when the addresses are 4 bytes; RFC 8200 §8.1 for IPv6
 * (src, dst, 32-bit upper-layer length, zero, next header) when they are 16. The two lay the length
 * and protocol out differently, but their ones'-complement sums are the same, since zero words add
 * nothing and a 32-bit length < 2^16 contributes only its low word.
 */
export function pseudoHeaderSum(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  upperLength: number,
): number {
  let sum = protocol + (upperLength & 0xffff) + (upperLength >>> 16);
  for (let i = 0; i + 1 < src.length; i += 2) sum += (src[i] << 8) | src[i + 1];
  for (let i = 0; i + 1 < dst.length; i += 2) sum += (dst[i] << 8) | dst[i + 1];
  return fold(sum);
}
