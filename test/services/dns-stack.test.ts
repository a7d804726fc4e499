/**
 * The DNS server and the stub resolver on two stacks joined by a MemoryLink, in virtual time: the
 * stub on a (10.0.0.1 / fd00::1) asks serveDns on b (10.0.0.2 / fd00::2) over the stacks' own UDP
 * and TCP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDns, DnsServer, type DnsUpstream } from '../../src/services/dns-server.js';
import { DnsStub, dnsLookup } from '../../src/services/dns-stub.js';
import { DnsStreamDecoder, frameDns } from '../../src/services/dns-transport.js';
import { VirtualClock } from '../../src/link/clock.js';
import { DnsType, dnsQuery, parseDns, writeDns, type DnsMessage } from '../../src/wire/dns.js';
import { twoStacks } from '../socket/harness.js';
import { rejection } from '../support/dns.js';

const RECORDS = {
  'gw.lan': ['10.0.0.2', 'fd00::2'],
  'printer.lan': '10.0.0.9',
  'big.lan': { txt: Array.from({ length: 12 }, (_, i) => `${i}:${'t'.repeat(240)}`) },
};

/** Another server, in process, standing for the internet. */
function internet(): DnsUpstream & { asked: string[] } {
  const far = new DnsServer({ clock: new VirtualClock(), records: { 'example.com': '192.0.2.80' }, localDomain: 'com' });
  const asked: string[] = [];
  return {
    asked,
    resolve: async (q: DnsMessage) => {
      asked.push(q.questions[0]!.name);
      return (await far.answer(q)).message;
    },
  };
}

function setup(opts: { upstream?: DnsUpstream } = {}) {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  const service = serveDns(net.b, { records: RECORDS, localDomain: 'lan', upstream: opts.upstream ?? null });
  return { ...net, service };
}

test('stub → server: static A and AAAA, family, all; PTR; NXDOMAIN is ENOTFOUND as node has it', async () => {
  const { a, run, service } = setup();
  assert.deepEqual(await run(dnsLookup(a, 'gw.lan')), { address: '10.0.0.2', family: 4 });
  assert.deepEqual(await run(dnsLookup(a, 'GW.lan', { family: 6 })), { address: 'fd00::2', family: 6 });
  assert.deepEqual(await run(dnsLookup(a, 'gw.lan', { all: true })), [
    { address: '10.0.0.2', family: 4 }, { address: 'fd00::2', family: 6 },
  ]);
  const stub = new DnsStub(a);
  const ptr = await run(stub.query('9.0.0.10.in-addr.arpa', DnsType.PTR));
  assert.deepEqual(ptr.answers.map((r) => r.data), [{ kind: 'PTR', name: 'printer.lan' }]);
  const e = await run(rejection(dnsLookup(a, 'nothere.lan')));
  assert.equal(e.code, 'ENOTFOUND');
  assert.equal(e.syscall, 'getaddrinfo');
  assert.equal(e.hostname, 'nothere.lan');
  assert.equal(e.message, 'getaddrinfo ENOTFOUND nothere.lan');
  // NODATA: printer.lan has no AAAA.
  assert.equal((await run(rejection(dnsLookup(a, 'printer.lan', { family: 6 })))).code, 'ENOTFOUND');
  assert.ok(service.server.counters.queries >= 6);
  service.close();
});

test('IP literals and localhost come back without a query', async () => {
  const { a, run, service } = setup();
  assert.deepEqual(await run(dnsLookup(a, '192.0.2.1')), { address: '192.0.2.1', family: 4 });
  assert.deepEqual(await run(dnsLookup(a, '2001:DB8::1')), { address: '2001:db8::1', family: 6 });
  assert.deepEqual(await run(dnsLookup(a, 'localhost', { all: true })), [
    { address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 },
  ]);
  assert.equal(service.server.counters.queries, 0);
  service.close();
});

test('forwarded through an upstream, then from the server\'s cache', async () => {
  const up = internet();
  const { a, run, service } = setup({ upstream: up });
  assert.deepEqual(await run(dnsLookup(a, 'example.com', { family: 4 })), { address: '192.0.2.80', family: 4 });
  assert.deepEqual(await run(dnsLookup(a, 'example.com', { family: 4 })), { address: '192.0.2.80', family: 4 });
  assert.deepEqual(up.asked, ['example.com']);
  assert.equal(service.server.counters.cacheHits, 1);
  assert.equal((await run(rejection(dnsLookup(a, 'nope.com', { family: 4 })))).code, 'ENOTFOUND');
  service.close();
});

test('a UDP answer with TC is asked again over TCP (RFC 7766) and comes whole', async () => {
  const { a, run, service } = setup();
  for (const ednsPayload of [0, 1232]) {
    const stub = new DnsStub(a, { ednsPayload });
    const m = await run(stub.query('big.lan', DnsType.TXT));
    assert.equal(m.tc, false);
    assert.equal(m.answers.length, 1);
    const data = m.answers[0]!.data;
    assert.ok(data.kind === 'TXT' && data.strings.length === 12);
    assert.deepEqual(stub.counters, { udp: 1, tcp: 1, timeouts: 0 });
  }
  assert.equal(service.server.counters.truncated, 2);
  service.close();
});

test('TCP: several queries on one connection, answered each with its ID; the server closes an idle connection', async () => {
  const { a, run, sleep, service } = setup();
  const conn = a.tcpConnect({ host: '10.0.0.2', port: 53 });
  const got: DnsMessage[] = [];
  let gotBoth = (): void => undefined;
  const both2 = new Promise<void>((r) => {
    gotBoth = r;
  });
  let closed = false;
  const decoder = new DnsStreamDecoder();
  conn.events = {
    onReadable: () => {
      for (let c = conn.read(); c; c = conn.read()) for (const raw of decoder.push(c)) got.push(parseDns(raw) as DnsMessage);
      if (got.length >= 2) gotBoth();
    },
    onClosed: () => {
      closed = true;
    },
    onEnd: () => conn.close(),
  };
  await sleep(50);
  const both = new Uint8Array([
    ...frameDns(writeDns(dnsQuery(101, 'gw.lan', DnsType.A))), ...frameDns(writeDns(dnsQuery(102, 'big.lan', DnsType.TXT))),
  ]);
  conn.write(both);
  await run(both2);
  assert.deepEqual(got.map((m) => [m.id, m.answers.length, m.tc]).sort(), [[101, 1, false], [102, 1, false]]);
  await sleep(5_000);
  assert.ok(!closed, 'open while not idle for 10 s');
  await sleep(6_000);
  assert.ok(closed, 'closed after the idle timeout');
  service.close();
});

test('no server: ECONNREFUSED when the port is closed, ETIMEOUT when nobody answers, both bounded', async () => {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  const refused = await net.run(rejection(new DnsStub(net.a, { timeoutMs: 1000, attempts: 2 }).query('x.lan', 1)));
  assert.equal(refused.code, 'ECONNREFUSED');
  // A server that takes the queries and never answers.
  const mute = net.b.udpBind({ port: 53 });
  mute.onMessage = () => undefined;
  const t0 = net.clock.now();
  const silent = await net.run(rejection(new DnsStub(net.a, { timeoutMs: 1000, attempts: 2 }).query('x.lan', 1)));
  assert.equal(silent.code, 'ETIMEOUT');
  const took = net.clock.now() - t0;
  assert.ok(took >= 2000 && took < 2200, `gave up after ${took} ms`);
  const lookupErr = await net.run(rejection(dnsLookup(net.a, 'x.lan')));
  assert.equal(lookupErr.code, 'ETIMEOUT');
  mute.close();
});

test('IPv6 transport: the stub asks fd00::2', async () => {
  const { a, run, service } = setup();
  const stub = new DnsStub(a, { servers: ['fd00::2'] });
  assert.deepEqual(await run(stub.lookup('gw.lan', { family: 4 })), { address: '10.0.0.2', family: 4 });
  service.close();
});

test('TCP: a client that pipelines queries and does not read is not read from either (bounded), then gets every answer', async () => {
  const { a, run, sleep, service } = setup();
  const conn = a.tcpConnect({ host: '10.0.0.2', port: 53 });
  let reading = false;
  const ids: number[] = [];
  const decoder = new DnsStreamDecoder();
  let all = (): void => undefined;
  const done = new Promise<void>((r) => {
    all = r;
  });
  const drain = (): void => {
    for (let c = conn.read(); c; c = conn.read()) for (const raw of decoder.push(c)) ids.push((parseDns(raw) as DnsMessage).id);
    if (ids.length === 300) all();
  };
  conn.events = { onReadable: () => reading && drain() };
  await sleep(50);
  const queries: number[] = [];
  for (let i = 0; i < 300; i++) queries.push(...frameDns(writeDns(dnsQuery(i, 'big.lan', DnsType.TXT))));
  let rest = Uint8Array.from(queries);
  conn.events.onWritable = () => {
    rest = rest.subarray(conn.write(rest));
  };
  rest = rest.subarray(conn.write(rest));
  await sleep(2000);
  // 300 answers of 3 KB are 900 KB: far more than the windows and buffers between us hold.
  const answeredWhileStuck = service.server.counters.queries;
  assert.ok(answeredWhileStuck < 300, `${answeredWhileStuck} queries read while the client did not read`);
  reading = true;
  drain();
  await run(done);
  assert.deepEqual([...ids].sort((x, y) => x - y), Array.from({ length: 300 }, (_, i) => i));
  assert.equal(service.server.counters.queries, 300);
  conn.close();
  service.close();
});

test('a server on every address answers from the address asked (the gateway\'s .2 and .3); one bound to an address serves only it', async () => {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.3'] } });
  net.b.addAddress('10.0.0.3/24');
  const any = serveDns(net.b, { records: RECORDS });
  // The stub's socket is connected to 10.0.0.3: an answer from 10.0.0.2 would not reach it.
  assert.deepEqual(await net.run(dnsLookup(net.a, 'gw.lan', { family: 4 })), { address: '10.0.0.2', family: 4 });
  any.close();
  const one = serveDns(net.b, { records: RECORDS, address: '10.0.0.3' });
  assert.deepEqual(await net.run(new DnsStub(net.a, { servers: ['10.0.0.3'] }).lookup('gw.lan', { family: 4 })), { address: '10.0.0.2', family: 4 });
  const refused = await net.run(rejection(new DnsStub(net.a, { servers: ['10.0.0.2'], timeoutMs: 500, attempts: 1 }).query('gw.lan', 1)));
  assert.equal(refused.code, 'ECONNREFUSED');
  // TCP is bound to the same address only.
  const c = net.a.tcpConnect({ host: '10.0.0.2', port: 53 });
  let error: string | null = null;
  c.events = { onClosed: (e) => {
    error = e?.code ?? 'closed';
  } };
  await net.sleep(100);
  assert.equal(error, 'ECONNREFUSED');
  one.close();
});

test('with a larger EDNS size on both sides a 3 KB answer comes over UDP in one fragmented datagram, no TCP', async () => {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  const svc = serveDns(net.b, { records: RECORDS, payloadSize: 4096 });
  const stub = new DnsStub(net.a, { ednsPayload: 4096 });
  const m = await net.run(stub.query('big.lan', DnsType.TXT));
  assert.equal(m.tc, false);
  assert.equal(m.edns?.udpPayloadSize, 4096);
  const data = m.answers[0]!.data;
  assert.ok(data.kind === 'TXT' && data.strings.length === 12);
  assert.deepEqual(stub.counters, { udp: 1, tcp: 0, timeouts: 0 });
  assert.equal(svc.server.counters.truncated, 0);
  svc.close();
});
