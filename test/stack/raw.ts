/**
 * A hand-driven peer for stack tests: one `Stack` on one end of a `MemoryLink`, and raw IP packets
 * crafted with the wire codecs sent from the other end, the replies captured and parsed.
 */
import { MemoryLink, type MemoryLinkEnd } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/link/clock.js';
import { Stack } from '../../src/stack/stack.js';
import type { StackOptions } from '../../src/stack/options.js';
import type { TraceEvent } from '../../src/trace/events.js';
import { parseAddress } from '../../src/wire/address.js';
import { internetChecksum, pseudoHeaderSum, sum16 } from '../../src/wire/checksum.js';
import { parseIpPacket, PROTO_TCP, type IpPacketInfo } from '../../src/wire/ip.js';
import { writeIpv4Header } from '../../src/wire/ipv4.js';
import { writeIpv6Header } from '../../src/wire/ipv6.js';
import { parseTcp, tcpOptionsLength, writeTcp, type TcpOptions, type TcpSegment } from '../../src/wire/tcp.js';

export const US4 = '10.0.0.1';
export const PEER4 = '10.0.0.2';
export const US6 = 'fd00::1';
export const PEER6 = 'fd00::2';

export function addr(text: string): Uint8Array {
  const a = parseAddress(text);
  if (a === null) throw new Error(`bad address ${text}`);
  return a;
}

/** An IP packet around an upper-layer message, with a correct IPv4 header checksum. */
export function ipPacket(src: string, dst: string, protocol: number, body: Uint8Array, ttl = 64): Uint8Array {
  const s = addr(src);
  const d = addr(dst);
  const hl = s.length === 4 ? 20 : 40;
  const out = new Uint8Array(hl + body.length);
  if (s.length === 4) writeIpv4Header(out, 0, s, d, protocol, body.length, ttl, 1);
  else writeIpv6Header(out, 0, s, d, protocol, body.length, ttl);
  out.set(body, hl);
  return out;
}

export interface SegmentSpec {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: TcpOptions;
  payload?: Uint8Array | string;
}

function toBytes(p: Uint8Array | string | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  return typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

/** A TCP segment in an IP packet from `src` to `dst`, checksums correct. */
export function tcpPacket(src: string, dst: string, spec: SegmentSpec): Uint8Array {
  const seg: TcpSegment = {
    srcPort: spec.srcPort ?? 40000,
    dstPort: spec.dstPort ?? 80,
    seq: spec.seq ?? 1000,
    ack: spec.ack ?? 0,
    flags: spec.flags,
    window: spec.window ?? 65535,
    urgent: 0,
    options: spec.options ?? {},
    payload: toBytes(spec.payload),
  };
  const tcpLen = 20 + tcpOptionsLength(seg.options) + seg.payload.length;
  const body = new Uint8Array(tcpLen);
  writeTcp(body, 0, seg, pseudoHeaderSum(addr(src), addr(dst), PROTO_TCP, tcpLen));
  return ipPacket(src, dst, PROTO_TCP, body);
}

/**
 * A TCP header whose option bytes are given raw (padded by the caller to a multiple of 4), for
 * malformed options; checksums correct.
 */
export function tcpWithRawOptions(src: string, dst: string, spec: SegmentSpec, optionBytes: number[]): Uint8Array {
  if (optionBytes.length % 4 !== 0) throw new Error('option bytes must be a multiple of 4');
  const payload = toBytes(spec.payload);
  const hlen = 20 + optionBytes.length;
  const body = new Uint8Array(hlen + payload.length);
  const dv = new DataView(body.buffer);
  dv.setUint16(0, spec.srcPort ?? 40000);
  dv.setUint16(2, spec.dstPort ?? 80);
  dv.setUint32(4, spec.seq ?? 1000);
  dv.setUint32(8, spec.ack ?? 0);
  body[12] = (hlen / 4) << 4;
  body[13] = spec.flags;
  dv.setUint16(14, spec.window ?? 65535);
  body.set(optionBytes, 20);
  body.set(payload, hlen);
  const packet = ipPacket(src, dst, PROTO_TCP, body);
  fixTcpChecksum(packet);
  return packet;
}

/** Recomputes the TCP checksum of an IP packet in place (after a test edits the TCP bytes). */
export function fixTcpChecksum(packet: Uint8Array): void {
  const v4 = packet[0]! >>> 4 === 4;
  const hl = v4 ? (packet[0]! & 0x0f) * 4 : 40;
  const src = v4 ? packet.subarray(12, 16) : packet.subarray(8, 24);
  const dst = v4 ? packet.subarray(16, 20) : packet.subarray(24, 40);
  const len = packet.length - hl;
  packet[hl + 16] = 0;
  packet[hl + 17] = 0;
  const c = ~sum16(packet, hl, len, pseudoHeaderSum(src, dst, PROTO_TCP, len)) & 0xffff;
  packet[hl + 16] = c >>> 8;
  packet[hl + 17] = c & 0xff;
}

/** Recomputes the IPv4 header checksum in place. */
export function fixIpv4Checksum(packet: Uint8Array): void {
  const hl = (packet[0]! & 0x0f) * 4;
  packet[10] = 0;
  packet[11] = 0;
  const c = internetChecksum(packet, 0, hl);
  packet[10] = c >>> 8;
  packet[11] = c & 0xff;
}

export interface Reply {
  ip: IpPacketInfo;
  seg: TcpSegment;
  packet: Uint8Array;
}

/** Parses a TCP packet the stack sent, verifying both the IP and the TCP checksums. */
export function parseReply(packet: Uint8Array): Reply {
  const ip = parseIpPacket(packet);
  if (typeof ip === 'string') throw new Error(`stack sent a bad IP packet: ${ip}`);
  if (ip.protocol !== PROTO_TCP) throw new Error(`expected TCP, got protocol ${ip.protocol}`);
  const body = packet.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
  const seg = parseTcp(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_TCP, ip.payloadLength));
  if (typeof seg === 'string') throw new Error(`stack sent a bad TCP segment: ${seg}`);
  return { ip, seg, packet };
}

export interface Harness {
  clock: VirtualClock;
  stack: Stack;
  peer: MemoryLinkEnd;
  /** Every packet the stack sent that has reached the peer, in order; `take()` empties it. */
  sent: Uint8Array[];
  trace: TraceEvent[];
  /** Send raw packets from the peer and let the stack process them (no time passes). */
  inject(...packets: Uint8Array[]): void;
  /** The packets the stack sent since the last take(), parsed as TCP. */
  takeTcp(): Reply[];
  take(): Uint8Array[];
}

export function harness(opts: Partial<StackOptions> & { mtu?: number; traced?: boolean } = {}): Harness {
  const clock = new VirtualClock();
  const [ours, peer] = MemoryLink.pair({ clock, ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}) });
  const { mtu: _mtu, traced, ...rest } = opts;
  void _mtu;
  const stack = new Stack({ addresses: [`${US4}/24`, `${US6}/64`], seed: 1, clock, ...rest, link: ours });
  const sent: Uint8Array[] = [];
  const trace: TraceEvent[] = [];
  if (traced !== false) stack.on('trace', (e) => trace.push(e));
  peer.onPacket((p) => sent.push(p));
  // Delivery over the link goes through the clock: let what the stack sent arrive first.
  const take = (): Uint8Array[] => {
    clock.advanceSync(0);
    return sent.splice(0, sent.length);
  };
  return {
    clock, stack, peer, sent, trace,
    inject(...packets) {
      for (const p of packets) peer.send(p);
      clock.advanceSync(0);
    },
    take,
    takeTcp: () => take().map(parseReply),
  };
}

/**
 * Completes a handshake by hand with the stack listening on `port`: returns the peer's next
 * sequence number and the stack's (ISS + 1).
 */
export function handshake(h: Harness, src: string, dst: string, srcPort: number, port: number, iss = 5000): { peerNxt: number; ourNxt: number } {
  h.inject(tcpPacket(src, dst, { srcPort, dstPort: port, seq: iss, flags: 0x02, options: { mss: 1460 } }));
  const replies = h.takeTcp();
  if (replies.length !== 1 || replies[0]!.seg.flags !== 0x12) throw new Error('no SYN,ACK');
  const ourNxt = (replies[0]!.seg.seq + 1) >>> 0;
  const peerNxt = (iss + 1) >>> 0;
  h.inject(tcpPacket(src, dst, { srcPort, dstPort: port, seq: peerNxt, ack: ourNxt, flags: 0x10 }));
  return { peerNxt, ourNxt };
}
