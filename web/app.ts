/**
 * The `synack ui` page: two real synack stacks (Stack, MemoryLink, VirtualClock, DiagramRecorder —
 * the core, bundled for the browser) run one of the demo scenarios in virtual time, driven from here
 * one event at a time. Beside the growing ladder diagram: RFC 9293 Figure 5 with each side's state,
 * and each side's TCB variables.
 *
 * The page is static and makes no request: the server only hands out this bundle.
 */
import {
  SCENARIOS,
  SCENARIO_DESCRIPTIONS,
  isScenarioName,
  startScenario,
  type ScenarioName,
  type ScenarioOptions,
  type ScenarioRun,
} from '../src/demo/scenarios.js';
import type { DiagramModel, DiagramState } from '../src/diagram/model.js';
import { segmentLabel } from '../src/diagram/labels.js';
import { renderSvg } from '../src/diagram/svg.js';
import type { Stack } from '../src/stack/stack.js';
import type { TcpConnection, TcpInfo } from '../src/tcp/user.js';
import type { TraceEvent } from '../src/trace/events.js';
import { SIDES, StateDiagram, type Side } from './state-diagram.js';

// ---------------------------------------------------------------------------------------------------
// DOM

function $<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`#${id} missing from the page`);
  return e as T;
}

const ui = {
  scenario: $<HTMLSelectElement>('scenario'),
  loss: $<HTMLInputElement>('loss'),
  delay: $<HTMLInputElement>('delay'),
  seed: $<HTMLInputElement>('seed'),
  bytes: $<HTMLInputElement>('bytes'),
  reset: $<HTMLButtonElement>('reset'),
  step: $<HTMLButtonElement>('step'),
  play: $<HTMLButtonElement>('play'),
  speed: $<HTMLSelectElement>('speed'),
  description: $('description'),
  clock: $('clock'),
  status: $('status'),
  error: $('error'),
  ladder: $('ladder'),
  fig5: $('fig5'),
  tcbBody: document.querySelector<HTMLTableSectionElement>('#tcb tbody')!,
  log: $<HTMLOListElement>('log'),
  summary: $('summary'),
};

const stateEl = (side: Side): HTMLElement => document.querySelector<HTMLElement>(`.state[data-side="${side}"]`)!;
const historyEl = (side: Side): HTMLElement => document.querySelector<HTMLElement>(`.history[data-side="${side}"]`)!;

// ---------------------------------------------------------------------------------------------------
// The TCB rows: RFC 9293 §3.3.1's send and receive sequence variables, plus congestion control's.

/** A 32-bit sequence number shown as itself and relative to the ISN it counts from. */
function seqText(value: number, base: number): string {
  return `${value >>> 0} (+${(value - base) >>> 0})`;
}

interface TcbRow {
  key: string;
  label: string;
  title: string;
  value(i: TcpInfo): string;
}

const TCB_ROWS: TcbRow[] = [
  { key: 'sndUna', label: 'SND.UNA', title: 'oldest unacknowledged sequence number', value: (i) => seqText(i.sndUna, i.iss) },
  { key: 'sndNxt', label: 'SND.NXT', title: 'next sequence number to be sent', value: (i) => seqText(i.sndNxt, i.iss) },
  { key: 'sndWnd', label: 'SND.WND', title: 'send window: what the peer last advertised (scaled)', value: (i) => String(i.sndWnd) },
  { key: 'rcvNxt', label: 'RCV.NXT', title: 'next sequence number expected', value: (i) => seqText(i.rcvNxt, i.irs) },
  { key: 'rcvWnd', label: 'RCV.WND', title: 'receive window: what this side offers', value: (i) => String(i.rcvWnd) },
  { key: 'iss', label: 'ISS', title: 'initial send sequence number', value: (i) => String(i.iss >>> 0) },
  { key: 'irs', label: 'IRS', title: 'initial receive sequence number (the peer’s ISS)', value: (i) => String(i.irs >>> 0) },
  { key: 'cwnd', label: 'cwnd', title: 'congestion window, bytes (RFC 5681)', value: (i) => String(i.cwnd) },
  { key: 'ssthresh', label: 'ssthresh', title: 'slow start threshold, bytes (RFC 5681)', value: (i) => (i.ssthresh >= 0x7fffffff ? '∞' : String(i.ssthresh)) },
  { key: 'rto', label: 'RTO', title: 'retransmission timeout, ms (RFC 6298)', value: (i) => `${Math.round(i.rto)} ms` },
  { key: 'srtt', label: 'SRTT', title: 'smoothed round-trip time, ms (RFC 6298)', value: (i) => (i.srtt > 0 ? `${i.srtt.toFixed(1)} ms` : '—') },
];

function buildTcbTable(): void {
  const rows = TCB_ROWS.map((r) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = r.label;
    th.title = r.title;
    tr.append(th);
    for (const side of SIDES) {
      const td = document.createElement('td');
      td.className = side;
      td.dataset['side'] = side;
      td.dataset['var'] = r.key;
      td.textContent = '—';
      tr.append(td);
    }
    return tr;
  });
  ui.tcbBody.replaceChildren(...rows);
}

// ---------------------------------------------------------------------------------------------------
// Settings

function readOptions(): { name: ScenarioName; opts: ScenarioOptions } | string {
  const name = ui.scenario.value;
  if (!isScenarioName(name)) return `unknown scenario ${name}`;
  const num = (input: HTMLInputElement, what: string, min: number, max: number, integer: boolean): number | string | undefined => {
    if (input.value.trim() === '') return undefined;
    const n = Number(input.value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      return `${what}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`;
    }
    return n;
  };
  const loss = num(ui.loss, 'loss %', 0, 100, false);
  const delay = num(ui.delay, 'delay', 0, 10_000, false);
  const seed = num(ui.seed, 'seed', 0, 0xffffffff, true);
  const bytes = num(ui.bytes, 'bytes', 1, 16 * 1024 * 1024, true);
  for (const v of [loss, delay, seed, bytes]) if (typeof v === 'string') return v;
  const opts: ScenarioOptions = {};
  if (typeof loss === 'number') opts.loss = loss / 100;
  if (typeof delay === 'number') opts.delayMs = delay;
  if (typeof seed === 'number') opts.seed = seed;
  if (typeof bytes === 'number') opts.bytes = bytes;
  // The page's default for a bulk transfer is smaller than the terminal demo's 1 MiB: each step is drawn.
  else if (name === 'transfer') opts.bytes = 64 * 1024;
  return { name, opts };
}

// ---------------------------------------------------------------------------------------------------
// The run

interface LogEntry {
  kind: 'out' | 'in' | 'state' | 'note' | 'drop';
  side: Side;
  t: number;
  /** For 'out': index into model.segments (the recorder records sends in the same order). */
  seg?: number;
  text: string;
  flags?: string;
}

const MAX_LOG = 400;

class Session {
  readonly run: ScenarioRun;
  /** New log entries not yet in the DOM. */
  private pending: LogEntry[] = [];
  private sent = 0;
  /** Each side's connection, once it has one (kept after it is gone, for its last values). */
  private readonly conns: Partial<Record<Side, TcpConnection>> = {};
  /** Segments drawn at the previous render: the ones beyond are new. */
  private drawnSegments = 0;
  private lastValues = new Map<string, string>();
  private readonly isn = new Map<string, number>();
  error: string | undefined;

  constructor(
    readonly name: ScenarioName,
    opts: ScenarioOptions,
  ) {
    this.run = startScenario(name, opts);
    this.listen('client', this.run.client);
    this.listen('server', this.run.server);
  }

  private listen(side: Side, stack: Stack): void {
    stack.on('trace', (e) => this.onTrace(side, e));
  }

  private onTrace(side: Side, e: TraceEvent): void {
    const t = e.t / 1000;
    // Catch each side's connection while the stack still holds it: a run played at full speed may
    // open and close it between two frames. The first one that changes state, as the recorder follows.
    if (this.conns[side] === undefined) {
      const conns = (side === 'client' ? this.run.client : this.run.server).connections();
      this.conns[side] =
        e.type === 'state' ? conns.find((c) => c.localPort === e.conn.localPort && c.remotePort === e.conn.remotePort) : conns[0];
    }
    switch (e.type) {
      case 'segment': {
        const s = e.segment;
        const from = `${s.srcAddress}|${s.srcPort}`;
        if (e.dir === 'out' && s.flags.includes('SYN') && !this.isn.has(from)) this.isn.set(from, s.seq);
        if (e.dir === 'out') {
          this.pending.push({ kind: 'out', side, t, seg: this.sent++, text: '', flags: s.flags.join(',') });
        } else {
          // The ladder's label, numbered relative to each side's ISN as the recorder numbers it.
          const label = segmentLabel({
            flags: s.flags,
            seq: (s.seq - (this.isn.get(from) ?? 0)) >>> 0,
            ack: s.flags.includes('ACK') ? (s.ack - (this.isn.get(`${s.dstAddress}|${s.dstPort}`) ?? 0)) >>> 0 : 0,
            len: s.len,
            win: s.window,
          });
          this.pending.push({ kind: 'in', side, t, text: `${side} ⇐ ${label} arrives`, flags: s.flags.join(',') });
        }
        return;
      }
      case 'state':
        this.pending.push({ kind: 'state', side, t, text: `${side}: ${e.from} → ${e.to} — ${e.cause}${e.rfc ? ` (${e.rfc})` : ''}` });
        return;
      case 'note':
        this.pending.push({ kind: 'note', side, t, text: `${side}: ${e.what}${e.rfc !== undefined ? ` (${e.rfc})` : ''}` });
        return;
      case 'drop':
        this.pending.push({ kind: 'drop', side, t, text: `${side} discards a packet: ${e.reason}` });
        return;
    }
  }

  /** One step; false once done. Errors end the run with a message instead of an exception. */
  step(): boolean {
    if (this.run.done || this.error !== undefined) return false;
    try {
      this.run.step();
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      return false;
    }
    return !this.run.done;
  }

  model(): DiagramModel {
    return this.run.result?.model ?? this.run.recorder.build();
  }


  render(): void {
    const model = this.model();
    const running = !this.run.done;
    renderLadder(model, this.drawnSegments, running);
    this.drawnSegments = model.segments.length;
    const states: Record<Side, readonly DiagramState[] | undefined> = {
      client: model.endpoints[0]?.states,
      server: model.endpoints[1]?.states,
    };
    diagram.update(states);
    for (const side of SIDES) this.renderSide(side, states[side]);
    this.flushLog(model);
    ui.clock.textContent = `t = ${(this.run.clock.now() / 1000).toFixed(3)} s`;
    this.renderSummary();
  }

  private renderSide(side: Side, states: readonly DiagramState[] | undefined): void {
    const current = states?.[states.length - 1];
    const el = stateEl(side);
    const name = current?.state ?? 'CLOSED';
    el.dataset['state'] = name;
    el.textContent = name;
    el.title = current === undefined ? '' : `${current.cause}${current.rfc ? ` (${current.rfc})` : ''}`;
    const hist = historyEl(side);
    const list = states ?? [];
    if (hist.childElementCount !== list.length) {
      hist.replaceChildren(
        ...list.map((s, i) => {
          const span = document.createElement('span');
          span.className = 'hstate';
          span.dataset['state'] = s.state;
          span.textContent = s.state;
          span.title = `${s.t.toFixed(3)} s: ${s.cause}${s.rfc ? ` (${s.rfc})` : ''}`;
          if (i === list.length - 1) span.classList.add('current');
          return span;
        }),
      );
    }
    const info = this.conns[side]?.info();
    for (const row of TCB_ROWS) {
      const td = document.querySelector<HTMLElement>(`#tcb td[data-side="${side}"][data-var="${row.key}"]`)!;
      const text = info === undefined ? '—' : row.value(info);
      const key = `${side}.${row.key}`;
      const changed = this.lastValues.has(key) && this.lastValues.get(key) !== text;
      this.lastValues.set(key, text);
      td.textContent = text;
      td.dataset['value'] = info === undefined ? '' : String((info as unknown as Record<string, number>)[row.key]);
      td.classList.toggle('changed', changed);
    }
  }

  private flushLog(model: DiagramModel): void {
    if (this.pending.length === 0) return;
    const items = this.pending.map((e) => {
      const li = document.createElement('li');
      li.dataset['kind'] = e.kind;
      li.dataset['side'] = e.side;
      if (e.flags !== undefined) li.dataset['flags'] = e.flags;
      let text = e.text;
      if (e.kind === 'out' && e.seg !== undefined) {
        const seg = model.segments[e.seg];
        text = seg === undefined ? `${e.side} sends ${e.flags}` : `${e.side} ⇒ ${segmentLabel(seg)}${seg.dropped ? ' — lost' : ''}`;
        if (seg?.dropped === true) li.classList.add('lost');
      }
      li.textContent = `${e.t.toFixed(3)}  ${text}`;
      return li;
    });
    this.pending = [];
    ui.log.append(...items);
    while (ui.log.childElementCount > MAX_LOG) ui.log.firstElementChild!.remove();
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  private renderSummary(): void {
    if (this.error !== undefined) {
      ui.error.hidden = false;
      ui.error.textContent = `the run failed: ${this.error}`;
    }
    const result = this.run.result;
    if (result === undefined) return;
    const s = result.summary;
    const list = document.createElement('ul');
    for (const c of s.checks) {
      const li = document.createElement('li');
      li.className = c.ok ? 'ok' : 'fail';
      li.textContent = `${c.ok ? '✓' : '✗'} ${c.what}${c.detail !== undefined ? ` (${c.detail})` : ''}`;
      list.append(li);
    }
    const stats = document.createElement('dl');
    for (const [k, v] of Object.entries(s.stats)) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = String(v);
      stats.append(dt, dd);
    }
    const verdict = document.createElement('p');
    verdict.className = s.ok ? 'ok' : 'fail';
    verdict.textContent = s.ok
      ? `ok: ${s.checks.length} checks passed in ${s.durationS.toFixed(3)} s of virtual time`
      : `FAILED: ${s.checks.filter((c) => !c.ok).length} of ${s.checks.length} checks failed`;
    ui.summary.replaceChildren(verdict, list, stats);
    ui.summary.dataset['ok'] = String(s.ok);
  }
}

// ---------------------------------------------------------------------------------------------------
// The ladder: renderSvg on the model as it grows.

function renderLadder(model: DiagramModel, drawnBefore: number, running: boolean): void {
  const box = ui.ladder;
  const nearBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 40;
  box.innerHTML = renderSvg(model, { inline: true, idPrefix: 'ladder' });
  box.dataset['segments'] = String(model.segments.length);
  for (const g of box.querySelectorAll<SVGGElement>('g.seg')) {
    const i = Number(g.dataset['seg']);
    const seg = model.segments[i];
    if (seg === undefined) continue;
    g.dataset['flags'] = seg.flags.join(',');
    g.dataset['from'] = seg.from;
    // Sent, not yet arrived (nor lost): still on the wire.
    if (running && !seg.dropped && seg.tArrive === undefined) g.classList.add('inflight');
    if (i >= drawnBefore) g.classList.add('new');
  }
  if (nearBottom) box.scrollTop = box.scrollHeight;
}

// ---------------------------------------------------------------------------------------------------
// Controls

const diagram = new StateDiagram();
let session: Session;
let playing = false;
let lastFrame = 0;
let owed = 0;
/** Identifies the current play loop: a frame of a loop stopped meanwhile (Pause, Reset) does nothing. */
let loop = 0;

function setStatus(): void {
  const done = session.run.done || session.error !== undefined;
  const status = session.error !== undefined ? 'error' : done ? 'done' : playing ? 'playing' : 'paused';
  document.body.dataset['status'] = status;
  ui.status.textContent =
    status === 'done' ? `${session.name}: finished` : status === 'error' ? 'stopped by an error' : `${session.name}: ${status}`;
  ui.play.textContent = playing ? 'Pause' : 'Play';
  ui.step.disabled = done;
  ui.play.disabled = done;
}

function reset(): void {
  playing = false;
  const o = readOptions();
  ui.error.hidden = true;
  ui.error.textContent = '';
  if (typeof o === 'string') {
    ui.error.hidden = false;
    ui.error.textContent = o;
    return;
  }
  ui.description.textContent = SCENARIO_DESCRIPTIONS[o.name];
  session = new Session(o.name, o.opts);
  ui.log.replaceChildren();
  ui.summary.textContent = 'run the scenario to the end to see its checks';
  ui.summary.dataset['ok'] = '';
  session.render();
  setStatus();
}

function stepOnce(): void {
  playing = false;
  session.step();
  session.render();
  setStatus();
}

/** Steps per second of the speed setting (Infinity: as many as fit in a frame). */
function speed(): number {
  return ui.speed.value === 'max' ? Infinity : Number(ui.speed.value);
}

/** Budget per frame when running as fast as possible, so the page stays responsive. */
const FRAME_BUDGET_MS = 12;

function frame(now: number, token: number): void {
  if (!playing || token !== loop) return;
  const s = speed();
  if (s === Infinity) {
    const until = performance.now() + FRAME_BUDGET_MS;
    while (performance.now() < until && session.step());
  } else {
    owed += (Math.min(now - lastFrame, 250) / 1000) * s;
    for (; owed >= 1; owed--) if (!session.step()) break;
  }
  lastFrame = now;
  session.render();
  if (session.run.done || session.error !== undefined) playing = false;
  setStatus();
  if (playing) requestAnimationFrame((t) => frame(t, token));
}

function togglePlay(): void {
  if (session.run.done) return;
  playing = !playing;
  if (playing) {
    // The first step goes at once; then the speed sets the pace.
    owed = 1;
    lastFrame = performance.now();
    const token = ++loop;
    requestAnimationFrame((t) => frame(t, token));
  }
  setStatus();
}

function init(): void {
  for (const name of SCENARIOS) {
    const o = document.createElement('option');
    o.value = name;
    o.textContent = name;
    o.title = SCENARIO_DESCRIPTIONS[name];
    ui.scenario.append(o);
  }
  buildTcbTable();
  ui.fig5.append(diagram.svg);
  ui.reset.addEventListener('click', reset);
  ui.step.addEventListener('click', stepOnce);
  ui.play.addEventListener('click', togglePlay);
  for (const input of [ui.scenario, ui.loss, ui.delay, ui.seed, ui.bytes]) input.addEventListener('change', reset);
  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement | null;
    // Fields keep their keys; on a focused button, space is already a click.
    if (target !== null && ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
    if (target?.tagName === 'BUTTON' && (e.key === ' ' || e.key === 'Enter')) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ' ') {
      e.preventDefault();
      togglePlay();
    } else if (e.key === 'ArrowRight') {
      e.preventDefault();
      stepOnce();
    } else if (e.key === 'r') {
      reset();
    }
  });
  reset();
}

init();
