/**
 * A reader for packet captures: classic libpcap files (either byte order, microsecond or nanosecond
 * timestamps) and pcapng files (sections of either byte order, one link type and timestamp
 * resolution per interface, Enhanced / Simple / obsolete Packet Blocks; other blocks skipped).
 * Each record's link-layer header is stripped so that what comes out is the IP packet, whatever the
 * link: Ethernet (with 802.1Q / QinQ tags), raw IP, Linux cooked captures (SLL, SLL2), BSD loopback
 * (NULL, LOOP). Frames that carry no IP (ARP, LLDP…) are skipped and counted.
 *
 * A corrupt file throws a `CaptureError` naming the byte offset and what was wrong. A file that ends
 * in the middle of a record — a capture cut short, or still being written — keeps the records before
 * it and reports the cut as a warning (or throws, with `strict`).
 *
 * References: draft-ietf-opsawg-pcap (the pcap format), draft-ietf-opsawg-pcapng (pcapng),
 * https://www.tcpdump.org/linktypes.html (link types and their headers).
 *
 * Core module: no Node built-ins (the browser page reads dropped files with it).
 */

import {
  LINKTYPE_RAW,
  PCAP_GLOBAL_HEADER_LENGTH,
  PCAP_MAGIC_NSEC,
  PCAP_MAGIC_USEC,
  PCAP_RECORD_HEADER_LENGTH,
} from './pcap.js';

export { LINKTYPE_RAW };

export class CaptureError extends Error {
  override readonly name = 'CaptureError';
}

// Link types (LINKTYPE_* values of tcpdump.org/linktypes.html, as stored in files).
export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export interface CapturedPacket {
  /** Record number in the file (0-based, counting every record, skipped ones included). */
  index: number;
  /** Capture time, seconds since the Unix epoch. */
  t: number;
  linkType: number;
  /** The IP packet: the record's bytes after the link-layer header (a view into the file). */
  bytes: Uint8Array;
  /** The IP packet's length on the wire (the record's original length less the link header). */
  origLength: number;
  /** The record holds less than the packet (snaplen): `bytes.length < origLength`. */
  truncated: boolean;
  /** pcapng interface id (0 for classic pcap). */
  interfaceId: number;
}

export interface CaptureReadResult {
  format: 'pcap' | 'pcapng';
  packets: CapturedPacket[];
  /** Records read, IP or not. */
  records: number;
  /** Records skipped, by reason ("non-IP frame", "unsupported link type 147"…). */
  skipped: Record<string, number>;
  /** Things that did not stop the reading, e.g. a last record cut short. */
  warnings: string[];
}

export interface ReadCaptureOptions {
  /** Throw on a file that ends mid-record instead of warning (default false). */
  strict?: boolean;
}

const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const PCAPNG_IDB = 0x00000001;
const PCAPNG_PB = 0x00000002; // obsolete Packet Block
const PCAPNG_SPB = 0x00000003;
const PCAPNG_EPB = 0x00000006;
/** No sane record is larger than this (libpcap's own limit for a single packet is 256 KiB). */
const MAX_RECORD = 0x4000000; // 64 MiB
/**
 * Latest capture time accepted: the end of year 9999 (what an ISO date can show). A later timestamp
 * (e.g. a pcapng if_tsresol of 1 s with an all-ones timestamp) is corruption, not a time.
 */
const MAX_TIME_S = 253402300799;

function hex(bytes: Uint8Array, n: number): string {
  return [...bytes.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Reads a pcap or pcapng capture; throws `CaptureError` when it is neither, or corrupt. */
export function readCapture(data: Uint8Array, options: ReadCaptureOptions = {}): CaptureReadResult {
  if (data.length < 4) {
    throw new CaptureError(
      data.length === 0 ? 'empty file: not a pcap or pcapng capture' : `not a capture: only ${data.length} bytes`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = view.getUint32(0, true);
  const be = view.getUint32(0, false);
  if (le === PCAPNG_SHB) return readPcapng(data, view, options);
  if (le === PCAP_MAGIC_USEC || le === PCAP_MAGIC_NSEC) return readPcap(data, view, true, le === PCAP_MAGIC_NSEC, options);
  if (be === PCAP_MAGIC_USEC || be === PCAP_MAGIC_NSEC) return readPcap(data, view, false, be === PCAP_MAGIC_NSEC, options);
  throw new CaptureError(
    `not a pcap or pcapng capture: the file starts with ${hex(data, 4)} (expected a pcap magic number a1b2c3d4/a1b23c4d or a pcapng Section Header Block 0a0d0d0a)`,
  );
}

class Collector {
  readonly packets: CapturedPacket[] = [];
  readonly skipped: Record<string, number> = {};
  readonly warnings: string[] = [];
  records = 0;

  constructor(private readonly strict: boolean) {}

  skip(reason: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }

  /** The file ends inside a record: a warning, or an error when strict. */
  cut(message: string): void {
    if (this.strict) throw new CaptureError(message);
    this.warnings.push(message);
  }

  add(linkType: number, t: number, frame: Uint8Array, origLength: number, interfaceId: number): void {
    const index = this.records++;
    const ip = stripLinkHeader(linkType, frame);
    if (typeof ip === 'string') {
      this.skip(ip);
      return;
    }
    const bytes = frame.subarray(ip);
    const ipOrig = Math.max(bytes.length, origLength - ip);
    this.packets.push({
      index,
      t,
      linkType,
      bytes,
      origLength: ipOrig,
      truncated: bytes.length < ipOrig,
      interfaceId,
    });
  }
}

function readPcap(
  data: Uint8Array,
  view: DataView,
  littleEndian: boolean,
  nanoseconds: boolean,
  options: ReadCaptureOptions,
): CaptureReadResult {
  if (data.length < PCAP_GLOBAL_HEADER_LENGTH) {
    throw new CaptureError(`truncated pcap global header at offset 0: ${PCAP_GLOBAL_HEADER_LENGTH} bytes needed, ${data.length} present`);
  }
  const major = view.getUint16(4, littleEndian);
  if (major !== 2) throw new CaptureError(`unsupported pcap version ${major}.${view.getUint16(6, littleEndian)} at offset 4 (expected 2.4)`);
  // The link type is the low 16 bits; the high bits may carry an FCS length (draft-ietf-opsawg-pcap §4).
  const linkType = view.getUint32(20, littleEndian) & 0xffff;
  const units = nanoseconds ? 1e9 : 1e6;
  const out = new Collector(options.strict === true);
  let off = PCAP_GLOBAL_HEADER_LENGTH;
  // Records whose sub-second field is not below 10^6 (10^9): the first one's offset, and how many.
  let carriedAt = -1;
  let carried = 0;
  while (off < data.length) {
    if (data.length - off < PCAP_RECORD_HEADER_LENGTH) {
      out.cut(`truncated packet record header at offset ${off}: ${PCAP_RECORD_HEADER_LENGTH} bytes needed, ${data.length - off} remain`);
      break;
    }
    const sec = view.getUint32(off, littleEndian);
    const frac = view.getUint32(off + 4, littleEndian);
    const incl = view.getUint32(off + 8, littleEndian);
    const orig = view.getUint32(off + 12, littleEndian);
    if (incl > MAX_RECORD) {
      throw new CaptureError(`corrupt packet record at offset ${off}: captured length ${incl} is impossibly large`);
    }
    if (frac >= units) {
      // Some writers round up to exactly 10^6 (10^9); libpcap, tcpdump and Wireshark read such records
      // as they are, the excess carrying into the seconds. So does this reader, with a warning.
      if (carried++ === 0) carriedAt = off;
    }
    const body = off + PCAP_RECORD_HEADER_LENGTH;
    if (data.length - body < incl) {
      out.cut(`truncated packet record at offset ${off}: header says ${incl} bytes, ${data.length - body} remain`);
      break;
    }
    out.add(linkType, sec + Math.floor(frac / units) + (frac % units) / units, data.subarray(body, body + incl), Math.max(orig, incl), 0);
    off = body + incl;
  }
  if (carried > 0) {
    out.warnings.push(
      `${carried} record${carried === 1 ? '' : 's'} (the first at offset ${carriedAt}) with a sub-second timestamp field of ${units} or more: the excess was carried into the seconds`,
    );
  }
  return { format: 'pcap', packets: out.packets, records: out.records, skipped: out.skipped, warnings: out.warnings };
}

interface PcapngInterface {
  linkType: number;
  /** Timestamp units per second (if_tsresol), as a bigint for exact division. */
  unitsPerSecond: bigint;
  /** if_tsoffset, seconds. */
  offset: number;
}

function readPcapng(data: Uint8Array, view: DataView, options: ReadCaptureOptions): CaptureReadResult {
  const out = new Collector(options.strict === true);
  let off = 0;
  let le = true;
  let interfaces: PcapngInterface[] = [];
  let lastT = 0;
  while (off < data.length) {
    if (data.length - off < 12) {
      out.cut(`truncated block at offset ${off}: 12 bytes needed, ${data.length - off} remain`);
      break;
    }
    let type = view.getUint32(off, le);
    if (view.getUint32(off, true) === PCAPNG_SHB) {
      // A new section: its byte-order magic says how everything in it is written (pcapng §4.1).
      type = PCAPNG_SHB;
      const magicLe = view.getUint32(off + 8, true);
      if (magicLe === PCAPNG_BYTE_ORDER_MAGIC) le = true;
      else if (view.getUint32(off + 8, false) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
      else throw new CaptureError(`corrupt Section Header Block at offset ${off}: byte-order magic ${hex(data.subarray(off + 8), 4)} (expected 1a2b3c4d)`);
      interfaces = [];
    }
    const length = view.getUint32(off + 4, le);
    if (length > MAX_RECORD) {
      throw new CaptureError(`corrupt block at offset ${off}: block length ${length} is impossibly large (the limit is ${MAX_RECORD / 0x100000} MiB)`);
    }
    if (length < 12 || length % 4 !== 0) {
      throw new CaptureError(`corrupt block at offset ${off}: block length ${length} (must be a multiple of 4, at least 12)`);
    }
    if (data.length - off < length) {
      out.cut(`truncated block at offset ${off}: header says ${length} bytes, ${data.length - off} remain`);
      break;
    }
    const trailer = view.getUint32(off + length - 4, le);
    if (trailer !== length) {
      throw new CaptureError(`corrupt block at offset ${off}: leading length ${length} and trailing length ${trailer} differ`);
    }
    const body = off + 8;
    const bodyEnd = off + length - 4;
    const need = (n: number, what: string): void => {
      if (bodyEnd - body < n) throw new CaptureError(`corrupt ${what} at offset ${off}: block of ${length} bytes is too short`);
    };
    switch (type) {
      case PCAPNG_SHB: {
        need(16, 'Section Header Block');
        const major = view.getUint16(body + 4, le);
        if (major !== 1) throw new CaptureError(`unsupported pcapng version ${major} at offset ${off + 12} (expected 1)`);
        break;
      }
      case PCAPNG_IDB: {
        need(8, 'Interface Description Block');
        const iface: PcapngInterface = { linkType: view.getUint16(body, le), unitsPerSecond: 1_000_000n, offset: 0 };
        readOptions(view, body + 8, bodyEnd, le, (code, at, len) => {
          if (code === 9 && len >= 1) {
            // if_tsresol: MSB clear → 10^-n s, set → 2^-n s (pcapng §4.2).
            const v = data[at]!;
            iface.unitsPerSecond = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
          } else if (code === 14 && len >= 8) {
            iface.offset = Number(view.getBigInt64(at, le));
          }
        }, off);
        interfaces.push(iface);
        break;
      }
      case PCAPNG_EPB:
      case PCAPNG_PB: {
        const what = type === PCAPNG_EPB ? 'Enhanced Packet Block' : 'Packet Block';
        need(20, what);
        const id = type === PCAPNG_EPB ? view.getUint32(body, le) : view.getUint16(body, le);
        const iface = interfaces[id];
        if (iface === undefined) throw new CaptureError(`corrupt ${what} at offset ${off}: interface ${id} was never described`);
        const high = view.getUint32(body + 4, le);
        const low = view.getUint32(body + 8, le);
        const incl = view.getUint32(body + 12, le);
        const orig = view.getUint32(body + 16, le);
        if (body + 20 + incl > bodyEnd) {
          throw new CaptureError(`corrupt ${what} at offset ${off}: captured length ${incl} exceeds the block (${bodyEnd - body - 20} bytes of data)`);
        }
        const ts = (BigInt(high) << 32n) | BigInt(low);
        const u = iface.unitsPerSecond;
        const t = Number(ts / u) + Number(ts % u) / Number(u) + iface.offset;
        if (!(Math.abs(t) <= MAX_TIME_S)) {
          throw new CaptureError(`corrupt ${what} at offset ${off}: timestamp ${ts} (${t.toExponential(3)} s since 1970) is out of range (more than 8000 years from 1970)`);
        }
        lastT = t;
        out.add(iface.linkType, t, data.subarray(body + 20, body + 20 + incl), Math.max(orig, incl), id);
        break;
      }
      case PCAPNG_SPB: {
        need(4, 'Simple Packet Block');
        const iface = interfaces[0];
        if (iface === undefined) throw new CaptureError(`corrupt Simple Packet Block at offset ${off}: no interface was described`);
        const orig = view.getUint32(body, le);
        const incl = Math.min(orig, bodyEnd - body - 4);
        // An SPB has no timestamp (pcapng §4.4): it is given the time of the packet before it.
        out.add(iface.linkType, lastT, data.subarray(body + 4, body + 4 + incl), orig, 0);
        break;
      }
      default:
        break; // Name resolution, statistics, custom blocks…: nothing to draw.
    }
    off += length;
  }
  return { format: 'pcapng', packets: out.packets, records: out.records, skipped: out.skipped, warnings: out.warnings };
}

/** Walks pcapng options (code, length, value padded to 4) until opt_endofopt. */
function readOptions(
  view: DataView,
  start: number,
  end: number,
  le: boolean,
  fn: (code: number, at: number, length: number) => void,
  blockOffset: number,
): void {
  let i = start;
  while (i + 4 <= end) {
    const code = view.getUint16(i, le);
    const len = view.getUint16(i + 2, le);
    if (code === 0) return;
    if (i + 4 + len > end) throw new CaptureError(`corrupt option ${code} in the block at offset ${blockOffset}: length ${len} runs past the block`);
    fn(code, i + 4, len);
    i += 4 + ((len + 3) & ~3);
  }
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;

/** After an EtherType at `at`: skip VLAN tags; the offset of the IP packet, or why it is not IP. */
function afterEthertype(frame: Uint8Array, at: number): number | string {
  for (let tags = 0; ; tags++) {
    if (frame.length < at + 2) return 'truncated link-layer header';
    const type = (frame[at]! << 8) | frame[at + 1]!;
    if (type === ETHERTYPE_IPV4 || type === ETHERTYPE_IPV6) return ipAt(frame, at + 2, type === ETHERTYPE_IPV4 ? 4 : 6);
    if ((type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) && tags < 8) {
      at += 4; // 2 bytes of tag control information, then the next EtherType (IEEE 802.1Q)
      continue;
    }
    return 'non-IP frame';
  }
}

/** Offset `at` if the packet there has the expected IP version. */
function ipAt(frame: Uint8Array, at: number, version?: 4 | 6): number | string {
  if (frame.length <= at) return 'truncated link-layer header';
  const v = frame[at]! >>> 4;
  if (version !== undefined ? v !== version : v !== 4 && v !== 6) return 'non-IP frame';
  return at;
}

/** BSD address family → IP version (AF_INET6 differs between the BSDs: 24, 28, 30; Linux 10). */
function familyVersion(af: number): 4 | 6 | undefined {
  if (af === 2) return 4;
  if (af === 24 || af === 28 || af === 30 || af === 10) return 6;
  return undefined;
}

/**
 * The offset of the IP packet in a frame of this link type, or the reason it has none
 * ("non-IP frame", "unsupported link type N").
 */
function stripLinkHeader(linkType: number, frame: Uint8Array): number | string {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      // Destination and source MAC, then the EtherType.
      return afterEthertype(frame, 12);
    case LINKTYPE_RAW:
      return ipAt(frame, 0);
    case LINKTYPE_IPV4:
      return ipAt(frame, 0, 4);
    case LINKTYPE_IPV6:
      return ipAt(frame, 0, 6);
    case LINKTYPE_LINUX_SLL:
      // Packet type, ARPHRD type, address length, 8 bytes of address, then the protocol (EtherType).
      return afterEthertype(frame, 14);
    case LINKTYPE_LINUX_SLL2:
      // Protocol first, then reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes.
      if (frame.length < 20) return 'truncated link-layer header';
      return afterEthertypeAt(frame, 0, 20);
    case LINKTYPE_NULL: {
      // The address family in the capturing host's byte order, which the file does not say.
      if (frame.length < 4) return 'truncated link-layer header';
      const le = frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24);
      const be = (frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!;
      const v = familyVersion(le) ?? familyVersion(be);
      return v === undefined ? 'non-IP frame' : ipAt(frame, 4, v);
    }
    case LINKTYPE_LOOP: {
      // Like NULL, but the family is always big-endian.
      if (frame.length < 4) return 'truncated link-layer header';
      const v = familyVersion((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) | frame[3]!);
      return v === undefined ? 'non-IP frame' : ipAt(frame, 4, v);
    }
    default:
      return `unsupported link type ${linkType}`;
  }
}

/** SLL2: the EtherType sits at `typeAt`, the payload starts at `payloadAt` (VLAN tags are stripped by Linux). */
function afterEthertypeAt(frame: Uint8Array, typeAt: number, payloadAt: number): number | string {
  const type = (frame[typeAt]! << 8) | frame[typeAt + 1]!;
  if (type === ETHERTYPE_IPV4) return ipAt(frame, payloadAt, 4);
  if (type === ETHERTYPE_IPV6) return ipAt(frame, payloadAt, 6);
  if (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) return afterEthertype(frame, payloadAt + 2);
  return 'non-IP frame';
}
