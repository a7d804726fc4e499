/**
 * Many idle established connections between two synack stacks, for the memory and demux benchmarks.
 *
 * Built on a VirtualClock: how much an idle connection costs, and how long one segment takes to
 * find its connection, do not depend on the time source, and virtual time builds 100k handshakes
 * in seconds, deterministically. The client stack opens the connections in batches; the server
 * stack accepts them through `onConnection`. 100k connections need more than one ephemeral range
 * (16,384 ports per destination, RFC 6056 §3.2), so the server listens on one port per 10,000.
 */
import { VirtualClock } from '../link/clock.js';
import { MemoryLink } from '../link/memory.js';
import type { LinkEnd } from '../link/link.js';
import { Stack } from '../stack/stack.js';
import type { TcpConnection, TcpListener } from '../tcp/user.js';

export const PER_PORT = 10_000;
const BASE_PORT = 8000;
const BATCH = 500;

export interface Population {
  clock: VirtualClock;
  client: Stack;
  server: Stack;
  clients: TcpConnection[];
  servers: TcpConnection[];
  listeners: TcpListener[];
  /** Calls the server stack's packet receiver directly (what its link would do). */
  deliverToServer(packet: Uint8Array): void;
  /** Tells the server stack a burst of packets ended, when its link delivers in bursts (a no-op otherwise). */
  endServerBurst(): void;
  /**
   * Pure ACKs the client sent (the last segment of each handshake, and any later), copied into
   * storage allocated up front so that keeping them costs no memory per connection: `ackCount` of
   * them, `ACK_SLOT` bytes apart, each `ackLength(i)` long.
   */
  acks: Uint8Array;
  ackCount: number;
  ackLength(i: number): number;
  /** Grows the population to `n` established pairs. */
  grow(n: number): void;
}

/** A link end that may deliver in bursts (LinkEnd.onBurstEnd, where the link offers it). */
type BurstLinkEnd = LinkEnd & { onBurstEnd?(fn: () => void): void };

/** Room for one captured pure ACK: IPv4 header, TCP header with timestamps (20 + 32 bytes). */
export const ACK_SLOT = 64;

/** Stacks, link and listeners for up to `max` connections; none open yet. */
export function population(max: number): Population {
  const clock = new VirtualClock();
  const [ea, eb] = MemoryLink.pair({ mtu: 1500, clock });
  let serverReceive: ((p: Uint8Array) => void) | undefined;
  let serverBurstEnd: (() => void) | undefined;
  // The server's link end: `eb` itself (everything inherited, whatever the link offers the stack:
  // checksum offload, burst delivery…) except that the receiver and the end-of-burst callback the
  // stack registers are kept, so a benchmark can hand it packets directly, as the link would.
  const serverEnd = Object.create(eb) as BurstLinkEnd;
  serverEnd.onPacket = (fn) => {
    serverReceive = fn;
    eb.onPacket(fn);
  };
  const burst = (eb as BurstLinkEnd).onBurstEnd;
  if (typeof burst === 'function') {
    serverEnd.onBurstEnd = (fn) => {
      serverBurstEnd = fn;
      burst.call(eb, fn);
    };
  }
  const capacity = max + 1024;
  const acks = new Uint8Array(capacity * ACK_SLOT);
  const ackLengths = new Uint8Array(capacity);
  let ackCount = 0;
  ea.onTransmit((p) => {
    // IPv4, TCP, flags exactly ACK, no payload: a pure ACK (header lengths from the packet).
    const ihl = (p[0]! & 0x0f) * 4;
    const doff = (p[ihl + 12]! >> 4) * 4;
    if (p[9] !== 6 || p[ihl + 13] !== 0x10 || p.length !== ihl + doff || p.length > ACK_SLOT || ackCount >= capacity) return;
    acks.set(p, ackCount * ACK_SLOT);
    ackLengths[ackCount++] = p.length;
  });
  const client = new Stack({ link: ea, clock, addresses: ['10.0.0.1/24'], name: 'client', seed: 1 });
  const server = new Stack({ link: serverEnd, clock, addresses: ['10.0.0.2/24'], name: 'server', seed: 2 });
  const clients: TcpConnection[] = [];
  const servers: TcpConnection[] = [];
  const listeners: TcpListener[] = [];
  // Every listener up front, so that they are part of the baseline, not of the connections.
  for (let i = 0; i < Math.ceil(max / PER_PORT); i++) {
    const l = server.tcpListen({ port: BASE_PORT + i, backlog: BATCH * 2 });
    l.onConnection = (c) => void servers.push(c);
    listeners.push(l);
  }
  const pop: Population = {
    clock, client, server, clients, servers, listeners, acks,
    get ackCount() {
      return ackCount;
    },
    ackLength: (i) => ackLengths[i]!,
    deliverToServer: (p) => serverReceive!(p),
    endServerBurst: () => serverBurstEnd?.(),
    grow(n: number) {
      if (n > max) throw new RangeError(`population: ${n} connections asked, room for ${max}`);
      while (clients.length < n) {
        const todo = Math.min(BATCH, n - clients.length);
        for (let i = 0; i < todo; i++) {
          const index = clients.length;
          const portIndex = Math.floor(index / PER_PORT);
          clients.push(client.tcpConnect({ host: '10.0.0.2', port: BASE_PORT + portIndex }));
        }
        // Handshakes and the delayed ACKs after them (40 ms): then every connection is idle.
        clock.advanceSync(100);
      }
      clock.advanceSync(1000);
      for (const c of clients) {
        if (c.state !== 'ESTABLISHED') throw new Error(`population: a client connection is ${c.state}, not ESTABLISHED`);
      }
      if (servers.length !== clients.length) throw new Error(`population: ${servers.length} accepted for ${clients.length} opened`);
    },
  };
  return pop;
}
