/**
 * An in-memory Ethernet segment: a learning switch (IEEE 802.1D transparent bridging) with any
 * number of ports, each an `EthernetLinkEnd` a stack's EthernetInterface can sit on. Tests and
 * simulations put many hosts on one LAN in virtual time (the lead puts 1,000 on one switch).
 *
 * What it does, as a Linux bridge does:
 * - learns which port each source MAC lives behind (IEEE 802.1D-2004 §7.8, the Learning Process),
 *   in a table bounded in entries (`macTableSize`) whose entries age out after `ageingMs` without a
 *   frame from that MAC (the recommended Ageing Time, §7.9.2, and Linux's bridge `ageing_time`, are
 *   300 s);
 * - forwards a frame to a known unicast destination on that port only, and floods broadcast,
 *   multicast (no IGMP/MLD snooping: every multicast is flooded) and unknown unicast to every port
 *   but the one it came in on — a frame never goes back out of its reception port (§7.7.1), and a
 *   frame for a MAC learned on the reception port is filtered (Linux drops it too);
 * - drops runts (shorter than the 14-byte Ethernet II header), frames longer than `mtu + 18` (the
 *   header and an 802.1Q tag) and frames whose source is a multicast or all-zero MAC (not a valid
 *   station address: Linux's br_handle_frame drops them too). No FCS: frames are as TAP carries them.
 *
 * Impairments: each port's wire toward the switch is an `ImpairedWire` (src/link/impair.ts) — the
 * same seeded model as MemoryLink (delay, bottleneck, loss, reordering, duplication, corruption) —
 * with its own random stream derived from the switch's seed and the port's number, so a run replays
 * exactly for a given seed and creation order of ports, and one host's traffic never changes another
 * host's luck. A frame from A to B crosses A's wire only (once impaired end to end, as on
 * MemoryLink); `sw.port({ ...WireImpairments })` gives one port impairments of its own.
 *
 * No copies. A flooded frame is handed to every port's receiver as the same Uint8Array: flooding a
 * broadcast to 1,000 ports costs 1,000 calls, not 1,000 copies. Receivers must treat frames as
 * read-only views (the sender's slab, see LinkEnd.send) and keep `frame.slice()` if they keep one.
 * The impairments copy when they must (a corrupted frame or a duplicate), never otherwise.
 *
 * Delivery is never inside `send()` (the wire delivers through the clock), so two stacks on one
 * switch never recurse into each other. Bursts: all frames one port's wire delivers at one moment
 * are switched as one burst; every port that received something in it then gets its `onBurstEnd`
 * call (the LinkEnd.onBurstEnd contract), once.
 */
import { RealClock } from './clock.js';
import type { Clock } from './clock.js';
import { ImpairedWire } from './impair.js';
import type { LinkDropReason, WireImpairments, WireStats } from './impair.js';
import type { EthernetLinkEnd } from './link.js';

/** Why the switch dropped a frame a port sent: the wire's reasons, or the switch's own. */
export type SwitchDropReason =
  | LinkDropReason
  /** Shorter than the 14-byte Ethernet II header. */
  | 'runt'
  /** The source MAC is multicast/broadcast or all zeros: no station sends from it. */
  | 'bad-source';

export interface EthernetSwitchOptions extends WireImpairments {
  /** Default: a new RealClock. Use the clock of the stacks on the switch. */
  clock?: Clock;
  /** Seed from which every port's impairment stream is derived. Default 1. */
  seed?: number;
  /** Largest IP packet a frame carries (frames up to mtu + 18 bytes pass). Default 1500. */
  mtu?: number;
  /** MAC table entries at most; a new source when full (and nothing has aged) is not learned. Default 8192. */
  macTableSize?: number;
  /** An entry is forgotten this long after its MAC last sent a frame. Default 300 000 ms (802.1D, Linux). */
  ageingMs?: number;
}

/** Counters of the switch as a whole. */
export interface EthernetSwitchStats {
  /** Frames that reached the switch from a port's wire (after impairments). */
  frames: number;
  /** Frames sent to one port: a known unicast destination. */
  forwarded: number;
  /** Frames flooded: broadcast, multicast and unknown unicast. */
  flooded: number;
  /** Frames for a MAC learned on their own ingress port: not forwarded. */
  filtered: number;
  /** Deliveries to ports' receivers (a flood to N ports counts N - 1). */
  deliveries: number;
  runts: number;
  badSource: number;
  /** MAC table entries created. */
  learned: number;
  /** Entries whose MAC showed up on another port (a station moved). */
  moved: number;
  /** Entries forgotten for age. */
  aged: number;
  /** Sources not learned because the table was full. */
  tableFull: number;
}

/** Counters of one port: its wire toward the switch (`sent`, `delivered` to the switch, drops…) and what it received. */
export interface EthernetPortStats extends WireStats {
  /** Frames the switch handed to this port, and their bytes. */
  received: number;
  receivedBytes: number;
}

/** One entry of the MAC table (for inspection: `sw.macTable()`). */
export interface MacTableEntry {
  mac: string;
  port: number;
  /** ms since the MAC last sent a frame. */
  ageMs: number;
}

interface Entry {
  port: EthernetPort;
  seenAt: number;
}

/** A 48-bit MAC at `frame[at]` as one number (exact: below 2^53), so the table needs no string per frame. */
function macKey(frame: Uint8Array, at: number): number {
  return (
    ((frame[at]! << 8) | frame[at + 1]!) * 4294967296 +
    (((frame[at + 2]! << 24) | (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!) >>> 0)
  );
}

function macText(key: number): string {
  const parts: string[] = [];
  for (let i = 5; i >= 0; i--) parts.push((Math.floor(key / 2 ** (8 * i)) & 0xff).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Port n's impairment seed: its own stream (the Rng's splitmix seeding decorrelates nearby seeds). */
function portSeed(seed: number, n: number): number {
  return (seed + Math.imul(n + 1, 0x9e3779b9)) >>> 0;
}

/** Ethernet II header (14) plus an 802.1Q tag (4): a frame is at most mtu + 18 bytes (no FCS). */
const FRAME_OVERHEAD = 18;
const HEADER = 14;
/** How often (clock time) a full table is swept for aged entries at most. */
const SWEEP_INTERVAL_MS = 1000;

export class EthernetSwitch {
  readonly mtu: number;
  readonly stats: EthernetSwitchStats = {
    frames: 0, forwarded: 0, flooded: 0, filtered: 0, deliveries: 0, runts: 0, badSource: 0,
    learned: 0, moved: 0, aged: 0, tableFull: 0,
  };
  readonly #clock: Clock;
  readonly #seed: number;
  readonly #impairments: WireImpairments;
  readonly #tableSize: number;
  readonly #ageingMs: number;
  readonly #table = new Map<number, Entry>();
  #lastSweep = -Infinity;
  /** Live ports. Replaced, not mutated, on removal: a flood iterating the old array is unaffected. */
  #ports: EthernetPort[] = [];
  #nextPort = 0;
  /** Ports that received frames in the burst being switched, to call their onBurstEnd once. */
  #touched: EthernetPort[] = [];
  /** The other of two lists `#endBurst` swaps (a flood to 1,000 ports allocates no new list per burst). */
  #spare: EthernetPort[] = [];
  #burst = 0;
  readonly #frameObservers: Array<(frame: Uint8Array, from: EthernetPort) => void> = [];

  constructor(options: EthernetSwitchOptions = {}) {
    this.#clock = options.clock ?? new RealClock();
    this.#seed = options.seed ?? 1;
    this.mtu = options.mtu ?? 1500;
    if (!Number.isInteger(this.mtu) || this.mtu < 68) throw new RangeError(`EthernetSwitch: bad mtu ${this.mtu}`);
    this.#tableSize = options.macTableSize ?? 8192;
    if (!Number.isInteger(this.#tableSize) || this.#tableSize < 0) throw new RangeError(`EthernetSwitch: bad macTableSize ${this.#tableSize}`);
    this.#ageingMs = options.ageingMs ?? 300_000;
    if (!(this.#ageingMs > 0)) throw new RangeError(`EthernetSwitch: bad ageingMs ${this.#ageingMs}`);
    const { clock: _c, seed: _s, mtu: _m, macTableSize: _t, ageingMs: _a, ...impairments } = options;
    this.#impairments = impairments;
    // Fail now, not at the first port, on impairments out of range.
    new ImpairedWire(this.#clock, impairments, 0);
  }

  /**
   * A new port: an EthernetLinkEnd plugged into this switch. `impairments` replace the switch's for
   * this port's wire (e.g. one lossy host on a clean LAN).
   */
  port(impairments?: WireImpairments): EthernetPort {
    const n = this.#nextPort++;
    const wire = new ImpairedWire(
      this.#clock,
      { ...(impairments ?? this.#impairments), mtu: this.mtu + FRAME_OVERHEAD },
      portSeed(this.#seed, n),
    );
    const port = new EthernetPort(this, n, this.mtu, wire);
    wire.receiver = (frame) => this.#input(port, frame);
    wire.burstEnd = this.#endBurst;
    this.#ports.push(port);
    return port;
  }

  /** Live ports, in creation order. */
  get ports(): readonly EthernetPort[] {
    return this.#ports;
  }

  /** Every frame that enters the switch (after its port's wire), before it is switched: a mirror port. Keep a `slice()`. */
  onFrame(fn: (frame: Uint8Array, from: EthernetPort) => void): void {
    this.#frameObservers.push(fn);
  }

  /** The MAC table as it stands (entries that have aged are left out). */
  macTable(): MacTableEntry[] {
    const now = this.#clock.now();
    const out: MacTableEntry[] = [];
    for (const [key, e] of this.#table) {
      if (now - e.seenAt < this.#ageingMs) out.push({ mac: macText(key), port: e.port.id, ageMs: now - e.seenAt });
    }
    return out;
  }

  /** @internal EthernetPort.remove */
  removePort(port: EthernetPort): void {
    this.#ports = this.#ports.filter((p) => p !== port);
    for (const [key, e] of this.#table) if (e.port === port) this.#table.delete(key);
  }

  #input(from: EthernetPort, frame: Uint8Array): void {
    if (from.removed) return;
    const stats = this.stats;
    stats.frames++;
    for (const fn of this.#frameObservers) fn(frame, from);
    if (frame.length < HEADER) {
      stats.runts++;
      from.dropped(frame, 'runt');
      return;
    }
    // Source: bit 0 of the first byte is the group (multicast) bit; all zeros is no station.
    const src = macKey(frame, 6);
    if ((frame[6]! & 1) !== 0 || src === 0) {
      stats.badSource++;
      from.dropped(frame, 'bad-source');
      return;
    }
    const now = this.#clock.now();
    this.#learn(src, from, now);

    if ((frame[0]! & 1) === 0) {
      const dst = macKey(frame, 0);
      let e = this.#table.get(dst);
      if (e !== undefined && now - e.seenAt >= this.#ageingMs) {
        this.#table.delete(dst);
        stats.aged++;
        e = undefined;
      }
      if (e !== undefined) {
        if (e.port === from) {
          stats.filtered++;
          return;
        }
        stats.forwarded++;
        this.#deliver(e.port, frame);
        return;
      }
    }
    stats.flooded++;
    const ports = this.#ports;
    for (let i = 0, n = ports.length; i < n; i++) {
      const p = ports[i]!;
      if (p !== from) this.#deliver(p, frame);
    }
  }

  #learn(src: number, from: EthernetPort, now: number): void {
    const table = this.#table;
    const e = table.get(src);
    if (e !== undefined) {
      if (e.port !== from) {
        e.port = from;
        this.stats.moved++;
      }
      e.seenAt = now;
      return;
    }
    if (table.size >= this.#tableSize) {
      // Full: forget what has aged (at most once a second of clock time: the sweep is O(table));
      // if nothing has, the source is not learned and frames to it keep being flooded, as a switch
      // with a full CAM table does (and Linux with bridge max_learned).
      if (now - this.#lastSweep >= SWEEP_INTERVAL_MS) {
        this.#lastSweep = now;
        for (const [key, old] of table) {
          if (now - old.seenAt >= this.#ageingMs) {
            table.delete(key);
            this.stats.aged++;
          }
        }
      }
      if (table.size >= this.#tableSize) {
        this.stats.tableFull++;
        return;
      }
    }
    table.set(src, { port: from, seenAt: now });
    this.stats.learned++;
  }

  #deliver(port: EthernetPort, frame: Uint8Array): void {
    if (port.removed) return;
    this.stats.deliveries++;
    if (port.burstMark !== this.#burst) {
      port.burstMark = this.#burst;
      this.#touched.push(port);
    }
    port.receive(frame);
  }

  /** After one wire's burst: each port that received frames gets its burst end, once. */
  readonly #endBurst = (): void => {
    const touched = this.#touched;
    if (touched.length === 0) return;
    this.#touched = this.#spare;
    this.#burst++;
    for (let i = 0; i < touched.length; i++) {
      const p = touched[i]!;
      if (!p.removed) p.endBurst();
    }
    touched.length = 0;
    this.#spare = touched;
  };
}

/** One port of an `EthernetSwitch`: an EthernetLinkEnd. Hooks and `stats` describe its traffic. */
export class EthernetPort implements EthernetLinkEnd {
  readonly linkType = 'ethernet' as const;
  /** @internal the switch's burst counter when this port last received (see EthernetSwitch.#deliver). */
  burstMark = -1;
  #receiver: ((frame: Uint8Array) => void) | undefined;
  #burstEnd: (() => void) | undefined;
  #removed = false;
  #received = 0;
  #receivedBytes = 0;
  readonly #dropObservers: Array<(frame: Uint8Array, reason: SwitchDropReason) => void> = [];

  /** @internal */
  constructor(
    private readonly sw: EthernetSwitch,
    /** The port's number on its switch (0, 1, …, in creation order; never reused). */
    readonly id: number,
    readonly mtu: number,
    private readonly wire: ImpairedWire,
  ) {}

  /** Send one frame (Ethernet II, no FCS). The switch takes ownership: never write it again. */
  send(frame: Uint8Array): void {
    if (this.#removed) {
      this.wire.stats.sent++;
      this.wire.stats.dropped++;
      return;
    }
    this.wire.send(frame);
  }

  /** The receiver of the frames the switch hands this port (one; a later call replaces it). Frames are read-only views. */
  onFrame(fn: (frame: Uint8Array) => void): void {
    this.#receiver = fn;
  }

  /** Called after each burst of frames delivered to this port (see LinkEnd.onBurstEnd). */
  onBurstEnd(fn: () => void): void {
    this.#burstEnd = fn;
  }

  /** Every frame this port sends, before any impairment. Keep a `slice()` (see LinkEnd.send). */
  onTransmit(fn: (frame: Uint8Array) => void): void {
    this.wire.transmitObservers.push(fn);
  }

  /** Every frame this port sent that was dropped — on its wire or by the switch — and why. */
  onDrop(fn: (frame: Uint8Array, reason: SwitchDropReason) => void): void {
    this.wire.dropObservers.push(fn);
    this.#dropObservers.push(fn);
  }

  /** Every frame this port sent as it reaches the switch (corrupted copies and duplicates included). */
  onDeliver(fn: (frame: Uint8Array) => void): void {
    this.wire.deliverObservers.push(fn);
  }

  get stats(): Readonly<EthernetPortStats> {
    return { ...this.wire.stats, received: this.#received, receivedBytes: this.#receivedBytes };
  }

  get removed(): boolean {
    return this.#removed;
  }

  /**
   * Unplug the port: its MAC table entries go, frames in flight on its wire are lost, nothing more
   * is delivered to it, and what it sends afterwards is dropped. Idempotent.
   */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    this.sw.removePort(this);
  }

  /** @internal */
  receive(frame: Uint8Array): void {
    this.#received++;
    this.#receivedBytes += frame.length;
    this.#receiver?.(frame);
  }

  /** @internal */
  endBurst(): void {
    this.#burstEnd?.();
  }

  /** @internal a frame the switch itself dropped (counted in the switch's stats; the wire's say it was delivered). */
  dropped(frame: Uint8Array, reason: SwitchDropReason): void {
    for (const fn of this.#dropObservers) fn(frame, reason);
  }
}
