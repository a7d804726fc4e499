/**
 * QEMU's port-forwarding rule, the one users of `-netdev user,hostfwd=…` already know (issue 15):
 *
 *   [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *
 * As QEMU's net/slirp.c `slirp_hostfwd` reads it: the protocol field may be empty (then tcp) but
 * its ':' may not; an empty HOSTADDR listens on every IPv4 interface (INADDR_ANY, '0.0.0.0'); an
 * empty GUESTADDR means the guest's own address (QEMU: the first DHCP address, 10.0.2.15 by
 * default), returned as null and chosen when a connection arrives. HOSTPORT 0 asks for any free
 * port (QEMU allows it since 6.1); GUESTPORT is 1–65535. Beyond QEMU, an IPv6 address may be given
 * in brackets on either side: `tcp:[::1]:8080-[fd00::15]:80`.
 *
 * Core: no Node built-ins.
 */
import { formatAddress, parseAddress } from '../wire/address.js';

export interface HostForwardSpec {
  protocol: 'tcp' | 'udp';
  /** Where the host listens, canonical text ('0.0.0.0' when the rule left it empty). */
  hostAddress: string;
  /** 0: any free port (the bound one is reported by the listener). */
  hostPort: number;
  /** The guest's address, canonical text; null: the guest's own (DHCP) address at connect time. */
  guestAddress: string | null;
  guestPort: number;
}

/** Splits `ADDR:` off the front of `s` (ADDR possibly bracketed, possibly empty). */
function takeAddress(s: string, side: string, rule: string): { address: string | null; rest: string } {
  let text: string;
  let rest: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: ${side} address has '[' without ']'`);
    text = s.slice(1, close);
    rest = s.slice(close + 1);
    if (!rest.startsWith(':')) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: expected ':' after the ${side} address`);
    const b = parseAddress(text);
    if (b === null || b.length !== 16) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: bad IPv6 ${side} address ${JSON.stringify(text)}`);
    return { address: formatAddress(b), rest: rest.slice(1) };
  }
  const colon = s.indexOf(':');
  if (colon < 0) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: expected ${side === 'host' ? 'HOSTADDR:HOSTPORT' : 'GUESTADDR:GUESTPORT'}`);
  text = s.slice(0, colon);
  rest = s.slice(colon + 1);
  if (text === '') return { address: null, rest };
  const b = parseAddress(text);
  if (b === null || b.length !== 4) {
    throw new RangeError(`hostfwd ${JSON.stringify(rule)}: bad ${side} address ${JSON.stringify(text)} (IPv4, or IPv6 in brackets)`);
  }
  return { address: formatAddress(b), rest };
}

function port(text: string, side: string, rule: string, zeroOk: boolean): number {
  if (!/^\d{1,5}$/.test(text)) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: bad ${side} port ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !zeroOk)) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: ${side} port ${n} out of range (${zeroOk ? 0 : 1}-65535)`);
  return n;
}

/** Parses one rule; throws RangeError with a one-line reason. */
export function parseHostForward(rule: string): HostForwardSpec {
  const s = rule.trim();
  const colon = s.indexOf(':');
  if (colon < 0) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`);
  const proto = s.slice(0, colon).toLowerCase();
  if (proto !== '' && proto !== 'tcp' && proto !== 'udp') {
    throw new RangeError(`hostfwd ${JSON.stringify(rule)}: protocol must be tcp or udp (got ${JSON.stringify(proto)})`);
  }
  const host = takeAddress(s.slice(colon + 1), 'host', rule);
  const dash = host.rest.indexOf('-');
  if (dash < 0) throw new RangeError(`hostfwd ${JSON.stringify(rule)}: expected '-' between the host and guest sides`);
  const hostPort = port(host.rest.slice(0, dash), 'host', rule, true);
  const guest = takeAddress(host.rest.slice(dash + 1), 'guest', rule);
  const guestPort = port(guest.rest, 'guest', rule, false);
  return {
    protocol: proto === 'udp' ? 'udp' : 'tcp',
    hostAddress: host.address ?? '0.0.0.0',
    hostPort,
    guestAddress: guest.address,
    guestPort,
  };
}

/** The rule back in QEMU's syntax (canonical addresses, IPv6 in brackets). */
export function formatHostForward(spec: HostForwardSpec): string {
  const a = (s: string | null): string => (s === null ? '' : s.includes(':') ? `[${s}]` : s);
  return `${spec.protocol}:${a(spec.hostAddress)}:${spec.hostPort}-${a(spec.guestAddress)}:${spec.guestPort}`;
}
