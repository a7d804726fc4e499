/**
 * The DNS server core against a real client: BIND's `dig`, asking the DnsServer over UDP and TCP on
 * 127.0.0.1 (node:dgram and node:net carry the bytes; loopback only, no other server is asked). Also
 * reads dig's own query bytes (EDNS0 with a client cookie, RFC 7873) with the codec. Skips without
 * dig (fails under CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { VirtualClock } from '../../src/link/clock.js';
import { DnsServer } from '../../src/services/dns-server.js';
import { DnsStreamDecoder, frameDns } from '../../src/services/dns-transport.js';
import { EDNS_OPTION_COOKIE, parseDns, type DnsMessage } from '../../src/wire/dns.js';
import { have } from '../support/netns.js';

const skip = !have('dig', ['-v']) && process.env['CI'] !== 'true' ? 'skipped: needs dig (bind9-dnsutils)' : false;

interface Harness {
  port: number;
  queries: { transport: 'udp' | 'tcp'; message: DnsMessage | string }[];
  dig(...args: string[]): Promise<string>;
  close(): Promise<void>;
}

async function listen(server: DnsServer): Promise<Harness> {
  const queries: Harness['queries'] = [];
  for (let tries = 0; ; tries++) {
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = udp.address().port;
    const tcp: Server = createServer((sock) => {
      const decoder = new DnsStreamDecoder();
      sock.on('data', (chunk: Buffer) => {
        for (const q of decoder.push(new Uint8Array(chunk))) {
          queries.push({ transport: 'tcp', message: parseDns(q) });
          void server.handle(q, { transport: 'tcp', source: `${sock.remoteAddress}:${sock.remotePort}` })
            .then((a) => a && sock.write(frameDns(a)));
        }
      });
      sock.on('error', () => undefined);
    });
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (!ok) {
      udp.close();
      if (tries > 20) throw new Error('no port free for UDP and TCP at once');
      continue;
    }
    udp.on('message', (msg, rinfo) => {
      const q = new Uint8Array(msg);
      queries.push({ transport: 'udp', message: parseDns(q) });
      void server.handle(q, { transport: 'udp', source: `${rinfo.address}:${rinfo.port}` })
        .then((a) => a && udp.send(a, rinfo.port, rinfo.address));
    });
    return {
      port,
      queries,
      dig: (...args) => new Promise((resolve, reject) => {
        execFile('dig', [`@127.0.0.1`, '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 }, (err, stdout) => {
          if (err) reject(err);
          else resolve(stdout);
        });
      }),
      close: async () => {
        udp.close();
        await new Promise<void>((r) => tcp.close(() => r()));
      },
    };
  }
}

const answerLines = (out: string, section = 'ANSWER'): string[] => {
  const m = new RegExp(`;; ${section} SECTION:\\n([^]*?)\\n\\n`).exec(out);
  return m ? m[1]!.split('\n').map((l) => l.split(/\s+/).join(' ')) : [];
};

test('dig asks, the DnsServer answers: A with AA, PTR (-x), NXDOMAIN with SOA, dig\'s EDNS cookie read, TC then TCP, +noedns, CHAOS refused', { skip, timeout: 60_000 }, async () => {
  const server = new DnsServer({
    clock: new VirtualClock(),
    localDomain: 'lan',
    records: {
      'gw.lan': ['10.0.2.2', 'fd00::2'],
      'big.lan': { txt: Array.from({ length: 8 }, (_, i) => `${i}${'y'.repeat(249)}`) },
    },
  });
  const h = await listen(server);
  try {
    const a = await h.dig('gw.lan', 'A');
    assert.match(a, /status: NOERROR/);
    assert.match(a, /flags: qr aa rd;/);
    assert.deepEqual(answerLines(a), ['gw.lan. 60 IN A 10.0.2.2']);
    assert.match(a, /; EDNS: version: 0, flags:; udp: 1232/);
    // dig's own query, read by the codec: RD, AD, EDNS 1232 and an 8-byte client cookie (RFC 7873 §4).
    const q = h.queries[0]!.message;
    assert.ok(typeof q !== 'string', `dig's query did not parse: ${String(q)}`);
    assert.deepEqual(q.questions, [{ name: 'gw.lan', type: 1, class: 1 }]);
    assert.equal(q.rd, true);
    assert.equal(q.edns?.udpPayloadSize, 1232);
    const cookie = q.edns?.options.find((o) => o.code === EDNS_OPTION_COOKIE);
    assert.equal(cookie?.data.length, 8);

    const aaaa = await h.dig('GW.LAN', 'AAAA');
    assert.deepEqual(answerLines(aaaa), ['GW.LAN. 60 IN AAAA fd00::2']);

    const ptr = await h.dig('-x', '10.0.2.2');
    assert.deepEqual(answerLines(ptr), ['2.2.0.10.in-addr.arpa. 60 IN PTR gw.lan.']);

    const nx = await h.dig('nothere.lan', 'A');
    assert.match(nx, /status: NXDOMAIN/);
    assert.match(nx, /flags: qr aa rd;/);
    assert.match(answerLines(nx, 'AUTHORITY')[0] ?? '', /^lan\. 60 IN SOA lan\. hostmaster\.lan\. 1 3600 600 86400 60$/);

    const before = h.queries.filter((x) => x.transport === 'tcp').length;
    const big = await h.dig('big.lan', 'TXT');
    assert.match(big, /status: NOERROR/);
    assert.equal(answerLines(big).length, 1);
    assert.equal(h.queries.filter((x) => x.transport === 'tcp').length, before + 1, 'dig retried over TCP after TC');
    assert.equal(server.counters.truncated, 1);

    const plain = await h.dig('+noedns', 'gw.lan', 'A');
    assert.doesNotMatch(plain, /OPT PSEUDOSECTION/);
    assert.deepEqual(answerLines(plain), ['gw.lan. 60 IN A 10.0.2.2']);

    const tcp = await h.dig('+tcp', 'gw.lan', 'A');
    assert.deepEqual(answerLines(tcp), ['gw.lan. 60 IN A 10.0.2.2']);

    const chaos = await h.dig('version.bind', 'TXT', 'CH');
    assert.match(chaos, /status: REFUSED/);
    assert.match(chaos, /flags: qr rd;/, 'no RA without an upstream');
  } finally {
    await h.close();
  }
});
