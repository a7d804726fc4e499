/**
 * Hand-written trace events of a two-host exchange, so the diagram can be tested without a stack.
 * Client 10.0.0.1:49152 (ISN 1000) and server 10.0.0.2:80 (ISN 4294967000, to cross the 2^32 wrap).
 */
import { DiagramRecorder, type DiagramEndpoint, type DiagramModel, type DiagramSegment } from '../../src/diagram/model.js';
import type { TcpState } from '../../src/tcp/state.js';
import type { Endpoints, SegmentInfo, TraceEvent } from '../../src/trace/events.js';

export const CLIENT = { address: '10.0.0.1', port: 49152 };
export const SERVER = { address: '10.0.0.2', port: 80 };
export const CLIENT_ISN = 1000;
export const SERVER_ISN = 4294967000;

const FLAG_BITS: Record<string, number> = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 };

export class Script {
  readonly rec = new DiagramRecorder();
  /** The packets 'sent', by label, so a test can drop one by identity. */
  readonly packets = new Map<string, Uint8Array>();
  private n = 0;

  constructor() {
    this.rec.add('client').add('server', { initialState: 'LISTEN' });
  }

  private conn(side: 'client' | 'server'): Endpoints {
    const [l, r] = side === 'client' ? [CLIENT, SERVER] : [SERVER, CLIENT];
    return { localAddress: l.address, localPort: l.port, remoteAddress: r.address, remotePort: r.port };
  }

  state(t: number, side: 'client' | 'server', from: TcpState, to: TcpState, cause = `to ${to}`): this {
    const ev: TraceEvent = { type: 'state', t, conn: this.conn(side), from, to, cause, rfc: 'RFC 9293 §3.10' };
    this.rec.record(side, ev);
    return this;
  }

  /** `side` sends a segment at `t`; it arrives at `arrive` unless `arrive` is null (lost). */
  send(
    t: number,
    side: 'client' | 'server',
    flags: string[],
    seq: number,
    ack: number,
    opts: { len?: number; win?: number; options?: string[]; arrive?: number | null; label?: string; drop?: 'before' | 'after' } = {},
  ): this {
    const [src, dst] = side === 'client' ? [CLIENT, SERVER] : [SERVER, CLIENT];
    const segment: SegmentInfo = {
      srcAddress: src.address,
      srcPort: src.port,
      dstAddress: dst.address,
      dstPort: dst.port,
      seq: seq >>> 0,
      ack: ack >>> 0,
      flags,
      flagBits: flags.reduce((b, f) => b | (FLAG_BITS[f] ?? 0), 0),
      window: opts.win ?? 65535,
      len: opts.len ?? 0,
      options: opts.options ?? [],
    };
    // Distinct bytes per packet, like real packets.
    const packet = new Uint8Array(40 + segment.len);
    packet[0] = 0x45;
    new DataView(packet.buffer).setUint32(4, this.n++);
    new DataView(packet.buffer).setUint32(8, segment.seq);
    this.packets.set(opts.label ?? `${side}@${t}`, packet);
    if (opts.drop === 'before') this.rec.linkDropped(packet, 'loss');
    this.rec.record(side, { type: 'segment', t, dir: 'out', segment, packet });
    if (opts.drop === 'after') this.rec.linkDropped(packet, 'loss');
    const other = side === 'client' ? 'server' : 'client';
    if (opts.arrive !== null && opts.drop === undefined) {
      this.rec.record(other, { type: 'segment', t: opts.arrive ?? t + 10, dir: 'in', segment, packet });
    }
    return this;
  }
}

/** The textbook exchange: handshake, request/reply, 4-way close, TIME-WAIT expiry. */
export function handshakeScript(): Script {
  const c = CLIENT_ISN;
  const s = SERVER_ISN;
  return new Script()
    .state(0, 'client', 'CLOSED', 'SYN-SENT', 'active OPEN')
    .send(0, 'client', ['SYN'], c, 0, { options: ['MSS=1460'] })
    .state(10, 'server', 'LISTEN', 'SYN-RECEIVED', 'SYN received')
    .send(10, 'server', ['SYN', 'ACK'], s, c + 1, { options: ['MSS=1460'] })
    .state(20, 'client', 'SYN-SENT', 'ESTABLISHED', 'SYN,ACK received')
    .send(20, 'client', ['ACK'], c + 1, s + 1)
    .send(20, 'client', ['PSH', 'ACK'], c + 1, s + 1, { len: 18 })
    .state(30, 'server', 'SYN-RECEIVED', 'ESTABLISHED', 'ACK of SYN')
    .send(30, 'server', ['PSH', 'ACK'], s + 1, c + 19, { len: 100 })
    .send(40, 'client', ['FIN', 'ACK'], c + 19, s + 101)
    .state(40, 'client', 'ESTABLISHED', 'FIN-WAIT-1', 'CLOSE')
    .state(50, 'server', 'ESTABLISHED', 'CLOSE-WAIT', 'FIN received')
    .send(50, 'server', ['ACK'], s + 101, c + 20)
    .state(60, 'client', 'FIN-WAIT-1', 'FIN-WAIT-2', 'our FIN acked')
    .state(100, 'server', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSE')
    .send(100, 'server', ['FIN', 'ACK'], s + 101, c + 20)
    .state(110, 'client', 'FIN-WAIT-2', 'TIME-WAIT', 'FIN received')
    .send(110, 'client', ['ACK'], c + 20, s + 102)
    .state(120, 'server', 'LAST-ACK', 'CLOSED', 'our FIN acked')
    .state(60110, 'client', 'TIME-WAIT', 'CLOSED', '2MSL expired');
}

/**
 * A model built directly (no recorder, no packet bytes, so it scales to hundreds of thousands of
 * segments): handshake, `n` data segments of 100 bytes client → server 10 µs apart, every second one
 * ACKed by the server, then a close. The 8th data segment is lost and resent after the data phase
 * (marked as a retransmission, with a note).
 */
export function bulkModel(n: number): DiagramModel {
  const ms = (x: number): number => x / 1000;
  const segments: DiagramSegment[] = [];
  const seg = (
    t: number,
    from: 'client' | 'server',
    flags: string[],
    seq: number,
    ack: number,
    len = 0,
    extra: Partial<DiagramSegment> = {},
  ): void => {
    const [sIsn, rIsn] = from === 'client' ? [CLIENT_ISN, SERVER_ISN] : [SERVER_ISN, CLIENT_ISN];
    segments.push({
      t,
      tArrive: t + ms(1),
      from,
      to: from === 'client' ? 'server' : 'client',
      flags,
      seq,
      ack: flags.includes('ACK') ? ack : 0,
      len,
      win: 65535,
      options: flags.includes('SYN') ? ['MSS=1460'] : [],
      dropped: false,
      seqAbs: (sIsn + seq) >>> 0,
      ackAbs: flags.includes('ACK') ? (rIsn + ack) >>> 0 : 0,
      ...extra,
    });
  };
  seg(0, 'client', ['SYN'], 0, 0);
  seg(ms(1), 'server', ['SYN', 'ACK'], 0, 1);
  seg(ms(2), 'client', ['ACK'], 1, 1);
  let t = ms(3);
  let next = 1;
  for (let i = 0; i < n; i++) {
    const lost = i === 7;
    seg(t, 'client', ['ACK'], next, 1, 100, lost ? { dropped: true, dropReason: 'loss' } : {});
    if (lost) delete segments[segments.length - 1]!.tArrive;
    next += 100;
    t += 0.00001;
    if (i % 2 === 1) seg(t, 'server', ['ACK'], 1, i > 7 ? 1 + 7 * 100 : next);
  }
  seg(t + 0.2, 'client', ['ACK'], 1 + 7 * 100, 1, 100, { marks: ['retransmission'] });
  seg(t + 0.201, 'server', ['ACK'], 1, next);
  seg(t + 1, 'client', ['FIN', 'ACK'], next, 1);
  seg(t + 1.001, 'server', ['FIN', 'ACK'], 1, next + 1);
  seg(t + 1.002, 'client', ['ACK'], next + 1, 2);
  // No recorded order (as in a model read back from JSON): the renderers order by time, a state
  // change before the segment it causes.
  const states = (list: Array<[number, TcpState]>): DiagramEndpoint['states'] =>
    list.map(([at, state], i) => ({ t: at, state, cause: `to ${state}`, rfc: i === 0 ? '' : 'RFC 9293 §3.10' }));
  const endpoints: DiagramEndpoint[] = [
    {
      name: 'client',
      ...CLIENT,
      states: states([[0, 'CLOSED'], [0, 'SYN-SENT'], [ms(2), 'ESTABLISHED'], [t + 1, 'FIN-WAIT-1'], [t + 1.002, 'TIME-WAIT']]),
    },
    {
      name: 'server',
      ...SERVER,
      states: states([
        [0, 'LISTEN'],
        [ms(1), 'SYN-RECEIVED'],
        [ms(3), 'ESTABLISHED'],
        [t + 1.001, 'CLOSE-WAIT'],
        [t + 1.001, 'LAST-ACK'],
        [t + 1.003, 'CLOSED'],
      ]),
    },
  ];
  return {
    title: `bulk transfer, ${segments.length} segments`,
    endpoints,
    segments,
    notes: [{ t: t + 0.2, endpoint: 'client', what: 'retransmission timeout', rfc: 'RFC 6298 §5' }],
    inferred: false,
    ok: true,
  };
}
