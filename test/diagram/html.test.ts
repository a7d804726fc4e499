import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLAG_BITS, renderHtml, segmentHeader, scriptJson, pageSteps, type PageData } from '../../src/diagram/html.js';
import { layoutLadder } from '../../src/diagram/layout.js';
import { bulkModel, handshakeScript } from './synthetic.js';
import { xmlProblem } from './xml.js';

/** The JSON the page embeds. */
function embedded(html: string): PageData {
  const m = /<script type="application\/json" id="synack-data">(.*?)<\/script>/s.exec(html);
  assert.ok(m, 'embedded data');
  return JSON.parse(m[1]!) as PageData;
}

test('one self-contained page: inline SVG, CSS and script; nothing fetched from anywhere', () => {
  const html = renderHtml(handshakeScript().rec.build());
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; /);
  const svg = /<svg [\s\S]*?<\/svg>/.exec(html)?.[0];
  assert.ok(svg);
  assert.equal(xmlProblem(svg), '', 'the inline SVG is well formed');
  assert.match(svg, /tabindex="0" role="button"/, 'arrows are reachable by keyboard');
  // No URL but data: ones, no external script or style.
  for (const m of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) assert.match(m[1]!, /^data:/, m[0]);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  for (const id of ['first', 'back', 'next', 'last', 'status', 'sides', 'segment']) assert.match(html, new RegExp(`id="${id}"`));
  assert.equal(embedded(html).model.endpoints[0]!.name, 'client');
});

test('the embedded JSON cannot close its <script> element', () => {
  const model = handshakeScript().rec.build();
  model.endpoints[0]!.name = '</script><script>alert(1)</script><!--';
  model.title = '</SCRIPT> & <b>';
  const html = renderHtml(model);
  assert.equal(html.match(/<\/script>/gi)?.length, 2, 'only the page`s own two scripts end');
  assert.equal(html.match(/<script/gi)?.length, 2);
  assert.equal(embedded(html).model.endpoints[0]!.name, '</script><script>alert(1)</script><!--');
  assert.match(html, /<title>&lt;\/SCRIPT&gt; &amp; &lt;b&gt;<\/title>/);
  assert.equal(scriptJson({ a: '</script>\u2028&' }), '{"a":"\\u003c/script\\u003e\\u2028\\u0026"}');
  assert.deepEqual(JSON.parse(scriptJson({ a: '</script>\u2028&' })), { a: '</script>\u2028&' });
});

test('the header of a segment: flag bits CWR…FIN, the byte in hex, seq/ack both ways, data offset', () => {
  const model = handshakeScript().rec.build();
  const synAck = segmentHeader(model, 1);
  assert.deepEqual(synAck.flags.map((f) => f.name), ['CWR', 'ECE', 'URG', 'ACK', 'PSH', 'RST', 'SYN', 'FIN']);
  assert.deepEqual(synAck.flags.filter((f) => f.set).map((f) => f.name), ['ACK', 'SYN']);
  assert.equal(synAck.flagByte, 0x12);
  assert.equal(synAck.flagHex, '0x12');
  assert.equal(synAck.srcPort, 80);
  assert.equal(synAck.dstPort, 49152);
  assert.equal(synAck.seq, 0);
  assert.equal(synAck.seqAbs, 4294967000);
  assert.equal(synAck.ack, 1);
  assert.equal(synAck.ackAbs, 1001);
  // MSS (4 bytes) padded to a word: 20 + 4 = 24 bytes = 6 words.
  assert.deepEqual(synAck.dataOffset, { words: 6, bytes: 24, exact: false });
  const fin = segmentHeader(model, 5);
  assert.equal(fin.flagHex, '0x11');
  // The bit values are the wire module's (RFC 9293 §3.1), most significant first.
  assert.deepEqual(FLAG_BITS, [['CWR', 0x80], ['ECE', 0x40], ['URG', 0x20], ['ACK', 0x10], ['PSH', 0x08], ['RST', 0x04], ['SYN', 0x02], ['FIN', 0x01]]);
  model.segments[0]!.options = ['MSS=1460', 'SACK_PERM', 'TS=1/0', 'WS=7'];
  // Linux's SYN: mss(4); sackOK,TS(12); nop,wscale(4) = 20 option bytes: 40-byte header, data offset 10.
  assert.deepEqual(segmentHeader(model, 0).dataOffset, { words: 10, bytes: 40, exact: false });
  // Laid out as Linux and synack write them (nop,nop,TS then nop,nop,SACK): TS + one SACK block is a
  // 44-byte header (the review's Linux capture), TS + two blocks 52.
  model.segments[0]!.options = ['TS=1/0', 'SACK=1-2'];
  assert.deepEqual(segmentHeader(model, 0).dataOffset, { words: 11, bytes: 44, exact: false });
  model.segments[0]!.options = ['TS=1/0', 'SACK=1-2', 'SACK=3-4'];
  assert.deepEqual(segmentHeader(model, 0).dataOffset, { words: 13, bytes: 52, exact: false });
  model.segments[0]!.options = [];
  assert.deepEqual(segmentHeader(model, 0).dataOffset, { words: 5, bytes: 20, exact: false });
  // A capture's exact header length (bytes) wins over any estimate.
  model.segments[0]!.dataOffset = 44;
  assert.deepEqual(segmentHeader(model, 0).dataOffset, { words: 11, bytes: 44, exact: true });
  delete model.segments[0]!.dataOffset;
  model.segments[0]!.options = ['WHATEVER'];
  assert.equal(segmentHeader(model, 0).dataOffset, undefined, 'unknown option: no guess');
});

test('time steps are the ladder`s rows (without elided ones), each with the states entered on it', () => {
  const model = handshakeScript().rec.build();
  const rows = layoutLadder(model).rows;
  const steps = pageSteps(rows);
  assert.equal(steps.length, rows.length);
  assert.equal(steps[0]!.seg, 0, 'first step: the SYN');
  assert.deepEqual(steps[0]!.states, [[0, 1]], 'client SYN-SENT');
  // Every segment is on exactly one step, every state change too.
  assert.deepEqual(steps.flatMap((s) => (s.seg === null ? [] : [s.seg])).sort((a, b) => a - b), model.segments.map((_, i) => i));
  assert.equal(steps.reduce((n, s) => n + s.states.length, 0), model.endpoints.reduce((n, e) => n + e.states.length - 1, 0));
});

test('deterministic: the same model gives the same page', () => {
  assert.equal(renderHtml(handshakeScript().rec.build()), renderHtml(handshakeScript().rec.build()));
});

test('a small run embeds every segment and says nothing is elided', () => {
  const model = handshakeScript().rec.build();
  const html = renderHtml(model);
  const d = embedded(html);
  assert.deepEqual(d.shown, model.segments.map((_, i) => i));
  assert.equal(d.elided, 0);
  assert.deepEqual(d.model.segments, model.segments);
  assert.deepEqual(d.headers.map((h) => h.index), d.shown);
  assert.doesNotMatch(html, /id="elided"/);
});

test('a 300 000-segment stream: the page embeds only what the ladder draws, and says how many are elided', () => {
  const big = bulkModel(300_000);
  const total = big.segments.length;
  const html = renderHtml(big);
  // The review measured 252 MB for this when every segment and header was embedded.
  assert.ok(html.length < 200_000, `${html.length} bytes`);
  const d = embedded(html);
  assert.ok(d.elided > 449_000, `${d.elided} elided`);
  assert.equal(d.shown.length + d.elided, total);
  assert.equal(d.model.segments.length, d.shown.length);
  assert.deepEqual(d.headers.map((h) => h.index), d.shown, 'one header per embedded segment, by model index');
  // The embedded segments are the model's, in order, and exactly the arrows of the ladder.
  d.shown.forEach((i, k) => assert.deepEqual(d.model.segments[k], big.segments[i]));
  const arrows = [...html.matchAll(/<g class="seg [^"]*" data-seg="(\d+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(arrows.sort((a, b) => a - b), d.shown);
  // Every step's segment is embedded; the close and the retransmission are among them.
  const shown = new Set(d.shown);
  for (const s of d.steps) if (s.seg !== null) assert.ok(shown.has(s.seg), `step segment ${s.seg}`);
  assert.ok(d.model.segments.some((s) => s.flags.includes('FIN')));
  assert.ok(d.model.segments.some((s) => s.marks?.includes('retransmission')));
  assert.equal(d.model.notes.length, 1, 'the note of a shown step is kept');
  assert.match(html, new RegExp(`<p class="hint" id="elided">${d.elided} of ${total} segments elided`));
  assert.match(html, new RegExp(`… ${d.elided} segments \\(1 lost\\) …`), 'the ladder`s elision row');
  // Bounded by what is drawn, not by the capture: the same page as for 3 000 segments, give or take digits.
  const small = renderHtml(bulkModel(3_000));
  assert.ok(Math.abs(html.length - small.length) < 1_000, `${html.length} vs ${small.length} bytes`);
});
