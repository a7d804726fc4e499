/**
 * DNS messages (RFC 1035 §4): header, questions and resource records with name compression on write
 * and pointer following on read (§4.1.4), the EDNS0 OPT pseudo-RR (RFC 6891 §6), and typed rdata for
 * A, AAAA, NS, CNAME, PTR, MX, TXT, SRV (RFC 2782) and SOA; any other type keeps its rdata as bytes
 * (RFC 3597). Written here rather than taken from npm: `dns-packet`, the well-kept one, needs Node's
 * Buffer, and the core runs in a browser without polyfills.
 *
 * Names are strings in presentation form without the final dot ('' is the root): a label byte that
 * is '.', '\' or not printable ASCII is written `\DDD` (or `\.`/`\\`), as dig prints them (RFC 4343
 * §2.1), so every wire name has exactly one string and back. Names compare case-insensitively in
 * ASCII only (RFC 4343 §3): use `dnsNameEquals` / `dnsNameKey`.
 *
 * `parseDns` never throws: what cannot be a DNS message is a `DnsDropReason`. Each reason bounds
 * something an attacker controls: counts that the remaining bytes cannot hold (so no huge arrays),
 * compression pointers that do not go strictly backwards (so no loops) and more hops than a name can
 * have labels, names over 255 bytes or labels over 63 (RFC 1035 §2.3.4), rdata that overruns its
 * RDLENGTH or does not fill it. `writeDns` throws a RangeError for a message it cannot express
 * (a bad name, a field out of range): that is the caller's bug, not input from the network.
 */
import { formatAddress, parseAddress } from './address.js';

export type DnsDropReason =
  /** Shorter than its header or a record it announces. */
  | 'dns-truncated'
  /** QDCOUNT+ANCOUNT+NSCOUNT+ARCOUNT more than the remaining bytes could hold (each RR ≥ 11 bytes). */
  | 'dns-bad-count'
  /** A label type 01 or 10 (RFC 1035 §4.1.4 reserves them; RFC 6891 §5 retired extended labels). */
  | 'dns-bad-label'
  /** A compression pointer past the end or not strictly before the previous one: a loop or worse. */
  | 'dns-pointer-loop'
  /** A name over 255 bytes on the wire (RFC 1035 §2.3.4). */
  | 'dns-name-too-long'
  /** Rdata that does not match its type (an A of 5 bytes, a name running past RDLENGTH). */
  | 'dns-bad-rdata'
  /** An OPT RR outside the additional section, not owned by the root, or more than one (RFC 6891 §6.1.1). */
  | 'dns-bad-opt';

/** RR TYPE values (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891). */
export const DnsType = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41,
  DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48, HTTPS: 65, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257,
} as const;
export type DnsTypeName = keyof typeof DnsType;

const TYPE_NAMES = new Map<number, string>(Object.entries(DnsType).map(([k, v]) => [v, k]));

/** 'A', 'AAAA', … or 'TYPE1234' (RFC 3597 §5) for one without a mnemonic. */
export function dnsTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

/** The number for 'A', 'aaaa', 'TYPE99'; null when unknown. */
export function dnsTypeFromName(name: string): number | null {
  const up = name.toUpperCase();
  const known = (DnsType as Record<string, number>)[up];
  if (known !== undefined) return known;
  const m = /^TYPE([0-9]{1,5})$/.exec(up);
  if (m && Number(m[1]) <= 0xffff) return Number(m[1]);
  return null;
}

export const DnsClass = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

/** RCODE values (RFC 1035 §4.1.1, RFC 6891 §9: BADVERS is 16, which needs EDNS). */
export const DnsRcode = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16,
} as const;

const RCODE_NAMES = new Map<number, string>(Object.entries(DnsRcode).map(([k, v]) => [v, k]));
export function dnsRcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}

/** The EDNS0 option code of a DNS cookie (RFC 7873 §4). */
export const EDNS_OPTION_COOKIE = 10;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export type DnsRdata =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'NS'; name: string }
  | { kind: 'CNAME'; name: string }
  | { kind: 'PTR'; name: string }
  | { kind: 'MX'; preference: number; exchange: string }
  /** Character-strings of at most 255 bytes each (RFC 1035 §3.3.14). */
  | { kind: 'TXT'; strings: Uint8Array[] }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | {
      kind: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number;
      expire: number; minimum: number;
    }
  /** Any other type, or a known one the caller wants written as is (RFC 3597). */
  | { kind: 'raw'; bytes: Uint8Array };

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  /** Seconds, 0..2^31-1 on write (RFC 2181 §8); a larger value read is treated as 0. */
  ttl: number;
  data: DnsRdata;
}

export interface DnsOption {
  code: number;
  data: Uint8Array;
}

/** The OPT pseudo-RR's contents (RFC 6891 §6.1.3). */
export interface DnsEdns {
  /** Requestor's UDP payload size (values below 512 are treated as 512, §6.2.3). */
  udpPayloadSize: number;
  version: number;
  /** The DO bit (RFC 3225). */
  dnssecOk: boolean;
  /** The other 15 bits of the flags field (must be zero, kept for the round trip). */
  z: number;
  options: DnsOption[];
}

export interface DnsMessage {
  id: number;
  /** Header flags (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2). */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  z: boolean;
  ad: boolean;
  cd: boolean;
  /** The full RCODE: 4 header bits, and 8 more from the OPT RR when there is one (RFC 6891 §6.1.3). */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Additional records, the OPT RR not included (it is `edns`). */
  additionals: DnsRecord[];
  edns: DnsEdns | null;
}

export const DNS_HEADER_LENGTH = 12;
const MAX_NAME = 255;
const MAX_LABEL = 63;
/** A 255-byte name has at most 127 labels, so more hops than that cannot be a valid name. */
const MAX_HOPS = 127;

// =============================================================================== names

/** True for bytes that stand for themselves in presentation form. */
function plain(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c;
}

function formatLabel(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (plain(c)) s += String.fromCharCode(c);
    else if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else s += `\\${c.toString().padStart(3, '0')}`;
  }
  return s;
}

/**
 * A presentation-form name as wire labels (each without its length byte). Accepts a final dot and
 * `\X` / `\DDD` escapes. Null when it cannot be a name: an empty label, a label over 63 bytes, over
 * 255 bytes in all, a bad escape.
 */
export function dnsNameLabels(name: string): Uint8Array[] | null {
  if (name === '' || name === '.') return [];
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let total = 1;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (cur.length === 0) return null;
      labels.push(Uint8Array.from(cur));
      total += cur.length + 1;
      cur = [];
      if (i === name.length - 1) break;
      if (i + 1 < name.length && name.charCodeAt(i + 1) === 0x2e) return null;
      continue;
    }
    if (c === 0x5c) {
      const d = /^[0-9]{3}/.exec(name.slice(i + 1, i + 4));
      if (d) {
        c = Number(d[0]);
        if (c > 255) return null;
        i += 3;
      } else {
        if (i + 1 >= name.length) return null;
        c = name.charCodeAt(++i);
      }
    }
    if (c > 0xff) return null;
    cur.push(c);
    if (cur.length > MAX_LABEL) return null;
  }
  if (cur.length > 0) {
    labels.push(Uint8Array.from(cur));
    total += cur.length + 1;
  }
  if (total > MAX_NAME) return null;
  return labels;
}

const SIMPLE_NAME = /^(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?$/;

/** The canonical form of a name: ASCII letters lowercased, escapes normalised, no final dot (RFC 4343). */
export function dnsNameKey(name: string): string {
  // The common case (letters, digits, '-', '_'; labels of 1..63; at most 253 characters, so at
  // most 255 bytes on the wire) without building labels: servers and caches call this per query.
  if (name.length <= 254 && SIMPLE_NAME.test(name) && (name.length <= 253 || name.endsWith('.'))) {
    return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  }
  const labels = dnsNameLabels(name);
  if (labels === null) return name.toLowerCase();
  return labels.map((l) => formatLabel(lower(l), 0, l.length)).join('.');
}

function lower(l: Uint8Array): Uint8Array {
  let out = l;
  for (let i = 0; i < l.length; i++) {
    const c = l[i]!;
    if (c >= 0x41 && c <= 0x5a) {
      if (out === l) out = l.slice();
      out[i] = c | 0x20;
    }
  }
  return out;
}

/** Whether two names are the same name: ASCII case-insensitive (RFC 4343 §3), escapes and a final dot aside. */
export function dnsNameEquals(a: string, b: string): boolean {
  return dnsNameKey(a) === dnsNameKey(b);
}

/** Whether `name` is `domain` or below it ('a.b.example' is under 'example'; everything is under ''). */
export function dnsNameIsUnder(name: string, domain: string): boolean {
  const n = dnsNameKey(name);
  const d = dnsNameKey(domain);
  if (d === '') return true;
  return n === d || n.endsWith(`.${d}`);
}

/** The PTR owner name for an address (RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa). */
export function reverseName(address: Uint8Array): string {
  if (address.length === 4) {
    return `${address[3]}.${address[2]}.${address[1]}.${address[0]}.in-addr.arpa`;
  }
  const nibbles: string[] = [];
  for (let i = address.length - 1; i >= 0; i--) {
    const b = address[i]!;
    nibbles.push((b & 15).toString(16), (b >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

// =============================================================================== parse

interface Reader {
  b: Uint8Array;
  v: DataView;
}

/**
 * Reads a name at `at`; returns it and the offset after its in-line part, or a drop reason.
 * Every pointer must go strictly before the previous one (RFC 1035 §4.1.4: "a prior occurrence"), so
 * the walk ends; the hop bound and the 255-byte bound hold besides.
 */
function readName(r: Reader, at: number, limit: number): { name: string; end: number } | DnsDropReason {
  const b = r.b;
  let pos = at;
  let end = -1;
  let wire = 1;
  let hops = 0;
  let floor = at; // the next pointer must point before this
  let name = '';
  for (;;) {
    if (pos >= (end < 0 ? limit : b.length)) return 'dns-truncated';
    const len = b[pos]!;
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= (end < 0 ? limit : b.length)) return 'dns-truncated';
      const target = ((len & 0x3f) << 8) | b[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (target >= floor || ++hops > MAX_HOPS) return 'dns-pointer-loop';
      floor = target;
      pos = target;
      continue;
    }
    if (kind !== 0) return 'dns-bad-label';
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { name, end };
    }
    wire += len + 1;
    if (wire > MAX_NAME) return 'dns-name-too-long';
    if (pos + 1 + len > (end < 0 ? limit : b.length)) return 'dns-truncated';
    if (name !== '') name += '.';
    name += formatLabel(b, pos + 1, pos + 1 + len);
    pos += 1 + len;
  }
}

function parseRdata(r: Reader, type: number, at: number, len: number): DnsRdata | DnsDropReason {
  const b = r.b;
  const v = r.v;
  const end = at + len;
  const nameIn = (p: number): { name: string; end: number } | DnsDropReason => {
    const n = readName(r, p, end);
    if (typeof n === 'string') return n === 'dns-truncated' ? 'dns-bad-rdata' : n;
    return n;
  };
  switch (type) {
    case DnsType.A:
    case DnsType.AAAA: {
      const want = type === DnsType.A ? 4 : 16;
      if (len !== want) return 'dns-bad-rdata';
      return { kind: type === DnsType.A ? 'A' : 'AAAA', address: formatAddress(b.subarray(at, end)) };
    }
    case DnsType.NS:
    case DnsType.CNAME:
    case DnsType.PTR: {
      const n = nameIn(at);
      if (typeof n === 'string') return n;
      if (n.end !== end) return 'dns-bad-rdata';
      const kind = type === DnsType.NS ? 'NS' : type === DnsType.CNAME ? 'CNAME' : 'PTR';
      return { kind, name: n.name };
    }
    case DnsType.MX: {
      if (len < 3) return 'dns-bad-rdata';
      const n = nameIn(at + 2);
      if (typeof n === 'string') return n;
      if (n.end !== end) return 'dns-bad-rdata';
      return { kind: 'MX', preference: v.getUint16(at), exchange: n.name };
    }
    case DnsType.SRV: {
      if (len < 7) return 'dns-bad-rdata';
      const n = nameIn(at + 6);
      if (typeof n === 'string') return n;
      if (n.end !== end) return 'dns-bad-rdata';
      return {
        kind: 'SRV', priority: v.getUint16(at), weight: v.getUint16(at + 2), port: v.getUint16(at + 4),
        target: n.name,
      };
    }
    case DnsType.SOA: {
      const m = nameIn(at);
      if (typeof m === 'string') return m;
      const rn = nameIn(m.end);
      if (typeof rn === 'string') return rn;
      if (rn.end + 20 !== end) return 'dns-bad-rdata';
      const p = rn.end;
      return {
        kind: 'SOA', mname: m.name, rname: rn.name, serial: v.getUint32(p), refresh: v.getUint32(p + 4),
        retry: v.getUint32(p + 8), expire: v.getUint32(p + 12), minimum: v.getUint32(p + 16),
      };
    }
    case DnsType.TXT: {
      const strings: Uint8Array[] = [];
      let p = at;
      while (p < end) {
        const n = b[p]!;
        if (p + 1 + n > end) return 'dns-bad-rdata';
        strings.push(b.slice(p + 1, p + 1 + n));
        p += 1 + n;
      }
      return { kind: 'TXT', strings };
    }
    default:
      return { kind: 'raw', bytes: b.slice(at, end) };
  }
}

/** Parses one DNS message (the UDP payload, or a TCP message without its length prefix). */
export function parseDns(bytes: Uint8Array): DnsMessage | DnsDropReason {
  if (bytes.length < DNS_HEADER_LENGTH) return 'dns-truncated';
  const r: Reader = { b: bytes, v: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  const v = r.v;
  const flags = v.getUint16(2);
  const qd = v.getUint16(4);
  const an = v.getUint16(6);
  const ns = v.getUint16(8);
  const ar = v.getUint16(10);
  // A question is at least 5 bytes (root name, type, class), an RR at least 11: reject counts the
  // bytes cannot hold before allocating anything for them.
  if (qd * 5 + (an + ns + ar) * 11 > bytes.length - DNS_HEADER_LENGTH) return 'dns-bad-count';
  const msg: DnsMessage = {
    id: v.getUint16(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 15,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    z: (flags & 0x0040) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 15,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    edns: null,
  };
  let pos = DNS_HEADER_LENGTH;
  for (let i = 0; i < qd; i++) {
    const n = readName(r, pos, bytes.length);
    if (typeof n === 'string') return n;
    if (n.end + 4 > bytes.length) return 'dns-truncated';
    msg.questions.push({ name: n.name, type: v.getUint16(n.end), class: v.getUint16(n.end + 2) });
    pos = n.end + 4;
  }
  const sections = [msg.answers, msg.authorities, msg.additionals];
  const counts = [an, ns, ar];
  for (let s = 0; s < 3; s++) {
    const list = sections[s]!;
    for (let i = 0; i < counts[s]!; i++) {
      const n = readName(r, pos, bytes.length);
      if (typeof n === 'string') return n;
      if (n.end + 10 > bytes.length) return 'dns-truncated';
      const type = v.getUint16(n.end);
      const klass = v.getUint16(n.end + 2);
      const ttlRaw = v.getUint32(n.end + 4);
      const rdlen = v.getUint16(n.end + 8);
      const at = n.end + 10;
      if (at + rdlen > bytes.length) return 'dns-truncated';
      pos = at + rdlen;
      if (type === DnsType.OPT) {
        // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
        if (s !== 2 || n.name !== '' || msg.edns !== null) return 'dns-bad-opt';
        const options: DnsOption[] = [];
        let p = at;
        while (p < pos) {
          if (p + 4 > pos) return 'dns-bad-opt';
          const olen = v.getUint16(p + 2);
          if (p + 4 + olen > pos) return 'dns-bad-opt';
          options.push({ code: v.getUint16(p), data: bytes.slice(p + 4, p + 4 + olen) });
          p += 4 + olen;
        }
        msg.edns = {
          udpPayloadSize: klass,
          version: (ttlRaw >>> 16) & 0xff,
          dnssecOk: (ttlRaw & 0x8000) !== 0,
          z: ttlRaw & 0x7fff,
          options,
        };
        msg.rcode |= (ttlRaw >>> 24) << 4;
        continue;
      }
      const data = parseRdata(r, type, at, rdlen);
      if (typeof data === 'string') return data;
      // RFC 2181 §8: a TTL with the top bit set is treated as zero.
      list.push({ name: n.name, type, class: klass, ttl: ttlRaw > 0x7fffffff ? 0 : ttlRaw, data });
    }
  }
  return msg;
}

// =============================================================================== write

class Writer {
  buf = new Uint8Array(512);
  view = new DataView(this.buf.buffer);
  len = 0;
  /**
   * Suffix (its exact label bytes) → offset of a name already written (pointers reach 0x3fff).
   * Exact, not case-folded: a pointer to "Example" for "example" would change the case the caller
   * gave, which a resolver matching on 0x20-randomised case (draft-vixie-dnsext-dns0x20) rejects.
   */
  readonly names = new Map<string, number>();

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(x: number): void {
    this.ensure(1);
    this.buf[this.len++] = x;
  }
  u16(x: number): void {
    this.ensure(2);
    this.view.setUint16(this.len, x);
    this.len += 2;
  }
  u32(x: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, x);
    this.len += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** RFC 1035 §4.1.4: the longest suffix already written becomes a pointer. */
  name(name: string, compress: boolean): void {
    const labels = dnsNameLabels(name);
    if (labels === null) throw new RangeError(`synack dns: not a DNS name: ${JSON.stringify(name)}`);
    const keys: string[] = [];
    let key = '';
    for (let i = labels.length - 1; i >= 0; i--) {
      const l = labels[i]!;
      key = `${String.fromCharCode(l.length, ...l)}${key}`;
      keys[i] = key;
    }
    for (let i = 0; i < labels.length; i++) {
      const known = compress ? this.names.get(keys[i]!) : undefined;
      if (known !== undefined) {
        this.u16(0xc000 | known);
        return;
      }
      if (this.len < 0x4000) this.names.set(keys[i]!, this.len);
      const l = labels[i]!;
      this.u8(l.length);
      this.bytes(l);
    }
    this.u8(0);
  }
}

function checkU(x: number, bits: 8 | 16 | 32, what: string): number {
  const max = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  if (!Number.isInteger(x) || x < 0 || x > max) throw new RangeError(`synack dns: ${what} out of range: ${x}`);
  return x;
}

function addressBytes(s: string, want: 4 | 16): Uint8Array {
  const b = parseAddress(s);
  if (b === null || b.length !== want) throw new RangeError(`synack dns: not an IPv${want === 4 ? 4 : 6} address: ${s}`);
  return b;
}

function writeRdata(w: Writer, d: DnsRdata): void {
  switch (d.kind) {
    case 'A':
      w.bytes(addressBytes(d.address, 4));
      return;
    case 'AAAA':
      w.bytes(addressBytes(d.address, 16));
      return;
    // RFC 3597 §4: names in the rdata of RFC 1035's own types may be compressed.
    case 'NS':
    case 'CNAME':
    case 'PTR':
      w.name(d.name, true);
      return;
    case 'MX':
      w.u16(checkU(d.preference, 16, 'MX preference'));
      w.name(d.exchange, true);
      return;
    case 'SOA':
      w.name(d.mname, true);
      w.name(d.rname, true);
      for (const x of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) w.u32(checkU(x, 32, 'SOA field'));
      return;
    case 'TXT':
      for (const s of d.strings) {
        if (s.length > 255) throw new RangeError('synack dns: a TXT string over 255 bytes');
        w.u8(s.length);
        w.bytes(s);
      }
      return;
    // RFC 2782: "name compression is not to be used for this field".
    case 'SRV':
      w.u16(checkU(d.priority, 16, 'SRV priority'));
      w.u16(checkU(d.weight, 16, 'SRV weight'));
      w.u16(checkU(d.port, 16, 'SRV port'));
      w.name(d.target, false);
      return;
    case 'raw':
      w.bytes(d.bytes);
      return;
  }
}

function writeRecord(w: Writer, rr: DnsRecord): void {
  w.name(rr.name, true);
  w.u16(checkU(rr.type, 16, 'type'));
  w.u16(checkU(rr.class, 16, 'class'));
  if (!Number.isInteger(rr.ttl) || rr.ttl < 0 || rr.ttl > 0x7fffffff) {
    throw new RangeError(`synack dns: TTL out of range: ${rr.ttl}`);
  }
  w.u32(rr.ttl);
  const lenAt = w.len;
  w.u16(0);
  writeRdata(w, rr.data);
  const rdlen = w.len - lenAt - 2;
  if (rdlen > 0xffff) throw new RangeError('synack dns: rdata over 65535 bytes');
  w.view.setUint16(lenAt, rdlen);
}

function writeOpt(w: Writer, e: DnsEdns, rcode: number): void {
  w.u8(0); // root owner
  w.u16(DnsType.OPT);
  w.u16(checkU(e.udpPayloadSize, 16, 'EDNS payload size'));
  w.u8(rcode >>> 4);
  w.u8(checkU(e.version, 8, 'EDNS version'));
  w.u16((e.dnssecOk ? 0x8000 : 0) | (checkU(e.z, 16, 'EDNS flags') & 0x7fff));
  let len = 0;
  for (const o of e.options) len += 4 + o.data.length;
  w.u16(checkU(len, 16, 'EDNS options length'));
  for (const o of e.options) {
    w.u16(checkU(o.code, 16, 'EDNS option code'));
    w.u16(o.data.length);
    w.bytes(o.data);
  }
}

function optLength(e: DnsEdns): number {
  let len = 11;
  for (const o of e.options) len += 4 + o.data.length;
  return len;
}

interface Layout {
  answers: number;
  authorities: number;
  additionals: number;
  tc: boolean;
}

/** Writes the message; `ends` receives the offset after each record (answers, authorities, additionals). */
function writeAll(msg: DnsMessage, keep: Layout, ends: number[] | null): Uint8Array {
  const w = new Writer();
  const maxRcode = msg.edns ? 0xfff : 15;
  checkU(msg.rcode, 16, 'rcode');
  if (msg.rcode > maxRcode) throw new RangeError(`synack dns: RCODE ${msg.rcode} needs EDNS (RFC 6891 §6.1.3)`);
  w.u16(checkU(msg.id, 16, 'id'));
  w.u16(
    (msg.qr ? 0x8000 : 0) | (checkU(msg.opcode, 16, 'opcode') & 15) << 11 | (msg.aa ? 0x0400 : 0) |
    (keep.tc ? 0x0200 : 0) | (msg.rd ? 0x0100 : 0) | (msg.ra ? 0x0080 : 0) | (msg.z ? 0x0040 : 0) |
    (msg.ad ? 0x0020 : 0) | (msg.cd ? 0x0010 : 0) | (msg.rcode & 15),
  );
  w.u16(checkU(msg.questions.length, 16, 'QDCOUNT'));
  w.u16(keep.answers);
  w.u16(keep.authorities);
  w.u16(checkU(keep.additionals + (msg.edns ? 1 : 0), 16, 'ARCOUNT'));
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(checkU(q.type, 16, 'type'));
    w.u16(checkU(q.class, 16, 'class'));
  }
  const parts: [DnsRecord[], number][] = [
    [msg.answers, keep.answers], [msg.authorities, keep.authorities], [msg.additionals, keep.additionals],
  ];
  for (const [list, n] of parts) {
    for (let i = 0; i < n; i++) {
      writeRecord(w, list[i]!);
      ends?.push(w.len);
    }
  }
  if (msg.edns) writeOpt(w, msg.edns, msg.rcode);
  return w.buf.slice(0, w.len);
}

/** The index after each RRset of a section (same name, type and class in a row: RFC 2181 §5). */
function rrsetBoundaries(list: DnsRecord[]): number[] {
  const out: number[] = [];
  for (let i = 1; i <= list.length; i++) {
    const a = list[i - 1]!;
    const b = list[i];
    if (!b || b.type !== a.type || b.class !== a.class || !dnsNameEquals(a.name, b.name)) out.push(i);
  }
  return out;
}

export interface WriteDnsOptions {
  /**
   * Largest message to produce (a UDP answer: the client's EDNS size, or 512). Whole RRsets are left
   * out from the end until it fits: additional data first without TC, then authority and answer
   * RRsets with TC set (RFC 2181 §9, RFC 1035 §4.2.1). The OPT RR always stays (RFC 6891 §7).
   */
  maxLength?: number;
}

/** Serialises a message with name compression. Throws RangeError for what no message can hold. */
export function writeDns(msg: DnsMessage, options: WriteDnsOptions = {}): Uint8Array {
  for (const [list, what] of [[msg.answers, 'ANCOUNT'], [msg.authorities, 'NSCOUNT']] as const) {
    checkU(list.length, 16, what);
  }
  const full: Layout = {
    answers: msg.answers.length, authorities: msg.authorities.length, additionals: msg.additionals.length,
    tc: msg.tc,
  };
  const ends: number[] = [];
  const out = writeAll(msg, full, ends);
  const max = options.maxLength;
  if (max === undefined || out.length <= max) return out;
  // Names only point backwards, so a prefix of the records has the size its end offset says; the
  // OPT RR goes after whatever is kept.
  const opt = msg.edns ? optLength(msg.edns) : 0;
  const headEnd = questionsEnd(out);
  const sizeWith = (n: number): number => (n === 0 ? headEnd : ends[n - 1]!) + opt;
  const na = msg.answers.length;
  const nn = msg.authorities.length;
  // Candidate cut points, the latest first: RRset boundaries in additional, then authority, answer.
  const cuts: Layout[] = [];
  for (const i of rrsetBoundaries(msg.additionals).reverse().slice(1)) {
    cuts.push({ answers: na, authorities: nn, additionals: i, tc: msg.tc });
  }
  cuts.push({ answers: na, authorities: nn, additionals: 0, tc: msg.tc });
  for (const i of rrsetBoundaries(msg.authorities).reverse().slice(1)) {
    cuts.push({ answers: na, authorities: i, additionals: 0, tc: true });
  }
  if (nn > 0) cuts.push({ answers: na, authorities: 0, additionals: 0, tc: true });
  for (const i of rrsetBoundaries(msg.answers).reverse().slice(1)) {
    cuts.push({ answers: i, authorities: 0, additionals: 0, tc: true });
  }
  if (na > 0) cuts.push({ answers: 0, authorities: 0, additionals: 0, tc: true });
  for (const c of cuts) {
    if (sizeWith(c.answers + c.authorities + c.additionals) <= max) return writeAll(msg, c, null);
  }
  // Not even the header, questions and OPT fit: send them anyway, with TC (a client must retry).
  return writeAll(msg, { answers: 0, authorities: 0, additionals: 0, tc: true }, null);
}

/** Where the question section of a message we wrote ends (so cannot fail). */
function questionsEnd(out: Uint8Array): number {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let pos = DNS_HEADER_LENGTH;
  for (let i = v.getUint16(4); i > 0; i--) {
    for (;;) {
      const l = out[pos]!;
      if (l === 0) { pos += 1; break; }
      if ((l & 0xc0) === 0xc0) { pos += 2; break; }
      pos += 1 + l;
    }
    pos += 4;
  }
  return pos;
}

// =============================================================================== builders

/** A query for one name and type (RD set, as a stub resolver sends it: RFC 1034 §5.3.1). */
export function dnsQuery(
  id: number, name: string, type: number,
  options: { rd?: boolean; edns?: Partial<DnsEdns> | null; class?: number } = {},
): DnsMessage {
  const e = options.edns;
  return {
    id, qr: false, opcode: 0, aa: false, tc: false, rd: options.rd ?? true, ra: false, z: false, ad: false,
    cd: false, rcode: 0, questions: [{ name, type, class: options.class ?? DnsClass.IN }], answers: [],
    authorities: [], additionals: [],
    edns: e === null || e === undefined ? null : {
      udpPayloadSize: e.udpPayloadSize ?? 1232, version: e.version ?? 0, dnssecOk: e.dnssecOk ?? false,
      z: e.z ?? 0, options: e.options ?? [],
    },
  };
}

/** TXT character-strings from text (UTF-8), split at 255 bytes. */
export function txtStrings(...texts: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const t of texts) {
    const b = enc.encode(t);
    if (b.length === 0) out.push(b);
    for (let i = 0; i < b.length; i += 255) out.push(b.slice(i, i + 255));
  }
  return out;
}
