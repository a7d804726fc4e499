import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DnsType, dnsNameEquals, dnsNameIsUnder, dnsNameKey, dnsNameLabels, dnsQuery, dnsRcodeName, dnsTypeFromName,
  dnsTypeName, parseDns, reverseName, txtStrings, writeDns, EDNS_OPTION_COOKIE, type DnsMessage, type DnsRecord,
} from '../../src/wire/dns.js';
import { parseAddress } from '../../src/wire/address.js';

function msg(x: DnsMessage | string): DnsMessage {
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((h) => parseInt(h, 16)));

/**
 * `dig example.com A` as BIND 9.18 sends it: RD and AD set, one question, and an OPT RR advertising
 * 1232 bytes with a client cookie (RFC 7873 §4: option code 10, an 8-byte client cookie alone before
 * the server has answered with its own part).
 */
const DIG_QUERY = hex(`
  b1 6e 01 20 00 01 00 00 00 00 00 01
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00  00 01 00 01
  00 00 29 04 d0 00 00 00 00 00 0c
  00 0a 00 08 7a 3c 91 04 e2 5f 10 a8
`);

test('a real dig query with an EDNS0 cookie: every field, and written back byte for byte', () => {
  const m = msg(parseDns(DIG_QUERY));
  assert.equal(m.id, 0xb16e);
  assert.deepEqual([m.qr, m.opcode, m.aa, m.tc, m.rd, m.ra, m.z, m.ad, m.cd, m.rcode],
    [false, 0, false, false, true, false, false, true, false, 0]);
  assert.deepEqual(m.questions, [{ name: 'example.com', type: DnsType.A, class: 1 }]);
  assert.deepEqual(m.additionals, []);
  assert.ok(m.edns);
  assert.equal(m.edns.udpPayloadSize, 1232);
  assert.equal(m.edns.version, 0);
  assert.equal(m.edns.dnssecOk, false);
  assert.equal(m.edns.options.length, 1);
  assert.equal(m.edns.options[0]!.code, EDNS_OPTION_COOKIE);
  assert.deepEqual(Array.from(m.edns.options[0]!.data), [0x7a, 0x3c, 0x91, 0x04, 0xe2, 0x5f, 0x10, 0xa8]);
  assert.deepEqual(writeDns(m), DIG_QUERY);
});

test('dnsQuery builds what a stub sends; names are case-insensitive, the final dot optional', () => {
  const q = dnsQuery(7, 'Example.COM.', DnsType.AAAA, { edns: {} });
  const m = msg(parseDns(writeDns(q)));
  assert.equal(m.questions[0]!.name, 'Example.COM');
  assert.equal(m.rd, true);
  assert.equal(m.edns!.udpPayloadSize, 1232);
  assert.ok(dnsNameEquals('WWW.Example.COM.', 'www.example.com'));
  assert.ok(!dnsNameEquals('www.example.com', 'www.example.co'));
  assert.ok(dnsNameEquals('a\\.b.c', 'a\\046B.C'));
  assert.ok(dnsNameIsUnder('host.LAN', 'lan'));
  assert.ok(dnsNameIsUnder('lan', 'lan.'));
  assert.ok(!dnsNameIsUnder('xlan', 'lan'));
  assert.ok(dnsNameIsUnder('anything', ''));
  assert.equal(dnsNameKey('A.B.'), 'a.b');
});

test('a response is written with compression pointers (RFC 1035 §4.1.4) and read back', () => {
  const answers: DnsRecord[] = [
    { name: 'www.example.com', type: DnsType.CNAME, class: 1, ttl: 300, data: { kind: 'CNAME', name: 'web.example.com' } },
    { name: 'web.example.com', type: DnsType.A, class: 1, ttl: 60, data: { kind: 'A', address: '192.0.2.7' } },
  ];
  const m: DnsMessage = {
    ...dnsQuery(1, 'www.example.com', DnsType.A), qr: true, ra: true, answers,
  };
  const b = writeDns(m);
  // Question name at 12; the first answer's owner is a pointer to it.
  const q = 12 + 17 + 4;
  assert.deepEqual([b[q], b[q + 1]], [0xc0, 12]);
  // The CNAME target "web" + pointer to "example.com" (offset 16 in the question name).
  const rd = q + 2 + 10;
  assert.deepEqual(Array.from(b.subarray(rd, rd + 6)), [3, 0x77, 0x65, 0x62, 0xc0, 16]);
  const back = msg(parseDns(b));
  assert.deepEqual(back.answers, answers);
  assert.equal(b.length, 12 + 21 + (2 + 10 + 6) + (2 + 10 + 4));
});

test('every typed rdata round-trips; an unknown type is kept as bytes; SRV targets are not compressed (RFC 2782)', () => {
  const rr = (name: string, type: number, data: DnsRecord['data']): DnsRecord => ({ name, type, class: 1, ttl: 3600, data });
  const answers: DnsRecord[] = [
    rr('x.test', DnsType.A, { kind: 'A', address: '10.0.2.15' }),
    rr('x.test', DnsType.AAAA, { kind: 'AAAA', address: 'fd00::15' }),
    rr('x.test', DnsType.NS, { kind: 'NS', name: 'ns1.x.test' }),
    rr('15.2.0.10.in-addr.arpa', DnsType.PTR, { kind: 'PTR', name: 'x.test' }),
    rr('x.test', DnsType.MX, { kind: 'MX', preference: 10, exchange: 'mail.x.test' }),
    rr('x.test', DnsType.TXT, { kind: 'TXT', strings: txtStrings('v=spf1 -all', '', 'ünïcode') }),
    rr('_http._tcp.x.test', DnsType.SRV, { kind: 'SRV', priority: 1, weight: 2, port: 8080, target: 'x.test' }),
    rr('x.test', DnsType.SOA, {
      kind: 'SOA', mname: 'ns1.x.test', rname: 'hostmaster.x.test', serial: 2026120701, refresh: 3600,
      retry: 600, expire: 86400, minimum: 30,
    }),
    rr('x.test', 65280, { kind: 'raw', bytes: Uint8Array.of(1, 2, 3) }),
    rr('x.test', DnsType.HINFO, { kind: 'raw', bytes: Uint8Array.of(1, 0x41, 1, 0x42) }),
  ];
  const m: DnsMessage = { ...dnsQuery(2, 'x.test', DnsType.ANY), qr: true, aa: true, answers };
  const b = writeDns(m);
  assert.deepEqual(msg(parseDns(b)).answers, answers);
  // The SRV target "x.test" is written in full although "x.test" is already in the message.
  const srv = Array.from(b).join(',').indexOf([0, 1, 0, 2, 0x1f, 0x90, 1, 0x78, 4].join(','));
  assert.ok(srv >= 0, 'SRV target written uncompressed');
  assert.equal(dnsTypeName(65280), 'TYPE65280');
  assert.equal(dnsTypeName(28), 'AAAA');
  assert.equal(dnsTypeFromName('aaaa'), 28);
  assert.equal(dnsTypeFromName('TYPE99'), 99);
  assert.equal(dnsTypeFromName('nope'), null);
});

test('compression pointers: a self-pointer, a forward pointer, a pointer past the end and a 2-cycle are drops, never a hang', () => {
  const header = (qd: number): number[] => [0, 1, 0, 0, 0, qd, 0, 0, 0, 0, 0, 0];
  // Name at 12 is a pointer to itself.
  assert.equal(parseDns(Uint8Array.of(...header(1), 0xc0, 12, 0, 1, 0, 1)), 'dns-pointer-loop');
  // Pointer forward to 14, which is a label then a pointer back to 12: a 2-cycle.
  assert.equal(parseDns(Uint8Array.of(...header(1), 0xc0, 14, 1, 0x61, 0xc0, 12, 0, 1, 0, 1)), 'dns-pointer-loop');
  // Pointer beyond the message.
  assert.equal(parseDns(Uint8Array.of(...header(1), 0xc0, 200, 0, 1, 0, 1)), 'dns-pointer-loop');
  // A legal backward chain: "a" + pointer to an earlier "b" + root.
  const ok = Uint8Array.of(0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0x62, 0, 0, 1, 0, 1, 1, 0x61, 0xc0, 12, 0, 1, 0, 1);
  assert.deepEqual(msg(parseDns(ok)).questions.map((q) => q.name), ['b', 'a.b']);
  // Reserved label types 01 and 10.
  assert.equal(parseDns(Uint8Array.of(...header(1), 0x40, 0, 0, 1, 0, 1)), 'dns-bad-label');
  assert.equal(parseDns(Uint8Array.of(...header(1), 0x80, 0, 0, 1, 0, 1)), 'dns-bad-label');
});

test('names: labels over 63 bytes cannot be written, names over 255 bytes are drops (RFC 1035 §2.3.4)', () => {
  const l63 = 'a'.repeat(63);
  assert.equal(dnsNameLabels(`${l63}a`), null);
  assert.equal(dnsNameLabels(`${l63}.${l63}.${l63}.${l63}`), null); // 4*64+1 = 257
  assert.ok(dnsNameLabels(`${l63}.${l63}.${l63}.${'a'.repeat(61)}`)); // 255 exactly
  assert.equal(dnsNameLabels('a..b'), null);
  assert.throws(() => writeDns(dnsQuery(1, `${l63}a.test`, 1)), RangeError);
  // On the wire: 4 labels of 63 = 257 bytes.
  const parts: number[] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 4; i++) parts.push(63, ...new Array<number>(63).fill(0x61));
  parts.push(0, 0, 1, 0, 1);
  assert.equal(parseDns(Uint8Array.from(parts)), 'dns-name-too-long');
  // Escapes: '.' inside a label and a non-printable byte.
  const odd: DnsMessage = dnsQuery(3, 'a\\.b\\000.test', 1);
  const back = msg(parseDns(writeDns(odd)));
  assert.equal(back.questions[0]!.name, 'a\\.b\\000.test');
  assert.deepEqual(dnsNameLabels('a\\.b\\000.test')!.map((l) => l.length), [4, 4]);
});

test('huge counts, truncation anywhere and bad rdata are drop reasons', () => {
  assert.equal(parseDns(new Uint8Array(11)), 'dns-truncated');
  assert.equal(parseDns(Uint8Array.of(0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), 'dns-bad-count');
  const full = writeDns({
    ...dnsQuery(9, 'a.test', 1), qr: true,
    answers: [{ name: 'a.test', type: 1, class: 1, ttl: 5, data: { kind: 'A', address: '192.0.2.1' } }],
  });
  for (let n = 0; n < full.length; n++) {
    const r = parseDns(full.subarray(0, n));
    assert.ok(r === 'dns-truncated' || r === 'dns-bad-count', `cut at ${n}: ${String(r)}`);
  }
  // An A record of 5 bytes.
  const bad = Uint8Array.from([...full.subarray(0, full.length - 6), 0, 5, 1, 2, 3, 4, 5]);
  assert.equal(parseDns(bad), 'dns-bad-rdata');
  // A CNAME whose name runs past RDLENGTH.
  const cname = Uint8Array.of(0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0x61, 0);
  assert.equal(parseDns(cname), 'dns-bad-rdata');
  // RFC 2181 §8: a TTL with the top bit set reads as 0.
  const ttl = full.slice();
  ttl[full.length - 10] = 0x80;
  assert.equal(msg(parseDns(ttl)).answers[0]!.ttl, 0);
});

test('EDNS: extended RCODE (BADVERS = 16) lives in the OPT RR; two OPTs or an OPT elsewhere are drops (RFC 6891)', () => {
  const m: DnsMessage = { ...dnsQuery(4, 'x.test', 1, { edns: { dnssecOk: true, version: 1 } }), qr: true, rcode: 16 };
  const b = writeDns(m);
  const back = msg(parseDns(b));
  assert.equal(back.rcode, 16);
  assert.equal(dnsRcodeName(back.rcode), 'BADVERS');
  assert.equal(back.edns!.dnssecOk, true);
  assert.equal(back.edns!.version, 1);
  assert.equal(b[b.length - 11 + 5], 1); // extended RCODE byte: 16 >> 4
  assert.equal(b[3]! & 15, 0);
  assert.throws(() => writeDns({ ...m, edns: null }), RangeError);
  // Two OPT RRs.
  const opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
  const two = Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, ...opt, ...opt);
  assert.equal(parseDns(two), 'dns-bad-opt');
  // OPT in the answer section.
  assert.equal(parseDns(Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, ...opt)), 'dns-bad-opt');
  // OPT owned by a name other than the root.
  assert.equal(parseDns(Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x61, ...opt)), 'dns-bad-opt');
  // An option running past the RR.
  assert.equal(parseDns(Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 8)), 'dns-bad-opt');
});

function manyA(n: number, name = 'big.test'): DnsRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    name, type: 1, class: 1, ttl: 60, data: { kind: 'A' as const, address: `10.0.${i >> 8}.${i & 255}` },
  }));
}

test('truncation: whole RRsets leave from the end; TC only when answer or authority data went (RFC 2181 §9); OPT stays', () => {
  const base = dnsQuery(5, 'big.test', 1, { edns: { udpPayloadSize: 4096 } });
  // 40 A records (16 bytes each with a pointer owner) = 640 + header/question/OPT > 512.
  const big: DnsMessage = { ...base, qr: true, answers: manyA(40) };
  const full = writeDns(big);
  assert.ok(full.length > 512);
  assert.deepEqual(writeDns(big, { maxLength: full.length }), full);
  const cut = writeDns(big, { maxLength: 512 });
  assert.ok(cut.length <= 512);
  const m = msg(parseDns(cut));
  assert.equal(m.tc, true);
  assert.equal(m.answers.length, 0, 'one RRset: all of it or none');
  assert.ok(m.edns, 'the OPT RR is kept');
  // Two RRsets: the second goes, the first stays.
  const two: DnsMessage = { ...big, answers: [...manyA(10, 'a.test'), ...manyA(30, 'b.test')] };
  const m2 = msg(parseDns(writeDns(two, { maxLength: 512 })));
  assert.equal(m2.tc, true);
  assert.deepEqual(m2.answers.map((a) => a.name), new Array<string>(10).fill('a.test'));
  // Only additional data dropped: no TC.
  const glue: DnsMessage = { ...base, qr: true, answers: manyA(2), additionals: manyA(40, 'glue.test') };
  const m3 = msg(parseDns(writeDns(glue, { maxLength: 512 })));
  assert.equal(m3.tc, false);
  assert.equal(m3.answers.length, 2);
  assert.equal(m3.additionals.length, 0);
  assert.ok(m3.edns);
  // Without room even for the question: header + question + TC.
  const tiny = msg(parseDns(writeDns(big, { maxLength: 20 })));
  assert.equal(tiny.tc, true);
  assert.equal(tiny.questions.length, 1);
});

test('reverseName gives in-addr.arpa and nibble ip6.arpa names (RFC 1035 §3.5, RFC 3596 §2.5)', () => {
  assert.equal(reverseName(parseAddress('10.0.2.15')!), '15.2.0.10.in-addr.arpa');
  assert.equal(reverseName(parseAddress('2001:db8::567:89ab')!),
    'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
});
