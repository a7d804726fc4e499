/**
 * `synack gateway` without root: --help, the one-line usage errors (exit 2) that come before any
 * device is opened, and the QEMU-style layout a subnet gives (src/gateway/lan.ts lanLayout). The
 * command itself, on a TAP device with Linux guests, is test/cli/gateway-kernel.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayCommand } from '../../src/cli/gateway.js';
import { lanLayout } from '../../src/gateway/lan.js';
import { capture } from './helpers.js';

test('gateway --help prints the usage and the layout, exit 0', async () => {
  const c = capture();
  assert.equal(await gatewayCommand(['--help'], c.io), 0);
  assert.match(c.out(), /^Usage: synack gateway --tap IF/);
  assert.match(c.out(), /10\.0\.2\.2 {3}the gateway/);
  assert.match(c.out(), /--dns-record NAME=IP/);
});

test('gateway usage errors are one line and exit 2, before any device is opened', async () => {
  const cases: [string[], RegExp][] = [
    [[], /--tap IF is required/],
    [['--tap'], /argument missing/],
    [['--tap', 'x', '--subnet', '10.0.0.0/30'], /too small.*a \/27 or larger/],
    [['--tap', 'x', '--subnet', 'nonsense'], /bad subnet "nonsense"/],
    [['--tap', 'x', '--subnet6', 'fd00::/48'], /must be a \/64/],
    [['--tap', 'x', '--dns-record', 'a.lan=10.0.2.9'], /--dns-record needs --dns/],
    [['--tap', 'x', '--dns', '--dns-record', 'a.lan'], /bad --dns-record "a\.lan": expected NAME=IP/],
    [['--tap', 'x', '--dns', '--dns-record', 'a.lan=nope'], /"nope" is not an IP address/],
    [['--tap', 'x', '--mtu', '100'], /--mtu/],
    [['--tap', 'x', '--lease-time', '5'], /--lease-time/],
    [['--tap', 'x', '--pool-end', 'fd00::9'], /bad --pool-end/],
    [['--tap', 'x', 'extra'], /unexpected argument 'extra'/],
    [['--tap', 'x', '--bogus'], /bogus/],
  ];
  for (const [args, re] of cases) {
    const c = capture();
    assert.equal(await gatewayCommand(args, c.io), 2, `${args.join(' ')}: ${c.err()}`);
    assert.match(c.err(), re, args.join(' '));
    assert.equal(c.err().trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${c.err()}`);
    assert.equal(c.out(), '');
  }
});

test('lanLayout: QEMU user-mode addresses in any subnet, IPv6 /64 by default', () => {
  assert.deepEqual(lanLayout(), {
    subnet: '10.0.2.0/24', prefix: 24, gateway: '10.0.2.2', dns: '10.0.2.3', poolStart: '10.0.2.15', poolEnd: '10.0.2.254',
    subnet6: 'fd00:0:0:2::/64', gateway6: 'fd00:0:0:2::2', dns6: 'fd00:0:0:2::3',
  });
  // Host bits in the given address are ignored; a /21 spans octets.
  const l = lanLayout('192.168.7.99/21', null);
  assert.equal(l.subnet, '192.168.0.0/21');
  assert.equal(l.gateway, '192.168.0.2');
  assert.equal(l.poolEnd, '192.168.7.254');
  assert.equal(l.subnet6, null);
  assert.equal(l.gateway6, null);
});
