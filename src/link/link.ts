/** A link end: a plain IP packet port (MemoryLink, TunLink, a test driving raw packets). */
export interface LinkEnd {
  /** Maximum IP packet size this link carries. */
  readonly mtu: number;
  /** Send one IP packet. The link takes ownership of the bytes. */
  send(packet: Uint8Array): void;
  /** Register the receiver of incoming IP packets (one receiver; a later call replaces it). */
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
   * CHECKSUM_UNNECESSARY), so the stack neither computes nor verifies TCP checksums on it.
   */
  readonly checksumOffload?: boolean;
  /**
   * Optional: the link delivers packets in bursts (all those due at one moment) and calls `fn`
   * after each burst's last packet. The stack then processes a burst as a whole and sends its
   * replies (ACKs, data the ACKs release) once, after it, as Linux does with GRO/NAPI batches.
   */
  onBurstEnd?(fn: () => void): void;
}
