/**
 * The gateway as a library (src/gateway/gateway.ts), the way a page uses it: a Gateway and a guest
 * synack stack on an in-memory Ethernet switch, the guest's connections relayed to JavaScript
 * handlers (LocalUpstream). What a guest sees: its connection to any address reaches the handler
 * with that address; a refusal is a reset at once; the policy refuses before any upstream opens;
 * the host alias; backpressure that keeps the gateway's memory bounded when the far side does not
 * read; UDP flows and their idle timeout; connections into the guest; the connection limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, type GatewayEvent } from '../../src/gateway/gateway.js';
import { LocalUpstream, type LocalTcpHandler, type LocalUdpHandler } from '../../src/gateway/upstream-local.js';
import type { PolicyOptions } from '../../src/gateway/policy.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { TcpError } from '../../src/tcp/user.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../../src/trace/pcap.js';
import { readAll } from '../socket/harness.js';
import { repoRoot } from '../support/repo.js';

const FAR = '203.0.113.9';

interface Lan {
  gw: Gateway;
  guest: Stack;
  events: GatewayEvent[];
  close(): void;
}

function lan(opts: { tcp?: LocalTcpHandler; udp?: LocalUdpHandler; policy?: PolicyOptions; maxConnections?: number; udpIdleMs?: number } = {}): Lan {
  const sw = new EthernetSwitch();
  const events: GatewayEvent[] = [];
  const gw = new Gateway({
    link: sw.port(),
    upstream: new LocalUpstream({ ...(opts.tcp ? { tcp: opts.tcp } : {}), ...(opts.udp ? { udp: opts.udp } : {}) }),
    dhcp: false,
    seed: 1,
    onEvent: (e) => events.push(e),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    ...(opts.udpIdleMs !== undefined ? { udpIdleMs: opts.udpIdleMs } : {}),
  });
  const guest = new Stack({ name: 'guest', link: sw.port(), addresses: ['10.0.2.15/24'], seed: 2 });
  guest.setRouter('10.0.2.2', 4);
  return {
    gw, guest, events,
    close: () => {
      gw.close();
      for (const c of guest.connections()) c.abort();
      guest.interface?.close();
    },
  };
}

function random(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const until = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('a guest connection to any address reaches the handler with that address; 1 MiB each way, byte-identical, then events', { timeout: 30_000 }, async () => {
  const targets: string[] = [];
  const l = lan({
    tcp: async (conn) => {
      targets.push(`${conn.target.host}:${conn.target.port}`);
      // Echo: what the guest sends comes back, and its FIN closes ours.
      await conn.readable.pipeTo(conn.writable);
    },
  });
  try {
    const c = await l.guest.connect({ host: FAR, port: 80 });
    assert.equal(c.remoteAddress, FAR);
    const data = random(1 << 20);
    const echoed = readAll(c.readable);
    const w = c.writable.getWriter();
    await w.write(data);
    await w.close();
    const back = await echoed;
    assert.equal(back.length, data.length);
    assert.ok(Buffer.from(back).equals(Buffer.from(data)), 'byte-identical');
    await c.close();
    assert.deepEqual(targets, [`${FAR}:80`]);
    await until(() => l.events.some((e) => e.event === 'close'), 5000, 'close');
    const open = l.events.find((e) => e.event === 'open');
    const close = l.events.find((e) => e.event === 'close');
    assert.ok(open && open.event === 'open' && open.protocol === 'tcp' && open.destination === `${FAR}:80` && open.upstream === 'local');
    assert.ok(close && close.event === 'close' && close.protocol === 'tcp' && close.bytesOut === data.length && close.bytesIn === data.length && close.error === null);
    assert.equal(l.gw.counters.tcpActive, 0);
  } finally {
    l.close();
  }
});

test('a refusal by the upstream is a reset for the guest at once (ECONNREFUSED), and reported', { timeout: 10_000 }, async () => {
  const l = lan({ tcp: () => false });
  try {
    const started = Date.now();
    await assert.rejects(l.guest.connect({ host: FAR, port: 81 }), (e: unknown) => e instanceof TcpError && e.code === 'ECONNREFUSED');
    assert.ok(Date.now() - started < 1000, `refused after ${Date.now() - started} ms`);
    const r = l.events.find((e) => e.event === 'refused');
    assert.ok(r && r.event === 'refused' && r.answer === 'reset' && /refused/.test(r.reason), JSON.stringify(r));
  } finally {
    l.close();
  }
});

test('the policy refuses before any upstream is opened (ICMP prohibited); the default denies hold', { timeout: 10_000 }, async () => {
  let opened = 0;
  const l = lan({ tcp: () => void opened++, policy: { deny: [`${FAR}/32:25`] } });
  try {
    const denied = [`${FAR}:25`, '169.254.169.254:80', '10.1.2.3:80', '192.168.1.1:443'];
    const conns = denied.map((d) => {
      const [host, port] = d.split(':');
      return l.guest.tcpConnect({ host: host!, port: Number(port) });
    });
    // (The guest's SYNs go out before its ARP for the router is answered, which queues only 3: one
    // is retried a second later. synack as a guest takes ICMP as a soft error and retries on.)
    const refusedTo = (): Set<string> => new Set(l.events.flatMap((e) => (e.event === 'refused' ? [e.destination] : [])));
    await until(() => refusedTo().size === denied.length, 5000, 'refusals');
    for (const c of conns) c.abort();
    const refused = l.events.filter((e): e is Extract<GatewayEvent, { event: 'refused' }> => e.event === 'refused');
    assert.deepEqual([...refusedTo()].sort(), [...denied].sort());
    assert.ok(refused.every((e) => e.answer === 'prohibited' && e.reason.startsWith('policy:')));
    assert.match(refused.find((e) => e.destination.startsWith('169.254'))!.reason, /metadata/);
    assert.equal(opened, 0, 'no upstream opened for a denied destination');
    assert.equal(l.gw.policy.counters.refused, refused.length);
  } finally {
    l.close();
  }
});

test('the gateway\'s own address is the host alias (its 127.0.0.1); other local ports are reset', { timeout: 10_000 }, async () => {
  const targets: string[] = [];
  const l = lan({
    tcp: async (conn) => {
      targets.push(`${conn.target.host}:${conn.target.port}`);
      const w = conn.writable.getWriter();
      await w.write(new TextEncoder().encode('hello from the host'));
      await w.close();
    },
  });
  try {
    const c = await l.guest.connect({ host: '10.0.2.2', port: 8080 });
    assert.equal(new TextDecoder().decode(await readAll(c.readable)), 'hello from the host');
    await c.close();
    assert.deepEqual(targets, ['127.0.0.1:8080']);
    await assert.rejects(l.guest.connect({ host: '10.0.2.3', port: 80 }), (e: unknown) => e instanceof TcpError && e.code === 'ECONNREFUSED');
  } finally {
    l.close();
  }
});

test('backpressure: an upstream that does not read closes the guest\'s window; the gateway holds a bounded amount', { timeout: 20_000 }, async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let received = 0;
  const l = lan({
    tcp: async (conn) => {
      await released;
      for await (const c of conn.readable as unknown as AsyncIterable<Uint8Array>) received += c.length;
      await conn.writable.close();
    },
  });
  try {
    const c = await l.guest.connect({ host: FAR, port: 9000 });
    const total = 16 << 20;
    const w = c.writable.getWriter();
    const writing = (async () => {
      for (let sent = 0; sent < total; sent += 1 << 16) await w.write(new Uint8Array(1 << 16));
      await w.close();
    })();
    // Let the guest push for a while: the gateway's receive buffer fills, its window closes.
    await new Promise((r) => setTimeout(r, 500));
    const acked = c.info().bytesAcked;
    assert.ok(acked < 2 << 20, `the gateway took only what its buffers hold (acked ${acked} of ${total})`);
    assert.equal(c.info().sndWnd, 0, 'the window the gateway advertises is closed');
    release();
    await writing;
    await readAll(c.readable);
    await c.close();
    assert.equal(received, total, 'everything arrived once the upstream read');
  } finally {
    l.close();
  }
});

test('UDP flows: datagrams relayed both ways from the address the guest wrote to; an idle flow is forgotten', { timeout: 10_000 }, async () => {
  const l = lan({
    udp: (flow) => {
      flow.onmessage = (d) => flow.send(d.map((b) => b ^ 0xff));
    },
    udpIdleMs: 300,
  });
  try {
    const s = l.guest.udpBind({});
    const got: string[] = [];
    s.onMessage = (data, remote) => got.push(`${remote.address}:${remote.port} ${data.length} ${data[0]}`);
    // The first one alone: the guest's neighbour queue holds 3 packets while its ARP is answered.
    s.send(new Uint8Array([0, 1, 2, 3]), FAR, 53);
    await until(() => got.length === 1, 5000, 'the first echo');
    for (let i = 1; i < 100; i++) s.send(new Uint8Array([i, 1, 2, 3]), FAR, 53);
    await until(() => got.length === 100, 5000, '100 echoes');
    assert.deepEqual(got.slice(0, 2), [`${FAR}:53 4 255`, `${FAR}:53 4 254`]);
    assert.equal(l.events.filter((e) => e.event === 'open' && e.protocol === 'udp').length, 1, 'one flow for one 4-tuple');
    await until(() => l.events.some((e) => e.event === 'close'), 5000, 'idle close');
    const closed = l.events.find((e) => e.event === 'close');
    assert.ok(closed && closed.event === 'close' && closed.protocol === 'udp' && closed.reason === 'idle' && closed.datagramsOut === 100 && closed.datagramsIn === 100);
    s.close();
  } finally {
    l.close();
  }
});

test('connectToGuest: a connection from JavaScript into the guest\'s server', { timeout: 10_000 }, async () => {
  const l = lan();
  try {
    const listener = l.guest.listen({ port: 8000 });
    const serving = (async () => {
      for await (const c of listener) {
        const w = c.writable.getWriter();
        await w.write(new TextEncoder().encode('guest says hi'));
        await w.close();
        await c.close();
        break;
      }
    })();
    const c = await l.gw.connectToGuest(8000, '10.0.2.15');
    assert.equal(new TextDecoder().decode(await readAll(c.readable)), 'guest says hi');
    await c.close();
    await serving;
    listener.close();
  } finally {
    l.close();
  }
});

test('the connection limit: beyond maxConnections the guest gets a reset', { timeout: 10_000 }, async () => {
  const l = lan({ tcp: async (conn) => void (await conn.readable.pipeTo(conn.writable)), maxConnections: 1 });
  try {
    const first = await l.guest.connect({ host: FAR, port: 1 });
    await assert.rejects(l.guest.connect({ host: FAR, port: 2 }), (e: unknown) => e instanceof TcpError && e.code === 'ECONNREFUSED');
    assert.equal(l.gw.counters.tcpRefusedLimit, 1);
    await first.writable.close();
    await readAll(first.readable);
    await first.close();
  } finally {
    l.close();
  }
});

test('observability: a relayed connection is in the capture of the guest\'s side, and synack draw draws it with both sides\' states', { timeout: 30_000 }, async () => {
  const l = lan({ tcp: async (conn) => void (await conn.readable.pipeTo(conn.writable)) });
  const dir = mkdtempSync(join(tmpdir(), 'synack-gw-draw-'));
  try {
    const pcap = new PcapWriter({ linkType: 'ethernet' });
    l.gw.stack.interface!.frameObserver = (_dir, frame) => void pcap.record(Date.now(), frame);
    const c = await l.guest.connect({ host: FAR, port: 80 });
    const w = c.writable.getWriter();
    await w.write(new TextEncoder().encode('ping'));
    await w.close();
    assert.equal(new TextDecoder().decode(await readAll(c.readable)), 'ping');
    await c.close();
    const file = join(dir, 'guest.pcap');
    writeFileSync(file, pcap.toBytes());
    const r = spawnSync(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'draw', file, '--ascii'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`10\\.0\\.2\\.15:${c.localPort}`));
    assert.match(r.stdout, /203\.0\.113\.9:80/);
    for (const state of ['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1']) assert.match(r.stdout, new RegExp(state), `draw shows ${state}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    l.close();
  }
});
