/**
 * Catch-all termination (issue 15, the gateway): a stack that forwards takes SYNs for any address
 * and port that no connection or listener claims, and UDP datagrams that no socket claims, and hands
 * them to the application (src/gateway/), which opens the way out first and only then completes
 * the guest's handshake — gVisor's TCP forwarder (pkg/tcpip/transport/tcp/forwarder.go) and
 * smoltcp's any-ip mode are the models.
 *
 * A SYN waits in a bounded table of pending requests while the application decides; the guest's
 * retransmitted SYNs for the same 4-tuple are dropped meanwhile (they would only repeat the
 * request). The decision is one of:
 * - accept(): the SYN is processed as a passive open would (RFC 9293 §3.10.7.2) — SYN,ACK now;
 * - reject('reset'): <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, the CLOSED-state answer (RFC 9293
 *   §3.10.7.1): the guest's connect fails at once with ECONNREFUSED;
 * - reject('host-unreachable' | 'net-unreachable' | 'prohibited'): an ICMP Destination Unreachable
 *   from the gateway (RFC 1812 §4.3.2.3, §5.2.7.1; ICMPv6 RFC 4443 §3.1) — a SYN-SENT socket aborts
 *   on it (Linux tcp_v4_err), so the guest fails fast instead of retrying for minutes;
 * - reject('drop'): nothing (the guest retries, then times out).
 * A request the application never settles expires after `pendingTimeoutMs` (dropped) so the table
 * cannot fill with forgotten entries.
 * @internal
 */
import type { TcpConnection } from '../tcp/user.js';

export type ForwardRejection = 'reset' | 'host-unreachable' | 'net-unreachable' | 'prohibited' | 'drop';

/** A SYN for an address and port nobody serves, offered to the forwarder. */
export interface TcpForwardRequest {
  /** The address and port the guest asked for (ours, or any other: the stack answers as it). */
  readonly localAddress: string;
  readonly localPort: number;
  /** The guest. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly family: 4 | 6;
  /** Whether `localAddress` is one of the stack's own addresses. */
  readonly toLocal: boolean;
  /** Still waiting for accept() or reject(). */
  readonly pending: boolean;
  /**
   * Completes the handshake from the SYN (SYN,ACK now). Throws TcpError EINVAL when the request is
   * settled or expired, ENOBUFS at the stack's connection limit.
   */
  accept(): TcpConnection;
  /** Refuses the SYN (see the module comment); ignored once settled. */
  reject(how: ForwardRejection): void;
}

export type TcpForwardHandler = (request: TcpForwardRequest) => void;

export interface TcpForwardOptions {
  /** SYNs waiting for a decision at most (gVisor's maxInFlight). Default 1024. */
  maxPending?: number;
  /** A request not settled by then is dropped (ms). Default 30,000. */
  pendingTimeoutMs?: number;
}

/** A UDP datagram that no socket takes, offered to the forwarder. */
export interface UdpForwardDatagram {
  /** The guest. */
  readonly src: string;
  readonly srcPort: number;
  /** Where it was sent (ours or any other address). */
  readonly dst: string;
  readonly dstPort: number;
  readonly family: 4 | 6;
  readonly toLocal: boolean;
  /** The forwarder's own copy. */
  readonly data: Uint8Array;
}

/**
 * true: taken. false: as if no forwarder (dropped; port unreachable when it was for one of our
 * addresses). Otherwise the ICMP error to send back.
 */
export type UdpForwardVerdict = boolean | 'port-unreachable' | 'host-unreachable' | 'net-unreachable' | 'prohibited';

export type UdpForwardHandler = (datagram: UdpForwardDatagram) => UdpForwardVerdict;

/** ICMP Destination Unreachable (type, code) for a rejection, per family. */
export function unreachableCode(how: Exclude<ForwardRejection, 'reset' | 'drop'> | 'port-unreachable', version: 4 | 6): [number, number] {
  if (version === 4) {
    // RFC 792 / RFC 1812 §5.2.7.1: 0 net, 1 host, 3 port, 13 communication administratively prohibited.
    switch (how) {
      case 'net-unreachable': return [3, 0];
      case 'host-unreachable': return [3, 1];
      case 'port-unreachable': return [3, 3];
      case 'prohibited': return [3, 13];
    }
  }
  // RFC 4443 §3.1: 0 no route, 1 administratively prohibited, 3 address unreachable, 4 port.
  switch (how) {
    case 'net-unreachable': return [1, 0];
    case 'host-unreachable': return [1, 3];
    case 'port-unreachable': return [1, 4];
    case 'prohibited': return [1, 1];
  }
}
