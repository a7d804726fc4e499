/**
 * The congestion controller interface: one connection's cwnd and ssthresh, changed by the events a
 * sender sees. Each algorithm lives in its own file (newreno.ts, cubic.ts) behind this interface;
 * loss detection (dupacks, SACK, RACK-TLP) and recovery (RFC 6675 pipe) stay in the connection, which
 * only reports what it detected. All quantities are bytes and ms.
 */

export type CongestionControlName = 'newreno' | 'cubic';

export interface CongestionControl {
  readonly name: CongestionControlName;
  /** Congestion window, bytes. The connection reads it before each send. */
  cwnd: number;
  /** Slow-start threshold, bytes (RFC 5681 §3.1: initially "arbitrarily high"). */
  ssthresh: number;

  /** The handshake completed: start at the initial window (RFC 6928) for this sender MSS. */
  init(mss: number, initialWindow: number, now: number): void;

  /**
   * New data was acknowledged (cumulatively or by SACK) outside loss recovery.
   * `acked`: bytes newly delivered; `rttMs`: an RTT sample taken from this ACK, or -1 when none;
   * `cwndLimited`: whether cwnd, not the application or the peer's window, limited sending since the
   * previous ACK (RFC 7661: do not grow cwnd when it is not being used).
   */
  onAck(acked: number, rttMs: number, cwndLimited: boolean, now: number): void;

  /**
   * Loss detected (three duplicate ACKs, SACK/RFC 6675 IsLost, or RACK): enter fast recovery once
   * per window (the connection guarantees at most one call until `onRecoveryEnd`). Sets ssthresh
   * and cwnd (the RFC 6675 recovery sends while pipe < cwnd). `flight`: bytes outstanding.
   */
  onLoss(flight: number, now: number): void;

  /** The cumulative ACK passed the recovery point (RFC 6582 full ACK / RFC 6675 §5 step (C)). */
  onRecoveryEnd(now: number): void;

  /** The retransmission timer expired (RFC 5681 §3.1 (4), RFC 9438 §4.8). `flight`: bytes outstanding. */
  onRetransmissionTimeout(flight: number, now: number): void;

  /** Sending resumed after an idle period longer than the RTO (RFC 5681 §4.1, RFC 9438 §5.8). */
  onIdleRestart(initialWindow: number, now: number): void;
}
