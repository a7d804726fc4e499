/**
 * NewReno's window arithmetic: RFC 5681 slow start and congestion avoidance, counted in bytes as
 * RFC 3465 (Appropriate Byte Counting) asks, with RFC 7661's rule that an unused window does not grow.
 * Fast retransmit and the recovery itself (RFC 6582, RFC 6675) belong to the connection; this only
 * sets cwnd and ssthresh when it reports what it saw.
 */
import type { CongestionControl } from './types.js';

/** RFC 5681 §3.1: ssthresh starts "arbitrarily high" (Linux: TCP_INFINITE_SSTHRESH). */
export const INITIAL_SSTHRESH = 0x7fffffff;

/**
 * Where a congestion event stands. An RTO inside one that already cut the window must not cut it again:
 * RFC 5681 §3.1 holds ssthresh when the timed-out segment was already retransmitted by the timer, and
 * (as Linux does) an RTO during fast recovery keeps the ssthresh that recovery set.
 */
export type LossPhase = 'open' | 'fast-recovery' | 'timeout';

/**
 * RFC 5681 §3.1 slow start with RFC 3465 byte counting, as Linux's tcp_slow_start() does it: cwnd
 * grows by every byte the ACK acknowledges. Stops at ssthresh (RFC 5681 lets either algorithm run at
 * cwnd = ssthresh; Linux stops there too), so slow start after an RTO does not overshoot the point it
 * is climbing back to.
 *
 * Where synack differs from RFC 3465 §2.2, and why: the RFC caps growth at L = 2·SMSS per ACK to
 * guard against stretch ACKs (one ACK for many segments), which would otherwise let cwnd jump and
 * the sender burst. Linux has had no such cap since 3.9 (the tcp_abc sysctl was removed), because
 * GRO makes stretch ACKs normal: a receiver ACKs a coalesced super-segment of up to 64 KiB once.
 * synack's batched input does the same (Connection.segmentArrives ACKs at most 64 KiB of in-order
 * data per ACK within a burst), so with L = 2 slow start would grow by ~2 SMSS per burst instead of
 * doubling each RTT; counting every acked byte keeps the doubling, and the 64 KiB bound on the
 * receiver's coalescing bounds the jump one ACK can make, as it does for Linux.
 */
export function slowStart(cwnd: number, ssthresh: number, acked: number, _mss: number): number {
  return Math.min(cwnd + acked, ssthresh);
}

export class NewReno implements CongestionControl {
  readonly name = 'newreno';
  cwnd = 0;
  ssthresh = INITIAL_SSTHRESH;
  private mss = 0;
  /** RFC 3465 §2.1 bytes_acked: the bytes acknowledged in congestion avoidance not yet turned into cwnd. */
  private bytesAcked = 0;
  private phase: LossPhase = 'open';

  init(mss: number, initialWindow: number, _now: number): void {
    this.mss = mss;
    this.cwnd = Math.max(initialWindow, mss);
    this.ssthresh = INITIAL_SSTHRESH;
    this.bytesAcked = 0;
    this.phase = 'open';
  }

  onAck(acked: number, _rttMs: number, cwndLimited: boolean, _now: number): void {
    if (acked <= 0) return;
    // New data got through after an RTO: a later RTO times out a different segment (RFC 5681 §3.1).
    if (this.phase === 'timeout') this.phase = 'open';
    // RFC 7661 §4.1: a window the sender is not filling says nothing about the path; do not grow it.
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) {
      this.cwnd = slowStart(this.cwnd, this.ssthresh, acked, this.mss);
      return;
    }
    // RFC 3465 §2.1: once a whole cwnd of bytes is acknowledged, grow by one SMSS — about one SMSS
    // per RTT (RFC 5681 §3.1 eq. 3), without the rounding error of per-ACK SMSS*SMSS/cwnd.
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  onLoss(flight: number, _now: number): void {
    // RFC 5681 §3.2 eq. (4), RFC 6675 §5 step (4.2): half the data in flight, never below 2 SMSS.
    this.ssthresh = this.halfFlight(flight);
    this.cwnd = this.ssthresh;
    this.bytesAcked = 0;
    this.phase = 'fast-recovery';
  }

  onRecoveryEnd(_now: number): void {
    // RFC 6582 §3.2 step 5: leave recovery at ssthresh. Only after fast recovery: if an RTO ended it,
    // cwnd is climbing from 1 SMSS in slow start and must not jump back up (Linux's Loss state).
    if (this.phase === 'fast-recovery') this.cwnd = this.ssthresh;
    this.phase = 'open';
  }

  onRetransmissionTimeout(flight: number, _now: number): void {
    if (this.phase === 'open') this.ssthresh = this.halfFlight(flight); // RFC 5681 §3.1 eq. (4)
    // RFC 5681 §3.1: after an RTO, cwnd is the loss window, one SMSS.
    this.cwnd = this.mss;
    this.bytesAcked = 0;
    this.phase = 'timeout';
  }

  onIdleRestart(initialWindow: number, _now: number): void {
    // RFC 5681 §4.1: after an idle period, restart from RW = min(IW, cwnd).
    this.cwnd = Math.min(this.cwnd, initialWindow);
    this.bytesAcked = 0;
  }

  private halfFlight(flight: number): number {
    return Math.max(Math.floor(flight / 2), 2 * this.mss);
  }
}
