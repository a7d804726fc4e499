/**
 * The browser promise of CONTRACT.md ("Library API": the browser bundle clause): a bundler that honours
 * the exports map's `browser` condition turns `import { Stack, MemoryLink, VirtualClock } from 'synack'`
 * into a bundle with no Node built-in and no polyfill, and that bundle runs TCP in a real browser.
 *
 * 1. esbuild (`bundle`, `platform: 'browser'`, `format: 'esm'`) bundles test/browser/fixtures/entry.js,
 *    which imports the package by its own name (package self-reference), from the build output — so
 *    run `npm run build` first (`npm test` does).
 * 2. Headless Chromium (Debian's, driven by playwright-core) loads the bundle from a page served on
 *    127.0.0.1 by a node:http server made here, echoes 64 KiB between two stacks through the WHATWG
 *    streams API in virtual time, and runs the demo's `handshake` scenario.
 *
 * Needs esbuild, playwright-core and /usr/bin/chromium (apt-get install chromium); without them the
 * tests say `skipped: needs …`, and under CI=true that is a failure instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/repo.js';
import {
  assertBrowserBundle, bundleForBrowser, bundlePageServer, closeBrowser, closeServer, findChromium, launch, listen, needs,
  openBundlePage, withTimeout, type Browser, type Bundle,
} from './support.js';

/** Every wait in this file is bounded; a hang fails the test instead of holding CI. */
const EVAL_TIMEOUT_MS = 60_000;
const ECHO_BYTES = 64 * 1024;

const ROOT = repoRoot();
const ENTRY = join(ROOT, 'test', 'browser', 'fixtures', 'entry.js');

/** The page bundle (built once); null when esbuild is not installed. */
const bundle = (): Promise<Bundle | null> => bundleForBrowser(ENTRY, join(ROOT, 'dist', 'browser-test-bundle.js'));

test('esbuild bundles `import { Stack, MemoryLink, VirtualClock } from "synack"` for the browser, with no Node import', async (t) => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'src', 'index.js')),
    'dist/src/index.js is missing: run `npm run build` first',
  );
  const b = await bundle();
  if (b === null) return needs(t, 'esbuild', 'npm install');
  // 'synack' resolved through the exports map's "browser" condition to the core entry; only the
  // project's own build output went in, every import resolved inside the bundle, none to node:.
  const files = assertBrowserBundle(b, ENTRY);
  for (const f of files) {
    assert.ok(
      !['dist/src/index.node.js', 'dist/src/socket/net.js'].includes(f) && !f.startsWith('dist/src/cli/'),
      `a Node-only module is in the browser bundle: ${f}`,
    );
  }
  // The core is in: the stack, TCP, the link, the streams layer.
  for (const f of ['dist/src/stack/stack.js', 'dist/src/tcp/connection.js', 'dist/src/link/memory.js', 'dist/src/socket/streams.js']) {
    assert.ok(files.includes(f), `${f} missing from the bundle`);
  }
});

test('the bundle runs TCP in headless Chromium', async (t) => {
  const chromium = await findChromium(t);
  if (chromium === null) return;
  const b = await bundle();
  if (b === null) return needs(t, 'esbuild', 'npm install');

  // The page comes from 127.0.0.1, like the `synack ui` page: a real origin, a module script.
  const server = bundlePageServer('synack browser test', b.js);
  let browser: Browser | undefined;
  try {
    const port = await listen(server);
    browser = await launch(chromium);
    const { page, problems: pageErrors } = await openBundlePage(browser, `http://127.0.0.1:${port}/`, 'synackTest');

    await t.test('64 KiB echo through the WHATWG streams API (b.listen + a.connect) in virtual time', async (st) => {
      const r = (await withTimeout(page.evaluate(`synackTest.echo(${ECHO_BYTES})`), EVAL_TIMEOUT_MS, 'echo in the page')) as {
        sent: number;
        received: number;
        firstDiff: number;
        stateAfterConnect: string;
        clientStates: string[];
        hasNet: boolean;
        globals: Record<string, string>;
        userAgent: string;
      };
      st.diagnostic(`${r.userAgent}: client ${r.clientStates.join(' → ')}`);
      assert.match(r.userAgent, /Chrome\//, 'not running in Chromium');
      assert.equal(r.sent, ECHO_BYTES);
      assert.equal(r.received, ECHO_BYTES, 'echoed byte count');
      assert.equal(r.firstDiff, -1, `echoed bytes differ from byte ${r.firstDiff}`);
      assert.equal(r.stateAfterConnect, 'ESTABLISHED');
      // The client's own trace: an active open goes SYN-SENT, then ESTABLISHED (RFC 9293 §3.5).
      assert.deepEqual(r.clientStates.slice(0, 2), ['SYN-SENT', 'ESTABLISHED'], `client states: ${r.clientStates.join(' → ')}`);
      // It closed first (writer.close()), so it went through FIN-WAIT and into TIME-WAIT (§3.6).
      assert.ok(r.clientStates.includes('FIN-WAIT-1'), `client states: ${r.clientStates.join(' → ')}`);
      assert.ok(r.clientStates.includes('TIME-WAIT'), `client states: ${r.clientStates.join(' → ')}`);
      // The browser entry has no node:net layer, and nothing in the page polyfilled Node.
      assert.equal(r.hasNet, false, 'stack.net should be absent in the browser build');
      assert.deepEqual(r.globals, { process: 'undefined', Buffer: 'undefined', require: 'undefined' });
      assert.deepEqual(pageErrors, []);
    });

    await t.test("the demo's handshake scenario runs in the page", async () => {
      const r = (await withTimeout(
        page.evaluate(`synackTest.scenario('handshake', { seed: 1 })`),
        EVAL_TIMEOUT_MS,
        'scenario in the page',
      )) as {
        ok: boolean;
        summaryOk: boolean;
        failedChecks: string[];
        clientStates: string[];
        serverStates: string[];
        segments: number;
        firstFlags: string[];
        pcapBytes: number;
      };
      assert.equal(r.ok, true, `model.ok is false; failed checks: ${r.failedChecks.join('; ')}`);
      assert.equal(r.summaryOk, true);
      assert.deepEqual(r.firstFlags, ['SYN', 'SYN,ACK', 'ACK'], 'the 3-way handshake opens the ladder');
      assert.deepEqual(r.clientStates.slice(0, 3), ['CLOSED', 'SYN-SENT', 'ESTABLISHED']);
      assert.ok(r.clientStates.includes('TIME-WAIT'), `client states: ${r.clientStates.join(' → ')}`);
      assert.equal(r.clientStates.at(-1), 'CLOSED', 'TIME-WAIT expires in the scenario');
      assert.ok(r.serverStates.includes('LAST-ACK'), `server states: ${r.serverStates.join(' → ')}`);
      // 3 handshake + request/reply (with ACKs) + 4 close segments at least.
      assert.ok(r.segments >= 9, `only ${r.segments} segments`);
      assert.ok(r.pcapBytes > 24, 'the capture has packets beyond its header');
      assert.deepEqual(pageErrors, []);
    });
  } finally {
    await closeBrowser(browser);
    await closeServer(server);
  }
});
