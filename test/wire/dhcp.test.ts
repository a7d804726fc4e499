import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BOOTP_MIN_LENGTH, BOOTREPLY, BOOTREQUEST, DHCP_FLAG_BROADCAST, DhcpOption, DhcpType, dhcpTypeName,
  emptyDhcpMessage, formatMac, maskToPrefix, parseDhcp, prefixToMask, writeDhcp, type DhcpMessage,
} from '../../src/wire/dhcp.js';
import { hex, toHex } from './helpers.js';

function msg(x: DhcpMessage | string): DhcpMessage {
  if (typeof x === 'string') assert.fail(`expected a message, got drop '${x}'`);
  return x;
}

/** The 236-byte fixed part (RFC 2131 §2) as hex, sname/file zero. */
function fixed(f: { op?: number; xid: string; secs?: number; flags?: number; ciaddr?: string; yiaddr?: string; mac: string }): string {
  const word = (n: number): string => n.toString(16).padStart(4, '0');
  const quad = (a = '0.0.0.0'): string => a.split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join('');
  return (
    `0${f.op ?? 1}010600` + f.xid + word(f.secs ?? 0) + word(f.flags ?? 0) +
    quad(f.ciaddr) + quad(f.yiaddr) + '00000000' + '00000000' +
    f.mac + '00'.repeat(10) + '00'.repeat(64) + '00'.repeat(128)
  );
}

/** Pads a hex message with zeros to the BOOTP minimum, as the senders do. */
function pad300(h: string): Uint8Array {
  const b = hex(h);
  const out = new Uint8Array(Math.max(300, b.length));
  out.set(b);
  return out;
}

const COOKIE = '63825363';

// Captured: BusyBox 1.35.0 udhcpc's DISCOVER, as synack's UDP port 67 received it over a TAP device
// (the kernel side's MAC 52:54:00:12:34:56). Message type, max message size 576, the request list
// of its OPTION_REQ options (subnet, router, dns, hostname, domain, broadcast, ntp), the vendor
// class "udhcp 1.35.0", client id (type 1 + MAC), End, zero padding to 300 bytes.
const UDHCPC_DISCOVER = hex(
  '0101060065dee03b00000000' + '00000000'.repeat(4) + '525400123456' + '00'.repeat(10) + '00'.repeat(64 + 128) +
    COOKIE + '350101' + '39020240' + '3707010306' + '0c0f1c2a' + '3c0c756468637020312e33352e30' + '3d0701525400123456' + 'ff' +
    '00'.repeat(20),
);

// Captured the same way: ISC dhclient 4.4.3-P1's DISCOVER (Debian's dhclient.conf): host name, the
// long request list, no client id.
const DHCLIENT_CAPTURED = hex(
  '010106000203984900000000' + '00000000'.repeat(4) + '525400123456' + '00'.repeat(10) + '00'.repeat(64 + 128) +
    COOKIE + '350101' + '0c02766d' + '370d011c02030f06770c2c2f1a792a' + 'ff' + '00'.repeat(37),
);

// Constructed from the RFC 2131 layout: a dhclient DISCOVER as Debian configures it, later in an
// exchange: secs counting, the previous lease asked for
// (50), the host name (12), and its long parameter request list in dhclient.conf order (subnet,
// broadcast, time offset, routers, domain, DNS, domain search, host name, NetBIOS ×2, MTU,
// classless routes, NTP). No client id: dhclient sends none unless configured.
const DHCLIENT_DISCOVER = pad300(
  fixed({ xid: 'a1b2c3d4', secs: 3, mac: '02005e10a0b0' }) + COOKIE +
    '350101' +
    '32040a02000f' +
    '0c06' + toHex(new TextEncoder().encode('debian')) +
    '370d011c02030f06770c2c2f1a792a' +
    'ff',
);

test('a udhcpc DISCOVER (captured) parses: fixed fields, typed options, the vendor class kept raw', () => {
  assert.equal(UDHCPC_DISCOVER.length, 300);
  const m = msg(parseDhcp(UDHCPC_DISCOVER));
  assert.equal(m.op, BOOTREQUEST);
  assert.deepEqual([m.htype, m.hlen, m.hops, m.xid, m.secs, m.flags], [1, 6, 0, 0x65dee03b, 0, 0]);
  assert.equal(formatMac(m.chaddr), '52:54:00:12:34:56');
  assert.deepEqual([m.ciaddr, m.yiaddr, m.siaddr, m.giaddr], ['0.0.0.0', '0.0.0.0', '0.0.0.0', '0.0.0.0']);
  assert.equal(m.options.messageType, DhcpType.DISCOVER);
  assert.equal(dhcpTypeName(m.options.messageType), 'DISCOVER');
  assert.deepEqual(Array.from(m.options.clientId!), [1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  assert.equal(m.options.maxMessageSize, 576);
  assert.deepEqual(m.options.parameterRequestList, [1, 3, 6, 12, 15, 28, 42]);
  assert.deepEqual(m.rawOptions.map((o) => [o.code, new TextDecoder().decode(o.data)]), [[60, 'udhcp 1.35.0']]);
  assert.equal(m.sname, '');
  assert.equal(m.file, '');
});

test('a dhclient DISCOVER (captured) parses: host name, the request list in its order, no client id', () => {
  assert.equal(DHCLIENT_CAPTURED.length, 300);
  const m = msg(parseDhcp(DHCLIENT_CAPTURED));
  assert.equal(m.xid, 0x02039849);
  assert.equal(formatMac(m.chaddr), '52:54:00:12:34:56');
  assert.deepEqual(m.options, { messageType: DhcpType.DISCOVER, hostname: 'vm', parameterRequestList: [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42] });
  assert.deepEqual(m.rawOptions, []);
});

test('a dhclient DISCOVER (constructed) parses: requested address, host name, the request list in its order', () => {
  const m = msg(parseDhcp(DHCLIENT_DISCOVER));
  assert.equal(m.xid, 0xa1b2c3d4);
  assert.equal(m.secs, 3);
  assert.equal(formatMac(m.chaddr), '02:00:5e:10:a0:b0');
  assert.equal(m.options.requestedIp, '10.2.0.15');
  assert.equal(m.options.hostname, 'debian');
  assert.deepEqual(m.options.parameterRequestList, [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
  assert.equal(m.options.clientId, undefined);
  assert.deepEqual(m.rawOptions, []);
  // Written back, it parses to the same message.
  assert.deepEqual(msg(parseDhcp(writeDhcp(m))), m);
});

test('writeDhcp: fixed fields at their RFC 2131 offsets, cookie, message type first, End, zero padding to 300', () => {
  const m: DhcpMessage = {
    ...emptyDhcpMessage(BOOTREPLY),
    xid: 0xdeadbeef, secs: 7, flags: DHCP_FLAG_BROADCAST,
    yiaddr: '10.0.2.15', siaddr: '10.0.2.2', chaddr: hex('525400123456'),
    options: {
      subnetMask: '255.255.255.0', routers: ['10.0.2.2'], dnsServers: ['10.0.2.3'], leaseTime: 86400,
      serverId: '10.0.2.2', messageType: DhcpType.OFFER,
    },
  };
  const b = writeDhcp(m);
  assert.equal(b.length, BOOTP_MIN_LENGTH);
  assert.equal(toHex(b.subarray(0, 12)), '02010600deadbeef00078000');
  assert.equal(toHex(b.subarray(16, 24)), '0a00020f0a000202');
  assert.equal(toHex(b.subarray(28, 34)), '525400123456');
  assert.equal(toHex(b.subarray(236, 240)), COOKIE);
  // Message type first, then by code: 1, 3, 6, 51, 54, End.
  assert.equal(
    toHex(b.subarray(240, 240 + 3 + 6 + 6 + 6 + 6 + 6 + 1)),
    '350102' + '0104ffffff00' + '03040a000202' + '06040a000203' + '330400015180' + '36040a000202' + 'ff',
  );
  assert.ok(b.subarray(240 + 34).every((x) => x === 0));
  assert.deepEqual(msg(parseDhcp(b)), m);
});

test('RFC 3396: an option longer than 255 bytes is split on write and concatenated on parse', () => {
  const dns = Array.from({ length: 70 }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`); // 280 bytes
  const m: DhcpMessage = { ...emptyDhcpMessage(BOOTREPLY), options: { messageType: DhcpType.ACK, dnsServers: dns } };
  const b = writeDhcp(m);
  // 53 (3 bytes), then option 6 in two instances: 255 bytes and 25 bytes.
  assert.deepEqual([b[243], b[244]], [6, 255]);
  assert.deepEqual([b[243 + 257], b[243 + 258]], [6, 25]);
  assert.equal(b[243 + 257 + 27], 255);
  assert.deepEqual(msg(parseDhcp(b)).options.dnsServers, dns);
  // A split that falls inside an address is still whole addresses once concatenated.
  const odd = pad300(fixed({ op: 2, xid: '00000001', mac: '000000000000' }) + COOKIE + '06020a00' + '0606000201080808' + 'ff');
  assert.deepEqual(msg(parseDhcp(odd)).options.dnsServers, ['10.0.0.2', '1.8.8.8']);
});

test('option overload (52): file, then sname, carry options; the aggregate is options, file, sname (RFC 3396 §5)', () => {
  const b = pad300(fixed({ op: 2, xid: '00000002', mac: '000000000001' }) + COOKIE + '350105' + '340103' + '0c0161' + 'ff');
  // file (offset 108): more of the host name, the lease time, End. sname (offset 44): the rest.
  b.set(hex('0c0162' + '330400000e10' + 'ff'), 108);
  b.set(hex('0c0163' + '0104ffff0000'), 44); // no End: the field ends exactly
  const m = msg(parseDhcp(b));
  assert.equal(m.options.hostname, 'abc');
  assert.equal(m.options.leaseTime, 3600);
  assert.equal(m.options.subnetMask, '255.255.0.0');
  assert.equal(m.sname, '');
  assert.equal(m.file, '');
  assert.ok(!m.rawOptions.some((o) => o.code === DhcpOption.OVERLOAD));
  // Overload 1 only: sname is text again (its bytes up to the first NUL).
  b[240 + 5] = 1;
  b.set(new TextEncoder().encode('boot\0'), 44);
  const m1 = msg(parseDhcp(b));
  assert.equal(m1.sname, 'boot');
  assert.equal(m1.options.hostname, 'ab');
  assert.equal(m1.options.subnetMask, undefined);
});

test('sname and file are NUL-terminated text when not overloaded', () => {
  const m: DhcpMessage = { ...emptyDhcpMessage(BOOTREPLY), sname: 'tftp.example', file: 'pxelinux.0' };
  const b = writeDhcp(m);
  assert.equal(new TextDecoder().decode(b.subarray(44, 56)), 'tftp.example');
  assert.equal(b[56], 0);
  assert.deepEqual(msg(parseDhcp(b)), m);
  assert.throws(() => writeDhcp({ ...m, sname: 'x'.repeat(64) }), RangeError);
});

test('Pad is skipped, bytes after End are ignored, a missing End is accepted when nothing is cut short', () => {
  const base = fixed({ xid: '00000003', mac: '000000000002' }) + COOKIE;
  assert.equal(msg(parseDhcp(hex(base + '00003501010000ff' + '3501ff'))).options.messageType, 1);
  assert.equal(msg(parseDhcp(hex(base + '350103'))).options.messageType, 3);
  assert.equal(msg(parseDhcp(hex(base))).options.messageType, undefined); // plain BOOTP, no options
  assert.equal(dhcpTypeName(undefined), 'BOOTP');
  assert.equal(dhcpTypeName(13), 'type 13');
});

test('a host name with a trailing NUL (Windows) reads without it', () => {
  const base = fixed({ xid: '00000004', mac: '000000000003' }) + COOKIE;
  assert.equal(msg(parseDhcp(hex(base + '0c0477696e00' + 'ff'))).options.hostname, 'win');
});

test('drop reasons: truncated, op, hlen, cookie, overrun, bad option lengths, overload misuse', () => {
  const base = fixed({ xid: '00000005', mac: '000000000004' });
  const good = hex(base + COOKIE + 'ff');
  msg(parseDhcp(good));
  assert.equal(parseDhcp(good.subarray(0, 239)), 'dhcp-truncated');
  assert.equal(parseDhcp(new Uint8Array(0)), 'dhcp-truncated');
  const op3 = good.slice();
  op3[0] = 3;
  assert.equal(parseDhcp(op3), 'dhcp-bad-op');
  const hlen17 = good.slice();
  hlen17[2] = 17;
  assert.equal(parseDhcp(hlen17), 'dhcp-bad-hlen');
  hlen17[2] = 16;
  assert.equal(msg(parseDhcp(hlen17)).chaddr.length, 16);
  assert.equal(parseDhcp(hex(base + '63825362' + 'ff')), 'dhcp-bad-cookie');
  const with_ = (opts: string): string | DhcpMessage => parseDhcp(hex(base + COOKIE + opts));
  assert.equal(with_('0c05616263'), 'dhcp-option-overrun'); // length 5, 3 bytes left
  assert.equal(with_('350101' + '0c'), 'dhcp-option-overrun'); // a code with no length byte
  assert.equal(with_('0103ffffff' + 'ff'), 'dhcp-bad-option'); // subnet mask of 3 bytes
  assert.equal(with_('03050a0002020a' + 'ff'), 'dhcp-bad-option'); // router list not whole addresses
  assert.equal(with_('0300' + 'ff'), 'dhcp-bad-option'); // empty router list
  assert.equal(with_('35020101' + 'ff'), 'dhcp-bad-option'); // message type of 2 bytes
  assert.equal(with_('350101350102' + 'ff'), 'dhcp-bad-option'); // two type options concatenate to 2 bytes
  assert.equal(with_('1a03000000' + 'ff'), 'dhcp-bad-option'); // MTU of 3 bytes
  assert.equal(with_('340104' + 'ff'), 'dhcp-bad-overload');
  assert.equal(with_('340100' + 'ff'), 'dhcp-bad-overload');
  assert.equal(with_('340101340101' + 'ff'), 'dhcp-bad-overload');
  // Option 52 inside the file it designates: a loop.
  const loop = hex(base + COOKIE + '340101' + 'ff');
  loop.set(hex('340101ff'), 108);
  assert.equal(parseDhcp(loop), 'dhcp-bad-overload');
  // An option in the file field that runs past the field's end (not the message's).
  const over = pad300(base + COOKIE + '340101' + 'ff');
  over.set(hex('0c10'), 108 + 126);
  assert.equal(parseDhcp(over), 'dhcp-option-overrun');
});

test('writeDhcp refuses what it cannot write (the caller\'s bug): bad addresses, long chaddr', () => {
  const m = emptyDhcpMessage();
  assert.throws(() => writeDhcp({ ...m, ciaddr: '10.0.2' }), TypeError);
  assert.throws(() => writeDhcp({ ...m, options: { routers: ['::1'] } }), TypeError);
  assert.throws(() => writeDhcp({ ...m, chaddr: new Uint8Array(17) }), RangeError);
});

test('raw options are written after the typed ones; pad, overload and end in rawOptions are not written', () => {
  const m: DhcpMessage = {
    ...emptyDhcpMessage(),
    options: { messageType: DhcpType.REQUEST },
    rawOptions: [{ code: 60, data: hex('6162') }, { code: 52, data: hex('03') }, { code: 0, data: new Uint8Array(0) }, { code: 81, data: new Uint8Array(0) }],
  };
  const b = writeDhcp(m);
  assert.equal(toHex(b.subarray(240, 240 + 3 + 4 + 2 + 1)), '350103' + '3c026162' + '5100' + 'ff');
  assert.deepEqual(msg(parseDhcp(b)).rawOptions, [{ code: 60, data: hex('6162') }, { code: 81, data: new Uint8Array(0) }]);
});

test('netmask and prefix length convert both ways; a non-contiguous mask is null', () => {
  for (let p = 0; p <= 32; p++) assert.equal(maskToPrefix(prefixToMask(p)), p);
  assert.equal(prefixToMask(24), '255.255.255.0');
  assert.equal(prefixToMask(0), '0.0.0.0');
  assert.equal(maskToPrefix('255.255.0.255'), null);
  assert.equal(maskToPrefix('nonsense'), null);
});

test('writeDhcp with a parameter request list: requested options first, in its order (RFC 2132 §9.8)', () => {
  const m: DhcpMessage = {
    ...emptyDhcpMessage(BOOTREPLY),
    options: { messageType: DhcpType.ACK, subnetMask: '255.0.0.0', routers: ['10.0.0.1'], dnsServers: ['10.0.0.3'], leaseTime: 60, serverId: '10.0.0.1' },
  };
  const b = writeDhcp(m, [6, 99, 1, 53]);
  const codes: number[] = [];
  for (let i = 240; b[i] !== 255; i += 2 + b[i + 1]) codes.push(b[i]);
  assert.deepEqual(codes, [53, 6, 1, 3, 51, 54]);
  assert.deepEqual(msg(parseDhcp(b)), m);
});
