/**
 * Sequence number arithmetic (RFC 9293 §3.4): sequence numbers live in a 32-bit space that wraps,
 * so "a < b" means "a is at most 2^31 - 1 behind b", computed from the signed 32-bit difference.
 * Every comparison of SND.*, RCV.*, SEG.SEQ and SEG.ACK must go through these.
 */

/** a - b as a signed 32-bit number (-2^31..2^31-1): how far a is ahead of b. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** a + n, wrapped into 0..2^32-1. n may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLeq(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGeq(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

/**
 * left <= x < left + len, modulo 2^32: the test of RFC 9293 §3.10.7.4 for a sequence number falling
 * in a window (e.g. RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND). An empty window (len 0) contains nothing.
 */
export function seqInWindow(x: number, left: number, len: number): boolean {
  return (x - left) >>> 0 < len;
}
