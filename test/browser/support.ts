/**
 * What the browser tests share: headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core), bounded waits, a page's errors, screenshots, and the `skipped: needs …` rule.
 *
 * Not a test: node --test runs every .js under test/, and importing this does nothing (constants and
 * functions only).
 *
 * playwright-core is loaded at run time by a computed specifier, so the project compiles whether or
 * not it is installed; the interfaces below are the few parts of its API the tests use.
 */
import type { TestContext } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
