/**
 * `synack ui` as a server, in process (the page itself is tested in Chromium by
 * test/browser/ui.test.ts): what it serves and with which types, what it refuses, and its one-line
 * errors for a missing build, a taken port and bad usage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/program.js';
import { uiCommand } from '../../src/cli/ui.js';
import { capture } from './helpers.js';

/** A fake build: the served folder, a secret beside it, and a subfolder that must not be served. */
function fakeWeb(): { dir: string; cleanup: () => void } {
  const base = mkdtempSync(join(tmpdir(), 'synack-ui-'));
  const dir = join(base, 'web');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'app.js'), 'console.log(1)');
  writeFileSync(join(dir, 'style.css'), 'body{}');
  writeFileSync(join(dir, 'app.js.map'), '{}');
  writeFileSync(join(dir, 'sub', 'inner.js'), 'x');
  writeFileSync(join(base, 'secret.txt'), 'secret');
  return { dir, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** A raw request (no URL normalisation by the client): status, content type, body. */
function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; csp: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'],
          csp: res.headers['content-security-policy'] as string | undefined,
          body,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Runs `synack ui` in process until the callback is done; returns the exit status and output. */
async function withUi(
  args: string[],
  webDir: string,
  fn: (port: number) => Promise<void>,
): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  const ac = new AbortController();
  let port = -1;
  const listening = new Promise<void>((resolve) => {
    void uiCommand(args, c.io, { webDir, signal: ac.signal, onListening: (url) => ((port = Number(new URL(url).port)), resolve()) }).then((code) => {
      result.code = code;
      resolve();
    });
  });
  const result = { code: -1, out: '', err: '' };
  await listening;
  try {
    if (port > 0) await fn(port);
  } finally {
    ac.abort();
  }
  for (let i = 0; i < 100 && result.code === -1; i++) await new Promise((r) => setTimeout(r, 20));
  return { code: result.code, out: c.out(), err: c.err() };
}

test('serves the page files with their types, the page under a CSP that allows no connection', async () => {
  const w = fakeWeb();
  try {
    const r = await withUi(['--port', '0', '--json'], w.dir, async (port) => {
      const index = await get(port, '/');
      assert.equal(index.status, 200);
      assert.equal(index.type, 'text/html; charset=utf-8');
      assert.match(index.body, /<title>t<\/title>/);
      assert.match(index.csp ?? '', /connect-src 'none'/);
      assert.match(index.csp ?? '', /script-src 'self'/);
      assert.equal((await get(port, '/index.html?x=1')).status, 200);
      assert.equal((await get(port, '/app.js')).type, 'text/javascript; charset=utf-8');
      assert.equal((await get(port, '/style.css')).type, 'text/css; charset=utf-8');
      assert.equal((await get(port, '/app.js.map')).type, 'application/json; charset=utf-8');
      const head = await get(port, '/app.js', 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal((await get(port, '/', 'POST')).status, 405);
    });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^\{"url":"http:\/\/127\.0\.0\.1:\d+\/"\}\n$/, 'only the JSON line on stdout');
    assert.equal(r.err, '');
  } finally {
    w.cleanup();
  }
});

test('nothing outside the built files: traversal, encoded traversal, subfolders, absolute URLs', async () => {
  const w = fakeWeb();
  try {
    const r = await withUi(['--port', '0'], w.dir, async (port) => {
      for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/sub/inner.js', '/sub', '//etc/passwd', '/nope.js', '/.', '/index.html/']) {
        const res = await get(port, path);
        assert.equal(res.status, 404, path);
        assert.doesNotMatch(res.body, /secret/, path);
      }
    });
    assert.equal(r.code, 0);
    assert.match(r.out, /^synack ui: serving the page on http:\/\/127\.0\.0\.1:\d+\/ \(Ctrl-C to stop\)\n$/);
  } finally {
    w.cleanup();
  }
});

test('a missing build: exit 1 with one line saying to build', async () => {
  const base = mkdtempSync(join(tmpdir(), 'synack-ui-'));
  try {
    const c = capture();
    assert.equal(await uiCommand(['--port', '0'], c.io, { webDir: join(base, 'web') }), 1);
    assert.match(c.err(), /^synack ui: the page is not built \(.*index\.html is missing\): run npm run build\n$/);
    assert.equal(c.out(), '');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a port already taken: exit 1 with one line', async () => {
  const w = fakeWeb();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  try {
    const { port } = blocker.address() as AddressInfo;
    const c = capture();
    assert.equal(await uiCommand(['--port', String(port)], c.io, { webDir: w.dir }), 1);
    assert.equal(c.err(), `synack ui: 127.0.0.1 port ${port} is already in use (try another --port, or 0 for any free one)\n`);
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    w.cleanup();
  }
});

test('bad usage: exit 2 with one line; --help', async () => {
  for (const args of [['--port', '70000'], ['--port', 'x'], ['--bogus'], ['extra'], ['--host', '']]) {
    const c = capture();
    assert.equal(await runCli(['ui', ...args], c.io), 2, args.join(' '));
    assert.match(c.err(), /^synack ui: [^\n]+\n$/, args.join(' '));
  }
  const c = capture();
  assert.equal(await runCli(['ui', '--help'], c.io), 0);
  assert.match(c.out(), /^Usage: synack ui \[--port P\]/);
  assert.match(c.out(), /--json/);
});
