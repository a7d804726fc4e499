/**
 * Time for the stack. Milliseconds as a float. `VirtualClock` runs simulated time as fast as the CPU
 * allows; `RealClock` uses the host's timers. OWNED BY THE LINK HELPER; signatures are the contract.
 */
export interface TimerHandle {
  /** Opaque. */
  readonly id: number;
}

export interface Clock {
  /** Current time in ms. */
  now(): number;
  /** Run `fn` at absolute time `at` (ms); if `at` <= now it runs on the next turn, never synchronously. */
  schedule(at: number, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
  /** Queue `fn` to run soon, in order, after the current work (a microtask-like turn of the clock). */
  defer(fn: () => void): void;
}

// ---------------------------------------------------------------------------------------------------
// Host macrotask: the one place that knows how to yield to the host event loop. Detected through
// globalThis (no Node import) so the core runs in a browser unchanged.

type Macrotask = (fn: () => void) => void;

function hostMacrotask(): Macrotask {
  const g = globalThis as {
    setImmediate?: (fn: () => void) => unknown;
    MessageChannel?: typeof MessageChannel;
  };
  // Node: setImmediate runs after pending I/O, nextTicks and promise jobs, which is exactly the turn
  // node streams need to settle.
  if (typeof g.setImmediate === 'function') {
    const setImmediate = g.setImmediate;
    return (fn) => {
      setImmediate(fn);
    };
  }
  // Browsers: a MessageChannel post is a macrotask without setTimeout's 4 ms clamp for nested calls.
  if (typeof g.MessageChannel === 'function') {
    const channel = new g.MessageChannel();
    const waiting: Array<() => void> = [];
    channel.port1.onmessage = () => {
      const fn = waiting.shift();
      if (fn) fn();
    };
    return (fn) => {
      waiting.push(fn);
      channel.port2.postMessage(0);
    };
  }
  return (fn) => {
    setTimeout(fn, 0);
  };
}

let macrotask: Macrotask | undefined;
function yieldToHost(): Promise<void> {
  macrotask ??= hostMacrotask();
  const run = macrotask;
  return new Promise((resolve) => run(resolve));
}

// ---------------------------------------------------------------------------------------------------
// VirtualClock

class VirtualTimer implements TimerHandle {
  constructor(
    readonly id: number,
    /** Absolute due time (never earlier than the clock's time when scheduled). */
    readonly at: number,
    /** Insertion order: breaks ties between timers due at the same instant. */
    readonly seq: number,
    /** Null once run or cancelled (lazy deletion from the heap). */
    public fn: (() => void) | null,
    /** In the heap (due later) rather than the FIFO of the current instant. */
    readonly inHeap: boolean,
  ) {}
}

function earlier(x: VirtualTimer, y: VirtualTimer): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

export interface RunOptions {
  /** Stop after this much virtual time even if there is always more work (keepalives). */
  maxMs?: number;
}

/** 24 h of virtual time: more than any test needs, far less than forever. */
const DEFAULT_MAX_MS = 24 * 60 * 60 * 1000;
/** A livelock (a timer that always re-arms for "now") must fail a test, not hang it. */
const MAX_STEPS = 50_000_000;

/**
 * Simulated time, starting at 0 ms. Nothing happens until the owner calls `advance`/`runUntilIdle`
 * (or their `Sync` variants); then every timer and deferred callback due runs in (time, insertion)
 * order, so a run is fully deterministic.
 *
 * Deferred callbacks and timers scheduled for "now" share one FIFO for the current instant. Every
 * heap timer due at the current instant was scheduled before the instant began (anything scheduled
 * during it for `at <= now` goes to the FIFO), so running due heap timers first and then the FIFO is
 * the same as one queue ordered by (time, insertion order).
 */
export interface VirtualClockOptions {
  /** Callbacks one run may execute before it declares a livelock. Default 50 million. */
  maxSteps?: number;
}

export class VirtualClock implements Clock {
  private t = 0;
  private readonly maxSteps: number;
  private nextId = 1;
  private nextSeq = 0;
  private readonly heap: VirtualTimer[] = [];
  /** Cancelled timers still sitting in the heap. */
  private heapGarbage = 0;
  private fifo: VirtualTimer[] = [];
  private fifoHead = 0;
  /** Live (not run, not cancelled) timers and deferred callbacks. */
  private live = 0;
  private steps = 0;
  private inCallback = false;
  private asyncRunning = false;

  constructor(opts: VirtualClockOptions = {}) {
    this.maxSteps = opts.maxSteps ?? MAX_STEPS;
  }

  now(): number {
    return this.t;
  }

  schedule(at: number, fn: () => void): TimerHandle {
    const later = at > this.t;
    const timer = new VirtualTimer(this.nextId++, later ? at : this.t, this.nextSeq++, fn, later);
    this.live++;
    if (later) this.heapPush(timer);
    else this.fifo.push(timer);
    return timer;
  }

  cancel(handle: TimerHandle): void {
    if (!(handle instanceof VirtualTimer) || handle.fn === null) return;
    handle.fn = null;
    this.live--;
    if (handle.inHeap) {
      this.heapGarbage++;
      // Re-armed timers (cancel + schedule per segment) would otherwise pile up in the heap.
      if (this.heapGarbage > 64 && this.heapGarbage * 2 > this.heap.length) this.compactHeap();
    }
  }

  defer(fn: () => void): void {
    this.live++;
    this.fifo.push(new VirtualTimer(0, this.t, this.nextSeq++, fn, false));
  }

  /** Timers plus deferred callbacks not yet run or cancelled. */
  pending(): number {
    return this.live;
  }

  /** Run everything due up to now+ms, then set the time to now+ms. */
  advanceSync(ms: number): void {
    const limit = this.t + Math.max(0, ms);
    this.enterSync();
    try {
      while (this.step(limit));
      this.t = limit;
    } finally {
      this.inCallback = false;
    }
  }

  /**
   * One callback at a time: runs the next callback if it is due at or before the absolute time
   * `until` and returns true; otherwise sets the time to `until` and returns false. So
   * `advanceSync(ms)` is `const u = now() + ms; while (runNext(u));` — for callers that single-step
   * a simulation (the interactive page's Step button).
   */
  runNext(until: number): boolean {
    this.enterSync();
    try {
      if (this.step(until)) return true;
      if (Number.isFinite(until) && until > this.t) this.t = until;
      return false;
    } finally {
      this.inCallback = false;
    }
  }

  /** Run until nothing is pending, or until now+maxMs if there is always more. */
  runUntilIdleSync(opts?: RunOptions): void {
    const limit = this.t + Math.max(0, opts?.maxMs ?? DEFAULT_MAX_MS);
    this.enterSync();
    try {
      while (this.step(limit));
      if (this.live > 0) this.t = limit;
    } finally {
      this.inCallback = false;
    }
  }

  /**
   * Like `advanceSync`, but after the work due at each instant it yields one macrotask turn to the
   * host, so promise and stream code layered on the stack runs at the virtual instant it belongs to.
   */
  async advance(ms: number): Promise<void> {
    await this.runAsync(this.t + Math.max(0, ms), true);
  }

  /** Like `runUntilIdleSync`, yielding to the host between instants (see `advance`). */
  async runUntilIdle(opts?: RunOptions): Promise<void> {
    await this.runAsync(this.t + Math.max(0, opts?.maxMs ?? DEFAULT_MAX_MS), false);
  }

  // -------------------------------------------------------------------------------------------------

  private enterSync(): void {
    if (this.inCallback) {
      throw new Error('VirtualClock: advance/runUntilIdle called from inside a clock callback');
    }
    this.inCallback = true;
    this.steps = 0;
  }

  private async runAsync(limit: number, toLimit: boolean): Promise<void> {
    if (this.inCallback) {
      throw new Error('VirtualClock: advance/runUntilIdle called from inside a clock callback');
    }
    if (this.asyncRunning) {
      throw new Error('VirtualClock: advance/runUntilIdle is already running; await it first');
    }
    this.asyncRunning = true;
    this.steps = 0;
    try {
      for (;;) {
        this.inCallback = true;
        try {
          while (this.step(this.t));
        } finally {
          this.inCallback = false;
        }
        await yieldToHost();
        // The host turn may have scheduled more work for this same instant.
        if (this.hasDueNow()) continue;
        const next = this.nextTime();
        if (next > limit) {
          if (toLimit || next !== Infinity) this.t = Math.max(this.t, limit);
          return;
        }
        this.t = next;
      }
    } finally {
      this.asyncRunning = false;
    }
  }

  /** Runs one callback due at or before `limit`; false when there is none. */
  private step(limit: number): boolean {
    let timer: VirtualTimer | undefined;
    const top = this.heapTop();
    if (top !== undefined && top.at <= this.t) {
      timer = this.heapPop();
    } else if (this.fifoHead < this.fifo.length) {
      timer = this.fifo[this.fifoHead++]!;
      if (this.fifoHead === this.fifo.length) {
        this.fifo = [];
        this.fifoHead = 0;
      }
      if (timer.fn === null) return true; // cancelled; keep going
    } else if (top !== undefined && top.at <= limit) {
      this.t = top.at;
      timer = this.heapPop();
    } else {
      return false;
    }
    const fn = timer.fn!;
    timer.fn = null;
    this.live--;
    fn();
    if (++this.steps > this.maxSteps) {
      throw new Error(
        `VirtualClock: more than ${this.maxSteps} callbacks in one run at t=${this.t} ms; ` +
          'a timer or deferred callback keeps re-arming itself (livelock?)',
      );
    }
    return true;
  }

  private hasDueNow(): boolean {
    if (this.fifoHead < this.fifo.length) return true;
    const top = this.heapTop();
    return top !== undefined && top.at <= this.t;
  }

  /** When the next callback is due (now, if one is queued for this instant; Infinity when idle). */
  nextDue(): number {
    return this.nextTime();
  }

  private nextTime(): number {
    if (this.fifoHead < this.fifo.length) return this.t;
    const top = this.heapTop();
    return top === undefined ? Infinity : top.at;
  }

  // Binary min-heap on (at, seq).

  /** The earliest live heap timer, discarding cancelled ones on top. */
  private heapTop(): VirtualTimer | undefined {
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.fn === null) {
      this.heapRemoveTop();
      this.heapGarbage--;
    }
    return heap[0];
  }

  private heapPop(): VirtualTimer {
    const top = this.heap[0]!;
    this.heapRemoveTop();
    return top;
  }

  private heapPush(timer: VirtualTimer): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!earlier(timer, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = timer;
  }

  private heapRemoveTop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    this.siftDown(0, last);
  }

  private siftDown(start: number, timer: VirtualTimer): void {
    const heap = this.heap;
    const n = heap.length;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && earlier(heap[child + 1]!, heap[child]!)) child++;
      if (!earlier(heap[child]!, timer)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = timer;
  }

  private compactHeap(): void {
    const kept = this.heap.filter((t) => t.fn !== null);
    this.heap.length = 0;
    for (const t of kept) this.heap.push(t);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i, this.heap[i]!);
    this.heapGarbage = 0;
  }
}

// ---------------------------------------------------------------------------------------------------
// RealClock

class RealTimer implements TimerHandle {
  native: ReturnType<typeof setTimeout> | undefined;
  constructor(readonly id: number) {}
}

/** Deferred callbacks run per macrotask before yielding, so a busy stack cannot starve host I/O. */
const DEFER_BATCH = 10_000;
/**
 * …and for at most about this long (checked after every callback): a stack pair exchanging packets
 * in memory defers far fewer, far longer callbacks than a count can bound, and host timers (the
 * stack's own RTO, TIME-WAIT, a benchmark's clock) must not wait a second behind them.
 */
const DEFER_BUDGET_MS = 4;

/** The host's time and timers. */
export class RealClock implements Clock {
  private nextId = 1;
  private deferred: Array<() => void> = [];
  private drainScheduled = false;
  private readonly perf: { now(): number } | undefined = (
    globalThis as { performance?: { now(): number } }
  ).performance;

  now(): number {
    return this.perf ? this.perf.now() : Date.now();
  }

  schedule(at: number, fn: () => void): TimerHandle {
    const timer = new RealTimer(this.nextId++);
    const arm = (): void => {
      const delay = at - this.now();
      timer.native = setTimeout(
        () => {
          // Host timers may fire up to a millisecond early (they round); the stack's timer wheel
          // would then find nothing due, so wait out the remainder.
          if (this.now() < at) arm();
          else {
            timer.native = undefined;
            fn();
          }
        },
        delay > 0 ? delay : 0,
      );
    };
    arm();
    return timer;
  }

  cancel(handle: TimerHandle): void {
    if (handle instanceof RealTimer && handle.native !== undefined) {
      clearTimeout(handle.native);
      handle.native = undefined;
    }
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      macrotask ??= hostMacrotask();
      macrotask(this.drain);
    }
  }

  private readonly drain = (): void => {
    const queue = this.deferred;
    let i = 0;
    const until = this.now() + DEFER_BUDGET_MS;
    try {
      // Callbacks deferred during the drain join this same turn (as in VirtualClock), up to a batch;
      // `drainScheduled` stays true meanwhile so they do not schedule another turn.
      while (i < queue.length && i < DEFER_BATCH) {
        queue[i++]!();
        // The budget is checked after every callback: one can take milliseconds (a burst of 64 KB
        // packets and the stack's work on it), so checking every 64th let a turn run 100+ ms while
        // host timers waited. A clock read (~50 ns) is small beside any callback that matters.
        if (this.now() >= until) break;
      }
    } finally {
      this.deferred = i === queue.length ? [] : queue.slice(i);
      if (this.deferred.length > 0) macrotask!(this.drain);
      else this.drainScheduled = false;
    }
  };
}
