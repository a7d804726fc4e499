/**
 * The package as its users see it (CONTRACT.md "Package" and "Library API"): `import('synack')` from
 * Node resolves through package.json's exports map to the Node entry (dist/src/index.node.js), the
 * contract's library example runs as written, and the core build output — what the "browser" condition
 * hands to bundlers — imports no `node:` module and no dependency.
 *
 * Works on the build output: run `npm run build` first (`npm test` does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { repoRoot } from '../support/repo.js';

type NodeEntry = typeof import('../../src/index.node.js');
type CoreEntry = typeof import('../../src/index.js');

const ROOT = repoRoot();
const DIST = join(ROOT, 'dist', 'src');

function requireBuild(): void {
  assert.ok(existsSync(join(DIST, 'index.node.js')), 'dist/src is missing: run `npm run build` first');
}

// The package names go through variables: the type checker then never needs dist/ to exist (it is
// compiled in the same run that produces it); the types come from the sources instead.
const PACKAGE = 'synack';
const CORE = 'synack/core';

test("import('synack') resolves by the package's own name to the Node entry", async () => {
  requireBuild();
  // Package self-reference (Node resolves a package's own name through its exports map).
  assert.equal(import.meta.resolve(PACKAGE), pathToFileURL(join(DIST, 'index.node.js')).href);
  assert.equal(import.meta.resolve(CORE), pathToFileURL(join(DIST, 'index.js')).href);

  const m = (await import(PACKAGE)) as NodeEntry;
  for (const name of ['Stack', 'MemoryLink', 'VirtualClock', 'RealClock', 'TcpError', 'PcapWriter'] as const) {
    assert.equal(typeof m[name], 'function', `synack exports ${name}`);
  }
  assert.ok(Array.isArray(m.TCP_STATES) && m.TCP_STATES.includes('SYN-RECEIVED'), 'TCP_STATES in RFC 9293 spelling');

  const [la] = m.MemoryLink.pair({ clock: new m.VirtualClock() });
  const s = new m.Stack({ link: la, addresses: ['10.0.0.1/24'], clock: new m.VirtualClock() });
  assert.equal(typeof s.net.createServer, 'function', 'stack.net.createServer');
  assert.equal(typeof s.net.connect, 'function', 'stack.net.connect');
  assert.equal(typeof s.net.createConnection, 'function', 'stack.net.createConnection');
  assert.equal(s.net, s.net, 'one Net per stack');
  assert.equal(typeof s.listen, 'function', 'WHATWG-streams listen');
  assert.equal(typeof s.connect, 'function', 'WHATWG-streams connect');

  const e = new m.TcpError('ECONNREFUSED', 'refused');
  assert.ok(e instanceof Error);
  assert.equal(e.code, 'ECONNREFUSED');

  // The core entry (what the "browser" condition gives) has the same classes, without `net`.
  const core = (await import(CORE)) as CoreEntry;
  assert.equal(typeof core.Stack, 'function');
  const [lc] = core.MemoryLink.pair({});
  const cs = new core.Stack({ link: lc, addresses: ['10.0.0.3/24'] });
  assert.equal('net' in cs, false, 'the core Stack has no node:net layer');
  // Name lookup is core (a page resolves through the stack's own DNS servers); literals need none.
  assert.deepEqual(await cs.lookup('10.0.0.9'), { address: '10.0.0.9', family: 4 });
  // The Node entry's Stack is the core Stack plus `net`, and both share the rest of the classes.
  assert.ok(s instanceof core.Stack);
  assert.equal(m.MemoryLink, core.MemoryLink);
});

test("CONTRACT.md's library example runs as written, in virtual time, and echoes", async () => {
  requireBuild();
  const { Stack, MemoryLink, VirtualClock } = (await import(PACKAGE)) as NodeEntry;

  // ---- verbatim from CONTRACT.md "Library API (minimum)" ----
  const clock = new VirtualClock();                  // omit `clock` everywhere for real time
  const [la, lb] = MemoryLink.pair({
    mtu: 1500, delayMs: 10, bandwidthBps: 1e9,       // all optional
    lossRate: 0.01, reorderRate: 0.01, duplicateRate: 0.01, corruptRate: 0.001,
    seed: 42, clock,
  });
  const a = new Stack({ link: la, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock });
  const b = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock });

  const server = b.net.createServer((sock) => sock.pipe(sock));   // node:net-compatible
  server.listen(7);
  const sock = a.net.connect({ host: '10.0.0.2', port: 7 });      // a node:net Socket look-alike (stream.Duplex)
  await clock.runUntilIdle();       // or clock.advance(ms); virtual time runs as fast as the CPU allows
  // ---- end of the example ----

  const states: string[] = [];
  // The handshake is done by now: runUntilIdle ran it to the end.
  assert.equal(sock.remoteAddress, '10.0.0.2');
  assert.equal(sock.remotePort, 7);
  assert.equal(sock.tcpInfo()?.state, 'ESTABLISHED');
  a.on('trace', (ev) => {
    if (ev.type === 'state') states.push(ev.to);
  });

  // 200 KB through the impaired link (1 % loss, reordering, duplicates, corruption): every byte back.
  const data = new Uint8Array(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >>> 8)) & 0xff;
  const chunks: Uint8Array[] = [];
  let ended = false;
  let closed = false;
  sock.on('data', (c: Uint8Array) => chunks.push(c));
  sock.on('end', () => (ended = true));
  sock.on('close', () => (closed = true));
  sock.on('error', (err: Error) => assert.fail(`client socket error: ${err.message}`));
  sock.end(data);

  // Virtual time, bounded: 10 virtual minutes in 10 ms steps is far more than this needs.
  for (let i = 0; i < 60_000 && !closed; i++) await clock.advance(10);
  assert.ok(ended, "the echo ended ('end': the server closed its side after the client's FIN)");
  const echoed = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    echoed.set(c, off);
    off += c.length;
  }
  assert.equal(echoed.length, data.length, 'echoed byte count');
  assert.deepEqual(echoed, data, 'echoed bytes');
  assert.ok(closed, "'close' after both sides finished");
  assert.ok(states.includes('FIN-WAIT-1') && states.includes('TIME-WAIT'), `client states: ${states.join(' → ')}`);
  server.close();
  await clock.runUntilIdle();
});

// --- The core must run in a browser: its build output imports only itself. ---

/** The browser closure: what index.js (the "browser" condition) may reach. */
const CORE_DIRS = ['wire', 'net', 'tcp', 'udp', 'stack', 'link', 'trace', 'diagram', 'demo', 'util', 'services', 'gateway'];
const CORE_FILES = ['index.js', 'socket/streams.js', 'socket/udp-streams.js'];
/**
 * Node-only drivers that live beside the core links (DESIGN: link/ holds memory and tun), services
 * and the gateway (its direct upstream, host listeners and the `ws` WebSocket).
 */
const NODE_ONLY = [
  'link/tun.js', 'link/tap.js', 'link/tuntap.js', 'services/dns-upstream-node.js',
  'gateway/upstream-direct.js', 'gateway/hostfwd-node.js', 'gateway/websocket-node.js',
];

function jsFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return jsFilesUnder(p);
    return d.isFile() && d.name.endsWith('.js') ? [p] : [];
  });
}

function isCore(file: string): boolean {
  const rel = relative(DIST, file).split(sep).join('/');
  if (NODE_ONLY.includes(rel)) return false;
  return CORE_FILES.includes(rel) || CORE_DIRS.some((d) => rel.startsWith(d + '/'));
}

/**
 * Every module specifier in a compiled JS file — static and dynamic `import`, `export … from`, and
 * `require` — found by TypeScript's own scanner, so specifiers inside comments and strings don't count.
 */
function specifiers(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

test('the diagram API from the core entry: a capture read, a stream inferred, drawn in every format', async () => {
  requireBuild();
  const core = (await import(CORE)) as CoreEntry;
  // A real capture to read: two stacks' handshake, written by the package's own PcapWriter.
  const clock = new core.VirtualClock();
  const [la, lb] = core.MemoryLink.pair({ clock, delayMs: 5 });
  const a = new core.Stack({ link: la, addresses: ['10.0.0.1/24'], clock, seed: 1 });
  const b = new core.Stack({ link: lb, addresses: ['10.0.0.2/24'], clock, seed: 2 });
  const pcap = new core.PcapWriter();
  la.onTransmit((p) => pcap.write(clock.now(), p));
  lb.onTransmit((p) => pcap.write(clock.now(), p));
  b.tcpListen({ port: 80 });
  const c = a.tcpConnect({ host: '10.0.0.2', port: 80 });
  await clock.advance(100);
  c.close();
  await clock.advance(1000);
  const { packets } = core.readCapture(pcap.toBytes());
  const streams = core.splitStreams(core.extractTcp(packets).segments);
  assert.equal(streams.length, 1);
  const model = core.inferStream(streams[0]!);
  assert.equal(model.inferred, true);
  assert.deepEqual(model.endpoints[0]!.states.map((s) => s.state).slice(0, 4), ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1']);
  assert.match(core.renderText(model), /SYN-SENT/);
  assert.match(core.renderSvg(model), /^<\?xml[^]*<svg[^]*SYN-SENT[^]*<\/svg>\s*$/);
  assert.match(core.renderHtml(model), /<!DOCTYPE html>/i);
  assert.match(core.renderMermaid(model), /^sequenceDiagram/m);
  assert.throws(() => core.readCapture(new Uint8Array(10)), core.CaptureError);
});

test('the core build output imports no node: module and no package (it runs in a browser)', () => {
  requireBuild();
  const files = [...CORE_DIRS.flatMap((d) => jsFilesUnder(join(DIST, d))), ...CORE_FILES.map((f) => join(DIST, f))]
    .filter((f) => isCore(f));
  for (const f of CORE_FILES) assert.ok(existsSync(join(DIST, f)), `dist/src/${f} is missing`);
  for (const d of ['wire', 'tcp', 'stack', 'link']) {
    assert.ok(jsFilesUnder(join(DIST, d)).length > 0, `dist/src/${d} has no .js files`);
  }

  const problems: string[] = [];
  let scanned = 0;
  for (const file of files) {
    const rel = relative(DIST, file).split(sep).join('/');
    const specs = specifiers(file);
    scanned += specs.length;
    for (const spec of specs) {
      if (spec.startsWith('node:')) {
        problems.push(`${rel} imports ${spec}`);
      } else if (!spec.startsWith('./') && !spec.startsWith('../')) {
        // A bare name: a Node built-in without the prefix ('fs') or a dependency — neither is in a browser.
        problems.push(`${rel} imports the bare module '${spec}'`);
      } else {
        // Relative: it must stay inside the core, or the browser bundle would pull in a Node-only module.
        const target = resolve(dirname(file), spec);
        if (!existsSync(target)) problems.push(`${rel} imports ${spec}, which does not exist in dist`);
        else if (!isCore(target)) problems.push(`${rel} imports ${spec}, outside the core (Node-only)`);
      }
    }
  }
  assert.ok(scanned > 30, `only ${scanned} import specifiers found: the scan is broken`);
  assert.deepEqual(problems, []);
});

test('the import scan catches node: and bare imports (a check of the check)', () => {
  const src = [
    "// import x from 'node:fs' — a comment, not an import",
    "import { a } from './a.js';",
    "import {\n  b,\n  c,\n} from 'node:events';",
    "export { d } from 'some-dependency';",
    "const e = await import('node:crypto');",
    "const s = \"import f from 'node:os'\";",
  ].join('\n');
  const found = ts.preProcessFile(src, true, true).importedFiles.map((f) => f.fileName);
  assert.deepEqual(found.sort(), ['./a.js', 'node:crypto', 'node:events', 'some-dependency'].sort());
});
