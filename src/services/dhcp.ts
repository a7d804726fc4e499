/**
 * The DHCP server and client cores (dhcp-server.ts, dhcp-client.ts) attached to a stack's UDP:
 * `serveDhcp` answers on port 67, `runDhcpClient` acquires a lease on port 68 and configures the
 * stack with it (address, default router, DNS servers). Browser-safe: only the stack's clock and
 * sockets.
 */
import type { Clock, TimerHandle } from '../link/clock.js';
import { Rng } from '../link/rng.js';
import type { UdpBindOptions, UdpSocket } from '../udp/socket.js';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT, parseDhcp, writeDhcp, type DhcpDropReason } from '../wire/dhcp.js';
import { DhcpClient, type DhcpClientAction, type DhcpClientOptions, type DhcpLease } from './dhcp-client.js';
import { DhcpServer, type DhcpServerOptions } from './dhcp-server.js';

/** What the DHCP services use of a Stack (src/stack/stack.ts). */
export interface DhcpHost {
  readonly clock: Clock;
  readonly addresses: readonly string[];
  /** The Ethernet interface, when there is one: its MAC is the client's chaddr. */
  readonly interface: { readonly mac: Uint8Array } | null;
  udpBind(options: UdpBindOptions): UdpSocket;
  addAddress(cidr: string): void;
  removeAddress(address: string): boolean;
  setRouter(address: string | null, version: 4 | 6): void;
  router(version: 4 | 6): string | null;
  readonly dnsServers: readonly string[];
  setDnsServers(list: readonly string[]): void;
}

export interface DhcpServerHandle {
  readonly server: DhcpServer;
  /** Datagrams on port 67 that were not DHCP messages, by reason. */
  readonly drops: Partial<Record<DhcpDropReason, number>>;
  close(): void;
}

/**
 * A DHCP server on the stack's UDP port 67 (0.0.0.0, broadcast allowed). Replies go where the core
 * says (255.255.255.255:68, ciaddr:68 or a relay's giaddr:67), from the server address when the
 * stack has it. Throws the bind error (EADDRINUSE …) if port 67 is taken.
 */
export function serveDhcp(stack: DhcpHost, options: DhcpServerOptions = {}): DhcpServerHandle {
  const server = new DhcpServer(options);
  const drops: Partial<Record<DhcpDropReason, number>> = {};
  const socket = stack.udpBind({ address: '0.0.0.0', port: DHCP_SERVER_PORT, broadcast: true });
  socket.onMessage = (data) => {
    const m = parseDhcp(data);
    if (typeof m === 'string') {
      drops[m] = (drops[m] ?? 0) + 1;
      return;
    }
    const r = server.handle(m, stack.clock.now());
    if (r === null) return;
    const from = stack.addresses.includes(server.serverAddress) ? server.serverAddress : undefined;
    try {
      socket.send(writeDhcp(r.message, r.order), r.to.address, r.to.port, from);
    } catch {
      // No route to a relay, a closed socket: the client retransmits.
    }
  };
  return {
    server,
    drops,
    close: () => socket.close(),
  };
}

export interface RunDhcpClientOptions extends Omit<DhcpClientOptions, 'mac'> {
  /** chaddr: default the stack's Ethernet MAC; on an IP link a random locally administered one. */
  mac?: Uint8Array | string;
  /** Configure the stack with the lease (address, router, DNS). Default true. */
  configure?: boolean;
  /** Called on each lease (renewals included) and when it is lost. */
  onLease?: (lease: DhcpLease | null) => void;
}

export interface DhcpClientHandle {
  readonly client: DhcpClient;
  /** Resolves with the first lease; rejects if closed before one. */
  readonly ready: Promise<DhcpLease>;
  /** Datagrams on port 68 that were not DHCP messages, by reason. */
  readonly drops: Partial<Record<DhcpDropReason, number>>;
  /** Sends a RELEASE (when bound), removes the address, stops. The socket stays until close(). */
  release(): void;
  /** Stops (without a RELEASE unless `release` is true), removes the address, closes the socket. */
  close(options?: { release?: boolean }): void;
}

/**
 * A DHCP client on the stack's UDP port 68, bound with `broadcast` and `anyDestination` (an offer
 * may come before the stack has any address), sending from 0.0.0.0 until bound. On ACK it adds
 * `address/prefix` to the stack, sets the default IPv4 router and the DNS servers; on expiry or a
 * NAK it removes them; renewals only update.
 */
export function runDhcpClient(stack: DhcpHost, options: RunDhcpClientOptions = {}): DhcpClientHandle {
  const clock = stack.clock;
  const mac = options.mac ?? stack.interface?.mac ?? randomMac(options.seed);
  const client = new DhcpClient({ ...options, mac });
  const configure = options.configure ?? true;
  const drops: Partial<Record<DhcpDropReason, number>> = {};
  const socket = stack.udpBind({ address: '0.0.0.0', port: DHCP_CLIENT_PORT, broadcast: true, anyDestination: true });
  let timer: TimerHandle | null = null;
  let closed = false;
  let resolve!: (l: DhcpLease) => void;
  let reject!: (e: Error) => void;
  const ready = new Promise<DhcpLease>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody need wait for it: a close before any lease must not be an unhandled rejection.
  ready.catch(() => {});
  /** What this client set on the stack, to undo exactly that. */
  let applied: { address: string; router: string | null; dns: readonly string[] } | null = null;

  const unconfigure = (): void => {
    if (applied === null) return;
    stack.removeAddress(applied.address);
    if (applied.router !== null && stack.router(4) === applied.router) stack.setRouter(null, 4);
    if (applied.dns.length > 0 && sameList(stack.dnsServers, applied.dns)) stack.setDnsServers([]);
    applied = null;
  };

  const apply = (actions: DhcpClientAction[]): void => {
    for (const a of actions) {
      if (a.type === 'send') {
        try {
          socket.send(writeDhcp(a.message), a.to.address, a.to.port, a.from);
        } catch {
          // ENETUNREACH (no route to the server yet) and the like: the retransmission timer retries.
        }
      } else if (a.type === 'configure') {
        const l = a.lease;
        if (configure) {
          if (applied !== null && applied.address !== l.address) unconfigure();
          if (applied === null) {
            try {
              stack.addAddress(`${l.address}/${l.prefix}`);
            } catch {
              // EADDRINUSE: the stack already had it (configured by hand); keep using it.
            }
          }
          if (l.router !== null) stack.setRouter(l.router, 4);
          if (l.dnsServers.length > 0) stack.setDnsServers(l.dnsServers);
          applied = { address: l.address, router: l.router, dns: l.dnsServers };
        }
        options.onLease?.(l);
        resolve(l);
      } else {
        if (configure) unconfigure();
        options.onLease?.(null);
      }
    }
    schedule();
  };

  const schedule = (): void => {
    if (timer !== null) clock.cancel(timer);
    timer = null;
    const at = client.nextTimeout();
    if (at === null || closed) return;
    timer = clock.schedule(at, () => {
      timer = null;
      apply(client.tick(clock.now()));
    });
  };

  socket.onMessage = (data) => {
    // Other clients' replies (broadcast) are not even parsed.
    if (data.length >= 240 && data[0] === 2 && !client.wants(data)) return;
    const m = parseDhcp(data);
    if (typeof m === 'string') {
      drops[m] = (drops[m] ?? 0) + 1;
      return;
    }
    apply(client.handle(m, clock.now()));
  };

  apply(client.start(clock.now()));

  const release = (): void => {
    if (closed) return;
    apply(client.release(clock.now()));
    // release() leaves nothing configured even when the client held no lease.
    if (configure) unconfigure();
  };

  return {
    client,
    ready,
    drops,
    release,
    close(opts?: { release?: boolean }): void {
      if (closed) return;
      if (opts?.release === true) release();
      closed = true;
      client.stop();
      if (timer !== null) clock.cancel(timer);
      timer = null;
      if (configure) unconfigure();
      socket.close();
      reject(new Error('DHCP client closed before it had a lease'));
    },
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A locally administered unicast MAC (02:…), for a client on a link without one. */
function randomMac(seed: number | undefined): Uint8Array {
  const rng = new Rng(seed ?? Math.floor(Math.random() * 2 ** 32));
  const mac = Uint8Array.of(0x02, 0, 0, 0, 0, 0);
  for (let i = 1; i < 6; i++) mac[i] = rng.int(0, 255);
  return mac;
}
