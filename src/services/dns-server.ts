/**
 * A small DNS server for a gateway, as QEMU's slirp or dnsmasq give a guest: static names (A, AAAA,
 * CNAME, TXT, SRV) answered with authority together with their PTR records, NXDOMAIN for anything
 * else under the local domain, and the rest forwarded to a pluggable upstream with a bounded TTL
 * cache. `DnsServer` is the sans-IO core (bytes in, bytes out, a clock for TTLs and timeouts);
 * `serveDns` binds it to UDP and TCP port 53 of a stack.
 *
 * RFC behaviour, in one place:
 * - The ID, opcode, RD, CD and the question are echoed (RFC 1035 §4.1.1); RA says whether we
 *   recurse (we do when an upstream is configured); AA only for the names we own.
 * - FORMERR for what does not parse, or a QUERY whose QDCOUNT is not 1 (RFC 9619); NOTIMP for an
 *   opcode other than QUERY (RFC 1035 §4.1.1); REFUSED for zone transfers and classes other than IN
 *   that we cannot forward; BADVERS for an EDNS version above 0 (RFC 6891 §6.1.3); SERVFAIL when the
 *   upstream fails or does not answer in time.
 * - An EDNS query gets an OPT RR back with our payload size (RFC 6891 §7). A UDP answer is cut to the
 *   client's size (512 without EDNS) by whole RRsets with TC set (RFC 2181 §9); over TCP it is whole.
 * - The cache keeps answers for their smallest TTL and negative answers (NXDOMAIN and NODATA) for the
 *   SOA's min(TTL, MINIMUM) (RFC 2308 §5), capped; a negative answer without SOA is not cached (§5).
 *   It holds at most `cacheEntries`, dropping the least recently used. TTLs given out count down.
 * - RFC 6761 §6.3: 'localhost' and names under it are the loopback addresses, never forwarded;
 *   RFC 6303: reverse names of private and link-local ranges are answered here (NXDOMAIN unless
 *   static), never sent upstream.
 */
import type { Clock, TimerHandle } from '../link/clock.js';
import { formatEndpoint, parseAddress } from '../wire/address.js';
import {
  DnsClass, DnsRcode, DnsType, dnsNameKey, dnsNameLabels, dnsRcodeName, dnsTypeName, parseDns, reverseName,
  txtStrings, writeDns, DNS_HEADER_LENGTH, type DnsMessage, type DnsQuestion, type DnsRecord,
} from '../wire/dns.js';
import type { TcpConnection, TcpListener } from '../tcp/user.js';
import { DNS_EDNS_PAYLOAD, DnsStreamDecoder, frameDns, udpAnswerLimit, type DnsUdpSocket } from './dns-transport.js';

/** Where queries we do not answer ourselves go. */
export interface DnsUpstream {
  /**
   * Answers one query (RD set, one question). The answer's ID does not matter (the server sets its
   * own); its question must be the one asked. Rejects when the upstream fails. The server gives up
   * after its own `upstreamTimeoutMs` and then aborts `signal`: the upstream should stop and settle,
   * since the query counts against `maxPending` until it does.
   */
  resolve(query: DnsMessage, options?: { signal?: AbortSignal }): Promise<DnsMessage>;
  close?(): void;
}

/** One static name. */
export interface DnsStaticEntry {
  /** IPv4 and IPv6 addresses: A and AAAA records, and a PTR for each. */
  addresses?: string[];
  /** An alias: the name has no other records (RFC 1034 §3.6.2). */
  cname?: string;
  txt?: string | string[];
  srv?: { priority?: number; weight?: number; port: number; target: string }[];
  /** Seconds; the server's `ttl` when omitted. */
  ttl?: number;
}

/** name → an address, a list of addresses, or an entry. */
export type DnsStaticRecords = Record<string, string | string[] | DnsStaticEntry>;

export interface DnsServerOptions {
  clock: Clock;
  records?: DnsStaticRecords;
  /** A domain we own ('lan'): names under it that are not static get NXDOMAIN with authority. */
  localDomain?: string;
  /**
   * Where other names go. Without one the server only knows its static names: every other name is
   * NXDOMAIN and RA is clear.
   */
  upstream?: DnsUpstream | null;
  /** TTL of static records (s). Default 60. */
  ttl?: number;
  /** SOA MINIMUM of the local domain, the negative TTL of our own NXDOMAINs (s). Default 60. */
  negativeTtl?: number;
  /** Longest time a forwarded negative answer is cached (s). Default 900. */
  negativeCacheCap?: number;
  /** Longest time a forwarded answer is cached (s). Default 86400. */
  maxCacheTtl?: number;
  /** Cache size in entries (one per name, type and class); 0 turns caching off. Default 1000. */
  cacheEntries?: number;
  /** Give up on the upstream after this long and answer SERVFAIL (ms). Default 4000. */
  upstreamTimeoutMs?: number;
  /**
   * Upstream queries in flight at once (counted until the upstream settles, not only until our
   * timeout); more are answered SERVFAIL at once. Default 256.
   */
  maxPending?: number;
  /** Our EDNS UDP payload size (RFC 6891 §6.2.5). Default 1232. */
  payloadSize?: number;
  /** Called once per query answered. */
  onQuery?: ((e: DnsQueryEvent) => void) | null;
}

export interface DnsQueryEvent {
  /** The name asked ('' for a query without one). */
  name: string;
  type: string;
  rcode: string;
  /** Who asked ('10.0.2.15:41234'), as the transport gave it. */
  source: string;
  transport: 'udp' | 'tcp';
  /** Answered from our static names or the local domain. */
  authoritative: boolean;
  /** Answered from the cache / sent upstream. */
  cached: boolean;
  forwarded: boolean;
  /** The UDP answer was cut short (TC). */
  truncated: boolean;
  /** From query to answer, on the server's clock (ms). */
  elapsedMs: number;
}

export interface DnsServerCounters {
  queries: number;
  answered: number;
  cacheHits: number;
  forwarded: number;
  nxdomain: number;
  servfail: number;
  formerr: number;
  notimp: number;
  refused: number;
  truncated: number;
  /** Datagrams and messages not answered, by reason (a parse DropReason, 'response', 'too-short'). */
  dropped: Record<string, number>;
}

interface CacheEntry {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  stored: number;
  expires: number;
}

interface Outcome {
  rcode: number;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
  aa: boolean;
  cached: boolean;
  forwarded: boolean;
  /** A CNAME chain of ours ends at this name, which is not ours: resolve it upstream. */
  follow?: string;
}

/** RFC 6303 §4: reverse zones of ranges that never reach the public DNS. */
const LOCAL_REVERSE_ZONES = [
  '10.in-addr.arpa', '127.in-addr.arpa', '254.169.in-addr.arpa', '168.192.in-addr.arpa',
  ...Array.from({ length: 16 }, (_, i) => `${16 + i}.172.in-addr.arpa`),
  'd.f.ip6.arpa', '8.e.f.ip6.arpa', '9.e.f.ip6.arpa', 'a.e.f.ip6.arpa', 'b.e.f.ip6.arpa',
  '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa',
];

const MAX_CNAME_CHAIN = 8;

function bad(what: string): never {
  throw new RangeError(`synack dns server: ${what}`);
}

export class DnsServer {
  readonly counters: DnsServerCounters = {
    queries: 0, answered: 0, cacheHits: 0, forwarded: 0, nxdomain: 0, servfail: 0, formerr: 0, notimp: 0,
    refused: 0, truncated: 0, dropped: {},
  };
  onQuery: ((e: DnsQueryEvent) => void) | null;

  readonly #clock: Clock;
  readonly #upstream: DnsUpstream | null;
  readonly #localDomain: string | null;
  readonly #ttl: number;
  readonly #negativeTtl: number;
  readonly #negativeCap: number;
  readonly #maxTtl: number;
  readonly #cacheEntries: number;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #payloadSize: number;
  /** Canonical name → its records (forward names and the PTR names made for their addresses). */
  #static = new Map<string, DnsRecord[]>();
  /** Canonical name → the name as configured and its entry. */
  #entries = new Map<string, { name: string; entry: DnsStaticEntry }>();
  /** LRU: Map iteration order is insertion order; a hit moves the entry to the end. */
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<DnsMessage>>();
  /** Upstream queries not yet settled (a timed-out one included until the upstream lets go). */
  #upstreamBusy = 0;

  constructor(options: DnsServerOptions) {
    this.#clock = options.clock;
    this.#upstream = options.upstream ?? null;
    this.#localDomain = options.localDomain !== undefined ? dnsNameKey(options.localDomain) : null;
    this.#ttl = options.ttl ?? 60;
    this.#negativeTtl = options.negativeTtl ?? 60;
    this.#negativeCap = options.negativeCacheCap ?? 900;
    this.#maxTtl = options.maxCacheTtl ?? 86400;
    this.#cacheEntries = Math.max(0, Math.floor(options.cacheEntries ?? 1000));
    this.#timeoutMs = options.upstreamTimeoutMs ?? 4000;
    this.#maxPending = options.maxPending ?? 256;
    this.#payloadSize = Math.max(512, Math.min(0xffff, options.payloadSize ?? DNS_EDNS_PAYLOAD));
    this.onQuery = options.onQuery ?? null;
    for (const [name, value] of Object.entries(options.records ?? {})) {
      this.#entries.set(dnsNameKey(name), { name, entry: normalise(value) });
    }
    this.#rebuild();
  }

  /** Adds, replaces (or with null removes) one static name, e.g. a DHCP client's host name. */
  setRecord(name: string, value: string | string[] | DnsStaticEntry | null): void {
    const key = dnsNameKey(name);
    if (value === null) this.#entries.delete(key);
    else this.#entries.set(key, { name, entry: normalise(value) });
    this.#rebuild();
  }

  /** Entries in the cache now. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  clearCache(): void {
    this.#cache.clear();
  }

  #rebuild(): void {
    const map = new Map<string, DnsRecord[]>();
    const add = (owner: string, rr: DnsRecord): void => {
      const key = dnsNameKey(owner);
      let list = map.get(key);
      if (!list) map.set(key, (list = []));
      list.push(rr);
    };
    for (const { name, entry: e } of this.#entries.values()) {
      const ttl = e.ttl ?? this.#ttl;
      for (const n of [name, e.cname, ...(e.srv ?? []).map((x) => x.target)]) {
        if (n !== undefined && (dnsNameLabels(n) === null || dnsNameKey(n) === '')) bad(`not a DNS name: ${JSON.stringify(n)}`);
      }
      if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) bad(`${name}: TTL out of range: ${ttl}`);
      if (e.cname !== undefined) {
        if (e.addresses?.length || e.txt !== undefined || e.srv?.length) bad(`${name}: a CNAME name has no other records (RFC 1034 §3.6.2)`);
        add(name, { name, type: DnsType.CNAME, class: DnsClass.IN, ttl, data: { kind: 'CNAME', name: e.cname } });
      }
      for (const a of e.addresses ?? []) {
        const b = parseAddress(a);
        if (b === null) bad(`${name}: not an IP address: ${a}`);
        const v4 = b.length === 4;
        add(name, {
          name, type: v4 ? DnsType.A : DnsType.AAAA, class: DnsClass.IN, ttl,
          data: v4 ? { kind: 'A', address: a } : { kind: 'AAAA', address: a },
        });
        const ptr = reverseName(b);
        add(ptr, { name: ptr, type: DnsType.PTR, class: DnsClass.IN, ttl, data: { kind: 'PTR', name } });
      }
      if (e.txt !== undefined) {
        const texts = typeof e.txt === 'string' ? [e.txt] : e.txt;
        add(name, { name, type: DnsType.TXT, class: DnsClass.IN, ttl, data: { kind: 'TXT', strings: txtStrings(...texts) } });
      }
      for (const s of e.srv ?? []) {
        add(name, {
          name, type: DnsType.SRV, class: DnsClass.IN, ttl,
          data: { kind: 'SRV', priority: s.priority ?? 0, weight: s.weight ?? 0, port: s.port, target: s.target },
        });
      }
    }
    this.#static = map;
  }

  /**
   * One query in, one answer out (null: nothing to send, e.g. a response or a runt). `source` only
   * labels the event.
   */
  async handle(bytes: Uint8Array, context: { transport: 'udp' | 'tcp'; source: string }): Promise<Uint8Array | null> {
    const started = this.#clock.now();
    const parsed = parseDns(bytes);
    if (typeof parsed === 'string') {
      // RFC 1035 §4.1.1 FORMERR needs an ID to answer to; a response is never answered (no loops).
      if (bytes.length < DNS_HEADER_LENGTH) {
        this.#drop('too-short');
        return null;
      }
      if ((bytes[2]! & 0x80) !== 0) {
        this.#drop('response');
        return null;
      }
      this.#drop(parsed);
      this.counters.queries++;
      const m = this.#formerr(bytes);
      this.#finish(m, null, context, false, false, false, false, started);
      return writeDns(m);
    }
    if (parsed.qr) {
      this.#drop('response');
      return null;
    }
    this.counters.queries++;
    let answer = await this.answer(parsed);
    let out: Uint8Array;
    try {
      out = writeDns(answer.message);
    } catch {
      // Upstream data we cannot send on (an extended RCODE for a client without EDNS, …).
      this.#drop('unwritable-answer');
      answer = { ...answer, message: { ...answer.message, rcode: DnsRcode.SERVFAIL, answers: [], authorities: [], additionals: [] } };
      out = writeDns(answer.message);
    }
    const reply = answer.message;
    let truncated = false;
    if (context.transport === 'udp') {
      const limit = udpAnswerLimit(parsed, this.#payloadSize);
      if (out.length > limit) {
        out = writeDns(reply, { maxLength: limit });
        truncated = (out[2]! & 0x02) !== 0;
      }
    }
    if (truncated) this.counters.truncated++;
    this.#finish(reply, parsed.questions[0] ?? null, context, answer.aa, answer.cached, answer.forwarded, truncated, started);
    return out;
  }

  /** The answer to a parsed query, as a message (not yet cut to any size). */
  async answer(query: DnsMessage): Promise<{ message: DnsMessage; aa: boolean; cached: boolean; forwarded: boolean }> {
    const reply = (o: Partial<Outcome> & { rcode: number }, questions = query.questions): {
      message: DnsMessage; aa: boolean; cached: boolean; forwarded: boolean;
    } => ({
      message: {
        id: query.id, qr: true, opcode: query.opcode, aa: o.aa ?? false, tc: false, rd: query.rd,
        ra: this.#upstream !== null, z: false, ad: false, cd: query.cd, rcode: o.rcode, questions,
        answers: o.answers ?? [], authorities: o.authorities ?? [], additionals: o.additionals ?? [],
        // RFC 6891 §7: an EDNS query gets OPT back, with our size; no options we do not implement.
        edns: query.edns ? { udpPayloadSize: this.#payloadSize, version: 0, dnssecOk: false, z: 0, options: [] } : null,
      },
      aa: o.aa ?? false, cached: o.cached ?? false, forwarded: o.forwarded ?? false,
    });
    if (query.opcode !== 0) return reply({ rcode: DnsRcode.NOTIMP });
    if (query.edns && query.edns.version > 0) return reply({ rcode: DnsRcode.BADVERS });
    if (query.questions.length !== 1) return reply({ rcode: DnsRcode.FORMERR }, []);
    const q = query.questions[0]!;
    if (q.type === DnsType.AXFR || q.type === DnsType.IXFR || q.type === DnsType.OPT) {
      return reply({ rcode: q.type === DnsType.OPT ? DnsRcode.FORMERR : DnsRcode.REFUSED });
    }
    if (q.class === DnsClass.IN || q.class === DnsClass.ANY) {
      const local = this.#local(q);
      if (local?.follow !== undefined && this.#upstream) {
        const rest = await this.#forward({ name: local.follow, type: q.type, class: q.class }, query.cd);
        return reply({
          ...rest, answers: [...local.answers, ...rest.answers], aa: false,
        });
      }
      if (local) return reply(local);
    }
    if (!this.#upstream) return reply({ rcode: q.class === DnsClass.IN ? DnsRcode.NXDOMAIN : DnsRcode.REFUSED });
    return reply(await this.#forward(q, query.cd));
  }

  /** What we answer ourselves; null when the name is not ours. */
  #local(q: DnsQuestion): Outcome | null {
    const key = dnsNameKey(q.name);
    const answers: DnsRecord[] = [];
    let name = q.name;
    let records = this.#static.get(key) ?? loopback(key, q.name, this.#ttl);
    if (!records) {
      const soa = this.#soaFor(key);
      if (!soa) return null;
      return { rcode: DnsRcode.NXDOMAIN, answers: [], authorities: [soa], additionals: [], aa: true, cached: false, forwarded: false };
    }
    // Follow CNAMEs through our own names (RFC 1034 §4.3.2 step 3a), each owner as asked.
    for (let hop = 0; ; hop++) {
      const cname = records.find((r) => r.type === DnsType.CNAME);
      const wanted = (r: DnsRecord): boolean => q.type === DnsType.ANY || r.type === q.type;
      if (!cname || q.type === DnsType.CNAME || q.type === DnsType.ANY) {
        for (const r of records) if (wanted(r)) answers.push({ ...r, name });
        break;
      }
      answers.push({ ...cname, name });
      if (cname.data.kind !== 'CNAME' || hop >= MAX_CNAME_CHAIN) break;
      name = cname.data.name;
      const next = this.#static.get(dnsNameKey(name)) ?? loopback(dnsNameKey(name), name, this.#ttl);
      if (!next) {
        // The chain leaves our names. In a zone of ours the target does not exist: NXDOMAIN, the
        // RCODE being about the last name of the chain (RFC 6604 §2); elsewhere it is the
        // upstream's to answer (RFC 1034 §4.3.2 step 3a: "restart" with the target).
        const soa = this.#soaFor(dnsNameKey(name));
        if (soa) return { rcode: DnsRcode.NXDOMAIN, answers, authorities: [soa], additionals: [], aa: true, cached: false, forwarded: false };
        return { rcode: DnsRcode.NOERROR, answers, authorities: [], additionals: [], aa: true, cached: false, forwarded: false, follow: name };
      }
      records = next;
    }
    // NODATA (RFC 2308 §2.2) carries the SOA when we have one for the name.
    const authorities: DnsRecord[] = [];
    if (answers.length === 0) {
      const soa = this.#soaFor(key);
      if (soa) authorities.push(soa);
    }
    return { rcode: DnsRcode.NOERROR, answers, authorities, additionals: [], aa: true, cached: false, forwarded: false };
  }

  /** The SOA of a zone of ours containing `key` (the local domain or an RFC 6303 zone), else null. */
  #soaFor(key: string): DnsRecord | null {
    // `key` and the zones are canonical already: plain suffix tests.
    const under = (zone: string): boolean => zone === '' || key === zone || key.endsWith(`.${zone}`);
    let zone: string | null = null;
    if (this.#localDomain !== null && under(this.#localDomain)) zone = this.#localDomain;
    else if (key.endsWith('.arpa')) zone = LOCAL_REVERSE_ZONES.find(under) ?? null;
    if (zone === null && (key === 'invalid' || key.endsWith('.invalid'))) zone = 'invalid'; // RFC 6761 §6.4
    if (zone === null) return null;
    return {
      name: zone, type: DnsType.SOA, class: DnsClass.IN, ttl: this.#negativeTtl,
      data: {
        kind: 'SOA', mname: zone === '' ? 'localhost' : zone, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600,
        retry: 600, expire: 86400, minimum: this.#negativeTtl,
      },
    };
  }

  async #forward(q: DnsQuestion, cd: boolean): Promise<Outcome> {
    const qkey = dnsNameKey(q.name);
    const key = `${qkey}\u0000${q.type}\u0000${q.class}`;
    const now = this.#clock.now();
    const hit = this.#cache.get(key);
    if (hit) {
      this.#cache.delete(key);
      if (hit.expires > now) {
        this.#cache.set(key, hit);
        this.counters.cacheHits++;
        // RFC 1035 §7.4 / RFC 2181 §8: hand out what is left of each TTL.
        const age = Math.floor((now - hit.stored) / 1000);
        const aged = (rs: DnsRecord[]): DnsRecord[] => rs.map((r) => ({ ...r, ttl: Math.max(0, r.ttl - age) }));
        return {
          rcode: hit.rcode, answers: aged(hit.answers).map((r) => (dnsNameKey(r.name) === qkey ? { ...r, name: q.name } : r)),
          authorities: aged(hit.authorities), additionals: aged(hit.additionals), aa: false, cached: true, forwarded: false,
        };
      }
    }
    let pending = this.#inflight.get(key);
    if (!pending) {
      if (this.#upstreamBusy >= this.#maxPending) {
        this.#drop('upstream-busy');
        return servfail();
      }
      this.counters.forwarded++;
      const upstream = this.#upstream!;
      const query: DnsMessage = {
        id: 0, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, z: false, ad: false, cd,
        rcode: 0, questions: [{ ...q }], answers: [], authorities: [], additionals: [],
        edns: { udpPayloadSize: this.#payloadSize, version: 0, dnssecOk: false, z: 0, options: [] },
      };
      const controller = new AbortController();
      this.#upstreamBusy++;
      const call = Promise.resolve().then(() => upstream.resolve(query, { signal: controller.signal }));
      const settled = (): void => {
        this.#upstreamBusy--;
      };
      call.then(settled, settled);
      const p = this.#withTimeout(call, controller);
      this.#inflight.set(key, p);
      p.then((m) => {
        this.#inflight.delete(key);
        this.#store(key, q, m);
      }, () => {
        this.#inflight.delete(key);
      });
      pending = p;
    }
    let m: DnsMessage;
    try {
      m = await pending;
    } catch {
      return servfail();
    }
    const asked = m.questions[0];
    if (!m.qr || m.questions.length !== 1 || !asked || asked.type !== q.type || dnsNameKey(asked.name) !== dnsNameKey(q.name)) {
      return servfail();
    }
    return {
      rcode: m.rcode, answers: m.answers, authorities: m.authorities, additionals: m.additionals, aa: false,
      cached: false, forwarded: true,
    };
  }

  #withTimeout(p: Promise<DnsMessage>, controller: AbortController): Promise<DnsMessage> {
    return new Promise<DnsMessage>((resolve, reject) => {
      const timer: TimerHandle = this.#clock.schedule(this.#clock.now() + this.#timeoutMs, () => {
        reject(new Error('upstream timeout'));
        controller.abort();
      });
      p.then((m) => {
        this.#clock.cancel(timer);
        resolve(m);
      }, (e: unknown) => {
        this.#clock.cancel(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  #store(key: string, q: DnsQuestion, m: DnsMessage): void {
    if (this.#cacheEntries === 0 || m.tc) return;
    const asked = m.questions[0];
    if (!asked || dnsNameKey(asked.name) !== dnsNameKey(q.name) || asked.type !== q.type) return;
    let ttl: number;
    if (m.rcode === DnsRcode.NOERROR && m.answers.length > 0) {
      ttl = Math.min(this.#maxTtl, ...m.answers.map((r) => r.ttl));
    } else if (m.rcode === DnsRcode.NXDOMAIN || m.rcode === DnsRcode.NOERROR) {
      // RFC 2308 §5: negative answers live for the SOA's min(TTL, MINIMUM); without an SOA, not at all.
      const soa = m.authorities.find((r) => r.type === DnsType.SOA);
      if (!soa || soa.data.kind !== 'SOA') return;
      ttl = Math.min(this.#negativeCap, soa.ttl, soa.data.minimum);
    } else return; // SERVFAIL, REFUSED…: asked again next time
    if (ttl <= 0) return;
    const now = this.#clock.now();
    this.#cache.delete(key);
    this.#cache.set(key, {
      rcode: m.rcode, answers: m.answers, authorities: m.authorities, additionals: m.additionals, stored: now,
      expires: now + ttl * 1000,
    });
    while (this.#cache.size > this.#cacheEntries) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
  }

  #formerr(bytes: Uint8Array): DnsMessage {
    // RFC 6891 §7: a query whose OPT is malformed gets FORMERR without OPT; the header is echoed.
    return {
      id: (bytes[0]! << 8) | bytes[1]!, qr: true, opcode: (bytes[2]! >> 3) & 15, aa: false, tc: false,
      rd: (bytes[2]! & 1) !== 0, ra: this.#upstream !== null, z: false, ad: false, cd: false,
      rcode: DnsRcode.FORMERR, questions: [], answers: [], authorities: [], additionals: [], edns: null,
    };
  }

  #drop(reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  #finish(m: DnsMessage, q: DnsQuestion | null, context: { transport: 'udp' | 'tcp'; source: string },
    aa: boolean, cached: boolean, forwarded: boolean, truncated: boolean, started: number): void {
    const c = this.counters;
    c.answered++;
    if (m.rcode === DnsRcode.NXDOMAIN) c.nxdomain++;
    else if (m.rcode === DnsRcode.SERVFAIL) c.servfail++;
    else if (m.rcode === DnsRcode.FORMERR) c.formerr++;
    else if (m.rcode === DnsRcode.NOTIMP) c.notimp++;
    else if (m.rcode === DnsRcode.REFUSED) c.refused++;
    this.onQuery?.({
      name: q?.name ?? '', type: q ? dnsTypeName(q.type) : '', rcode: dnsRcodeName(m.rcode), source: context.source,
      transport: context.transport, authoritative: aa, cached, forwarded, truncated,
      elapsedMs: this.#clock.now() - started,
    });
  }
}

function servfail(): Outcome {
  return { rcode: DnsRcode.SERVFAIL, answers: [], authorities: [], additionals: [], aa: false, cached: false, forwarded: false };
}

function normalise(value: string | string[] | DnsStaticEntry): DnsStaticEntry {
  if (typeof value === 'string') return { addresses: [value] };
  if (Array.isArray(value)) return { addresses: value };
  return value;
}

/** RFC 6761 §6.3: localhost and its subdomains are the loopback addresses. */
function loopback(key: string, name: string, ttl: number): DnsRecord[] | undefined {
  if (key !== 'localhost' && !key.endsWith('.localhost')) return undefined;
  return [
    { name, type: DnsType.A, class: DnsClass.IN, ttl, data: { kind: 'A', address: '127.0.0.1' } },
    { name, type: DnsType.AAAA, class: DnsClass.IN, ttl, data: { kind: 'AAAA', address: '::1' } },
  ];
}

// =============================================================================== attach to a stack

/** What `serveDns` needs from a stack. */
export interface DnsServerStack {
  readonly clock: Clock;
  readonly addresses: readonly string[];
  udpBind(opts: { address?: string; port?: number; family?: 4 | 6 }): DnsUdpSocket;
  tcpListen(opts: { port: number; host?: string }): TcpListener;
}

export interface ServeDnsOptions extends Omit<DnsServerOptions, 'clock'> {
  /** Local address to serve on; every address of the stack when omitted. */
  address?: string;
  /** Default 53. */
  port?: number;
  /** Serve TCP too (RFC 7766 §5: a server must). Default true. */
  tcp?: boolean;
  /** Close a TCP connection idle this long (ms; RFC 7766 §6.2.3). Default 10 000. */
  tcpIdleMs?: number;
  /** TCP connections at once; more are reset. Default 64. */
  maxTcpConnections?: number;
}

export interface DnsService {
  readonly server: DnsServer;
  close(): void;
}

/**
 * Serves DNS on a stack: UDP port 53 (IPv4 and IPv6 unless `address` picks one) and TCP port 53
 * with RFC 7766 framing, several queries per connection answered as they finish, an idle timeout.
 */
export function serveDns(stack: DnsServerStack, options: ServeDnsOptions = {}): DnsService {
  const server = new DnsServer({ ...options, clock: stack.clock });
  const port = options.port ?? 53;
  const sockets: DnsUdpSocket[] = [];
  let closed = false;
  const bindUdp = (family: 4 | 6 | undefined): void => {
    const s = stack.udpBind({ port, ...(options.address !== undefined ? { address: options.address } : {}), ...(family ? { family } : {}) });
    s.onMessage = (data, remote, local) => {
      const source = remote.family === 6 ? `[${remote.address}]:${remote.port}` : `${remote.address}:${remote.port}`;
      // The answer comes from the address the query went to: a stack serving on several addresses
      // (the gateway's .2 and .3) must not answer from another one, which a resolver ignores as
      // an unexpected source (RFC 5452 §4.1 has resolvers match the server's address).
      const from = stack.addresses.includes(local.address) ? local.address : undefined;
      void server.handle(data, { transport: 'udp', source }).then((out) => {
        if (!out || closed) return;
        try {
          s.send(out, remote.address, remote.port, from);
        } catch {
          server.counters.dropped['send-failed'] = (server.counters.dropped['send-failed'] ?? 0) + 1;
        }
      });
    };
    s.onError = () => undefined; // ICMP errors about clients that went away: nothing to do
    sockets.push(s);
  };
  if (options.address !== undefined) bindUdp(undefined);
  else {
    bindUdp(4);
    try {
      bindUdp(6);
    } catch {
      // a stack without IPv6 serves IPv4 only
    }
  }
  let listener: TcpListener | null = null;
  const conns = new Set<TcpConnection>();
  if (options.tcp !== false) {
    listener = stack.tcpListen({ port, ...(options.address !== undefined ? { host: options.address } : {}) });
    listener.onConnection = (c) => {
      if (conns.size >= (options.maxTcpConnections ?? 64)) {
        c.abort();
        return;
      }
      conns.add(c);
      serveTcp(stack.clock, server, c, options.tcpIdleMs ?? 10_000, () => conns.delete(c));
    };
  }
  return {
    server,
    close(): void {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.close();
      listener?.close();
      for (const c of conns) c.close();
      conns.clear();
      options.upstream?.close?.();
    },
  };
}

/** Answers queued or being worked out per TCP connection before we stop reading its queries. */
const TCP_BACKLOG = 16;

/**
 * One TCP client (RFC 7766 §6.2): queries may be pipelined and answers go out as they are ready
 * (§6.2.1.1: in any order, each with its ID). A client that sends queries without reading answers
 * is not read from beyond TCP_BACKLOG outstanding answers, so TCP's window holds it back instead
 * of our memory. Idle (no query, nothing outstanding) for `idleMs`: closed (§6.2.3).
 * Core events come from inside the stack's segment processing, so all work runs one turn later.
 */
function serveTcp(clock: Clock, server: DnsServer, c: TcpConnection, idleMs: number, gone: () => void): void {
  const decoder = new DnsStreamDecoder();
  const source = formatEndpoint(c.remoteAddress, c.remotePort);
  const out: Uint8Array[] = [];
  let pending = 0;
  let finished = false;
  let ended = false;
  let idle: TimerHandle | null = null;
  const armIdle = (): void => {
    if (idle) clock.cancel(idle);
    idle = clock.schedule(clock.now() + idleMs, () => {
      idle = null;
      if (pending === 0 && out.length === 0) c.close();
      else armIdle();
    });
  };
  const read = (): void => {
    while (!ended && pending + out.length < TCP_BACKLOG) {
      const chunk = c.read();
      if (!chunk) break;
      armIdle();
      for (const msg of decoder.push(chunk)) {
        pending++;
        void server.handle(msg, { transport: 'tcp', source }).then((answer) => {
          pending--;
          if (answer) out.push(frameDns(answer));
          flush();
        });
      }
    }
  };
  const flush = (): void => {
    if (ended) return;
    while (out.length > 0) {
      const head = out[0]!;
      let n: number;
      try {
        n = c.write(head);
      } catch {
        out.length = 0;
        return;
      }
      if (n === head.length) out.shift();
      else {
        out[0] = head.subarray(n);
        return;
      }
    }
    read();
    if (finished && pending === 0 && out.length === 0) c.close();
  };
  c.events = {
    onReadable: () => clock.defer(read),
    onWritable: () => clock.defer(flush),
    onEnd: () => {
      finished = true;
      clock.defer(flush);
    },
    onClosed: () => {
      ended = true;
      if (idle) clock.cancel(idle);
      idle = null;
      gone();
    },
  };
  armIdle();
}
