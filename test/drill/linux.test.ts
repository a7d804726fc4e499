/**
 * The Linux kernel's own packetdrill scripts (tools/testing/selftests/net/packetdrill, from Debian's
 * linux-source-6.12, which .ci/run installs), run unmodified. The scripts stay in the kernel's
 * tarball (GPL-2.0); this test extracts them to a temporary folder.
 *
 * Those listed in RUNS must PASS. The others must SKIP (zero-copy, MD5, TCP_INQ, Fast Open: features
 * synack does not have) or FAIL for the reasons README.md's conformance section gives — and none may
 * crash the runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDrillFile } from '../../src/drill/file.js';

const TARBALL = '/usr/src/linux-source-6.12.tar.xz';
const DIR = 'linux-source-6.12/tools/testing/selftests/net/packetdrill';

/** Run unmodified and pass. */
const RUNS = [
  'tcp_slow_start_slow-start-ack-per-1pkt.pkt',
  'tcp_slow_start_slow-start-ack-per-2pkt.pkt',
  'tcp_slow_start_slow-start-ack-per-2pkt-send-5pkt.pkt',
  // A stretch ACK of 4 segments grows cwnd by 4 (Linux's tcp_slow_start; RFC 3465's L = 2 would give 2).
  'tcp_slow_start_slow-start-ack-per-4pkt.pkt',
];

test('the Linux kernel selftests\' packetdrill scripts run unmodified', (t) => {
  if (!existsSync(TARBALL)) {
    if (process.env['CI'] === 'true') assert.fail(`${TARBALL} is missing (apt-get install linux-source-6.12)`);
    t.skip('skipped: needs linux-source-6.12 (apt-get install linux-source-6.12)');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'synack-linux-pkt-'));
  try {
    execFileSync('tar', ['-xJf', TARBALL, '-C', tmp, '--wildcards', `${DIR}/*.pkt`], { stdio: 'ignore', timeout: 120_000 });
    const dir = join(tmp, DIR);
    const files = readdirSync(dir).filter((f) => f.endsWith('.pkt')).sort();
    assert.ok(files.length >= 20, `only ${files.length} scripts in the tarball`);
    const lines: string[] = [];
    for (const f of files) {
      const r = runDrillFile(f, readFileSync(join(dir, f), 'utf8'));
      assert.doesNotMatch(r.error ?? '', /internal error|parser error|cannot read the script/, `${f}: ${r.error}`);
      const verdict = r.skipped !== undefined ? `SKIP ${r.skipped}` : r.ok ? 'PASS' : `FAIL line ${r.line}: ${r.error}`;
      lines.push(`${f}: ${verdict}`);
      if (RUNS.includes(f)) assert.ok(r.ok && r.skipped === undefined, `${f}: ${verdict}`);
    }
    for (const l of lines) t.diagnostic(l);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
