/**
 * IP fragment reassembly (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6) and fragmentation of
 * outgoing datagrams (UDP only: TCP sizes its segments to the path and sends with DF).
 *
 * Incoming fragments are keyed by (source, destination, protocol, identification) for IPv4 and
 * (source, destination, identification) for IPv6, and their data is copied (a packet is a view
 * into its sender's slab). A datagram completes when its first and last fragment and everything
 * between have arrived; the packet rebuilt from them goes through IP input again.
 *
 * What bounds the memory a sender can make us hold:
 * - at most 256 KiB per source address and 4 MiB in all (each fragment is charged its data plus
 *   128 bytes of bookkeeping and each datagram 1 KiB, tombstones included, so floods of tiny or
 *   overlapping fragments are charged what they cost); a fragment that would
 *   exceed a bound first evicts the oldest incomplete datagram (of that source, or of anyone),
 *   like Linux's ipfrag_high_thresh evictor;
 * - a datagram not complete within 30 s (IPv4, Linux's ipfrag_time; RFC 791 suggests 15) or 60 s
 *   (IPv6, RFC 8200 §4.5) is discarded, and when its first fragment had arrived the source gets
 *   an ICMP Time Exceeded, code 1 "fragment reassembly time exceeded" (RFC 792, RFC 4443 §3.3);
 * - overlapping fragments discard the whole datagram, and fragments of it that arrive later until
 *   its timeout (RFC 5722; done for IPv4 too, RFC 8900 §3.7 gives the reasons); an exact
 *   duplicate is dropped alone (RFC 8200 §4.5 allows it);
 * - a reassembled datagram larger than 65535 bytes (IPv4 total length, IPv6 payload length) is
 *   refused fragment by fragment.
 * An IPv6 "atomic fragment" (offset 0, M = 0, RFC 6946) is processed at once, apart from any queue.
 * @internal
 */
import type { TimerHandle } from '../link/clock.js';
import type { StackCore } from '../stack/core.js';
import { setIpv4HeaderChecksum } from '../wire/ipv4.js';
import { formatAddress } from '../wire/address.js';

export type FragmentDropReason =
  /** Data not a multiple of 8 bytes with more fragments to come, empty, or past 65535 bytes. */
  | 'ip-fragment-bad'
  /** A fragment overlapping another of its datagram: the datagram is discarded (RFC 5722). */
  | 'ip-fragment-overlap'
  /** An exact duplicate of a fragment already held (RFC 8200 §4.5). */
  | 'ip-fragment-duplicate'
  /** The datagram was not complete in time (30 s IPv4, 60 s IPv6): its first held fragment. */
  | 'ip-reassembly-timeout'
  /** A fragment that did not fit the memory bounds even after evicting older datagrams. */
  | 'ip-reassembly-evicted';

export const REASSEMBLY_PER_SOURCE_BYTES = 256 * 1024;
export const REASSEMBLY_TOTAL_BYTES = 4 * 1024 * 1024;
export const REASSEMBLY_TIMEOUT_V4_MS = 30_000;
export const REASSEMBLY_TIMEOUT_V6_MS = 60_000;
/**
 * Bookkeeping charged beside the data, close to what the heap really holds (measured with floods
 * of 8-byte fragments, test/udp/reassembly-flood.test.ts): per fragment its record and copy, per
 * datagram its record, key, map entry and timer. With less, tiny fragments held ~13× the bound.
 */
const PIECE_OVERHEAD = 128;
const DATAGRAM_OVERHEAD = 1024;

interface Piece {
  start: number;
  end: number;
  data: Uint8Array;
}

interface Datagram {
  readonly key: string;
  readonly source: string;
  readonly version: 4 | 6;
  /** Sorted by start, never overlapping. */
  readonly pieces: Piece[];
  /** Length of the fragmentable part, once the last fragment (MF/M = 0) arrived; else -1. */
  total: number;
  /** A copy of the first fragment (offset 0), whole: its header starts the rebuilt packet. */
  first: Uint8Array | null;
  /** IPv6: where the unfragmentable part ends (the fragment header's offset) in `first`, and the
   *  offset of the Next Header field that names the fragment header; IPv4: the header length. */
  headerLength: number;
  nextHeaderAt: number;
  nextHeader: number;
  charged: number;
  timer: TimerHandle | null;
  /** Discarded after an overlap; kept (empty) until its timeout so later fragments are dropped too. */
  dead: boolean;
}

/** What the reassembler needs from the stack. */
export interface ReassemblyHost {
  core: StackCore;
  /** The first fragment of a datagram that timed out: answer ICMP Time Exceeded code 1. */
  timeExceeded(firstFragment: Uint8Array, version: 4 | 6): void;
}

export interface ReassemblyLimits {
  perSourceBytes?: number;
  totalBytes?: number;
  timeoutV4Ms?: number;
  timeoutV6Ms?: number;
}

export class Reassembler {
  /** In creation order (the eviction order). */
  private readonly datagrams = new Map<string, Datagram>();
  private readonly bySource = new Map<string, number>();
  private charged = 0;
  private readonly perSource: number;
  private readonly totalMax: number;
  private readonly timeoutV4: number;
  private readonly timeoutV6: number;

  constructor(private readonly host: ReassemblyHost, limits: ReassemblyLimits = {}) {
    this.perSource = limits.perSourceBytes ?? REASSEMBLY_PER_SOURCE_BYTES;
    this.totalMax = limits.totalBytes ?? REASSEMBLY_TOTAL_BYTES;
    this.timeoutV4 = limits.timeoutV4Ms ?? REASSEMBLY_TIMEOUT_V4_MS;
    this.timeoutV6 = limits.timeoutV6Ms ?? REASSEMBLY_TIMEOUT_V6_MS;
  }

  /** Bytes held now (data and bookkeeping), and incomplete datagrams. */
  get bytesHeld(): number {
    return this.charged;
  }

  get pending(): number {
    return this.datagrams.size;
  }

  /**
   * An IPv4 packet that parseIpv4 found valid but a fragment (MF set or an offset). Returns the
   * reassembled packet when this fragment completed one, else null (held, or dropped and counted).
   */
  inputV4(packet: Uint8Array): Uint8Array | null {
    const hl = (packet[0]! & 0x0f) * 4;
    const totalLength = (packet[2]! << 8) | packet[3]!;
    const word = (packet[6]! << 8) | packet[7]!;
    const more = (word & 0x2000) !== 0;
    const start = (word & 0x1fff) * 8;
    const len = totalLength - hl;
    // RFC 791 §3.2: every fragment but the last carries a multiple of 8 data bytes; the datagram
    // (header included) cannot exceed 65535 bytes.
    if (len <= 0 || (more && (len & 7) !== 0) || hl + start + len > 0xffff) {
      this.host.core.drop('ip-fragment-bad', packet);
      return null;
    }
    const src = packet.subarray(12, 16);
    const key = `4|${formatAddress(src)}|${formatAddress(packet.subarray(16, 20))}|${packet[9]}|${(packet[4]! << 8) | packet[5]!}`;
    return this.add(packet, 4, key, formatAddress(src), start, packet.subarray(hl, totalLength), more, hl, 0, 0);
  }

  /**
   * An IPv6 packet that parseIpv6 found valid up to a Fragment header (RFC 8200 §4.5). Returns the
   * reassembled packet (or, for an atomic fragment, the packet without its fragment header), else null.
   */
  inputV6(packet: Uint8Array): Uint8Array | null {
    const end = 40 + ((packet[4]! << 8) | packet[5]!);
    // Walk to the Fragment header (parseIpv6 checked the headers before it).
    let next = packet[6]!;
    let nextAt = 6;
    let off = 40;
    while (next !== 44) {
      nextAt = off;
      next = packet[off]!;
      off += (packet[off + 1]! + 1) * 8;
    }
    if (off + 8 > end) {
      this.host.core.drop('ip-fragment-bad', packet);
      return null;
    }
    const nextHeader = packet[off]!;
    const word = (packet[off + 2]! << 8) | packet[off + 3]!;
    const start = word & 0xfff8;
    const more = (word & 1) !== 0;
    const data = packet.subarray(off + 8, end);
    const unfragmentable = off - 40;
    if (!more && start === 0) {
      // RFC 6946 §4: an atomic fragment is processed as a whole datagram, on its own.
      return rebuildV6(packet, off, nextAt, nextHeader, [{ start: 0, end: data.length, data }], data.length);
    }
    // RFC 8200 §4.5: a non-last fragment whose length is not a multiple of 8, or one that would make
    // the payload exceed 65535, is discarded (with a Parameter Problem we do not send).
    if (data.length === 0 || (more && (data.length & 7) !== 0) || unfragmentable + start + data.length > 0xffff) {
      this.host.core.drop('ip-fragment-bad', packet);
      return null;
    }
    const src = packet.subarray(8, 24);
    const id = ((packet[off + 4]! << 24) | (packet[off + 5]! << 16) | (packet[off + 6]! << 8) | packet[off + 7]!) >>> 0;
    const key = `6|${formatAddress(src)}|${formatAddress(packet.subarray(24, 40))}|${id}`;
    return this.add(packet, 6, key, formatAddress(src), start, data, more, off, nextAt, nextHeader);
  }

  private add(
    packet: Uint8Array, version: 4 | 6, key: string, source: string, start: number, data: Uint8Array, more: boolean,
    headerLength: number, nextHeaderAt: number, nextHeader: number,
  ): Uint8Array | null {
    const core = this.host.core;
    const end = start + data.length;
    let d = this.datagrams.get(key);
    if (d !== undefined && d.dead) {
      core.drop('ip-fragment-overlap', packet);
      return null;
    }
    if (d !== undefined) {
      // The last fragment fixes the length: nothing may end beyond it, and a second "last" must
      // agree (Linux ip_frag_queue discards the datagram otherwise, as we do).
      if ((d.total >= 0 && (end > d.total || (!more && end !== d.total))) ||
        (!more && d.pieces.length > 0 && d.pieces[d.pieces.length - 1]!.end > end)) {
        this.discard(d);
        core.drop('ip-fragment-bad', packet);
        return null;
      }
      // Where the new piece goes, and whether it touches another (RFC 5722).
      const pieces = d.pieces;
      let i = 0;
      while (i < pieces.length && pieces[i]!.end <= start) i++;
      const p = pieces[i];
      if (p !== undefined && p.start < end) {
        if (p.start === start && p.end === end) {
          core.drop('ip-fragment-duplicate', packet);
          return null;
        }
        core.counters.reassemblyOverlaps++;
        this.discard(d, true);
        core.drop('ip-fragment-overlap', packet);
        return null;
      }
    }
    const cost = data.length + PIECE_OVERHEAD + (start === 0 ? headerLength : 0) + (d === undefined ? DATAGRAM_OVERHEAD : 0);
    if (d === undefined) {
      d = {
        key, source, version, pieces: [], total: -1, first: null, headerLength: 0, nextHeaderAt: 0, nextHeader: 0,
        charged: 0, timer: null, dead: false,
      };
      this.datagrams.set(key, d);
      const datagram = d;
      d.timer = core.clock.schedule(core.clock.now() + (version === 4 ? this.timeoutV4 : this.timeoutV6), () => {
        datagram.timer = null;
        this.expire(datagram);
      });
    }
    if (!this.makeRoom(d, cost)) {
      core.drop('ip-reassembly-evicted', packet);
      return null;
    }
    let copy: Uint8Array;
    if (start === 0) {
      // The first fragment whole: its header begins the rebuilt datagram and an ICMP error quotes it.
      const whole = packet.slice(0, headerLength + (version === 6 ? 8 : 0) + data.length);
      d.first = whole;
      d.headerLength = headerLength;
      d.nextHeaderAt = nextHeaderAt;
      d.nextHeader = nextHeader;
      copy = whole.subarray(whole.length - data.length);
    } else {
      copy = data.slice();
    }
    const pieces = d.pieces;
    let i = 0;
    while (i < pieces.length && pieces[i]!.end <= start) i++;
    pieces.splice(i, 0, { start, end, data: copy });
    if (!more) d.total = end;
    d.charged += cost;
    this.charged += cost;
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + cost);
    core.counters.fragmentsIn++;
    if (d.total < 0 || d.first === null) return null;
    // Complete when the pieces cover [0, total) without a hole.
    let at = 0;
    for (const piece of pieces) {
      if (piece.start !== at) return null;
      at = piece.end;
    }
    if (at !== d.total) return null;
    const whole = version === 4
      ? rebuildV4(d.first, d.headerLength, pieces, d.total)
      : rebuildV6(d.first, d.headerLength, d.nextHeaderAt, d.nextHeader, pieces, d.total);
    this.discard(d);
    core.counters.reassembled++;
    return whole;
  }

  /**
   * Keeps the charge within the per-source and total bounds by evicting the oldest incomplete
   * datagrams; false when `d` itself had to go (the fragment is then dropped).
   */
  private makeRoom(d: Datagram, cost: number): boolean {
    const core = this.host.core;
    for (;;) {
      const sourceFull = (this.bySource.get(d.source) ?? 0) + cost > this.perSource;
      const totalFull = this.charged + cost > this.totalMax;
      if (!sourceFull && !totalFull) return true;
      // The oldest first, tombstones included: one evicted early only forgets that its datagram
      // overlapped (its later fragments then start a new, incomplete one that times out).
      let victim: Datagram | undefined;
      for (const x of this.datagrams.values()) {
        if (x.charged === 0) continue;
        if (totalFull || x.source === d.source) {
          victim = x;
          break;
        }
      }
      if (victim === undefined || victim === d) {
        if (d.charged > 0) core.counters.reassemblyEvictions++;
        this.discard(d);
        return false;
      }
      // Counted, and noted; the drop reason is kept for arriving fragments (one per packet in).
      core.counters.reassemblyEvictions++;
      core.note(`reassembly: incomplete datagram from ${victim.source} evicted (memory bound)`, 'RFC 8200 §4.5');
      this.discard(victim);
    }
  }

  /**
   * Frees a datagram's fragments; `tombstone` keeps its key until the timeout (RFC 5722), still
   * charged its record (DATAGRAM_OVERHEAD), so a flood of overlaps is bounded like any other.
   */
  private discard(d: Datagram, tombstone = false): void {
    const keep = tombstone ? Math.min(d.charged, DATAGRAM_OVERHEAD) : 0;
    const freed = d.charged - keep;
    this.charged -= freed;
    const left = (this.bySource.get(d.source) ?? 0) - freed;
    if (left > 0) this.bySource.set(d.source, left);
    else this.bySource.delete(d.source);
    d.charged = keep;
    d.pieces.length = 0;
    d.first = null;
    if (tombstone) {
      d.dead = true;
      return;
    }
    this.datagrams.delete(d.key);
    if (d.timer !== null) {
      this.host.core.clock.cancel(d.timer);
      d.timer = null;
    }
  }

  private expire(d: Datagram): void {
    if (this.datagrams.get(d.key) !== d) return;
    const core = this.host.core;
    const first = d.first;
    const dead = d.dead;
    const any = first ?? d.pieces[0]?.data ?? null;
    this.discard(d);
    if (dead) return;
    core.counters.reassemblyTimeouts++;
    if (any !== null) core.drop('ip-reassembly-timeout', any);
    // RFC 792 / RFC 8200 §4.5: Time Exceeded code 1, only when the first fragment arrived (it is
    // what the message quotes, and without it the sender cannot tell which datagram was lost).
    if (first !== null) core.guard(() => this.host.timeExceeded(first, d.version));
  }

  /** Drops everything held (the stack is closing). */
  clear(): void {
    for (const d of [...this.datagrams.values()]) this.discard(d);
  }
}

function rebuildV4(first: Uint8Array, hl: number, pieces: Piece[], total: number): Uint8Array {
  const out = new Uint8Array(hl + total);
  out.set(first.subarray(0, hl), 0);
  for (const p of pieces) out.set(p.data, hl + p.start);
  const length = hl + total;
  out[2] = length >>> 8;
  out[3] = length & 0xff;
  // No more fragments, offset 0 (DF as the first fragment had it, which is 0 for a fragment).
  out[6] &= 0x40;
  out[7] = 0;
  setIpv4HeaderChecksum(out, hl);
  return out;
}

/**
 * RFC 8200 §4.5: the reassembled packet is the unfragmentable part of the first fragment, its last
 * Next Header field set to the Fragment header's, Payload Length recomputed, then the fragmentable
 * part. `fragAt` is where the Fragment header was (the end of the unfragmentable part).
 */
function rebuildV6(first: Uint8Array, fragAt: number, nextAt: number, nextHeader: number, pieces: Piece[], total: number): Uint8Array {
  const out = new Uint8Array(fragAt + total);
  out.set(first.subarray(0, fragAt), 0);
  for (const p of pieces) out.set(p.data, fragAt + p.start);
  out[nextAt] = nextHeader;
  const payload = out.length - 40;
  out[4] = payload >>> 8;
  out[5] = payload & 0xff;
  return out;
}

/**
 * Splits an IPv4 packet (20-byte header, no options) that exceeds `mtu` into fragments of at most
 * `mtu` bytes, each with a copy of the header, DF clear, MF on all but the last and the offset in
 * 8-byte units (RFC 791 §3.2). Identification is the packet's own.
 */
export function fragmentV4(packet: Uint8Array, mtu: number): Uint8Array[] {
  const hl = (packet[0]! & 0x0f) * 4;
  const data = packet.subarray(hl);
  const step = Math.floor((mtu - hl) / 8) * 8;
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += step) {
    const n = Math.min(step, data.length - at);
    const f = new Uint8Array(hl + n);
    f.set(packet.subarray(0, hl), 0);
    f.set(data.subarray(at, at + n), hl);
    const length = hl + n;
    f[2] = length >>> 8;
    f[3] = length & 0xff;
    const word = (at / 8) | (at + n < data.length ? 0x2000 : 0);
    f[6] = word >>> 8;
    f[7] = word & 0xff;
    setIpv4HeaderChecksum(f, hl);
    out.push(f);
  }
  return out;
}

/**
 * Splits an IPv6 packet (a 40-byte header directly followed by the upper-layer message) that exceeds
 * `mtu` into fragments with a Fragment header each (RFC 8200 §4.5): fragmentable parts of a multiple
 * of 8 bytes (but the last), the same 32-bit identification in all.
 */
export function fragmentV6(packet: Uint8Array, mtu: number, id: number): Uint8Array[] {
  const data = packet.subarray(40);
  const nextHeader = packet[6]!;
  const step = Math.floor((mtu - 48) / 8) * 8;
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += step) {
    const n = Math.min(step, data.length - at);
    const f = new Uint8Array(48 + n);
    f.set(packet.subarray(0, 40), 0);
    const payload = 8 + n;
    f[4] = payload >>> 8;
    f[5] = payload & 0xff;
    f[6] = 44;
    f[40] = nextHeader;
    f[41] = 0;
    const word = at | (at + n < data.length ? 1 : 0);
    f[42] = word >>> 8;
    f[43] = word & 0xff;
    f[44] = id >>> 24;
    f[45] = (id >>> 16) & 0xff;
    f[46] = (id >>> 8) & 0xff;
    f[47] = id & 0xff;
    f.set(data.subarray(at, at + n), 48);
    out.push(f);
  }
  return out;
}
