/**
 * Builders for capture files in every layout the reader accepts (test helper: does nothing on import).
 * Written here from the format documents, independently of src/trace/capture.ts.
 */

export interface Rec {
  /** Seconds since the epoch. */
  t: number;
  frame: Uint8Array;
  /** Original length (default frame.length). */
  orig?: number;
}

/** Classic pcap: either byte order, µs or ns timestamps. */
export function buildPcap(linkType: number, recs: Rec[], o: { bigEndian?: boolean; nanoseconds?: boolean; snaplen?: number } = {}): Uint8Array {
  const le = o.bigEndian !== true;
  const units = o.nanoseconds === true ? 1e9 : 1e6;
  const total = 24 + recs.reduce((n, r) => n + 16 + r.frame.length, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, o.nanoseconds === true ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, o.snaplen ?? 262144, le);
  v.setUint32(20, linkType, le);
  let off = 24;
  for (const r of recs) {
    const sec = Math.floor(r.t);
    const frac = Math.round((r.t - sec) * units);
    v.setUint32(off, sec, le);
    v.setUint32(off + 4, Math.min(frac, units - 1), le);
    v.setUint32(off + 8, r.frame.length, le);
    v.setUint32(off + 12, r.orig ?? r.frame.length, le);
    out.set(r.frame, off + 16);
    off += 16 + r.frame.length;
  }
  return out;
}

class Blocks {
  readonly parts: Uint8Array[] = [];
  constructor(readonly le: boolean) {}
  block(type: number, body: Uint8Array): void {
    const len = 12 + ((body.length + 3) & ~3);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, this.le);
    v.setUint32(4, len, this.le);
    b.set(body, 8);
    v.setUint32(len - 4, len, this.le);
    this.parts.push(b);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export interface NgInterface {
  linkType: number;
  /** if_tsresol byte (default: none → µs). */
  tsresol?: number;
}

export interface NgSection {
  bigEndian?: boolean;
  interfaces: NgInterface[];
  /** Packets: which interface, and the block kind (default EPB). */
  packets: Array<Rec & { iface?: number; kind?: 'epb' | 'spb' | 'pb' }>;
  /** Add a block of an unknown type (and a Name Resolution Block) that the reader must skip. */
  junk?: boolean;
}

function unitsOf(tsresol: number | undefined): number {
  if (tsresol === undefined) return 1e6;
  return tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol;
}

/** pcapng: one or more sections, each in its own byte order. */
export function buildPcapng(sections: NgSection[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const s of sections) {
    const le = s.bigEndian !== true;
    const b = new Blocks(le);
    const shb = new Uint8Array(16);
    const sv = new DataView(shb.buffer);
    sv.setUint32(0, 0x1a2b3c4d, le);
    sv.setUint16(4, 1, le);
    sv.setUint16(6, 0, le);
    sv.setBigInt64(8, -1n, le); // section length unknown
    b.block(0x0a0d0d0a, shb);
    for (const i of s.interfaces) {
      const opts = i.tsresol === undefined ? new Uint8Array(0) : new Uint8Array(8 + 4);
      if (i.tsresol !== undefined) {
        const ov = new DataView(opts.buffer);
        ov.setUint16(0, 9, le);
        ov.setUint16(2, 1, le);
        opts[4] = i.tsresol;
        // then opt_endofopt (zeros)
      }
      const body = new Uint8Array(8 + opts.length);
      const bv = new DataView(body.buffer);
      bv.setUint16(0, i.linkType, le);
      bv.setUint32(4, 262144, le);
      body.set(opts, 8);
      b.block(1, body);
    }
    if (s.junk === true) {
      b.block(0x00000bad, new Uint8Array([1, 2, 3, 4, 5]));
      b.block(4, new Uint8Array(4)); // Name Resolution Block with only nrb_record_end
    }
    for (const p of s.packets) {
      const iface = p.iface ?? 0;
      const units = unitsOf(s.interfaces[iface]!.tsresol);
      const ts = BigInt(Math.floor(p.t)) * BigInt(units) + BigInt(Math.round((p.t - Math.floor(p.t)) * units));
      const kind = p.kind ?? 'epb';
      if (kind === 'spb') {
        const body = new Uint8Array(4 + p.frame.length);
        new DataView(body.buffer).setUint32(0, p.orig ?? p.frame.length, le);
        body.set(p.frame, 4);
        b.block(3, body);
        continue;
      }
      const body = new Uint8Array(20 + p.frame.length);
      const bv = new DataView(body.buffer);
      if (kind === 'epb') bv.setUint32(0, iface, le);
      else bv.setUint16(0, iface, le);
      bv.setUint32(4, Number(ts >> 32n), le);
      bv.setUint32(8, Number(ts & 0xffffffffn), le);
      bv.setUint32(12, p.frame.length, le);
      bv.setUint32(16, p.orig ?? p.frame.length, le);
      body.set(p.frame, 20);
      b.block(kind === 'epb' ? 6 : 2, body);
    }
    parts.push(...b.parts);
  }
  return concat(parts);
}

/** Link-layer headers in front of an IP packet. */
export const wrap = {
  ethernet(ip: Uint8Array, vlanTags: number[] = []): Uint8Array {
    const h = new Uint8Array(14 + 4 * vlanTags.length);
    h.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
    let at = 12;
    for (const tpid of vlanTags) {
      h[at] = tpid >> 8;
      h[at + 1] = tpid & 0xff;
      h[at + 2] = 0;
      h[at + 3] = 42; // VLAN id 42
      at += 4;
    }
    const type = ip[0]! >> 4 === 4 ? 0x0800 : 0x86dd;
    h[at] = type >> 8;
    h[at + 1] = type & 0xff;
    return concat([h, ip]);
  },
  sll(ip: Uint8Array): Uint8Array {
    const h = new Uint8Array(16);
    h[1] = 4; // outgoing
    h[3] = 1; // ARPHRD_ETHER
    h[5] = 6;
    const type = ip[0]! >> 4 === 4 ? 0x0800 : 0x86dd;
    h[14] = type >> 8;
    h[15] = type & 0xff;
    return concat([h, ip]);
  },
  sll2(ip: Uint8Array): Uint8Array {
    const h = new Uint8Array(20);
    const type = ip[0]! >> 4 === 4 ? 0x0800 : 0x86dd;
    h[0] = type >> 8;
    h[1] = type & 0xff;
    h[7] = 2; // ifindex
    h[9] = 1; // ARPHRD_ETHER
    h[10] = 4;
    h[11] = 6;
    return concat([h, ip]);
  },
  /** BSD loopback: the family in the capturing host's byte order. */
  null(ip: Uint8Array, bigEndian: boolean, af6 = 30): Uint8Array {
    const af = ip[0]! >> 4 === 4 ? 2 : af6;
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, af, !bigEndian);
    return concat([h, ip]);
  },
  loop(ip: Uint8Array, af6 = 24): Uint8Array {
    const af = ip[0]! >> 4 === 4 ? 2 : af6;
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, af, false);
    return concat([h, ip]);
  },
};

/** An ARP request in an Ethernet frame (not IP: the reader must skip it). */
export function arpFrame(): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f[12] = 0x08;
  f[13] = 0x06;
  return f;
}

/**
 * The records of a little-endian microsecond classic pcap (what synack's PcapWriter writes: the
 * demo's captures), times shifted by `shift` seconds — to merge or cut captures in tests.
 */
export function pcapRecords(pcap: Uint8Array, shift = 0): Rec[] {
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const out: Rec[] = [];
  for (let off = 24; off + 16 <= pcap.length; ) {
    const incl = v.getUint32(off + 8, true);
    out.push({ t: shift + v.getUint32(off, true) + v.getUint32(off + 4, true) / 1e6, frame: pcap.slice(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}

/** One side of a hand-built segment: IPv4 address and port. */
export type HostPort = readonly [string, number];

export interface SegmentSpec {
  from: HostPort;
  to: HostPort;
  /** Flags as letters: F S R P A (e.g. 'SA' for SYN,ACK, 'FA', 'PA', 'R'). */
  flags: string;
  seq: number;
  ack?: number;
  /** Payload bytes (zeros). */
  len?: number;
  win?: number;
  /** Raw option bytes (padded with EOL to a multiple of 4). */
  options?: number[];
}

const FLAG_LETTERS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10 };

/**
 * A hand-built IPv4/TCP packet (RFC 791, RFC 9293 §3.1) with a correct IPv4 header checksum; the
 * TCP checksum is left zero (draw does not verify it: captures at the sender precede offload).
 */
export function tcpIpv4(s: SegmentSpec): Uint8Array {
  const opts = s.options ?? [];
  const optLen = (opts.length + 3) & ~3;
  const tcpLen = 20 + optLen;
  const total = 20 + tcpLen + (s.len ?? 0);
  const p = new Uint8Array(total);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, total);
  p[8] = 64;
  p[9] = 6;
  s.from[0].split('.').forEach((x, i) => (p[12 + i] = Number(x)));
  s.to[0].split('.').forEach((x, i) => (p[16 + i] = Number(x)));
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, s.from[1]);
  v.setUint16(22, s.to[1]);
  v.setUint32(24, s.seq >>> 0);
  v.setUint32(28, (s.ack ?? 0) >>> 0);
  p[32] = (tcpLen / 4) << 4;
  p[33] = [...s.flags].reduce((f, c) => f | FLAG_LETTERS[c]!, 0);
  v.setUint16(34, s.win ?? 1000);
  p.set(opts, 40);
  return p;
}
