import type { LinkEnd } from '../link/link.js';
import type { Clock } from '../link/clock.js';

export interface StackOptions {
  /** The packet port this stack sends and receives IP packets on. */
  link: LinkEnd;
  /** The stack's own addresses in CIDR form, IPv4 and/or IPv6, e.g. ['10.0.0.1/24', 'fd00::1/64']. */
  addresses: string[];
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
  /** Receive buffer bytes per connection; the advertised window is its free space (default 64 KiB). */
  receiveBufferSize?: number;
  /** SYN retransmissions before ETIMEDOUT (default 6, like Linux tcp_syn_retries). */
  synRetries?: number;
  /** Data retransmissions before ETIMEDOUT (default 15, like Linux tcp_retries2). */
  dataRetries?: number;
  /** Challenge ACKs allowed per second, stack-wide (RFC 5961 §7; default 1000 like Linux). */
  challengeAckLimit?: number;
  /** IP TTL / hop limit for packets this stack sends (default 64). */
  ttl?: number;
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
}
