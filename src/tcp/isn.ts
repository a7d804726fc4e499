/**
 * Initial sequence numbers, RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
 * M a timer ticking every 4 µs, F a keyed pseudo-random function. F here is HalfSipHash-2-4 (the
 * 32-bit SipHash variant; Linux uses SipHash for the same purpose), keyed by a per-stack secret.
 * The same PRF keys the ephemeral-port choice of RFC 6056 (stack/ports.ts).
 */

function rotl(x: number, b: number): number {
  return ((x << b) | (x >>> (32 - b))) >>> 0;
}

/** HalfSipHash-2-4 with a 64-bit key (two 32-bit words) over 32-bit words; 32-bit output. */
export function halfSipHash(k0: number, k1: number, words: ArrayLike<number>): number {
  let v0 = k0 >>> 0;
  let v1 = k1 >>> 0;
  let v2 = (0x6c796765 ^ k0) >>> 0;
  let v3 = (0x74656462 ^ k1) >>> 0;
  const round = (): void => {
    v0 = (v0 + v1) >>> 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
    v2 = (v2 + v3) >>> 0; v3 = rotl(v3, 8); v3 ^= v2;
    v0 = (v0 + v3) >>> 0; v3 = rotl(v3, 7); v3 ^= v0;
    v2 = (v2 + v1) >>> 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
  };
  for (let i = 0; i < words.length; i++) {
    const m = words[i]! >>> 0;
    v3 ^= m; round(); round(); v0 ^= m;
  }
  const b = ((words.length * 4) << 24) >>> 0;
  v3 ^= b; round(); round(); v0 ^= b;
  v2 ^= 0xff;
  round(); round(); round(); round();
  return (v1 ^ v3) >>> 0;
}

/** Pack addresses (4 or 16 bytes) and ports into 32-bit words for the PRF. */
export function tupleWords(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number[] {
  const words: number[] = [];
  for (const a of [local, remote]) {
    for (let i = 0; i < a.length; i += 4) {
      words.push(((a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!) >>> 0);
    }
  }
  words.push(((localPort << 16) | remotePort) >>> 0);
  return words;
}

export class IsnGenerator {
  constructor(private readonly k0: number, private readonly k1: number) {}

  /** RFC 6528 §3: M is a 4 µs timer; nowMs is the stack clock. */
  isn(nowMs: number, local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number {
    const m = Math.floor(nowMs * 250) >>> 0;
    return (m + halfSipHash(this.k0, this.k1, tupleWords(local, localPort, remote, remotePort))) >>> 0;
  }
}
