/**
 * How many queries a second the gateway's DNS server answers (issue 14's figures), for a static
 * name, a forwarded name answered from the cache, and a forwarded name not in the cache (the
 * upstream is in process and answers at once, so this is synack's cost, not a resolver's latency):
 *  - `DnsServer.handle` called directly with query bytes (parse, answer, write: the server alone);
 *  - `serveDns` on stack b, a client on stack a sending over the stacks' own UDP through a MemoryLink
 *    in real time, 32 queries in flight (both stacks and the link in this one process).
 * Every answer is checked (ID, RCODE, the address); the rates are diagnostics, never asserted.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { RealClock } from '../../src/link/clock.js';
import { DnsServer, serveDns, type DnsUpstream } from '../../src/services/dns-server.js';
import { DnsType, dnsQuery, parseDns, writeDns, type DnsMessage } from '../../src/wire/dns.js';
import { twoStacks } from '../socket/harness.js';

/** An upstream answering any name with an A record at once, counting what it is asked. */
function instantUpstream(): DnsUpstream & { asked: number } {
  const up = {
    asked: 0,
    resolve: (q: DnsMessage): Promise<DnsMessage> => {
      up.asked++;
      const name = q.questions[0]!.name;
      return Promise.resolve({
        ...q, qr: true, ra: true, edns: null,
        answers: [{ name, type: DnsType.A, class: 1, ttl: 300, data: { kind: 'A', address: '192.0.2.80' } }],
      });
    },
  };
  return up;
}

type Kind = 'static' | 'cached' | 'uncached';
const EXPECT: Record<Kind, string> = { static: '10.0.2.2', cached: '192.0.2.80', uncached: '192.0.2.80' };

function nameFor(kind: Kind, i: number): string {
  return kind === 'static' ? 'host.lan' : kind === 'cached' ? 'www.example.com' : `n${i}.example.com`;
}

/** Checks an answer; `id` is the query's ID, or the set of IDs in flight (the answer's is taken out). */
function check(bytes: Uint8Array, id: number | Set<number>, kind: Kind): void {
  const m = parseDns(bytes);
  assert.ok(typeof m !== 'string', m as string);
  if (typeof id === 'number') assert.equal(m.id, id);
  else assert.ok(id.delete(m.id), `answer ID ${m.id} not in flight`);
  assert.equal(m.rcode, 0);
  assert.deepEqual(m.answers.map((r) => r.data), [{ kind: 'A', address: EXPECT[kind] }], `${kind} answer`);
}

function rate(n: number, ms: number): string {
  return `${Math.round(n / (ms / 1000)).toLocaleString('en-US')}/s`;
}

test('DnsServer.handle alone: answers per second for a static, a cached forwarded and an uncached forwarded name', async (t: TestContext) => {
  const N = 10_000;
  const up = instantUpstream();
  const server = new DnsServer({ clock: new RealClock(), records: { 'host.lan': '10.0.2.2' }, localDomain: 'lan', upstream: up, cacheEntries: 1000 });
  const ctx = { transport: 'udp' as const, source: '10.0.2.15:5353' };
  const line: string[] = [];
  for (const kind of ['static', 'cached', 'uncached'] as const) {
    // A warm-up round per kind, untimed (the JIT, and the cache for the cached name): other names.
    for (let i = 0; i < 2000; i++) await server.handle(writeDns(dnsQuery(i, nameFor(kind, N + i), DnsType.A)), ctx);
    const queries = Array.from({ length: N }, (_, i) => writeDns(dnsQuery(i & 0xffff, nameFor(kind, i), DnsType.A)));
    const askedBefore = up.asked;
    const t0 = performance.now();
    const answers: Uint8Array[] = [];
    for (const q of queries) answers.push((await server.handle(q, ctx))!);
    const ms = performance.now() - t0;
    answers.forEach((a, i) => check(a, i & 0xffff, kind));
    assert.equal(up.asked - askedBefore, kind === 'uncached' ? N : 0, `${kind}: upstream queries`);
    line.push(`${kind} ${rate(N, ms)}`);
  }
  t.diagnostic(`DnsServer.handle, ${N} queries each, one at a time: ${line.join(', ')}`);
  assert.ok(server.counters.cacheHits >= N);
});

test('serveDns over two stacks on a MemoryLink in real time: answers per second, 32 queries in flight', async (t: TestContext) => {
  const N = 5_000;
  const WINDOW = 32;
  const net = twoStacks('real');
  const up = instantUpstream();
  const service = serveDns(net.b, { records: { 'host.lan': '10.0.2.2' }, localDomain: 'lan', upstream: up, tcp: false });
  const client = net.a.udpBind({ family: 4 });
  try {
    const line: string[] = [];
    for (const kind of ['cached', 'static', 'cached', 'uncached'] as const) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        let sent = 0;
        let got = 0;
        const inFlight = new Set<number>();
        const timer = setTimeout(() => reject(new Error(`${kind}: ${got} of ${N} answers in 20 s`)), 20_000);
        const send = (): void => {
          const i = sent++;
          inFlight.add(i & 0xffff);
          client.send(writeDns(dnsQuery(i & 0xffff, nameFor(kind, i), DnsType.A)), '10.0.0.2', 53);
        };
        client.onMessage = (data) => {
          try {
            check(data, inFlight, kind);
          } catch (e) {
            clearTimeout(timer);
            reject(e as Error);
            return;
          }
          got++;
          if (got === N) {
            clearTimeout(timer);
            resolve();
          } else if (sent < N) send();
        };
        for (let k = 0; k < WINDOW && sent < N; k++) send();
      });
      const ms = performance.now() - t0;
      // The first 'cached' round fills the cache (and warms up): only the second is reported.
      if (line.length > 0 || kind !== 'cached') line.push(`${kind} ${rate(N, ms)}`);
      else line.push('');
    }
    t.diagnostic(`serveDns over MemoryLink (real time), ${N} queries each: ${line.filter((s) => s !== '').join(', ')}`);
    assert.equal(net.b.counters.internalErrors + net.a.counters.internalErrors, 0);
  } finally {
    client.close();
    service.close();
  }
});
