/**
 * Wireshark reads the demo's capture and finds every TCP checksum correct. In tshark's field output
 * `tcp.checksum.status` is 1 for Good (0 Bad, 2 Unverified — what it prints without check_checksum).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoCommand } from '../../src/cli/demo.js';
import { capture } from './helpers.js';

const haveTshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = haveTshark ? false : 'skipped: needs tshark';

function demoCapture(args: string[]): { file: string; packets: number; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'synack-pcap-'));
  const file = join(dir, 'demo.pcap');
  const c = capture();
  c.io.writeFile = (p, b) => writeFileSync(p, b);
  assert.equal(demoCommand([...args, '--pcap', file, '--json'], c.io), 0, c.err());
  const model = JSON.parse(c.out()) as { segments: unknown[] };
  return { file, packets: model.segments.length, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function tshark(file: string, fields: string[]): string[][] {
  const out = execFileSync(
    'tshark',
    ['-r', file, '-o', 'tcp.check_checksum:TRUE', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return out.trimEnd().split('\n').map((l) => l.split('\t'));
}

if (!haveTshark && process.env['CI'] === 'true') {
  test('tshark is installed (required under CI)', () => {
    assert.fail('tshark missing: under CI=true a skip is a failure');
  });
}

const CASES: Array<[string, string[]]> = [
  ['IPv4 handshake', []],
  ['IPv6 handshake', ['--ipv6']],
  ['syn-lost (the lost SYN is in the capture)', ['--scenario', 'syn-lost']],
  ['transfer', ['--scenario', 'transfer', '--bytes', '100000']],
];
for (const [name, args] of CASES) {
  test(`tshark: every TCP checksum of the demo capture is Good — ${name}`, { skip }, () => {
    const cap = demoCapture(args);
    try {
      const rows = tshark(cap.file, ['tcp.checksum.status', 'tcp.flags.syn']);
      assert.equal(rows.length, cap.packets, 'one record per packet sent');
      for (const [status] of rows) assert.equal(status, '1', 'checksum Good');
      if (args.includes('syn-lost')) {
        const times = tshark(cap.file, ['frame.time_relative', 'tcp.flags.syn', 'tcp.flags.ack']);
        const syns = times.filter(([, syn, ack]) => syn === '1' && ack === '0').map(([t]) => Number(t));
        assert.equal(syns.length, 2);
        assert.ok(Math.abs(syns[1]! - syns[0]! - 1) < 0.01);
      }
    } finally {
      cap.done();
    }
  });
}
