/**
 * What the guest may reach through the gateway (issue 15), decided before any upstream is opened:
 * `--allow` and `--deny` rules over destination address, port and protocol, and a default list
 * of special-purpose ranges a VM should not reach by accident (the host's LANs, loopback,
 * link-local and the cloud metadata service, multicast, …; RFC 6890's special-purpose registry).
 *
 * Rule syntax (one shell word, no spaces):
 *   [tcp:|udp:] ADDRESS [:PORTS]
 *   ADDRESS = `*` (any address, both families) | IPv4 CIDR (`10.0.0.0/8`, a bare address is /32)
 *           | IPv6 CIDR in brackets (`[2001:db8::/32]`, `[2001:db8::]/32`, a bare address is /128);
 *             brackets may be left out when no port follows (`2001:db8::/32`), and are needed with
 *             a port since `2001:db8::1:80` is an address.
 *   PORTS   = `N` | `LO-HI` | `*` (any; the default), 0..65535.
 * e.g. `10.0.0.0/8`, `192.0.2.0/24:80`, `tcp:192.0.2.0/24:8000-8999`, `[2001:db8::/32]:443`, `*:25`.
 *
 * Precedence — the most specific rule wins, as in a routing table:
 *   1. the longer address prefix (`*` is a prefix of 0);
 *   2. then the narrower port range;
 *   3. then a rule naming a protocol over one that does not;
 *   4. on a full tie, a user rule over a default deny, and deny over allow.
 * The default denies take part like rules the user had written. So `--allow 10.0.0.0/8` (or
 * anything inside it: `--allow 10.1.2.3:443`) opens that much of the private range, while a broad
 * `--allow '*:443'` does not open any default-denied range (it is less specific than each of them);
 * `--deny 0.0.0.0/0 --allow 192.0.2.10:80` allows only that one service; and the metadata address
 * 169.254.169.254 stays denied by `--allow 169.254.0.0/16` unless named itself. No rule matching:
 * allowed. `defaults: false` (`--no-default-deny`) drops the default denies.
 *
 * An IPv4-mapped IPv6 destination (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) is an IPv4 connection on a
 * dual-stack socket, so it is checked as a.b.c.d against the IPv4 rules; an IPv6 rule written inside
 * ::ffff:0:0/96 becomes the IPv4 rule it stands for.
 *
 * `check` is called per connection: rules are compiled once into 32-bit words and masks, sorted by
 * precedence, and the first match decides; a decision is a shared object (no allocation per call).
 *
 * Core: no Node built-ins.
 */
import { formatAddress, parseAddress } from '../wire/address.js';

export type PolicyAction = 'allow' | 'deny';
export type PolicyProtocol = 'tcp' | 'udp';

/** One parsed rule. */
export interface PolicyRule {
  readonly action: PolicyAction;
  /** The rule as written (trimmed), or the CIDR of a default deny. */
  readonly text: string;
  /** null: both. */
  readonly protocol: PolicyProtocol | null;
  /** null: `*`, any address of either family. */
  readonly family: 4 | 6 | null;
  /** The network, canonical ('10.0.0.0', '2001:db8::'); '*' for any. */
  readonly network: string;
  readonly prefix: number;
  readonly portLow: number;
  readonly portHigh: number;
  /** A default deny (not the user's). */
  readonly isDefault: boolean;
  /** Why a default deny is there (with its RFC); '' for user rules. */
  readonly reason: string;
}

/** The outcome of `check`; the same object is returned for every match of one rule. */
export interface PolicyDecision {
  readonly allowed: boolean;
  /**
   * What decided, for events and counters: 'allow RULE' / 'deny RULE' for a user rule,
   * 'default-deny CIDR' for a default deny, 'default' when no rule matched (allowed), and
   * 'invalid-address' for an address that does not parse (refused).
   */
  readonly rule: string;
  /** One line for a log: the rule and, for a default deny, what the range is. */
  readonly reason: string;
}

export interface PolicyOptions {
  allow?: readonly string[];
  deny?: readonly string[];
  /** Include the default denies (DEFAULT_DENY). Default true. */
  defaults?: boolean;
}

/** A default deny: a range and why, for `--help` and the README. */
export interface DefaultDeny {
  readonly cidr: string;
  readonly reason: string;
}

/**
 * What a VM should not reach by accident (RFC 6890 §2.2.2 and §2.2.3 list these special-purpose
 * ranges; each line cites the RFC that defines the range). The documentation and benchmarking ranges
 * (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 198.18.0.0/15, 2001:db8::/32, 2001:2::/48) are left
 * open on purpose: tests put servers there, and the fake-IP pool (src/gateway/fake-ip.ts) lives in
 * the benchmarking ranges. The gateway's host alias (10.0.2.2 → the host's loopback) is allowed by
 * the gateway itself before the policy is asked.
 */
export const DEFAULT_DENY: readonly DefaultDeny[] = Object.freeze([
  { cidr: '0.0.0.0/8', reason: '"this network" (RFC 791, RFC 1122 §3.2.1.3)' },
  { cidr: '10.0.0.0/8', reason: 'private network (RFC 1918)' },
  { cidr: '100.64.0.0/10', reason: 'shared address space, carrier-grade NAT (RFC 6598)' },
  { cidr: '127.0.0.0/8', reason: 'loopback (RFC 1122 §3.2.1.3)' },
  { cidr: '169.254.0.0/16', reason: 'link-local (RFC 3927)' },
  { cidr: '169.254.169.254/32', reason: 'cloud metadata service (AWS, GCP, Azure, OpenStack; in link-local, RFC 3927)' },
  { cidr: '172.16.0.0/12', reason: 'private network (RFC 1918)' },
  { cidr: '192.168.0.0/16', reason: 'private network (RFC 1918)' },
  { cidr: '224.0.0.0/4', reason: 'multicast (RFC 5771)' },
  { cidr: '240.0.0.0/4', reason: 'reserved for future use (RFC 1112 §4)' },
  { cidr: '255.255.255.255/32', reason: 'limited broadcast (RFC 919, RFC 8190)' },
  { cidr: '::/128', reason: 'unspecified address (RFC 4291 §2.5.2)' },
  { cidr: '::1/128', reason: 'loopback (RFC 4291 §2.5.3)' },
  { cidr: 'fe80::/10', reason: 'link-local (RFC 4291 §2.5.6)' },
  { cidr: 'fc00::/7', reason: 'unique local addresses (RFC 4193)' },
  { cidr: 'fd00:ec2::254/128', reason: 'AWS metadata service over IPv6 (in unique local, RFC 4193)' },
  { cidr: 'ff00::/8', reason: 'multicast (RFC 4291 §2.7)' },
].map((d) => Object.freeze(d)));

/** `DEFAULT_DENY` as lines for `--help`: '  169.254.169.254/32   cloud metadata service (…)'. */
export function describeDefaultDeny(indent = '  '): string[] {
  const width = Math.max(...DEFAULT_DENY.map((d) => d.cidr.length)) + 2;
  return DEFAULT_DENY.map((d) => `${indent}${d.cidr.padEnd(width)}${d.reason}`);
}

function fail(text: string, why: string): never {
  throw new RangeError(`policy rule ${JSON.stringify(text)}: ${why}`);
}

function parsePort(text: string, s: string): number {
  if (!/^[0-9]{1,5}$/.test(s)) fail(text, `not a port: ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n > 65535) fail(text, `port out of range (0-65535): ${s}`);
  return n;
}

function parsePorts(text: string, s: string | null): [number, number] {
  if (s === null || s === '*') return [0, 65535];
  if (s === '') fail(text, 'empty port after ":"');
  const dash = s.indexOf('-');
  if (dash < 0) {
    const p = parsePort(text, s);
    return [p, p];
  }
  const lo = parsePort(text, s.slice(0, dash));
  const hi = parsePort(text, s.slice(dash + 1));
  if (lo > hi) fail(text, `port range runs backwards: ${s}`);
  return [lo, hi];
}

function parsePrefix(text: string, s: string, max: number): number {
  if (!/^(0|[1-9][0-9]{0,2})$/.test(s)) fail(text, `not a prefix length: ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n > max) fail(text, `prefix length ${n} is longer than ${max} bits`);
  return n;
}

/** Whether any bit after `prefix` is set. */
function hostBitsSet(b: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < b.length * 8; bit++) if ((b[bit >>> 3]! >> (7 - (bit & 7))) & 1) return true;
  return false;
}

function masked(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let bit = 0; bit < prefix; bit++) out[bit >>> 3]! |= b[bit >>> 3]! & (0x80 >> (bit & 7));
  return out;
}

function isMapped(b: Uint8Array): boolean {
  if (b.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * Parses one rule (syntax in the module comment). Throws a RangeError with a one-line reason:
 * `policy rule "10.0.0.1/8": host bits set after /8 (the network is 10.0.0.0/8)`.
 */
export function parseRule(text: string, action: PolicyAction): PolicyRule {
  if (action !== 'allow' && action !== 'deny') throw new RangeError(`policy: action must be allow or deny, not ${JSON.stringify(action)}`);
  const t = text.trim();
  if (t === '') fail(text, 'empty rule');
  if (/\s/.test(t)) fail(text, 'no spaces inside a rule');
  let rest = t;
  let protocol: PolicyProtocol | null = null;
  const proto = /^(tcp|udp):/i.exec(rest);
  if (proto) {
    protocol = proto[1]!.toLowerCase() as PolicyProtocol;
    rest = rest.slice(proto[0].length);
    if (rest === '') fail(text, 'no address after the protocol');
  } else {
    // A word that cannot start an IPv6 address (it has a letter past f): a protocol we do not know.
    const word = /^([a-z]*[g-z][a-z]*):/i.exec(rest);
    if (word) fail(text, `unknown protocol ${JSON.stringify(word[1])} (tcp or udp)`);
  }
  let addressText: string;
  let prefixText: string | null = null;
  let portsText: string | null = null;
  let bracketed = false;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) fail(text, 'missing "]"');
    bracketed = true;
    const inside = rest.slice(1, close);
    let after = rest.slice(close + 1);
    const slash = inside.indexOf('/');
    addressText = slash < 0 ? inside : inside.slice(0, slash);
    if (slash >= 0) prefixText = inside.slice(slash + 1);
    if (after.startsWith('/')) {
      if (prefixText !== null) fail(text, 'two prefix lengths');
      const colon = after.indexOf(':');
      prefixText = colon < 0 ? after.slice(1) : after.slice(1, colon);
      after = colon < 0 ? '' : after.slice(colon);
    }
    if (after !== '') {
      if (!after.startsWith(':')) fail(text, `unexpected ${JSON.stringify(after)} after "]"`);
      portsText = after.slice(1);
    }
  } else if (rest === '*' || rest.startsWith('*:')) {
    addressText = '*';
    if (rest.length > 1) portsText = rest.slice(2);
  } else if (rest.indexOf(':') !== rest.lastIndexOf(':')) {
    // Two colons or more: an IPv6 CIDR without brackets, so without a port.
    const slash = rest.indexOf('/');
    addressText = slash < 0 ? rest : rest.slice(0, slash);
    if (slash >= 0) prefixText = rest.slice(slash + 1);
  } else {
    const colon = rest.indexOf(':');
    const cidr = colon < 0 ? rest : rest.slice(0, colon);
    if (colon >= 0) portsText = rest.slice(colon + 1);
    const slash = cidr.indexOf('/');
    addressText = slash < 0 ? cidr : cidr.slice(0, slash);
    if (slash >= 0) prefixText = cidr.slice(slash + 1);
  }
  const [portLow, portHigh] = parsePorts(text, portsText);
  const base = { action, text: t, protocol, portLow, portHigh, isDefault: false, reason: '' };
  if (addressText === '*') {
    if (prefixText !== null) fail(text, '"*" takes no prefix length');
    return { ...base, family: null, network: '*', prefix: 0 };
  }
  let address = parseAddress(addressText);
  if (address === null) fail(text, `not an IP address: ${JSON.stringify(addressText)}`);
  if (bracketed && address.length === 4) fail(text, 'brackets are for IPv6 addresses');
  let prefix = prefixText === null ? address.length * 8 : parsePrefix(text, prefixText, address.length * 8);
  if (hostBitsSet(address, prefix)) {
    fail(text, `host bits set after /${prefix} (the network is ${formatAddress(masked(address, prefix))}/${prefix})`);
  }
  // RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is a.b.c.d on the wire, and `check` treats it so.
  if (isMapped(address) && prefix >= 96) {
    address = address.slice(12);
    prefix -= 96;
  }
  return { ...base, family: address.length === 4 ? 4 : 6, network: formatAddress(address), prefix };
}

interface Compiled {
  readonly rule: PolicyRule;
  readonly proto: number; // 0 any, 1 tcp, 2 udp
  readonly lo: number;
  readonly hi: number;
  readonly net: Uint32Array; // 1 word for IPv4, 4 for IPv6
  readonly mask: Uint32Array;
  readonly slot: Slot;
}

/** What one rule decides and how often it refused: shared by its IPv4 and IPv6 forms (`*`). */
interface Slot {
  readonly decision: PolicyDecision;
  refusals: number;
}

function slotFor(rule: PolicyRule): Slot {
  const label = rule.isDefault ? `default-deny ${rule.text}` : `${rule.action} ${rule.text}`;
  return {
    decision: Object.freeze({
      allowed: rule.action === 'allow', rule: label, reason: rule.isDefault ? `${label}: ${rule.reason}` : label,
    }),
    refusals: 0,
  };
}

function words(b: Uint8Array, from: number, count: number): Uint32Array {
  const w = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const at = from + 4 * i;
    w[i] = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }
  return w;
}

function maskWords(prefix: number, count: number): Uint32Array {
  const m = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const bits = Math.max(0, Math.min(32, prefix - 32 * i));
    m[i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
  return m;
}

function compile(rule: PolicyRule, family: 4 | 6, slot: Slot): Compiled {
  const count = family === 4 ? 1 : 4;
  const b = rule.network === '*' ? new Uint8Array(count * 4) : parseAddress(rule.network)!;
  return {
    rule, proto: rule.protocol === null ? 0 : rule.protocol === 'tcp' ? 1 : 2, lo: rule.portLow, hi: rule.portHigh,
    net: words(b, 0, count), mask: maskWords(rule.prefix, count), slot,
  };
}

/** Precedence (module comment): negative when `a` is decided before `b`. */
function precedence(a: PolicyRule, b: PolicyRule): number {
  return (b.prefix - a.prefix)
    || ((a.portHigh - a.portLow) - (b.portHigh - b.portLow))
    || ((a.protocol === null ? 1 : 0) - (b.protocol === null ? 1 : 0))
    || ((a.isDefault ? 1 : 0) - (b.isDefault ? 1 : 0))
    || ((a.action === 'deny' ? 0 : 1) - (b.action === 'deny' ? 0 : 1));
}

const NO_MATCH: PolicyDecision = Object.freeze({ allowed: true, rule: 'default', reason: 'no rule matched: allowed' });
const INVALID: PolicyDecision = Object.freeze({ allowed: false, rule: 'invalid-address', reason: 'not an IP address' });
const INVALID_PORT: PolicyDecision = Object.freeze({ allowed: false, rule: 'invalid-port', reason: 'not a port (0-65535)' });

export interface PolicyCounters {
  /** Calls to `check`. */
  checked: number;
  allowed: number;
  refused: number;
}

export class Policy {
  readonly counters: PolicyCounters = { checked: 0, allowed: 0, refused: 0 };
  /** Every rule, in the order they are tried (precedence). */
  readonly rules: readonly PolicyRule[];
  readonly #v4: Compiled[];
  readonly #v6: Compiled[];
  readonly #slots: Slot[];
  #invalid = 0;
  #invalidPort = 0;
  /** Scratch for IPv6 words, so `check` does not allocate. */
  readonly #w = new Uint32Array(4);

  /** Throws a RangeError naming the first rule that does not parse. */
  constructor(options: PolicyOptions = {}) {
    const rules: PolicyRule[] = [];
    for (const t of options.deny ?? []) rules.push(parseRule(t, 'deny'));
    for (const t of options.allow ?? []) rules.push(parseRule(t, 'allow'));
    if (options.defaults ?? true) {
      for (const d of DEFAULT_DENY) rules.push({ ...parseRule(d.cidr, 'deny'), isDefault: true, reason: d.reason });
    }
    rules.sort(precedence);
    this.rules = Object.freeze(rules.map((r) => Object.freeze(r)));
    this.#v4 = [];
    this.#v6 = [];
    this.#slots = [];
    for (const r of this.rules) {
      const slot = slotFor(r);
      this.#slots.push(slot);
      if (r.family !== 6) this.#v4.push(compile(r, 4, slot));
      if (r.family !== 4) this.#v6.push(compile(r, 6, slot));
    }
  }

  /**
   * May the guest open `protocol` to `address`:`port`? `address` is text or 4/16 bytes. An address
   * that does not parse is refused ('invalid-address'), and so is a port that is not an integer in
   * 0..65535 ('invalid-port'); nothing is thrown.
   */
  check(address: string | Uint8Array, port: number, protocol: PolicyProtocol): PolicyDecision {
    this.counters.checked++;
    const b = typeof address === 'string' ? parseAddress(address) : address;
    let found: Compiled | null = null;
    if (b === null || (b.length !== 4 && b.length !== 16)) {
      this.counters.refused++;
      this.#invalid++;
      return INVALID;
    }
    // A port outside every range would match no rule and so be allowed: refuse it instead.
    if (!(port >= 0 && port <= 65535 && port === Math.floor(port))) {
      this.counters.refused++;
      this.#invalidPort++;
      return INVALID_PORT;
    }
    const proto = protocol === 'tcp' ? 1 : 2;
    if (b.length === 4 || isMapped(b)) {
      const at = b.length === 4 ? 0 : 12;
      const a = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      for (const r of this.#v4) {
        if (((a & r.mask[0]!) >>> 0) === r.net[0] && port >= r.lo && port <= r.hi && (r.proto === 0 || r.proto === proto)) {
          found = r;
          break;
        }
      }
    } else {
      const w = this.#w;
      for (let i = 0; i < 4; i++) {
        const at = 4 * i;
        w[i] = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      }
      for (const r of this.#v6) {
        const m = r.mask;
        const n = r.net;
        if (((w[0]! & m[0]!) >>> 0) === n[0] && ((w[1]! & m[1]!) >>> 0) === n[1] && ((w[2]! & m[2]!) >>> 0) === n[2]
          && ((w[3]! & m[3]!) >>> 0) === n[3] && port >= r.lo && port <= r.hi && (r.proto === 0 || r.proto === proto)) {
          found = r;
          break;
        }
      }
    }
    if (found === null) {
      this.counters.allowed++;
      return NO_MATCH;
    }
    const slot = found.slot;
    if (slot.decision.allowed) {
      this.counters.allowed++;
    } else {
      this.counters.refused++;
      slot.refusals++;
    }
    return slot.decision;
  }

  /** Refusals so far by the rule that decided ('deny 10.0.0.0/8', 'default-deny 169.254.169.254/32', …); rules with none are left out. */
  refusalsByRule(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { decision, refusals } of this.#slots) {
      // The same rule written twice has one label: add up.
      if (refusals > 0) out[decision.rule] = (out[decision.rule] ?? 0) + refusals;
    }
    if (this.#invalid > 0) out[INVALID.rule] = this.#invalid;
    if (this.#invalidPort > 0) out[INVALID_PORT.rule] = this.#invalidPort;
    return out;
  }
}
