/**
 * NodeDnsUpstream against a real DNS server: dnsmasq on 127.0.0.1:53 inside a network namespace the
 * test makes, whose resolv.conf (/etc/netns/NAME/resolv.conf) names it, so the upstream finds it the
 * way it finds the host's resolver (`dns.getServers()`), and the machine's own resolver is never
 * asked. Skips without root or dnsmasq (fails under CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { have, isRoot, lastJson, withNetns } from '../support/netns.js';

const CHILD = fileURLToPath(new URL('./fixtures/dns-upstream-child.js', import.meta.url));

function missing(): string[] {
  const m: string[] = [];
  if (!isRoot()) m.push('root');
  else if (!have('ip', ['-V'])) m.push('iproute2');
  if (!have('dnsmasq', ['--version'])) m.push('dnsmasq');
  if (!existsSync(CHILD)) m.push('the compiled fixture');
  return m;
}

const lack = missing();
const skip = lack.length > 0 && process.env['CI'] !== 'true' ? `skipped: needs ${lack.join(', ')}` : false;

test('NodeDnsUpstream: resolv.conf servers via dns.getServers(), UDP, TC → TCP, ECONNREFUSED and timeouts bounded (dnsmasq in a namespace)', { skip, timeout: 60_000 }, async () => {
  assert.deepEqual(lack, [], `missing: ${lack.join(', ')}`);
  await withNetns(async (ns) => {
    ns.setResolvConf('nameserver 127.0.0.1\n');
    const chunk = 'x'.repeat(250);
    ns.start('dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--user=root', '--group=root',
      '--listen-address=127.0.0.1', '--bind-interfaces', '--port=53', '--pid-file=',
      '--address=/example.test/192.0.2.1',
      `--txt-record=big.example.test,${new Array<string>(8).fill(chunk).join(',')}`,
    ]);
    const out = await ns.check(process.execPath, [CHILD], { timeoutMs: 30_000 });
    const r = lastJson<{
      servers: { address: string; port: number }[];
      a: { id: number; rcode: number; tc: boolean; answers: unknown[] };
      big: { id: number; rcode: number; tc: boolean; answers: unknown[] };
      refused: { code: string; ms: number };
      silent: { code: string; ms: number };
      counters: { udp: number; tcp: number };
    }>(out);
    assert.deepEqual(r.servers, [{ address: '127.0.0.1', port: 53, family: 4 }]);
    assert.deepEqual(r.a, { id: 0x4242, rcode: 0, tc: false, answers: ['192.0.2.1'] });
    assert.deepEqual(r.big, { id: 7, rcode: 0, tc: false, answers: [2000] });
    // The TXT answer came whole over TCP after the UDP answer said TC (dnsmasq cut it to 1232).
    assert.equal(r.counters.tcp, 1);
    assert.ok(r.counters.udp >= 2);
    assert.equal(r.refused.code, 'ECONNREFUSED');
    assert.ok(r.refused.ms < 2000, `refused after ${r.refused.ms} ms`);
    assert.equal(r.silent.code, 'ETIMEOUT');
    assert.ok(r.silent.ms >= 550 && r.silent.ms < 3000, `timed out after ${r.silent.ms} ms`);
  });
});
