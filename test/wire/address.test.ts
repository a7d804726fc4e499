import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressEquals, formatAddress, inPrefix, parseAddress, parseCidr } from '../../src/wire/address.js';
import { toHex } from './helpers.js';

function parsed(s: string): string {
  const b = parseAddress(s);
  assert.ok(b, `${s} should parse`);
  return toHex(b);
}

test('dotted quads', () => {
  assert.equal(parsed('10.0.0.1'), '0a000001');
  assert.equal(parsed('255.255.255.255'), 'ffffffff');
  assert.equal(parsed('0.0.0.0'), '00000000');
  assert.equal(formatAddress(new Uint8Array([192, 168, 1, 20])), '192.168.1.20');
});

test('IPv6 forms, :: compression and embedded dotted quads', () => {
  assert.equal(parsed('::'), '00'.repeat(16));
  assert.equal(parsed('::1'), '00'.repeat(15) + '01');
  assert.equal(parsed('fd00::1'), 'fd00' + '00'.repeat(13) + '01');
  assert.equal(parsed('2001:db8::1'), '20010db8' + '00'.repeat(11) + '01');
  assert.equal(parsed('2001:DB8:0:0:1:0:0:1'), '20010db8000000000001000000000001');
  assert.equal(parsed('1::'), '0001' + '00'.repeat(14));
  assert.equal(parsed('1:2:3:4:5:6:7::'), '00010002000300040005000600070000');
  assert.equal(parsed('::ffff:1.2.3.4'), '00000000000000000000ffff01020304');
  assert.equal(parsed('::1.2.3.4'), '00'.repeat(12) + '01020304');
  assert.equal(parsed('1:2:3:4:5:6:1.2.3.4'), '00010002000300040005000601020304');
  assert.equal(parsed('64:ff9b::192.0.2.33'), '0064ff9b0000000000000000c0000221');
});

test('invalid strings are null', () => {
  for (const s of [
    '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '1.2.3.4 ', ' 1.2.3.4', 'a.b.c.d',
    ':', ':::', '1:::2', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', ':1::', '1::2:', '::ffff:1.2.3', '::ffff:1.2.3.256',
    '1.2.3.4::', '::1.2.3.4:5', 'fe80::1%eth0', '1:2:3:4:5:6:7:1.2.3.4', 'localhost', '1.2.3.4/24',
  ]) {
    assert.equal(parseAddress(s), null, JSON.stringify(s));
  }
});

test('formatAddress is RFC 5952 canonical', () => {
  const fmt = (s: string): string => formatAddress(parseAddress(s)!);
  assert.equal(fmt('::'), '::');
  assert.equal(fmt('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(fmt('FD00:0000:0000:0000:0000:0000:0000:0001'), 'fd00::1');
  assert.equal(fmt('2001:0db8:0:0:0:0:0:1'), '2001:db8::1');
  // §4.2.2: a single zero group is not shortened.
  assert.equal(fmt('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  // §4.2.3: the longest run wins; on a tie the first.
  assert.equal(fmt('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(fmt('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(fmt('1:0:0:0:0:0:0:0'), '1::');
  // §5: IPv4-mapped addresses keep their dotted quad.
  assert.equal(fmt('::ffff:1.2.3.4'), '::ffff:1.2.3.4');
  assert.equal(fmt('::ffff:0102:0304'), '::ffff:1.2.3.4');
});

test('format(parse(s)) round-trips canonical strings', () => {
  for (const s of ['::', '::1', 'fd00::1', '2001:db8::1', 'fe80::1:2', '1:2:3:4:5:6:7:8', '10.0.0.1', '::ffff:10.0.0.1']) {
    assert.equal(formatAddress(parseAddress(s)!), s);
  }
});

test('parseCidr with and without a prefix', () => {
  const a = parseCidr('10.0.0.1/24')!;
  assert.equal(toHex(a.address), '0a000001');
  assert.equal(a.prefix, 24);
  assert.equal(parseCidr('10.0.0.1')!.prefix, 32);
  assert.equal(parseCidr('fd00::1')!.prefix, 128);
  assert.equal(parseCidr('fd00::1/64')!.prefix, 64);
  assert.equal(parseCidr('0.0.0.0/0')!.prefix, 0);
  for (const s of ['10.0.0.1/33', 'fd00::1/129', '10.0.0.1/', '10.0.0.1/a', '10.0.0.1/024', 'x/24', '10.0.0.1/-1']) {
    assert.equal(parseCidr(s), null, s);
  }
});

test('inPrefix compares the first prefix bits only, within one family', () => {
  const net = parseAddress('10.0.0.0')!;
  assert.equal(inPrefix(parseAddress('10.0.0.200')!, net, 24), true);
  assert.equal(inPrefix(parseAddress('10.0.1.1')!, net, 24), false);
  assert.equal(inPrefix(parseAddress('10.0.1.1')!, net, 23), true);
  assert.equal(inPrefix(parseAddress('10.0.2.1')!, net, 23), false);
  assert.equal(inPrefix(parseAddress('192.168.0.1')!, net, 0), true);
  assert.equal(inPrefix(parseAddress('10.0.0.1')!, parseAddress('10.0.0.1')!, 32), true);
  assert.equal(inPrefix(parseAddress('10.0.0.2')!, parseAddress('10.0.0.1')!, 31), false);
  assert.equal(inPrefix(parseAddress('fd00::2')!, parseAddress('fd00::1')!, 64), true);
  assert.equal(inPrefix(parseAddress('fd01::2')!, parseAddress('fd00::1')!, 15), true);
  assert.equal(inPrefix(parseAddress('fd01::2')!, parseAddress('fd00::1')!, 16), false);
  assert.equal(inPrefix(parseAddress('::ffff:10.0.0.1')!, net, 8), false);
});

test('addressEquals', () => {
  assert.equal(addressEquals(parseAddress('::1')!, parseAddress('0::0:1')!), true);
  assert.equal(addressEquals(parseAddress('::1')!, parseAddress('::2')!), false);
  assert.equal(addressEquals(parseAddress('0.0.0.1')!, parseAddress('::1')!.subarray(0, 4)), false);
  assert.equal(addressEquals(parseAddress('1.2.3.4')!, parseAddress('::1.2.3.4')!), false);
});
