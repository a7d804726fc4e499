/**
 * The demo scenarios behind `synack demo`: two real stacks in one process joined by a `MemoryLink`,
 * in virtual time, each scenario a textbook situation (handshake and close, simultaneous open and
 * close, half-close, refusal, abort, a lost SYN, a bulk transfer, a zero window). Every scenario
 * checks that what the textbook says happened actually happened — the demo is itself a test.
 *
 * Core module: no Node built-ins, only the stack's own API (so the browser page can run them).
 */
import { DiagramRecorder, type DiagramModel } from '../diagram/model.js';
import { VirtualClock } from '../link/clock.js';
import type { LinkEnd } from '../link/link.js';
import { MemoryLink } from '../link/memory.js';
import { Rng } from '../link/rng.js';
import { Stack } from '../stack/stack.js';
import type { StackOptions } from '../stack/options.js';
import type { TcpState } from '../tcp/state.js';
import type { TcpConnection, TcpError, TcpInfo } from '../tcp/user.js';
import { PcapWriter } from '../trace/pcap.js';

export const SCENARIOS = [
  'handshake',
  'simultaneous-open',
  'simultaneous-close',
  'half-close',
  'refused',
  'abort',
  'syn-lost',
  'transfer',
  'zero-window',
] as const;

export type ScenarioName = (typeof SCENARIOS)[number];

export function isScenarioName(s: string): s is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(s);
}

/** One line each, for `--help` and the summary. */
export const SCENARIO_DESCRIPTIONS: Record<ScenarioName, string> = {
  handshake: '3-way handshake, a request and a reply, 4-way close, TIME-WAIT until it expires',
  'simultaneous-open': 'both sides connect to each other at the same instant (RFC 9293 §3.5, Figure 7)',
  'simultaneous-close': 'both sides close at the same instant: FIN-WAIT-1 → CLOSING → TIME-WAIT on both',
  'half-close': 'the client sends its request and closes; the server keeps sending, then closes',
  refused: 'connect to a port nobody listens on: RST,ACK and ECONNREFUSED',
  abort: 'the client aborts an established connection: RST, both CLOSED without TIME-WAIT',
  'syn-lost': 'the first SYN is lost; it is retransmitted when the 1 s initial RTO expires',
  transfer: 'bulk transfer client → server under the impairment flags, integrity checked',
  'zero-window': 'the server does not read: window 0, persist probes, then the window reopens',
};

export interface ScenarioOptions {
  /** Seeds ISNs, ports, link impairments and data. Default 1. */
  seed?: number;
  /** Packet loss probability on each direction of the link. Default 0. */
  loss?: number;
  /** One-way delay in ms. Default 10. */
  delayMs?: number;
  /** Bytes sent by `transfer` (default 1 MiB) and `zero-window` (default 16 KiB). */
  bytes?: number;
  /** Link rate in bit/s (default unlimited). */
  bandwidthBps?: number;
  reorder?: number;
  duplicate?: number;
  corrupt?: number;
  /** Connect over IPv6 (fd00::1 → fd00::2) instead of IPv4. */
  ipv6?: boolean;
  /** MSL in ms; TIME-WAIT lasts 2×MSL (default 30 000, RFC 9293 §3.4.2). */
  mslMs?: number;
}

export interface ScenarioCheck {
  what: string;
  ok: boolean;
  detail?: string;
}

export interface ScenarioSummary {
  scenario: ScenarioName;
  description: string;
  ok: boolean;
  checks: ScenarioCheck[];
  /** Numbers worth printing: bytes, goodput, retransmissions, cwnd… */
  stats: Record<string, number | string>;
  /** Virtual seconds the run took. */
  durationS: number;
}

export interface ScenarioResult {
  model: DiagramModel;
  /** Every packet either stack sent, at send time (LINKTYPE_RAW). */
  pcap: Uint8Array;
  summary: ScenarioSummary;
}

const CLIENT_V4 = '10.0.0.1';
const SERVER_V4 = '10.0.0.2';
const CLIENT_V6 = 'fd00::1';
const SERVER_V6 = 'fd00::2';
/** Virtual time a scenario may take at most: anything longer is a hang, reported as a failure. */
const MAX_RUN_MS = 6 * 60 * 60 * 1000; // 6 h of virtual time: heavy loss with RTO backoff is slow, never endless
/** How long the server waits after the client's FIN before it closes too: the close then shows
 *  four separate segments, and the client sits in FIN-WAIT-2 meanwhile. */
const SERVER_CLOSE_DELAY_MS = 50;

const enc = new TextEncoder();
const REQUEST = enc.encode('GET / HTTP/1.0\r\nHost: 10.0.0.2\r\n\r\n');
const RESPONSE = enc.encode('HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nsynack');

/**
 * A link end between a stack and the `MemoryLink`: taps every packet the stack sends into the
 * capture (at send time, so a packet the link loses is still in it) and drops the packets the
 * scenario chooses, reporting them like the link reports its own losses.
 */
export class DemoLinkEnd implements LinkEnd {
  private readonly dropObservers: Array<(packet: Uint8Array, reason: string) => void> = [];
  private sent = 0;

  constructor(
    private readonly inner: LinkEnd,
    private readonly tap: (packet: Uint8Array) => void,
    /** Return true to lose this packet; `index` counts the packets sent through this end. */
    private readonly shouldDrop: (packet: Uint8Array, index: number) => boolean = () => false,
  ) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  send(packet: Uint8Array): void {
    this.tap(packet);
    if (this.shouldDrop(packet, this.sent++)) {
      for (const fn of this.dropObservers) fn(packet, 'demo');
      return;
    }
    this.inner.send(packet);
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.inner.onPacket(fn);
  }

  onDrop(fn: (packet: Uint8Array, reason: string) => void): void {
    this.dropObservers.push(fn);
  }
}

/** The TCP flags byte of an IPv4 or IPv6 packet (no extension headers: the stack sends none). */
function tcpFlagsOf(packet: Uint8Array): number {
  const version = packet[0]! >> 4;
  const ipHeader = version === 4 ? (packet[0]! & 0x0f) * 4 : 40;
  return packet[ipHeader + 13] ?? 0;
}

/** One side's connection, as the scenario drives it: reads eagerly (unless paused), writes a queue. */
class Peer {
  readonly chunks: Uint8Array[] = [];
  bytesIn = 0;
  eof = false;
  closed = false;
  error: TcpError | null = null;
  established = false;
  /** When false, arriving bytes stay in the receive buffer (the window closes). */
  reading = true;
  onEstablished: (() => void) | undefined;
  onData: ((chunk: Uint8Array) => void) | undefined;
  onEnd: (() => void) | undefined;
  private out: Uint8Array | undefined;
  private outOff = 0;
  private afterWrite: (() => void) | undefined;

  constructor(readonly conn: TcpConnection) {
    conn.events = {
      onEstablished: () => {
        this.established = true;
        this.onEstablished?.();
      },
      onReadable: () => this.pull(),
      onEnd: () => this.pull(),
      onWritable: () => this.pump(),
      onClosed: (error) => {
        this.closed = true;
        this.error = error;
      },
    };
    if (conn.state === 'ESTABLISHED') this.established = true;
  }

  /** Read what is buffered; signal the end once the peer's FIN is reached. */
  pull(): void {
    if (!this.reading) return;
    for (let c = this.conn.read(); c !== null; c = this.conn.read()) {
      const copy = c.slice();
      this.chunks.push(copy);
      this.bytesIn += copy.length;
      this.onData?.(copy);
    }
    if (!this.eof && this.conn.finReceived && this.conn.readableLength === 0) {
      this.eof = true;
      this.onEnd?.();
    }
  }

  /** Queue `data`, writing as the send buffer allows; `then` runs once all of it is taken. */
  send(data: Uint8Array, then?: () => void): void {
    this.out = data;
    this.outOff = 0;
    this.afterWrite = then;
    this.pump();
  }

  private pump(): void {
    const out = this.out;
    if (out === undefined) return;
    while (this.outOff < out.length) {
      const n = this.conn.write(out.subarray(this.outOff));
      if (n === 0) return;
      this.outOff += n;
    }
    this.out = undefined;
    const then = this.afterWrite;
    this.afterWrite = undefined;
    then?.();
  }

  received(): Uint8Array {
    const all = new Uint8Array(this.bytesIn);
    let off = 0;
    for (const c of this.chunks) {
      all.set(c, off);
      off += c.length;
    }
    return all;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where two byte strings first differ, for a failure message. */
function firstDifference(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `first difference at byte ${i}`;
  return `got ${a.length} bytes, expected ${b.length}`;
}

/**
 * What a scenario script asks of whoever drives it. A scenario is a generator: it sets up its bench
 * (`ready`), then yields each stretch of virtual time it needs run, doing its own work (closing,
 * aborting, checking) between them. `runScenario` runs each stretch in one go with the clock's
 * `advanceSync`/`runUntilIdleSync`; `startScenario` runs the same stretches one clock callback at a
 * time, so the interactive page can step through the very same run.
 */
type Drive =
  /** The bench is built (stacks, link, recorder); nothing has happened yet. */
  | { kind: 'ready'; bench: Bench }
  /** `clock.advanceSync(ms)`. */
  | { kind: 'advance'; ms: number }
  /** `clock.runUntilIdleSync({ maxMs })`. */
  | { kind: 'idle'; maxMs: number };

type Script = Generator<Drive, ScenarioResult, void>;

function advance(ms: number): Drive {
  return { kind: 'advance', ms };
}

/** Hands the bench to the driver; evaluates to it. */
function* ready(bench: Bench): Generator<Drive, Bench, void> {
  yield { kind: 'ready', bench };
  return bench;
}

/** Two stacks over one impaired link, a recorder and a capture: the bench every scenario uses. */
class Bench {
  readonly clock = new VirtualClock();
  readonly client: Stack;
  readonly server: Stack;
  readonly recorder: DiagramRecorder;
  readonly pcap = new PcapWriter();
  readonly checks: ScenarioCheck[] = [];
  readonly stats: Record<string, number | string> = {};
  readonly clientAddress: string;
  readonly serverAddress: string;
  readonly seed: number;

  constructor(
    readonly name: ScenarioName,
    readonly opts: ScenarioOptions,
    extra: {
      server?: Partial<StackOptions>;
      client?: Partial<StackOptions>;
      dropClient?: (packet: Uint8Array, index: number) => boolean;
      serverInitial?: TcpState;
      /** The port the server side is addressed on (shown even if the server never answers). */
      serverPort?: number;
    } = {},
  ) {
    this.seed = opts.seed ?? 1;
    const [la, lb] = MemoryLink.pair({
      clock: this.clock,
      seed: this.seed,
      delayMs: opts.delayMs ?? 10,
      lossRate: opts.loss ?? 0,
      reorderRate: opts.reorder ?? 0,
      duplicateRate: opts.duplicate ?? 0,
      corruptRate: opts.corrupt ?? 0,
      ...(opts.bandwidthBps !== undefined ? { bandwidthBps: opts.bandwidthBps } : {}),
    });
    const tap = (packet: Uint8Array): void => this.pcap.write(this.clock.now(), packet);
    const ca = new DemoLinkEnd(la, tap, extra.dropClient);
    const cb = new DemoLinkEnd(lb, tap);
    const common = {
      clock: this.clock,
      ...(opts.mslMs !== undefined ? { mslMs: opts.mslMs } : {}),
    };
    this.client = new Stack({
      link: ca,
      addresses: [`${CLIENT_V4}/24`, `${CLIENT_V6}/64`],
      name: 'client',
      seed: this.seed,
      ...common,
      ...extra.client,
    });
    this.server = new Stack({
      link: cb,
      addresses: [`${SERVER_V4}/24`, `${SERVER_V6}/64`],
      name: 'server',
      seed: this.seed + 1,
      ...common,
      ...extra.server,
    });
    this.clientAddress = opts.ipv6 ? CLIENT_V6 : CLIENT_V4;
    this.serverAddress = opts.ipv6 ? SERVER_V6 : SERVER_V4;
    this.recorder = new DiagramRecorder({ t0: this.clock.now() });
    this.recorder.attach(this.client, 'client');
    this.recorder.attach(this.server, 'server', {
      initialState: extra.serverInitial ?? 'CLOSED',
      address: this.serverAddress,
      port: extra.serverPort ?? 80,
    });
    for (const end of [ca, cb, la, lb]) this.recorder.observeLink(end);
  }

  check(what: string, ok: boolean, detail?: string): void {
    this.checks.push(detail === undefined ? { what, ok } : { what, ok, detail });
  }

  /** Run the clock until nothing is left to do (TIME-WAIT included), within MAX_RUN_MS. */
  *run(): Generator<Drive, void, void> {
    yield { kind: 'idle', maxMs: MAX_RUN_MS };
    const pending = this.clock.pending();
    this.check('the run came to rest', pending === 0, pending === 0 ? undefined : `${pending} timers still pending`);
  }

  /** Both sides went through exactly these states, in this order. */
  expectStates(side: 'client' | 'server', expected: TcpState[], model = this.recorder.build()): void {
    const ep = model.endpoints.find((e) => e.name === side);
    const got = ep === undefined ? [] : ep.states.map((s) => s.state);
    const ok = got.length === expected.length && got.every((s, i) => s === expected[i]);
    this.check(`${side}: ${expected.join(' → ')}`, ok, ok ? undefined : `got ${got.join(' → ')}`);
  }

  finish(): ScenarioResult {
    const ok = this.checks.every((c) => c.ok);
    const model = this.recorder.build(ok);
    return {
      model,
      pcap: this.pcap.toBytes(),
      summary: {
        scenario: this.name,
        description: SCENARIO_DESCRIPTIONS[this.name],
        ok,
        checks: this.checks,
        stats: this.stats,
        durationS: lastEventTime(model),
      },
    };
  }
}

/** When the last thing happened (the clock may have run on past cancelled timers). */
function lastEventTime(model: DiagramModel): number {
  let t = 0;
  for (const s of model.segments) t = Math.max(t, s.tArrive ?? s.t);
  for (const e of model.endpoints) for (const st of e.states) t = Math.max(t, st.t);
  return t;
}

const CLOSE_ACTIVE: TcpState[] = ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'];
const CLOSE_PASSIVE: TcpState[] = ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'];

/**
 * A client/server exchange through a listener: the client writes `request` once established; the
 * server answers with `response` once it has the whole request, and closes SERVER_CLOSE_DELAY_MS
 * after the client's FIN; the client closes once it has the whole response (the active close).
 */
function exchange(
  b: Bench,
  o: { port?: number; request: Uint8Array; response: Uint8Array },
): { cli: Peer; srv: () => Peer | undefined } {
  const port = o.port ?? 80;
  const listener = b.server.tcpListen({ port });
  let srv: Peer | undefined;
  listener.onConnection = (c) => {
    const p = new Peer(c);
    srv = p;
    let replied = false;
    p.onData = () => {
      if (!replied && p.bytesIn >= o.request.length) {
        replied = true;
        if (o.response.length > 0) p.send(o.response);
      }
    };
    p.onEnd = () => {
      b.clock.schedule(b.clock.now() + SERVER_CLOSE_DELAY_MS, () => c.close());
    };
    p.pull();
  };
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port }));
  let closed = false;
  const closeOnce = (): void => {
    if (closed) return;
    closed = true;
    cli.conn.close();
  };
  cli.onEstablished = () => cli.send(o.request);
  cli.onData = () => {
    if (cli.bytesIn >= o.response.length) closeOnce();
  };
  return { cli, srv: () => srv };
}

function checkBytes(b: Bench, what: string, got: Uint8Array, expected: Uint8Array): void {
  const ok = sameBytes(got, expected);
  b.check(what, ok, ok ? `${expected.length} bytes` : firstDifference(got, expected));
}

function checkOrderlyClose(b: Bench, cli: Peer, srv: Peer | undefined): void {
  b.check('client closed without error', cli.closed && cli.error === null, cli.error?.message ?? (cli.closed ? undefined : 'not closed'));
  b.check(
    'server closed without error',
    srv !== undefined && srv.closed && srv.error === null,
    srv === undefined ? 'no connection accepted' : srv.error?.message ?? (srv.closed ? undefined : 'not closed'),
  );
}

function* handshake(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('handshake', opts, { serverInitial: 'LISTEN' }));
  const { cli, srv } = exchange(b, { request: REQUEST, response: RESPONSE });
  yield* b.run();
  checkBytes(b, 'server received the request', srv()?.received() ?? new Uint8Array(0), REQUEST);
  checkBytes(b, 'client received the reply', cli.received(), RESPONSE);
  checkOrderlyClose(b, cli, srv());
  const model = b.recorder.build();
  b.expectStates('client', CLOSE_ACTIVE, model);
  b.expectStates('server', CLOSE_PASSIVE, model);
  timeWaitLasted(b, model);
  return b.finish();
}

/**
 * RFC 9293 §3.4.2 / §3.10.7.4: TIME-WAIT lasts 2×MSL, and a retransmitted FIN arriving in TIME-WAIT
 * restarts the timeout — so it ends 2×MSL after the later of entering it and the last FIN received.
 */
function timeWaitLasted(b: Bench, model: DiagramModel): void {
  const states = model.endpoints[0]!.states;
  const i = states.findIndex((s) => s.state === 'TIME-WAIT');
  if (i < 0 || i + 1 >= states.length) return;
  const entered = states[i]!.t;
  const left = states[i + 1]!.t;
  let from = entered;
  for (const s of model.segments) {
    if (s.to === 'client' && s.flags.includes('FIN') && s.tArrive !== undefined && s.tArrive > from && s.tArrive < left) {
      from = s.tArrive;
    }
  }
  const expected = (2 * (b.opts.mslMs ?? 30_000)) / 1000;
  b.stats['TIME-WAIT (s)'] = Number((left - entered).toFixed(3));
  const restarted = from > entered ? ' after the last FIN' : '';
  b.check(`TIME-WAIT lasted 2×MSL = ${expected} s${restarted}`, Math.abs(left - from - expected) < 0.001, `${Number((left - from).toFixed(6))} s`);
}

/** Advance the clock in small steps until `done()` (at most `maxMs`): waits out retransmissions. */
function* advanceUntil(b: Bench, done: () => boolean, maxMs = 5 * 60 * 1000): Generator<Drive, void, void> {
  const stepMs = 100;
  for (let t = 0; t < maxMs && !done(); t += stepMs) yield advance(stepMs);
}

function* simultaneousOpen(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('simultaneous-open', opts, { serverPort: 5001 }));
  // Fixed ports on both sides, so that each SYN is addressed to the other's connection (§3.5).
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 5001, localPort: 5000 }));
  const srv = new Peer(b.server.tcpConnect({ host: b.clientAddress, port: 5000, localPort: 5001 }));
  const hello = enc.encode('hello from the client\n');
  const olleh = enc.encode('hello from the server\n');
  cli.onEstablished = () => cli.send(hello);
  srv.onEstablished = () => srv.send(olleh);
  cli.onData = () => {
    if (cli.bytesIn >= olleh.length && cli.conn.state === 'ESTABLISHED') cli.conn.close();
  };
  srv.onEnd = () => b.clock.schedule(b.clock.now() + SERVER_CLOSE_DELAY_MS, () => srv.conn.close());
  yield* b.run();
  checkBytes(b, 'server received the client greeting', srv.received(), hello);
  checkBytes(b, 'client received the server greeting', cli.received(), olleh);
  checkOrderlyClose(b, cli, srv);
  const model = b.recorder.build();
  b.expectStates('client', ['CLOSED', 'SYN-SENT', 'SYN-RECEIVED', ...CLOSE_ACTIVE.slice(2)], model);
  b.expectStates('server', ['CLOSED', 'SYN-SENT', 'SYN-RECEIVED', ...CLOSE_PASSIVE.slice(2)], model);
  return b.finish();
}

function* simultaneousClose(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('simultaneous-close', opts, { serverInitial: 'LISTEN' }));
  const listener = b.server.tcpListen({ port: 80 });
  let srv: Peer | undefined;
  listener.onConnection = (c) => {
    srv = new Peer(c);
  };
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 80 }));
  // Let the handshake finish (and any delayed ACK go out), then close both at the same instant so
  // that the two FINs cross on the wire (RFC 9293 §3.6, Figure 13).
  yield* advanceUntil(b, () => cli.established && srv?.established === true);
  yield advance(500);
  b.check('both sides established before closing', cli.established && srv?.established === true);
  cli.conn.close();
  srv?.conn.close();
  yield* b.run();
  checkOrderlyClose(b, cli, srv);
  const model = b.recorder.build();
  const tail: TcpState[] = ['ESTABLISHED', 'FIN-WAIT-1', 'CLOSING', 'TIME-WAIT', 'CLOSED'];
  b.expectStates('client', ['CLOSED', 'SYN-SENT', ...tail], model);
  b.expectStates('server', ['LISTEN', 'SYN-RECEIVED', ...tail], model);
  return b.finish();
}

function* halfClose(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('half-close', opts, { serverInitial: 'LISTEN' }));
  const listener = b.server.tcpListen({ port: 80 });
  let srv: Peer | undefined;
  // The server answers in three parts, 20 ms apart, all after the client's FIN: a half-closed
  // connection still carries data the other way (RFC 9293 §3.6, CLOSE-WAIT may SEND).
  const parts = [0, 1, 2].map((i) => enc.encode(`part ${i + 1} of the reply, sent after the client's FIN\n`.repeat(8)));
  const reply = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((off, p) => (reply.set(p, off), off + p.length), 0);
  listener.onConnection = (c) => {
    const p = new Peer(c);
    srv = p;
    p.onEnd = () => {
      parts.forEach((part, i) => {
        b.clock.schedule(b.clock.now() + 20 * i, () => {
          c.write(part);
          if (i === parts.length - 1) c.close();
        });
      });
    };
    p.pull();
  };
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 80 }));
  let fin = false;
  cli.onEstablished = () =>
    cli.send(REQUEST, () => {
      cli.conn.close();
      fin = true;
    });
  let bytesAfterClose = 0;
  cli.onData = (chunk) => {
    if (fin) bytesAfterClose += chunk.length;
  };
  yield* b.run();
  checkBytes(b, 'server received the request', srv?.received() ?? new Uint8Array(0), REQUEST);
  checkBytes(b, 'client received the whole reply after its own FIN', cli.received(), reply);
  b.check('every reply byte arrived after the client closed', bytesAfterClose === reply.length, `${bytesAfterClose} bytes`);
  checkOrderlyClose(b, cli, srv);
  const model = b.recorder.build();
  b.expectStates('client', CLOSE_ACTIVE, model);
  b.expectStates('server', CLOSE_PASSIVE, model);
  return b.finish();
}

function* refused(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('refused', opts, { serverPort: 81 }));
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 81 }));
  yield* b.run();
  b.check('client got ECONNREFUSED', cli.error?.code === 'ECONNREFUSED', cli.error?.code ?? 'no error');
  const model = b.recorder.build();
  // RFC 9293 §3.10.7.1: a SYN to a CLOSED port gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  const rst = model.segments.find((s) => s.from === 'server' && s.flags.includes('RST'));
  b.check(
    'server answered RST,ACK seq=0 ack=1',
    rst !== undefined && rst.flags.includes('ACK') && rst.seqAbs === 0 && rst.ack === 1,
    rst === undefined ? 'no RST' : `${rst.flags.join(',')} seq=${rst.seqAbs} ack=${rst.ack}`,
  );
  b.expectStates('client', ['CLOSED', 'SYN-SENT', 'CLOSED'], model);
  return b.finish();
}

function* abort(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('abort', opts, { serverInitial: 'LISTEN' }));
  const listener = b.server.tcpListen({ port: 80 });
  let srv: Peer | undefined;
  listener.onConnection = (c) => {
    srv = new Peer(c);
    srv.pull();
  };
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 80 }));
  cli.onEstablished = () => cli.send(REQUEST);
  yield* advanceUntil(b, () => (srv?.bytesIn ?? 0) >= REQUEST.length);
  yield advance(500);
  // RFC 9293 §3.10.5: ABORT sends <SEQ=SND.NXT><CTL=RST> and deletes the TCB at once.
  cli.conn.abort();
  yield* b.run();
  checkBytes(b, 'server received the request', srv?.received() ?? new Uint8Array(0), REQUEST);
  b.check('server got ECONNRESET', srv?.error?.code === 'ECONNRESET', srv?.error?.code ?? 'no error');
  const model = b.recorder.build();
  const rst = model.segments.find((s) => s.from === 'client' && s.flags.includes('RST'));
  b.check('client sent RST', rst !== undefined);
  b.check('no TIME-WAIT after an abort', !model.endpoints.some((e) => e.states.some((s) => s.state === 'TIME-WAIT')));
  b.expectStates('client', ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'CLOSED'], model);
  b.expectStates('server', ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSED'], model);
  return b.finish();
}

function* synLost(opts: ScenarioOptions): Script {
  let synsSeen = 0;
  const b = yield* ready(new Bench('syn-lost', opts, {
    serverInitial: 'LISTEN',
    // Lose the client's first SYN (and only that one).
    dropClient: (packet) => (tcpFlagsOf(packet) & 0x02) !== 0 && synsSeen++ === 0,
  }));
  const { cli, srv } = exchange(b, { request: REQUEST, response: RESPONSE });
  yield* b.run();
  checkBytes(b, 'server received the request', srv()?.received() ?? new Uint8Array(0), REQUEST);
  checkBytes(b, 'client received the reply', cli.received(), RESPONSE);
  const model = b.recorder.build();
  const syns = model.segments.filter((s) => s.from === 'client' && s.flags.includes('SYN'));
  b.check('the first SYN was lost', syns[0]?.dropped === true);
  const gap = syns.length >= 2 ? syns[1]!.t - syns[0]!.t : NaN;
  b.stats['SYN retransmitted after (s)'] = Number(gap.toFixed(3));
  // RFC 6298 §2.1: before any RTT sample, RTO = 1 s (RFC 9293 §3.8.1 defers to it).
  b.check('the SYN was retransmitted after the 1 s initial RTO', Math.abs(gap - 1) < 0.01, `after ${gap} s`);
  b.check('the retransmitted SYN kept the same ISN', syns.length >= 2 && syns[1]!.seqAbs === syns[0]!.seqAbs);
  checkOrderlyClose(b, cli, srv());
  b.expectStates('client', CLOSE_ACTIVE, model);
  b.expectStates('server', CLOSE_PASSIVE, model);
  return b.finish();
}

/** Deterministic pseudo-random payload. */
function payload(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed ^ 0x7a3c);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const x = rng.nextU32();
    out[i] = x & 0xff;
    if (i + 1 < n) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < n) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < n) out[i + 3] = x >>> 24;
  }
  return out;
}

function* transfer(opts: ScenarioOptions): Script {
  const b = yield* ready(new Bench('transfer', opts, { serverInitial: 'LISTEN' }));
  const data = payload(opts.bytes ?? 1 << 20, b.seed);
  const listener = b.server.tcpListen({ port: 80 });
  let srv: Peer | undefined;
  let tStart = NaN;
  let tDone = NaN;
  let info: TcpInfo | undefined;
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 80 }));
  listener.onConnection = (c) => {
    const p = new Peer(c);
    srv = p;
    p.onData = () => {
      if (p.bytesIn >= data.length && Number.isNaN(tDone)) {
        tDone = b.clock.now();
        info = cli.conn.info();
      }
    };
    p.onEnd = () => b.clock.schedule(b.clock.now() + SERVER_CLOSE_DELAY_MS, () => c.close());
    p.pull();
  };
  // The congestion window over the transfer: one sample every 20 ms of virtual time, and every
  // loss event the sender acted on (fast recovery, RTO, tail loss probe) from its trace notes.
  const cwndSamples: number[] = [];
  const lossEvents = { recovery: 0, rto: 0, tlp: 0 };
  const sample = (): void => {
    if (!Number.isNaN(tDone) || cli.conn.state === 'CLOSED') return;
    cwndSamples.push(cli.conn.info().cwnd);
    b.clock.schedule(b.clock.now() + CWND_SAMPLE_MS, sample);
  };
  b.client.on('trace', (e) => {
    if (e.type !== 'note') return;
    if (e.what.startsWith('fast recovery')) lossEvents.recovery++;
    else if (e.what.startsWith('retransmission timeout')) lossEvents.rto++;
    else if (e.what.startsWith('tail loss probe')) lossEvents.tlp++;
  });
  cli.onEstablished = () => {
    tStart = b.clock.now();
    sample();
    cli.send(data, () => cli.conn.close());
  };
  yield* b.run();
  checkBytes(b, 'every byte arrived intact and in order', srv?.received() ?? new Uint8Array(0), data);
  checkOrderlyClose(b, cli, srv);
  const model = b.recorder.build();
  b.expectStates('client', CLOSE_ACTIVE, model);
  b.expectStates('server', CLOSE_PASSIVE, model);
  const seconds = (tDone - tStart) / 1000;
  b.stats['bytes'] = data.length;
  b.stats['transfer time (s)'] = Number(seconds.toFixed(3));
  b.stats['goodput (Mbit/s)'] = Number(((data.length * 8) / seconds / 1e6).toFixed(2));
  if (info !== undefined) {
    b.stats['congestion control'] = info.congestionControl;
    b.stats['retransmissions'] = info.totalRetransmits;
    b.stats['fast recoveries / RTOs / tail loss probes'] = `${lossEvents.recovery} / ${lossEvents.rto} / ${lossEvents.tlp}`;
    b.stats['cwnd (bytes, at the end)'] = info.cwnd;
    b.stats['ssthresh (bytes)'] = info.ssthresh >= 0x7fffffff ? 'unset (no loss)' : info.ssthresh;
    b.stats[`cwnd (KiB, every ${CWND_SAMPLE_MS} ms)`] = sparkline(cwndSamples) +
      ` ${Math.round(Math.min(...cwndSamples) / 1024)}…${Math.round(Math.max(...cwndSamples) / 1024)}`;
    b.stats['srtt (ms)'] = Number(info.srtt.toFixed(1));
    b.stats['options'] = [info.windowScaling ? `WS ${info.windowScaling.snd}/${info.windowScaling.rcv}` : 'no WS',
      info.sack ? 'SACK' : 'no SACK', info.timestamps ? 'TS' : 'no TS'].join(', ');
  }
  b.stats['segments'] = model.segments.length;
  b.stats['lost on the link'] = model.segments.filter((s) => s.dropped).length;
  return b.finish();
}

const CWND_SAMPLE_MS = 20;
const BARS = '▁▂▃▄▅▆▇█';

/** A one-line chart of `values` (at most 60 columns; longer series are averaged down). */
function sparkline(values: readonly number[]): string {
  if (values.length === 0) return '';
  const cols = Math.min(values.length, 60);
  const per = values.length / cols;
  const pts: number[] = [];
  for (let c = 0; c < cols; c++) {
    const part = values.slice(Math.floor(c * per), Math.max(Math.floor((c + 1) * per), Math.floor(c * per) + 1));
    pts.push(part.reduce((x, y) => x + y, 0) / part.length);
  }
  const lo = Math.min(...pts);
  const hi = Math.max(...pts);
  return pts.map((v) => BARS[hi === lo ? 0 : Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))]).join('');
}

function* zeroWindow(opts: ScenarioOptions): Script {
  const receiveBufferSize = 4096;
  const b = yield* ready(new Bench('zero-window', opts, { serverInitial: 'LISTEN', server: { receiveBufferSize } }));
  const data = payload(opts.bytes ?? 16384, b.seed);
  const listener = b.server.tcpListen({ port: 80 });
  let srv: Peer | undefined;
  let tZero = NaN;
  let tRead = NaN;
  // The server's application sleeps: it starts reading only 4 s after it advertised a zero window,
  // long enough for the sender's persist timer to probe (RFC 9293 §3.8.6.1).
  b.server.on('trace', (e) => {
    if (e.type === 'segment' && e.dir === 'out' && e.segment.window === 0 && Number.isNaN(tZero)) {
      tZero = e.t;
      b.clock.schedule(e.t + 4000, () => {
        tRead = b.clock.now();
        if (srv !== undefined) {
          srv.reading = true;
          srv.pull();
        }
      });
    }
  });
  listener.onConnection = (c) => {
    const p = new Peer(c);
    p.reading = false;
    srv = p;
    p.onEnd = () => b.clock.schedule(b.clock.now() + SERVER_CLOSE_DELAY_MS, () => c.close());
  };
  const cli = new Peer(b.client.tcpConnect({ host: b.serverAddress, port: 80 }));
  cli.onEstablished = () => cli.send(data, () => cli.conn.close());
  yield* b.run();
  const model = b.recorder.build();
  const zeroAt = tZero / 1000;
  const readAt = tRead / 1000;
  b.check('server advertised a zero window', !Number.isNaN(tZero));
  const probes = model.segments.filter((s) => s.from === 'client' && s.t > zeroAt && s.t < readAt);
  b.check('client probed the zero window (persist timer)', probes.length > 0, `${probes.length} probes`);
  b.stats['zero window at (s)'] = Number(zeroAt.toFixed(3));
  b.stats['persist probes'] = probes.length;
  if (probes.length > 0) b.stats['first probe after (s)'] = Number((probes[0]!.t - zeroAt).toFixed(3));
  const reopened = model.segments.find((s) => s.from === 'server' && s.t >= readAt && s.win > 0);
  b.check('the window reopened once the server read', reopened !== undefined);
  checkBytes(b, 'every byte arrived intact', srv?.received() ?? new Uint8Array(0), data);
  checkOrderlyClose(b, cli, srv);
  b.expectStates('client', CLOSE_ACTIVE, model);
  b.expectStates('server', CLOSE_PASSIVE, model);
  return b.finish();
}

const SCRIPTS: Record<ScenarioName, (opts: ScenarioOptions) => Script> = {
  handshake,
  'simultaneous-open': simultaneousOpen,
  'simultaneous-close': simultaneousClose,
  'half-close': halfClose,
  refused,
  abort,
  'syn-lost': synLost,
  transfer,
  'zero-window': zeroWindow,
};

/** Run one scenario to completion, synchronously, in virtual time. */
export function runScenario(name: ScenarioName, opts: ScenarioOptions = {}): ScenarioResult {
  const script = SCRIPTS[name](opts);
  let bench: Bench | undefined;
  for (let r = script.next(); ; r = script.next()) {
    if (r.done === true) return r.value;
    const d = r.value;
    if (d.kind === 'ready') bench = d.bench;
    else if (d.kind === 'advance') bench!.clock.advanceSync(d.ms);
    else bench!.clock.runUntilIdleSync({ maxMs: d.maxMs });
  }
}

/** A scenario set up and waiting to be driven, one clock callback at a time (the interactive page). */
export interface ScenarioRun {
  readonly name: ScenarioName;
  readonly clock: VirtualClock;
  /** The side that connects, and the listener (the other active opener in `simultaneous-open`). */
  readonly client: Stack;
  readonly server: Stack;
  /** Builds the ladder model of what happened so far (`recorder.build()`). */
  readonly recorder: DiagramRecorder;
  /** True once the scenario has finished and run its checks. */
  readonly done: boolean;
  /** The same result `runScenario` returns, once `done`. */
  readonly result: ScenarioResult | undefined;
  /**
   * Runs one clock callback (a packet burst delivered, a timer fired) or one piece of the scenario's
   * own work (connecting, closing, the final checks). False once done.
   */
  tick(): boolean;
  /** Ticks until either stack reports something (a segment in or out, a state change, a note), or the end. */
  step(): void;
  /** Runs the rest, one tick at a time: the same run as `runScenario` with the same arguments. */
  finish(): ScenarioResult;
}

/** Ticks one `step()` may take before it gives up looking for a visible event (a livelock guard). */
const MAX_TICKS_PER_STEP = 1_000_000;

/**
 * Sets a scenario up without running it. The stacks are built but nothing has been sent; `step()`
 * and `tick()` then run the very stretches of virtual time `runScenario` runs, one callback at a
 * time, so a run stepped to its end is the run `runScenario` makes (same seed, same segments).
 */
export function startScenario(name: ScenarioName, opts: ScenarioOptions = {}): ScenarioRun {
  const script = SCRIPTS[name](opts);
  const first = script.next();
  if (first.done === true || first.value.kind !== 'ready') throw new Error(`scenario ${name} did not set up its bench`);
  const bench = first.value.bench;
  const clock = bench.clock;
  let events = 0;
  const count = (): void => void events++;
  bench.client.on('trace', count);
  bench.server.on('trace', count);
  /** The stretch being run: its absolute end, and whether it ends early once the clock is idle. */
  let stretch: { until: number; idle: boolean } | null = null;
  let result: ScenarioResult | undefined;

  const tick = (): boolean => {
    if (result !== undefined) return false;
    if (stretch === null) {
      const r = script.next();
      if (r.done === true) {
        result = r.value;
        return false;
      }
      const d = r.value;
      if (d.kind === 'advance') stretch = { until: clock.now() + Math.max(0, d.ms), idle: false };
      else if (d.kind === 'idle') stretch = { until: clock.now() + Math.max(0, d.maxMs), idle: true };
      return true;
    }
    // runUntilIdleSync leaves the time alone once nothing is pending; advanceSync always moves it on.
    if (stretch.idle && clock.pending() === 0) stretch = null;
    else if (!clock.runNext(stretch.until)) stretch = null;
    return true;
  };

  const run: ScenarioRun = {
    name,
    clock,
    client: bench.client,
    server: bench.server,
    recorder: bench.recorder,
    get done() {
      return result !== undefined;
    },
    get result() {
      return result;
    },
    tick,
    step() {
      const before = events;
      for (let i = 0; i < MAX_TICKS_PER_STEP && events === before && tick(); i++);
    },
    finish() {
      while (tick());
      return result!;
    },
  };
  return run;
}
