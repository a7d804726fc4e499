import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderText } from '../../src/diagram/text.js';
import { renderSvg, escapeXml } from '../../src/diagram/svg.js';
import { escapeMermaid, renderMermaid } from '../../src/diagram/mermaid.js';
import { MARK_WORDS } from '../../src/diagram/labels.js';
import type { SegmentMark } from '../../src/diagram/model.js';
import { CLIENT_ISN, SERVER_ISN, Script, handshakeScript } from './synthetic.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');
const visible = (s: string): number => [...stripAnsi(s)].length;
const STATES = /^(CLOSED|LISTEN|SYN-SENT|SYN-RECEIVED|ESTABLISHED|FIN-WAIT-1|FIN-WAIT-2|CLOSE-WAIT|CLOSING|LAST-ACK|TIME-WAIT)$/;

/** The states shown in the left column and in the right column, top to bottom. */
function columns(text: string): { left: string[]; right: string[] } {
  const left: string[] = [];
  const right: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cells = line.trim().split(/\s+/);
    // A row is: [time] leftCell … rightCell; explanation lines start with ↳.
    if (cells[0] === '↳' || cells[0] === '>') continue;
    const rest = /^\d+\.\d{3}$/.test(cells[0]!) ? cells.slice(1) : cells;
    if (STATES.test(rest[0] ?? '')) left.push(rest[0]!);
    const last = rest[rest.length - 1] ?? '';
    if (rest.length > 1 && STATES.test(last)) right.push(last);
  }
  return { left, right };
}

test('each column shows its side`s states in order', () => {
  const text = renderText(handshakeScript().rec.build());
  const { left, right } = columns(text);
  assert.deepEqual(left, ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
  assert.deepEqual(right, ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED']);
  assert.match(text.split('\n')[0]!, /client 10\.0\.0\.1:49152 +server 10\.0\.0\.2:80$/);
});

test('arrows point from the sender: client → server rightwards, server → client leftwards', () => {
  const lines = renderText(handshakeScript().rec.build()).split('\n');
  const syn = lines.find((l) => l.includes('SYN seq=0 win=65535 [MSS=1460]'));
  assert.ok(syn, 'SYN line');
  assert.match(syn, /SYN-SENT +──SYN seq=0 win=65535 \[MSS=1460\]─+▶ │$/);
  const synAck = lines.find((l) => l.includes('SYN,ACK seq=0 ack=1'));
  assert.ok(synAck);
  assert.match(synAck, /◀──SYN,ACK seq=0 ack=1 win=65535 \[MSS=1460\]─+ SYN-RECEIVED$/);
  assert.ok(!synAck.includes('▶'));
  assert.ok(lines.some((l) => /──PSH,ACK seq=1 ack=1 len=18 win=65535─+▶/.test(l)));
  assert.ok(lines.some((l) => /^ +0\.110 TIME-WAIT +──ACK seq=20 ack=102/.test(l)));
  assert.ok(lines.some((l) => /^ +60\.110 CLOSED /.test(l)));
});

test('a dropped segment is drawn as lost, not reaching the other side', () => {
  const m = new Script()
    .state(0, 'client', 'CLOSED', 'SYN-SENT')
    .send(0, 'client', ['SYN'], CLIENT_ISN, 0, { drop: 'after' })
    .send(1000, 'client', ['SYN'], CLIENT_ISN, 0)
    .send(1010, 'server', ['SYN', 'ACK'], SERVER_ISN, CLIENT_ISN + 1, { drop: 'after' })
    .rec.build();
  const lines = renderText(m).split('\n');
  const lost = lines.filter((l) => l.includes('lost'));
  assert.equal(lost.length, 2);
  assert.match(lost[0]!, /^ +0\.000 SYN-SENT +──SYN seq=0 win=65535 ──✕ lost +│$/);
  assert.ok(!lost[0]!.includes('▶'));
  assert.match(lost[1]!, /lost ✕── SYN,ACK seq=0 ack=1 win=65535── │$/);
  const ok = lines.find((l) => l.startsWith('   1.000'));
  assert.ok(ok?.includes('▶') && !ok.includes('lost'));
  // In colour the drop is red.
  assert.ok(renderText(m, { color: true }).includes('\x1b[31m ──✕ lost'));
});

test('every line fits the width; labels are truncated, not wrapped', () => {
  const m = handshakeScript().rec.build();
  const full = renderText(m, { width: 200 }).split('\n').length;
  for (const width of [40, 50, 60, 80, 100, 120]) {
    for (const explain of [false, true]) {
      const text = renderText(m, { width, explain, color: true });
      for (const line of text.split('\n')) assert.ok(visible(line) <= width, `${width}: ${JSON.stringify(line)}`);
      if (!explain) assert.equal(text.split('\n').length, full, 'same rows at every width');
    }
  }
  const narrow = renderText(m, { width: 60 });
  assert.ok(narrow.includes('…'), 'long labels end with an ellipsis');
  // The arrow keeps its head even when its label is cut.
  assert.ok(narrow.split('\n').some((l) => /──SYN seq=0.*…─*▶/.test(l)));
});

test('colour only when asked, and only in escape codes: stripped, it is the plain text', () => {
  const m = handshakeScript().rec.build();
  const plain = renderText(m);
  const coloured = renderText(m, { color: true });
  assert.ok(!plain.includes('\x1b['));
  assert.ok(coloured.includes('\x1b[1;36mSYN-SENT'), 'states coloured');
  assert.ok(coloured.includes('\x1b[1;32mSYN\x1b[0m'), 'SYN highlighted');
  assert.ok(coloured.includes('\x1b[1;33mFIN\x1b[0m'), 'FIN highlighted');
  assert.equal(stripAnsi(coloured), plain);
});

test('ASCII fallback uses -> and <- and nothing outside ASCII', () => {
  const text = renderText(handshakeScript().rec.build(), { ascii: true });
  assert.ok(/--SYN seq=0 win=65535 \[MSS=1460\]-+> \|/.test(text));
  assert.ok(/<--SYN,ACK seq=0 ack=1/.test(text));
  assert.ok([...text].every((c) => c.charCodeAt(0) < 128));
});

test('explain prints the cause and RFC of each state change under its row', () => {
  const text = renderText(handshakeScript().rec.build(), { explain: true });
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.includes('SYN-SENT  '));
  assert.match(lines[i + 1]!, /↳ client SYN-SENT: active OPEN \(RFC 9293 §3\.10\)/);
  assert.ok(text.includes('↳ client CLOSED: 2MSL expired'));
  assert.ok(!renderText(handshakeScript().rec.build()).includes('↳'));
});

test('a long transfer is abbreviated: handshake, first and last data segments, "… N segments …", close', () => {
  const s = new Script()
    .state(0, 'client', 'CLOSED', 'SYN-SENT')
    .send(0, 'client', ['SYN'], CLIENT_ISN, 0)
    .send(10, 'server', ['SYN', 'ACK'], SERVER_ISN, CLIENT_ISN + 1)
    .state(20, 'client', 'SYN-SENT', 'ESTABLISHED')
    .send(20, 'client', ['ACK'], CLIENT_ISN + 1, SERVER_ISN + 1);
  const n = 200;
  for (let i = 0; i < n; i++) {
    s.send(21 + i, 'client', ['ACK'], CLIENT_ISN + 1 + i * 1000, SERVER_ISN + 1, { len: 1000, drop: i === 100 ? 'after' : undefined });
    if (i % 2 === 1) s.send(31 + i, 'server', ['ACK'], SERVER_ISN + 1, CLIENT_ISN + 1 + (i + 1) * 1000);
  }
  s.state(300, 'client', 'ESTABLISHED', 'FIN-WAIT-1').send(300, 'client', ['FIN', 'ACK'], CLIENT_ISN + 1 + n * 1000, SERVER_ISN + 1);
  s.send(310, 'server', ['ACK'], SERVER_ISN + 1, CLIENT_ISN + 2 + n * 1000);
  const m = s.rec.build();
  const text = renderText(m);
  const lines = text.split('\n');
  const elided = lines.filter((l) => /… \d+ segments/.test(l));
  assert.equal(elided.length, 1);
  const total = m.segments.length;
  const shown = lines.filter((l) => l.includes('seq=')).length;
  assert.match(elided[0]!, new RegExp(`… ${total - shown} segments \\(1 lost\\) …`));
  assert.ok(lines.length < 30, `${lines.length} lines`);
  assert.ok(text.includes('──SYN seq=0'));
  assert.ok(text.includes(`FIN,ACK seq=${1 + n * 1000}`));
  assert.ok(text.includes('len=1000'));
  // The last data segment is shown, right before the FIN.
  assert.ok(text.includes(`seq=${1 + (n - 1) * 1000} ack=1 len=1000`));
  // Short runs are not abbreviated.
  assert.ok(!/… \d+ segment/.test(renderText(handshakeScript().rec.build())));
});

test('analysis marks are written on the arrows, after the numbers and before the options', () => {
  const model = handshakeScript().rec.build();
  model.segments[3]!.marks = ['retransmission'];
  model.segments[4]!.marks = ['dup-ack', 'window-update'];
  const lines = renderText(model, { width: 140 }).split('\n');
  const data = lines.find((l) => l.includes('PSH,ACK seq=1 ack=1 len=18'));
  assert.ok(data);
  assert.match(data, /──PSH,ACK seq=1 ack=1 len=18 win=65535 \(retransmission\)─+▶ │$/);
  const reply = lines.find((l) => l.includes('PSH,ACK seq=1 ack=19 len=100'));
  assert.ok(reply);
  assert.match(reply, /◀──PSH,ACK seq=1 ack=19 len=100 win=65535 \(dup ACK, window update\)─+/);
  assert.equal(lines.filter((l) => l.includes('(')).length, 2, 'unmarked arrows carry no mark');
  // A mark outranks the options: on a narrow terminal the options are cut first.
  model.segments[0]!.marks = ['retransmission'];
  const syn = renderText(model, { width: 80 }).split('\n').find((l) => l.includes('SYN seq=0'));
  assert.ok(syn);
  assert.match(syn, /SYN seq=0 win=65535 \(retransmission\) \[MS…/);
  // In colour the mark stands out (bold red); stripped, it is the plain text.
  const coloured = renderText(model, { width: 140, color: true });
  assert.match(coloured, /\x1b\[1;31mdup ACK, window update\x1b\[0m/);
  assert.equal(stripAnsi(coloured), renderText(model, { width: 140 }));
  // ASCII mode keeps them (the words are ASCII).
  assert.match(renderText(model, { ascii: true, width: 140 }), /-PSH,ACK seq=1 ack=1 len=18 win=65535 \(retransmission\)-+>/);
});

test('every mark, in the same words in text, SVG and Mermaid (one table, labels.ts MARK_WORDS)', () => {
  const model = handshakeScript().rec.build();
  for (const mark of Object.keys(MARK_WORDS) as SegmentMark[]) {
    model.segments[3]!.marks = [mark];
    const word = MARK_WORDS[mark];
    assert.match(word, /^[a-zA-Z -]+$/, 'short plain words');
    assert.ok(renderText(model, { width: 160 }).includes(`len=18 win=65535 (${word})`), `text: ${word}`);
    assert.ok(renderSvg(model).includes(`<tspan class="mark">${escapeXml(word)}</tspan>`), `svg: ${word}`);
    assert.ok(renderMermaid(model).includes(escapeMermaid(`(${word})`)), `mermaid: ${word}`);
  }
});
