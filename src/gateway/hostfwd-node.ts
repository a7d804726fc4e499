/**
 * Port forwarding from the host into the guest (QEMU's hostfwd, issue 15), Node only: a
 * `node:net` server or a `node:dgram` socket listens on the host, and each host connection or peer
 * is carried into the guest through the gateway's stack.
 *
 * TCP: the host connection is accepted first (as QEMU's slirp does), then the stack opens a
 * connection to the guest; only once the guest has answered is the pair handed to `relay` — until
 * then the host socket is not read (Node buffers up to its high-water mark, then the host's window
 * closes). A guest that refuses (RST) or does not answer within `connectTimeoutMs` gets the host
 * connection reset, so a client on the host sees "connection reset" at once, not a hang.
 *
 * UDP: each host peer (address, port) gets its own stack UDP socket, connected to the guest's
 * address and port, so the guest's replies go back to that peer alone — an endpoint-independent
 * mapping in RFC 4787's words. A mapping ends after `udpIdleMs` without a datagram either way
 * (RFC 4787 REQ-5: not under 2 minutes; 5 by default), and at most `maxUdpFlows` live at once
 * (the least recently used one makes room for a new peer).
 */
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { TcpConnection } from '../tcp/user.js';
import type { UdpSocket } from '../udp/socket.js';
import { formatHostForward, parseHostForward, type HostForwardSpec } from './hostfwd.js';
import { socketStream } from './upstream-direct.js';
import type { UpstreamStream } from './upstream.js';

/** What a forward needs from the gateway: its stack, towards the guest. */
export interface HostForwardGuest {
  /** An active open into the guest (`(a, p) => stack.tcpConnect({ host: a, port: p })`). */
  connect(address: string, port: number): TcpConnection;
  /** A UDP socket on the gateway's stack, of the guest address's family (`(f) => stack.udpBind({ family: f })`). */
  udpBind(family: 4 | 6): UdpSocket;
  /** The guest's address when the rule left GUESTADDR empty (its DHCP lease); null: none yet. */
  guestAddress(): string | null;
}

export interface HostForwardOptions {
  /** Bound on the guest's handshake (ms). Default 10 000. */
  connectTimeoutMs?: number;
  /** Host connections relayed at once; beyond, new ones are reset. Default 1024. */
  maxConnections?: number;
  /** A UDP mapping ends after this long without a datagram either way (ms). Default 300 000. */
  udpIdleMs?: number;
  /** UDP mappings (host peers) at once. Default 1024. */
  maxUdpFlows?: number;
}

export interface HostForwardCounters {
  /** TCP: host connections accepted, relayed into the guest, reset (guest refused, timeout, limit). */
  accepted: number;
  relayed: number;
  failed: number;
  /** UDP: mappings made, ended by idleness, evicted for room; datagrams each way; datagrams lost. */
  udpFlows: number;
  udpExpired: number;
  udpEvicted: number;
  udpToGuest: number;
  udpToHost: number;
  udpDropped: number;
}

export interface HostForward {
  readonly spec: HostForwardSpec;
  /** Where the host side is bound (the port the system chose when the rule said 0). */
  readonly address: string;
  readonly port: number;
  readonly counters: Readonly<HostForwardCounters>;
  /** TCP connections waiting for the guest or relayed now; UDP mappings now. */
  readonly active: number;
  /** Stops listening, resets what is open; resolves once the host socket is closed. */
  close(): Promise<void>;
}

const IGNORE = (): void => {};

function reset(sock: Socket): void {
  sock.on('error', IGNORE);
  try {
    sock.resetAndDestroy();
  } catch {
    // no handle
  }
  if (!sock.destroyed) sock.destroy();
}

/**
 * Listens on the host for one rule (a HostForwardSpec or its QEMU text). Rejects with a one-line
 * Error (with Node's `code`, e.g. EADDRINUSE) when the host address cannot be bound.
 */
export async function startHostForward(
  rule: HostForwardSpec | string,
  guest: HostForwardGuest,
  relay: (conn: TcpConnection, stream: UpstreamStream) => void,
  options: HostForwardOptions = {},
): Promise<HostForward> {
  const spec = typeof rule === 'string' ? parseHostForward(rule) : rule;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const maxConnections = options.maxConnections ?? 1024;
  const udpIdleMs = options.udpIdleMs ?? 300_000;
  const maxUdpFlows = options.maxUdpFlows ?? 1024;
  for (const [k, v] of [['connectTimeoutMs', connectTimeoutMs], ['maxConnections', maxConnections], ['udpIdleMs', udpIdleMs], ['maxUdpFlows', maxUdpFlows]] as const) {
    if (!(v >= 1)) throw new RangeError(`hostfwd ${k} must be >= 1 (got ${v})`);
  }
  const counters: HostForwardCounters = {
    accepted: 0,
    relayed: 0,
    failed: 0,
    udpFlows: 0,
    udpExpired: 0,
    udpEvicted: 0,
    udpToGuest: 0,
    udpToHost: 0,
    udpDropped: 0,
  };
  return spec.protocol === 'tcp'
    ? startTcp(spec, guest, relay, counters, connectTimeoutMs, maxConnections)
    : startUdp(spec, guest, counters, udpIdleMs, maxUdpFlows);
}

function bindError(spec: HostForwardSpec, err: unknown): Error {
  const code = (err as { code?: unknown }).code;
  const e = new Error(`hostfwd ${formatHostForward(spec)}: cannot listen: ${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)}`);
  if (typeof code === 'string') (e as Error & { code: string }).code = code;
  return e;
}

async function startTcp(
  spec: HostForwardSpec,
  guest: HostForwardGuest,
  relay: (conn: TcpConnection, stream: UpstreamStream) => void,
  counters: HostForwardCounters,
  connectTimeoutMs: number,
  maxConnections: number,
): Promise<HostForward> {
  const open = new Set<Socket>();

  const accept = (sock: Socket): void => {
    counters.accepted++;
    if (open.size >= maxConnections) {
      counters.failed++;
      reset(sock);
      return;
    }
    const address = spec.guestAddress ?? guest.guestAddress();
    if (address === null) {
      counters.failed++;
      reset(sock);
      return;
    }
    open.add(sock);
    sock.once('close', () => open.delete(sock));
    let conn: TcpConnection;
    try {
      conn = guest.connect(address, spec.guestPort);
    } catch {
      counters.failed++;
      reset(sock);
      return;
    }
    // Until the guest answers: the host socket is not read; if it goes away, so does the attempt.
    let done = false;
    const give = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.off('error', onHostGone);
      sock.off('close', onHostGone);
      conn.events = {};
      if (!ok) {
        counters.failed++;
        if (conn.state !== 'CLOSED') conn.abort();
        reset(sock);
        return;
      }
      counters.relayed++;
      try {
        relay(conn, socketStream(sock));
      } catch {
        conn.abort();
        reset(sock);
      }
    };
    const onHostGone = (): void => give(false);
    const timer = setTimeout(() => give(false), connectTimeoutMs);
    sock.once('error', onHostGone);
    sock.once('close', onHostGone);
    conn.events = {
      onEstablished: () => give(true),
      onClosed: () => give(false),
    };
  };

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false }, accept);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(bindError(spec, err));
    server.once('error', onError);
    server.listen({ host: spec.hostAddress, port: spec.hostPort, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // A server error after listening (EMFILE on accept …) must not crash the process; Node retries.
  server.on('error', IGNORE);
  const bound = server.address();
  const where = typeof bound === 'object' && bound !== null ? bound : { address: spec.hostAddress, port: spec.hostPort };
  let closing: Promise<void> | null = null;
  return {
    spec,
    address: where.address,
    port: where.port,
    counters,
    get active() {
      return open.size;
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of [...open]) reset(s);
        open.clear();
      });
      return closing;
    },
  };
}

interface Mapping {
  key: string;
  peer: RemoteInfo;
  sock: UdpSocket;
  last: number;
  timer: ReturnType<typeof setTimeout>;
}

async function startUdp(
  spec: HostForwardSpec,
  guest: HostForwardGuest,
  counters: HostForwardCounters,
  udpIdleMs: number,
  maxUdpFlows: number,
): Promise<HostForward> {
  const host: DgramSocket = createSocket({ type: isIP(spec.hostAddress) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
  /** In least-recently-used order (a used mapping is moved to the end). */
  const flows = new Map<string, Mapping>();
  let closed = false;

  const end = (m: Mapping): void => {
    if (flows.get(m.key) !== m) return;
    flows.delete(m.key);
    clearTimeout(m.timer);
    m.sock.close();
  };
  const touch = (m: Mapping): void => {
    m.last = Date.now();
    flows.delete(m.key);
    flows.set(m.key, m);
  };
  const arm = (m: Mapping, ms: number): void => {
    m.timer = setTimeout(() => {
      // Re-armed lazily: traffic only stamps `last`, the timer checks it when it fires.
      const idle = Date.now() - m.last;
      if (idle >= udpIdleMs) {
        counters.udpExpired++;
        end(m);
      } else arm(m, udpIdleMs - idle);
    }, ms);
    m.timer.unref?.();
  };

  const mapping = (peer: RemoteInfo): Mapping | null => {
    const key = `${peer.address}|${peer.port}`;
    const had = flows.get(key);
    if (had !== undefined) return had;
    const address = spec.guestAddress ?? guest.guestAddress();
    if (address === null) return null;
    if (flows.size >= maxUdpFlows) {
      const oldest = flows.values().next().value;
      if (oldest !== undefined) {
        counters.udpEvicted++;
        end(oldest);
      }
    }
    let sock: UdpSocket;
    try {
      sock = guest.udpBind(isIP(address) === 6 ? 6 : 4);
      sock.connect(address, spec.guestPort);
    } catch {
      return null;
    }
    const m: Mapping = { key, peer, sock, last: Date.now(), timer: undefined as unknown as ReturnType<typeof setTimeout> };
    sock.onMessage = (data) => {
      if (flows.get(key) !== m || closed) return;
      touch(m);
      counters.udpToHost++;
      host.send(data, peer.port, peer.address, (err) => {
        if (err) counters.udpDropped++;
      });
    };
    // The guest's ICMP errors (port unreachable …): the datagram is lost, the mapping stays.
    sock.onError = () => {
      counters.udpDropped++;
    };
    flows.set(key, m);
    counters.udpFlows++;
    arm(m, udpIdleMs);
    return m;
  };

  host.on('message', (msg: Buffer, peer: RemoteInfo) => {
    if (closed) return;
    const m = mapping(peer);
    if (m === null) {
      counters.udpDropped++;
      return;
    }
    touch(m);
    try {
      m.sock.send(msg);
      counters.udpToGuest++;
    } catch {
      counters.udpDropped++;
    }
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      try {
        host.close();
      } catch {
        // not bound
      }
      reject(bindError(spec, err));
    };
    host.once('error', onError);
    host.bind({ address: spec.hostAddress, port: spec.hostPort, exclusive: true }, () => {
      host.off('error', onError);
      resolve();
    });
  });
  // After binding, errors (ICMP from a host peer that went away …) lose a datagram at most.
  host.on('error', () => {
    counters.udpDropped++;
  });
  const bound = host.address();
  let closing: Promise<void> | null = null;
  return {
    spec,
    address: bound.address,
    port: bound.port,
    counters,
    get active() {
      return flows.size;
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        closed = true;
        for (const m of [...flows.values()]) end(m);
        host.close(() => resolve());
      });
      return closing;
    },
  };
}
