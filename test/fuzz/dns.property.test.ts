/**
 * Property tests (fast-check) for the DNS codec (src/wire/dns.ts):
 *  - round trips: for generated messages (every typed rdata, unknown types, EDNS with options and an
 *    extended RCODE, names with any label bytes), parseDns(writeDns(m)) gives m back;
 *  - totality: parseDns returns a message or a known drop reason for any bytes, truncations and bit
 *    flips of valid messages and chains of compression pointers included, and whatever it returns
 *    as a message can be written again and reads back the same;
 *  - truncation to a size: the result fits, parses, keeps whole RRsets as a prefix of each section,
 *    sets TC exactly when answer or authority data went, and keeps the OPT RR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Arbitrary, IProperty } from 'fast-check';
import { formatAddress } from '../../src/wire/address.js';
import {
  DnsType, dnsNameEquals, dnsNameKey, dnsNameLabels, parseDns, writeDns, type DnsEdns, type DnsMessage, type DnsQuestion, type DnsRdata,
  type DnsRecord,
} from '../../src/wire/dns.js';
import { DROP_REASONS, u16, u8 } from './gen.js';

function run<Ts>(p: IProperty<Ts>, numRuns: number): void {
  fc.assert(p, { numRuns });
}

function message(x: DnsMessage | string): DnsMessage {
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

function isReason(x: unknown): boolean {
  return typeof x === 'string' && DROP_REASONS.has(x);
}

// ============================================================================ generators

/** A label's presentation form, written independently of the codec (dig's escaping, RFC 4343 §2.1). */
function labelText(l: number[]): string {
  return l.map((c) => {
    if (c === 0x2e || c === 0x5c) return `\\${String.fromCharCode(c)}`;
    if (c > 0x20 && c < 0x7f) return String.fromCharCode(c);
    return `\\${String(c).padStart(3, '0')}`;
  }).join('');
}

/** Mostly small alphabets so that suffixes repeat and compression has work to do. */
const labelArb: Arbitrary<number[]> = fc.oneof(
  { arbitrary: fc.constantFrom<number[]>([0x61], [0x62], [0x77, 0x77, 0x77], [0x74, 0x65, 0x73, 0x74], [0x45, 0x78]), weight: 4 },
  { arbitrary: fc.array(fc.constantFrom<number>(0x61, 0x62, 0x41, 0x2d, 0x30), { minLength: 1, maxLength: 10 }), weight: 3 },
  { arbitrary: fc.array(u8, { minLength: 1, maxLength: 63 }), weight: 1 },
);

const nameArb: Arbitrary<string> = fc.array(labelArb, { maxLength: 6 })
  .filter((ls) => ls.reduce((n, l) => n + l.length + 1, 1) <= 255)
  .map((ls) => ls.map(labelText).join('.'));

const ttlArb = fc.oneof(fc.constantFrom(0, 60, 3600), fc.integer({ min: 0, max: 0x7fffffff }));
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatAddress);
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(formatAddress);
const TYPED = new Set<number>([1, 2, 5, 6, 12, 15, 16, 28, 33, 41]);

const recordArb: Arbitrary<DnsRecord> = fc.tuple(nameArb, u16, ttlArb, fc.oneof(
  ipv4.map((address): [number, DnsRdata] => [DnsType.A, { kind: 'A', address }]),
  ipv6.map((address): [number, DnsRdata] => [DnsType.AAAA, { kind: 'AAAA', address }]),
  nameArb.map((name): [number, DnsRdata] => [DnsType.NS, { kind: 'NS', name }]),
  nameArb.map((name): [number, DnsRdata] => [DnsType.CNAME, { kind: 'CNAME', name }]),
  nameArb.map((name): [number, DnsRdata] => [DnsType.PTR, { kind: 'PTR', name }]),
  fc.tuple(u16, nameArb).map(([preference, exchange]): [number, DnsRdata] => [DnsType.MX, { kind: 'MX', preference, exchange }]),
  fc.array(fc.uint8Array({ maxLength: 255 }), { maxLength: 4 })
    .map((strings): [number, DnsRdata] => [DnsType.TXT, { kind: 'TXT', strings }]),
  fc.tuple(u16, u16, u16, nameArb).map(([priority, weight, port, target]): [number, DnsRdata] =>
    [DnsType.SRV, { kind: 'SRV', priority, weight, port, target }]),
  fc.tuple(nameArb, nameArb, u32, u32, u32, u32, u32).map(([mname, rname, serial, refresh, retry, expire, minimum]):
    [number, DnsRdata] => [DnsType.SOA, { kind: 'SOA', mname, rname, serial, refresh, retry, expire, minimum }]),
  fc.tuple(u16.filter((t) => !TYPED.has(t)), fc.uint8Array({ maxLength: 40 }))
    .map(([t, bytes]): [number, DnsRdata] => [t, { kind: 'raw', bytes }]),
)).map(([name, klass, ttl, [type, data]]) => ({ name, type, class: klass, ttl, data }));

/** Records that share owners and types, so that RRsets of several records occur. */
const sectionArb = (max: number): Arbitrary<DnsRecord[]> => fc.array(
  fc.tuple(recordArb, fc.integer({ min: 1, max: 4 })), { maxLength: max },
).map((xs) => xs.flatMap(([r, n]) => new Array<DnsRecord>(n).fill(r)));

// fc.record makes null-prototype objects; the parser's are plain, and deepEqual compares prototypes.
const plainObject = <T extends object>(o: T): T => ({ ...o });

const questionArb: Arbitrary<DnsQuestion> = fc.record({ name: nameArb, type: u16, class: u16 }).map(plainObject);

const ednsArb: Arbitrary<DnsEdns | null> = fc.option(fc.record({
  udpPayloadSize: u16,
  version: u8,
  dnssecOk: fc.boolean(),
  z: fc.integer({ min: 0, max: 0x7fff }),
  options: fc.array(fc.record({ code: u16, data: fc.uint8Array({ maxLength: 30 }) }).map(plainObject), { maxLength: 3 }),
}).map(plainObject), { freq: 2 });

const messageArb: Arbitrary<DnsMessage> = fc.tuple(
  fc.record({
    id: u16, qr: fc.boolean(), opcode: fc.integer({ min: 0, max: 15 }), aa: fc.boolean(), tc: fc.boolean(),
    rd: fc.boolean(), ra: fc.boolean(), z: fc.boolean(), ad: fc.boolean(), cd: fc.boolean(),
  }).map(plainObject),
  fc.array(questionArb, { maxLength: 2 }), sectionArb(4), sectionArb(2), sectionArb(3), ednsArb,
  fc.integer({ min: 0, max: 0xfff }),
).map(([h, questions, answers, authorities, additionals, edns, rc]) => ({
  ...h, rcode: edns ? rc : rc & 15, questions, answers, authorities, additionals, edns,
}));

// ============================================================================ properties

test('parseDns(writeDns(m)) gives m back for generated messages of every record kind', () => {
  run(fc.property(messageArb, (m) => {
    const b = writeDns(m);
    assert.deepEqual(message(parseDns(b)), m);
    // The header's counts say what is there (OPT counted in ARCOUNT).
    const v = new DataView(b.buffer, b.byteOffset);
    assert.deepEqual([v.getUint16(4), v.getUint16(6), v.getUint16(8), v.getUint16(10)],
      [m.questions.length, m.answers.length, m.authorities.length, m.additionals.length + (m.edns ? 1 : 0)]);
  }), 400);
});

test('compression never makes a message longer, and repeated names become 2-byte pointers', () => {
  run(fc.property(nameArb.filter((n) => n !== ''), fc.integer({ min: 2, max: 20 }), (name, n) => {
    const rr: DnsRecord = { name, type: 1, class: 1, ttl: 1, data: { kind: 'A', address: '192.0.2.1' } };
    const m: DnsMessage = {
      id: 1, qr: true, opcode: 0, aa: false, tc: false, rd: false, ra: false, z: false, ad: false, cd: false, rcode: 0,
      questions: [{ name, type: 1, class: 1 }], answers: new Array<DnsRecord>(n).fill(rr), authorities: [], additionals: [],
      edns: null,
    };
    const b = writeDns(m);
    const wire = writeDns({ ...m, answers: [] }).length - 12 - 4;
    assert.equal(b.length, 12 + wire + 4 + n * (2 + 10 + 4));
  }), 200);
});

test('totality: any bytes give a message or a known drop reason, and a parsed message writes and reads back the same', () => {
  run(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
    const r = parseDns(b);
    if (typeof r === 'string') {
      assert.ok(isReason(r), r);
      return;
    }
    assert.deepEqual(message(parseDns(writeDns(r))), r);
  }), 2000);
});

test('totality: headers with small counts over random bodies (reaching the record parsers)', () => {
  run(fc.property(u16, fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 200 }),
    (id, counts, body) => {
      const b = new Uint8Array(12 + body.length);
      const v = new DataView(b.buffer);
      v.setUint16(0, id);
      counts.forEach((c, i) => v.setUint16(4 + 2 * i, c));
      b.set(body, 12);
      const r = parseDns(b);
      if (typeof r === 'string') assert.ok(isReason(r), r);
      else assert.deepEqual(message(parseDns(writeDns(r))), r);
    }), 2000);
});

test('truncations and bit flips of valid messages never throw and give a message or a known reason', () => {
  run(fc.property(messageArb, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { maxLength: 4 }),
    (m, cut, flips) => {
      const valid = writeDns(m);
      const t = parseDns(valid.subarray(0, cut % (valid.length + 1)));
      if (typeof t === 'string') assert.ok(isReason(t), t);
      const p = valid.slice();
      for (const [at, bit] of flips) p[at % p.length]! ^= 1 << bit;
      const r = parseDns(p);
      if (typeof r === 'string') assert.ok(isReason(r), r);
      else assert.deepEqual(message(parseDns(writeDns(r))), r);
    }), 500);
});

test('chains of compression pointers to anywhere end: a name, or dns-pointer-loop / a known reason', () => {
  run(fc.property(fc.array(fc.oneof(
    fc.integer({ min: 0, max: 80 }).map((t) => [0xc0 | (t >> 8), t & 0xff]),
    fc.constantFrom([1, 0x61], [2, 0x62, 0x63], [0])), { minLength: 1, maxLength: 30 }), (parts) => {
    const body = parts.flat();
    const b = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...body, 0, 1, 0, 1]);
    const r = parseDns(b);
    if (typeof r === 'string') assert.ok(isReason(r), r);
    else assert.ok(r.questions[0]!.name.length <= 255 * 4);
  }), 2000);
});

/** RRset boundaries of a section: the counts after which a cut is allowed. */
function boundaries(list: DnsRecord[]): Set<number> {
  const out = new Set<number>([0]);
  for (let i = 1; i <= list.length; i++) {
    const a = list[i - 1]!;
    const b = list[i];
    if (!b || a.type !== b.type || a.class !== b.class || !dnsNameEquals(a.name, b.name)) out.add(i);
  }
  return out;
}

test('writeDns with maxLength: fits, parses, whole RRsets from the front of each section, TC exactly when needed data went, OPT kept', () => {
  run(fc.property(messageArb.map((m) => ({ ...m, tc: false })), fc.integer({ min: 12, max: 1500 }), (m, max) => {
    const full = writeDns(m);
    const b = writeDns(m, { maxLength: max });
    const r = message(parseDns(b));
    if (full.length <= max) {
      assert.deepEqual(b, full);
      return;
    }
    const minimal = writeDns({ ...m, answers: [], authorities: [], additionals: [] }).length;
    if (minimal <= max) assert.ok(b.length <= max, `${b.length} > ${max}`);
    assert.deepEqual(r.questions, m.questions);
    assert.deepEqual(r.edns, m.edns);
    assert.deepEqual(r.answers, m.answers.slice(0, r.answers.length));
    assert.deepEqual(r.authorities, m.authorities.slice(0, r.authorities.length));
    assert.deepEqual(r.additionals, m.additionals.slice(0, r.additionals.length));
    assert.ok(boundaries(m.answers).has(r.answers.length));
    assert.ok(boundaries(m.authorities).has(r.authorities.length));
    assert.ok(boundaries(m.additionals).has(r.additionals.length));
    // Sections go from the end: nothing of a later section survives an earlier one's cut.
    if (r.answers.length < m.answers.length) assert.equal(r.authorities.length, 0);
    if (r.authorities.length < m.authorities.length) assert.equal(r.additionals.length, 0);
    const needed = r.answers.length < m.answers.length || r.authorities.length < m.authorities.length;
    assert.equal(r.tc, needed || minimal > max);
  }), 400);
});

test('dnsNameKey: the fast path for plain names agrees with the label-by-label one (a name written with escapes)', () => {
  const plainLabel = fc.stringMatching(/^[A-Za-z0-9_-]{1,63}$/);
  run(fc.property(fc.array(plainLabel, { minLength: 1, maxLength: 6 }), fc.boolean(), (labels, dot) => {
    const name = labels.join('.') + (dot ? '.' : '');
    // The same name with every byte as \DDD: only the slow path reads it.
    const escaped = labels.map((l) => [...l].map((c) => `\\${String(c.charCodeAt(0)).padStart(3, '0')}`).join('')).join('.');
    const wire = labels.reduce((n, l) => n + l.length + 1, 1);
    if (wire > 255) {
      assert.equal(dnsNameLabels(name), null);
      return;
    }
    assert.equal(dnsNameKey(name), dnsNameKey(escaped));
    assert.equal(dnsNameKey(name), labels.join('.').toLowerCase());
  }), 500);
});
