import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { demoCommand } from '../../src/cli/demo.js';
import { runCli } from '../../src/cli/program.js';
import { capture } from './helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

test('synack demo: the diagram and a passing summary, exit 0', () => {
  const c = capture();
  assert.equal(demoCommand([], c.io), 0);
  const out = c.out();
  for (const s of ['SYN-SENT', 'SYN-RECEIVED', 'FIN-WAIT-2', 'CLOSE-WAIT', 'LAST-ACK', 'TIME-WAIT']) assert.ok(out.includes(s), s);
  assert.match(out, /──SYN seq=0 win=\d+ \[MSS=1460,SACK_PERM,TS=\d+\/0,WS=7\]─+▶/);
  assert.match(out, /\nok: \d+ checks passed/);
  assert.equal(c.err(), '');
  assert.ok(!out.includes('\x1b['), 'no colour when stdout is not a terminal');
});

test('--json prints only the model, of the contract shape', () => {
  const c = capture({ isTTY: true });
  assert.equal(demoCommand(['--json', '--scenario', 'refused'], c.io), 0);
  const j = JSON.parse(c.out()) as {
    endpoints: Array<{ name: string; address: string; port: number; states: Array<{ t: number; state: string; cause: string }> }>;
    segments: Array<Record<string, unknown>>;
    inferred: boolean;
    ok: boolean;
  };
  assert.deepEqual(j.endpoints.map((e) => e.name), ['client', 'server']);
  assert.equal(j.endpoints[0]!.address, '10.0.0.1');
  assert.equal(typeof j.endpoints[0]!.port, 'number');
  assert.deepEqual(j.endpoints[0]!.states.map((s) => s.state), ['CLOSED', 'SYN-SENT', 'CLOSED']);
  assert.equal(typeof j.endpoints[0]!.states[1]!.cause, 'string');
  assert.equal(j.inferred, false);
  assert.equal(j.ok, true);
  const seg = j.segments[0]!;
  assert.deepEqual(
    Object.keys(seg).filter((k) => ['t', 'from', 'to', 'flags', 'seq', 'ack', 'len', 'win', 'options', 'dropped', 'seqAbs', 'ackAbs'].includes(k)).length,
    12,
  );
  assert.deepEqual(seg['flags'], ['SYN']);
  assert.equal(seg['from'], 'client');
  assert.equal(seg['to'], 'server');
  assert.equal(seg['dropped'], false);
});

test('bad usage exits 2 with a one-line reason', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--loss', 'lots'], /bad --loss 'lots'/],
    [['--loss', '1.5'], /bad --loss/],
    [['--seed=-1'], /bad --seed/],
    [['--seed', '1.5'], /bad --seed/],
    [['--seed', '-1'], /'--seed' argument is ambiguous/],
    [['--width', '10'], /bad --width/],
    [['--bytes', '0'], /bad --bytes/],
    [['--scenario', 'nope'], /unknown scenario 'nope' \(valid: handshake, simultaneous-open, .*zero-window\)/],
    [['--svg', ''], /--svg needs a file name/],
    [['--html', ''], /--html needs a file name/],
    [['extra'], /Unexpected argument 'extra'/],
    [['--color', '--no-color'], /contradict/],
  ];
  for (const [args, reason] of cases) {
    const c = capture();
    assert.equal(demoCommand(args, c.io), 2, args.join(' '));
    assert.match(c.err(), reason);
    assert.equal(c.err().trimEnd().split('\n').length, 1, `one line: ${c.err()}`);
    assert.equal(c.out(), '');
  }
});

test('a failed check exits 1: with every packet lost the handshake never completes', () => {
  const c = capture();
  assert.equal(demoCommand(['--loss', '1'], c.io), 1);
  assert.match(c.out(), /FAILED: \d+ of \d+ checks failed/);
  assert.match(c.out(), /──SYN seq=0 .*──✕ lost/);
  const j = capture();
  assert.equal(demoCommand(['--loss', '1', '--json'], j.io), 1);
  assert.equal((JSON.parse(j.out()) as { ok: boolean }).ok, false);
});

test('--help on the command and on the program', async () => {
  const c = capture();
  assert.equal(demoCommand(['--help'], c.io), 0);
  assert.match(c.out(), /Usage: synack demo/);
  assert.match(c.out(), /zero-window/);
  const p = capture();
  assert.equal(await runCli(['--help'], p.io), 0);
  assert.match(p.out(), /Usage: synack <command>/);
  const d = capture();
  assert.equal(await runCli(['demo', '-h'], d.io), 0);
  assert.match(d.out(), /Usage: synack demo/);
});

test('unknown commands exit 2 with a one-line reason', async () => {
  const c = capture();
  assert.equal(await runCli(['frobnicate'], c.io), 2);
  assert.match(c.err(), /unknown command 'frobnicate'/);
  const none = capture();
  assert.equal(await runCli([], none.io), 2);
});

test('colour: on a terminal unless NO_COLOR, forced by --color, refused by --no-color', () => {
  const tty = capture({ isTTY: true, columns: 120 });
  demoCommand([], tty.io);
  assert.ok(tty.out().includes('\x1b[1;36mSYN-SENT'));
  const noColor = capture({ isTTY: true, env: { NO_COLOR: '1' } });
  demoCommand([], noColor.io);
  assert.ok(!noColor.out().includes('\x1b['));
  const forced = capture();
  demoCommand(['--color'], forced.io);
  assert.ok(forced.out().includes('\x1b['));
  const refused = capture({ isTTY: true });
  demoCommand(['--no-color'], refused.io);
  assert.ok(!refused.out().includes('\x1b['));
});

test('width: --width, else the terminal`s columns; no diagram line is longer', () => {
  for (const [args, columns, width] of [[['--width', '60'], undefined, 60], [[], 72, 72], [['--width', '140'], 72, 140]] as const) {
    const c = capture({ isTTY: columns !== undefined, columns });
    demoCommand([...args, '--explain'], c.io);
    const diagram = c.out().split('\n\n')[0]!;
    for (const line of diagram.split('\n')) assert.ok([...stripAnsi(line)].length <= width, `${width}: ${line}`);
    assert.ok(diagram.split('\n').some((l) => [...stripAnsi(l)].length >= width - 10), 'uses the width');
  }
});

test('--explain shows causes and RFC sections; --ascii uses -> and <-', () => {
  const c = capture();
  demoCommand(['--explain'], c.io);
  assert.match(c.out(), /↳ client SYN-SENT: .*\(RFC 9293 §3\.10\.1\)/);
  const a = capture();
  demoCommand(['--ascii'], a.io);
  assert.match(a.out(), /--SYN seq=0 .*-> \|/);
  assert.match(a.out(), /<--SYN,ACK seq=0 ack=1/);
});

test('--pcap writes the capture', () => {
  const c = capture();
  assert.equal(demoCommand(['--pcap', 'out.pcap', '--json'], c.io), 0);
  const bytes = c.files.get('out.pcap');
  assert.ok(bytes !== undefined && bytes.length > 24);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true), 0xa1b2c3d4);
  JSON.parse(c.out()); // still only JSON on stdout
});

test('--svg, --html and --mermaid write the diagram in those formats', () => {
  const c = capture();
  assert.equal(demoCommand(['--scenario', 'refused', '--svg', 'd.svg', '--html', 'd.html', '--mermaid', 'd.mmd'], c.io), 0, c.err());
  const text = (p: string): string => new TextDecoder().decode(c.files.get(p));
  assert.match(text('d.svg'), /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(text('d.svg'), /<title id="synack-title">synack demo --scenario refused: connect to a port nobody listens on/);
  assert.match(text('d.svg'), /<tspan class="flag-rst">RST<\/tspan>,ACK seq=0 ack=1 win=0/);
  assert.match(text('d.html'), /^<!DOCTYPE html>/);
  assert.match(text('d.html'), /<script type="application\/json" id="synack-data">/);
  assert.match(text('d.mmd'), /^sequenceDiagram\n/);
  assert.match(text('d.mmd'), /\n {4}server->>client: RST,ACK seq=0 ack=1 win=0\n/);
  assert.match(c.out(), /diagram written to d\.svg\ndiagram written to d\.html\ndiagram written to d\.mmd\n$/);
});

/** The executable itself: `#!/usr/bin/env node`, exit statuses through the process. */
test('the synack executable runs the demo and sets its exit status', () => {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const main = fileURLToPath(new URL(`../../src/cli/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  assert.ok(existsSync(main), main);
  const root = fileURLToPath(new URL(ts ? '../..' : '../../..', import.meta.url));
  const run = (args: string[]) =>
    spawnSync(process.execPath, [...(ts ? ['--import', 'tsx'] : []), main, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ok = run(['demo', '--scenario', 'abort']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /RST/);
  assert.equal(run(['demo', '--nope']).status, 2);
  assert.equal(run(['demo', '--loss', '1']).status, 1);
  // A reader that stops early (`synack demo | head -1`): no EPIPE stack trace, a quiet exit.
  const head = spawnSync('sh', ['-c', `"${process.execPath}" ${ts ? '--import tsx ' : ''}"${main}" demo --scenario transfer --json | head -c 10`], { cwd: root, encoding: 'utf8' });
  assert.equal(head.stderr, '');
  assert.equal(head.stdout.length, 10);
});
