import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEndpoint, markWords, optionsLabel, segmentLabel } from '../../src/diagram/labels.js';
import { endpointName } from '../../src/diagram/infer.js';
import { renderText } from '../../src/diagram/text.js';
import { renderSvg } from '../../src/diagram/svg.js';
import { escapeMermaid, renderMermaid } from '../../src/diagram/mermaid.js';
import { segmentHeader } from '../../src/diagram/html.js';
import { handshakeScript } from './synthetic.js';

test('formatEndpoint: address:port, IPv6 in brackets; draw names endpoints the same way', () => {
  assert.equal(formatEndpoint('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(formatEndpoint('fd00::1', 443), '[fd00::1]:443');
  assert.equal(formatEndpoint('::ffff:1.2.3.4', 0), '[::ffff:1.2.3.4]:0');
  for (const [a, p] of [['10.0.0.1', 80], ['fd00::1', 443]] as const) assert.equal(endpointName(a, p), formatEndpoint(a, p));
});

test('every renderer writes an IPv6 endpoint the same way', () => {
  const model = handshakeScript().rec.build();
  model.endpoints[0]!.address = 'fd00::1';
  model.endpoints[1]!.address = 'fd00::2';
  const c = '[fd00::1]:49152';
  const s = '[fd00::2]:80';
  assert.match(renderText(model, { width: 120 }).split('\n')[0]!, /client \[fd00::1\]:49152 +server \[fd00::2\]:80$/);
  const svg = renderSvg(model);
  assert.ok(svg.includes(`<text class="addr"`) && svg.includes(`>${c}</text>`), 'svg client');
  assert.ok(svg.includes(`>${s}</text>`), 'svg server');
  const mermaid = renderMermaid(model);
  assert.ok(mermaid.includes(`participant client as ${escapeMermaid(`client ${c}`)}`), mermaid);
  const h = segmentHeader(model, 1);
  assert.equal(h.source, s);
  assert.equal(h.destination, c);
});

test('segment labels: flags, relative seq, ack only with the ACK bit, len only with data, window; options and marks apart', () => {
  const seg = { flags: ['SYN', 'ACK'], seq: 0, ack: 1, len: 0, win: 65535, options: ['MSS=1460', 'SACK_PERM'] };
  assert.equal(segmentLabel(seg), 'SYN,ACK seq=0 ack=1 win=65535');
  assert.equal(segmentLabel({ ...seg, flags: ['SYN'], ack: 7 }), 'SYN seq=0 win=65535');
  assert.equal(segmentLabel({ ...seg, flags: [], len: 5 }), 'seq=0 len=5 win=65535');
  assert.equal(optionsLabel(seg), '[MSS=1460,SACK_PERM]');
  assert.equal(optionsLabel({ options: [] }), '');
  assert.deepEqual(markWords({ marks: ['dup-ack', 'out-of-order', 'lost-segment'] }), ['dup ACK', 'out of order', 'previous segment lost']);
  assert.deepEqual(markWords({}), []);
});
