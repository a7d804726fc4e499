/** stack.udpStream: UDP as WHATWG streams (the browser form), bounded receive queue. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair, str, text } from './support.js';

test('udpStream: writable sends, readable yields { data, address, port, family }; close ends the readable', async () => {
  const { a, b, clock } = pair();
  const server = b.udpStream({ port: 7 });
  const client = a.udpStream({ connect: { address: '10.0.0.2', port: 7 } });
  const w = client.writable.getWriter();
  await w.write({ data: text('over streams') });
  clock.advanceSync(10);
  const reader = server.readable.getReader();
  const r = await reader.read();
  assert.ok(!r.done);
  assert.deepEqual({ ...r.value, data: str(r.value.data) }, { data: 'over streams', address: '10.0.0.1', port: client.localPort, family: 4 });
  server.close();
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(b.udpSockets().length, 0);
  // A refused write rejects (EISCONN: an address on a connected socket).
  await assert.rejects(w.write({ data: text('x'), address: '10.0.0.2', port: 7 }), { code: 'EISCONN' });
});

test('udpStream: a reader that falls behind loses datagrams beyond highWaterMark, counted (udp-queue-full)', async () => {
  const { a, b, clock } = pair();
  const server = b.udpStream({ port: 7, highWaterMark: 4 });
  const s = a.udpBind();
  for (let i = 0; i < 10; i++) s.send(text(`d${i}`), '10.0.0.2', 7);
  clock.advanceSync(10);
  assert.equal(server.dropped, 6);
  assert.equal(b.counters.drops['udp-queue-full'], 6);
  const reader = server.readable.getReader();
  const got: string[] = [];
  for (let i = 0; i < 4; i++) got.push(str((await reader.read()).value!.data));
  assert.deepEqual(got, ['d0', 'd1', 'd2', 'd3']);
  assert.throws(() => a.udpStream({ highWaterMark: 0 }), RangeError);
});
