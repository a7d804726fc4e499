import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeMermaid, renderMermaid } from '../../src/diagram/mermaid.js';
import { CLIENT_ISN, Script, handshakeScript } from './synthetic.js';

/**
 * The shape of every line of a sequenceDiagram this renderer writes, per Mermaid's grammar: a
 * participant with an alias, a message `A->>B: text` / `A-xB: text`, or `Note over A[,B]: text`.
 * Texts hold no raw `;` `#` (outside entity codes) or `:` (the separator), no `<`/`>`.
 */
function checkSyntax(src: string): string[] {
  const lines = src.trimEnd().split('\n');
  assert.equal(lines[0], 'sequenceDiagram');
  const ids = new Set<string>();
  const problems: string[] = [];
  for (const line of lines.slice(1)) {
    let text: string | undefined;
    let m: RegExpExecArray | null;
    if ((m = /^ {4}participant ([A-Za-z_][A-Za-z0-9_]*) as (.+)$/.exec(line))) {
      ids.add(m[1]!);
      text = m[2];
    } else if ((m = /^ {4}([A-Za-z_]\w*)(->>|-x)([A-Za-z_]\w*): (.+)$/.exec(line))) {
      if (!ids.has(m[1]!) || !ids.has(m[3]!)) problems.push(`undeclared participant: ${line}`);
      text = m[4];
    } else if ((m = /^ {4}Note over ([A-Za-z_]\w*(?:,[A-Za-z_]\w*)?): (.+)$/.exec(line))) {
      for (const id of m[1]!.split(',')) if (!ids.has(id)) problems.push(`undeclared participant: ${line}`);
      text = m[2];
    } else if ((m = /^ {4}title (.+)$/.exec(line))) {
      text = m[1];
    } else {
      problems.push(`not a sequenceDiagram statement: ${line}`);
      continue;
    }
    const bare = text!.replace(/#(?:\d+|lt|gt);/g, '');
    if (/[;#:<>]/.test(bare)) problems.push(`unescaped special character: ${line}`);
  }
  return problems;
}

test('a sequenceDiagram: participants with addresses, one message per segment, notes for states', () => {
  const model = handshakeScript().rec.build();
  const src = renderMermaid(model);
  assert.deepEqual(checkSyntax(src), []);
  const lines = src.split('\n');
  assert.equal(lines[1], '    participant client as client 10.0.0.1#58;49152');
  assert.equal(lines[2], '    participant server as server 10.0.0.2#58;80');
  assert.equal(lines[3], '    Note over client: CLOSED');
  assert.equal(lines[4], '    Note over server: LISTEN');
  assert.equal(lines[5], '    Note over client: SYN-SENT');
  assert.equal(lines[6], '    client->>server: SYN seq=0 win=65535 [MSS=1460]');
  assert.equal(lines[7], '    Note over server: SYN-RECEIVED');
  assert.equal(lines[8], '    server->>client: SYN,ACK seq=0 ack=1 win=65535 [MSS=1460]');
  assert.equal(lines.filter((l) => /->>|-x/.test(l)).length, model.segments.length);
  const notes = lines.filter((l) => l.startsWith('    Note over client: ')).map((l) => l.slice(22));
  assert.deepEqual(notes, ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']);
  assert.equal(src, renderMermaid(handshakeScript().rec.build()), 'deterministic');
});

test('a lost segment is a -x message; marks, inferred and unknown states are written out', () => {
  const model = new Script()
    .state(0, 'client', 'CLOSED', 'SYN-SENT')
    .send(0, 'client', ['SYN'], CLIENT_ISN, 0, { drop: 'after' })
    .send(1000, 'client', ['SYN'], CLIENT_ISN, 0)
    .rec.build();
  model.segments[1]!.marks = ['retransmission'];
  model.inferred = true;
  model.endpoints[1]!.states[0] = { t: 0, state: 'unknown', cause: '', rfc: '' };
  const src = renderMermaid(model);
  assert.deepEqual(checkSyntax(src), []);
  assert.match(src, /\n {4}client-xserver: SYN seq=0 win=65535 — lost\n {4}client->>server: SYN seq=0 win=65535 \(retransmission\)\n/);
  assert.match(src, /Note over server: unknown \(inferred\)/);
  assert.match(src, /Note over client: SYN-SENT \(inferred\)/);
});

test('characters Mermaid treats specially are escaped; odd names become valid ids', () => {
  assert.equal(escapeMermaid('a;b#c:d<e>f%%g'), 'a#59;b#35;c#58;d#lt;e#gt;f#37;#37;g');
  const model = handshakeScript().rec.build();
  model.title = 'x: y; #z';
  model.endpoints[0]!.name = '10.0.0.1:49152';
  model.endpoints[1]!.name = 'end';
  for (const s of model.segments) {
    s.from = s.from === 'client' ? '10.0.0.1:49152' : 'end';
    s.to = s.to === 'client' ? '10.0.0.1:49152' : 'end';
  }
  model.segments[0]!.options = ['X=a;b#c:d'];
  const src = renderMermaid(model);
  assert.deepEqual(checkSyntax(src), []);
  assert.match(src, /\n {4}title x#58; y#59; #35;z\n/);
  assert.match(src, /participant p_10_0_0_1_49152 as 10\.0\.0\.1#58;49152\n/);
  assert.match(src, /participant p_end as end 10\.0\.0\.2#58;80\n/, '`end` is a Mermaid keyword');
  assert.match(src, /\[X=a#59;b#35;c#58;d\]/);
});

test('a long data phase is elided in a note over both sides', () => {
  const s = new Script().state(0, 'client', 'CLOSED', 'SYN-SENT').send(0, 'client', ['SYN'], CLIENT_ISN, 0);
  for (let i = 0; i < 60; i++) s.send(10 + i, 'client', ['ACK'], CLIENT_ISN + 1 + i * 100, 0, { len: 100 });
  const src = renderMermaid(s.rec.build());
  assert.deepEqual(checkSyntax(src), []);
  assert.match(src, /Note over client,server: … \d+ segments …/);
});
