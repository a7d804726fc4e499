/** A link end: a plain IP packet port (MemoryLink, TunLink, a test driving raw packets). */
export interface LinkEnd {
  /** Maximum IP packet size this link carries. */
  readonly mtu: number;
  /** Send one IP packet. The link takes ownership of the bytes. */
  send(packet: Uint8Array): void;
  /** Register the receiver of incoming IP packets (one receiver; a later call replaces it). */
  onPacket(fn: (packet: Uint8Array) => void): void;
}
