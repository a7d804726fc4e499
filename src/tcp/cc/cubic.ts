/**
 * CUBIC, RFC 9438. In congestion avoidance cwnd follows a cubic function of the time since the
 * window was last reduced: it climbs quickly back towards W_max, the window where loss last struck,
 * stays flat near it (concave region, §4.4), then speeds up to look for more room (convex region,
 * §4.5). Slow start is NewReno's (RFC 5681 with RFC 3465 ABC). Windows are kept in bytes; the
 * RFC's formulas count segments, so they are scaled by the MSS where C meets them.
 */
import { INITIAL_SSTHRESH, slowStart, type LossPhase } from './newreno.js';
import type { CongestionControl } from './types.js';

/** RFC 9438 §4.1.1: C, in segments per second cubed. */
const C = 0.4;
/** RFC 9438 §4.1.1, §4.6: the multiplicative decrease factor. */
const BETA_CUBIC = 0.7;
/** RFC 9438 §4.3: the Reno-friendly additive increase, so that CUBIC matches Reno's average rate. */
const ALPHA_CUBIC = (3 * (1 - BETA_CUBIC)) / (1 + BETA_CUBIC);
/** RFC 9438 §4.2: the target is W_cubic(t + RTT); before any sample we assume 100 ms. */
const DEFAULT_RTT_MS = 100;
/** RFC 9438 §4.2: the target is at most 1.5 cwnd, so cwnd grows at most 50% per RTT. */
const MAX_TARGET_RATIO = 1.5;

export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  cwnd = 0;
  ssthresh = INITIAL_SSTHRESH;
  private mss = 0;
  private maxWindow = 0; // W_max, bytes
  private kSeconds = 0; // K, seconds (RFC 9438 Figure 2, eq. 2)
  /** When the current congestion avoidance stage began (ms), or -1 when none has begun. */
  private epochStart = -1;
  /** W_est, bytes: what Reno would have by now (RFC 9438 §4.3). */
  private renoWindow = 0;
  /** cwnd_prior, bytes: cwnd just before the last reduction (RFC 9438 §4.3, §4.6). */
  private cwndPrior = 0;
  private rttMs = DEFAULT_RTT_MS;
  /** Fractions of a byte of growth not yet added to the integer cwnd. */
  private carry = 0;
  private phase: LossPhase = 'open';

  /** W_max in bytes (diagnostics). */
  get wMax(): number {
    return this.maxWindow;
  }

  /** K in seconds for the current epoch (diagnostics). */
  get k(): number {
    return this.kSeconds;
  }

  init(mss: number, initialWindow: number, _now: number): void {
    this.mss = mss;
    this.cwnd = Math.max(initialWindow, mss);
    this.ssthresh = INITIAL_SSTHRESH;
    this.maxWindow = 0;
    this.kSeconds = 0;
    this.epochStart = -1;
    this.cwndPrior = 0;
    this.rttMs = DEFAULT_RTT_MS;
    this.carry = 0;
    this.phase = 'open';
  }

  onAck(acked: number, rttMs: number, cwndLimited: boolean, now: number): void {
    if (rttMs >= 0) this.rttMs = rttMs;
    if (acked <= 0) return;
    // New data got through after an RTO: a later RTO is a new congestion event (RFC 5681 §3.1).
    if (this.phase === 'timeout') this.phase = 'open';
    // RFC 9438 §5.8, RFC 7661 §4.1: do not grow a window the sender is not using.
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) {
      this.cwnd = slowStart(this.cwnd, this.ssthresh, acked, this.mss);
      return;
    }
    this.congestionAvoidance(acked, now);
  }

  onLoss(_flight: number, _now: number): void {
    // RFC 9438 §4.6 allows flight size or cwnd; like Linux we cut from cwnd, which is what the path
    // just carried, while flight can be small when the application stalled.
    this.reduce();
    this.cwnd = this.ssthresh;
    this.phase = 'fast-recovery';
  }

  onRecoveryEnd(_now: number): void {
    // As NewReno: leave fast recovery at ssthresh, but not after an RTO took over (see newreno.ts).
    if (this.phase === 'fast-recovery') this.cwnd = this.ssthresh;
    this.phase = 'open';
  }

  onRetransmissionTimeout(_flight: number, _now: number): void {
    // RFC 9438 §4.8: ssthresh as on a loss (once per congestion event), cwnd to Reno's loss window.
    if (this.phase === 'open') this.reduce();
    this.cwnd = this.mss;
    // RFC 9438 §4.8: in the first congestion avoidance stage after a timeout, K = 0 and W_max is the
    // cwnd at its start; W_max = 0 makes startEpoch() do exactly that.
    this.maxWindow = 0;
    this.epochStart = -1;
    this.carry = 0;
    this.phase = 'timeout';
  }

  onIdleRestart(initialWindow: number, _now: number): void {
    // RFC 5681 §4.1 restart window; RFC 9438 §5.8: a new epoch, so the idle time does not count as
    // congestion avoidance time (else t, and with it W_cubic(t), would leap ahead).
    this.cwnd = Math.min(this.cwnd, initialWindow);
    this.epochStart = -1;
    this.carry = 0;
  }

  /** RFC 9438 §4.6 multiplicative decrease, with §4.7 fast convergence. */
  private reduce(): void {
    // §4.7: a loss below the previous W_max means a new flow is taking its share; release some too.
    this.maxWindow = this.cwnd < this.maxWindow ? (this.cwnd * (1 + BETA_CUBIC)) / 2 : this.cwnd;
    this.cwndPrior = this.cwnd;
    this.ssthresh = Math.max(Math.floor(this.cwnd * BETA_CUBIC), 2 * this.mss);
    this.epochStart = -1;
  }

  /** RFC 9438 §4.2: a congestion avoidance stage begins at its first ACK. */
  private startEpoch(now: number): void {
    this.epochStart = now;
    this.renoWindow = this.cwnd;
    this.carry = 0;
    if (this.maxWindow <= this.cwnd) {
      // Already at or past W_max (e.g. after a timeout, §4.8): start on the convex side, K = 0,
      // rather than take the cube root of a negative distance.
      this.maxWindow = this.cwnd;
      this.kSeconds = 0;
    } else {
      // RFC 9438 Figure 2 (eq. 2): K = cubic_root((W_max - cwnd_epoch) / C), in segments.
      this.kSeconds = Math.cbrt((this.maxWindow - this.cwnd) / this.mss / C);
    }
  }

  /** RFC 9438 Figure 1 (eq. 1): W_cubic(t) = C * (t - K)^3 + W_max, t in seconds, scaled to bytes. */
  private wCubic(t: number): number {
    return C * (t - this.kSeconds) ** 3 * this.mss + this.maxWindow;
  }

  private congestionAvoidance(acked: number, now: number): void {
    if (this.epochStart < 0) this.startEpoch(now);
    const t = (now - this.epochStart) / 1000;

    // §4.3: W_est grows by alpha_cubic segments per cwnd acked; alpha_cubic becomes 1 once W_est
    // reaches cwnd_prior, where Reno itself would be.
    const alpha = this.renoWindow >= this.cwndPrior ? 1 : ALPHA_CUBIC;
    this.renoWindow += (alpha * acked * this.mss) / this.cwnd;
    if (this.wCubic(t) < this.renoWindow) {
      // §4.3 Reno-friendly region: at small BDP, Reno would be ahead; be at least as fast.
      this.cwnd = Math.max(this.cwnd, Math.floor(this.renoWindow));
      return;
    }

    // §4.2: aim at W_cubic one RTT ahead, within [cwnd, 1.5 cwnd]; each ACK closes the gap by
    // (target - cwnd) / cwnd per segment acknowledged (§4.4 concave, §4.5 convex).
    const target = Math.min(Math.max(this.wCubic(t + this.rttMs / 1000), this.cwnd), MAX_TARGET_RATIO * this.cwnd);
    const growth = this.carry + ((target - this.cwnd) * Math.min(acked, this.cwnd)) / this.cwnd;
    const whole = Math.floor(growth);
    this.cwnd += whole;
    this.carry = growth - whole;
  }
}
