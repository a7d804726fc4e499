/** `synack drill`: usage, output, exit status and JSON shape (CONTRACT.md), serial and on workers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/program.js';
import { repoRoot } from '../support/repo.js';
import { capture } from './helpers.js';

const root = repoRoot();
const GOOD = join(root, 'test', 'drill', 'scripts', 'passive-request-reply.pkt');
const BAD = join(root, 'test', 'drill', 'fixtures', 'wrong-ack.pkt');

test('usage: no path, a missing path, a bad --jobs exit 2 with a one-line reason; --help exits 0', async () => {
  for (const args of [[], ['/nonexistent/x.pkt'], ['--jobs', '0', GOOD], ['--bogus', GOOD]]) {
    const c = capture();
    assert.equal(await runCli(['drill', ...args], c.io), 2, args.join(' '));
    assert.equal(c.err().trim().split('\n').length, 1, c.err());
  }
  const c = capture();
  assert.equal(await runCli(['drill', '--help'], c.io), 0);
  assert.match(c.out(), /Usage: synack drill/);
});

test('PASS and FAIL lines, the expected and actual segment, last line "N passed, M failed", exit 1', async () => {
  const c = capture();
  assert.equal(await runCli(['drill', GOOD, BAD], c.io), 1);
  const lines = c.out().trim().split('\n');
  assert.match(lines[0]!, /^PASS .*passive-request-reply\.pkt$/);
  assert.match(lines[1]!, /^FAIL .*wrong-ack\.pkt:13: packet differs: ack 101 ≠ 102$/);
  assert.match(lines[2]!, /expected: > \. 1:1\(0\) ack 102$/);
  assert.match(lines[3]!, /actual: {3}> \. 1:1\(0\) ack 101 win \d+$/);
  assert.equal(lines.at(-1), '1 passed, 1 failed');
  const ok = capture();
  assert.equal(await runCli(['drill', GOOD], ok.io), 0);
});

test('--json: the contract shape, and the same results on worker threads as in one thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-drill-'));
  try {
    for (let i = 0; i < 9; i++) copyFileSync(GOOD, join(dir, `good-${i}.pkt`));
    copyFileSync(BAD, join(dir, 'bad.pkt'));
    const runs = [];
    for (const jobs of ['1', '2']) {
      const c = capture();
      assert.equal(await runCli(['drill', '--json', '--jobs', jobs, dir], c.io), 1);
      runs.push(JSON.parse(c.out()) as { results: Array<{ file: string; ok: boolean; error?: string }>; passed: number; failed: number });
    }
    for (const r of runs) {
      assert.equal(r.passed, 9);
      assert.equal(r.failed, 1);
      assert.equal(r.results.length, 10);
      const bad = r.results.find((x) => x.file.endsWith('bad.pkt'));
      assert.equal(bad?.ok, false);
      assert.match(bad?.error ?? '', /ack 101 ≠ 102/);
    }
    assert.deepEqual(runs[0], runs[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
