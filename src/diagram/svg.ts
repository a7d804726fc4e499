/**
 * The ladder diagram as a standalone SVG: the picture of RFC 9293 §3.5's figures, drawn from a real
 * run (or a capture). Two lifelines under their `address:port`; each side's state written beside its
 * line where it changes; arrows from the sender at send time down to the receiver at arrival time,
 * labelled like text.ts (flags, relative seq/ack, len, win, options); lost segments end in a ✕.
 *
 * Vector only, real <text> (selectable, searchable), a viewBox so it scales, and deterministic: the
 * same model gives the same bytes (no dates, no random ids, fixed number formatting).
 *
 * Pure function of the model: no Node built-ins (the browser page uses it).
 */
import { formatEndpoint, markWords, optionsLabel, segmentLabel } from './labels.js';
import { BREAK_S, layoutLadder, sideOf } from './layout.js';
import type { LadderArrow, LadderLayout, LayoutOptions } from './layout.js';
import type { DiagramModel, DiagramSegment, DiagramState, DiagramStateName } from './model.js';

export type { LadderArrow, LadderLayout, LadderRow, LayoutOptions } from './layout.js';
export { layoutLadder } from './layout.js';

export interface SvgOptions extends LayoutOptions {
  /** Prefix of the ids in the SVG, so that several can share one HTML page (default 'synack'). */
  idPrefix?: string;
  /** Omit the XML declaration (for inlining in HTML). Default false. */
  inline?: boolean;
  /** Add `tabindex="0"` to each arrow so the keyboard can reach it (the HTML page). Default false. */
  focusable?: boolean;
}

/** Escape text for XML character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  )
    // Characters XML 1.0 does not allow at all (C0 controls but tab/newline/CR, lone surrogates,
    // FFFE/FFFF) become U+FFFD; a surrogate pair is matched first and kept.
    .replace(/[\ud800-\udbff][\udc00-\udfff]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff\ud800-\udfff]/g, (c) =>
      c.length === 2 ? c : '\ufffd',
    );
}

/** A number as an attribute: at most one decimal, no "-0", no exponent. */
function n(v: number): string {
  const r = Math.round(v * 10) / 10;
  return r === 0 ? '0' : String(r);
}

/** Colour class of an arrow: the most telling of its control flags. */
function flagClass(seg: DiagramSegment): string {
  if (seg.flags.includes('RST')) return 'rst';
  if (seg.flags.includes('SYN')) return 'syn';
  if (seg.flags.includes('FIN')) return 'fin';
  return 'data';
}

/** Where along an arrow its label is centred, from the sender (0) to the receiver (1). */
const LABEL_AT = 0.45;

function truncate(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/** The whole label of a segment on one line (the arrow's tooltip). */
function fullLabel(model: DiagramModel, i: number): string {
  const seg = model.segments[i]!;
  const opts = optionsLabel(seg);
  const marks = markWords(seg);
  let s = `${seg.from} → ${seg.to}: ${segmentLabel(seg)}${opts ? ` ${opts}` : ''}`;
  if (marks.length > 0) s += ` (${marks.join(', ')})`;
  if (seg.dropped) s += ` — lost${seg.dropReason ? ` (${seg.dropReason})` : ''}`;
  s += ` — sent ${seg.t.toFixed(3)} s`;
  if (seg.tArrive !== undefined && !seg.dropped) s += `, arrived ${seg.tArrive.toFixed(3)} s`;
  return s;
}

/** The stylesheet of an SVG whose root has class `p` (scoped, so several can share a page). */
export function svgStyleSheet(p: string): string {
  return `
.${p} text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace;fill:#1f2328}
.${p} .bg{fill:#fff}
.${p} .title{font-weight:bold}
.${p} .name{font-weight:bold}
.${p} .addr,.${p} .time,.${p} .note{fill:#57606a}
.${p} .life{stroke:#8c959f;stroke-width:1.5}
.${p} .gap{stroke:#8c959f;stroke-width:1.5;stroke-dasharray:2 4}
.${p} .pill{fill:#ddf4ff;stroke:#54aeff}
.${p} .pill.unknown,.${p} .pill.inferred{stroke-dasharray:3 2}
.${p} .pill.unknown{fill:#f6f8fa;stroke:#8c959f}
.${p} .pill.assumed{fill:#fff;stroke-dasharray:1 3}
.${p} .state{font-weight:bold;fill:#0550ae}
.${p} .state.unknown{fill:#57606a;font-style:italic;font-weight:normal}
.${p} .arrow{fill:none;stroke-width:1.6}
.${p} .head{stroke:none}
.${p} .data .arrow{stroke:#424a53}.${p} .data .head{fill:#424a53}
.${p} .syn .arrow{stroke:#1a7f37}.${p} .syn .head{fill:#1a7f37}
.${p} .fin .arrow{stroke:#9a6700}.${p} .fin .head{fill:#9a6700}
.${p} .rst .arrow{stroke:#8250df}.${p} .rst .head{fill:#8250df}
.${p} .lost .arrow{stroke:#cf222e;stroke-dasharray:5 3}
.${p} .retransmission .arrow,.${p} .spurious-retransmission .arrow{stroke-dasharray:7 3}
.${p} .x{stroke:#cf222e;stroke-width:2.2}
.${p} .lbox{fill:#fff;fill-opacity:0.88}
.${p} .opts{fill:#57606a}
.${p} .mark,.${p} .lostword{fill:#cf222e;font-weight:bold}
.${p} .flag-syn{fill:#1a7f37;font-weight:bold}.${p} .flag-fin{fill:#9a6700;font-weight:bold}.${p} .flag-rst{fill:#8250df;font-weight:bold}
.${p} .elided{fill:#57606a;font-style:italic}
`;
}

/** The main label with SYN/FIN/RST in their colours: tspans inside one <text>. */
function labelSpans(seg: DiagramSegment, max: number): string {
  const full = segmentLabel(seg);
  const flagsText = seg.flags.join(',');
  if ([...full].length > max || flagsText === '') return escapeXml(truncate(full, max));
  const parts = seg.flags.map((f) =>
    f === 'SYN' || f === 'FIN' || f === 'RST' ? `<tspan class="flag-${f.toLowerCase()}">${f}</tspan>` : escapeXml(f),
  );
  let rest = escapeXml(full.slice(flagsText.length));
  // A zero window stops the peer sending (RFC 9293 §3.8.6.1): worth seeing at a glance. A RST's
  // window means nothing, so it is left alone.
  if (seg.win === 0 && !seg.flags.includes('RST')) rest = rest.replace(/ win=0$/, ' <tspan class="mark">win=0</tspan>');
  return parts.join(',') + rest;
}

/** One state label beside a lifeline: a pill with the state name. */
function statePill(l: LadderLayout, side: number, y: number, st: DiagramState, attrs: string, inferred: boolean): string {
  const state = st.state;
  const text: DiagramStateName = state;
  const w = Math.ceil([...text].length * l.charWidth + l.fontSize);
  const h = Math.round(l.fontSize * 1.5);
  const gapX = Math.round(l.fontSize * 0.6);
  const x = side === 0 ? l.x[0] - gapX - w : l.x[1] + gapX;
  // `draw` marks a change no segment shows (TIME-WAIT expiring) as assumed: drawn fainter still.
  const cls = state === 'unknown' ? ' unknown' : st.assumed === true ? ' inferred assumed' : inferred ? ' inferred' : '';
  return (
    `<g class="st"${attrs}>` +
    (st.assumed === true ? `<title>${escapeXml(`${state} (assumed: no segment shows it)`)}</title>` : '') +
    `<rect class="pill${cls}" x="${n(x)}" y="${n(y - h / 2)}" width="${w}" height="${h}" rx="${n(h / 2)}"/>` +
    `<text class="state${cls}" x="${n(x + w / 2)}" y="${n(y + l.fontSize * 0.35)}" text-anchor="middle">${escapeXml(text)}</text>` +
    `</g>`
  );
}

/** The arrow: a line from (x1,y1) to (x2,y2), a head or a ✕, and its labels along it. */
function arrowSvg(model: DiagramModel, l: LadderLayout, a: LadderArrow, focusable: boolean): string {
  const seg = model.segments[a.seg]!;
  const fs = l.fontSize;
  const marks = seg.marks ?? [];
  const cls = ['seg', flagClass(seg), ...(seg.dropped ? ['lost'] : []), ...marks].join(' ');
  const dx = a.x2 - a.x1;
  const dy = a.y2 - a.y1;
  const len = Math.hypot(dx, dy) || 1;
  const ux = dx / len;
  const uy = dy / len;
  let out = `<g class="${cls}" data-seg="${a.seg}" data-row="${a.row}"${a.arriveRow !== undefined ? ` data-arrive-row="${a.arriveRow}"` : ''}${
    focusable ? ' tabindex="0" role="button"' : ''
  }>`;
  out += `<title>${escapeXml(fullLabel(model, a.seg))}</title>`;
  // A wide transparent stroke: the arrow is easy to point at.
  out += `<line class="hit" x1="${n(a.x1)}" y1="${n(a.y1)}" x2="${n(a.x2)}" y2="${n(a.y2)}" stroke="transparent" stroke-width="${n(fs * 1.4)}"/>`;
  if (seg.dropped) {
    out += `<line class="arrow" x1="${n(a.x1)}" y1="${n(a.y1)}" x2="${n(a.x2)}" y2="${n(a.y2)}"/>`;
    const r = fs * 0.45;
    out += `<path class="x" d="M${n(a.x2 - r)} ${n(a.y2 - r)}L${n(a.x2 + r)} ${n(a.y2 + r)}M${n(a.x2 - r)} ${n(a.y2 + r)}L${n(a.x2 + r)} ${n(a.y2 - r)}"/>`;
    const lx = a.rightward ? a.x2 + r + 4 : a.x2 - r - 4;
    out += `<text class="lostword" x="${n(lx)}" y="${n(a.y2 + fs * 0.35)}" text-anchor="${a.rightward ? 'start' : 'end'}">lost${
      seg.dropReason && seg.dropReason !== 'loss' && seg.dropReason !== 'demo' ? ` (${escapeXml(seg.dropReason)})` : ''
    }</text>`;
  } else {
    // Stop the line at the base of the head so the point stays sharp.
    const hl = fs * 0.8;
    const hw = fs * 0.35;
    const bx = a.x2 - ux * hl;
    const by = a.y2 - uy * hl;
    out += `<line class="arrow" x1="${n(a.x1)}" y1="${n(a.y1)}" x2="${n(bx)}" y2="${n(by)}"/>`;
    out += `<path class="head" d="M${n(a.x2)} ${n(a.y2)}L${n(bx - uy * hw)} ${n(by + ux * hw)}L${n(bx + uy * hw)} ${n(by - ux * hw)}Z"/>`;
  }
  // Labels are horizontal, on a pale box over the line (rotated ones collide where two arrows
  // cross): the label, then the analysis marks and the options in a smaller line under it.
  const chars = seg.dropped ? Math.floor(l.labelChars * 0.55) : l.labelChars;
  // Nearer the sender than the middle: two arrows that cross (a simultaneous close, data crossing
  // an ACK) then keep their labels a row apart, each by its own sender.
  // A long, steep arrow (a burst's segment arriving rows later) keeps its label within half a row
  // of its sender, so labels of consecutive rows do not overlap.
  const drop = a.y2 - a.y1;
  const ly = seg.dropped ? a.y1 + drop * 0.5 : a.y1 + Math.min(drop * LABEL_AT, l.rowHeight * 0.5);
  const f = seg.dropped ? 0.5 : drop > 0 ? (ly - a.y1) / drop : LABEL_AT;
  let lx = a.x1 + (a.x2 - a.x1) * f;
  const markText = markWords(seg).join(', ');
  const opts = optionsLabel(seg);
  const below: string[] = [];
  let belowLen = 0;
  if (markText !== '') {
    below.push(`<tspan class="mark">${escapeXml(markText)}</tspan>`);
    belowLen += [...markText].length;
  }
  if (opts !== '') {
    const room = Math.max(4, chars - (belowLen > 0 ? belowLen + 1 : 0));
    const shown = truncate(opts, room);
    below.push(`<tspan class="opts">${escapeXml(shown)}</tspan>`);
    belowLen += (belowLen > 0 ? 1 : 0) + [...shown].length;
  }
  const mainLen = [...truncate(segmentLabel(seg), chars)].length;
  const subFs = fs * 0.85;
  const boxW = Math.max(mainLen * l.charWidth, belowLen * subFs * 0.6) + fs * 0.6;
  const two = below.length > 0;
  // Keep the box between the lifelines.
  const lo = l.x[0] + boxW / 2 + fs * 0.4;
  const hi = l.x[1] - boxW / 2 - fs * 0.4;
  if (lo <= hi) lx = Math.min(hi, Math.max(lo, lx));
  const boxTop = two ? ly - fs * 1.15 : ly - fs * 0.7;
  const boxH = two ? fs * 2.4 : fs * 1.4;
  out += `<rect class="lbox" x="${n(lx - boxW / 2)}" y="${n(boxTop)}" width="${n(boxW)}" height="${n(boxH)}" rx="${n(fs * 0.3)}"/>`;
  out += `<text class="label" x="${n(lx)}" y="${n(two ? ly - fs * 0.15 : ly + fs * 0.35)}" text-anchor="middle">${labelSpans(seg, chars)}</text>`;
  if (two) {
    out += `<text class="label sub" x="${n(lx)}" y="${n(ly + fs * 0.95)}" text-anchor="middle" font-size="${n(subFs)}">${below.join(' ')}</text>`;
  }
  return `${out}</g>`;
}

/** Right edge of the time column. */
function timeColumnX(l: LadderLayout): number {
  return Math.ceil(9 * l.charWidth);
}

function header(model: DiagramModel, l: LadderLayout): string {
  const fs = l.fontSize;
  let out = '';
  const hasTitle = model.title !== undefined && model.title !== '';
  if (hasTitle) {
    out += `<text class="title" x="${n(fs)}" y="${n(fs * 1.3)}">${escapeXml(model.title!)}</text>`;
  }
  const base = hasTitle ? Math.round(fs * 1.8) : 0;
  model.endpoints.slice(0, 2).forEach((ep, side) => {
    const addr = ep.address === '' ? '' : formatEndpoint(ep.address, ep.port);
    const x = l.x[side]!;
    const anchor = 'middle';
    out += `<text class="name" x="${n(x)}" y="${n(base + fs * 1.3)}" text-anchor="${anchor}">${escapeXml(ep.name)}</text>`;
    if (addr !== '' && addr !== ep.name) {
      out += `<text class="addr" x="${n(x)}" y="${n(base + fs * 2.5)}" text-anchor="${anchor}">${escapeXml(addr)}</text>`;
    }
  });
  out += `<text class="time" x="${n(timeColumnX(l))}" y="${n(base + fs * 1.3)}" text-anchor="end">time (s)</text>`;
  if (model.inferred) {
    const mid = (l.x[0] + l.x[1]) / 2;
    out += `<text class="note inferred-note" x="${n(mid)}" y="${n(base + fs * 1.3)}" text-anchor="middle" font-size="${n(fs * 0.9)}">states inferred from the capture</text>`;
  }
  return out;
}

/** The default <title>: what the picture is. */
export function svgTitle(model: DiagramModel): string {
  if (model.title !== undefined && model.title !== '') return model.title;
  const who = model.endpoints
    .slice(0, 2)
    .map((e) => (e.address === '' || formatEndpoint(e.address, e.port) === e.name ? e.name : `${e.name} ${formatEndpoint(e.address, e.port)}`));
  return `TCP ladder diagram: ${who.join(' ↔ ')}`;
}

/** The SVG body (everything inside <svg>), for a caller that already has a layout. */
export function svgBody(model: DiagramModel, l: LadderLayout, o: { idPrefix: string; focusable: boolean }): string {
  const fs = l.fontSize;
  const parts: string[] = [];
  parts.push(`<rect class="bg" x="0" y="0" width="${l.width}" height="${l.height}"/>`);
  parts.push(header(model, l));

  // Lifelines, broken (dotted) across long pauses and elided stretches.
  const timeX = timeColumnX(l);
  const breaks: Array<[number, number]> = [];
  l.rows.forEach((r, i) => {
    const prev = l.rows[i - 1];
    if (r.gapBefore !== undefined && prev !== undefined) breaks.push([prev.y + fs, r.y - fs]);
    if (r.elided !== undefined) breaks.push([(prev?.y ?? l.initialY) + fs, (l.rows[i + 1]?.y ?? l.bottom) - fs]);
  });
  for (const x of l.x) {
    let y = l.top;
    for (const [a, b] of breaks) {
      if (a > y) parts.push(`<line class="life" x1="${n(x)}" y1="${n(y)}" x2="${n(x)}" y2="${n(a)}"/>`);
      parts.push(`<line class="gap" x1="${n(x)}" y1="${n(Math.max(a, y))}" x2="${n(x)}" y2="${n(b)}"/>`);
      y = b;
    }
    parts.push(`<line class="life" x1="${n(x)}" y1="${n(y)}" x2="${n(x)}" y2="${n(l.bottom)}"/>`);
  }

  // The initial states, then each row: its time, its state changes, an elision or a pause.
  const inferred = model.inferred;
  model.endpoints.slice(0, 2).forEach((ep, side) => {
    const st = ep.states[0];
    if (st !== undefined) parts.push(statePill(l, side, l.initialY, st, ` data-side="${side}" data-st="0" data-row="-1"`, inferred));
  });
  const mid = (l.x[0] + l.x[1]) / 2;
  l.rows.forEach((r, i) => {
    if (r.gapBefore !== undefined) {
      const prevY = l.rows[i - 1]!.y;
      parts.push(
        `<text class="note pause" x="${n(timeX)}" y="${n((prevY + r.y) / 2 + fs * 0.35)}" text-anchor="end" font-size="${n(fs * 0.9)}">${escapeXml(
          `+${formatGap(r.gapBefore)}`,
        )}</text>`,
      );
    }
    if (r.elided !== undefined) {
      const what = `… ${r.elided.count} segment${r.elided.count === 1 ? '' : 's'}${r.elided.lost > 0 ? ` (${r.elided.lost} lost)` : ''} …`;
      parts.push(`<text class="elided" data-row="${i}" x="${n(mid)}" y="${n(r.y + fs * 0.35)}" text-anchor="middle">${escapeXml(what)}</text>`);
      return;
    }
    parts.push(`<text class="time" data-row="${i}" x="${n(timeX)}" y="${n(r.y + fs * 0.35)}" text-anchor="end">${r.t.toFixed(3)}</text>`);
    r.states.forEach((st, side) => {
      if (st === undefined) return;
      const s = model.endpoints[side]!.states[st]!;
      parts.push(statePill(l, side, r.y, s, ` data-side="${side}" data-st="${st}" data-row="${i}"`, inferred));
    });
  });
  for (const a of l.arrows) parts.push(arrowSvg(model, l, a, o.focusable));
  return parts.join('\n');
}

function formatGap(s: number): string {
  return s >= 10 ? `${s.toFixed(1)} s` : s >= BREAK_S ? `${s.toFixed(3)} s` : `${(s * 1000).toFixed(0)} ms`;
}

/** Render the model as a standalone SVG document. Same model and options → same bytes. */
export function renderSvg(model: DiagramModel, options: SvgOptions = {}): string {
  const p = (options.idPrefix ?? 'synack').replace(/[^A-Za-z0-9_-]/g, '_');
  const l = layoutLadder(model, options);
  const title = svgTitle(model);
  const desc = describe(model);
  return (
    (options.inline === true ? '' : '<?xml version="1.0" encoding="UTF-8"?>\n') +
    `<svg xmlns="http://www.w3.org/2000/svg" class="${p}" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" ` +
    `font-size="${l.fontSize}" role="img" aria-labelledby="${p}-title ${p}-desc">\n` +
    `<title id="${p}-title">${escapeXml(title)}</title>\n` +
    `<desc id="${p}-desc">${escapeXml(desc)}</desc>\n` +
    `<style>${svgStyleSheet(p)}</style>\n` +
    svgBody(model, l, { idPrefix: p, focusable: options.focusable === true }) +
    '\n</svg>\n'
  );
}

/** A one-paragraph text description (for screen readers): each side's states in order. */
function describe(model: DiagramModel): string {
  const sides = model.endpoints
    .slice(0, 2)
    .map((e) => `${e.name}: ${e.states.map((s) => s.state).join(' → ')}`)
    .join('; ');
  return `${model.segments.length} segment${model.segments.length === 1 ? '' : 's'}${
    model.inferred ? ', states inferred from a capture' : ''
  }. ${sides}.`;
}

export { sideOf };
