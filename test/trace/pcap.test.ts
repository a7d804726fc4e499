import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, PcapWriter } from '../../src/trace/pcap.js';

interface ParsedPcap {
  magic: number;
  major: number;
  minor: number;
  snaplen: number;
  linkType: number;
  records: Array<{ sec: number; usec: number; incl: number; orig: number; data: Uint8Array }>;
}

/** An independent reader written from the libpcap format description, not from the writer. */
function parsePcap(bytes: Uint8Array): ParsedPcap {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ParsedPcap = {
    magic: v.getUint32(0, true),
    major: v.getUint16(4, true),
    minor: v.getUint16(6, true),
    snaplen: v.getUint32(16, true),
    linkType: v.getUint32(20, true),
    records: [],
  };
  let off = 24;
  while (off < bytes.length) {
    const incl = v.getUint32(off + 8, true);
    out.records.push({
      sec: v.getUint32(off, true),
      usec: v.getUint32(off + 4, true),
      incl,
      orig: v.getUint32(off + 12, true),
      data: bytes.slice(off + 16, off + 16 + incl),
    });
    off += 16 + incl;
  }
  assert.equal(off, bytes.length, 'trailing bytes');
  return out;
}

/** RFC 1071 Internet checksum over the concatenation of `parts`. */
function internetChecksum(...parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A TCP SYN (ports 49152 -> 80, seq 0x01020304, MSS 1460), checksum filled in by the caller. */
function tcpSyn(): Uint8Array {
  const tcp = new Uint8Array(24);
  const v = new DataView(tcp.buffer);
  v.setUint16(0, 49152);
  v.setUint16(2, 80);
  v.setUint32(4, 0x01020304);
  v.setUint32(8, 0);
  tcp[12] = 6 << 4; // data offset: 6 words (one option)
  tcp[13] = 0x02; // SYN
  v.setUint16(14, 65535);
  tcp.set([2, 4, 0x05, 0xb4], 20); // MSS=1460 (RFC 9293 §3.2)
  return tcp;
}

function ipv4Syn(badChecksum = false): Uint8Array {
  const tcp = tcpSyn();
  const src = [10, 0, 0, 1];
  const dst = [10, 0, 0, 2];
  const pseudo = new Uint8Array([...src, ...dst, 0, 6, 0, tcp.length]);
  const sum = internetChecksum(pseudo, tcp);
  new DataView(tcp.buffer).setUint16(16, badChecksum ? sum ^ 0x1111 : sum);
  const ip = new Uint8Array(20 + tcp.length);
  const v = new DataView(ip.buffer);
  ip[0] = 0x45;
  v.setUint16(2, ip.length);
  v.setUint16(4, 0x1234);
  v.setUint16(6, 0x4000); // DF
  ip[8] = 64;
  ip[9] = 6;
  ip.set(src, 12);
  ip.set(dst, 16);
  v.setUint16(10, internetChecksum(ip.subarray(0, 20)));
  ip.set(tcp, 20);
  return ip;
}

function ipv6Syn(): Uint8Array {
  const tcp = tcpSyn();
  const src = new Uint8Array(16);
  const dst = new Uint8Array(16);
  src.set([0xfd, 0x00], 0);
  src[15] = 1;
  dst.set([0xfd, 0x00], 0);
  dst[15] = 2;
  // RFC 8200 §8.1 pseudo-header: src, dst, upper-layer length (32 bits), 3 zero bytes, next header.
  const pseudo = new Uint8Array(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  new DataView(pseudo.buffer).setUint32(32, tcp.length);
  pseudo[39] = 6;
  new DataView(tcp.buffer).setUint16(16, internetChecksum(pseudo, tcp));
  const ip = new Uint8Array(40 + tcp.length);
  const v = new DataView(ip.buffer);
  ip[0] = 0x60;
  v.setUint16(4, tcp.length);
  ip[6] = 6;
  ip[7] = 64;
  ip.set(src, 8);
  ip.set(dst, 24);
  ip.set(tcp, 40);
  return ip;
}

test('the global header is classic libpcap, microseconds, LINKTYPE_RAW', () => {
  const w = new PcapWriter();
  const h = w.header();
  assert.equal(h.length, 24);
  // Little-endian magic a1b2c3d4 reads as d4 c3 b2 a1 on disk.
  assert.deepEqual([...h.subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1]);
  const p = parsePcap(h);
  assert.equal(p.major, 2);
  assert.equal(p.minor, 4);
  assert.equal(p.linkType, 101);
  assert.equal(LINKTYPE_RAW, 101);
  assert.equal(p.snaplen, 262144);
  assert.equal(new PcapWriter({ snaplen: 96, linkType: 'raw' }).snaplen, 96);
  assert.throws(() => new PcapWriter({ snaplen: 0 }), RangeError);
});

test('records carry microsecond timestamps, lengths and the packet bytes', () => {
  const w = new PcapWriter();
  const a = ipv4Syn();
  const b = ipv6Syn();
  const rec = w.record(1234.5678, a);
  assert.equal(rec.length, 16 + a.length);
  w.write(3_600_000.001, b);
  w.write(0, a);
  const p = parsePcap(w.toBytes());
  assert.equal(p.records.length, 3);
  assert.deepEqual(
    p.records.map((r) => [r.sec, r.usec, r.incl, r.orig]),
    [
      [1, 234568, a.length, a.length],
      [3600, 1, b.length, b.length],
      [0, 0, a.length, a.length],
    ],
  );
  assert.deepEqual(p.records[0]!.data, a);
  assert.deepEqual(p.records[1]!.data, b);
  // record() returns exactly what toBytes() holds for it.
  assert.deepEqual(w.toBytes().subarray(24, 24 + rec.length), rec);
});

test('packets longer than snaplen are truncated, keeping the original length', () => {
  const w = new PcapWriter({ snaplen: 30 });
  const a = ipv4Syn();
  w.write(1, a);
  const [r] = parsePcap(w.toBytes()).records;
  assert.equal(r!.incl, 30);
  assert.equal(r!.orig, a.length);
  assert.deepEqual(r!.data, a.subarray(0, 30));
});

test('collect: false streams records without keeping them', () => {
  const w = new PcapWriter({ collect: false });
  assert.equal(w.record(1, ipv4Syn()).length, 16 + 44);
  assert.equal(w.toBytes().length, 24);
});

test('tshark reads the capture: IPv4 and IPv6 SYNs with good checksums, a bad one flagged', (t) => {
  const probe = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    if (process.env['CI'] === 'true') assert.fail('skipped: needs tshark (CI=true: missing tshark is a failure)');
    t.skip('skipped: needs tshark');
    return;
  }
  const w = new PcapWriter();
  w.write(1000, ipv4Syn());
  w.write(1001.5, ipv6Syn());
  w.write(1002, ipv4Syn(true));
  const dir = mkdtempSync(join(tmpdir(), 'synack-pcap-'));
  try {
    const file = join(dir, 'syn.pcap');
    writeFileSync(file, w.toBytes());
    const r = spawnSync(
      'tshark',
      [
        '-r', file,
        '-o', 'tcp.check_checksum:TRUE',
        '-o', 'ip.check_checksum:TRUE',
        '-T', 'fields',
        '-E', 'separator=,',
        '-e', 'frame.time_epoch',
        '-e', 'ip.src',
        '-e', 'ipv6.src',
        '-e', 'tcp.flags',
        '-e', 'tcp.options.mss_val',
        '-e', 'tcp.checksum.status',
        '-e', 'ip.checksum.status',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    // Wireshark's checksum status values (`tshark -G values`): 0 Bad, 1 Good, 2 Unverified.
    const lines = r.stdout.trim().split('\n').map((l) => l.split(','));
    assert.equal(lines.length, 3);
    const [v4, v6, bad] = lines as [string[], string[], string[]];
    assert.equal(Number(v4[0]), 1);
    assert.equal(Number(v6[0]), 1.0015);
    assert.equal(v4[1], '10.0.0.1');
    assert.equal(v6[2], 'fd00::1');
    for (const l of [v4, v6]) {
      assert.equal(Number(l[3]), 0x002, 'SYN only');
      assert.equal(l[4], '1460');
      assert.equal(l[5], '1', 'tcp.checksum.status Good');
    }
    assert.equal(v4[6], '1', 'ip.checksum.status Good');
    assert.equal(bad[5], '0', 'a wrong checksum is reported Bad');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
