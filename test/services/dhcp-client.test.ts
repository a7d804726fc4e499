/**
 * The DHCP client state machine driven against the server core in virtual time: every message goes
 * through writeDhcp/parseDhcp on the way, no network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DhcpClient, type DhcpClientAction, type DhcpClientOptions, type DhcpLease } from '../../src/services/dhcp-client.js';
import { DhcpServer } from '../../src/services/dhcp-server.js';
import { DHCP_FLAG_BROADCAST, DhcpType, dhcpTypeName, parseDhcp, writeDhcp, type DhcpMessage } from '../../src/wire/dhcp.js';

const MAC = '52:54:00:12:34:56';
const H = 3600_000;

interface Sent { at: number; message: DhcpMessage; to: string; from: string }

class Net {
  now = 0;
  sent: Sent[] = [];
  configured: DhcpLease | null = null;
  log: string[] = [];
  /** Drops the next n replies from the server. */
  dropReplies = 0;
  readonly client: DhcpClient;

  constructor(public server: DhcpServer | null, options: Partial<DhcpClientOptions> = {}) {
    this.client = new DhcpClient({ mac: MAC, seed: 7, hostname: 'guest', ...options });
  }

  start(): void {
    this.apply(this.client.start(this.now));
  }

  /** Runs the client's timers up to `until`. */
  run(until: number): void {
    for (;;) {
      const t = this.client.nextTimeout();
      if (t === null || t > until) break;
      this.now = Math.max(this.now, t);
      this.apply(this.client.tick(this.now));
    }
    this.now = until;
  }

  apply(actions: DhcpClientAction[]): void {
    for (const a of actions) {
      if (a.type === 'configure') {
        assert.ok(a.previous === null || a.previous.address === a.lease.address);
        this.configured = a.lease;
        this.log.push(`configure ${a.lease.address}/${a.lease.prefix}`);
      } else if (a.type === 'deconfigure') {
        assert.equal(this.configured?.address, a.lease.address);
        this.configured = null;
        this.log.push(`deconfigure ${a.lease.address} ${a.reason}`);
      } else {
        const message = parseDhcp(writeDhcp(a.message)) as DhcpMessage;
        assert.equal(typeof message, 'object');
        this.sent.push({ at: this.now, message, to: a.to.address, from: a.from });
        this.log.push(`${dhcpTypeName(message.options.messageType)} → ${a.to.address}`);
        const s = this.server;
        if (s === null || (a.to.address !== '255.255.255.255' && a.to.address !== s.serverAddress)) continue;
        const r = s.handle(message, this.now);
        if (r === null) continue;
        if (this.dropReplies > 0) {
          this.dropReplies--;
          continue;
        }
        const back = parseDhcp(writeDhcp(r.message, r.order)) as DhcpMessage;
        this.log.push(`${dhcpTypeName(back.options.messageType)} ← ${r.to.address}`);
        this.apply(this.client.handle(back, this.now));
      }
    }
  }

  types(): string[] {
    return this.sent.map((s) => dhcpTypeName(s.message.options.messageType));
  }
}

test('full exchange: DISCOVER, OFFER, REQUEST, ACK → configure 10.0.2.15/24 with router and DNS', () => {
  const net = new Net(new DhcpServer());
  net.start();
  assert.equal(net.client.state, 'BOUND');
  assert.deepEqual(net.log, ['DISCOVER → 255.255.255.255', 'OFFER ← 255.255.255.255', 'REQUEST → 255.255.255.255', 'ACK ← 255.255.255.255', 'configure 10.0.2.15/24']);
  const l = net.configured!;
  assert.deepEqual(
    { address: l.address, prefix: l.prefix, router: l.router, dns: l.dnsServers, server: l.serverId, lease: l.leaseTime, t1: l.renewAt, t2: l.rebindAt, end: l.expiresAt },
    { address: '10.0.2.15', prefix: 24, router: '10.0.2.2', dns: ['10.0.2.3'], server: '10.0.2.2', lease: 86400, t1: 12 * H, t2: 21 * H, end: 24 * H },
  );
  const [discover, request] = net.sent;
  // Before it has an address: from 0.0.0.0, broadcast flag set (RFC 2131 §4.1), client id 1 + MAC.
  for (const s of [discover, request]) {
    assert.equal(s.from, '0.0.0.0');
    assert.equal(s.message.flags, DHCP_FLAG_BROADCAST);
    assert.deepEqual(Array.from(s.message.options.clientId!), [1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    assert.equal(s.message.options.hostname, 'guest');
  }
  assert.equal(request.message.options.serverId, '10.0.2.2');
  assert.equal(request.message.options.requestedIp, '10.0.2.15');
  assert.equal(request.message.xid, discover.message.xid);
  assert.equal(net.client.nextTimeout(), 12 * H);
});

test('renewal at T1: a unicast REQUEST from the address with ciaddr, a new xid; ACK extends the lease', () => {
  const net = new Net(new DhcpServer());
  net.start();
  const firstXid = net.sent[0].message.xid;
  net.run(12 * H);
  assert.equal(net.client.state, 'BOUND');
  const renew = net.sent.at(-1)!;
  assert.equal(renew.at, 12 * H);
  assert.deepEqual([renew.to, renew.from, renew.message.ciaddr], ['10.0.2.2', '10.0.2.15', '10.0.2.15']);
  assert.equal(renew.message.options.serverId, undefined);
  assert.equal(renew.message.options.requestedIp, undefined);
  assert.equal(renew.message.flags, 0);
  assert.notEqual(renew.message.xid, firstXid);
  assert.equal(net.configured!.expiresAt, 12 * H + 24 * H);
  assert.equal(net.client.nextTimeout(), 24 * H);
  assert.deepEqual(net.log.slice(-3), ['REQUEST → 10.0.2.2', 'ACK ← 10.0.2.15', 'configure 10.0.2.15/24']);
});

test('server gone: RENEWING retransmits at half the time to T2 (≥ 60 s), then REBINDING broadcasts; a server back ACKs', () => {
  const net = new Net(new DhcpServer());
  net.start();
  net.server = null;
  net.run(21 * H - 1);
  assert.equal(net.client.state, 'RENEWING');
  const renewals = net.sent.slice(2);
  assert.equal(renewals[0].at, 12 * H);
  // 9 h to T2: retransmit after 4.5 h, then 2.25 h, … down to 60 s apart.
  assert.equal(renewals[1].at, 12 * H + 4.5 * H);
  assert.equal(renewals[2].at, 12 * H + 6.75 * H);
  const gaps = renewals.slice(1).map((s, i) => s.at - renewals[i].at);
  assert.ok(gaps.every((g) => g >= 60_000), `gaps ${gaps}`);
  assert.ok(renewals.every((s) => s.to === '10.0.2.2'));
  net.run(21 * H);
  assert.equal(net.client.state, 'REBINDING');
  const rebind = net.sent.at(-1)!;
  assert.deepEqual([rebind.at, rebind.to, rebind.from, rebind.message.ciaddr], [21 * H, '255.255.255.255', '10.0.2.15', '10.0.2.15']);
  // Another server (restarted, no record) answers the next broadcast.
  net.server = new DhcpServer({ serverAddress: '10.0.2.4' });
  net.run(23 * H);
  assert.equal(net.client.state, 'BOUND');
  assert.equal(net.configured!.serverId, '10.0.2.4');
  assert.equal(net.configured!.address, '10.0.2.15');
  assert.ok(!net.log.some((l) => l.startsWith('deconfigure')));
});

test('lease expiry with no server: deconfigure, then DISCOVERs with 4, 8, 16, 32, 64, 64 s backoff (±1 s)', () => {
  const net = new Net(new DhcpServer());
  net.start();
  net.server = null;
  net.run(24 * H + 200_000);
  assert.ok(net.log.includes('deconfigure 10.0.2.15 expired'));
  assert.equal(net.configured, null);
  assert.equal(net.client.state, 'SELECTING');
  const discovers = net.sent.filter((s) => s.message.options.messageType === DhcpType.DISCOVER && s.at >= 24 * H);
  assert.equal(discovers[0].at, 24 * H);
  const gaps = discovers.slice(1).map((s, i) => (s.at - discovers[i].at) / 1000);
  const want = [4, 8, 16, 32, 64, 64];
  assert.ok(gaps.length >= 5, `gaps ${gaps}`);
  gaps.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1, `gap ${i} ${g} s`));
  // Jittered: not exactly the nominal values.
  assert.ok(gaps.some((g, i) => g !== want[i]));
  // One exchange, one xid; secs counts from its start.
  assert.ok(discovers.every((d) => d.message.xid === discovers[0].message.xid));
  assert.equal(discovers[3].message.secs, Math.floor((discovers[3].at - discovers[0].at) / 1000));
});

test('NAK while renewing → deconfigure, INIT, and a new address', () => {
  const net = new Net(new DhcpServer());
  net.start();
  // The server restarts and, meanwhile, another client takes 10.0.2.15.
  const s = new DhcpServer();
  const other = { ...net.sent[0].message, chaddr: Uint8Array.of(2, 0, 0, 0, 0, 9), options: { messageType: DhcpType.DISCOVER } };
  const offer = s.handle(other, 0)!.message;
  s.handle({ ...other, options: { messageType: DhcpType.REQUEST, serverId: '10.0.2.2', requestedIp: offer.yiaddr } }, 0);
  net.server = s;
  net.run(12 * H);
  assert.deepEqual(net.log.slice(-8), [
    'REQUEST → 10.0.2.2', 'NAK ← 255.255.255.255', 'deconfigure 10.0.2.15 nak', 'DISCOVER → 255.255.255.255',
    'OFFER ← 255.255.255.255', 'REQUEST → 255.255.255.255', 'ACK ← 255.255.255.255', 'configure 10.0.2.16/24',
  ]);
  assert.ok(net.log.includes('deconfigure 10.0.2.15 nak'));
  assert.equal(net.log.at(-1), 'configure 10.0.2.16/24');
  assert.equal(net.client.state, 'BOUND');
});

test('INIT-REBOOT with a remembered address: ACK keeps it; a NAK (another network) sends the client to INIT', () => {
  const net = new Net(new DhcpServer(), { previousAddress: '10.0.2.50' });
  net.start();
  assert.deepEqual(net.log, ['REQUEST → 255.255.255.255', 'ACK ← 255.255.255.255', 'configure 10.0.2.50/24']);
  assert.equal(net.sent[0].message.options.serverId, undefined);
  assert.equal(net.sent[0].message.options.requestedIp, '10.0.2.50');
  const moved = new Net(new DhcpServer(), { previousAddress: '192.168.1.50' });
  moved.start();
  assert.deepEqual(moved.log.slice(0, 3), ['REQUEST → 255.255.255.255', 'NAK ← 255.255.255.255', 'DISCOVER → 255.255.255.255']);
  assert.equal(moved.configured!.address, '10.0.2.15');
});

test('a server that NAKs every REQUEST: the client backs off instead of looping', () => {
  const s = new DhcpServer();
  const net = new Net(s);
  // Make every REQUEST fail: answer with a NAK however the server core would have answered.
  const handle = s.handle.bind(s);
  s.handle = (m, now) => {
    const r = handle(m, now);
    if (r !== null && m.options.messageType === DhcpType.REQUEST) {
      r.message.options = { messageType: DhcpType.NAK, serverId: '10.0.2.2' };
      r.message.yiaddr = '0.0.0.0';
    }
    return r;
  };
  net.start();
  net.run(120_000);
  const naks = net.log.filter((l) => l.startsWith('NAK')).length;
  assert.ok(naks >= 2 && naks <= 6, `${naks} NAKs in 2 minutes`);
  assert.equal(net.configured, null);
});

test('pool exhausted: no OFFER, the client keeps DISCOVERing with backoff', () => {
  const s = new DhcpServer({ poolStart: '10.0.2.15', poolEnd: '10.0.2.15' });
  new Net(s, { mac: '02:00:00:00:00:01' }).start();
  const net = new Net(s);
  net.start();
  net.run(50_000);
  assert.equal(net.client.state, 'SELECTING');
  assert.deepEqual(new Set(net.types()), new Set(['DISCOVER']));
  assert.equal(net.sent.length, 4); // at 0, ~4, ~12, ~28 s; the next at ~60 s ± 4 s of jitter
  assert.equal(s.counters['pool-exhausted'], 4);
});

test('a lost OFFER: the DISCOVER is retransmitted after about 4 s and the exchange completes', () => {
  const net = new Net(new DhcpServer());
  net.dropReplies = 1;
  net.start();
  assert.equal(net.client.state, 'SELECTING');
  net.run(10_000);
  assert.equal(net.client.state, 'BOUND');
  assert.ok(net.sent[1].at >= 3000 && net.sent[1].at <= 5000);
  // A lost ACK: REQUEST retransmitted, same xid.
  const net2 = new Net(new DhcpServer(), { seed: 9 });
  net2.server!.handle = ((h) => {
    let n = 0;
    return (m: DhcpMessage, now: number) => (m.options.messageType === DhcpType.REQUEST && n++ === 0 ? null : h(m, now));
  })(net2.server!.handle.bind(net2.server!));
  net2.start();
  assert.equal(net2.client.state, 'REQUESTING');
  net2.run(10_000);
  assert.equal(net2.client.state, 'BOUND');
  assert.deepEqual(net2.types(), ['DISCOVER', 'REQUEST', 'REQUEST']);
  assert.equal(net2.sent[2].message.xid, net2.sent[1].message.xid);
});

test('REQUESTING gives up after maxRequestAttempts and starts over with a DISCOVER', () => {
  const s = new DhcpServer();
  const h = s.handle.bind(s);
  s.handle = (m, now) => (m.options.messageType === DhcpType.REQUEST ? null : h(m, now));
  const net = new Net(s, { maxRequestAttempts: 3 });
  net.start();
  net.run(40_000);
  assert.deepEqual(net.types().slice(0, 5), ['DISCOVER', 'REQUEST', 'REQUEST', 'REQUEST', 'DISCOVER']);
  assert.notEqual(net.sent[4].message.xid, net.sent[0].message.xid);
});

test('RELEASE: unicast to the server from the address; the server frees it; the client stops', () => {
  const events: string[] = [];
  const net = new Net(new DhcpServer({ onEvent: (e) => events.push(`${e.type}`) }));
  net.start();
  net.apply(net.client.release(net.now + 1000));
  assert.equal(net.client.state, 'STOPPED');
  assert.equal(net.client.nextTimeout(), null);
  const r = net.sent.at(-1)!;
  assert.deepEqual([dhcpTypeName(r.message.options.messageType), r.to, r.from, r.message.ciaddr, r.message.options.serverId],
    ['RELEASE', '10.0.2.2', '10.0.2.15', '10.0.2.15', '10.0.2.2']);
  assert.equal(net.log.at(-1), 'deconfigure 10.0.2.15 released');
  assert.deepEqual(events, ['lease-granted', 'lease-released']);
  assert.equal(net.server!.leases(net.now + 2000)[0].state, 'free');
});

test('DECLINE: the address is given up; after 10 s the client asks again and gets another', () => {
  const net = new Net(new DhcpServer());
  net.start();
  net.apply(net.client.decline(net.now, 'in use'));
  const d = net.sent.at(-1)!;
  assert.equal(dhcpTypeName(d.message.options.messageType), 'DECLINE');
  assert.deepEqual([d.to, d.from, d.message.ciaddr, d.message.options.requestedIp], ['255.255.255.255', '0.0.0.0', '0.0.0.0', '10.0.2.15']);
  assert.equal(net.client.state, 'INIT');
  net.run(9_999);
  assert.equal(net.client.state, 'INIT');
  net.run(10_000);
  assert.equal(net.configured!.address, '10.0.2.16');
});

test('replies for another transaction or another MAC are ignored', () => {
  const net = new Net(null);
  net.start();
  const discover = net.sent[0].message;
  const offer = new DhcpServer().handle(discover, 0)!.message;
  assert.deepEqual(net.client.handle({ ...offer, xid: (offer.xid + 1) >>> 0 }, 0), []);
  assert.deepEqual(net.client.handle({ ...offer, chaddr: Uint8Array.of(2, 0, 0, 0, 0, 1) }, 0), []);
  assert.deepEqual(net.client.handle({ ...offer, op: 1 }, 0), []);
  assert.deepEqual(net.client.handle({ ...offer, options: { ...offer.options, messageType: DhcpType.ACK } }, 0), []);
  assert.equal(net.client.state, 'SELECTING');
  // The raw-bytes pre-check agrees.
  const bytes = writeDhcp(offer);
  assert.equal(net.client.wants(bytes), true);
  assert.equal(net.client.wants(writeDhcp({ ...offer, xid: (offer.xid + 1) >>> 0 })), false);
  assert.equal(net.client.wants(writeDhcp({ ...offer, chaddr: Uint8Array.of(2, 0, 0, 0, 0, 1) })), false);
  assert.equal(net.client.wants(writeDhcp({ ...offer, op: 1 })), false);
  assert.equal(net.client.handle(offer, 0)[0].type, 'send');
  assert.equal(net.client.state, 'REQUESTING');
});

test('a lease without T1/T2, or with T1 ≥ T2, gets the RFC 2131 §4.4.5 defaults; no mask → classful', () => {
  const net = new Net(null);
  net.start();
  const xid = net.sent[0].message.xid;
  const offer = new DhcpServer().handle(net.sent[0].message, 0)!.message;
  net.client.handle(offer, 0);
  const ack: DhcpMessage = {
    ...offer, xid,
    options: { messageType: DhcpType.ACK, serverId: '10.0.2.2', leaseTime: 1000, renewalTime: 900, rebindingTime: 800 },
  };
  const [a] = net.client.handle(ack, 0);
  assert.equal(a.type, 'configure');
  if (a.type !== 'configure') return;
  assert.deepEqual([a.lease.renewalTime, a.lease.rebindingTime, a.lease.prefix, a.lease.router, a.lease.mtu], [457, 800, 8, null, undefined]);
});
