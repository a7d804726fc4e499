/**
 * The HTML and SVG ladders in a real browser, as users get them: the files are written by the
 * `synack` executable itself (`synack demo --html F --svg G`), then opened from disk in headless
 * Chromium (playwright-core + /usr/bin/chromium, as in bundle.test.ts).
 *
 * Checks: no console error, no page error, no request at all (the page is self-contained); pointing
 * at an arrow shows that segment's header with the right flag bits lit; the step buttons and arrow
 * keys move the highlighted segment and the states shown; the standalone SVG renders its text; and
 * `synack draw CAPTURE --format html` (on the demo's own capture) gives the same page, its states
 * marked as inferred; and a 300 000-segment stream's page (rendered here from a synthetic model) stays
 * small, says how many segments it elides, and still steps and shows headers.
 * Screenshots go to test-output/screenshots/ (CI keeps them as artifacts).
 *
 * Without playwright-core or Chromium the tests say `skipped: needs …`; under CI=true that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from '../support/repo.js';
import { renderHtml } from '../../src/diagram/html.js';
import { bulkModel } from '../diagram/synthetic.js';
import { PAGE_TIMEOUT_MS, closeBrowser, findChromium, launch, pageProblems, screenshot, type Browser, type Page } from './support.js';

/** Every wait in this file is bounded; a hang fails the test instead of holding CI. */
const CLI_TIMEOUT_MS = 60_000;

const ROOT = repoRoot();

/** Run the synack executable (the built one, or the source through tsx when this file runs as .ts). */
function synack(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // The executable beside this test: src/cli/main.ts from test/, <outDir>/src/cli/main.js from <outDir>/test/.
  const ts = fileURLToPath(import.meta.url).endsWith('.ts');
  const main = fileURLToPath(new URL(`../../src/cli/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  assert.ok(existsSync(main), `${main} is missing: run \`npm run build\` first`);
  const r = spawnSync(process.execPath, [...(ts ? ['--import', 'tsx'] : []), main, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: CLI_TIMEOUT_MS,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A page that records every error and every request it makes. */
async function openPage(browser: Browser, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const problems = pageProblems(page);
  page.on('request', (r) => {
    // The page itself is the only thing loaded: no script, style, font or image from anywhere.
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url, { timeout: PAGE_TIMEOUT_MS });
  return { page, problems };
}

interface Shown {
  status: string;
  current: number[];
  sides: string[];
  nowPills: string[];
  header: string;
  flags: Record<string, string>;
}

/** What the page shows now: step, highlighted segment(s), each side's state, the header panel. */
function shown(page: Page): Promise<Shown> {
  return page.evaluate<Shown>(`(() => ({
    status: document.getElementById('status').textContent,
    current: [...document.querySelectorAll('#ladder .seg.current')].map((g) => Number(g.dataset.seg)),
    sides: [...document.querySelectorAll('#sides .side')].map((s) => s.textContent),
    nowPills: [...document.querySelectorAll('#ladder .st.now')].map((p) => p.dataset.side + ':' + p.textContent),
    header: document.getElementById('segment').textContent,
    flags: Object.fromEntries([...document.querySelectorAll('#segment .flags span')].map((c) => [c.dataset.flag, c.dataset.set])),
  }))()`);
}

interface EmbeddedSegment {
  flags: string[];
  seq: number;
  ack: number;
  seqAbs: number;
}

/**
 * The model's segments as the page embeds them, by model index (an arrow's data-seg). The page holds
 * only the segments its ladder draws (`shown`); the others are absent from the array (a hole).
 */
async function segmentsOf(page: Page): Promise<Array<EmbeddedSegment | undefined>> {
  const d = await page.evaluate<{ shown: number[]; segments: EmbeddedSegment[] }>(
    `(() => { const d = JSON.parse(document.getElementById('synack-data').textContent); return { shown: d.shown, segments: d.model.segments }; })()`,
  );
  const out: Array<EmbeddedSegment | undefined> = [];
  d.shown.forEach((i, k) => (out[i] = d.segments[k]));
  return out;
}

/** Index of the first embedded segment with these flags (e.g. 'SYN,ACK'), -1 if none. */
function findSeg(segs: Array<EmbeddedSegment | undefined>, flags: string): number {
  return segs.findIndex((s) => s !== undefined && s.flags.join(',') === flags);
}

test('synack demo --html and synack draw --format html: self-contained pages; hover shows the header; stepping moves through time', async (t) => {
  const chromium = await findChromium(t);
  if (chromium === null) return;
  const browser = await launch(chromium);
  const dir = mkdtempSync(join(tmpdir(), 'synack-html-'));
  try {
    const html = join(dir, 'handshake.html');
    const svg = join(dir, 'handshake.svg');
    const r = synack(['demo', '--html', html, '--svg', svg]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`diagram written to ${html.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const url = pathToFileURL(html).href;
    const { page, problems } = await openPage(browser, url);
    await page.waitForSelector('body[data-ready="1"]', { timeout: PAGE_TIMEOUT_MS, state: 'attached' }).catch((e: unknown) => {
      throw new Error(`the page script did not finish: ${problems.join('; ') || String(e)}`);
    });
    const segs = await segmentsOf(page);

    await t.test('the first step is the SYN: client SYN-SENT, server LISTEN', async () => {
      const s = await shown(page);
      assert.match(s.status, /^step 1 of \d+ · t = 0\.000 s$/);
      assert.deepEqual(s.current, [0]);
      assert.deepEqual(segs[0]!.flags, ['SYN']);
      assert.match(s.sides[0]!, /^client SYN-SENT.*RFC 9293 §3\.10\.1/);
      assert.match(s.sides[1]!, /^server LISTEN/);
      assert.deepEqual(s.nowPills.sort(), ['0:SYN-SENT', '1:LISTEN']);
      assert.match(s.header, /client → server/);
    });

    await t.test('pointing at the SYN,ACK shows its header: ACK and SYN lit (0x12), seq/ack relative and absolute', async () => {
      const i = findSeg(segs, 'SYN,ACK');
      assert.ok(i > 0, 'a SYN,ACK');
      await page.locator(`#ladder .seg[data-seg="${i}"] text.label:not(.sub)`).hover({ timeout: PAGE_TIMEOUT_MS });
      const s = await shown(page);
      assert.deepEqual(s.flags, { CWR: '0', ECE: '0', URG: '0', ACK: '1', PSH: '0', RST: '0', SYN: '1', FIN: '0' });
      assert.match(s.header, new RegExp(`#${i + 1} server → client`));
      assert.match(s.header, /flags0x12 = 00010010 {2}ACK,SYN/);
      assert.match(s.header, new RegExp(`seq0 \\(relative\\) +${segs[i]!.seqAbs} \\(absolute\\)`));
      assert.match(s.header, /ack1 \(relative\)/);
      assert.match(s.header, /ports80 → \d+/);
      assert.match(s.header, /data offset\d+ words = \d+ bytes/);
      assert.match(s.header, /window65535/);
      assert.match(s.header, /optionsMSS=1460/);
      await screenshot(page, 'diagram-html-hover.png', { fullPage: true });
      // Moving away brings back the current step's segment.
      await page.mouse.move(2, 2);
      assert.match((await shown(page)).header, /#1 client → server/);
    });

    await t.test('→ and Next step forward, ← steps back: the highlighted segment and the states follow', async () => {
      await page.keyboard.press('ArrowRight');
      let s = await shown(page);
      assert.match(s.status, /^step 2 of /);
      assert.deepEqual(s.current.map((i) => segs[i]!.flags.join(',')), ['SYN,ACK']);
      assert.match(s.sides[0]!, /^client SYN-SENT/);
      assert.match(s.sides[1]!, /^server SYN-RECEIVED.*RFC 9293 §3\.10\.7\.2/);
      assert.deepEqual(s.flags['SYN'], '1', 'the header panel follows the step');
      await page.locator('#next').click();
      s = await shown(page);
      assert.match(s.status, /^step 3 of /);
      assert.match(s.sides[0]!, /^client ESTABLISHED/);
      assert.deepEqual(s.current.map((i) => segs[i]!.flags.join(',')), ['ACK']);
      await screenshot(page, 'diagram-html-step.png', { fullPage: true });
      await page.keyboard.press('ArrowLeft');
      s = await shown(page);
      assert.match(s.status, /^step 2 of /);
      assert.match(s.sides[0]!, /^client SYN-SENT/);
      await page.locator('#back').click();
      s = await shown(page);
      assert.match(s.status, /^step 1 of /);
      assert.deepEqual(s.current, [0]);
      // The end: TIME-WAIT expired on the client (the active closer), the server closed before it.
      await page.keyboard.press('End');
      s = await shown(page);
      assert.match(s.sides[0]!, /^client CLOSED.*2×MSL/);
      assert.match(s.sides[1]!, /^server CLOSED/);
      const faded = await page.evaluate<number>(`document.querySelectorAll('#ladder .future').length`);
      assert.equal(faded, 0, 'nothing is in the future at the last step');
      await page.keyboard.press('Home');
      const later = await page.evaluate<number>(`document.querySelectorAll('#ladder .seg.future').length`);
      assert.equal(later, segs.length - 1, 'at the first step every later segment is faded');
    });

    await t.test('clicking an arrow jumps to its step', async () => {
      const i = segs.findIndex((s) => s?.flags.includes('FIN') === true);
      await page.locator(`#ladder .seg[data-seg="${i}"] text.label:not(.sub)`).click();
      const s = await shown(page);
      assert.deepEqual(s.current, [i]);
      assert.match(s.sides[0]!, /^client FIN-WAIT-1/);
      assert.equal(s.flags['FIN'], '1');
    });

    assert.deepEqual(problems, [], 'no console errors, page errors or requests');
    await page.close();

    await t.test('the standalone SVG renders: every text node has a box, states and labels are there', async () => {
      const { page: sp, problems: sproblems } = await openPage(browser, pathToFileURL(svg).href);
      const r = await sp.evaluate<{ root: string; texts: number; empty: string[]; width: number; words: string }>(`(() => {
        const texts = [...document.querySelectorAll('text')];
        const empty = texts.filter((t) => { const b = t.getBBox(); return !(b.width > 0 && b.height > 0); }).map((t) => t.textContent);
        return { root: document.documentElement.tagName, texts: texts.length, empty,
                 width: document.documentElement.getBoundingClientRect().width,
                 words: texts.map((t) => t.textContent).join(' ') };
      })()`);
      assert.equal(r.root, 'svg');
      assert.ok(r.texts > 40, `${r.texts} text nodes`);
      assert.deepEqual(r.empty, [], 'text nodes without a box');
      assert.ok(r.width > 600, `width ${r.width}`);
      for (const w of ['SYN-SENT', 'SYN-RECEIVED', 'CLOSE-WAIT', 'LAST-ACK', 'TIME-WAIT', 'seq=0 ack=1']) assert.ok(r.words.includes(w), w);
      await screenshot(sp, 'diagram-svg.png');
      assert.deepEqual(sproblems, []);
      await sp.close();
    });
    await t.test('synack draw --format html on a capture: inferred states say so, the same header and steps', async () => {
      const pcap = join(dir, 'handshake.pcap');
      const drawn = join(dir, 'drawn.html');
      const d = synack(['demo', '--pcap', pcap]);
      assert.equal(d.status, 0, d.stderr);
      const r = synack(['draw', pcap, '--format', 'html', '-o', drawn]);
      assert.equal(r.status, 0, r.stderr);
      const url = pathToFileURL(drawn).href;
      const { page: dp, problems: dproblems } = await openPage(browser, url);
      await dp.waitForSelector('body[data-ready="1"]', { timeout: PAGE_TIMEOUT_MS, state: 'attached' }).catch((e: unknown) => {
        throw new Error(`the page script did not finish: ${dproblems.join('; ') || String(e)}`);
      });
      const dsegs = await segmentsOf(dp);
      let s = await shown(dp);
      assert.match(s.status, /^step 1 of \d+/);
      assert.deepEqual(s.current.map((i) => dsegs[i]!.flags.join(',')), ['SYN']);
      assert.match(s.sides[0]!, /^10\.0\.0\.1:\d+ SYN-SENT/);
      assert.match(s.sides[0]!, /inferred from the capture/);
      const i = findSeg(dsegs, 'SYN,ACK');
      await dp.locator(`#ladder .seg[data-seg="${i}"] text.label:not(.sub)`).hover({ timeout: PAGE_TIMEOUT_MS });
      s = await shown(dp);
      assert.deepEqual(s.flags, { CWR: '0', ECE: '0', URG: '0', ACK: '1', PSH: '0', RST: '0', SYN: '1', FIN: '0' });
      assert.match(s.header, /flags0x12 /);
      await dp.keyboard.press('End');
      s = await shown(dp);
      assert.match(s.sides[0]!, /CLOSED/);
      await dp.keyboard.press('Home');
      await dp.keyboard.press('ArrowRight');
      s = await shown(dp);
      assert.match(s.status, /^step 2 of /);
      await screenshot(dp, 'diagram-draw-html.png', { fullPage: true });
      assert.deepEqual(dproblems, [], 'no console errors, page errors or requests');
      await dp.close();
    });
    await t.test('a 300 000-segment stream: a small page that says what it elides, and still works', async () => {
      const model = bulkModel(300_000);
      const big = join(dir, 'big.html');
      const html = renderHtml(model);
      writeFileSync(big, html);
      assert.ok(html.length < 200_000, `${html.length} bytes`);
      const { page: bp, problems: bproblems } = await openPage(browser, pathToFileURL(big).href);
      await bp.waitForSelector('body[data-ready="1"]', { timeout: PAGE_TIMEOUT_MS, state: 'attached' }).catch((e: unknown) => {
        throw new Error(`the page script did not finish: ${bproblems.join('; ') || String(e)}`);
      });
      const bsegs = await segmentsOf(bp);
      const shownCount = bsegs.filter((x) => x !== undefined).length;
      const elided = model.segments.length - shownCount;
      const note = await bp.evaluate<string>(`document.getElementById('elided').textContent`);
      assert.match(note, new RegExp(`^${elided} of ${model.segments.length} segments elided`));
      let s = await shown(bp);
      assert.match(s.status, /^step 1 of \d+ · t = 0\.000 s$/);
      assert.deepEqual(s.current, [0]);
      // The last step: the server closes; one back, the final ACK of the close, far past the elided
      // stretch, with its header.
      await bp.keyboard.press('End');
      s = await shown(bp);
      assert.deepEqual(s.current, []);
      assert.match(s.sides[0]!, /^client TIME-WAIT/);
      assert.match(s.sides[1]!, /^server CLOSED/);
      await bp.keyboard.press('ArrowLeft');
      s = await shown(bp);
      const last = model.segments.length - 1;
      assert.deepEqual(s.current, [last]);
      assert.match(s.header, new RegExp(`#${last + 1} client → server`));
      assert.match(s.header, new RegExp(`seq${model.segments[last]!.seq} \\(relative\\) +${model.segments[last]!.seqAbs} \\(absolute\\)`));
      assert.match(s.sides[1]!, /^server LAST-ACK/);
      // Pointing at the retransmission (after the elided stretch) shows its header and its mark.
      const rexmit = model.segments.findIndex((x) => x.marks?.includes('retransmission') === true);
      assert.ok(bsegs[rexmit] !== undefined, 'the retransmission is embedded');
      await bp.locator(`#ladder .seg[data-seg="${rexmit}"] text.label:not(.sub)`).hover({ timeout: PAGE_TIMEOUT_MS });
      s = await shown(bp);
      assert.match(s.header, new RegExp(`#${rexmit + 1} client → server`));
      assert.match(s.header, /analysisretransmission/);
      await screenshot(bp, 'diagram-html-elided.png', { fullPage: true });
      assert.deepEqual(bproblems, [], 'no console errors, page errors or requests');
      await bp.close();
    });
    // The files are the ones written: the SVG on disk is the one loaded.
    assert.match(readFileSync(svg, 'utf8'), /^<\?xml/);
  } finally {
    await closeBrowser(browser);
    rmSync(dir, { recursive: true, force: true });
  }
});
