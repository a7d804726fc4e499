/**
 * The text-renderer flags (`--explain`, `--color`, `--no-color`, `--ascii`, `--width`) that `demo`
 * and `draw` share: their parseArgs table, their check, and how they become renderText options
 * given the terminal (src/diagram/text.ts).
 */
import type { TextOptions } from '../diagram/text.js';
import { UsageError, numberOption, type CliIO } from './io.js';

/** The parseArgs option table the commands spread into theirs. */
export const TEXT_OPTIONS = {
  explain: { type: 'boolean' },
  color: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  ascii: { type: 'boolean' },
  width: { type: 'string' },
} as const;

/** The values parseArgs gives for TEXT_OPTIONS. */
export interface TextValues {
  explain?: boolean | undefined;
  color?: boolean | undefined;
  'no-color'?: boolean | undefined;
  ascii?: boolean | undefined;
  width?: string | undefined;
}

/** The flags, checked: `color` and `width` undefined when not given (the terminal decides). */
export interface TextFlags {
  explain: boolean;
  color: boolean | undefined;
  ascii: boolean;
  width: number | undefined;
}

/** Checks the text flags; throws UsageError with a one-line reason. */
export function parseTextValues(v: TextValues): TextFlags {
  if (v.color === true && v['no-color'] === true) throw new UsageError('--color and --no-color contradict each other');
  const width = numberOption('width', v.width, (n) => Number.isInteger(n) && n >= 40 && n <= 1000, 'an integer from 40 to 1000');
  return {
    explain: v.explain === true,
    color: v.color === true ? true : v['no-color'] === true ? false : undefined,
    ascii: v.ascii === true,
    width,
  };
}

/**
 * renderText options from the flags: for stdout, colour and width default from the terminal (no
 * colour when NO_COLOR is set, https://no-color.org); for a file (`toFile`), no colour unless
 * --color and 100 columns unless --width.
 */
export function textRenderOptions(f: TextFlags, io: CliIO, toFile = false): TextOptions {
  const noColor = io.env['NO_COLOR'] !== undefined && io.env['NO_COLOR'] !== '';
  const color = toFile ? f.color === true : f.color ?? (io.isTTY && !noColor);
  const width = f.width ?? (toFile ? undefined : io.columns) ?? 100;
  return { width, color, explain: f.explain, ascii: f.ascii };
}
