/**
 * The ladder diagram as Mermaid `sequenceDiagram` text, for Markdown that renders Mermaid (GitHub,
 * GitLab, many wikis): one participant per side, one message per segment (labelled like text.ts),
 * `Note over` for each state change, `-x` for a segment the link lost, and the same elision of long
 * data phases as the other renderers (rows come from layout.ts, so the order is the same).
 *
 * Pure function of the model: no Node built-ins.
 */
import { formatEndpoint, markWords, optionsLabel, segmentLabel } from './labels.js';
import { layoutLadder, type LayoutOptions } from './layout.js';
import type { DiagramModel } from './model.js';

export interface MermaidOptions extends Pick<LayoutOptions, 'maxSegments' | 'keepHead' | 'keepTail'> {
  /** Put the options on each message too (default true). */
  options?: boolean;
}

/**
 * Text safe in a Mermaid label: `;` ends a statement and `#` starts a comment or an entity, `:`
 * separates a message from its text, `<`/`>` would be read as HTML, and `%%` starts a comment; each
 * becomes an entity code (`#59;`), which Mermaid decodes when it draws. Newlines become spaces.
 */
export function escapeMermaid(s: string): string {
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/[#;:<>%{}"]/g, (c) => {
      switch (c) {
        case '<':
          return '#lt;';
        case '>':
          return '#gt;';
        default:
          return `#${c.charCodeAt(0)};`;
      }
    });
}

/** Words of Mermaid's sequenceDiagram grammar, which cannot be participant ids. */
const KEYWORDS = new Set(
  'participant actor as end loop alt else opt par and rect critical break note over left right of activate deactivate title autonumber box create destroy link links properties details'.split(' '),
);

/** A participant id: letters, digits and `_` only (Mermaid ids cannot hold `-`, `:`, `,`, `+`, `>`). */
function participantId(name: string, taken: Set<string>): string {
  let id = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(id)) id = `p_${id}`;
  if (id === '' || KEYWORDS.has(id.toLowerCase())) id = `p_${id}`;
  let unique = id;
  for (let k = 2; taken.has(unique); k++) unique = `${id}_${k}`;
  taken.add(unique);
  return unique;
}

/** Render the model as a Mermaid sequence diagram (lines joined with '\n', ending with one). */
export function renderMermaid(model: DiagramModel, options: MermaidOptions = {}): string {
  const withOptions = options.options ?? true;
  const layout = layoutLadder(model, options);
  const lines: string[] = ['sequenceDiagram'];
  if (model.title !== undefined && model.title !== '') lines.push(`    title ${escapeMermaid(model.title)}`);
  const taken = new Set<string>();
  const ids = new Map<string, string>();
  const sides = model.endpoints.slice(0, 2);
  const participant = (name: string, alias: string): void => {
    if (ids.has(name)) return;
    const id = participantId(name, taken);
    ids.set(name, id);
    lines.push(`    participant ${id} as ${escapeMermaid(alias)}`);
  };
  for (const ep of sides) {
    const addr = ep.address === '' ? '' : formatEndpoint(ep.address, ep.port);
    participant(ep.name, addr === '' || addr === ep.name ? ep.name : `${ep.name} ${addr}`);
  }
  // A segment to or from someone who is not one of the two sides (a capture with strays).
  for (const seg of model.segments) {
    participant(seg.from, seg.from);
    participant(seg.to, seg.to);
  }
  const idOf = (name: string): string => ids.get(name)!;
  const tag = model.inferred ? ' (inferred)' : '';
  const note = (side: number, st: number): void => {
    const ep = sides[side]!;
    lines.push(`    Note over ${ids.get(ep.name)!}: ${escapeMermaid(ep.states[st]!.state + tag)}`);
  };
  sides.forEach((_, side) => note(side, 0));
  const both = sides.map((e) => ids.get(e.name)!).join(',');
  for (const r of layout.rows) {
    if (r.elided !== undefined) {
      const what = `… ${r.elided.count} segment${r.elided.count === 1 ? '' : 's'}${r.elided.lost > 0 ? ` (${r.elided.lost} lost)` : ''} …`;
      lines.push(`    Note over ${both}: ${escapeMermaid(what)}`);
      continue;
    }
    r.states.forEach((st, side) => {
      if (st !== undefined) note(side, st);
    });
    if (r.send !== undefined) {
      const seg = model.segments[r.send]!;
      let label = segmentLabel(seg);
      const opts = optionsLabel(seg);
      if (withOptions && opts !== '') label += ` ${opts}`;
      const marks = markWords(seg);
      if (marks.length > 0) label += ` (${marks.join(', ')})`;
      if (seg.dropped) label += ' — lost';
      // `-x`: a line ending in a cross, Mermaid's own picture of a message that never arrives.
      lines.push(`    ${idOf(seg.from)}${seg.dropped ? '-x' : '->>'}${idOf(seg.to)}: ${escapeMermaid(label)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
