/**
 * The Wisp upstream against the real wisp-js server (@mercuryworkshop/wisp-js, run as a child
 * process on 127.0.0.1 with loopback destinations allowed), a TCP echo server, a TCP source and a
 * UDP echo server on 127.0.0.1; and the packet codec on its own. Loopback only.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import fc from 'fast-check';
import {
  WispUpstream, WispClient, WispProtocolError, decodeWispPacket, encodeWispPacket, wispCloseError,
  WISP_STREAM_TCP, type WispPacket, type WebSocketConstructor,
} from '../../src/gateway/wisp.js';
import { NodeWebSocket } from '../../src/gateway/websocket-node.js';
import { UpstreamError, type UpstreamStream } from '../../src/gateway/upstream.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

// The browser's WebSocket type fits too (checked at compile time only).
const domWebSocketFits: WebSocketConstructor | undefined = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
void domWebSocketFits;

/** wisp-js's server in a child process; options are its `server.options` (README "Changing Server Settings"). */
async function startWispServer(options: Record<string, unknown>): Promise<{ url: string; child: ChildProcess }> {
  const code = `
    import http from 'node:http';
    import { server as wisp, logging } from '@mercuryworkshop/wisp-js/server';
    logging.set_level(logging.NONE);
    Object.assign(wisp.options, JSON.parse(process.argv[1]));
    const s = http.createServer((req, res) => res.end('wisp'));
    s.on('upgrade', (req, sock, head) => wisp.routeRequest(req, sock, head));
    s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, JSON.stringify(options)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wisp-js server did not start: ${stderr}`)), 10_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (c) => { clearTimeout(timer); reject(new Error(`wisp-js server exited (${c}): ${stderr}`)); });
  });
  return { url: `ws://127.0.0.1:${port}/`, child };
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Writes `payload` through the stream honouring write()/ondrain, reads back `expect` bytes. */
async function roundTrip(s: UpstreamStream, payload: Buffer, chunk: number): Promise<{ echoed: Buffer; falses: number; drains: number }> {
  const parts: Buffer[] = [];
  let got = 0;
  let falses = 0;
  let drains = 0;
  const done = new Promise<void>((resolve, reject) => {
    s.ondata = (d) => {
      parts.push(Buffer.from(d));
      got += d.length;
      if (got >= payload.length) resolve();
    };
    s.onclose = (e) => reject(e ?? new Error(`closed after ${got} of ${payload.length} bytes`));
  });
  let off = 0;
  const pump = (): void => {
    while (off < payload.length) {
      const n = Math.min(chunk, payload.length - off);
      const ok = s.write(payload.subarray(off, off + n));
      off += n;
      if (!ok) { falses++; return; }
    }
  };
  s.ondrain = () => { drains++; pump(); };
  pump();
  await done;
  return { echoed: Buffer.concat(parts), falses, drains };
}

function closeOf(s: UpstreamStream): Promise<{ error: UpstreamError | null; ended: boolean; at: number }> {
  return new Promise((resolve) => {
    let ended = false;
    s.onend = () => { ended = true; };
    s.onclose = (error) => resolve({ error, ended, at: Date.now() });
  });
}

describe('wisp codec', () => {
  it('round-trips every packet type, little-endian', () => {
    const packets: WispPacket[] = [
      { type: 'connect', streamId: 0x01020304, streamType: WISP_STREAM_TCP, port: 8080, hostname: 'exämple.org' },
      { type: 'data', streamId: 7, data: new Uint8Array([1, 2, 3]) },
      { type: 'data', streamId: 7, data: new Uint8Array(0) },
      { type: 'continue', streamId: 0, bufferRemaining: 128 },
      { type: 'close', streamId: 0xffffffff, reason: 0x44 },
      { type: 'info', streamId: 0, major: 2, minor: 0, extensions: [{ id: 1, payload: new Uint8Array(0) }, { id: 4, payload: new TextEncoder().encode('hi') }] },
      { type: 'unknown', streamId: 3, code: 0x99, payload: new Uint8Array([9]) },
    ];
    for (const p of packets) assert.deepEqual(decodeWispPacket(encodeWispPacket(p)), p);
    // The wire layout (protocol.md): type, stream id LE, payload; CONNECT port LE.
    assert.deepEqual([...encodeWispPacket(packets[0]!)].slice(0, 8), [1, 4, 3, 2, 1, 1, 0x90, 0x1f]);
    assert.deepEqual([...encodeWispPacket({ type: 'continue', streamId: 1, bufferRemaining: 0x01020304 })], [3, 1, 0, 0, 0, 4, 3, 2, 1]);
  });

  it('rejects truncated and malformed packets with what was wrong', () => {
    const bad: Array<[number[], RegExp]> = [
      [[], /0 bytes is shorter than the 5-byte header/],
      [[2, 1, 0, 0], /4 bytes is shorter/],
      [[3, 1, 0, 0, 0, 1, 2], /CONTINUE packet for stream 1 has 2 payload bytes, needs 4/],
      [[4, 9, 0, 0, 0], /CLOSE packet for stream 9 has 0 payload bytes, needs 1/],
      [[1, 1, 0, 0, 0, 1, 80], /CONNECT packet for stream 1 has 2 payload bytes, needs 3/],
      [[1, 1, 0, 0, 0, 1, 80, 0, 0xff, 0xfe], /hostname that is not UTF-8/],
      [[5, 0, 0, 0, 0, 2], /INFO packet for stream 0 has 1 payload bytes, needs 2/],
      [[5, 0, 0, 0, 0, 2, 0, 1, 0, 0], /extension entry at byte 7 has 3 bytes/],
      [[5, 0, 0, 0, 0, 2, 0, 4, 10, 0, 0, 0, 65], /extension 0x4 declares 10 bytes of metadata, 1 left/],
    ];
    for (const [bytes, message] of bad) {
      assert.throws(() => decodeWispPacket(new Uint8Array(bytes)), (e: unknown) => e instanceof WispProtocolError && message.test(e.message), String(bytes));
    }
    assert.throws(() => encodeWispPacket({ type: 'connect', streamId: 1, streamType: 1, port: 70000, hostname: 'x' }), /port 70000/);
  });

  it('property: decode(encode(p)) = p; any bytes decode or throw WispProtocolError', () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const bytes = fc.uint8Array({ maxLength: 64 });
    const packet: fc.Arbitrary<WispPacket> = fc.oneof(
      fc.record({ type: fc.constant('connect' as const), streamId: u32, streamType: fc.integer({ min: 0, max: 255 }), port: fc.integer({ min: 0, max: 65535 }), hostname: fc.string() }),
      fc.record({ type: fc.constant('data' as const), streamId: u32, data: bytes }),
      fc.record({ type: fc.constant('continue' as const), streamId: u32, bufferRemaining: u32 }),
      fc.record({ type: fc.constant('close' as const), streamId: u32, reason: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        type: fc.constant('info' as const), streamId: u32, major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }),
        extensions: fc.array(fc.record({ id: fc.integer({ min: 0, max: 255 }), payload: bytes }), { maxLength: 4 }),
      }),
      fc.record({ type: fc.constant('unknown' as const), streamId: u32, code: fc.integer({ min: 6, max: 255 }), payload: bytes }),
    );
    // Lone surrogates do not survive UTF-8; compare hostnames as UTF-8 does.
    // fast-check's records have a null prototype: compare plain copies.
    const normal = (p: WispPacket): WispPacket => {
      const q = structuredClone(p);
      return q.type === 'connect' ? { ...q, hostname: new TextDecoder().decode(new TextEncoder().encode(q.hostname)) } : q;
    };
    fc.assert(fc.property(packet, (p) => { assert.deepEqual(decodeWispPacket(encodeWispPacket(p)), normal(p)); }));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
      try { decodeWispPacket(b); } catch (e) { assert.ok(e instanceof WispProtocolError); }
    }));
  });

  it('maps CLOSE reasons to UpstreamError codes', () => {
    const cases: Array<[number, boolean, string]> = [
      [0x44, true, 'refused'], [0x03, true, 'refused'], [0x03, false, 'reset'], [0x42, true, 'unreachable'],
      [0x43, true, 'timeout'], [0x47, false, 'timeout'], [0x48, true, 'forbidden'], [0x41, true, 'forbidden'],
      [0x49, true, 'throttled'], [0x01, false, 'error'], [0x02, false, 'reset'], [0xc2, true, 'forbidden'], [0x77, false, 'error'],
    ];
    for (const [reason, opening, code] of cases) assert.equal(wispCloseError(reason, opening).code, code, `0x${reason.toString(16)}`);
    assert.match(wispCloseError(0x48, true).message, /0x48 destination blocked by the server/);
  });
});

describe('wisp upstream against wisp-js', { timeout: 120_000 }, () => {
  let server: { url: string; child: ChildProcess };
  let strict: { url: string; child: ChildProcess };
  const echo = net.createServer((sock) => { sock.on('error', () => {}); sock.pipe(sock); });
  let echoPort = 0;
  const echoEnds: Array<() => void> = [];
  echo.on('connection', (sock) => sock.on('end', () => { for (const f of echoEnds.splice(0)) f(); }));
  // Sends 8 MiB of a known pattern to each connection, then closes.
  const sourceData = randomBytes(8 * 1024 * 1024);
  const source = net.createServer((sock) => { sock.on('error', () => {}); sock.end(sourceData); });
  let sourcePort = 0;
  // Sends forever (until the peer goes).
  const endless = net.createServer((sock) => {
    sock.on('error', () => {});
    const chunk = Buffer.alloc(65536, 7);
    const go = (): void => { while (sock.writable && sock.write(chunk)); };
    sock.on('drain', go);
    go();
  });
  let endlessPort = 0;
  const udpEcho = dgram.createSocket('udp4');
  let udpPort = 0;
  const upstreams: WispUpstream[] = [];
  const children: ChildProcess[] = [];

  const upstream = (url: string, extra: Partial<ConstructorParameters<typeof WispUpstream>[0]> = {}): WispUpstream => {
    const up = new WispUpstream({ url, WebSocket: NodeWebSocket, connectTimeoutMs: 5000, ...extra });
    upstreams.push(up);
    return up;
  };

  before(async () => {
    // The settings that let wisp-js reach the test's servers on 127.0.0.1 (off by default).
    server = await startWispServer({ allow_loopback_ips: true, allow_private_ips: true });
    strict = await startWispServer({});
    children.push(server.child, strict.child);
    echoPort = await listen(echo);
    sourcePort = await listen(source);
    endlessPort = await listen(endless);
    udpEcho.on('message', (msg, rinfo) => udpEcho.send(msg, rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => udpEcho.bind(0, '127.0.0.1', () => resolve()));
    udpPort = udpEcho.address().port;
  });

  after(async () => {
    for (const up of upstreams) up.close();
    await Promise.all(children.map(kill));
    udpEcho.close();
    for (const s of [echo, source, endless]) {
      s.close();
      (s as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
  });

  for (const version of [2, 1] as const) {
    it(`v${version}: 4 MiB echoed byte-identical through credits (write() false, ondrain), then end() closes the destination`, async () => {
      // Small DATA packets so the server's 128-packet credit runs out many times.
      const up = upstream(server.url, { version, maxDataBytes: 4096, writeHighWaterBytes: 65536 });
      const s = await up.openTcp({ host: '127.0.0.1', port: echoPort });
      assert.equal(up.client?.version, version);
      assert.equal(up.client?.bufferSize, 128);
      assert.equal(s.halfClose, false);
      const payload = randomBytes(4 * 1024 * 1024);
      const { echoed, falses, drains } = await roundTrip(s, payload, 16384);
      assert.equal(echoed.length, payload.length);
      assert.ok(echoed.equals(payload), 'echoed bytes differ');
      assert.ok(falses > 0, 'write() never returned false');
      assert.ok(drains > 0 && drains <= falses, `drains ${drains}, falses ${falses}`);
      const destinationEnded = new Promise<void>((resolve) => echoEnds.push(resolve));
      const closed = closeOf(s);
      s.end();
      const c = await closed;
      assert.equal(c.error, null);
      assert.equal(c.ended, true);
      await destinationEnded;
    });
  }

  it('download of 8 MiB: pause() holds delivery, resume() delivers the rest, then onend and onclose(null)', async () => {
    const up = upstream(server.url);
    const s = await up.openTcp({ host: '127.0.0.1', port: sourcePort });
    const parts: Buffer[] = [];
    let whilePaused = 0;
    let paused = false;
    let maxHeld = 0;
    let socketPaused = false;
    const closed = closeOf(s);
    s.ondata = (d) => {
      if (paused) whilePaused += d.length;
      parts.push(Buffer.from(d));
      if (parts.length === 1) {
        s.pause();
        paused = true;
        const sample = setInterval(() => {
          maxHeld = Math.max(maxHeld, up.client!.heldBytes);
          socketPaused ||= up.client!.socketPaused;
        }, 10);
        setTimeout(() => { clearInterval(sample); paused = false; s.resume(); }, 300);
      }
    };
    const c = await closed;
    assert.equal(c.error, null);
    assert.equal(c.ended, true);
    assert.equal(whilePaused, 0, 'data delivered while paused');
    // ws can stop reading: the WebSocket paused above 1 MiB held, so far less than 8 MiB piled up.
    assert.ok(socketPaused, 'the WebSocket was not paused');
    assert.ok(maxHeld > 0 && maxHeld < 3 * 1024 * 1024, `held ${maxHeld} bytes`);
    assert.equal(up.client!.heldBytes, 0);
    const got = Buffer.concat(parts);
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(sourceData).digest('hex'));
  });

  it('a WebSocket that cannot stop reading (the browser\'s): a paused stream past its limit is closed, not grown', async () => {
    class BrowserLike extends NodeWebSocket {
      // The browser's WebSocket has no pause()/resume().
      override pause = undefined;
      override resume = undefined;
    }
    const up = upstream(server.url, { WebSocket: BrowserLike, streamReceiveLimitBytes: 2 * 1024 * 1024 });
    const s = await up.openTcp({ host: '127.0.0.1', port: sourcePort });
    const closed = closeOf(s);
    s.ondata = () => s.pause();
    const c = await closed;
    assert.equal(c.error?.code, 'error');
    assert.match(c.error!.message, /more than 2097152 bytes held while paused \(Wisp has no receive window\)/);
    assert.equal(up.client!.heldBytes, 0);
  });

  it('UDP datagrams are echoed, one DATA each (paced in rounds, lost ones resent: it is UDP)', async () => {
    const up = upstream(server.url);
    const flow = await up.openUdp({ host: '127.0.0.1', port: udpPort });
    const got = new Set<string>();
    let wake: (() => void) | null = null;
    flow.onmessage = (d) => { got.add(Buffer.from(d).toString('hex')); wake?.(); };
    const datagrams = Array.from({ length: 500 }, (_, i) => {
      const d = randomBytes(2 + (i * 37) % 1400);
      d.writeUInt16BE(i, 0);
      return d;
    });
    let resent = 0;
    for (let round = 0; round < datagrams.length; round += 20) {
      const batch = datagrams.slice(round, round + 20);
      for (let attempt = 0; attempt < 5; attempt++) {
        const missing = batch.filter((d) => !got.has(d.toString('hex')));
        if (missing.length === 0) break;
        if (attempt > 0) resent += missing.length;
        for (const d of missing) flow.send(d);
        const deadline = Date.now() + 500;
        while (batch.some((d) => !got.has(d.toString('hex'))) && Date.now() < deadline) {
          await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50); });
        }
      }
    }
    const missing = datagrams.filter((d) => !got.has(d.toString('hex'))).length;
    assert.equal(missing, 0, `${missing} datagrams never echoed (${resent} resent)`);
    assert.ok(resent < 50, `${resent} resent`);
    const closed = new Promise<UpstreamError | null>((resolve) => { flow.onclose = resolve; });
    flow.close();
    assert.equal(await closed, null);
  });

  it('a closed port is refused at once (wisp-js sends CLOSE 0x03 → refused)', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const up = upstream(server.url, { openWaitMs: 2000 });
    const t0 = Date.now();
    await assert.rejects(up.openTcp({ host: '127.0.0.1', port }), (e: unknown) => e instanceof UpstreamError && e.code === 'refused' && /0x03/.test(e.message));
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  });

  it('a destination the server blocks is forbidden (CLOSE 0x48), UDP too', async () => {
    const up = upstream(strict.url);
    await assert.rejects(up.openTcp({ host: '127.0.0.1', port: echoPort }), (e: unknown) => e instanceof UpstreamError && e.code === 'forbidden' && /0x48/.test(e.message));
    const flow = await up.openUdp({ host: '127.0.0.1', port: udpPort });
    const error = await new Promise<UpstreamError | null>((resolve) => { flow.onclose = resolve; });
    assert.equal(error?.code, 'forbidden');
  });

  it('the server killed mid-stream: every stream gets onclose(error) at once; the next open reconnects or fails fast', async () => {
    const doomed = await startWispServer({ allow_loopback_ips: true });
    children.push(doomed.child);
    const up = upstream(doomed.url, { reconnectDelayMs: 100 });
    const a = await up.openTcp({ host: '127.0.0.1', port: endlessPort });
    const b = await up.openTcp({ host: '127.0.0.1', port: echoPort });
    let bytes = 0;
    const gotSome = new Promise<void>((resolve) => { a.ondata = (d) => { bytes += d.length; if (bytes > 1_000_000) resolve(); }; });
    const ca = closeOf(a);
    const cb = closeOf(b);
    await gotSome;
    const t0 = Date.now();
    await kill(doomed.child);
    const [ra, rb] = await Promise.all([ca, cb]);
    for (const r of [ra, rb]) {
      assert.equal(r.error?.code, 'reset');
      assert.match(r.error!.message, /WebSocket .* closed/);
      assert.ok(r.at - t0 < 1000, `onclose after ${r.at - t0} ms`);
    }
    const t1 = Date.now();
    await assert.rejects(up.openTcp({ host: '127.0.0.1', port: echoPort }), (e: unknown) => e instanceof UpstreamError && e.code === 'unreachable');
    assert.ok(Date.now() - t1 < 1000);
  });

  it('reconnects on the next open after the WebSocket dropped', async () => {
    const up = upstream(server.url);
    const s = await up.openTcp({ host: '127.0.0.1', port: echoPort });
    const first = up.client!;
    const c = closeOf(s);
    first.close();
    assert.equal((await c).error?.code, 'reset');
    const s2 = await up.openTcp({ host: '127.0.0.1', port: echoPort });
    assert.notEqual(up.client, first);
    const { echoed } = await roundTrip(s2, Buffer.from('hello again'), 100);
    assert.equal(echoed.toString(), 'hello again');
    s2.destroy();
  });

  it('an abort signal cancels an open', async () => {
    const up = upstream(server.url, { openWaitMs: 5000 });
    await up.connect();
    const ac = new AbortController();
    const p = up.openTcp({ host: '127.0.0.1', port: echoPort }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    // The echo server sends nothing, so with no open confirmation the open waits for openWaitMs.
    await assert.rejects(p, (e: unknown) => e instanceof UpstreamError && /aborted/.test(e.message));
    assert.equal(up.client?.streamCount, 0);
  });

  it('no Wisp server there: unreachable, quickly; bad URLs are one-line TypeErrors', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const up = upstream(`ws://127.0.0.1:${port}/`);
    const t0 = Date.now();
    await assert.rejects(up.openTcp({ host: 'example.org', port: 80 }), (e: unknown) => e instanceof UpstreamError && e.code === 'unreachable');
    assert.ok(Date.now() - t0 < 1000);
    assert.throws(() => new WispUpstream({ url: 'http://x/', WebSocket: NodeWebSocket }), /not a ws:\/\/ or wss:\/\/ URL/);
    assert.throws(() => new WispUpstream({ url: 'ws://x/wisp', WebSocket: NodeWebSocket }), /path ends with '\/'/);
  });
});

describe('wisp client against a misbehaving server', { timeout: 30_000 }, () => {
  let wss: WebSocketServer;
  let url = '';
  let behaviour: (ws: import('ws').WebSocket) => void = () => {};
  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.on('listening', () => resolve()));
    url = `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`;
    wss.on('connection', (ws) => behaviour(ws));
  });
  after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });

  const expectFailure = async (send: (ws: import('ws').WebSocket) => void, message: RegExp, code = 'error'): Promise<void> => {
    behaviour = send;
    const client = new WispClient(new NodeWebSocket(url), { connectTimeoutMs: 2000, url });
    await assert.rejects(client.ready, (e: unknown) => e instanceof UpstreamError && e.code === code && message.test(e.message));
    assert.equal(client.closed, true);
  };

  it('a truncated packet, a text message, a stray packet, silence: clear errors, no crash', async () => {
    await expectFailure((ws) => ws.send(Buffer.from([3, 0, 0])), /3 bytes is shorter than the 5-byte header/);
    await expectFailure((ws) => ws.send('hello'), /sent a text message/);
    await expectFailure((ws) => ws.send(encodeWispPacket({ type: 'data', streamId: 5, data: new Uint8Array(1) })), /sent DATA for stream 5 before the handshake ended/);
    await expectFailure((ws) => ws.send(encodeWispPacket({ type: 'close', streamId: 0, reason: 0x49 })), /refused the connection: 0x49/, 'throttled');
    await expectFailure(() => {}, /no handshake .* within 2000 ms/, 'timeout');
  });

  it('a malformed packet after the handshake ends every stream with the reason', async () => {
    behaviour = (ws) => {
      ws.send(encodeWispPacket({ type: 'continue', streamId: 0, bufferRemaining: 4 }));
      ws.on('message', (m: Buffer) => {
        const p = decodeWispPacket(new Uint8Array(m));
        if (p.type === 'connect') {
          ws.send(encodeWispPacket({ type: 'data', streamId: p.streamId, data: new Uint8Array([42]) }));
          setTimeout(() => ws.send(Buffer.from([4, p.streamId, 0, 0, 0])), 50);
        }
      });
    };
    const client = new WispClient(new NodeWebSocket(url), { url });
    await client.ready;
    assert.equal(client.version, 1);
    const s = await client.openTcp('example.org', 80);
    const got: number[] = [];
    s.ondata = (d) => got.push(...d);
    const c = await closeOf(s);
    assert.deepEqual(got, [42]);
    assert.equal(c.error?.code, 'error');
    assert.match(c.error!.message, /CLOSE packet for stream \d+ has 0 payload bytes/);
  });

  it('a v2 server that requires password authentication is refused with a clear reason', async () => {
    let closeReason = -1;
    await expectFailure((ws) => {
      ws.on('message', (m: Buffer) => { const p = decodeWispPacket(new Uint8Array(m)); if (p.type === 'close') closeReason = p.reason; });
      ws.send(encodeWispPacket({ type: 'info', streamId: 0, major: 2, minor: 0, extensions: [{ id: 2, payload: new Uint8Array([1]) }] }));
    }, /requires password authentication/, 'forbidden');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closeReason, 0x04);
  });

  it('v2 with stream open confirmation: open resolves on the CONTINUE, UDP absent is forbidden', async () => {
    let clientExtensions: number[] = [];
    behaviour = (ws) => {
      ws.send(encodeWispPacket({ type: 'info', streamId: 0, major: 2, minor: 0, extensions: [{ id: 5, payload: new Uint8Array(0) }] }));
      ws.on('message', (m: Buffer) => {
        const p = decodeWispPacket(new Uint8Array(m));
        if (p.type === 'info') { clientExtensions = p.extensions.map((e) => e.id); ws.send(encodeWispPacket({ type: 'continue', streamId: 0, bufferRemaining: 16 })); }
        if (p.type === 'connect') setTimeout(() => ws.send(encodeWispPacket({ type: 'continue', streamId: p.streamId, bufferRemaining: 16 })), 30);
      });
    };
    const client = new WispClient(new NodeWebSocket(url, 'wisp-v2'), { url, openWaitMs: 10_000 });
    await client.ready;
    assert.equal(client.version, 2);
    assert.equal(client.openConfirmation, true);
    assert.deepEqual(clientExtensions, [1, 5]);
    const t0 = Date.now();
    const s = await client.openTcp('example.org', 80);
    assert.ok(Date.now() - t0 < 1000);
    s.destroy();
    await assert.rejects(client.openUdp('example.org', 53), (e: unknown) => e instanceof UpstreamError && e.code === 'forbidden');
    client.close();
  });
});
