/**
 * TapLink against the real kernel: the device is made by this process and its kernel side moved into
 * a namespace the test makes (test/support/netns.ts), where the kernel is a host on an Ethernet
 * segment whose other end is this test. Frames are built and read by hand, byte by byte, so the test
 * depends on nothing above the link. Needs root; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tunTestsMissing, withNetns } from '../support/netns.js';
import { TapLink, TunError } from '../../src/link/tap.js';
import { isEthernetLink } from '../../src/link/link.js';

const missing = tunTestsMissing([]);
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (process.env['CI'] === 'true' && missing.length > 0) {
  test('TAP tests can run (required under CI)', () => {
    assert.fail(`TAP tests need ${missing.join(', ')}: under CI=true a skip is a failure`);
  });
}

/** A device name no other test run uses at the same time (the device starts in this namespace). */
function tapName(): string {
  return `stap${randomBytes(4).toString('hex')}`;
}

const OUR_MAC = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];
const OUR_IP = [10, 0, 2, 2];
const KERNEL_IP = [10, 0, 2, 15];

/** An ARP request (RFC 826) from OUR_MAC/OUR_IP: who has `target`? Broadcast. */
function arpRequest(target: number[]): Uint8Array {
  return new Uint8Array([
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...OUR_MAC, 0x08, 0x06,
    0x00, 0x01, // hardware type: Ethernet
    0x08, 0x00, // protocol type: IPv4
    6, 4, // address lengths
    0x00, 0x01, // request
    ...OUR_MAC, ...OUR_IP,
    0, 0, 0, 0, 0, 0, ...target,
  ]);
}

const mac = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
const etherType = (f: Uint8Array): number => (f[12]! << 8) | f[13]!;

/** Resolves with the first frame `pred` accepts, or rejects after `ms`. */
function waitFrame(frames: Uint8Array[], pred: (f: Uint8Array) => boolean, ms: number, what: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const look = (): void => {
      const f = frames.find(pred);
      if (f !== undefined) return resolve(f);
      if (Date.now() - started > ms) return reject(new Error(`no ${what} within ${ms} ms (${frames.length} frames seen)`));
      setTimeout(look, 20);
    };
    look();
  });
}

function ipOut(args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout ?? '' };
}

test('TAP in a namespace: the kernel answers our ARP request with its MAC, and speaks IPv6 on the link', { skip, timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    const name = tapName();
    const link = TapLink.open({ name, netns: ns.name, kernelAddresses: ['10.0.2.15/24'], kernelMac: '02:11:22:33:44:55' });
    try {
      assert.equal(isEthernetLink(link), true);
      assert.equal(link.name, name);
      assert.equal(link.mtu, 1500);
      assert.equal(link.kernelMac, '02:11:22:33:44:55');
      assert.equal(link.netns, ns.name);
      // The kernel side lives in the namespace, configured there; not in ours.
      const shown = await ns.check('ip', ['addr', 'show', 'dev', name]);
      assert.match(shown, /mtu 1500 /);
      assert.match(shown, /link\/ether 02:11:22:33:44:55/);
      assert.match(shown, /inet 10\.0\.2\.15\/24/);
      assert.match(shown, /state UP|LOWER_UP/);
      assert.notEqual(ipOut(['link', 'show', 'dev', name]).status, 0, 'the device left this namespace');

      const frames: Uint8Array[] = [];
      link.onFrame((f) => frames.push(f.slice()));

      // IPv4: ARP (RFC 826). The kernel replies to us, unicast, from its own MAC.
      link.send(arpRequest(KERNEL_IP));
      const reply = await waitFrame(frames, (f) => etherType(f) === 0x0806 && f[21] === 2, 10_000, 'ARP reply');
      assert.equal(mac(reply.subarray(0, 6)), mac(new Uint8Array(OUR_MAC)), 'to our MAC');
      assert.equal(mac(reply.subarray(6, 12)), '02:11:22:33:44:55', "from the kernel side's MAC");
      assert.equal(mac(reply.subarray(22, 28)), '02:11:22:33:44:55', 'sender hardware address');
      assert.deepEqual([...reply.subarray(28, 32)], KERNEL_IP, 'sender protocol address');
      assert.equal(mac(reply.subarray(32, 38)), mac(new Uint8Array(OUR_MAC)), 'target hardware address');
      assert.deepEqual([...reply.subarray(38, 42)], OUR_IP, 'target protocol address');
      // The kernel learned us from the request (RFC 826: the requester's pair is merged in).
      const neigh = await ns.check('ip', ['neigh', 'show', 'dev', name]);
      assert.match(neigh, /10\.0\.2\.2 lladdr 02:00:5e:00:00:02/);

      // IPv6: coming up, the kernel sends neighbour discovery (DAD for its link-local address), MLD
      // reports and router solicitations — IPv6 frames (ethertype 0x86dd) from its MAC.
      const v6 = await waitFrame(frames, (f) => etherType(f) === 0x86dd, 15_000, 'IPv6 frame');
      assert.equal(v6[14]! >> 4, 6);
      assert.equal(mac(v6.subarray(6, 12)), '02:11:22:33:44:55');
      assert.equal(v6[0]! === 0x33 && v6[1]! === 0x33, true, 'to an IPv6 multicast MAC (RFC 2464 §7)');

      assert.ok(link.stats.packetsIn >= 2);
      assert.equal(link.stats.packetsOut, 1);
      assert.equal(link.stats.bytesOut, 42);
      assert.equal(link.stats.drops, 0);
      assert.equal(link.readError, undefined);
    } finally {
      link.close();
    }
    // Closing the fd removes the device, though it lives in another namespace.
    const deadline = Date.now() + 5000;
    while ((await ns.run('ip', ['link', 'show', 'dev', name])).status === 0) {
      assert.ok(Date.now() < deadline, 'the device is gone after close()');
      await new Promise((r) => setTimeout(r, 50));
    }
    link.close();
    link.send(new Uint8Array(60));
    assert.equal(link.stats.drops, 1, 'a frame sent after close is a drop');
  });
});

test('TAP with the name left to the kernel: tapN, the MTU asked for, a MAC of its own; gone at close', { skip, timeout: 30_000 }, async () => {
  await withNetns(async (ns) => {
    // Moved into the namespace before it comes up: this machine's own network never sees it up.
    const link = TapLink.open({ mtu: 9000, netns: ns.name });
    try {
      assert.match(link.name, /^tap\d+$/);
      assert.equal(link.mtu, 9000);
      assert.match(link.kernelMac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const shown = await ns.check('ip', ['link', 'show', 'dev', link.name]);
      assert.match(shown, /mtu 9000 /);
      assert.match(shown, new RegExp(`link/ether ${link.kernelMac}`));
    } finally {
      link.close();
    }
    const deadline = Date.now() + 5000;
    while ((await ns.run('ip', ['link', 'show', 'dev', link.name])).status === 0) {
      assert.ok(Date.now() < deadline, 'the device is gone after close()');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

test('TAP errors are one line with a code: missing namespace, bad MAC, a name taken by another kind of device', { skip, timeout: 30_000 }, () => {
  const expectError = (fn: () => unknown, code: string, re: RegExp): void => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof TunError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, re);
      assert.ok(e.message.startsWith('synack: ') && !e.message.includes('\n'), e.message);
      assert.doesNotMatch(e.stack ?? '', /\n\s+at /, 'no stack trace');
      return;
    }
    assert.fail(`expected TunError ${code}`);
  };
  const name = tapName();
  expectError(() => TapLink.open({ name, netns: `synack-missing-${randomBytes(4).toString('hex')}` }), 'no-netns', /network namespace "synack-missing-[0-9a-f]+" does not exist/);
  // The device made for the failed open went with its fd.
  assert.notEqual(ipOut(['link', 'show', 'dev', name]).status, 0);
  expectError(() => TapLink.open({ kernelMac: '01:00:5e:00:00:01' }), 'open-failed', /bad TAP kernel MAC/);
  expectError(() => TapLink.open({ kernelMac: 'nope' }), 'open-failed', /bad TAP kernel MAC/);
  expectError(() => TapLink.open({ name: 'lo' }), 'bad-name', /cannot use TAP device lo: .*not a TAP device/);
  expectError(() => TapLink.open({ name: 'a-name-far-too-long' }), 'bad-name', /bad TAP device name/);
  expectError(() => TapLink.open({ mtu: 20 }), 'open-failed', /bad TAP MTU 20/);
});
