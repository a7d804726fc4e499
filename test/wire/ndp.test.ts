import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import { formatMac, parseMac } from '../../src/wire/ethernet.js';
import {
  findOption, isSolicitedNode, ndpLength, parseNdp, solicitedNodeAddress, writeNdp, type NdpMessage,
} from '../../src/wire/ndp.js';
import { hex, toHex } from './helpers.js';

const A = parseAddress('fe80::5054:ff:fe12:3456')!;
const SN = parseAddress('ff02::1:ff00:1')!;

function msg(x: NdpMessage | string): NdpMessage {
  if (typeof x === 'string') assert.fail(`expected NDP, got '${x}'`);
  return x;
}

function emit(m: NdpMessage, src = A, dst = SN): Uint8Array {
  const out = new Uint8Array(ndpLength(m));
  assert.equal(writeNdp(out, 0, m, src, dst), out.length);
  return out;
}

function parse(b: Uint8Array, src = A, dst = SN): NdpMessage | string {
  return parseNdp(b, pseudoHeaderSum(src, dst, 58, b.length));
}

// A Neighbor Solicitation for fe80::1 from fe80::5054:ff:fe12:3456 (52:54:00:12:34:56), the ICMPv6
// part in the layout Linux sends; tshark 4.x decodes these bytes with "[Checksum Status: Good]".
const LINUX_NS = hex('8700722200000000fe800000000000000000000000000001' + '0101525400123456');

test('a Linux-format Neighbor Solicitation parses: target, source link-layer address', () => {
  const m = msg(parse(LINUX_NS, A, parseAddress('ff02::1:ff00:1')!));
  assert.equal(m.type, 'neighbor-solicitation');
  if (m.type !== 'neighbor-solicitation') return;
  assert.equal(formatAddress(m.target), 'fe80::1');
  const slla = findOption(m.options, 'source-link-layer');
  assert.ok(slla);
  assert.equal(formatMac(slla.address), '52:54:00:12:34:56');
  // and writeNdp produces the same bytes
  assert.equal(toHex(emit(m, A, parseAddress('ff02::1:ff00:1')!)), toHex(LINUX_NS));
});

test('RA with every option RFC 4861/8106 defines round-trips, checksum verifies with the pseudo-header', () => {
  const ra: NdpMessage = {
    type: 'router-advertisement', curHopLimit: 64, managed: false, other: true, routerLifetime: 1800,
    reachableTime: 30000, retransTimer: 1000,
    options: [
      { kind: 'source-link-layer', address: parseMac('02:00:00:00:00:02')! },
      { kind: 'mtu', mtu: 1500 },
      { kind: 'prefix', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 2592000, preferredLifetime: 604800, prefix: parseAddress('fd00:0:2::')! },
      { kind: 'rdnss', lifetime: 1800, servers: [parseAddress('fd00:0:2::3')!, parseAddress('2001:db8::53')!] },
      { kind: 'unknown', type: 31, data: new Uint8Array(14).fill(7) },
    ],
  };
  const b = emit(ra, A, parseAddress('ff02::1')!);
  assert.equal(b.length, 16 + 8 + 8 + 32 + 40 + 16);
  assert.equal(sum16(b, 0, b.length, pseudoHeaderSum(A, parseAddress('ff02::1')!, 58, b.length)), 0xffff);
  // Byte layout of the fixed part (§4.2) and of the prefix option (§4.6.2: L|A = 0xc0).
  assert.equal(toHex(b.subarray(4, 16)), '40' + '40' + '0708' + '00007530' + '000003e8');
  assert.equal(toHex(b.subarray(32, 36)), '0304' + '40c0');
  assert.deepEqual(msg(parse(b, A, parseAddress('ff02::1')!)), ra);
  // A different destination breaks the pseudo-header sum.
  assert.equal(parse(b, A, parseAddress('ff02::2')!), 'ndp-bad-checksum');
});

test('NA flags R S O are bits 0x80 0x40 0x20 of byte 4 (§4.4)', () => {
  const na: NdpMessage = { type: 'neighbor-advertisement', router: true, solicited: false, override: true, target: A, options: [] };
  const b = emit(na);
  assert.equal(b[4], 0xa0);
  assert.deepEqual(msg(parse(b)), na);
});

test('RS and Redirect round-trip', () => {
  const rs: NdpMessage = { type: 'router-solicitation', options: [{ kind: 'source-link-layer', address: parseMac('02:00:00:00:00:09')! }] };
  assert.deepEqual(msg(parse(emit(rs))), rs);
  const rd: NdpMessage = {
    type: 'redirect', target: parseAddress('fe80::9')!, destination: parseAddress('2001:db8::1')!,
    options: [{ kind: 'redirected-header', data: new Uint8Array(48).fill(0x60) }],
  };
  assert.deepEqual(msg(parse(emit(rd))), rd);
});

test('NDP drops: truncated, bad code, zero-length and overrunning options, malformed known options', () => {
  assert.equal(parse(LINUX_NS.subarray(0, 3)), 'ndp-truncated');
  const ns: NdpMessage = { type: 'neighbor-solicitation', target: A, options: [] };
  const b = emit(ns);
  assert.equal(parse(b.subarray(0, 23)), 'ndp-truncated');
  const withCode = b.slice();
  withCode[1] = 1;
  assert.equal(parse(withCode), 'ndp-bad-checksum');
  // Code 1 with a checksum fixed up for it: still refused (§7.1.1 "ICMP Code is 0").
  const fixed = new Uint8Array(24);
  writeNdp(fixed, 0, ns, A, SN);
  fixed[1] = 1;
  fixed[2] = 0;
  fixed[3] = 0;
  const c = ~sum16(fixed, 0, 24, pseudoHeaderSum(A, SN, 58, 24)) & 0xffff;
  fixed[2] = c >>> 8;
  fixed[3] = c & 0xff;
  assert.equal(parse(fixed), 'ndp-bad-code');
  const withOption = (opt: number[]): Uint8Array => {
    const out = new Uint8Array(24 + opt.length);
    out.set(b);
    out.set(opt, 24);
    out[2] = 0;
    out[3] = 0;
    const s = ~sum16(out, 0, out.length, pseudoHeaderSum(A, SN, 58, out.length)) & 0xffff;
    out[2] = s >>> 8;
    out[3] = s & 0xff;
    return out;
  };
  assert.equal(parse(withOption([1, 0, 0, 0, 0, 0, 0, 0])), 'ndp-bad-option'); // length 0 (§4.6)
  assert.equal(parse(withOption([1, 2, 0, 0, 0, 0, 0, 0])), 'ndp-bad-option'); // runs past the end
  assert.equal(parse(withOption([5, 2, ...new Array(14).fill(0)])), 'ndp-bad-option'); // MTU of length 2
  assert.equal(parse(withOption([25, 2, ...new Array(14).fill(0)])), 'ndp-bad-option'); // RDNSS length 2 (RFC 8106 §5.1)
  assert.equal(parse(withOption([3, 1, 0, 0, 0, 0, 0, 0])), 'ndp-bad-option'); // prefix of length 1
  assert.equal(parse(withOption([1])), 'ndp-bad-option'); // half an option header
  // Unknown options are skipped (§4.6) and kept.
  const u = msg(parse(withOption([200, 1, 1, 2, 3, 4, 5, 6])));
  assert.deepEqual(u.options, [{ kind: 'unknown', type: 200, data: new Uint8Array([1, 2, 3, 4, 5, 6]) }]);
  // Not an NDP type.
  assert.equal(parseNdp(new Uint8Array([128, 0, 0, 0, 0, 0, 0, 0]), 0), 'ndp-unhandled');
});

test('solicited-node multicast (RFC 4291 §2.7.1): ff02::1:ff + the low 24 bits', () => {
  assert.equal(formatAddress(solicitedNodeAddress(parseAddress('2001:db8::abcd:1234:5678')!)), 'ff02::1:ff34:5678');
  assert.ok(isSolicitedNode(parseAddress('ff02::1:ff34:5678')!));
  assert.ok(!isSolicitedNode(parseAddress('ff02::1')!));
  assert.ok(!isSolicitedNode(parseAddress('ff02::2:ff34:5678')!));
});
