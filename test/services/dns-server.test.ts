import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualClock } from '../../src/link/clock.js';
import { DnsServer, type DnsQueryEvent, type DnsServerOptions, type DnsStaticRecords, type DnsUpstream } from '../../src/services/dns-server.js';
import {
  DnsRcode, DnsType, dnsQuery, parseDns, writeDns, type DnsMessage, type DnsRecord,
} from '../../src/wire/dns.js';

function msg(x: DnsMessage | string | null): DnsMessage {
  if (x === null) assert.fail('expected an answer, got none');
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

async function ask(server: DnsServer, q: DnsMessage, transport: 'udp' | 'tcp' = 'udp'): Promise<DnsMessage> {
  const out = await server.handle(writeDns(q), { transport, source: '10.0.2.15:5353' });
  return msg(out && parseDns(out));
}

const RECORDS: DnsServerOptions['records'] = {
  'gw.lan': ['10.0.2.2', 'fd00::2'],
  'Printer.lan': '10.0.2.9',
  'www.lan': { cname: 'gw.lan' },
  'away.lan': { cname: 'example.com' },
  'info.lan': { txt: ['hello', 'world'], ttl: 5 },
  '_http._tcp.lan': { srv: [{ port: 8080, target: 'gw.lan', priority: 1 }] },
};

/** An upstream that answers from a table, counting calls; `hold` keeps answers until released. */
class FakeUpstream implements DnsUpstream {
  calls: DnsMessage[] = [];
  fail = false;
  hang = false;
  constructor(readonly table: Record<string, (q: DnsMessage) => Partial<DnsMessage>>) {}
  resolve(query: DnsMessage): Promise<DnsMessage> {
    this.calls.push(query);
    if (this.hang) return new Promise(() => undefined);
    if (this.fail) return Promise.reject(new Error('upstream down'));
    const q = query.questions[0]!;
    const key = q.name.toLowerCase();
    const make = Object.hasOwn(this.table, key) ? this.table[key] : undefined;
    const base: DnsMessage = { ...query, qr: true, ra: true, rcode: make ? 0 : DnsRcode.NXDOMAIN, id: 999 };
    return Promise.resolve({ ...base, ...(make ? make(query) : {}) });
  }
}

const a = (name: string, address: string, ttl: number): DnsRecord => ({ name, type: 1, class: 1, ttl, data: { kind: 'A', address } });
const soa = (zone: string, ttl: number, minimum: number): DnsRecord => ({
  name: zone, type: DnsType.SOA, class: 1, ttl,
  data: { kind: 'SOA', mname: `ns.${zone}`, rname: `h.${zone}`, serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

test('static names: A and AAAA with authority, ID, RD and the question (in its case) echoed, RA clear without an upstream', async () => {
  const server = new DnsServer({ clock: new VirtualClock(), records: RECORDS, localDomain: 'lan' });
  const r = await ask(server, { ...dnsQuery(0x1234, 'GW.Lan', DnsType.A), rd: false });
  assert.equal(r.id, 0x1234);
  assert.deepEqual([r.qr, r.aa, r.tc, r.rd, r.ra, r.rcode], [true, true, false, false, false, 0]);
  assert.deepEqual(r.questions, [{ name: 'GW.Lan', type: 1, class: 1 }]);
  assert.deepEqual(r.answers, [a('GW.Lan', '10.0.2.2', 60)]);
  const r6 = await ask(server, dnsQuery(2, 'gw.lan', DnsType.AAAA));
  assert.deepEqual(r6.answers.map((x) => x.data), [{ kind: 'AAAA', address: 'fd00::2' }]);
  assert.equal(r6.rd, true);
  assert.equal(r6.edns, null, 'no OPT in answer to a query without one');
});

test('PTR records are made for static addresses (in-addr.arpa and ip6.arpa)', async () => {
  const server = new DnsServer({ clock: new VirtualClock(), records: RECORDS });
  const r = await ask(server, dnsQuery(1, '9.2.0.10.in-addr.arpa', DnsType.PTR));
  assert.deepEqual(r.answers.map((x) => x.data), [{ kind: 'PTR', name: 'Printer.lan' }]);
  assert.equal(r.aa, true);
  const v6 = `2.${'0.'.repeat(29)}d.f.ip6.arpa`;
  const r6 = await ask(server, dnsQuery(1, v6, DnsType.PTR));
  assert.deepEqual(r6.answers.map((x) => x.data), [{ kind: 'PTR', name: 'gw.lan' }]);
});

test('NXDOMAIN with the SOA under the local domain; NODATA for a type a static name lacks; CNAME, TXT and SRV', async () => {
  const server = new DnsServer({ clock: new VirtualClock(), records: RECORDS, localDomain: 'lan', negativeTtl: 30 });
  const nx = await ask(server, dnsQuery(1, 'nothere.lan', DnsType.A));
  assert.equal(nx.rcode, DnsRcode.NXDOMAIN);
  assert.equal(nx.aa, true);
  assert.equal(nx.authorities[0]!.type, DnsType.SOA);
  assert.equal(nx.authorities[0]!.data.kind === 'SOA' && nx.authorities[0]!.data.minimum, 30);
  const nodata = await ask(server, dnsQuery(1, 'printer.lan', DnsType.AAAA));
  assert.deepEqual([nodata.rcode, nodata.answers.length, nodata.authorities.length], [0, 0, 1]);
  const cname = await ask(server, dnsQuery(1, 'www.lan', DnsType.A));
  assert.deepEqual(cname.answers.map((x) => [x.name, x.type]), [['www.lan', DnsType.CNAME], ['gw.lan', DnsType.A]]);
  // A CNAME out of our names: the alias alone; the client follows it.
  const away = await ask(server, dnsQuery(1, 'away.lan', DnsType.A));
  assert.deepEqual(away.answers.map((x) => x.data), [{ kind: 'CNAME', name: 'example.com' }]);
  const txt = await ask(server, dnsQuery(1, 'info.lan', DnsType.TXT));
  assert.deepEqual(txt.answers.map((x) => x.data.kind === 'TXT' && x.data.strings.map((s) => new TextDecoder().decode(s))), [['hello', 'world']]);
  assert.equal(txt.answers[0]!.ttl, 5);
  const srv = await ask(server, dnsQuery(1, '_http._tcp.lan', DnsType.SRV));
  assert.deepEqual(srv.answers[0]!.data, { kind: 'SRV', priority: 1, weight: 0, port: 8080, target: 'gw.lan' });
  // Static-only: any other name is NXDOMAIN (nothing to forward to).
  const other = await ask(server, dnsQuery(1, 'example.com', DnsType.A));
  assert.deepEqual([other.rcode, other.aa, other.ra], [DnsRcode.NXDOMAIN, false, false]);
  assert.throws(() => new DnsServer({ clock: new VirtualClock(), records: { x: { cname: 'y', addresses: ['1.2.3.4'] } } }), RangeError);
  for (const records of [{ 'a..b': '1.2.3.4' }, { x: 'not-an-address' }, { x: { cname: `${'l'.repeat(64)}.lan` } }, { x: { addresses: ['1.2.3.4'], ttl: -1 } }] as DnsStaticRecords[]) {
    assert.throws(() => new DnsServer({ clock: new VirtualClock(), records }), RangeError, JSON.stringify(records));
  }
});

test('localhost (RFC 6761) and private reverse names (RFC 6303) are answered here, never forwarded', async () => {
  const up = new FakeUpstream({});
  const server = new DnsServer({ clock: new VirtualClock(), upstream: up });
  const lh = await ask(server, dnsQuery(1, 'localhost', DnsType.A));
  assert.deepEqual(lh.answers.map((x) => x.data), [{ kind: 'A', address: '127.0.0.1' }]);
  const lh6 = await ask(server, dnsQuery(1, 'foo.localhost', DnsType.AAAA));
  assert.deepEqual(lh6.answers.map((x) => x.data), [{ kind: 'AAAA', address: '::1' }]);
  for (const name of ['5.2.0.10.in-addr.arpa', '1.1.168.192.in-addr.arpa', '1.0.20.172.in-addr.arpa', 'x.invalid']) {
    const r = await ask(server, dnsQuery(1, name, DnsType.PTR));
    assert.equal(r.rcode, DnsRcode.NXDOMAIN, name);
    assert.equal(r.aa, true);
  }
  assert.equal(up.calls.length, 0);
});

test('FORMERR, NOTIMP, REFUSED and BADVERS as the RFCs say; responses and runts are not answered', async () => {
  const server = new DnsServer({ clock: new VirtualClock(), records: RECORDS });
  // Garbage after a header: FORMERR with the ID.
  const garbage = Uint8Array.of(0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1);
  const fe = msg(parseDns((await server.handle(garbage, { transport: 'udp', source: 's' }))!));
  assert.deepEqual([fe.id, fe.rcode, fe.qr, fe.rd, fe.questions.length], [0xabcd, DnsRcode.FORMERR, true, true, 0]);
  assert.equal(server.counters.dropped['dns-pointer-loop'], 1);
  assert.equal(await server.handle(new Uint8Array(5), { transport: 'udp', source: 's' }), null);
  const response = writeDns({ ...dnsQuery(1, 'gw.lan', 1), qr: true });
  assert.equal(await server.handle(response, { transport: 'udp', source: 's' }), null);
  assert.deepEqual(server.counters.dropped, { 'dns-pointer-loop': 1, 'too-short': 1, response: 1 });
  const two = await ask(server, { ...dnsQuery(1, 'gw.lan', 1), questions: [{ name: 'a', type: 1, class: 1 }, { name: 'b', type: 1, class: 1 }] });
  assert.equal(two.rcode, DnsRcode.FORMERR);
  const status = await ask(server, { ...dnsQuery(1, 'gw.lan', 1), opcode: 2 });
  assert.equal(status.rcode, DnsRcode.NOTIMP);
  const axfr = await ask(server, dnsQuery(1, 'lan', DnsType.AXFR));
  assert.equal(axfr.rcode, DnsRcode.REFUSED);
  const chaos = await ask(server, dnsQuery(1, 'version.bind', DnsType.TXT, { class: 3 }));
  assert.equal(chaos.rcode, DnsRcode.REFUSED);
  const v1 = await ask(server, dnsQuery(1, 'gw.lan', 1, { edns: { version: 1 } }));
  assert.equal(v1.rcode, DnsRcode.BADVERS);
  assert.equal(v1.edns!.version, 0);
  assert.deepEqual([server.counters.formerr, server.counters.notimp, server.counters.refused], [2, 1, 2]);
});

test('EDNS is echoed with our payload size; UDP answers are cut to 512 (no EDNS) or the client size with TC; TCP is whole', async () => {
  const many = Array.from({ length: 60 }, (_, i) => `10.1.0.${i + 1}`);
  const server = new DnsServer({ clock: new VirtualClock(), records: { 'many.lan': many } });
  const plain = await ask(server, dnsQuery(1, 'many.lan', 1));
  assert.deepEqual([plain.tc, plain.answers.length], [true, 0]);
  const big = await ask(server, dnsQuery(1, 'many.lan', 1, { edns: { udpPayloadSize: 4096 } }));
  assert.deepEqual([big.tc, big.answers.length, big.edns!.udpPayloadSize], [false, 60, 1232]);
  const tcp = await ask(server, dnsQuery(1, 'many.lan', 1), 'tcp');
  assert.deepEqual([tcp.tc, tcp.answers.length], [false, 60]);
  // A client that advertises less than 512 still gets 512 (RFC 6891 §6.2.3).
  const small = await ask(server, dnsQuery(1, 'many.lan', 1, { edns: { udpPayloadSize: 100 } }));
  assert.equal(small.tc, true);
  assert.equal(server.counters.truncated, 2);
});

test('forwarding: the upstream answer passes through with RA; the cache answers next, with TTLs counting down, until they run out', async () => {
  const clock = new VirtualClock();
  const up = new FakeUpstream({ 'example.com': () => ({ answers: [a('example.com', '192.0.2.1', 100)] }) });
  const events: DnsQueryEvent[] = [];
  const server = new DnsServer({ clock, upstream: up, onQuery: (e) => events.push(e) });
  const r = await ask(server, dnsQuery(7, 'Example.com', 1));
  assert.deepEqual([r.id, r.rcode, r.aa, r.ra], [7, 0, false, true]);
  assert.deepEqual(r.answers, [a('example.com', '192.0.2.1', 100)]);
  assert.equal(up.calls.length, 1);
  assert.equal(up.calls[0]!.rd, true);
  clock.advanceSync(30_000);
  const c = await ask(server, dnsQuery(8, 'EXAMPLE.COM', 1));
  assert.equal(up.calls.length, 1, 'from the cache');
  assert.deepEqual(c.answers, [a('EXAMPLE.COM', '192.0.2.1', 70)]);
  assert.equal(server.counters.cacheHits, 1);
  clock.advanceSync(71_000);
  await ask(server, dnsQuery(9, 'example.com', 1));
  assert.equal(up.calls.length, 2, 'expired');
  assert.deepEqual(events.map((e) => [e.name, e.type, e.rcode, e.cached, e.forwarded, e.source]), [
    ['Example.com', 'A', 'NOERROR', false, true, '10.0.2.15:5353'],
    ['EXAMPLE.COM', 'A', 'NOERROR', true, false, '10.0.2.15:5353'],
    ['example.com', 'A', 'NOERROR', false, true, '10.0.2.15:5353'],
  ]);
});

test('negative caching (RFC 2308 §5): min(SOA TTL, MINIMUM) capped; without an SOA not cached', async () => {
  const clock = new VirtualClock();
  const up = new FakeUpstream({
    'nodata.test': () => ({ authorities: [soa('test', 600, 40)] }),
    'bare.test': () => ({ rcode: DnsRcode.NXDOMAIN }),
  });
  const server = new DnsServer({ clock, upstream: up, negativeCacheCap: 900 });
  const nx = await ask(server, dnsQuery(1, 'gone.test', 1));
  assert.equal(nx.rcode, DnsRcode.NXDOMAIN);
  await ask(server, dnsQuery(1, 'gone.test', 1));
  assert.equal(up.calls.length, 2, 'NXDOMAIN without SOA: not cached');
  await ask(server, dnsQuery(1, 'nodata.test', 1));
  clock.advanceSync(39_000);
  const cached = await ask(server, dnsQuery(1, 'nodata.test', 1));
  assert.equal(up.calls.length, 3);
  assert.deepEqual([cached.rcode, cached.answers.length, cached.authorities[0]!.ttl], [0, 0, 561]);
  clock.advanceSync(2_000);
  await ask(server, dnsQuery(1, 'nodata.test', 1));
  assert.equal(up.calls.length, 4, 'negative TTL was the SOA MINIMUM, 40 s');
});

test('the cache is bounded in entries, least recently used out first', async () => {
  const clock = new VirtualClock();
  const table: Record<string, () => Partial<DnsMessage>> = {};
  for (const n of ['a.test', 'b.test', 'c.test']) table[n] = () => ({ answers: [a(n, '192.0.2.1', 300)] });
  const up = new FakeUpstream(table);
  const server = new DnsServer({ clock, upstream: up, cacheEntries: 2 });
  await ask(server, dnsQuery(1, 'a.test', 1));
  await ask(server, dnsQuery(1, 'b.test', 1));
  await ask(server, dnsQuery(1, 'a.test', 1)); // a is now the most recent
  await ask(server, dnsQuery(1, 'c.test', 1)); // b goes
  assert.equal(server.cacheSize, 2);
  assert.equal(up.calls.length, 3);
  await ask(server, dnsQuery(1, 'a.test', 1));
  assert.equal(up.calls.length, 3);
  await ask(server, dnsQuery(1, 'b.test', 1));
  assert.equal(up.calls.length, 4);
});

test('SERVFAIL when the upstream fails or does not answer in time; identical queries in flight share one upstream query', async () => {
  const clock = new VirtualClock();
  const up = new FakeUpstream({ 'x.test': () => ({ answers: [a('x.test', '192.0.2.3', 60)] }) });
  const events: DnsQueryEvent[] = [];
  const server = new DnsServer({ clock, upstream: up, upstreamTimeoutMs: 2000, onQuery: (e) => events.push(e) });
  up.fail = true;
  const f = await ask(server, dnsQuery(1, 'x.test', 1));
  assert.deepEqual([f.rcode, f.ra], [DnsRcode.SERVFAIL, true]);
  up.fail = false;
  up.hang = true;
  const p1 = ask(server, dnsQuery(2, 'y.test', 1));
  const p2 = ask(server, dnsQuery(3, 'Y.test', 1));
  await clock.advance(2500);
  const [r1, r2] = await Promise.all([p1, p2]);
  assert.deepEqual([r1.rcode, r1.id, r2.rcode, r2.id], [DnsRcode.SERVFAIL, 2, DnsRcode.SERVFAIL, 3]);
  assert.equal(up.calls.length, 2, 'one failed query, then one shared by two clients');
  assert.deepEqual(events.map((e) => [e.rcode, e.elapsedMs]), [['SERVFAIL', 0], ['SERVFAIL', 2000], ['SERVFAIL', 2000]]);
  assert.equal(server.counters.servfail, 3);
  // An upstream answer to a different question is not believed.
  const liar: DnsUpstream = { resolve: (q) => Promise.resolve({ ...q, qr: true, questions: [{ name: 'evil.test', type: 1, class: 1 }] }) };
  const s2 = new DnsServer({ clock, upstream: liar });
  assert.equal((await ask(s2, dnsQuery(1, 'z.test', 1))).rcode, DnsRcode.SERVFAIL);
});

test('setRecord adds and removes a static name (a DHCP lease) and its PTR', async () => {
  const server = new DnsServer({ clock: new VirtualClock(), localDomain: 'lan' });
  server.setRecord('guest.lan', '10.0.2.15');
  assert.equal((await ask(server, dnsQuery(1, 'guest.lan', 1))).answers.length, 1);
  assert.equal((await ask(server, dnsQuery(1, '15.2.0.10.in-addr.arpa', DnsType.PTR))).answers.length, 1);
  server.setRecord('guest.lan', null);
  assert.equal((await ask(server, dnsQuery(1, 'guest.lan', 1))).rcode, DnsRcode.NXDOMAIN);
});

test('property: any bytes in, never a throw; an answer is a response with the query\'s ID that fits the UDP limit', async () => {
  const many = Array.from({ length: 80 }, (_, i) => `10.3.${i >> 8}.${i & 255}`);
  const server = new DnsServer({ clock: new VirtualClock(), records: { ...RECORDS, 'many.lan': many }, localDomain: 'lan' });
  const names = fc.constantFrom('gw.lan', 'many.lan', 'www.lan', 'info.lan', 'x.lan', 'example.com', '', 'localhost', '9.2.0.10.in-addr.arpa');
  const query = fc.record({
    id: fc.integer({ min: 0, max: 0xffff }), name: names, type: fc.constantFrom(1, 28, 5, 12, 16, 33, 255, 252, 41, 99),
    klass: fc.constantFrom(1, 3, 255), rd: fc.boolean(), edns: fc.option(fc.integer({ min: 0, max: 0xffff })),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 3 }), tcp: fc.boolean(),
  });
  await fc.assert(fc.asyncProperty(query, async (x) => {
    const q = dnsQuery(x.id, x.name, x.type, { rd: x.rd, class: x.klass, edns: x.edns === null ? null : { udpPayloadSize: x.edns } });
    const bytes = writeDns(q);
    for (const [at, bit] of x.flips) bytes[at % bytes.length]! ^= 1 << bit;
    const out = await server.handle(bytes, { transport: x.tcp ? 'tcp' : 'udp', source: 'p' });
    if (out === null) {
      assert.ok(bytes.length < 12 || (bytes[2]! & 0x80) !== 0, 'only runts and responses go unanswered');
      return;
    }
    const r = msg(parseDns(out));
    assert.equal(r.qr, true);
    assert.equal(r.id, (bytes[0]! << 8) | bytes[1]!);
    const parsed = parseDns(bytes);
    if (typeof parsed !== 'string') {
      if (r.rcode !== DnsRcode.FORMERR) assert.deepEqual(r.questions, parsed.questions);
      assert.equal(r.rd, parsed.rd);
      assert.equal(r.edns !== null, parsed.edns !== null, 'OPT back exactly when the query had one (RFC 6891 §7)');
      if (!x.tcp) assert.ok(out.length <= Math.max(512, Math.min(parsed.edns?.udpPayloadSize ?? 512, 1232)), `${out.length} bytes`);
    }
  }), { numRuns: 600 });
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (b) => {
    const out = await server.handle(b, { transport: 'udp', source: 'p' });
    if (out !== null) assert.equal(msg(parseDns(out)).id, (b[0]! << 8) | b[1]!);
  }), { numRuns: 1000 });
});

test('an upstream answer that cannot be written for this client (extended RCODE, no EDNS) becomes SERVFAIL', async () => {
  const badCookie: DnsUpstream = { resolve: (q) => Promise.resolve({ ...q, qr: true, rcode: 23 }) };
  const server = new DnsServer({ clock: new VirtualClock(), upstream: badCookie, cacheEntries: 0 });
  const plain = await ask(server, dnsQuery(1, 'x.test', 1));
  assert.equal(plain.rcode, DnsRcode.SERVFAIL);
  assert.equal(server.counters.dropped['unwritable-answer'], 1);
  // With EDNS the extended RCODE can be said, and is passed on.
  const edns = await ask(server, dnsQuery(2, 'x.test', 1, { edns: {} }));
  assert.equal(edns.rcode, 23);
});

test('a CNAME of ours to a name elsewhere is followed upstream; to a missing name of ours it is NXDOMAIN (RFC 6604)', async () => {
  const up = new FakeUpstream({ 'example.com': () => ({ answers: [a('example.com', '192.0.2.1', 100)] }) });
  const server = new DnsServer({
    clock: new VirtualClock(), upstream: up, localDomain: 'lan',
    records: { 'away.lan': { cname: 'example.com' }, 'dangling.lan': { cname: 'ghost.lan' } },
  });
  const r = await ask(server, dnsQuery(1, 'away.lan', 1));
  assert.deepEqual([r.rcode, r.aa], [0, false]);
  assert.deepEqual(r.answers.map((x) => [x.name, x.type]), [['away.lan', DnsType.CNAME], ['example.com', DnsType.A]]);
  assert.deepEqual(up.calls.map((c) => c.questions[0]!.name), ['example.com']);
  const d = await ask(server, dnsQuery(2, 'dangling.lan', 1));
  assert.deepEqual([d.rcode, d.aa, d.answers.length, d.authorities[0]!.type], [DnsRcode.NXDOMAIN, true, 1, DnsType.SOA]);
  assert.equal(up.calls.length, 1);
});

test('at its timeout the server aborts the upstream query (signal); maxPending counts a query until the upstream lets go', async () => {
  const clock = new VirtualClock();
  const signals: AbortSignal[] = [];
  let settleLater: (() => void)[] = [];
  const stubborn: DnsUpstream = {
    resolve: (q, o) => {
      signals.push(o!.signal!);
      // Ignores the abort and settles only when told: it stays counted.
      return new Promise((resolve) => settleLater.push(() => resolve({ ...q, qr: true })));
    },
  };
  const server = new DnsServer({ clock, upstream: stubborn, upstreamTimeoutMs: 1000, maxPending: 2 });
  const p1 = ask(server, dnsQuery(1, 'a.test', 1));
  const p2 = ask(server, dnsQuery(2, 'b.test', 1));
  await clock.advance(1500);
  assert.deepEqual((await Promise.all([p1, p2])).map((r) => r.rcode), [DnsRcode.SERVFAIL, DnsRcode.SERVFAIL]);
  assert.deepEqual(signals.map((sg) => sg.aborted), [true, true]);
  // Both still held by the upstream: a third is refused at once, without asking it.
  assert.equal((await ask(server, dnsQuery(3, 'c.test', 1))).rcode, DnsRcode.SERVFAIL);
  assert.equal(signals.length, 2);
  assert.equal(server.counters.dropped['upstream-busy'], 1);
  for (const f of settleLater) f();
  settleLater = [];
  await clock.advance(1);
  const p4 = ask(server, dnsQuery(4, 'd.test', 1));
  await clock.advance(1);
  assert.equal(signals.length, 3, 'asked again once the upstream let go');
  for (const f of settleLater) f();
  assert.equal((await p4).rcode, 0);
});
