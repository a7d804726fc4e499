import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, formatMac, ipv4MulticastMac, ipv6MulticastMac,
  isBroadcastMac, isMulticastMac, linkLocalFromMac, macEquals, parseEthernet, parseMac, writeEthernetHeader,
  type EthernetHeader,
} from '../../src/wire/ethernet.js';
import { formatAddress, parseAddress } from '../../src/wire/address.js';
import { hex, toHex } from './helpers.js';

function header(x: EthernetHeader | string): EthernetHeader {
  if (typeof x === 'string') assert.fail(`expected a header, got '${x}'`);
  return x;
}

// An ARP request as Linux puts it on a TAP device (42 bytes, no padding, no FCS).
const ARP_FRAME = hex('ffffffffffff' + '525400123456' + '0806' + '0001080006040001525400123456' + '0a000202' + '000000000000' + '0a00020f');

test('Ethernet II: addresses, EtherType and payload offset of a real frame', () => {
  const h = header(parseEthernet(ARP_FRAME));
  assert.equal(formatMac(h.dst), 'ff:ff:ff:ff:ff:ff');
  assert.equal(formatMac(h.src), '52:54:00:12:34:56');
  assert.equal(h.etherType, ETHERTYPE_ARP);
  assert.equal(h.vlan, null);
  assert.equal(h.payloadOffset, 14);
});

test('802.1Q: the tag is read (PCP, DEI, VID) and the payload starts after it', () => {
  const f = new Uint8Array(18 + 4);
  const n = writeEthernetHeader(f, 0, BROADCAST_MAC, parseMac('02:00:00:00:00:01')!, ETHERTYPE_IPV6, { pcp: 5, dei: true, vid: 42 });
  assert.equal(n, 18);
  assert.equal(toHex(f.subarray(12, 18)), '8100' + 'b02a' + '86dd');
  const h = header(parseEthernet(f));
  assert.deepEqual(h.vlan, { pcp: 5, dei: true, vid: 42 });
  assert.equal(h.etherType, ETHERTYPE_IPV6);
  assert.equal(h.payloadOffset, 18);
});

test('Ethernet drops: short frames, short tags, 802.3 length fields', () => {
  assert.equal(parseEthernet(new Uint8Array(13)), 'eth-truncated');
  const tagged = new Uint8Array(16);
  tagged[12] = 0x81;
  assert.equal(parseEthernet(tagged), 'eth-truncated');
  const llc = new Uint8Array(60);
  llc[12] = 0x00;
  llc[13] = 0x2e; // a length (46): IEEE 802.3 with LLC, not Ethernet II
  assert.equal(parseEthernet(llc), 'eth-bad-type');
  llc[12] = 0x05;
  llc[13] = 0xff; // between 1500 and 0x0600: undefined
  assert.equal(parseEthernet(llc), 'eth-bad-type');
  llc[12] = 0x06;
  llc[13] = 0x00;
  assert.equal(header(parseEthernet(llc)).etherType, 0x0600);
});

test('MAC addresses: parse both separators, format lowercase with colons, reject the rest', () => {
  assert.equal(formatMac(parseMac('02-00-5E-10-00-01')!), '02:00:5e:10:00:01');
  assert.equal(formatMac(parseMac('aa:bb:cc:dd:ee:ff')!), 'aa:bb:cc:dd:ee:ff');
  for (const bad of ['', 'aa:bb:cc:dd:ee', 'aa:bb:cc:dd:ee:ff:00', 'aa-bb:cc:dd:ee:ff', 'aabb.ccdd.eeff', 'g0:00:00:00:00:00', 'a:b:c:d:e:f']) {
    assert.equal(parseMac(bad), null, bad);
  }
  assert.ok(isBroadcastMac(BROADCAST_MAC));
  assert.ok(isMulticastMac(parseMac('01:00:5e:00:00:01')!));
  assert.ok(!isMulticastMac(parseMac('02:00:00:00:00:01')!));
  assert.ok(!isBroadcastMac(parseMac('ff:ff:ff:ff:ff:fe')!));
  assert.ok(macEquals(ARP_FRAME, 6, parseMac('52:54:00:12:34:56')!));
});

test('IPv4 multicast → MAC (RFC 1112 §6.4): 01:00:5e + the low 23 bits', () => {
  assert.equal(formatMac(ipv4MulticastMac(parseAddress('224.0.0.251')!)), '01:00:5e:00:00:fb');
  // The 24th bit from the bottom is dropped: 239.128.1.2 and 224.0.1.2 share a MAC.
  assert.equal(formatMac(ipv4MulticastMac(parseAddress('239.128.1.2')!)), '01:00:5e:00:01:02');
});

test('IPv6 multicast → MAC (RFC 2464 §7): 33:33 + the last 32 bits', () => {
  assert.equal(formatMac(ipv6MulticastMac(parseAddress('ff02::1')!)), '33:33:00:00:00:01');
  assert.equal(formatMac(ipv6MulticastMac(parseAddress('ff02::1:ff12:3456')!)), '33:33:ff:12:34:56');
  const out = new Uint8Array(8);
  ipv6MulticastMac(parseAddress('ff02::2')!, 0, out, 2);
  assert.equal(toHex(out), '0000333300000002');
});

test('link-local from the MAC: modified EUI-64 (RFC 4291 App. A), as Linux derives it', () => {
  // Linux: 52:54:00:12:34:56 → fe80::5054:ff:fe12:3456.
  assert.equal(formatAddress(linkLocalFromMac(parseMac('52:54:00:12:34:56')!)), 'fe80::5054:ff:fe12:3456');
  // The universal/local bit is inverted, not set: a locally administered MAC loses it.
  assert.equal(formatAddress(linkLocalFromMac(parseMac('02:00:5e:10:00:01')!)), 'fe80::5eff:fe10:1');
});

test('writeEthernetHeader at an offset writes exactly the header', () => {
  const f = new Uint8Array(20).fill(0xee);
  assert.equal(writeEthernetHeader(f, 3, BROADCAST_MAC, parseMac('02:00:00:00:00:07')!, ETHERTYPE_IPV4), 14);
  assert.equal(toHex(f), 'eeeeee' + 'ffffffffffff' + '020000000007' + '0800' + 'eeeee' + 'e');
});
