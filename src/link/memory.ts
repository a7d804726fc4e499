/**
 * An in-memory link between two stacks, with the impairments real paths have: propagation delay,
 * a bandwidth bottleneck with a drop-tail queue, loss, reordering, duplication and corruption.
 * Every random choice comes from a seeded `Rng`, one per direction, so a run replays exactly for a
 * given seed and the traffic in one direction never changes the fate of packets in the other.
 *
 * Delivery is always asynchronous (through the clock), never inside `send()`: two stacks joined by
 * a link must not recurse into each other.
 */
import { RealClock } from './clock.js';
import type { Clock, TimerHandle } from './clock.js';
import type { LinkEnd } from './link.js';
import { Rng } from './rng.js';

export interface MemoryLinkOptions {
  /** Largest IP packet carried; bigger ones are dropped (reason 'mtu'). Default 1500. */
  mtu?: number;
  /** One-way propagation delay in ms. Default 0. */
  delayMs?: number;
  /** Bottleneck rate in bit/s; packets are serialized one after another. Default Infinity. */
  bandwidthBps?: number;
  /** Probability that a packet is lost on the wire. */
  lossRate?: number;
  /** Probability that a packet gets an extra random delay so later packets overtake it. */
  reorderRate?: number;
  /** Probability that a packet is delivered twice. */
  duplicateRate?: number;
  /** Probability that one random bit of a delivered packet is flipped. */
  corruptRate?: number;
  /** Seed of the impairment PRNG. Default 1. */
  seed?: number;
  /** Default: a new RealClock. */
  clock?: Clock;
  /** Packets that may wait for the bottleneck; one more is dropped (reason 'queue'). Default Infinity. */
  queuePackets?: number;
}

export type LinkDropReason = 'loss' | 'mtu' | 'queue';

/** Counters for the direction leaving one end. */
export interface MemoryLinkStats {
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

/** One direction of the link: the wire from one end to the other. */
class Direction {
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
  /** Invalidates a deferred fire that was superseded. */
  private armToken = 0;

  readonly stats: MemoryLinkStats = {
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

  constructor(
    private readonly clock: Clock,
    private readonly mtu: number,
    private readonly delayMs: number,
    private readonly bandwidthBps: number,
    private readonly lossRate: number,
    private readonly reorderRate: number,
    private readonly duplicateRate: number,
    private readonly corruptRate: number,
    private readonly queuePackets: number,
    seed: number,
  ) {
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
    const token = ++this.armToken;
    if (at <= this.clock.now()) {
      this.clock.defer(() => {
        if (token === this.armToken) this.fire();
      });
    } else {
      this.armedHandle = this.clock.schedule(at, this.fire);
    }
  }

  /** Delivers every packet due, as one burst, in (time, send order). */
  private readonly fire = (): void => {
    this.armedAt = Infinity;
    this.armedHandle = undefined;
    this.armToken++;
    const now = this.clock.now();
    // Packets sent by receivers during this burst wait for the next turn: no unbounded ping-pong
    // inside one callback.
    const cutoff = this.nextSeq;
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
      this.receiver?.(packet);
    }
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

/** One end of a `MemoryLink`. Hooks and `stats` describe the packets this end sends. */
export class MemoryLinkEnd implements LinkEnd {
  /** @internal */
  constructor(
    readonly mtu: number,
    private readonly out: Direction,
    private readonly incoming: Direction,
  ) {}

  send(packet: Uint8Array): void {
    this.out.send(packet);
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.incoming.receiver = fn;
  }

  /** Every packet this end sends, before any impairment. */
  onTransmit(fn: (packet: Uint8Array) => void): void {
    this.out.transmitObservers.push(fn);
  }

  /** Every packet this end sent that the link dropped, and why. */
  onDrop(fn: (packet: Uint8Array, reason: LinkDropReason) => void): void {
    this.out.dropObservers.push(fn);
  }

  /** Every packet this end sent as it reaches the peer (corrupted copies and duplicates included). */
  onDeliver(fn: (packet: Uint8Array) => void): void {
    this.out.deliverObservers.push(fn);
  }

  get stats(): Readonly<MemoryLinkStats> {
    return this.out.stats;
  }
}

export class MemoryLink {
  /** Two connected ends; the impairments apply to each direction independently. */
  static pair(options: MemoryLinkOptions = {}): [MemoryLinkEnd, MemoryLinkEnd] {
    const clock = options.clock ?? new RealClock();
    const mtu = options.mtu ?? 1500;
    const seed = options.seed ?? 1;
    const make = (dirSeed: number): Direction =>
      new Direction(
        clock,
        mtu,
        options.delayMs ?? 0,
        options.bandwidthBps ?? Infinity,
        options.lossRate ?? 0,
        options.reorderRate ?? 0,
        options.duplicateRate ?? 0,
        options.corruptRate ?? 0,
        options.queuePackets ?? Infinity,
        dirSeed,
      );
    const ab = make(seed);
    // A different stream for the reverse direction (the Rng's splitmix seeding decorrelates them).
    const ba = make((seed ^ 0x5bd1e995) >>> 0);
    return [new MemoryLinkEnd(mtu, ab, ba), new MemoryLinkEnd(mtu, ba, ab)];
  }
}
