/**
 * The stack's own addresses and default routers. They change while the stack runs (a DHCP client
 * adds its lease, SLAAC or a user adds more), so every layer reads this one table.
 * @internal
 */
import { TcpError } from '../tcp/user.js';
import { addressEquals, formatAddress, inPrefix, parseAddress, parseCidr } from '../wire/address.js';

export interface LocalAddress {
  text: string;
  bytes: Uint8Array;
  prefix: number;
  version: 4 | 6;
}

/** fe80::/10 (RFC 4291 §2.5.6). */
export function isLinkLocal6(a: Uint8Array): boolean {
  return a.length === 16 && a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

/** 255.255.255.255, the limited broadcast (RFC 919, RFC 1122 §3.2.1.3 (c)). */
export function isLimitedBroadcast(a: Uint8Array): boolean {
  return a.length === 4 && a[0] === 255 && a[1] === 255 && a[2] === 255 && a[3] === 255;
}

/** Broadcast or multicast: never the source of a segment or datagram, never answered with an error. */
export function isMulticastOrBroadcast(a: Uint8Array): boolean {
  if (a.length === 4) return a[0]! >= 224;
  return a[0] === 0xff;
}

/**
 * Loopback or unspecified: 127.0.0.0/8, 0.0.0.0 (RFC 1122 §3.2.1.3), ::1, :: (RFC 4291 §2.5.2-3).
 * Never a valid source from a link; a gateway must not relay such a packet for anyone.
 */
export function isLoopbackOrUnspecified(a: Uint8Array): boolean {
  if (a.length === 4) return a[0] === 127 || (a[0] === 0 && a[1] === 0 && a[2] === 0 && a[3] === 0);
  for (let i = 0; i < 15; i++) if (a[i] !== 0) return false;
  return a[15] === 0 || a[15] === 1;
}

export class AddressTable {
  /** In the order added; read on every packet (isLocal). */
  readonly list: LocalAddress[] = [];
  private texts: readonly string[] = [];
  private readonly routers: [Uint8Array | null, Uint8Array | null] = [null, null];

  /** Addresses as text, in the order added (a new array after each change). */
  get addresses(): readonly string[] {
    return this.texts;
  }

  /** Adds "address/prefix"; throws EINVAL for a bad one, EADDRINUSE when the address is there already. */
  add(cidr: string): LocalAddress {
    const parsed = typeof cidr === 'string' ? parseCidr(cidr) : null;
    if (parsed === null) throw new TcpError('EINVAL', `bad address ${JSON.stringify(cidr)}: expected e.g. 10.0.0.1/24 or fd00::1/64`);
    if (this.find(parsed.address) !== undefined) {
      throw new TcpError('EADDRINUSE', `${formatAddress(parsed.address)} is already an address of this stack`);
    }
    const version = parsed.address.length === 4 ? 4 : 6;
    const a: LocalAddress = { text: formatAddress(parsed.address), bytes: parsed.address, prefix: parsed.prefix, version };
    this.list.push(a);
    this.texts = this.list.map((x) => x.text);
    return a;
  }

  /** Removes an address (with or without its /prefix); false when it is not one of ours. */
  remove(address: string): boolean {
    const slash = address.indexOf('/');
    const bytes = parseAddress(slash < 0 ? address : address.slice(0, slash));
    if (bytes === null) throw new TcpError('EINVAL', `not an IP address: ${JSON.stringify(address)}`);
    const i = this.list.findIndex((a) => addressEquals(a.bytes, bytes));
    if (i < 0) return false;
    this.list.splice(i, 1);
    this.texts = this.list.map((x) => x.text);
    return true;
  }

  find(addr: Uint8Array): LocalAddress | undefined {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (addressEquals(list[i]!.bytes, addr)) return list[i];
    return undefined;
  }

  isLocal(addr: Uint8Array): boolean {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (addressEquals(list[i]!.bytes, addr)) return true;
    return false;
  }

  /**
   * 255.255.255.255, or the directed broadcast of one of our IPv4 subnets (host bits all ones,
   * RFC 1122 §3.2.1.3 (d); not for /31 and /32, which have no broadcast address, RFC 3021).
   */
  isBroadcast(addr: Uint8Array): boolean {
    if (addr.length !== 4) return false;
    if (isLimitedBroadcast(addr)) return true;
    for (const a of this.list) {
      if (a.version !== 4 || a.prefix > 30 || !inPrefix(addr, a.bytes, a.prefix)) continue;
      if (hostBitsAllOnes(addr, a.prefix)) return true;
    }
    return false;
  }

  /**
   * The source address for a packet to `remote` (RFC 6724 §5, much reduced): same family; one whose
   * prefix holds the destination; for IPv6, a link-local source only for a link-local destination
   * (or when there is nothing else); else the first of the family.
   */
  source(remote: Uint8Array): LocalAddress | undefined {
    const v = remote.length === 4 ? 4 : 6;
    let first: LocalAddress | undefined;
    let fallback: LocalAddress | undefined;
    const wantLinkLocal = isLinkLocal6(remote);
    for (const a of this.list) {
      if (a.version !== v) continue;
      if (inPrefix(remote, a.bytes, a.prefix) && (v === 4 || isLinkLocal6(a.bytes) === wantLinkLocal)) return a;
      if (v === 6 && isLinkLocal6(a.bytes) !== wantLinkLocal) fallback ??= a;
      else first ??= a;
    }
    return first ?? fallback;
  }

  router(version: 4 | 6): Uint8Array | null {
    return this.routers[version === 4 ? 0 : 1];
  }

  setRouter(address: string | null, version: 4 | 6): void {
    if (version !== 4 && version !== 6) throw new TcpError('EINVAL', `bad IP version ${String(version)}: expected 4 or 6`);
    if (address === null) {
      this.routers[version === 4 ? 0 : 1] = null;
      return;
    }
    const bytes = parseAddress(address);
    if (bytes === null || (bytes.length === 4 ? 4 : 6) !== version) {
      throw new TcpError('EINVAL', `bad IPv${version} router address ${JSON.stringify(address)}`);
    }
    this.routers[version === 4 ? 0 : 1] = bytes;
  }
}

function hostBitsAllOnes(addr: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < 32; bit++) {
    if (((addr[bit >>> 3]! >>> (7 - (bit & 7))) & 1) === 0) return false;
  }
  return true;
}
