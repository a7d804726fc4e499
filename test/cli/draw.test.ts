/**
 * `synack draw` as a command (in process, real files): every format, --stream, --list, -o, and the
 * errors — one line on stderr, exit 1 for a file that cannot be drawn, exit 2 for bad usage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawCommand } from '../../src/cli/draw.js';
import { runCli } from '../../src/cli/program.js';
import { runScenario } from '../../src/demo/scenarios.js';
import { buildPcap } from '../trace/capture-builders.js';
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

/** Records of a LINKTYPE_RAW demo pcap, shifted by dt seconds. */
function records(pcap: Uint8Array, dt: number): Array<{ t: number; frame: Uint8Array }> {
  const v = new DataView(pcap.buffer, pcap.byteOffset);
  const out: Array<{ t: number; frame: Uint8Array }> = [];
  for (let off = 24; off < pcap.length; ) {
    const incl = v.getUint32(off + 8, true);
    out.push({ t: 1_700_000_000 + dt + v.getUint32(off, true) + v.getUint32(off + 4, true) / 1e6, frame: pcap.slice(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}
const TWO = file('two.pcap', buildPcap(101, [...records(runScenario('refused').pcap, 0), ...records(runScenario('abort', { seed: 9 }).pcap, 0.001)].sort((a, b) => a.t - b.t)));

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
