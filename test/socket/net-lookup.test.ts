/**
 * `stack.net.connect({ host: 'name' })`: the name goes through the stack's DNS stub (here to
 * serveDns on the other stack) before the connection, as node's net does it: 'lookup' then
 * 'connect', or 'lookup' with the error and 'error' ENOTFOUND.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveDns } from '../../src/services/dns-server.js';
import type { NetError } from '../../src/socket/net.js';
import { collect, once, twoStacks } from './harness.js';

function setup() {
  const net = twoStacks('virtual', { stack: { dnsServers: ['10.0.0.2'] } });
  const dns = serveDns(net.b, { records: { 'srv.lan': ['10.0.0.2', 'fd00::2'] }, localDomain: 'lan' });
  const echo = net.b.net.createServer((s) => s.pipe(s));
  echo.listen(7);
  return { ...net, dns, echo };
}

test('net.connect({ host: name }) looks the name up, emits lookup, then connects to the address', async () => {
  const { a, run, dns, echo } = setup();
  for (const [family, address, name] of [[0, '10.0.0.2', 'IPv4'], [6, 'fd00::2', 'IPv6']] as const) {
    const sock = a.net.connect({ host: 'SRV.lan', port: 7, family });
    const lookup = once<[Error | null, string, number, string]>(sock, 'lookup');
    assert.equal(sock.connecting, true);
    const [err, addr, fam, host] = await run(lookup);
    assert.deepEqual([err, addr, fam, host], [null, address, family === 6 ? 6 : 4, 'SRV.lan']);
    await run(once(sock, 'connect'));
    assert.equal(sock.remoteAddress, address);
    assert.equal(sock.remoteFamily, name);
    const got = collect(sock);
    sock.end('hello');
    assert.equal((await run(got)).toString(), 'hello');
  }
  assert.equal(dns.server.counters.queries, 3, 'A and AAAA for family 0, AAAA for family 6');
  echo.close();
  dns.close();
});

test('an unknown name: lookup then error, getaddrinfo ENOTFOUND as node has it; no connection attempted', async () => {
  const { a, run, dns, echo } = setup();
  const sock = a.net.connect(7, 'nothere.lan');
  const lookup = once<[NetError]>(sock, 'lookup');
  const error = once<[NetError]>(sock, 'error');
  const [lerr] = await run(lookup);
  const [err] = await run(error);
  assert.equal(lerr, err);
  assert.equal(err.code, 'ENOTFOUND');
  assert.equal(err.errno, -3008);
  assert.equal(err.syscall, 'getaddrinfo');
  assert.equal(err.hostname, 'nothere.lan');
  assert.equal(err.message, 'getaddrinfo ENOTFOUND nothere.lan');
  assert.equal(a.connections().length, 0);
  echo.close();
  dns.close();
});

test('options.lookup (node\'s signature) is used instead of the stack\'s', async () => {
  const { a, run, dns, echo } = setup();
  const asked: string[] = [];
  const sock = a.net.connect({
    host: 'anything.example', port: 7,
    lookup: (hostname, _opts, cb) => {
      asked.push(hostname);
      cb(null, '10.0.0.2', 4);
    },
  });
  await run(once(sock, 'connect'));
  assert.deepEqual(asked, ['anything.example']);
  assert.equal(dns.server.counters.queries, 0);
  sock.destroy();
  echo.close();
  dns.close();
});
