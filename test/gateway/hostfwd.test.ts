/**
 * Port forwarding: QEMU's hostfwd syntax (src/gateway/hostfwd.ts), and host listeners on 127.0.0.1
 * relaying into a "guest" — a second synack stack over a MemoryLink, in real time — with node:net
 * and node:dgram clients as the host's peers (src/gateway/hostfwd-node.ts, relay.ts).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { formatHostForward, parseHostForward } from '../../src/gateway/hostfwd.js';
import { startHostForward, type HostForward, type HostForwardGuest } from '../../src/gateway/hostfwd-node.js';
import { relayTcp } from '../../src/gateway/relay.js';
import type { TcpConnection } from '../../src/tcp/user.js';
import type { UpstreamStream } from '../../src/gateway/upstream.js';
import { pattern, twoStacks } from '../socket/harness.js';
import { within } from './support.js';

describe('parseHostForward (QEMU hostfwd syntax)', () => {
  test('the forms QEMU accepts', () => {
    assert.deepEqual(parseHostForward('tcp::8080-:80'), { protocol: 'tcp', hostAddress: '0.0.0.0', hostPort: 8080, guestAddress: null, guestPort: 80 });
    assert.deepEqual(parseHostForward('tcp:127.0.0.1:2222-10.0.2.15:22'), { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestAddress: '10.0.2.15', guestPort: 22 });
    assert.deepEqual(parseHostForward('udp::5353-10.0.2.15:53'), { protocol: 'udp', hostAddress: '0.0.0.0', hostPort: 5353, guestAddress: '10.0.2.15', guestPort: 53 });
    // An empty protocol is tcp (QEMU's slirp_hostfwd); the ':' is still needed.
    assert.equal(parseHostForward('::8080-:80').protocol, 'tcp');
    assert.equal(parseHostForward('UDP::1-:1').protocol, 'udp');
    // Host port 0: any free port.
    assert.equal(parseHostForward('tcp:127.0.0.1:0-:80').hostPort, 0);
  });

  test('IPv6 in brackets, canonical text', () => {
    assert.deepEqual(parseHostForward('tcp:[::1]:8080-[FD00:0::15]:80'), { protocol: 'tcp', hostAddress: '::1', hostPort: 8080, guestAddress: 'fd00::15', guestPort: 80 });
    assert.equal(formatHostForward(parseHostForward('tcp:[::1]:8080-[fd00::15]:80')), 'tcp:[::1]:8080-[fd00::15]:80');
    assert.equal(formatHostForward(parseHostForward('udp::53-:53')), 'udp:0.0.0.0:53-:53');
  });

  test('errors: RangeError with a one-line reason', () => {
    const bad: Array<[string, RegExp]> = [
      ['8080', /expected \[tcp\|udp\]/],
      ['8080-:80', /protocol must be tcp or udp \(got "8080-"\)/],
      [':8080-:80', /bad host address "8080-"/],
      ['sctp::1-:1', /protocol must be tcp or udp/],
      ['tcp::8080:80', /expected '-'/],
      ['tcp::8080-80', /expected GUESTADDR:GUESTPORT/],
      ['tcp::http-:80', /bad host port "http"/],
      ['tcp::70000-:80', /host port 70000 out of range/],
      ['tcp::8080-:0', /guest port 0 out of range/],
      ['tcp::8080-:', /bad guest port ""/],
      ['tcp::8080-:80x', /bad guest port "80x"/],
      ['tcp:1.2.3:8080-:80', /bad host address "1.2.3"/],
      ['tcp:::1:8080-:80', /bad host port ":1:8080"/],
      ['tcp:[::1:8080-:80', /without '\]'/],
      ['tcp:[1.2.3.4]:8080-:80', /bad IPv6 host address/],
      ['tcp:[::1]8080-:80', /expected ':' after the host address/],
      ['tcp::8080-host.example:80', /bad guest address "host.example"/],
    ];
    for (const [rule, why] of bad) {
      assert.throws(() => parseHostForward(rule), (e: unknown) => {
        assert.ok(e instanceof RangeError, rule);
        assert.match(e.message, why, rule);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
  });
});

/** A host client's fate: everything it read, and how it ended ('end', or an error code). */
function client(port: number): { sock: Socket; data: Promise<Buffer>; ended: Promise<string> } {
  const sock = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let endWith!: (how: string) => void;
  const ended = new Promise<string>((r) => (endWith = r));
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('end', () => endWith('end'));
  sock.on('error', (e: NodeJS.ErrnoException) => endWith(e.code ?? e.message));
  sock.on('close', () => endWith('close'));
  return { sock, data: ended.then(() => Buffer.concat(chunks)), ended };
}

describe('startHostForward into a synack guest', { timeout: 60_000 }, () => {
  // a: the gateway's stack (10.0.0.1); b: the guest (10.0.0.2), serving TCP echo on 80, UDP echo on 7.
  const net = twoStacks('real');
  let guestAddress: string | null = '10.0.0.2';
  const guest: HostForwardGuest = {
    connect: (address, port) => net.a.tcpConnect({ host: address, port }),
    udpBind: (family) => net.a.udpBind({ family }),
    guestAddress: () => guestAddress,
  };
  const relayed: string[] = [];
  const relay = (conn: TcpConnection, stream: UpstreamStream): void => {
    relayTcp(conn, stream, { onClose: (s) => relayed.push(s.error ?? 'ok') });
  };
  const forwards: HostForward[] = [];
  const echoUdp = net.b.udpBind({ port: 7 });
  echoUdp.onMessage = (d, r) => echoUdp.send(d, r.address, r.port);
  const listener = net.b.tcpListen({ port: 80 });
  listener.onConnection = (c) => {
    // A raw echo: what arrives goes back; the guest's FIN follows the client's.
    const pump = (): void => {
      for (;;) {
        if (c.writableSpace === 0) return;
        const d = c.read(c.writableSpace);
        if (d === null) break;
        c.write(d);
      }
      if (c.finReceived && c.readableLength === 0 && c.state === 'CLOSE-WAIT') c.close();
    };
    c.events = { onReadable: pump, onEnd: pump, onWritable: pump };
    pump();
  };

  const start = async (rule: string, options = {}): Promise<HostForward> => {
    const f = await startHostForward(rule, guest, relay, options);
    forwards.push(f);
    return f;
  };

  after(async () => {
    for (const f of forwards) await f.close();
    listener.close();
    echoUdp.close();
  });

  test('TCP: 4 MiB through the forward and back, byte-identical, half-close passed on', async () => {
    const f = await start('tcp:127.0.0.1:0-10.0.0.2:80');
    assert.equal(f.address, '127.0.0.1');
    assert.ok(f.port > 0);
    const data = Buffer.from(pattern(4 * 1024 * 1024));
    const c = client(f.port);
    c.sock.end(data);
    assert.equal(await within(c.ended, 30_000, 'echo'), 'end');
    const back = await c.data;
    assert.equal(back.length, data.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.equal(f.counters.accepted, 1);
    assert.equal(f.counters.relayed, 1);
    await within(new Promise<void>((r) => {
      const check = (): void => (relayed.length > 0 ? r() : void setTimeout(check, 10));
      check();
    }), 5000, 'relay closed');
    assert.deepEqual(relayed, ['ok']);
  });

  test('TCP: the guest refuses (nobody on its port) → the host client is reset at once', async () => {
    const f = await start('tcp:127.0.0.1:0-10.0.0.2:81');
    const t0 = performance.now();
    const c = client(f.port);
    c.sock.write('hello?');
    assert.equal(await within(c.ended, 2000, 'reset'), 'ECONNRESET');
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(f.counters.failed, 1);
    assert.equal(f.active, 0);
  });

  test('TCP: an empty GUESTADDR takes the guest\'s address when the connection comes; none yet → reset', async () => {
    const f = await start('tcp:127.0.0.1:0-:80');
    const c = client(f.port);
    c.sock.end('via the DHCP address');
    assert.equal(await within(c.ended, 5000, 'echo'), 'end');
    assert.equal((await c.data).toString(), 'via the DHCP address');
    guestAddress = null;
    try {
      const d = client(f.port);
      assert.equal(await within(d.ended, 2000, 'reset'), 'ECONNRESET');
    } finally {
      guestAddress = '10.0.0.2';
    }
  });

  test('TCP: beyond maxConnections a new host connection is reset', async () => {
    const f = await start('tcp:127.0.0.1:0-10.0.0.2:80', { maxConnections: 1 });
    const first = client(f.port);
    first.sock.write('one');
    await within(new Promise<void>((r) => first.sock.once('data', () => r())), 5000, 'first echo');
    const second = client(f.port);
    assert.equal(await within(second.ended, 2000, 'reset'), 'ECONNRESET');
    assert.equal(f.active, 1);
    first.sock.end();
    assert.equal(await within(first.ended, 5000, 'first end'), 'end');
  });

  test('TCP: close() stops listening and resets what is open', async () => {
    const f = await start('tcp:127.0.0.1:0-10.0.0.2:80');
    const c = client(f.port);
    c.sock.write('x');
    await within(new Promise<void>((r) => c.sock.once('data', () => r())), 5000, 'echo');
    await within(f.close(), 2000, 'close');
    assert.equal(await within(c.ended, 2000, 'reset'), 'ECONNRESET');
    const late = client(f.port);
    assert.equal(await within(late.ended, 2000, 'refused'), 'ECONNREFUSED');
  });

  test('a host port already taken: a one-line error with its code', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      await assert.rejects(startHostForward(`tcp:127.0.0.1:${port}-:80`, guest, relay), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'EADDRINUSE');
        assert.match((e as Error).message, /^hostfwd tcp:127\.0\.0\.1:\d+-:80: cannot listen: EADDRINUSE$/);
        return true;
      });
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  describe('UDP', () => {
    const peers: DgramSocket[] = [];
    const peer = async (): Promise<DgramSocket> => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      peers.push(s);
      return s;
    };
    after(() => {
      for (const s of peers) s.close();
    });

    /** Sends `n` datagrams (10 in flight at most) and checks each echo, byte for byte. */
    async function exchange(s: DgramSocket, port: number, n: number, tag: number): Promise<void> {
      const seen = new Map<number, Buffer>();
      let wake: (() => void) | null = null;
      const onMessage = (m: Buffer): void => {
        seen.set(m.readUInt32BE(4), m);
        wake?.();
      };
      s.on('message', onMessage);
      try {
        const sent: Buffer[] = [];
        for (let i = 0; i < n; i++) {
          const b = Buffer.from(pattern(100 + (i % 400), tag * 100_000 + i + 1));
          b.writeUInt32BE(tag, 0);
          b.writeUInt32BE(i, 4);
          sent.push(b);
          s.send(b, port, '127.0.0.1');
          if (i % 10 === 9 || i === n - 1) {
            await within(new Promise<void>((r) => {
              wake = () => {
                if (seen.size === i + 1) r();
              };
              wake();
            }), 3000, `echoes up to ${i}`);
          }
        }
        for (let i = 0; i < n; i++) assert.ok(seen.get(i)!.equals(sent[i]!), `datagram ${i}`);
      } finally {
        s.off('message', onMessage);
      }
    }

    test('two host peers, 300 datagrams each echoed by the guest; idle mappings expire', async () => {
      const f = await start('udp:127.0.0.1:0-10.0.0.2:7', { udpIdleMs: 300 });
      const [p, q] = [await peer(), await peer()];
      await Promise.all([exchange(p, f.port, 300, 1), exchange(q, f.port, 300, 2)]);
      assert.equal(f.counters.udpFlows, 2);
      assert.equal(f.counters.udpToGuest, 600);
      assert.equal(f.counters.udpToHost, 600);
      assert.equal(f.active, 2);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(f.active, 0);
      assert.equal(f.counters.udpExpired, 2);
      // A new datagram makes a new mapping.
      await exchange(p, f.port, 5, 1);
      assert.equal(f.counters.udpFlows, 3);
    });

    test('maxUdpFlows: the least recently used mapping makes room', async () => {
      const f = await start('udp:127.0.0.1:0-10.0.0.2:7', { maxUdpFlows: 1 });
      const [p, q] = [await peer(), await peer()];
      await exchange(p, f.port, 5, 1);
      await exchange(q, f.port, 5, 2);
      assert.equal(f.active, 1);
      assert.equal(f.counters.udpEvicted, 1);
      await exchange(p, f.port, 5, 1);
      assert.equal(f.counters.udpEvicted, 2);
      await f.close();
      assert.equal(f.active, 0);
    });
  });
});
