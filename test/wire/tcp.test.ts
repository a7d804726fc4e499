import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import {
  ACK, CWR, ECE, FIN, PSH, RST, SYN, URG,
  flagNames, formatOptions, parseTcp, tcpOptionsLength, writeTcp,
  type TcpOptions, type TcpSegment,
} from '../../src/wire/tcp.js';
import { hex, LINUX_SYN_V4, LINUX_SYN_V6, toHex } from './helpers.js';

const SRC = parseAddress('10.0.0.1')!;
const DST = parseAddress('10.0.0.2')!;

function seg(x: TcpSegment | string): TcpSegment {
  assert.equal(typeof x, 'object', `expected a segment, got ${String(x)}`);
  return x as TcpSegment;
}

/** A raw segment with the given option bytes (length a multiple of 4) and a correct checksum. */
function rawSegment(options: Uint8Array, payload: Uint8Array = new Uint8Array(0), dataOffsetWords?: number): Uint8Array {
  const s = new Uint8Array(20 + options.length + payload.length);
  s.set(hex('04d2' + '0050' + '00000064' + '000000c8'), 0);
  s[12] = (dataOffsetWords ?? (20 + options.length) / 4) << 4;
  s[13] = ACK;
  s[14] = 0xff;
  s[15] = 0xff;
  s.set(options, 20);
  s.set(payload, 20 + options.length);
  const c = ~sum16(s, 0, s.length, pseudoHeaderSum(SRC, DST, 6, s.length)) & 0xffff;
  s[16] = c >>> 8;
  s[17] = c & 0xff;
  return s;
}

function parseRaw(s: Uint8Array): TcpSegment | string {
  return parseTcp(s, pseudoHeaderSum(SRC, DST, 6, s.length));
}

test('flag bits are RFC 9293 §3.1 wire values', () => {
  assert.deepEqual([FIN, SYN, RST, PSH, ACK, URG, ECE, CWR], [1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80]);
});

test('a real Linux IPv4 SYN parses', () => {
  const p = LINUX_SYN_V4;
  const tcp = p.subarray(20);
  const s = seg(parseTcp(tcp, pseudoHeaderSum(p.subarray(12, 16), p.subarray(16, 20), 6, tcp.length)));
  assert.equal(s.srcPort, 0x84d6);
  assert.equal(s.dstPort, 80);
  assert.equal(s.seq, 0x1d10f02f);
  assert.equal(s.ack, 0);
  assert.equal(s.flags, SYN);
  assert.equal(s.window, 64240);
  assert.equal(s.urgent, 0);
  assert.deepEqual(s.options, { mss: 1460, sackPermitted: true, timestamp: { val: 0x37b6e75c, ecr: 0 }, wscale: 10 });
  assert.equal(s.payload.length, 0);
});

test('writeTcp reproduces the Linux SYNs byte for byte (option order, padding, checksum)', () => {
  for (const [p, ipLen] of [[LINUX_SYN_V4, 20], [LINUX_SYN_V6, 40]] as const) {
    const tcp = p.subarray(ipLen);
    const src = ipLen === 20 ? p.subarray(12, 16) : p.subarray(8, 24);
    const dst = ipLen === 20 ? p.subarray(16, 20) : p.subarray(24, 40);
    const phs = pseudoHeaderSum(src, dst, 6, tcp.length);
    const s = seg(parseTcp(tcp, phs));
    const out = new Uint8Array(tcp.length + 3);
    assert.equal(writeTcp(out, 3, s, phs), tcp.length);
    assert.equal(toHex(out.subarray(3)), toHex(tcp));
  }
});

test('Linux layouts: data segment with TS is nop,nop,TS; SYN without TS is mss,nop,nop,sackOK,nop,wscale', () => {
  const o1: TcpOptions = { timestamp: { val: 1, ecr: 2 } };
  const b1 = new Uint8Array(64);
  writeTcp(b1, 0, { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: ACK, window: 0, urgent: 0, options: o1, payload: new Uint8Array(0) }, 0);
  assert.equal(toHex(b1.subarray(12, 13)), '80'); // data offset 8 words
  assert.equal(toHex(b1.subarray(20, 32)), '0101080a0000000100000002');

  const o2: TcpOptions = { mss: 1460, sackPermitted: true, wscale: 7 };
  const b2 = new Uint8Array(64);
  writeTcp(b2, 0, { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: SYN, window: 0, urgent: 0, options: o2, payload: new Uint8Array(0) }, 0);
  assert.equal(toHex(b2.subarray(20, 32)), '020405b4' + '01010402' + '01030307');

  // SACK blocks after TS: nop,nop,TS,nop,nop,sack.
  const o3: TcpOptions = { timestamp: { val: 5, ecr: 6 }, sack: [[100, 200]] };
  const b3 = new Uint8Array(64);
  const n = writeTcp(b3, 0, { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: ACK, window: 0, urgent: 0, options: o3, payload: new Uint8Array(0) }, 0);
  assert.equal(n, 20 + 24);
  assert.equal(toHex(b3.subarray(20, 44)), '0101080a0000000500000006' + '0101050a' + '00000064000000c8');

  // sackOK alone and mss alone.
  assert.equal(tcpOptionsLength({ sackPermitted: true }), 4);
  assert.equal(tcpOptionsLength({ mss: 536 }), 4);
  assert.equal(tcpOptionsLength({}), 0);
});

test('round trip parse(write(x)) = x for every option combination', () => {
  const blocks: Array<[number, number]> = [[0xfffffff0, 0x10], [300, 400], [500, 600], [700, 800]];
  const payload = hex('68656c6c6f0a77'); // odd length on purpose
  let combos = 0;
  for (const mss of [undefined, 1460]) {
    for (const sackPermitted of [undefined, true]) {
      for (const timestamp of [undefined, { val: 0xdeadbeef, ecr: 0x01020304 }]) {
        for (const wscale of [undefined, 14]) {
          for (let nBlocks = 0; nBlocks <= 4; nBlocks++) {
            const options: TcpOptions = {};
            if (mss !== undefined) options.mss = mss;
            if (sackPermitted) options.sackPermitted = true;
            if (timestamp) options.timestamp = timestamp;
            if (wscale !== undefined) options.wscale = wscale;
            if (nBlocks > 0) options.sack = blocks.slice(0, nBlocks);
            const x: TcpSegment = {
              srcPort: 49152, dstPort: 443, seq: 0xfffffffe, ack: 0x80000000, flags: ACK | PSH,
              window: 0xabcd, urgent: 0, options, payload,
            };
            const optLen = tcpOptionsLength(options);
            assert.equal(optLen % 4, 0);
            assert.ok(optLen <= 40);
            const total = 20 + optLen + payload.length;
            const phs = pseudoHeaderSum(SRC, DST, 6, total);
            const out = new Uint8Array(total + 8);
            assert.equal(writeTcp(out, 4, x, phs), total);
            const y = seg(parseTcp(out.subarray(4, 4 + total), phs));
            // Blocks that do not fit in 40 bytes are cut from the end.
            const base = (mss !== undefined ? 4 : 0) + (timestamp ? 12 : sackPermitted ? 4 : 0) + (wscale !== undefined ? 4 : 0);
            const fit = Math.min(nBlocks, Math.floor((40 - base - 4) / 8));
            const expected: TcpOptions = { ...options };
            if (fit > 0) expected.sack = blocks.slice(0, fit);
            else delete expected.sack;
            assert.deepEqual(y.options, expected, JSON.stringify(options));
            assert.deepEqual({ ...y, options: null, payload: null }, { ...x, options: null, payload: null });
            assert.equal(toHex(y.payload), toHex(payload));
            combos++;
          }
        }
      }
    }
  }
  assert.equal(combos, 80);
});

test('the parsed payload is a view into the segment', () => {
  const s = rawSegment(new Uint8Array(0), hex('aabbcc'));
  const p = seg(parseRaw(s));
  assert.equal(p.payload.buffer, s.buffer);
  assert.equal(p.payload.byteOffset, s.byteOffset + 20);
  assert.equal(toHex(p.payload), 'aabbcc');
});

test('writeTcp with the payload already in place does not need a copy and is still right', () => {
  const out = new Uint8Array(100);
  const payload = out.subarray(40, 45);
  payload.set([1, 2, 3, 4, 5]);
  const options: TcpOptions = { timestamp: { val: 9, ecr: 8 } };
  const phs = pseudoHeaderSum(SRC, DST, 6, 37);
  const n = writeTcp(out, 8, { srcPort: 1, dstPort: 2, seq: 3, ack: 4, flags: ACK, window: 5, urgent: 0, options, payload }, phs);
  assert.equal(n, 37);
  const p = seg(parseTcp(out.subarray(8, 45), phs));
  assert.deepEqual(Array.from(p.payload), [1, 2, 3, 4, 5]);
});

test('drops: truncated, data offset, checksum', () => {
  const good = rawSegment(new Uint8Array(0), hex('0102'));
  assert.equal(parseRaw(good.subarray(0, 19)), 'tcp-truncated');
  assert.equal(parseRaw(new Uint8Array(0)), 'tcp-truncated');
  assert.equal(parseRaw(rawSegment(new Uint8Array(0), new Uint8Array(4), 4)), 'tcp-bad-offset');
  assert.equal(parseRaw(rawSegment(new Uint8Array(0), new Uint8Array(4), 0)), 'tcp-bad-offset');
  // Data offset 7 (28 bytes) on a 24-byte segment.
  assert.equal(parseRaw(rawSegment(new Uint8Array(0), new Uint8Array(4), 7)), 'tcp-bad-offset');
  const bad = good.slice();
  bad[21] ^= 0x40;
  assert.equal(parseRaw(bad), 'tcp-bad-checksum');
  // The checksum covers the pseudo-header: the same bytes from another address fail.
  assert.equal(parseTcp(good, pseudoHeaderSum(SRC, parseAddress('10.0.0.3')!, 6, good.length)), 'tcp-bad-checksum');
  // ...unless the caller asks not to verify (e.g. a capture with checksum offload).
  assert.equal(seg(parseTcp(bad, 0, false)).payload[1], 0x42);
});

test('drops: malformed options', () => {
  const cases: Array<[string, string]> = [
    ['0200' + '0000', 'length byte 0'],
    ['0201' + '0000', 'length byte 1'],
    ['01010208', 'runs past the header'],
    ['010101' + '02', 'kind with no length byte at the end'],
    ['020305' + '00', 'MSS length 3'],
    ['0205050000000000', 'MSS length 5'],
    ['03020000', 'WS length 2'],
    ['03040700', 'WS length 4'],
    ['04030000', 'SACK_PERM length 3'],
    ['05020000', 'SACK with no block'],
    ['050b' + '00'.repeat(10), 'SACK length not 2+8n'],
    ['080a' + '00'.repeat(6), 'TS overruns'],
    ['0808' + '00'.repeat(6), 'TS length 8'],
  ];
  for (const [opts, what] of cases) {
    assert.equal(parseRaw(rawSegment(hex(opts))), 'tcp-bad-options', what);
  }
});

test('options: unknown kinds are skipped by length, NOPs skipped, EOL ends the list', () => {
  // MPTCP-ish kind 30 len 4, then MSS.
  let p = seg(parseRaw(rawSegment(hex('1e04abcd' + '02040218'))));
  assert.deepEqual(p.options, { mss: 536 });
  // EOL then garbage that would be invalid.
  p = seg(parseRaw(rawSegment(hex('010100ff' + '02000000'))));
  assert.deepEqual(p.options, {});
  // Four SACK blocks (34 bytes) fill 36 with two NOPs.
  const four = '0101' + '0522' + '0000000100000002' + '0000000300000004' + '0000000500000006' + '0000000700000008';
  p = seg(parseRaw(rawSegment(hex(four))));
  assert.deepEqual(p.options.sack, [[1, 2], [3, 4], [5, 6], [7, 8]]);
  // Window scale above 14 is reported as sent; clamping is the TCB's job (RFC 7323 §2.3).
  p = seg(parseRaw(rawSegment(hex('01030310'))));
  assert.equal(p.options.wscale, 16);
});

test('port 0 parses', () => {
  const s = rawSegment(new Uint8Array(0));
  s[0] = 0; s[1] = 0; s[2] = 0; s[3] = 0;
  const p = seg(parseTcp(s, 0, false));
  assert.equal(p.srcPort, 0);
  assert.equal(p.dstPort, 0);
});

test('flagNames in reading order', () => {
  assert.deepEqual(flagNames(SYN | ACK), ['SYN', 'ACK']);
  assert.deepEqual(flagNames(0x12), ['SYN', 'ACK']);
  assert.deepEqual(flagNames(FIN | ACK), ['FIN', 'ACK']);
  assert.deepEqual(flagNames(RST | ACK), ['RST', 'ACK']);
  assert.deepEqual(flagNames(PSH | ACK), ['PSH', 'ACK']);
  assert.deepEqual(flagNames(0xff), ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR']);
  assert.deepEqual(flagNames(0), []);
});

test('formatOptions in emit order', () => {
  assert.deepEqual(
    formatOptions({ wscale: 7, sack: [[1, 2], [5, 9]], timestamp: { val: 10, ecr: 20 }, sackPermitted: true, mss: 1460 }),
    ['MSS=1460', 'SACK_PERM', 'TS=10/20', 'WS=7', 'SACK=1-2', 'SACK=5-9'],
  );
  assert.deepEqual(formatOptions({}), []);
  // Only the SACK blocks that go on the wire: 3 beside a timestamp, 4 without (RFC 2018 §3).
  const four: Array<[number, number]> = [[1, 2], [3, 4], [5, 6], [7, 8]];
  assert.deepEqual(formatOptions({ sack: four, timestamp: { val: 1, ecr: 2 } }), ['TS=1/2', 'SACK=1-2', 'SACK=3-4', 'SACK=5-6']);
  assert.deepEqual(formatOptions({ sack: four }).length, 4);
});
