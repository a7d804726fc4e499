/**
 * DHCPv4 message codec (RFC 2131 §2, options RFC 2132, long options RFC 3396).
 *
 *   0                   1                   2                   3
 *   |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
 *   |                            xid (4)                            |
 *   |           secs (2)            |           flags (2)           |
 *   |                          ciaddr  (4)                          |
 *   |                          yiaddr  (4)                          |
 *   |                          siaddr  (4)                          |
 *   |                          giaddr  (4)                          |
 *   |                          chaddr  (16)                         |
 *   |                          sname   (64)                         |
 *   |                          file    (128)                        |
 *   |          magic cookie 99.130.83.99 (4), then options          |
 *
 * The parser never throws: a message it cannot read whole is a `DhcpDropReason`. The options a
 * server and a client act on are typed (`DhcpOptions`); the rest are kept raw in wire order.
 * Addresses are dotted quads, as the services that use this codec configure and log them.
 */
import { formatAddress, parseAddress } from './address.js';

/** Why a DHCP message was not accepted. */
export type DhcpDropReason =
  /** Shorter than the 236-byte fixed part plus the 4-byte magic cookie. */
  | 'dhcp-truncated'
  /** op is neither BOOTREQUEST (1) nor BOOTREPLY (2). */
  | 'dhcp-bad-op'
  /** hlen larger than the 16-byte chaddr field. */
  | 'dhcp-bad-hlen'
  /** The options area does not start with 99.130.83.99 (RFC 2131 §3, RFC 1497): not DHCP. */
  | 'dhcp-bad-cookie'
  /** An option's length runs past the end of the field that holds it. */
  | 'dhcp-option-overrun'
  /** A known option whose (concatenated) length is not what RFC 2132 defines for it. */
  | 'dhcp-bad-option'
  /** Option overload (52) with a bad value, or found inside sname/file (a loop). */
  | 'dhcp-bad-overload';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
/** RFC 2131 §2: op. */
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 §2 flags: the only defined bit; the client cannot receive unicast before configuration. */
export const DHCP_FLAG_BROADCAST = 0x8000;
/** Fixed fields before the magic cookie. */
export const DHCP_FIXED_LENGTH = 236;
/** RFC 1542 §3.4 / RFC 951: a BOOTP message is at least 300 bytes; some relays drop shorter ones. */
export const BOOTP_MIN_LENGTH = 300;
const MAGIC_COOKIE = [99, 130, 83, 99] as const;
const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;

/** RFC 2132 §9.6 DHCP message types (option 53). */
export const DhcpType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type DhcpTypeName = keyof typeof DhcpType;

const TYPE_NAMES: readonly string[] = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];

/** "DISCOVER" for 1, … ; "type 9" for types this codec has no name for; "BOOTP" without option 53. */
export function dhcpTypeName(type: number | undefined): string {
  if (type === undefined) return 'BOOTP';
  return TYPE_NAMES[type] || `type ${type}`;
}

/** RFC 2132 option codes this codec types. */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST_ADDRESS: 28,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

/** The options a DHCP server and client act on (RFC 2132 section numbers in brackets). */
export interface DhcpOptions {
  /** 53 [9.6]: DhcpType.*; absent in a plain BOOTP message. */
  messageType?: number;
  /** 1 [3.3]. */
  subnetMask?: string;
  /** 3 [3.5], in order of preference. */
  routers?: string[];
  /** 6 [3.8], in order of preference. */
  dnsServers?: string[];
  /** 12 [3.14] (UTF-8; a trailing NUL some clients add is dropped). */
  hostname?: string;
  /** 15 [3.17]. */
  domainName?: string;
  /** 26 [5.1]. */
  interfaceMtu?: number;
  /** 28 [5.3]. */
  broadcastAddress?: string;
  /** 50 [9.1]. */
  requestedIp?: string;
  /** 51 [9.2], seconds; 0xffffffff is infinite. */
  leaseTime?: number;
  /** 54 [9.7]. */
  serverId?: string;
  /** 55 [9.8]: option codes, in the client's order of preference. */
  parameterRequestList?: number[];
  /** 56 [9.9]: an error message (NAK) or why a client declined. */
  message?: string;
  /** 57 [9.10]: the largest DHCP message the client accepts. */
  maxMessageSize?: number;
  /** 58 [9.11] T1, seconds. */
  renewalTime?: number;
  /** 59 [9.12] T2, seconds. */
  rebindingTime?: number;
  /** 61 [9.14]: usually type 1 (Ethernet) + MAC, or RFC 4361's type 255 + IAID + DUID. */
  clientId?: Uint8Array;
}

/** An option this codec does not type: its code and data (instances concatenated, RFC 3396). */
export interface DhcpRawOption {
  code: number;
  data: Uint8Array;
}

export interface DhcpMessage {
  /** BOOTREQUEST (1) or BOOTREPLY (2). */
  op: number;
  /** Hardware type (1 = Ethernet) and address length (6). */
  htype: number;
  hlen: number;
  hops: number;
  /** Transaction id, chosen by the client (unsigned 32-bit). */
  xid: number;
  /** Seconds since the client began acquiring or renewing. */
  secs: number;
  /** DHCP_FLAG_BROADCAST or 0 (other bits are reserved and kept as found). */
  flags: number;
  /** Client's address when it has one (BOUND, RENEWING, REBINDING, INFORM). */
  ciaddr: string;
  /** "Your" address: what the server assigns. */
  yiaddr: string;
  /** Next server (for booting). */
  siaddr: string;
  /** Relay agent. */
  giaddr: string;
  /** Client hardware address: hlen bytes. */
  chaddr: Uint8Array;
  /** Server host name and boot file name: empty when they carry options (overload, option 52). */
  sname: string;
  file: string;
  options: DhcpOptions;
  /** Options not in `options`, in the order first seen. */
  rawOptions: DhcpRawOption[];
}

/** A message with everything zero and no options: a base for building one. */
export function emptyDhcpMessage(op: number = BOOTREQUEST): DhcpMessage {
  return {
    op, htype: 1, hlen: 6, hops: 0, xid: 0, secs: 0, flags: 0,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: new Uint8Array(6), sname: '', file: '', options: {}, rawOptions: [],
  };
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function u16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function ip(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Text up to the first NUL (sname/file are NUL-terminated; options should not be, RFC 2132 §2). */
function text(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return decoder.decode(nul < 0 ? b : b.subarray(0, nul));
}

/**
 * Walks one options field, appending each option's data to `found` (RFC 3396: instances of one code
 * are concatenated, in the order of the fields — options, file, sname — and within each). Pad is
 * skipped, End stops; a field that ends without End is accepted when no option is cut short.
 */
function walk(
  b: Uint8Array, start: number, end: number, found: Map<number, Uint8Array[]>, inOverloadField: boolean,
): DhcpDropReason | null {
  let i = start;
  while (i < end) {
    const code = b[i];
    if (code === DhcpOption.PAD) {
      i++;
      continue;
    }
    if (code === DhcpOption.END) return null;
    if (i + 1 >= end) return 'dhcp-option-overrun';
    const len = b[i + 1];
    if (i + 2 + len > end) return 'dhcp-option-overrun';
    // RFC 2132 §9.3: option 52 belongs in the options field only; in sname/file it would point at
    // fields already being read as options.
    if (code === DhcpOption.OVERLOAD && inOverloadField) return 'dhcp-bad-overload';
    const list = found.get(code);
    const data = b.subarray(i + 2, i + 2 + len);
    if (list === undefined) found.set(code, [data]);
    else list.push(data);
    i += 2 + len;
  }
  return null;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0].slice();
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function addresses(d: Uint8Array): string[] | null {
  if (d.length === 0 || d.length % 4 !== 0) return null;
  const out: string[] = [];
  for (let i = 0; i < d.length; i += 4) out.push(ip(d, i));
  return out;
}

/**
 * Reads one known option into `o`. Returns false when its length is wrong for its kind (a fixed-size
 * option of another size, an address list that is not whole addresses).
 */
function typeOption(o: DhcpOptions, code: number, d: Uint8Array): boolean {
  switch (code) {
    case DhcpOption.SUBNET_MASK:
      if (d.length !== 4) return false;
      o.subnetMask = ip(d, 0);
      return true;
    case DhcpOption.ROUTER: {
      const a = addresses(d);
      if (a === null) return false;
      o.routers = a;
      return true;
    }
    case DhcpOption.DNS: {
      const a = addresses(d);
      if (a === null) return false;
      o.dnsServers = a;
      return true;
    }
    case DhcpOption.HOSTNAME:
      o.hostname = optionText(d);
      return true;
    case DhcpOption.DOMAIN_NAME:
      o.domainName = optionText(d);
      return true;
    case DhcpOption.INTERFACE_MTU:
      if (d.length !== 2) return false;
      o.interfaceMtu = u16(d, 0);
      return true;
    case DhcpOption.BROADCAST_ADDRESS:
      if (d.length !== 4) return false;
      o.broadcastAddress = ip(d, 0);
      return true;
    case DhcpOption.REQUESTED_IP:
      if (d.length !== 4) return false;
      o.requestedIp = ip(d, 0);
      return true;
    case DhcpOption.LEASE_TIME:
      if (d.length !== 4) return false;
      o.leaseTime = u32(d, 0);
      return true;
    case DhcpOption.MESSAGE_TYPE:
      if (d.length !== 1) return false;
      o.messageType = d[0];
      return true;
    case DhcpOption.SERVER_ID:
      if (d.length !== 4) return false;
      o.serverId = ip(d, 0);
      return true;
    case DhcpOption.PARAMETER_REQUEST_LIST:
      o.parameterRequestList = Array.from(d);
      return true;
    case DhcpOption.MESSAGE:
      o.message = optionText(d);
      return true;
    case DhcpOption.MAX_MESSAGE_SIZE:
      if (d.length !== 2) return false;
      o.maxMessageSize = u16(d, 0);
      return true;
    case DhcpOption.RENEWAL_TIME:
      if (d.length !== 4) return false;
      o.renewalTime = u32(d, 0);
      return true;
    case DhcpOption.REBINDING_TIME:
      if (d.length !== 4) return false;
      o.rebindingTime = u32(d, 0);
      return true;
    case DhcpOption.CLIENT_ID:
      o.clientId = d;
      return true;
    default:
      return false;
  }
}

/** Option text: UTF-8 without the trailing NULs some clients (Windows, old dhcpcd) append. */
function optionText(d: Uint8Array): string {
  let n = d.length;
  while (n > 0 && d[n - 1] === 0) n--;
  return decoder.decode(d.subarray(0, n));
}

const TYPED = new Set<number>([
  DhcpOption.SUBNET_MASK, DhcpOption.ROUTER, DhcpOption.DNS, DhcpOption.HOSTNAME, DhcpOption.DOMAIN_NAME,
  DhcpOption.INTERFACE_MTU, DhcpOption.BROADCAST_ADDRESS, DhcpOption.REQUESTED_IP, DhcpOption.LEASE_TIME,
  DhcpOption.MESSAGE_TYPE, DhcpOption.SERVER_ID, DhcpOption.PARAMETER_REQUEST_LIST, DhcpOption.MESSAGE,
  DhcpOption.MAX_MESSAGE_SIZE, DhcpOption.RENEWAL_TIME, DhcpOption.REBINDING_TIME, DhcpOption.CLIENT_ID,
]);

/**
 * Parses a DHCP (or BOOTP) message: the UDP payload. Never throws. Trailing bytes after End
 * (padding to 300 bytes, link padding) are ignored.
 */
export function parseDhcp(b: Uint8Array): DhcpMessage | DhcpDropReason {
  if (b.length < DHCP_FIXED_LENGTH + 4) return 'dhcp-truncated';
  const op = b[0];
  if (op !== BOOTREQUEST && op !== BOOTREPLY) return 'dhcp-bad-op';
  const hlen = b[2];
  if (hlen > 16) return 'dhcp-bad-hlen';
  for (let i = 0; i < 4; i++) if (b[DHCP_FIXED_LENGTH + i] !== MAGIC_COOKIE[i]) return 'dhcp-bad-cookie';

  const found = new Map<number, Uint8Array[]>();
  const bad = walk(b, DHCP_FIXED_LENGTH + 4, b.length, found, false);
  if (bad !== null) return bad;
  // RFC 2132 §9.3 option overload: 1 = file holds options, 2 = sname, 3 = both. RFC 3396 §5 orders
  // the aggregate buffer options, file, sname.
  let overload = 0;
  const ov = found.get(DhcpOption.OVERLOAD);
  if (ov !== undefined) {
    const d = concat(ov);
    if (d.length !== 1 || d[0] < 1 || d[0] > 3) return 'dhcp-bad-overload';
    overload = d[0];
    found.delete(DhcpOption.OVERLOAD);
    if (overload & 1) {
      const r = walk(b, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, found, true);
      if (r !== null) return r;
    }
    if (overload & 2) {
      const r = walk(b, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, found, true);
      if (r !== null) return r;
    }
  }

  const options: DhcpOptions = {};
  const rawOptions: DhcpRawOption[] = [];
  for (const [code, parts] of found) {
    const data = concat(parts);
    if (TYPED.has(code)) {
      if (!typeOption(options, code, data)) return 'dhcp-bad-option';
    } else {
      rawOptions.push({ code, data });
    }
  }

  return {
    op,
    htype: b[1],
    hlen,
    hops: b[3],
    xid: u32(b, 4),
    secs: u16(b, 8),
    flags: u16(b, 10),
    ciaddr: ip(b, 12),
    yiaddr: ip(b, 16),
    siaddr: ip(b, 20),
    giaddr: ip(b, 24),
    chaddr: b.slice(28, 28 + hlen),
    sname: overload & 2 ? '' : text(b.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH)),
    file: overload & 1 ? '' : text(b.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH)),
    options,
    rawOptions,
  };
}

// ------------------------------------------------------------------------------------------- write

function ipBytes(s: string, what: string): Uint8Array {
  const a = parseAddress(s);
  if (a === null || a.length !== 4) throw new TypeError(`DHCP ${what}: not an IPv4 address: ${s}`);
  return a;
}

function addressList(list: readonly string[], what: string): Uint8Array {
  const out = new Uint8Array(4 * list.length);
  list.forEach((a, i) => out.set(ipBytes(a, what), 4 * i));
  return out;
}

function be(n: number, size: 2 | 4): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (n >>> (8 * (size - 1 - i))) & 0xff;
  return out;
}

/**
 * The typed options as (code, data) in the order written: message type first (RFC 2131 §4.1 does
 * not require it, but dhclient, udhcpc and dnsmasq all put it there and some relays look only
 * there), then by code.
 */
export function dhcpOptionList(o: DhcpOptions): DhcpRawOption[] {
  const out: DhcpRawOption[] = [];
  const add = (code: number, data: Uint8Array | undefined): void => {
    if (data !== undefined) out.push({ code, data });
  };
  const list = (a: readonly string[] | undefined, what: string): Uint8Array | undefined =>
    a !== undefined && a.length > 0 ? addressList(a, what) : undefined;
  const one = (a: string | undefined, what: string): Uint8Array | undefined =>
    a !== undefined ? ipBytes(a, what) : undefined;
  const str = (s: string | undefined): Uint8Array | undefined => (s !== undefined ? encoder.encode(s) : undefined);
  const n = (v: number | undefined, size: 2 | 4): Uint8Array | undefined => (v !== undefined ? be(v, size) : undefined);
  add(DhcpOption.MESSAGE_TYPE, o.messageType !== undefined ? Uint8Array.of(o.messageType) : undefined);
  add(DhcpOption.SUBNET_MASK, one(o.subnetMask, 'subnet mask'));
  add(DhcpOption.ROUTER, list(o.routers, 'router'));
  add(DhcpOption.DNS, list(o.dnsServers, 'DNS server'));
  add(DhcpOption.HOSTNAME, str(o.hostname));
  add(DhcpOption.DOMAIN_NAME, str(o.domainName));
  add(DhcpOption.INTERFACE_MTU, n(o.interfaceMtu, 2));
  add(DhcpOption.BROADCAST_ADDRESS, one(o.broadcastAddress, 'broadcast address'));
  add(DhcpOption.REQUESTED_IP, one(o.requestedIp, 'requested address'));
  add(DhcpOption.LEASE_TIME, n(o.leaseTime, 4));
  add(DhcpOption.SERVER_ID, one(o.serverId, 'server id'));
  add(DhcpOption.PARAMETER_REQUEST_LIST, o.parameterRequestList !== undefined ? Uint8Array.from(o.parameterRequestList) : undefined);
  add(DhcpOption.MESSAGE, str(o.message));
  add(DhcpOption.MAX_MESSAGE_SIZE, n(o.maxMessageSize, 2));
  add(DhcpOption.RENEWAL_TIME, n(o.renewalTime, 4));
  add(DhcpOption.REBINDING_TIME, n(o.rebindingTime, 4));
  add(DhcpOption.CLIENT_ID, o.clientId);
  return out;
}

/** Bytes one option takes on the wire: split into instances of at most 255 (RFC 3396 §7). */
function optionWireLength(len: number): number {
  return len === 0 ? 2 : len + 2 * Math.ceil(len / 255);
}

function putOption(out: Uint8Array, at: number, code: number, data: Uint8Array): number {
  let off = 0;
  do {
    const n = Math.min(255, data.length - off);
    out[at] = code;
    out[at + 1] = n;
    out.set(data.subarray(off, off + n), at + 2);
    at += 2 + n;
    off += n;
  } while (off < data.length);
  return at;
}

function putText(out: Uint8Array, at: number, size: number, s: string, what: string): void {
  const t = encoder.encode(s);
  // The field is NUL-terminated: one byte is kept for the NUL.
  if (t.length >= size) throw new RangeError(`DHCP ${what}: ${t.length} bytes do not fit in ${size - 1}`);
  out.set(t, at);
}

/**
 * Writes a message: the fixed fields, the cookie, the options (typed ones, then `rawOptions`), End,
 * and zero padding to the BOOTP minimum of 300 bytes. Option codes 0, 52 and 255 in `rawOptions`
 * are not written (pad, overload and end are the codec's business). Throws on a malformed field
 * (an address that is not an IPv4 address, chaddr longer than 16): the caller's bug, not the peer's.
 *
 * `order`, a client's parameter request list: RFC 2132 §9.8 says a server "MUST try to insert the
 * requested options in the order requested by the client", so the typed options it names come
 * right after the message type, in its order, and the others follow.
 */
export function writeDhcp(m: DhcpMessage, order?: readonly number[]): Uint8Array {
  let opts = dhcpOptionList(m.options);
  if (order !== undefined && order.length > 0) {
    const rank = (code: number): number => {
      if (code === DhcpOption.MESSAGE_TYPE) return -1;
      const i = order.indexOf(code);
      return i < 0 ? order.length : i;
    };
    // Array.prototype.sort is stable: the options the list does not name keep their code order.
    opts = opts.sort((a, b) => rank(a.code) - rank(b.code));
  }
  for (const r of m.rawOptions) {
    if (r.code === DhcpOption.PAD || r.code === DhcpOption.OVERLOAD || r.code === DhcpOption.END) continue;
    opts.push(r);
  }
  let optionsLength = 0;
  for (const o of opts) optionsLength += optionWireLength(o.data.length);
  const length = Math.max(BOOTP_MIN_LENGTH, DHCP_FIXED_LENGTH + 4 + optionsLength + 1);
  const out = new Uint8Array(length);
  const dv = new DataView(out.buffer);
  out[0] = m.op;
  out[1] = m.htype;
  if (m.chaddr.length > 16) throw new RangeError(`DHCP chaddr: ${m.chaddr.length} bytes, at most 16`);
  out[2] = m.hlen;
  out[3] = m.hops;
  dv.setUint32(4, m.xid >>> 0);
  dv.setUint16(8, m.secs);
  dv.setUint16(10, m.flags);
  out.set(ipBytes(m.ciaddr, 'ciaddr'), 12);
  out.set(ipBytes(m.yiaddr, 'yiaddr'), 16);
  out.set(ipBytes(m.siaddr, 'siaddr'), 20);
  out.set(ipBytes(m.giaddr, 'giaddr'), 24);
  out.set(m.chaddr, 28);
  putText(out, SNAME_OFFSET, SNAME_LENGTH, m.sname, 'sname');
  putText(out, FILE_OFFSET, FILE_LENGTH, m.file, 'file');
  out.set(MAGIC_COOKIE, DHCP_FIXED_LENGTH);
  let at = DHCP_FIXED_LENGTH + 4;
  for (const o of opts) at = putOption(out, at, o.code, o.data);
  out[at] = DhcpOption.END;
  return out;
}

/** A MAC as "52:54:00:12:34:56" (chaddr's first hlen bytes). */
export function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The prefix length of a contiguous netmask ("255.255.255.0" → 24), or null if not contiguous. */
export function maskToPrefix(mask: string): number | null {
  const a = parseAddress(mask);
  if (a === null || a.length !== 4) return null;
  const n = ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
  const inv = ~n >>> 0;
  if ((inv & (inv + 1)) !== 0) return null;
  return 32 - Math.log2(inv + 1);
}

/** The netmask for a prefix length (24 → "255.255.255.0"). */
export function prefixToMask(prefix: number): string {
  const n = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return formatAddress(be(n, 4));
}
