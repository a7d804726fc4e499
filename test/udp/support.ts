/** Helpers for the UDP tests: two stacks on a MemoryLink in virtual time, and raw UDP packets. */
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink, type MemoryLinkEnd } from '../../src/link/memory.js';
import type { StackOptions } from '../../src/stack/options.js';
import { Stack } from '../../src/stack/stack.js';
import type { UdpRemote } from '../../src/udp/socket.js';
import { parseAddress } from '../../src/wire/address.js';
import { pseudoHeaderSum } from '../../src/wire/checksum.js';
import { PROTO_UDP, parseIpPacket, type IpPacketInfo } from '../../src/wire/ip.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { writeUdp } from '../../src/wire/udp.js';

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface Pair {
  clock: VirtualClock;
  a: Stack;
  b: Stack;
  /** Every packet a sent (as the wire saw it, copied). */
  wireAB: Uint8Array[];
  wireBA: Uint8Array[];
  step(ms?: number): void;
}

export function pair(opts: { mtu?: number; a?: Partial<StackOptions>; b?: Partial<StackOptions> } = {}): Pair {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, delayMs: 1, ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}) });
  const wireAB: Uint8Array[] = [];
  const wireBA: Uint8Array[] = [];
  tap(la, wireAB);
  tap(lb, wireBA);
  const a = new Stack({ link: la, addresses: ['10.0.0.1/24', 'fd00::1/64'], clock, seed: 1, name: 'a', ...opts.a });
  const b = new Stack({ link: lb, addresses: ['10.0.0.2/24', 'fd00::2/64'], clock, seed: 2, name: 'b', ...opts.b });
  return { clock, a, b, wireAB, wireBA, step: (ms = 10) => clock.advanceSync(ms) };
}

function tap(end: MemoryLinkEnd, into: Uint8Array[]): void {
  const send = end.send.bind(end);
  end.send = (p: Uint8Array) => {
    into.push(p.slice());
    send(p);
  };
}

export interface Received {
  data: string;
  remote: UdpRemote;
  local: { address: string; port: number };
}

export function collect(s: { onMessage: ((d: Uint8Array, r: UdpRemote, l: { address: string; port: number }) => void) | null }): Received[] {
  const got: Received[] = [];
  s.onMessage = (d, remote, local) => got.push({ data: str(d), remote, local });
  return got;
}

export function addr(t: string): Uint8Array {
  const a = parseAddress(t);
  if (a === null) throw new Error(t);
  return a;
}

/** A UDP datagram in an IP packet, checksums correct (IPv4 header with DF, id 1). */
export function udpPacket(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const s = addr(src);
  const d = addr(dst);
  const hl = s.length === 4 ? 20 : 40;
  const len = 8 + payload.length;
  const out = new Uint8Array(hl + len);
  if (s.length === 4) writeIpv4Header(out, 0, s, d, PROTO_UDP, len, 64, 1);
  else writeIpv6Header(out, 0, s, d, PROTO_UDP, len, 64);
  writeUdp(out, hl, srcPort, dstPort, payload, pseudoHeaderSum(s, d, PROTO_UDP, len));
  return out;
}

export function ip(p: Uint8Array): IpPacketInfo {
  const r = parseIpPacket(p);
  if (typeof r === 'string') throw new Error(r);
  return r;
}
