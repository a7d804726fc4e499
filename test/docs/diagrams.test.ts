/**
 * docs/tcp-connection-lifecycle.md is illustrated only with diagrams synack draws. This test keeps it
 * honest: it regenerates every diagram (tools/docs-diagrams.ts, i.e. `synack demo --scenario S --svg F`)
 * into a temporary directory and requires the committed files to be byte-identical, and it checks
 * that each number the page quotes is in its diagram, on the right side, at the right time.
 * After a deliberate change: `npm run docs:diagrams`, review the pictures, update the page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOC_SCENARIOS, writeDocsDiagrams } from '../../tools/docs-diagrams.js';
import { repoRoot } from '../support/repo.js';

const DOCS = join(repoRoot(), 'docs');
const DIAGRAMS = join(DOCS, 'diagrams');

test('the committed docs diagrams are exactly what synack draws today', () => {
  const dir = mkdtempSync(join(tmpdir(), 'synack-docs-'));
  try {
    const written = writeDocsDiagrams(dir);
    assert.deepEqual(
      written.map((p) => p.slice(dir.length + 1)).sort(),
      DOC_SCENARIOS.map((s) => `${s}.svg`).sort(),
    );
    const committed = readdirSync(DIAGRAMS).filter((f) => f.endsWith('.svg')).sort();
    assert.deepEqual(committed, DOC_SCENARIOS.map((s) => `${s}.svg`).sort(), 'docs/diagrams holds exactly the generated SVGs');
    for (const name of committed) {
      const fresh = readFileSync(join(dir, name), 'utf8');
      const old = readFileSync(join(DIAGRAMS, name), 'utf8');
      assert.ok(fresh === old, `docs/diagrams/${name} is stale: run \`npm run docs:diagrams\` and review the docs page`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Picture {
  /** Text of every <text> element, tags stripped. */
  texts: string[];
  /** Each state written beside a lifeline: side 0 (client) or 1 (server), state, time of its row. */
  states: Array<{ side: number; state: string; t: string }>;
  /** Each arrow: its main label and the time of the row it leaves its sender on. */
  arrows: Array<{ label: string; t: string }>;
}

function picture(name: string): Picture {
  const svg = readFileSync(join(DIAGRAMS, `${name}.svg`), 'utf8');
  const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  const texts = [...svg.matchAll(/<text\b[^>]*>(.*?)<\/text>/g)].map((m) => unescape(m[1]!.replace(/<[^>]+>/g, '')));
  const rowTime = new Map<string, string>();
  for (const m of svg.matchAll(/<text class="time" data-row="(\d+)"[^>]*>([\d.]+)<\/text>/g)) rowTime.set(m[1]!, m[2]!);
  const states = [...svg.matchAll(/<g class="st" data-side="(\d)" data-st="\d+" data-row="(-?\d+)">.*?<text class="state[^"]*"[^>]*>([^<]*)<\/text>/g)].map(
    (m) => ({ side: Number(m[1]), state: m[3]!, t: m[2] === '-1' ? 'start' : rowTime.get(m[2]!) ?? '?' }),
  );
  const arrows = [...svg.matchAll(/<g class="seg[^"]*" data-seg="\d+" data-row="(\d+)"[^>]*>(.*?)<\/g>/g)].map((m) => {
    const label = /<text class="label"[^>]*>(.*?)<\/text>/.exec(m[2]!)?.[1] ?? '';
    return { label: unescape(label.replace(/<[^>]+>/g, '')), t: rowTime.get(m[1]!) ?? '?' };
  });
  return { texts, states, arrows };
}

/** `['FIN,ACK seq=35 ', '0.040']` style claims: an arrow so labelled leaves its sender at that time (`n` of them). */
function assertSent(p: Picture, claims: Array<[label: string, t: string, n?: number]>): void {
  for (const [label, t, n] of claims) {
    const count = p.arrows.filter((a) => a.label.includes(label) && a.t === t).length;
    assert.equal(count, n ?? 1, `"${label}" sent at ${t}: ${count} such arrows (${p.arrows.map((a) => `${a.label}@${a.t}`).join(' | ')})`);
  }
}

/** `client SYN-SENT 0.000` style claims: the state is written on that side at that time. */
function assertStates(p: Picture, claims: string[]): void {
  for (const c of claims) {
    const [who, state, t] = c.split(' ') as [string, string, string];
    const side = who === 'client' ? 0 : 1;
    assert.ok(
      p.states.some((s) => s.side === side && s.state === state && s.t === t),
      `${c}: not in the diagram (${p.states.map((s) => `${s.side}:${s.state}@${s.t}`).join(' ')})`,
    );
  }
}

function assertLabels(p: Picture, labels: string[]): void {
  for (const l of labels) assert.ok(p.texts.some((t) => t.includes(l)), `no label with "${l}"`);
}

test('the numbers docs/tcp-connection-lifecycle.md quotes are the ones in its diagrams', () => {
  const page = readFileSync(join(DOCS, 'tcp-connection-lifecycle.md'), 'utf8');
  for (const s of DOC_SCENARIOS) assert.ok(page.includes(`](diagrams/${s}.svg)`), `the page shows ${s}.svg`);

  const hs = picture('handshake');
  assertStates(hs, [
    'client CLOSED start', 'server LISTEN start',
    'client SYN-SENT 0.000', 'server SYN-RECEIVED 0.010', 'client ESTABLISHED 0.020', 'server ESTABLISHED 0.030',
    'client FIN-WAIT-1 0.040', 'server CLOSE-WAIT 0.050', 'client FIN-WAIT-2 0.060', 'server LAST-ACK 0.100',
    'client TIME-WAIT 0.110', 'server CLOSED 0.120', 'client CLOSED 60.110',
  ]);
  assertLabels(hs, ['SYN seq=0 win', 'SYN,ACK seq=0 ack=1 ', 'PSH,ACK seq=1 ack=1 len=34', 'ack=35', 'FIN,ACK seq=35 ', 'ack=36 ', 'FIN,ACK seq=45 ', 'ack=46 ', '+60.0 s']);
  assert.ok(!hs.states.some((s) => s.side === 1 && s.state === 'TIME-WAIT'), 'the passive closer never holds TIME-WAIT');
  assert.ok(!hs.states.some((s) => s.side === 0 && s.state === 'CLOSE-WAIT'), 'the active closer never is in CLOSE-WAIT');
  assertSent(hs, [['SYN seq=0 ', '0.000'], ['FIN,ACK seq=35 ', '0.040'], ['ack=36 ', '0.050'], ['FIN,ACK seq=45 ', '0.100'], ['ack=46 ', '0.110']]);

  const sc = picture('simultaneous-close');
  assertStates(sc, [
    'client FIN-WAIT-1 0.600', 'server FIN-WAIT-1 0.600', 'client CLOSING 0.610', 'server CLOSING 0.610',
    'client TIME-WAIT 0.620', 'server TIME-WAIT 0.620', 'client CLOSED 60.620', 'server CLOSED 60.620',
  ]);
  assertLabels(sc, ['FIN,ACK seq=1 ', 'ACK seq=2 ack=2 ']);
  assertSent(sc, [['FIN,ACK seq=1 ', '0.600', 2], ['ACK seq=2 ack=2 ', '0.610', 2]]);

  const so = picture('simultaneous-open');
  assertStates(so, [
    'client CLOSED start', 'server CLOSED start', 'client SYN-SENT 0.000', 'server SYN-SENT 0.000',
    'client SYN-RECEIVED 0.010', 'server SYN-RECEIVED 0.010', 'client ESTABLISHED 0.020', 'server ESTABLISHED 0.020',
    'server CLOSE-WAIT 0.040', 'server LAST-ACK 0.090', 'client TIME-WAIT 0.100', 'client CLOSED 60.100',
  ]);
  assert.equal(so.texts.filter((t) => /^SYN(,ACK)? seq=0/.test(t)).length, 4, 'four segments open the connection');
  assert.ok(!so.states.some((s) => s.state === 'LISTEN'));
  assertSent(so, [['SYN seq=0 ', '0.000', 2], ['SYN,ACK seq=0 ack=1 ', '0.010', 2]]);

  const hc = picture('half-close');
  assertStates(hc, ['client FIN-WAIT-1 0.020', 'server CLOSE-WAIT 0.030', 'client TIME-WAIT 0.080']);
  assertLabels(hc, ['FIN,ACK seq=35 ', 'ack=36 ', 'len=392', 'FIN,PSH,ACK seq=393 ack=36 len=784', 'ack=1178 ']);
  assertSent(hc, [['FIN,ACK seq=35 ', '0.020'], ['ACK seq=1 ack=36 win', '0.030'], ['len=392', '0.030'], ['FIN,PSH,ACK seq=393 ack=36 len=784', '0.070']]);

  const rf = picture('refused');
  assertStates(rf, ['client SYN-SENT 0.000', 'client CLOSED 0.020', 'server CLOSED start']);
  assertLabels(rf, ['RST,ACK seq=0 ack=1 ']);
  assert.equal(rf.states.filter((s) => s.side === 1).length, 1, 'the refusing side has no connection, no state change');

  const ab = picture('abort');
  assertStates(ab, ['client ESTABLISHED 0.020', 'client CLOSED 0.600', 'server CLOSED 0.610']);
  assertLabels(ab, ['RST seq=35 ']);
  assertSent(ab, [['RST seq=35 ', '0.600']]);
  assert.ok(!ab.states.some((s) => s.state === 'TIME-WAIT'), 'no TIME-WAIT after an abort');

  const sl = picture('syn-lost');
  assertStates(sl, ['client SYN-SENT 0.000', 'server SYN-RECEIVED 1.010', 'client FIN-WAIT-1 1.040', 'client TIME-WAIT 1.110', 'client CLOSED 61.110']);
  assert.equal(sl.texts.filter((t) => t.startsWith('SYN seq=0 ')).length, 2, 'the SYN is sent twice with the same ISN');
  assertLabels(sl, ['lost', '+1.000 s', 'SYN,ACK seq=0 ack=1 ']);
  assertSent(sl, [['SYN seq=0 ', '0.000'], ['SYN seq=0 ', '1.000'], ['SYN,ACK seq=0 ack=1 ', '1.010'], ['FIN,ACK seq=35 ', '1.040']]);
  assert.ok(sl.texts.includes('1.000'), 'the retransmission leaves at 1.000');
});
