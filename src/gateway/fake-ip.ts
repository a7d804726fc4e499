/**
 * "Fake-IP" DNS for an upstream that connects by host name (Wisp, issue 15): every A and AAAA query
 * is answered at once with an address from a reserved pool, and the gateway remembers which name
 * that address stands for, so that when the guest connects to the address the upstream is asked for
 * the *name* (the Wisp server resolves it; no DoH in the browser). clash and sing-box call this
 * fake-ip mode.
 *
 * The pools:
 * - IPv4 198.18.0.0/15 (default): the benchmarking range (RFC 2544 §C.2.2, RFC 6890 §2.2.2: not
 *   globally reachable), so no real destination is shadowed; the same range clash and sing-box use.
 * - IPv6 2001:2::/48 (default): the IPv6 benchmarking range (RFC 5180 §5.2, RFC 6890 §2.2.3), the
 *   same kind of space as the IPv4 pool. A ULA prefix (fd00::/8) would not do: the gateway's DNS
 *   server answers reverse queries under d.f.ip6.arpa itself (RFC 6303), so PTR of a fake address
 *   would never reach us, and the policy denies ULAs by default. 64:ff9b:1::/48 (RFC 8215) would
 *   suggest a NAT64 translator to the guest, which this is not. A guest with only a ULA address
 *   prefers the IPv4 answer anyway (RFC 6724 §2.1 labels), so the IPv6 one matters to v6-only guests.
 * Address i of the mapping table is pool base + 1 + i in both families (the pool's first and last
 * addresses are never given out, as some stacks treat them as network and broadcast), so one name has
 * one slot and both its addresses.
 *
 * Lifetimes:
 * - Answers carry a short TTL, `ttl` (default 60 s): a gateway restart forgets every mapping, and a
 *   guest holding a fake address for a name we no longer know fails to connect until its cache
 *   expires, so it should expire soon; a minute still turns a burst of connections into one query
 *   (the gateway's DNS server also caches it for the TTL, counting it down: RFC 1035 §7.4).
 * - A mapping is held for `ttl + graceSeconds` (default 60 + 300 s) after it was last answered or
 *   used (`lookup`), which covers the DNS server's cache (whose copies expire at most `ttl` + 1 s
 *   after our answer) and guest caches that stretch TTLs (Java's fixed 30 s, nscd, browsers), and
 *   while the gateway holds it with `retain` (an open connection) it is never reused.
 * - Mappings are kept until their slot is needed: new names take never-used slots first; once all
 *   `maxEntries` are used, the least recently used mapping whose hold has passed and that is not
 *   retained is reused. When there is none, the query gets SERVFAIL (the guest retries): a wrong
 *   address is never given out.
 *
 * Other queries: PTR of a pool address answers its name (NXDOMAIN when unmapped); everything else
 * (MX, TXT, HTTPS, PTR of other addresses, …) goes to the optional `inner` upstream, else gets an
 * empty NOERROR (NODATA; NXDOMAIN for a reverse name). Names that should not go out by name are not
 * mapped: IP literals (an A query for '192.0.2.1' answers 192.0.2.1), 'localhost' (RFC 6761 §6.3: the
 * loopback addresses), 'invalid' and '.onion' (RFC 6761 §6.4, RFC 7686 §2: NXDOMAIN), single-label
 * names (NXDOMAIN: a Wisp server would resolve them against its own search domains, its LAN), names
 * under .arpa (NODATA; ipv4only.arpa A is 192.0.0.170 and .171, RFC 8880 §2), and names that are not
 * host names (letters, digits, '-' and '_' only).
 *
 * Core: no Node built-ins.
 */
import type { DnsUpstream } from '../services/dns-server.js';
import { formatAddress, parseAddress, parseCidr } from '../wire/address.js';
import { DnsClass, DnsRcode, DnsType, dnsNameKey, type DnsMessage, type DnsRecord } from '../wire/dns.js';

export interface FakeIpOptions {
  /** Milliseconds, monotonic (a stack's `clock.now`, or `Date.now`). */
  now: () => number;
  /** IPv4 pool (CIDR, prefix ≤ 30); null: AAAA only (A queries get NODATA). Default '198.18.0.0/15'. */
  ipv4?: string | null;
  /** IPv6 pool (CIDR, prefix ≤ 126); null: A only. Default '2001:2::/48'. */
  ipv6?: string | null;
  /** TTL of answers (s). Default 60. */
  ttl?: number;
  /** How long past its TTL a mapping is held after its last answer or use (s). Default 300. */
  graceSeconds?: number;
  /** Mappings at most (each one name and its addresses). Default and maximum: the smaller pool's size less 2. */
  maxEntries?: number;
  /** Where other queries go (MX, TXT, PTR of other addresses, …); without it they get NODATA. */
  inner?: DnsUpstream | null;
}

export interface FakeIpCounters {
  /** Queries answered by `resolve`. */
  queries: number;
  /** Names given a slot (first time, or again after their mapping was reused). */
  mapped: number;
  /** Slots taken from another name (LRU, past its hold, not retained). */
  recycled: number;
  /** Queries answered SERVFAIL because every mapping was held or retained. */
  exhausted: number;
  /** PTR queries of pool addresses answered. */
  ptr: number;
  /** Queries passed to `inner`. */
  forwarded: number;
  /** `lookup` calls that found a name. */
  lookups: number;
}

interface Entry {
  /** Canonical name (dnsNameKey). */
  readonly name: string;
  readonly slot: number;
  /** `retain` count; while above 0 the entry is out of the LRU list. */
  refs: number;
  /** Not reused before this (ms). */
  holdUntil: number;
}

interface Pool {
  /** The first 12 bytes (IPv6) that every address shares; empty for IPv4. */
  readonly high: Uint8Array;
  /** The low 32 bits of the pool's base. */
  readonly low: number;
  /** Addresses available (size less the first and the last). */
  readonly size: number;
}

const HOST_LABEL = /^[a-z0-9_-]{1,63}$/;

function bad(what: string): never {
  throw new RangeError(`synack fake-ip: ${what}`);
}

function pool(cidr: string, family: 4 | 6): Pool {
  const c = parseCidr(cidr);
  if (c === null) bad(`not a CIDR: ${JSON.stringify(cidr)}`);
  const len = family === 4 ? 4 : 16;
  if (c.address.length !== len) bad(`${cidr}: not an IPv${family} prefix`);
  const hostBits = len * 8 - c.prefix;
  if (hostBits < 2) bad(`${cidr}: the pool needs at least 4 addresses`);
  for (let bit = c.prefix; bit < len * 8; bit++) {
    if ((c.address[bit >>> 3]! >> (7 - (bit & 7))) & 1) bad(`${cidr}: host bits set after /${c.prefix}`);
  }
  const b = c.address;
  const at = len - 4;
  const low = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  // Slots are numbered within the low 32 bits (and kept below 2^31 so arithmetic stays exact).
  const size = Math.min(2 ** Math.min(hostBits, 31), 2 ** 31) - 2;
  return { high: b.slice(0, at), low, size };
}

/** The address of `slot` in `p` (4 or 16 bytes). */
function addressOf(p: Pool, slot: number): Uint8Array {
  const out = new Uint8Array(p.high.length + 4);
  out.set(p.high, 0);
  const v = (p.low + 1 + slot) >>> 0;
  const at = p.high.length;
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
  return out;
}

/** The slot an address stands for in `p`, or -1. */
function slotOf(p: Pool, b: Uint8Array, from: number): number {
  for (let i = 0; i < p.high.length; i++) if (b[from + i] !== p.high[i]) return -1;
  const at = from + p.high.length;
  const v = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  const slot = v - p.low - 1;
  return slot >= 0 && slot < p.size ? slot : -1;
}

/** The address a reverse name stands for (RFC 1035 §3.5, RFC 3596 §2.5), or null. */
export function parseReverseName(key: string): Uint8Array | null {
  const labels = key.split('.');
  if (key.endsWith('.in-addr.arpa') && labels.length === 6) {
    const out = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const l = labels[3 - i]!;
      if (!/^(0|[1-9][0-9]{0,2})$/.test(l) || Number(l) > 255) return null;
      out[i] = Number(l);
    }
    return out;
  }
  if (key.endsWith('.ip6.arpa') && labels.length === 34) {
    const out = new Uint8Array(16);
    for (let i = 0; i < 32; i++) {
      const l = labels[31 - i]!;
      if (!/^[0-9a-f]$/.test(l)) return null;
      out[i >>> 1]! |= parseInt(l, 16) << (i & 1 ? 0 : 4);
    }
    return out;
  }
  return null;
}

function isMapped(b: Uint8Array): boolean {
  if (b.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

export class FakeIpDns implements DnsUpstream {
  readonly counters: FakeIpCounters = { queries: 0, mapped: 0, recycled: 0, exhausted: 0, ptr: 0, forwarded: 0, lookups: 0 };
  /** The TTL given out (s). */
  readonly ttl: number;
  /** Mappings at most. */
  readonly capacity: number;
  /** The pools as configured (null: that family is off). */
  readonly ipv4: string | null;
  readonly ipv6: string | null;

  readonly #now: () => number;
  readonly #v4: Pool | null;
  readonly #v6: Pool | null;
  readonly #holdMs: number;
  readonly #inner: DnsUpstream | null;
  readonly #byName = new Map<string, Entry>();
  /** Slot → entry; grows as slots are first used. */
  readonly #bySlot: (Entry | undefined)[] = [];
  /** Entries not retained, least recently answered or used first (Map keeps insertion order). */
  readonly #lru = new Map<string, Entry>();

  /** Throws a RangeError for a bad pool, TTL or size. */
  constructor(options: FakeIpOptions) {
    if (typeof options.now !== 'function') bad('options.now (a clock in ms) is required');
    this.#now = options.now;
    this.ipv4 = options.ipv4 === undefined ? '198.18.0.0/15' : options.ipv4;
    this.ipv6 = options.ipv6 === undefined ? '2001:2::/48' : options.ipv6;
    this.#v4 = this.ipv4 === null ? null : pool(this.ipv4, 4);
    this.#v6 = this.ipv6 === null ? null : pool(this.ipv6, 6);
    if (!this.#v4 && !this.#v6) bad('no pool: ipv4 and ipv6 are both null');
    this.ttl = options.ttl ?? 60;
    if (!Number.isInteger(this.ttl) || this.ttl < 0 || this.ttl > 0x7fffffff) bad(`TTL out of range: ${this.ttl}`);
    const grace = options.graceSeconds ?? 300;
    if (!Number.isFinite(grace) || grace < 0) bad(`graceSeconds out of range: ${grace}`);
    // RFC 1035 §7.4 / RFC 2181 §8: a cache counts TTLs down in whole seconds, so a copy handed on
    // just before it expires can live one second more; hence the +1.
    this.#holdMs = (this.ttl + 1 + grace) * 1000;
    const most = Math.min(this.#v4?.size ?? Infinity, this.#v6?.size ?? Infinity);
    const max = options.maxEntries ?? most;
    if (!Number.isInteger(max) || max < 1) bad(`maxEntries must be a positive integer: ${max}`);
    this.capacity = Math.min(max, most);
    this.#inner = options.inner ?? null;
  }

  /** Mappings now. */
  get size(): number {
    return this.#byName.size;
  }

  /**
   * The name a fake address stands for (what to CONNECT to), or null when it is not a pool address
   * or not mapped. Counts as a use: the mapping's hold starts again and it becomes the most
   * recently used.
   */
  lookup(address: string | Uint8Array): string | null {
    const e = this.#entryAt(address);
    if (!e) return null;
    this.counters.lookups++;
    this.#touch(e);
    return e.name;
  }

  /**
   * Whether `address` is in one of the pools (mapped or not): the gateway refuses a connection to
   * an unmapped pool address instead of sending it out by address.
   */
  inPool(address: string | Uint8Array): boolean {
    const b = typeof address === 'string' ? parseAddress(address) : address;
    return b !== null && this.#slotOf(b) >= 0;
  }

  /**
   * Holds the mapping of `address` while a connection uses it: it is not reused until as many
   * `release` calls, and then its hold starts again. False when the address is not mapped.
   */
  retain(address: string | Uint8Array): boolean {
    const e = this.#entryAt(address);
    if (!e) return false;
    if (e.refs++ === 0) this.#lru.delete(e.name);
    return true;
  }

  /** Undoes one `retain` (extra calls are ignored). */
  release(address: string | Uint8Array): void {
    const e = this.#entryAt(address);
    if (!e || e.refs === 0) return;
    if (--e.refs === 0) this.#touch(e);
  }

  /** The addresses a name is mapped to now (without answering or touching), for tests and events. */
  addressesOf(name: string): { ipv4: string | null; ipv6: string | null } | null {
    const e = this.#byName.get(dnsNameKey(name));
    if (!e) return null;
    return {
      ipv4: this.#v4 ? formatAddress(addressOf(this.#v4, e.slot)) : null,
      ipv6: this.#v6 ? formatAddress(addressOf(this.#v6, e.slot)) : null,
    };
  }

  async resolve(query: DnsMessage, options: { signal?: AbortSignal } = {}): Promise<DnsMessage> {
    this.counters.queries++;
    const q = query.questions[0];
    const reply = (rcode: number, answers: DnsRecord[] = []): DnsMessage => ({
      id: query.id, qr: true, opcode: query.opcode, aa: false, tc: false, rd: query.rd, ra: true, z: false,
      ad: false, cd: query.cd, rcode, questions: query.questions.map((x) => ({ ...x })), answers, authorities: [],
      additionals: [], edns: null,
    });
    if (!q || query.questions.length !== 1) return reply(DnsRcode.FORMERR);
    const forward = async (fallback: number): Promise<DnsMessage> => {
      if (!this.#inner) return reply(fallback);
      this.counters.forwarded++;
      return this.#inner.resolve(query, options);
    };
    if (q.class !== DnsClass.IN) return forward(DnsRcode.REFUSED);
    const key = dnsNameKey(q.name);
    const record = (type: number, data: DnsRecord['data']): DnsRecord => ({ name: q.name, type, class: DnsClass.IN, ttl: this.ttl, data });
    if (q.type === DnsType.PTR) {
      const b = parseReverseName(key);
      const slot = b === null ? -1 : this.#slotOf(b);
      if (slot < 0) return forward(b === null ? DnsRcode.NOERROR : DnsRcode.NXDOMAIN);
      this.counters.ptr++;
      const e = this.#bySlot[slot];
      if (!e) return reply(DnsRcode.NXDOMAIN);
      return reply(DnsRcode.NOERROR, [record(DnsType.PTR, { kind: 'PTR', name: e.name })]);
    }
    if (q.type !== DnsType.A && q.type !== DnsType.AAAA) return forward(DnsRcode.NOERROR);
    const v4 = q.type === DnsType.A;
    const a = (address: string): DnsRecord => record(q.type, v4 ? { kind: 'A', address } : { kind: 'AAAA', address });
    // Names that are not sent out by name (module comment).
    const literal = parseAddress(key);
    if (literal !== null) return reply(DnsRcode.NOERROR, (literal.length === 4) === v4 ? [a(formatAddress(literal))] : []);
    if (key === 'localhost' || key.endsWith('.localhost')) return reply(DnsRcode.NOERROR, [a(v4 ? '127.0.0.1' : '::1')]);
    if (key === 'invalid' || key.endsWith('.invalid') || key === 'onion' || key.endsWith('.onion')) return reply(DnsRcode.NXDOMAIN);
    if (key === 'ipv4only.arpa') return reply(DnsRcode.NOERROR, v4 ? [a('192.0.0.170'), a('192.0.0.171')] : []);
    if (key === 'arpa' || key.endsWith('.arpa')) return reply(DnsRcode.NOERROR);
    const labels = key.split('.');
    if (labels.length < 2 || key.length > 253 || !labels.every((l) => HOST_LABEL.test(l))) return reply(DnsRcode.NXDOMAIN);
    const p = v4 ? this.#v4 : this.#v6;
    if (!p) return reply(DnsRcode.NOERROR); // that family is off: NODATA
    const e = this.#map(key);
    if (!e) {
      this.counters.exhausted++;
      return reply(DnsRcode.SERVFAIL);
    }
    return reply(DnsRcode.NOERROR, [a(formatAddress(addressOf(p, e.slot)))]);
  }

  close(): void {
    this.#inner?.close?.();
  }

  /** The entry for `key`, mapping it if needed; null when the pool is exhausted. */
  #map(key: string): Entry | null {
    let e = this.#byName.get(key);
    if (!e) {
      let slot: number;
      if (this.#bySlot.length < this.capacity) {
        slot = this.#bySlot.length;
      } else {
        // The least recently used entry not retained; if its hold has not passed, no other has.
        const oldest = this.#lru.values().next();
        if (oldest.done || oldest.value.holdUntil > this.#now()) return null;
        const old = oldest.value;
        this.#lru.delete(old.name);
        this.#byName.delete(old.name);
        slot = old.slot;
        this.counters.recycled++;
      }
      e = { name: key, slot, refs: 0, holdUntil: 0 };
      this.#bySlot[slot] = e;
      this.#byName.set(key, e);
      this.counters.mapped++;
    }
    this.#touch(e);
    return e;
  }

  /** Starts the hold again and makes `e` the most recently used. */
  #touch(e: Entry): void {
    e.holdUntil = Math.max(e.holdUntil, this.#now() + this.#holdMs);
    if (e.refs > 0) return;
    this.#lru.delete(e.name);
    this.#lru.set(e.name, e);
  }

  #slotOf(b: Uint8Array): number {
    if (b.length === 4 || isMapped(b)) return this.#v4 ? slotOf(this.#v4, b, b.length - 4) : -1;
    if (b.length === 16 && this.#v6) return slotOf(this.#v6, b, 0);
    return -1;
  }

  #entryAt(address: string | Uint8Array): Entry | undefined {
    const b = typeof address === 'string' ? parseAddress(address) : address;
    if (b === null) return undefined;
    const slot = this.#slotOf(b);
    return slot < 0 ? undefined : this.#bySlot[slot];
  }
}
