/**
 * Runs one packetdrill script against a fresh synack stack in virtual time (shared/PACKETDRILL.md).
 *
 * The stack sits on one end of a MemoryLink at the packetdrill local address; the script plays the
 * remote peer on the other end: `<` lines are injected at their time, `>` lines wait for the stack's
 * next packet and compare it field by field, system calls go through `DrillSockets`. A packet the
 * stack sends that no `>` line is waiting for is a failure, as in packetdrill.
 */
import { MemoryLink } from '../link/memory.js';
import { VirtualClock } from '../link/clock.js';
import { Stack } from '../stack/stack.js';
import type { StackOptions } from '../stack/options.js';
import { parseAddress } from '../wire/address.js';
import { parseIpPacket, PROTO_TCP } from '../wire/ip.js';
import { ACK, SYN } from '../wire/tcp.js';
import type { DrillOption, DrillScript, Expr, SegmentEvent, SyscallEvent, TimeSpec } from './ast.js';
import { DrillSockets, type CallOutcome } from './sockets.js';
import {
  buildPacket, decodeOptions, encodeOptions, flagsFromLetters, formatExpected, formatOption, formatSegment,
  lettersFromFlags, type Endpoint, type ScriptSegment,
} from './remote.js';
import { evaluateTcpInfoAssertion } from './tcpinfo.js';

export interface DrillOutcome {
  ok: boolean;
  /** Set when the script uses something synack does not model; not a failure. */
  skipped?: string;
  error?: string;
  line?: number;
  expected?: string;
  actual?: string;
  warnings: string[];
  /** Virtual time the script took, ms. */
  durationMs: number;
}

/** packetdrill's addresses (no packet leaves the process: these are only names). */
const ADDRESSES = {
  4: { local: '192.168.0.1', remote: '192.0.2.1', prefix: 24 },
  6: { local: 'fd3d:fa7b:d17d::1', remote: '2001:db8::1', prefix: 64 },
} as const;
/** The port scripts bind and connect to, and the remote's own port for passive opens. */
const SCRIPT_PORT = 8080;
const REMOTE_EPHEMERAL_PORT = 49153;
/** Longest virtual time one script may run (a script that waits forever is a failure, not a hang). */
const MAX_SCRIPT_MS = 3_600_000;
const MAX_STEPS = 2_000_000;
const OPTIONS_KNOWN = new Set([
  'ip_version', 'tolerance_usecs', 'tolerance_percent', 'mtu', 'tcp_ts_tick_usecs', 'speed', 'bind_port',
  'connect_port', 'local_ip', 'remote_ip', 'init_scripts',
]);

class ScriptFailure extends Error {
  constructor(readonly line: number, message: string, readonly expected?: string, readonly actual?: string) {
    super(message);
  }
}

class ScriptSkip extends Error {}

interface Outbound {
  t: number;
  packet: Uint8Array;
}

interface PendingCall {
  ev: SyscallEvent;
  startedAt: number;
  /** When it must return (ms), or null for "at once". */
  returnAt: number | null;
  rangeEnd: number | null;
}

export function runScript(script: DrillScript): DrillOutcome {
  const warnings: string[] = script.warnings.map((w) => `line ${w.line}: ${w.message}`);
  const o = script.options;
  for (const name of Object.keys(o)) {
    if (!OPTIONS_KNOWN.has(name) && !name.startsWith('wire_')) warnings.push(`option --${name} ignored`);
  }
  const version = o['ip_version'] === 'ipv6' ? 6 : 4;
  if (o['ip_version'] === 'ipv4-mapped-ipv6') warnings.push('ipv4-mapped-ipv6 runs as IPv4');
  const addrs = ADDRESSES[version];
  const tolerance = (o['tolerance_usecs'] !== undefined ? Number(o['tolerance_usecs']) : 4000) / 1000;
  const tolerancePercent = o['tolerance_percent'] !== undefined ? Number(o['tolerance_percent']) : 0;
  const mtu = o['mtu'] !== undefined ? Number(o['mtu']) : 1500;
  const checkTsVal = o['tcp_ts_tick_usecs'] !== undefined;

  const clock = new VirtualClock();
  const [localEnd, remoteEnd] = MemoryLink.pair({ clock, mtu, delayMs: 0 });
  const stack = new Stack({
    link: localEnd,
    addresses: [`${addrs.local}/${addrs.prefix}`],
    clock,
    seed: 1,
    name: 'local',
    // Linux's defaults where they show on the wire: 40 ms delayed ACK minimum, 60 s TIME-WAIT, and
    // a first window of 64 KiB (what Linux advertises with its default tcp_rmem; a script's own
    // tcp_rmem line replaces it below).
    delayedAckMs: 40,
    receiveBufferSize: 64 * 1024,
    mslMs: 30_000,
    ...sysctlOptions(script, warnings),
  });
  const outbound: Outbound[] = [];
  remoteEnd.onPacket((p) => outbound.push({ t: clock.now(), packet: p }));
  const remote: Endpoint = { address: parseAddress(addrs.remote)!, port: REMOTE_EPHEMERAL_PORT };
  let local: Endpoint = { address: parseAddress(addrs.local)!, port: SCRIPT_PORT };
  let localIss: number | null = null;
  let tsOffset: number | null = null;
  const sockets = new DrillSockets({
    stack,
    remoteAddress: addrs.remote,
    defaultPort: SCRIPT_PORT,
    warn: (m) => warnings.push(m),
    now: () => clock.now(),
  });
  const pending: PendingCall[] = [];
  let steps = 0;

  const rel = (seq: number): number => (localIss === null ? seq : (seq - localIss) >>> 0);
  const abs = (n: number): number => (localIss === null ? n >>> 0 : (localIss + n) >>> 0);
  const mapEcr = (ecr: number): number => (tsOffset === null || ecr === 0 ? ecr >>> 0 : (ecr + tsOffset) >>> 0);

  /** The stack's packet in script notation, numbers relative to its ISN (learned from its SYN). */
  const describe = (packet: Uint8Array): { seg: ScriptSegment; srcPort: number; dstPort: number; tsVal: number | null } | null => {
    const ip = parseIpPacket(packet);
    if (typeof ip === 'string' || ip.protocol !== PROTO_TCP) return null;
    const t = ip.payloadOffset;
    const dv = new DataView(packet.buffer, packet.byteOffset, packet.length);
    const srcPort = dv.getUint16(t);
    const dstPort = dv.getUint16(t + 2);
    const seq = dv.getUint32(t + 4);
    const ack = dv.getUint32(t + 8);
    const hl = (packet[t + 12]! >>> 4) * 4;
    const flags = packet[t + 13]!;
    const win = dv.getUint16(t + 14);
    const urg = dv.getUint16(t + 18);
    const options = decodeOptions(packet.subarray(t + 20, t + hl));
    const len = ip.payloadLength - hl;
    // A SYN or SYN,ACK with a new ISN starts a new connection (the listener answered a new SYN):
    // numbers are relative to it from now on, and its timestamps are mapped afresh.
    if (flags & SYN && localIss !== seq) {
      if (localIss !== null) tsOffset = null;
      localIss = seq;
      local = { address: local.address, port: srcPort };
      remote.port = dstPort;
    }
    const ts = options.find((x): x is Extract<DrillOption, { kind: 'TS' }> => x.kind === 'TS');
    const start = rel(seq);
    return {
      seg: { flags, start, end: (start + len) >>> 0, length: len, ack: flags & ACK ? ack : null, win, urg, options },
      srcPort, dstPort, tsVal: ts ? ts.val : null,
    };
  };

  /** Script notation of an actual packet, TS val shown relative to the first one seen. */
  const show = (d: { seg: ScriptSegment }): string => {
    const opts = d.seg.options.map((x) => (x.kind === 'TS' && tsOffset !== null ? { ...x, val: (x.val - tsOffset) >>> 0 } : x));
    return `> ${formatSegment({ ...d.seg, options: opts })}`;
  };

  /** Fail on a packet the stack sent that no `>` line asked for. */
  /**
   * Fail on a packet sent before this moment that no `>` line took. Packets of this very instant wait
   * for the next `>` line: a call at the same time as the segment it causes may be written before
   * or after it (packetdrill matches outbound packets in order, when a `>` line comes).
   */
  const noUnexpected = (line: number, atEnd = false): void => {
    const p = outbound[0];
    if (p === undefined || (!atEnd && p.t >= clock.now())) return;
    const d = describe(p.packet);
    throw new ScriptFailure(line, `unexpected packet from the stack at ${(p.t / 1000).toFixed(3)} s`,
      'no packet', d ? show(d) : `${p.packet.length} bytes (not TCP)`);
  };

  /** Let virtual time run to `t` (ms), answering pending calls as they complete. */
  const runTo = (t: number, line: number, stopOnPacket: boolean): void => {
    for (;;) {
      // Everything due at this instant first (an injected packet is delivered through the clock).
      clock.advanceSync(0);
      settlePending(line);
      if (stopOnPacket && outbound.length > 0) return;
      if (clock.now() >= t) return;
      // Wake at the time a blocking call is expected back too (a poll timeout has no timer).
      let next = Math.min(clock.nextDue(), t);
      for (const p of pending) {
        const due = p.returnAt ?? p.startedAt;
        if (due > clock.now() && due < next) next = due;
      }
      clock.advanceSync(Math.max(0, next - clock.now()));
      if (++steps > MAX_STEPS) throw new ScriptFailure(line, 'the run did not come to rest (too many steps)');
    }
  };

  const settlePending = (line: number): void => {
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i]!;
      const want = exprNumber(p.ev.result);
      const out = sockets.call(p.ev.name, p.ev.args, p.startedAt, want !== null && want >= 0 ? want : null);
      if (!out.done) {
        const limit = p.rangeEnd ?? p.returnAt ?? p.startedAt;
        if (clock.now() > limit + tolerance) {
          throw new ScriptFailure(p.ev.line, `${p.ev.name}() still blocked at ${(clock.now() / 1000).toFixed(3)} s`,
            `returns by ${(limit / 1000).toFixed(3)} s`, 'still blocked');
        }
        continue;
      }
      pending.splice(i--, 1);
      const at = clock.now();
      const lo = (p.returnAt ?? p.startedAt) - tolerance;
      const hi = (p.rangeEnd ?? p.returnAt ?? p.startedAt) + tolerance;
      if (at < lo || at > hi) {
        throw new ScriptFailure(p.ev.line, `${p.ev.name}() returned at ${(at / 1000).toFixed(3)} s`,
          `return at ${(lo / 1000 + tolerance / 1000).toFixed(3)} s`, `${(at / 1000).toFixed(3)} s`);
      }
      checkResult(p.ev, out);
      void line;
    }
  };

  const checkResult = (ev: SyscallEvent, out: Extract<CallOutcome, { done: true }>): void => {
    const want = exprNumber(ev.result);
    const expected = `${want ?? '?'}${ev.errno ? ` ${ev.errno}` : ''}`;
    const actual = `${out.result}${out.errno ? ` ${out.errno}` : ''}`;
    if (want !== null && (want !== out.result || (ev.errno !== undefined && ev.errno !== out.errno) ||
      (ev.errno === undefined && out.errno !== undefined && want === -1))) {
      throw new ScriptFailure(ev.line, `${ev.name}() returned ${actual}`, `${ev.name}() = ${expected}`, `${ev.name}() = ${actual}`);
    }
    if (out.mismatch !== undefined) throw new ScriptFailure(ev.line, `${ev.name}(): ${out.mismatch}`);
  };

  /** Compare an actual packet with a `>` line. */
  const matchOutbound = (ev: SegmentEvent, p: Outbound, later: Outbound[] = [], pushFree = false): void => {
    const first = describe(p.packet);
    const expectedText = `> ${formatExpected(ev)}`;
    if (first === null) throw new ScriptFailure(ev.line, 'the stack sent a packet that is not TCP', expectedText, `${p.packet.length} bytes`);
    const d = later.length === 0 ? first : coalesce(first, later.map((x) => describe(x.packet)!));
    if (pushFree && ev.flags.includes('P')) d.seg = { ...d.seg, flags: d.seg.flags | 0x08 };
    const problems: string[] = [];
    const wantFlags = flagsFromLetters(ev.flags);
    if (d.seg.flags !== wantFlags) problems.push(`flags ${lettersFromFlags(d.seg.flags)} ≠ ${ev.flags}`);
    if (d.seg.start !== ev.start >>> 0) problems.push(`seq ${d.seg.start} ≠ ${ev.start >>> 0}`);
    if (d.seg.length !== ev.length) problems.push(`length ${d.seg.length} ≠ ${ev.length}`);
    if (ev.ack !== undefined && d.seg.ack !== (ev.ack >>> 0)) problems.push(`ack ${d.seg.ack ?? 'none'} ≠ ${ev.ack >>> 0}`);
    if (ev.win !== undefined && d.seg.win !== ev.win) problems.push(`win ${d.seg.win} ≠ ${ev.win}`);
    if (ev.urg !== undefined && d.seg.urg !== ev.urg) problems.push(`urg ${d.seg.urg} ≠ ${ev.urg}`);
    if (ev.options !== 'any') {
      const want = ev.options ?? [];
      const got = d.seg.options;
      const same = want.length === got.length && want.every((w, i) => sameOption(w, got[i]!));
      if (!same) problems.push('options differ');
    }
    // Sequence of the first outbound timestamp fixes the mapping of TS values (packetdrill).
    if (ev.options !== 'any' && ev.options !== undefined && d.tsVal !== null) {
      const w = ev.options.find((x): x is Extract<DrillOption, { kind: 'TS' }> => x.kind === 'TS');
      if (w !== undefined) {
        if (tsOffset === null) tsOffset = (d.tsVal - w.val) >>> 0;
        else if (checkTsVal) {
          const want = (w.val + tsOffset) >>> 0;
          if (Math.abs(((d.tsVal - want) | 0)) > Math.ceil(tolerance) + 1) problems.push(`TS val ${(d.tsVal - tsOffset) >>> 0} ≠ ${w.val}`);
        }
      }
    }
    if (problems.length > 0) {
      throw new ScriptFailure(ev.line, `packet differs: ${problems.join(', ')}`, expectedText, show(d));
    }
  };

  function sameOption(w: DrillOption, g: DrillOption): boolean {
    if (w.kind !== g.kind) return false;
    switch (w.kind) {
      case 'TS': {
        const gt = g as typeof w;
        // TS val is checked through the mapping (see matchOutbound); ecr echoes the remote's value.
        return gt.ecr >>> 0 === w.ecr >>> 0;
      }
      case 'sack': {
        const gs = g as typeof w;
        return gs.blocks.length === w.blocks.length && gs.blocks.every(([a, b], i) => a === w.blocks[i]![0] >>> 0 && b === w.blocks[i]![1] >>> 0);
      }
      default:
        return formatOption(w) === formatOption(g);
    }
  }

  const inject = (ev: SegmentEvent): void => {
    const flags = flagsFromLetters(ev.flags);
    if (ev.options === 'any') throw new ScriptSkip(`line ${ev.line}: <...> on an injected segment`);
    const opts = (ev.options ?? []).map((x): DrillOption => {
      if (x.kind === 'sack') return { kind: 'sack', blocks: x.blocks.map(([a, b]) => [abs(a), abs(b)]) };
      return x;
    });
    let optionBytes: Uint8Array;
    try {
      optionBytes = encodeOptions(opts, mapEcr);
    } catch (e) {
      throw new ScriptSkip(`line ${ev.line}: ${(e as Error).message}`);
    }
    const ack = ev.ack !== undefined ? abs(ev.ack) : 0;
    const packet = buildPacket(remote, local, ev.start >>> 0, ack, flags, ev.win ?? 65535, ev.urg ?? 0, optionBytes,
      ev.length);
    remoteEnd.send(packet);
  };

  // ------------------------------------------------------------------ the timeline
  let prev = 0;
  let lastLine = 0;
  try {
    for (const ev of script.events) {
      lastLine = ev.line;
      const when = timeOf(ev.time, prev);
      if (ev.kind === 'segment' && ev.direction === '>') {
        // Wait for the stack's next packet, up to the end of the allowed window.
        const latest = when.latest + tolerance + (tolerancePercent > 0 ? (when.latest * tolerancePercent) / 100 : 0);
        runTo(Math.min(latest, MAX_SCRIPT_MS), ev.line, true);
        const p = outbound.shift();
        if (p === undefined) {
          throw new ScriptFailure(ev.line, `no packet from the stack by ${(latest / 1000).toFixed(3)} s`,
            `> ${formatExpected(ev)}`, 'nothing');
        }
        if (p.t < when.earliest - tolerance) {
          const d = describe(p.packet);
          throw new ScriptFailure(ev.line, `packet at ${(p.t / 1000).toFixed(3)} s, expected at ${(when.earliest / 1000).toFixed(3)} s`,
            `> ${formatExpected(ev)}`, d ? show(d) : '?');
        }
        // A `>` line longer than one segment was written for a stack behind a TSO/GSO device (the
        // Linux selftests): the MSS-sized segments that together make it up, sent at that instant,
        // stand for it.
        const later: Outbound[] = [];
        const d0 = describe(p.packet);
        if (d0 !== null && d0.seg.length > 0 && d0.seg.length < ev.length) {
          let end = d0.seg.end;
          let total = d0.seg.length;
          for (;;) {
            if (outbound.length === 0) runTo(Math.min(p.t + tolerance, MAX_SCRIPT_MS), ev.line, true);
            const q = outbound[0];
            const dq = q === undefined ? null : describe(q.packet);
            if (q === undefined || dq === null || dq.seg.length === 0 || dq.seg.start !== end || total + dq.seg.length > ev.length) break;
            later.push(outbound.shift()!);
            end = dq.seg.end;
            total += dq.seg.length;
            if (total === ev.length) break;
          }
        }
        // Where a TSO device splits a burst is its own affair (Linux marks each piece PSH): a piece
        // that stops inside a run of segments sent together may stand with the PSH it was written with.
        const next = outbound[0];
        const dn = next === undefined ? null : describe(next.packet);
        const splitInBurst = later.length > 0 && dn !== null && next!.t === p.t && dn.seg.length > 0 &&
          dn.seg.start === (describe((later[later.length - 1] ?? p).packet)?.seg.end ?? -1);
        matchOutbound(ev, p, later, splitInBurst);
        prev = when.anchor ?? p.t;
        continue;
      }
      runTo(when.earliest, ev.line, false);
      noUnexpected(ev.line);
      prev = when.anchor ?? clock.now();
      switch (ev.kind) {
        case 'segment':
          inject(ev);
          runTo(clock.now(), ev.line, false);
          break;
        case 'syscall': {
          let out: CallOutcome;
          try {
            const want = exprNumber(ev.result);
            out = sockets.call(ev.name, ev.args, clock.now(), want !== null && want >= 0 ? want : null);
          } catch (e) {
            throw new ScriptSkip(`line ${ev.line}: ${(e as Error).message}`);
          }
          const end = ev.end !== undefined ? timeOf(ev.end, clock.now()) : null;
          if (out.done) {
            if (end !== null && clock.now() < end.earliest - tolerance) {
              throw new ScriptFailure(ev.line, `${ev.name}() returned at once; the script expects it to block`,
                `return at ${(end.earliest / 1000).toFixed(3)} s`, `${(clock.now() / 1000).toFixed(3)} s`);
            }
            checkResult(ev, out);
          } else {
            pending.push({ ev, startedAt: clock.now(), returnAt: end?.earliest ?? null, rangeEnd: end?.latest ?? null });
          }
          runTo(clock.now(), ev.line, false);
          break;
        }
        case 'command':
          warnings.push(`line ${ev.line}: shell command ignored: ${ev.text.trim().slice(0, 60)}`);
          break;
        case 'code': {
          const res = evaluateTcpInfoAssertion(ev.text, sockets.lastConnection?.info() ?? null);
          if (res.skipped !== undefined) warnings.push(`line ${ev.line}: ${res.skipped}`);
          else if (!res.ok) throw new ScriptFailure(ev.line, `assertion failed: ${res.message}`);
          break;
        }
        case 'unsupported':
          throw new ScriptSkip(`line ${ev.line}: ${ev.reason}`);
      }
    }
    // Let blocking calls that should have returned do so.
    for (const p of pending) runTo(Math.max(clock.now(), (p.rangeEnd ?? p.returnAt ?? p.startedAt) + tolerance), p.ev.line, false);
    if (pending.length > 0) {
      const p = pending[0]!;
      throw new ScriptFailure(p.ev.line, `${p.ev.name}() never returned`);
    }
    noUnexpected(lastLine, true);
    return { ok: true, warnings, durationMs: clock.now() };
  } catch (e) {
    if (e instanceof ScriptFailure) {
      return {
        ok: false, error: e.message, line: e.line, warnings, durationMs: clock.now(),
        ...(e.expected !== undefined ? { expected: e.expected } : {}),
        ...(e.actual !== undefined ? { actual: e.actual } : {}),
      };
    }
    if (e instanceof ScriptSkip) return { ok: true, skipped: e.message, warnings, durationMs: clock.now() };
    return { ok: false, error: `internal error: ${(e as Error).stack ?? String(e)}`, line: lastLine, warnings, durationMs: clock.now() };
  } finally {
    for (const c of stack.connections()) c.abort();
  }
}

/**
 * The Linux settings a script's shell lines make (`sysctl -q net.ipv4.tcp_rmem="…"`, and the kernel
 * selftests' `./defaults.sh`), as stack options: shell lines are not run, but these are read, since
 * they decide what Linux puts on the wire (the window scale follows tcp_rmem's maximum, …).
 */
export function sysctlOptions(script: DrillScript, warnings: string[]): Partial<StackOptions> {
  const out: Partial<StackOptions> = {};
  const apply = (name: string, value: string): void => {
    const nums = value.trim().split(/\s+/).map(Number);
    switch (name.replace(/\//g, '.')) {
      case 'net.ipv4.tcp_rmem':
        if (nums.length === 3 && nums.every(Number.isFinite)) {
          out.receiveBufferSize = Math.min(nums[1]!, 1 << 20);
          out.receiveBufferMax = nums[2]!;
        }
        return;
      case 'net.ipv4.tcp_wmem':
        if (nums.length === 3 && nums.every(Number.isFinite)) {
          out.sendBufferSize = nums[1]!;
          out.sendBufferMax = nums[2]!;
        }
        return;
      case 'net.ipv4.tcp_timestamps': out.timestamps = nums[0] !== 0; return;
      case 'net.ipv4.tcp_sack': out.sack = nums[0] !== 0; return;
      case 'net.ipv4.tcp_window_scaling': out.windowScaling = nums[0] !== 0; return;
      case 'net.ipv4.tcp_syn_retries': if (Number.isInteger(nums[0])) out.synRetries = nums[0]!; return;
      case 'net.ipv4.tcp_congestion_control':
        if (value.trim() === 'cubic') out.congestionControl = 'cubic';
        else if (value.trim() === 'reno') out.congestionControl = 'newreno';
        else warnings.push(`sysctl ${name}=${value}: not available, CUBIC used`);
        return;
      default:
        warnings.push(`sysctl ${name} not modelled`);
    }
  };
  for (const ev of script.events) {
    if (ev.kind !== 'command') continue;
    // The Linux kernel selftests' defaults.sh (tools/testing/selftests/net/packetdrill).
    if (/(^|[\s/])defaults\.sh\b/.test(ev.text)) {
      apply('net.ipv4.tcp_rmem', `4096 540000 ${15 * 1024 * 1024}`);
      apply('net.ipv4.tcp_wmem', `4096 ${256 * 1024} 4194304`);
      apply('net.ipv4.tcp_timestamps', '1');
      apply('net.ipv4.tcp_sack', '1');
      apply('net.ipv4.tcp_syn_retries', '5');
      apply('net.ipv4.tcp_congestion_control', 'cubic');
    }
    for (const m of ev.text.matchAll(/sysctl\s+(?:-[a-z]+\s+)*([\w./]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))/g)) {
      apply(m[1]!, m[2] ?? m[3] ?? m[4] ?? '');
    }
  }
  return out;
}

/** Segments sent back to back, as the one large segment a TSO device would have taken. */
function coalesce(first: { seg: ScriptSegment; srcPort: number; dstPort: number; tsVal: number | null },
  rest: Array<{ seg: ScriptSegment }>): { seg: ScriptSegment; srcPort: number; dstPort: number; tsVal: number | null } {
  const last = rest[rest.length - 1]!.seg;
  let flags = first.seg.flags;
  let length = first.seg.length;
  for (const r of rest) {
    // PSH and FIN on any piece belong to the whole (Linux sets PSH on the last piece of a TSO burst).
    flags |= r.seg.flags & 0x09;
    length += r.seg.length;
  }
  return { ...first, seg: { ...first.seg, flags, length, end: (first.seg.start + length) >>> 0, ack: last.ack, win: last.win } };
}

/** An event's time window in ms: earliest, latest, and the time later `+` lines count from. */
function timeOf(t: TimeSpec, prev: number): { earliest: number; latest: number; anchor: number | null } {
  switch (t.kind) {
    case 'absolute': return { earliest: t.t * 1000, latest: t.t * 1000, anchor: t.t * 1000 };
    case 'relative': return { earliest: prev + t.t * 1000, latest: prev + t.t * 1000, anchor: prev + t.t * 1000 };
    case 'any': return { earliest: prev, latest: MAX_SCRIPT_MS, anchor: null };
    case 'range': {
      const base = t.relative ? prev : 0;
      return { earliest: base + t.from * 1000, latest: base + t.to * 1000, anchor: null };
    }
  }
}

function exprNumber(e: Expr): number | null {
  if (e.t === 'num') return e.v;
  return null;
}
