/**
 * What a command may touch of the outside world, passed in so that tests can run a command in
 * process with captured output instead of spawning `node`.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** stdout is a terminal (colour and width default from it). */
  isTTY: boolean;
  /** Terminal width when known. */
  columns: number | undefined;
  /** stderr is a terminal (progress bars go there only then). */
  stderrIsTTY?: boolean;
  env: Record<string, string | undefined>;
  writeFile(path: string, bytes: Uint8Array): void;
}

export function nodeIO(): CliIO {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
    columns: process.stdout.isTTY === true ? process.stdout.columns : undefined,
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
    writeFile: (path, bytes) => writeFileSync(path, bytes),
  };
}

/** Exit statuses of the contract: 0 success, 1 a failed check or run, 2 bad usage. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Thrown for bad usage; the message is the one-line reason. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** node:util.parseArgs errors are several sentences long; the contract wants one line. */
export function oneLine(message: string): string {
  const first = message.split('\n')[0] ?? message;
  const dot = first.indexOf('. ');
  return dot > 0 ? first.slice(0, dot) : first;
}

/** node:util.parseArgs, its errors turned into a UsageError with a one-line reason. */
export function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    throw new UsageError(oneLine(e instanceof Error ? e.message : String(e)));
  }
}

/** A numeric option's value, checked: undefined when absent, else a number or a one-line UsageError. */
export function numberOption(name: string, value: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new UsageError(`bad --${name} '${value}': expected ${what}`);
  }
  return n;
}

export const isProbability = (n: number): boolean => n >= 0 && n <= 1;
