/**
 * LocalUpstream: connections and flows handed to JavaScript handlers. The UpstreamStream side is
 * driven as the relay drives it (the handler is the real peer here), and once end to end: a synack
 * stack connects to another whose listener relays (src/gateway/relay.ts) into a handler.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { relayTcp } from '../../src/gateway/relay.js';
import { LocalUpstream, type LocalTcpConnection, type LocalUdpFlow } from '../../src/gateway/upstream-local.js';
import { UpstreamError } from '../../src/gateway/upstream.js';
import { pattern, readAll, twoStacks } from '../socket/harness.js';
import { record, within } from './support.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const T = { host: '192.0.2.80', port: 80 };

const tick = (ms = 10): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isCode = (code: string) => (e: unknown): boolean => e instanceof UpstreamError && e.code === code;

describe('LocalUpstream TCP', { timeout: 20_000 }, () => {
  test('an echo handler: bytes back, half-close passes through, onclose(null)', async () => {
    let seen: LocalTcpConnection | null = null;
    const up = new LocalUpstream({
      tcp: (conn) => {
        seen = conn;
        void conn.readable.pipeTo(conn.writable);
      },
    });
    const s = await up.openTcp(T);
    assert.equal(s.halfClose, true);
    assert.deepEqual(seen!.target, T);
    const r = record(s);
    assert.equal(s.write(enc('hello, ')), true);
    s.write(enc('handler'));
    s.end();
    await within(r.ended, 2000, 'handler FIN');
    assert.equal(r.text(), 'hello, handler');
    assert.equal(await within(r.closed, 2000, 'close'), null);
    assert.equal(up.open, 0);
    assert.equal(up.counters.tcpOpened, 1);
  });

  test('an HTTP-like handler writing before the relay listens loses nothing', async () => {
    const up = new LocalUpstream({
      tcp: ({ writable }) => {
        const w = writable.getWriter();
        void w.write(enc('HTTP/1.0 200 OK\r\n\r\n'));
        void w.write(enc('body'));
        void w.close();
      },
    });
    const s = await up.openTcp(T);
    const r = record(s);
    await within(r.ended, 2000, 'FIN');
    assert.equal(r.text(), 'HTTP/1.0 200 OK\r\n\r\nbody');
    s.end();
    assert.equal(await within(r.closed, 2000, 'close'), null);
  });

  test('guest → handler backpressure: write false at the high-water mark, ondrain once read', async () => {
    let conn!: LocalTcpConnection;
    const up = new LocalUpstream({ tcp: (c) => void (conn = c), readableHighWaterMark: 16 * 1024 });
    const s = await up.openTcp(T);
    const r = record(s);
    let drained = 0;
    s.ondrain = () => drained++;
    let writes = 0;
    while (s.write(new Uint8Array(4096))) {
      writes++;
      assert.ok(writes < 100, 'write must turn false');
    }
    assert.equal(writes, 3, 'false on the write that reaches 16 KiB');
    await tick();
    assert.equal(drained, 0, 'no drain while the handler does not read');
    const reader = conn.readable.getReader();
    let got = 0;
    while (got < 16 * 1024) got += (await reader.read()).value!.length;
    await tick();
    assert.equal(drained, 1);
    s.destroy();
    assert.equal(await r.closed, null);
    await assert.rejects(reader.read(), isCode('reset'));
  });

  test('handler → guest backpressure: pause holds the handler\'s writes, resume releases them', async () => {
    let writer!: WritableStreamDefaultWriter<Uint8Array>;
    const up = new LocalUpstream({ tcp: ({ writable }) => void (writer = writable.getWriter()), writableHighWaterMark: 8192 });
    const s = await up.openTcp(T);
    const r = record(s);
    s.pause();
    await tick();
    for (let i = 0; i < 4; i++) void writer.write(new Uint8Array(4096));
    await tick();
    assert.equal(r.chunks.length, 0, 'nothing while paused');
    assert.ok((writer.desiredSize ?? 0) <= 0, 'the handler sees a full queue');
    let ready = false;
    void writer.ready.then(() => (ready = true));
    await tick();
    assert.equal(ready, false);
    s.resume();
    await tick();
    assert.equal(Buffer.concat(r.chunks).length, 4 * 4096);
    assert.equal(ready, true);
    s.destroy();
    await r.closed;
  });

  test('refusals: no handler, a throw, false, an async throw or false before the first await', async () => {
    await assert.rejects(new LocalUpstream({}).openTcp(T), isCode('refused'));
    const refusers: Array<(c: LocalTcpConnection) => unknown> = [
      () => {
        throw new Error('not here');
      },
      () => false,
      async () => {
        throw new Error('not here either');
      },
      async () => false,
      (c) => c.target.port !== 8080 && false,
    ];
    for (const tcp of refusers) {
      const up = new LocalUpstream({ tcp: tcp as (c: LocalTcpConnection) => void });
      await assert.rejects(up.openTcp(T), isCode('refused'));
      assert.equal(up.counters.tcpRefused, 1);
      assert.equal(up.open, 0);
    }
    const e = await new LocalUpstream({ tcp: () => { throw new Error('why'); } }).openTcp(T).catch((x: unknown) => x);
    assert.equal((e as Error).message, 'refused: local tcp 192.0.2.80:80: handler threw: why');
  });

  test('an async handler failing later resets the connection', async () => {
    const up = new LocalUpstream({
      tcp: async ({ readable }) => {
        await readable.getReader().read();
        throw new Error('bad request');
      },
    });
    const s = await up.openTcp(T);
    const r = record(s);
    s.write(enc('GET'));
    const e = await within(r.closed, 2000, 'close');
    assert.ok(e instanceof UpstreamError);
    assert.match(e.message, /handler failed: bad request/);
  });

  test('writable.abort() → the relay sees a reset; a bad chunk → an error', async () => {
    const up = new LocalUpstream({ tcp: ({ writable }) => void writable.abort(new Error('enough')) });
    const r = record(await up.openTcp(T));
    const e = await within(r.closed, 2000, 'close');
    assert.ok(isCode('reset')(e));
    const bad = new LocalUpstream({ tcp: ({ writable }) => void writable.getWriter().write('text' as unknown as Uint8Array).catch(() => {}) });
    const r2 = record(await bad.openTcp(T));
    const e2 = await within(r2.closed, 2000, 'close');
    assert.ok(isCode('error')(e2));
    assert.match((e2 as Error).message, /write a Uint8Array/);
  });

  test('the handler cancels reading and closes: an orderly end; close() resets the rest', async () => {
    const up = new LocalUpstream({
      tcp: ({ target, readable, writable }) => {
        if (target.port === 1) {
          void readable.cancel();
          void writable.close();
        }
      },
    });
    const r = record(await up.openTcp({ host: '192.0.2.1', port: 1 }));
    await within(r.ended, 2000, 'FIN');
    assert.equal(await within(r.closed, 2000, 'close'), null);
    const idle = record(await up.openTcp(T));
    assert.equal(up.open, 1);
    up.close();
    assert.ok(isCode('reset')(await within(idle.closed, 2000, 'close')));
    await assert.rejects(up.openTcp(T), isCode('error'));
  });

  test('end to end: a synack stack reaches a handler through relayTcp, 1 MiB echoed', async () => {
    const net = twoStacks('real');
    const up = new LocalUpstream({ tcp: ({ readable, writable }) => void readable.pipeTo(writable).catch(() => {}) });
    const listener = net.b.tcpListen({ port: 80 });
    let relayed = 0;
    listener.onConnection = (conn) => {
      void up.openTcp({ host: conn.localAddress, port: conn.localPort }).then((s) => {
        relayed++;
        relayTcp(conn, s);
      }, () => conn.abort());
    };
    try {
      const data = pattern(1024 * 1024);
      const c = await net.run(net.a.connect({ host: '10.0.0.2', port: 80 }), 5000);
      const reading = readAll(c.readable);
      const w = c.writable.getWriter();
      await net.run(w.write(data), 10_000);
      await net.run(w.close(), 5000);
      const back = await net.run(reading, 10_000);
      assert.equal(back.length, data.length);
      assert.ok(Buffer.from(back).equals(Buffer.from(data)), 'byte-identical');
      assert.equal(relayed, 1);
      await net.run(c.close(), 5000);
    } finally {
      listener.close();
      up.close();
    }
  });
});

describe('LocalUpstream UDP', { timeout: 10_000 }, () => {
  test('an echo flow; the handler closing ends it once both sides know', async () => {
    let handlerFlow!: LocalUdpFlow;
    let handlerClosed = 0;
    const up = new LocalUpstream({
      udp: (flow) => {
        handlerFlow = flow;
        flow.onmessage = (d) => flow.send(d);
        flow.onclose = () => handlerClosed++;
        flow.send(enc('welcome')); // before the relay listens: kept
      },
    });
    const f = await up.openUdp({ host: '192.0.2.53', port: 53 });
    const got: string[] = [];
    f.onmessage = (d) => got.push(dec(d));
    const closed = new Promise<UpstreamError | null>((r) => (f.onclose = r));
    await tick();
    f.send(enc('one'));
    f.send(enc('two'));
    assert.deepEqual(got, ['welcome', 'one', 'two']);
    assert.deepEqual(handlerFlow.target, { host: '192.0.2.53', port: 53 });
    handlerFlow.close();
    assert.equal(await within(closed, 1000, 'close'), null);
    assert.equal(handlerClosed, 1);
    f.send(enc('late'));
    assert.deepEqual(got, ['welcome', 'one', 'two']);
  });

  test('refused without a handler or when it says no; a throwing onmessage ends the flow', async () => {
    await assert.rejects(new LocalUpstream({}).openUdp(T), isCode('refused'));
    await assert.rejects(new LocalUpstream({ udp: () => false }).openUdp(T), isCode('refused'));
    const up = new LocalUpstream({
      udp: (flow) => {
        flow.onmessage = () => {
          throw new Error('boom');
        };
      },
    });
    const f = await up.openUdp(T);
    const closed = new Promise<UpstreamError | null>((r) => (f.onclose = r));
    f.send(enc('x'));
    assert.ok(isCode('error')(await within(closed, 1000, 'close')));
  });

  test('the relay closing a flow tells the handler', async () => {
    let handlerClosed = 0;
    const up = new LocalUpstream({ udp: (flow) => void (flow.onclose = () => handlerClosed++) });
    const f = await up.openUdp(T);
    const closed = new Promise<UpstreamError | null>((r) => (f.onclose = r));
    f.close();
    assert.equal(await closed, null);
    assert.equal(handlerClosed, 1);
    assert.equal(up.open, 0);
  });
});
