/**
 * `synack draw`'s brain: from the packets of a capture, the TCP streams it holds, and for one stream
 * the ladder-diagram model with each side's states *inferred* from the segments it sent and received
 * (RFC 9293 §3.3.2, Figure 5; the event processing of §3.10) and Wireshark-style analysis marks on
 * the segments (retransmission, dup ACK, zero window…).
 *
 * How states are inferred. A capture shows segments, not states, and it is taken at one point of the
 * path: a segment seen may never have arrived, and a side's reaction to it is only visible in what
 * that side sends next. So:
 * - A state change a side makes when it *sends* (a SYN, a FIN, a RST) is timed at that segment.
 * - A state change on *receipt* of a SYN or a FIN is shown by the receiver acknowledging it: it is
 *   timed at the copy of the SYN/FIN last sent before that acknowledgment (earlier copies were lost),
 *   but never before a segment the receiver sent that does not yet acknowledge it (it had not received
 *   it then — this is what tells a simultaneous close from a passive one).
 * - A state change on receipt of an ACK of our SYN/FIN (nothing acknowledges an ACK) is timed at the
 *   first such ACK sent after the side's last retransmission of that SYN/FIN (a retransmission after
 *   an ACK shows that ACK was lost).
 * - The expiry of TIME-WAIT sends nothing, so it is not in any capture: it is shown as CLOSED 2×MSL =
 *   60 s (Linux's TCP_TIMEWAIT_LEN; synack's default MSL is 30 s) after TIME-WAIT was entered or the
 *   last FIN received in it restarted the timer (RFC 9293 §3.10.7.4), marked `assumed`.
 * - Before the first evidence a side is 'unknown' — except where its first segment tells what it was
 *   in before: a side whose first segment is a SYN was CLOSED (active OPEN); one that answers a SYN
 *   with SYN,ACK was LISTEN (passive OPEN); one that answers a SYN with RST had no listener (CLOSED).
 *   A side first seen mid-connection (no SYN in the capture) is assumed ESTABLISHED at its first
 *   segment.
 * - Where the capture misses part of the handshake, the state it implies is `assumed`: a side whose
 *   first segment is a SYN,ACK answering a SYN not captured is SYN-RECEIVED at it; a side that
 *   sends an ACK after its SYN had the peer's SYN,ACK (ESTABLISHED); a FIN sent or received from
 *   LISTEN or SYN-SENT means the connection was synchronized first (ESTABLISHED).
 * - A RST without ACK whose SEQ is the ACK of the peer's segment just before it answers an
 *   unacceptable segment (<SEQ=SEG.ACK><CTL=RST>, §3.10.7.2–§3.10.7.4): from SYN-SENT or
 *   SYN-RECEIVED it changes no state. A listener sent back to LISTEN by a RST that answers a SYN
 *   again is SYN-RECEIVED again (§3.5 Figure 8, recovery from an old duplicate SYN).
 * - An ACK of more than the peer had sent (an old duplicate) is not evidence of anything.
 * Times are capture times, so with a capture taken at one end a receipt is timed when the packet
 * passed the capture point, not when the far end processed it.
 *
 * Core module: no Node built-ins. The wire codecs parse every header (no second parser here).
 */
import { parseIpPacket, PROTO_TCP } from '../wire/ip.js';
import { formatAddress } from '../wire/address.js';
import { ACK, FIN, RST, SYN, flagNames, formatOptions, parseTcp, type TcpOptions } from '../wire/tcp.js';
import { seqGeq, seqGt, seqLt } from '../wire/seq.js';
import type { CapturedPacket } from '../trace/capture.js';
import { formatEndpoint } from './labels.js';
import type {
  DiagramEndpoint,
  DiagramModel,
  DiagramNote,
  DiagramSegment,
  DiagramState,
  DiagramStateName,
  SegmentMark,
} from './model.js';

/** One TCP segment out of a capture. */
export interface CapturedSegment {
  /** Capture record number. */
  index: number;
  /** Capture time, seconds since the epoch. */
  t: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Payload length (from the IP length, also when the record was cut by the snaplen). */
  len: number;
  options: TcpOptions;
  /**
   * Options the codec does not decode (TFO cookie, MPTCP, MD5/AO…) as `opt30(len 4)`, and a
   * `malformed options (…)` entry when the option list could not be parsed; absent when none.
   */
  otherOptions?: string[];
  /** The TCP header length in bytes (data offset × 4), as captured. */
  dataOffset: number;
  /** The record held less than the packet (snaplen). */
  truncated: boolean;
}

export interface StreamSide {
  address: string;
  port: number;
  /** `address:port` ([v6]:port for IPv6). */
  name: string;
  packets: number;
  /** TCP payload bytes this side sent (retransmissions included). */
  bytes: number;
}

/** One TCP connection of a capture (a 4-tuple; a reused 4-tuple with a new SYN is a new stream). */
export interface StreamSummary {
  /** 0-based, in order of first appearance (`--stream N`). */
  index: number;
  /** a: the side that sent the first SYN without ACK, else the first sender. */
  a: StreamSide;
  b: StreamSide;
  /** Capture times (epoch seconds) of the first and last segment. */
  first: number;
  last: number;
  packets: number;
  syn: boolean;
  fin: boolean;
  rst: boolean;
}

export interface ExtractResult {
  segments: CapturedSegment[];
  /** Packets that are not TCP, or not parseable, by reason. */
  skipped: Record<string, number>;
}

/** Endpoint name as `draw` shows it: `address:port`, IPv6 in brackets. */
export function endpointName(address: string, port: number): string {
  return formatEndpoint(address, port);
}

/** The TCP segments of captured IP packets (non-TCP packets and fragments are counted, not kept). */
export function extractTcp(packets: CapturedPacket[]): ExtractResult {
  const segments: CapturedSegment[] = [];
  const skipped: Record<string, number> = {};
  const skip = (why: string): void => {
    skipped[why] = (skipped[why] ?? 0) + 1;
  };
  for (const p of packets) {
    let bytes = p.bytes;
    if (p.truncated) {
      // Cut by the snaplen: lay the captured prefix into a buffer of the IP packet's length so that
      // the IP codec's length checks pass; only payload bytes (never looked at) are made up. The
      // length is the IP header's own (at most 65535 + 40), never the record's original length,
      // which a corrupt file may put at 4 GiB.
      const v4 = bytes[0]! >>> 4 === 4;
      if (bytes.length < (v4 ? 4 : 6)) {
        skip('IP header not captured (snaplen)');
        continue;
      }
      const ipLength = v4 ? (bytes[2]! << 8) | bytes[3]! : 40 + ((bytes[4]! << 8) | bytes[5]!);
      const length = Math.min(p.origLength, ipLength);
      if (length > bytes.length) {
        const whole = new Uint8Array(length);
        whole.set(bytes);
        bytes = whole;
      }
    }
    // IPv4 header checksums are not verified either: a capture at a host with checksum offload sees
    // that host's packets before the NIC fills the checksum in (zero or garbage).
    const ip = parseIpPacket(bytes, false);
    if (typeof ip === 'string') {
      skip(ip === 'ipv4-fragment' || ip === 'ipv6-fragment' ? 'IP fragment' : `bad IP packet (${ip})`);
      continue;
    }
    if (ip.protocol !== PROTO_TCP) {
      skip('not TCP');
      continue;
    }
    const captured = p.bytes.length - ip.payloadOffset;
    const headerLength = captured >= 13 ? (bytes[ip.payloadOffset + 12]! >>> 4) * 4 : 20;
    if (captured < Math.max(20, headerLength)) {
      skip('TCP header not captured (snaplen)');
      continue;
    }
    // Checksums are not verified: a capture at the sender sees them before offload fills them in.
    const raw = bytes.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
    let tcp = parseTcp(raw, 0, false);
    const other = headerLength > 20 ? otherOptions(raw, headerLength) : [];
    if (tcp === 'tcp-bad-options') {
      // A stack drops such a segment; an analyser draws it, with its options marked malformed. The
      // fixed header is read from a copy whose data offset says "no options".
      const bare = new Uint8Array(20 + raw.length - headerLength);
      bare.set(raw.subarray(0, 20));
      bare.set(raw.subarray(headerLength), 20);
      bare[12] = (5 << 4) | (bare[12]! & 0x0f);
      tcp = parseTcp(bare, 0, false);
      if (!other.some((o) => o.startsWith('malformed'))) other.push('malformed options');
    }
    if (typeof tcp === 'string') {
      skip(`bad TCP header (${tcp})`);
      continue;
    }
    const seg: CapturedSegment = {
      index: p.index,
      t: p.t,
      src: formatAddress(ip.src),
      srcPort: tcp.srcPort,
      dst: formatAddress(ip.dst),
      dstPort: tcp.dstPort,
      seq: tcp.seq,
      ack: tcp.ack,
      flags: tcp.flags,
      window: tcp.window,
      len: tcp.payload.length,
      options: tcp.options,
      dataOffset: headerLength,
      truncated: p.truncated,
    };
    if (other.length > 0) seg.otherOptions = other;
    segments.push(seg);
  }
  return { segments, skipped };
}

/** Option kinds the TCP codec decodes, and their lengths (SACK: 2 + 8 per block, 1 to 4 blocks). */
const KNOWN_OPTIONS: Record<number, { name: string; ok: (len: number) => boolean }> = {
  2: { name: 'MSS', ok: (len) => len === 4 },
  3: { name: 'WS', ok: (len) => len === 3 },
  4: { name: 'SACK_PERM', ok: (len) => len === 2 },
  5: { name: 'SACK', ok: (len) => len >= 10 && len <= 34 && (len - 2) % 8 === 0 },
  8: { name: 'TS', ok: (len) => len === 10 },
};

/**
 * What `parseTcp` leaves out of a header's options: the kinds it does not decode, as
 * `opt30(len 4)` (RFC 9293 §3.2: every kind but EOL and NOP has a length byte, so they can be
 * stepped over), and why the list is malformed, when it is. Only the kind/length structure is
 * walked here; the values are the codec's business.
 */
function otherOptions(tcp: Uint8Array, headerLength: number): string[] {
  const out: string[] = [];
  for (let i = 20; i < headerLength; ) {
    const kind = tcp[i]!;
    if (kind === 0) break; // EOL: the rest is padding
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= headerLength) {
      out.push(`malformed options (option ${kind} has no length byte)`);
      break;
    }
    const len = tcp[i + 1]!;
    if (len < 2 || i + len > headerLength) {
      out.push(`malformed options (option ${kind} length ${len} ${len < 2 ? 'is below 2' : 'runs past the header'})`);
      break;
    }
    const known = KNOWN_OPTIONS[kind];
    if (known === undefined) out.push(`opt${kind}(len ${len})`);
    else if (!known.ok(len)) out.push(`malformed options (${known.name} with length ${len})`);
    i += len;
  }
  return out;
}

interface StreamBuild {
  summary: StreamSummary;
  segments: CapturedSegment[];
  /** The first bare SYN's sequence number from side a (to tell a reused 4-tuple). */
  synSeq: number | undefined;
}

function isBareSyn(s: CapturedSegment): boolean {
  return (s.flags & SYN) !== 0 && (s.flags & ACK) === 0;
}

/**
 * Splits segments into streams by 4-tuple. A bare SYN with a new ISN on a 4-tuple whose connection
 * already saw a FIN or RST starts a new stream (Wireshark's "TCP port numbers reused").
 */
export function splitStreams(segments: CapturedSegment[]): Array<{ summary: StreamSummary; segments: CapturedSegment[] }> {
  const streams: StreamBuild[] = [];
  const current = new Map<string, StreamBuild>();
  for (const s of segments) {
    const one = `${s.src}|${s.srcPort}`;
    const two = `${s.dst}|${s.dstPort}`;
    const key = one < two ? `${one}|${two}` : `${two}|${one}`;
    let st = current.get(key);
    if (st !== undefined && isBareSyn(s) && (st.summary.fin || st.summary.rst) && s.seq !== st.synSeq) st = undefined;
    if (st === undefined) {
      const side = (address: string, port: number): StreamSide => ({ address, port, name: endpointName(address, port), packets: 0, bytes: 0 });
      st = {
        summary: {
          index: streams.length,
          a: side(s.src, s.srcPort),
          b: side(s.dst, s.dstPort),
          first: s.t,
          last: s.t,
          packets: 0,
          syn: false,
          fin: false,
          rst: false,
        },
        segments: [],
        synSeq: undefined,
      };
      streams.push(st);
      current.set(key, st);
    }
    const sum = st.summary;
    // The side that sent the first bare SYN is a, even if the other side's packets came first.
    if (isBareSyn(s) && !sum.syn && (sum.a.address !== s.src || sum.a.port !== s.srcPort)) {
      [sum.a, sum.b] = [sum.b, sum.a];
    }
    if (isBareSyn(s) && st.synSeq === undefined) st.synSeq = s.seq;
    const from = sum.a.address === s.src && sum.a.port === s.srcPort ? sum.a : sum.b;
    from.packets++;
    from.bytes += s.len;
    sum.packets++;
    sum.first = Math.min(sum.first, s.t);
    sum.last = Math.max(sum.last, s.t);
    if (s.flags & SYN) sum.syn = true;
    if (s.flags & FIN) sum.fin = true;
    if (s.flags & RST) sum.rst = true;
    st.segments.push(s);
  }
  return streams.map((s) => ({ summary: s.summary, segments: s.segments }));
}

/** Every TCP stream of the capture, in order of first appearance. */
export function listStreams(segments: CapturedSegment[]): StreamSummary[] {
  return splitStreams(segments).map((s) => s.summary);
}

// ---------------------------------------------------------------------------------------------
// Analysis marks (Wireshark's tcp.analysis.* flags, see the Wireshark User's Guide §7.5 "TCP Analysis"
// and epan/dissectors/packet-tcp.c tcp_analyze_sequence_number()).

interface Direction {
  /** Highest seq + len (+SYN +FIN) sent so far ("next expected sequence number"). */
  nextSeq: number | undefined;
  lastAck: number | undefined;
  /** Last window advertised, scaled when the scale is known. */
  lastWin: number | undefined;
  lastT: number | undefined;
  /** Duplicate ACKs sent in a row for `lastAck`. */
  dupAcks: number;
  /** This side has sent a bare SYN (so its SYN,ACK is a simultaneous open's, not a retransmission). */
  bareSyn: boolean;
  synAckSent: boolean;
  /** Sequence numbers at which this side's segments started (to tell a resend from a late arrival). */
  starts: Set<number>;
  /** Window scale shift for this side's windows; undefined when unknown (no SYN pair seen). */
  scale: number | undefined;
}

/** Wireshark's default out-of-order threshold when the initial RTT is unknown. */
const OOO_THRESHOLD_S = 0.003;

function analyse(segs: CapturedSegment[], sideOf: (s: CapturedSegment) => 0 | 1): SegmentMark[][] {
  const dir: [Direction, Direction] = [
    { nextSeq: undefined, lastAck: undefined, lastWin: undefined, lastT: undefined, dupAcks: 0, bareSyn: false, synAckSent: false, starts: new Set(), scale: undefined },
    { nextSeq: undefined, lastAck: undefined, lastWin: undefined, lastT: undefined, dupAcks: 0, bareSyn: false, synAckSent: false, starts: new Set(), scale: undefined },
  ];
  // Window scaling applies only when both SYNs carried the option (RFC 7323 §2.2).
  const synOf = [0, 1].map((d) => segs.find((s) => sideOf(s) === d && (s.flags & SYN) !== 0));
  if (synOf[0] !== undefined && synOf[1] !== undefined) {
    const both = synOf[0].options.wscale !== undefined && synOf[1].options.wscale !== undefined;
    dir[0].scale = both ? Math.min(14, synOf[0].options.wscale!) : 0;
    dir[1].scale = both ? Math.min(14, synOf[1].options.wscale!) : 0;
  }
  // The initial RTT: from the first SYN to the ACK that completes the handshake (tcp.analysis.initial_rtt).
  let ooo = OOO_THRESHOLD_S;
  const synAck = segs.find((s) => (s.flags & (SYN | ACK)) === (SYN | ACK));
  const syn = synAck === undefined ? undefined : segs.filter((s) => s.t <= synAck.t && isBareSyn(s)).pop();
  if (syn !== undefined && synAck !== undefined) {
    const third = segs.find((s) => s.t >= synAck.t && sideOf(s) === sideOf(syn) && (s.flags & ACK) !== 0 && (s.flags & SYN) === 0);
    if (third !== undefined && third.t > syn.t) ooo = third.t - syn.t;
  }
  return segs.map((s) => {
    const d = sideOf(s);
    const fwd = dir[d];
    const rev = dir[1 - d]!;
    const marks: SegmentMark[] = [];
    const ctl = (s.flags & (SYN | FIN | RST)) !== 0;
    const win = (s.flags & SYN) !== 0 ? s.window : s.window << (fwd.scale ?? 0);
    const consumed = s.len + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
    // Zero window: "the receive window size is zero and none of SYN, FIN, or RST are set".
    if (s.window === 0 && !ctl) marks.push('zero-window');
    // Keep-alive: "segment size zero or one, the sequence number one less than the next expected
    // one, none of SYN, FIN, RST". When the peer's window is zero this is how Linux probes it
    // (tcp_xmit_probe_skb), so it is shown as a zero-window probe then.
    const keepAliveShape = fwd.nextSeq !== undefined && s.len <= 1 && s.seq === ((fwd.nextSeq - 1) >>> 0) && !ctl;
    const probe = !ctl && fwd.nextSeq !== undefined && rev.lastWin === 0 &&
      ((s.len === 1 && s.seq === fwd.nextSeq) || keepAliveShape);
    if (probe) marks.push('zero-window-probe');
    else if (keepAliveShape) marks.push('keep-alive');
    // Window full: the segment fills the window the peer last advertised.
    if (s.len > 0 && rev.lastAck !== undefined && rev.lastWin !== undefined && rev.scale !== undefined &&
      ((s.seq + s.len) >>> 0) === ((rev.lastAck + rev.lastWin) >>> 0)) {
      marks.push('window-full');
    }
    // A SYN,ACK after our own SYN is a simultaneous open (RFC 9293 §3.5 Figure 7), not a retransmission.
    const simultaneousSynAck = (s.flags & (SYN | ACK)) === (SYN | ACK) && fwd.bareSyn && !fwd.synAckSent;
    if (!probe && !keepAliveShape && consumed > 0 && fwd.nextSeq !== undefined && (s.flags & RST) === 0 && !simultaneousSynAck) {
      if (seqGt(fwd.nextSeq, s.seq)) {
        const end = (s.seq + consumed) >>> 0;
        if (rev.lastAck !== undefined && !seqGt(end, rev.lastAck)) {
          // Spurious: everything in it had already been acknowledged.
          marks.push('spurious-retransmission');
        } else if (rev.dupAcks >= 2 && s.seq === rev.lastAck) {
          // Wireshark's "fast retransmission": the segment the duplicate ACKs asked for.
          marks.push('retransmission');
        } else if (fwd.lastT !== undefined && s.t - fwd.lastT < ooo && fwd.nextSeq !== end && !fwd.starts.has(s.seq)) {
          // Out-of-order: fills a hole soon after later data. (Wireshark decides on the time alone;
          // a segment starting where one was already captured is a resend, so it is not counted here.)
          marks.push('out-of-order');
        } else {
          marks.push('retransmission');
        }
      } else if (seqGt(s.seq, fwd.nextSeq)) {
        // "Previous segment not captured": a gap in the sequence space.
        marks.push('lost-segment');
      }
    }
    if (s.len === 0 && !ctl && (s.flags & ACK) !== 0 && fwd.nextSeq !== undefined && s.seq === fwd.nextSeq &&
      fwd.lastAck !== undefined && s.ack === fwd.lastAck && win !== 0) {
      if (fwd.lastWin !== undefined && win !== fwd.lastWin) marks.push('window-update');
      else if (rev.nextSeq !== undefined && !keepAliveShape) marks.push('dup-ack');
    }
    if (marks.includes('dup-ack')) fwd.dupAcks++;
    else if ((s.flags & ACK) !== 0 && s.ack !== fwd.lastAck) fwd.dupAcks = 0;
    if (isBareSyn(s)) fwd.bareSyn = true;
    if (consumed > 0) fwd.starts.add(s.seq);
    if ((s.flags & (SYN | ACK)) === (SYN | ACK)) fwd.synAckSent = true;
    if ((s.flags & RST) === 0) {
      const end = (s.seq + consumed) >>> 0;
      if (fwd.nextSeq === undefined || seqGt(end, fwd.nextSeq)) fwd.nextSeq = end;
    }
    if (s.flags & ACK) fwd.lastAck = s.ack;
    fwd.lastWin = win;
    fwd.lastT = s.t;
    return marks;
  });
}

// ---------------------------------------------------------------------------------------------
// State inference.

type EventKind =
  | 'sendSyn'
  | 'sendFin'
  | 'sendRst'
  | 'recvSyn'
  | 'recvAckOfSyn'
  | 'recvFin'
  | 'recvAckOfFin'
  | 'recvRst'
  /** x's first segment is a SYN,ACK answering a SYN the capture does not hold. */
  | 'sendSynAckUnseenSyn'
  /** x's first segment after its SYN that has ACK and no SYN/RST: it had the peer's SYN,ACK. */
  | 'sendFirstAck'
  /** x sends a SYN,ACK after a RST: the SYN it answers was received again (RFC 9293 §3.5 Figure 8). */
  | 'recvSynAgain';

interface StateEvent {
  kind: EventKind;
  /** Index (in the stream's segment list) whose time and place the event takes. */
  pos: number;
  /** 0: before the segment at `pos` (a send); 1: after it (a receipt). */
  phase: 0 | 1;
  /** The segment that causes it (the one sent, or the one received). */
  cause: number;
  /** RFC 9293 §3.10.7 processing order within one segment: RST, SYN, ACK, FIN. */
  step: number;
}

/** A state as inferred, before it is placed in the model. */
interface Inferred {
  state: DiagramStateName;
  pos: number;
  phase: 0 | 1 | 2;
  cause: string;
  rfc: string;
  assumed?: boolean;
  /** Absolute time, when not the time of the segment at `pos` (TIME-WAIT expiry). */
  t?: number;
  sub: number;
}

/** Linux TCP_TIMEWAIT_LEN (60 s) = 2×MSL with synack's default MSL of 30 s. */
export const TIME_WAIT_S = 60;

const FIG5 = 'RFC 9293 Figure 5';

export interface InferOptions {
  /** Title for the model (e.g. the file name). */
  title?: string;
}

/** Builds the inferred diagram model of one stream. */
export function inferStream(
  stream: { summary: StreamSummary; segments: CapturedSegment[] },
  options: InferOptions = {},
): DiagramModel {
  const { summary, segments: segs } = stream;
  const sides = [summary.a, summary.b] as const;
  const sideOf = (s: CapturedSegment): 0 | 1 => (s.src === summary.a.address && s.srcPort === summary.a.port ? 0 : 1);
  const t0 = summary.first;
  const n = segs.length;
  const from = segs.map(sideOf);
  const has = (i: number, f: number): boolean => (segs[i]!.flags & f) !== 0;
  const acks = (i: number, v: number): boolean => has(i, ACK) && seqGeq(segs[i]!.ack, v);

  // Each side's ISN (its first SYN), first FIN and that FIN's sequence number.
  const isn: Array<number | undefined> = [undefined, undefined];
  const finSeq: Array<number | undefined> = [undefined, undefined];
  for (let i = 0; i < n; i++) {
    const s = segs[i]!;
    const d = from[i]!;
    if (has(i, SYN) && isn[d] === undefined) isn[d] = s.seq;
    if (has(i, FIN) && finSeq[d] === undefined) finSeq[d] = (s.seq + s.len + (has(i, SYN) ? 1 : 0)) >>> 0;
  }

  // For each side and segment index, the side's last segment before it that carries an ACK which
  // could be its RCV.NXT: one acknowledging more than the peer had sent (an old duplicate from an
  // earlier incarnation, RFC 9293 §3.5 Figures 8–11) is not. Used to judge a RST's acceptability.
  // `sane[i]`: segment i's ACK does not acknowledge more than the peer had sent by then.
  // `sentEndBefore[d][i]`: the end of what side d had sent before segment i (NaN: nothing yet).
  // `peerBefore[i]`: the last segment before i from the other side (-1: none).
  const lastAckBefore = [new Int32Array(n), new Int32Array(n)] as const;
  const sentEndBefore = [new Float64Array(n), new Float64Array(n)] as const;
  const sane = new Uint8Array(n);
  const peerBefore = new Int32Array(n);
  {
    const sentEnd: Array<number | undefined> = [undefined, undefined];
    const last = [-1, -1];
    const lastSeg = [-1, -1];
    for (let i = 0; i < n; i++) {
      peerBefore[i] = lastSeg[1 - from[i]!]!;
      lastSeg[from[i]!] = i;
      lastAckBefore[0][i] = last[0]!;
      lastAckBefore[1][i] = last[1]!;
      sentEndBefore[0][i] = sentEnd[0] ?? NaN;
      sentEndBefore[1][i] = sentEnd[1] ?? NaN;
      const s = segs[i]!;
      const d = from[i]!;
      const peerEnd = sentEnd[1 - d];
      if (has(i, ACK) && (peerEnd === undefined || !seqGt(s.ack, peerEnd))) {
        sane[i] = 1;
        last[d] = i;
      }
      if (!has(i, RST)) {
        const end = (s.seq + s.len + (has(i, SYN) ? 1 : 0) + (has(i, FIN) ? 1 : 0)) >>> 0;
        if (sentEnd[d] === undefined || seqGt(end, sentEnd[d]!)) sentEnd[d] = end;
      }
    }
  }

  /** Segment i acknowledges `v` (and nothing the peer never sent: not an old duplicate). */
  const acksSane = (i: number, v: number): boolean => sane[i] === 1 && acks(i, v);

  const events: StateEvent[][] = [[], []];
  for (const x of [0, 1] as const) {
    const y = (1 - x) as 0 | 1;
    const ev = events[x]!;
    // Sends: the first bare SYN, the first FIN, each RST.
    const firstSyn = segs.findIndex((s, i) => from[i] === x && isBareSyn(s));
    if (firstSyn >= 0) ev.push({ kind: 'sendSyn', pos: firstSyn, phase: 0, cause: firstSyn, step: 0 });
    const firstFin = segs.findIndex((_, i) => from[i] === x && has(i, FIN) && !has(i, RST));
    if (firstFin >= 0) ev.push({ kind: 'sendFin', pos: firstFin, phase: 0, cause: firstFin, step: 0 });
    for (let i = 0; i < n; i++) if (from[i] === x && has(i, RST)) ev.push({ kind: 'sendRst', pos: i, phase: 0, cause: i, step: 0 });
    const firstSent = segs.findIndex((_, i) => from[i] === x);
    if (firstSent >= 0 && has(firstSent, SYN) && has(firstSent, ACK) && isn[y] === undefined) {
      ev.push({ kind: 'sendSynAckUnseenSyn', pos: firstSent, phase: 0, cause: firstSent, step: 0 });
    }
    if (firstSyn >= 0) {
      const ackAfterSyn = segs.findIndex((_, i) => i > firstSyn && from[i] === x && has(i, ACK) && !has(i, SYN) && !has(i, RST));
      if (ackAfterSyn >= 0) ev.push({ kind: 'sendFirstAck', pos: ackAfterSyn, phase: 0, cause: ackAfterSyn, step: 0 });
    }
    // A SYN,ACK x sends after a RST from y: x, back in LISTEN, got a SYN again (the state machine
    // only acts on it in LISTEN). Timed at the last copy of y's SYN after the RST, else just before
    // the SYN,ACK; caused by the SYN it acknowledges.
    {
      let nextSynAck = -1;
      const nextSynAckAfter = new Array<number>(n);
      for (let i = n - 1; i >= 0; i--) {
        nextSynAckAfter[i] = nextSynAck;
        if (from[i] === x && has(i, SYN) && has(i, ACK)) nextSynAck = i;
      }
      // y's bare SYNs before the scan point: the latest one, and the latest for each SEQ+1.
      const synByNext = new Map<number, number>();
      let lastBareSyn = -1;
      let scanned = 0;
      let lastRst = -1;
      for (let i = 0; i < n; i++) {
        if (from[i] !== y || !has(i, RST)) continue;
        const k = nextSynAckAfter[i]!;
        if (k < 0) break;
        if (lastRst >= 0 && nextSynAckAfter[lastRst] === k) continue; // one event per SYN,ACK
        lastRst = i;
        for (; scanned < k; scanned++) {
          if (from[scanned] === y && isBareSyn(segs[scanned]!)) {
            synByNext.set((segs[scanned]!.seq + 1) >>> 0, scanned);
            lastBareSyn = scanned;
          }
        }
        const pos = lastBareSyn > i ? lastBareSyn : -1;
        const cause = synByNext.get(segs[k]!.ack) ?? pos;
        if (cause < 0) continue;
        ev.push(pos >= 0 ? { kind: 'recvSynAgain', pos, phase: 1, cause, step: 1.5 } : { kind: 'recvSynAgain', pos: k, phase: 0, cause, step: 1.5 });
      }
    }

    // Receipt of the peer's SYN / FIN, shown by x acknowledging it.
    const receipt = (kind: 'recvSyn' | 'recvFin', flag: number, value: number | undefined, step: number): void => {
      if (value === undefined) return;
      const need = (value + 1) >>> 0;
      const firstCopy = segs.findIndex((_, i) => from[i] === y && has(i, flag));
      if (firstCopy < 0) return;
      const ackAt = segs.findIndex((_, i) => i > firstCopy && from[i] === x && acksSane(i, need));
      if (ackAt < 0) return;
      // A SYN,ACK answers a bare SYN (simultaneous open included); a plain ACK answers a SYN,ACK.
      const answers = (i: number): boolean =>
        flag !== SYN || !has(ackAt, SYN) || !has(i, ACK);
      let copy = firstCopy;
      for (let i = firstCopy; i < ackAt; i++) if (from[i] === y && has(i, flag) && answers(i)) copy = i;
      let pos = copy;
      for (let i = copy + 1; i < ackAt; i++) if (from[i] === x && !acks(i, need)) pos = i;
      ev.push({ kind, pos, phase: 1, cause: copy, step });
    };
    receipt('recvSyn', SYN, isn[y], 1);
    receipt('recvFin', FIN, finSeq[y], 3);

    // Receipt of the peer's ACK of x's SYN / FIN: the first one after x's last retransmission of it.
    const ackReceipt = (kind: 'recvAckOfSyn' | 'recvAckOfFin', value: number | undefined, isCopy: (i: number) => boolean, kindOf: (i: number) => string, step: number): void => {
      if (value === undefined) return;
      const need = (value + 1) >>> 0;
      const seen = new Set<string>();
      let first = -1;
      let lastRetransmission = -1;
      for (let i = 0; i < n; i++) {
        if (from[i] !== x || !isCopy(i)) continue;
        if (first < 0) first = i;
        const k = kindOf(i);
        if (seen.has(k)) lastRetransmission = i;
        seen.add(k);
      }
      if (first < 0) return;
      const after = Math.max(first, lastRetransmission);
      const at = segs.findIndex((_, i) => i > after && from[i] === y && !has(i, RST) && acksSane(i, need));
      if (at >= 0) ev.push({ kind, pos: at, phase: 1, cause: at, step });
    };
    // The ACK must cover the SYN x sent: an active opener's ISN (its SYN copies share it), but a
    // listener's *last* SYN,ACK (one sent again after a RST may carry a new ISN, §3.5 Figure 8).
    let synSeq = isn[x];
    if (firstSyn < 0) for (let i = 0; i < n; i++) if (from[i] === x && has(i, SYN)) synSeq = segs[i]!.seq;
    ackReceipt('recvAckOfSyn', synSeq, (i) => has(i, SYN), (i) => (has(i, ACK) ? 'SYN,ACK' : 'SYN'), 2);
    ackReceipt('recvAckOfFin', finSeq[x], (i) => has(i, FIN) && !has(i, RST), () => 'FIN', 2.5);

    for (let i = 0; i < n; i++) if (from[i] === y && has(i, RST)) ev.push({ kind: 'recvRst', pos: i, phase: 1, cause: i, step: 0 });
    ev.sort((a, b) => a.pos - b.pos || a.phase - b.phase || a.cause - b.cause || a.step - b.step);
  }

  const rel = (d: 0 | 1, v: number): number => (isn[d] === undefined ? v : (v - isn[d]!) >>> 0);
  const describe = (i: number): string => {
    const s = segs[i]!;
    const d = from[i]!;
    const names = flagNames(s.flags & (SYN | FIN | RST | ACK));
    const parts = [`${names.join(',') || 'segment'} (seq ${rel(d, s.seq)}`];
    if (has(i, ACK)) parts.push(`, ack ${rel((1 - d) as 0 | 1, s.ack)}`);
    return `${parts.join('')})`;
  };

  const inferred: Inferred[][] = [[], []];
  const notes: DiagramNote[] = [];
  for (const x of [0, 1] as const) {
    const y = (1 - x) as 0 | 1;
    const out = inferred[x]!;
    let sub = 0;
    let state: DiagramStateName = 'unknown';
    const firstSent = segs.findIndex((_, i) => from[i] === x);
    const ev = events[x]!;
    const recvSyn = ev.find((e) => e.kind === 'recvSyn');
    const sendSyn = ev.find((e) => e.kind === 'sendSyn');
    // What the side was in before its first segment.
    let initialCause = 'nothing in the capture shows this side before its first segment';
    if (sendSyn !== undefined && (recvSyn === undefined || sendSyn.pos <= recvSyn.pos)) {
      state = 'CLOSED';
      initialCause = 'inferred: it opens with a SYN, so it did an active OPEN from CLOSED';
    } else if (firstSent >= 0 && has(firstSent, SYN) && has(firstSent, ACK) && isn[y] !== undefined) {
      state = 'LISTEN';
      initialCause = 'inferred: it answers a SYN with SYN,ACK, so it was listening (passive OPEN)';
    } else if (firstSent >= 0 && has(firstSent, RST) && isn[y] !== undefined && acks(firstSent, (isn[y]! + 1) >>> 0)) {
      state = 'CLOSED';
      initialCause = 'inferred: it answers a SYN with RST, so nothing listened on this port (CLOSED)';
    }
    out.push({ state, pos: 0, phase: 0, cause: initialCause, rfc: '', sub: sub++ });
    const go = (to: DiagramStateName, e: { pos: number; phase: 0 | 1 }, cause: string, rfc: string, assumed = false): void => {
      if (to === state) return;
      state = to;
      const st: Inferred = { state: to, pos: e.pos, phase: e.phase === 0 ? 0 : 2, cause, rfc, sub: sub++ };
      if (assumed) st.assumed = true;
      out.push(st);
    };
    /**
     * A synchronized state is needed (a FIN is sent or received): from 'unknown', assume the
     * connection was ESTABLISHED; from LISTEN or SYN-SENT too, since a FIN is only sent in a
     * synchronized state (RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB, sending nothing) and
     * only processed in one (§3.10.7.4) — the end of the handshake is missing from the capture.
     */
    const assumeSynchronized = (e: StateEvent): void => {
      if (now() === 'unknown') {
        go('ESTABLISHED', e, 'assumed: the capture starts after the handshake (first segment without SYN)', FIG5, true);
      } else if ((now() === 'LISTEN' || now() === 'SYN-SENT') && !has(e.cause, SYN)) {
        go('ESTABLISHED', e, `assumed: a FIN is only exchanged in a synchronized state; the end of the handshake is not in the capture`, `${FIG5}, §3.10.4, §3.10.7.4`, true);
      }
    };
    /** The current state (a function: `go` changes it behind the type checker's back). */
    const now = (): DiagramStateName => state;
    let timeWaitFrom: number | undefined; // index of the segment (re)starting the TIME-WAIT timer
    // A side first seen mid-connection: ESTABLISHED from its first plain segment.
    const firstPlain = firstSent >= 0 && !has(firstSent, SYN) && !has(firstSent, RST) && !has(firstSent, FIN) && state === 'unknown';
    const all: StateEvent[] = [...ev];
    if (firstPlain) all.push({ kind: 'sendSyn', pos: firstSent, phase: 0, cause: -1, step: -1 });
    all.sort((a, b) => a.pos - b.pos || a.phase - b.phase || a.cause - b.cause || a.step - b.step);
    for (const e of all) {
      const c = e.cause;
      if (c === -1) {
        if (now() === 'unknown') {
          go('ESTABLISHED', e, `assumed: first segment seen from this side is ${describe(e.pos)} without SYN — synchronized before the capture began`, FIG5, true);
        }
        continue;
      }
      switch (e.kind) {
        case 'sendSyn':
          if (now() === 'CLOSED' || now() === 'unknown') go('SYN-SENT', e, `sent SYN (seq ${rel(x, segs[c]!.seq)})`, `${FIG5}, §3.10.1`);
          break;
        case 'sendSynAckUnseenSyn':
          if (now() === 'unknown') {
            go('SYN-RECEIVED', e, `assumed: it sends ${describe(c)}, so it had received a SYN that is not in the capture`, `${FIG5}, §3.10.7.2`, true);
          }
          break;
        case 'sendFirstAck':
          // Only a synchronized side acknowledges without SYN (§3.10.7.3: SYN-SENT answers a SYN,ACK
          // with an ACK and is ESTABLISHED): the SYN,ACK it answers is missing from the capture.
          if (now() === 'SYN-SENT') {
            go('ESTABLISHED', e, `assumed: it sends ${describe(c)} after its SYN, so it had received a SYN,ACK that is not in the capture`, `${FIG5}, §3.10.7.3`, true);
          }
          break;
        case 'recvSynAgain':
          // RFC 9293 §3.5 Figure 8 (recovery from an old duplicate SYN): back in LISTEN after a RST,
          // the listener receives the (delayed) real SYN and answers it again.
          if (now() === 'LISTEN') go('SYN-RECEIVED', e, `received ${describe(c)} again → sent SYN,ACK`, `${FIG5}, §3.5 Figure 8, §3.10.7.2`);
          break;
        case 'recvSyn': {
          const synAck = has(c, ACK);
          if (now() === 'LISTEN' && !synAck) {
            go('SYN-RECEIVED', e, `received ${describe(c)} → sent SYN,ACK`, `${FIG5}, §3.10.7.2`);
          } else if (now() === 'SYN-SENT' && !synAck) {
            go('SYN-RECEIVED', e, `received ${describe(c)} while in SYN-SENT (simultaneous open) → sent SYN,ACK`, `${FIG5}, §3.5 Figure 7, §3.10.7.3`);
          } else if (now() === 'SYN-SENT' && isn[x] !== undefined && acks(c, (isn[x]! + 1) >>> 0)) {
            go('ESTABLISHED', e, `received ${describe(c)} → sent ACK`, `${FIG5}, §3.10.7.3`);
          } else if (now() === 'unknown' && synAck && isn[x] === undefined) {
            // Its own SYN is not in the capture, but the SYN,ACK answers one: it was in SYN-SENT.
            go('ESTABLISHED', e, `assumed: received ${describe(c)} → sent ACK (its own SYN is not in the capture)`, `${FIG5}, §3.10.7.3`, true);
          }
          break;
        }
        case 'recvAckOfSyn':
          if (now() === 'SYN-SENT' && has(c, SYN)) {
            go('ESTABLISHED', e, `received ${describe(c)} → sent ACK`, `${FIG5}, §3.10.7.3`);
          } else if (now() === 'SYN-RECEIVED') {
            go('ESTABLISHED', e, `received ${describe(c)}: the ACK of our SYN`, `${FIG5}, §3.10.7.4`);
          } else if (now() === 'LISTEN') {
            // The ACK of a SYN,ACK it sent, without the SYN it answered being seen to arrive.
            go('ESTABLISHED', e, `assumed: received ${describe(c)}: the ACK of our SYN (the SYN we answered is not in the capture)`, `${FIG5}, §3.10.7.4`, true);
          }
          break;
        case 'sendFin':
          assumeSynchronized(e);
          if (now() === 'ESTABLISHED' || now() === 'SYN-RECEIVED') {
            go('FIN-WAIT-1', e, `sent ${describe(c)}`, `${FIG5}, §3.10.4`);
          } else if (now() === 'CLOSE-WAIT') {
            go('LAST-ACK', e, `sent ${describe(c)}`, `${FIG5}, §3.10.4`);
          }
          break;
        case 'recvFin':
          assumeSynchronized(e);
          if (now() === 'ESTABLISHED' || now() === 'SYN-RECEIVED') {
            go('CLOSE-WAIT', e, `received ${describe(c)} → sent ACK`, `${FIG5}, §3.10.7.4`);
          } else if (now() === 'FIN-WAIT-1') {
            go('CLOSING', e, `received ${describe(c)} before the ACK of our FIN (simultaneous close) → sent ACK`, `${FIG5}, §3.6 Figure 13, §3.10.7.4`);
          } else if (now() === 'FIN-WAIT-2') {
            go('TIME-WAIT', e, `received ${describe(c)} → sent ACK`, `${FIG5}, §3.10.7.4`);
            timeWaitFrom = e.pos;
          }
          break;
        case 'recvAckOfFin':
          if (now() === 'FIN-WAIT-1') {
            go('FIN-WAIT-2', e, `received ${describe(c)}: the ACK of our FIN`, `${FIG5}, §3.10.7.4`);
          } else if (now() === 'CLOSING') {
            go('TIME-WAIT', e, `received ${describe(c)}: the ACK of our FIN`, `${FIG5}, §3.10.7.4`);
            timeWaitFrom = e.pos;
          } else if (now() === 'LAST-ACK') {
            go('CLOSED', e, `received ${describe(c)}: the ACK of our FIN`, `${FIG5}, §3.10.7.4`);
          }
          break;
        case 'sendRst':
          // RFC 9293 §3.10.7.2–§3.10.7.4: in LISTEN, SYN-SENT and SYN-RECEIVED an unacceptable ACK
          // is answered with <SEQ=SEG.ACK><CTL=RST> and the state is kept (the old-duplicate-SYN
          // recovery of §3.5 Figure 8 relies on it).
          if ((now() === 'SYN-SENT' || now() === 'SYN-RECEIVED') && isRstReply(segs, peerBefore, c)) break;
          if (now() !== 'CLOSED' && now() !== 'LISTEN' && now() !== 'TIME-WAIT') {
            go('CLOSED', e, `sent RST ${describe(c)}: connection aborted`, `RFC 9293 §3.10.5 (ABORT: snd RST, delete TCB)`);
          }
          break;
        case 'recvRst': {
          if (now() === 'SYN-SENT') {
            if (isn[x] !== undefined && acks(c, (isn[x]! + 1) >>> 0)) {
              go('CLOSED', e, `received ${describe(c)} acknowledging our SYN: connection refused`, 'RFC 9293 §3.10.7.3 (SYN-SENT: RST with an acceptable ACK)');
            }
          } else if (now() === 'SYN-RECEIVED' && sendSyn === undefined && rstAcceptable(segs, lastAckBefore[x]!, sentEndBefore[y]!, c)) {
            go('LISTEN', e, `received ${describe(c)}: back to LISTEN`, 'RFC 9293 §3.10.7.4 (SYN-RECEIVED from a passive OPEN: rcv RST → LISTEN)');
          } else if (now() !== 'CLOSED' && now() !== 'LISTEN' && rstAcceptable(segs, lastAckBefore[x]!, sentEndBefore[y]!, c)) {
            go('CLOSED', e, `received ${describe(c)}: connection reset`, `RFC 9293 §3.10.7.4 (rcv RST in ${now() === 'unknown' ? 'a synchronized state' : state})`);
          }
          break;
        }
      }
      // A FIN received again in TIME-WAIT restarts the 2×MSL timer (RFC 9293 §3.10.7.4).
      if (now() === 'TIME-WAIT' && e.kind === 'recvFin') timeWaitFrom = e.pos;
    }
    if (now() === 'TIME-WAIT' && timeWaitFrom !== undefined) {
      // Later copies of the peer's FIN that x acknowledged restart the timer too.
      for (let i = timeWaitFrom + 1; i < n; i++) {
        if (from[i] === y && has(i, FIN)) timeWaitFrom = i;
      }
      const tExpire = segs[timeWaitFrom]!.t + TIME_WAIT_S;
      let pos = n - 1;
      while (pos > 0 && segs[pos]!.t > tExpire) pos--;
      out.push({
        state: 'CLOSED',
        pos,
        phase: 2,
        t: tExpire,
        cause: `assumed: TIME-WAIT expires 2×MSL = ${TIME_WAIT_S} s after it began (or after the last FIN it received); the expiry sends nothing, so no capture shows it`,
        rfc: 'RFC 9293 Figure 5, §3.10.8 (time-wait timeout)',
        assumed: true,
        sub: sub++,
      });
    }
  }

  // Order: for each segment, the states its sending causes, the segment, then the states its receipt
  // causes; TIME-WAIT expiry at its own time.
  type Item = { key: number; sub: number; apply: (order: number) => void };
  const items: Item[] = [];
  const marks = analyse(segs, sideOf);
  const segmentsOut: DiagramSegment[] = segs.map((s, i) => {
    const d = from[i]!;
    const seg: DiagramSegment = {
      t: s.t - t0,
      from: sides[d].name,
      to: sides[1 - d]!.name,
      flags: flagNames(s.flags),
      seq: rel(d, s.seq),
      ack: has(i, ACK) ? rel((1 - d) as 0 | 1, s.ack) : 0,
      len: s.len,
      win: s.window,
      options: s.otherOptions === undefined ? formatOptions(s.options) : [...formatOptions(s.options), ...s.otherOptions],
      dropped: false,
      seqAbs: s.seq,
      ackAbs: s.ack,
      dataOffset: s.dataOffset,
    };
    if (marks[i]!.length > 0) seg.marks = marks[i];
    items.push({ key: i * 3 + 1, sub: 0, apply: (o) => void (seg.order = o) });
    return seg;
  });
  const endpoints: DiagramEndpoint[] = sides.map((side, x) => {
    const states: DiagramState[] = inferred[x]!.map((st, k) => {
      const t = k === 0 ? 0 : (st.t ?? segs[st.pos]!.t) - t0;
      const out: DiagramState = { t, state: st.state, cause: st.cause, rfc: st.rfc };
      if (st.assumed === true) out.assumed = true;
      if (k > 0) items.push({ key: st.pos * 3 + st.phase, sub: x * 1000 + st.sub, apply: (o) => void (out.order = o) });
      return out;
    });
    return { name: side.name, address: side.address, port: side.port, states };
  });
  items.sort((a, b) => a.key - b.key || a.sub - b.sub);
  items.forEach((it, o) => it.apply(o));
  if (isn[0] === undefined || isn[1] === undefined) {
    const which = sides.filter((_, d) => isn[d] === undefined).map((s) => s.name);
    notes.push({ t: 0, endpoint: which[0]!, what: `no SYN from ${which.join(' and ')} in the capture: ${which.length > 1 ? 'their' : 'its'} sequence numbers are absolute` });
  }
  const truncated = segs.filter((s) => s.truncated).length;
  if (truncated > 0) notes.push({ t: 0, endpoint: sides[0].name, what: `${truncated} segment${truncated === 1 ? '' : 's'} cut by the snaplen: headers read, payload lengths from the IP header` });
  notes.sort((a, b) => a.t - b.t);
  const model: DiagramModel = {
    endpoints,
    segments: segmentsOut,
    notes,
    inferred: true,
    ok: true,
  };
  if (options.title !== undefined) model.title = options.title;
  return model;
}

/**
 * A RST that answers an unacceptable segment (RFC 9293 §3.10.7.2–§3.10.7.4: `<SEQ=SEG.ACK><CTL=RST>`):
 * no ACK bit, and its sequence number is the acknowledgment number of the peer's segment just before it.
 */
function isRstReply(segs: CapturedSegment[], peerBefore: Int32Array, c: number): boolean {
  const rst = segs[c]!;
  const i = peerBefore[c]!;
  return (rst.flags & ACK) === 0 && i >= 0 && (segs[i]!.flags & ACK) !== 0 && segs[i]!.ack === rst.seq;
}

/**
 * RFC 9293 §3.10.7.4 first check: in a synchronized state a RST is acceptable when its sequence
 * number is in the receive window. The receiver's window is what it last acknowledged and
 * advertised; with nothing from it, the RST is taken as acceptable unless it lies beyond what its sender had
 * sent. `lastAckBefore[c]` is the receiver's last segment before `c` whose ACK could be its RCV.NXT,
 * `senderEndBefore[c]` the end of what the RST's sender had sent (see `inferStream`).
 */
function rstAcceptable(segs: CapturedSegment[], lastAckBefore: Int32Array, senderEndBefore: Float64Array, c: number): boolean {
  const i = lastAckBefore[c]!;
  if (i < 0) {
    // Nothing shows the receiver's window: a RST beyond anything its sender had sent answers an
    // old duplicate (its SEQ is that segment's ACK, §3.10.7.4) and is not for this connection.
    const end = senderEndBefore[c]!;
    return Number.isNaN(end) || !seqGt(segs[c]!.seq, end);
  }
  const lastAck = segs[i]!.ack;
  const win = segs[i]!.window;
  const seq = segs[c]!.seq;
  // The window field may be scaled (up to 2^14); be generous rather than miss a reset.
  return seqGeq(seq, lastAck) && seqLt(seq, (lastAck + Math.max(1, win) * 16384 + 1) >>> 0);
}

/** The stream to draw when none is asked for: the first one with a SYN, else the first. */
export function defaultStream(streams: StreamSummary[]): number {
  const i = streams.findIndex((s) => s.syn);
  return i >= 0 ? i : 0;
}
