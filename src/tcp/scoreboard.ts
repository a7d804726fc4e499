/**
 * The sender's retransmission queue and scoreboard: one record per segment sent and not yet
 * cumulatively acknowledged, marked SACKed (RFC 2018), lost, or retransmitted, with the RFC 6675
 * `pipe` kept up to date, and RACK (RFC 8985 §6) as the loss detector: a segment is lost when a
 * segment sent sufficiently later has been delivered.
 *
 * Records hold sequence numbers, not bytes: the bytes stay in the send buffer until the cumulative
 * ACK frees them. The number of records is bounded by the connection (MAX_RECORDS).
 */
import { seqDiff, seqGeq, seqGt, seqLeq, seqLt } from '../wire/seq.js';

/** At most this many segments are outstanding; the sender waits for ACKs beyond it. */
export const MAX_RECORDS = 32_768;
/** RFC 6675 §2 / RFC 5681: DupThresh. */
export const DUP_THRESH = 3;
/** RFC 8985 §6.2: the reordering window multiplier grows on D-SACKs up to this. */
const MAX_REO_WND_MULT = 16;

export interface SentSegment {
  /** [start, end) in sequence space; a FIN takes the last number. */
  start: number;
  end: number;
  fin: boolean;
  /** Time of the latest (re)transmission, ms. */
  xmitAt: number;
  sacked: boolean;
  /** Deemed lost (by RACK, DupThresh, a partial ACK or an RTO) and not delivered since. */
  lost: boolean;
  /** Retransmitted since it was marked lost, and that copy is still thought to be in flight. */
  retrans: boolean;
  everRetrans: boolean;
}

/** RFC 6675 §2 "pipe": a record's share of the bytes in the network. */
function inFlight(r: SentSegment): number {
  if (r.sacked) return 0;
  if (r.lost && !r.retrans) return 0;
  return seqDiff(r.end, r.start);
}

export class Scoreboard {
  private recs: SentSegment[] = [];
  private head = 0;
  /** RFC 6675 pipe: bytes thought to be in the network. */
  pipe = 0;
  /** Bytes marked lost and not yet retransmitted (what NextSeg rule 1 sends first). */
  lostBytes = 0;
  sackedBytes = 0;
  sackedSegments = 0;
  /** The highest sequence number SACKed or cumulatively acked (RFC 6675 HighACK / "fack"). */
  fack = 0;

  // RFC 8985 §6.1: the most recently sent segment known delivered.
  rackXmitAt = -Infinity;
  rackEnd = 0;
  rackRtt = 0;
  minRtt = Infinity;
  /** RFC 8985 §6.2: reordering observed on this connection (widens the reordering window). */
  reorderingSeen = false;
  reoWndMult = 1;
  dsacks = 0;

  /**
   * Set by `ackTo`: the earliest latest-transmission time among the segments it removed, and the
   * earliest among those never retransmitted (Karn's algorithm, RFC 6298 §3), Infinity when none or
   * when it also removed a retransmitted one (whose hole held the others back, as Linux reasons).
   */
  ackedXmitAt = Infinity;
  ackedKarnXmitAt = Infinity;
  /**
   * Set by `ackTo`: whether the echoed timestamp it was given is that of a segment it removed, and
   * no older than the latest retransmission among them (else the ACK answers that retransmission
   * while echoing an earlier segment: the peer's TS.Recent did not move, RFC 7323 §4.3).
   */
  ackedEchoMatched = false;

  get count(): number {
    return this.recs.length - this.head;
  }

  get empty(): boolean {
    return this.head === this.recs.length;
  }

  first(): SentSegment | undefined {
    return this.recs[this.head];
  }

  last(): SentSegment | undefined {
    return this.recs.length > this.head ? this.recs[this.recs.length - 1] : undefined;
  }

  /** A new segment [start, end) left at `now`. */
  sent(start: number, end: number, fin: boolean, now: number): void {
    const r: SentSegment = { start, end, fin, xmitAt: now, sacked: false, lost: false, retrans: false, everRetrans: false };
    this.recs.push(r);
    this.pipe += seqDiff(end, start);
  }

  /** `r` (marked lost, or probed) went out again at `now`. */
  retransmitted(r: SentSegment, now: number): void {
    const before = inFlight(r);
    if (r.lost && !r.retrans) this.lostBytes -= seqDiff(r.end, r.start);
    r.retrans = true;
    r.everRetrans = true;
    r.xmitAt = now;
    this.pipe += inFlight(r) - before;
  }

  /** Mark `r` lost (RFC 6675 / RFC 8985 §6.2 step 5). A lost retransmission is lost again. */
  markLost(r: SentSegment): void {
    if (r.sacked || (r.lost && !r.retrans)) return;
    const before = inFlight(r);
    r.lost = true;
    r.retrans = false;
    this.lostBytes += seqDiff(r.end, r.start);
    this.pipe += inFlight(r) - before;
  }

  /** The first segment waiting for retransmission (RFC 6675 NextSeg rule 1), in sequence order. */
  nextLost(): SentSegment | undefined {
    if (this.lostBytes <= 0) return undefined;
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (r.lost && !r.retrans && !r.sacked) return r;
    }
    return undefined;
  }

  /**
   * The cumulative ACK reached `ack`: drop what it covers. Returns the bytes newly delivered by it
   * (not counting bytes already SACKed). `echo` is the ACK's TSecr and `tsAt` our timestamp clock,
   * to tell whether the echo names the last transmission of a segment acknowledged here.
   */
  ackTo(ack: number, now: number, echo = -1, tsAt?: (t: number) => number): number {
    let delivered = 0;
    const recs = this.recs;
    this.ackedXmitAt = this.ackedKarnXmitAt = Infinity;
    this.ackedEchoMatched = false;
    let retransAcked = false;
    let latestRetrans = -Infinity;
    while (this.head < recs.length) {
      const r = recs[this.head]!;
      if (seqLt(r.start, ack)) {
        if (tsAt !== undefined && tsAt(r.xmitAt) === echo) this.ackedEchoMatched = true;
        if (r.xmitAt < this.ackedXmitAt) this.ackedXmitAt = r.xmitAt;
        if (!r.everRetrans && !r.sacked && r.xmitAt < this.ackedKarnXmitAt) this.ackedKarnXmitAt = r.xmitAt;
        if (r.everRetrans) {
          retransAcked = true;
          if (r.xmitAt > latestRetrans) latestRetrans = r.xmitAt;
        }
      }
      if (seqLeq(r.end, ack)) {
        this.pipe -= inFlight(r);
        if (r.lost && !r.retrans && !r.sacked) this.lostBytes -= seqDiff(r.end, r.start);
        if (r.sacked) {
          this.sackedBytes -= seqDiff(r.end, r.start);
          this.sackedSegments--;
        } else {
          delivered += seqDiff(r.end, r.start);
          this.rackDelivered(r, now);
        }
        this.head++;
        continue;
      }
      if (seqLt(r.start, ack)) {
        // Partly acknowledged (the peer's ACK fell inside a segment): keep the rest.
        const n = seqDiff(ack, r.start);
        const before = inFlight(r);
        if (r.lost && !r.retrans && !r.sacked) this.lostBytes -= n;
        if (r.sacked) this.sackedBytes -= n;
        else delivered += n;
        r.start = ack;
        this.pipe += inFlight(r) - before;
      }
      break;
    }
    if (retransAcked) {
      this.ackedKarnXmitAt = Infinity;
      if (this.ackedEchoMatched && tsAt !== undefined && ((echo - tsAt(latestRetrans)) | 0) < 0) this.ackedEchoMatched = false;
    }
    if (seqGt(ack, this.fack)) this.fack = ack;
    if (this.head > 1024 && this.head * 2 > recs.length) {
      this.recs = recs.slice(this.head);
      this.head = 0;
    }
    return delivered;
  }

  /**
   * Apply the SACK blocks of an ACK (RFC 2018 §4, at most 4 parsed). Returns the bytes newly SACKed.
   * A first block below the cumulative ACK, or inside the second block, is a D-SACK (RFC 2883 §4):
   * a duplicate arrived, so the retransmission was spurious or the path reorders (RFC 8985 §6.2).
   */
  applySack(blocks: ReadonlyArray<readonly [number, number]>, ack: number, sndMax: number, now: number): number {
    let newly = 0;
    for (let b = 0; b < blocks.length; b++) {
      const [left, right] = blocks[b]!;
      // A block for data never sent is bogus (Linux tcp_is_sackblock_valid): ignore it.
      if (!seqLt(left, right) || seqGt(right, sndMax)) continue;
      if (b === 0 && (seqLeq(right, ack) ||
        (blocks.length > 1 && seqGeq(left, blocks[1]![0]) && seqLeq(right, blocks[1]![1])))) {
        this.dsacks++;
        this.reorderingSeen = true;
        this.reoWndMult = Math.min(this.reoWndMult + 1, MAX_REO_WND_MULT);
        continue;
      }
      if (seqLeq(right, ack)) continue;
      newly += this.markSacked(left, right, now);
      if (seqGt(right, this.fack)) this.fack = right;
    }
    return newly;
  }

  private markSacked(left: number, right: number, now: number): number {
    let newly = 0;
    // Records are in sequence order: find the first that may overlap (binary search).
    let lo = this.head;
    let hi = this.recs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLeq(this.recs[mid]!.end, left)) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (seqGeq(r.start, right)) break;
      // Only whole segments count as SACKed (blocks normally follow segment edges).
      if (r.sacked || seqLt(r.start, left) || seqGt(r.end, right)) continue;
      const len = seqDiff(r.end, r.start);
      const before = inFlight(r);
      if (r.lost && !r.retrans) this.lostBytes -= len;
      // A segment SACKed that was never marked lost, below one delivered earlier: reordering.
      if (!r.everRetrans && seqLt(r.end, this.fack)) this.reorderingSeen = true;
      r.sacked = true;
      this.sackedBytes += len;
      this.sackedSegments++;
      this.pipe += inFlight(r) - before;
      newly += len;
      this.rackDelivered(r, now);
    }
    return newly;
  }

  /** RFC 8985 §6.1 step 2: remember the most recently sent delivered segment. */
  private rackDelivered(r: SentSegment, now: number): void {
    const rtt = now - r.xmitAt;
    // An ACK for a retransmitted segment sooner than the minimum RTT probably acknowledges the
    // original transmission: it says nothing about when the retransmission arrived.
    if (r.everRetrans && rtt < this.minRtt) return;
    if (rtt >= 0 && rtt < this.minRtt && !r.everRetrans) this.minRtt = rtt;
    if (r.xmitAt > this.rackXmitAt || (r.xmitAt === this.rackXmitAt && seqGt(r.end, this.rackEnd))) {
      this.rackXmitAt = r.xmitAt;
      this.rackEnd = r.end;
      this.rackRtt = rtt;
    }
  }

  /** RFC 8985 §6.2 step 4: the reordering window. */
  reoWnd(srtt: number, inRecovery: boolean): number {
    if (!this.reorderingSeen && (inRecovery || this.sackedSegments >= DUP_THRESH)) return 0;
    const min = this.minRtt === Infinity ? 0 : this.minRtt;
    return Math.min((min / 4) * this.reoWndMult, srtt);
  }

  /**
   * RFC 8985 §6.2 step 5: mark lost every segment sent before the RACK segment whose time is up.
   * Returns the time left until the earliest segment that may still be lost would time out
   * (Infinity when none): the reordering timer.
   */
  detectLoss(now: number, reoWnd: number): { marked: number; timeout: number } {
    let marked = 0;
    let timeout = Infinity;
    if (this.rackXmitAt === -Infinity) return { marked, timeout };
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      // Segments beyond the RACK segment in sequence order were sent after it (or are retransmitted
      // copies that RACK will judge once something sent later is delivered).
      if (seqGeq(r.start, this.rackEnd)) break;
      if (r.sacked || (r.lost && !r.retrans)) continue;
      const sentBefore = r.xmitAt < this.rackXmitAt || (r.xmitAt === this.rackXmitAt && seqLt(r.end, this.rackEnd));
      if (!sentBefore) continue;
      const left = r.xmitAt + this.rackRtt + reoWnd - now;
      if (left <= 0) {
        this.markLost(r);
        marked++;
      } else if (left < timeout) {
        timeout = left;
      }
    }
    return { marked, timeout };
  }

  /** After an RTO: every segment not SACKed is lost (RFC 6675 §5.1, RFC 8985 §6.3). */
  markAllLost(): void {
    for (let i = this.head; i < this.recs.length; i++) this.markLost(this.recs[i]!);
  }

  /**
   * The peer discarded data it had SACKed (reneging, RFC 2018 §8): forget every SACK mark so that
   * data is sent again.
   */
  clearSacks(): void {
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (!r.sacked) continue;
      r.sacked = false;
      const len = seqDiff(r.end, r.start);
      this.sackedBytes -= len;
      this.sackedSegments--;
      this.pipe += len;
    }
  }

  /** Forget everything (the connection is closing down). */
  clear(): void {
    this.recs = [];
    this.head = 0;
    this.pipe = this.lostBytes = this.sackedBytes = this.sackedSegments = 0;
  }

  /** Move the scoreboard's notion of the left edge (ISS+1 once the handshake completes). */
  reset(una: number): void {
    this.clear();
    this.fack = una;
    this.rackEnd = una;
  }
}
