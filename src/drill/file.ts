/**
 * One script file, read and run: the unit both the CLI and its worker threads work on.
 * Core module: the text comes in, the result goes out; reading the file is the caller's job.
 */
import { DrillParseError } from './ast.js';
import { parseScript } from './parse.js';
import { runScript, type DrillOutcome } from './runner.js';

/** A script's outcome (see `DrillOutcome`) and the file it came from. */
export type DrillFileResult = DrillOutcome & { file: string };

export function runDrillFile(file: string, text: string): DrillFileResult {
  let script;
  try {
    script = parseScript(text);
  } catch (e) {
    if (e instanceof DrillParseError) {
      return { file, ok: false, error: `cannot read the script: ${e.message}`, line: e.line, warnings: [], durationMs: 0 };
    }
    return { file, ok: false, error: `parser error: ${(e as Error).message}`, warnings: [], durationMs: 0 };
  }
  const r = runScript(script);
  return { file, ...r };
}
