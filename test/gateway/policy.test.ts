/**
 * The gateway's destination policy (src/gateway/policy.ts): rule syntax, every default deny with
 * its reason, precedence (the most specific rule wins; user rules beat defaults on a tie, deny beats
 * allow), ports and protocols, IPv6 and IPv4-mapped addresses, counters; and a property test against
 * a brute-force reading of the same precedence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_DENY, Policy, describeDefaultDeny, parseRule, type PolicyRule } from '../../src/gateway/policy.js';
import { formatAddress, inPrefix, parseAddress, parseCidr } from '../../src/wire/address.js';

test('parseRule: the forms a command line takes', () => {
  const cases: [string, Partial<PolicyRule>][] = [
    ['10.0.0.0/8', { family: 4, network: '10.0.0.0', prefix: 8, portLow: 0, portHigh: 65535, protocol: null }],
    ['192.0.2.7', { family: 4, network: '192.0.2.7', prefix: 32 }],
    ['192.0.2.0/24:80', { network: '192.0.2.0', prefix: 24, portLow: 80, portHigh: 80 }],
    ['192.0.2.0/24:8000-8999', { portLow: 8000, portHigh: 8999 }],
    ['192.0.2.0/24:*', { portLow: 0, portHigh: 65535 }],
    ['[2001:db8::/32]:443', { family: 6, network: '2001:db8::', prefix: 32, portLow: 443, portHigh: 443 }],
    ['[2001:db8::]/32:443', { family: 6, network: '2001:db8::', prefix: 32, portLow: 443, portHigh: 443 }],
    ['[2001:DB8::1]', { family: 6, network: '2001:db8::1', prefix: 128, portLow: 0, portHigh: 65535 }],
    ['2001:db8::/32', { family: 6, network: '2001:db8::', prefix: 32, portLow: 0, portHigh: 65535 }],
    ['::1', { family: 6, network: '::1', prefix: 128 }],
    ['dead:beef::/32', { family: 6, network: 'dead:beef::', prefix: 32 }],
    ['*:25', { family: null, network: '*', prefix: 0, portLow: 25, portHigh: 25 }],
    ['*', { family: null, network: '*', prefix: 0, portLow: 0, portHigh: 65535 }],
    ['tcp:*:22', { protocol: 'tcp', family: null, portLow: 22 }],
    ['UDP:198.51.100.0/24:53', { protocol: 'udp', network: '198.51.100.0', portLow: 53 }],
    ['udp:[2001:db8::/48]:5000-5010', { protocol: 'udp', family: 6, prefix: 48, portLow: 5000, portHigh: 5010 }],
    ['0.0.0.0/0', { family: 4, network: '0.0.0.0', prefix: 0 }],
    ['  203.0.113.9:443  ', { network: '203.0.113.9', portLow: 443 }],
    // An IPv6 rule inside ::ffff:0:0/96 is the IPv4 rule it stands for.
    ['[::ffff:10.0.0.0/104]:80', { family: 4, network: '10.0.0.0', prefix: 8, portLow: 80 }],
  ];
  for (const [text, want] of cases) {
    const r = parseRule(text, 'deny');
    for (const [k, v] of Object.entries(want)) assert.deepEqual(r[k as keyof PolicyRule], v, `${text}: ${k}`);
    assert.equal(r.text, text.trim());
    assert.equal(r.action, 'deny');
    assert.equal(r.isDefault, false);
  }
  assert.equal(parseRule('10.0.0.0/8', 'allow').action, 'allow');
});

test('parseRule: bad rules throw a RangeError with a one-line reason', () => {
  const cases: [string, RegExp][] = [
    ['', /empty rule/],
    ['   ', /empty rule/],
    ['10.0.0.1/8', /host bits set after \/8 \(the network is 10\.0\.0\.0\/8\)/],
    ['10.0.0.0/33', /prefix length 33 is longer than 32 bits/],
    ['[2001:db8::/129]', /longer than 128/],
    ['10.0.0.0/x', /not a prefix length/],
    ['10.0.0.0/08', /not a prefix length/],
    ['10.0.0.256', /not an IP address/],
    ['example.com', /not an IP address/],
    ['010.0.0.1', /not an IP address/],
    ['1.2.3.4:70000', /port out of range/],
    ['1.2.3.4:9-3', /runs backwards/],
    ['1.2.3.4:', /empty port/],
    ['1.2.3.4:http', /not a port/],
    ['1.2.3.4:1-', /not a port/],
    ['1.2.3.4:-5', /not a port/],
    ['[10.0.0.0/8]', /brackets are for IPv6/],
    ['[::1', /missing "\]"/],
    ['[::1]x', /unexpected "x" after "\]"/],
    ['[::1/64]/64', /two prefix lengths/],
    ['*/8', /"\*" takes no prefix length/],
    ['tcp:', /no address after the protocol/],
    ['icmp:1.2.3.4', /unknown protocol "icmp" \(tcp or udp\)/],
    ['sctp:*', /unknown protocol "sctp"/],
    ['10.0.0.0/8 :80', /no spaces/],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseRule(text, 'allow'), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${text}: ${String(e)}`);
      assert.match(e.message, /^policy rule ".*": /, text);
      assert.match(e.message, why, text);
      assert.ok(!e.message.includes('\n'), text);
      return true;
    });
  }
  assert.throws(() => new Policy({ allow: ['10.0.0.0/8', 'nonsense'] }), /policy rule "nonsense": not an IP address/);
  assert.throws(() => parseRule('1.2.3.4', 'permit' as 'allow'), RangeError);
});

/** The first, an inner and the last address of a range. */
function samples(cidr: string): string[] {
  const c = parseCidr(cidr)!;
  const first = c.address.slice();
  const last = c.address.slice();
  for (let bit = c.prefix; bit < first.length * 8; bit++) last[bit >>> 3]! |= 0x80 >> (bit & 7);
  const mid = first.slice();
  if (c.prefix < first.length * 8) mid[mid.length - 1]! |= 1;
  return [...new Set([formatAddress(first), formatAddress(mid), formatAddress(last)])];
}

test('every default range is denied, with its rule and reason; the metadata addresses by name', () => {
  const p = new Policy();
  assert.ok(DEFAULT_DENY.length >= 17);
  for (const d of DEFAULT_DENY) {
    for (const address of samples(d.cidr)) {
      // The most specific default decides: 169.254.169.254 is the metadata rule, not link-local.
      const want = DEFAULT_DENY.filter((x) => {
        const c = parseCidr(x.cidr)!;
        return inPrefix(parseAddress(address)!, c.address, c.prefix);
      }).sort((a, b) => parseCidr(b.cidr)!.prefix - parseCidr(a.cidr)!.prefix)[0]!;
      for (const protocol of ['tcp', 'udp'] as const) {
        const r = p.check(address, 443, protocol);
        assert.equal(r.allowed, false, `${address} (${d.cidr})`);
        assert.equal(r.rule, `default-deny ${want.cidr}`, address);
        assert.equal(r.reason, `default-deny ${want.cidr}: ${want.reason}`);
      }
    }
  }
  assert.match(p.check('169.254.169.254', 80, 'tcp').reason, /cloud metadata service/);
  assert.match(p.check('fd00:ec2::254', 80, 'tcp').reason, /AWS metadata service over IPv6/);
  assert.match(p.check('255.255.255.255', 9, 'udp').reason, /limited broadcast/);
  assert.match(p.check('::', 80, 'tcp').reason, /unspecified/);
  // Neighbours of the ranges, the documentation and benchmarking ranges, public addresses: allowed.
  for (const a of [
    '9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
    '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '192.167.255.255', '192.169.0.0',
    '223.255.255.255', '1.1.1.1', '192.0.2.10', '198.51.100.1', '203.0.113.1', '198.18.0.1', '198.19.255.254',
    '::2', '2001:db8::10', '2606:4700::1111', '2001:2::1', 'fbff:ffff::1', 'fe00::1', 'fec0::1', 'feff::1',
  ]) {
    const r = p.check(a, 80, 'tcp');
    assert.deepEqual({ ...r }, { allowed: true, rule: 'default', reason: 'no rule matched: allowed' }, a);
  }
  // --no-default-deny
  const open = new Policy({ defaults: false });
  for (const d of DEFAULT_DENY) for (const a of samples(d.cidr)) assert.equal(open.check(a, 80, 'tcp').allowed, true, a);
  assert.equal(open.rules.length, 0);
});

test('describeDefaultDeny lists every default, aligned, for --help', () => {
  const lines = describeDefaultDeny();
  assert.equal(lines.length, DEFAULT_DENY.length);
  const column = lines[0]!.indexOf(DEFAULT_DENY[0]!.reason);
  DEFAULT_DENY.forEach((d, i) => {
    assert.ok(lines[i]!.startsWith(`  ${d.cidr} `));
    assert.equal(lines[i]!.indexOf(d.reason), column);
  });
  assert.ok(lines.some((l) => l.includes('169.254.169.254/32') && l.includes('metadata')));
});

test('IPv4-mapped IPv6 destinations are checked as their IPv4 address', () => {
  const p = new Policy({ allow: ['10.1.0.0/16'], deny: ['192.0.2.0/24:25'] });
  assert.equal(p.check('::ffff:127.0.0.1', 80, 'tcp').rule, 'default-deny 127.0.0.0/8');
  assert.equal(p.check('::ffff:169.254.169.254', 80, 'tcp').rule, 'default-deny 169.254.169.254/32');
  assert.equal(p.check('::ffff:10.1.2.3', 80, 'tcp').rule, 'allow 10.1.0.0/16');
  assert.equal(p.check('::ffff:192.0.2.1', 25, 'tcp').rule, 'deny 192.0.2.0/24:25');
  assert.equal(p.check('::ffff:192.0.2.1', 80, 'tcp').allowed, true);
  assert.equal(p.check(parseAddress('::ffff:10.9.9.9')!, 80, 'tcp').rule, 'default-deny 10.0.0.0/8');
  // An IPv6 rule does not catch mapped addresses (they are IPv4 connections)…
  assert.equal(new Policy({ deny: ['::/0'] }).check('::ffff:192.0.2.1', 80, 'tcp').allowed, true);
  // …unless written inside ::ffff:0:0/96, where it is the IPv4 rule.
  const q = new Policy({ deny: ['[::ffff:192.0.2.0/120]'] });
  assert.equal(q.check('192.0.2.9', 80, 'tcp').rule, 'deny [::ffff:192.0.2.0/120]');
  assert.equal(q.check('::ffff:192.0.2.9', 80, 'udp').allowed, false);
});

test('precedence: the most specific rule wins; user beats default on a tie; deny beats allow on a tie', () => {
  // An explicit allow opens (part of) a default-denied range…
  let p = new Policy({ allow: ['10.0.0.0/8', '192.168.1.5:443', '[fd00:1::/32]:22'] });
  assert.equal(p.check('10.20.30.40', 1, 'tcp').rule, 'allow 10.0.0.0/8');
  assert.equal(p.check('192.168.1.5', 443, 'tcp').allowed, true);
  assert.equal(p.check('192.168.1.5', 444, 'tcp').rule, 'default-deny 192.168.0.0/16');
  assert.equal(p.check('192.168.1.6', 443, 'tcp').allowed, false);
  assert.equal(p.check('fd00:1::9', 22, 'tcp').allowed, true);
  assert.equal(p.check('fd00:2::9', 22, 'tcp').rule, 'default-deny fc00::/7');
  // …but a broader allow does not: '*:443' is less specific than every default deny.
  p = new Policy({ allow: ['*:443', '0.0.0.0/0', '169.254.0.0/16'] });
  assert.equal(p.check('10.0.0.1', 443, 'tcp').rule, 'default-deny 10.0.0.0/8');
  assert.equal(p.check('fe80::1', 443, 'tcp').rule, 'default-deny fe80::/10');
  assert.equal(p.check('192.0.2.1', 443, 'tcp').rule, 'allow *:443');
  assert.equal(p.check('192.0.2.1', 80, 'tcp').rule, 'allow 0.0.0.0/0');
  assert.equal(p.check('169.254.1.1', 80, 'tcp').rule, 'allow 169.254.0.0/16');
  // The metadata address stays denied unless named itself.
  assert.equal(p.check('169.254.169.254', 80, 'tcp').rule, 'default-deny 169.254.169.254/32');
  assert.equal(new Policy({ allow: ['169.254.169.254'] }).check('169.254.169.254', 80, 'tcp').allowed, true);
  // A user deny of the same range as a default: the user's rule is the one named.
  assert.equal(new Policy({ deny: ['10.0.0.0/8'] }).check('10.0.0.1', 1, 'tcp').rule, 'deny 10.0.0.0/8');
  // Deny everything, allow one service.
  p = new Policy({ deny: ['*'], allow: ['192.0.2.10:80', '[2001:db8::10]:443'] });
  assert.equal(p.check('192.0.2.10', 80, 'tcp').allowed, true);
  assert.equal(p.check('192.0.2.10', 81, 'tcp').rule, 'deny *');
  assert.equal(p.check('192.0.2.11', 80, 'tcp').rule, 'deny *');
  assert.equal(p.check('2001:db8::10', 443, 'udp').allowed, true);
  assert.equal(p.check('2001:db8::11', 443, 'udp').rule, 'deny *');
  assert.equal(p.check('10.0.0.1', 80, 'tcp').rule, 'default-deny 10.0.0.0/8');
  // A deny carved out of an allow, and an allow carved out of a deny.
  p = new Policy({ allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16'] });
  assert.equal(p.check('10.9.1.1', 80, 'tcp').rule, 'deny 10.9.0.0/16');
  assert.equal(p.check('10.8.1.1', 80, 'tcp').rule, 'allow 10.0.0.0/8');
  p = new Policy({ deny: ['198.51.100.0/24'], allow: ['198.51.100.7'] });
  assert.equal(p.check('198.51.100.7', 80, 'tcp').allowed, true);
  assert.equal(p.check('198.51.100.8', 80, 'tcp').allowed, false);
  // Same prefix: the narrower port range wins; then a protocol; then deny.
  p = new Policy({ deny: ['203.0.113.0/24'], allow: ['203.0.113.0/24:8000-8999', 'udp:203.0.113.0/24:8080'] });
  assert.equal(p.check('203.0.113.5', 8500, 'tcp').rule, 'allow 203.0.113.0/24:8000-8999');
  assert.equal(p.check('203.0.113.5', 7999, 'tcp').rule, 'deny 203.0.113.0/24');
  p = new Policy({ deny: ['tcp:203.0.113.0/24:8080'], allow: ['203.0.113.0/24:8080'] });
  assert.equal(p.check('203.0.113.5', 8080, 'tcp').allowed, false);
  assert.equal(p.check('203.0.113.5', 8080, 'udp').allowed, true);
  p = new Policy({ deny: ['203.0.113.0/24:80'], allow: ['203.0.113.0/24:80'] });
  assert.equal(p.check('203.0.113.5', 80, 'tcp').rule, 'deny 203.0.113.0/24:80');
  // rules: in the order they are tried.
  assert.deepEqual(new Policy({ deny: ['*'], allow: ['192.0.2.0/24', '192.0.2.0/24:80'], defaults: false }).rules.map((r) => r.text),
    ['192.0.2.0/24:80', '192.0.2.0/24', '*']);
});

test('ports and protocols: ranges are inclusive', () => {
  const p = new Policy({ deny: ['*:25', 'udp:*:5000-5009', '[2001:db8::/32]:443'] });
  assert.equal(p.check('192.0.2.1', 25, 'tcp').rule, 'deny *:25');
  assert.equal(p.check('2001:db8::1', 25, 'udp').rule, 'deny *:25');
  assert.equal(p.check('192.0.2.1', 24, 'tcp').allowed, true);
  assert.equal(p.check('192.0.2.1', 26, 'tcp').allowed, true);
  for (const port of [4999, 5010]) assert.equal(p.check('192.0.2.1', port, 'udp').allowed, true, String(port));
  for (const port of [5000, 5005, 5009]) assert.equal(p.check('192.0.2.1', port, 'udp').allowed, false, String(port));
  assert.equal(p.check('192.0.2.1', 5000, 'tcp').allowed, true);
  assert.equal(p.check('2001:db8:ffff::1', 443, 'tcp').rule, 'deny [2001:db8::/32]:443');
  assert.equal(p.check('2001:db9::1', 443, 'tcp').allowed, true);
  assert.equal(p.check('2001:db8::1', 80, 'tcp').allowed, true);
});

test('bad addresses are refused, not thrown; counters and refusals by rule', () => {
  const p = new Policy({ deny: ['*:25'] });
  for (const a of ['', 'example.com', '10.0.0', new Uint8Array(5)]) {
    const r = p.check(a, 80, 'tcp');
    assert.deepEqual({ ...r }, { allowed: false, rule: 'invalid-address', reason: 'not an IP address' });
  }
  for (const port of [-1, 65536, 1.5, Number.NaN]) {
    assert.deepEqual({ ...p.check('192.0.2.1', port, 'tcp') }, { allowed: false, rule: 'invalid-port', reason: 'not a port (0-65535)' });
  }
  p.check('192.0.2.1', 25, 'tcp');
  p.check('2001:db8::1', 25, 'tcp');
  p.check('10.0.0.1', 80, 'tcp');
  p.check('::ffff:10.0.0.1', 80, 'tcp');
  p.check('169.254.169.254', 80, 'tcp');
  p.check('192.0.2.1', 80, 'tcp');
  assert.deepEqual(p.counters, { checked: 14, allowed: 1, refused: 13 });
  assert.deepEqual(p.refusalsByRule(), {
    'invalid-address': 4, 'invalid-port': 4, 'deny *:25': 2, 'default-deny 10.0.0.0/8': 2, 'default-deny 169.254.169.254/32': 1,
  });
  // One decision object per rule: nothing is allocated per call.
  assert.equal(p.check('10.0.0.1', 1, 'tcp'), p.check('10.2.0.1', 2, 'udp'));
  assert.ok(Object.isFrozen(p.check('10.0.0.1', 1, 'tcp')));
});

test('check is fast: 200,000 decisions over the defaults and 50 user rules well under a second', () => {
  const allow = Array.from({ length: 25 }, (_, i) => `203.0.${i}.0/24:${1000 + i}`);
  const deny = Array.from({ length: 25 }, (_, i) => `[2001:db8:${i.toString(16)}::/48]`);
  const p = new Policy({ allow, deny });
  const addresses = ['192.0.2.1', '10.0.0.1', '2001:db8:7::1', '2606:4700::1111', '203.0.7.9'].map((a) => parseAddress(a)!);
  const started = performance.now();
  let allowed = 0;
  for (let i = 0; i < 200_000; i++) if (p.check(addresses[i % 5]!, 1000 + (i % 30), 'tcp').allowed) allowed++;
  const ms = performance.now() - started;
  assert.ok(allowed > 0);
  assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
});

// ------------------------------------------------------------------------------- property tests

const arbV4Rule = fc.record({
  bytes: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  prefix: fc.integer({ min: 0, max: 32 }),
});
const arbV6Rule = fc.record({
  bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  prefix: fc.integer({ min: 0, max: 128 }),
});
const arbPorts = fc.oneof(
  fc.constant(null),
  fc.integer({ min: 0, max: 65535 }).map((p) => [p, p] as const),
  fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
);

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let bit = 0; bit < prefix; bit++) out[bit >>> 3]! |= b[bit >>> 3]! & (0x80 >> (bit & 7));
  return out;
}

const arbRuleText = fc.record({
  address: fc.oneof(arbV4Rule, arbV6Rule, fc.constant(null)),
  ports: arbPorts,
  protocol: fc.constantFrom(null, 'tcp', 'udp'),
  action: fc.constantFrom('allow' as const, 'deny' as const),
}).map(({ address, ports, protocol, action }) => {
  let a = '*';
  let network = '*';
  if (address) {
    network = formatAddress(maskBytes(address.bytes, address.prefix));
    a = address.bytes.length === 4 ? `${network}/${address.prefix}` : `[${network}/${address.prefix}]`;
  }
  const p = ports === null ? '' : `:${ports[0] === ports[1] ? ports[0] : `${ports[0]}-${ports[1]}`}`;
  const want = {
    protocol, network, prefix: address?.prefix ?? 0, family: address ? (address.bytes.length === 4 ? 4 : 6) : null,
    portLow: ports?.[0] ?? 0, portHigh: ports?.[1] ?? 65535,
  };
  return { text: `${protocol === null ? '' : `${protocol}:`}${a}${p}`, action, want };
});

/** The documented precedence, read literally: every matching rule, the most specific first. */
function reference(rules: PolicyRule[], address: Uint8Array, port: number, protocol: 'tcp' | 'udp'): string {
  let b = address;
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) b = b.slice(12);
  const matching = rules.filter((r) => (r.protocol === null || r.protocol === protocol) && port >= r.portLow
    && port <= r.portHigh && (r.network === '*' || inPrefix(b, parseAddress(r.network)!, r.prefix)));
  if (matching.length === 0) return 'default';
  const rank = (r: PolicyRule): number[] => [-r.prefix, r.portHigh - r.portLow, r.protocol === null ? 1 : 0, r.isDefault ? 1 : 0, r.action === 'deny' ? 0 : 1];
  matching.sort((x, y) => {
    const a = rank(x);
    const c = rank(y);
    for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) return a[i]! - c[i]!;
    return 0;
  });
  const r = matching[0]!;
  return r.isDefault ? `default-deny ${r.text}` : `${r.action} ${r.text}`;
}

test('property: check agrees with a brute-force reading of the precedence', () => {
  const arbAddress = fc.oneof(
    fc.uint8Array({ minLength: 4, maxLength: 4 }),
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.constantFrom('10.0.0.1', '169.254.169.254', '::ffff:172.16.0.1', 'fd00:ec2::254', '192.0.2.1', '::', '2001:db8::1').map((a) => parseAddress(a)!),
  );
  fc.assert(fc.property(
    fc.array(arbRuleText, { maxLength: 12 }), fc.boolean(), fc.array(fc.tuple(arbAddress, fc.integer({ min: 0, max: 300 }), fc.constantFrom('tcp' as const, 'udp' as const)), { minLength: 1, maxLength: 20 }),
    (texts, defaults, probes) => {
      const p = new Policy({
        allow: texts.filter((t) => t.action === 'allow').map((t) => t.text),
        deny: texts.filter((t) => t.action === 'deny').map((t) => t.text),
        defaults,
      });
      for (const [address, port, protocol] of probes) {
        // Addresses near a rule's network are the interesting ones: probe the rule networks too.
        const d = p.check(address, port, protocol);
        assert.equal(d.rule, reference([...p.rules], address, port, protocol));
        assert.equal(d.allowed, d.rule === 'default' || d.rule.startsWith('allow '));
      }
      for (const r of p.rules) {
        if (r.network === '*') continue;
        const address = parseAddress(r.network)!;
        assert.equal(p.check(address, r.portLow, 'tcp').rule, reference([...p.rules], address, r.portLow, 'tcp'));
      }
    },
  ), { numRuns: 300 });
});

test('property: parseRule reads back what it is given, and throws only RangeErrors', () => {
  fc.assert(fc.property(arbRuleText, ({ text, action, want }) => {
    const r = parseRule(text, action);
    assert.deepEqual({ text: r.text, action: r.action, protocol: r.protocol, network: r.network, prefix: r.prefix,
      family: r.family, portLow: r.portLow, portHigh: r.portHigh }, { text, action, ...want });
  }), { numRuns: 500 });
  fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
    try {
      parseRule(s, 'deny');
    } catch (e) {
      assert.ok(e instanceof RangeError, String(e));
      assert.ok(!e.message.includes('\n'));
    }
  }), { numRuns: 2000 });
});
