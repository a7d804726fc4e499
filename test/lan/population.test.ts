/**
 * The 1,000-host LAN (issue 14): a LanGateway (DHCP, DNS, RAs), one TCP echo server with a static
 * address and 1,000 hosts that start with no address, all on one EthernetSwitch in virtual time.
 * Each host runs the DHCP client; once bound it opens a TCP connection to the echo server, sends a
 * few hundred bytes of its own, checks the echo and closes. Every lease must be distinct and in the
 * pool, every echo intact, no stack may have caught an exception, and the gateway's DHCP counters
 * must add up. The hosts boot over 25 s (40 a second) as machines on a real segment do; the gateway
 * keeps its default rate limits (100 messages/s overall), which this stays under.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { LanGateway } from '../../src/gateway/lan.js';
import { runDhcpClient, type DhcpClientHandle } from '../../src/services/dhcp.js';
import { Stack } from '../../src/stack/stack.js';
import { echoServer } from '../support/echo.js';

const HOSTS = 1000;
const BYTES = 300;
const SUBNET = '10.0.0.0/21';
/** Outside the pool (which starts at .15), not the gateway's .2 or the DNS server's .3. */
const ECHO = '10.0.0.10';
const ECHO_PORT = 7;
const BOOT_SPACING_MS = 25;

function toNum(a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

function mac(i: number): string {
  return `52:54:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

/** Host i's bytes: distinct per host (its number in the first two) and per position. */
function payload(i: number): Uint8Array {
  const b = new Uint8Array(BYTES);
  b[0] = i >> 8;
  b[1] = i & 0xff;
  for (let k = 2; k < BYTES; k++) b[k] = (k * 7 + i * 13) & 0xff;
  return b;
}

interface HostResult {
  address: string | null;
  echoed: Uint8Array | null;
  error: unknown;
  closed: boolean;
  boundAt: number;
  doneAt: number;
}

test(`${HOSTS} hosts on one switch: DHCP leases, a TCP echo each, no internal errors`, (t) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();

  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, seed: 14 });
  const gw = new LanGateway({ link: sw.port(), clock, subnet: SUBNET, seed: 1, mac: '52:54:00:00:00:02', leaseTime: 3600 });
  const layout = gw.layout;
  assert.equal(layout.poolStart, '10.0.0.15');
  assert.equal(layout.poolEnd, '10.0.7.254');
  // What the switch floods, by kind: each flood reaches all ${HOSTS + 1} other ports.
  const floods = new Map<string, number>();
  sw.onFrame((f) => {
    if ((f[0]! & 1) === 0) return;
    const type = (f[12]! << 8) | f[13]!;
    const kind = type === 0x0806 ? 'arp'
      : type === 0x86dd ? `icmpv6-${f[14 + 40]}`
      : type === 0x0800 && f[14 + 9] === 17 ? `udp-${(f[14 + 22]! << 8) | f[14 + 23]!}`
      : `0x${type.toString(16)}`;
    floods.set(kind, (floods.get(kind) ?? 0) + 1);
  });
  const echo = new Stack({ name: 'echo', link: sw.port(), addresses: [`${ECHO}/21`], clock, seed: 2, mac: '52:54:00:00:00:0a' });
  echoServer(echo, ECHO_PORT);

  const stacks: Stack[] = [];
  const clients: DhcpClientHandle[] = [];
  const results: HostResult[] = [];
  for (let i = 0; i < HOSTS; i++) {
    const s = new Stack({ name: `h${i}`, link: sw.port(), addresses: [], clock, seed: 1000 + i, mac: mac(i + 0x100) });
    stacks.push(s);
    const r: HostResult = { address: null, echoed: null, error: null, closed: false, boundAt: -1, doneAt: -1 };
    results.push(r);
    clock.schedule(i * BOOT_SPACING_MS, () => {
      const c = runDhcpClient(s, {
        seed: 5000 + i,
        hostname: `h${i}`,
        onLease: (lease) => {
          if (lease === null || r.address !== null) return;
          r.address = lease.address;
          r.boundAt = clock.now();
          // The connection opens one turn later, outside the DHCP socket's callback.
          clock.defer(() => connect(s, i, r));
        },
      });
      clients.push(c);
    });
  }

  function connect(s: Stack, i: number, r: HostResult): void {
    const data = payload(i);
    const got: Uint8Array[] = [];
    let received = 0;
    const c = s.tcpConnect({ host: ECHO, port: ECHO_PORT });
    c.events = {
      onEstablished: () => {
        assert.equal(c.write(data), BYTES);
      },
      onReadable: () => {
        for (let d = c.read(); d !== null; d = c.read()) {
          got.push(d.slice());
          received += d.length;
        }
        if (received >= BYTES && c.state === 'ESTABLISHED') c.close();
      },
      onClosed: (e) => {
        r.closed = true;
        r.error = e;
        r.doneAt = clock.now();
        const out = new Uint8Array(received);
        let at = 0;
        for (const g of got) {
          out.set(g, at);
          at += g.length;
        }
        r.echoed = out;
      },
    };
  }

  // Boot (25 s) plus time for the last exchanges and TIME-WAIT to drain.
  const virtualMs = HOSTS * BOOT_SPACING_MS + 120_000;
  for (let at = 0; at < virtualMs; at += 1000) clock.advanceSync(1000);
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;

  // Every host bound a distinct address in the pool.
  const lo = toNum(layout.poolStart);
  const hi = toNum(layout.poolEnd);
  const seen = new Set<string>();
  for (let i = 0; i < HOSTS; i++) {
    const a = results[i]!.address;
    assert.ok(a !== null, `host ${i} got no lease (state ${clients[i]?.client.state})`);
    assert.ok(toNum(a) >= lo && toNum(a) <= hi, `host ${i}: ${a} outside the pool`);
    assert.ok(!seen.has(a), `host ${i}: ${a} leased twice`);
    seen.add(a);
    assert.deepEqual(stacks[i]!.addresses, [a]);
    assert.equal(clients[i]!.client.state, 'BOUND');
  }
  // The gateway's table agrees: HOSTS bound leases, one per MAC, the same addresses.
  const leases = gw.dhcp!.server.leases(clock.now()).filter((l) => l.state === 'bound');
  assert.equal(leases.length, HOSTS);
  assert.deepEqual(new Set(leases.map((l) => l.address)), seen);
  assert.equal(new Set(leases.map((l) => l.mac)).size, HOSTS);

  // Every echo came back whole and the connection closed cleanly.
  for (let i = 0; i < HOSTS; i++) {
    const r = results[i]!;
    assert.ok(r.closed, `host ${i}: connection not closed`);
    assert.equal(r.error, null, `host ${i}: ${String(r.error)}`);
    assert.deepEqual(r.echoed, payload(i), `host ${i}: echo differs`);
  }

  // No stack caught an exception.
  for (const s of [gw.stack, echo, ...stacks]) assert.equal(s.counters.internalErrors, 0, `${s.name}: internal errors`);

  // DHCP counters: one OFFER and one ACK per host (no retransmission was needed at 40 hosts/s),
  // nothing rate-limited, exhausted or refused; every message received is accounted for.
  const dc = gw.dhcp!.server.counters;
  assert.equal(dc.acks, HOSTS);
  assert.ok(dc.offers >= HOSTS, `offers ${dc.offers}`);
  assert.equal(dc.naks, 0);
  assert.equal(dc['pool-exhausted'], 0);
  assert.equal(dc['rate-limited-global'] + dc['rate-limited-client'], 0);
  const handled = dc.offers + dc.acks + dc.naks + dc.informs + dc.releases + dc.declines + dc['pool-exhausted'] +
    dc['ignored-not-request'] + dc['ignored-no-type'] + dc['ignored-type'] + dc['ignored-no-client'] +
    dc['rate-limited-client'] + dc['rate-limited-global'] + dc['request-other-server'] + dc['unknown-lease'];
  assert.equal(handled, dc.received, `counters ${JSON.stringify(dc)}`);
  assert.deepEqual(gw.dhcp!.drops, {});

  const lastBound = Math.max(...results.map((r) => r.boundAt));
  const lastDone = Math.max(...results.map((r) => r.doneAt));
  gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  const st = sw.stats;
  t.diagnostic(`${HOSTS} hosts: ${seen.size} leases, ${HOSTS} echoes of ${BYTES} B; last bound at ${(lastBound / 1000).toFixed(1)} s, last echo closed at ${(lastDone / 1000).toFixed(1)} s virtual`);
  t.diagnostic(`wall ${(wall / 1000).toFixed(2)} s (CPU ${(cpuMs / 1000).toFixed(2)} s) for ${(virtualMs / 1000).toFixed(0)} s virtual; heap ${(heapBefore / 2 ** 20).toFixed(1)} MiB before, ${(heapAfter / 2 ** 20).toFixed(1)} MiB after${gc === undefined ? ' (no --expose-gc: after is without a collection)' : ' (after gc)'}`);
  t.diagnostic(`switch: ${st.frames} frames, ${st.forwarded} forwarded, ${st.flooded} flooded, ${st.deliveries} deliveries; DHCP ${JSON.stringify(dc)}`);
  t.diagnostic(`broadcast/multicast frames by kind: ${JSON.stringify(Object.fromEntries(floods))}`);
  t.diagnostic(`gateway neighbours ${gw.stack.interface!.neighbours().length}, echo neighbours ${echo.interface!.neighbours().length}; echo passive opens ${echo.counters.passiveOpens}`);
  // CPU time, not wall time: other work on the machine stretches the wall clock, not the work done.
  assert.ok(cpuMs < 60_000, `took ${cpuMs} ms of CPU`);

  for (const c of clients) c.close();
  gw.close();
  for (const s of [echo, ...stacks]) s.interface?.close();
});
