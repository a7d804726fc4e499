/**
 * The `%{ … }%` blocks of packetdrill scripts: the common form `assert tcpi_NAME OP VALUE [and …]`,
 * evaluated against `TcpInfo` with Linux's `struct tcp_info` names and units (cwnd in segments,
 * times in µs, states as TCP_ESTABLISHED …, or the TCPI_/TCPS_ spellings of the FreeBSD fork).
 * Anything else in a block is skipped with a warning (no Python here).
 */
import type { TcpState } from '../tcp/state.js';
import type { TcpInfo } from '../tcp/user.js';

const STATE_NAMES: Record<string, TcpState> = {};
for (const [state, linux, bsd] of [
  ['ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED'],
  ['SYN-SENT', 'SYN_SENT', 'SYN_SENT'],
  ['SYN-RECEIVED', 'SYN_RECV', 'SYN_RECEIVED'],
  ['FIN-WAIT-1', 'FIN_WAIT1', 'FIN_WAIT_1'],
  ['FIN-WAIT-2', 'FIN_WAIT2', 'FIN_WAIT_2'],
  ['TIME-WAIT', 'TIME_WAIT', 'TIME_WAIT'],
  ['CLOSED', 'CLOSE', 'CLOSED'],
  ['CLOSE-WAIT', 'CLOSE_WAIT', 'CLOSE_WAIT'],
  ['LAST-ACK', 'LAST_ACK', 'LAST_ACK'],
  ['LISTEN', 'LISTEN', 'LISTEN'],
  ['CLOSING', 'CLOSING', 'CLOSING'],
] as const) {
  STATE_NAMES[`TCP_${linux}`] = state;
  STATE_NAMES[`TCPI_${bsd}`] = state;
  STATE_NAMES[`TCPS_${bsd}`] = state;
}

type Value = number | { state: TcpState };

function field(info: TcpInfo, name: string): Value | undefined {
  const mss = Math.max(info.sndMss, 1);
  switch (name) {
    case 'tcpi_state': return { state: info.state };
    case 'tcpi_snd_cwnd': return Math.floor(info.cwnd / mss);
    case 'tcpi_snd_ssthresh': return info.ssthresh >= 0x7fffffff ? 0x7fffffff : Math.floor(info.ssthresh / mss);
    case 'tcpi_rto': return Math.round(info.rto * 1000);
    case 'tcpi_rtt': return Math.round(info.srtt * 1000);
    case 'tcpi_rttvar': return Math.round(info.rttvar * 1000);
    case 'tcpi_snd_mss': return info.sndMss;
    case 'tcpi_rcv_mss': return info.rcvMss;
    case 'tcpi_retransmits': return info.retransmits;
    case 'tcpi_total_retrans': return info.totalRetransmits;
    case 'tcpi_unacked': return Math.ceil(info.unacked / mss);
    case 'tcpi_sacked': return Math.ceil(info.sacked / mss);
    case 'tcpi_lost': return Math.ceil(info.lost / mss);
    case 'tcpi_bytes_acked': return info.bytesAcked;
    case 'tcpi_bytes_received': return info.bytesReceived;
    case 'tcpi_segs_out': return info.segsOut;
    case 'tcpi_segs_in': return info.segsIn;
    case 'tcpi_snd_wnd': return info.sndWnd;
    case 'tcpi_rcv_wnd': return info.rcvWnd;
    case 'tcpi_snd_wscale': return info.windowScaling?.snd ?? 0;
    case 'tcpi_rcv_wscale': return info.windowScaling?.rcv ?? 0;
    case 'tcpi_ca_state': return { open: 0, recovery: 3, loss: 4 }[info.caState];
    default: return undefined;
  }
}

export interface AssertionResult {
  ok: boolean;
  message?: string;
  /** Set when the block holds something this evaluator does not understand. */
  skipped?: string;
}

/** Evaluates every `assert` statement of a `%{ }%` block. */
export function evaluateTcpInfoAssertion(code: string, info: TcpInfo | null): AssertionResult {
  const statements = code.split(/[\n;]/).map((s) => s.trim()).filter((s) => s.length > 0 && !s.startsWith('#'));
  const skipped: string[] = [];
  for (const st of statements) {
    // `assert EXPR` or `assert EXPR, MESSAGE` (Python: the message is any expression, printed on failure).
    const m = /^assert\s+([^,]+?)(?:\s*,.*)?$/.exec(st);
    if (m === null) {
      skipped.push(st);
      continue;
    }
    if (info === null) return { ok: true, skipped: `no socket to read tcp_info from: ${st}` };
    let result: Value | boolean;
    try {
      result = new Evaluator(m[1]!, info).run();
    } catch (e) {
      skipped.push(`${st} (${(e as Error).message})`);
      continue;
    }
    if (result !== true && result !== 1) {
      return { ok: false, message: `${m[1]} (state ${info.state}, cwnd ${info.cwnd} B, mss ${info.sndMss}, rto ${info.rto} ms)` };
    }
  }
  return skipped.length > 0 ? { ok: true, skipped: `code not evaluated: ${skipped.join('; ').slice(0, 120)}` } : { ok: true };
}

/** A tiny expression evaluator: numbers, tcpi_ names, state names, + - * / // %, comparisons, and/or/not. */
class Evaluator {
  private readonly tokens: string[];
  private i = 0;

  constructor(text: string, private readonly info: TcpInfo) {
    this.tokens = text.match(/\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|==|!=|<=|>=|\/\/|[-+*/%<>()]/g) ?? [];
    const rest = text.replace(/\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|==|!=|<=|>=|\/\/|[-+*/%<>()]|\s+/g, '');
    if (rest.length > 0) throw new Error(`cannot read "${rest}"`);
  }

  run(): Value | boolean {
    const v = this.or();
    if (this.i !== this.tokens.length) throw new Error(`unexpected "${this.tokens[this.i]}"`);
    return v;
  }

  private peek(): string | undefined {
    return this.tokens[this.i];
  }

  private or(): Value | boolean {
    let v = this.and();
    while (this.peek() === 'or') {
      this.i++;
      const r = this.and();
      v = truthy(v) || truthy(r);
    }
    return v;
  }

  private and(): Value | boolean {
    let v = this.not();
    while (this.peek() === 'and') {
      this.i++;
      const r = this.not();
      v = truthy(v) && truthy(r);
    }
    return v;
  }

  private not(): Value | boolean {
    if (this.peek() === 'not') {
      this.i++;
      return !truthy(this.not());
    }
    return this.comparison();
  }

  private comparison(): Value | boolean {
    let left: Value | boolean = this.sum();
    let result: boolean | null = null;
    for (;;) {
      const op = this.peek();
      if (op !== '==' && op !== '!=' && op !== '<' && op !== '<=' && op !== '>' && op !== '>=') break;
      this.i++;
      const right = this.sum();
      const r = compare(left, op, right);
      result = (result ?? true) && r;
      left = right;
    }
    return result ?? left;
  }

  private sum(): Value {
    let v = this.product();
    for (;;) {
      const op = this.peek();
      if (op !== '+' && op !== '-') return v;
      this.i++;
      const r = this.product();
      v = op === '+' ? asNum(v) + asNum(r) : asNum(v) - asNum(r);
    }
  }

  private product(): Value {
    let v = this.unary();
    for (;;) {
      const op = this.peek();
      if (op !== '*' && op !== '/' && op !== '//' && op !== '%') return v;
      this.i++;
      const r = asNum(this.unary());
      const l = asNum(v);
      v = op === '*' ? l * r : op === '/' ? l / r : op === '//' ? Math.floor(l / r) : l % r;
    }
  }

  private unary(): Value {
    if (this.peek() === '-') {
      this.i++;
      return -asNum(this.unary());
    }
    return this.atom();
  }

  private atom(): Value {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new Error('expression ends early');
    if (t === '(') {
      const v = this.or();
      if (this.tokens[this.i++] !== ')') throw new Error('missing )');
      return typeof v === 'boolean' ? (v ? 1 : 0) : v;
    }
    if (/^\d/.test(t)) return Number(t);
    if (t in STATE_NAMES) return { state: STATE_NAMES[t]! };
    const f = field(this.info, t);
    if (f === undefined) throw new Error(`unknown name ${t}`);
    return f;
  }
}

function truthy(v: Value | boolean): boolean {
  return typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : true;
}

function asNum(v: Value | boolean): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new Error('a state is not a number');
}

function compare(a: Value | boolean, op: string, b: Value | boolean): boolean {
  if (typeof a === 'object' || typeof b === 'object') {
    const sa = typeof a === 'object' ? a.state : null;
    const sb = typeof b === 'object' ? b.state : null;
    if (op === '==') return sa === sb;
    if (op === '!=') return sa !== sb;
    throw new Error('states compare only with == and !=');
  }
  const x = asNum(a);
  const y = asNum(b);
  switch (op) {
    case '==': return x === y;
    case '!=': return x !== y;
    case '<': return x < y;
    case '<=': return x <= y;
    case '>': return x > y;
    default: return x >= y;
  }
}
