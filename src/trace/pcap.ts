/**
 * A classic libpcap capture writer (the format of tcpdump and Wireshark: a 24-byte global header,
 * then a 16-byte header per record), with microsecond timestamps. The link type is LINKTYPE_RAW
 * (101): each record is a bare IP packet, and the version nibble tells IPv4 from IPv6, so both can
 * share one file — which LINKTYPE_IPV4/IPV6 could not. No Node API: the caller decides where the
 * bytes go (the CLI writes them to a file, the browser offers a download).
 *
 * Reference: https://www.tcpdump.org/linktypes.html and draft-ietf-opsawg-pcap §4–5.
 */

import type { TraceEvent } from './events.js';

/** LINKTYPE_RAW: raw IPv4 or IPv6, no link-layer header. */
export const LINKTYPE_RAW = 101;
/** IEEE 802.3 Ethernet frames (tcpdump.org link types). */
export const LINKTYPE_ETHERNET = 1;
/** Written in host order by libpcap; we always write little-endian, readers detect it from this. */
export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
/** The same format with nanosecond timestamps (never written here; the capture reader accepts it). */
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_GLOBAL_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

export interface PcapWriterOptions {
  /** What each record holds: IP packets (LINKTYPE_RAW, the default) or Ethernet frames (LINKTYPE_ETHERNET). */
  linkType?: 'raw' | 'ethernet';
  /** Longest packet prefix stored per record. Default 262144 (what tcpdump uses). */
  snaplen?: number;
  /** Keep every record for `toBytes()` (default true); false when the caller streams `record()`. */
  collect?: boolean;
}

export class PcapWriter {
  readonly snaplen: number;
  readonly linkType: number;
  private readonly collect: boolean;
  private readonly chunks: Uint8Array[] = [];
  private collectedLength = 0;

  constructor(opts: PcapWriterOptions = {}) {
    const snaplen = opts.snaplen ?? 262144;
    if (!Number.isInteger(snaplen) || snaplen <= 0) throw new RangeError('PcapWriter: bad snaplen');
    this.snaplen = snaplen;
    this.collect = opts.collect ?? true;
    this.linkType = opts.linkType === 'ethernet' ? LINKTYPE_ETHERNET : LINKTYPE_RAW;
  }

  /** The 24-byte global header. */
  header(): Uint8Array {
    const bytes = new Uint8Array(PCAP_GLOBAL_HEADER_LENGTH);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, PCAP_MAGIC_USEC, true);
    v.setUint16(4, 2, true); // version 2.4
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone: timestamps are UTC
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, this.snaplen, true);
    v.setUint32(20, this.linkType, true);
    return bytes;
  }

  /** One record (header and packet, truncated to snaplen) at `tMs` milliseconds; also collected. */
  record(tMs: number, packet: Uint8Array): Uint8Array {
    const incl = Math.min(packet.length, this.snaplen);
    const bytes = new Uint8Array(PCAP_RECORD_HEADER_LENGTH + incl);
    const v = new DataView(bytes.buffer);
    const us = Math.max(0, Math.round(tMs * 1000));
    const sec = Math.floor(us / 1e6);
    v.setUint32(0, sec >>> 0, true);
    v.setUint32(4, us - sec * 1e6, true);
    v.setUint32(8, incl, true);
    v.setUint32(12, packet.length, true);
    bytes.set(incl === packet.length ? packet : packet.subarray(0, incl), PCAP_RECORD_HEADER_LENGTH);
    if (this.collect) {
      this.chunks.push(bytes);
      this.collectedLength += bytes.length;
    }
    return bytes;
  }

  /** Collects one record. */
  write(tMs: number, packet: Uint8Array): void {
    this.record(tMs, packet);
  }

  /**
   * Records the packet a trace event carries: TCP segments ('segment') and UDP datagrams
   * ('datagram'), in the directions asked (default both: a capture of one host). Other events
   * are ignored; returns whether one was written. A datagram is recorded whole, as the stack sent
   * it before fragmentation or took it in after reassembly.
   */
  writeEvent(e: TraceEvent, dirs: 'in' | 'out' | 'both' = 'both'): boolean {
    const packet = tracePacket(e, dirs);
    if (packet === null) return false;
    this.record(e.t, packet);
    return true;
  }

  /** The whole capture: global header and every collected record. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(PCAP_GLOBAL_HEADER_LENGTH + this.collectedLength);
    out.set(this.header(), 0);
    let off = PCAP_GLOBAL_HEADER_LENGTH;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** The IP packet of a 'segment' or 'datagram' trace event in the directions asked, else null. */
export function tracePacket(e: TraceEvent, dirs: 'in' | 'out' | 'both' = 'both'): Uint8Array | null {
  if (e.type !== 'segment' && e.type !== 'datagram') return null;
  if (dirs !== 'both' && e.dir !== dirs) return null;
  return e.packet;
}
