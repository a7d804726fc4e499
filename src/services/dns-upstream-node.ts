/**
 * The host's resolver as a DnsUpstream (Node only): the name servers `node:dns` reads from
 * /etc/resolv.conf (`dns.getServers()`; inside `ip netns exec NS` that is /etc/netns/NS/resolv.conf),
 * asked with the raw message over UDP (node:dgram) and again over TCP (node:net, RFC 7766) when the
 * answer comes back truncated (RFC 1035 §4.2.1). Each UDP query goes from a fresh socket (a random
 * source port) with a random ID, and only an answer from the server asked, with that ID and the
 * question asked, is taken (RFC 5452 §9). Attempts and time are bounded: `attempts` rounds over the
 * servers, `timeoutMs` each.
 */
import { createSocket } from 'node:dgram';
import { getServers } from 'node:dns';
import { connect } from 'node:net';
import { randomInt } from 'node:crypto';
import { DnsRcode, dnsNameKey, parseDns, writeDns, type DnsMessage } from '../wire/dns.js';
import type { DnsUpstream } from './dns-server.js';
import { DnsStreamDecoder, frameDns } from './dns-transport.js';

export interface NodeDnsUpstreamOptions {
  /** 'a.b.c.d', 'a.b.c.d:port', 'v6' or '[v6]:port'. Default: `dns.getServers()` when first used. */
  servers?: string[];
  /** Per attempt (ms). Default 2000. */
  timeoutMs?: number;
  /** Rounds over the server list. Default 2. */
  attempts?: number;
}

interface Server {
  address: string;
  port: number;
  family: 4 | 6;
}

/** Parses resolv.conf-style server strings as `dns.getServers()` gives them. */
export function parseServer(s: string): Server | null {
  let address = s;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    address = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (/^[0-9.]+:\d+$/.test(s)) {
    const i = s.lastIndexOf(':');
    address = s.slice(0, i);
    port = Number(s.slice(i + 1));
  }
  if (port < 1 || port > 65535) return null;
  const family = address.includes(':') ? 6 : /^\d+\.\d+\.\d+\.\d+$/.test(address) ? 4 : null;
  if (family === null) return null;
  return { address, port, family };
}

class UpstreamError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

function matches(query: DnsMessage, id: number, m: DnsMessage): boolean {
  const q = query.questions[0];
  const a = m.questions[0];
  return m.qr && m.id === id && m.questions.length === query.questions.length &&
    (q === undefined || (a !== undefined && a.type === q.type && a.class === q.class && dnsNameKey(a.name) === dnsNameKey(q.name)));
}

export class NodeDnsUpstream implements DnsUpstream {
  /** Queries sent over UDP, retried over TCP after TC, attempts that timed out or failed. */
  readonly counters = { udp: 0, tcp: 0, timeouts: 0, errors: 0 };
  readonly #servers: string[] | undefined;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  #closed = false;

  constructor(options: NodeDnsUpstreamOptions = {}) {
    this.#servers = options.servers;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#attempts = Math.max(1, options.attempts ?? 2);
  }

  /** The servers asked, in order. */
  servers(): Server[] {
    return (this.#servers ?? getServers()).map(parseServer).filter((s): s is Server => s !== null);
  }

  async resolve(query: DnsMessage, options: { signal?: AbortSignal } = {}): Promise<DnsMessage> {
    const signal = options.signal;
    const servers = this.servers();
    if (servers.length === 0) throw new UpstreamError('ENOTFOUND', 'no name server configured (resolv.conf)');
    let last: unknown = null;
    let fallback: DnsMessage | null = null;
    for (let round = 0; round < this.#attempts; round++) {
      for (const server of servers) {
        if (this.#closed) throw new UpstreamError('ECANCELLED', 'upstream closed');
        if (signal?.aborted) throw new UpstreamError('ECANCELLED', 'the caller gave up');
        try {
          const id = randomInt(0x10000);
          const bytes = writeDns({ ...query, id });
          let answer = await this.#udp(server, bytes, query, id, signal);
          if (answer.tc) answer = await this.#tcp(server, bytes, query, id, signal);
          // SERVFAIL or REFUSED from one server: another may do better (as the libc resolver does).
          if ((answer.rcode === DnsRcode.SERVFAIL || answer.rcode === DnsRcode.REFUSED) && servers.length > 1) {
            fallback = answer;
            continue;
          }
          return { ...answer, id: query.id };
        } catch (e) {
          if ((e as { code?: unknown }).code === 'ETIMEOUT') this.counters.timeouts++;
          else this.counters.errors++;
          last = e;
        }
      }
    }
    if (fallback) return { ...fallback, id: query.id };
    throw last instanceof Error ? last : new UpstreamError('ETIMEOUT', 'no answer');
  }

  #udp(server: Server, bytes: Uint8Array, query: DnsMessage, id: number, signal: AbortSignal | undefined): Promise<DnsMessage> {
    this.counters.udp++;
    return new Promise<DnsMessage>((resolve, reject) => {
      const sock = createSocket(server.family === 6 ? 'udp6' : 'udp4');
      const done = this.#settleOnce(reject, signal, `${server.address}:${server.port} did not answer`, () => sock.close());
      sock.on('error', (e) => done(() => reject(e)));
      sock.on('message', (msg, rinfo) => {
        if (rinfo.address !== server.address || rinfo.port !== server.port) return;
        const m = parseDns(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
        if (typeof m === 'string' || !matches(query, id, m)) return; // not the answer: keep waiting
        done(() => resolve(m));
      });
      // Connected: ICMP port unreachable comes back as ECONNREFUSED instead of a timeout.
      sock.connect(server.port, server.address, () => sock.send(bytes));
    });
  }

  #tcp(server: Server, bytes: Uint8Array, query: DnsMessage, id: number, signal: AbortSignal | undefined): Promise<DnsMessage> {
    this.counters.tcp++;
    return new Promise<DnsMessage>((resolve, reject) => {
      const sock = connect({ host: server.address, port: server.port });
      const decoder = new DnsStreamDecoder();
      const done = this.#settleOnce(reject, signal, `${server.address}:${server.port} (TCP) did not answer`, () => sock.destroy());
      sock.on('error', (e) => done(() => reject(e)));
      sock.on('connect', () => sock.write(frameDns(bytes)));
      sock.on('data', (chunk: Buffer) => {
        for (const raw of decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
          const m = parseDns(raw);
          if (typeof m !== 'string' && matches(query, id, m)) {
            done(() => resolve(m));
            return;
          }
        }
      });
      sock.on('end', () => done(() => reject(new UpstreamError('ECONNRESET', `${server.address}:${server.port} closed before answering`))));
    });
  }

  /**
   * One exchange's end: `done(f)` runs `f` (a resolve or reject) the first time only, after clearing
   * the timer and abort listener and calling `release`; abort rejects ECANCELLED, the timeout ETIMEOUT.
   */
  #settleOnce(reject: (e: unknown) => void, signal: AbortSignal | undefined, timeoutMessage: string, release: () => void): (f: () => void) => void {
    let finished = false;
    const done = (f: () => void): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      release();
      f();
    };
    const abort = (): void => done(() => reject(new UpstreamError('ECANCELLED', 'the caller gave up')));
    signal?.addEventListener('abort', abort);
    const timer = setTimeout(() => done(() => reject(new UpstreamError('ETIMEOUT', timeoutMessage))), this.#timeoutMs);
    return done;
  }

  close(): void {
    this.#closed = true;
  }
}
