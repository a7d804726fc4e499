/**
 * The scripted remote peer of a packetdrill run: it turns `<` lines into IP packets for the stack,
 * and the stack's packets into the script's own notation so they can be compared with `>` lines.
 *
 * Numbering (packetdrill's): the remote's sequence numbers and timestamps are what the script writes;
 * the local side's are written relative to its ISN (its SYN is 0:0(0)) and to its first timestamp.
 */
import { pseudoHeaderSum, sum16 } from '../wire/checksum.js';
import { PROTO_TCP } from '../wire/ip.js';
import { writeIpv4Header } from '../wire/ipv4.js';
import { writeIpv6Header } from '../wire/ipv6.js';
import { ACK, CWR, ECE, FIN, OPT_EOL, OPT_MSS, OPT_NOP, OPT_SACK, OPT_SACK_PERMITTED, OPT_TIMESTAMP, OPT_WSCALE, PSH, RST, SYN, URG } from '../wire/tcp.js';
import type { DrillOption, SegmentEvent } from './ast.js';

const FLAG_LETTERS: Array<[string, number]> = [
  ['S', SYN], ['F', FIN], ['R', RST], ['P', PSH], ['.', ACK], ['U', URG], ['E', ECE], ['W', CWR],
];

export function flagsFromLetters(letters: string): number {
  let f = 0;
  for (const ch of letters) {
    const hit = FLAG_LETTERS.find(([l]) => l === ch);
    if (hit) f |= hit[1];
  }
  return f;
}

/** packetdrill's spelling of a flag set: S F R P . U E W, in that order (`.` for ACK). */
export function lettersFromFlags(flags: number): string {
  let s = '';
  for (const [l, bit] of FLAG_LETTERS) if (flags & bit) s += l;
  return s;
}

/** The option bytes exactly as written (kinds, order, NOPs), padded with EOL to a multiple of 4. */
export function encodeOptions(options: readonly DrillOption[], mapEcr: (ecr: number) => number): Uint8Array {
  const out: number[] = [];
  const u32 = (v: number): void => {
    out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  };
  for (const o of options) {
    switch (o.kind) {
      case 'nop': out.push(OPT_NOP); break;
      case 'eol': out.push(OPT_EOL); break;
      case 'mss': out.push(OPT_MSS, 4, (o.value >>> 8) & 0xff, o.value & 0xff); break;
      case 'wscale': out.push(OPT_WSCALE, 3, o.value & 0xff); break;
      case 'sackOK': out.push(OPT_SACK_PERMITTED, 2); break;
      case 'sack':
        out.push(OPT_SACK, 2 + 8 * o.blocks.length);
        for (const [a, b] of o.blocks) {
          u32(a >>> 0);
          u32(b >>> 0);
        }
        break;
      case 'TS':
        out.push(OPT_TIMESTAMP, 10);
        u32(o.val >>> 0);
        u32(mapEcr(o.ecr) >>> 0);
        break;
      case 'other':
        throw new Error(`option "${o.text}" is not supported`);
    }
  }
  while (out.length % 4 !== 0) out.push(OPT_EOL);
  if (out.length > 40) throw new Error(`options take ${out.length} bytes; TCP allows 40`);
  return Uint8Array.from(out);
}

/** Reads option bytes in order, as the script would write them. */
export function decodeOptions(bytes: Uint8Array): DrillOption[] {
  const out: DrillOption[] = [];
  const u32 = (i: number): number => ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
  let i = 0;
  while (i < bytes.length) {
    const kind = bytes[i]!;
    if (kind === OPT_EOL) {
      // Padding after the last option: not part of what a script writes (packetdrill ignores it too).
      if (bytes.subarray(i).every((b) => b === 0)) break;
      out.push({ kind: 'eol' });
      i++;
      continue;
    }
    if (kind === OPT_NOP) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    const len = bytes[i + 1] ?? 0;
    if (len < 2 || i + len > bytes.length) {
      out.push({ kind: 'other', text: `kind ${kind} (bad length ${len})` });
      break;
    }
    if (kind === OPT_MSS && len === 4) out.push({ kind: 'mss', value: (bytes[i + 2]! << 8) | bytes[i + 3]! });
    else if (kind === OPT_WSCALE && len === 3) out.push({ kind: 'wscale', value: bytes[i + 2]! });
    else if (kind === OPT_SACK_PERMITTED && len === 2) out.push({ kind: 'sackOK' });
    else if (kind === OPT_TIMESTAMP && len === 10) out.push({ kind: 'TS', val: u32(i + 2), ecr: u32(i + 6) });
    else if (kind === OPT_SACK && (len - 2) % 8 === 0) {
      const blocks: Array<[number, number]> = [];
      for (let j = i + 2; j < i + len; j += 8) blocks.push([u32(j), u32(j + 4)]);
      out.push({ kind: 'sack', blocks });
    } else out.push({ kind: 'other', text: `kind ${kind} len ${len}` });
    i += len;
  }
  return out;
}

export function formatOption(o: DrillOption): string {
  switch (o.kind) {
    case 'nop': return 'nop';
    case 'eol': return 'eol';
    case 'mss': return `mss ${o.value}`;
    case 'wscale': return `wscale ${o.value}`;
    case 'sackOK': return 'sackOK';
    case 'sack': return `sack ${o.blocks.map(([a, b]) => `${a}:${b}`).join(' ')}`;
    case 'TS': return `TS val ${o.val} ecr ${o.ecr}`;
    case 'other': return o.text;
  }
}

/** A TCP segment as a script line would describe it (numbers already made relative). */
export interface ScriptSegment {
  flags: number;
  start: number;
  end: number;
  length: number;
  ack: number | null;
  win: number;
  urg: number;
  options: DrillOption[];
}

export function formatSegment(s: ScriptSegment, showWin = true): string {
  let text = `${lettersFromFlags(s.flags)} ${s.start >>> 0}:${s.end >>> 0}(${s.length})`;
  if (s.ack !== null) text += ` ack ${s.ack >>> 0}`;
  if (showWin) text += ` win ${s.win}`;
  if (s.urg !== 0) text += ` urg ${s.urg}`;
  if (s.options.length > 0) text += ` <${s.options.map(formatOption).join(',')}>`;
  return text;
}

export function formatExpected(ev: SegmentEvent): string {
  let text = `${ev.flags} ${ev.start >>> 0}:${ev.end >>> 0}(${ev.length})`;
  if (ev.ack !== undefined) text += ` ack ${ev.ack >>> 0}`;
  if (ev.win !== undefined) text += ` win ${ev.win}`;
  if (ev.urg !== undefined) text += ` urg ${ev.urg}`;
  if (ev.options === 'any') text += ' <...>';
  else if (ev.options !== undefined && ev.options.length > 0) text += ` <${ev.options.map(formatOption).join(',')}>`;
  return text;
}

export interface Endpoint {
  address: Uint8Array;
  port: number;
}

let ipId = 1;

/**
 * An IP packet carrying one TCP segment with the given raw fields, checksums correct. The payload is
 * `length` bytes of a fixed filler (packetdrill sends zeros; scripts never look at the content).
 */
export function buildPacket(
  from: Endpoint, to: Endpoint, seq: number, ack: number, flags: number, win: number, urg: number,
  options: Uint8Array, length: number, ttl = 64,
): Uint8Array {
  const v4 = from.address.length === 4;
  const ipLen = v4 ? 20 : 40;
  const tcpLen = 20 + options.length + length;
  const packet = new Uint8Array(ipLen + tcpLen);
  if (v4) writeIpv4Header(packet, 0, from.address, to.address, PROTO_TCP, tcpLen, ttl, (ipId++ & 0xffff) || 1);
  else writeIpv6Header(packet, 0, from.address, to.address, PROTO_TCP, tcpLen, ttl);
  const t = ipLen;
  const dv = new DataView(packet.buffer, packet.byteOffset, packet.length);
  dv.setUint16(t, from.port);
  dv.setUint16(t + 2, to.port);
  dv.setUint32(t + 4, seq >>> 0);
  dv.setUint32(t + 8, ack >>> 0);
  packet[t + 12] = ((20 + options.length) / 4) << 4;
  packet[t + 13] = flags & 0xff;
  dv.setUint16(t + 14, Math.max(0, Math.min(win, 0xffff)));
  dv.setUint16(t + 18, urg & 0xffff);
  packet.set(options, t + 20);
  const c = ~sum16(packet, t, tcpLen, pseudoHeaderSum(from.address, to.address, PROTO_TCP, tcpLen)) & 0xffff;
  dv.setUint16(t + 16, c);
  return packet;
}
