/**
 * Property tests for the UDP codec (src/wire/udp.ts): round trips over both families with any
 * ports and payloads, totality on arbitrary bytes, and that the checksum catches every single-bit
 * flip of the header or payload; and random datagrams, fragments (cut, rotated, bit-flipped) and
 * ICMP errors through a stack with sockets bound: nothing throws, everything it sends parses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { PROTO_UDP } from '../../src/wire/ip.js';
import { parseUdp, writeUdp } from '../../src/wire/udp.js';
import { DROP_REASONS, addressPairArb, u16 } from './gen.js';
import { parseAddress } from '../../src/wire/address.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { fragmentV4, fragmentV6 } from '../../src/net/fragments.js';
import { parseIpPacket } from '../../src/wire/ip.js';
import { writeIcmpError } from '../../src/wire/icmp.js';
import { harness } from '../stack/raw.js';
import { udpPacket } from '../udp/support.js';

test('UDP: parse(writeUdp(x)) gives x back in both families, at any offset, with link padding', () => {
  fc.assert(fc.property(
    addressPairArb(), u16, u16, fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }),
    ({ src, dst }, srcPort, dstPort, payload, at, padding) => {
      const len = 8 + payload.length;
      const buf = new Uint8Array(at + len + padding);
      const sum = pseudoHeaderSum(src, dst, PROTO_UDP, len);
      assert.equal(writeUdp(buf, at, srcPort, dstPort, payload, sum), len);
      const version = src.length === 4 ? 4 : 6;
      const p = parseUdp(buf.subarray(at), sum, version);
      if (typeof p === 'string') assert.fail(`dropped: ${p}`);
      assert.equal(p.srcPort, srcPort);
      assert.equal(p.dstPort, dstPort);
      assert.deepEqual([...p.payload], [...payload]);
      assert.notEqual(p.checksum, 0, 'a computed checksum is never sent as 0');
    },
  ), { numRuns: 300 });
});

test('UDP: any bytes parse to a datagram or a known drop reason, never a throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), u16, fc.constantFrom(4 as const, 6 as const), fc.boolean(), (bytes, sum, version, verify) => {
    const p = parseUdp(bytes, sum, version, verify);
    if (typeof p === 'string') assert.ok(DROP_REASONS.has(p), p);
    else assert.ok(p.payload.length <= bytes.length - 8);
  }), { numRuns: 2000 });
});

test('UDP: every single-bit flip of a datagram outside the Length field is caught by the checksum', () => {
  fc.assert(fc.property(addressPairArb(), u16, u16, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), ({ src, dst }, sp, dp, payload, pick) => {
    const len = 8 + payload.length;
    const d = new Uint8Array(len);
    const sum = pseudoHeaderSum(src, dst, PROTO_UDP, len);
    writeUdp(d, 0, sp, dp, payload, sum);
    // Not the Length field (bits 32..47): a shorter Length drops bytes from the sum, which a
    // checksum catches almost always, not always.
    let bit = pick % (len * 8 - 16);
    if (bit >= 32) bit += 16;
    d[bit >>> 3] ^= 1 << (bit & 7);
    const p = parseUdp(d, sum, src.length === 4 ? 4 : 6);
    // A flip in the checksum field that turns it to 0 over IPv4 means "no checksum": allowed.
    if (typeof p !== 'string') assert.ok(p.checksum === 0 && src.length === 4, 'a flipped datagram passed');
  }), { numRuns: 500 });
});

test('UDP and fragments through a stack: random datagrams, fragments and ICMP errors never throw, and what it sends parses', () => {
  const addr4 = fc.oneof(
    { arbitrary: fc.constantFrom('10.0.0.2', '10.0.0.1'), weight: 4 },
    { arbitrary: fc.constantFrom('10.0.0.255', '255.255.255.255', '10.0.0.77', '0.0.0.0', '224.0.0.1'), weight: 2 },
  );
  const addr6 = fc.oneof(
    { arbitrary: fc.constantFrom('fd00::2', 'fd00::1'), weight: 4 },
    { arbitrary: fc.constantFrom('fd00::77', 'ff02::1', 'fe80::1'), weight: 1 },
  );
  const port = fc.oneof(fc.constantFrom(0, 7, 53, 67, 68, 9999), u16);
  const datagram = fc.record({
    v6: fc.boolean(), src4: addr4, dst4: addr4, src6: addr6, dst6: addr6, sp: port, dp: port,
    payload: fc.integer({ min: 0, max: 3000 }).chain((n) => fc.constant(new Uint8Array(n).map((_, i) => i * 31))),
    mtu: fc.integer({ min: 68, max: 1500 }), id: u16,
    cut: fc.boolean(), shuffle: fc.nat(),
    flip: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.nat(), weight: 1 }),
    icmp: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }),
  });
  const seen = { udpIn: 0, reassembled: 0, icmpIn: 0, icmpOut: 0, delivered: 0 };
  fc.assert(fc.property(fc.array(datagram, { minLength: 1, maxLength: 12 }), (ds) => {
    const h = harness();
    const s = h.stack;
    s.udpBind({ port: 7 }).onMessage = (d, r) => {
      seen.delivered++;
      s.udpBind().send(d.subarray(0, 100), r.address, r.port || 1);
    };
    s.udpBind({ port: 68, address: '0.0.0.0', anyDestination: true, broadcast: true });
    const c = s.udpBind({ family: 6, port: 53 });
    c.connect('fd00::2', 9999);
    c.onError = () => undefined;
    for (const d of ds) {
      const src = d.v6 ? d.src6 : d.src4;
      const dst = d.v6 ? d.dst6 : d.dst4;
      let p = udpPacket(src, dst, d.sp, d.dp, d.payload);
      if (d.icmp) {
        // An ICMP error quoting a datagram "we" sent, to the connected socket or not.
        const quoted = udpPacket(d.v6 ? 'fd00::1' : '10.0.0.1', d.v6 ? 'fd00::2' : dst, d.v6 ? 53 : d.sp, d.v6 ? 9999 : d.dp, d.payload.subarray(0, 8));
        const body = new Uint8Array(8 + quoted.length);
        writeIcmpError(body, 0, d.v6 ? 6 : 4, d.v6 ? 1 : 3, d.id % 8, quoted, d.v6 ? pseudoHeaderSum(addrOf(src), addrOf(d.v6 ? 'fd00::1' : '10.0.0.1'), 58, body.length) : 0);
        p = ipWrap(src, d.v6 ? 'fd00::1' : '10.0.0.1', d.v6 ? 58 : 1, body);
      }
      if (d.flip !== undefined) p[d.flip % p.length] ^= 1 << (d.flip % 8);
      let packets = [p];
      if (d.cut && p.length > d.mtu && !d.icmp) {
        packets = d.v6 ? fragmentV6(p, Math.max(d.mtu, 56), d.id) : fragmentV4(p, d.mtu);
        const k = d.shuffle % packets.length;
        packets = [...packets.slice(k), ...packets.slice(0, k)];
      }
      h.inject(...packets);
      if (d.shuffle % 5 === 0) h.clock.advanceSync(31_000);
    }
    h.clock.advanceSync(61_000);
    assert.equal(s.counters.internalErrors, 0);
    for (const out of h.take()) assert.ok(typeof parseIpPacket(out) !== 'string', 'the stack sent a packet that does not parse');
    seen.udpIn += s.counters.udpIn;
    seen.reassembled += s.counters.reassembled;
    seen.icmpIn += s.counters.icmpIn;
    seen.icmpOut += s.counters.icmpOut;
  }), { numRuns: 150 });
  // The runs reached every path they are about.
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `no ${k} in 150 runs`);
});


function addrOf(t: string): Uint8Array {
  return parseAddress(t)!;
}

function ipWrap(src: string, dst: string, protocol: number, body: Uint8Array): Uint8Array {
  const s = addrOf(src);
  const d = addrOf(dst);
  const hl = s.length === 4 ? 20 : 40;
  const out = new Uint8Array(hl + body.length);
  if (s.length === 4) writeIpv4Header(out, 0, s, d, protocol, body.length, 64, 1);
  else writeIpv6Header(out, 0, s, d, protocol, body.length, 64);
  out.set(body, hl);
  return out;
}
