/**
 * What an Ethernet interface needs from the stack above it (`InterfaceHost`), and what its parts —
 * ARP, NDP, the router advertiser — share inside it (`LinkContext`).
 */
import type { Clock } from '../link/clock.js';
import type { TraceEvent } from '../trace/events.js';
import type { DropReason } from '../wire/drop.js';

/** One of the stack's addresses: `bytes` (4 or 16) with its prefix length. */
export interface InterfaceAddress {
  bytes: Uint8Array;
  prefix: number;
  version: 4 | 6;
}

export interface InterfaceHost {
  readonly clock: Clock;
  /** The stack's addresses now (they change: DHCP). Called per outgoing packet: keep it cheap. */
  addresses(): readonly InterfaceAddress[];
  /** Default router for off-link destinations, or null. Called per off-link packet: keep it cheap. */
  router(version: 4 | 6): Uint8Array | null;
  drop(reason: DropReason, data: Uint8Array): void;
  tracing(): boolean;
  /** Notes: ARP/NDP resolution, DAD, RAs. */
  trace(e: TraceEvent): void;
}

/** Counters of one Ethernet interface (drops are counted by the host, by reason). */
export interface InterfaceCounters {
  framesIn: number;
  framesOut: number;
  arpIn: number;
  arpOut: number;
  ndpIn: number;
  ndpOut: number;
  /** Router Advertisements sent (router mode) and received. */
  raOut: number;
  raIn: number;
  /** Neighbours resolved (incomplete → reachable) and given up on after the last retry. */
  resolved: number;
  resolutionFailures: number;
  /** DAD found one of our IPv6 addresses in use elsewhere (RFC 4862 §5.4.5). */
  dadConflicts: number;
  /** Another station claimed one of our addresses (ARP or NA, outside DAD; RFC 5227 §2.4). */
  addressConflicts: number;
}

export function newInterfaceCounters(): InterfaceCounters {
  return {
    framesIn: 0, framesOut: 0, arpIn: 0, arpOut: 0, ndpIn: 0, ndpOut: 0, raOut: 0, raIn: 0,
    resolved: 0, resolutionFailures: 0, dadConflicts: 0, addressConflicts: 0,
  };
}

/** The interface as its protocol parts see it. */
export interface LinkContext {
  readonly mac: Uint8Array;
  /** fe80::/64 from the MAC (RFC 4291 Appendix A). */
  readonly linkLocal: Uint8Array;
  readonly host: InterfaceHost;
  readonly counters: InterfaceCounters;
  /** A frame addressed to the 6 bytes of `dst` at `dstOffset`, from us, with room for `payloadLength`
   *  bytes of payload from offset 14. */
  frame(dst: Uint8Array, dstOffset: number, etherType: number, payloadLength: number): Uint8Array;
  /** Hands a frame to the link. */
  transmit(frame: Uint8Array): void;
  /** Uniform in [0, 1), seeded. */
  random(): number;
  note(what: string, rfc?: string): void;
}
