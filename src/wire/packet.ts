/**
 * Memory for outgoing packets: carved one after another from shared slabs instead of one
 * `new Uint8Array` (an ArrayBuffer with its own zeroed backing store, tracked by the GC) per packet.
 * Slab memory is never handed out twice: a slab is dropped once full and lives as long as any packet
 * carved from it (a link queue, a trace listener), so a packet the link owns stays valid. The
 * checksum (checksum.ts) keeps a word view per buffer, so packets sharing a slab share that view too.
 *
 * The cost: a packet kept beyond its handling keeps its whole slab alive. Whoever keeps packets
 * (observers, trace listeners, recorders) should keep `slice()`s (LinkEnd.send). 256 KiB slabs bound
 * that to ~170 full-sized packets per kept one, and measured as fast as 1 MiB ones (MTU 1500 and
 * 65535 bulk transfers, docs/performance.md).
 */
const SLAB_BYTES = 1 << 18;
/** Packets above this size get their own buffer, so one slab holds many packets. */
const MAX_CARVED = 64 * 1024 + 128;

let slab = new Uint8Array(0);
let used = 0;

/** A fresh, writable packet of `length` bytes. Its contents are unspecified: write every byte. */
export function allocPacket(length: number): Uint8Array {
  if (length > MAX_CARVED) return new Uint8Array(length);
  // 8-byte alignment keeps the checksum's 32-bit word loop on aligned words from the first header byte.
  let at = (used + 7) & ~7;
  if (at + length > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    at = 0;
  }
  used = at + length;
  return slab.subarray(at, at + length);
}
