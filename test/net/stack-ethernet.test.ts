/**
 * End to end: two Stacks on an Ethernet segment (the test's hub, then the EthernetSwitch with loss),
 * each wrapping its link end in an EthernetInterface. A TCP echo over IPv4 and over IPv6 needs ARP,
 * NDP (after DAD) and the frames to carry every byte; the neighbour tables show what was learnt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../src/link/clock.js';
import type { EthernetLinkEnd } from '../../src/link/link.js';
import { EthernetSwitch } from '../../src/link/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { echoServer } from '../support/echo.js';
import { Hub } from './harness.js';

const SIZE = 200_000;

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 8)) & 0xff;
  return b;
}

function echo(clock: VirtualClock, client: Stack, host: string, port: number): Uint8Array {
  const data = pattern(SIZE);
  const got: Uint8Array[] = [];
  let received = 0;
  let sent = 0;
  let closed = false;
  let error: unknown = null;
  const c = client.tcpConnect({ host, port });
  const push = (): void => {
    while (sent < SIZE) {
      const n = c.write(data.subarray(sent, Math.min(SIZE, sent + 16_384)));
      if (n === 0) break;
      sent += n;
    }
    if (sent === SIZE && c.state === 'ESTABLISHED') c.close();
  };
  c.events = {
    onEstablished: push,
    onWritable: push,
    onReadable: () => {
      for (let d = c.read(); d !== null; d = c.read()) {
        got.push(d.slice());
        received += d.length;
      }
    },
    onClosed: (e) => {
      closed = true;
      error = e;
    },
  };
  const t0 = clock.now();
  while (!(closed || received >= SIZE) && clock.now() - t0 < 120_000) clock.advanceSync(10);
  assert.equal(error, null);
  const out = new Uint8Array(received);
  let at = 0;
  for (const g of got) {
    out.set(g, at);
    at += g.length;
  }
  assert.equal(received, SIZE, `echoed ${received} of ${SIZE} bytes`);
  assert.deepEqual(out, data);
  return out;
}

function pair(links: [EthernetLinkEnd, EthernetLinkEnd], clock: VirtualClock) {
  const server = new Stack({ link: links[0], clock, addresses: ['10.0.0.2/24', 'fd00::2/64'], mac: '02:00:00:00:00:02', seed: 2, name: 'server' });
  const client = new Stack({ link: links[1], clock, addresses: ['10.0.0.1/24', 'fd00::1/64'], mac: '02:00:00:00:00:01', seed: 1, name: 'client' });
  echoServer(server, 7);
  // DAD: the IPv6 addresses are usable (answered for) once it is done.
  clock.advanceSync(2500);
  return { server, client };
}

test('TCP echo over IPv4 and IPv6 between two Stacks on an Ethernet hub', () => {
  const clock = new VirtualClock();
  const hub = new Hub(clock);
  const { server, client } = pair([hub.port(), hub.port()], clock);
  assert.ok(client.interface !== null && server.interface !== null);
  echo(clock, client, '10.0.0.2', 7);
  echo(clock, client, 'fd00::2', 7);
  const n = client.interface.neighbours();
  assert.ok(n.some((e) => e.address === '10.0.0.2' && e.mac === '02:00:00:00:00:02'));
  assert.ok(n.some((e) => e.address === 'fd00::2' && e.mac === '02:00:00:00:00:02'));
  // The stacks saw IP only: no ARP or NDP reached them as drops.
  for (const s of [client, server]) {
    const drops = Object.keys(s.counters.drops);
    assert.ok(!drops.some((d) => d.startsWith('ndp-') || d.startsWith('arp-') || d === 'icmp-unhandled'), drops.join(' '));
  }
  assert.equal(client.interface.counters.resolutionFailures, 0);
});

test('TCP echo over an EthernetSwitch that loses 2 % of frames (ARP and NDP retried)', () => {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch({ clock, seed: 7, lossRate: 0.02 });
  const { client } = pair([sw.port(), sw.port()], clock);
  echo(clock, client, '10.0.0.2', 7);
  echo(clock, client, 'fd00::2', 7);
});
