import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { Socket, Server, Stack, MemoryLink, VirtualClock } from '../../src/index.node.js';
import type { NetError } from '../../src/socket/net.js';
import { FAMILIES, MODES, collect, once, pattern, twoStacks } from './harness.js';

for (const mode of MODES) {
  for (const fam of FAMILIES) {
    describe(`node:net over synack (${mode} time, ${fam.name})`, () => {
      test('echo: the contract example carries 1 MiB intact', async () => {
        const { a, b, run } = twoStacks(mode);
        const server = b.net.createServer((sock) => sock.pipe(sock));
        server.listen(7);
        await run(once(server, 'listening'));
        assert.equal(server.listening, true);
        assert.equal(server.address()?.port, 7);

        const sock = a.net.connect({ host: fam.b, port: 7 });
        assert.ok(sock instanceof Socket);
        assert.ok(sock instanceof Duplex);
        assert.equal(sock.connecting, true);
        assert.equal(sock.pending, true);
        assert.equal(sock.readyState, 'opening');
        await run(once(sock, 'connect'));
        assert.equal(sock.connecting, false);
        assert.equal(sock.readyState, 'open');
        assert.equal(sock.remoteAddress, fam.b);
        assert.equal(sock.remotePort, 7);
        assert.equal(sock.remoteFamily, fam.name);
        assert.equal(sock.localAddress, fam.a);
        const addr = sock.address();
        assert.equal('family' in addr ? addr.family : undefined, fam.name);
        assert.equal(sock.tcpInfo()?.state, 'ESTABLISHED');

        const data = pattern(1 << 20);
        const got = collect(sock);
        const closed = once<[boolean]>(sock, 'close');
        sock.end(data);
        const echoed = await run(got, 120_000);
        assert.equal(echoed.length, data.length);
        assert.ok(Buffer.from(data).equals(echoed), 'echoed bytes differ');
        assert.equal(sock.bytesRead, data.length);
        assert.equal(sock.bytesWritten, data.length);
        const [hadError] = await run(closed);
        assert.equal(hadError, false);
        server.close();
        await run(once(server, 'close'));
      });

      test('allowHalfOpen true: a side that got FIN can still send', async () => {
        const { a, b, run } = twoStacks(mode);
        const serverGot: Buffer[] = [];
        const serverDone = new Promise<void>((resolve) => {
          b.net
            .createServer({ allowHalfOpen: true }, (sock) => {
              sock.on('data', (c: Buffer) => serverGot.push(c));
              sock.on('end', () => {
                // The peer's FIN arrived; our side is still open for writing (CLOSE-WAIT).
                assert.equal(sock.writable, true);
                assert.equal(sock.tcpInfo()?.state, 'CLOSE-WAIT');
                sock.write('late ');
                setImmediate(() => sock.end('reply'));
              });
              sock.on('close', () => resolve());
            })
            .listen(9000);
        });
        const sock = a.net.connect({ host: fam.b, port: 9000, allowHalfOpen: true });
        assert.equal(sock.allowHalfOpen, true);
        const closed = once(sock, 'close');
        sock.end('request');
        const reply = await run(collect(sock));
        assert.equal(reply.toString(), 'late reply');
        assert.equal(Buffer.concat(serverGot).toString(), 'request');
        await run(serverDone);
        await run(closed);
      });

      test('allowHalfOpen false (default): the peer ending ends our side too', async () => {
        const { a, b, run } = twoStacks(mode);
        let serverClosed: Promise<unknown> | undefined;
        let serverSock: Socket | undefined;
        const serverEnded = new Promise<string>((resolve) => {
          b.net
            .createServer((sock) => {
              serverSock = sock;
              serverClosed = once(sock, 'close');
              const chunks: Buffer[] = [];
              sock.on('data', (c: Buffer) => chunks.push(c));
              // No end() here: node's default closes our side when the peer's FIN arrives.
              sock.on('end', () => resolve(Buffer.concat(chunks).toString()));
            })
            .listen(9001);
        });
        const sock = a.net.connect(9001, fam.b);
        assert.equal(sock.allowHalfOpen, false);
        const closed = once(sock, 'close');
        sock.write('hi');
        await run(once(sock, 'connect'));
        sock.end();
        assert.equal(await run(serverEnded), 'hi');
        // The client sees the server's FIN without the server having called end().
        const rest = await run(collect(sock));
        assert.equal(rest.length, 0);
        await run(closed);
        assert.ok(serverSock && serverClosed);
        await run(serverClosed);
        assert.equal(serverSock.writable, false);
        assert.equal(serverSock.readyState, 'closed');
      });

      test('ECONNREFUSED: connect to a port nobody listens on', async () => {
        const { a, run } = twoStacks(mode);
        const sock = a.net.connect({ host: fam.b, port: 4321 });
        const events: string[] = [];
        sock.on('connect', () => events.push('connect'));
        const closed = once<[boolean]>(sock, 'close');
        const [err] = await run(once<[NetError]>(sock, 'error'));
        assert.equal(err.code, 'ECONNREFUSED');
        assert.equal(err.syscall, 'connect');
        assert.equal(err.errno, -111);
        assert.equal(err.address, fam.b);
        assert.equal(err.port, 4321);
        assert.match(err.message, /^connect ECONNREFUSED /);
        const [hadError] = await run(closed);
        assert.equal(hadError, true);
        assert.deepEqual(events, []);
        assert.equal(sock.destroyed, true);
      });

      test('ECONNRESET: the peer destroys its socket with an error (RST)', async () => {
        const { a, b, run } = twoStacks(mode);
        b.net
          .createServer((sock) => {
            sock.once('data', () => sock.destroy(new Error('server gives up')));
            sock.on('error', () => {});
          })
          .listen(9002);
        const sock = a.net.connect({ host: fam.b, port: 9002 });
        sock.on('data', () => {});
        sock.write('trigger');
        const closed = once<[boolean]>(sock, 'close');
        const [err] = await run(once<[NetError]>(sock, 'error'));
        assert.equal(err.code, 'ECONNRESET');
        assert.equal(err.syscall, 'read');
        const [hadError] = await run(closed);
        assert.equal(hadError, true);
      });

      test('ECONNRESET, not EPIPE, for a writer whose peer resets while acknowledging data', async () => {
        const { a, b, run } = twoStacks(mode);
        b.net
          .createServer((sock) => {
            // The RST leaves right behind the ACKs for the data read: both reach the writer in one
            // burst, its pending write unblocked and its connection reset at the same time.
            let n = 0;
            sock.on('data', (d: Buffer) => {
              n += d.length;
              if (n > 300_000) sock.resetAndDestroy();
            });
            sock.on('error', () => {});
          })
          .listen(9006);
        const sock = a.net.connect({ host: fam.b, port: 9006 });
        sock.on('data', () => {});
        const chunk = Buffer.alloc(256 * 1024, 7);
        const pump = (): void => {
          while (!sock.destroyed && sock.write(chunk));
          if (!sock.destroyed) sock.once('drain', pump);
        };
        sock.once('connect', pump);
        const [err] = await run(once<[NetError]>(sock, 'error'));
        assert.equal(err.code, 'ECONNRESET', err.message);
      });

      test('a write waiting for room when the peer resets gets its callback, with ECONNRESET', async () => {
        const { a, b, run } = twoStacks(mode);
        b.net
          .createServer((sock) => {
            // Reads nothing: the window closes, the client's last write waits; then the reset.
            sock.pause();
            sock.on('error', () => {});
            b.clock.schedule(b.clock.now() + 200, () => sock.resetAndDestroy());
          })
          .listen(9007);
        const sock = a.net.connect({ host: fam.b, port: 9007 });
        sock.on('error', () => {});
        const big = Buffer.alloc(8 << 20, 1);
        const called = new Promise<Error | null | undefined>((resolve) => sock.write(big, resolve));
        const err = await run(called);
        assert.equal((err as NetError | undefined)?.code, 'ECONNRESET');
      });

      test('destroy() without error after writing is an orderly close (peer sees end)', async () => {
        const { a, b, run } = twoStacks(mode);
        const got = new Promise<string>((resolve, reject) => {
          b.net
            .createServer((sock) => {
              collect(sock).then((d) => resolve(d.toString()), reject);
            })
            .listen(9003);
        });
        const sock = a.net.connect({ host: fam.b, port: 9003 });
        const closed = once<[boolean]>(sock, 'close');
        sock.write('all of it', () => sock.destroy());
        assert.equal(await run(got), 'all of it');
        const [hadError] = await run(closed);
        assert.equal(hadError, false);
      });

      test('EADDRINUSE: a second listen on the same port', async () => {
        const { b, run } = twoStacks(mode);
        const first = b.net.createServer().listen(8080);
        await run(once(first, 'listening'));
        const second = b.net.createServer();
        let listened = false;
        second.listen(8080, () => {
          listened = true;
        });
        const [err] = await run(once<[NetError]>(second, 'error'));
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.syscall, 'listen');
        assert.equal(listened, false);
        assert.equal(second.listening, false);
        assert.equal(first.listening, true);
        first.close();
      });

      test("server.close(): no new connections; 'close' after the last socket's 'close'", async () => {
        const { a, b, run } = twoStacks(mode);
        const order: string[] = [];
        const server = b.net.createServer((sock) => {
          sock.on('close', () => order.push('socket close'));
          sock.resume();
        });
        const accepted = once<[Socket]>(server, 'connection');
        server.listen(9004);
        const sock = a.net.connect({ host: fam.b, port: 9004 });
        await run(once(sock, 'connect'));
        const [serverSock] = await run(accepted);
        assert.ok(serverSock instanceof Socket);
        assert.equal(serverSock.server, server);
        assert.equal(serverSock.remoteAddress, fam.a);
        assert.equal(serverSock.remotePort, sock.localPort);
        const count = await run(
          new Promise<number>((r) => server.getConnections((_e, n) => r(n))),
        );
        assert.equal(count, 1);

        let closeCbCalled = false;
        server.close(() => {
          closeCbCalled = true;
          order.push('server close');
        });
        assert.equal(server.listening, false);
        assert.equal(server.address(), null);
        // The listener is gone: a new connection is refused.
        const late = a.net.connect({ host: fam.b, port: 9004 });
        const [err] = await run(once<[NetError]>(late, 'error'));
        assert.equal(err.code, 'ECONNREFUSED');
        // The existing connection still works and keeps the server from closing.
        assert.deepEqual(order, []);
        sock.end();
        sock.resume();
        await run(once(server, 'close'));
        assert.equal(closeCbCalled, true);
        assert.deepEqual(order, ['socket close', 'server close']);
      });

      test('listen(0) picks an ephemeral port', async () => {
        const { a, b, run } = twoStacks(mode);
        const server = b.net.createServer((s) => s.end('hello'));
        server.listen({ port: 0, host: fam.b });
        await run(once(server, 'listening'));
        const addr = server.address();
        assert.ok(addr);
        assert.equal(addr.address, fam.b);
        assert.equal(addr.family, fam.name);
        assert.ok(addr.port > 0);
        const sock = a.net.createConnection(addr.port, fam.b);
        assert.equal((await run(collect(sock))).toString(), 'hello');
        server.close();
      });
    });
  }
}

describe('node:net over synack (virtual time only)', () => {
  test('the contract example, impaired link, settled by clock.runUntilIdle()', async () => {
    const clock = new VirtualClock();
    const [la, lb] = MemoryLink.pair({
      mtu: 1500, delayMs: 10, bandwidthBps: 1e9,
      lossRate: 0.01, reorderRate: 0.01, duplicateRate: 0.01, corruptRate: 0.001,
      seed: 42, clock,
    });
    const a = new Stack({ link: la, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock });
    const b = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock });
    const server = b.net.createServer((sock) => sock.pipe(sock));
    server.listen(7);
    const sock = a.net.connect({ host: '10.0.0.2', port: 7 });
    const chunks: Buffer[] = [];
    const events: string[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    for (const e of ['connect', 'end', 'finish', 'close']) sock.on(e, () => events.push(e));
    const data = pattern(300_000, 42);
    sock.end(data);
    await clock.runUntilIdle();
    assert.ok(Buffer.concat(chunks).equals(Buffer.from(data)), 'echo differs');
    assert.deepEqual(events, ['connect', 'finish', 'end', 'close']);
    assert.equal(sock.destroyed, true);
  });

  test('setTimeout: fires after the idle time on the virtual clock, reset by activity', async () => {
    const { a, b, run, sleep, virtual } = twoStacks('virtual', { link: { delayMs: 1 } });
    assert.ok(virtual);
    let serverSock: Socket | undefined;
    b.net.createServer((s) => {
      serverSock = s;
      s.resume();
    }).listen(9005);
    const sock = a.net.connect({ host: '10.0.0.2', port: 9005 });
    await run(once(sock, 'connect'));
    const timeouts: number[] = [];
    const t0 = virtual.now();
    sock.setTimeout(1000, () => timeouts.push(virtual.now() - t0));
    assert.equal(sock.timeout, 1000);
    await sleep(500);
    sock.write('activity'); // resets the idle period: next timeout at ~1500
    await sleep(990);
    assert.deepEqual(timeouts, []);
    await sleep(20);
    assert.equal(timeouts.length, 1);
    assert.ok(timeouts[0]! >= 1500 && timeouts[0]! <= 1510, `fired at ${timeouts[0]}`);
    // 'timeout' only notifies; the socket is still usable.
    assert.equal(sock.destroyed, false);
    assert.equal(sock.readyState, 'open');
    // setTimeout(0) disables it.
    const more: number[] = [];
    sock.on('timeout', () => more.push(virtual.now()));
    sock.write('again');
    sock.setTimeout(0);
    await sleep(5000);
    assert.deepEqual(more, []);
    assert.ok(serverSock);
    sock.destroy();
  });

  test('destroy() with written bytes not yet in the send buffer aborts (peer sees ECONNRESET)', async () => {
    const { a, b, run } = twoStacks('virtual');
    const serverErr = new Promise<NetError>((resolve) => {
      b.net.createServer({ pauseOnConnect: true }, (s) => s.on('error', resolve)).listen(9010);
    });
    const sock = a.net.connect({ host: '10.0.0.2', port: 9010 });
    await run(once(sock, 'connect'));
    await run(new Promise((r) => setImmediate(r)));
    // More than the send buffer holds: part of it is still in the stream when we destroy.
    sock.write(pattern(2 << 20));
    await run(new Promise((r) => setImmediate(r)));
    assert.ok(sock.writableLength > 0);
    sock.destroy();
    const err = await run(serverErr);
    assert.equal(err.code, 'ECONNRESET');
  });

  test('setKeepAlive/setNoDelay/ref/unref return the socket', async () => {
    const { a, b, run } = twoStacks('virtual');
    b.net.createServer((s) => s.resume()).listen(9006);
    const sock = a.net.connect({ host: '10.0.0.2', port: 9006, noDelay: true, keepAlive: true });
    assert.equal(sock.setNoDelay(true), sock);
    assert.equal(sock.setKeepAlive(true, 1000), sock);
    assert.equal(sock.ref(), sock);
    assert.equal(sock.unref(), sock);
    await run(once(sock, 'connect'));
    sock.destroy();
  });

  test('new stack.net.Socket() then connect(port, host, cb)', async () => {
    const { a, b, run } = twoStacks('virtual');
    b.net.createServer((s) => s.end('x')).listen(9007);
    const sock = new a.net.Socket();
    assert.ok(sock instanceof Socket);
    assert.equal(sock.pending, true);
    assert.deepEqual(sock.address(), {});
    let connected = false;
    sock.connect(9007, '10.0.0.2', () => {
      connected = true;
    });
    assert.equal((await run(collect(sock))).toString(), 'x');
    assert.equal(connected, true);
    assert.ok(b.net.createServer() instanceof Server);
  });

  test('bad ports throw synchronously, like node', () => {
    const { a, b } = twoStacks('virtual');
    assert.throws(() => a.net.connect({ host: '10.0.0.2', port: 70000 }), {
      code: 'ERR_SOCKET_BAD_PORT',
    });
    assert.throws(() => b.net.createServer().listen(-1), { code: 'ERR_SOCKET_BAD_PORT' });
  });

  test('backpressure: a 4 MiB writer to a paused reader stops at bounded buffers', async () => {
    const { a, b, run, sleep } = twoStacks('virtual');
    let serverSock: Socket | undefined;
    const received: Buffer[] = [];
    b.net
      .createServer({ pauseOnConnect: true }, (s) => {
        serverSock = s;
      })
      .listen(9008);
    const sock = a.net.connect({ host: '10.0.0.2', port: 9008 });
    await run(once(sock, 'connect'));
    const data = pattern(4 << 20, 99);
    const chunk = 64 * 1024;
    let offered = 0;
    let drains = 0;
    sock.on('drain', () => drains++);
    // A well-behaved writer: write until write() says stop, then wait for 'drain'.
    const writer = (async () => {
      while (offered < data.length) {
        const ok = sock.write(data.subarray(offered, offered + chunk));
        offered += chunk;
        if (!ok) await once(sock, 'drain');
      }
      sock.end();
    })();
    await sleep(10_000);
    assert.ok(serverSock);
    // The receiver does not read: its window is closed and the sender has stopped short of 4 MiB.
    const stalledAt = sock.bytesWritten;
    assert.ok(offered < data.length, `writer offered everything (${offered})`);
    assert.ok(sock.writableLength <= 2 * chunk, `writableLength ${sock.writableLength}`);
    assert.ok(stalledAt < 1 << 20, `TCP took ${stalledAt} bytes from a paused peer`);
    // The receiver's buffer is full and it advertised a zero window (RFC 9293 §3.8.6).
    assert.equal(sock.tcpInfo()?.sndWnd, 0);
    assert.ok((serverSock.tcpInfo()?.rcvBufUsed ?? 0) > 0);
    await sleep(10_000);
    assert.equal(sock.bytesWritten, stalledAt, 'still moving while the peer is paused');

    // Resume: everything arrives, intact, and the writer finishes.
    serverSock.on('data', (c: Buffer) => received.push(c));
    const ended = once(serverSock, 'end');
    serverSock.resume();
    await run(ended, 120_000);
    await run(writer);
    const all = Buffer.concat(received);
    assert.equal(all.length, data.length);
    assert.ok(all.equals(Buffer.from(data)));
    assert.ok(drains > 0);
  });
});
