/**
 * IP addresses as bytes: 4 for IPv4, 16 for IPv6. Parsing is strict (what `node:net` `isIP`
 * accepts, minus zone ids), formatting is canonical (RFC 5952 for IPv6) so that one address always
 * prints the same way in traces and JSON.
 */

function parseIpv4Into(s: string, out: Uint8Array, at: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    // Decimal only, no leading zeros: "010" is octal to inet_aton, so it is refused, not guessed.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const v = Number(p);
    if (v > 255) return false;
    out[at + i] = v;
  }
  return true;
}

/** Parses a colon-separated run of 1..4-digit hex groups (possibly empty) into 16-bit words. */
function parseGroups(s: string): number[] | null {
  if (s === '') return [];
  const groups = s.split(':');
  const words: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    words.push(parseInt(g, 16));
  }
  return words;
}

function parseIpv6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  // An embedded dotted quad (RFC 4291 §2.2 form 3) fills the last 32 bits.
  let tailBytes: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  if (s.indexOf('.', lastColon) >= 0) {
    tailBytes = new Uint8Array(4);
    if (!parseIpv4Into(s.slice(lastColon + 1), tailBytes, 0)) return null;
    // Keep the colon before the quad as the end of the hex part ("::1.2.3.4" -> "::").
    s = s.slice(0, lastColon + 1);
    if (s.endsWith('::')) {
      // fine: "::" directly before the quad
    } else if (s.endsWith(':')) {
      s = s.slice(0, -1);
    }
  }
  const wordsAvailable = tailBytes ? 6 : 8;
  const dbl = s.indexOf('::');
  let words: number[];
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return null;
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail) return null;
    // RFC 4291 §2.2: "::" stands for one or more groups of zeros.
    const missing = wordsAvailable - head.length - tail.length;
    if (missing < 1) return null;
    words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== wordsAvailable) return null;
    words = all;
  }
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = words[i] >>> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  if (tailBytes) out.set(tailBytes, 12);
  return out;
}

/**
 * Parses a dotted quad into 4 bytes or an IPv6 address (with "::" compression and an optional
 * embedded dotted quad such as "::ffff:1.2.3.4") into 16 bytes. Returns null when invalid.
 */
export function parseAddress(s: string): Uint8Array | null {
  if (s.includes(':')) return parseIpv6(s);
  const out = new Uint8Array(4);
  return parseIpv4Into(s, out, 0) ? out : null;
}

function formatIpv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * Formats 4 bytes as a dotted quad and 16 bytes in RFC 5952 canonical form: lowercase hex without
 * leading zeros (§4.1, §4.3), the longest run of two or more zero groups shortened to "::", the
 * first one on a tie (§4.2), and IPv4-mapped addresses with a dotted quad (§5).
 */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return formatIpv4(b, 0);
  if (b.length !== 16) return `<${b.length}-byte address>`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  // RFC 5952 §5: ::ffff:0:0/96 (IPv4-mapped, RFC 4291 §2.5.5.2) is written with a dotted quad.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 &&
    words[5] === 0xffff) {
    return `::ffff:${formatIpv4(b, 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never shortened (§4.2.2)
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/**
 * Parses "address/prefix" (prefix defaults to the full length: 32 or 128). The address is returned
 * as written, host bits included, since a stack's own address is given this way ("10.0.0.1/24").
 */
export function parseCidr(s: string): { address: Uint8Array; prefix: number } | null {
  const slash = s.indexOf('/');
  const address = parseAddress(slash < 0 ? s : s.slice(0, slash));
  if (!address) return null;
  const max = address.length * 8;
  if (slash < 0) return { address, prefix: max };
  const p = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > max) return null;
  return { address, prefix };
}

/** Whether the first `prefix` bits of `addr` equal those of `net` (same family only). */
export function inPrefix(addr: Uint8Array, net: Uint8Array, prefix: number): boolean {
  if (addr.length !== net.length || prefix < 0 || prefix > addr.length * 8) return false;
  const whole = prefix >>> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== net[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (addr[whole] & mask) === (net[whole] & mask);
}

/** Byte-wise equality; addresses of different families are never equal. */
export function addressEquals(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * `address:port`, an IPv6 address in brackets so the port's colon cannot be read as part of it
 * (RFC 3986 §3.2.2): `10.0.2.15:40000`, `[fd00::2]:53`. The address is text, as formatAddress writes it.
 */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
