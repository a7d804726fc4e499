/**
 * Fake-IP DNS (src/gateway/fake-ip.ts): through the real DNS server (`serveDns` on stack b, the stub
 * resolver on stack a, over a MemoryLink in virtual time) and directly: mappings both ways, TTLs and
 * holds on a fake clock, exhaustion and LRU reuse, retained mappings never reused, PTR, the names
 * that are never mapped, and a property test that no address is ever handed to a second name while
 * the first may still hold it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeIpDns, parseReverseName, type FakeIpOptions } from '../../src/gateway/fake-ip.js';
import { DnsServer, serveDns, type DnsUpstream } from '../../src/services/dns-server.js';
import { DnsStub, DnsStubError, dnsLookup } from '../../src/services/dns-stub.js';
import { parseAddress } from '../../src/wire/address.js';
import { DnsRcode, DnsType, dnsQuery, reverseName, type DnsMessage } from '../../src/wire/dns.js';
import { VirtualClock } from '../../src/link/clock.js';
import { twoStacks } from '../socket/harness.js';
import { rejection } from '../support/dns.js';

function setup(options: Partial<FakeIpOptions> = {}) {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  const fake = new FakeIpDns({ now: () => net.clock.now(), ...options });
  const service = serveDns(net.b, { localDomain: 'lan', upstream: fake });
  return { ...net, fake, service };
}

test('through the DNS server: A and AAAA from the pools, the same name the same addresses, lookup both ways', async () => {
  const { a, run, fake, service } = setup();
  assert.deepEqual(await run(dnsLookup(a, 'example.com', { family: 4 })), { address: '198.18.0.1', family: 4 });
  assert.deepEqual(await run(dnsLookup(a, 'example.com', { family: 6 })), { address: '2001:2::1', family: 6 });
  assert.deepEqual(await run(dnsLookup(a, 'www.example.org', { all: true })), [
    { address: '198.18.0.2', family: 4 }, { address: '2001:2::2', family: 6 },
  ]);
  // Case does not make another name (RFC 4343); the server's cache answers the repeat.
  assert.deepEqual(await run(dnsLookup(a, 'WWW.Example.ORG.', { family: 4 })), { address: '198.18.0.2', family: 4 });
  assert.equal(fake.lookup('198.18.0.1'), 'example.com');
  assert.equal(fake.lookup('2001:2::1'), 'example.com');
  assert.equal(fake.lookup('::ffff:198.18.0.2'), 'www.example.org');
  assert.equal(fake.lookup(parseAddress('198.18.0.2')!), 'www.example.org');
  assert.equal(fake.lookup('198.18.0.3'), null); // in the pool, not mapped
  assert.equal(fake.lookup('192.0.2.1'), null); // not in the pool
  assert.equal(fake.lookup('not an address'), null);
  assert.equal(fake.inPool('198.18.0.3'), true);
  assert.equal(fake.inPool('198.19.255.254'), true);
  assert.equal(fake.inPool('198.19.255.255'), false); // the last address is never given out
  assert.equal(fake.inPool('198.18.0.0'), false);
  assert.equal(fake.inPool('192.0.2.1'), false);
  assert.equal(fake.size, 2);
  assert.equal(fake.capacity, 131070);
  assert.ok(service.server.counters.cacheHits >= 1);
  service.close();
});

test('through the DNS server: the TTL is short and counts down in the server cache; other types are NODATA', async () => {
  const { a, run, sleep, service } = setup();
  const stub = new DnsStub(a);
  let m = await run(stub.query('example.net', DnsType.A));
  assert.equal(m.rcode, DnsRcode.NOERROR);
  assert.deepEqual(m.answers.map((r) => [r.name, r.ttl, r.data]), [['example.net', 60, { kind: 'A', address: '198.18.0.1' }]]);
  await sleep(20_000);
  m = await run(stub.query('example.net', DnsType.A));
  assert.ok(m.answers[0]!.ttl <= 40 && m.answers[0]!.ttl >= 39, String(m.answers[0]!.ttl));
  for (const type of [DnsType.MX, DnsType.TXT, DnsType.SRV, 65 /* HTTPS */]) {
    m = await run(stub.query('example.net', type));
    assert.equal(m.rcode, DnsRcode.NOERROR);
    assert.deepEqual(m.answers, []);
  }
  service.close();
});

test('through the DNS server: PTR of a fake address answers its name, in both families', async () => {
  const { a, run, fake, service } = setup();
  await run(dnsLookup(a, 'ptr.example', { all: true }));
  const stub = new DnsStub(a);
  for (const address of ['198.18.0.1', '2001:2::1']) {
    const m = await run(stub.query(reverseName(parseAddress(address)!), DnsType.PTR));
    assert.equal(m.rcode, DnsRcode.NOERROR, address);
    assert.deepEqual(m.answers.map((r) => r.data), [{ kind: 'PTR', name: 'ptr.example' }]);
  }
  // A pool address nobody has: NXDOMAIN. An address outside the pools (no inner resolver): NXDOMAIN.
  assert.equal((await run(stub.query(reverseName(parseAddress('198.18.0.9')!), DnsType.PTR))).rcode, DnsRcode.NXDOMAIN);
  assert.equal((await run(stub.query(reverseName(parseAddress('192.0.2.1')!), DnsType.PTR))).rcode, DnsRcode.NXDOMAIN);
  assert.equal(fake.counters.ptr, 3);
  service.close();
});

test('through the DNS server: names never mapped (single label, .invalid, .onion, .arpa, not host names)', async () => {
  const { a, run, fake, service } = setup();
  for (const name of ['intranet', 'x.invalid', 'abc.onion', 'bad!name.example', 'a b.example']) {
    assert.equal((await run(rejection(dnsLookup(a, name, { family: 4 })))).code, 'ENOTFOUND', name);
  }
  const stub = new DnsStub(a);
  let m = await run(stub.query('ipv4only.arpa', DnsType.A));
  assert.deepEqual(m.answers.map((r) => r.data), [{ kind: 'A', address: '192.0.0.170' }, { kind: 'A', address: '192.0.0.171' }]);
  m = await run(stub.query('ipv4only.arpa', DnsType.AAAA));
  assert.deepEqual([m.rcode, m.answers.length], [DnsRcode.NOERROR, 0]);
  m = await run(stub.query('something.arpa', DnsType.A));
  assert.deepEqual([m.rcode, m.answers.length], [DnsRcode.NOERROR, 0]);
  // localhost is the server's own (RFC 6761 §6.3) and names under the local domain are NXDOMAIN there.
  assert.deepEqual(await run(dnsLookup(a, 'app.localhost', { family: 4 })), { address: '127.0.0.1', family: 4 });
  assert.equal((await run(rejection(dnsLookup(a, 'printer.lan', { family: 4 })))).code, 'ENOTFOUND');
  assert.equal(fake.size, 0);
  service.close();
});

test('through the DNS server: exhaustion answers SERVFAIL (never a wrong address) until a mapping may be reused', async () => {
  const { a, run, sleep, fake, service } = setup({ maxEntries: 2, ttl: 10, graceSeconds: 5 });
  assert.equal((await run(dnsLookup(a, 'one.example', { family: 4 }))).address, '198.18.0.1');
  assert.equal((await run(dnsLookup(a, 'two.example', { family: 4 }))).address, '198.18.0.2');
  assert.equal((await run(rejection(dnsLookup(a, 'three.example', { family: 4 })))).code, 'ESERVFAIL');
  assert.equal(fake.counters.exhausted >= 1, true);
  fake.lookup('198.18.0.1'); // a connection to one.example: it becomes the most recently used
  await sleep(17_000); // past the hold (10 + 1 + 5 s) of both
  assert.equal((await run(dnsLookup(a, 'three.example', { family: 4 }))).address, '198.18.0.2');
  assert.equal(fake.lookup('198.18.0.2'), 'three.example');
  assert.equal(fake.addressesOf('two.example'), null);
  assert.equal(fake.counters.recycled, 1);
  service.close();
});

test('through the DNS server: other types go to an inner upstream when given', async () => {
  const far = new DnsServer({
    clock: new VirtualClock(),
    records: { 'mail.example': { txt: 'v=spf1 -all' }, 'real.example': '192.0.2.80' },
    localDomain: 'example',
  });
  const asked: string[] = [];
  const inner: DnsUpstream = {
    resolve: async (q: DnsMessage) => {
      asked.push(`${q.questions[0]!.name}/${q.questions[0]!.type}`);
      return (await far.answer(q)).message;
    },
  };
  const { a, run, service } = setup({ inner });
  const stub = new DnsStub(a);
  const m = await run(stub.query('mail.example', DnsType.TXT));
  assert.equal(m.answers[0]!.data.kind, 'TXT');
  // A and AAAA never go to the inner resolver: the answer is a fake address.
  assert.equal((await run(dnsLookup(a, 'real.example', { family: 4 }))).address, '198.18.0.1');
  // PTR of an address outside the pools is the inner resolver's.
  assert.deepEqual((await run(stub.query(reverseName(parseAddress('192.0.2.80')!), DnsType.PTR))).answers.map((r) => r.data),
    [{ kind: 'PTR', name: 'real.example' }]);
  assert.deepEqual(asked, ['mail.example/16', '80.2.0.192.in-addr.arpa/12']);
  service.close();
});

// ------------------------------------------------------------------------------- direct

function direct(options: Partial<FakeIpOptions> = {}) {
  const clock = { t: 0 };
  const fake = new FakeIpDns({ now: () => clock.t, ...options });
  let id = 0;
  const ask = async (name: string, type: number = DnsType.A): Promise<DnsMessage> => fake.resolve(dnsQuery(++id, name, type));
  const addr = async (name: string, type: number = DnsType.A): Promise<string | number> => {
    const m = await ask(name, type);
    if (m.rcode !== DnsRcode.NOERROR) return m.rcode;
    const d = m.answers[0]?.data;
    return d && (d.kind === 'A' || d.kind === 'AAAA') ? d.address : -1;
  };
  return { clock, fake, ask, addr };
}

test('answers: the question echoed, owner as asked, TTL as configured; literals and localhost', async () => {
  const { ask, addr, fake } = direct({ ttl: 7 });
  const m = await ask('Foo.Example.');
  assert.equal(m.qr, true);
  assert.equal(m.id, 1);
  assert.equal(m.rcode, DnsRcode.NOERROR);
  assert.deepEqual(m.questions, [{ name: 'Foo.Example.', type: DnsType.A, class: 1 }]);
  assert.deepEqual(m.answers, [{ name: 'Foo.Example.', type: DnsType.A, class: 1, ttl: 7, data: { kind: 'A', address: '198.18.0.1' } }]);
  assert.equal(fake.lookup('198.18.0.1'), 'foo.example');
  assert.equal(await addr('192.0.2.1'), '192.0.2.1');
  assert.equal(await addr('192.0.2.1', DnsType.AAAA), -1); // NODATA
  assert.equal(await addr('localhost'), '127.0.0.1');
  assert.equal(await addr('x.localhost', DnsType.AAAA), '::1');
  assert.equal(await addr('x.invalid'), DnsRcode.NXDOMAIN);
  assert.equal(await addr('single'), DnsRcode.NXDOMAIN);
  assert.equal(await addr(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`), '198.18.0.2');
  assert.equal((await fake.resolve(dnsQuery(9, 'ch.example', DnsType.A, { class: 3 }))).rcode, DnsRcode.REFUSED);
  const two = await fake.resolve({ ...dnsQuery(10, 'a.example', DnsType.A), questions: [] });
  assert.equal(two.rcode, DnsRcode.FORMERR);
  assert.equal(fake.size, 2);
});

test('pools are configurable; one family may be off; bad options throw RangeErrors', async () => {
  let d = direct({ ipv4: '100.64.0.0/30', ipv6: '2001:db8:ffff::/126' });
  assert.equal(d.fake.capacity, 2);
  assert.equal(await d.addr('a.example'), '100.64.0.1');
  assert.equal(await d.addr('a.example', DnsType.AAAA), '2001:db8:ffff::1');
  assert.equal(await d.addr('b.example'), '100.64.0.2');
  assert.equal(await d.addr('c.example'), DnsRcode.SERVFAIL);
  d = direct({ ipv6: null });
  assert.equal(await d.addr('a.example', DnsType.AAAA), -1);
  assert.equal(await d.addr('a.example'), '198.18.0.1');
  assert.equal(d.fake.addressesOf('a.example')?.ipv6, null);
  d = direct({ ipv4: null, ipv6: 'fd00:0:0:ffff::/64' });
  assert.equal(await d.addr('a.example'), -1);
  assert.equal(await d.addr('a.example', DnsType.AAAA), 'fd00:0:0:ffff::1');
  assert.equal(d.fake.lookup('fd00:0:0:ffff::1'), 'a.example');
  assert.equal(d.fake.lookup('fd00:0:0:ffff:1::1'), null);
  assert.equal(direct({ maxEntries: 10 }).fake.capacity, 10);
  for (const [o, why] of [
    [{ ipv4: null, ipv6: null }, /no pool/],
    [{ ipv4: '198.18.0.0' }, /at least 4 addresses/],
    [{ ipv4: '198.18.0.0/31' }, /at least 4 addresses/],
    [{ ipv4: '198.18.0.1/15' }, /host bits set/],
    [{ ipv4: '2001:db8::/64' }, /not an IPv4 prefix/],
    [{ ipv6: '198.18.0.0/15' }, /not an IPv6 prefix/],
    [{ ipv4: 'nonsense' }, /not a CIDR/],
    [{ ttl: -1 }, /TTL out of range/],
    [{ ttl: 1.5 }, /TTL out of range/],
    [{ maxEntries: 0 }, /maxEntries/],
    [{ graceSeconds: Number.NaN }, /graceSeconds/],
  ] as [Partial<FakeIpOptions>, RegExp][]) {
    assert.throws(() => new FakeIpDns({ now: () => 0, ...o }), (e: unknown) => e instanceof RangeError && why.test(e.message), JSON.stringify(o));
  }
});

test('holds: a mapping is not reused before ttl + 1 + grace after its last answer or use', async () => {
  const { clock, fake, addr } = direct({ maxEntries: 1, ttl: 5, graceSeconds: 0 });
  assert.equal(await addr('a.example'), '198.18.0.1');
  clock.t = 5999;
  assert.equal(await addr('b.example'), DnsRcode.SERVFAIL);
  clock.t = 6000;
  assert.equal(await addr('b.example'), '198.18.0.1');
  assert.equal(fake.lookup('198.18.0.1'), 'b.example');
  // Asking again (or a lookup) starts the hold again.
  clock.t = 11_000;
  assert.equal(await addr('b.example'), '198.18.0.1');
  clock.t = 16_000;
  assert.equal(await addr('c.example'), DnsRcode.SERVFAIL);
  assert.equal(fake.lookup('198.18.0.1'), 'b.example'); // at 16 000: held until 22 000
  clock.t = 21_999;
  assert.equal(await addr('c.example'), DnsRcode.SERVFAIL);
  clock.t = 22_000;
  assert.equal(await addr('c.example'), '198.18.0.1');
  // A reused name gets a slot again when asked later.
  clock.t = 40_000;
  assert.equal(await addr('b.example'), '198.18.0.1');
  assert.deepEqual({ mapped: fake.counters.mapped, recycled: fake.counters.recycled }, { mapped: 4, recycled: 3 });
});

test('LRU: the least recently used mapping past its hold is reused, never-used slots first', async () => {
  const { clock, fake, addr } = direct({ maxEntries: 3, ttl: 1, graceSeconds: 0 });
  for (const n of ['a', 'b', 'c']) await addr(`${n}.example`);
  clock.t = 1000;
  assert.equal(fake.lookup('198.18.0.1'), 'a.example'); // a used: b is now the oldest
  clock.t = 2500; // b and c past their hold (2000), a held until 3000
  assert.equal(await addr('d.example'), '198.18.0.2');
  assert.equal(await addr('e.example'), '198.18.0.3');
  assert.equal(await addr('f.example'), DnsRcode.SERVFAIL);
  clock.t = 3000;
  assert.equal(await addr('f.example'), '198.18.0.1');
  assert.equal(fake.addressesOf('a.example'), null);
  assert.deepEqual(fake.addressesOf('D.example.'), { ipv4: '198.18.0.2', ipv6: '2001:2::2' });
});

test('retain: a mapping in use is never reused, however old; release starts its hold again', async () => {
  const { clock, fake, addr } = direct({ maxEntries: 2, ttl: 1, graceSeconds: 0 });
  await addr('a.example');
  await addr('b.example');
  assert.equal(fake.retain('198.18.0.1'), true);
  assert.equal(fake.retain('2001:2::1'), true); // the same mapping through its IPv6 address: twice
  assert.equal(fake.retain('198.18.0.2'), true);
  assert.equal(fake.retain('198.18.0.3'), false);
  assert.equal(fake.retain('192.0.2.1'), false);
  clock.t = 1_000_000;
  assert.equal(await addr('c.example'), DnsRcode.SERVFAIL);
  fake.release('198.18.0.2');
  fake.release('198.18.0.2'); // extra: ignored
  fake.release('198.18.0.9'); // unmapped: ignored
  assert.equal(await addr('c.example'), DnsRcode.SERVFAIL); // released just now: held 2 s more
  clock.t += 2000;
  assert.equal(await addr('c.example'), '198.18.0.2');
  fake.release('198.18.0.1');
  clock.t += 5000;
  assert.equal(await addr('d.example'), '198.18.0.2'); // c is past its hold; a still has one retain
  assert.equal(await addr('e.example'), DnsRcode.SERVFAIL);
  assert.equal(fake.lookup('198.18.0.1'), 'a.example');
  fake.release('2001:2::1');
  assert.equal(fake.lookup('198.18.0.2'), 'd.example'); // d used after a's release: a is the oldest
  clock.t += 2000;
  assert.equal(await addr('e.example'), '198.18.0.1');
});

test('PTR directly: both families, unmapped pool addresses NXDOMAIN, other reverse names to inner', async () => {
  const inner: DnsUpstream = {
    resolve: async (q) => ({
      ...q, qr: true, answers: [{ name: q.questions[0]!.name, type: DnsType.PTR, class: 1, ttl: 5, data: { kind: 'PTR', name: 'real.example' } }],
    }),
  };
  const { ask, fake } = direct({ inner });
  await ask('n.example');
  await ask('n.example', DnsType.AAAA);
  for (const a of ['198.18.0.1', '2001:2::1']) {
    const m = await ask(reverseName(parseAddress(a)!).toUpperCase(), DnsType.PTR);
    assert.deepEqual(m.answers.map((r) => r.data), [{ kind: 'PTR', name: 'n.example' }], a);
    assert.equal(m.answers[0]!.ttl, 60);
  }
  assert.equal((await ask(reverseName(parseAddress('198.18.0.2')!), DnsType.PTR)).rcode, DnsRcode.NXDOMAIN);
  assert.deepEqual((await ask(reverseName(parseAddress('192.0.2.1')!), DnsType.PTR)).answers.map((r) => r.data),
    [{ kind: 'PTR', name: 'real.example' }]);
  assert.equal(fake.counters.forwarded, 1);
  assert.deepEqual(parseReverseName('1.0.18.198.in-addr.arpa'), parseAddress('198.18.0.1'));
  assert.deepEqual(parseReverseName(reverseName(parseAddress('2001:2::abcd')!)), parseAddress('2001:2::abcd'));
  for (const bad of ['1.0.18.in-addr.arpa', '256.0.18.198.in-addr.arpa', '01.0.18.198.in-addr.arpa', 'x.ip6.arpa', 'example.com']) {
    assert.equal(parseReverseName(bad), null, bad);
  }
});

test('an inner upstream that fails: the rejection reaches the server (SERVFAIL there)', async () => {
  const inner: DnsUpstream = { resolve: async () => Promise.reject(new Error('down')) };
  const { ask } = direct({ inner });
  await assert.rejects(ask('x.example', DnsType.MX), /down/);
  const { a, run, service } = setup({ inner });
  assert.equal((await run(new DnsStub(a, { attempts: 1 }).query('x.example', DnsType.MX).catch((e: unknown) => e)) as DnsStubError).code, 'ESERVFAIL');
  service.close();
});

test('property: an address is never handed to a second name while the first may hold it', async () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('ask' as const), name: fc.integer({ min: 0, max: 7 }), v6: fc.boolean() }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
    fc.record({ kind: fc.constant('retain' as const), slot: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('release' as const), slot: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('lookup' as const), slot: fc.integer({ min: 1, max: 4 }) }),
  );
  await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
    const { clock, fake, addr } = direct({ maxEntries: 4, ttl: 1, graceSeconds: 1 });
    const holdMs = 3000;
    // Per slot (1..4): who has it, until when the guest may hold it, how many retains.
    const owner = new Map<number, { name: string; until: number; refs: number }>();
    for (const o of ops) {
      if (o.kind === 'wait') clock.t += o.ms;
      else if (o.kind === 'ask') {
        const name = `n${o.name}.example`;
        const got = await addr(name, o.v6 ? DnsType.AAAA : DnsType.A);
        if (typeof got === 'number') {
          assert.equal(got, DnsRcode.SERVFAIL);
          // SERVFAIL only when every slot is held by someone else.
          assert.equal(owner.size, 4);
          for (const s of owner.values()) assert.ok(s.name !== name && (s.refs > 0 || s.until > clock.t));
          continue;
        }
        const b = parseAddress(got)!;
        const slot = b[b.length - 1]!;
        const prev = owner.get(slot);
        if (prev && prev.name !== name) {
          assert.equal(prev.refs, 0, `slot ${slot} reused while retained`);
          assert.ok(prev.until <= clock.t, `slot ${slot} reused at ${clock.t}, held until ${prev.until}`);
        }
        for (const [s, x] of owner) assert.ok(x.name !== name || s === slot, 'one name, one slot');
        owner.set(slot, { name, until: clock.t + holdMs, refs: prev && prev.name === name ? prev.refs : 0 });
      } else {
        const address = `198.18.0.${o.slot}`;
        const s = owner.get(o.slot);
        if (o.kind === 'retain') {
          assert.equal(fake.retain(address), s !== undefined);
          if (s) s.refs++;
        } else if (o.kind === 'release') {
          fake.release(address);
          if (s && s.refs > 0 && --s.refs === 0) s.until = clock.t + holdMs;
        } else {
          assert.equal(fake.lookup(address), s?.name ?? null);
          if (s) s.until = Math.max(s.until, clock.t + holdMs);
        }
      }
    }
  }), { numRuns: 300 });
});
