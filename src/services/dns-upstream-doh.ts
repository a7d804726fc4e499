/**
 * DNS over HTTPS (RFC 8484) as a DnsUpstream, through `fetch`: what a page in a browser can use to
 * resolve names for its stack. POST with the message as the body (§4.1), or GET with it in the `dns`
 * parameter, base64url without padding (§6). The ID goes out as 0 (§4.1: cache-friendly) and the
 * answer comes back with the caller's. Only a 2xx `application/dns-message` answer is an answer
 * (§4.2.1); anything else, or no answer in `timeoutMs`, rejects.
 */
import { parseDns, writeDns, type DnsMessage } from '../wire/dns.js';
import type { DnsUpstream } from './dns-server.js';

type FetchLike = (url: string, init: {
  method: string; headers: Record<string, string>; body?: Uint8Array; signal?: AbortSignal;
}) => Promise<{ ok: boolean; status: number; headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface DohUpstreamOptions {
  /** The DoH URI template without variables, e.g. 'https://dns.example/dns-query'. */
  url: string;
  /** Default 'POST'. */
  method?: 'POST' | 'GET';
  /** Default: globalThis.fetch. */
  fetch?: FetchLike;
  /** Default 5000 ms. */
  timeoutMs?: number;
}

const MEDIA_TYPE = 'application/dns-message';

function base64url(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export class DohUpstream implements DnsUpstream {
  readonly #url: string;
  readonly #method: 'POST' | 'GET';
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;

  constructor(options: DohUpstreamOptions) {
    this.#url = options.url;
    this.#method = options.method ?? 'POST';
    const f = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
    if (!f) throw new Error('synack DohUpstream: no fetch in this environment (pass options.fetch)');
    this.#fetch = f;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  async resolve(query: DnsMessage, options: { signal?: AbortSignal } = {}): Promise<DnsMessage> {
    const body = writeDns({ ...query, id: 0 });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    // The caller (the server, at its own timeout) may give up first.
    const abort = (): void => controller.abort();
    options.signal?.addEventListener('abort', abort);
    if (options.signal?.aborted) controller.abort();
    try {
      const res = this.#method === 'POST'
        ? await this.#fetch(this.#url, {
          method: 'POST', headers: { 'content-type': MEDIA_TYPE, accept: MEDIA_TYPE }, body, signal: controller.signal,
        })
        : await this.#fetch(`${this.#url}${this.#url.includes('?') ? '&' : '?'}dns=${base64url(body)}`, {
          method: 'GET', headers: { accept: MEDIA_TYPE }, signal: controller.signal,
        });
      if (!res.ok) throw new Error(`DoH ${this.#url}: HTTP ${res.status}`);
      const type = res.headers.get('content-type') ?? '';
      if (type.split(';')[0]!.trim().toLowerCase() !== MEDIA_TYPE) throw new Error(`DoH ${this.#url}: content-type ${type}`);
      const m = parseDns(new Uint8Array(await res.arrayBuffer()));
      if (typeof m === 'string') throw new Error(`DoH ${this.#url}: ${m}`);
      if (!m.qr) throw new Error(`DoH ${this.#url}: not a response`);
      return { ...m, id: query.id };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', abort);
    }
  }
}
