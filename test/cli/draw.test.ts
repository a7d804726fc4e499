/**
 * `synack draw` as a command (in process, real files): every format, --stream, --list, -o, and the
 * errors — one line on stderr, exit 1 for a file that cannot be drawn, exit 2 for bad usage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawCommand, fmtTime, formatStreamList, STREAM_HINT_ROWS } from '../../src/cli/draw.js';
import type { StreamSummary } from '../../src/diagram/infer.js';
import { runCli } from '../../src/cli/program.js';
import { runScenario } from '../../src/demo/scenarios.js';
import { arpFrame, buildPcap, buildPcapng, pcapRecords, tcpIpv4, wrap } from '../trace/capture-builders.js';
import { capture } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'synack-draw-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const handshake = runScenario('handshake');
const HS = file('handshake.pcap', handshake.pcap);

const TWO = file('two.pcap', buildPcap(101, [...pcapRecords(runScenario('refused').pcap, 1_700_000_000), ...pcapRecords(runScenario('abort', { seed: 9 }).pcap, 1_700_000_000.001)].sort((a, b) => a.t - b.t)));

function run(args: string[]): { code: number; out: string; err: string; files: Map<string, Uint8Array> } {
  const c = capture();
  const code = drawCommand(args, c.io);
  return { code, out: c.out(), err: c.err(), files: c.files };
}

test('draw: text by default — the ladder with both sides\' inferred states', () => {
  const r = run([HS, '--width', '120', '--no-color']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  assert.match(r.out, /states inferred from the capture/);
  for (const s of ['CLOSED', 'LISTEN', 'SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSE-WAIT', 'TIME-WAIT', 'LAST-ACK']) {
    assert.ok(r.out.includes(s), s);
  }
  assert.ok(r.out.split('\n').every((l) => [...l].length <= 120 || l.includes('states inferred')), 'fits the width');
  assert.doesNotMatch(r.out, /\x1b\[/);
  const explained = run([HS, '--explain', '--ascii']);
  assert.match(explained.out, /sent SYN \(seq 0\)/);
  assert.match(explained.out, /RFC 9293 Figure 5/);
});

test('draw --format json (and --json): the contract\'s shape, inferred, address:port names', () => {
  for (const args of [['--format', 'json'], ['--json']]) {
    const r = run([HS, ...args]);
    assert.equal(r.code, 0, r.err);
    const m = JSON.parse(r.out) as {
      inferred: boolean; ok: boolean; endpoints: Array<{ name: string; address: string; port: number; states: Array<{ state: string }> }>;
      segments: Array<{ seq: number; seqAbs: number; from: string; to: string }>; capture: { stream: number; streams: number; format: string };
    };
    assert.equal(m.inferred, true);
    assert.equal(m.endpoints[1]!.name, '10.0.0.2:80');
    assert.equal(m.endpoints[0]!.name, `${m.endpoints[0]!.address}:${m.endpoints[0]!.port}`);
    assert.equal(m.segments.length, handshake.model.segments.length);
    assert.equal(m.segments[0]!.seq, 0);
    assert.deepEqual(m.endpoints.map((e) => e.states.map((s) => s.state)), handshake.model.endpoints.map((e) => e.states.map((s) => s.state)));
    assert.deepEqual([m.capture.stream, m.capture.streams, m.capture.format], [0, 1, 'pcap']);
  }
});

test('draw --format svg / html / mermaid, and -o F', () => {
  const svg = run([HS, '--format', 'svg']);
  assert.equal(svg.code, 0, svg.err);
  assert.match(svg.out, /<svg[\s>]/);
  assert.match(svg.out, /SYN-RECEIVED/);
  const html = run([HS, '--format', 'html']);
  assert.equal(html.code, 0, html.err);
  assert.match(html.out, /^<!DOCTYPE html>/i);
  const mer = run([HS, '--format', 'mermaid']);
  assert.equal(mer.code, 0, mer.err);
  assert.match(mer.out, /^sequenceDiagram/);
  const o = run([HS, '--format', 'svg', '-o', '/x/out.svg']);
  assert.equal(o.code, 0, o.err);
  assert.equal(o.out, '');
  assert.match(new TextDecoder().decode(o.files.get('/x/out.svg')), /<svg[\s>]/);
});

test('draw --list (text and JSON); several streams: the first with a SYN, the list on stderr; --stream N', () => {
  const list = run([TWO, '--list']);
  assert.equal(list.code, 0, list.err);
  const lines = list.out.trim().split('\n');
  assert.equal(lines.length, 3, list.out);
  assert.match(lines[1]!, /^0\s+10\.0\.0\.1:\d+\s+10\.0\.0\.2:81\s/);
  assert.match(lines[2]!, /^1\s+10\.0\.0\.1:\d+\s+10\.0\.0\.2:80\s/);
  const lj = JSON.parse(run([TWO, '--list', '--json']).out) as { streams: Array<{ index: number; b: { port: number }; rst: boolean }> };
  assert.deepEqual(lj.streams.map((s) => [s.index, s.b.port, s.rst]), [[0, 81, true], [1, 80, true]]);
  const d = run([TWO, '--json']);
  assert.equal(d.code, 0);
  assert.match(d.err, /has 2 TCP streams; drawing stream 0/);
  assert.equal((JSON.parse(d.out) as { endpoints: Array<{ port: number }> }).endpoints[1]!.port, 81);
  const s1 = run([TWO, '--json', '--stream', '1']);
  assert.equal(s1.code, 0);
  assert.equal(s1.err, '');
  const m1 = JSON.parse(s1.out) as { endpoints: Array<{ port: number; states: Array<{ state: string }> }> };
  assert.equal(m1.endpoints[1]!.port, 80);
  assert.deepEqual(m1.endpoints.map((e) => e.states.map((s) => s.state)), [['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'CLOSED'], ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSED']]);
});

test('draw errors: one line, exit 1 for the file, exit 2 for usage, never a stack trace', () => {
  const oneLine = (s: string): void => {
    assert.equal(s.trim().split('\n').length, 1, s);
    assert.match(s, /^synack draw: /);
    assert.doesNotMatch(s, /\n\s+at /);
  };
  const cases: Array<[string[], number, RegExp]> = [
    [[join(dir, 'nope.pcap')], 1, /cannot read .*nope\.pcap: no such file/],
    [[dir], 1, /is a directory/],
    [[file('page.html', '<!DOCTYPE html><html></html>')], 1, /not a pcap or pcapng capture: the file starts with 3c 21 44 4f/],
    [[file('empty.pcap', new Uint8Array(0))], 1, /empty file/],
    [[file('bad.pcap', (() => { const b = handshake.pcap.slice(); new DataView(b.buffer).setUint32(24 + 8, 0xffffff00, true); return b; })())], 1, /corrupt packet record at offset 24/],
    [[file('notcp.pcap', buildPcap(1, [{ t: 1, frame: new Uint8Array(60).fill(0xff) }]))], 1, /no TCP segments in 1 record \(skipped: 1 non-IP frame\)/],
    // A timestamp past any date (if_tsresol 10^0, all ones): the reader's error, not "internal error".
    [[file('huge-ts.pcapng', (() => {
      const b = buildPcapng([{ interfaces: [{ linkType: 101, tsresol: 0 }], packets: [{ t: 1, frame: pcapRecords(handshake.pcap)[0]!.frame }] }]);
      new DataView(b.buffer).setUint32(60 + 12, 0xffffffff, true);
      new DataView(b.buffer).setUint32(60 + 16, 0xffffffff, true);
      return b;
    })())], 1, /^synack draw: .*huge-ts\.pcapng: corrupt Enhanced Packet Block at offset 60: timestamp 18446744073709551615 .* is out of range/],
    [[], 2, /missing CAPTURE/],
    [[HS, HS], 2, /one capture at a time/],
    [[HS, '--format', 'png'], 2, /unknown --format 'png'/],
    [[HS, '--json', '--format', 'svg'], 2, /contradict/],
    [[HS, '--stream', 'x'], 2, /bad --stream 'x'/],
    [[HS, '--stream', '3'], 2, /no stream 3: .* has 1 TCP stream \(0\.\.0/],
    [[HS, '--bogus'], 2, /bogus/],
    [[HS, '--width', '5'], 2, /bad --width/],
  ];
  for (const [args, code, re] of cases) {
    const r = run(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.out, '', args.join(' '));
    oneLine(r.err);
    assert.match(r.err, re, args.join(' '));
  }
  // A capture cut mid-record still draws, with a warning.
  const cut = run([file('cut.pcap', handshake.pcap.subarray(0, handshake.pcap.length - 5)), '--json']);
  assert.equal(cut.code, 0);
  assert.match(cut.err, /^synack draw: warning: .*truncated packet record at offset \d+: header says \d+ bytes, \d+ remain\n$/);
});

test('synack draw --help, and through the program dispatcher', async () => {
  const c = capture();
  assert.equal(await runCli(['draw', '--help'], c.io), 0);
  assert.match(c.out(), /^Usage: synack draw CAPTURE/);
  const d = capture();
  assert.equal(await runCli(['draw', HS, '--json'], d.io), 0);
  assert.equal((JSON.parse(d.out()) as { inferred: boolean }).inferred, true);
});

test('draw: packets left out are reported (stderr warning, JSON capture.warnings); IPv4 checksum offload loses nothing', () => {
  // Ethernet: an ARP frame among the handshake's packets; and the client's packets with a zero IPv4
  // header checksum, as a capture on a host with checksum offload has them.
  const recs = pcapRecords(handshake.pcap, 1_700_000_000).map((r) => {
    const ip = r.frame.slice();
    if (ip[15] === 1) ip.fill(0, 10, 12);
    return { t: r.t, frame: wrap.ethernet(ip) };
  });
  const F = file('arp.pcap', buildPcap(1, [recs[0]!, { t: recs[0]!.t, frame: arpFrame() }, ...recs.slice(1)]));
  const r = run([F, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, `synack draw: warning: ${F}: 1 packet not drawn: 1 non-IP frame\n`);
  const m = JSON.parse(r.out) as { segments: unknown[]; capture: { warnings: string[]; skipped: Record<string, number> } };
  assert.equal(m.segments.length, handshake.model.segments.length, 'every TCP segment drawn, zero IP checksums included');
  assert.deepEqual(m.capture.warnings, ['1 packet not drawn: 1 non-IP frame']);
  assert.deepEqual(m.capture.skipped, { 'non-IP frame': 1 });
  const text = run([F, '--no-color']);
  assert.equal(text.code, 0);
  assert.match(text.err, /1 packet not drawn: 1 non-IP frame/);
  // Without anything left out: no warning, an empty list.
  const clean = run([HS, '--json']);
  assert.equal(clean.err, '');
  assert.deepEqual((JSON.parse(clean.out) as { capture: { warnings: string[] } }).capture.warnings, []);
});

test('fmtTime: rounded once to the microsecond (no lost carry); "?" for what is no date', () => {
  assert.equal(fmtTime(1_700_000_000.9999997), '2023-11-14T22:13:21.000000Z');
  assert.equal(fmtTime(1_700_000_000.25), '2023-11-14T22:13:20.250000Z');
  assert.equal(fmtTime(0), '1970-01-01T00:00:00.000000Z');
  assert.equal(fmtTime(1e300), '?');
  assert.equal(fmtTime(Number.NaN), '?');
  // Through the command: a nanosecond capture whose first packet is 0.3 µs before a second.
  const ns = buildPcap(101, [{ t: 0, frame: pcapRecords(handshake.pcap)[0]!.frame }], { nanoseconds: true });
  new DataView(ns.buffer).setUint32(24, 1_700_000_000, true);
  new DataView(ns.buffer).setUint32(28, 999_999_700, true);
  const r = run([file('ns.pcap', ns), '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { capture: { startIso: string } }).capture.startIso, '2023-11-14T22:13:21.000000Z');
});

test('many streams: --list of 200 000 (no spread into Math.min/max), and the stderr hint capped', () => {
  const side = (address: string, port: number) => ({ address, port, name: `${address}:${port}`, packets: 1, bytes: 0 });
  const many: StreamSummary[] = [];
  for (let i = 0; i < 200_000; i++) {
    many.push({ index: i, a: side(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1000), b: side('10.255.0.2', 80), first: 5 + i * 1e-6, last: 5 + i * 1e-6, packets: 1, syn: true, fin: false, rst: false });
  }
  const list = formatStreamList(many).split('\n');
  assert.equal(list.length, 200_001);
  assert.match(list[200_000]!, /^199999  10\.3\.13\.63:1000 +10\.255\.0\.2:80 +0\.200 /);
  const hint = formatStreamList(many, STREAM_HINT_ROWS).split('\n');
  assert.equal(hint.length, 1 + STREAM_HINT_ROWS + 1);
  assert.equal(hint[hint.length - 1], '… and 199980 more (see --list)');
  // Through the command: 25 SYNs from different ports; the hint shows 20 of them.
  const syns = Array.from({ length: 25 }, (_, i) => ({ t: 1_700_000_000 + i * 0.001, frame: tcpIpv4({ from: ['10.0.0.1', 2000 + i], to: ['10.0.0.2', 80], flags: 'S', seq: i }) }));
  const r = run([file('scan.pcap', buildPcap(101, syns)), '--json']);
  assert.equal(r.code, 0, r.err);
  const lines = r.err.trim().split('\n');
  assert.match(lines[0]!, /has 25 TCP streams; drawing stream 0/);
  assert.equal(lines.length, 1 + 1 + STREAM_HINT_ROWS + 1);
  assert.equal(lines[lines.length - 1], '… and 5 more (see --list)');
  const all = run([file('scan.pcap', buildPcap(101, syns)), '--list']);
  assert.equal(all.out.trim().split('\n').length, 26);
});
