/**
 * An in-memory link between two stacks: two `ImpairedWire`s (src/link/impair.ts), one per
 * direction, with the impairments real paths have (delay, a bottleneck with a drop-tail queue, loss,
 * reordering, duplication, corruption), each from its own seeded random stream.
 */
import { RealClock } from './clock.js';
import type { Clock } from './clock.js';
import { ImpairedWire, reverseSeed } from './impair.js';
import type { LinkDropReason, WireImpairments, WireStats } from './impair.js';
import type { LinkEnd } from './link.js';

export type { LinkDropReason } from './impair.js';
/** Counters for the direction leaving one end. */
export type MemoryLinkStats = WireStats;

export interface MemoryLinkOptions extends WireImpairments {
  /** Largest IP packet carried; bigger ones are dropped (reason 'mtu'). Default 1500. */
  mtu?: number;
  /** Seed of the impairment PRNG. Default 1. */
  seed?: number;
  /** Default: a new RealClock. */
  clock?: Clock;
  /**
   * Skip TCP checksums, as Linux loopback does (the stacks neither compute nor verify them; the
   * checksum field is left 0). Default false. Refused with `corruptRate` > 0: corruption must be
   * detected. For benchmarks, which report the figure with and without.
   */
  checksumOffload?: boolean;
}

/** One end of a `MemoryLink`. Hooks and `stats` describe the packets this end sends. */
export class MemoryLinkEnd implements LinkEnd {
  /** @internal */
  constructor(
    readonly mtu: number,
    private readonly out: ImpairedWire,
    private readonly incoming: ImpairedWire,
    readonly checksumOffload = false,
  ) {}

  send(packet: Uint8Array): void {
    this.out.send(packet);
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.incoming.receiver = fn;
  }

  /** Called after each burst of packets delivered to this end (see LinkEnd.onBurstEnd). */
  onBurstEnd(fn: () => void): void {
    this.incoming.burstEnd = fn;
  }

  /**
   * Every packet this end sends, before any impairment. A packet is a view into a shared slab
   * (LinkEnd.send): keep `packet.slice()`, not the view, or each kept packet pins its slab.
   */
  onTransmit(fn: (packet: Uint8Array) => void): void {
    this.out.transmitObservers.push(fn);
  }

  /** Every packet this end sent that the link dropped, and why. Keep a `slice()` (see onTransmit). */
  onDrop(fn: (packet: Uint8Array, reason: LinkDropReason) => void): void {
    this.out.dropObservers.push(fn);
  }

  /**
   * Every packet this end sent as it reaches the peer (corrupted copies and duplicates included).
   * Keep a `slice()` (see onTransmit).
   */
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
    const offload = options.checksumOffload === true;
    if (offload && (options.corruptRate ?? 0) > 0) {
      throw new RangeError('checksumOffload cannot be combined with corruptRate > 0: corrupted packets must be detected');
    }
    const ab = new ImpairedWire(clock, { ...options, mtu }, seed);
    const ba = new ImpairedWire(clock, { ...options, mtu }, reverseSeed(seed));
    return [new MemoryLinkEnd(mtu, ab, ba, offload), new MemoryLinkEnd(mtu, ba, ab, offload)];
  }
}
