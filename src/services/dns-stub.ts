/**
 * The stack's own stub resolver (RFC 1034 §5.3.1): names to addresses for the stack's sockets,
 * asked of the stack's DNS servers (`stack.dnsServers`: options, DHCP, RA RDNSS) over the stack's own
 * UDP, again over its TCP when an answer comes back truncated (RFC 1035 §4.2.1, RFC 7766 §5).
 *
 * Like the libc resolver: servers in order, `attempts` rounds, `timeoutMs` per try (all bounded);
 * a random ID and a fresh ephemeral port per query, and only an answer from the server asked with
 * that ID and question is taken (RFC 5452 §9.1); IP literals come back as they are and 'localhost'
 * is the loopback addresses without a query (RFC 6761 §6.3). Errors carry node's codes: ENOTFOUND
 * (NXDOMAIN, or no address of the family: NODATA), ETIMEOUT (no server answered), ESERVFAIL,
 * EREFUSED, ECONNREFUSED (every server's port was closed), with `syscall` 'getaddrinfo' for lookup
 * as node's dns.lookup has it, and `hostname`.
 */
import type { Clock, TimerHandle } from '../link/clock.js';
import type { TcpConnection } from '../tcp/user.js';
import { formatAddress, parseAddress } from '../wire/address.js';
import {
  DnsRcode, DnsType, dnsNameKey, dnsNameLabels, dnsQuery, parseDns, writeDns, type DnsMessage, type DnsRecord,
} from '../wire/dns.js';
import { DnsStreamDecoder, frameDns, type DnsUdpSocket } from './dns-transport.js';

/** What the stub needs from a stack. */
export interface DnsStubStack {
  readonly clock: Clock;
  readonly dnsServers: readonly string[];
  udpBind(opts: { family?: 4 | 6 }): DnsUdpSocket;
  tcpConnect(opts: { host: string; port: number }): TcpConnection;
}

export interface LookupOptions {
  /** 4, 6, or 0 for both (default). */
  family?: 0 | 4 | 6;
  /** All addresses (an array) instead of the first. */
  all?: boolean;
}

export interface LookupAddress {
  address: string;
  family: 4 | 6;
}

export interface DnsStubOptions {
  /** Instead of `stack.dnsServers`. */
  servers?: string[];
  /** The servers' port. Default 53. */
  port?: number;
  /** Per try (ms). Default 2000. */
  timeoutMs?: number;
  /** Rounds over the servers. Default 2. */
  attempts?: number;
  /** Advertise EDNS with this UDP payload size; 0 sends plain RFC 1035 queries (512 bytes). Default 1232. */
  ednsPayload?: number;
}

export type DnsStubErrorCode = 'ENOTFOUND' | 'ETIMEOUT' | 'ESERVFAIL' | 'EREFUSED' | 'ECONNREFUSED';

/** node's dns error shape: `getaddrinfo ENOTFOUND name`, with code, syscall and hostname. */
export class DnsStubError extends Error {
  readonly code: DnsStubErrorCode;
  readonly errno: number | undefined;
  readonly syscall: string;
  readonly hostname: string;
  constructor(code: DnsStubErrorCode, syscall: string, hostname: string, detail?: string) {
    super(`${syscall} ${code} ${hostname}${detail ? ` (${detail})` : ''}`);
    this.name = 'DnsStubError';
    this.code = code;
    this.errno = code === 'ENOTFOUND' ? -3008 : undefined;
    this.syscall = syscall;
    this.hostname = hostname;
  }
}

const MAX_CNAME_CHAIN = 8;

function randomId(): number {
  const c = (globalThis as { crypto?: { getRandomValues(a: Uint16Array): Uint16Array } }).crypto;
  if (c) return c.getRandomValues(new Uint16Array(1))[0]!;
  return Math.floor(Math.random() * 0x10000);
}

function answers(query: DnsMessage, id: number, m: DnsMessage): boolean {
  const q = query.questions[0]!;
  const a = m.questions[0];
  return m.qr && m.id === id && m.questions.length === 1 && a !== undefined && a.type === q.type &&
    a.class === q.class && dnsNameKey(a.name) === dnsNameKey(q.name);
}

export class DnsStub {
  /** Queries sent over UDP, retried over TCP after TC, tries that timed out. */
  readonly counters = { udp: 0, tcp: 0, timeouts: 0 };
  readonly #stack: DnsStubStack;
  readonly #options: DnsStubOptions;

  constructor(stack: DnsStubStack, options: DnsStubOptions = {}) {
    this.#stack = stack;
    this.#options = options;
  }

  lookup(name: string, options: LookupOptions & { all: true }): Promise<LookupAddress[]>;
  lookup(name: string, options?: LookupOptions & { all?: false }): Promise<LookupAddress>;
  lookup(name: string, options?: LookupOptions): Promise<LookupAddress | LookupAddress[]>;
  async lookup(name: string, options: LookupOptions = {}): Promise<LookupAddress | LookupAddress[]> {
    const list = await this.#lookupAll(name, options.family ?? 0);
    return options.all ? list : list[0]!;
  }

  async #lookupAll(name: string, family: 0 | 4 | 6): Promise<LookupAddress[]> {
    const literal = parseAddress(name);
    if (literal) return [{ address: formatAddress(literal), family: literal.length === 4 ? 4 : 6 }];
    const key = dnsNameKey(name);
    if (key === 'localhost' || key.endsWith('.localhost')) {
      const lo: LookupAddress[] = [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];
      return lo.filter((a) => family === 0 || a.family === family);
    }
    if (dnsNameLabels(name) === null || key === '') throw new DnsStubError('ENOTFOUND', 'getaddrinfo', name, 'not a DNS name');
    const types = family === 4 ? [DnsType.A] : family === 6 ? [DnsType.AAAA] : [DnsType.A, DnsType.AAAA];
    const results = await Promise.allSettled(types.map((t) => this.#addresses(name, t)));
    const out: LookupAddress[] = [];
    let error: unknown = null;
    for (const r of results) {
      if (r.status === 'fulfilled') out.push(...r.value);
      // A failure other than "no such name" says more (a timeout is not a missing name).
      else if (error === null || (error instanceof DnsStubError && error.code === 'ENOTFOUND')) error = r.reason;
    }
    if (out.length > 0) return out;
    throw error ?? new DnsStubError('ENOTFOUND', 'getaddrinfo', name);
  }

  /** The A or AAAA addresses of `name`, following a CNAME chain within the answer. */
  async #addresses(name: string, type: number): Promise<LookupAddress[]> {
    const m = await this.query(name, type, 'getaddrinfo');
    if (m.rcode === DnsRcode.NXDOMAIN) throw new DnsStubError('ENOTFOUND', 'getaddrinfo', name);
    const out: LookupAddress[] = [];
    let owner = dnsNameKey(name);
    for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
      const mine = m.answers.filter((r) => dnsNameKey(r.name) === owner);
      for (const r of mine) {
        if (r.type === type && (r.data.kind === 'A' || r.data.kind === 'AAAA')) {
          out.push({ address: r.data.address, family: r.data.kind === 'A' ? 4 : 6 });
        }
      }
      if (out.length > 0) break;
      const cname = mine.find((r): r is DnsRecord & { data: { kind: 'CNAME'; name: string } } => r.data.kind === 'CNAME');
      if (!cname) break;
      owner = dnsNameKey(cname.data.name);
    }
    if (out.length === 0) throw new DnsStubError('ENOTFOUND', 'getaddrinfo', name); // NODATA
    return out;
  }

  /**
   * One question to the servers; the answer whatever its RCODE except SERVFAIL/REFUSED (the next
   * server is asked; if all say so, ESERVFAIL/EREFUSED). Rejects ETIMEOUT when none answers.
   */
  async query(name: string, type: number, syscall = 'query'): Promise<DnsMessage> {
    const servers = this.#options.servers ?? this.#stack.dnsServers;
    if (servers.length === 0) throw new DnsStubError('ENOTFOUND', syscall, name, 'no DNS servers');
    const attempts = Math.max(1, this.#options.attempts ?? 2);
    const payload = this.#options.ednsPayload ?? 1232;
    let refusedByAll = true;
    let failure: DnsStubError | null = null;
    for (let round = 0; round < attempts; round++) {
      for (const server of servers) {
        const id = randomId();
        const q = dnsQuery(id, name, type, { edns: payload > 0 ? { udpPayloadSize: payload } : null });
        let m: DnsMessage;
        try {
          m = await this.#udp(server, q, id);
          if (m.tc) m = await this.#tcp(server, q, id);
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code !== 'ECONNREFUSED') refusedByAll = false;
          if (code === 'ETIMEOUT') this.counters.timeouts++;
          continue;
        }
        refusedByAll = false;
        if (m.rcode === DnsRcode.SERVFAIL || m.rcode === DnsRcode.REFUSED) {
          failure = new DnsStubError(m.rcode === DnsRcode.SERVFAIL ? 'ESERVFAIL' : 'EREFUSED', syscall, name);
          continue;
        }
        return m;
      }
    }
    if (failure) throw failure;
    throw new DnsStubError(refusedByAll ? 'ECONNREFUSED' : 'ETIMEOUT', syscall, name);
  }

  #timer(reject: (e: Error) => void, what: string): TimerHandle {
    const clock = this.#stack.clock;
    return clock.schedule(clock.now() + (this.#options.timeoutMs ?? 2000), () => {
      reject(Object.assign(new Error(`${what}: no answer`), { code: 'ETIMEOUT' }));
    });
  }

  #udp(server: string, query: DnsMessage, id: number): Promise<DnsMessage> {
    this.counters.udp++;
    const stack = this.#stack;
    const port = this.#options.port ?? 53;
    return new Promise<DnsMessage>((resolve, reject) => {
      let sock: DnsUdpSocket | null = null;
      const finish = (f: () => void): void => {
        stack.clock.cancel(timer);
        sock?.close();
        sock = null;
        f();
      };
      const timer = this.#timer((e) => finish(() => reject(e)), `${server} (UDP)`);
      try {
        sock = stack.udpBind({ family: server.includes(':') ? 6 : 4 });
        // Connected: only the server's datagrams arrive, and its closed port is ECONNREFUSED.
        sock.connect(server, port);
        sock.onMessage = (data) => {
          const m = parseDns(data);
          if (typeof m !== 'string' && answers(query, id, m)) finish(() => resolve(m));
        };
        sock.onError = (e: Error) => finish(() => reject(e));
        sock.send(writeDns(query));
      } catch (e) {
        finish(() => reject(e instanceof Error ? e : new Error(String(e))));
      }
    });
  }

  #tcp(server: string, query: DnsMessage, id: number): Promise<DnsMessage> {
    this.counters.tcp++;
    const stack = this.#stack;
    const clock = stack.clock;
    return new Promise<DnsMessage>((resolve, reject) => {
      let conn: TcpConnection | null = null;
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        clock.cancel(timer);
        const c = conn;
        // Not from inside the stack's processing of a segment: one turn later.
        if (c) clock.defer(() => c.close({ discardInput: true }));
        f();
      };
      const timer = this.#timer((e) => finish(() => reject(e)), `${server} (TCP)`);
      let out = frameDns(writeDns(query));
      const decoder = new DnsStreamDecoder();
      const flush = (): void => {
        if (!conn || done || out.length === 0) return;
        try {
          out = out.subarray(conn.write(out));
        } catch (e) {
          finish(() => reject(e instanceof Error ? e : new Error(String(e))));
        }
      };
      try {
        conn = stack.tcpConnect({ host: server, port: this.#options.port ?? 53 });
      } catch (e) {
        finish(() => reject(e instanceof Error ? e : new Error(String(e))));
        return;
      }
      const c = conn;
      c.events = {
        onEstablished: () => clock.defer(flush),
        onWritable: () => clock.defer(flush),
        onReadable: () => clock.defer(() => {
          for (let chunk = c.read(); chunk && !done; chunk = c.read()) {
            for (const raw of decoder.push(chunk)) {
              const m = parseDns(raw);
              if (typeof m !== 'string' && answers(query, id, m)) {
                finish(() => resolve(m));
                return;
              }
            }
          }
        }),
        onClosed: (err) => finish(() => reject(err ?? Object.assign(new Error(`${server} (TCP) closed`), { code: 'ECONNRESET' }))),
      };
      if (c.state === 'ESTABLISHED') clock.defer(flush);
    });
  }
}

const stubs = new WeakMap<object, DnsStub>();

/**
 * `stack.lookup(name, options)`: one stub per stack, made on first use, asking the stack's DNS
 * servers as they are at each query.
 */
export function dnsLookup(stack: DnsStubStack, name: string, options: LookupOptions & { all: true }): Promise<LookupAddress[]>;
export function dnsLookup(stack: DnsStubStack, name: string, options?: LookupOptions & { all?: false }): Promise<LookupAddress>;
export function dnsLookup(stack: DnsStubStack, name: string, options?: LookupOptions): Promise<LookupAddress | LookupAddress[]>;
export function dnsLookup(stack: DnsStubStack, name: string, options: LookupOptions = {}): Promise<LookupAddress | LookupAddress[]> {
  let stub = stubs.get(stack);
  if (!stub) stubs.set(stack, (stub = new DnsStub(stack)));
  return stub.lookup(name, options);
}
