/**
 * TCP header codec (RFC 9293 §3.1) with its options: MSS (RFC 9293 §3.2), window scale and
 * timestamps (RFC 7323), SACK-permitted and SACK (RFC 2018).
 *
 *   |          Source Port          |       Destination Port        |
 *   |                        Sequence Number                        |
 *   |                    Acknowledgment Number                      |
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   |           Checksum            |         Urgent Pointer        |
 *   |                    Options                    |    Padding    |
 */
import { sum16 } from './checksum.js';
import type { DropReason } from './drop.js';

// RFC 9293 §3.1 control bits, in wire order. SYN = 0x02, ACK = 0x10.
export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

/** Parsed TCP options. Absent fields mean the option was absent. */
export interface TcpOptions {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  /** SACK blocks as [left, right) sequence pairs (RFC 2018). */
  sack?: Array<[number, number]>;
  timestamp?: { val: number; ecr: number };
}

/** A TCP segment representation: what a parsed header says, and what an encoder writes. */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** The eight control bits (FIN..CWR), as on the wire. */
  flags: number;
  /** The raw 16-bit window field (not scaled). */
  window: number;
  urgent: number;
  options: TcpOptions;
  /** A view into the packet (parse) or the send buffer (encode); never retained by the core. */
  payload: Uint8Array;
}

export const TCP_HEADER_LENGTH = 20;
/** RFC 9293 §3.1: Data Offset is 4 bits of 32-bit words, so at most 60 bytes, 40 of options. */
export const TCP_MAX_OPTIONS_LENGTH = 40;

// RFC 9293 §3.2 and the IANA TCP option kind registry.
export const OPT_EOL = 0;
export const OPT_NOP = 1;
export const OPT_MSS = 2;
export const OPT_WSCALE = 3;
export const OPT_SACK_PERMITTED = 4;
export const OPT_SACK = 5;
export const OPT_TIMESTAMP = 8;

/**
 * Parses a TCP segment (header + payload, exactly the IP payload). `pseudoHeaderSum` is the
 * folded pseudo-header sum (see `pseudoHeaderSum` in checksum.ts, upperLength = segment.length).
 * `payload` is a view into `segment`. Option kinds synack does not know are skipped by their
 * length, as RFC 9293 §3.1 requires ("must be prepared to handle an illegal option length").
 */
export function parseTcp(
  segment: Uint8Array,
  pseudoHeaderSum: number,
  verifyChecksum = true,
  into?: TcpParseScratch,
): TcpSegment | DropReason {
  const length = segment.length;
  if (length < TCP_HEADER_LENGTH) return 'tcp-truncated';
  const headerLength = (segment[12] >>> 4) * 4;
  if (headerLength < TCP_HEADER_LENGTH || headerLength > length) return 'tcp-bad-offset';
  // The checksum covers pseudo-header, header and data (RFC 9293 §3.1); a correct segment,
  // checksum field included, sums to all ones.
  if (verifyChecksum && sum16(segment, 0, length, pseudoHeaderSum) !== 0xffff) {
    return 'tcp-bad-checksum';
  }
  let options: TcpOptions;
  if (into !== undefined) {
    options = into.segment.options;
    options.mss = options.wscale = options.sackPermitted = options.sack = options.timestamp = undefined;
  } else {
    options = {};
  }
  if (headerLength > TCP_HEADER_LENGTH && !parseOptions(segment, headerLength, options, into?.timestamp)) {
    return 'tcp-bad-options';
  }
  if (into !== undefined) {
    const s = into.segment;
    s.srcPort = (segment[0] << 8) | segment[1];
    s.dstPort = (segment[2] << 8) | segment[3];
    s.seq = ((segment[4] << 24) | (segment[5] << 16) | (segment[6] << 8) | segment[7]) >>> 0;
    s.ack = ((segment[8] << 24) | (segment[9] << 16) | (segment[10] << 8) | segment[11]) >>> 0;
    s.flags = segment[13];
    s.window = (segment[14] << 8) | segment[15];
    s.urgent = (segment[18] << 8) | segment[19];
    s.payload = segment.subarray(headerLength);
    return s;
  }
  return {
    srcPort: (segment[0] << 8) | segment[1],
    dstPort: (segment[2] << 8) | segment[3],
    seq: ((segment[4] << 24) | (segment[5] << 16) | (segment[6] << 8) | segment[7]) >>> 0,
    ack: ((segment[8] << 24) | (segment[9] << 16) | (segment[10] << 8) | segment[11]) >>> 0,
    flags: segment[13],
    window: (segment[14] << 8) | segment[15],
    urgent: (segment[18] << 8) | segment[19],
    options,
    payload: segment.subarray(headerLength),
  };
}

function read32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function write32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

/**
 * Objects `parseTcp` may fill instead of allocating new ones per segment (the stack's input path).
 * What it returns then lives until the next parse with the same scratch: use it, never keep it.
 */
export class TcpParseScratch {
  readonly segment: TcpSegment = {
    srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0, options: {}, payload: new Uint8Array(0),
  };
  readonly timestamp = { val: 0, ecr: 0 };
}

/** Fills `options` from bytes 20..headerLength; false when the option list is malformed. */
function parseOptions(seg: Uint8Array, headerLength: number, options: TcpOptions, ts?: { val: number; ecr: number }): boolean {
  let i = TCP_HEADER_LENGTH;
  while (i < headerLength) {
    const kind = seg[i];
    if (kind === OPT_EOL) break; // the rest is padding
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    // Every other kind has a length byte that counts kind and length themselves.
    if (i + 1 >= headerLength) return false;
    const len = seg[i + 1];
    if (len < 2 || i + len > headerLength) return false;
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return false;
        options.mss = (seg[i + 2] << 8) | seg[i + 3];
        break;
      case OPT_WSCALE:
        if (len !== 3) return false;
        // The raw shift; RFC 7323 §2.3 caps its use at 14, which is the TCB's rule to apply.
        options.wscale = seg[i + 2];
        break;
      case OPT_SACK_PERMITTED:
        if (len !== 2) return false;
        options.sackPermitted = true;
        break;
      case OPT_SACK: {
        // RFC 2018 §3: 8 bytes per block, at most 4 blocks in 40 bytes of options.
        const n = (len - 2) / 8;
        if (!Number.isInteger(n) || n < 1 || n > 4) return false;
        const blocks: Array<[number, number]> = [];
        for (let b = 0; b < n; b++) {
          const at = i + 2 + b * 8;
          blocks.push([read32(seg, at), read32(seg, at + 4)]);
        }
        options.sack = blocks;
        break;
      }
      case OPT_TIMESTAMP:
        if (len !== 10) return false;
        if (ts !== undefined) {
          ts.val = read32(seg, i + 2);
          ts.ecr = read32(seg, i + 6);
          options.timestamp = ts;
        } else {
          options.timestamp = { val: read32(seg, i + 2), ecr: read32(seg, i + 6) };
        }
        break;
      default:
        break; // unknown kind: skipped by its length
    }
    i += len;
  }
  return true;
}

/** Bytes taken by the SACK blocks that fit beside the other options (see `writeOptions`). */
function sackBlocksThatFit(options: TcpOptions, otherLength: number): number {
  const blocks = options.sack ? options.sack.length : 0;
  if (blocks === 0) return 0;
  // nop, nop, kind, len, then 8 bytes per block.
  const room = Math.floor((TCP_MAX_OPTIONS_LENGTH - otherLength - 4) / 8);
  return Math.max(0, Math.min(blocks, room, 4));
}

/** Options other than SACK blocks, as laid out by `writeOptions`. */
function baseOptionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.sackPermitted || o.timestamp) {
    // sackOK + TS share 12 bytes; either alone is padded by two NOPs to 4 or 12.
    if (o.timestamp) n += 12;
    else n += 4;
  }
  if (o.wscale !== undefined) n += 4;
  return n;
}

/**
 * Bytes that `writeTcp` emits for these options: always a multiple of 4. SACK blocks that do not fit
 * in the 40 bytes beside the other options are cut from the end of the list (RFC 2018 §4 puts the
 * most recent block first), as Linux does: with timestamps, at most 3 blocks fit.
 */
export function tcpOptionsLength(options: TcpOptions): number {
  const base = baseOptionsLength(options);
  const blocks = sackBlocksThatFit(options, base);
  return base + (blocks > 0 ? 4 + blocks * 8 : 0);
}

/**
 * Writes the options in Linux's order and padding (tcp_options_write), so packetdrill scripts
 * written against Linux match byte for byte:
 *   mss; sackOK,TS | nop,nop,TS | nop,nop,sackOK; nop,wscale; nop,nop,sack blocks.
 * Returns the bytes written.
 */
function writeOptions(out: Uint8Array, at: number, o: TcpOptions): number {
  const start = at;
  if (o.mss !== undefined) {
    out[at++] = OPT_MSS;
    out[at++] = 4;
    out[at++] = (o.mss >>> 8) & 0xff;
    out[at++] = o.mss & 0xff;
  }
  if (o.timestamp) {
    if (o.sackPermitted) {
      out[at++] = OPT_SACK_PERMITTED;
      out[at++] = 2;
    } else {
      out[at++] = OPT_NOP;
      out[at++] = OPT_NOP;
    }
    out[at++] = OPT_TIMESTAMP;
    out[at++] = 10;
    write32(out, at, o.timestamp.val >>> 0);
    write32(out, at + 4, o.timestamp.ecr >>> 0);
    at += 8;
  } else if (o.sackPermitted) {
    out[at++] = OPT_NOP;
    out[at++] = OPT_NOP;
    out[at++] = OPT_SACK_PERMITTED;
    out[at++] = 2;
  }
  if (o.wscale !== undefined) {
    out[at++] = OPT_NOP;
    out[at++] = OPT_WSCALE;
    out[at++] = 3;
    out[at++] = o.wscale & 0xff;
  }
  const blocks = sackBlocksThatFit(o, at - start);
  if (blocks > 0 && o.sack) {
    out[at++] = OPT_NOP;
    out[at++] = OPT_NOP;
    out[at++] = OPT_SACK;
    out[at++] = 2 + blocks * 8;
    for (let b = 0; b < blocks; b++) {
      write32(out, at, o.sack[b][0] >>> 0);
      write32(out, at + 4, o.sack[b][1] >>> 0);
      at += 8;
    }
  }
  return at - start;
}

/**
 * Writes a whole segment at `out[offset]`: header, options, then `seg.payload` (not copied when it
 * already sits right there), and fills the checksum. `pseudoHeaderSum` must have been computed with
 * upperLength = header + options + payload length. Returns the bytes written.
 */
export function writeTcp(
  out: Uint8Array,
  offset: number,
  seg: TcpSegment,
  pseudoHeaderSum: number,
  computeChecksum = true,
): number {
  const headerLength = TCP_HEADER_LENGTH + tcpOptionsLength(seg.options);
  const total = headerLength + seg.payload.length;
  out[offset] = seg.srcPort >>> 8;
  out[offset + 1] = seg.srcPort & 0xff;
  out[offset + 2] = seg.dstPort >>> 8;
  out[offset + 3] = seg.dstPort & 0xff;
  write32(out, offset + 4, seg.seq >>> 0);
  write32(out, offset + 8, seg.ack >>> 0);
  out[offset + 12] = (headerLength / 4) << 4;
  out[offset + 13] = seg.flags & 0xff;
  out[offset + 14] = (seg.window >>> 8) & 0xff;
  out[offset + 15] = seg.window & 0xff;
  out[offset + 16] = 0;
  out[offset + 17] = 0;
  out[offset + 18] = (seg.urgent >>> 8) & 0xff;
  out[offset + 19] = seg.urgent & 0xff;
  writeOptions(out, offset + TCP_HEADER_LENGTH, seg.options);
  const payloadAt = offset + headerLength;
  const p = seg.payload;
  if (p.length > 0 && !(p.buffer === out.buffer && p.byteOffset === out.byteOffset + payloadAt)) {
    out.set(p, payloadAt);
  }
  // Without it (a link that cannot corrupt, see LinkEnd.checksumOffload) the field stays 0.
  if (!computeChecksum) return total;
  const checksum = ~sum16(out, offset, total, pseudoHeaderSum) & 0xffff;
  out[offset + 16] = checksum >>> 8;
  out[offset + 17] = checksum & 0xff;
  return total;
}

const FLAG_DISPLAY_ORDER: Array<[number, string]> = [
  [SYN, 'SYN'],
  [FIN, 'FIN'],
  [RST, 'RST'],
  [PSH, 'PSH'],
  [ACK, 'ACK'],
  [URG, 'URG'],
  [ECE, 'ECE'],
  [CWR, 'CWR'],
];

/** Flag names in reading order (SYN FIN RST PSH ACK URG ECE CWR): 0x12 is ['SYN', 'ACK']. */
export function flagNames(flags: number): string[] {
  const names: string[] = [];
  for (const [bit, name] of FLAG_DISPLAY_ORDER) if (flags & bit) names.push(name);
  return names;
}

/**
 * Options as short strings in emit order: MSS=1460, SACK_PERM, TS=val/ecr, WS=7, then one
 * SACK=left-right per block — only the blocks `writeTcp` puts on the wire (with timestamps, 3 of a
 * connection's 4), so a trace says what the segment carried.
 */
export function formatOptions(o: TcpOptions): string[] {
  const out: string[] = [];
  if (o.mss !== undefined) out.push(`MSS=${o.mss}`);
  if (o.sackPermitted) out.push('SACK_PERM');
  if (o.timestamp) out.push(`TS=${o.timestamp.val}/${o.timestamp.ecr}`);
  if (o.wscale !== undefined) out.push(`WS=${o.wscale}`);
  if (o.sack) {
    const blocks = sackBlocksThatFit(o, baseOptionsLength(o));
    for (let i = 0; i < blocks; i++) out.push(`SACK=${o.sack[i]![0]}-${o.sack[i]![1]}`);
  }
  return out;
}
