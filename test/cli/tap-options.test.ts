/**
 * `--tap` and `--mac` for `synack serve` and `synack get`: the checks (no device is touched), and a
 * command run on a TAP-like link — an EthernetSwitch port standing in for the device — whose peer is
 * a second stack on the same switch (ARP, then HTTP). The real TAP runs are in kernel-tap.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoppableClock, parseTunValues, type CommandLink, type OpenLinkOptions } from '../../src/cli/tun-options.js';
import { parseServeArgs, serveCommand } from '../../src/cli/serve.js';
import { parseGetArgs } from '../../src/cli/get.js';
import { UsageError } from '../../src/cli/io.js';
import { capture } from './helpers.js';
import { Stack } from '../../src/index.node.js';
import { EthernetSwitch } from '../../src/link/switch.js';

const usage = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'));
};

test('--tap is an alternative to --tun, --mac goes with --tap only, and a TAP has no --offload', () => {
  const base = { address: ['10.9.0.2/24'] };
  usage(() => parseTunValues({ ...base, tun: 'synack0', tap: 'synack1' }), /--tun and --tap exclude each other/);
  usage(() => parseTunValues({ ...base }), /--tun IF is required .*or --tap IF/);
  usage(() => parseTunValues({ ...base, tun: 'synack0', mac: '02:00:00:00:00:02' }), /--mac goes with --tap/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', mac: '01:00:5e:00:00:01' }), /bad --mac '01:00:5e:00:00:01'/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', mac: '00:00:00:00:00:00' }), /bad --mac/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', mac: 'nope' }), /bad --mac 'nope'/);
  usage(() => parseTunValues({ ...base, tap: 'a/b' }), /bad --tap 'a\/b'/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', offload: true }), /--offload goes with --tun/);
  usage(() => parseTunValues({ ...base, tun: 'synack0', netns: 'guest' }), /--netns goes with --tap/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', netns: 'a/b' }), /bad --netns 'a\/b'/);
  usage(() => parseTunValues({ ...base, tap: 'synack0', netns: '' }), /bad --netns ''/);
  assert.equal(parseTunValues({ ...base, tap: 'synack0', netns: 'guest' }).netns, 'guest');

  const c = parseTunValues({ ...base, tap: 'synack0', mac: '02:AA:bb:00:00:02' });
  assert.equal(c.kind, 'tap');
  assert.equal(c.tun, 'synack0');
  assert.equal(c.mac, '02:aa:bb:00:00:02');
  assert.equal(parseTunValues({ ...base, tun: 'synack0' }).kind, 'tun');
});

test('on a TAP a plain --address takes the kernel side\'s prefix (else /24, /64): on Ethernet it decides what is on-link', () => {
  const kernel = { 'kernel-address': ['10.9.0.1/16', 'fd09::1/56'] };
  const tap = parseTunValues({ tap: 'synack0', address: ['10.9.0.2', 'fd09::2'], ...kernel });
  assert.deepEqual(tap.addresses.map((a) => a.cidr), ['10.9.0.2/16', 'fd09::2/56']);
  assert.deepEqual(parseTunValues({ tap: 'synack0', address: ['10.9.0.2', 'fd09::2'] }).addresses.map((a) => a.cidr), ['10.9.0.2/24', 'fd09::2/64']);
  // TUN as before: a plain address is the host alone.
  assert.deepEqual(parseTunValues({ tun: 'synack0', address: ['10.9.0.2', 'fd09::2'], ...kernel }).addresses.map((a) => a.cidr), ['10.9.0.2/32', 'fd09::2/128']);
});

test('serve and get parse --tap and --mac', () => {
  const s = parseServeArgs(['--tap', 'tap0', '--mac', '02:00:00:00:00:09', '--address', '10.0.2.2/24', '--port', '80', '--echo']);
  assert.ok(!s.help);
  if (!s.help) {
    assert.equal(s.tun.kind, 'tap');
    assert.equal(s.tun.mac, '02:00:00:00:00:09');
  }
  const g = parseGetArgs(['http://10.0.2.15/', '--tap', 'tap0', '--address', '10.0.2.2']);
  assert.ok(!g.help);
  if (!g.help) {
    assert.equal(g.tun.kind, 'tap');
    assert.equal(g.tun.addresses[0]!.cidr, '10.0.2.2/24');
  }
});

/**
 * `synack serve --tap tap-test … --echo extra…` on an EthernetSwitch port standing in for the device,
 * a peer stack (10.0.2.15) on another port sending `size` bytes to port 7 and reading them back.
 */
async function echoOverSwitch(extra: string[], size: number): Promise<{ echoed: Uint8Array; sent: Uint8Array; peer: Stack; opened: OpenLinkOptions | undefined; closed: boolean; out: string; err: string }> {
  // Stopped at the end: the peer's TIME-WAIT timer must not hold the test process for a minute.
  const clock = new StoppableClock();
  const sw = new EthernetSwitch({ clock });
  const port = sw.port();
  let opened: OpenLinkOptions | undefined;
  let closed = false;
  const link: CommandLink = {
    linkType: 'ethernet',
    name: 'tap-test',
    mtu: port.mtu,
    send: (f) => port.send(f),
    onFrame: (fn) => port.onFrame(fn),
    onBurstEnd: (fn) => port.onBurstEnd(fn),
    close: () => void (closed = true),
    get stats() {
      return port.stats;
    },
  };
  const peer = new Stack({ link: sw.port(), addresses: ['10.0.2.15/24'], clock, mac: '02:00:00:00:00:0f' });
  const sent = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
  const ac = new AbortController();
  const c = capture();
  let exit: number | undefined;
  const echoed = new Promise<Uint8Array>((resolve, reject) => {
    const onListening = (): void => {
      const conn = peer.net.connect({ host: '10.0.2.2', port: 7 });
      const got: Uint8Array[] = [];
      let n = 0;
      conn.on('data', (d: Uint8Array) => {
        got.push(Uint8Array.from(d));
        n += d.length;
        if (n >= size) {
          conn.end();
          resolve(Uint8Array.from(Buffer.concat(got)));
        }
      });
      conn.on('error', reject);
      conn.write(sent);
    };
    void serveCommand(
      ['--tap', 'tap-test', '--mac', '02:00:00:00:00:02', '--address', '10.0.2.2/24', '--port', '7', '--echo', ...extra],
      c.io,
      { openLink: (o) => ((opened = o), link), signal: ac.signal, onListening },
    ).then((status) => (exit = status));
  });
  const result = await echoed;
  ac.abort();
  for (let i = 0; i < 500 && exit === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  clock.stop();
  assert.equal(exit, 0, c.err());
  return { echoed: result, sent, peer, opened, closed, out: c.out(), err: c.err() };
}

test('serve --tap runs the stack on an Ethernet link: a peer on the same segment ARPs for it and is echoed', { timeout: 30_000 }, async () => {
  const r = await echoOverSwitch([], 5);
  assert.deepEqual(r.echoed, r.sent);
  assert.equal(r.opened?.kind, 'tap');
  assert.ok(r.closed, 'the link is closed at the end');
  assert.match(r.err, /synack's MAC on tap-test is 02:00:00:00:00:02/);
  assert.deepEqual(r.peer.interface?.neighbours().filter((n) => n.address === '10.0.2.2').map((n) => n.mac), ['02:00:00:00:00:02']);
});

test('serve --tap with the impairment flags impairs the frames both ways, and the echo still comes back whole', { timeout: 60_000 }, async () => {
  const r = await echoOverSwitch(['--loss', '0.05', '--delay', '1', '--seed', '3', '--json'], 256 * 1024);
  assert.deepEqual(r.echoed, r.sent);
  assert.match(r.err, /impaired both ways: 5% loss, 1 ms delay, seed 3/);
  const summary = JSON.parse(r.out) as { tap: string; link: { impairment: { out: { sent: number; dropped: number }; in: { sent: number; dropped: number } } } };
  assert.equal(summary.tap, 'tap-test');
  const { out, in: inward } = summary.link.impairment;
  assert.ok(out.sent > 150 && inward.sent > 150, JSON.stringify(summary.link.impairment));
  assert.ok(out.dropped > 0 && inward.dropped > 0, 'frames were lost both ways');
});

test('a usage error with --tap touches no device', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-tap-usage-'));
  try {
    writeFileSync(join(dir, 'f'), 'x');
    let opened = false;
    const c = capture();
    const status = await serveCommand(['--tap', 'tap0', '--tun', 'tun0', '--address', '10.0.2.2', '--port', '80', '--echo'], c.io,
      { openLink: () => { opened = true; throw new Error('no'); } });
    assert.equal(status, 2);
    assert.equal(opened, false);
    assert.match(c.err(), /--tun and --tap exclude each other/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
