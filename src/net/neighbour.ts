/**
 * A neighbour cache: IP address → MAC, shared by ARP (RFC 826, RFC 1122 §2.3.2) and NDP
 * (RFC 4861 §7.3). States, as RFC 4861 §7.3.2 names them, reduced to the three a host needs:
 *  - incomplete: a solicitation is out; packets wait in a short queue (RFC 1122 §2.3.2.2 "SHOULD
 *    save (rather than discard) at least one (the latest) packet"; Linux keeps a few, unres_qlen);
 *    after `retries` unanswered solicitations `retransMs` apart the entry goes and its packets are
 *    dropped as 'neighbour-unreachable';
 *  - reachable: confirmed less than `reachableMs` ago (RFC 4861 REACHABLE_TIME, 30 s);
 *  - stale: learnt without confirmation, or confirmed too long ago. Packets still go to the MAC;
 *    the first use starts a check (RFC 4861 §7.3.3 DELAY then PROBE): after `delayMs`, `retries`
 *    unicast solicitations, and the entry goes if none is answered.
 * Reachable → stale needs no timer: the state is computed from the confirmation time.
 *
 * Bounded: at most `size` entries. When full, a new entry replaces a stale one among the oldest, or
 * else the oldest (Map order is the order of last confirmation), so a flood of lying ARP/NDP cannot
 * grow memory. Sending to a known neighbour allocates nothing: a direct-mapped table of recent
 * entries is searched by a hash of the address bytes before the Map.
 */
import type { Clock, TimerHandle } from '../link/clock.js';

export type NeighbourState = 'incomplete' | 'reachable' | 'stale';

export class Neighbour {
  /** The neighbour's MAC (6 bytes, our own copy); null while incomplete. */
  mac: Uint8Array | null = null;
  /** When reachability was last confirmed (-Infinity: never). */
  confirmedAt = -Infinity;
  /** Packets waiting for the MAC (incomplete only). */
  queue: Uint8Array[] = [];
  /** Solicitations sent in the current resolution or probe. */
  tries = 0;
  /** A stale entry being checked with unicast solicitations. */
  probing = false;
  timer: TimerHandle | null = null;
  /** The address in the direct-mapped table's slot, or -1. */
  slot = -1;
  constructor(
    /** The IP address (4 or 16 bytes, our own copy). */
    readonly address: Uint8Array,
    readonly key: number | string,
  ) {}
}

export interface NeighbourCacheOptions {
  clock: Clock;
  /** 4 (ARP) or 16 (NDP). */
  addressLength: 4 | 16;
  /** Entries at most. Default 1024. */
  size?: number;
  /** Packets queued per incomplete entry. Default 3. */
  queueLength?: number;
  /** Solicitations before giving up. Default 3 (RFC 4861 MAX_MULTICAST_SOLICIT, MAX_UNICAST_SOLICIT). */
  retries?: number;
  /** Time between solicitations, ms. Default 1000 (RFC 4861 RETRANS_TIMER; Linux's ARP too). */
  retransMs?: number;
  /** How long a confirmation lasts, ms. Default 30 000 (RFC 4861 REACHABLE_TIME). */
  reachableMs?: number;
  /** From first use of a stale entry to its first probe, ms. Default 5000 (DELAY_FIRST_PROBE_TIME). */
  delayMs?: number;
  /** Send a solicitation for `n`: broadcast/multicast while incomplete, unicast to `n.mac` when probing. */
  solicit(n: Neighbour, unicast: boolean): void;
  /** `n` was resolved: send these queued packets to `n.mac`. */
  resolved(n: Neighbour, queued: Uint8Array[]): void;
  /** Resolution of `n` failed (`why` 'unanswered'), or its entry went with packets still waiting
   *  (evicted from a full cache, or the cache cleared): drop these packets. */
  failed(n: Neighbour, queued: Uint8Array[], why: 'unanswered' | 'evicted' | 'cleared'): void;
}

const SLOTS = 64;

export class NeighbourCache {
  private readonly map = new Map<number | string, Neighbour>();
  private readonly slots: (Neighbour | null)[] = new Array<Neighbour | null>(SLOTS).fill(null);
  private readonly clock: Clock;
  private readonly len: 4 | 16;
  readonly size: number;
  readonly queueLength: number;
  private readonly retries: number;
  private readonly retransMs: number;
  readonly reachableMs: number;
  private readonly delayMs: number;

  constructor(private readonly o: NeighbourCacheOptions) {
    this.clock = o.clock;
    this.len = o.addressLength;
    this.size = Math.max(1, o.size ?? 1024);
    this.queueLength = Math.max(1, o.queueLength ?? 3);
    this.retries = Math.max(1, o.retries ?? 3);
    this.retransMs = o.retransMs ?? 1000;
    this.reachableMs = o.reachableMs ?? 30_000;
    this.delayMs = o.delayMs ?? 5000;
  }

  get count(): number {
    return this.map.size;
  }

  state(n: Neighbour): NeighbourState {
    if (n.mac === null) return 'incomplete';
    return this.clock.now() - n.confirmedAt < this.reachableMs ? 'reachable' : 'stale';
  }

  entries(): IterableIterator<Neighbour> {
    return this.map.values();
  }

  /** The entry for the address at `buf[offset]`, if any. Allocates nothing when it is a recent one. */
  lookup(buf: Uint8Array, offset: number): Neighbour | undefined {
    const slot = this.hash(buf, offset);
    const s = this.slots[slot];
    if (s != null && this.same(s.address, buf, offset)) return s;
    const n = this.map.get(this.key(buf, offset));
    if (n !== undefined) this.place(n, slot);
    return n;
  }

  /**
   * Sends `packet` towards the address at `buf[offset]`: `send(n, packet)` now when the MAC is known,
   * else queues it behind a resolution (started if need be). Returns a packet pushed out of a full
   * queue (the oldest: the newest is the one worth sending, as RFC 1122 §2.3.2.2 says), or null.
   */
  output(buf: Uint8Array, offset: number, packet: Uint8Array, send: (n: Neighbour, packet: Uint8Array) => void): Uint8Array | null {
    let n = this.lookup(buf, offset);
    if (n !== undefined && n.mac !== null) {
      if (!n.probing && this.clock.now() - n.confirmedAt >= this.reachableMs) this.startProbe(n);
      send(n, packet);
      return null;
    }
    if (n === undefined) {
      n = this.insert(buf, offset);
      n.queue.push(packet);
      this.solicitNext(n);
      return null;
    }
    n.queue.push(packet);
    return n.queue.length > this.queueLength ? n.queue.shift()! : null;
  }

  /**
   * Learns or confirms a MAC (RFC 4861 §7.2.5, RFC 826's merge). `confirmed`: reachability is proven
   * (a solicited answer), else the entry is only stale. `create`: make an entry when there is none
   * (RFC 826: only when we are the target). Returns the entry, or undefined when none was made.
   */
  learn(buf: Uint8Array, offset: number, mac: Uint8Array, macOffset: number, confirmed: boolean, create: boolean): Neighbour | undefined {
    let n = this.lookup(buf, offset);
    if (n === undefined) {
      if (!create) return undefined;
      n = this.insert(buf, offset);
    }
    this.update(n, mac, macOffset, confirmed);
    return n;
  }

  /** Sets the MAC of an existing entry; flushes its queue if it was incomplete. */
  update(n: Neighbour, mac: Uint8Array, macOffset: number, confirmed: boolean): void {
    const wasIncomplete = n.mac === null;
    const resolving = n.tries > 0;
    if (n.mac === null) n.mac = new Uint8Array(6);
    let changed = false;
    for (let i = 0; i < 6; i++) {
      if (n.mac[i] !== mac[macOffset + i]) changed = true;
      n.mac[i] = mac[macOffset + i];
    }
    // A new MAC nobody confirmed is only stale (RFC 4861 §7.2.5); reachability must be proven again.
    if (changed && !confirmed) n.confirmedAt = -Infinity;
    if (confirmed) {
      n.confirmedAt = this.clock.now();
      // Map order is the order of last confirmation: eviction takes the oldest first.
      this.map.delete(n.key);
      this.map.set(n.key, n);
    }
    if (wasIncomplete || (confirmed && n.probing)) {
      if (n.timer !== null) this.clock.cancel(n.timer);
      n.timer = null;
      n.tries = 0;
      n.probing = false;
    }
    // An entry made just now from a message (not by our own solicitation) resolved nothing.
    if (wasIncomplete && resolving) {
      const queued = n.queue;
      n.queue = [];
      this.o.resolved(n, queued);
    }
  }

  /** Marks an entry stale without changing its MAC (RFC 4861 §7.2.5, an NA with O=0 and another MAC). */
  makeStale(n: Neighbour): void {
    n.confirmedAt = -Infinity;
  }

  remove(n: Neighbour, why: 'unanswered' | 'evicted' | 'cleared' = 'cleared'): void {
    if (this.map.get(n.key) !== n) return;
    this.map.delete(n.key);
    if (n.slot >= 0 && this.slots[n.slot] === n) this.slots[n.slot] = null;
    n.slot = -1;
    if (n.timer !== null) this.clock.cancel(n.timer);
    n.timer = null;
    if (n.queue.length > 0) {
      const queued = n.queue;
      n.queue = [];
      this.o.failed(n, queued, why);
    }
  }

  /** Drops every entry (their queued packets as failed). */
  clear(): void {
    for (const n of [...this.map.values()]) this.remove(n, 'cleared');
  }

  // ---------------------------------------------------------------------------------------------

  private insert(buf: Uint8Array, offset: number): Neighbour {
    if (this.map.size >= this.size) this.evict();
    const n = new Neighbour(buf.slice(offset, offset + this.len), this.key(buf, offset));
    this.map.set(n.key, n);
    this.place(n, this.hash(buf, offset));
    return n;
  }

  /** Frees one entry: a stale, unchecked one among the 64 oldest if there is one, else the oldest. */
  private evict(): void {
    const now = this.clock.now();
    let victim: Neighbour | undefined;
    let seen = 0;
    for (const n of this.map.values()) {
      victim ??= n;
      if (n.mac !== null && !n.probing && now - n.confirmedAt >= this.reachableMs) {
        victim = n;
        break;
      }
      if (++seen >= 64) break;
    }
    if (victim !== undefined) this.remove(victim, 'evicted');
  }

  private solicitNext(n: Neighbour): void {
    n.tries++;
    this.o.solicit(n, false);
    n.timer = this.clock.schedule(this.clock.now() + this.retransMs, () => {
      n.timer = null;
      if (n.tries >= this.retries) this.remove(n, 'unanswered');
      else this.solicitNext(n);
    });
  }

  private startProbe(n: Neighbour): void {
    n.probing = true;
    n.tries = 0;
    n.timer = this.clock.schedule(this.clock.now() + this.delayMs, () => this.probe(n));
  }

  private probe(n: Neighbour): void {
    n.timer = null;
    if (n.tries >= this.retries) {
      // RFC 4861 §7.3.3: no answer to the unicast probes, the entry goes; the next packet resolves anew.
      this.remove(n, 'unanswered');
      return;
    }
    n.tries++;
    this.o.solicit(n, true);
    n.timer = this.clock.schedule(this.clock.now() + this.retransMs, () => this.probe(n));
  }

  private place(n: Neighbour, slot: number): void {
    const old = this.slots[slot];
    if (old != null) old.slot = -1;
    this.slots[slot] = n;
    n.slot = slot;
  }

  private same(a: Uint8Array, buf: Uint8Array, offset: number): boolean {
    for (let i = 0; i < this.len; i++) if (a[i] !== buf[offset + i]) return false;
    return true;
  }

  private hash(buf: Uint8Array, offset: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.len; i++) h = Math.imul(h ^ buf[offset + i], 0x01000193);
    return (h >>> 0) % SLOTS;
  }

  private key(buf: Uint8Array, offset: number): number | string {
    if (this.len === 4) {
      return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
    }
    let s = '';
    for (let i = 0; i < 16; i += 2) s += String.fromCharCode((buf[offset + i] << 8) | buf[offset + i + 1]);
    return s;
  }
}
