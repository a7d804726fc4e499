/**
 * Regenerates docs/diagrams/*.svg: the diagrams of docs/tcp-connection-lifecycle.md, one of which,
 * docs/diagrams/handshake.svg (the default demo: handshake, request/reply, close, TIME-WAIT), is also
 * the picture README.md embeds. Each is exactly what `synack demo --scenario S --svg docs/diagrams/S.svg`
 * writes, produced here by running that command in process. The docs are thus drawn by the stack
 * itself; test/docs/diagrams.test.ts regenerates them into a temporary directory and fails if the
 * committed files differ.
 *
 *   npm run docs:diagrams            # writes docs/diagrams/*.svg (npm runs it from the repo root)
 *   node dist/tools/docs-diagrams.js [--out DIR]   # default: docs/diagrams under the current directory
 *
 * Importing this module does nothing; it runs only as the main script.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoCommand } from '../src/cli/demo.js';
import type { CliIO } from '../src/cli/io.js';
import { SCENARIOS, type ScenarioName } from '../src/demo/scenarios.js';

/**
 * The scenarios the docs page shows, in the order it shows them (the demo's): the connection's
 * lifecycle, so every scenario but the two about moving data (transfer, zero-window).
 */
export const DOC_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter((s) => s !== 'transfer' && s !== 'zero-window');

/** The command line that produces `docs/diagrams/<scenario>.svg`. */
export function docsCommand(scenario: string, path: string): string[] {
  return ['--scenario', scenario, '--svg', path];
}

/** Every docs diagram: file name → bytes, by running `synack demo` for each scenario. */
export function docsDiagrams(): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const scenario of DOC_SCENARIOS) {
    const name = `${scenario}.svg`;
    let err = '';
    const io: CliIO = {
      stdout: () => {},
      stderr: (t) => void (err += t),
      isTTY: false,
      columns: undefined,
      env: {},
      writeFile: (path, bytes) => void out.set(path, bytes),
    };
    const status = demoCommand(docsCommand(scenario, name), io);
    // The demo is itself a check: a diagram of a run whose checks failed would document a bug.
    if (status !== 0) throw new Error(`synack demo --scenario ${scenario} exited ${status}: ${err.trim()}`);
    if (!out.has(name)) throw new Error(`synack demo --scenario ${scenario} wrote no SVG`);
  }
  return out;
}

/** The page the diagrams illustrate, relative to the repo root: its presence says "this is the repo root". */
const DOCS_PAGE = join('docs', 'tcp-connection-lifecycle.md');

/** Write every docs diagram into `dir` (created if needed); returns the paths written. */
export function writeDocsDiagrams(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, bytes] of docsDiagrams()) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    written.push(path);
  }
  return written;
}

function main(argv: string[]): number {
  // The default is relative to the working directory, which `npm run` sets to the repo root; this
  // module cannot know the root from its own path (it runs from tools/, dist/tools/ or a scratch
  // build's outDir), and test/support/repo.ts belongs to the tests.
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out' && argv[i + 1] !== undefined) dir = resolve(argv[++i]!);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: node dist/tools/docs-diagrams.js [--out DIR]  (default: docs/diagrams, run from the repo root)\n');
      return 0;
    } else {
      process.stderr.write(`docs-diagrams: unknown argument '${a}'\n`);
      return 2;
    }
  }
  if (dir === undefined) {
    if (!existsSync(DOCS_PAGE)) {
      process.stderr.write(`docs-diagrams: ${DOCS_PAGE} not found here: run it from the repo root (npm run docs:diagrams) or pass --out DIR\n`);
      return 2;
    }
    dir = resolve('docs', 'diagrams');
  }
  try {
    for (const p of writeDocsDiagrams(dir)) process.stdout.write(`${p}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`docs-diagrams: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
