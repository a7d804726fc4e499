/**
 * The ladder diagram as terminal text: the textbook picture of the handshake and the close, drawn
 * from a real run. One row per instant; each side's column shows its state when it changes and a
 * lifeline otherwise; arrows carry the segment's flags, relative seq/ack, length, window, analysis
 * marks (what `draw` inferred: retransmission, dup ACK, out of order, zero window…) and options.
 *
 *      time  client 10.0.0.1:49152                                         server 10.0.0.2:80
 *            CLOSED                                                        LISTEN
 *     0.000  SYN-SENT     ──SYN seq=0 win=65535 [MSS=1460]───────────────▶ │
 *     0.010  │                                                             SYN-RECEIVED
 *     0.010  │            ◀──SYN,ACK seq=0 ack=1 win=65535 [MSS=1460]───── │
 *     0.412  │            ──PSH,ACK seq=1 ack=1 len=18 win=65535 (retransmission)─▶ │
 *
 * Pure function of the model: no Node built-ins (the browser page uses it too).
 */
import { formatEndpoint, markWords, optionsLabel, segmentLabel } from './labels.js';
import type { DiagramModel, DiagramSegment, DiagramState } from './model.js';

export interface TextOptions {
  /** Columns available (default 100). Every line fits: labels are truncated, never wrapped. */
  width?: number;
  /** ANSI colour: states, SYN/FIN/RST flags, analysis marks, drops (default false). */
  color?: boolean;
  /** Print each state change's cause and RFC rule (and the stacks' notes) under its row. */
  explain?: boolean;
  /** Plain ASCII (-> <- | x) instead of box-drawing characters. */
  ascii?: boolean;
  /** Above this many segments the middle of the data phase is elided (default 40). */
  maxSegments?: number;
  /** Data-phase segments kept at the start and at the end when eliding (default 6 each). */
  keepHead?: number;
  keepTail?: number;
}

type Style = 'plain' | 'dim' | 'state' | 'syn' | 'fin' | 'rst' | 'drop' | 'mark' | 'head';

interface Span {
  text: string;
  style: Style;
}

type Line = Span[];

const ANSI: Record<Style, string> = {
  plain: '',
  dim: '\x1b[2m',
  state: '\x1b[1;36m',
  syn: '\x1b[1;32m',
  fin: '\x1b[1;33m',
  rst: '\x1b[1;35m',
  drop: '\x1b[31m',
  mark: '\x1b[1;31m',
  head: '\x1b[1m',
};
const RESET = '\x1b[0m';

interface Glyphs {
  line: string;
  right: string;
  left: string;
  lost: string;
  life: string;
  ellipsis: string;
  cause: string;
}
const UNICODE: Glyphs = { line: '─', right: '▶', left: '◀', lost: '✕', life: '│', ellipsis: '…', cause: '↳' };
const ASCII: Glyphs = { line: '-', right: '>', left: '<', lost: 'x', life: '|', ellipsis: '~', cause: '>' };

const TIME_W = 8;
/** "SYN-RECEIVED", the longest state name. */
const STATE_W = 12;
const MIN_ARROW_W = 12;

function len(line: Line): number {
  let n = 0;
  for (const s of line) n += [...s.text].length;
  return n;
}

/** Cut a line to `max` visible characters, ending with `ellipsis` when something was cut. */
function truncate(line: Line, max: number, ellipsis: string): Line {
  if (len(line) <= max) return line;
  const out: Line = [];
  let room = Math.max(0, max - 1);
  for (const s of line) {
    if (room <= 0) break;
    const chars = [...s.text];
    if (chars.length <= room) {
      out.push(s);
      room -= chars.length;
    } else {
      out.push({ text: chars.slice(0, room).join(''), style: s.style });
      room = 0;
    }
  }
  if (max > 0) out.push({ text: ellipsis, style: 'dim' });
  return out;
}

function padTo(line: Line, n: number): Line {
  const l = len(line);
  return l >= n ? line : [...line, { text: ' '.repeat(n - l), style: 'plain' }];
}

function render(line: Line, color: boolean): string {
  let out = '';
  for (const s of line) {
    if (!color || s.style === 'plain' || s.text.trim() === '') out += s.text;
    else out += ANSI[s.style] + s.text + RESET;
  }
  return out.replace(/\s+$/, '');
}

function flagStyle(flag: string): Style {
  if (flag === 'SYN') return 'syn';
  if (flag === 'FIN') return 'fin';
  if (flag === 'RST') return 'rst';
  return 'plain';
}

/**
 * `SYN,ACK seq=0 ack=1 win=65535 [MSS=1460,SACK_PERM]` as spans, flags highlighted: labels.ts's label,
 * then the analysis marks in parentheses (before the options, which are the first thing cut when the
 * arrow is short), then the options.
 */
function labelSpans(seg: DiagramSegment, dropped: boolean): Line {
  const base: Style = dropped ? 'drop' : 'plain';
  const out: Line = [];
  const push = (text: string, style: Style): void => {
    const last = out[out.length - 1];
    if (last !== undefined && last.style === style) last.text += text;
    else out.push({ text, style });
  };
  seg.flags.forEach((f, i) => {
    if (i > 0) push(',', base);
    const st = flagStyle(f);
    push(f, st === 'plain' ? base : st);
  });
  push(segmentLabel(seg).slice(seg.flags.join(',').length), base);
  const marks = markWords(seg);
  if (marks.length > 0) {
    push(' (', base);
    push(marks.join(', '), 'mark');
    push(')', base);
  }
  const opts = optionsLabel(seg);
  if (opts !== '') push(` ${opts}`, base);
  return out;
}

/** An arrow exactly `w` wide, pointing right (from the left column) or left. */
function arrow(seg: DiagramSegment, rightward: boolean, w: number, g: Glyphs): Line {
  const label = labelSpans(seg, seg.dropped);
  const ls: Style = seg.dropped ? 'drop' : 'dim';
  if (seg.dropped) {
    // Lost on the way: the arrow stops short of the other side.
    const tail = rightward ? ` ${g.line}${g.line}${g.lost} lost` : `lost ${g.lost}${g.line}${g.line} `;
    const room = Math.max(1, w - 2 - tail.length);
    const l = truncate(label, room, g.ellipsis);
    const body: Line = rightward
      ? [{ text: g.line + g.line, style: ls }, ...l, { text: tail, style: 'drop' }]
      : [{ text: tail, style: 'drop' }, ...l, { text: g.line + g.line, style: ls }];
    const pad = w - len(body);
    return rightward
      ? padTo(body, w)
      : [{ text: ' '.repeat(Math.max(0, pad)), style: 'plain' }, ...body];
  }
  const room = Math.max(1, w - 4);
  const l = truncate(label, room, g.ellipsis);
  const fill = g.line.repeat(Math.max(1, w - 3 - len(l)));
  return rightward
    ? [{ text: g.line + g.line, style: ls }, ...l, { text: fill, style: ls }, { text: g.right, style: ls }]
    : [{ text: g.left + g.line + g.line, style: ls }, ...l, { text: fill, style: ls }];
}

type Item =
  | { kind: 'state'; t: number; order: number; side: number; st: DiagramState }
  | { kind: 'segment'; t: number; order: number; seg: DiagramSegment }
  | { kind: 'note'; t: number; order: number; endpoint: string; what: string; rfc?: string };

interface Row {
  t: number;
  states: Array<DiagramState | undefined>;
  seg: DiagramSegment | undefined;
  /** Side index of the segment's sender. */
  segSide: number;
  elided: { count: number; lost: number } | undefined;
  notes: string[];
}

/**
 * The segments hidden in a long run (`shown` in display order): everything but the handshake, the
 * first and last few data-phase segments, zero-window episodes, the control segments (SYN/FIN/RST)
 * and what follows the first FIN.
 */
export function hiddenSegments(
  shown: DiagramSegment[],
  o: Pick<Required<TextOptions>, 'maxSegments' | 'keepHead' | 'keepTail'>,
): Set<DiagramSegment> {
  const hidden = new Set<DiagramSegment>();
  if (shown.length <= o.maxSegments) return hidden;
  const isControl = (s: DiagramSegment): boolean =>
    s.flags.includes('SYN') || s.flags.includes('FIN') || s.flags.includes('RST');
  // The close: every FIN, the first ACK of each FIN (FIN occupies one sequence number, so its ACK
  // is seq+len+1), and whatever follows the last FIN.
  const keep = new Set<DiagramSegment>();
  let lastFin = -1;
  shown.forEach((f, i) => {
    if (!f.flags.includes('FIN')) return;
    lastFin = i;
    const finAck = (f.seq + f.len + 1) >>> 0;
    // A scan that stops at the ACK (no copy of the rest: a capture may hold many FINs).
    for (let j = i + 1; j < shown.length; j++) {
      const s = shown[j]!;
      if (s.from === f.to && s.flags.includes('ACK') && s.ack === finAck) {
        keep.add(s);
        break;
      }
    }
  });
  if (lastFin >= 0) for (const s of shown.slice(lastFin + 1)) keep.add(s);
  const firstFin = shown.findIndex((s) => s.flags.includes('FIN'));
  const middle = shown.filter((s) => !isControl(s) && !keep.has(s));
  const beforeFin = firstFin < 0 ? middle : shown.slice(0, firstFin).filter((s) => !isControl(s) && !keep.has(s));
  // The first few and the last few of the data phase, and the last few before the close.
  for (const s of [...middle.slice(0, o.keepHead), ...beforeFin.slice(-o.keepTail), ...middle.slice(-o.keepTail)]) {
    keep.add(s);
  }
  // A zero window is the story wherever it happens: keep each win=0 segment and its neighbours
  // (the probe that drew it, the update that reopens the window).
  middle.forEach((s, i) => {
    if (s.win !== 0) return;
    for (const n of [middle[i - 1], s, middle[i + 1]]) if (n !== undefined) keep.add(n);
  });
  for (const s of middle) if (!keep.has(s)) hidden.add(s);
  return hidden;
}

/** Render the model as a ladder diagram: lines joined with '\n', no trailing newline. */
export function renderText(model: DiagramModel, options: TextOptions = {}): string {
  const o: Required<TextOptions> = {
    width: options.width ?? 100,
    color: options.color ?? false,
    explain: options.explain ?? false,
    ascii: options.ascii ?? false,
    maxSegments: options.maxSegments ?? 40,
    keepHead: options.keepHead ?? 6,
    keepTail: options.keepTail ?? 6,
  };
  const g = o.ascii ? ASCII : UNICODE;
  const width = Math.max(20, Math.floor(o.width));
  const arrowW = Math.max(MIN_ARROW_W, width - TIME_W - 1 - STATE_W - 1 - 1 - STATE_W);
  const left = model.endpoints[0];
  const right = model.endpoints[1];
  const sideOf = (name: string): number => (right !== undefined && name === right.name ? 1 : 0);

  // Every event of the run, in the order it happened.
  const items: Item[] = [];
  let n = 0;
  model.endpoints.slice(0, 2).forEach((ep, side) => {
    ep.states.slice(1).forEach((st) => {
      items.push({ kind: 'state', t: st.t, order: st.order ?? n++, side, st });
    });
  });
  for (const seg of model.segments) items.push({ kind: 'segment', t: seg.t, order: seg.order ?? n++, seg });
  if (o.explain) {
    for (const note of model.notes) {
      const it: Item = { kind: 'note', t: note.t, order: note.order ?? n++, endpoint: note.endpoint, what: note.what };
      if (note.rfc !== undefined) it.rfc = note.rfc;
      items.push(it);
    }
  }
  // Without a recorded order, at one instant a state change comes before the segment it causes.
  const rank = (i: Item): number => (i.kind === 'state' ? 0 : i.kind === 'segment' ? 1 : 2);
  const haveOrder = model.segments.every((s) => s.order !== undefined);
  items.sort((a, b) => a.t - b.t || (haveOrder ? a.order - b.order : rank(a) - rank(b) || a.order - b.order));

  const hidden = hiddenSegments(
    items.flatMap((i) => (i.kind === 'segment' ? [i.seg] : [])),
    o,
  );
  const rows: Row[] = [];
  const newRow = (t: number): Row => {
    const r: Row = { t, states: [undefined, undefined], seg: undefined, segSide: 0, elided: undefined, notes: [] };
    rows.push(r);
    return r;
  };
  // A note (a retransmission timeout, say) comes just before the segment it explains: it is shown
  // under the next row of the same instant, or under the row before when nothing follows it.
  let pendingNotes: Array<{ t: number; line: string }> = [];
  const flushNotes = (into: Row | undefined, t?: number): void => {
    const keep: Array<{ t: number; line: string }> = [];
    for (const n of pendingNotes) {
      if (t !== undefined && n.t !== t) {
        keep.push(n);
        continue;
      }
      if (into !== undefined && into.elided === undefined) into.notes.push(n.line);
    }
    pendingNotes = keep;
  };
  for (const it of items) {
    if (it.kind === 'note') {
      pendingNotes.push({ t: it.t, line: `${it.endpoint}: ${it.what}${it.rfc ? ` (${it.rfc})` : ''}` });
      continue;
    }
    // Notes from an earlier instant stay with the row they followed.
    if (pendingNotes.some((n) => n.t !== it.t)) {
      const before = rows[rows.length - 1];
      pendingNotes = pendingNotes.filter((n) => {
        if (n.t === it.t) return true;
        if (before !== undefined && before.elided === undefined) before.notes.push(n.line);
        return false;
      });
    }
    const last = rows[rows.length - 1];
    if (it.kind === 'segment' && hidden.has(it.seg)) {
      const r = last !== undefined && last.elided !== undefined ? last : newRow(it.t);
      r.elided ??= { count: 0, lost: 0 };
      r.elided.count++;
      if (it.seg.dropped) r.elided.lost++;
      continue;
    }
    const usable = last !== undefined && last.elided === undefined && last.t === it.t;
    if (it.kind === 'state') {
      // A state change comes before the segment it causes (the stack reports it first), so it opens
      // a row that this segment then joins; it never joins a segment already drawn.
      if (usable && last.states[it.side] === undefined && last.seg === undefined) {
        last.states[it.side] = it.st;
      } else {
        newRow(it.t).states[it.side] = it.st;
      }
    } else {
      const side = sideOf(it.seg.from);
      const otherChanged = usable && last.states[1 - side] !== undefined;
      if (usable && last.seg === undefined && !otherChanged) {
        last.seg = it.seg;
        last.segSide = side;
      } else {
        const r = newRow(it.t);
        r.seg = it.seg;
        r.segSide = side;
      }
    }
    flushNotes(rows[rows.length - 1], it.t);
  }
  flushNotes(rows[rows.length - 1]);

  const lines: Line[] = [];
  const timeCell = (t: number | undefined): Line => [
    { text: (t === undefined ? '' : t.toFixed(3)).padStart(TIME_W), style: 'dim' },
    { text: ' ', style: 'plain' },
  ];
  const stateCell = (st: DiagramState | undefined, w: number): Line =>
    st === undefined
      ? padTo([{ text: g.life, style: 'dim' }], w)
      : padTo(truncate([{ text: st.state, style: 'state' }], w, g.ellipsis), w);

  // Header: who is who.
  const label = (ep: typeof left): string =>
    ep === undefined ? '' : ep.address === '' || ep.name === formatEndpoint(ep.address, ep.port) ? ep.name : `${ep.name} ${formatEndpoint(ep.address, ep.port)}`;
  const lName = label(left);
  const rName = label(right);
  const rightCol = TIME_W + 1 + STATE_W + 1 + arrowW + 1;
  const head: Line = [...timeCell(undefined)];
  head[0] = { text: 'time'.padStart(TIME_W), style: 'dim' };
  head.push({ text: lName, style: 'head' });
  const rStart = Math.max(len(head) + 2, Math.min(rightCol, width - rName.length));
  lines.push(padTo(head, rStart).concat([{ text: rName, style: 'head' }]));
  lines.push([
    ...timeCell(undefined),
    ...stateCell(left?.states[0], STATE_W + 1 + arrowW + 1),
    ...stateCell(right?.states[0], STATE_W),
  ]);

  for (const r of rows) {
    const line: Line = [...timeCell(r.elided !== undefined ? undefined : r.t)];
    line.push(...stateCell(r.states[0], STATE_W), { text: ' ', style: 'plain' });
    if (r.elided !== undefined) {
      const what = `${g.ellipsis} ${r.elided.count} segment${r.elided.count === 1 ? '' : 's'}${
        r.elided.lost > 0 ? ` (${r.elided.lost} lost)` : ''
      } ${g.ellipsis}`;
      const text = what.length >= arrowW ? what.slice(0, arrowW) : what;
      const padL = Math.floor((arrowW - text.length) / 2);
      line.push({ text: ' '.repeat(padL) + text + ' '.repeat(arrowW - padL - text.length), style: 'dim' });
    } else if (r.seg !== undefined) {
      line.push(...arrow(r.seg, r.segSide === 0, arrowW, g));
    } else {
      line.push({ text: ' '.repeat(arrowW), style: 'plain' });
    }
    line.push({ text: ' ', style: 'plain' }, ...stateCell(r.states[1], STATE_W));
    lines.push(line);
    if (o.explain) {
      r.states.forEach((st, side) => {
        if (st === undefined) return;
        const who = model.endpoints[side]?.name ?? '';
        const why = `${g.cause} ${who} ${st.state}: ${st.cause}${st.rfc ? ` (${st.rfc})` : ''}`;
        lines.push([{ text: ' '.repeat(TIME_W + 1), style: 'plain' }, { text: why, style: 'dim' }]);
      });
      for (const note of r.notes) {
        lines.push([{ text: ' '.repeat(TIME_W + 1), style: 'plain' }, { text: `${g.life} ${note}`, style: 'dim' }]);
      }
    }
  }
  return lines.map((l) => render(truncate(l, width, g.ellipsis), o.color)).join('\n');
}
