/**
 * "No input escapes" for the DNS server: serveDns on one stack takes 20,000 datagrams on UDP port 53
 * from another stack (random bytes, mutated queries, compression-pointer loops, huge counts, runts,
 * responses, and queries for ever new names that go to an upstream which answers, lies, fails or
 * hangs) and TCP connections carrying garbage, a length prefix that never completes, and queries.
 * Afterwards: nothing was thrown, every datagram is either a query answered or a counted drop, every
 * answer is a well-formed response with the query's ID, the cache and the upstream queries in flight
 * stayed within their bounds, idle TCP connections were closed, and a legitimate lookup still works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/link/rng.js';
import { serveDns, type DnsUpstream } from '../../src/services/dns-server.js';
import { dnsLookup } from '../../src/services/dns-stub.js';
import { frameDns } from '../../src/services/dns-transport.js';
import { dnsQuery, parseDns, writeDns, type DnsMessage } from '../../src/wire/dns.js';
import { twoStacks } from '../socket/harness.js';
import { mutate, randomBytes } from './gen.js';

const DATAGRAMS = 20_000;
const CACHE = 64;
const MAX_PENDING = 32;

test('DNS server flood: no exception, every datagram counted, answers well-formed, cache and in-flight bounded', { timeout: 120_000 }, async () => {
  const rng = new Rng(53);
  const { a, b, clock, sleep, run } = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  let inflight = 0;
  let maxInflight = 0;
  const upstream: DnsUpstream = {
    resolve: (q: DnsMessage) => {
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      const settle = <T>(p: Promise<T>): Promise<T> => {
        const done = (): void => {
          inflight--;
        };
        p.then(done, done);
        return p;
      };
      const kind = rng.int(0, 3);
      if (kind === 0) {
        // A true answer with a TTL: fills the cache.
        return settle(Promise.resolve({
          ...q, qr: true, ra: true,
          answers: [{ name: q.questions[0]!.name, type: 1, class: 1, ttl: 300, data: { kind: 'A' as const, address: '192.0.2.1' } }],
        }));
      }
      if (kind === 1) return settle(Promise.resolve({ ...q, qr: true, questions: [{ name: 'lie.test', type: 1, class: 1 }] }));
      if (kind === 2) return settle(Promise.reject(new Error('upstream failed')));
      // Hangs until the server's timeout; settles later so the counter sees it end.
      return settle(new Promise<DnsMessage>((resolve) => {
        clock.schedule(clock.now() + 1500, () => resolve({ ...q, qr: true }));
      }));
    },
  };
  const service = serveDns(b, {
    records: { 'gw.lan': '10.0.0.2' }, localDomain: 'lan', upstream, cacheEntries: CACHE, maxPending: MAX_PENDING,
    upstreamTimeoutMs: 500, tcpIdleMs: 2000,
  });
  const server = service.server;

  let maxCache = 0;
  const client = a.udpBind({});
  let answers = 0;
  client.onMessage = (data) => {
    const m = parseDns(data);
    assert.ok(typeof m !== 'string', `an answer that does not parse: ${String(m)}`);
    assert.equal(m.qr, true);
    answers++;
  };
  const valid = (): Uint8Array => writeDns(dnsQuery(rng.int(0, 0xffff), rng.int(0, 3) === 0 ? 'gw.lan' : `n${rng.int(0, 5000)}.example.test`,
    [1, 28, 16, 255][rng.int(0, 3)]!, { edns: rng.int(0, 1) === 0 ? null : { udpPayloadSize: rng.int(0, 4096) } }));
  const loop = (): Uint8Array => {
    const b2 = valid();
    // The question name becomes a pointer to itself, or to a later offset.
    b2[12] = 0xc0;
    b2[13] = rng.int(0, 1) === 0 ? 12 : rng.int(12, 255);
    return b2;
  };
  const huge = (): Uint8Array => {
    const b2 = valid();
    for (let i = 4; i < 12; i++) b2[i] = rng.int(0, 255);
    return b2;
  };
  const kinds: (() => Uint8Array)[] = [
    () => randomBytes(rng, rng.int(0, 600)),
    () => mutate(rng, valid()),
    loop,
    huge,
    () => randomBytes(rng, rng.int(0, 11)),
    () => {
      const r = valid();
      r[2]! |= 0x80; // a response: never answered
      return r;
    },
    valid,
  ];
  for (let i = 0; i < DATAGRAMS; i++) {
    client.send(kinds[rng.int(0, kinds.length - 1)]!(), '10.0.0.2', 53);
    if (i % 200 === 199) {
      await sleep(50);
      maxCache = Math.max(maxCache, server.cacheSize);
    }
  }
  await sleep(2000);
  const d = server.counters.dropped;
  assert.equal(server.counters.queries + (d['too-short'] ?? 0) + (d['response'] ?? 0), DATAGRAMS, 'every datagram is a query or a counted drop');
  assert.equal(server.counters.answered, server.counters.queries, 'every query answered');
  assert.ok((d['dns-pointer-loop'] ?? 0) > 0 && (d['dns-bad-count'] ?? 0) > 0 && (d['too-short'] ?? 0) > 0 && (d['response'] ?? 0) > 0, JSON.stringify(d));
  assert.equal(answers, server.counters.answered, 'every answer reached the client and parsed');

  // TCP: garbage, a length prefix whose message never comes, and a real query after garbage framing.
  const tcpClosed: boolean[] = [];
  for (let k = 0; k < 6; k++) {
    const c = a.tcpConnect({ host: '10.0.0.2', port: 53 });
    const idx = tcpClosed.push(false) - 1;
    c.events = {
      onReadable: () => {
        while (c.read()) { /* discard */ }
      },
      onEnd: () => c.close(),
      onClosed: () => {
        tcpClosed[idx] = true;
      },
    };
    await sleep(20);
    if (k % 3 === 0) c.write(randomBytes(rng, 3000));
    else if (k % 3 === 1) c.write(Uint8Array.of(0xff, 0xff, 1, 2, 3));
    else c.write(new Uint8Array([...frameDns(randomBytes(rng, 40)), ...frameDns(valid())]));
  }
  await sleep(10_000);

  assert.equal(maxCache, CACHE, 'the cache filled up to its bound and no further');
  assert.ok(server.cacheSize <= CACHE);
  assert.equal(maxInflight, MAX_PENDING, 'upstream queries in flight reached the bound and no further');
  assert.ok((server.counters.dropped['upstream-busy'] ?? 0) > 0);
  assert.ok(server.counters.servfail > 0 && server.counters.forwarded > 0);
  assert.deepEqual(tcpClosed, new Array<boolean>(6).fill(true), 'every TCP connection closed (idle timeout or peer)');
  assert.equal(a.counters.internalErrors ?? 0, 0);
  assert.equal(b.counters.internalErrors ?? 0, 0);
  assert.deepEqual(await run(dnsLookup(a, 'gw.lan')), { address: '10.0.0.2', family: 4 });
  client.close();
  service.close();
});
