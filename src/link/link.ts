/** A link end: a plain IP packet port (MemoryLink, TunLink, a test driving raw packets). */
export interface LinkEnd {
  /** Absent or 'ip': this end carries plain IP packets (tells it apart from an EthernetLinkEnd). */
  readonly linkType?: 'ip';
  /** Maximum IP packet size this link carries. */
  readonly mtu: number;
  /**
   * Send one IP packet. The link takes ownership of the bytes: the stack never writes them again.
   * They are a view into a shared slab (src/wire/packet.ts), so a link, observer or trace
   * listener that keeps a packet beyond its handling should keep a copy (`packet.slice()`): a kept
   * view pins its whole slab.
   */
  send(packet: Uint8Array): void;
  /**
   * Register the receiver of incoming IP packets (one receiver; a later call replaces it). Packets
   * a peer stack sent are views into its slabs (see `send`): a receiver that keeps one beyond the
   * call should keep `packet.slice()`.
   */
  onPacket(fn: (packet: Uint8Array) => void): void;
  /**
   * Optional: hand the receiver, now, packets that have already arrived but are waiting for the
   * link's next turn (a device queue read by polling). The stack calls it before it runs its timers,
   * so a timer does not act on news that is already waiting to be read. (Behind `impair()` the
   * packets only enter the impaired wire: their delay then counts from when they really arrived.)
   */
  receivePending?(): void;
  /**
   * Optional: true when this link cannot corrupt packets (memory, like Linux loopback's
   * CHECKSUM_UNNECESSARY), so the stack neither computes nor verifies TCP checksums on it. Both ends
   * of a link must agree (a stack without it drops the other's segments, checksum 0, as
   * 'tcp-checksum-zero'), so a wrapper around a link end must forward it (as `impair()` does).
   */
  readonly checksumOffload?: boolean;
  /**
   * Optional: the link delivers packets in bursts (all those due at one moment) and calls `fn`
   * after each burst's last packet. The stack then processes a burst as a whole and sends its
   * replies (ACKs, data the ACKs release) once, after it, as Linux does with GRO/NAPI batches.
   * Contract: every delivery to the `onPacket` receiver is followed, within the same turn, by a call
   * of `fn` (a wrapper forwarding `onBurstEnd` must keep it). The stack has a backstop — a deferred
   * flush once per burst — so a missed call only delays replies to the clock's next deferred turn.
   */
  onBurstEnd?(fn: () => void): void;
}

/** A link end that carries whole Ethernet II frames (no FCS): TapLink, an EthernetSwitch port. */
export interface EthernetLinkEnd {
  readonly linkType: 'ethernet';
  /** Largest IP packet a frame carries (the IP MTU, e.g. 1500); frames are up to mtu + 18 bytes. */
  readonly mtu: number;
  /** Send one frame; the link takes ownership of the bytes, like `LinkEnd.send`. */
  send(frame: Uint8Array): void;
  /** Register the receiver of incoming frames (one receiver; a later call replaces it). */
  onFrame(fn: (frame: Uint8Array) => void): void;
  /** Same contract as `LinkEnd.onBurstEnd`. */
  onBurstEnd?(fn: () => void): void;
  /** Same contract as `LinkEnd.receivePending`. */
  receivePending?(): void;
}

/** True for a link end that carries Ethernet frames rather than IP packets. */
export function isEthernetLink(l: LinkEnd | EthernetLinkEnd): l is EthernetLinkEnd {
  return l.linkType === 'ethernet';
}
