/**
 * The packetdrill script parser: text in, `DrillScript` out (see shared/PACKETDRILL.md and ast.ts).
 *
 * Shape: a lazy tokenizer that the parser drives, and recursive descent over it, following the grammar
 * of packetdrill's own parser.y (google/packetdrill, also used by Linux's selftests and FreeBSD's fork):
 *
 *   script  := option* event*
 *   option  := --NAME[=VALUE]
 *   event   := TIME (packet | syscall | `command` | %{code}%)  |  `command`  |  %{code}%
 *   TIME    := N | +N | * | N~N | +N~+N                         (N: decimal seconds, e.g. 0, .1, 1.250)
 *   packet  := (< | >) ['[' ip-info ']'] FLAGS START:END(LEN) {ack N | win N | urg N} ['<' options '>']
 *   syscall := ['...' ['+']N] NAME '(' [expr {, expr}] ')' '=' expr [ERRNO] ['(' note ')']
 *
 * packetdrill's grammar is token-based; this one is too, except that an event must start on a new line
 * (every public script writes one event a line, and it lets errors point at the stray token).
 * Everything the parser cannot read is a `DrillParseError` naming the 1-based line and column; nothing
 * else is ever thrown, and every loop consumes input, so no input hangs it.
 */

import {
  DrillParseError,
  type DrillEvent,
  type DrillOption,
  type DrillScript,
  type Expr,
  type SegmentEvent,
  type TimeSpec,
} from './ast.js';

/** Nesting deeper than this in `[…]`/`{…}`/calls is refused, so recursion cannot overflow the stack. */
const MAX_NESTING = 64;

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

/** Letters packetdrill accepts in a TCP flags field (tcp_packet.c): `.` is ACK, E is ECE, W is CWR. */
const FLAG_LETTERS = 'SFRP.UEW';

/** The IP ECN codepoints packetdrill accepts in `[…]` after the direction (parser.y `ip_ecn`). */
const ECN_MARKINGS = new Set(['noecn', 'ect0', 'ect1', 'ect01', 'ce']);

/** Packet kinds other than TCP that packetdrill (or its FreeBSD fork) reads; synack skips the script. */
const OTHER_PACKETS: ReadonlyMap<string, string> = new Map([
  ['udp', 'UDP packets are not modelled by synack drill'],
  ['udplite', 'UDP-Lite packets are not modelled by synack drill'],
  ['icmp', 'ICMP packets are not modelled by synack drill'],
  ['sctp', 'SCTP packets are not modelled by synack drill'],
  ['ipv4', 'encapsulated packets (IP in IP) are not modelled by synack drill'],
  ['ipv6', 'encapsulated packets (IP in IP) are not modelled by synack drill'],
  ['gre', 'encapsulated packets (GRE) are not modelled by synack drill'],
  ['mpls', 'encapsulated packets (MPLS) are not modelled by synack drill'],
]);

/**
 * Options packetdrill's config.c knows (plus `wire_*`). Others are kept in `options` all the same, with
 * a warning: the runner decides what it honours.
 */
const KNOWN_OPTIONS = new Set([
  'ip_version', 'bind_port', 'connect_port', 'local_ip', 'remote_ip', 'gateway_ip', 'netmask_ip',
  'speed', 'mtu', 'init_scripts', 'tolerance_usecs', 'tolerance_percent', 'tcp_ts_tick_usecs',
  'non_fatal', 'verbose', 'debug', 'dry_run', 'define', 'code_command', 'code_format', 'code_sockopt',
  'send_omit_free', 'so_flags', 'is_anyip', 'persistent_tun_dev', 'mss',
]);

type TokenType = 'num' | 'word' | 'str' | 'punct' | 'option' | 'command' | 'code' | 'eof';

interface Token {
  type: TokenType;
  /** As written (for `str`, `command`, `code`: the decoded content; for `option`: the name). */
  text: string;
  /** Offsets of the token in the source. */
  start: number;
  end: number;
  /** A newline (or the start of the script) lies between the previous token and this one. */
  nl: boolean;
  /** `num`: the value. */
  num: number;
  /** `num`: written as a decimal integer (no fraction, no 0x). */
  decimalInt: boolean;
  /** `option`: the value after `=`, or null when none was written. */
  optionValue: string | null;
}

/** Turns offsets into 1-based line and column, for events and errors. */
class Positions {
  private readonly lineStarts: number[] = [0];

  constructor(src: string) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  line(pos: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  column(pos: number): number {
    return pos - this.lineStarts[this.line(pos) - 1]! + 1;
  }
}

/** C's one-letter string escapes. */
const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['n', '\n'], ['t', '\t'], ['r', '\r'], ['a', '\x07'], ['b', '\b'], ['f', '\f'], ['v', '\v'], ['e', '\x1b'],
  ['\\', '\\'], ['"', '"'], ["'", "'"], ['?', '?'],
]);

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function isWordStart(c: string | undefined): boolean {
  return c !== undefined && /^[A-Za-z_]$/.test(c);
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /^[A-Za-z0-9_]$/.test(c);
}

/** How a character appears in a message: printable as itself, anything else as a code point. */
function showChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return code >= 0x21 && code <= 0x7e ? `'${c}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function describe(tok: Token): string {
  switch (tok.type) {
    case 'eof': return 'the end of the script';
    case 'str': return 'a string';
    case 'command': return 'a `command`';
    case 'code': return 'a %{ code }% block';
    case 'option': return `option --${tok.text}`;
    case 'punct': return tok.text.length === 1 ? showChar(tok.text) : `'${tok.text}'`;
    default: return `'${tok.text}'`;
  }
}

/** Microsecond resolution, as packetdrill keeps times; avoids 0.3 - 0.1 = 0.19999999999999998. */
function roundUsecs(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/** The tokenizer. The parser pulls tokens one at a time and may rescan raw text from an offset. */
class Lexer {
  private pos = 0;
  private peeked: Token | null = null;
  /** Nothing was read yet (the first token starts a line). */
  private atStart = true;
  /** Where the last token taken with `next()` ended. */
  prevEnd = 0;

  constructor(readonly src: string, private readonly fail: (pos: number, msg: string) => never) {}

  peek(): Token {
    if (this.peeked === null) this.peeked = this.scan();
    return this.peeked;
  }

  next(): Token {
    const tok = this.peek();
    this.peeked = null;
    this.prevEnd = tok.end;
    return tok;
  }

  /** Continue scanning at `pos` (after the parser read raw text itself). */
  seek(pos: number): void {
    this.pos = pos;
    this.peeked = null;
  }

  /** Skips blanks and comments; true if a newline was among them. */
  private skipSpace(): boolean {
    const src = this.src;
    let nl = false;
    for (;;) {
      const c = src[this.pos];
      if (c === '\n') {
        nl = true;
        this.pos++;
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || (c === '\uFEFF' && this.pos === 0)) {
        this.pos++;
      } else if (c === '/' && src[this.pos + 1] === '/') {
        const eol = src.indexOf('\n', this.pos);
        this.pos = eol < 0 ? src.length : eol;
      } else if (c === '/' && src[this.pos + 1] === '*') {
        const close = src.indexOf('*/', this.pos + 2);
        if (close < 0) this.fail(this.pos, 'unclosed comment: /* with no */ before the end of the script');
        if (src.slice(this.pos, close).includes('\n')) nl = true;
        this.pos = close + 2;
      } else {
        return nl;
      }
    }
  }

  private scan(): Token {
    const nl = this.skipSpace() || this.atStart;
    this.atStart = false;
    const src = this.src;
    const start = this.pos;
    const c = src[start];
    const tok = (type: TokenType, end: number, text = src.slice(start, end)): Token => {
      this.pos = end;
      return { type, text, start, end, nl, num: 0, decimalInt: false, optionValue: null };
    };
    if (c === undefined) return tok('eof', start, '');

    if (isDigit(c) || (c === '.' && isDigit(src[start + 1]))) return this.scanNumber(start, nl);
    if (isWordStart(c)) {
      let end = start + 1;
      while (isWordChar(src[end])) end++;
      return tok('word', end);
    }
    if (c === '"') return this.scanString(start, nl);
    if (c === '`') {
      const close = src.indexOf('`', start + 1);
      if (close < 0) this.fail(start, 'unclosed command: ` with no closing ` before the end of the script');
      return tok('command', close + 1, src.slice(start + 1, close));
    }
    if (c === '%' && src[start + 1] === '{') {
      const close = src.indexOf('}%', start + 2);
      if (close < 0) this.fail(start, 'unclosed code block: %{ with no }% before the end of the script');
      return tok('code', close + 2, src.slice(start + 2, close));
    }
    if (c === '-' && src[start + 1] === '-' && isWordChar(src[start + 2])) return this.scanOption(start, nl);
    if (src.startsWith('...', start)) return tok('punct', start + 3);
    // Anything else is one character of punctuation; the parser says whether it belongs there.
    const cp = src.codePointAt(start) ?? 0;
    return tok('punct', start + (cp > 0xffff ? 2 : 1));
  }

  /** `12`, `0.250`, `.1`, `0x1F`. A `.` must be followed by a digit (so `0...0.1` is 0, ..., 0.1). */
  private scanNumber(start: number, nl: boolean): Token {
    const src = this.src;
    let end = start;
    let decimalInt = true;
    if (src[start] === '0' && (src[start + 1] === 'x' || src[start + 1] === 'X') && isHexDigit(src[start + 2])) {
      end = start + 2;
      while (isHexDigit(src[end])) end++;
      decimalInt = false;
    } else {
      while (isDigit(src[end])) end++;
      if (src[end] === '.' && isDigit(src[end + 1])) {
        end++;
        while (isDigit(src[end])) end++;
        decimalInt = false;
      }
    }
    this.pos = end;
    const text = src.slice(start, end);
    return { type: 'num', text, start, end, nl, num: Number(text), decimalInt, optionValue: null };
  }

  /** A C string literal; the token's text is the decoded value. */
  private scanString(start: number, nl: boolean): Token {
    const src = this.src;
    let i = start + 1;
    let out = '';
    for (;;) {
      const c = src[i];
      if (c === undefined || c === '\n') this.fail(start, 'unterminated string: " with no closing " on its line');
      if (c === '"') break;
      if (c !== '\\') {
        out += c;
        i++;
        continue;
      }
      const e = src[i + 1];
      if (e === undefined || e === '\n') this.fail(i, 'unterminated string: backslash at the end of the line');
      i += 2;
      const simple = SIMPLE_ESCAPES.get(e);
      if (simple !== undefined) {
        out += simple;
      } else if (e === 'x') {
        let hex = '';
        while (hex.length < 2 && isHexDigit(src[i])) hex += src[i++];
        if (hex === '') this.fail(i - 2, 'bad escape in string: \\x needs hex digits');
        out += String.fromCharCode(parseInt(hex, 16));
      } else if (e >= '0' && e <= '7') {
        let oct = e;
        while (oct.length < 3 && src[i] !== undefined && src[i]! >= '0' && src[i]! <= '7') oct += src[i++];
        out += String.fromCharCode(parseInt(oct, 8) & 0xff);
      } else {
        out += e;
      }
    }
    this.pos = i + 1;
    return { type: 'str', text: out, start, end: i + 1, nl, num: 0, decimalInt: false, optionValue: null };
  }

  /**
   * `--name` or `--name=value`. packetdrill lexes the value as an ordinary token (number, word, address,
   * string, `ipv4-mapped-ipv6`); here it is everything up to a blank or a comment, or a quoted string.
   */
  private scanOption(start: number, nl: boolean): Token {
    const src = this.src;
    let end = start + 2;
    while (isWordChar(src[end]) || src[end] === '-') end++;
    const name = src.slice(start + 2, end);
    let value: string | null = null;
    if (src[end] === '=') {
      end++;
      if (src[end] === '"') {
        this.pos = end;
        const str = this.scanString(end, nl);
        value = str.text;
        end = str.end;
      } else {
        const from = end;
        while (end < src.length && !/\s/.test(src[end]!) && !src.startsWith('//', end) && !src.startsWith('/*', end)) end++;
        value = src.slice(from, end);
      }
    }
    this.pos = end;
    return { type: 'option', text: name, start, end, nl, num: 0, decimalInt: false, optionValue: value };
  }
}

/** What a time prefix said, before the event after it is known. */
interface ParsedTime {
  time: TimeSpec;
  /** The first token of the time, for the event's line and for errors. */
  tok: Token;
  /** `start...end` of a blocking call, already normalised (see `blockingEnd`). */
  end?: TimeSpec;
  endTok?: Token;
}

class Parser {
  private readonly pos: Positions;
  private readonly lex: Lexer;
  private readonly script: DrillScript = { options: {}, events: [], warnings: [] };

  constructor(private readonly src: string) {
    this.pos = new Positions(src);
    this.lex = new Lexer(src, (p, m) => this.failAt(p, m));
  }

  failAt(pos: number, message: string): never {
    throw new DrillParseError(this.pos.line(pos), this.pos.column(pos), message);
  }

  private fail(tok: Token, message: string): never {
    return this.failAt(tok.start, message);
  }

  private warn(pos: number, message: string): void {
    this.script.warnings.push({ line: this.pos.line(pos), message });
  }

  private expectPunct(text: string, what: string): Token {
    const tok = this.lex.next();
    if (tok.type !== 'punct' || tok.text !== text) this.fail(tok, `expected '${text}' ${what}, found ${describe(tok)}`);
    return tok;
  }

  private isPunct(tok: Token, text: string): boolean {
    return tok.type === 'punct' && tok.text === text;
  }

  /** A decimal integer in 0..max on the current line (packetdrill's INTEGER with its range check). */
  private expectInt(what: string, max: number): number {
    if (this.lex.peek().nl) this.failAt(this.lex.prevEnd, `expected ${what} before the end of the line`);
    const tok = this.lex.next();
    if (tok.type !== 'num') this.fail(tok, `expected ${what} (a number), found ${describe(tok)}`);
    if (!tok.decimalInt) this.fail(tok, `${what} must be a decimal integer, not ${tok.text}`);
    if (tok.num > max) this.fail(tok, `${what} ${tok.text} is out of range (at most ${max})`);
    return tok.num;
  }

  parse(): DrillScript {
    for (;;) {
      const tok = this.lex.peek();
      if (tok.type === 'eof') return this.script;
      if (!tok.nl) this.fail(tok, `unexpected ${describe(tok)} after the event on this line (one event a line)`);
      if (tok.type === 'option') {
        this.lex.next();
        this.option(tok);
        // Several options may share a line, as on packetdrill's command line.
        while (this.lex.peek().type === 'option' && !this.lex.peek().nl) this.option(this.lex.next());
        continue;
      }
      this.script.events.push(this.event());
    }
  }

  private option(tok: Token): void {
    // parser.y: `script: opt_options opt_init_command events ...` — options only come first.
    if (this.script.events.length > 0) {
      this.fail(tok, `option --${tok.text} after the first event: options must come before any event`);
    }
    const value = tok.optionValue ?? '';
    const name = tok.text;
    if (name in this.script.options && this.script.options[name] !== value) {
      this.warn(tok.start, `option --${name} given twice; the last value (${value}) is used`);
    }
    this.script.options[name] = value;
    if (!KNOWN_OPTIONS.has(name) && !name.startsWith('wire_')) {
      this.warn(tok.start, `unknown option --${name} (kept; the runner decides)`);
    }
  }

  private event(): DrillEvent {
    const first = this.lex.peek();
    // packetdrill lets a `command` or %{ code }% stand without a time (e.g. `../common/defaults.sh`).
    if (first.type === 'command' || first.type === 'code') {
      this.lex.next();
      return this.commandOrCode(first, { kind: 'relative', t: 0 }, first);
    }
    const pt = this.time();
    const tok = this.lex.peek();
    if (pt.end !== undefined && tok.type !== 'word') {
      this.fail(pt.endTok ?? pt.tok, 'a blocking time (start...end) can only be given to a system call');
    }
    let ev: DrillEvent;
    if (tok.type === 'command' || tok.type === 'code') {
      this.lex.next();
      ev = this.commandOrCode(tok, pt.time, pt.tok);
    } else if (this.isPunct(tok, '<') || this.isPunct(tok, '>')) {
      this.lex.next();
      ev = this.packet(tok, pt);
    } else if (tok.type === 'word') {
      this.lex.next();
      ev = this.syscall(tok, pt);
    } else {
      this.fail(tok, `expected an event after the time (a segment < or >, a system call, a \`command\` or %{ code }%), found ${describe(tok)}`);
    }
    this.checkTimeKind(ev, pt);
    return ev;
  }

  /**
   * parser.y: "event time <star> can only be used with outbound packets", and the same for ranges:
   * only an expected segment may arrive "any time" or "within a window".
   */
  private checkTimeKind(ev: DrillEvent, pt: ParsedTime): void {
    const outbound = (ev.kind === 'segment' && ev.direction === '>') ||
      (ev.kind === 'unsupported' && ev.text.startsWith('>'));
    if (pt.time.kind === 'any' && !outbound) {
      this.fail(pt.tok, 'event time * can only be used with outbound (>) packets');
    }
    if (pt.time.kind === 'range' && !outbound) {
      this.fail(pt.tok, 'an event time range (a~b) can only be used with outbound (>) packets');
    }
  }

  private commandOrCode(tok: Token, time: TimeSpec, lineTok: Token): DrillEvent {
    const line = this.pos.line(lineTok.start);
    return tok.type === 'command'
      ? { kind: 'command', line, time, text: tok.text }
      : { kind: 'code', line, time, text: tok.text };
  }

  /** A time in seconds: decimal, non-negative (packetdrill: "negative time"). */
  private seconds(): { value: number; tok: Token } {
    const tok = this.lex.next();
    if (this.isPunct(tok, '-') && this.lex.peek().type === 'num') this.fail(tok, 'negative time');
    if (tok.type !== 'num') this.fail(tok, `expected a time in seconds (e.g. 0, +0.1, 1.250, *), found ${describe(tok)}`);
    if (tok.text.startsWith('0x') || tok.text.startsWith('0X')) this.fail(tok, `a time is decimal seconds (e.g. 0.100), not ${tok.text}`);
    return { value: tok.num, tok };
  }

  private time(): ParsedTime {
    const first = this.lex.peek();
    if (first.type === 'word' || this.isPunct(first, '<') || this.isPunct(first, '>')) {
      this.fail(first, 'missing time: every event but a `command` or %{ code }% starts with one (e.g. 0, +0.1, *)');
    }
    if (this.isPunct(first, '*')) {
      this.lex.next();
      this.noBlocking(first);
      return { time: { kind: 'any' }, tok: first };
    }
    const relative = this.isPunct(first, '+');
    if (relative) this.lex.next();
    const from = this.seconds().value;
    if (this.isPunct(this.lex.peek(), '~')) {
      this.lex.next();
      const plus = this.lex.peek();
      const toRelative = this.isPunct(plus, '+');
      if (toRelative) this.lex.next();
      if (toRelative !== relative) {
        this.fail(toRelative ? plus : first, 'a time range has both ends relative (+a~+b) or both absolute (a~b)');
      }
      const to = this.seconds();
      if (to.value < from) this.fail(first, 'time range is backwards (its end is before its start)');
      this.noBlocking(first);
      return { time: { kind: 'range', relative, from, to: to.value }, tok: first };
    }
    const time: TimeSpec = { kind: relative ? 'relative' : 'absolute', t: from };
    const ell = this.lex.peek();
    if (!this.isPunct(ell, '...')) return { time, tok: first };
    this.lex.next();
    const endPlus = this.isPunct(this.lex.peek(), '+');
    if (endPlus) this.lex.next();
    const end = this.seconds();
    return { time, tok: first, end: this.blockingEnd(relative, from, endPlus, end.value, end.tok), endTok: ell };
  }

  private noBlocking(first: Token): void {
    if (this.isPunct(this.lex.peek(), '...')) {
      this.fail(first, 'a blocking call (start...end) needs a single start time, not * or a range');
    }
  }

  /**
   * The return time of a blocking call `START...END`, as a `TimeSpec`: absolute when both are absolute,
   * otherwise relative to the call's own start.
   *
   * packetdrill (run.c, adjust_relative_event_times) turns a relative START into an absolute one by adding
   * the previous event's time, and adds the same offset to END: so in `+S...E` the END is E after the
   * previous event, i.e. E−S after the call starts (`+0...0.100 read` after an event at 0.2 returns at
   * 0.3, not at 0.1). With an absolute START, END is absolute. packetdrill's grammar has no `+` before
   * END; we read `...+E` as E after the call's start.
   */
  private blockingEnd(relStart: boolean, start: number, relEnd: boolean, end: number, endTok: Token): TimeSpec {
    if (relEnd) return { kind: 'relative', t: end };
    if (end < start) {
      this.fail(endTok, `a blocking call cannot return (at ${endTok.text}) before it starts`);
    }
    return relStart ? { kind: 'relative', t: roundUsecs(end - start) } : { kind: 'absolute', t: end };
  }

  // ---- Segments ---------------------------------------------------------------------------------

  private packet(dirTok: Token, pt: ParsedTime): DrillEvent {
    const direction = dirTok.text as '<' | '>';
    const line = this.pos.line(pt.tok.start);
    let next = this.lex.peek();
    let ecnWarning: string | null = null;
    if (this.isPunct(next, '[') && !next.nl) {
      // parser.y `opt_ip_info`: an ECN codepoint, or IP fields (tos, flowlabel, ttl, …).
      this.lex.next();
      const inner = this.lex.next();
      const close = this.lex.peek();
      if (inner.type === 'word' && ECN_MARKINGS.has(inner.text) && this.isPunct(close, ']') && !close.nl) {
        this.lex.next();
        ecnWarning = `ECN marking [${inner.text}] ignored: synack drill does not model the IP ECN field`;
      } else {
        return this.unsupported(dirTok, pt, 'IP header fields in [...] (tos, ttl, flow label, …) are not modelled by synack drill');
      }
      next = this.lex.peek();
    }
    if (next.nl) this.failAt(this.lex.prevEnd, `expected TCP flags after ${direction} before the end of the line`);
    if (next.type === 'word') {
      const reason = OTHER_PACKETS.get(next.text);
      if (reason !== undefined) return this.unsupported(dirTok, pt, reason);
    }
    const flags = this.flags();
    if (ecnWarning !== null) this.warn(dirTok.start, ecnWarning);

    const startSeq = this.expectInt('TCP start sequence number', U32_MAX);
    this.expectPunct(':', 'between the start and end sequence numbers (START:END(LEN))');
    const endTok = this.lex.peek();
    const endSeq = this.expectInt('TCP end sequence number', U32_MAX);
    this.expectPunct('(', 'before the payload length (START:END(LEN))');
    const length = this.expectInt('TCP payload length', U16_MAX);
    this.expectPunct(')', 'after the payload length (START:END(LEN))');
    // parser.y: "inconsistent TCP sequence numbers and payload size" (no wrap-around is accepted).
    if (endSeq !== startSeq + length) {
      this.fail(endTok, `inconsistent TCP sequence numbers and payload size: ${startSeq}:${endSeq}(${length}) but ${endSeq} - ${startSeq} is not ${length}`);
    }
    const seg: SegmentEvent = { kind: 'segment', line, time: pt.time, direction, flags, start: startSeq, end: endSeq, length };

    // `ack`, `win` and `urg`, in any order (upstream packetdrill wants that order; forks differ).
    for (;;) {
      const tok = this.lex.peek();
      if (tok.type === 'eof' || tok.nl) break;
      if (tok.type === 'word' && (tok.text === 'ack' || tok.text === 'win' || tok.text === 'urg')) {
        this.lex.next();
        const key: 'ack' | 'win' | 'urg' = tok.text;
        if (seg[key] !== undefined) this.fail(tok, `'${key}' given twice in one segment`);
        seg[key] = key === 'ack'
          ? this.expectInt('ack number', U32_MAX)
          : this.expectInt(key === 'win' ? 'TCP window' : 'urgent pointer', U16_MAX);
        continue;
      }
      if (this.isPunct(tok, '<')) {
        this.lex.next();
        seg.options = this.tcpOptions(tok);
        break;
      }
      this.fail(tok, `unexpected ${describe(tok)} in a segment: expected ack N, win N, urg N or <options>`);
    }
    return seg;
  }

  /** FLAGS: letters from S F R P . U E W written together (`S.`, `F.`, `SEW`), or `-` for none. */
  private flags(): string {
    const first = this.lex.next();
    if (this.isPunct(first, '-')) return '';
    if (first.type !== 'word' && !this.isPunct(first, '.')) {
      this.fail(first, `expected TCP flags (S, F, R, P, ., U, E, W) or a packet kind (udp, icmp, …), found ${describe(first)}`);
    }
    // The tokenizer splits `S.` into a word and a dot; glue back what is written without a blank.
    let text = first.text;
    let end = first.end;
    for (;;) {
      const tok = this.lex.peek();
      if (tok.start !== end || !(tok.type === 'word' || this.isPunct(tok, '.'))) break;
      this.lex.next();
      text += tok.text;
      end = tok.end;
    }
    for (let i = 0; i < text.length; i++) {
      if (!FLAG_LETTERS.includes(text[i]!)) {
        this.failAt(first.start + i, `bad TCP flags '${text}': '${text[i]}' is not one of S F R P . U E W`);
      }
    }
    return text;
  }

  /** `<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>`, or `<...>` (not checked). The `<` is read. */
  private tcpOptions(open: Token): DrillOption[] | 'any' {
    const sameLine = (): Token => {
      const tok = this.lex.peek();
      if (tok.type === 'eof' || tok.nl) this.fail(open, 'unclosed option list: < with no > on its line');
      return tok;
    };
    if (this.isPunct(sameLine(), '...')) {
      this.lex.next();
      if (!this.isPunct(sameLine(), '>')) this.fail(this.lex.peek(), `expected '>' after <..., found ${describe(this.lex.peek())}`);
      this.lex.next();
      return 'any';
    }
    const options: DrillOption[] = [];
    if (this.isPunct(sameLine(), '>')) {
      this.lex.next();
      return options;
    }
    for (;;) {
      options.push(this.tcpOption(sameLine));
      const sep = sameLine();
      this.lex.next();
      if (this.isPunct(sep, '>')) return options;
      if (!this.isPunct(sep, ',')) this.fail(sep, `expected ',' or '>' in the option list, found ${describe(sep)}`);
    }
  }

  private tcpOption(sameLine: () => Token): DrillOption {
    const tok = sameLine();
    if (tok.type !== 'word') {
      this.fail(tok, `expected a TCP option (mss, nop, eol, wscale, sackOK, sack, TS, …), found ${describe(tok)}`);
    }
    this.lex.next();
    switch (tok.text) {
      case 'nop': return { kind: 'nop' };
      case 'eol': return { kind: 'eol' };
      case 'sackOK': return { kind: 'sackOK' };
      case 'mss': return { kind: 'mss', value: this.expectInt('mss value', U16_MAX) };
      // packetdrill accepts any byte here (RFC 7323 §2.3 caps use at 14, but scripts test larger values).
      case 'wscale': return { kind: 'wscale', value: this.expectInt('wscale value', 0xff) };
      case 'sack': {
        const blocks: Array<[number, number]> = [];
        while (sameLine().type === 'num') {
          const left = this.expectInt('SACK block start', U32_MAX);
          this.expectPunct(':', 'in a SACK block (START:END)');
          blocks.push([left, this.expectInt('SACK block end', U32_MAX)]);
        }
        if (blocks.length === 0) this.fail(this.lex.peek(), 'sack needs at least one block START:END');
        return { kind: 'sack', blocks };
      }
      case 'TS': {
        const val = this.lex.next();
        if (val.type !== 'word' || val.text !== 'val' || val.nl) this.fail(val, `expected 'val' after TS (TS val X ecr Y), found ${describe(val)}`);
        const v = this.expectInt('TS val', U32_MAX);
        const ecr = this.lex.next();
        if (ecr.type !== 'word' || ecr.text !== 'ecr' || ecr.nl) this.fail(ecr, `expected 'ecr' after TS val (TS val X ecr Y), found ${describe(ecr)}`);
        return { kind: 'TS', val: v, ecr: this.expectInt('TS ecr', U32_MAX) };
      }
      default: {
        // FO (Fast Open, RFC 7413), FOEXP, md5, exp, MPTCP…: kept as text up to the next ',' or '>'.
        let depth = 0;
        for (;;) {
          const t = sameLine();
          if (depth === 0 && (this.isPunct(t, ',') || this.isPunct(t, '>'))) break;
          if (this.isPunct(t, '(') || this.isPunct(t, '[') || this.isPunct(t, '{')) depth++;
          if ((this.isPunct(t, ')') || this.isPunct(t, ']') || this.isPunct(t, '}')) && depth > 0) depth--;
          this.lex.next();
        }
        return { kind: 'other', text: this.src.slice(tok.start, this.lex.prevEnd) };
      }
    }
  }

  /**
   * A packet line synack does not model: the rest of the event is kept as text. It ends at the end of
   * its line, or later if a bracket opened on it is still open; comments are left out.
   */
  private unsupported(dirTok: Token, pt: ParsedTime, reason: string): DrillEvent {
    const src = this.src;
    const stack: number[] = [];
    let i = dirTok.start;
    let text = '';
    for (;;) {
      const c = src[i];
      if (c === undefined) {
        if (stack.length > 0) this.failAt(stack[stack.length - 1]!, `unclosed ${src[stack[stack.length - 1]!]} in a packet line`);
        break;
      }
      if (c === '\n' && stack.length === 0) break;
      if (c === '/' && src[i + 1] === '/') {
        const eol = src.indexOf('\n', i);
        i = eol < 0 ? src.length : eol;
        continue;
      }
      if (c === '/' && src[i + 1] === '*') {
        const close = src.indexOf('*/', i + 2);
        if (close < 0) this.failAt(i, 'unclosed comment: /* with no */ before the end of the script');
        i = close + 2;
        text += ' ';
        continue;
      }
      if (c === '(' || c === '[' || c === '{') stack.push(i);
      if ((c === ')' || c === ']' || c === '}') && stack.length > 0) stack.pop();
      text += c;
      i++;
    }
    this.lex.seek(i);
    return {
      kind: 'unsupported',
      line: this.pos.line(pt.tok.start),
      time: pt.time,
      text: text.replace(/\s+/g, ' ').trim(),
      reason,
    };
  }

  // ---- System calls -------------------------------------------------------------------------------

  private syscall(nameTok: Token, pt: ParsedTime): DrillEvent {
    const open = this.lex.peek();
    if (!this.isPunct(open, '(')) {
      this.fail(open, `expected '(' after the system call name '${nameTok.text}', found ${describe(open)}`);
    }
    this.lex.next();
    const args = this.exprList(')', 1);
    const eq = this.lex.peek();
    if (!this.isPunct(eq, '=')) {
      this.fail(eq, `expected '=' and the expected result after ${nameTok.text}(…), found ${describe(eq)}`);
    }
    this.lex.next();
    if (this.lex.peek().nl) this.fail(this.lex.peek(), `expected the result of ${nameTok.text}(…) after '=' on the same line`);
    const result = this.expr(1);
    const ev: DrillEvent = { kind: 'syscall', line: this.pos.line(pt.tok.start), time: pt.time, name: nameTok.text, args, result };
    if (pt.end !== undefined) ev.end = pt.end;
    const errno = this.lex.peek();
    if (errno.type === 'word' && !errno.nl) {
      this.lex.next();
      ev.errno = errno.text;
    }
    const paren = this.lex.peek();
    if (this.isPunct(paren, '(') && !paren.nl) {
      // Free text such as `(Operation now in progress)` or `(flags O_RDWR)`: read raw, since it may hold
      // anything (`Can't assign requested address`); it must close on its line.
      const text = this.note(paren);
      if (ev.errno !== undefined) ev.errnoText = text;
      else ev.note = text;
    }
    return ev;
  }

  private note(open: Token): string {
    const src = this.src;
    let depth = 0;
    for (let i = open.start; i < src.length && src[i] !== '\n'; i++) {
      if (src[i] === '(') depth++;
      else if (src[i] === ')' && --depth === 0) {
        this.lex.seek(i + 1);
        return src.slice(open.start + 1, i).trim();
      }
    }
    return this.fail(open, 'unclosed ( in the text after the result: no ) on its line');
  }

  /** Expressions separated by commas up to `close` (which is consumed); may be empty. */
  private exprList(close: string, depth: number): Expr[] {
    const items: Expr[] = [];
    if (this.isPunct(this.lex.peek(), close)) {
      this.lex.next();
      return items;
    }
    for (;;) {
      items.push(this.expr(depth));
      const sep = this.lex.next();
      if (this.isPunct(sep, close)) return items;
      if (!this.isPunct(sep, ',')) this.fail(sep, `expected ',' or '${close}', found ${describe(sep)}`);
    }
  }

  /** `A | B | C` over primaries. */
  private expr(depth: number): Expr {
    return this.orTail(this.primary(depth), depth);
  }

  private orTail(first: Expr, depth: number): Expr {
    if (!this.isPunct(this.lex.peek(), '|')) return first;
    const items = [first];
    while (this.isPunct(this.lex.peek(), '|')) {
      this.lex.next();
      items.push(this.primary(depth));
    }
    return { t: 'or', items };
  }

  private primary(depth: number): Expr {
    const tok = this.lex.next();
    if (depth > MAX_NESTING) this.fail(tok, `expression nested too deeply (more than ${MAX_NESTING} levels)`);
    switch (tok.type) {
      case 'num': return { t: 'num', v: tok.num };
      case 'str': return { t: 'str', v: tok.text };
      case 'word':
        if (this.isPunct(this.lex.peek(), '(')) {
          this.lex.next();
          return { t: 'call', name: tok.text, args: this.exprList(')', depth + 1) };
        }
        return tok.text === 'NULL' ? { t: 'null' } : { t: 'sym', v: tok.text };
      case 'punct':
        if (tok.text === '-' && this.lex.peek().type === 'num' && this.lex.peek().start === tok.end) {
          return { t: 'num', v: -this.lex.next().num };
        }
        if (tok.text === '...') return { t: 'ellipsis' };
        if (tok.text === '[') return { t: 'list', items: this.exprList(']', depth + 1) };
        if (tok.text === '{') return this.struct(depth + 1);
        break;
      default:
        break;
    }
    return this.fail(tok, `expected an expression (a number, a name, a string, ..., [list] or {struct}), found ${describe(tok)}`);
  }

  /** `{fd=4, events=POLLIN}`, `{1, 0}`, `{msg_iov(1)=[…], …}`. The `{` is read. */
  private struct(depth: number): Expr {
    const fields: Array<{ name: string | null; value: Expr }> = [];
    if (this.isPunct(this.lex.peek(), '}')) {
      this.lex.next();
      return { t: 'struct', fields };
    }
    for (;;) {
      fields.push(this.field(depth));
      const sep = this.lex.next();
      if (this.isPunct(sep, '}')) return { t: 'struct', fields };
      if (!this.isPunct(sep, ',')) this.fail(sep, `expected ',' or '}' in a struct, found ${describe(sep)}`);
    }
  }

  /** `name=value`, `name(count)=value` or a value alone. */
  private field(depth: number): { name: string | null; value: Expr } {
    const tok = this.lex.peek();
    if (tok.type !== 'word') return { name: null, value: this.expr(depth) };
    this.lex.next();
    const after = this.lex.peek();
    if (this.isPunct(after, '=')) {
      this.lex.next();
      return { name: tok.text, value: this.expr(depth) };
    }
    if (!this.isPunct(after, '(')) {
      const sym: Expr = tok.text === 'NULL' ? { t: 'null' } : { t: 'sym', v: tok.text };
      return { name: null, value: this.orTail(sym, depth) };
    }
    this.lex.next();
    const args = this.exprList(')', depth + 1);
    if (!this.isPunct(this.lex.peek(), '=')) {
      return { name: null, value: this.orTail({ t: 'call', name: tok.text, args }, depth) };
    }
    // packetdrill's msghdr fields carry a count, `msg_iov(1)=[…]`: the name keeps it as written.
    const name = this.src.slice(tok.start, this.lex.prevEnd).replace(/\s+/g, '');
    this.lex.next();
    return { name, value: this.expr(depth) };
  }
}

/**
 * Reads a packetdrill script. Throws `DrillParseError` (with 1-based line and column) for anything it
 * cannot read, and nothing else.
 */
export function parseScript(text: string): DrillScript {
  const parser = new Parser(text);
  try {
    return parser.parse();
  } catch (err) {
    if (err instanceof DrillParseError) throw err;
    // A bug here must still honour the contract; the message says it is ours, not the script's.
    throw new DrillParseError(1, 1, `internal parser error: ${err instanceof Error ? err.message : String(err)}`);
  }
}
