import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, parseAddress, parseCidr } from '../../src/wire/address.js';
import { sum16 } from '../../src/wire/checksum.js';
import { parseIcmpv4, parseIcmpv6 } from '../../src/wire/icmp.js';
import { parseIpPacket } from '../../src/wire/ip.js';
import { parseIpv4 } from '../../src/wire/ipv4.js';
import { parseIpv6 } from '../../src/wire/ipv6.js';
import { parseTcp } from '../../src/wire/tcp.js';
import { LINUX_SYN_V4, LINUX_SYN_V6, randomBytes, rng } from './helpers.js';

const ROUNDS = 4000;

/** Sets a 16-bit checksum at `at` so the range sums to all ones, letting fuzz reach past it. */
function fixChecksum(b: Uint8Array, start: number, length: number, at: number, initial = 0): void {
  if (at + 2 > b.length) return;
  b[at] = 0;
  b[at + 1] = 0;
  const c = ~sum16(b, start, length, initial) & 0xffff;
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

function checkIp(p: Uint8Array): void {
  const r = parseIpPacket(p);
  if (typeof r === 'object') {
    assert.ok(r.payloadOffset >= 20 && r.payloadOffset + r.payloadLength <= p.length);
    assert.equal(r.src.length, r.version === 4 ? 4 : 16);
  }
}

function checkTcp(s: Uint8Array): void {
  for (const verify of [true, false]) {
    const r = parseTcp(s, 0, verify);
    if (typeof r === 'object') {
      assert.ok(r.payload.length <= s.length - 20);
      if (r.options.sack) assert.ok(r.options.sack.length >= 1 && r.options.sack.length <= 4);
    }
  }
}

test('random byte strings never make a parser throw', () => {
  const next = rng(0x5eed);
  for (let i = 0; i < ROUNDS; i++) {
    const b = randomBytes(next, Math.floor(next() * 120));
    checkIp(b);
    parseIpv4(b);
    parseIpv6(b);
    checkTcp(b);
    parseIcmpv4(b);
    parseIcmpv6(b, 0);
    // Steer the version nibble and fix checksums so the deeper paths run too.
    if (b.length > 0) {
      const v4 = b.slice();
      v4[0] = 0x40 | (v4[0] & 0x0f);
      if (v4.length >= 20) fixChecksum(v4, 0, Math.min(v4.length, (v4[0] & 0xf) * 4), 10);
      checkIp(v4);
      const v6 = b.slice();
      v6[0] = 0x60 | (v6[0] & 0x0f);
      checkIp(v6);
    }
    if (b.length >= 8) {
      const icmp = b.slice();
      icmp[0] = [0, 3, 8, 11, 12, 4, 5][i % 7];
      fixChecksum(icmp, 0, icmp.length, 2);
      parseIcmpv4(icmp);
      const icmp6 = b.slice();
      icmp6[0] = [1, 2, 3, 4, 128, 129, 50][i % 7];
      if (icmp6.length > 8) icmp6[8] = 0x60;
      fixChecksum(icmp6, 0, icmp6.length, 2);
      parseIcmpv6(icmp6, 0);
    }
  }
});

test('bit-flipped and truncated real packets never make a parser throw', () => {
  const next = rng(42);
  for (let i = 0; i < ROUNDS; i++) {
    const base = i % 2 === 0 ? LINUX_SYN_V4 : LINUX_SYN_V6;
    const p = base.slice(0, Math.floor(next() * (base.length + 1)));
    const flips = 1 + Math.floor(next() * 4);
    for (let f = 0; f < flips && p.length > 0; f++) p[Math.floor(next() * p.length)] ^= 1 << Math.floor(next() * 8);
    checkIp(p);
    const hl = i % 2 === 0 ? 20 : 40;
    if (p.length > hl) checkTcp(p.subarray(hl));
  }
});

test('random strings never make address parsing throw, and what parses formats back consistently', () => {
  const next = rng(7);
  const alphabet = '0123456789abcdefABCDEF:./%x ';
  for (let i = 0; i < ROUNDS; i++) {
    let s = '';
    const n = Math.floor(next() * 45);
    for (let k = 0; k < n; k++) s += alphabet[Math.floor(next() * alphabet.length)];
    const a = parseAddress(s);
    parseCidr(s);
    if (a) {
      // Canonical text parses back to the same bytes.
      assert.deepEqual(parseAddress(formatAddress(a)), a, s);
    }
  }
});

test('IPv6 parse agrees with node:net isIPv6, and format with the WHATWG URL serializer', async () => {
  const { isIP } = await import('node:net');
  const next = rng(11);
  const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)];
  let valid = 0;
  for (let i = 0; i < ROUNDS; i++) {
    // Near-valid strings: random groups, sometimes a "::", sometimes a dotted quad, sometimes junk.
    const groups: string[] = [];
    const n = Math.floor(next() * 10);
    for (let k = 0; k < n; k++) groups.push(pick(['0', '00', '1', 'ff', 'ffff', 'FFFF', 'db8', '12345', 'g', '', '0000']));
    let s = groups.join(':');
    if (next() < 0.5) {
      const at = Math.floor(next() * (s.length + 1));
      s = s.slice(0, at) + '::' + s.slice(at);
    }
    if (next() < 0.2) s += pick([':1.2.3.4', '1.2.3.4', ':256.1.1.1', ':01.2.3.4']);
    const ours = parseAddress(s);
    const node = isIP(s);
    assert.equal(ours !== null, node !== 0, `${JSON.stringify(s)}: ours ${ours !== null}, node ${node}`);
    if (ours && ours.length === 16) {
      valid++;
      const text = formatAddress(ours);
      const url = new URL(`http://[${s}]/`).hostname.slice(1, -1);
      // The URL serializer writes IPv4-mapped addresses in hex; RFC 5952 §5 keeps the dotted quad.
      if (!text.startsWith('::ffff:') || !text.includes('.')) assert.equal(text, url, s);
    }
  }
  assert.ok(valid > 200, `only ${valid} valid addresses generated`);
});
