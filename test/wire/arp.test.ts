import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARP_REPLY, ARP_REQUEST, parseArp, writeArp, type ArpPacket } from '../../src/wire/arp.js';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { formatMac, parseMac } from '../../src/wire/ethernet.js';
import { hex, toHex } from './helpers.js';

function arp(x: ArpPacket | string): ArpPacket {
  if (typeof x === 'string') assert.fail(`expected ARP, got '${x}'`);
  return x;
}

// "who-has 10.0.2.15 tell 10.0.2.2" as Linux writes it, with the 18 bytes of padding a NIC adds to
// reach the 60-byte minimum frame.
const REQUEST = hex('0001080006040001525400123456' + '0a000202' + '000000000000' + '0a00020f' + '00'.repeat(18));

test('RFC 826 request: fields, padding ignored', () => {
  const p = arp(parseArp(REQUEST));
  assert.equal(p.op, ARP_REQUEST);
  assert.equal(formatMac(p.senderMac), '52:54:00:12:34:56');
  assert.equal(formatAddress(p.senderIp), '10.0.2.2');
  assert.equal(formatMac(p.targetMac), '00:00:00:00:00:00');
  assert.equal(formatAddress(p.targetIp), '10.0.2.15');
});

test('writeArp writes the same bytes the kernel does', () => {
  const out = new Uint8Array(28);
  writeArp(out, 0, ARP_REQUEST, parseMac('52:54:00:12:34:56')!, parseAddress('10.0.2.2')!, new Uint8Array(6), parseAddress('10.0.2.15')!);
  assert.equal(toHex(out), toHex(REQUEST.subarray(0, 28)));
  writeArp(out, 0, ARP_REPLY, parseMac('02:00:00:00:00:0f')!, parseAddress('10.0.2.15')!, parseMac('52:54:00:12:34:56')!, parseAddress('10.0.2.2')!);
  const r = arp(parseArp(out));
  assert.equal(r.op, ARP_REPLY);
  assert.equal(formatMac(r.targetMac), '52:54:00:12:34:56');
});

test('ARP drops: truncated, other hardware/protocol, other opcodes', () => {
  assert.equal(parseArp(REQUEST.subarray(0, 27)), 'arp-truncated');
  const cases: [number, number, string][] = [
    [1, 6, 'arp-unsupported'], // hardware type 6 (IEEE 802)
    [3, 0x86, 'arp-unsupported'], // protocol 0x86dd
    [4, 8, 'arp-unsupported'], // hlen 8
    [5, 16, 'arp-unsupported'], // plen 16
    [7, 3, 'arp-bad-op'], // RARP request
    [7, 0, 'arp-bad-op'],
  ];
  for (const [at, value, reason] of cases) {
    const b = REQUEST.slice();
    b[at] = value;
    assert.equal(parseArp(b), reason, `byte ${at} = ${value}`);
  }
});
