/**
 * synack on a real Linux TUN device, talking to the kernel's own IP and TCP. Each test makes fresh
 * network namespaces (test/support/netns.ts) and runs test/link/fixtures/tun-host.js inside one: a
 * TunLink `synack0` with the kernel at 10.9.0.1/24 and fd09::1/64, a synack Stack at 10.9.0.2/24 and
 * fd09::2/64 serving echo (7) and discard (9). The kernel side is ping and python3 sockets run in the
 * same namespace. Needs root; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { have, lastJson, python, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns, NsProcess } from '../support/netns.js';
import { TUN_HOST as HOST, sendToKernel, stopHost } from '../support/tun.js';
import { ECHO_PY, SEND_PY, SINK_PY } from '../../src/bench/kernel-peers.js';

const NODE = process.execPath;
const MiB = 1024 * 1024;

const missing = tunTestsMissing([HOST]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;
const havePing = have('ping', ['-V']);
const skipPing = skip || (havePing ? false : 'skipped: needs ping (Debian iputils-ping)');
const haveSetpriv = have('setpriv', ['--version']);
const haveUnshare = have('unshare', ['--version']);

if (process.env['CI'] === 'true') {
  const cannot = [...missing, ...(havePing ? [] : ['ping (iputils-ping)']), ...(haveSetpriv ? [] : ['setpriv']), ...(haveUnshare ? [] : ['unshare'])];
  if (cannot.length > 0) {
    test('TUN tests can run (required under CI)', () => {
      assert.fail(`TUN tests need ${cannot.join(', ')}: under CI=true a skip is a failure`);
    });
  }
}

// ---------------------------------------------------------------------------------------- python

/**
 * Sends to host:port until an error (at most 4 GiB), saying "started" after 2 MiB. The kernel TCP
 * gives up on unacknowledged data after TCP_USER_TIMEOUT (RFC 5482), so a dead peer is an error in
 * seconds instead of after tcp_retries2 (~15 min); the socket timeout is only a backstop.
 */
const KILL_PY = `
import errno, json, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
s.settimeout(30)
chunk = b"x" * 65536
sent = 0
said = False
try:
    while sent < 4 << 30:
        sent += s.send(chunk)
        if not said and sent >= 2 << 20:
            print("started", flush=True)
            said = True
    print(json.dumps({"outcome": "finished", "sent": sent}), flush=True)
except socket.timeout:
    print(json.dumps({"outcome": "timeout", "sent": sent}), flush=True)
except OSError as e:
    print(json.dumps({"outcome": "error", "errno": errno.errorcode.get(e.errno, str(e.errno)), "sent": sent}), flush=True)
`;

// ---------------------------------------------------------------------------------------- helpers

async function startHost(ns: Netns, args: string[] = []): Promise<NsProcess> {
  const host = ns.start(NODE, [HOST, '--host', ...args]);
  await host.waitForLine(/^ready /, 15_000);
  return host;
}


interface HostStats {
  link: { packetsIn: number; bytesIn: number; packetsOut: number; bytesOut: number; drops: number; polls: number; turns: number; readErrors: number };
  counters: { internalErrors: number; tcpIn: number };
  loopDelayMs: { p50: number; p99: number; max: number };
}


interface OpenResult {
  error?: { code: string; message: string; stack: string };
  opened?: string;
}

async function tryOpen(ns: Netns, prefix: string[], args: string[]): Promise<OpenResult> {
  const [cmd = NODE, ...rest] = [...prefix, NODE, HOST, '--host', '--mode', 'open', ...args];
  const r = await ns.run(cmd, rest, { timeoutMs: 20_000 });
  assert.equal(r.timedOut, false);
  const err = r.stdout.split('\n').find((l) => l.startsWith('error '));
  if (err !== undefined) {
    assert.equal(r.status, 3);
    return { error: JSON.parse(err.slice('error '.length)) as OpenResult['error'] & object };
  }
  const opened = r.stdout.split('\n').find((l) => l.startsWith('opened '));
  assert.ok(opened !== undefined, `neither opened nor error: ${r.stdout} ${r.stderr}`);
  return { opened: opened.slice('opened '.length) };
}

function assertOneLineError(e: OpenResult['error'], code: string, pattern: RegExp): void {
  assert.ok(e !== undefined, `expected error ${code}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, pattern);
  assert.ok(!e.message.includes('\n'), 'one line');
  assert.ok(e.message.startsWith('synack: '), e.message);
  assert.doesNotMatch(e.stack, /\n\s+at /, 'no stack trace');
}

// ---------------------------------------------------------------------------------------- tests

test('TUN: the kernel pings synack over IPv4 and IPv6', { skip: skipPing, timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    const host = await startHost(ns);
    // The kernel side of the device is configured as asked.
    const addrs = await ns.check('ip', ['addr', 'show', 'dev', 'synack0']);
    assert.match(addrs, /mtu 1500 /);
    assert.match(addrs, /inet 10\.9\.0\.1\/24/);
    assert.match(addrs, /inet6 fd09::1\/64 scope global nodad/);

    for (const [family, target] of [['-4', '10.9.0.2'], ['-6', 'fd09::2']] as const) {
      const r = await ns.run('ping', [family, '-c', '3', '-W', '2', target], { timeoutMs: 20_000 });
      assert.equal(r.status, 0, `ping ${target}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout, /3 packets transmitted, 3 received/);
    }
    const stats = await stopHost<HostStats>(host);
    assert.ok(stats.link.packetsIn >= 6 && stats.link.packetsOut >= 6, JSON.stringify(stats.link));
    assert.equal(stats.link.drops, 0);
  });
});

for (const [family, target] of [['IPv4', '10.9.0.2'], ['IPv6', 'fd09::2']] as const) {
  test(`TUN: 1 MiB to synack's echo port over ${family} comes back byte-identical`, { skip, timeout: 60_000 }, async () => {
    await withNetns(async (ns) => {
      const host = await startHost(ns);
      const r = lastJson<{ sent: number; received: number; identical: boolean }>(
        await python(ns, ECHO_PY, [target, '7', String(MiB)], 40_000),
      );
      assert.equal(r.sent, MiB);
      assert.equal(r.received, MiB);
      assert.equal(r.identical, true);
      const stats = await stopHost<HostStats>(host);
      assert.ok(stats.link.bytesIn > MiB && stats.link.bytesOut > MiB, JSON.stringify(stats.link));
      assert.equal(stats.counters.internalErrors, 0);
    });
  });
}

interface Rate {
  bytes: number;
  seconds: number;
  mbps: number;
}

test('TUN: 64 MiB kernel → synack and synack → kernel, beside kernel → kernel over veth in the same run', { skip, timeout: 240_000 }, async (t: TestContext) => {
  const size = 64 * MiB;
  const toSynack = await withNetns(async (ns) => {
    const host = await startHost(ns);
    const r = lastJson<Rate>(await python(ns, SEND_PY, ['10.9.0.2', '9', String(size)], 120_000));
    // The discard server counted every byte before it answered the sender's FIN.
    await host.waitForLine(new RegExp(`^discarded ${size}$`), 5000);
    const stats = await stopHost<HostStats>(host);
    t.diagnostic(
      `synack link: ${stats.link.packetsIn} packets read in ${stats.link.turns} event-loop turns ` +
      `(${(stats.link.packetsIn / Math.max(stats.link.turns, 1)).toFixed(1)} per turn) after ${stats.link.polls} polls, ${stats.link.drops} drops; ` +
      `event-loop delay p50 ${stats.loopDelayMs.p50.toFixed(2)} ms, p99 ${stats.loopDelayMs.p99.toFixed(2)} ms, max ${stats.loopDelayMs.max.toFixed(1)} ms`,
    );
    return r;
  });

  const fromSynack = await withNetns(async (ns) => {
    const { sent, sink } = await sendToKernel<Rate, { received: number }>(ns, [], size, 120_000);
    assert.equal(sink.received, size, 'the kernel received every byte');
    return sent;
  });

  const kernel = await withNetns(async (a, b) => {
    assert.ok(a !== undefined && b !== undefined);
    await a.check('ip', ['link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', b.name]);
    await a.check('ip', ['addr', 'add', '10.10.0.1/24', 'dev', 'veth-a']);
    await a.check('ip', ['link', 'set', 'veth-a', 'up']);
    await b.check('ip', ['addr', 'add', '10.10.0.2/24', 'dev', 'veth-b']);
    await b.check('ip', ['link', 'set', 'veth-b', 'up']);
    const sink = b.start('python3', ['-c', SINK_PY, '10.10.0.2', '9']);
    await sink.waitForLine(/^listening$/, 10_000);
    const r = lastJson<Rate>(await python(a, SEND_PY, ['10.10.0.2', '9', String(size)], 120_000));
    await sink.waitForLine(/^\{/, 10_000);
    assert.equal(lastJson<{ received: number }>(sink.lines.join('\n')).received, size);
    return r;
  }, 2);

  t.diagnostic(`kernel → synack (TUN), 64 MiB: ${toSynack.mbps.toFixed(0)} Mbit/s in ${toSynack.seconds.toFixed(2)} s`);
  t.diagnostic(`synack → kernel (TUN), 64 MiB: ${fromSynack.mbps.toFixed(0)} Mbit/s in ${fromSynack.seconds.toFixed(2)} s`);
  t.diagnostic(`kernel → kernel (veth), 64 MiB: ${kernel.mbps.toFixed(0)} Mbit/s in ${kernel.seconds.toFixed(2)} s`);
  t.diagnostic(`ratios to veth: kernel → synack ${(toSynack.mbps / kernel.mbps).toFixed(3)}, synack → kernel ${(fromSynack.mbps / kernel.mbps).toFixed(3)}`);
  assert.equal(toSynack.bytes, size);
  assert.equal(fromSynack.bytes, size);
  assert.ok(toSynack.mbps > 0 && fromSynack.mbps > 0 && kernel.mbps > 0);
});

test('TUN: killing the kernel-side peer mid-transfer gives synack\'s sender ECONNRESET at once', { skip, timeout: 60_000 }, async (t: TestContext) => {
  await withNetns(async (ns) => {
    const sink = ns.start('python3', ['-c', SINK_PY, '0.0.0.0', '9']);
    await sink.waitForLine(/^listening$/, 10_000);
    const sender = ns.start(NODE, [HOST, '--host', '--mode', 'send', '--to', '10.9.0.1', '--port', '9']);
    await sink.waitForLine(/^receiving$/, 20_000);
    sink.kill('SIGKILL');
    const killedAt = Date.now();
    const exit = await sender.waitExit(20_000);
    const elapsed = Date.now() - killedAt;
    assert.deepEqual(exit, { code: 0, signal: null }, `the sender did not hang: ${sender.lines.join(' ')} ${sender.stderr}`);
    const line = sender.lines.find((l) => l.startsWith('error ') || l.startsWith('sent '));
    assert.ok(line !== undefined && line.startsWith('error '), `an error, not a finished transfer: ${sender.lines.join(' ')}`);
    const e = JSON.parse(line.slice('error '.length)) as { code: string; message: string; sent: number };
    assert.equal(e.code, 'ECONNRESET', e.message);
    assert.ok(elapsed < 5000, `error after ${elapsed} ms`);
    t.diagnostic(`synack sender: ${e.code} (${e.message}) ${elapsed} ms after the kill, ${(e.sent / MiB).toFixed(1)} MiB written`);
  });
});

test('TUN: killing the synack host mid-transfer ends the kernel client with an error in bounded time', { skip, timeout: 60_000 }, async (t: TestContext) => {
  await withNetns(async (ns) => {
    const host = await startHost(ns);
    const client = ns.start('python3', ['-c', KILL_PY, '10.9.0.2', '9']);
    await client.waitForLine(/^started$/, 20_000);
    host.kill('SIGKILL');
    const killedAt = Date.now();
    assert.notEqual(await host.waitExit(5000), undefined, 'the host died');
    const exit = await client.waitExit(20_000);
    const elapsed = Date.now() - killedAt;
    assert.ok(exit !== undefined, 'the client did not hang');
    const r = lastJson<{ outcome: string; errno?: string; sent: number }>(client.lines.join('\n'));
    assert.equal(r.outcome, 'error', JSON.stringify(r));
    assert.ok(r.sent < 4 * 1024 * MiB);
    assert.ok(elapsed < 15_000, `error after ${elapsed} ms`);
    t.diagnostic(`kernel client: ${r.errno ?? r.outcome} ${elapsed} ms after the kill, ${(r.sent / MiB).toFixed(1)} MiB sent`);
    // The device went away with the process that held it.
    const show = await ns.run('ip', ['link', 'show', 'synack0'], { timeoutMs: 5000 });
    assert.notEqual(show.status, 0, 'synack0 is gone');
  });
});

test('TUN: close() stops reading and lets the process exit by itself', { skip, timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    // No IPv6 in this namespace: no router solicitation or MLD report reaches the device by chance,
    // so nothing but close() can end the read that is waiting when we stop.
    await ns.check('sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
    const host = await startHost(ns, ['--mode', 'link-only', '--kernel', '10.9.0.1/24']);
    // 50 UDP datagrams to an address behind the device: the link reads them (nothing answers).
    await python(ns, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(50):
    s.sendto(b"u" * 100, ("10.9.0.2", 9))
`, [], 10_000);
    await new Promise((r) => setTimeout(r, 300));
    host.kill('SIGTERM'); // the fixture only calls link.close()
    const closedAt = Date.now();
    const exit = await host.waitExit(5000);
    assert.deepEqual(exit, { code: 0, signal: null }, `the process exited by itself after close(); stderr: ${host.stderr}`);
    assert.ok(Date.now() - closedAt < 2000, `exit ${Date.now() - closedAt} ms after close()`);
    const line = host.lines.find((l) => l.startsWith('stats '));
    assert.ok(line !== undefined);
    const stats = (JSON.parse(line.slice(6)) as { link: HostStats['link'] }).link;
    assert.ok(stats.packetsIn >= 50, JSON.stringify(stats));
    assert.ok(stats.bytesIn >= 50 * 128, JSON.stringify(stats));
    assert.equal(stats.readErrors, 0);
    const show = await ns.run('ip', ['link', 'show', 'synack0'], { timeoutMs: 5000 });
    assert.notEqual(show.status, 0, 'synack0 is gone');
  });
});

test('TUN errors: busy device, a name taken by another kind of device, `ip` failing or missing', { skip, timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    const host = await startHost(ns);
    assertOneLineError((await tryOpen(ns, [], [])).error, 'busy', /synack0 is busy/);
    await stopHost<HostStats>(host);

    assertOneLineError((await tryOpen(ns, [], ['--name', 'lo'])).error, 'bad-name', /not a TUN device/);
    assertOneLineError((await tryOpen(ns, [], ['--kernel', '10.9.0.1/33'])).error, 'ip-failed', /`ip addr add 10\.9\.0\.1\/33 dev synack0` failed: .*prefix/);
    assertOneLineError((await tryOpen(ns, ['env', 'PATH=/nonexistent'], [])).error, 'ip-missing', /iproute2/);
    // After all that, the name is free again and a plain open works.
    assert.equal((await tryOpen(ns, [], [])).opened, 'synack0');
  });
});

test('TUN errors: no CAP_NET_ADMIN, no /dev/net/tun', { skip: skip || (haveSetpriv && haveUnshare ? false : 'skipped: needs setpriv and unshare (util-linux)'), timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    // Root without CAP_NET_ADMIN in its bounding and inheritable sets: exec leaves the capability out.
    const noCap = await tryOpen(ns, ['setpriv', '--inh-caps=-net_admin', '--bounding-set=-net_admin'], []);
    assertOneLineError(noCap.error, 'permission', /^synack: TUN needs root or CAP_NET_ADMIN: /);
    // A private mount namespace where /dev/net is an empty tmpfs.
    const noTun = await tryOpen(ns, ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" "$@"'], []);
    assertOneLineError(noTun.error, 'no-tun', /\/dev\/net\/tun is missing/);
  });
});
