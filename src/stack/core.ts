/**
 * What every layer of a stack shares: the clock and the packet's arrival time, counters, drops and
 * tracing. One object, made by the Stack and handed to its layers (src/net/ip.ts, src/net/icmp.ts,
 * src/stack/tcp.ts, src/udp/udp.ts), so no layer needs the Stack itself.
 * @internal
 */
import type { Clock } from '../link/clock.js';
import type { TraceEvent } from '../trace/events.js';
import { Emitter } from '../util/emitter.js';
import type { DropReason } from '../wire/drop.js';

export interface StackCounters {
  /** Packets dropped, by reason. */
  drops: Partial<Record<DropReason, number>>;
  ipIn: number;
  ipOut: number;
  tcpIn: number;
  tcpOut: number;
  rstOut: number;
  retransmits: number;
  challengeAcks: number;
  icmpIn: number;
  icmpOut: number;
  /** ICMP errors not sent because of the rate limit (RFC 1812 §4.3.2.8, RFC 4443 §2.4 f). */
  icmpRateLimited: number;
  /** UDP datagrams taken in (checksum and ports valid), and sent. */
  udpIn: number;
  udpOut: number;
  /** IP fragments taken into reassembly (RFC 791, RFC 8200 §4.5), and datagrams they completed. */
  fragmentsIn: number;
  reassembled: number;
  /** Incomplete datagrams discarded: timed out, overlapping (RFC 5722), or evicted for memory. */
  reassemblyTimeouts: number;
  reassemblyOverlaps: number;
  reassemblyEvictions: number;
  /** Fragments sent (UDP datagrams larger than the link MTU; TCP never fragments). */
  fragmentsOut: number;
  activeOpens: number;
  passiveOpens: number;
  /**
   * SYNs dropped because a listener's accept queue was full (or its SYN queue, without SYN
   * cookies), and cookie ACKs dropped because the accept queue was full.
   */
  listenOverflows: number;
  /** SYNs that found their listener's SYN queue full (answered with a cookie, or dropped). */
  synQueueOverflows: number;
  /** SYN,ACKs sent with a SYN cookie, no state kept (RFC 4987 §3.6). */
  synCookiesSent: number;
  /** ACKs that returned a valid SYN cookie. */
  synCookiesValid: number;
  /** ACKs to a listener that had sent cookies recently whose cookie did not check out: reset, as any bad ACK in LISTEN. */
  synCookiesFailed: number;
  /** SYNs (and cookie ACKs) dropped because the stack held `maxConnections` connections. */
  connectionLimitDrops: number;
  /** Exceptions caught at the stack boundary (a bug, or a throwing user callback). */
  internalErrors: number;
  /** Catch-all termination (src/stack/forward.ts): SYNs handed to the forwarder. */
  forwardedSyns: number;
  /** … the guest's SYNs retransmitted while their request waited (dropped). */
  forwardSynRetransmits: number;
  /** … SYNs dropped because `maxPending` requests were waiting. */
  forwardOverflows: number;
  /** … requests the forwarder refused (RST or ICMP). */
  forwardRejected: number;
  /** … requests never settled within `pendingTimeoutMs`. */
  forwardExpired: number;
  /** UDP datagrams no socket took, handed to the forwarder. */
  udpForwarded: number;
}

export function newCounters(): StackCounters {
  return {
    drops: {}, ipIn: 0, ipOut: 0, tcpIn: 0, tcpOut: 0, rstOut: 0, retransmits: 0, challengeAcks: 0,
    icmpIn: 0, icmpOut: 0, icmpRateLimited: 0, udpIn: 0, udpOut: 0,
    fragmentsIn: 0, reassembled: 0, reassemblyTimeouts: 0, reassemblyOverlaps: 0, reassemblyEvictions: 0, fragmentsOut: 0,
    activeOpens: 0, passiveOpens: 0, listenOverflows: 0,
    synQueueOverflows: 0, synCookiesSent: 0, synCookiesValid: 0, synCookiesFailed: 0, connectionLimitDrops: 0, internalErrors: 0,
    forwardedSyns: 0, forwardSynRetransmits: 0, forwardOverflows: 0, forwardRejected: 0, forwardExpired: 0, udpForwarded: 0,
  };
}

export class StackCore {
  readonly counters: StackCounters = newCounters();
  readonly emitter = new Emitter<{ trace: [TraceEvent] }>();
  /** Someone listens to 'trace' (kept by Stack.on/off): hot paths build no event otherwise. */
  traced = false;
  /** While a packet (or a timer run) is processed: its time, read once (see now()). */
  inputNow = 0;
  timeFrozen = false;

  constructor(readonly clock: Clock, readonly name: string) {}

  /** The host's time: the arrival time of the packet being processed, else the clock's. */
  now(): number {
    return this.timeFrozen ? this.inputNow : this.clock.now();
  }

  drop(reason: DropReason, packet: Uint8Array): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
    if (this.traced) this.trace({ type: 'drop', t: this.clock.now(), reason, packet });
  }

  /**
   * Trace listeners are observers: one that throws is counted as an internal error and processing
   * goes on (it used to unwind through a TCB in the middle of an event).
   */
  trace(e: TraceEvent): void {
    try {
      this.emitter.emit('trace', e);
    } catch {
      this.counters.internalErrors++;
    }
  }

  /** A note for the trace (nothing when no one listens). */
  note(what: string, rfc?: string): void {
    if (!this.traced) return;
    this.trace(rfc === undefined ? { type: 'note', t: this.clock.now(), what } : { type: 'note', t: this.clock.now(), what, rfc });
  }

  internalError(err: unknown): void {
    this.counters.internalErrors++;
    if (this.traced) this.trace({ type: 'note', t: this.clock.now(), what: `internal error: ${String(err)}` });
  }

  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.internalError(err);
    }
  }
}
