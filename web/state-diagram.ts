/**
 * RFC 9293 Figure 5, "TCP Connection State Diagram", as an SVG drawn here: the eleven states and the
 * twenty transitions of the figure, each labelled with its event and action as in the RFC. The page
 * marks each side's current state (client and server in two colours) and the transition it just took.
 *
 * The figure shows CLOSED twice (where a connection starts, and where it ends after LAST-ACK or
 * TIME-WAIT); so does this one. Transitions the figure leaves out — the RFC says it "omits error
 * conditions and actions that are not connected with state changes", e.g. a reset or an ABORT going
 * to CLOSED, or FIN-WAIT-1 straight to TIME-WAIT on a FIN that also acknowledges ours (§3.10.7.4) —
 * are drawn when taken, dashed, with the stack's own cause as their label.
 */
import type { DiagramState } from '../src/diagram/model.js';
import type { TcpState } from '../src/tcp/state.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A box of the figure: a state, or the second CLOSED at the bottom. */
type Box = TcpState | 'CLOSED-END';

const BOX_W = 118;
const BOX_H = 34;
const WIDTH = 640;
const HEIGHT = 700;

/** Box centres, laid out as in the RFC's figure. */
const BOXES: Record<Box, { x: number; y: number; label: string }> = {
  CLOSED: { x: 320, y: 34, label: 'CLOSED' },
  LISTEN: { x: 320, y: 140, label: 'LISTEN' },
  'SYN-RECEIVED': { x: 90, y: 250, label: 'SYN-RECEIVED' },
  'SYN-SENT': { x: 550, y: 250, label: 'SYN-SENT' },
  ESTABLISHED: { x: 320, y: 360, label: 'ESTABLISHED' },
  'FIN-WAIT-1': { x: 90, y: 470, label: 'FIN-WAIT-1' },
  'CLOSE-WAIT': { x: 550, y: 470, label: 'CLOSE-WAIT' },
  'FIN-WAIT-2': { x: 90, y: 570, label: 'FIN-WAIT-2' },
  CLOSING: { x: 320, y: 570, label: 'CLOSING' },
  'LAST-ACK': { x: 550, y: 570, label: 'LAST-ACK' },
  'TIME-WAIT': { x: 320, y: 666, label: 'TIME-WAIT' },
  'CLOSED-END': { x: 550, y: 666, label: 'CLOSED' },
};

interface Edge {
  from: Box;
  to: Box;
  /** Event / action, as the figure writes them ("x" = no action). */
  event: string;
  action: string;
  /** SVG path between the boxes. */
  d: string;
  /** Where the label goes, and its anchor. */
  lx: number;
  ly: number;
  anchor: 'start' | 'middle' | 'end';
}

/** Points on a box's sides. */
const top = (b: Box, dx = 0): [number, number] => [BOXES[b].x + dx, BOXES[b].y - BOX_H / 2];
const bottom = (b: Box, dx = 0): [number, number] => [BOXES[b].x + dx, BOXES[b].y + BOX_H / 2];
const left = (b: Box, dy = 0): [number, number] => [BOXES[b].x - BOX_W / 2, BOXES[b].y + dy];
const right = (b: Box, dy = 0): [number, number] => [BOXES[b].x + BOX_W / 2, BOXES[b].y + dy];

const line = (a: [number, number], b: [number, number]): string => `M${a[0]} ${a[1]}L${b[0]} ${b[1]}`;
/** A gentle curve: the control point shifted sideways from the midpoint by `bend`. */
function curve(a: [number, number], b: [number, number], bend: number): string {
  const mx = (a[0] + b[0]) / 2;
  const my = (a[1] + b[1]) / 2;
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = Math.hypot(dx, dy) || 1;
  return `M${a[0]} ${a[1]}Q${mx - (dy / len) * bend} ${my + (dx / len) * bend} ${b[0]} ${b[1]}`;
}

/** The transitions of RFC 9293 Figure 5. */
const EDGES: Edge[] = [
  { from: 'CLOSED', to: 'LISTEN', event: 'passive OPEN', action: 'create TCB', d: line(bottom('CLOSED', -22), top('LISTEN', -22)), lx: 292, ly: 82, anchor: 'end' },
  { from: 'LISTEN', to: 'CLOSED', event: 'CLOSE', action: 'delete TCB', d: line(top('LISTEN', 22), bottom('CLOSED', 22)), lx: 348, ly: 82, anchor: 'start' },
  { from: 'CLOSED', to: 'SYN-SENT', event: 'active OPEN', action: 'snd SYN', d: curve(right('CLOSED', -6), top('SYN-SENT', 30), -60), lx: 520, ly: 78, anchor: 'start' },
  { from: 'SYN-SENT', to: 'CLOSED', event: 'CLOSE', action: 'delete TCB', d: curve(top('SYN-SENT', -10), right('CLOSED', 8), 26), lx: 452, ly: 150, anchor: 'start' },
  { from: 'LISTEN', to: 'SYN-RECEIVED', event: 'rcv SYN', action: 'snd SYN,ACK', d: curve(bottom('LISTEN', -30), top('SYN-RECEIVED', 20), -20), lx: 150, ly: 186, anchor: 'end' },
  { from: 'SYN-RECEIVED', to: 'LISTEN', event: 'rcv RST', action: 'x', d: curve(top('SYN-RECEIVED', -20), left('LISTEN'), 40), lx: 84, ly: 160, anchor: 'end' },
  { from: 'LISTEN', to: 'SYN-SENT', event: 'SEND', action: 'snd SYN', d: curve(bottom('LISTEN', 30), top('SYN-SENT', -40), 20), lx: 420, ly: 200, anchor: 'start' },
  { from: 'SYN-SENT', to: 'SYN-RECEIVED', event: 'rcv SYN', action: 'snd SYN,ACK', d: line(left('SYN-SENT', -6), right('SYN-RECEIVED', -6)), lx: 320, ly: 232, anchor: 'middle' },
  { from: 'SYN-SENT', to: 'ESTABLISHED', event: 'rcv SYN,ACK', action: 'snd ACK', d: curve(bottom('SYN-SENT', -20), top('ESTABLISHED', 30), -20), lx: 480, ly: 318, anchor: 'end' },
  { from: 'SYN-RECEIVED', to: 'ESTABLISHED', event: 'rcv ACK of SYN', action: 'x', d: curve(bottom('SYN-RECEIVED', 20), top('ESTABLISHED', -30), 20), lx: 156, ly: 318, anchor: 'start' },
  { from: 'SYN-RECEIVED', to: 'FIN-WAIT-1', event: 'CLOSE', action: 'snd FIN', d: line(bottom('SYN-RECEIVED', -30), top('FIN-WAIT-1', -30)), lx: 54, ly: 360, anchor: 'end' },
  { from: 'ESTABLISHED', to: 'FIN-WAIT-1', event: 'CLOSE', action: 'snd FIN', d: curve(bottom('ESTABLISHED', -30), right('FIN-WAIT-1', -6), -20), lx: 196, ly: 412, anchor: 'end' },
  { from: 'ESTABLISHED', to: 'CLOSE-WAIT', event: 'rcv FIN', action: 'snd ACK', d: curve(bottom('ESTABLISHED', 30), left('CLOSE-WAIT', -6), 20), lx: 444, ly: 412, anchor: 'start' },
  { from: 'FIN-WAIT-1', to: 'FIN-WAIT-2', event: 'rcv ACK of FIN', action: 'x', d: line(bottom('FIN-WAIT-1', -30), top('FIN-WAIT-2', -30)), lx: 54, ly: 524, anchor: 'end' },
  { from: 'FIN-WAIT-1', to: 'CLOSING', event: 'rcv FIN', action: 'snd ACK', d: curve(bottom('FIN-WAIT-1', 30), top('CLOSING', -20), -16), lx: 240, ly: 508, anchor: 'end' },
  { from: 'CLOSE-WAIT', to: 'LAST-ACK', event: 'CLOSE', action: 'snd FIN', d: line(bottom('CLOSE-WAIT'), top('LAST-ACK')), lx: 560, ly: 524, anchor: 'start' },
  { from: 'FIN-WAIT-2', to: 'TIME-WAIT', event: 'rcv FIN', action: 'snd ACK', d: curve(bottom('FIN-WAIT-2'), left('TIME-WAIT'), 30), lx: 150, ly: 650, anchor: 'end' },
  { from: 'CLOSING', to: 'TIME-WAIT', event: 'rcv ACK of FIN', action: 'x', d: line(bottom('CLOSING'), top('TIME-WAIT')), lx: 330, ly: 622, anchor: 'start' },
  { from: 'LAST-ACK', to: 'CLOSED-END', event: 'rcv ACK of FIN', action: 'x', d: line(bottom('LAST-ACK'), top('CLOSED-END')), lx: 560, ly: 622, anchor: 'start' },
  { from: 'TIME-WAIT', to: 'CLOSED-END', event: 'Timeout=2MSL', action: 'delete TCB', d: line(right('TIME-WAIT'), left('CLOSED-END')), lx: 435, ly: 650, anchor: 'middle' },
];

export type Side = 'client' | 'server';
export const SIDES: readonly Side[] = ['client', 'server'];

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const edgeKey = (from: Box, to: Box): string => `${from}>${to}`;

/** Which box stands for where a side is: CLOSED at the top until it first leaves it, then the bottom one. */
function boxOf(states: readonly DiagramState[], i: number): Box | undefined {
  const s = states[i]?.state;
  if (s === undefined || s === 'unknown') return undefined;
  if (s !== 'CLOSED') return s;
  return states.slice(0, i).some((p) => p.state !== 'CLOSED') ? 'CLOSED-END' : 'CLOSED';
}

/** The figure's edge for a transition, or undefined when the figure does not have it. */
function figureEdge(from: Box, to: Box, cause: string): Edge | undefined {
  const byKey = EDGE_BY_KEY;
  if (to === 'CLOSED-END') {
    // A user CLOSE in LISTEN or SYN-SENT is the figure's edge back to the top CLOSED; a reset is not.
    if ((from === 'LISTEN' || from === 'SYN-SENT') && !/RST|reset|refused|ABORT/i.test(cause)) {
      return byKey.get(edgeKey(from, 'CLOSED'));
    }
  }
  return byKey.get(edgeKey(from, to));
}

const EDGE_BY_KEY = new Map(EDGES.map((e) => [edgeKey(e.from, e.to), e]));

export class StateDiagram {
  readonly svg: SVGSVGElement;
  private readonly boxes = new Map<Box, SVGGElement>();
  private readonly edges = new Map<string, SVGGElement>();
  private readonly extra: SVGGElement;
  private readonly markers: Record<Side, SVGGElement>;

  constructor() {
    const svg = el('svg', {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: 'fig5',
      role: 'img',
      'aria-label': 'RFC 9293 Figure 5: TCP connection state diagram, with each side’s current state marked',
    });
    svg.append(el('title', {}, 'RFC 9293 Figure 5: TCP Connection State Diagram'));
    const defs = el('defs', {});
    for (const [id, cls] of [['fig5-head', 'head'], ['fig5-head-client', 'head client'], ['fig5-head-server', 'head server']] as const) {
      const m = el('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' });
      m.append(el('path', { d: 'M0 0L10 5L0 10z', class: cls }));
      defs.append(m);
    }
    svg.append(defs);
    const edgeLayer = el('g', { class: 'edges' });
    for (const e of EDGES) {
      const g = el('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to });
      g.append(el('title', {}, `${e.from.replace('-END', '')} → ${e.to.replace('-END', '')}: ${e.event} / ${e.action}`));
      g.append(el('path', { d: e.d, class: 'line', 'marker-end': 'url(#fig5-head)' }));
      const t = el('text', { x: e.lx, y: e.ly, 'text-anchor': e.anchor, class: 'elabel' });
      t.append(el('tspan', { x: e.lx, dy: 0 }, e.event));
      t.append(el('tspan', { x: e.lx, dy: 12, class: 'action' }, e.action === 'x' ? '—' : e.action));
      g.append(t);
      edgeLayer.append(g);
      this.edges.set(edgeKey(e.from, e.to), g);
    }
    svg.append(edgeLayer);
    this.extra = el('g', { class: 'extra' });
    svg.append(this.extra);
    const boxLayer = el('g', { class: 'boxes' });
    for (const [box, b] of Object.entries(BOXES) as Array<[Box, (typeof BOXES)[Box]]>) {
      const g = el('g', { class: 'box', 'data-box': box, 'data-state': box === 'CLOSED-END' ? 'CLOSED' : box });
      g.append(el('rect', { x: b.x - BOX_W / 2, y: b.y - BOX_H / 2, width: BOX_W, height: BOX_H, rx: 6 }));
      g.append(el('text', { x: b.x, y: b.y + 4.5, 'text-anchor': 'middle' }, b.label));
      boxLayer.append(g);
      this.boxes.set(box, g);
    }
    svg.append(boxLayer);
    // One marker per side: a coloured dot with its initial beside the box it is in.
    const markers = {} as Record<Side, SVGGElement>;
    for (const side of SIDES) {
      const g = el('g', { class: `marker ${side}`, 'data-side': side, visibility: 'hidden' });
      g.append(el('circle', { r: 9, cx: 0, cy: 0 }));
      g.append(el('text', { x: 0, y: 4, 'text-anchor': 'middle' }, side === 'client' ? 'C' : 'S'));
      svg.append(g);
      markers[side] = g;
    }
    this.markers = markers;
    this.svg = svg;
  }

  /** Mark where each side is, and the transition that brought it there (undefined: nothing yet). */
  update(states: Record<Side, readonly DiagramState[] | undefined>): void {
    for (const g of this.boxes.values()) g.classList.remove('client', 'server');
    for (const g of this.edges.values()) g.classList.remove('client', 'server');
    this.extra.replaceChildren();
    for (const side of SIDES) {
      const list = states[side];
      const marker = this.markers[side];
      let cur = list === undefined ? undefined : boxOf(list, list.length - 1);
      if (list === undefined || cur === undefined) {
        marker.setAttribute('visibility', 'hidden');
        continue;
      }
      const prev = list.length >= 2 ? boxOf(list, list.length - 2) : undefined;
      if (prev !== undefined) {
        const last = list[list.length - 1]!;
        const edge = figureEdge(prev, cur, last.cause);
        if (edge !== undefined) {
          const g = this.edges.get(edgeKey(edge.from, edge.to))!;
          g.classList.add(side);
          // The highlighted edge goes on top of the others.
          g.parentNode?.appendChild(g);
          // A user CLOSE before the handshake goes back to the top CLOSED, as the figure draws it.
          cur = edge.to;
        } else {
          this.extra.append(this.offFigure(prev, cur, side, last.cause));
        }
      }
      this.boxes.get(cur)?.classList.add(side);
      const b = BOXES[cur];
      const dx = side === 'client' ? -BOX_W / 2 - 2 : BOX_W / 2 + 2;
      marker.setAttribute('transform', `translate(${b.x + dx} ${b.y - BOX_H / 2})`);
      marker.setAttribute('visibility', 'visible');
    }
  }

  /** A transition the figure does not draw: a dashed arrow labelled with the stack's cause. */
  private offFigure(from: Box, to: Box, side: Side, cause: string): SVGGElement {
    const a = BOXES[from];
    const b = BOXES[to];
    const g = el('g', { class: `edge off ${side}`, 'data-from': from, 'data-to': to });
    const start: [number, number] = [a.x + (b.x > a.x ? BOX_W / 2 : b.x < a.x ? -BOX_W / 2 : 0), a.y + (b.x === a.x ? BOX_H / 2 : 0)];
    const end: [number, number] = [b.x + (a.x > b.x ? BOX_W / 2 : a.x < b.x ? -BOX_W / 2 : 0), b.y - (a.x === b.x ? BOX_H / 2 : 0)];
    g.append(el('title', {}, `${from.replace('-END', '')} → ${to.replace('-END', '')} (not in Figure 5): ${cause}`));
    g.append(el('path', { d: curve(start, end, side === 'client' ? -40 : 40), class: 'line', 'marker-end': `url(#fig5-head-${side})` }));
    const mx = (start[0] + end[0]) / 2 + (side === 'client' ? -8 : 8);
    const my = (start[1] + end[1]) / 2;
    const t = el('text', { x: mx, y: my, 'text-anchor': 'middle', class: 'elabel' }, cause.length > 46 ? `${cause.slice(0, 45)}…` : cause);
    g.append(t);
    return g;
  }
}
