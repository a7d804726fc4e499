/**
 * Relayed UDP flows (issue 15): each guest 4-tuple (source address and port, destination address
 * and port) is one flow with one upstream "connection", NAT-like:
 * - a flow lives while datagrams pass in either direction and is forgotten after `idleMs` without
 *   any (RFC 4787 REQ-5: a NAT's UDP mapping timer must not expire in less than 2 minutes, and 5
 *   is recommended; the default here is 5);
 * - the number of flows is bounded: at the bound, the least recently active flow makes room
 *   (as a NAT under pressure does; refusing new flows would let a few idle ones starve the guest);
 * - datagrams that arrive while the upstream flow is being opened wait in a short queue (bounded;
 *   beyond it they are dropped, as UDP may be).
 * Replies go back to the guest from the address and port it wrote to (stack.udpSendFrom).
 */
import type { Clock, TimerHandle } from '../link/clock.js';
import { formatEndpoint } from '../wire/address.js';
import type { UdpForwardDatagram, UdpForwardVerdict } from '../stack/forward.js';
import type { Stack } from '../stack/stack.js';
import type { Upstream, UpstreamDatagrams, UpstreamError, UpstreamTarget } from './upstream.js';

/** Datagrams held per flow while its upstream opens. */
const OPEN_QUEUE = 32;

export interface UdpFlowInfo {
  id: number;
  guest: string;
  destination: string;
  target: UpstreamTarget;
}

export interface UdpFlowClosed extends UdpFlowInfo {
  datagramsUp: number;
  datagramsDown: number;
  bytesUp: number;
  bytesDown: number;
  /** 'idle', 'evicted', 'closed' (the gateway stopping), or the upstream's error. */
  reason: string;
  durationMs: number;
}

export interface UdpFlowsOptions {
  stack: Stack;
  upstream: Upstream;
  clock: Clock;
  /** Default 300,000 (5 min, RFC 4787). */
  idleMs?: number;
  /** Default 1024. */
  maxFlows?: number;
  /** Where a new flow goes, or the ICMP error that refuses it. */
  target: (d: UdpForwardDatagram) => UpstreamTarget | Exclude<UdpForwardVerdict, true>;
  onOpen?: (f: UdpFlowInfo) => void;
  onClose?: (f: UdpFlowClosed) => void;
}

class Flow {
  up: UpstreamDatagrams | null = null;
  queue: Uint8Array[] = [];
  lastActive: number;
  datagramsUp = 0;
  datagramsDown = 0;
  bytesUp = 0;
  bytesDown = 0;
  closed = false;
  constructor(
    readonly id: number,
    readonly key: string,
    readonly d: UdpForwardDatagram,
    readonly target: UpstreamTarget,
    readonly openedAt: number,
  ) {
    this.lastActive = openedAt;
  }
}

export class UdpFlows {
  /** In order of last activity: the first is the least recently active (re-inserted on use). */
  private readonly flows = new Map<string, Flow>();
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private nextId = 1;
  private sweepHandle: TimerHandle | null = null;
  readonly counters = { opened: 0, refused: 0, idleClosed: 0, evicted: 0, queueDrops: 0, failed: 0 };

  constructor(private readonly o: UdpFlowsOptions) {
    this.idleMs = o.idleMs ?? 300_000;
    this.maxFlows = o.maxFlows ?? 1024;
    if (!(this.idleMs > 0)) throw new RangeError(`udp idle timeout must be > 0 ms (got ${o.idleMs})`);
    if (!(Number.isInteger(this.maxFlows) && this.maxFlows >= 1)) throw new RangeError(`max UDP flows must be an integer >= 1 (got ${o.maxFlows})`);
  }

  get size(): number {
    return this.flows.size;
  }

  /** The stack's UDP forwarder (stack.forwardUdp). */
  readonly handle = (d: UdpForwardDatagram): UdpForwardVerdict => {
    const key = `${d.src}|${d.srcPort}|${d.dst}|${d.dstPort}`;
    const now = this.o.clock.now();
    let f = this.flows.get(key);
    if (f === undefined) {
      const t = this.o.target(d);
      if (typeof t !== 'object') {
        this.counters.refused++;
        return t;
      }
      if (this.flows.size >= this.maxFlows) {
        const oldest = this.flows.values().next().value as Flow;
        this.counters.evicted++;
        this.closeFlow(oldest, 'evicted');
      }
      f = new Flow(this.nextId++, key, d, t, now);
      this.flows.set(key, f);
      this.counters.opened++;
      this.open(f);
      this.armSweep();
    } else {
      // Most recently active goes last.
      this.flows.delete(key);
      this.flows.set(key, f);
      f.lastActive = now;
    }
    f.datagramsUp++;
    f.bytesUp += d.data.length;
    if (f.up !== null) f.up.send(d.data);
    else if (f.queue.length < OPEN_QUEUE) f.queue.push(d.data);
    else this.counters.queueDrops++;
    return true;
  };

  private open(f: Flow): void {
    const info = this.info(f);
    this.o.onOpen?.(info);
    this.o.upstream.openUdp(f.target).then((up) => {
      if (f.closed) {
        up.close();
        return;
      }
      f.up = up;
      up.onmessage = (data) => this.reply(f, data);
      up.onclose = (e) => this.closeFlow(f, e === null ? 'closed' : `upstream: ${e.message}`, false);
      for (const q of f.queue) up.send(q);
      f.queue = [];
    }, (e: UpstreamError) => {
      this.counters.failed++;
      this.closeFlow(f, `upstream: ${e instanceof Error ? e.message : String(e)}`, false);
    });
  }

  private reply(f: Flow, data: Uint8Array): void {
    if (f.closed) return;
    f.lastActive = this.o.clock.now();
    this.flows.delete(f.key);
    this.flows.set(f.key, f);
    f.datagramsDown++;
    f.bytesDown += data.length;
    try {
      this.o.stack.udpSendFrom({ address: f.d.dst, port: f.d.dstPort }, { address: f.d.src, port: f.d.srcPort }, data);
    } catch {
      // Larger than a datagram the guest's family can carry: dropped, as a router would.
      this.counters.queueDrops++;
    }
  }

  private info(f: Flow): UdpFlowInfo {
    return { id: f.id, guest: formatEndpoint(f.d.src, f.d.srcPort), destination: formatEndpoint(f.d.dst, f.d.dstPort), target: f.target };
  }

  private closeFlow(f: Flow, reason: string, closeUp = true): void {
    if (f.closed) return;
    f.closed = true;
    if (this.flows.get(f.key) === f) this.flows.delete(f.key);
    if (closeUp && f.up !== null) f.up.close();
    f.queue = [];
    this.o.onClose?.({
      ...this.info(f), datagramsUp: f.datagramsUp, datagramsDown: f.datagramsDown, bytesUp: f.bytesUp, bytesDown: f.bytesDown,
      reason, durationMs: this.o.clock.now() - f.openedAt,
    });
  }

  /** One timer for all flows, while there are any: a quarter of the idle time, at most 30 s. */
  private armSweep(): void {
    if (this.sweepHandle !== null || this.flows.size === 0) return;
    const every = Math.min(Math.max(this.idleMs / 4, 250), 30_000);
    this.sweepHandle = this.o.clock.schedule(this.o.clock.now() + every, () => {
      this.sweepHandle = null;
      const now = this.o.clock.now();
      for (const f of this.flows.values()) {
        if (now - f.lastActive < this.idleMs) break;
        this.counters.idleClosed++;
        this.closeFlow(f, 'idle');
      }
      this.armSweep();
    });
  }

  /** Closes every flow (the gateway stopping). */
  close(): void {
    if (this.sweepHandle !== null) this.o.clock.cancel(this.sweepHandle);
    this.sweepHandle = null;
    for (const f of [...this.flows.values()]) this.closeFlow(f, 'closed');
  }
}
