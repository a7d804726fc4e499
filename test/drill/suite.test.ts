/**
 * The conformance suite: every script under test/drill/scripts must PASS (none may be skipped), and
 * the whole suite runs in under 30 s. The scripts under test/drill/fixtures are wrong on purpose:
 * each must FAIL at the line its name says, so the runner is shown to catch what it claims to.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { collectScripts } from '../../src/cli/drill.js';
import { runDrillFile } from '../../src/drill/file.js';
import { repoRoot } from '../support/repo.js';

const root = repoRoot();
const SCRIPTS = join(root, 'test', 'drill', 'scripts');
const FIXTURES = join(root, 'test', 'drill', 'fixtures');

describe('packetdrill conformance suite (test/drill/scripts)', () => {
  const files = collectScripts([SCRIPTS]);
  const started = performance.now();
  for (const file of files) {
    const name = file.slice(SCRIPTS.length + 1);
    test(name, () => {
      const r = runDrillFile(name, readFileSync(file, 'utf8'));
      assert.equal(r.skipped, undefined, `skipped: ${r.skipped}`);
      assert.ok(r.ok, `line ${r.line}: ${r.error}\n  expected: ${r.expected}\n  actual:   ${r.actual}`);
    });
  }
  test('the whole suite runs in under 30 s', () => {
    const s = (performance.now() - started) / 1000;
    assert.ok(s < 30, `${files.length} scripts took ${s.toFixed(1)} s`);
  });
});

/** Wrong on purpose: fixture name → the line the runner must report. */
const MUST_FAIL: Record<string, { line: number; error: RegExp }> = {
  'wrong-ack.pkt': { line: 13, error: /ack 101 ≠ 102/ },
  'too-early.pkt': { line: 13, error: /no packet from the stack/ },
  // The ACK of the peer's FIN, which the script forgot, is taken by its next `>` line (the FIN's).
  'unexpected-ack.pkt': { line: 21, error: /flags \. ≠ F\./ },
  'wrong-read.pkt': { line: 14, error: /read\(\) returned 100/ },
  'wrong-state.pkt': { line: 20, error: /tcpi_state == TCP_CLOSE_WAIT/ },
  'wrong-ecr.pkt': { line: 8, error: /options differ/ },
  'wrong-so-error.pkt': { line: 9, error: /SO_ERROR is \[0\], expected \[ECONNREFUSED\]/ },
};

describe('the runner catches wrong scripts (test/drill/fixtures)', () => {
  for (const [name, want] of Object.entries(MUST_FAIL)) {
    test(name, () => {
      const r = runDrillFile(name, readFileSync(join(FIXTURES, name), 'utf8'));
      assert.equal(r.ok, false, 'a wrong script passed');
      assert.equal(r.line, want.line, `${r.error}`);
      assert.match(r.error ?? '', want.error);
    });
  }
  test('every fixture is listed', () => {
    assert.deepEqual(collectScripts([FIXTURES]).map((f) => f.slice(FIXTURES.length + 1)).sort(), Object.keys(MUST_FAIL).sort());
  });
});
