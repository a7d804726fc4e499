/**
 * The core UDP socket (browser-safe): what `stack.udpBind()` returns. `node:dgram` look-alike
 * (src/socket/dgram.ts) and the WHATWG-streams form (src/socket/udp-streams.ts) are built on it.
 *
 * Errors are thrown synchronously with node's codes (bind: EINVAL, EADDRINUSE, EADDRNOTAVAIL;
 * send: EMSGSIZE, EACCES, EINVAL, EDESTADDRREQ, EISCONN, ENETUNREACH, EBADF). ICMP errors reach
 * `onError` as Linux reports them without IP_RECVERR (udp_err): only on a connected socket, and
 * only the "hard" ones (port unreachable → ECONNREFUSED, protocol unreachable → ENOPROTOOPT, …).
 */
export type UdpErrorCode =
  | 'EINVAL'
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  | 'EMSGSIZE'
  | 'EACCES'
  | 'EDESTADDRREQ'
  | 'EISCONN'
  | 'ENOTCONN'
  | 'ENETUNREACH'
  | 'EHOSTUNREACH'
  | 'EHOSTDOWN'
  | 'ENONET'
  | 'ECONNREFUSED'
  | 'ENOPROTOOPT'
  | 'EPROTO'
  | 'EOPNOTSUPP'
  | 'EBADF';

export class UdpError extends Error {
  readonly code: UdpErrorCode;
  /** The system call node would name: 'bind', 'send', 'connect' or 'recvmsg' (ICMP errors). */
  readonly syscall: string;
  constructor(code: UdpErrorCode, message: string, syscall: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.syscall = syscall;
    this.name = 'UdpError';
  }
}

export interface UdpBindOptions {
  /** Local address: one of the stack's, or '0.0.0.0' / '::' / omitted for any. */
  address?: string;
  /** 0 or omitted: an ephemeral port (RFC 6056). */
  port?: number;
  /** Default: the address's family, else 4. */
  family?: 4 | 6;
  /** SO_BROADCAST: allow sending to 255.255.255.255 and subnet broadcasts. */
  broadcast?: boolean;
  /**
   * DHCP client: also take datagrams to this port whatever their destination address (no address
   * configured yet, or a server that unicasts to the offered address), limited broadcast included.
   */
  anyDestination?: boolean;
}

export interface UdpRemote {
  address: string;
  port: number;
  family: 4 | 6;
}

export interface UdpLocal {
  address: string;
  port: number;
}

export type UdpMessageHandler = (data: Uint8Array, remote: UdpRemote, local: UdpLocal) => void;

export interface UdpSocket {
  /** The bound address ('0.0.0.0' or '::' when any). */
  readonly localAddress: string;
  readonly localPort: number;
  readonly family: 4 | 6;
  /** Set by connect(), null otherwise. */
  readonly remoteAddress: string | null;
  readonly remotePort: number | null;
  /** SO_BROADCAST; may be changed at any time. */
  broadcast: boolean;
  readonly closed: boolean;
  /** Fix the peer: send() without an address goes there, and only its datagrams are received. */
  connect(address: string, port: number): void;
  disconnect(): void;
  /**
   * Send one datagram (copied: `data` may be reused at once). `from`: a source address, e.g.
   * '0.0.0.0' for a DHCP client with no address yet; broadcast destinations need `broadcast`.
   * Larger than the link MTU: fragmented (IPv4 DF clear, IPv6 Fragment header).
   */
  send(data: Uint8Array, address?: string, port?: number, from?: string): void;
  /** Datagrams for this socket; `data` is the socket's own copy. */
  onMessage: UdpMessageHandler | null;
  /** ICMP errors on a connected socket (ECONNREFUSED …), as node emits them. */
  onError: ((err: UdpError) => void) | null;
  close(): void;
}
