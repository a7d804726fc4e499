/** Test helpers for the wire codecs. */

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(next: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

/**
 * Real SYNs written by Linux 6.x to a TUN device (`connect()` to 10.99.0.2:80 and [fd99::2]:80),
 * checksums as the kernel computed them.
 */
export const LINUX_SYN_V4 = hex(
  '4500003c8bb2400040069a410a6300010a63000284d600501d10f02f00000000a002faf086ca0000' +
    '020405b40402080a37b6e75c000000000103030a',
);
export const LINUX_SYN_V6 = hex(
  '60073bbe00280640fd990000000000000000000000000001fd990000000000000000000000000002' +
    'dbdc00509d9eed5300000000a002fd208cca0000020405a00402080ab951a27e000000000103030a',
);
