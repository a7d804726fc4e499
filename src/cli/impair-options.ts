/**
 * The impairment flags (`--loss`, `--delay`, `--reorder`, `--duplicate`, `--corrupt`, `--bandwidth`,
 * `--seed`): `demo` gives them to its MemoryLink, `serve` and `get` put them around the TUN device
 * with `impair()` (src/link/impair.ts), in both directions.
 */
import type { ImpairOptions } from '../link/impair.js';
import { isProbability, numberOption } from './io.js';

/** The parseArgs option table the commands spread into theirs. */
export const IMPAIR_OPTIONS = {
  seed: { type: 'string' },
  loss: { type: 'string' },
  delay: { type: 'string' },
  reorder: { type: 'string' },
  duplicate: { type: 'string' },
  corrupt: { type: 'string' },
  bandwidth: { type: 'string' },
} as const;

/** The values parseArgs gives for IMPAIR_OPTIONS. */
export interface ImpairValues {
  seed?: string | undefined;
  loss?: string | undefined;
  delay?: string | undefined;
  reorder?: string | undefined;
  duplicate?: string | undefined;
  corrupt?: string | undefined;
  bandwidth?: string | undefined;
}

/** The flags given, checked; absent ones are absent (each command has its own defaults). */
export type Impairment = Pick<ImpairOptions, 'seed' | 'lossRate' | 'delayMs' | 'reorderRate' | 'duplicateRate' | 'corruptRate' | 'bandwidthBps'>;

/** Checks the impairment flags; throws UsageError with a one-line reason. */
export function parseImpairValues(v: ImpairValues): Impairment {
  const out: Impairment = {};
  const set = <K extends keyof Impairment>(key: K, n: number | undefined): void => {
    if (n !== undefined) out[key] = n;
  };
  set('seed', numberOption('seed', v.seed, (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff, 'an integer from 0 to 4294967295'));
  set('lossRate', numberOption('loss', v.loss, isProbability, 'a probability from 0 to 1'));
  set('delayMs', numberOption('delay', v.delay, (n) => n >= 0 && n <= 60_000, 'milliseconds from 0 to 60000'));
  set('reorderRate', numberOption('reorder', v.reorder, isProbability, 'a probability from 0 to 1'));
  set('duplicateRate', numberOption('duplicate', v.duplicate, isProbability, 'a probability from 0 to 1'));
  set('corruptRate', numberOption('corrupt', v.corrupt, isProbability, 'a probability from 0 to 1'));
  set('bandwidthBps', numberOption('bandwidth', v.bandwidth, (n) => n > 0, 'a positive rate in bit/s'));
  return out;
}

/** Whether any flag changes the path (a seed alone does not). */
export function impairs(i: Impairment): boolean {
  return (i.lossRate ?? 0) > 0 || (i.delayMs ?? 0) > 0 || (i.reorderRate ?? 0) > 0 || (i.duplicateRate ?? 0) > 0 ||
    (i.corruptRate ?? 0) > 0 || (i.bandwidthBps ?? Infinity) !== Infinity;
}

/** "2% loss, 20 ms delay, 5% reordering, seed 1": for the line a command prints when it starts. */
export function describeImpairment(i: Impairment): string {
  const pct = (p: number): string => `${+(p * 100).toFixed(3)}%`;
  const parts: string[] = [];
  if ((i.lossRate ?? 0) > 0) parts.push(`${pct(i.lossRate!)} loss`);
  if ((i.delayMs ?? 0) > 0) parts.push(`${i.delayMs} ms delay`);
  if ((i.reorderRate ?? 0) > 0) parts.push(`${pct(i.reorderRate!)} reordering`);
  if ((i.duplicateRate ?? 0) > 0) parts.push(`${pct(i.duplicateRate!)} duplication`);
  if ((i.corruptRate ?? 0) > 0) parts.push(`${pct(i.corruptRate!)} corruption`);
  if ((i.bandwidthBps ?? Infinity) !== Infinity) parts.push(`${i.bandwidthBps} bit/s`);
  parts.push(`seed ${i.seed ?? 1}`);
  return parts.join(', ');
}
