/**
 * Where things go on a graphical ladder diagram: the rows (one per instant-event, as in text.ts), the
 * y of each row, each arrow's ends, each state label's place. `renderSvg` draws a `LadderLayout`;
 * the HTML page and the `synack ui` page reuse it (the same rows are the page's time steps).
 *
 * Rows follow text.ts: events in the order they happened; a state change opens a row that the segment
 * it causes then joins; a row carries at most one segment sent. Unlike text, an arrow here also has an
 * end: the row where the receiver accepted it (`tArrive`), so arrows slope down from send to arrival
 * as in RFC 9293's figures. Long data phases are elided exactly as text.ts elides them.
 *
 * Pure function of the model: no Node built-ins (the browser page uses it).
 */
import { optionsLabel, segmentLabel } from './labels.js';
import type { DiagramModel, DiagramSegment, DiagramState } from './model.js';
import { hiddenSegments } from './text.js';

export interface LayoutOptions {
  /** Above this many segments the middle of the data phase is elided (default 40, as text.ts). */
  maxSegments?: number;
  /** Data-phase segments kept at the start and at the end when eliding (default 6 each). */
  keepHead?: number;
  keepTail?: number;
  /** Font size in px of the labels (default 12); everything else scales from it. */
  fontSize?: number;
  /** Width in px between the two lifelines; default: fitted to the labels, 480..760. */
  span?: number;
}

/** One arrival, state change or send, as placed on a row. */
export interface LadderRow {
  /** Seconds: the instant of the row (for an elided row, of its first hidden segment). */
  t: number;
  /** y of the row in px. */
  y: number;
  /** Index into model.segments of the segment sent on this row. */
  send: number | undefined;
  /** Side (0 left, 1 right) of that segment's sender. */
  sendSide: number;
  /** Indexes into model.segments of the segments arriving on this row, per side. */
  arrivals: [number[], number[]];
  /** Index into endpoints[side].states of the state entered on this row, per side. */
  states: [number | undefined, number | undefined];
  /** Set on a row standing for hidden segments. */
  elided: { count: number; lost: number } | undefined;
  /** Seconds since the previous row when that is long enough to draw a break (else undefined). */
  gapBefore: number | undefined;
}

export interface LadderArrow {
  /** Index into model.segments. */
  seg: number;
  /** Row it was sent on and the row it arrived on (undefined: lost or never seen arriving). */
  row: number;
  arriveRow: number | undefined;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** Left to right. */
  rightward: boolean;
}

export interface LadderLayout {
  width: number;
  height: number;
  fontSize: number;
  /** Approximate width of one character of the monospace font (px). */
  charWidth: number;
  /** x of the two lifelines. */
  x: [number, number];
  /** y where the lifelines start (under the header) and end. */
  top: number;
  bottom: number;
  /** y of the initial-state row. */
  initialY: number;
  rows: LadderRow[];
  arrows: LadderArrow[];
  /** Characters of label that fit along an arrow. */
  labelChars: number;
  /** Distance between two rows (px). */
  rowHeight: number;
}

/** text.ts's defaults, so both renderers elide the same segments. */
const DEFAULT_MAX_SEGMENTS = 40;
const DEFAULT_KEEP = 6;
/** A pause this long (seconds) between two rows is drawn as a break in the lifelines. */
export const BREAK_S = 0.5;
/** "SYN-RECEIVED", the longest state name; "unknown" and "inferred" tags fit too. */
const STATE_CHARS = 12;
const MIN_SPAN = 480;
const MAX_SPAN = 760;

type Event =
  | { kind: 'arrive'; t: number; key: number; side: number; seg: number }
  | { kind: 'state'; t: number; key: number; side: number; st: number }
  | { kind: 'send'; t: number; key: number; side: number; seg: number };

/** Which side (0 = endpoints[0], 1 = endpoints[1]) a name is. */
export function sideOf(model: DiagramModel, name: string): number {
  const right = model.endpoints[1];
  return right !== undefined && name === right.name ? 1 : 0;
}

/** The events of the model in the order they happened (hidden segments are still sends here). */
function orderedEvents(model: DiagramModel): Event[] {
  const events: Event[] = [];
  let n = 0;
  const haveOrder = model.segments.every((s) => s.order !== undefined);
  model.endpoints.slice(0, 2).forEach((ep, side) => {
    ep.states.forEach((st: DiagramState, i) => {
      if (i === 0) return;
      events.push({ kind: 'state', t: st.t, key: st.order ?? n++, side, st: i });
    });
  });
  model.segments.forEach((seg, i) => {
    events.push({ kind: 'send', t: seg.t, key: seg.order ?? n++, side: sideOf(model, seg.from), seg: i });
  });
  // Without a recorded order, at one instant an arrival comes first, then the state change it
  // causes, then the segment that answers (text.ts's rule, with arrivals in front).
  const rank = (e: Event): number => (e.kind === 'arrive' ? 0 : e.kind === 'state' ? 1 : 2);
  // An arrival has no recorded order: it goes just before what the receiver did on accepting it.
  // That is the first segment the receiver sent in the same instant whose ACK covers it (with the
  // state change just before that segment, which the same arrival caused), else the receiver's first
  // state change of the instant, else after everything of the instant.
  const bySideTime = new Map<string, Event[]>();
  for (const e of events) {
    const k = `${e.side}@${e.t}`;
    const list = bySideTime.get(k);
    if (list === undefined) bySideTime.set(k, [e]);
    else list.push(e);
  }
  for (const list of bySideTime.values()) list.sort((a, b) => a.key - b.key);
  // RFC 9293 §3.4: SYN and FIN each occupy one sequence number.
  const endOf = (seg: DiagramSegment): number =>
    seg.seq + seg.len + (seg.flags.includes('SYN') ? 1 : 0) + (seg.flags.includes('FIN') ? 1 : 0);
  /** SND.NXT of `side` just before time t: the end of the furthest segment it had sent before then. */
  const sent: Array<Array<{ t: number; nxt: number }>> = [[], []];
  for (const seg of [...model.segments].sort((a, b) => a.t - b.t)) {
    const list = sent[sideOf(model, seg.from)]!;
    const e = endOf(seg);
    const prev = list[list.length - 1]?.nxt;
    list.push({ t: seg.t, nxt: prev === undefined || ((e - prev) | 0) > 0 ? e : prev });
  }
  const sndNxt = (side: number, t: number): number | undefined => {
    const list = sent[side]!;
    let lo = 0;
    let hi = list.length; // first index with t' >= t
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.t < t) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? list[lo - 1]!.nxt : undefined;
  };
  const arrivalsAt = new Map<string, number[]>();
  model.segments.forEach((seg, i) => {
    if (seg.dropped || seg.tArrive === undefined) return;
    const k = `${1 - sideOf(model, seg.from)}@${seg.tArrive}`;
    const list = arrivalsAt.get(k);
    if (list === undefined) arrivalsAt.set(k, [i]);
    else list.push(i);
  });
  for (const [k, arrivals] of arrivalsAt) {
    const side = Number(k.slice(0, k.indexOf('@')));
    const t = model.segments[arrivals[0]!]!.tArrive!;
    const list = bySideTime.get(k) ?? [];
    // Each arrival is anchored to the receiver's event it leads to: the first reply whose ACK covers
    // it, else the first state change of the instant.
    const byAnchor = new Map<Event | undefined, number[]>();
    for (const i of arrivals) {
      const end = endOf(model.segments[i]!);
      const j = list.findIndex((e) => {
        if (e.kind !== 'send') return false;
        const reply = model.segments[e.seg]!;
        return reply.flags.includes('ACK') && ((reply.ack - end) | 0) >= 0;
      });
      // A reply right after a state change was caused together with it: anchor on the state.
      const anchor = j >= 0 ? (j > 0 && list[j - 1]!.kind === 'state' ? list[j - 1]! : list[j]!) : list.find((e) => e.kind === 'state');
      const group = byAnchor.get(anchor);
      if (group === undefined) byAnchor.set(anchor, [i]);
      else group.push(i);
    }
    for (const [anchor, group] of byAnchor) {
      if (anchor === undefined) {
        for (const i of group) events.push({ kind: 'arrive', t, key: Number.MAX_SAFE_INTEGER, side, seg: i });
        continue;
      }
      if (anchor.kind !== 'state') {
        for (const i of group) events.push({ kind: 'arrive', t, key: anchor.key - 0.5, side, seg: i });
        continue;
      }
      // Several arrivals before one state change: the change comes right after the one that caused
      // it, the others after the change (before the reply that follows it).
      const state = model.endpoints[side]!.states[anchor.st]!;
      const cause = causeOf(state.state, group.map((i) => model.segments[i]!), sndNxt(side, t));
      group.forEach((i, n) => events.push({ kind: 'arrive', t, key: n <= cause ? anchor.key - 0.5 : anchor.key + 0.25, side, seg: i }));
    }
  }
  events.sort((a, b) => {
    if (a.t !== b.t) return a.t - b.t;
    if (!haveOrder && rank(a) !== rank(b)) return rank(a) - rank(b);
    if (a.key !== b.key) return a.key - b.key;
    // Equal keys: arrivals of the same instant, in the order they were sent.
    return rank(a) - rank(b) || (a.kind !== 'state' && b.kind !== 'state' ? a.seg - b.seg : 0);
  });
  return events;
}

/**
 * Which of several segments arriving in one instant made the receiver enter `state` (an index into
 * `arrivals`; the last one when none fits, e.g. for a change the user made by a CLOSE). RFC 9293
 * §3.10.7: SYN-RECEIVED follows a SYN;
 * CLOSE-WAIT, CLOSING and TIME-WAIT follow a FIN; CLOSED follows a RST or the ACK of our FIN;
 * ESTABLISHED and FIN-WAIT-2 follow the ACK of everything we had sent (SND.NXT).
 */
function causeOf(state: string, arrivals: DiagramSegment[], sndNxt: number | undefined): number {
  const first = (f: (s: DiagramSegment) => boolean): number => arrivals.findIndex(f);
  const acksAll = (s: DiagramSegment): boolean => sndNxt !== undefined && s.flags.includes('ACK') && ((s.ack - sndNxt) | 0) >= 0;
  let i = -1;
  if (state === 'SYN-RECEIVED') i = first((s) => s.flags.includes('SYN'));
  else if (state === 'CLOSE-WAIT' || state === 'CLOSING' || state === 'TIME-WAIT') i = first((s) => s.flags.includes('FIN'));
  else if (state === 'CLOSED') i = first((s) => s.flags.includes('RST'));
  if (i < 0 && (state === 'ESTABLISHED' || state === 'FIN-WAIT-2' || state === 'TIME-WAIT' || state === 'CLOSED')) i = first(acksAll);
  // Otherwise the change is the user's doing (a CLOSE: FIN-WAIT-1, LAST-ACK): after every arrival.
  return i < 0 ? arrivals.length - 1 : i;
}

/** Lay the model out. Same model and options → same layout. */
export function layoutLadder(model: DiagramModel, options: LayoutOptions = {}): LadderLayout {
  const fontSize = options.fontSize ?? 12;
  const charWidth = fontSize * 0.6;
  const rowH = Math.round(fontSize * 3.4);
  const hidden = hiddenSegments(
    [...model.segments].sort((a, b) => a.t - b.t || (a.order ?? 0) - (b.order ?? 0)),
    {
      maxSegments: options.maxSegments ?? DEFAULT_MAX_SEGMENTS,
      keepHead: options.keepHead ?? DEFAULT_KEEP,
      keepTail: options.keepTail ?? DEFAULT_KEEP,
    },
  );

  const rows: LadderRow[] = [];
  const newRow = (t: number): LadderRow => {
    const r: LadderRow = {
      t,
      y: 0,
      send: undefined,
      sendSide: 0,
      arrivals: [[], []],
      states: [undefined, undefined],
      elided: undefined,
      gapBefore: undefined,
    };
    rows.push(r);
    return r;
  };
  const sendRow = new Map<number, number>();
  const arriveRow = new Map<number, number>();
  for (const e of orderedEvents(model)) {
    const last = rows[rows.length - 1];
    if (e.kind === 'send' && hidden.has(model.segments[e.seg]!)) {
      const r = last !== undefined && last.elided !== undefined ? last : newRow(e.t);
      r.elided ??= { count: 0, lost: 0 };
      r.elided.count++;
      if (model.segments[e.seg]!.dropped) r.elided.lost++;
      continue;
    }
    if (e.kind === 'arrive') {
      if (hidden.has(model.segments[e.seg]!)) continue;
      // An arrival during an elided run ends on the elided row: the run stands for that stretch of time.
      const joins =
        last !== undefined &&
        (last.elided !== undefined ||
          (last.t === e.t &&
            last.send === undefined &&
            last.arrivals[e.side]!.length === 0 &&
            last.states[e.side] === undefined));
      const r = joins ? last : newRow(e.t);
      r.arrivals[e.side]!.push(e.seg);
      arriveRow.set(e.seg, rows.length - 1); // r is the last row (not rows.indexOf: linear per arrival)
      continue;
    }
    const usable = last !== undefined && last.elided === undefined && last.t === e.t;
    if (e.kind === 'state') {
      // text.ts: a state change never joins a row whose segment is already drawn.
      const r = usable && last.states[e.side] === undefined && last.send === undefined ? last : newRow(e.t);
      r.states[e.side] = e.st;
    } else {
      // text.ts: one segment per row, and not on a row where the other side changed state.
      const r = usable && last.send === undefined && last.states[1 - e.side] === undefined ? last : newRow(e.t);
      r.send = e.seg;
      r.sendSide = e.side;
      sendRow.set(e.seg, rows.length - 1);
    }
  }

  // Width: the lifelines far enough apart for the labels, within bounds.
  let longest = 0;
  for (const i of sendRow.keys()) {
    const s = model.segments[i]!;
    longest = Math.max(longest, segmentLabel(s).length, optionsLabel(s).length);
  }
  const span = options.span ?? Math.min(MAX_SPAN, Math.max(MIN_SPAN, Math.ceil(longest * charWidth + 6 * fontSize)));
  const labelChars = Math.max(8, Math.floor((span - 4 * fontSize) / charWidth));
  const timeW = Math.ceil(10 * charWidth);
  const stateW = Math.ceil(STATE_CHARS * charWidth + 2 * fontSize);
  const x0 = timeW + stateW;
  const x: [number, number] = [x0, x0 + span];
  const titleChars = model.title !== undefined ? [...model.title].length : 0;
  const width = Math.max(x[1] + stateW + fontSize, Math.ceil((titleChars + 3) * charWidth));

  // y: a header (title, names, addresses), the initial states, then the rows; a long pause adds room
  // for a break mark.
  const titleH = model.title !== undefined && model.title !== '' ? Math.round(fontSize * 1.8) : 0;
  const top = titleH + Math.round(fontSize * 3.4);
  const initialY = top + Math.round(fontSize * 1.2);
  let y = initialY + Math.round(rowH * 0.8);
  rows.forEach((r, i) => {
    const prev = rows[i - 1];
    if (prev !== undefined) {
      const gap = r.t - prev.t;
      if (gap >= BREAK_S && prev.elided === undefined && r.elided === undefined) {
        r.gapBefore = gap;
        y += Math.round(rowH * 0.6);
      }
      y += rowH;
    }
    r.y = y;
  });
  const bottom = y + Math.round(rowH * 0.8);
  const height = bottom + fontSize;

  const arrows: LadderArrow[] = [];
  for (const [seg, row] of [...sendRow.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0])) {
    const s = model.segments[seg]!;
    const from = rows[row]!.sendSide;
    const x1 = x[from];
    const x2 = x[1 - from];
    const ar = arriveRow.get(seg);
    const y1 = rows[row]!.y;
    let xe = x2;
    let ye = ar !== undefined ? rows[ar]!.y : y1;
    if (s.dropped) {
      // Lost on the way: the arrow stops short, a little over halfway, where the ✕ goes.
      xe = x1 + (x2 - x1) * 0.6;
      ye = y1 + rowH * 0.6;
    }
    arrows.push({
      seg,
      row,
      arriveRow: s.dropped ? undefined : ar,
      x1,
      y1,
      x2: Math.round(xe * 10) / 10,
      y2: Math.round(ye * 10) / 10,
      rightward: from === 0,
    });
  }
  return { width, height, fontSize, charWidth, x, top, bottom, initialY, rows, arrows, labelChars, rowHeight: rowH };
}
