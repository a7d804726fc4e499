/**
 * Byte ring buffers for the send and receive queues. Storage is allocated on first use and released
 * when the buffer drains, so an idle connection holds no buffer memory (DESIGN: lazy buffers).
 */
export class ByteRing {
  private buf: Uint8Array | null = null;
  private head = 0;
  /** Bytes stored, starting at `head`. */
  length = 0;

  constructor(readonly capacity: number) {}

  get free(): number {
    return this.capacity - this.length;
  }

  private storage(): Uint8Array {
    if (this.buf === null) this.buf = new Uint8Array(this.capacity);
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
      this.buf = null;
      this.head = 0;
    }
  }

  get allocated(): boolean {
    return this.buf !== null;
  }
}
