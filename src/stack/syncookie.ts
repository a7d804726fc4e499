/**
 * SYN cookies (RFC 4987 §3.6): when a listener's queue of half-open connections is full, the
 * SYN,ACK's sequence number carries what the SYN said, keyed so that only this stack can make it,
 * and no state is kept. The ACK that completes the handshake gives it back as SEG.ACK − 1, and the
 * connection is built from it then. The layout is Linux's (net/ipv4/syncookies.c):
 *
 *   cookie = H0(tuple) + ISN_peer + (count << 24) + ((H1(tuple, count, ISN_peer) + mssIndex) mod 2^24)
 *
 * `count` ticks every 64 s; a cookie is accepted during its own count and the next one, so it lives
 * 64 to 128 s. The 8 top bits carry the count (mod 256). The 24 low bits carry a keyed hash of the
 * tuple, the full count and the peer's ISN, plus an index into a 4-entry MSS table: a forged or
 * stale cookie passes only if those 24 bits land on one of 4 values (odds 2^-22 per guess), and it
 * cannot be moved to another tuple or peer ISN. (Linux leaves the ISN out of H1, so there an ACK
 * whose SEG.SEQ is 1 to 3 too high passes with a smaller MSS index and a wrong IRS; hashing it
 * closes that.) H0 and H1 are HalfSipHash-2-4 (tcp/isn.ts) under two independent per-stack keys.
 *
 * What else the SYN offered — the peer's window scale and SACK-permitted — only fits if the peer
 * also offered timestamps: it goes into the 6 low bits of our TSval, which the peer echoes in TSecr
 * (Linux's cookie_init_timestamp). Without timestamps the SYN,ACK offers neither, and the connection
 * runs without them (RFC 7323 §1.3 and RFC 2018 §2 allow each side to decline).
 *
 * Nothing here allocates beyond a call: the hash input is a reused scratch array.
 */
import { halfSipHash } from '../tcp/isn.js';

/** The count lives in the top 8 bits; hash + MSS index in the low 24. */
export const COOKIE_BITS = 24;
const COOKIE_MASK = (1 << COOKIE_BITS) - 1;
/** The cookie clock: one tick per 64 s (RFC 4987 §3.6 suggests a slowly incrementing counter). */
export const COOKIE_PERIOD_MS = 64_000;
/** A cookie is good for its own count and the next (Linux MAX_SYNCOOKIE_AGE). */
export const COOKIE_MAX_AGE = 2;
/**
 * How long after the last cookie was sent an ACK to a listener is checked as one (Linux
 * TCP_SYNCOOKIE_VALID, tcp_synq_no_recent_overflow): no cookie older than this can still be valid.
 */
export const COOKIE_VALID_MS = COOKIE_MAX_AGE * COOKIE_PERIOD_MS;

/**
 * MSS values a cookie can carry (Linux's msstab): the largest entry not above the peer's MSS is
 * used. IPv4 always accepts 536 (RFC 9293 §3.7.1, EMTU_R ≥ 576), so the first entry is safe even
 * for a peer asking for less; IPv6 likewise 1220 (RFC 8200 §5, 1280-byte minimum MTU).
 */
export const MSS_TABLE_V4: readonly number[] = [536, 1300, 1440, 1460];
export const MSS_TABLE_V6: readonly number[] = [1220, 1420, 1440, 8940];

/** Index of the largest table entry ≤ `mss` (0 when `mss` is below every entry, as Linux). */
export function mssIndex(table: readonly number[], mss: number): number {
  for (let i = table.length - 1; i > 0; i--) if (mss >= table[i]!) return i;
  return 0;
}

/** The cookie clock for a stack time in ms. */
export function cookieCount(nowMs: number): number {
  return Math.floor(nowMs / COOKIE_PERIOD_MS) >>> 0;
}

// Hash input: address words, ports, two extra words (the count and the peer ISN, or zeros).
// 5 words for IPv4, 11 for IPv6.
const scratch4 = new Uint32Array(5);
const scratch6 = new Uint32Array(11);

function fill(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number, count: number, isn: number): Uint32Array {
  const w = local.length === 4 ? scratch4 : scratch6;
  let n = 0;
  for (let i = 0; i < local.length; i += 4) w[n++] = (local[i]! << 24) | (local[i + 1]! << 16) | (local[i + 2]! << 8) | local[i + 3]!;
  for (let i = 0; i < remote.length; i += 4) w[n++] = (remote[i]! << 24) | (remote[i + 1]! << 16) | (remote[i + 2]! << 8) | remote[i + 3]!;
  w[n++] = (localPort << 16) | remotePort;
  w[n++] = count;
  w[n] = isn;
  return w;
}

export class SynCookies {
  /** Two 64-bit HalfSipHash keys, from the stack's secret (like Linux's syncookie_secret[2]). */
  constructor(
    private readonly k0: number,
    private readonly k1: number,
    private readonly k2: number,
    private readonly k3: number,
  ) {}

  private h0(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number): number {
    return halfSipHash(this.k0, this.k1, fill(local, localPort, remote, remotePort, 0, 0));
  }

  private h1(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number, count: number, isn: number): number {
    return halfSipHash(this.k2, this.k3, fill(local, localPort, remote, remotePort, count, isn));
  }

  /** Our ISN for a SYN answered without state; `index` is the MSS table index (0..3). */
  make(nowMs: number, local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number, peerIsn: number, index: number): number {
    const count = cookieCount(nowMs);
    return (this.h0(local, localPort, remote, remotePort) + peerIsn + ((count << COOKIE_BITS) >>> 0) +
      ((this.h1(local, localPort, remote, remotePort, count, peerIsn) + index) & COOKIE_MASK)) >>> 0;
  }

  /**
   * The MSS table index a cookie carries, or −1 if it is not one this stack made for this tuple and
   * peer ISN during the current or previous count.
   */
  check(nowMs: number, local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number, peerIsn: number, cookie: number, tableSize = 4): number {
    const count = cookieCount(nowMs);
    const c = (cookie - this.h0(local, localPort, remote, remotePort) - peerIsn) >>> 0;
    // How many ticks ago the cookie was made, from the 8 bits it carries (mod 256).
    const age = (count - (c >>> COOKIE_BITS)) & 0xff;
    if (age >= COOKIE_MAX_AGE) return -1;
    const index = (c - this.h1(local, localPort, remote, remotePort, (count - age) >>> 0, peerIsn)) & COOKIE_MASK;
    return index < tableSize ? index : -1;
  }
}

// The 6 low bits of a cookie SYN,ACK's TSval (Linux TSBITS, TS_OPT_*).
const TS_BITS = 6;
const TS_WSCALE_MASK = 0x0f; // the peer's shift 0..14; 15 = no window scaling
const TS_SACK = 0x10;
// 0x20 is Linux's ECN bit; synack does not negotiate ECN (RFC 3168), so it stays 0.

/** What of the SYN's options a cookie TSval carries. */
export interface CookieTsOptions {
  /** The peer's window scale shift (0..14), or null when it offered none. */
  wscale: number | null;
  sack: boolean;
}

/**
 * Our TSval for a cookie SYN,ACK: `tsval` (our timestamp clock now) with the options in its 6 low
 * bits, moved back 64 ticks if that would put it ahead of the clock — the TSvals that follow stay
 * monotonic (RFC 7323 §5.4), at the cost of the first RTT sample reading up to 63 ms long.
 */
export function encodeCookieTsval(tsval: number, o: CookieTsOptions): number {
  const bits = (o.wscale === null ? TS_WSCALE_MASK : Math.min(o.wscale, 14)) | (o.sack ? TS_SACK : 0);
  const now = tsval >>> 0;
  let v = (((now >>> TS_BITS) << TS_BITS) | bits) >>> 0;
  if (v > now) v = (v - (1 << TS_BITS)) >>> 0;
  return v;
}

/** The options carried by the TSecr of the ACK that returns a cookie. */
export function decodeCookieTsecr(tsecr: number): CookieTsOptions {
  const ws = tsecr & TS_WSCALE_MASK;
  return { wscale: ws === TS_WSCALE_MASK ? null : ws, sack: (tsecr & TS_SACK) !== 0 };
}
