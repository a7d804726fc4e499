/**
 * A hashed timer wheel (Varghese & Lauck, "Hashed and Hierarchical Timing Wheels", 1987): one per
 * stack, holding every connection's retransmission, delayed-ACK, persist, keepalive and TIME-WAIT
 * timers. Entries due within one revolution sit in the slot of their tick; entries further out
 * (TIME-WAIT's 60 s, keepalive's 2 h beside a 4 s revolution) wait in an overflow list that is
 * moved into the slots every half revolution — so a slot only ever holds entries of its current
 * tick, and finding the earliest deadline never walks past thousands of far-future timers. TCP re-arms its retransmission timer on nearly every ACK (RFC 6298 §5.3), so arm, re-arm
 * and cancel must be O(1) and allocation-free: each entry carries its own list links (intrusive
 * doubly-linked list per slot). The stack asks the clock for a single wakeup at `nextDeadline()`.
 */

/** Not in the wheel. */
const UNARMED = -1;
/** Taken out of the wheel by the current `expire()`, about to fire. */
const COLLECTED = -2;

export class TimerEntry<T> {
  /** Absolute time (ms) this entry fires at; Infinity when not armed. */
  deadline = Infinity;
  /** Intrusive list links within the slot; owned by the wheel. */
  prev: TimerEntry<T> | null = null;
  next: TimerEntry<T> | null = null;
  /** Slot index, or UNARMED/COLLECTED; owned by the wheel. */
  slot = UNARMED;
  /**
   * When it was armed, as a count of arms on its wheel: entries due at the same instant fire in
   * arming order, whatever list (slot or overflow) each waited in. Owned by the wheel.
   */
  seq = 0;

  constructor(readonly owner: T) {}

  get armed(): boolean {
    return this.slot >= 0;
  }
}

/** Deadline order; equal deadlines in arming order (an entry that waited in the overflow list is
 * appended to its slot when it migrates, behind entries armed later straight into the slot). */
function byDeadline<T>(a: TimerEntry<T>, b: TimerEntry<T>): number {
  return a.deadline - b.deadline || a.seq - b.seq;
}

export class TimerWheel<T> {
  private readonly tickMs: number;
  private readonly mask: number;
  private readonly heads: Array<TimerEntry<T> | null>;
  private readonly tails: Array<TimerEntry<T> | null>;
  /** One bit per slot: non-empty. Lets nextDeadline() skip empty slots 32 at a time. */
  private readonly occupied: Uint32Array;
  /** Tick up to which every due entry has fired; entries armed in the past go in this slot. */
  private cursor = 0;
  private count = 0;
  /** Cached lower bound of the earliest deadline (exact when just recomputed). */
  private minCache = Infinity;
  private minValid = true;
  /**
   * Armed entries whose deadline is `minCache` (while valid; may count low, never high). Cancelling
   * or moving one of several timers due at the same instant (virtual time, a burst of connections)
   * then keeps the cache instead of walking the slot again: O(1), not O(entries in the slot).
   */
  private minCount = 0;
  /** The overflow list's index in heads/tails (one past the last slot). */
  private readonly far: number;
  private farCount = 0;
  /** A lower bound of the overflow list's earliest deadline (exact after each migration). */
  private farMin = Infinity;
  /** Tick at or after which expire() moves overflow entries that came within reach into the slots. */
  private nextMigration = 0;
  private scratch: Array<TimerEntry<T>> = [];
  private expiring = false;
  /** Arms so far: the next entry's `seq`. */
  private armSeq = 0;

  constructor(tickMs = 1, slots = 4096) {
    if (!(tickMs > 0)) throw new RangeError('TimerWheel: tickMs must be > 0');
    // A power of two so the slot of a tick is a mask, not a division.
    let n = 32;
    while (n < slots) n *= 2;
    this.tickMs = tickMs;
    this.mask = n - 1;
    this.far = n;
    this.heads = new Array<TimerEntry<T> | null>(n + 1).fill(null);
    this.tails = new Array<TimerEntry<T> | null>(n + 1).fill(null);
    this.occupied = new Uint32Array(n >>> 5);
  }

  /** Armed entries. */
  get size(): number {
    return this.count;
  }

  /** Arms `e` for absolute time `at`, moving it if already armed; a past `at` fires at the next expire(). */
  arm(e: TimerEntry<T>, at: number): void {
    if (Number.isNaN(at)) throw new RangeError('TimerWheel: deadline is NaN');
    if (at === Infinity) return this.cancel(e);
    if (e.slot >= 0) {
      if (e.slot === this.far) {
        if (--this.farCount === 0) this.farMin = Infinity;
      } else if (at !== e.deadline) {
        // Moving the last entry due at the cached minimum later leaves the cache too early, which
        // is allowed, but recomputing keeps the stack from waking up for nothing.
        this.forgetMin(e.deadline);
      } else if (this.minValid && at === this.minCache) {
        this.minCount--; // counted again below
      }
      this.unlink(e);
    } else {
      this.count++;
    }
    e.deadline = at;
    e.seq = this.armSeq++;
    let tick = Math.floor(at / this.tickMs);
    if (tick < this.cursor) tick = this.cursor;
    if (tick - this.cursor > this.mask) {
      // Beyond one revolution: the overflow list, until a migration brings it within reach.
      this.link(e, this.far);
      this.farCount++;
      if (at < this.farMin) this.farMin = at;
      return;
    }
    this.link(e, tick & this.mask);
    if (this.minValid) {
      if (at < this.minCache) {
        this.minCache = at;
        this.minCount = 1;
      } else if (at === this.minCache) {
        this.minCount++;
      }
    }
  }

  /** An entry due at `deadline` leaves the wheel (or moves). */
  private forgetMin(deadline: number): void {
    if (this.minValid && deadline === this.minCache && --this.minCount <= 0) this.minValid = false;
  }

  cancel(e: TimerEntry<T>): void {
    if (e.slot >= 0) {
      const wasFar = e.slot === this.far;
      this.unlink(e);
      this.count--;
      if (!wasFar) this.forgetMin(e.deadline);
      else if (--this.farCount === 0) this.farMin = Infinity; // else farMin may now be early: allowed
    }
    // A COLLECTED entry becomes UNARMED too, so the expire() in progress skips it.
    e.slot = UNARMED;
    e.deadline = Infinity;
    if (this.count === 0) {
      this.minCache = Infinity;
      this.minValid = true;
      this.farMin = Infinity;
    }
  }

  /** A time no later than the earliest deadline (Infinity if empty). */
  nextDeadline(): number {
    if (this.count === 0) return Infinity;
    if (!this.minValid) {
      this.minCache = this.computeMin();
      this.minValid = true;
    }
    return this.minCache < this.farMin ? this.minCache : this.farMin;
  }

  /**
   * Fires every entry with deadline <= now, once, in deadline order (equal deadlines in arming
   * order). Entries armed or re-armed from inside `fire` wait for the next call, even if already
   * due, so a timer that keeps re-arming for "now" cannot loop forever here.
   */
  expire(now: number, fire: (owner: T) => void): void {
    const nowTick = Math.floor(now / this.tickMs);
    // A nested expire() (from inside fire) must not clobber the outer one's list.
    const due = this.expiring ? [] : this.scratch;
    if (this.farCount > 0 && nowTick >= this.nextMigration) this.migrate(nowTick);
    if (this.count > 0 && nowTick >= this.cursor) {
      if (nowTick - this.cursor > this.mask) {
        // Time jumped more than one revolution (virtual time, a suspended laptop): visit each
        // occupied slot once instead of every tick in between.
        for (let s = this.findOccupied(0, this.mask + 1); s >= 0; s = this.findOccupied(s + 1, this.mask + 1)) {
          this.collect(s, now, due);
        }
      } else {
        for (let tick = this.cursor; tick <= nowTick; tick++) {
          const s = tick & this.mask;
          if (this.occupied[s >>> 5]! & (1 << (s & 31))) this.collect(s, now, due);
        }
      }
    }
    if (nowTick > this.cursor) this.cursor = nowTick;
    if (now >= this.minCache) this.minValid = false;
    // An early lower bound (its entry cancelled or moved) must not make the stack wake for nothing
    // again and again until the next migration: make it exact.
    if (this.farMin <= now) this.farMin = this.farCount > 0 ? this.scanFarMin() : Infinity;
    if (this.count === 0) {
      this.minCache = Infinity;
      this.minValid = true;
    }
    if (due.length === 0) return;
    if (due.length > 1) due.sort(byDeadline);

    const outer = this.expiring;
    this.expiring = true;
    let i = 0;
    try {
      for (; i < due.length; i++) {
        const e = due[i]!;
        if (e.slot !== COLLECTED) continue; // cancelled or re-armed by an earlier fire
        e.slot = UNARMED;
        e.deadline = Infinity;
        fire(e.owner);
      }
    } finally {
      // If a fire threw, the entries not yet fired go back so the next expire() fires them.
      for (i++; i < due.length; i++) {
        const e = due[i]!;
        if (e.slot === COLLECTED) {
          const at = e.deadline;
          e.slot = UNARMED;
          this.arm(e, at);
        }
      }
      due.length = 0;
      this.expiring = outer;
    }
  }

  // -------------------------------------------------------------------------------------------------

  /**
   * Moves overflow entries due within one revolution of `nowTick` into their slots, and makes
   * `farMin` exact for the rest. Every half revolution: what stays is more than a revolution away,
   * so it cannot come due before the next migration. O(overflow entries) per half revolution.
   */
  private migrate(nowTick: number): void {
    this.nextMigration = nowTick + ((this.mask + 1) >>> 1);
    let best = Infinity;
    let e = this.heads[this.far] ?? null;
    while (e !== null) {
      const next: TimerEntry<T> | null = e.next;
      let tick = Math.floor(e.deadline / this.tickMs);
      if (tick - nowTick <= this.mask) {
        this.unlink(e);
        this.farCount--;
        if (tick < this.cursor) tick = this.cursor;
        this.link(e, tick & this.mask);
        if (this.minValid) {
          if (e.deadline < this.minCache) {
            this.minCache = e.deadline;
            this.minCount = 1;
          } else if (e.deadline === this.minCache) {
            this.minCount++;
          }
        }
      } else if (e.deadline < best) {
        best = e.deadline;
      }
      e = next;
    }
    this.farMin = best;
  }

  private scanFarMin(): number {
    let best = Infinity;
    for (let e = this.heads[this.far] ?? null; e !== null; e = e.next) if (e.deadline < best) best = e.deadline;
    return best;
  }

  private collect(s: number, now: number, due: Array<TimerEntry<T>>): void {
    let e = this.heads[s] ?? null;
    while (e !== null) {
      const next: TimerEntry<T> | null = e.next;
      if (e.deadline <= now) {
        this.unlink(e);
        e.slot = COLLECTED;
        this.count--;
        due.push(e);
      }
      e = next;
    }
  }

  /** The earliest deadline, with `minCount` set to the entries due then (in its slot). */
  private computeMin(): number {
    const slots = this.mask + 1;
    const start = this.cursor & this.mask;
    // Walk one revolution from the cursor; the first slot holding an entry of this revolution
    // holds the earliest tick (entries further out share slots with nearer ones).
    for (let pass = 0; pass < 2; pass++) {
      const from = pass === 0 ? start : 0;
      const to = pass === 0 ? slots : start;
      for (let s = this.findOccupied(from, to); s >= 0; s = this.findOccupied(s + 1, to)) {
        const distance = (s - start) & this.mask;
        let best = Infinity;
        let ties = 0;
        for (let e = this.heads[s] ?? null; e !== null; e = e.next) {
          let tick = Math.floor(e.deadline / this.tickMs);
          if (tick < this.cursor) tick = this.cursor;
          if (tick - this.cursor !== distance) continue;
          if (e.deadline < best) {
            best = e.deadline;
            ties = 1;
          } else if (e.deadline === best) {
            ties++;
          }
        }
        if (best !== Infinity) {
          this.minCount = ties;
          return best;
        }
      }
    }
    // Everything is more than one revolution away: take the minimum of all.
    let best = Infinity;
    let ties = 0;
    for (let s = this.findOccupied(0, slots); s >= 0; s = this.findOccupied(s + 1, slots)) {
      for (let e = this.heads[s] ?? null; e !== null; e = e.next) {
        if (e.deadline < best) {
          best = e.deadline;
          ties = 1;
        } else if (e.deadline === best) {
          ties++;
        }
      }
    }
    this.minCount = ties;
    return best;
  }

  /** First occupied slot in [from, to), or -1. */
  private findOccupied(from: number, to: number): number {
    if (from >= to) return -1;
    let w = from >>> 5;
    let bits = this.occupied[w]! & (~0 << (from & 31));
    const lastWord = (to - 1) >>> 5;
    for (;;) {
      if (bits !== 0) {
        const s = (w << 5) + (31 - Math.clz32(bits & -bits));
        return s < to ? s : -1;
      }
      if (++w > lastWord) return -1;
      bits = this.occupied[w]!;
    }
  }

  private link(e: TimerEntry<T>, s: number): void {
    const tail = this.tails[s] ?? null;
    e.slot = s;
    e.next = null;
    e.prev = tail;
    if (tail === null) {
      this.heads[s] = e;
      if (s !== this.far) this.occupied[s >>> 5]! |= 1 << (s & 31);
    } else {
      tail.next = e;
    }
    this.tails[s] = e;
  }

  private unlink(e: TimerEntry<T>): void {
    const s = e.slot;
    if (e.prev === null) this.heads[s] = e.next;
    else e.prev.next = e.next;
    if (e.next === null) this.tails[s] = e.prev;
    else e.next.prev = e.prev;
    e.prev = null;
    e.next = null;
    if (this.heads[s] === null && s !== this.far) this.occupied[s >>> 5]! &= ~(1 << (s & 31));
  }
}
