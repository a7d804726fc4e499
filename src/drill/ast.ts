/**
 * The packetdrill script language as data (see shared/PACKETDRILL.md): what `parse.ts` produces and the
 * runner consumes. Every event keeps its line number so a failure can point at it.
 */

/** When an event happens (packetdrill "time"): absolute seconds, `+` relative to the previous event, `*` any. */
export type TimeSpec =
  | { kind: 'absolute'; t: number }
  | { kind: 'relative'; t: number }
  | { kind: 'any' }
  /** `a~b` / `+a~+b`: anywhere in the window (both ends of the same kind). */
  | { kind: 'range'; relative: boolean; from: number; to: number };

/** An expression in a system call's arguments or result. */
export type Expr =
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  /** A name: SOL_SOCKET, O_NONBLOCK, AF_INET, POLLIN, … */
  | { t: 'sym'; v: string }
  /** `...`: the default argument. */
  | { t: 'ellipsis' }
  /** `A|B|C` */
  | { t: 'or'; items: Expr[] }
  /** `[1, 2]` */
  | { t: 'list'; items: Expr[] }
  /** `{fd=4, events=POLLIN}` or `{1, 0}`: fields by name (when written `name=`) and in order. */
  | { t: 'struct'; fields: Array<{ name: string | null; value: Expr }> }
  /** `htons(8080)`, `inet_addr("192.0.2.1")` */
  | { t: 'call'; name: string; args: Expr[] }
  | { t: 'null' };

/** A TCP option as written in a segment line. */
export type DrillOption =
  | { kind: 'mss'; value: number }
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackOK' }
  | { kind: 'sack'; blocks: Array<[number, number]> }
  | { kind: 'TS'; val: number; ecr: number }
  /** Anything else (e.g. `FO`, `md5`, `exp`): kept as text; a runner may reject the script. */
  | { kind: 'other'; text: string };

export interface SegmentEvent {
  kind: 'segment';
  line: number;
  time: TimeSpec;
  /** `<` injected into the stack, `>` expected from it. */
  direction: '<' | '>';
  /** Flag letters as written: any of S F R P . U E W (`.` is ACK). */
  flags: string;
  /** START:END(LEN). */
  start: number;
  end: number;
  length: number;
  ack?: number;
  win?: number;
  urg?: number;
  /** Options as written; `'any'` for `<...>` (not checked); undefined when none were written. */
  options?: DrillOption[] | 'any';
}

export interface SyscallEvent {
  kind: 'syscall';
  line: number;
  time: TimeSpec;
  /**
   * For a blocking call `start...end`: when it returns. `absolute` only when both ends are absolute
   * (`0...0.2`); otherwise `relative` means seconds after this call's own start (parse.ts converts
   * packetdrill's `+S...E`, whose E counts from the previous event like S, to E−S).
   */
  end?: TimeSpec;
  name: string;
  args: Expr[];
  /** The expected result (usually a number; `-1` with `errno`). */
  result: Expr;
  errno?: string;
  /** The `(text)` after the errno name, if any. */
  errnoText?: string;
  /** A `(text)` after a result with no errno, e.g. `fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)`: not checked. */
  note?: string;
}

/** `` `shell command` ``: not run; reported as ignored. */
export interface CommandEvent {
  kind: 'command';
  line: number;
  time: TimeSpec;
  text: string;
}

/** `%{ python }%`: the runner understands `assert tcpi_X OP Y [and …]`; the rest is skipped. */
export interface CodeEvent {
  kind: 'code';
  line: number;
  time: TimeSpec;
  text: string;
}

/** A line packetdrill accepts that synack does not model (UDP, ICMP, …): the script is skipped. */
export interface UnsupportedEvent {
  kind: 'unsupported';
  line: number;
  time: TimeSpec;
  text: string;
  reason: string;
}

export type DrillEvent = SegmentEvent | SyscallEvent | CommandEvent | CodeEvent | UnsupportedEvent;

export interface DrillScript {
  /** `--name=value` lines at the top (and command-line style options), by name without dashes. */
  options: Record<string, string>;
  events: DrillEvent[];
  /** Non-fatal remarks (unknown options, …) with their line. */
  warnings: Array<{ line: number; message: string }>;
}

/** A script the parser cannot read: the message names the line (1-based) and column. */
export class DrillParseError extends Error {
  constructor(readonly line: number, readonly column: number, message: string) {
    super(`line ${line}:${column}: ${message}`);
    this.name = 'DrillParseError';
  }
}
