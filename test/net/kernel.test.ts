/**
 * The Ethernet interface against the Linux kernel: a Stack in router mode on a TAP device whose
 * kernel side lives in a namespace the test makes. The kernel resolves synack by ARP and NDP and
 * pings it over IPv4 and IPv6; it configures an address by SLAAC from synack's Router Advertisement
 * (RFC 4862 §5.5.3) and takes synack's link-local address as its default router; its neighbour
 * table shows synack's MAC. Needs root; skipped otherwise (a failure under CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RealClock } from '../../src/link/clock.js';
import { TapLink } from '../../src/link/tap.js';
import { Stack } from '../../src/stack/stack.js';
import { formatAddress } from '../../src/wire/address.js';
import { have, tunTestsMissing, withNetns } from '../support/netns.js';
import type { Netns } from '../support/netns.js';

const missing = [...tunTestsMissing([]), ...(have('ping', ['-V']) ? [] : ['ping'])];
const skip = missing.length > 0 ? `skipped: needs ${missing.join(', ')}` : false;

if (process.env['CI'] === 'true' && missing.length > 0) {
  test('kernel Ethernet-interface tests can run (required under CI)', () => {
    assert.fail(`they need ${missing.join(', ')}: under CI=true a skip is a failure`);
  });
}

const MAC = '02:53:59:4e:00:02';

async function waitUntil(ns: Netns, args: string[], re: RegExp, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const out = (await ns.run('ip', args)).stdout;
    if (re.test(out)) return out;
    if (Date.now() > deadline) throw new Error(`ip ${args.join(' ')} never matched ${re} within ${ms} ms; last:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the kernel pings synack over ARP and NDP, does SLAAC from its RA and routes through it', { skip, timeout: 60_000 }, async () => {
  await withNetns(async (ns) => {
    const name = `snet${randomBytes(3).toString('hex')}`;
    const link = TapLink.open({ name, netns: ns.name, kernelAddresses: ['10.0.2.15/24'], kernelMac: '02:11:22:33:44:55' });
    const stack = new Stack({
      link, clock: new RealClock(), addresses: ['10.0.2.2/24', 'fd00:0:2::2/64'], mac: MAC,
      advertise: { dns: ['fd00:0:2::3'], intervalMs: 4000 },
    });
    try {
      const ifc = stack.interface!;
      // IPv4: the kernel's ARP request is answered, its echo requests too.
      const ping4 = await ns.run('ping', ['-c', '2', '-i', '0.2', '-W', '3', '10.0.2.2'], { timeoutMs: 15_000 });
      assert.equal(ping4.status, 0, `ping 10.0.2.2: ${ping4.stdout}${ping4.stderr}`);
      assert.match(await ns.check('ip', ['neigh', 'show', 'dev', name]), new RegExp(`10\\.0\\.2\\.2 lladdr ${MAC}`));
      // IPv6: SLAAC from the RA's prefix, the default route via synack's link-local address.
      const ll = formatAddress(ifc.linkLocal);
      await waitUntil(ns, ['-6', 'addr', 'show', 'dev', name], /inet6 fd00:0:2:0:[0-9a-f:]+\/64 scope global/, 20_000);
      const route = await waitUntil(ns, ['-6', 'route', 'show', 'default'], new RegExp(`default via ${ll} dev ${name}`), 10_000);
      assert.match(route, /proto ra/);
      // The kernel's DAD for its new address has to finish before it pings from it.
      await waitUntil(ns, ['-6', 'addr', 'show', 'dev', name], /inet6 fd00:0:2:[0-9a-f:]+\/64 scope global (?!tentative)/, 10_000);
      const ping6 = await ns.run('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '3', 'fd00:0:2::2'], { timeoutMs: 15_000 });
      assert.equal(ping6.status, 0, `ping -6 fd00:0:2::2: ${ping6.stdout}${ping6.stderr}`);
      assert.match(await ns.check('ip', ['-6', 'neigh', 'show', 'dev', name]), new RegExp(`fd00:0:2::2 lladdr ${MAC} router`));
      // synack learnt the kernel on both families, and answered what it was asked.
      const n = ifc.neighbours();
      assert.ok(n.some((e) => e.address === '10.0.2.15' && e.mac === '02:11:22:33:44:55'), JSON.stringify(n));
      assert.ok(n.some((e) => e.address.startsWith('fd00:0:2:') && e.mac === '02:11:22:33:44:55'), JSON.stringify(n));
      assert.ok(ifc.counters.raOut >= 1);
      assert.equal(ifc.counters.dadConflicts, 0);
      assert.equal(ifc.addressState('fd00:0:2::2'), 'preferred');
    } finally {
      stack.interface?.close();
      link.close();
    }
  });
});
