import type { DhcpDropReason } from './dhcp.js';
import type { DnsDropReason } from './dns.js';
import type { EthernetDropReason } from './ethernet.js';
import type { ArpDropReason } from './arp.js';
import type { NdpDropReason } from './ndp.js';
import type { UdpDropReason } from './udp.js';
import type { FragmentDropReason } from '../net/fragments.js';

/** Why an incoming packet was dropped. Each is a counter in `stack.counters.drops`. */
export type DropReason =
  | 'ip-truncated'
  | 'ip-bad-version'
  | 'ipv4-bad-ihl'
  | 'ipv4-bad-checksum'
  | 'ipv4-bad-length'
  | 'ipv4-fragment'
  | 'ipv6-bad-length'
  | 'ipv6-bad-extension'
  | 'ipv6-fragment'
  /** Next Header 59 (RFC 8200 §4.7): nothing for an upper layer. */
  | 'ipv6-no-next-header'
  | 'ip-not-for-us'
  | 'ip-unknown-protocol'
  | 'tcp-truncated'
  | 'tcp-bad-offset'
  | 'tcp-bad-checksum'
  /**
   * A bad TCP checksum whose field is 0: what a sender whose link has `checksumOffload` sends. The
   * two ends of a link disagree about offload (a LinkEnd wrapper that does not forward it?).
   */
  | 'tcp-checksum-zero'
  | 'tcp-bad-options'
  | 'tcp-bad-address'
  | 'icmp-truncated'
  | 'icmp-bad-checksum'
  | 'icmp-unhandled'
  | 'icmp-bad-sequence'
  | 'tcp-no-socket'
  | 'tcp-invalid-state'
  | 'tcp-listen-overflow'
  | 'tcp-bad-syn-cookie'
  | 'tcp-connection-limit'
  /** Catch-all termination (src/stack/forward.ts): a SYN retransmitted while its request waits. */
  | 'tcp-forward-pending'
  /** … and a SYN beyond the bound on requests waiting for a decision. */
  | 'tcp-forward-overflow'
  | DhcpDropReason
  | DnsDropReason
  | EthernetDropReason | ArpDropReason | NdpDropReason
  | UdpDropReason
  | FragmentDropReason;

export function isDropReason(x: unknown): x is DropReason {
  return typeof x === 'string';
}
