/** Paths shared by tests that look at the package as a whole (its build, its entry points). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo root: the nearest package.json named synack above this file (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'synack') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json named synack above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
