/**
 * The capture reader (src/trace/capture.ts): pcap in both byte orders and both timestamp
 * resolutions, pcapng with several sections, per-interface link types and resolutions, EPB/SPB/PB,
 * every supported link type, and clear errors naming the byte offset for corrupt or cut files.
 * The packets are the demo's own (IPv4 and IPv6), wrapped in each link layer by test/trace/capture-builders.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScenario } from '../../src/demo/scenarios.js';
import { CaptureError, readCapture } from '../../src/trace/capture.js';
import { extractTcp } from '../../src/diagram/infer.js';
import { arpFrame, buildPcap, buildPcapng, wrap, type Rec } from './capture-builders.js';

/** The demo's packets, read straight from its LINKTYPE_RAW little-endian µs pcap. */
function demoPackets(ipv6 = false): Array<{ t: number; ip: Uint8Array }> {
  const pcap = runScenario('handshake', ipv6 ? { ipv6: true } : {}).pcap;
  const v = new DataView(pcap.buffer, pcap.byteOffset, pcap.byteLength);
  const out: Array<{ t: number; ip: Uint8Array }> = [];
  // Demo times start at 0; move them to a realistic epoch so that seconds and fractions both matter.
  for (let off = 24; off < pcap.length; ) {
    const incl = v.getUint32(off + 8, true);
    out.push({ t: 1_700_000_000 + v.getUint32(off, true) + v.getUint32(off + 4, true) / 1e6, ip: pcap.slice(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}

const V4 = demoPackets();
const V6 = demoPackets(true);
const BOTH = [...V4, ...V6.map((p) => ({ t: p.t + 1, ip: p.ip }))];

function sameIp(got: ReturnType<typeof readCapture>, want: Array<{ t: number; ip: Uint8Array }>, tolerance = 1e-6): void {
  assert.equal(got.packets.length, want.length, 'one packet per IP record');
  got.packets.forEach((p, i) => {
    assert.deepEqual([...p.bytes], [...want[i]!.ip], `packet ${i}: the IP packet, link header stripped`);
    assert.ok(Math.abs(p.t - want[i]!.t) <= tolerance, `packet ${i}: time ${p.t} vs ${want[i]!.t}`);
    assert.equal(p.truncated, false);
  });
}

const LINKS: Array<[string, number, (ip: Uint8Array) => Uint8Array, Array<{ t: number; ip: Uint8Array }>]> = [
  ['Ethernet', 1, (ip) => wrap.ethernet(ip), BOTH],
  ['Ethernet + 802.1Q', 1, (ip) => wrap.ethernet(ip, [0x8100]), BOTH],
  ['Ethernet + QinQ (88a8, 8100)', 1, (ip) => wrap.ethernet(ip, [0x88a8, 0x8100]), BOTH],
  ['raw IP (101)', 101, (ip) => ip, BOTH],
  ['raw IPv4 (228)', 228, (ip) => ip, V4],
  ['raw IPv6 (229)', 229, (ip) => ip, V6],
  ['Linux SLL (113)', 113, (ip) => wrap.sll(ip), BOTH],
  ['Linux SLL2 (276)', 276, (ip) => wrap.sll2(ip), BOTH],
  ['NULL, little-endian family, AF_INET6 = 30', 0, (ip) => wrap.null(ip, false, 30), BOTH],
  ['NULL, big-endian family, AF_INET6 = 28', 0, (ip) => wrap.null(ip, true, 28), BOTH],
  ['NULL, AF_INET6 = 24', 0, (ip) => wrap.null(ip, false, 24), BOTH],
  ['LOOP (108)', 108, (ip) => wrap.loop(ip), BOTH],
];

for (const [name, linkType, fn, packets] of LINKS) {
  test(`pcap, link type ${name}: the IP packets come out, link header stripped`, () => {
    const recs: Rec[] = packets.map((p) => ({ t: p.t, frame: fn(p.ip) }));
    const r = readCapture(buildPcap(linkType, recs));
    assert.equal(r.format, 'pcap');
    sameIp(r, packets);
    assert.ok(r.packets.every((p) => p.linkType === linkType));
    assert.deepEqual(r.warnings, []);
  });
}

test('pcap: both byte orders and both timestamp resolutions read alike', () => {
  const recs: Rec[] = BOTH.map((p) => ({ t: p.t, frame: p.ip }));
  for (const bigEndian of [false, true]) {
    for (const nanoseconds of [false, true]) {
      const r = readCapture(buildPcap(101, recs, { bigEndian, nanoseconds }));
      sameIp(r, BOTH, nanoseconds ? 1e-6 : 1e-6);
    }
  }
  // A nanosecond time is kept to the nanosecond (well within double precision at this epoch).
  const ns = readCapture(buildPcap(101, [{ t: 1_700_000_000.123456789, frame: V4[0]!.ip }], { nanoseconds: true }));
  assert.ok(Math.abs(ns.packets[0]!.t - 1_700_000_000.123456789) < 1e-7);
});

test('non-IP frames are skipped and counted; unknown link types too', () => {
  const recs: Rec[] = [{ t: 1, frame: arpFrame() }, { t: 2, frame: wrap.ethernet(V4[0]!.ip) }];
  const r = readCapture(buildPcap(1, recs));
  assert.equal(r.packets.length, 1);
  assert.equal(r.records, 2);
  assert.deepEqual(r.skipped, { 'non-IP frame': 1 });
  assert.equal(r.packets[0]!.index, 1, 'record numbers count skipped records');
  const odd = readCapture(buildPcap(147, [{ t: 1, frame: V4[0]!.ip }]));
  assert.equal(odd.packets.length, 0);
  assert.deepEqual(odd.skipped, { 'unsupported link type 147': 1 });
});

test('pcapng: sections in both byte orders, per-interface link types and if_tsresol, EPB/SPB/PB, unknown blocks skipped', () => {
  const bytes = buildPcapng([
    {
      interfaces: [{ linkType: 1 }, { linkType: 276, tsresol: 9 }],
      junk: true,
      packets: V4.slice(0, 4).map((p, i) => ({ t: p.t, frame: i % 2 === 0 ? wrap.ethernet(p.ip) : wrap.sll2(p.ip), iface: i % 2 })),
    },
    {
      bigEndian: true,
      interfaces: [{ linkType: 101, tsresol: 0x80 | 20 }],
      packets: V4.slice(4).map((p, i) => ({ t: p.t, frame: p.ip, kind: i === 1 ? ('pb' as const) : ('epb' as const) })),
    },
    {
      interfaces: [{ linkType: 0 }],
      packets: V6.map((p) => ({ t: p.t, frame: wrap.null(p.ip, false) })),
    },
  ]);
  const r = readCapture(bytes);
  assert.equal(r.format, 'pcapng');
  sameIp(r, [...V4, ...V6], 1e-6);
  assert.deepEqual(r.packets.map((p) => p.linkType), [1, 276, 1, 276, ...V4.slice(4).map(() => 101), ...V6.map(() => 0)]);
  assert.deepEqual(r.packets.slice(0, 4).map((p) => p.interfaceId), [0, 1, 0, 1]);
});

test('pcapng: a Simple Packet Block (no timestamp) takes the time of the packet before it', () => {
  const bytes = buildPcapng([{
    interfaces: [{ linkType: 101 }],
    packets: [{ t: 5.5, frame: V4[0]!.ip }, { t: 0, frame: V4[1]!.ip, kind: 'spb' }],
  }]);
  const r = readCapture(bytes);
  assert.equal(r.packets.length, 2);
  assert.deepEqual([...r.packets[1]!.bytes], [...V4[1]!.ip]);
  assert.equal(r.packets[1]!.t, 5.5);
});

test('snaplen-truncated packets keep their headers, are marked, and their TCP length comes from IP', () => {
  const data = V4.find((p) => p.ip.length > 80)!;
  const r = readCapture(buildPcap(1, [{ t: 1, frame: wrap.ethernet(data.ip).subarray(0, 14 + 60), orig: 14 + data.ip.length }], { snaplen: 74 }));
  const p = r.packets[0]!;
  assert.equal(p.truncated, true);
  assert.equal(p.bytes.length, 60);
  assert.equal(p.origLength, data.ip.length);
  const { segments } = extractTcp(r.packets);
  assert.equal(segments.length, 1);
  const ihl = (data.ip[0]! & 15) * 4;
  const thl = (data.ip[ihl + 12]! >> 4) * 4;
  assert.equal(segments[0]!.len, data.ip.length - ihl - thl);
  assert.equal(segments[0]!.truncated, true);
});

test('corrupt and cut files: CaptureError naming the offset and what was wrong', () => {
  const good = buildPcap(101, V4.map((p) => ({ t: p.t, frame: p.ip })));
  const first = V4[0]!.ip.length;
  const throws = (bytes: Uint8Array, re: RegExp, strict = false): void => {
    assert.throws(() => readCapture(bytes, { strict }), (e: unknown) => e instanceof CaptureError && re.test(e.message), String(re));
  };
  throws(new Uint8Array(0), /^empty file/);
  throws(new TextEncoder().encode('<!DOCTYPE html><html>'), /^not a pcap or pcapng capture: the file starts with 3c 21 44 4f/);
  throws(good.subarray(0, 20), /^truncated pcap global header at offset 0: 24 bytes needed, 20 present/);
  // The file stops in the middle of the second record: a warning by default, an error when strict.
  const secondAt = 24 + 16 + first;
  const cut = good.subarray(0, secondAt + 16 + 10);
  const len2 = V4[1]!.ip.length;
  const msg = `truncated packet record at offset ${secondAt}: header says ${len2} bytes, 10 remain`;
  const r = readCapture(cut);
  assert.equal(r.packets.length, 1);
  assert.deepEqual(r.warnings, [msg]);
  throws(cut, new RegExp(`^${msg}$`), true);
  throws(good.subarray(0, secondAt + 7), new RegExp(`^truncated packet record header at offset ${secondAt}: 16 bytes needed, 7 remain$`), true);
  // An impossible length in the middle of the file is corruption, not a cut.
  const bad = good.slice();
  new DataView(bad.buffer).setUint32(secondAt + 8, 0xfffffff0, true);
  throws(bad, new RegExp(`^corrupt packet record at offset ${secondAt}: captured length 4294967280 is impossibly large$`));
  // pcapng: trailing length that disagrees, a packet for an interface never described, a cut block.
  const ng = buildPcapng([{ interfaces: [{ linkType: 101 }], packets: V4.slice(0, 2).map((p) => ({ t: p.t, frame: p.ip })) }]);
  const shbLen = 28;
  const idbLen = 20;
  const epbAt = shbLen + idbLen;
  const ngBad = ng.slice();
  const epbLen = new DataView(ngBad.buffer).getUint32(epbAt + 4, true);
  new DataView(ngBad.buffer).setUint32(epbAt + epbLen - 4, epbLen + 4, true);
  throws(ngBad, new RegExp(`^corrupt block at offset ${epbAt}: leading length ${epbLen} and trailing length ${epbLen + 4} differ$`));
  const ngIface = ng.slice();
  new DataView(ngIface.buffer).setUint32(epbAt + 8, 3, true);
  throws(ngIface, new RegExp(`^corrupt Enhanced Packet Block at offset ${epbAt}: interface 3 was never described$`));
  const ngCut = ng.subarray(0, epbAt + 30);
  throws(ngCut, new RegExp(`^truncated block at offset ${epbAt}: header says ${epbLen} bytes, 30 remain$`), true);
  assert.equal(readCapture(ngCut).warnings.length, 1);
  const ngOdd = ng.slice();
  new DataView(ngOdd.buffer).setUint32(epbAt + 4, 13, true);
  throws(ngOdd, new RegExp(`^corrupt block at offset ${epbAt}: block length 13 \\(must be a multiple of 4, at least 12\\)$`));
  // Too large is its own reason, not "a multiple of 4".
  const ngHuge = ng.slice();
  new DataView(ngHuge.buffer).setUint32(epbAt + 4, 0x10000000, true);
  throws(ngHuge, new RegExp(`^corrupt block at offset ${epbAt}: block length 268435456 is impossibly large \\(the limit is 64 MiB\\)$`));
  // A timestamp no date can show (if_tsresol 10^0 = seconds, all ones): an error naming the block.
  const ngTime = buildPcapng([{ interfaces: [{ linkType: 101, tsresol: 0 }], packets: [{ t: 1, frame: V4[0]!.ip }] }]);
  const tsAt = 28 + 32; // SHB, then an IDB with the if_tsresol option
  new DataView(ngTime.buffer).setUint32(tsAt + 12, 0xffffffff, true);
  new DataView(ngTime.buffer).setUint32(tsAt + 16, 0xffffffff, true);
  throws(ngTime, new RegExp(`^corrupt Enhanced Packet Block at offset ${tsAt}: timestamp 18446744073709551615 \\(1\\.845e\\+19 s since 1970\\) is out of range`));
});

test('a sub-second field of 10^6 (10^9) or more is carried into the seconds, with a warning (as libpcap reads it)', () => {
  const recs = V4.slice(0, 3).map((p) => ({ t: p.t, frame: p.ip }));
  for (const nanoseconds of [false, true]) {
    const units = nanoseconds ? 1e9 : 1e6;
    const bytes = buildPcap(101, recs, { nanoseconds });
    const v = new DataView(bytes.buffer);
    const secondAt = 24 + 16 + recs[0]!.frame.length;
    v.setUint32(24, 1_700_000_000, true);
    v.setUint32(24 + 4, units, true); // exactly one second: a writer's rounding
    v.setUint32(secondAt, 1_700_000_000, true);
    v.setUint32(secondAt + 4, 2 * units + units / 4, true);
    const r = readCapture(bytes);
    assert.equal(r.packets.length, 3);
    assert.equal(r.packets[0]!.t, 1_700_000_001);
    assert.equal(r.packets[1]!.t, 1_700_000_002.25);
    assert.deepEqual(r.warnings, [`2 records (the first at offset 24) with a sub-second timestamp field of ${units} or more: the excess was carried into the seconds`]);
  }
});

// Real tools' pcapng: Wireshark's editcap rewrites the demo capture as pcapng (what dumpcap writes).
const haveEditcap = spawnSync('editcap', ['--version'], { encoding: 'utf8' }).status === 0;
if (!haveEditcap && process.env['CI'] === 'true') {
  test('editcap is installed (required under CI)', () => assert.fail('editcap (tshark/wireshark-common) missing: under CI=true a skip is a failure'));
}
test('pcapng and nanosecond pcap written by Wireshark\'s editcap', { skip: haveEditcap ? false : 'skipped: needs editcap (tshark)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-capture-'));
  try {
    const src = join(dir, 'demo.pcap');
    writeFileSync(src, buildPcap(1, BOTH.map((p) => ({ t: p.t, frame: wrap.ethernet(p.ip) }))));
    const ng = join(dir, 'demo.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', src, ng], { stdio: 'ignore' });
    const r = readCapture(readFileSync(ng));
    assert.equal(r.format, 'pcapng');
    sameIp(r, BOTH);
    const ns = join(dir, 'demo-ns.pcap');
    execFileSync('editcap', ['-F', 'nsecpcap', src, ns], { stdio: 'ignore' });
    const nsBytes = readFileSync(ns);
    assert.equal(nsBytes.readUInt32LE(0), 0xa1b23c4d, 'editcap wrote a nanosecond pcap');
    sameIp(readCapture(nsBytes), BOTH);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
