/**
 * The impairments real paths have — propagation delay, a bandwidth bottleneck with a drop-tail queue,
 * loss, reordering, duplication and corruption — as one seeded model. `MemoryLink` is two of these
 * wires; `impair()` puts the same model around any link (a `TunLink`, say), so a path to the Linux
 * kernel can be made as hostile as a simulated one. Every random choice comes from a seeded `Rng`,
 * one per direction, so a run replays exactly for a given seed (as far as the peer's own timing
 * allows) and the traffic in one direction never changes the fate of packets in the other.
 *
 * Delivery is always asynchronous (through the clock), never inside `send()`: two stacks joined by
 * a wire must not recurse into each other.
 */
import { RealClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import type { EthernetLinkEnd, LinkEnd } from './link.js';
import { Rng } from './rng.js';

/** What one direction of a path does to the packets on it. All default to a perfect wire. */
export interface WireImpairments {
  /** One-way propagation delay in ms. Default 0. */
  delayMs?: number;
  /** Bottleneck rate in bit/s; packets are serialized one after another. Default Infinity. */
  bandwidthBps?: number;
  /** Probability that a packet is lost on the wire. */
  lossRate?: number;
  /** Probability that a packet gets an extra random delay (up to 2×delay + 1 ms) so later packets overtake it. */
  reorderRate?: number;
  /** Probability that a packet is delivered twice. */
  duplicateRate?: number;
  /** Probability that one random bit of a delivered packet is flipped. */
  corruptRate?: number;
  /** Packets that may wait for the bottleneck; one more is dropped (reason 'queue'). Default Infinity. */
  queuePackets?: number;
}

function checked(name: string, n: number, ok: (n: number) => boolean): number {
  if (Number.isNaN(n) || !ok(n)) throw new RangeError(`impairment ${name}: ${n} is out of range`);
  return n;
}

function probability(name: string, p: number | undefined): number {
  return checked(name, p ?? 0, (n) => n >= 0 && n <= 1);
}

/** The seed of the reverse direction: another stream (the Rng's splitmix seeding decorrelates them). */
export function reverseSeed(seed: number): number {
  return (seed ^ 0x5bd1e995) >>> 0;
}

export type LinkDropReason = 'loss' | 'mtu' | 'queue';

/** Counters of one direction. */
export interface WireStats {
  /** Packets this end sent (every `send` call). */
  sent: number;
  /** Packets handed to the peer, duplicates included. */
  delivered: number;
  /** Packets dropped for any reason. */
  dropped: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
}

/** A delivery that is not in time order with the FIFO tail (reordered or duplicated). */
interface LateDelivery {
  at: number;
  seq: number;
  packet: Uint8Array;
}

function before(atA: number, seqA: number, atB: number, seqB: number): boolean {
  return atA < atB || (atA === atB && seqA < seqB);
}

/**
 * One direction of a path: packets sent in come out at `receiver`, after the impairments. Used by
 * `MemoryLink` (one per direction) and by `impair()` around any link.
 */
export class ImpairedWire {
  private readonly rng: Rng;
  /** When the bottleneck finishes serializing the last accepted packet. */
  private busyUntil = -Infinity;
  /** Serialization start times of accepted packets, to count those still waiting (drop-tail). */
  private readonly starts: number[] = [];
  private startsHead = 0;

  // Deliveries in (time, send order): the common in-order ones in a FIFO of parallel arrays (no
  // allocation per packet), the rare out-of-order ones in a small heap.
  private fifoAt: number[] = [];
  private fifoSeq: number[] = [];
  private fifoPacket: Uint8Array[] = [];
  private fifoHead = 0;
  private readonly late: LateDelivery[] = [];
  private nextSeq = 0;

  /** Time the clock callback is armed for (Infinity: not armed). */
  private armedAt = Infinity;
  private armedHandle: TimerHandle | undefined;
  /** A `clock.defer(fireDeferred)` is queued (the wire is armed for a time already due). */
  private deferPending = false;

  readonly stats: WireStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
  };
  readonly transmitObservers: Array<(packet: Uint8Array) => void> = [];
  readonly dropObservers: Array<(packet: Uint8Array, reason: LinkDropReason) => void> = [];
  readonly deliverObservers: Array<(packet: Uint8Array) => void> = [];
  receiver: ((packet: Uint8Array) => void) | undefined;
  /** Called after the last packet of each burst `fire` delivers. */
  burstEnd: (() => void) | undefined;

  private readonly mtu: number;
  private readonly delayMs: number;
  private readonly bandwidthBps: number;
  private readonly lossRate: number;
  private readonly reorderRate: number;
  private readonly duplicateRate: number;
  private readonly corruptRate: number;
  private readonly queuePackets: number;

  constructor(
    private readonly clock: Clock,
    options: WireImpairments & { mtu?: number },
    seed: number,
  ) {
    this.mtu = options.mtu ?? Infinity;
    this.delayMs = checked('delayMs', options.delayMs ?? 0, (n) => n >= 0);
    this.bandwidthBps = checked('bandwidthBps', options.bandwidthBps ?? Infinity, (n) => n > 0);
    this.lossRate = probability('lossRate', options.lossRate);
    this.reorderRate = probability('reorderRate', options.reorderRate);
    this.duplicateRate = probability('duplicateRate', options.duplicateRate);
    this.corruptRate = probability('corruptRate', options.corruptRate);
    this.queuePackets = checked('queuePackets', options.queuePackets ?? Infinity, (n) => n >= 0);
    this.rng = new Rng(seed);
  }

  send(packet: Uint8Array): void {
    this.stats.sent++;
    for (const fn of this.transmitObservers) fn(packet);
    if (packet.length > this.mtu) return this.drop(packet, 'mtu');

    const now = this.clock.now();
    let start = this.busyUntil > now ? this.busyUntil : now;
    if (this.queuePackets !== Infinity) {
      const starts = this.starts;
      while (this.startsHead < starts.length && starts[this.startsHead]! <= now) this.startsHead++;
      if (this.startsHead === starts.length) {
        starts.length = 0;
        this.startsHead = 0;
      }
      // Packets whose serialization has not begun are the ones waiting in the bottleneck queue.
      if (starts.length - this.startsHead >= this.queuePackets) return this.drop(packet, 'queue');
      if (start > now) starts.push(start);
    }
    const end =
      this.bandwidthBps === Infinity
        ? start
        : start + (packet.length * 8 * 1000) / this.bandwidthBps;
    this.busyUntil = end;

    // Lost on the wire after it used its share of the bottleneck.
    if (this.lossRate > 0 && this.rng.next() < this.lossRate) return this.drop(packet, 'loss');

    let at = end + this.delayMs;
    if (this.reorderRate > 0 && this.rng.next() < this.reorderRate) {
      at += (1 - this.rng.next()) * (2 * this.delayMs + 1);
      this.stats.reordered++;
    }
    const original = packet;
    if (this.corruptRate > 0 && this.rng.next() < this.corruptRate && packet.length > 0) {
      // A copy: the sender may still reference its buffer (a retransmission queue, say).
      packet = packet.slice();
      const bit = this.rng.int(0, packet.length * 8 - 1);
      packet[bit >> 3]! ^= 1 << (bit & 7);
      this.stats.corrupted++;
    }
    this.enqueue(at, packet);
    if (this.duplicateRate > 0 && this.rng.next() < this.duplicateRate) {
      this.stats.duplicated++;
      this.enqueue(at + 0.001 + this.rng.next() * (this.delayMs / 2), original.slice());
    }
  }

  private drop(packet: Uint8Array, reason: LinkDropReason): void {
    this.stats.dropped++;
    for (const fn of this.dropObservers) fn(packet, reason);
  }

  private enqueue(at: number, packet: Uint8Array): void {
    const seq = this.nextSeq++;
    const n = this.fifoAt.length;
    if (n === this.fifoHead || at >= this.fifoAt[n - 1]!) {
      this.fifoAt.push(at);
      this.fifoSeq.push(seq);
      this.fifoPacket.push(packet);
    } else {
      this.latePush({ at, seq, packet });
    }
    this.arm(at);
  }

  private arm(at: number): void {
    if (at >= this.armedAt) return;
    if (this.armedHandle !== undefined) {
      this.clock.cancel(this.armedHandle);
      this.armedHandle = undefined;
    }
    this.armedAt = at;
    if (at <= this.clock.now()) {
      // One queued turn is enough: it delivers everything due by then, however early. (No closure
      // per arm: a bulk transfer arms a wire for every burst.)
      if (!this.deferPending) {
        this.deferPending = true;
        this.clock.defer(this.fireDeferred);
      }
    } else {
      this.armedHandle = this.clock.schedule(at, this.fire);
    }
  }

  private readonly fireDeferred = (): void => {
    this.deferPending = false;
    // Still armed for a due time (not re-armed onto a clock timer since): deliver.
    if (this.armedHandle === undefined && this.armedAt !== Infinity) this.fire();
  };

  /** Delivers every packet due, as one burst, in (time, send order). */
  private readonly fire = (): void => {
    this.armedAt = Infinity;
    this.armedHandle = undefined;
    const now = this.clock.now();
    // Packets sent by receivers during this burst wait for the next turn: no unbounded ping-pong
    // inside one callback.
    const cutoff = this.nextSeq;
    let delivered = false;
    for (;;) {
      const hasFifo = this.fifoHead < this.fifoAt.length;
      const lateTop = this.late[0];
      let packet: Uint8Array;
      if (
        hasFifo &&
        (lateTop === undefined ||
          before(this.fifoAt[this.fifoHead]!, this.fifoSeq[this.fifoHead]!, lateTop.at, lateTop.seq))
      ) {
        if (this.fifoAt[this.fifoHead]! > now || this.fifoSeq[this.fifoHead]! >= cutoff) break;
        packet = this.fifoPacket[this.fifoHead]!;
        this.fifoHead++;
        if (this.fifoHead === this.fifoAt.length) {
          this.fifoAt = [];
          this.fifoSeq = [];
          this.fifoPacket = [];
          this.fifoHead = 0;
        } else if (this.fifoHead >= 1024 && this.fifoHead * 2 >= this.fifoAt.length) {
          this.fifoAt = this.fifoAt.slice(this.fifoHead);
          this.fifoSeq = this.fifoSeq.slice(this.fifoHead);
          this.fifoPacket = this.fifoPacket.slice(this.fifoHead);
          this.fifoHead = 0;
        }
      } else if (lateTop !== undefined) {
        if (lateTop.at > now || lateTop.seq >= cutoff) break;
        packet = this.latePop().packet;
      } else {
        break;
      }
      this.stats.delivered++;
      for (const fn of this.deliverObservers) fn(packet);
      delivered = true;
      this.receiver?.(packet);
    }
    if (delivered) this.burstEnd?.();
    let next = Infinity;
    if (this.fifoHead < this.fifoAt.length) next = this.fifoAt[this.fifoHead]!;
    if (this.late.length > 0 && this.late[0]!.at < next) next = this.late[0]!.at;
    if (next !== Infinity) this.arm(next);
  };

  private latePush(item: LateDelivery): void {
    const heap = this.late;
    let i = heap.length;
    heap.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(item.at, item.seq, p.at, p.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  private latePop(): LateDelivery {
    const heap = this.late;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(heap[c + 1]!.at, heap[c + 1]!.seq, heap[c]!.at, heap[c]!.seq)) c++;
        if (!before(heap[c]!.at, heap[c]!.seq, last.at, last.seq)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}

export interface ImpairOptions extends WireImpairments {
  /** Seed of the impairment PRNG; the incoming direction uses a stream derived from it. Default 1. */
  seed?: number;
  /** Default: a new RealClock. Use the clock the stack on top uses. */
  clock?: Clock;
}

/**
 * A link end seen through an impaired path: what the stack sends crosses one `ImpairedWire` before
 * it reaches `inner`, what `inner` receives crosses another before it reaches the stack. The same
 * impairments apply to each direction, with independent random streams.
 */
export class ImpairedLinkEnd implements LinkEnd {
  readonly mtu: number;
  /** The wire from the stack to `inner`. */
  readonly outgoing: ImpairedWire;
  /** The wire from `inner` to the stack. */
  readonly incoming: ImpairedWire;
  /**
   * The inner link's (LinkEnd.checksumOffload): its peer leaves TCP checksums 0 and does not verify
   * ours, so the stack on top must do the same, or every segment from the peer is dropped.
   */
  readonly checksumOffload: boolean;

  constructor(readonly inner: LinkEnd, options: ImpairOptions = {}) {
    const clock = options.clock ?? new RealClock();
    const seed = options.seed ?? 1;
    this.mtu = inner.mtu;
    this.checksumOffload = inner.checksumOffload === true;
    // As MemoryLink.pair: without checksums nothing would detect the corruption we add.
    if (this.checksumOffload && (options.corruptRate ?? 0) > 0) {
      throw new RangeError('impair: corruptRate > 0 around a link with checksumOffload: corrupted packets must be detected');
    }
    // No MTU check here: the inner link enforces its own.
    this.outgoing = new ImpairedWire(clock, options, seed);
    this.incoming = new ImpairedWire(clock, options, reverseSeed(seed));
    this.outgoing.receiver = (packet) => inner.send(packet);
    inner.onPacket((packet) => this.incoming.send(packet));
  }

  send(packet: Uint8Array): void {
    this.outgoing.send(packet);
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.incoming.receiver = fn;
  }

  /** Called after each burst the incoming wire delivers (see LinkEnd.onBurstEnd). */
  onBurstEnd(fn: () => void): void {
    this.incoming.burstEnd = fn;
  }

  /** What the inner link has waiting enters the incoming wire now (and is delayed there as usual). */
  receivePending(): void {
    this.inner.receivePending?.();
  }

  /** Counters of both directions: `out` what the stack sent, `in` what the inner link received. */
  get stats(): { out: Readonly<WireStats>; in: Readonly<WireStats> } {
    return { out: this.outgoing.stats, in: this.incoming.stats };
  }
}

/** `inner` behind the impairments in `options`, in both directions. */
export function impair(inner: LinkEnd, options: ImpairOptions = {}): ImpairedLinkEnd {
  return new ImpairedLinkEnd(inner, options);
}

/**
 * An Ethernet link behind the same impairments (frames instead of packets; the model does not look
 * inside): `synack gateway --loss …` impairs its TAP device this way.
 */
export function impairEthernet(inner: EthernetLinkEnd, options: ImpairOptions = {}): EthernetLinkEnd & { readonly stats: ImpairedLinkEnd['stats'] } {
  const asPackets: LinkEnd = {
    mtu: inner.mtu,
    send: (frame) => inner.send(frame),
    onPacket: (fn) => inner.onFrame(fn),
    ...(inner.receivePending !== undefined ? { receivePending: () => inner.receivePending!() } : {}),
  };
  const imp = new ImpairedLinkEnd(asPackets, options);
  return {
    linkType: 'ethernet',
    mtu: inner.mtu,
    send: (frame) => imp.send(frame),
    onFrame: (fn) => imp.onPacket(fn),
    onBurstEnd: (fn) => imp.onBurstEnd(fn),
    receivePending: () => imp.receivePending(),
    get stats() {
      return imp.stats;
    },
  };
}
