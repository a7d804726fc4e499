/**
 * The sender's retransmission queue and scoreboard: one record per segment sent and not yet
 * cumulatively acknowledged, marked SACKed (RFC 2018), lost, or retransmitted, with the RFC 6675
 * `pipe` kept up to date, and RACK (RFC 8985 §6) as the loss detector: a segment is lost when a
 * segment sent sufficiently later has been delivered.
 *
 * Records hold sequence numbers, not bytes: the bytes stay in the send buffer until the cumulative
 * ACK frees them. The number of records is bounded by the connection (MAX_RECORDS).
 *
 * Two orders: the array is in sequence order (cumulative ACKs, SACK blocks, NextSeg); an intrusive
 * list holds the records in flight (not SACKed, not waiting for retransmission) in the order they
 * were last sent, as Linux's time-sorted queue does, so RACK looks only at what may be due.
 */
import { seqDiff, seqGeq, seqGt, seqLeq, seqLt } from '../wire/seq.js';

/** At most this many segments are outstanding; the sender waits for ACKs beyond it. */
export const MAX_RECORDS = 32_768;
/** RFC 6675 §2 / RFC 5681: DupThresh. */
export const DUP_THRESH = 3;
/** RFC 8985 §6.2: the reordering window multiplier grows on D-SACKs up to this, and a widened window
 *  persists for this many recoveries. */
const MAX_REO_WND_MULT = 16;
const REO_WND_PERSIST = 16;
/** Records kept for reuse: enough for a window of segments, and no more memory than that. */
const MAX_SPARE = 1024;

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
  /** Links of the in-flight list, in send order (null at the ends, or when not on it). */
  prevT: SentSegment | null;
  nextT: SentSegment | null;
  onList: boolean;
}

/** RFC 6675 §2 "pipe": a record's share of the bytes in the network. */
function inFlight(r: SentSegment): number {
  if (r.sacked) return 0;
  if (r.lost && !r.retrans) return 0;
  return seqDiff(r.end, r.start);
}

function length(r: SentSegment): number {
  return seqDiff(r.end, r.start);
}

/** A lost segment waits for its retransmission. */
function waiting(r: SentSegment): boolean {
  return r.lost && !r.retrans && !r.sacked;
}

export class Scoreboard {
  private recs: SentSegment[] = [];
  /** Removed records kept for reuse (at most MAX_SPARE). */
  private spare: SentSegment[] = [];
  private head = 0;
  /** In-flight records, oldest transmission first. */
  private tHead: SentSegment | null = null;
  private tTail: SentSegment | null = null;
  /** No record before this sequence number waits for retransmission (a cursor for NextSeg). */
  private lostFrom = 0;

  /** RFC 6675 pipe: bytes thought to be in the network. */
  pipe = 0;
  /** Bytes marked lost and not yet retransmitted (what NextSeg rule 1 sends first). */
  lostBytes = 0;
  sackedBytes = 0;
  sackedSegments = 0;
  /** The highest sequence number SACKed or cumulatively acked (RFC 6675 HighACK / RACK.fack). */
  fack = 0;

  // RFC 8985 §6.1: the most recently sent segment known delivered.
  rackXmitAt = -Infinity;
  rackEnd = 0;
  rackRtt = 0;
  minRtt = Infinity;
  /** RFC 8985 §6.2 step 3: a segment was delivered below one delivered before it, never resent. */
  reorderingSeen = false;
  /** RFC 8985 §6.2 step 4: widened by D-SACKs, at most once a round trip, for 16 recoveries. */
  reoWndMult = 1;
  private reoWndPersist = 0;
  /** The round trip a D-SACK last widened the window in: until the ACK passes this. */
  private dsackRoundEnd: number | null = null;
  dsacks = 0;
  /** Set by `detectLoss`: ms until the next segment may be due (the RACK reordering timer). */
  reoTimeout = Infinity;

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

  /** The last segment sent that the peer has not SACKed (a tail loss probe resends it). */
  lastUnsacked(): SentSegment | undefined {
    for (let i = this.recs.length - 1; i >= this.head; i--) {
      const r = this.recs[i]!;
      if (!r.sacked) return r;
    }
    return undefined;
  }

  // ------------------------------------------------------------ the in-flight list (send order)

  private link(r: SentSegment): void {
    if (r.onList) this.unlink(r);
    r.onList = true;
    r.prevT = this.tTail;
    r.nextT = null;
    if (this.tTail !== null) this.tTail.nextT = r;
    else this.tHead = r;
    this.tTail = r;
  }

  private unlink(r: SentSegment): void {
    if (!r.onList) return;
    if (r.prevT !== null) r.prevT.nextT = r.nextT;
    else this.tHead = r.nextT;
    if (r.nextT !== null) r.nextT.prevT = r.prevT;
    else this.tTail = r.prevT;
    r.prevT = r.nextT = null;
    r.onList = false;
  }

  // ------------------------------------------------------------ state changes of one record

  /** A new segment [start, end) left at `now`. */
  sent(start: number, end: number, fin: boolean, now: number): void {
    // Records acknowledged earlier are reused: no allocation per segment on the send path.
    const r = this.spare.pop() ?? {
      start, end, fin, xmitAt: now, sacked: false, lost: false, retrans: false, everRetrans: false,
      prevT: null, nextT: null, onList: false,
    };
    r.start = start;
    r.end = end;
    r.fin = fin;
    r.xmitAt = now;
    r.sacked = r.lost = r.retrans = r.everRetrans = false;
    this.recs.push(r);
    this.pipe += length(r);
    this.link(r);
  }

  /** `r` (marked lost, or probed) went out again at `now`. */
  retransmitted(r: SentSegment, now: number): void {
    const before = inFlight(r);
    if (waiting(r)) this.lostBytes -= length(r);
    r.retrans = true;
    r.everRetrans = true;
    r.xmitAt = now;
    this.pipe += inFlight(r) - before;
    if (!r.sacked) this.link(r);
  }

  /** Mark `r` lost (RFC 6675 / RFC 8985 §6.2 step 5). A lost retransmission is lost again. */
  markLost(r: SentSegment): void {
    if (r.sacked || waiting(r)) return;
    const before = inFlight(r);
    r.lost = true;
    r.retrans = false;
    this.lostBytes += length(r);
    this.pipe += inFlight(r) - before;
    this.unlink(r);
    if (seqLt(r.start, this.lostFrom)) this.lostFrom = r.start;
  }

  /** SACKed: delivered, so neither lost nor in flight any more. */
  private markSackedOne(r: SentSegment): void {
    const before = inFlight(r);
    if (waiting(r)) this.lostBytes -= length(r);
    r.sacked = true;
    r.lost = false;
    r.retrans = false;
    this.sackedBytes += length(r);
    this.sackedSegments++;
    this.pipe += inFlight(r) - before;
    this.unlink(r);
  }

  /** Cumulatively acknowledged (in part: the first `n` bytes). */
  private removeBytes(r: SentSegment, n: number): void {
    const before = inFlight(r);
    if (waiting(r)) this.lostBytes -= n;
    if (r.sacked) this.sackedBytes -= n;
    const whole = n === length(r);
    if (whole) {
      if (r.sacked) this.sackedSegments--;
      this.pipe -= before;
      this.unlink(r);
      return;
    }
    r.start = (r.start + n) >>> 0;
    this.pipe += inFlight(r) - before;
  }

  /** The first segment waiting for retransmission (RFC 6675 NextSeg rule 1), in sequence order. */
  nextLost(): SentSegment | undefined {
    if (this.lostBytes <= 0) return undefined;
    for (let i = this.indexOf(this.lostFrom); i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (waiting(r)) {
        this.lostFrom = r.start;
        return r;
      }
    }
    return undefined;
  }

  /** Index of the first record whose end is beyond `seq` (binary search over the sequence order). */
  private indexOf(seq: number): number {
    let lo = this.head;
    let hi = this.recs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLeq(this.recs[mid]!.end, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // ------------------------------------------------------------ ACK processing

  /**
   * The cumulative ACK reached `ack`: drop what it covers. Returns the bytes newly delivered by it
   * (not counting bytes already SACKed). `echo` is the ACK's TSecr and `tsOffset` our timestamp
   * clock's offset (TSval = floor(ms) + offset, RFC 7323 §5.4), to tell whether the echo names the
   * last transmission of a segment acknowledged here; without `tsOffset`, no timestamps.
   */
  ackTo(ack: number, now: number, echo = -1, tsOffset?: number): number {
    let delivered = 0;
    const recs = this.recs;
    this.ackedXmitAt = this.ackedKarnXmitAt = Infinity;
    this.ackedEchoMatched = false;
    let retransAcked = false;
    let latestRetrans = -Infinity;
    while (this.head < recs.length) {
      const r = recs[this.head]!;
      if (!seqLt(r.start, ack)) break;
      if (tsOffset !== undefined && ((Math.floor(r.xmitAt) + tsOffset) >>> 0) === echo) this.ackedEchoMatched = true;
      if (r.xmitAt < this.ackedXmitAt) this.ackedXmitAt = r.xmitAt;
      if (r.everRetrans) {
        retransAcked = true;
        if (r.xmitAt > latestRetrans) latestRetrans = r.xmitAt;
      } else if (!r.sacked) {
        if (r.xmitAt < this.ackedKarnXmitAt) this.ackedKarnXmitAt = r.xmitAt;
        // RFC 8985 §6.2 step 3: an original delivered below what was already delivered: reordering.
        if (seqLt(r.end, this.fack)) this.reorderingSeen = true;
      }
      const whole = seqLeq(r.end, ack);
      const n = whole ? length(r) : seqDiff(ack, r.start);
      if (!r.sacked) {
        delivered += n;
        if (whole) this.rackDelivered(r, now);
      }
      this.removeBytes(r, n);
      if (!whole) break;
      this.head++;
      if (this.spare.length < MAX_SPARE) this.spare.push(r);
    }
    if (retransAcked) {
      this.ackedKarnXmitAt = Infinity;
      if (this.ackedEchoMatched && tsOffset !== undefined &&
        ((echo - ((Math.floor(latestRetrans) + tsOffset) >>> 0)) | 0) < 0) this.ackedEchoMatched = false;
    }
    if (seqGt(ack, this.fack)) this.fack = ack;
    if (seqLt(this.lostFrom, ack)) this.lostFrom = ack;
    if (this.dsackRoundEnd !== null && seqGeq(ack, this.dsackRoundEnd)) this.dsackRoundEnd = null;
    if (this.head > 1024 && this.head * 2 > recs.length) {
      this.recs = recs.slice(this.head);
      this.head = 0;
    }
    if (this.empty) this.pipe = this.lostBytes = this.sackedBytes = this.sackedSegments = 0;
    return delivered;
  }

  /**
   * Apply the SACK blocks of an ACK (RFC 2018 §4, at most 4 parsed). Returns the bytes newly SACKed.
   * `segAck` is the ACK's own cumulative acknowledgment: a first block below it, or inside the
   * second block, is a D-SACK (RFC 2883 §4): a duplicate arrived — our retransmission was spurious,
   * or the network duplicated or reordered — so RACK widens its reordering window (RFC 8985 §6.2).
   */
  applySack(blocks: ReadonlyArray<readonly [number, number]>, segAck: number, sndMax: number, now: number): number {
    let newly = 0;
    for (let b = 0; b < blocks.length; b++) {
      const [left, right] = blocks[b]!;
      // A block for data never sent is bogus (Linux tcp_is_sackblock_valid): ignore it.
      if (!seqLt(left, right) || seqGt(right, sndMax)) continue;
      if (b === 0 && (seqLeq(right, segAck) ||
        (blocks.length > 1 && seqGeq(left, blocks[1]![0]) && seqLeq(right, blocks[1]![1])))) {
        this.dsackSeen(sndMax);
        continue;
      }
      const una = this.first()?.start;
      if (una === undefined || seqLeq(right, una)) continue;
      newly += this.markSacked(left, right, now);
      if (seqGt(right, this.fack)) this.fack = right;
    }
    return newly;
  }

  /** RFC 8985 §6.2 step 4: one widening of the reordering window per round trip. */
  private dsackSeen(sndMax: number): void {
    this.dsacks++;
    if (this.dsackRoundEnd !== null) return;
    this.dsackRoundEnd = sndMax;
    this.reoWndMult = Math.min(this.reoWndMult + 1, MAX_REO_WND_MULT);
    this.reoWndPersist = REO_WND_PERSIST;
  }

  /** RFC 8985 §6.2 step 4: after 16 recoveries without D-SACK the window returns to its base. */
  recoveryEnded(): void {
    if (this.reoWndPersist > 0 && --this.reoWndPersist === 0) this.reoWndMult = 1;
  }

  private markSacked(left: number, right: number, now: number): number {
    let newly = 0;
    for (let i = this.indexOf(left); i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (seqGeq(r.start, right)) break;
      // Only whole segments count as SACKed (blocks normally follow segment edges).
      if (r.sacked || seqLt(r.start, left) || seqGt(r.end, right)) continue;
      // RFC 8985 §6.2 step 3: never resent, yet delivered below one delivered before it: reordering.
      if (!r.everRetrans && seqLt(r.end, this.fack)) this.reorderingSeen = true;
      this.markSackedOne(r);
      newly += length(r);
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
   * Walks the in-flight list in send order and stops at the first segment not yet due. Returns the
   * number marked, and leaves in `reoTimeout` the time until the next one may be (Infinity when
   * none): the reordering timer.
   */
  detectLoss(now: number, reoWnd: number): number {
    let marked = 0;
    this.reoTimeout = Infinity;
    if (this.rackXmitAt === -Infinity) return marked;
    let r = this.tHead;
    while (r !== null) {
      const next = r.nextT;
      const sentBefore = r.xmitAt < this.rackXmitAt || (r.xmitAt === this.rackXmitAt && seqLt(r.end, this.rackEnd));
      if (!sentBefore) break;
      const left = r.xmitAt + this.rackRtt + reoWnd - now;
      if (left > 0) {
        this.reoTimeout = left;
        break;
      }
      this.markLost(r);
      marked++;
      r = next;
    }
    return marked;
  }

  /** After an RTO: every segment not SACKed is lost (RFC 6675 §5.1, RFC 8985 §6.3). */
  markAllLost(): void {
    for (let i = this.head; i < this.recs.length; i++) this.markLost(this.recs[i]!);
  }

  /**
   * The peer discarded data it had SACKed (reneging, RFC 2018 §8): forget every SACK mark, so that
   * data counts as lost and is sent again.
   */
  clearSacks(): void {
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i]!;
      if (!r.sacked) continue;
      r.sacked = false;
      this.sackedBytes -= length(r);
      this.sackedSegments--;
      // Not in flight (it was delivered, then dropped): it waits for retransmission.
      r.lost = true;
      r.retrans = false;
      this.lostBytes += length(r);
      if (seqLt(r.start, this.lostFrom)) this.lostFrom = r.start;
    }
  }

  /** Forget everything (the connection is closing down). */
  clear(): void {
    // New arrays only when there is something to drop: a connection is cleared when it opens too.
    if (this.recs.length !== 0) this.recs = [];
    if (this.spare.length !== 0) this.spare = [];
    this.head = 0;
    this.tHead = this.tTail = null;
    this.pipe = this.lostBytes = this.sackedBytes = this.sackedSegments = 0;
  }

  /** Move the scoreboard's notion of the left edge (ISS+1 once the handshake completes). */
  reset(una: number): void {
    this.clear();
    this.fack = una;
    this.rackEnd = una;
    this.lostFrom = una;
  }
}
