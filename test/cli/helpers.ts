/** Run a command in process with captured output. */
import type { CliIO } from '../../src/cli/io.js';

export interface Captured {
  io: CliIO;
  out: () => string;
  err: () => string;
  files: Map<string, Uint8Array>;
}

export function capture(opts: { isTTY?: boolean; columns?: number; env?: Record<string, string> } = {}): Captured {
  let out = '';
  let err = '';
  const files = new Map<string, Uint8Array>();
  return {
    io: {
      stdout: (t) => void (out += t),
      stderr: (t) => void (err += t),
      isTTY: opts.isTTY ?? false,
      columns: opts.columns,
      env: opts.env ?? {},
      writeFile: (p, b) => void files.set(p, b),
    },
    out: () => out,
    err: () => err,
    files,
  };
}
