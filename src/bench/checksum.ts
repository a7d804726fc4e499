/**
 * Checksums on memory links. Linux loopback skips TCP/IP checksums (the packets never leave memory:
 * CHECKSUM_PARTIAL/UNNECESSARY), and issue 7 allows memory links to do the same, provided both
 * figures are reported. Each variant here is one way of running the synack side of a benchmark.
 */
import type { MemoryLinkOptions } from '../link/memory.js';
import type { StackOptions } from '../stack/options.js';

export interface ChecksumVariant {
  /** Appended to the result name ('' for the default). */
  suffix: string;
  link: MemoryLinkOptions;
  stack: Partial<StackOptions>;
  /** Whether checksums are computed and verified. */
  checksums: boolean;
}

/**
 * With checksums (the default, what every other link does) and without (`checksumOffload` on the
 * MemoryLink: the stacks neither compute nor verify them, as over Linux loopback).
 */
export function checksumVariants(): ChecksumVariant[] {
  return [
    { suffix: '', link: {}, stack: {}, checksums: true },
    { suffix: ' no-checksum', link: { checksumOffload: true }, stack: {}, checksums: false },
  ];
}
