/**
 * Property tests (fast-check) for the DHCP codec, src/wire/dhcp.ts, in the style of
 * codecs.property.test.ts:
 *  - round trip: for arbitrary well-formed messages (every typed option, unknown options, options
 *    longer than 255 bytes that RFC 3396 splits), parse(write(m)) gives m back;
 *  - totality: parseDhcp returns a message or a known drop reason for any bytes, for bytes that
 *    start like a DHCP message, and for truncations and bit flips of valid ones; what it returns
 *    is canonical (writing it and parsing again gives it back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Arbitrary, IProperty } from 'fast-check';
import {
  BOOTREPLY, BOOTREQUEST, DhcpOption, parseDhcp, writeDhcp, type DhcpMessage, type DhcpOptions, type DhcpRawOption,
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
