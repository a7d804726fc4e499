/**
 * DohUpstream (RFC 8484) with the real `fetch` against a DoH endpoint on 127.0.0.1 (node:http
 * answering from a DnsServer), POST and GET, and with a fetch stand-in for the failure cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VirtualClock } from '../../src/link/clock.js';
import { DnsServer } from '../../src/services/dns-server.js';
import { DohUpstream } from '../../src/services/dns-upstream-doh.js';
import { DnsType, dnsQuery } from '../../src/wire/dns.js';

test('DohUpstream: POST and GET to a DoH endpoint on loopback; ID 0 on the wire, the caller\'s back', async () => {
  const dns = new DnsServer({ clock: new VirtualClock(), records: { 'doh.test': '192.0.2.53' } });
  const seen: { method: string; type: string | undefined; id: number }[] = [];
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Uint8Array;
      if (req.method === 'GET') {
        const q = new URL(req.url ?? '', 'http://x').searchParams.get('dns') ?? '';
        assert.ok(!q.includes('=') && !q.includes('+') && !q.includes('/'), 'base64url without padding');
        body = new Uint8Array(Buffer.from(q, 'base64url'));
      } else body = new Uint8Array(Buffer.concat(chunks));
      seen.push({ method: req.method ?? '', type: req.headers['content-type'], id: (body[0]! << 8) | body[1]! });
      void dns.handle(body, { transport: 'tcp', source: 'doh' }).then((out) => {
        res.writeHead(200, { 'content-type': 'application/dns-message' });
        res.end(out);
      });
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/dns-query`;
  try {
    for (const method of ['POST', 'GET'] as const) {
      const up = new DohUpstream({ url, method });
      const m = await up.resolve(dnsQuery(0x5151, 'doh.test', DnsType.A));
      assert.equal(m.id, 0x5151);
      assert.deepEqual(m.answers.map((r) => r.data), [{ kind: 'A', address: '192.0.2.53' }]);
    }
    assert.deepEqual(seen, [
      { method: 'POST', type: 'application/dns-message', id: 0 },
      { method: 'GET', type: undefined, id: 0 },
    ]);
  } finally {
    await new Promise<void>((r) => http.close(() => r()));
  }
});

test('DohUpstream rejects an HTTP error, another content type, a body that is no DNS response, and a timeout', async () => {
  const reply = (status: number, type: string, body: Uint8Array) => () => Promise.resolve({
    ok: status >= 200 && status < 300, status, headers: { get: (n: string) => (n === 'content-type' ? type : null) },
    arrayBuffer: () => Promise.resolve(body.slice().buffer),
  });
  const q = dnsQuery(1, 'x.test', 1);
  await assert.rejects(new DohUpstream({ url: 'https://doh.invalid/q', fetch: reply(500, 'text/plain', new Uint8Array()) }).resolve(q), /HTTP 500/);
  await assert.rejects(new DohUpstream({ url: 'https://doh.invalid/q', fetch: reply(200, 'text/html', new Uint8Array(20)) }).resolve(q), /content-type/);
  await assert.rejects(new DohUpstream({ url: 'https://doh.invalid/q', fetch: reply(200, 'application/dns-message', new Uint8Array(3)) }).resolve(q), /dns-truncated/);
  const echo = (_u: string, init: { body?: Uint8Array }) => reply(200, 'application/dns-message', init.body!)();
  await assert.rejects(new DohUpstream({ url: 'https://doh.invalid/q', fetch: echo }).resolve(q), /not a response/);
  const hang = (_u: string, init: { signal?: AbortSignal }) => new Promise<never>((_, reject) => {
    init.signal?.addEventListener('abort', () => reject(new Error('aborted')));
  });
  await assert.rejects(new DohUpstream({ url: 'https://doh.invalid/q', fetch: hang, timeoutMs: 50 }).resolve(q), /aborted/);
  // The caller's signal (the server at its own timeout) aborts the request too.
  const caller = new AbortController();
  const pending = new DohUpstream({ url: 'https://doh.invalid/q', fetch: hang, timeoutMs: 60_000 }).resolve(q, { signal: caller.signal });
  caller.abort();
  await assert.rejects(pending, /aborted/);
});
