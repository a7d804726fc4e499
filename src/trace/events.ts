import type { TcpState } from '../tcp/state.js';
import type { DropReason } from '../wire/drop.js';

/** Identifies one connection end: the stack's own address/port first. */
export interface Endpoints {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** A TCP segment as the trace reports it (absolute numbers; renderers make them relative). */
export interface SegmentInfo {
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
  seq: number;
  ack: number;
  /** Flag names in reading order: SYN FIN RST PSH ACK URG ECE CWR (so SYN+ACK reads "SYN,ACK"). */
  flags: string[];
  /** The raw flag byte. */
  flagBits: number;
  /** Raw (unscaled) window field. */
  window: number;
  /** Payload length in bytes. */
  len: number;
  /** Options as short strings: MSS=1460, WS=7, SACK_PERM, SACK=a-b, TS=val/ecr. */
  options: string[];
}

export type TraceEvent =
  /**
   * A TCP segment the stack sent (`out`) or accepted from its link (`in`). `packet` is a view into a
   * shared slab (src/wire/packet.ts): a listener that keeps it should keep `packet.slice()`.
   */
  | { type: 'segment'; t: number; dir: 'in' | 'out'; segment: SegmentInfo; packet: Uint8Array }
  /** A connection changed state; `cause` says why, `rfc` cites the rule. */
  | {
      type: 'state';
      t: number;
      conn: Endpoints;
      from: TcpState;
      to: TcpState;
      cause: string;
      rfc: string;
    }
  /**
   * A UDP datagram the stack sent (`out`, before any fragmentation) or took in (`in`, after
   * reassembly): addresses and ports, `len` the payload bytes, `packet` the whole IP packet (a view,
   * as for 'segment': keep `packet.slice()`). Diagram code ignores these (ladders are TCP).
   */
  | {
      type: 'datagram';
      t: number;
      dir: 'in' | 'out';
      src: string;
      dst: string;
      srcPort: number;
      dstPort: number;
      len: number;
      packet: Uint8Array;
    }
  /** A packet that the stack dropped, and why. */
  | { type: 'drop'; t: number; reason: DropReason; packet: Uint8Array }
  /** Anything else worth seeing: retransmission, timer, challenge ACK, ICMP. */
  | { type: 'note'; t: number; conn?: Endpoints; what: string; rfc?: string };

export type TraceListener = (event: TraceEvent) => void;
