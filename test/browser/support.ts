/**
 * What the browser tests share: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core), bounded waits, a page's errors, screenshots, and the `skipped: needs …` rule.
 *
 * Not a test: node --test runs every .js under test/, and importing this does nothing (constants and
 * functions only).
 *
 * playwright-core and esbuild are loaded at run time by a computed specifier, so the project compiles
 * whether or not they are installed; the interfaces below are the few parts of their APIs the tests use.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';
import { repoRoot } from '../support/repo.js';

export const CHROMIUM = process.env['SYNACK_CHROMIUM'] ?? '/usr/bin/chromium';
/** Every wait in the browser tests is bounded; a hang fails the test instead of holding CI. */
export const LAUNCH_TIMEOUT_MS = 60_000;
export const PAGE_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 15_000;

export interface ConsoleMessage {
  type(): string;
  text(): string;
}
export interface Request {
  url(): string;
}
export interface Locator {
  hover(options?: { timeout?: number }): Promise<void>;
  click(options?: { timeout?: number }): Promise<void>;
  focus(options?: { timeout?: number }): Promise<void>;
}
export interface Page {
  goto(url: string, options: { timeout: number }): Promise<unknown>;
  waitForFunction(expression: string, arg: undefined, options: { timeout: number }): Promise<unknown>;
  waitForSelector(selector: string, options: { timeout: number; state?: 'attached' | 'visible' }): Promise<unknown>;
  evaluate<T = unknown>(expression: string): Promise<T>;
  locator(selector: string): Locator;
  click(selector: string, options?: { timeout: number }): Promise<void>;
  selectOption(selector: string, value: string, options?: { timeout: number }): Promise<unknown>;
  fill(selector: string, value: string, options?: { timeout: number }): Promise<void>;
  keyboard: { press(key: string): Promise<void> };
  mouse: { move(x: number, y: number): Promise<void> };
  screenshot(options: { path: string; timeout: number; fullPage?: boolean }): Promise<unknown>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  on(event: 'pageerror', fn: (error: Error) => void): unknown;
  on(event: 'console', fn: (message: ConsoleMessage) => void): unknown;
  on(event: 'request', fn: (request: Request) => void): unknown;
  setDefaultTimeout(ms: number): void;
  close(): Promise<void>;
}
export interface Browser {
  newPage(options?: { viewport: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
export interface Chromium {
  launch(options: { executablePath: string; args: string[]; headless: boolean; timeout: number }): Promise<Browser>;
}

/** `skipped: needs X` — except under CI=true, where a missing tool is a failure (CONTRACT.md). */
export function needs(t: TestContext, what: string, why: string): void {
  if (process.env['CI'] === 'true') throw new Error(`needs ${what} (${why}); under CI=true this is a failure, not a skip`);
  t.skip(`skipped: needs ${what}`);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** playwright-core's chromium with CHROMIUM present; null (after `needs`) when either is missing. */
export async function findChromium(t: TestContext): Promise<Chromium | null> {
  type Module = Partial<{ chromium: Chromium }> & { default?: { chromium: Chromium } };
  const pw = (await import('playwright-core' as string).catch(() => null)) as Module | null;
  const chromium = pw?.chromium ?? pw?.default?.chromium;
  if (chromium === undefined) {
    needs(t, 'chromium', 'npm package playwright-core is missing');
    return null;
  }
  if (!existsSync(CHROMIUM)) {
    needs(t, 'chromium', `${CHROMIUM} is missing: apt-get install chromium`);
    return null;
  }
  return chromium;
}

/** Starts headless Chromium (no sandbox: CI runs as root), within LAUNCH_TIMEOUT_MS. */
export function launch(chromium: Chromium): Promise<Browser> {
  return withTimeout(
    chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--headless=new'],
      headless: true,
      timeout: LAUNCH_TIMEOUT_MS,
    }),
    LAUNCH_TIMEOUT_MS + 5_000,
    'chromium launch',
  );
}

/** Closes the browser, bounded; a failure to close is not the test's failure. */
export async function closeBrowser(browser: Browser | undefined): Promise<void> {
  if (browser !== undefined) await withTimeout(browser.close(), CLOSE_TIMEOUT_MS, 'chromium close').catch(() => {});
}

/**
 * The page's errors, as they come: uncaught exceptions and console errors (and console warnings
 * unless `warnings` is false). A test asserts the list is empty.
 */
export function pageProblems(page: Page, options: { warnings?: boolean } = {}): string[] {
  const kinds = options.warnings === false ? ['error'] : ['error', 'warning'];
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.stack ?? e.message}`));
  page.on('console', (m) => {
    if (kinds.includes(m.type())) problems.push(`console.${m.type()}: ${m.text()}`);
  });
  return problems;
}

/** test-output/screenshots/ (CI keeps it as an artifact), made on first use. */
function screenshotDir(): string {
  const dir = join(repoRoot(), 'test-output', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a screenshot of `page` as test-output/screenshots/`name`. */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  await page.screenshot({ path: join(screenshotDir(), name), timeout: PAGE_TIMEOUT_MS, ...(options.fullPage === true ? { fullPage: true } : {}) });
}

// --- Bundling a page script (test/browser/fixtures/*.js) with esbuild, and serving it.

interface EsbuildMetaImport {
  path: string;
  kind: string;
  external?: boolean;
  original?: string;
}
interface EsbuildResult {
  errors: unknown[];
  warnings: unknown[];
  outputFiles?: Array<{ path: string; text: string }>;
  metafile?: { inputs: Record<string, { bytes: number; imports: EsbuildMetaImport[] }> };
}
interface Esbuild {
  build(options: Record<string, unknown>): Promise<EsbuildResult>;
}

export interface Bundle {
  js: string;
  inputs: NonNullable<EsbuildResult['metafile']>['inputs'];
  warnings: unknown[];
}

const bundles = new Map<string, Promise<Bundle | null>>();

/**
 * esbuild's browser bundle of `entry` (`platform: 'browser'`, ESM, not written; `outfile` names it),
 * with its metafile, built once per entry; null when esbuild is not installed.
 */
export function bundleForBrowser(entry: string, outfile: string): Promise<Bundle | null> {
  let b = bundles.get(entry);
  if (b === undefined) bundles.set(entry, (b = build(entry, outfile)));
  return b;
}

async function build(entry: string, outfile: string): Promise<Bundle | null> {
  const mod = (await import('esbuild' as string).catch(() => null)) as (Esbuild & { default?: Esbuild }) | null;
  if (mod === null) return null;
  const esbuild = typeof mod.build === 'function' ? mod : mod.default!;
  const root = repoRoot();
  const built = await withTimeout(
    esbuild.build({
      entryPoints: [entry],
      absWorkingDir: root,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outfile,
    }),
    PAGE_TIMEOUT_MS,
    'esbuild',
  );
  return { js: built.outputFiles![0]!.text, inputs: built.metafile!.inputs, warnings: built.warnings };
}

/**
 * The checks every browser bundle passes: esbuild did not warn; the entry's `import … from 'synack'`
 * went through the exports map's "browser" condition to the core entry, dist/src/index.js; only the
 * entry and the project's own build output went in (no dependency, no polyfill); every import was
 * resolved inside the bundle, none left external, none to a node: module, and no require() is left.
 * Returns the bundle's input files (paths from the repository root).
 */
export function assertBrowserBundle(b: Bundle, entry: string): string[] {
  assert.deepEqual(b.warnings, [], 'esbuild warned');
  const entryKey = relative(repoRoot(), entry).split(sep).join('/');
  const entryImports = b.inputs[entryKey]?.imports ?? [];
  const synack = entryImports.find((i) => i.original === 'synack');
  assert.ok(synack, `the entry's import of 'synack' is not in the metafile: ${JSON.stringify(entryImports)}`);
  assert.equal(synack.path, 'dist/src/index.js', 'the "browser" condition must pick the core entry, dist/src/index.js');
  const files = Object.keys(b.inputs);
  for (const f of files) {
    assert.ok(f === entryKey || f.startsWith('dist/src/'), `bundle pulled in ${f}`);
    assert.ok(!f.includes('node_modules'), `bundle pulled in a dependency (a polyfill?): ${f}`);
  }
  for (const [file, input] of Object.entries(b.inputs)) {
    for (const imp of input.imports) {
      assert.ok(!imp.external, `${file} leaves ${imp.path} external`);
      assert.ok(!imp.path.startsWith('node:') && !(imp.original ?? '').startsWith('node:'), `${file} imports ${imp.path}`);
    }
  }
  assert.doesNotMatch(b.js, /\b(?:from|import|require)\s*\(?\s*["']node:/, 'a node: import is left in the bundle');
  assert.doesNotMatch(b.js, /\brequire\s*\(/, 'a require() call is left in the ESM bundle');
  return files;
}

/** An HTTP server (not yet listening) with a page titled `title` at / that loads `js` as a module script. */
export function bundlePageServer(title: string, js: string): Server {
  const html =
    `<!doctype html><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,">` +
    '<script type="module" src="/bundle.js"></script>';
  return createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (req.url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(js);
    else res.writeHead(404).end();
  });
}

/** Listens on 127.0.0.1, a port of the system's choosing; that port. */
export function listen(server: Server): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    }),
    PAGE_TIMEOUT_MS,
    'http listen',
  );
}

/** Closes the server and its connections, bounded; a failure to close is not the test's failure. */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return;
  server.closeAllConnections();
  await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, 'http close').catch(() => {});
}

/**
 * A new page of `browser` at `url`, once the bundle has put `global` on globalThis; with the page's
 * errors (console errors, not warnings) as they come.
 */
export async function openBundlePage(browser: Browser, url: string, global: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const problems = pageProblems(page, { warnings: false });
  await page.goto(url, { timeout: PAGE_TIMEOUT_MS });
  await page.waitForFunction(`globalThis.${global} !== undefined`, undefined, { timeout: PAGE_TIMEOUT_MS }).catch((e: unknown) => {
    throw new Error(`the bundle did not load: ${problems.join('\n') || String(e)}`);
  });
  return { page, problems };
}
