/**
 * The ladder diagram as one self-contained HTML file: the SVG ladder, inline CSS and JS, the model
 * embedded as JSON, no network request at all (it opens from disk, offline, in any browser). Only the
 * segments the ladder draws are embedded: a long stream's elided middle is counted, not carried, so
 * the page stays small whatever the capture's size (see `PageData`).
 *
 *  - pointing at (or focusing, or clicking) an arrow shows the segment's whole header: ports, seq and
 *    ack relative and absolute, data offset, the eight flag bits CWR ECE URG ACK PSH RST SYN FIN with
 *    the set ones lit and the byte in hex, window, length, options, analysis marks;
 *  - ← / → (and the buttons) step through time: the current row's segment is highlighted, later
 *    rows fade, and each side's state at that moment is shown with its cause and the RFC rule (for
 *    a capture, `draw`'s inference and why).
 *
 * Pure function of the model: no Node built-ins (the `synack ui` page may build it in the browser).
 */
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, TCP_HEADER_LENGTH, URG, flagNames, tcpOptionsLength, type TcpOptions } from '../wire/tcp.js';
import { formatEndpoint, markWords } from './labels.js';
import { layoutLadder, type LadderRow, type LayoutOptions } from './layout.js';
import type { DiagramModel, DiagramSegment } from './model.js';
import { escapeXml, svgBody, svgStyleSheet, svgTitle } from './svg.js';

export interface HtmlOptions extends LayoutOptions {
  /** The page's <title> and heading (default: the model's title, else a description). */
  title?: string;
}

/**
 * The flag bits as RFC 9293 §3.1 lays them out, most significant first (CWR … FIN), with the wire
 * module's values and names.
 */
export const FLAG_BITS: ReadonlyArray<readonly [string, number]> = [CWR, ECE, URG, ACK, PSH, RST, SYN, FIN].map(
  (bit) => [flagNames(bit)[0]!, bit] as const,
);

/**
 * The option strings back as the wire module's options (the inverse of src/wire/tcp.ts
 * `formatOptions`, which wrote them); undefined when one is not a string it writes.
 */
function parseOptionStrings(list: readonly string[]): TcpOptions | undefined {
  const o: TcpOptions = {};
  for (const s of list) {
    let m: RegExpExecArray | null;
    if ((m = /^MSS=(\d+)$/.exec(s)) !== null) o.mss = Number(m[1]);
    else if ((m = /^WS=(\d+)$/.exec(s)) !== null) o.wscale = Number(m[1]);
    else if (s === 'SACK_PERM') o.sackPermitted = true;
    else if ((m = /^TS=(\d+)\/(\d+)$/.exec(s)) !== null) o.timestamp = { val: Number(m[1]), ecr: Number(m[2]) };
    else if ((m = /^SACK=(\d+)-(\d+)$/.exec(s)) !== null) (o.sack ??= []).push([Number(m[1]), Number(m[2])]);
    else return undefined;
  }
  return o;
}

/** What the page shows for one segment (computed here, so the page script only displays it). */
export interface HeaderView {
  index: number;
  from: string;
  to: string;
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
  /** `address:port` of each end (labels.ts `formatEndpoint`), or the port alone when the address is unknown. */
  source: string;
  destination: string;
  seq: number;
  seqAbs: number;
  /** The ACK bit is set (else the ack field means nothing). */
  hasAck: boolean;
  ack: number;
  ackAbs: number;
  /**
   * In 32-bit words; `exact` false when worked out from the options, laid out and padded as synack
   * and Linux write them (src/wire/tcp.ts `tcpOptionsLength`).
   */
  dataOffset: { words: number; bytes: number; exact: boolean } | undefined;
  flags: Array<{ name: string; bit: number; set: boolean }>;
  flagByte: number;
  flagHex: string;
  win: number;
  len: number;
  options: string[];
  marks: string[];
  dropped: boolean;
  dropReason: string | undefined;
  t: number;
  tArrive: number | undefined;
}

function endpointOf(model: DiagramModel, name: string): { address: string; port: number } {
  const ep = model.endpoints.find((e) => e.name === name);
  if (ep !== undefined) return { address: ep.address, port: ep.port };
  // `draw` names endpoints address:port; a name not among them is still one of those.
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(name);
  return m !== null ? { address: m[1]!, port: Number(m[2]) } : { address: '', port: 0 };
}

/** The header fields of segment `i`, as the page shows them. */
export function segmentHeader(model: DiagramModel, i: number): HeaderView {
  const seg: DiagramSegment = model.segments[i]!;
  const src = endpointOf(model, seg.from);
  const dst = endpointOf(model, seg.to);
  let flagByte = 0;
  for (const [name, bit] of FLAG_BITS) if (seg.flags.includes(name)) flagByte |= bit;
  let dataOffset: HeaderView['dataOffset'];
  if (seg.dataOffset !== undefined) {
    // A capture's own value (the model holds it in bytes, data offset × 4).
    dataOffset = { words: seg.dataOffset / 4, bytes: seg.dataOffset, exact: true };
  } else {
    // RFC 9293 §3.1: the header is 20 bytes plus the options, padded to a multiple of 4. Options the
    // trace does not write (an unknown kind) leave it unknown rather than guessed.
    const options = parseOptionStrings(seg.options);
    if (options !== undefined) {
      const bytes = TCP_HEADER_LENGTH + tcpOptionsLength(options);
      dataOffset = { words: bytes / 4, bytes, exact: false };
    }
  }
  return {
    index: i,
    from: seg.from,
    to: seg.to,
    srcAddress: src.address,
    srcPort: src.port,
    dstAddress: dst.address,
    dstPort: dst.port,
    source: src.address === '' ? String(src.port) : formatEndpoint(src.address, src.port),
    destination: dst.address === '' ? String(dst.port) : formatEndpoint(dst.address, dst.port),
    seq: seg.seq,
    seqAbs: seg.seqAbs,
    hasAck: seg.flags.includes('ACK'),
    ack: seg.ack,
    ackAbs: seg.ackAbs,
    dataOffset,
    flags: FLAG_BITS.map(([name, bit]) => ({ name, bit, set: (flagByte & bit) !== 0 })),
    flagByte,
    flagHex: `0x${flagByte.toString(16).padStart(2, '0')}`,
    win: seg.win,
    len: seg.len,
    options: [...seg.options],
    marks: markWords(seg),
    dropped: seg.dropped,
    dropReason: seg.dropReason,
    t: seg.t,
    tArrive: seg.tArrive,
  };
}

/** One time step of the page: a row of the ladder. */
export interface PageStep {
  row: number;
  t: number;
  /** Segment sent on this row, if any. */
  seg: number | null;
  /** [side, index into endpoints[side].states] of the states entered on this row. */
  states: Array<[number, number]>;
}

/**
 * The data the page script reads: everything it shows, computed here, and nothing it does not show.
 * A long capture's ladder elides the middle of the data phase (layout.ts), so the page embeds only
 * the segments the ladder draws: its size follows what is on screen, not the capture (300 000
 * segments would otherwise embed hundreds of MB of JSON).
 */
export interface PageData {
  /** The model with only the segments the ladder draws (`model.segments[k]` is segment `shown[k]`) and the notes of its steps. */
  model: DiagramModel;
  /** Index in the full model (an arrow's `data-seg`) of each embedded segment, ascending. */
  shown: number[];
  /** Segments of the full model not embedded: the ones the ladder elides. */
  elided: number;
  /** Header of each embedded segment (`headers[k]` is of segment `shown[k]`; `index` says so too). */
  headers: HeaderView[];
  steps: PageStep[];
}

/**
 * JSON safe inside a <script> element: no `<` (so no `</script>` or `<!--`), no `>` or `&`, and the
 * two line separators JavaScript once treated as newlines.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const PAGE_CSS = `
:root{color-scheme:light;--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--accent:#0969da;--on:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#f6f8fa}
header{padding:12px 20px;background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:18px;margin:0 0 8px}
.controls{display:flex;gap:8px;align-items:center;flex-wrap:wrap}
button{font:inherit;padding:4px 12px;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
button:hover{background:#eaeef2}button:focus-visible{outline:2px solid var(--accent)}
#status{color:var(--muted);font-variant-numeric:tabular-nums}
.hint{color:var(--muted);font-size:12px}
main{display:flex;gap:16px;padding:16px 20px;align-items:flex-start}
#ladder{flex:0 1 auto;overflow:auto;background:#fff;border:1px solid var(--line);border-radius:6px;max-width:100%}
#ladder svg{display:block;max-width:none;height:auto}
aside{flex:1 1 340px;min-width:300px;max-width:460px;position:sticky;top:12px;display:flex;flex-direction:column;gap:12px}
section.panel{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 12px}
section.panel h2{font-size:13px;margin:0 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.side{margin:0 0 8px}.side:last-child{margin:0}
.side .who{font-weight:600}.side .state{font:bold 14px ui-monospace,Menlo,Consolas,monospace;color:#0550ae}
.side .why{color:var(--muted);font-size:12.5px}.side .rfc{font-size:12.5px}
table.hdr{border-collapse:collapse;width:100%;font:12.5px ui-monospace,Menlo,Consolas,monospace}
table.hdr th{text-align:left;font-weight:normal;color:var(--muted);padding:2px 8px 2px 0;white-space:nowrap;vertical-align:top}
table.hdr td{padding:2px 0;word-break:break-all}
.flags{display:grid;grid-template-columns:repeat(8,1fr);gap:2px;margin:6px 0 2px}
.flags span{text-align:center;padding:3px 0;border:1px solid var(--line);border-radius:3px;font:11px ui-monospace,Menlo,Consolas,monospace;color:#8c959f;background:#f6f8fa}
.flags span.on{background:var(--on);border-color:var(--on);color:#fff;font-weight:bold}
.lost{color:#cf222e;font-weight:600}.marks{color:#cf222e}
#notes:empty{display:none}#notes{font-size:12.5px;color:var(--muted)}
.synack .seg{cursor:pointer;outline:none}
.synack .seg:hover .arrow,.synack .seg:focus .arrow{stroke-width:3}
.synack .seg.current .arrow{stroke-width:3.4}
.synack .seg.current .lbox{fill:#fff8c5;fill-opacity:1}
.synack .seg.shown .lbox{stroke:#0969da;stroke-width:1}
.synack .future{opacity:.22}
.synack .st.now .pill{fill:#0969da;stroke:#0969da}.synack .st.now .state{fill:#fff}
.synack .time.now{fill:#1f2328;font-weight:bold}
@media (max-width:900px){main{flex-direction:column}aside{position:static;max-width:none;width:100%}}
`;

/**
 * The page script, written as a function so the compiler checks it, embedded by its source text.
 * It must not use anything from outside its own body but types (erased from that text): it runs in the page.
 */
function pageScript(): void {
  // The shapes pageData() embeds, named for the page (types only: nothing of them is in the page's text).
  type Header = HeaderView;
  type Data = PageData;
  const dataEl = document.getElementById('synack-data');
  if (dataEl === null) return;
  const data = JSON.parse(dataEl.textContent ?? '{}') as Data;
  const svg = document.querySelector('#ladder svg');
  if (svg === null) return;
  const el = (tag: string, text?: string, cls?: string): HTMLElement => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls !== undefined) e.className = cls;
    return e;
  };
  const byId = (id: string): HTMLElement => document.getElementById(id)!;
  const statusEl = byId('status');
  const sidesEl = byId('sides');
  const segEl = byId('segment');
  const notesEl = byId('notes');
  const steps = data.steps;
  /** Only the segments the ladder draws are embedded: their headers by segment index. */
  const headers = new Map<number, Header>();
  for (const h of data.headers) headers.set(h.index, h);
  let cur = 0;
  let shown: number | null = null;

  /** The state each side is in once row `row` has happened. */
  function statesAt(row: number): number[] {
    const at = data.model.endpoints.slice(0, 2).map(() => 0);
    for (const s of steps) {
      if (s.row > row) break;
      for (const [side, st] of s.states) at[side] = st;
    }
    return at;
  }

  function renderSides(row: number): void {
    sidesEl.replaceChildren();
    const at = statesAt(row);
    data.model.endpoints.slice(0, 2).forEach((ep, side) => {
      const st = ep.states[at[side]!];
      const box = el('div', undefined, 'side');
      box.dataset['side'] = String(side);
      const who = el('div');
      who.append(el('span', `${ep.name} `, 'who'), el('span', st ? st.state : '?', 'state'));
      box.append(who);
      if (st !== undefined) {
        if (data.model.inferred) {
          box.append(el('div', `${st.assumed === true ? 'assumed (no segment shows it)' : 'inferred from the capture'}: ${st.cause}`, 'why'));
        } else {
          box.append(el('div', st.cause, 'why'));
          if (st.rfc !== '') box.append(el('div', st.rfc, 'rfc'));
        }
        if (at[side]! > 0) box.append(el('div', `since ${st.t.toFixed(3)} s`, 'why'));
      }
      sidesEl.append(box);
    });
  }

  function showHeader(i: number | null): void {
    shown = i;
    svg!.querySelectorAll('.seg.shown').forEach((g) => g.classList.remove('shown'));
    segEl.replaceChildren();
    if (i === null) {
      segEl.append(el('p', 'No segment on this row. Point at an arrow to see its header.', 'hint'));
      return;
    }
    const h = headers.get(i);
    if (h === undefined) {
      segEl.append(el('p', `Segment #${i + 1} is not on this page.`, 'hint'));
      return;
    }
    svg!.querySelector(`.seg[data-seg="${i}"]`)?.classList.add('shown');
    const title = el('p');
    title.append(el('strong', `#${i + 1} ${h.from} → ${h.to}`));
    if (h.dropped) title.append(' ', el('span', `lost${h.dropReason ? ` (${h.dropReason})` : ''}`, 'lost'));
    segEl.append(title);
    const flags = el('div', undefined, 'flags');
    flags.setAttribute('role', 'list');
    flags.setAttribute('aria-label', 'flag bits');
    for (const f of h.flags) {
      const c = el('span', f.name, f.set ? 'on' : undefined);
      c.setAttribute('role', 'listitem');
      c.dataset['flag'] = f.name;
      c.dataset['set'] = f.set ? '1' : '0';
      c.title = `${f.name} ${f.set ? 'set' : 'clear'}`;
      flags.append(c);
    }
    const table = el('table', undefined, 'hdr');
    const row = (k: string, v: string, key: string): void => {
      const tr = el('tr');
      tr.dataset['field'] = key;
      tr.append(el('th', k), el('td', v));
      table.append(tr);
    };
    row('source', h.source, 'src');
    row('destination', h.destination, 'dst');
    row('ports', `${h.srcPort} → ${h.dstPort}`, 'ports');
    row('seq', `${h.seq} (relative)   ${h.seqAbs} (absolute)`, 'seq');
    row('ack', h.hasAck ? `${h.ack} (relative)   ${h.ackAbs} (absolute)` : `— (ACK bit clear; field ${h.ackAbs})`, 'ack');
    row(
      'data offset',
      h.dataOffset === undefined
        ? 'unknown'
        : `${h.dataOffset.words} words = ${h.dataOffset.bytes} bytes${h.dataOffset.exact ? '' : ' (estimated from the options)'}`,
      'doff',
    );
    const flagNames = h.flags.filter((f) => f.set).map((f) => f.name);
    row('flags', `${h.flagHex} = ${h.flagByte.toString(2).padStart(8, '0')}  ${flagNames.join(',') || 'none'}`, 'flags');
    const flagRow = el('tr');
    const flagCell = el('td');
    flagCell.setAttribute('colspan', '2');
    flagCell.append(flags);
    flagRow.append(flagCell);
    table.append(flagRow);
    row('window', String(h.win), 'win');
    row('length', `${h.len} byte${h.len === 1 ? '' : 's'} of data`, 'len');
    row('options', h.options.length > 0 ? h.options.join(' ') : 'none', 'options');
    if (h.marks.length > 0) row('analysis', h.marks.join(', '), 'marks');
    row('sent', `${h.t.toFixed(3)} s`, 'sent');
    row('arrived', h.dropped ? 'never (lost)' : h.tArrive === undefined ? 'not seen' : `${h.tArrive.toFixed(3)} s`, 'arrived');
    segEl.append(table);
  }

  function go(k: number): void {
    cur = Math.max(0, Math.min(steps.length - 1, k));
    const step = steps[cur];
    if (step === undefined) return;
    const row = step.row;
    svg!.querySelectorAll('[data-row]').forEach((e) => {
      const r = Number((e as SVGElement).dataset['row']);
      e.classList.toggle('future', r > row);
      if (e.classList.contains('seg')) e.classList.toggle('current', step.seg !== null && Number((e as SVGElement).dataset['seg']) === step.seg);
      if (e.classList.contains('time')) e.classList.toggle('now', r === row);
    });
    const at = statesAt(row);
    svg!.querySelectorAll('.st').forEach((p) => {
      const d = (p as SVGElement).dataset;
      p.classList.toggle('now', at[Number(d['side'])] === Number(d['st']));
    });
    statusEl.textContent = `step ${cur + 1} of ${steps.length} · t = ${step.t.toFixed(3)} s`;
    renderSides(row);
    notesEl.replaceChildren();
    for (const n of data.model.notes) {
      if (n.t === step.t) notesEl.append(el('div', `${n.endpoint}: ${n.what}${n.rfc ? ` (${n.rfc})` : ''}`));
    }
    showHeader(step.seg);
  }

  byId('first').addEventListener('click', () => go(0));
  byId('back').addEventListener('click', () => go(cur - 1));
  byId('next').addEventListener('click', () => go(cur + 1));
  byId('last').addEventListener('click', () => go(steps.length - 1));
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') go(cur + 1);
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') go(cur - 1);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(steps.length - 1);
    else return;
    e.preventDefault();
  });
  const stepOfSeg = (i: number): number => steps.findIndex((s) => s.seg === i);
  svg.querySelectorAll('.seg').forEach((g) => {
    const i = Number((g as SVGElement).dataset['seg']);
    g.addEventListener('mouseenter', () => showHeader(i));
    g.addEventListener('focus', () => showHeader(i));
    g.addEventListener('mouseleave', () => {
      if (shown === i && document.activeElement !== g) showHeader(steps[cur]?.seg ?? null);
    });
    g.addEventListener('click', () => {
      const k = stepOfSeg(i);
      if (k >= 0) go(k);
      showHeader(i);
    });
  });
  go(0);
  document.body.dataset['ready'] = '1';
}

/**
 * The page script's source. A transpiler that keeps function names (esbuild's keepNames, which tsx
 * turns on) wraps inner functions in a `__name(fn, "name")` helper defined outside the function, so
 * the page gets a stand-in that returns the function unchanged.
 */
const PAGE_SCRIPT = `"use strict";var __name=function(f){return f};(${pageScript.toString()})();`;

/** The time steps of the page: the ladder's rows but the elided ones. */
export function pageSteps(rows: LadderRow[]): PageStep[] {
  const steps: PageStep[] = [];
  rows.forEach((r, i) => {
    if (r.elided !== undefined) return;
    const states: Array<[number, number]> = [];
    r.states.forEach((st, side) => {
      if (st !== undefined) states.push([side, st]);
    });
    steps.push({ row: i, t: r.t, seg: r.send ?? null, states });
  });
  return steps;
}

/**
 * What the page embeds: the segments the ladder draws (`drawn`, indices into model.segments) with
 * their headers, the steps, and the notes the steps show (a note is shown at the step of its instant).
 */
function pageData(model: DiagramModel, rows: LadderRow[], drawn: number[]): PageData {
  const shown = [...drawn].sort((a, b) => a - b);
  const steps = pageSteps(rows);
  const stepTimes = new Set(steps.map((s) => s.t));
  return {
    model: {
      ...model,
      segments: shown.map((i) => model.segments[i]!),
      notes: model.notes.filter((n) => stepTimes.has(n.t)),
    },
    shown,
    elided: model.segments.length - shown.length,
    headers: shown.map((i) => segmentHeader(model, i)),
    steps,
  };
}

/** Render the model as one self-contained HTML page. Same model and options → same bytes. */
export function renderHtml(model: DiagramModel, options: HtmlOptions = {}): string {
  const layout = layoutLadder(model, options);
  const title = options.title ?? svgTitle(model);
  const data = pageData(model, layout.rows, layout.arrows.map((a) => a.seg));
  const elided =
    data.elided > 0
      ? `<p class="hint" id="elided">${data.elided} of ${model.segments.length} segments elided: the ladder keeps the handshake, the start and end of the data phase, zero-window episodes and the close, and this page holds only those.</p>\n`
      : '';
  const p = 'synack';
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" class="${p}" viewBox="0 0 ${layout.width} ${layout.height}" width="${layout.width}" height="${layout.height}" ` +
    `font-size="${layout.fontSize}" role="img" aria-labelledby="${p}-title">` +
    `<title id="${p}-title">${escapeXml(svgTitle(model))}</title>` +
    `<style>${svgStyleSheet(p)}</style>\n` +
    svgBody(model, layout, { idPrefix: p, focusable: true }) +
    `\n</svg>`;
  const inferred = model.inferred
    ? '<p class="hint">States are inferred from the capture (what each side must have been in, given what it sent and received).</p>'
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(title)}</title>
<link rel="icon" href="data:,">
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>${escapeXml(title)}</h1>
${inferred}${elided}<div class="controls">
<button id="first" type="button" title="first step (Home)">« First</button>
<button id="back" type="button" title="one step back (←)">◀ Back</button>
<button id="next" type="button" title="one step forward (→)">Next ▶</button>
<button id="last" type="button" title="last step (End)">Last »</button>
<span id="status" aria-live="polite"></span>
<span class="hint">← → step through time · point at an arrow for its header</span>
</div>
</header>
<main>
<div id="ladder">${svg}</div>
<aside>
<section class="panel"><h2>States at this step</h2><div id="sides"></div><div id="notes"></div></section>
<section class="panel"><h2>Segment header</h2><div id="segment"></div></section>
</aside>
</main>
<script type="application/json" id="synack-data">${scriptJson(data)}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

