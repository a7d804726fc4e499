/**
 * The chart of `synack bench --svg F`: throughput against MTU (synack with and without checksums
 * beside kernel loopback) and throughput against the number of parallel connections (synack beside
 * kernel loopback), as grouped bars. A standalone SVG document: no script, no external font or
 * style, text as <text> (selectable, searchable), and deterministic — the same results give the
 * same bytes (fixed number formatting, no dates, no random ids).
 */
import type { BenchResult } from './types.js';

export interface ChartSeries {
  label: string;
  color: string;
}

export interface ChartGroup {
  label: string;
  /** One value per series; null when that series has no figure here. */
  values: Array<number | null>;
}

export interface ChartPanel {
  title: string;
  axis: string;
  unit: string;
  series: ChartSeries[];
  groups: ChartGroup[];
}

const SYNACK = '#2563eb';
const SYNACK_NOCSUM = '#93c5fd';
const KERNEL = '#6b7280';

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Fixed formatting, so the output depends on the numbers only. */
function fmt(x: number): string {
  if (x === 0) return '0';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

const px = (x: number): string => (Math.round(x * 10) / 10).toString();

/** A round tick step giving about `n` ticks up to `max`. */
export function niceStep(max: number, n = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** The two panels from a run's results (the rows `throughput mtu=…` and `throughput conns=…`). */
export function chartPanels(results: readonly BenchResult[]): ChartPanel[] {
  const mtuRows = results.filter((r) => /^throughput mtu=\d+$/.test(r.name));
  const mtus = mtuRows.map((r) => Number(r.name.slice('throughput mtu='.length)));
  const byMtu = new Map(results.filter((r) => /^throughput mtu=\d+ no-checksum$/.test(r.name))
    .map((r) => [Number(r.name.split(/[= ]/)[2]), r.value] as const));
  const mtuPanel: ChartPanel = {
    title: 'Bulk throughput against MTU (one connection)',
    axis: 'MTU (bytes)',
    unit: 'Gbit/s',
    series: [
      { label: 'synack', color: SYNACK },
      ...(byMtu.size > 0 ? [{ label: 'synack, no checksums', color: SYNACK_NOCSUM }] : []),
      { label: 'kernel loopback (node:net)', color: KERNEL },
    ],
    groups: mtuRows.map((r, i) => ({
      label: String(mtus[i]),
      values: [r.value, ...(byMtu.size > 0 ? [byMtu.get(mtus[i]!) ?? null] : []), r.reference?.value ?? null],
    })),
  };
  const connRows = results.filter((r) => /^throughput conns=\d+$/.test(r.name));
  const connPanel: ChartPanel = {
    title: 'Bulk throughput against parallel connections (MTU 65535)',
    axis: 'connections',
    unit: 'Gbit/s',
    series: [
      { label: 'synack', color: SYNACK },
      { label: 'kernel loopback (node:net)', color: KERNEL },
    ],
    groups: connRows.map((r) => ({ label: r.name.slice('throughput conns='.length), values: [r.value, r.reference?.value ?? null] })),
  };
  return [mtuPanel, connPanel];
}

function panel(p: ChartPanel, x0: number, y0: number, w: number, h: number): string[] {
  const out: string[] = [];
  const left = x0 + 56;
  const right = x0 + w - 12;
  const top = y0 + 56;
  const bottom = y0 + h - 84;
  out.push(`<text x="${px(x0 + w / 2)}" y="${px(y0 + 22)}" text-anchor="middle" class="panel-title">${esc(p.title)}</text>`);
  const values = p.groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v));
  if (p.groups.length === 0 || values.length === 0) {
    out.push(`<rect x="${px(left)}" y="${px(top)}" width="${px(right - left)}" height="${px(bottom - top)}" class="frame"/>`);
    out.push(`<text x="${px((left + right) / 2)}" y="${px((top + bottom) / 2)}" text-anchor="middle" class="note">not measured in this run</text>`);
    return out;
  }
  const step = niceStep(Math.max(...values));
  const ymax = Math.ceil(Math.max(...values) / step) * step || step;
  const y = (v: number): number => bottom - (v / ymax) * (bottom - top);
  // As many decimals as the step needs (2.5 needs one more than its power of ten).
  const e = Math.floor(Math.log10(step));
  const decimals = Math.max(0, -e + (Math.round(step / 10 ** e * 10) % 10 !== 0 ? 1 : 0));
  // Grid and y axis.
  for (let v = 0; v <= ymax + step / 2; v += step) {
    out.push(`<line x1="${px(left)}" y1="${px(y(v))}" x2="${px(right)}" y2="${px(y(v))}" class="grid"/>`);
    out.push(`<text x="${px(left - 6)}" y="${px(y(v) + 4)}" text-anchor="end" class="tick">${v.toFixed(decimals)}</text>`);
  }
  out.push(`<text x="${px(x0 + 14)}" y="${px((top + bottom) / 2)}" text-anchor="middle" class="axis" transform="rotate(-90 ${px(x0 + 14)} ${px((top + bottom) / 2)})">${esc(p.unit)}</text>`);
  // Bars.
  const groupW = (right - left) / p.groups.length;
  const barW = Math.min(40, (groupW * 0.8) / p.series.length);
  p.groups.forEach((g, gi) => {
    const cx = left + groupW * (gi + 0.5);
    const start = cx - (barW * p.series.length) / 2;
    g.values.forEach((v, si) => {
      if (v === null || !Number.isFinite(v)) return;
      const bx = start + si * barW;
      const s = p.series[si]!;
      out.push(`<rect x="${px(bx + 1)}" y="${px(y(v))}" width="${px(barW - 2)}" height="${px(bottom - y(v))}" fill="${s.color}"><title>${esc(`${s.label}, ${p.axis} ${g.label}: ${fmt(v)} ${p.unit}`)}</title></rect>`);
      out.push(`<text x="${px(bx + barW / 2)}" y="${px(y(v) - 4)}" text-anchor="middle" class="value">${fmt(v)}</text>`);
    });
    out.push(`<text x="${px(cx)}" y="${px(bottom + 18)}" text-anchor="middle" class="tick">${esc(g.label)}</text>`);
  });
  out.push(`<line x1="${px(left)}" y1="${px(bottom)}" x2="${px(right)}" y2="${px(bottom)}" class="axis-line"/>`);
  out.push(`<text x="${px((left + right) / 2)}" y="${px(bottom + 38)}" text-anchor="middle" class="axis">${esc(p.axis)}</text>`);
  // Legend.
  p.series.forEach((s, si) => {
    const ly = bottom + 56 + si * 0;
    const lx = left + si * ((right - left) / p.series.length);
    out.push(`<rect x="${px(lx)}" y="${px(ly - 10)}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${px(lx + 18)}" y="${px(ly)}" class="legend">${esc(s.label)}</text>`);
  });
  return out;
}

/** The whole document. `subtitle` says what was run (e.g. "synack bench --quick"). */
export function renderChart(results: readonly BenchResult[], subtitle: string): string {
  const panels = chartPanels(results);
  const pw = 520;
  const ph = 400;
  const width = pw * panels.length;
  const height = ph + 50;
  const body: string[] = [];
  panels.forEach((p, i) => body.push(...panel(p, i * pw, 50, pw, ph)));
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    `<title>synack bench: throughput against MTU and connection count</title>`,
    `<style>`,
    `.title{font-size:18px;font-weight:600;fill:#111827}`,
    `.subtitle{font-size:12px;fill:#4b5563}`,
    `.panel-title{font-size:14px;font-weight:600;fill:#111827}`,
    `.tick{font-size:11px;fill:#374151}`,
    `.value{font-size:10px;fill:#111827}`,
    `.axis{font-size:12px;fill:#374151}`,
    `.legend{font-size:11px;fill:#111827}`,
    `.note{font-size:12px;fill:#6b7280}`,
    `.grid{stroke:#e5e7eb;stroke-width:1}`,
    `.axis-line{stroke:#374151;stroke-width:1}`,
    `.frame{fill:none;stroke:#e5e7eb}`,
    `</style>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" class="title">synack beside the Linux kernel</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" class="subtitle">${esc(subtitle)}</text>`,
    ...body,
    `</svg>`,
    '',
  ].join('\n');
}
