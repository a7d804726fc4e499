/**
 * The ladder-diagram model: what the text/SVG/HTML renderers draw and what `synack demo --json` and
 * `synack draw --json` print (CONTRACT.md, "JSON shapes").
 *
 * `DiagramRecorder` builds it from what actually happened — the trace events of two stacks (segments
 * in and out, state changes with their cause and RFC rule) and the link's drop observations — rather
 * than re-deriving anything from the bytes: states are the ones the stacks really were in.
 *
 * Core module: no Node built-ins (it runs in the browser page too).
 */
import type { TcpState } from '../tcp/state.js';
import type { Endpoints, SegmentInfo, TraceEvent, TraceListener } from '../trace/events.js';

/**
 * A state as a diagram shows it: RFC 9293's names, or 'unknown' where a capture cannot tell (before
 * the first segment of a side that `draw` never saw open).
 */
export type DiagramStateName = TcpState | 'unknown';

/**
 * What an analysis of the segment stream says about a segment (Wireshark's tcp.analysis words):
 * marked on the arrow by every renderer. `draw` infers them from a capture.
 */
export type SegmentMark =
  | 'retransmission'
  | 'spurious-retransmission'
  | 'dup-ack'
  | 'out-of-order'
  | 'zero-window'
  | 'zero-window-probe'
  | 'window-update'
  | 'window-full'
  | 'keep-alive'
  | 'lost-segment';

export interface DiagramState {
  /** Seconds since the start of the recording. */
  t: number;
  state: DiagramStateName;
  /** Why the connection entered this state (the stack's own words). */
  cause: string;
  /** The rule behind the transition, e.g. "RFC 9293 §3.10.7.3". Empty for the initial state. */
  rfc: string;
  /** Position in the run's event order, to order events of the same instant (absent: unknown). */
  order?: number;
  /** `draw` only: no segment shows this change, it is assumed (e.g. TIME-WAIT expiry after 2×MSL). */
  assumed?: boolean;
}

export interface DiagramEndpoint {
  /** 'client' / 'server' in the demo; `address:port` in `draw`. */
  name: string;
  address: string;
  port: number;
  /** The first entry is the state before anything happened (CLOSED, or LISTEN for a listener). */
  states: DiagramState[];
}

export interface DiagramSegment {
  /** Seconds: when the sender put the segment on the link. */
  t: number;
  /** Seconds: when the receiving stack accepted it; absent when it never arrived (or is unknown). */
  tArrive?: number;
  from: string;
  to: string;
  /** Flag names, e.g. ["SYN","ACK"]. */
  flags: string[];
  /** Relative to the sender's ISN (learned from its SYN); absolute when no SYN was seen. */
  seq: number;
  /** Relative to the receiver's ISN; 0 when the ACK bit is off. */
  ack: number;
  len: number;
  /** The raw window field, as on the wire (unscaled). */
  win: number;
  options: string[];
  /** The link lost it. */
  dropped: boolean;
  /** Why it was dropped (the link's reason: 'loss', 'mtu', 'queue', or a test's own). */
  dropReason?: string;
  seqAbs: number;
  ackAbs: number;
  /** Position in the run's event order (see DiagramState.order). */
  order?: number;
  /** Analysis marks (retransmission, dup ACK, out-of-order, zero window…); absent when none. */
  marks?: SegmentMark[];
  /** The TCP header length in bytes (data offset × 4), when known exactly (from a capture). */
  dataOffset?: number;
}

/** Something worth showing beside the ladder: a retransmission, a timer, a challenge ACK. */
export interface DiagramNote {
  t: number;
  endpoint: string;
  what: string;
  rfc?: string;
  order?: number;
}

export interface DiagramModel {
  /** What the diagram shows, e.g. the scenario or the capture file and stream (optional). */
  title?: string;
  endpoints: DiagramEndpoint[];
  segments: DiagramSegment[];
  notes: DiagramNote[];
  /** True when states are deduced from a capture rather than reported by the stack. */
  inferred: boolean;
  /** The run's checks passed (the demo is itself a check). */
  ok: boolean;
}

/** Anything that emits trace events: a `Stack`. Structural, so the diagram needs no stack import. */
export interface TraceSource {
  on(event: 'trace', fn: TraceListener): unknown;
}

/** Anything that reports packets it dropped: a `MemoryLinkEnd`, or the demo's dropping wrapper. */
export interface DropSource {
  onDrop(fn: (packet: Uint8Array, reason: string) => void): void;
}

export interface AttachOptions {
  /**
   * The state to draw first when the endpoint never reports a state change (a stack answering a
   * SYN for a closed port with RST has no connection). Default CLOSED.
   */
  initialState?: TcpState;
  /** Address and port to show until the endpoint reveals its own (it may never send anything). */
  address?: string;
  port?: number;
}

interface EndpointRecord {
  name: string;
  initialState: TcpState;
  /** The one connection this endpoint follows: the first one that changed state. */
  conn: Endpoints | undefined;
  address: string | undefined;
  port: number | undefined;
  states: DiagramState[];
}

interface SegmentRecord {
  idx: number;
  order: number;
  tMs: number;
  tArriveMs: number | undefined;
  from: EndpointRecord;
  info: SegmentInfo;
  /**
   * A copy of its bytes: a stack may reuse its buffers, a link may copy. The packet object itself is
   * not kept (it is a view into a shared slab, which it would keep alive); `byPacket` maps it
   * weakly for the identity match with link drops.
   */
  bytes: Uint8Array;
  dropped: boolean;
  dropReason: string | undefined;
}

interface PendingDrop {
  bytes: Uint8Array;
  reason: string;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Identifies a segment for matching an 'in' event with the 'out' event of the same segment. */
function segmentKey(s: SegmentInfo): string {
  return `${s.srcAddress}|${s.srcPort}|${s.dstAddress}|${s.dstPort}|${s.seq}|${s.ack}|${s.flagBits}|${s.window}|${s.len}`;
}

/** How many recent segments a drop is compared with when the packet object is not the same. */
const DROP_MATCH_WINDOW = 256;

/**
 * Records two (or more) stacks and the links between them, then `build()`s the diagram model.
 *
 *   const rec = new DiagramRecorder({ t0: clock.now() });
 *   rec.attach(clientStack, 'client');
 *   rec.attach(serverStack, 'server', { initialState: 'LISTEN' });
 *   rec.observeLink(linkEndA); rec.observeLink(linkEndB);
 *   … run …
 *   const model = rec.build(true);
 */
export class DiagramRecorder {
  private readonly t0: number;
  private readonly endpoints: EndpointRecord[] = [];
  private readonly segments: SegmentRecord[] = [];
  private readonly notes: DiagramNote[] = [];
  /**
   * Segment indices by packet object, for link drops reported by identity. Weak: a kept packet would
   * pin the whole slab it was carved from (src/wire/packet.ts); the recorder keeps its own copies.
   */
  private readonly byPacket = new WeakMap<Uint8Array, number>();
  /** The same for drops reported before the stack's 'out' event (see `pendingDrops`). */
  private readonly pendingByPacket = new WeakMap<Uint8Array, PendingDrop>();
  /** Segments sent but not yet seen arriving, by key, oldest first. */
  private readonly inFlight = new Map<string, number[]>();
  /** Drops reported before the stack's 'out' trace event for the same packet. */
  private pendingDrops: PendingDrop[] = [];
  /** Counts recorded events: the global order of things that happen at the same instant. */
  private order = 0;

  constructor(options: { t0?: number } = {}) {
    this.t0 = options.t0 ?? 0;
  }

  /** Follow a stack's trace under `name`. Endpoints appear in the model in attach order. */
  attach(source: TraceSource, name: string, options: AttachOptions = {}): this {
    const ep = this.newEndpoint(name, options);
    this.endpoints.push(ep);
    source.on('trace', (event) => this.ingest(ep, event));
    return this;
  }

  /** Mark the segments this link end drops as lost. */
  observeLink(link: DropSource): this {
    link.onDrop((packet, reason) => this.linkDropped(packet, reason));
    return this;
  }

  /** Feed one event by hand for the endpoint attached (or `add`ed) as `name`. */
  record(name: string, event: TraceEvent): void {
    const endpoint = this.endpoints.find((e) => e.name === name);
    if (endpoint === undefined) throw new Error(`unknown endpoint ${name}`);
    this.ingest(endpoint, event);
  }

  /** Declare an endpoint whose events will be fed by hand with `record`. */
  add(name: string, options: AttachOptions = {}): this {
    this.endpoints.push(this.newEndpoint(name, options));
    return this;
  }

  private newEndpoint(name: string, options: AttachOptions): EndpointRecord {
    return {
      name,
      initialState: options.initialState ?? 'CLOSED',
      conn: undefined,
      address: options.address,
      port: options.port,
      states: [],
    };
  }

  private ingest(endpoint: EndpointRecord, event: TraceEvent): void {
    switch (event.type) {
      case 'state':
        this.recordState(endpoint, event);
        return;
      case 'segment':
        if (event.dir === 'out') this.recordOut(endpoint, event.t, event.segment, event.packet);
        else this.recordIn(event.t, event.segment);
        return;
      case 'note':
        if (event.conn !== undefined && !this.follows(endpoint, event.conn)) return;
        this.notes.push({
          t: this.seconds(event.t),
          endpoint: endpoint.name,
          what: event.what,
          order: this.order++,
          ...(event.rfc !== undefined ? { rfc: event.rfc } : {}),
        });
        return;
      case 'drop':
        // Packets the receiving stack discarded (bad checksum after corruption, no socket…) are the
        // stack's business; the ladder shows them as sent and never arriving.
        return;
    }
  }

  /** Packets the link dropped. Public so a hand-made link wrapper can report without `onDrop`. */
  linkDropped(packet: Uint8Array, reason: string): void {
    const idx = this.byPacket.get(packet);
    if (idx !== undefined) {
      const seg = this.segments[idx]!;
      if (!seg.dropped && sameBytes(seg.bytes, packet)) {
        this.markDropped(seg, reason);
        return;
      }
    }
    // The link may report a drop from inside `send()`, before the stack emits its 'out' event.
    const drop: PendingDrop = { bytes: packet.slice(), reason };
    this.pendingDrops.push(drop);
    this.pendingByPacket.set(packet, drop);
  }

  private markDropped(seg: SegmentRecord, reason: string): void {
    seg.dropped = true;
    seg.dropReason = reason;
    const key = segmentKey(seg.info);
    const list = this.inFlight.get(key);
    if (list !== undefined) {
      const i = list.indexOf(seg.idx);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.inFlight.delete(key);
    }
  }

  private seconds(tMs: number): number {
    return (tMs - this.t0) / 1000;
  }

  private follows(ep: EndpointRecord, conn: Endpoints): boolean {
    const c = ep.conn;
    return (
      c === undefined ||
      (c.localAddress === conn.localAddress &&
        c.localPort === conn.localPort &&
        c.remoteAddress === conn.remoteAddress &&
        c.remotePort === conn.remotePort)
    );
  }

  private recordState(ep: EndpointRecord, event: Extract<TraceEvent, { type: 'state' }>): void {
    if (ep.conn === undefined) {
      // The first connection to change state is the one this endpoint follows; its `from` is the
      // state it was in before (CLOSED for an active open, LISTEN for a passive one).
      ep.conn = event.conn;
      ep.address = event.conn.localAddress;
      ep.port = event.conn.localPort;
      ep.initialState = event.from;
    } else if (!this.follows(ep, event.conn)) {
      return;
    }
    ep.states.push({
      t: this.seconds(event.t),
      state: event.to,
      cause: event.cause,
      rfc: event.rfc,
      order: this.order++,
    });
  }

  private recordOut(ep: EndpointRecord, tMs: number, info: SegmentInfo, packet: Uint8Array): void {
    if (ep.address === undefined) {
      ep.address = info.srcAddress;
      ep.port = info.srcPort;
    }
    const idx = this.segments.length;
    const seg: SegmentRecord = {
      idx,
      order: this.order++,
      tMs,
      tArriveMs: undefined,
      from: ep,
      info,
      bytes: packet.slice(),
      dropped: false,
      dropReason: undefined,
    };
    this.segments.push(seg);
    this.byPacket.set(packet, idx);
    if (this.pendingDrops.length > 0) {
      const byIdentity = this.pendingByPacket.get(packet);
      let j = byIdentity !== undefined ? this.pendingDrops.indexOf(byIdentity) : -1;
      if (j < 0) j = this.pendingDrops.findIndex((d) => sameBytes(d.bytes, seg.bytes));
      if (j >= 0) {
        seg.dropped = true;
        seg.dropReason = this.pendingDrops[j]!.reason;
        this.pendingDrops.splice(j, 1);
        return;
      }
    }
    const key = segmentKey(info);
    const list = this.inFlight.get(key);
    if (list === undefined) this.inFlight.set(key, [idx]);
    else list.push(idx);
  }

  private recordIn(tMs: number, info: SegmentInfo): void {
    const key = segmentKey(info);
    const list = this.inFlight.get(key);
    if (list === undefined) return; // a duplicate, or a segment from an unattached sender
    const idx = list.shift()!;
    if (list.length === 0) this.inFlight.delete(key);
    this.segments[idx]!.tArriveMs = tMs;
  }

  /** Drops still unmatched: compare their bytes with recent segments (newest first). */
  private resolvePendingDrops(): void {
    if (this.pendingDrops.length === 0) return;
    const rest: PendingDrop[] = [];
    for (const d of this.pendingDrops) {
      let found = false;
      const stop = Math.max(0, this.segments.length - DROP_MATCH_WINDOW);
      for (let i = this.segments.length - 1; i >= stop; i--) {
        const seg = this.segments[i]!;
        if (!seg.dropped && seg.tArriveMs === undefined && sameBytes(seg.bytes, d.bytes)) {
          this.markDropped(seg, d.reason);
          found = true;
          break;
        }
      }
      if (!found) rest.push(d);
    }
    this.pendingDrops = rest;
  }

  /** The model as it stands now. `ok` is the caller's verdict on the run. */
  build(ok = true): DiagramModel {
    this.resolvePendingDrops();
    // RFC 9293 §3.4: each side picks its ISN in its SYN; relative numbers count from it.
    const isn = new Map<EndpointRecord, number>();
    for (const s of this.segments) {
      if (!isn.has(s.from) && s.info.flags.includes('SYN')) isn.set(s.from, s.info.seq);
    }
    const endpoints: DiagramEndpoint[] = this.endpoints.map((ep) => ({
      name: ep.name,
      address: ep.address ?? '',
      port: ep.port ?? 0,
      states: [
        {
          t: 0,
          state: ep.initialState,
          cause:
            ep.initialState === 'LISTEN' ? 'passive OPEN: waiting for a SYN' : 'no connection yet',
          rfc: '',
        },
        ...ep.states,
      ],
    }));
    const segments: DiagramSegment[] = this.segments.map((s) => {
      const to = this.receiverOf(s);
      const senderIsn = isn.get(s.from);
      const receiverIsn = to.record !== undefined ? isn.get(to.record) : undefined;
      const hasAck = s.info.flags.includes('ACK');
      const seg: DiagramSegment = {
        t: this.seconds(s.tMs),
        from: s.from.name,
        to: to.name,
        flags: [...s.info.flags],
        seq: senderIsn === undefined ? s.info.seq : (s.info.seq - senderIsn) >>> 0,
        ack: !hasAck ? 0 : receiverIsn === undefined ? s.info.ack : (s.info.ack - receiverIsn) >>> 0,
        len: s.info.len,
        win: s.info.window,
        options: [...s.info.options],
        dropped: s.dropped,
        seqAbs: s.info.seq,
        ackAbs: s.info.ack,
        order: s.order,
      };
      if (s.tArriveMs !== undefined) seg.tArrive = this.seconds(s.tArriveMs);
      if (s.dropReason !== undefined) seg.dropReason = s.dropReason;
      return seg;
    });
    return {
      endpoints,
      segments,
      notes: [...this.notes],
      inferred: false,
      ok,
    };
  }

  private receiverOf(s: SegmentRecord): { name: string; record: EndpointRecord | undefined } {
    const { dstAddress, dstPort } = s.info;
    const exact = this.endpoints.find(
      (e) => e !== s.from && e.address === dstAddress && e.port === dstPort,
    );
    if (exact !== undefined) return { name: exact.name, record: exact };
    const others = this.endpoints.filter((e) => e !== s.from);
    if (others.length === 1) return { name: others[0]!.name, record: others[0] };
    return { name: `${dstAddress}:${dstPort}`, record: undefined };
  }
}
