/**
 * Out-of-order bookkeeping for the receive queue (RFC 9293 §3.10.7.4 seventh step: segments beyond
 * RCV.NXT "may be held for later processing"). The bytes themselves are written in place in the
 * receive ring; this keeps the list of sequence ranges held, bounded in number.
 */
import { seqAdd, seqDiff, seqGt, seqLeq, seqLt, seqMax, seqMin } from '../wire/seq.js';

/** At most this many disjoint ranges are held; more (a peer punching many holes) are not kept. */
export const MAX_RANGES = 64;

export class Reassembly {
  /** Disjoint, sorted, non-adjacent [start, end) sequence ranges. */
  private ranges: Array<[number, number]> = [];

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  get count(): number {
    return this.ranges.length;
  }

  /** The held ranges (for SACK blocks later). */
  get blocks(): ReadonlyArray<readonly [number, number]> {
    return this.ranges;
  }

  /** The held range that contains `seq`, or undefined. */
  rangeContaining(seq: number): readonly [number, number] | undefined {
    for (const r of this.ranges) if (seqLeq(r[0], seq) && seqLt(seq, r[1])) return r;
    return undefined;
  }

  /** Whether [seq, seq+len) is already held in full (a duplicate: D-SACK, RFC 2883). */
  holds(seq: number, len: number): boolean {
    const r = this.rangeContaining(seq);
    return r !== undefined && seqLeq(seqAdd(seq, len), r[1]);
  }

  /** Record [seq, seq+len). Returns false (and records nothing) if it would exceed MAX_RANGES. */
  add(seq: number, len: number): boolean {
    if (len <= 0) return true;
    let start = seq;
    let end = seqAdd(seq, len);
    const out: Array<[number, number]> = [];
    let i = 0;
    const r = this.ranges;
    while (i < r.length && seqLt(r[i]![1], start)) out.push(r[i++]!);
    while (i < r.length && seqLeq(r[i]![0], end)) {
      start = seqMin(start, r[i]![0]);
      end = seqMax(end, r[i]![1]);
      i++;
    }
    out.push([start, end]);
    while (i < r.length) out.push(r[i++]!);
    if (out.length > MAX_RANGES) return false;
    this.ranges = out;
    return true;
  }

  /** RCV.NXT has reached `rcvNxt`: remove what it covers and return how many bytes beyond it are
   *  now contiguous (to be committed to the readable part of the ring). */
  take(rcvNxt: number): number {
    const r = this.ranges;
    while (r.length > 0 && seqLeq(r[0]![1], rcvNxt)) r.shift();
    if (r.length > 0 && seqLeq(r[0]![0], rcvNxt) && seqGt(r[0]![1], rcvNxt)) {
      const n = seqDiff(r[0]![1], rcvNxt);
      r.shift();
      return n;
    }
    return 0;
  }
}
