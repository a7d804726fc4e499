/** Retransmission timeout estimation, RFC 6298. Times in ms. */

// RFC 6298 (2.1): until a sample exists, RTO = 1 s.
export const INITIAL_RTO_MS = 1000;
// RFC 6298 (5.7): the RTO after a SYN timeout, when data transmission begins.
export const SYN_TIMEOUT_FALLBACK_RTO_MS = 3000;
// RFC 6298 (2.4) says a minimum of 1 s; Linux and most modern stacks use 200 ms (RFC 6298 allows
// a lower bound "if needed"), which matters on LAN paths. We follow Linux.
export const MIN_RTO_MS = 200;
// RFC 6298 (2.5): a maximum may be placed on RTO provided it is at least 60 s. Linux uses 120 s.
export const MAX_RTO_MS = 120_000;
// RFC 6298 §2: clock granularity G.
const G_MS = 1;
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export class RttEstimator {
  srtt = 0;
  rttvar = 0;
  hasSample = false;
  /** The RTO before backoff. */
  private baseRto = INITIAL_RTO_MS;
  /** Exponential backoff shift (RFC 6298 (5.5)). */
  backoff = 0;

  get rto(): number {
    return Math.min(this.baseRto * 2 ** this.backoff, MAX_RTO_MS);
  }

  /** RFC 6298 (2.2)/(2.3): take an RTT measurement R. Karn's rule is the caller's job (only
   *  segments that were not retransmitted are timed). */
  sample(r: number): void {
    if (!this.hasSample) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.hasSample = true;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    this.baseRto = Math.min(Math.max(this.srtt + Math.max(G_MS, K * this.rttvar), MIN_RTO_MS), MAX_RTO_MS);
    // RFC 6298 (5.7)-ish: a new valid sample collapses the backoff.
    this.backoff = 0;
  }

  /**
   * RFC 6298 (5.7): if the timer expired while waiting for the SYN (or SYN,ACK) and no RTT sample
   * exists, RTO is re-initialized to 3 s once data transmission begins.
   */
  fallBackAfterSynTimeout(): void {
    if (this.hasSample) return;
    this.baseRto = SYN_TIMEOUT_FALLBACK_RTO_MS;
    this.backoff = 0;
  }

  /** RFC 6298 (5.5): back off the timer on expiry. */
  backOff(): void {
    if (this.rto < MAX_RTO_MS) this.backoff++;
  }
}
