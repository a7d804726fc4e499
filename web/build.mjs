#!/usr/bin/env node
// Builds the `synack ui` page (web/) into dist/web/: esbuild bundles web/app.ts and the core it
// imports for the browser (no Node built-in can get in: `platform: 'browser'` refuses them), and the
// HTML and CSS are copied beside it. `npm run build:web`; `npm run build`, `prepare` and `test` run it.
// Usage: node web/build.mjs [OUTDIR]   (default dist/web, relative to the repo root)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = resolve(root, process.argv[2] ?? join('dist', 'web'));

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'web', 'app.ts')],
  outfile: join(outdir, 'app.js'),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
for (const file of Object.keys(result.metafile.inputs)) {
  if (file.includes('node_modules') || /^(src\/cli|src\/socket\/net|src\/link\/tun)/.test(file)) {
    console.error(`build:web: ${file} must not be in the browser bundle`);
    process.exit(1);
  }
}
for (const f of ['index.html', 'style.css']) copyFileSync(join(root, 'web', f), join(outdir, f));
