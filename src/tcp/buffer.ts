/**
 * Byte ring buffers for the send and receive queues. Storage is allocated on first use and released
 * when the buffer drains, so an idle connection holds no buffer memory (DESIGN: lazy buffers).
 */
/**
 * Storage given back by drained buffers, kept for reuse by size: a bulk transfer drains and refills
 * its buffers thousands of times a second, and allocating (and zeroing) megabytes each time would
 * cost more than the transfer. Bounded in total, so idle connections still hold nothing.
 */
const POOL_LIMIT_BYTES = 32 * 1024 * 1024;
const pool = new Map<number, Uint8Array[]>();
let pooledBytes = 0;

function allocate(size: number): Uint8Array {
  const list = pool.get(size);
  const reused = list?.pop();
  if (reused !== undefined) {
    pooledBytes -= size;
    return reused;
  }
  return new Uint8Array(size);
}

function recycle(buf: Uint8Array): void {
  if (pooledBytes + buf.length > POOL_LIMIT_BYTES) {
    // Full (of sizes nobody asks for any more, typically): start over with this one, even when it
    // alone is above the limit, so that a very large buffer is reused too rather than reallocated
    // on every drain.
    pool.clear();
    pooledBytes = 0;
  }
  let list = pool.get(buf.length);
  if (list === undefined) pool.set(buf.length, (list = []));
  list.push(buf);
  pooledBytes += buf.length;
}

/** Smallest storage a ring allocates: a short exchange (a request, an echo) fits in it. */
const MIN_STORAGE = 4096;

export class ByteRing {
  /** Storage, sized to what has been written (a power of two up to `capacity`), or null when empty. */
  private buf: Uint8Array | null = null;
  private head = 0;
  /** Bytes stored, starting at `head`. */
  length = 0;

  /** `capacity` is the most the ring holds; storage grows towards it only as bytes arrive. */
  constructor(public capacity: number) {}

  /**
   * Grow to `capacity` bytes (auto-tuning). Everything stored, and whatever was written ahead of the
   * end for reassembly, keeps its offset. The storage itself grows only when bytes need it.
   */
  grow(capacity: number): void {
    if (capacity <= this.capacity) return;
    this.capacity = capacity;
  }

  get free(): number {
    return this.capacity - this.length;
  }

  /**
   * Storage covering offsets [0, end) from `head`. A 1-byte request allocates 4 KiB, not the whole
   * capacity (256 KiB by default, zeroed): connection set-up and short exchanges stay cheap, and a
   * bulk transfer reaches full size after a few doublings.
   */
  private storage(end: number): Uint8Array {
    const buf = this.buf;
    if (buf !== null && end <= buf.length) return buf;
    let size = MIN_STORAGE;
    while (size < end) size *= 2;
    if (size > this.capacity) size = Math.max(this.capacity, end);
    const next = allocate(size);
    if (buf !== null) {
      // Everything the old storage held, in logical order (data and bytes written ahead of it).
      const n = buf.length;
      const first = n - this.head;
      next.set(buf.subarray(this.head, n), 0);
      if (this.head > 0) next.set(buf.subarray(0, this.head), first);
      recycle(buf);
    }
    this.buf = next;
    this.head = 0;
    return next;
  }

  /** Append up to `free` bytes; returns how many were taken. */
  push(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    if (n === 0) return 0;
    this.writeAt(this.length, n === data.length ? data : data.subarray(0, n));
    this.length += n;
    return n;
  }

  /**
   * Write bytes at `offset` past the stored data without making them readable (out-of-order
   * reassembly writes ahead of the gap; `commit` makes them visible once the gap fills).
   */
  writeAt(offset: number, data: Uint8Array): void {
    const buf = this.storage(offset + data.length);
    const size = buf.length;
    const pos = (this.head + offset) % size;
    const first = Math.min(data.length, size - pos);
    if (first === data.length) buf.set(data, pos);
    else {
      buf.set(data.subarray(0, first), pos);
      buf.set(data.subarray(first), 0);
    }
  }

  /** Make `n` bytes already written past the end readable. */
  commit(n: number): void {
    this.length += n;
  }

  /** Copy `len` bytes starting `offset` bytes in into `out` at `outOffset`. */
  copyOut(offset: number, len: number, out: Uint8Array, outOffset = 0): void {
    if (len === 0) return;
    const buf = this.storage(offset + len);
    const size = buf.length;
    const pos = (this.head + offset) % size;
    const first = Math.min(len, size - pos);
    out.set(buf.subarray(pos, pos + first), outOffset);
    if (first < len) out.set(buf.subarray(0, len - first), outOffset + first);
  }

  /** A view of `len` bytes at `offset` when contiguous, else a copy. */
  view(offset: number, len: number): Uint8Array {
    const buf = this.storage(offset + len);
    const pos = (this.head + offset) % buf.length;
    if (pos + len <= buf.length) return buf.subarray(pos, pos + len);
    const out = new Uint8Array(len);
    this.copyOut(offset, len, out);
    return out;
  }

  /** Drop `n` bytes from the front. */
  consume(n: number): void {
    if (n === 0) return;
    // `head` must not jump back to 0 here even when empty: out-of-order bytes may already be
    // written ahead of the gap, relative to it (release() resets it once nothing is held).
    const size = this.buf === null ? 1 : this.buf.length;
    this.head = (this.head + n) % size;
    this.length -= n;
  }

  /** Take up to `max` bytes from the front as a fresh array. */
  shift(max: number): Uint8Array {
    const n = Math.min(max, this.length);
    const out = new Uint8Array(n);
    this.copyOut(0, n, out);
    this.consume(n);
    return out;
  }

  /** Free the storage when nothing is stored and nothing is pending past the end. */
  release(): void {
    if (this.length === 0) {
      if (this.buf !== null) recycle(this.buf);
      this.buf = null;
      this.head = 0;
    }
  }

  get allocated(): boolean {
    return this.buf !== null;
  }
}
