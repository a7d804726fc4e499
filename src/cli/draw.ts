/**
 * `synack draw CAPTURE`: the ladder diagram of a TCP connection in any pcap or pcapng capture, with
 * each side's states inferred from the segments (src/diagram/infer.ts explains how), as text, SVG,
 * HTML, Mermaid or JSON (CONTRACT.md, CLI and JSON shapes). Exit 0 drawn, 1 the file cannot be read
 * or holds no TCP, 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { renderText } from '../diagram/text.js';
import { renderSvg } from '../diagram/svg.js';
import { renderHtml } from '../diagram/html.js';
import { renderMermaid } from '../diagram/mermaid.js';
import { defaultStream, extractTcp, inferStream, splitStreams, type StreamSummary } from '../diagram/infer.js';
import type { DiagramModel } from '../diagram/model.js';
import { CaptureError, readCapture, type CaptureReadResult } from '../trace/capture.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, numberOption, parseCommandArgs, type CliIO } from './io.js';
import { TEXT_OPTIONS, parseTextValues, textRenderOptions, type TextFlags } from './text-options.js';

const FORMATS = ['text', 'svg', 'html', 'json', 'mermaid'] as const;
type Format = (typeof FORMATS)[number];

/** Rows of the stderr hint shown when a capture holds several streams (all of them with --list). */
export const STREAM_HINT_ROWS = 20;

export const DRAW_HELP = `Usage: synack draw CAPTURE [options]

Draws the ladder diagram of a TCP connection found in a pcap or pcapng capture (tcpdump, Wireshark,
dumpcap, synack demo --pcap), with each side's states inferred from the segments it sent and received
(RFC 9293 Figure 5) and analysis marks (retransmission, dup ACK, zero window…). Link types: Ethernet
(with VLAN tags), raw IP, Linux cooked (SLL, SLL2: tcpdump -i any), BSD loopback (NULL, LOOP).

Inferred, not observed: a change made on receipt is timed when the causing segment passed the
capture point; TIME-WAIT's expiry (2×MSL = 60 s later) sends nothing and is shown as assumed, and so
is a state the capture does not show (it started late, or missed one direction). Checksums are not
verified (a capture at a sender with checksum offload has them unset). Packets left out (not IP,
not TCP, fragments…) are counted in a warning on stderr and in the JSON's capture.warnings.

Options:
  --format F       text (default), svg, html, json or mermaid
  -o, --output F   write the diagram to F instead of stdout
  --stream N       which TCP stream to draw (0-based, see --list); default: the first stream that
                   has a SYN, else the first (when there are several, the first ${STREAM_HINT_ROWS} rows of the
                   list go to stderr)
  --list           list the TCP streams (with --json: as JSON)
  --json           same as --format json (with --list: the list as JSON)
  --explain        text: print the cause and RFC rule of every inferred state change
  --color          colour even when stdout is not a terminal
  --no-color       never colour (also: NO_COLOR set in the environment)
  --ascii          ASCII arrows (-> <-) instead of box drawing
  --width N        text: columns to fit the diagram in (default: the terminal's, else 100)
  -h, --help       this help
`;

export interface DrawArgs extends TextFlags {
  help: boolean;
  file: string | undefined;
  format: Format;
  output: string | undefined;
  stream: number | undefined;
  list: boolean;
  json: boolean;
}

/** Parse `synack draw` arguments; throws UsageError with a one-line reason. */
export function parseDrawArgs(args: string[]): DrawArgs {
  const parsed = parseCommandArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      output: { type: 'string', short: 'o' },
      stream: { type: 'string' },
      list: { type: 'boolean' },
      json: { type: 'boolean' },
      ...TEXT_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  const v = parsed.values;
  const help = v.help === true;
  if (!help && parsed.positionals.length === 0) throw new UsageError('missing CAPTURE: the pcap or pcapng file to draw');
  if (parsed.positionals.length > 1) throw new UsageError(`one capture at a time (got ${parsed.positionals.length}: ${parsed.positionals.join(' ')})`);
  const format = v.format ?? (v.json === true ? 'json' : 'text');
  if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`unknown --format '${format}' (valid: ${FORMATS.join(', ')})`);
  if (v.json === true && format !== 'json') throw new UsageError(`--json and --format ${format} contradict each other`);
  const text = parseTextValues(v);
  if (v.list === true && v.stream !== undefined) throw new UsageError('--list lists every stream: it takes no --stream');
  const stream = numberOption('stream', v.stream, (n) => Number.isInteger(n) && n >= 0, 'a stream number (0, 1, … see --list)');
  return {
    help,
    file: parsed.positionals[0],
    format: format as Format,
    output: v.output,
    stream,
    list: v.list === true,
    json: v.json === true || format === 'json',
    ...text,
  };
}

/** A failure reading or understanding the capture: exit 1 with this one line. */
class DrawFailure extends Error {}

/** Epoch seconds as an ISO time to the microsecond; '?' when it is no date (not finite, or past ±year 275760). */
export function fmtTime(epochSeconds: number): string {
  if (!Number.isFinite(epochSeconds)) return '?';
  // Round once, to whole microseconds, then split: rounding the fraction on its own would turn
  // …:20.9999997 into …:20.000000 (the carry lost).
  const us = Math.round(epochSeconds * 1e6);
  const sec = Math.floor(us / 1e6);
  const frac = us - sec * 1e6;
  const date = new Date(sec * 1000);
  if (Number.isNaN(date.getTime())) return '?';
  return `${date.toISOString().slice(0, 19)}.${String(frac).padStart(6, '0')}Z`;
}

/**
 * The streams table of `--list` (and of the stderr hint, with `maxRows`: the first rows, then a line
 * saying how many more --list shows).
 */
export function formatStreamList(streams: StreamSummary[], maxRows = Infinity): string {
  // Loops, not Math.min(...array): a spread of 100 000+ values overflows the call stack.
  let t0 = streams.length > 0 ? streams[0]!.first : 0;
  for (const s of streams) if (s.first < t0) t0 = s.first;
  const shown = streams.length > maxRows ? streams.slice(0, maxRows) : streams;
  const rows = shown.map((s) => {
    const flags = [s.syn ? 'SYN' : '', s.fin ? 'FIN' : '', s.rst ? 'RST' : ''].filter((f) => f !== '').join(',') || '-';
    return [
      String(s.index),
      s.a.name,
      s.b.name,
      (s.first - t0).toFixed(3),
      (s.last - s.first).toFixed(3),
      String(s.packets),
      String(s.a.bytes),
      String(s.b.bytes),
      flags,
    ];
  });
  const head = ['#', 'A (opens)', 'B', 'start (s)', 'duration (s)', 'packets', 'bytes A→B', 'bytes B→A', 'seen'];
  const all = [head, ...rows];
  const widths = head.map((h) => h.length);
  for (const r of rows) for (let c = 0; c < r.length; c++) if (r[c]!.length > widths[c]!) widths[c] = r[c]!.length;
  const lines = all.map((r) => r.map((cell, c) => (c === 1 || c === 2 || c === 8 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
  if (shown.length < streams.length) lines.push(`… and ${streams.length - shown.length} more (see --list)`);
  return lines.join('\n');
}

function loadCapture(file: string): CaptureReadResult {
  let data: Uint8Array;
  try {
    data = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : e instanceof Error ? e.message : String(e);
    throw new DrawFailure(`cannot read ${file}: ${why}`);
  }
  try {
    return readCapture(data);
  } catch (e) {
    if (e instanceof CaptureError) throw new DrawFailure(`${file}: ${e.message}`);
    throw e;
  }
}

function skippedText(skipped: Record<string, number>): string {
  const parts = Object.entries(skipped).map(([why, n]) => `${n} ${why}`);
  return parts.length > 0 ? ` (skipped: ${parts.join(', ')})` : '';
}

/** The reader's and the TCP extractor's skipped packets, as one warning line (undefined when none). */
function skippedWarning(skipped: Record<string, number>): string | undefined {
  const entries = Object.entries(skipped);
  if (entries.length === 0) return undefined;
  const total = entries.reduce((n, [, k]) => n + k, 0);
  return `${total} packet${total === 1 ? '' : 's'} not drawn: ${entries.map(([why, n]) => `${n} ${why}`).join(', ')}`;
}

/** `synack draw …`; returns the exit status. */
export function drawCommand(args: string[], io: CliIO): number {
  let a: DrawArgs;
  try {
    a = parseDrawArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack draw: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (a.help) {
    io.stdout(DRAW_HELP);
    return EXIT_OK;
  }
  const file = a.file!;
  try {
    const cap = loadCapture(file);
    const { segments, skipped } = extractTcp(cap.packets);
    const allSkipped = { ...cap.skipped };
    for (const [why, n] of Object.entries(skipped)) allSkipped[why] = (allSkipped[why] ?? 0) + n;
    // Packets left out are said whenever there are any (a capture at a host with checksum offload
    // once lost that host's packets silently): on stderr, and in the JSON's capture.warnings.
    // (With no TCP at all, the one message that says so lists them instead.)
    const streams = splitStreams(segments);
    const summaries = streams.map((s) => s.summary);
    const warnings = [...cap.warnings];
    const notDrawn = skippedWarning(allSkipped);
    if (notDrawn !== undefined) warnings.push(notDrawn);
    for (const w of streams.length > 0 ? warnings : cap.warnings) io.stderr(`synack draw: warning: ${file}: ${w}\n`);
    if (a.list) {
      if (a.json) io.stdout(`${JSON.stringify({ file, format: cap.format, records: cap.records, warnings, streams: summaries })}\n`);
      else if (summaries.length === 0) io.stdout(`no TCP streams in ${file}${skippedText(allSkipped)}\n`);
      else io.stdout(`${formatStreamList(summaries)}\n`);
      return EXIT_OK;
    }
    if (streams.length === 0) {
      throw new DrawFailure(`${file}: no TCP segments in ${cap.records} record${cap.records === 1 ? '' : 's'}${skippedText(allSkipped)}`);
    }
    if (a.stream !== undefined && a.stream >= streams.length) {
      io.stderr(`synack draw: no stream ${a.stream}: ${file} has ${streams.length} TCP stream${streams.length === 1 ? '' : 's'} (0..${streams.length - 1}, see --list)\n`);
      return EXIT_USAGE;
    }
    const index = a.stream ?? defaultStream(summaries);
    if (a.stream === undefined && streams.length > 1) {
      io.stderr(`synack draw: ${file} has ${streams.length} TCP streams; drawing stream ${index} (choose with --stream N):\n${formatStreamList(summaries, STREAM_HINT_ROWS)}\n`);
    }
    const chosen = streams[index]!;
    const title = `${basename(file)}, stream ${index}: ${chosen.summary.a.name} ↔ ${chosen.summary.b.name}`;
    const model = inferStream(chosen, { title });
    const out = render(a, io, model, {
      file,
      format: cap.format,
      stream: index,
      streams: streams.length,
      start: chosen.summary.first,
      warnings,
      skipped: allSkipped,
    });
    if (a.output !== undefined) {
      try {
        io.writeFile(a.output, new TextEncoder().encode(out));
      } catch (e) {
        throw new DrawFailure(`cannot write ${a.output}: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else {
      io.stdout(out);
    }
    return EXIT_OK;
  } catch (e) {
    if (e instanceof DrawFailure) {
      io.stderr(`synack draw: ${e.message}\n`);
      return EXIT_FAILED;
    }
    if (e instanceof UsageError) {
      io.stderr(`synack draw: ${e.message}\n`);
      return EXIT_USAGE;
    }
    // Anything else is a bug; still one line, never a stack trace.
    io.stderr(`synack draw: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILED;
  }
}

interface CaptureInfo {
  file: string;
  format: 'pcap' | 'pcapng';
  stream: number;
  streams: number;
  /** Epoch seconds of the stream's first segment (the diagram's t = 0). */
  start: number;
  /** The reader's warnings, and the packets not drawn (when any). */
  warnings: string[];
  /** Packets not drawn, by reason (records without IP, non-TCP, unparseable…). */
  skipped: Record<string, number>;
}

function render(a: DrawArgs, io: CliIO, model: DiagramModel, info: CaptureInfo): string {
  switch (a.format) {
    case 'json':
      return `${JSON.stringify({ ...model, capture: { ...info, startIso: fmtTime(info.start) } })}\n`;
    case 'svg':
      return `${renderSvg(model)}\n`;
    case 'html':
      return renderHtml(model);
    case 'mermaid':
      return `${renderMermaid(model)}\n`;
    case 'text': {
      const lines = [
        `${model.title ?? ''} — states inferred from the capture (t = 0 at ${fmtTime(info.start)})`,
        '',
        renderText(model, textRenderOptions(a, io, a.output !== undefined)),
      ];
      const marked = model.segments.filter((s) => s.marks !== undefined && s.marks.length > 0);
      if (marked.length > 0) {
        const counts = new Map<string, number>();
        for (const s of marked) for (const m of s.marks!) counts.set(m, (counts.get(m) ?? 0) + 1);
        lines.push('', `analysis: ${[...counts].map(([m, k]) => `${k} ${m}`).join(', ')}`);
      }
      const assumed = model.endpoints.flatMap((e) => e.states.filter((s) => s.assumed === true).map((s) => `${e.name} ${s.state}`));
      if (assumed.length > 0) lines.push(`assumed (no segment shows it): ${assumed.join('; ')}`);
      return `${lines.join('\n')}\n`;
    }
  }
}
