/**
 * The `synack ui` page, end to end: the real CLI (`node dist/src/cli/main.js ui --port 0 --json`)
 * serves it on 127.0.0.1, headless Chromium (playwright-core) opens it, and the two stacks run in the
 * page. Everything asserted is read from the DOM: each side's state (`.state[data-side][data-state]`)
 * and the states it went through (`.history`), the ladder's arrows (`#ladder g.seg[data-flags]`), the
 * TCB cells (`#tcb td[data-side][data-var][data-value]`), RFC 9293 Figure 5's marked boxes, and the
 * scenario's own checks (`#summary[data-ok]`).
 *
 * Screenshots go to test-output/screenshots/ (CI keeps them). Needs playwright-core and
 * /usr/bin/chromium; without them the test says `skipped: needs …` (a failure under CI=true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PAGE_TIMEOUT_MS, closeBrowser, findChromium, launch, pageProblems, screenshot, withTimeout, type Browser } from './support.js';

/** Every wait in this file is bounded; a hang fails the test instead of holding CI. */
const START_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 60_000;
/** How often a wait looks at the page (at 10 steps/s, several looks per step). */
const POLL_MS = 10;
/** Step clicks allowed for a whole scenario (the handshake takes about 20). */
const MAX_STEPS = 300;

/** The CLI of the same build as this test (dist/src/cli/main.js when run from dist/test/). */
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Starts `synack ui --port 0 --json` and reads the URL it prints. */
async function startUi(): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'ui', '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          try {
            resolve((JSON.parse(out.slice(0, nl)) as { url: string }).url);
          } catch (e) {
            reject(new Error(`synack ui printed ${JSON.stringify(out)}: ${String(e)}`));
          }
        }
      });
      child.on('exit', (code) => reject(new Error(`synack ui exited (${code}) before listening: ${err.trim()}`)));
    }),
    START_TIMEOUT_MS,
    'synack ui start',
  );
  return { child, url, stderr: () => err };
}

/** SIGTERM, and the exit status (it must stop cleanly). */
async function stopUi(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return withTimeout(exited, 10_000, 'synack ui stop').catch(() => {
    child.kill('SIGKILL');
    return null;
  });
}

interface Snapshot {
  status: string;
  clock: string;
  client: string;
  server: string;
  clientHistory: string[];
  serverHistory: string[];
  arrows: string[];
  arrowFrom: string[];
  ladderSegments: number;
  inflight: number;
  tcb: Record<string, string>;
  fig5: { client: string[]; server: string[]; edges: string[] };
  log: number;
  summaryOk: string;
  error: string;
}

/** What the page shows, read from its DOM. */
const SNAPSHOT = `(() => {
  const q = (s) => document.querySelector(s);
  const all = (s) => [...document.querySelectorAll(s)];
  const tcb = {};
  for (const td of all('#tcb td[data-var]')) tcb[td.dataset.side + '.' + td.dataset.var] = td.dataset.value ?? '';
  return {
    status: document.body.dataset.status,
    clock: q('#clock').textContent,
    client: q('.state[data-side="client"]').dataset.state,
    server: q('.state[data-side="server"]').dataset.state,
    clientHistory: all('.history[data-side="client"] [data-state]').map((e) => e.dataset.state),
    serverHistory: all('.history[data-side="server"] [data-state]').map((e) => e.dataset.state),
    arrows: all('#ladder g.seg').map((g) => g.dataset.flags),
    arrowFrom: all('#ladder g.seg').map((g) => g.dataset.from),
    ladderSegments: Number(q('#ladder').dataset.segments),
    inflight: all('#ladder g.seg.inflight').length,
    tcb,
    fig5: {
      client: all('.fig5 .box.client').map((g) => g.dataset.box),
      server: all('.fig5 .box.server').map((g) => g.dataset.box),
      edges: all('.fig5 .edge.client, .fig5 .edge.server').map((g) => g.dataset.from + '>' + g.dataset.to + ':' + g.getAttribute('class')),
    },
    log: all('#log li').length,
    summaryOk: q('#summary').dataset.ok ?? '',
    error: q('#error').hidden ? '' : q('#error').textContent,
  };
})()`;

const ACTIVE = ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'];
const PASSIVE = ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'];

test('synack ui: the page runs two stacks in Chromium', async (t) => {
  const chromium = await findChromium(t);
  if (chromium === null) return;
  assert.ok(existsSync(MAIN), `${MAIN} is missing: run npm run build`);

  const ui = await startUi();
  let browser: Browser | undefined;
  try {
    assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    browser = await launch(chromium);
    const page = await browser.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await page.setViewportSize({ width: 1600, height: 1000 });
    const errors = pageProblems(page);
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const snap = async (): Promise<Snapshot> => (await withTimeout(page.evaluate(SNAPSHOT), PAGE_TIMEOUT_MS, 'snapshot')) as Snapshot;
    /**
     * Polls `expr` in the page every few ms until it is true, within `ms`. (Not waitForFunction: it
     * compiles its predicate with eval, which the page's Content-Security-Policy rightly refuses.)
     */
    const waitFor = async (expr: string, what: string, ms = RUN_TIMEOUT_MS): Promise<void> => {
      const deadline = Date.now() + ms;
      for (;;) {
        if ((await withTimeout(page.evaluate(expr), PAGE_TIMEOUT_MS, what)) === true) return;
        if (Date.now() > deadline) {
          throw new Error(`${what}: not within ${ms} ms\npage: ${JSON.stringify(await snap().catch(() => null))}\nerrors: ${errors.join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    const choose = async (scenario: string): Promise<void> => {
      await page.selectOption('#scenario', scenario);
      await waitFor(`document.body.dataset.status === 'paused' && document.querySelector('#ladder').dataset.segments === '0'`, `${scenario} set up`, PAGE_TIMEOUT_MS);
    };

    await page.goto(ui.url, { timeout: PAGE_TIMEOUT_MS });
    await waitFor(`document.body.dataset.status === 'paused'`, 'the page started', PAGE_TIMEOUT_MS);

    await t.test('handshake, played: ESTABLISHED on both sides, then CLOSED, the client through TIME-WAIT', async () => {
      await choose('handshake');
      const start = await snap();
      assert.equal(start.client, 'CLOSED');
      assert.equal(start.server, 'LISTEN');
      assert.deepEqual(start.fig5.client, ['CLOSED']);
      assert.deepEqual(start.fig5.server, ['LISTEN']);
      assert.equal(start.tcb['client.sndNxt'], '', 'no TCB before the first step');

      // Played at 2 steps a second (the page never takes more than one step per frame at this pace,
      // so every step is drawn), the page is watched as it goes: each state shows for half a second
      // or more.
      await page.selectOption('#speed', '2');
      await page.click('#play');
      await waitFor(`document.body.dataset.status === 'playing'`, 'playing', PAGE_TIMEOUT_MS);
      await waitFor(
        `document.querySelector('.state[data-side="client"]').dataset.state === 'ESTABLISHED' && document.querySelector('.state[data-side="server"]').dataset.state === 'ESTABLISHED'`,
        'both ESTABLISHED',
      );
      const established = await snap();
      assert.deepEqual(established.arrows.slice(0, 3), ['SYN', 'SYN,ACK', 'ACK'], 'the 3-way handshake opens the ladder');
      assert.deepEqual(established.fig5.client, ['ESTABLISHED']);
      assert.deepEqual(established.fig5.server, ['ESTABLISHED']);
      // The client's ISS went out in its SYN and came back as the server's IRS; SND.NXT moved past it.
      const iss = Number(established.tcb['client.iss']);
      assert.ok(established.tcb['client.iss'] !== '' && Number.isInteger(iss), 'client ISS shown');
      assert.equal(established.tcb['server.irs'], established.tcb['client.iss']);
      assert.equal(established.tcb['client.irs'], established.tcb['server.iss']);
      assert.ok(((Number(established.tcb['client.sndNxt']) - iss) >>> 0) >= 1, 'the SYN used one sequence number');
      await screenshot(page, 'ui-handshake-established.png');

      await waitFor(`document.querySelector('.state[data-side="client"]').dataset.state === 'TIME-WAIT'`, 'client TIME-WAIT');
      const timeWait = await snap();
      assert.deepEqual(timeWait.fig5.client, ['TIME-WAIT']);
      assert.ok(timeWait.fig5.edges.some((e) => e.startsWith('FIN-WAIT-2>TIME-WAIT:') && e.includes('client')), timeWait.fig5.edges.join(' '));
      await screenshot(page, 'ui-handshake-time-wait.png');

      await waitFor(`document.body.dataset.status === 'done'`, 'the run finished');
      const end = await snap();
      assert.equal(end.error, '');
      assert.equal(end.client, 'CLOSED');
      assert.equal(end.server, 'CLOSED');
      assert.deepEqual(end.clientHistory, ACTIVE);
      assert.deepEqual(end.serverHistory, PASSIVE);
      // TIME-WAIT ends on the bottom CLOSED, by the figure's 2MSL edge.
      assert.deepEqual(end.fig5.client, ['CLOSED-END']);
      assert.ok(end.fig5.edges.some((e) => e.startsWith('TIME-WAIT>CLOSED-END:') && e.includes('client')), end.fig5.edges.join(' '));
      assert.ok(end.fig5.edges.some((e) => e.startsWith('LAST-ACK>CLOSED-END:') && e.includes('server')), end.fig5.edges.join(' '));
      // The ladder: handshake, request and reply, the four-segment close (client's FIN first).
      assert.equal(end.arrows.length, end.ladderSegments);
      assert.ok(end.arrows.length >= 9, end.arrows.join(' | '));
      const fins = end.arrows.map((f, i) => [f, end.arrowFrom[i]] as const).filter(([f]) => f.includes('FIN'));
      assert.deepEqual(fins.map(([, from]) => from), ['client', 'server'], end.arrows.join(' | '));
      assert.equal(end.arrows.at(-1), 'ACK', 'the last ACK of the close');
      assert.equal(end.inflight, 0, 'nothing left on the wire');
      assert.equal(end.summaryOk, 'true', 'the scenario checks passed in the page');
      assert.ok(end.log > 20, `${end.log} events logged`);
      await screenshot(page, 'ui-handshake-done.png', { fullPage: true });
      assert.deepEqual(errors, []);
    });

    await t.test('handshake, stepped: one event per Step, the TCB following each segment', async () => {
      await page.click('#reset');
      await waitFor(`document.body.dataset.status === 'paused' && document.querySelector('#ladder').dataset.segments === '0'`, 'reset');
      await page.click('#step');
      const s1 = await snap();
      assert.deepEqual(s1.arrows, ['SYN'], 'step 1: the client sends its SYN');
      assert.equal(s1.inflight, 1, 'the SYN is on the wire');
      assert.equal(s1.client, 'SYN-SENT');
      assert.equal(s1.server, 'LISTEN');
      assert.deepEqual(s1.fig5.client, ['SYN-SENT']);
      assert.ok(s1.fig5.edges.some((e) => e.startsWith('CLOSED>SYN-SENT:')), s1.fig5.edges.join(' '));
      const iss = Number(s1.tcb['client.iss']);
      assert.equal(s1.tcb['client.sndUna'], String(iss));
      assert.equal(s1.tcb['client.sndNxt'], String((iss + 1) >>> 0), 'SND.NXT = ISS+1 after the SYN');
      assert.equal(s1.tcb['server.sndNxt'], '', 'the server has no TCB yet');
      assert.equal(s1.clock, 't = 0.000 s');

      await page.click('#step');
      const s2 = await snap();
      assert.deepEqual(s2.arrows, ['SYN', 'SYN,ACK'], 'step 2: the SYN arrives, the server answers');
      assert.equal(s2.server, 'SYN-RECEIVED');
      assert.equal(s2.client, 'SYN-SENT');
      assert.equal(s2.clock, 't = 0.010 s', 'one 10 ms link delay later');
      assert.equal(s2.tcb['server.irs'], String(iss));
      assert.equal(s2.tcb['server.rcvNxt'], String((iss + 1) >>> 0), 'RCV.NXT = IRS+1');

      await page.click('#step');
      const s3 = await snap();
      assert.equal(s3.client, 'ESTABLISHED', 'step 3: the SYN,ACK arrives');
      assert.deepEqual(s3.arrows.slice(0, 3), ['SYN', 'SYN,ACK', 'ACK']);
      assert.equal(s3.tcb['client.sndUna'], String((iss + 1) >>> 0), 'the SYN is acknowledged: SND.UNA = ISS+1');
      await screenshot(page, 'ui-step-3.png');

      // Step on to the end: every state change shows on its own step, in order.
      // Each side's states as seen after each step (from before step 1), repeats collapsed.
      const seenClient = ['CLOSED'];
      const seenServer = ['LISTEN'];
      const see = (x: Snapshot): void => {
        if (seenClient.at(-1) !== x.client) seenClient.push(x.client);
        if (seenServer.at(-1) !== x.server) seenServer.push(x.server);
      };
      for (const x of [s1, s2, s3]) see(x);
      const sndNxt = new Set([s1.tcb['client.sndNxt'], s3.tcb['client.sndNxt']]);
      let steps = 3;
      let s = s3;
      while (s.status !== 'done' && steps < MAX_STEPS) {
        await page.click('#step');
        s = await snap();
        steps++;
        see(s);
        sndNxt.add(s.tcb['client.sndNxt']!);
      }
      assert.equal(s.status, 'done', `not done after ${MAX_STEPS} steps`);
      assert.deepEqual(seenClient, ACTIVE, 'the client, step by step');
      assert.deepEqual(seenServer, PASSIVE, 'the server, step by step');
      assert.ok(sndNxt.size >= 3, `client SND.NXT took ${sndNxt.size} values: ${[...sndNxt].join(', ')}`);
      assert.equal(s.summaryOk, 'true');
      assert.ok(steps >= s.arrows.length, `${steps} steps for ${s.arrows.length} segments`);
      assert.deepEqual(errors, []);
    });

    await t.test('simultaneous-close: both sides FIN-WAIT-1 → CLOSING → TIME-WAIT', async () => {
      await choose('simultaneous-close');
      let s = await snap();
      let bothClosing: Snapshot | undefined;
      for (let i = 0; i < MAX_STEPS && s.status !== 'done'; i++) {
        await page.click('#step');
        s = await snap();
        if (s.client === 'CLOSING' && s.server === 'CLOSING') {
          bothClosing = s;
          break;
        }
      }
      assert.ok(bothClosing, `never both CLOSING: client ${s.clientHistory.join(' → ')}; server ${s.serverHistory.join(' → ')}`);
      assert.deepEqual(bothClosing.fig5.client, ['CLOSING']);
      assert.deepEqual(bothClosing.fig5.server, ['CLOSING']);
      // The two FINs crossed on the wire.
      const fins = bothClosing.arrows.map((f, i) => [f, bothClosing!.arrowFrom[i]] as const).filter(([f]) => f.includes('FIN'));
      assert.deepEqual(fins.map(([, from]) => from).sort(), ['client', 'server']);
      assert.ok(bothClosing.fig5.edges.some((e) => e.startsWith('FIN-WAIT-1>CLOSING:') && e.includes('client') && e.includes('server')), bothClosing.fig5.edges.join(' '));
      await screenshot(page, 'ui-simultaneous-close-closing.png');

      await page.selectOption('#speed', 'max');
      await page.click('#play');
      await waitFor(`document.body.dataset.status === 'done'`, 'simultaneous-close finished');
      const end = await snap();
      const tail = ['ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED'];
      assert.deepEqual(end.clientHistory, ['CLOSED', 'SYN-SENT', ...tail]);
      assert.deepEqual(end.serverHistory, ['LISTEN', 'SYN-RECEIVED', ...tail]);
      assert.equal(end.summaryOk, 'true');
      await screenshot(page, 'ui-simultaneous-close-done.png', { fullPage: true });
      assert.deepEqual(errors, []);
    });

    await t.test('the settings reach the stacks: delay, loss and seed', async () => {
      await page.selectOption('#scenario', 'handshake');
      await page.fill('#delay', '50');
      await page.fill('#loss', '30');
      await page.fill('#seed', '4');
      // 'change' fires when the field is left: the page resets with the new settings.
      await page.click('#step');
      await page.click('#step');
      await page.click('#step');
      let s = await snap();
      assert.equal(s.error, '');
      await page.selectOption('#speed', 'max');
      await page.click('#play');
      await waitFor(`document.body.dataset.status === 'done'`, 'the lossy run finished');
      s = await snap();
      assert.equal(s.summaryOk, 'true', 'the handshake survives 30 % loss');
      assert.deepEqual(s.clientHistory, ACTIVE);
      const lost = (await page.evaluate(`document.querySelectorAll('#ladder g.seg.lost').length`)) as number;
      assert.ok(lost > 0, 'at 30 % loss some segment was lost');
      const t2 = (await page.evaluate(`[...document.querySelectorAll('#log li[data-kind="in"]')][0].textContent`)) as string;
      assert.match(t2, /^0\.0[5-9]\d|^[1-9]/, `the first arrival comes 50 ms or more after the start: ${t2}`);
      await screenshot(page, 'ui-handshake-lossy.png', { fullPage: true });
      assert.deepEqual(errors, []);
    });

    await t.test('every demo scenario runs to the end in the page, its checks passing', async (st) => {
      await page.fill('#delay', '10');
      await page.fill('#loss', '0');
      await page.fill('#seed', '1');
      await page.selectOption('#speed', 'max');
      const names = (await page.evaluate(`[...document.querySelectorAll('#scenario option')].map((o) => o.value)`)) as string[];
      assert.deepEqual(names, [
        'handshake', 'simultaneous-open', 'simultaneous-close', 'half-close', 'refused', 'abort', 'syn-lost', 'transfer', 'zero-window',
      ]);
      for (const name of names) {
        const t0 = Date.now();
        await choose(name);
        await page.click('#play');
        await waitFor(`document.body.dataset.status === 'done' || document.body.dataset.status === 'error'`, `${name} finished`);
        const s = await snap();
        st.diagnostic(`${name}: ${s.ladderSegments} segments, ${s.clock}, ${Date.now() - t0} ms; client ${s.clientHistory.join(' → ')}; server ${s.serverHistory.join(' → ')}`);
        assert.equal(s.error, '', name);
        assert.equal(s.summaryOk, 'true', `${name}: ${(await page.evaluate(`document.querySelector('#summary').textContent`)) as string}`);
        assert.equal(s.client, 'CLOSED', name);
      }
      await screenshot(page, 'ui-zero-window-done.png', { fullPage: true });
      assert.deepEqual(errors, []);
    });

    // Everything came from the page's own origin: no request anywhere else.
    const origin = new URL(ui.url).origin;
    assert.ok(requests.length >= 3, requests.join(' '));
    for (const r of requests) assert.ok(r.startsWith(`${origin}/`) || r.startsWith('data:'), `request to ${r}`);
  } finally {
    await closeBrowser(browser);
    const code = await stopUi(ui.child);
    assert.equal(code, 0, `synack ui exit status after SIGTERM (stderr: ${ui.stderr()})`);
  }
});
