import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { connectStream, listenStream } from '../../src/socket/streams.js';
import type { StreamConnection } from '../../src/socket/streams.js';
import { FAMILIES, MODES, pattern, readAll, twoStacks } from './harness.js';


function equalBytes(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
    Buffer.from(y.buffer, y.byteOffset, y.byteLength),
  );
}

for (const mode of MODES) {
  for (const fam of FAMILIES) {
    describe(`WHATWG streams over synack (${mode} time, ${fam.name})`, () => {
      test('echo: for await (c of listener) c.readable.pipeTo(c.writable)', async () => {
        const { a, b, run } = twoStacks(mode);
        // Through the Stack's own entry points, as in the contract.
        const listener = b.listen({ port: 7 });
        assert.equal(listener.localPort, 7);
        const accepted: StreamConnection[] = [];
        const serving = (async () => {
          for await (const c of listener) {
            accepted.push(c);
            void c.readable.pipeTo(c.writable);
          }
        })();
        const c = await run(a.connect({ host: fam.b, port: 7 }));
        assert.equal(c.remoteAddress, fam.b);
        assert.equal(c.remotePort, 7);
        assert.equal(c.localAddress, fam.a);
        assert.equal(c.info().state, 'ESTABLISHED');

        const data = pattern(1 << 20, 7);
        const writer = c.writable.getWriter();
        const sent = (async () => {
          for (let off = 0; off < data.length; off += 10_000) {
            await writer.write(data.subarray(off, off + 10_000));
          }
          await writer.close(); // FIN: the echo server's readable ends, its pipeTo closes its side
        })();
        const echoed = await run(readAll(c.readable), 120_000);
        await run(sent);
        assert.equal(echoed.length, data.length);
        assert.ok(equalBytes(echoed, data), 'echoed bytes differ');
        assert.equal(accepted.length, 1);
        assert.equal(accepted[0]!.remoteAddress, fam.a);
        await run(c.close());
        listener.close();
        await run(serving);
      });

      test('connect to a closed port rejects with ECONNREFUSED', async () => {
        const { a, run } = twoStacks(mode);
        await assert.rejects(run(connectStream(a, { host: fam.b, port: 4444 })), {
          code: 'ECONNREFUSED',
        });
      });

      test('an abort on one side errors the peer readable with ECONNRESET', async () => {
        const { a, b, run } = twoStacks(mode);
        const listener = listenStream(b, { port: 8 });
        const it = listener[Symbol.asyncIterator]();
        const c = await run(connectStream(a, { host: fam.b, port: 8 }));
        const { value: server } = await run(it.next());
        assert.ok(server);
        const reader = c.readable.getReader();
        const serverReader = server.readable.getReader();
        await server.writable.abort(new Error('bye'));
        // The aborting side's readable fails with the reason; the peer's with ECONNRESET.
        await assert.rejects(serverReader.read(), { message: 'bye' });
        await assert.rejects(run(reader.read()), { code: 'ECONNRESET' });
        await assert.rejects(run(c.writable.getWriter().write(new Uint8Array(1))), {
          code: 'ECONNRESET',
        });
        listener.close();
      });
    });
  }
}

describe('WHATWG streams backpressure (virtual time)', () => {
  test('a reader that does not read stops the writer at bounded buffers', async () => {
    const { a, b, run, sleep } = twoStacks('virtual');
    const listener = listenStream(b, { port: 9 });
    const it = listener[Symbol.asyncIterator]();
    const c = await run(connectStream(a, { host: '10.0.0.2', port: 9 }));
    const { value: server } = await run(it.next());
    assert.ok(server);

    const data = pattern(4 << 20, 3);
    const writer = c.writable.getWriter();
    let resolved = 0;
    const chunk = 32 * 1024;
    const writing = (async () => {
      for (let off = 0; off < data.length; off += chunk) {
        await writer.ready;
        await writer.write(data.subarray(off, off + chunk));
        resolved += chunk;
      }
      await writer.close();
    })();
    await sleep(10_000);
    // Nobody reads on the server: the window closes and writes stop resolving.
    const stalled = resolved;
    assert.ok(stalled < 1 << 20, `${stalled} bytes accepted by a peer that does not read`);
    // The server's buffer is full and it advertised a zero window (RFC 9293 §3.8.6).
    assert.equal(c.info().sndWnd, 0);
    await sleep(10_000);
    assert.equal(resolved, stalled);

    const got = await run(readAll(server.readable), 120_000);
    await run(writing);
    assert.equal(got.length, data.length);
    assert.ok(equalBytes(got, data));
    listener.close();
  });
});
