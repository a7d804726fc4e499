/**
 * stack.dgram, the node:dgram look-alike (src/socket/dgram.ts): over two synack stacks on a
 * MemoryLink in virtual time, and beside node's own dgram over loopback for the error shapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import nodeDgram from 'node:dgram';
import { Stack } from '../../src/index.node.js';
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink } from '../../src/link/memory.js';
import type { DgramError, RemoteInfo } from '../../src/socket/dgram.js';

function two(): { clock: VirtualClock; a: Stack; b: Stack } {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, delayMs: 1 });
  const a = new Stack({ link: la, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock, seed: 1 });
  const b = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock, seed: 2 });
  return { clock, a, b };
}

/** Waits for `p` while virtual time runs (1 ms steps, each yielding to node's event loop). */
async function drive<T>(clock: VirtualClock, p: Promise<T>, maxMs = 2000): Promise<T> {
  let done = false;
  const q = p.finally(() => {
    done = true;
  });
  for (let i = 0; i < maxMs && !done; i++) await clock.advance(1);
  if (!done) throw new Error('timed out in virtual time');
  return q;
}

test('createSocket, bind (listening, address()), send and message with rinfo, both families', async () => {
  for (const [type, to, from] of [['udp4', '10.0.0.2', '10.0.0.1'], ['udp6', 'fd00::2', 'fd00::1']] as const) {
    const { clock, a, b } = two();
    const server = b.dgram.createSocket(type);
    let listened = false;
    server.bind(41234, () => {
      listened = true;
    });
    await drive(clock, once(server, 'listening'));
    assert.ok(listened);
    assert.deepEqual(server.address(), { address: type === 'udp4' ? '0.0.0.0' : '::', family: type === 'udp4' ? 'IPv4' : 'IPv6', port: 41234 });
    const client = a.dgram.createSocket({ type });
    const sent = new Promise<number>((resolve, reject) => client.send('hello', 41234, to, (err, n) => (err ? reject(err) : resolve(n!))));
    const [msg, rinfo] = (await drive(clock, once(server, 'message'))) as [Buffer, RemoteInfo];
    assert.ok(Buffer.isBuffer(msg));
    assert.equal(msg.toString(), 'hello');
    assert.deepEqual(rinfo, { address: from, family: type === 'udp4' ? 'IPv4' : 'IPv6', port: client.address().port, size: 5 });
    assert.equal(await drive(clock, sent), 5);
    // Reply to rinfo, as an echo server does.
    server.send(msg, rinfo.port, rinfo.address);
    const [back] = (await drive(clock, once(client, 'message'))) as [Buffer];
    assert.equal(back.toString(), 'hello');
    const closed = once(server, 'close');
    server.close();
    await drive(clock, closed);
    client.close();
  }
});

test('send forms: offset and length, Uint8Array, an array of chunks, bind({ port, address }) options', async () => {
  const { clock, a, b } = two();
  const server = b.dgram.createSocket('udp4', undefined);
  server.bind({ port: 7, address: '10.0.0.2' });
  await drive(clock, once(server, 'listening'));
  assert.equal(server.address().address, '10.0.0.2');
  const got: string[] = [];
  server.on('message', (m: Buffer) => got.push(m.toString()));
  const c = a.dgram.createSocket('udp4');
  c.send(Buffer.from('xxABCxx'), 2, 3, 7, '10.0.0.2');
  c.send(new TextEncoder().encode('bytes'), 7, '10.0.0.2');
  c.send(['one', Buffer.from('-'), new Uint8Array([50])], 7, '10.0.0.2');
  c.send('str', 7, '10.0.0.2');
  await drive(clock, new Promise<void>((r) => server.on('message', () => got.length === 4 && r())));
  assert.deepEqual(got, ['ABC', 'bytes', 'one-2', 'str']);
  assert.throws(() => c.send(Buffer.from('ab'), 1, 5, 7, '10.0.0.2'), { code: 'ERR_BUFFER_OUT_OF_BOUNDS' });
  assert.throws(() => c.send(42 as unknown as string, 7, '10.0.0.2'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => c.send('x', 0, '10.0.0.2'), { code: 'ERR_SOCKET_BAD_PORT', name: 'RangeError' });
  assert.throws(() => c.send('x', 70000, '10.0.0.2'), { code: 'ERR_SOCKET_BAD_PORT' });
  c.close();
  server.close();
});

test('connect: connect event, remoteAddress(), send without address; ERR_SOCKET_DGRAM_IS_CONNECTED / NOT_CONNECTED; disconnect', async () => {
  const { clock, a, b } = two();
  const server = b.dgram.createSocket('udp4');
  server.bind(7);
  server.on('message', (m: Buffer, r: RemoteInfo) => server.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await drive(clock, once(server, 'listening'));
  const c = a.dgram.createSocket('udp4');
  assert.throws(() => c.remoteAddress(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  let connected = false;
  c.connect(7, '10.0.0.2', () => {
    connected = true;
  });
  assert.throws(() => c.connect(7, '10.0.0.2'), { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' });
  await drive(clock, once(c, 'connect'));
  assert.ok(connected);
  assert.deepEqual(c.remoteAddress(), { address: '10.0.0.2', family: 'IPv4', port: 7 });
  c.send('ping');
  const [m] = (await drive(clock, once(c, 'message'))) as [Buffer];
  assert.equal(m.toString(), 'echo:ping');
  assert.throws(() => c.send('x', 0, 1, 7, '10.0.0.2'), { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' });
  c.disconnect();
  assert.throws(() => c.disconnect(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  assert.throws(() => c.remoteAddress(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  c.close();
  server.close();
});

test('errors as node gives them: bind EADDRINUSE event, send EMSGSIZE / EACCES to the callback, recvmsg ECONNREFUSED on a connected socket', async () => {
  const { clock, a, b } = two();
  const first = b.dgram.createSocket('udp4');
  first.bind(53);
  await drive(clock, once(first, 'listening'));
  const second = b.dgram.createSocket('udp4');
  second.bind(53);
  const [bindErr] = (await drive(clock, once(second, 'error'))) as [DgramError];
  assert.equal(bindErr.message, 'bind EADDRINUSE 0.0.0.0:53');
  assert.deepEqual([bindErr.code, bindErr.errno, bindErr.syscall, bindErr.address, bindErr.port], ['EADDRINUSE', -98, 'bind', '0.0.0.0', 53]);
  assert.throws(() => first.bind(54), { code: 'ERR_SOCKET_ALREADY_BOUND' });

  const c = a.dgram.createSocket('udp4');
  const big = await drive(clock, new Promise<DgramError | null>((r) => c.send(Buffer.alloc(70000), 9, '10.0.0.2', (e) => r(e))));
  assert.deepEqual([big?.code, big?.message, big?.errno, big?.syscall], ['EMSGSIZE', 'send EMSGSIZE 10.0.0.2:9', -90, 'send']);
  const bc = await drive(clock, new Promise<DgramError | null>((r) => c.send('x', 9, '255.255.255.255', (e) => r(e))));
  assert.deepEqual([bc?.code, bc?.message], ['EACCES', 'send EACCES 255.255.255.255:9']);
  c.setBroadcast(true);
  const ok = await drive(clock, new Promise<DgramError | null>((r) => c.send('x', 9, '255.255.255.255', (e) => r(e))));
  assert.equal(ok, null);

  const r = a.dgram.createSocket('udp4');
  r.connect(9999, '10.0.0.2');
  await drive(clock, once(r, 'connect'));
  r.send('anyone?');
  const [icmpErr] = (await drive(clock, once(r, 'error'))) as [DgramError];
  assert.deepEqual([icmpErr.code, icmpErr.syscall, icmpErr.errno, icmpErr.message], ['ECONNREFUSED', 'recvmsg', -111, 'recvmsg ECONNREFUSED']);
  for (const s of [first, c, r]) s.close();
});

test('lifecycle: address() before bind is EBADF, setBroadcast before bind EBADF, use after close ERR_SOCKET_DGRAM_NOT_RUNNING, bad type', async () => {
  const { clock, a } = two();
  const s = a.dgram.createSocket('udp4');
  assert.throws(() => s.address(), { code: 'EBADF', syscall: 'getsockname' });
  assert.throws(() => s.setBroadcast(true), { code: 'EBADF', syscall: 'setBroadcast' });
  assert.equal(s.ref(), s);
  assert.equal(s.unref(), s);
  assert.throws(() => s.getRecvBufferSize(), { code: 'ERR_SOCKET_BUFFER_SIZE' });
  // A send before bind binds implicitly (port 0).
  s.send('x', 9, '10.0.0.2');
  await drive(clock, once(s, 'listening'));
  assert.ok(s.address().port >= 49152);
  assert.equal(s.getRecvBufferSize(), 212992);
  s.setSendBufferSize(65536);
  assert.equal(s.getSendBufferSize(), 131072, 'doubled, as Linux reports it');
  let closed = false;
  s.close(() => {
    closed = true;
  });
  assert.throws(() => s.close(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => s.send('x', 9, '10.0.0.2'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => s.address(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  await drive(clock, new Promise<void>((r) => setImmediate(r)));
  assert.ok(closed);
  assert.throws(() => a.dgram.createSocket('udp5' as 'udp4'), { code: 'ERR_SOCKET_BAD_TYPE', name: 'TypeError' });
  // A host name without a resolver: ENOTFOUND from getaddrinfo, to the callback.
  const t = a.dgram.createSocket('udp4');
  const e = await drive(clock, new Promise<DgramError | null>((r) => t.send('x', 9, 'no-such-host.invalid', (err) => r(err))));
  assert.ok(e !== null && typeof e.code === 'string', 'a name the stack cannot resolve fails the send');
  t.close();
});

test('the same calls on node:dgram over loopback give the same codes (EADDRINUSE, EMSGSIZE, EACCES, ECONNREFUSED, argument errors)', async (t) => {
  const s = nodeDgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve());
    });
  } catch {
    t.skip('skipped: no loopback UDP here');
    return;
  }
  const port = s.address().port;
  const dup = nodeDgram.createSocket('udp4');
  dup.bind(port, '127.0.0.1');
  const [bindErr] = (await once(dup, 'error')) as [DgramError];
  assert.deepEqual([bindErr.code, bindErr.errno, bindErr.syscall, bindErr.message], ['EADDRINUSE', -98, 'bind', `bind EADDRINUSE 127.0.0.1:${port}`]);
  const big = await new Promise<DgramError | null>((r) => s.send(Buffer.alloc(70000), 9, '127.0.0.1', (e) => r(e as DgramError | null)));
  assert.deepEqual([big?.code, big?.errno, big?.syscall, big?.message], ['EMSGSIZE', -90, 'send', 'send EMSGSIZE 127.0.0.1:9']);
  const bc = await new Promise<DgramError | null>((r) => s.send('x', 9, '255.255.255.255', (e) => r(e as DgramError | null)));
  assert.equal(bc?.code, 'EACCES');
  assert.throws(() => s.send('x', 0, '127.0.0.1'), { code: 'ERR_SOCKET_BAD_PORT', name: 'RangeError' });
  assert.throws(() => s.remoteAddress(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  // A port just freed: nothing listens there, so loopback answers port unreachable.
  const gone = nodeDgram.createSocket('udp4');
  await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', () => resolve()));
  const closedPort = gone.address().port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  const c = nodeDgram.createSocket('udp4');
  c.connect(closedPort, '127.0.0.1');
  await once(c, 'connect');
  c.send('x');
  const [icmp] = (await once(c, 'error')) as [DgramError];
  assert.deepEqual([icmp.code, icmp.syscall, icmp.errno, icmp.message], ['ECONNREFUSED', 'recvmsg', -111, 'recvmsg ECONNREFUSED']);
  for (const x of [s, c]) x.close();
  assert.throws(() => s.close(), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
});
