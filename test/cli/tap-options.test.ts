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

test('serve --tap runs the stack on an Ethernet link: a peer on the same segment ARPs for it and is echoed', { timeout: 30_000 }, async () => {
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
  };
  const peer = new Stack({ link: sw.port(), addresses: ['10.0.2.15/24'], clock, mac: '02:00:00:00:00:0f' });
  const ac = new AbortController();
  const c = capture();
  const out: string[] = [];
  const echoed = new Promise<string>((resolve, reject) => {
    const onListening = (): void => {
      const conn = peer.net.connect({ host: '10.0.2.2', port: 7 });
      let got = '';
      conn.on('data', (d: Uint8Array) => {
        got += Buffer.from(d).toString();
        if (got.length >= 5) {
          conn.end();
          resolve(got);
        }
      });
      conn.on('error', reject);
      conn.write('hello');
    };
    void serveCommand(
      ['--tap', 'tap-test', '--mac', '02:00:00:00:00:02', '--address', '10.0.2.2/24', '--port', '7', '--echo'],
      c.io,
      { openLink: (o) => ((opened = o), link), signal: ac.signal, onListening },
    ).then((status) => out.push(`exit ${status}`));
  });
  assert.equal(await echoed, 'hello');
  assert.equal(opened?.kind, 'tap');
  ac.abort();
  for (let i = 0; i < 500 && !out.includes('exit 0'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(out.includes('exit 0'), c.err());
  assert.ok(closed, 'the link is closed at the end');
  assert.match(c.err(), /synack's MAC on tap-test is 02:00:00:00:00:02/);
  assert.deepEqual(peer.interface?.neighbours().filter((n) => n.address === '10.0.2.2').map((n) => n.mac), ['02:00:00:00:00:02']);
  clock.stop();
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
