/**
 * Property tests (fast-check) for the DHCP codec, src/wire/dhcp.ts, in the style of
 * codecs.property.test.ts:
 *  - round trip: for arbitrary well-formed messages (every typed option, unknown options, options
 *    longer than 255 bytes that RFC 3396 splits), parse(write(m)) gives m back;
 *  - totality: parseDhcp returns a message or a known drop reason for any bytes, for bytes that
 *    start like a DHCP message, and for truncations and bit flips of valid ones; what it returns
 *    is canonical (writing it and parsing again gives it back);
 *  - the server core keeps a consistent lease table under any sequence of client messages, and the
 *    client core gets and keeps a lease from it over a lossy path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Arbitrary, IProperty } from 'fast-check';
import { Rng } from '../../src/link/rng.js';
import { DhcpClient, type DhcpClientAction } from '../../src/services/dhcp-client.js';
import { DhcpServer } from '../../src/services/dhcp-server.js';
import {
  BOOTREPLY, BOOTREQUEST, DhcpOption, DhcpType, emptyDhcpMessage, parseDhcp, writeDhcp, type DhcpMessage, type DhcpOptions,
  type DhcpRawOption,
} from '../../src/wire/dhcp.js';
import { DROP_REASONS, u16, u32, u8 } from './gen.js';

function run<Ts>(p: IProperty<Ts>, numRuns: number): void {
  fc.assert(p, { numRuns });
}

function msg(x: DhcpMessage | string): DhcpMessage {
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

const TYPED_CODES = new Set<number>([1, 3, 6, 12, 15, 26, 28, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61, 0, 255]);

const quad: Arbitrary<string> = fc.tuple(u8, u8, u8, u8).map((q) => q.join('.'));
const quads: Arbitrary<string[]> = fc.array(quad, { minLength: 1, maxLength: 80 });
/** Option text: no trailing NUL (the parser drops those); long enough to need RFC 3396 splitting. */
const optionText: Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 400 }),
).filter((s) => !s.endsWith('\0'));
/** sname/file text: no NUL at all (they are NUL-terminated) and within the field (63/127 bytes). */
const fieldText = (maxBytes: number): Arbitrary<string> =>
  fc.string({ unit: 'binary', maxLength: maxBytes }).filter(
    (s) => !s.includes('\0') && new TextEncoder().encode(s).length <= maxBytes,
  );

const optionsArb: Arbitrary<DhcpOptions> = fc.record(
  {
    messageType: u8,
    subnetMask: quad,
    routers: quads,
    dnsServers: quads,
    hostname: optionText,
    domainName: optionText,
    interfaceMtu: u16,
    broadcastAddress: quad,
    requestedIp: quad,
    leaseTime: u32,
    serverId: quad,
    parameterRequestList: fc.array(u8, { maxLength: 300 }),
    message: optionText,
    maxMessageSize: u16,
    renewalTime: u32,
    rebindingTime: u32,
    clientId: fc.uint8Array({ maxLength: 300 }),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const rawArb: Arbitrary<DhcpRawOption[]> = fc.uniqueArray(
  fc.record({ code: u8.filter((c) => !TYPED_CODES.has(c)), data: fc.uint8Array({ maxLength: 600 }) }, { noNullPrototype: true }),
  { selector: (o) => o.code, maxLength: 6 },
);

const messageArb: Arbitrary<DhcpMessage> = fc.integer({ min: 0, max: 16 }).chain((hlen) =>
  fc.record({
    op: fc.constantFrom(BOOTREQUEST, BOOTREPLY),
    htype: u8,
    hlen: fc.constant(hlen),
    hops: u8,
    xid: u32,
    secs: u16,
    flags: u16,
    ciaddr: quad,
    yiaddr: quad,
    siaddr: quad,
    giaddr: quad,
    chaddr: fc.uint8Array({ minLength: hlen, maxLength: hlen }),
    sname: fieldText(63),
    file: fieldText(127),
    options: optionsArb,
    rawOptions: rawArb,
  }, { noNullPrototype: true }),
);

/** parse(x) is a message or a known reason; a message is canonical: write then parse gives it back. */
function checkTotal(b: Uint8Array): DhcpMessage | string {
  const r = parseDhcp(b);
  if (typeof r === 'string') {
    assert.ok(DROP_REASONS.has(r), `unknown drop reason ${r}`);
    return r;
  }
  // Bytes that are not UTF-8 read as U+FFFD, 3 bytes each: sname/file may then not fit back.
  if (!/\uFFFD/.test(r.sname + r.file)) assert.deepEqual(msg(parseDhcp(writeDhcp(r))), r);
  return r;
}

test('DHCP: parse(writeDhcp(m)) gives m back, long options split and joined (RFC 3396)', () => {
  run(fc.property(messageArb, (m) => {
    const b = writeDhcp(m);
    assert.ok(b.length >= 300);
    assert.deepEqual(msg(parseDhcp(b)), m);
  }), 400);
});

test('DHCP: any bytes give a message or a known drop reason', () => {
  run(fc.property(fc.uint8Array({ maxLength: 700 }), (b) => {
    checkTotal(b);
  }), 500);
});

test('DHCP: bytes that start like a DHCP message (op, hlen, cookie right) and random options', () => {
  run(fc.property(
    fc.uint8Array({ minLength: 236, maxLength: 236 }), fc.constantFrom(1, 2), fc.integer({ min: 0, max: 16 }),
    fc.array(fc.oneof(
      // Well-formed-ish options (some overload, some known codes with random lengths), and noise.
      fc.tuple(fc.constantFrom(1, 3, 6, 12, 51, 52, 53, 54, 55, 61, 200), fc.uint8Array({ maxLength: 12 }))
        .map(([c, d]) => Uint8Array.of(c, d.length, ...d)),
      fc.uint8Array({ maxLength: 8 }),
    ), { maxLength: 20 }),
    (head, op, hlen, parts) => {
      const body = parts.reduce((a, p) => Uint8Array.of(...a, ...p), new Uint8Array(0));
      const b = new Uint8Array(240 + body.length);
      b.set(head);
      b[0] = op;
      b[2] = hlen;
      b.set([99, 130, 83, 99], 236);
      b.set(body, 240);
      checkTotal(b);
    },
  ), 500);
});

test('DHCP: truncations of valid messages: short of the cookie is dhcp-truncated, else total', () => {
  run(fc.property(messageArb, fc.nat(), (m, cut) => {
    const b = writeDhcp(m);
    const n = cut % (b.length + 1);
    const r = checkTotal(b.subarray(0, n));
    if (n < 240) assert.equal(r, 'dhcp-truncated');
    // Cutting only padding after End changes nothing.
    const end = b.lastIndexOf(DhcpOption.END);
    if (n > end) assert.deepEqual(r, m);
  }), 300);
});

test('DHCP: bit flips of valid messages give a message or a known drop reason', () => {
  run(fc.property(messageArb, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), (m, flips) => {
    const b = writeDhcp(m);
    for (const f of flips) b[(f >>> 3) % b.length] ^= 1 << (f & 7);
    checkTotal(b);
  }), 500);
});

// =================================================================================== server, client

const POOL_START = 15;
const POOL_END = 30;

/** A client message with fields drawn from small sets, so that they collide with the server's state. */
const clientMessageArb: Arbitrary<{ m: DhcpMessage; dt: number }> = fc.record({
  type: fc.integer({ min: 0, max: 9 }),
  mac: fc.integer({ min: 0, max: 7 }),
  useClientId: fc.boolean(),
  requested: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  ciaddr: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  serverId: fc.option(fc.constantFrom('10.0.2.2', '10.0.2.9'), { nil: undefined }),
  giaddr: fc.boolean().map((b) => (b ? '10.0.2.1' : '0.0.0.0')),
  dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 200_000 })),
}).map((r) => {
  const chaddr = Uint8Array.of(2, 0, 0, 0, 0, r.mac);
  const options: DhcpOptions = {};
  if (r.type !== 0) options.messageType = r.type;
  if (r.useClientId) options.clientId = Uint8Array.of(1, ...chaddr);
  if (r.requested !== undefined) options.requestedIp = `10.0.2.${r.requested}`;
  if (r.serverId !== undefined) options.serverId = r.serverId;
  const m: DhcpMessage = {
    ...emptyDhcpMessage(BOOTREQUEST), xid: r.mac, chaddr, giaddr: r.giaddr,
    ciaddr: r.ciaddr !== undefined ? `10.0.2.${r.ciaddr}` : '0.0.0.0', options,
  };
  return { m, dt: r.dt };
});

test('DhcpServer: any sequence of client messages keeps the lease table consistent', () => {
  run(fc.property(fc.array(clientMessageArb, { maxLength: 80 }), (steps) => {
    const s = new DhcpServer({
      poolStart: `10.0.2.${POOL_START}`, poolEnd: `10.0.2.${POOL_END}`, leaseTime: 60, maxPendingOffers: 4, maxLeases: 12,
      staticLeases: [{ mac: '02:00:00:00:00:07', address: '10.0.2.40' }], perClientRate: { perSecond: 1000, burst: 1000 },
    });
    let now = 0;
    for (const { m, dt } of steps) {
      now += dt;
      const r = s.handle(m, now);
      const leases = s.leases(now);
      const live = leases.filter((l) => l.state !== 'free');
      // No address is held by two clients; every one is in the pool or a static lease.
      assert.equal(new Set(live.map((l) => l.address)).size, live.length);
      for (const l of live) {
        const host = Number(l.address.split('.')[3]);
        assert.ok((host >= POOL_START && host <= POOL_END) || l.address === '10.0.2.40', l.address);
      }
      assert.ok(leases.length <= 12);
      assert.ok(live.filter((l) => l.state === 'offered').length <= 4);
      if (r === null) continue;
      // Writable and readable, to where the rules say.
      assert.deepEqual(parseDhcp(writeDhcp(r.message, r.order)), r.message);
      const type = r.message.options.messageType;
      if (m.giaddr !== '0.0.0.0') assert.deepEqual(r.to, { address: m.giaddr, port: 67 });
      else if (type === DhcpType.NAK) assert.equal(r.to.address, '255.255.255.255');
      else assert.equal(r.to.address, m.ciaddr !== '0.0.0.0' ? m.ciaddr : '255.255.255.255');
      // An ACK with an address: that client now holds it, bound, until now + the lease time.
      if (type === DhcpType.ACK && r.message.yiaddr !== '0.0.0.0') {
        const l = leases.find((x) => x.address === r.message.yiaddr);
        assert.ok(l !== undefined && l.state === 'bound' && l.expiresAt === now + 60_000, JSON.stringify(l));
      }
      if (type === DhcpType.OFFER) assert.ok(live.some((l) => l.address === r.message.yiaddr));
    }
  }), 300);
});

test('DhcpClient against DhcpServer over a lossy path: bound within minutes, on the address the server has on record', () => {
  run(fc.property(fc.integer(), fc.double({ min: 0, max: 0.6, noNaN: true }), (seed, loss) => {
    const rng = new Rng(seed);
    const server = new DhcpServer({ leaseTime: 600 });
    const client = new DhcpClient({ mac: '52:54:00:12:34:56', seed });
    let now = 0;
    const deliver = (actions: DhcpClientAction[]): void => {
      for (const a of actions) {
        if (a.type !== 'send' || rng.next() < loss) continue;
        const r = server.handle(msg(parseDhcp(writeDhcp(a.message))), now);
        if (r === null || rng.next() < loss) continue;
        deliver(client.handle(msg(parseDhcp(writeDhcp(r.message, r.order))), now));
      }
    };
    deliver(client.start(now));
    // Run an hour of virtual time: through several renewals.
    while (now < 3_600_000) {
      const t = client.nextTimeout();
      if (t === null) break;
      now = Math.max(now, t);
      deliver(client.tick(now));
      // Backoff stays within RFC 2131 §4.1's 64 s (+1 s jitter) while not bound.
      const next = client.nextTimeout();
      if (next !== null && client.state !== 'BOUND' && client.state !== 'RENEWING' && client.state !== 'REBINDING') {
        assert.ok(next - now <= 65_000, `${client.state} waits ${next - now} ms`);
      }
    }
    if (loss < 0.3) {
      // With at most 30 % loss each way, an hour is enough to hold a lease at the end (the odds of
      // losing every retransmission for its whole length are negligible).
      assert.ok(client.lease !== null || client.state === 'SELECTING' || client.state === 'REQUESTING', client.state);
    }
    const l = client.lease;
    if (l !== null && client.state === 'BOUND') {
      const rec = server.leases(now).find((x) => x.address === l.address);
      assert.ok(rec !== undefined && rec.state === 'bound', `server has ${JSON.stringify(rec)}`);
    }
  }), 150);
});
