/**
 * DirectUpstream and socketStream against real peers on 127.0.0.1 (node:net and node:dgram servers
 * started here): bytes identical both ways with backpressure seen, half-close in both directions,
 * a refused port, a peer that resets, our own reset, UDP echo and a UDP port nobody listens on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { DirectUpstream, upstreamErrorFromNode } from '../../src/gateway/upstream-direct.js';
import { UpstreamError } from '../../src/gateway/upstream.js';
import { NodeDnsUpstream } from '../../src/services/dns-upstream-node.js';
import { record, within } from './support.js';

const LOOP = '127.0.0.1';

const conns = new WeakMap<Server, Set<Socket>>();

function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const live = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    live.add(s);
    s.once('close', () => live.delete(s));
    onConn(s);
  });
  conns.set(server, live);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOP, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

function closeServer(server: Server): Promise<void> {
  for (const s of conns.get(server) ?? []) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A free port: bound, then released (nobody listens there afterwards). */
async function freePort(): Promise<number> {
  const { server, port } = await listen(() => {});
  await closeServer(server);
  return port;
}

describe('DirectUpstream TCP', { timeout: 30_000 }, () => {
  let echo: { server: Server; port: number };
  const up = new DirectUpstream({ connectTimeoutMs: 2000, dns: new NodeDnsUpstream({ servers: ['127.0.0.1:9'] }) });

  before(async () => {
    // Echo, and a half-close passed through: pipe() ends our side after the client's FIN.
    echo = await listen((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
  });
  after(async () => {
    up.close();
    await closeServer(echo.server);
  });

  test('32 MiB both ways, byte-identical, with backpressure (write false, then drain)', async () => {
    const stream = await up.openTcp({ host: LOOP, port: echo.port });
    assert.equal(stream.halfClose, true);
    const got = record(stream);
    // Loopback's socket buffers grow to several MiB each way and may take everything at once; so we
    // do not read the echo until our first write is refused: the echo (pipe(), with backpressure)
    // stops reading, every buffer on the way fills (~20 MiB at most), and write() must say false.
    const data = randomBytes(32 * 1024 * 1024);
    stream.pause();
    let falses = 0;
    let drains = 0;
    let wake: (() => void) | null = null;
    stream.ondrain = () => {
      drains++;
      wake?.();
    };
    for (let off = 0; off < data.length; off += 64 * 1024) {
      if (!stream.write(data.subarray(off, off + 64 * 1024))) {
        if (falses === 0) stream.resume();
        falses++;
        await within(new Promise<void>((r) => (wake = r)), 5000, 'drain');
        wake = null;
      }
    }
    stream.resume();
    stream.end();
    await within(got.ended, 10_000, 'echo end');
    assert.equal(await within(got.closed, 5000, 'close'), null);
    const back = Buffer.concat(got.chunks);
    assert.equal(back.length, data.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.ok(falses > 0 && drains > 0, `backpressure seen (write false ${falses}×, drain ${drains}×)`);
  });

  test('pause stops ondata until resume', async () => {
    const stream = await up.openTcp({ host: LOOP, port: echo.port });
    const got = record(stream);
    stream.pause();
    stream.write(Buffer.from('paused'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.chunks.length, 0);
    stream.resume();
    stream.end();
    await within(got.ended, 5000, 'end');
    assert.equal(Buffer.concat(got.chunks).toString(), 'paused');
    assert.equal(await got.closed, null);
  });

  test('half-close: our FIN first, the peer keeps sending', async () => {
    const { server, port } = await listen((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => {
        // After our FIN the peer still writes, then closes its side.
        s.write(`got ${Buffer.concat(parts).toString()}; `);
        setTimeout(() => s.end('late bytes'), 50);
      });
    });
    try {
      const stream = await up.openTcp({ host: LOOP, port });
      const got = record(stream);
      stream.write(Buffer.from('hello'));
      stream.end();
      await within(got.ended, 5000, 'peer FIN');
      assert.equal(Buffer.concat(got.chunks).toString(), 'got hello; late bytes');
      assert.equal(await within(got.closed, 5000, 'close'), null);
    } finally {
      await closeServer(server);
    }
  });

  test('half-close: the peer\'s FIN first, we keep sending', async () => {
    let received = '';
    let peerSawEnd!: () => void;
    const sawEnd = new Promise<void>((r) => (peerSawEnd = r));
    const { server, port } = await listen((s) => {
      s.on('data', (d: Buffer) => (received += d.toString()));
      s.on('end', () => peerSawEnd());
      s.end('bye');
    });
    try {
      const stream = await up.openTcp({ host: LOOP, port });
      const got = record(stream);
      await within(got.ended, 5000, 'peer FIN');
      assert.equal(Buffer.concat(got.chunks).toString(), 'bye');
      // Our direction is still open.
      assert.equal(stream.write(Buffer.from('after your FIN')), true);
      stream.end();
      await within(sawEnd, 5000, 'our FIN at the peer');
      assert.equal(received, 'after your FIN');
      assert.equal(await within(got.closed, 5000, 'close'), null);
    } finally {
      await closeServer(server);
    }
  });

  test('a port nobody listens on: refused, fast', async () => {
    const port = await freePort();
    const t0 = performance.now();
    await assert.rejects(up.openTcp({ host: LOOP, port }), (e: unknown) => e instanceof UpstreamError && e.code === 'refused');
    assert.ok(performance.now() - t0 < 1000, 'refused within a second');
  });

  test('bad targets and aborts reject with UpstreamError', async () => {
    await assert.rejects(up.openTcp({ host: LOOP, port: 0 }), (e: unknown) => e instanceof UpstreamError && e.code === 'error');
    await assert.rejects(up.openTcp({ host: LOOP, port: 70000 }), (e: unknown) => e instanceof UpstreamError && e.code === 'error');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(up.openTcp({ host: LOOP, port: echo.port }, { signal: ac.signal }), (e: unknown) => e instanceof UpstreamError && e.code === 'error');
    const t = new AbortController();
    t.abort(new DOMException('too slow', 'TimeoutError'));
    await assert.rejects(up.openUdp({ host: LOOP, port: echo.port }, { signal: t.signal }), (e: unknown) => e instanceof UpstreamError && e.code === 'timeout');
  });

  test('the peer resets mid-stream: onclose(reset)', async () => {
    const { server, port } = await listen((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    try {
      const stream = await up.openTcp({ host: LOOP, port });
      const got = record(stream);
      stream.write(Buffer.from('trigger'));
      const e = await within(got.closed, 5000, 'reset');
      assert.ok(e instanceof UpstreamError);
      assert.equal(e.code, 'reset');
    } finally {
      await closeServer(server);
    }
  });

  test('destroy sends a RST; onclose(null) follows once', async () => {
    let peerError!: (code: string | undefined) => void;
    const peerSaw = new Promise<string | undefined>((r) => (peerError = r));
    const { server, port } = await listen((s) => {
      s.on('error', (e: NodeJS.ErrnoException) => peerError(e.code));
      s.on('end', () => peerError('FIN'));
      s.on('data', () => {});
    });
    try {
      const stream = await up.openTcp({ host: LOOP, port });
      const got = record(stream);
      stream.write(Buffer.from('x'));
      await new Promise((r) => setTimeout(r, 50));
      stream.destroy();
      stream.destroy();
      assert.equal(stream.write(Buffer.from('y')), false);
      assert.equal(await within(got.closed, 5000, 'close'), null);
      assert.equal(await within(peerSaw, 5000, 'peer'), 'ECONNRESET');
    } finally {
      await closeServer(server);
    }
  });

  test('close() resets open streams and refuses new ones', async () => {
    const other = new DirectUpstream({ dns: new NodeDnsUpstream({ servers: ['127.0.0.1:9'] }) });
    const stream = await other.openTcp({ host: LOOP, port: echo.port });
    const got = record(stream);
    assert.deepEqual(other.open, { tcp: 1, udp: 0 });
    other.close();
    const e = await within(got.closed, 5000, 'close');
    assert.ok(e instanceof UpstreamError);
    await assert.rejects(other.openTcp({ host: LOOP, port: echo.port }), (x: unknown) => x instanceof UpstreamError && x.code === 'error');
  });
});

describe('DirectUpstream UDP', { timeout: 30_000 }, () => {
  let echo: DgramSocket;
  let port: number;
  const up = new DirectUpstream({ dns: new NodeDnsUpstream({ servers: ['127.0.0.1:9'] }) });

  before(async () => {
    echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, LOOP, () => r()));
    port = echo.address().port;
  });
  after(() => {
    up.close();
    echo.close();
  });

  test('1000 datagrams echoed, every byte checked', async () => {
    const flow = await up.openUdp({ host: LOOP, port });
    const seen = new Map<number, Buffer>();
    let wake: (() => void) | null = null;
    flow.onmessage = (d) => {
      const b = Buffer.from(d);
      seen.set(b.readUInt32BE(0), b);
      wake?.();
    };
    // 20 in flight at most: loopback does not lose them, a burst of 1000 could overflow a buffer.
    const sent: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const b = Buffer.concat([Buffer.alloc(4), randomBytes(200)]);
      b.writeUInt32BE(i, 0);
      sent.push(b);
      flow.send(b);
      if (i % 20 === 19) {
        await within(new Promise<void>((r) => {
          wake = () => {
            if (seen.size === i + 1) r();
          };
          wake();
        }), 2000, `echoes of ${i - 19}..${i}`);
      }
    }
    for (let i = 0; i < 1000; i++) assert.ok(seen.get(i)!.equals(sent[i]!), `datagram ${i}`);
    let closed!: (e: UpstreamError | null) => void;
    const c = new Promise<UpstreamError | null>((r) => (closed = r));
    flow.onclose = (e) => closed(e);
    flow.close();
    assert.equal(await within(c, 1000, 'onclose'), null);
  });

  test('a UDP port nobody listens on: the flow ends with refused (ICMP port unreachable)', async () => {
    const dead = createSocket('udp4');
    await new Promise<void>((r) => dead.bind(0, LOOP, () => r()));
    const deadPort = dead.address().port;
    await new Promise<void>((r) => dead.close(() => r()));
    const flow = await up.openUdp({ host: LOOP, port: deadPort });
    const c = new Promise<UpstreamError | null>((r) => (flow.onclose = r));
    flow.send(Buffer.from('anyone?'));
    const e = await within(c, 2000, 'refused');
    assert.ok(e instanceof UpstreamError);
    assert.equal(e.code, 'refused');
  });
});

test('upstreamErrorFromNode maps errno codes', () => {
  const m = (code: string): string => upstreamErrorFromNode(Object.assign(new Error('x'), { code }), 'here').code;
  assert.equal(m('ECONNREFUSED'), 'refused');
  assert.equal(m('ENETUNREACH'), 'unreachable');
  assert.equal(m('EHOSTUNREACH'), 'unreachable');
  assert.equal(m('EADDRNOTAVAIL'), 'unreachable');
  assert.equal(m('ETIMEDOUT'), 'timeout');
  assert.equal(m('ECONNRESET'), 'reset');
  assert.equal(m('EPIPE'), 'reset');
  assert.equal(m('ENOTFOUND'), 'dns');
  assert.equal(m('EAI_AGAIN'), 'dns');
  assert.equal(m('EWHATEVER'), 'error');
  assert.equal(upstreamErrorFromNode('a string', 'here').code, 'error');
  const agg = Object.assign(new AggregateError([Object.assign(new Error('y'), { code: 'ECONNREFUSED' })]), {});
  assert.equal(upstreamErrorFromNode(agg, 'here').code, 'refused');
  const e = upstreamErrorFromNode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'tcp 127.0.0.1:9');
  assert.equal(e.message, 'refused: tcp 127.0.0.1:9: ECONNREFUSED');
});
