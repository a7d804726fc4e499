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

export class ByteRing {
  private buf: Uint8Array | null = null;
  private head = 0;
  /** Bytes stored, starting at `head`. */
  length = 0;

  constructor(public capacity: number) {}

  /**
   * Grow to `capacity` bytes (auto-tuning). Everything stored, and whatever was written ahead of the
   * end for reassembly, keeps its offset. Storage that is not allocated yet stays unallocated.
   */
  grow(capacity: number): void {
    if (capacity <= this.capacity) return;
    if (this.buf !== null) {
      const next = allocate(capacity);
      this.copyOut(0, this.capacity, next);
      recycle(this.buf);
      this.buf = next;
      this.head = 0;
    }
    this.capacity = capacity;
  }

  get free(): number {
    return this.capacity - this.length;
  }

  private storage(): Uint8Array {
    if (this.buf === null) this.buf = allocate(this.capacity);
    return this.buf;
  }

  /** Append up to `free` bytes; returns how many were taken. */
  push(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    if (n === 0) return 0;
    this.writeAt(this.length, data.subarray(0, n));
    this.length += n;
    return n;
  }

  /**
   * Write bytes at `offset` past the stored data without making them readable (out-of-order
   * reassembly writes ahead of the gap; `commit` makes them visible once the gap fills).
   */
  writeAt(offset: number, data: Uint8Array): void {
    const buf = this.storage();
    const pos = (this.head + offset) % this.capacity;
    const first = Math.min(data.length, this.capacity - pos);
    buf.set(data.subarray(0, first), pos);
    if (first < data.length) buf.set(data.subarray(first), 0);
  }

  /** Make `n` bytes already written past the end readable. */
  commit(n: number): void {
    this.length += n;
  }

  /** Copy `len` bytes starting `offset` bytes in into `out` at `outOffset`. */
  copyOut(offset: number, len: number, out: Uint8Array, outOffset = 0): void {
    if (len === 0) return;
    const buf = this.storage();
    const pos = (this.head + offset) % this.capacity;
    const first = Math.min(len, this.capacity - pos);
    out.set(buf.subarray(pos, pos + first), outOffset);
    if (first < len) out.set(buf.subarray(0, len - first), outOffset + first);
  }

  /** A view of `len` bytes at `offset` when contiguous, else a copy. */
  view(offset: number, len: number): Uint8Array {
    const buf = this.storage();
    const pos = (this.head + offset) % this.capacity;
    if (pos + len <= this.capacity) return buf.subarray(pos, pos + len);
    const out = new Uint8Array(len);
    this.copyOut(offset, len, out);
    return out;
  }

  /** Drop `n` bytes from the front. */
  consume(n: number): void {
    // `head` must not jump back to 0 here even when empty: out-of-order bytes may already be
    // written ahead of the gap, relative to it (release() resets it once nothing is held).
    this.head = (this.head + n) % this.capacity;
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
