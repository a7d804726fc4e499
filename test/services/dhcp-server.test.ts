import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhcpServer, normalizeMac, type DhcpReply, type DhcpServerEvent, type DhcpServerOptions } from '../../src/services/dhcp-server.js';
import {
  BOOTREPLY, DHCP_FLAG_BROADCAST, DhcpType, emptyDhcpMessage, parseDhcp, writeDhcp, type DhcpMessage, type DhcpOptions,
} from '../../src/wire/dhcp.js';

function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(normalizeMac(mac).split(':'), (h) => parseInt(h, 16));
}

function macOf(i: number): string {
  return `02:00:00:00:${((i >> 8) & 0xff).toString(16)}:${(i & 0xff).toString(16)}`;
}

/** A client message as a client would send it. */
function req(type: number, mac: string, options: DhcpOptions = {}, fields: Partial<DhcpMessage> = {}): DhcpMessage {
  return {
    ...emptyDhcpMessage(),
    xid: 0x1234,
    chaddr: macBytes(mac),
    ...fields,
    options: { messageType: type, parameterRequestList: [1, 3, 6, 15, 26, 28, 51, 58, 59], ...options },
  };
}

function setup(options: DhcpServerOptions = {}): { s: DhcpServer; events: DhcpServerEvent[] } {
  const events: DhcpServerEvent[] = [];
  const s = new DhcpServer({ ...options, onEvent: (e) => events.push(e) });
  return { s, events };
}

function reply(r: DhcpReply | null): DhcpReply {
  assert.ok(r !== null, 'expected a reply');
  return r;
}

/** DISCOVER then REQUEST (SELECTING): the bound address. */
function acquire(s: DhcpServer, mac: string, now: number): string {
  const offer = reply(s.handle(req(DhcpType.DISCOVER, mac), now)).message;
  const ack = reply(s.handle(req(DhcpType.REQUEST, mac, { serverId: offer.options.serverId!, requestedIp: offer.yiaddr }), now)).message;
  assert.equal(ack.options.messageType, DhcpType.ACK);
  return ack.yiaddr;
}

const A = '52:54:00:12:34:56';
const B = '52:54:00:12:34:57';

test('DISCOVER → OFFER: the first pool address, QEMU defaults, broadcast to :68, options in the request list order', () => {
  const { s } = setup();
  const r = reply(s.handle(req(DhcpType.DISCOVER, A, {}, { xid: 0xcafe, flags: DHCP_FLAG_BROADCAST }), 0));
  const m = r.message;
  assert.deepEqual(r.to, { address: '255.255.255.255', port: 68 });
  assert.equal(m.op, BOOTREPLY);
  assert.equal(m.xid, 0xcafe);
  assert.equal(m.flags, DHCP_FLAG_BROADCAST);
  assert.deepEqual(m.chaddr, macBytes(A));
  assert.equal(m.yiaddr, '10.0.2.15');
  assert.deepEqual(m.options, {
    messageType: DhcpType.OFFER, serverId: '10.0.2.2', subnetMask: '255.255.255.0', broadcastAddress: '10.0.2.255',
    routers: ['10.0.2.2'], dnsServers: ['10.0.2.3'], leaseTime: 86400, renewalTime: 43200, rebindingTime: 75600,
  });
  // Written with the client's list as the order: 1, 3, 6, 28, 51, 58, 59, then the server id.
  const b = writeDhcp(m, r.order);
  const codes: number[] = [];
  for (let i = 240; b[i] !== 255; i += 2 + b[i + 1]) codes.push(b[i]);
  assert.deepEqual(codes, [53, 1, 3, 6, 28, 51, 58, 59, 54]);
  assert.deepEqual(parseDhcp(b), m);
  assert.equal(s.counters.offers, 1);
});

test('REQUEST in SELECTING → ACK and a lease-granted event; a second client gets the next address', () => {
  const { s, events } = setup();
  assert.equal(acquire(s, A, 1000), '10.0.2.15');
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], { type: 'lease-granted', mac: A, address: '10.0.2.15', expiresAt: 1000 + 86400_000, renewed: false });
  assert.deepEqual(s.leases(2000).map((l) => [l.mac, l.address, l.state]), [[A, '10.0.2.15', 'bound']]);
  assert.equal(acquire(s, B, 1000), '10.0.2.16');
  assert.equal(s.counters.acks, 2);
});

test('a REQUEST naming another server withdraws our offer, silently', () => {
  const { s } = setup({ poolStart: '10.0.2.15', poolEnd: '10.0.2.15' });
  reply(s.handle(req(DhcpType.DISCOVER, A), 0));
  assert.equal(s.handle(req(DhcpType.REQUEST, A, { serverId: '10.0.2.99', requestedIp: '10.0.2.15' }), 0), null);
  assert.equal(s.counters['request-other-server'], 1);
  // The one address is free again for another client at once.
  assert.equal(reply(s.handle(req(DhcpType.DISCOVER, B), 1)).message.yiaddr, '10.0.2.15');
});

test('a SELECTING REQUEST for an address we did not offer is NAKed, broadcast, with a message', () => {
  const { s } = setup();
  reply(s.handle(req(DhcpType.DISCOVER, A), 0));
  const r = reply(s.handle(req(DhcpType.REQUEST, A, { serverId: '10.0.2.2', requestedIp: '10.0.2.99' }), 0));
  assert.equal(r.message.options.messageType, DhcpType.NAK);
  assert.equal(r.message.yiaddr, '0.0.0.0');
  assert.equal(r.message.options.leaseTime, undefined);
  assert.equal(typeof r.message.options.message, 'string');
  assert.deepEqual(r.to, { address: '255.255.255.255', port: 68 });
  assert.equal(s.counters.naks, 1);
  // Without an offer on record (withdrawn), a request for a free pool address is granted.
  const fresh = new DhcpServer();
  assert.equal(reply(fresh.handle(req(DhcpType.REQUEST, A, { serverId: '10.0.2.2', requestedIp: '10.0.2.99' }), 0)).message.options.messageType, DhcpType.ACK);
});

test('RENEWING: ciaddr set → ACK unicast to ciaddr:68, lease extended, event says renewed', () => {
  const { s, events } = setup();
  const ip = acquire(s, A, 0);
  const r = reply(s.handle(req(DhcpType.REQUEST, A, {}, { ciaddr: ip }), 43200_000));
  assert.equal(r.message.options.messageType, DhcpType.ACK);
  assert.equal(r.message.yiaddr, ip);
  assert.equal(r.message.ciaddr, ip);
  assert.deepEqual(r.to, { address: ip, port: 68 });
  assert.deepEqual(events.at(-1), { type: 'lease-granted', mac: A, address: ip, expiresAt: 43200_000 + 86400_000, renewed: true });
  // A renewal for an address the client does not hold but another does: NAK, broadcast.
  acquire(s, B, 0);
  const bad = reply(s.handle(req(DhcpType.REQUEST, A, {}, { ciaddr: '10.0.2.16' }), 43200_000));
  assert.equal(bad.message.options.messageType, DhcpType.NAK);
  assert.deepEqual(bad.to, { address: '255.255.255.255', port: 68 });
});

test('INIT-REBOOT: known lease → ACK; another\'s address or another network → NAK; unknown free address → ACK unless not authoritative', () => {
  const { s } = setup();
  const ip = acquire(s, A, 0);
  acquire(s, B, 0);
  assert.equal(reply(s.handle(req(DhcpType.REQUEST, A, { requestedIp: ip }), 5000)).message.options.messageType, DhcpType.ACK);
  assert.equal(reply(s.handle(req(DhcpType.REQUEST, A, { requestedIp: '10.0.2.16' }), 5000)).message.options.messageType, DhcpType.NAK);
  assert.equal(reply(s.handle(req(DhcpType.REQUEST, A, { requestedIp: '192.168.1.7' }), 5000)).message.options.messageType, DhcpType.NAK);
  // A restarted server has no record: an authoritative one grants a free pool address…
  const fresh = new DhcpServer();
  const r = reply(fresh.handle(req(DhcpType.REQUEST, A, { requestedIp: '10.0.2.40' }), 0));
  assert.equal(r.message.options.messageType, DhcpType.ACK);
  assert.equal(r.message.yiaddr, '10.0.2.40');
  // …but not one outside the pool, and a non-authoritative one stays silent (RFC 2131 §4.3.2).
  assert.equal(reply(fresh.handle(req(DhcpType.REQUEST, B, { requestedIp: '10.0.2.3' }), 0)).message.options.messageType, DhcpType.NAK);
  const quiet = new DhcpServer({ authoritative: false });
  assert.equal(quiet.handle(req(DhcpType.REQUEST, A, { requestedIp: '10.0.2.40' }), 0), null);
});

test('RELEASE frees the lease; the same client gets its address back, others first get unused ones', () => {
  const { s, events } = setup();
  const ip = acquire(s, A, 0);
  assert.equal(s.handle(req(DhcpType.RELEASE, A, {}, { ciaddr: ip }), 1000), null);
  assert.deepEqual(events.at(-1), { type: 'lease-released', mac: A, address: ip });
  assert.equal(s.leases(1000)[0].state, 'free');
  assert.equal(acquire(s, B, 2000), '10.0.2.16');
  assert.equal(acquire(s, A, 3000), ip);
  // A RELEASE for an address the client does not hold changes nothing.
  s.handle(req(DhcpType.RELEASE, A, {}, { ciaddr: '10.0.2.16' }), 4000);
  assert.equal(s.counters['unknown-lease'], 1);
  assert.equal(s.leases(4000).filter((l) => l.state === 'bound').length, 2);
});

test('DECLINE: the address is unusable for declineHoldMs, the client is offered another', () => {
  const { s, events } = setup({ poolStart: '10.0.2.15', poolEnd: '10.0.2.16', declineHoldMs: 60_000 });
  const ip = acquire(s, A, 0);
  s.handle(req(DhcpType.DECLINE, A, { requestedIp: ip, message: 'arp says in use' }), 100);
  assert.deepEqual(events.at(-1), { type: 'lease-declined', mac: A, address: ip, message: 'arp says in use' });
  assert.equal(acquire(s, A, 200), '10.0.2.16');
  // The pool is now exhausted for B until the hold ends.
  assert.equal(s.handle(req(DhcpType.DISCOVER, B), 1000), null);
  assert.equal(s.counters['pool-exhausted'], 1);
  assert.deepEqual(events.at(-1), { type: 'pool-exhausted', mac: B });
  assert.equal(reply(s.handle(req(DhcpType.DISCOVER, B), 60_100)).message.yiaddr, ip);
});

test('INFORM → ACK to ciaddr:68 with configuration but no yiaddr and no lease time (RFC 2131 §3.4)', () => {
  const { s } = setup({ domainName: 'lan', mtu: 1400 });
  const r = reply(s.handle(req(DhcpType.INFORM, A, {}, { ciaddr: '10.0.2.77' }), 0));
  assert.deepEqual(r.to, { address: '10.0.2.77', port: 68 });
  assert.equal(r.message.yiaddr, '0.0.0.0');
  assert.equal(r.message.ciaddr, '10.0.2.77');
  assert.equal(r.message.options.messageType, DhcpType.ACK);
  assert.equal(r.message.options.leaseTime, undefined);
  assert.equal(r.message.options.renewalTime, undefined);
  assert.equal(r.message.options.domainName, 'lan');
  assert.equal(r.message.options.interfaceMtu, 1400);
  assert.equal(s.leases(0).length, 0);
});

test('an OFFER holds its address only offerHoldMs', () => {
  const { s } = setup({ poolStart: '10.0.2.15', poolEnd: '10.0.2.15' });
  reply(s.handle(req(DhcpType.DISCOVER, A), 0));
  assert.equal(s.handle(req(DhcpType.DISCOVER, B), 29_999), null);
  assert.equal(reply(s.handle(req(DhcpType.DISCOVER, B), 30_000)).message.yiaddr, '10.0.2.15');
});

test('a bound lease expires: the address goes to another client when the pool has no other', () => {
  const { s } = setup({ poolStart: '10.0.2.15', poolEnd: '10.0.2.15', leaseTime: 60 });
  acquire(s, A, 0);
  assert.equal(s.handle(req(DhcpType.DISCOVER, B), 59_999), null);
  assert.equal(acquire(s, B, 60_000), '10.0.2.15');
  // A, renewing late, is NAKed.
  assert.equal(reply(s.handle(req(DhcpType.REQUEST, A, {}, { ciaddr: '10.0.2.15' }), 61_000)).message.options.messageType, DhcpType.NAK);
});

test('static leases: the MAC gets its address, which no one else is offered', () => {
  const { s } = setup({ staticLeases: [{ mac: '52-54-00-12-34-56', address: '10.0.2.100' }], poolStart: '10.0.2.99', poolEnd: '10.0.2.101' });
  assert.equal(acquire(s, A, 0), '10.0.2.100');
  assert.equal(acquire(s, B, 0), '10.0.2.99');
  assert.equal(acquire(s, '02:00:00:00:00:01', 0), '10.0.2.101');
  assert.equal(s.handle(req(DhcpType.DISCOVER, '02:00:00:00:00:02'), 0), null);
  assert.ok(s.leases(0).find((l) => l.mac === A)!.static);
  assert.throws(() => new DhcpServer({ staticLeases: [{ mac: A, address: '192.168.0.1' }] }), RangeError);
});

test('pool exhausted: no offer, counted, an event', () => {
  const { s, events } = setup({ poolStart: '10.0.2.15', poolEnd: '10.0.2.16' });
  acquire(s, A, 0);
  acquire(s, B, 0);
  assert.equal(s.handle(req(DhcpType.DISCOVER, '02:00:00:00:00:09'), 0), null);
  assert.equal(s.counters['pool-exhausted'], 1);
  assert.equal(events.at(-1)!.type, 'pool-exhausted');
});

test('a flood of DISCOVERs from random MACs holds at most maxPendingOffers addresses; a real client still gets one', () => {
  const { s } = setup();
  let t = 0;
  for (let i = 0; i < 5000; i++) {
    t += 2; // 500 DISCOVERs a second for 10 s
    s.handle(req(DhcpType.DISCOVER, macOf(i)), t);
  }
  const offered = s.leases(t).filter((l) => l.state === 'offered').length;
  assert.ok(offered <= 32, `${offered} offers held`);
  assert.ok(s.counters['rate-limited-global'] > 3000, 'the global bucket refuses most');
  assert.ok(s.counters['offers-withdrawn'] > 0);
  assert.ok(s.counters.offers < 1300);
  // A second later the global bucket has refilled; the offers the flood still holds do not stop a
  // real client: its offer withdraws the oldest of them.
  assert.match(acquire(s, A, t + 1000), /^10\.0\.2\./);
  assert.equal(s.leases(t + 1000).filter((l) => l.state === 'bound').length, 1);
});

test('per-client rate limit: a burst from one MAC is answered up to the burst, then counted', () => {
  const { s } = setup({ perClientRate: { perSecond: 1, burst: 3 } });
  let answered = 0;
  for (let i = 0; i < 10; i++) if (s.handle(req(DhcpType.DISCOVER, A), 0) !== null) answered++;
  assert.equal(answered, 3);
  assert.equal(s.counters['rate-limited-client'], 7);
  assert.notEqual(s.handle(req(DhcpType.DISCOVER, A), 1000), null);
  // Every re-DISCOVER got the same address: one offer held, not three.
  assert.equal(s.leases(1000).length, 1);
});

test('leases are keyed by client identifier when there is one (RFC 2131 §4.2), and the id is echoed (RFC 6842)', () => {
  const { s } = setup();
  const id = Uint8Array.of(0xff, 1, 2, 3, 4);
  const offer = reply(s.handle(req(DhcpType.DISCOVER, A, { clientId: id }), 0)).message;
  assert.deepEqual(offer.options.clientId, id);
  // The same identifier from another NIC: the same lease.
  const ack = reply(s.handle(req(DhcpType.REQUEST, B, { clientId: id, serverId: '10.0.2.2', requestedIp: offer.yiaddr }), 0)).message;
  assert.equal(ack.options.messageType, DhcpType.ACK);
  assert.equal(ack.yiaddr, offer.yiaddr);
});

test('relayed requests (giaddr) are answered to the relay on port 67', () => {
  const { s } = setup();
  const r = reply(s.handle(req(DhcpType.DISCOVER, A, {}, { giaddr: '10.0.2.1' }), 0));
  assert.deepEqual(r.to, { address: '10.0.2.1', port: 67 });
  assert.equal(r.message.giaddr, '10.0.2.1');
});

test('ignored: replies, plain BOOTP, no client identity, types a server does not take', () => {
  const { s } = setup();
  assert.equal(s.handle({ ...req(DhcpType.DISCOVER, A), op: BOOTREPLY }, 0), null);
  assert.equal(s.handle({ ...req(DhcpType.DISCOVER, A), options: {} }, 0), null);
  assert.equal(s.handle({ ...req(DhcpType.DISCOVER, A), hlen: 0, chaddr: new Uint8Array(0) }, 0), null);
  assert.equal(s.handle(req(DhcpType.OFFER, A), 0), null);
  assert.equal(s.handle(req(DhcpType.INFORM, A), 0), null); // INFORM without ciaddr
  assert.deepEqual(
    [s.counters['ignored-not-request'], s.counters['ignored-no-type'], s.counters['ignored-no-client'], s.counters['ignored-type'], s.counters['unknown-lease']],
    [1, 1, 1, 1, 1],
  );
  assert.equal(s.counters.received, 5);
});

test('configuration errors are refused at construction', () => {
  assert.throws(() => new DhcpServer({ subnet: '10.0.2.0/31' }), TypeError);
  assert.throws(() => new DhcpServer({ poolStart: '10.0.3.1' }), RangeError);
  assert.throws(() => new DhcpServer({ poolStart: '10.0.2.200', poolEnd: '10.0.2.100' }), RangeError);
  assert.throws(() => new DhcpServer({ serverAddress: 'nope' }), TypeError);
  assert.throws(() => normalizeMac('52:54:00'), TypeError);
  // Another subnet, no router, a custom lease: T1/T2 follow it.
  const s = new DhcpServer({ subnet: '192.168.7.0/24', serverAddress: '192.168.7.1', router: null, dnsServers: [], leaseTime: 600 });
  const o = reply(s.handle(req(DhcpType.DISCOVER, A), 0)).message;
  assert.equal(o.yiaddr, '192.168.7.15');
  assert.equal(o.options.routers, undefined);
  assert.equal(o.options.dnsServers, undefined);
  assert.deepEqual([o.options.leaseTime, o.options.renewalTime, o.options.rebindingTime], [600, 300, 525]);
});

test('maxLeases bounds the lease table: a full table offers nothing until leases expire', () => {
  const { s } = setup({ maxLeases: 3, leaseTime: 60 });
  for (let i = 1; i <= 3; i++) acquire(s, macOf(i), 0);
  assert.equal(s.handle(req(DhcpType.DISCOVER, macOf(4)), 0), null);
  assert.equal(s.counters['pool-exhausted'], 1);
  // An INIT-REBOOT for a free address is refused too (NAK), not added past the bound.
  assert.equal(reply(s.handle(req(DhcpType.REQUEST, macOf(5), { requestedIp: '10.0.2.99' }), 0)).message.options.messageType, DhcpType.NAK);
  assert.equal(s.leases(0).length, 3);
  // Once they expire, the table is swept and the new client gets an address.
  assert.match(acquire(s, macOf(4), 60_000), /^10\.0\.2\./);
  assert.ok(s.leases(60_000).length <= 3);
});
