/**
 * `synack demo`: two stacks in one process over a MemoryLink, in virtual time, and the ladder
 * diagram of what they did (CONTRACT.md, CLI). Exit 0 when the scenario's checks pass, 1 when one
 * fails, 2 on bad usage.
 */
import { renderHtml } from '../diagram/html.js';
import { renderMermaid } from '../diagram/mermaid.js';
import { renderSvg } from '../diagram/svg.js';
import { renderText } from '../diagram/text.js';
import {
  SCENARIOS,
  SCENARIO_DESCRIPTIONS,
  isScenarioName,
  runScenario,
  type ScenarioOptions,
  type ScenarioResult,
} from '../demo/scenarios.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, numberOption, parseCommandArgs, type CliIO } from './io.js';
import { IMPAIR_OPTIONS, parseImpairValues } from './impair-options.js';
import { TEXT_OPTIONS, parseTextValues, textRenderOptions, type TextFlags } from './text-options.js';

export const DEMO_HELP = `Usage: synack demo [options]

Two TCP stacks in one process, joined by an in-memory link, in virtual time (no root, no network).
Prints the ladder diagram of every segment and both sides' states, then checks that what happened
is what RFC 9293 says should happen (exit 1 if not).

Options:
  --scenario S     which exchange to run (default handshake):
${SCENARIOS.map((s) => `                     ${s.padEnd(19)}${SCENARIO_DESCRIPTIONS[s]}`).join('\n')}
  --seed N         seed for ISNs, ports, impairments and data (default 1)
  --loss P         packet loss probability per direction, 0..1 (default 0)
  --delay MS       one-way link delay in ms (default 10)
  --bytes N        bytes to send in 'transfer' (default 1048576) and 'zero-window' (default 16384)
  --reorder P      reordering probability (default 0)
  --duplicate P    duplication probability (default 0)
  --corrupt P      bit-flip probability (default 0)
  --bandwidth BPS  link rate in bit/s (default unlimited)
  --ipv6           connect over IPv6 (fd00::1 → fd00::2)
  --pcap F         write every packet either stack sent to F (pcap, LINKTYPE_RAW)
  --svg F          write the ladder diagram to F as a standalone SVG
  --html F         write F: one self-contained HTML page (hover an arrow for its header,
                   ← → to step through time with each side's state and the RFC rule)
  --mermaid F      write the ladder as a Mermaid sequenceDiagram (for Markdown)
  --json           print the diagram model as JSON on stdout, nothing else
  --explain        print the cause and RFC rule of every state change
  --color          colour even when stdout is not a terminal
  --no-color       never colour (also: NO_COLOR set in the environment)
  --ascii          ASCII arrows (-> <-) instead of box drawing
  --width N        columns to fit the diagram in (default: the terminal's, else 100)
  -h, --help       this help
`;

/** Parse `synack demo` arguments; throws UsageError with a one-line reason. */
export function parseDemoArgs(args: string[]): TextFlags & {
  help: boolean;
  scenario: string;
  options: ScenarioOptions;
  pcap: string | undefined;
  svg: string | undefined;
  html: string | undefined;
  mermaid: string | undefined;
  json: boolean;
} {
  const parsed = parseCommandArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      scenario: { type: 'string' },
      ...IMPAIR_OPTIONS,
      bytes: { type: 'string' },
      ipv6: { type: 'boolean' },
      pcap: { type: 'string' },
      svg: { type: 'string' },
      html: { type: 'string' },
      mermaid: { type: 'string' },
      json: { type: 'boolean' },
      ...TEXT_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  const v = parsed.values;
  for (const k of ['pcap', 'svg', 'html', 'mermaid'] as const) {
    if (v[k] === '') throw new UsageError(`--${k} needs a file name`);
  }
  const scenario = v.scenario ?? 'handshake';
  if (!v.help && !isScenarioName(scenario)) {
    throw new UsageError(`unknown scenario '${scenario}' (valid: ${SCENARIOS.join(', ')})`);
  }
  const text = parseTextValues(v);
  const options: ScenarioOptions = {};
  const impairment = parseImpairValues(v);
  const bytes = numberOption('bytes', v.bytes, (n) => Number.isInteger(n) && n >= 1 && n <= 1 << 30, 'an integer from 1 to 1073741824');
  if (impairment.seed !== undefined) options.seed = impairment.seed;
  if (impairment.lossRate !== undefined) options.loss = impairment.lossRate;
  if (impairment.delayMs !== undefined) options.delayMs = impairment.delayMs;
  if (bytes !== undefined) options.bytes = bytes;
  if (impairment.reorderRate !== undefined) options.reorder = impairment.reorderRate;
  if (impairment.duplicateRate !== undefined) options.duplicate = impairment.duplicateRate;
  if (impairment.corruptRate !== undefined) options.corrupt = impairment.corruptRate;
  if (impairment.bandwidthBps !== undefined) options.bandwidthBps = impairment.bandwidthBps;
  if (v.ipv6 === true) options.ipv6 = true;
  return {
    help: v.help === true,
    scenario,
    options,
    pcap: v.pcap,
    svg: v.svg,
    html: v.html,
    mermaid: v.mermaid,
    json: v.json === true,
    ...text,
  };
}

/** Block-element charts (▁…█) and the ellipsis in ASCII: a ramp of characters, and '..'. */
function toAscii(text: string): string {
  const ramp = '_.-:=+*#';
  return text.replace(/[▁-█]/g, (c) => ramp[c.charCodeAt(0) - 0x2581] ?? '#').replace(/…/g, '..');
}

/** The summary under the diagram: each check, the numbers, the verdict. */
export function formatSummary(result: ScenarioResult, ascii: boolean): string {
  const s = result.summary;
  const yes = ascii ? 'ok  ' : '✓ ';
  const no = ascii ? 'FAIL' : '✗ ';
  const lines = [`${s.scenario}: ${s.description}`];
  for (const c of s.checks) {
    lines.push(`  ${c.ok ? yes : no} ${c.what}${c.detail !== undefined ? ` (${c.detail})` : ''}`);
  }
  for (const [k, val] of Object.entries(s.stats)) lines.push(`  ${k}: ${ascii ? toAscii(String(val)) : val}`);
  const failed = s.checks.filter((c) => !c.ok).length;
  lines.push(
    s.ok
      ? `ok: ${s.checks.length} checks passed in ${s.durationS.toFixed(3)} s of virtual time`
      : `FAILED: ${failed} of ${s.checks.length} checks failed`,
  );
  return lines.join('\n');
}

/** `synack demo …`; returns the exit status. */
export function demoCommand(args: string[], io: CliIO): number {
  let a;
  try {
    a = parseDemoArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack demo: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (a.help) {
    io.stdout(DEMO_HELP);
    return EXIT_OK;
  }
  if (!isScenarioName(a.scenario)) return EXIT_USAGE; // parseDemoArgs already refused it
  let result: ScenarioResult;
  try {
    result = runScenario(a.scenario, a.options);
  } catch (e) {
    io.stderr(`synack demo: ${a.scenario} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    return EXIT_FAILED;
  }
  const title = `synack demo --scenario ${a.scenario}: ${SCENARIO_DESCRIPTIONS[a.scenario]}`;
  const enc = new TextEncoder();
  const outputs: Array<[string | undefined, () => Uint8Array]> = [
    [a.pcap, () => result.pcap],
    [a.svg, () => enc.encode(renderSvg({ ...result.model, title }))],
    [a.html, () => enc.encode(renderHtml({ ...result.model, title }))],
    [a.mermaid, () => enc.encode(renderMermaid({ ...result.model, title }))],
  ];
  const written: string[] = [];
  for (const [path, bytes] of outputs) {
    if (path === undefined) continue;
    try {
      io.writeFile(path, bytes());
      written.push(path);
    } catch (e) {
      io.stderr(`synack demo: cannot write ${path}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT_FAILED;
    }
  }
  if (a.json) {
    io.stdout(`${JSON.stringify({ ...result.model, summary: result.summary })}\n`);
  } else {
    io.stdout(`${renderText(result.model, textRenderOptions(a, io))}\n\n`);
    io.stdout(`${formatSummary(result, a.ascii)}\n`);
    if (a.pcap !== undefined) io.stdout(`capture written to ${a.pcap}\n`);
    for (const path of written) if (path !== a.pcap) io.stdout(`diagram written to ${path}\n`);
  }
  return result.summary.ok ? EXIT_OK : EXIT_FAILED;
}
