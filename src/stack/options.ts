import type { EthernetLinkEnd, LinkEnd } from '../link/link.js';
import type { Clock } from '../link/clock.js';
import type { AdvertiseOptions } from '../net/interface.js';

export interface StackOptions {
  /**
   * The port this stack sends and receives on: IP packets (MemoryLink, TunLink), or Ethernet frames
   * (TapLink, an EthernetSwitch port), which the stack wraps in an EthernetInterface (ARP, NDP).
   */
  link: LinkEnd | EthernetLinkEnd;
  /**
   * The stack's own addresses in CIDR form, IPv4 and/or IPv6, e.g. ['10.0.0.1/24', 'fd00::1/64'].
   * At least one on an IP link; on an Ethernet link [] is allowed (a DHCP client adds one later,
   * `stack.addAddress`). More can be added and removed while the stack runs.
   */
  addresses: string[];
  /** DNS servers for the stack's resolver (also set by `stack.setDnsServers`, e.g. from DHCP). */
  dnsServers?: string[];
  /** Ethernet links only: the interface's MAC ("52:54:00:12:34:56"); random locally administered (seeded) when omitted. */
  mac?: string | Uint8Array;
  /**
   * Ethernet links only: router mode, sending Router Advertisements for the stack's IPv6 /64
   * prefixes (RFC 4861 §6) with MTU and RDNSS (RFC 8106) so hosts on the link do SLAAC.
   */
  advertise?: AdvertiseOptions | false;
  /**
   * ICMP errors (port unreachable, reassembly time exceeded) sent per second at most, in bursts of
   * up to 50 (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f); Linux's icmp_msgs_per_sec). Default 1000; 0 sends none.
   */
  icmpErrorRate?: number;
  /** Time source; real time when omitted. */
  clock?: Clock;
  /** A name for traces and diagrams (default 'stack'). */
  name?: string;
  /** Maximum segment lifetime in ms; TIME-WAIT lasts 2×MSL (RFC 9293 §3.4.2). Default 30 000. */
  mslMs?: number;
  /** Seed for ISNs and ephemeral ports: deterministic runs for tests and the demo. Random when omitted. */
  seed?: number;
  /** Send buffer bytes per connection (default 256 KiB). */
  sendBufferSize?: number;
  /**
   * Initial receive buffer bytes per connection; the advertised window is its free space (default
   * 256 KiB; a SYN offers at most 65535, RFC 7323 §2.2). It grows with the bandwidth-delay product
   * up to `receiveBufferMax` (auto-tuning). The default is larger than Linux's first window (64 KiB)
   * because a JavaScript application reads only between batches of packets: with 64 KiB, a fast
   * kernel sender fills the window during the first batch, before the application has read a byte.
   * The memory is taken only while data waits to be read.
   */
  receiveBufferSize?: number;
  /** Largest receive buffer auto-tuning may grow to (default 6 MiB, Linux tcp_rmem[2]); it also
   *  sets the window scale offered in the SYN (RFC 7323 §2.3). */
  receiveBufferMax?: number;
  /** Largest send buffer auto-tuning may grow to (default 4 MiB, Linux tcp_wmem[2]). */
  sendBufferMax?: number;
  /** Congestion control algorithm (default 'cubic', RFC 9438; or 'newreno', RFC 5681/6582). */
  congestionControl?: 'cubic' | 'newreno';
  /** Offer and accept window scaling, SACK and timestamps (RFC 7323, RFC 2018). Default true for each. */
  windowScaling?: boolean;
  sack?: boolean;
  timestamps?: boolean;
  /** Delayed ACKs (RFC 5681 §4.2, RFC 9293 §3.8.6.3): timer in ms, 0 disables (default 40, like Linux's minimum). */
  delayedAckMs?: number;
  /** SYN retransmissions before ETIMEDOUT (default 6, like Linux tcp_syn_retries). */
  synRetries?: number;
  /** Data retransmissions before ETIMEDOUT (default 15, like Linux tcp_retries2). */
  dataRetries?: number;
  /** Challenge ACKs allowed per second, stack-wide (RFC 5961 §7; default 1000 like Linux). */
  challengeAckLimit?: number;
  /**
   * Connections the stack holds at most, in any state but LISTEN (default 262 144): beyond it a
   * connect() fails with ENOBUFS and a SYN is dropped (counters.connectionLimitDrops), so a flood of
   * completed handshakes cannot grow memory without bound.
   */
  maxConnections?: number;
  /** IP TTL / hop limit for packets this stack sends (default 64). */
  ttl?: number;
  /**
   * SYN cookies (RFC 4987 §3.6), like Linux's tcp_syncookies=1 (default true): a SYN that finds its
   * listener's SYN queue (`ListenOptions.synBacklog`) full is answered with a SYN,ACK whose sequence
   * number encodes the connection, and no state is kept until the ACK returns it. When false, such
   * a SYN is dropped (and counted in `listenOverflows`).
   */
  synCookies?: boolean;
}

export interface ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  localPort?: number;
}

export interface ListenOptions {
  port: number;
  /** Local address to bind; all of the stack's addresses when omitted. */
  host?: string;
  /** Established-but-not-accepted connections queued at most (default 511, like node). */
  backlog?: number;
  /**
   * Half-open connections (SYN-RECEIVED) kept at most: the SYN queue (default max(backlog, 128)).
   * A SYN beyond it is answered with a SYN cookie (`StackOptions.synCookies`) or dropped. 0 keeps
   * no half-open state at all: every SYN gets a cookie (Linux's tcp_syncookies=2, per listener).
   */
  synBacklog?: number;
}
