/**
 * Wisp (MercuryWorkshop/wisp-protocol, protocol.md v1.2 and v2 draft 6): many TCP and UDP streams
 * multiplexed over one WebSocket, so a page (or Node) gives a VM's connections a way out through a
 * Wisp server. The server connects by host name, so this upstream is `byName`.
 *
 * Three layers, each usable alone:
 * - the packet codec (`encodeWispPacket`, `decodeWispPacket`): 1-byte type, 4-byte stream id,
 *   payload; every field little-endian (protocol.md "Packet format");
 * - `WispClient`: one WebSocket-like object (the browser's WebSocket, or the `ws` package's in
 *   Node: same shape), its handshake, stream ids, CONTINUE credits and CLOSE reasons;
 * - `WispUpstream implements Upstream`: opens the WebSocket lazily, reconnects on the next open
 *   after a drop.
 *
 * What Wisp cannot express, and what happens instead (so the README can say it):
 * - No half-close: `end()` sends what is queued, then CLOSE 0x02 — the destination sees its
 *   socket closed (wisp-js `end()`s it: a FIN), and nothing more is received on the stream.
 * - No receive window: the server sends DATA as fast as its destination does; the client cannot
 *   grant credit (CONTINUE flows server → client only). What bounds memory while the relay has
 *   paused a stream: (1) with a WebSocket that can stop reading (`ws`'s `pause()`), the whole
 *   WebSocket is paused once paused streams hold more than `pauseSocketAboveBytes` (default
 *   1 MiB) — TCP backpressure then reaches the server, at the cost of head-of-line blocking of the
 *   other streams until the relay resumes; (2) always, a stream that holds more than
 *   `streamReceiveLimitBytes` (default 16 MiB) is closed with CLOSE 0x81 and
 *   `onclose(UpstreamError('error'))`. The browser's WebSocket cannot stop reading, so there (2) is
 *   the bound.
 * - No open confirmation in v1 (v2 has the 0x05 extension): see `openWaitMs`.
 *
 * Core: no Node built-ins.
 */
import { UpstreamError, type Upstream, type UpstreamDatagrams, type UpstreamErrorCode, type UpstreamStream, type UpstreamTarget } from './upstream.js';

// ---------------------------------------------------------------------------------------------
// Packet codec (protocol.md "Packet format", "Packet Types")

export const WISP_CONNECT = 0x01;
export const WISP_DATA = 0x02;
export const WISP_CONTINUE = 0x03;
export const WISP_CLOSE = 0x04;
/** v2 only. */
export const WISP_INFO = 0x05;

/** CONNECT's stream type. */
export const WISP_STREAM_TCP = 0x01;
export const WISP_STREAM_UDP = 0x02;

/** CLOSE reasons (protocol.md "Client/Server Close Reasons" and the server-only ones). */
export const WispCloseReason = {
  unknown: 0x01,
  voluntary: 0x02,
  networkError: 0x03,
  /** v2: handshake only. */
  incompatibleExtensions: 0x04,
  invalidInfo: 0x41,
  unreachableHost: 0x42,
  noResponse: 0x43,
  connectionRefused: 0x44,
  transferTimeout: 0x47,
  hostBlocked: 0x48,
  throttled: 0x49,
  /** Client only: cannot receive any more data. */
  clientError: 0x81,
  authBadPassword: 0xc0,
  authBadSignature: 0xc1,
  authMissingCredentials: 0xc2,
} as const;

/** v2 extension ids (protocol.md v2 "Protocol Extensions"). */
export const WispExtensionId = {
  udp: 0x01,
  passwordAuth: 0x02,
  keyAuth: 0x03,
  motd: 0x04,
  streamOpenConfirmation: 0x05,
} as const;

export interface WispExtension {
  id: number;
  /** The extension's metadata (its length is the 4-byte field before it). */
  payload: Uint8Array;
}

export type WispPacket =
  | { type: 'connect'; streamId: number; streamType: number; port: number; hostname: string }
  | { type: 'data'; streamId: number; data: Uint8Array }
  | { type: 'continue'; streamId: number; bufferRemaining: number }
  | { type: 'close'; streamId: number; reason: number }
  | { type: 'info'; streamId: number; major: number; minor: number; extensions: WispExtension[] }
  /** A type this client does not know (a later version's); decoded so the caller can ignore it. */
  | { type: 'unknown'; streamId: number; code: number; payload: Uint8Array };

/** A malformed packet or a peer breaking the protocol's rules. */
export class WispProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WispProtocolError';
  }
}

export const WISP_HEADER_BYTES = 5;
const EXTENSION_HEADER_BYTES = 5;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function checkUint(value: number, bits: 8 | 16 | 32, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new RangeError(`wisp: ${what} ${value} is not a ${bits}-bit unsigned integer`);
  }
}

/** One packet as the bytes of one WebSocket binary message. Throws RangeError on out-of-range fields. */
export function encodeWispPacket(packet: WispPacket): Uint8Array {
  checkUint(packet.streamId, 32, 'stream id');
  switch (packet.type) {
    case 'connect': {
      checkUint(packet.streamType, 8, 'stream type');
      checkUint(packet.port, 16, 'port');
      const name = utf8Encoder.encode(packet.hostname);
      const out = header(WISP_CONNECT, packet.streamId, 3 + name.length);
      out[5] = packet.streamType;
      out[6] = packet.port & 0xff;
      out[7] = packet.port >>> 8;
      out.set(name, 8);
      return out;
    }
    case 'data': {
      const out = header(WISP_DATA, packet.streamId, packet.data.length);
      out.set(packet.data, WISP_HEADER_BYTES);
      return out;
    }
    case 'continue': {
      checkUint(packet.bufferRemaining, 32, 'buffer remaining');
      const out = header(WISP_CONTINUE, packet.streamId, 4);
      new DataView(out.buffer).setUint32(5, packet.bufferRemaining, true);
      return out;
    }
    case 'close': {
      checkUint(packet.reason, 8, 'close reason');
      const out = header(WISP_CLOSE, packet.streamId, 1);
      out[5] = packet.reason;
      return out;
    }
    case 'info': {
      checkUint(packet.major, 8, 'major version');
      checkUint(packet.minor, 8, 'minor version');
      let payloadLength = 2;
      for (const ext of packet.extensions) {
        checkUint(ext.id, 8, 'extension id');
        payloadLength += EXTENSION_HEADER_BYTES + ext.payload.length;
      }
      const out = header(WISP_INFO, packet.streamId, payloadLength);
      const view = new DataView(out.buffer);
      out[5] = packet.major;
      out[6] = packet.minor;
      let at = 7;
      for (const ext of packet.extensions) {
        out[at] = ext.id;
        view.setUint32(at + 1, ext.payload.length, true);
        out.set(ext.payload, at + EXTENSION_HEADER_BYTES);
        at += EXTENSION_HEADER_BYTES + ext.payload.length;
      }
      return out;
    }
    case 'unknown': {
      checkUint(packet.code, 8, 'packet type');
      const out = header(packet.code, packet.streamId, packet.payload.length);
      out.set(packet.payload, WISP_HEADER_BYTES);
      return out;
    }
  }
}

function header(type: number, streamId: number, payloadLength: number): Uint8Array {
  const out = new Uint8Array(WISP_HEADER_BYTES + payloadLength);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, streamId, true);
  return out;
}

const PACKET_NAMES: Record<number, string> = { 1: 'CONNECT', 2: 'DATA', 3: 'CONTINUE', 4: 'CLOSE', 5: 'INFO' };

/**
 * One WebSocket message as a packet. DATA's and unknown packets' bytes are views into `bytes` (no
 * copy). Throws WispProtocolError, with what was wrong, on a malformed packet. Bytes after a
 * fixed-size payload (CONTINUE, CLOSE) are ignored: the formats are fixed, a later version may
 * append.
 */
export function decodeWispPacket(bytes: Uint8Array): WispPacket {
  if (bytes.length < WISP_HEADER_BYTES) {
    throw new WispProtocolError(`wisp: packet of ${bytes.length} bytes is shorter than the 5-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const code = bytes[0]!;
  const streamId = view.getUint32(1, true);
  const payloadLength = bytes.length - WISP_HEADER_BYTES;
  const need = (min: number): void => {
    if (payloadLength < min) {
      throw new WispProtocolError(`wisp: ${PACKET_NAMES[code]} packet for stream ${streamId} has ${payloadLength} payload bytes, needs ${min}`);
    }
  };
  switch (code) {
    case WISP_CONNECT: {
      need(3);
      let hostname: string;
      try {
        hostname = utf8Decoder.decode(bytes.subarray(8));
      } catch {
        throw new WispProtocolError(`wisp: CONNECT packet for stream ${streamId} has a hostname that is not UTF-8`);
      }
      return { type: 'connect', streamId, streamType: bytes[5]!, port: view.getUint16(6, true), hostname };
    }
    case WISP_DATA:
      return { type: 'data', streamId, data: bytes.subarray(WISP_HEADER_BYTES) };
    case WISP_CONTINUE:
      need(4);
      return { type: 'continue', streamId, bufferRemaining: view.getUint32(5, true) };
    case WISP_CLOSE:
      need(1);
      return { type: 'close', streamId, reason: bytes[5]! };
    case WISP_INFO: {
      need(2);
      const extensions: WispExtension[] = [];
      let at = 7;
      while (at < bytes.length) {
        if (bytes.length - at < EXTENSION_HEADER_BYTES) {
          throw new WispProtocolError(`wisp: INFO extension entry at byte ${at} has ${bytes.length - at} bytes, shorter than its 5-byte header`);
        }
        const id = bytes[at]!;
        const length = view.getUint32(at + 1, true);
        const left = bytes.length - at - EXTENSION_HEADER_BYTES;
        if (length > left) {
          throw new WispProtocolError(`wisp: INFO extension 0x${id.toString(16)} declares ${length} bytes of metadata, ${left} left in the packet`);
        }
        const start = at + EXTENSION_HEADER_BYTES;
        extensions.push({ id, payload: bytes.subarray(start, start + length) });
        at = start + length;
      }
      return { type: 'info', streamId, major: bytes[5]!, minor: bytes[6]!, extensions };
    }
    default:
      return { type: 'unknown', streamId, code, payload: bytes.subarray(WISP_HEADER_BYTES) };
  }
}

/** The name of a CLOSE reason, for messages ("0x44 connection refused"). */
export function wispCloseReasonName(reason: number): string {
  const names: Record<number, string> = {
    0x01: 'unspecified', 0x02: 'voluntary closure', 0x03: 'network error', 0x04: 'incompatible extensions',
    0x41: 'invalid stream information', 0x42: 'destination unreachable', 0x43: 'destination did not respond',
    0x44: 'connection refused', 0x47: 'transfer timed out', 0x48: 'destination blocked by the server',
    0x49: 'throttled by the server', 0x81: 'client error', 0xc0: 'bad password', 0xc1: 'bad signature',
    0xc2: 'authentication required',
  };
  return `0x${reason.toString(16).padStart(2, '0')} ${names[reason] ?? 'unknown reason'}`;
}

/**
 * What a CLOSE from the server means to the relay. `opening`: the stream was not confirmed yet
 * (no DATA, no CONTINUE): a failure to create it. 0x03 "network error" while opening is what
 * wisp-js sends for every failed connect (refused, no route, no such name), so it maps to
 * 'refused' — the guest gets a RST at once, as it would from the destination itself.
 */
export function wispCloseError(reason: number, opening: boolean): UpstreamError {
  let code: UpstreamErrorCode;
  switch (reason) {
    case WispCloseReason.networkError: code = opening ? 'refused' : 'reset'; break;
    case WispCloseReason.voluntary: code = 'reset'; break;
    case WispCloseReason.invalidInfo: code = 'forbidden'; break;
    case WispCloseReason.unreachableHost: code = 'unreachable'; break;
    case WispCloseReason.noResponse: code = 'timeout'; break;
    case WispCloseReason.connectionRefused: code = 'refused'; break;
    case WispCloseReason.transferTimeout: code = 'timeout'; break;
    case WispCloseReason.hostBlocked: code = 'forbidden'; break;
    case WispCloseReason.throttled: code = 'throttled'; break;
    case WispCloseReason.authBadPassword:
    case WispCloseReason.authBadSignature:
    case WispCloseReason.authMissingCredentials: code = 'forbidden'; break;
    default: code = 'error';
  }
  return new UpstreamError(code, `wisp server closed the stream${opening ? ' while opening it' : ''}: ${wispCloseReasonName(reason)}`);
}

// ---------------------------------------------------------------------------------------------
// The WebSocket it runs over

/** A handler type compared bivariantly, so the DOM's and `ws`'s event types both fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/**
 * The part of a WebSocket the client uses: the browser's (WHATWG) WebSocket and the `ws` package's
 * both have it. `pause`/`resume` (the `ws` package's) stop reading the socket: used, when present,
 * to bound memory while streams are paused.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  pause?(): void;
  resume?(): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const WS_CONNECTING = 0;
const WS_OPEN = 1;

/** The subprotocol a v2 client asks for: v2 requires the header present, its value is free; wisp-js's client sends this. */
export const WISP_V2_SUBPROTOCOL = 'wisp-v2';

// ---------------------------------------------------------------------------------------------
// The client

export interface WispClientOptions {
  /** Bound on the WebSocket's opening plus the Wisp handshake. Default 10000 ms. */
  connectTimeoutMs?: number;
  /**
   * Without stream open confirmation (v1, or a v2 server without extension 0x05) the server says
   * nothing when a connect succeeds, only CLOSE when it fails. openTcp then resolves at the first
   * DATA or CONTINUE for the stream or after this long without a CLOSE, so a refused destination
   * becomes a refused open (a RST to the guest's SYN) rather than a reset after the handshake.
   * 0: resolve at once. Default 200 ms (a loopback or nearby server answers a refusal well within).
   */
  openWaitMs?: number;
  /** With stream open confirmation: bound on waiting for it. Default 10000 ms. */
  openTimeoutMs?: number;
  /** Largest DATA payload sent (a TCP write is split). Credits count packets, not bytes. Default 65536. */
  maxDataBytes?: number;
  /** Per stream: bytes queued for credit above which write() returns false. Default 262144. */
  writeHighWaterBytes?: number;
  /** The WebSocket's bufferedAmount above which no more DATA is handed to it (UDP datagrams are dropped). Default 1 MiB. */
  socketHighWaterBytes?: number;
  /** Bytes held for paused streams, in total, above which a pausable WebSocket stops reading. Default 1 MiB. */
  pauseSocketAboveBytes?: number;
  /** Bytes held for one paused stream above which it is closed (CLOSE 0x81). Default 16 MiB. */
  streamReceiveLimitBytes?: number;
  /** For messages: the server's URL. */
  url?: string;
}

type ClientState = 'handshake' | 'ready' | 'closed';

/**
 * One Wisp connection over one WebSocket (created by the caller, not yet open or open).
 * `ready` resolves once the handshake is done: v2 when the server's first packet is INFO (it
 * answers INFO only when the WebSocket asked for a subprotocol), v1 when it is the initial
 * CONTINUE (protocol.md v2 "Handshake Steps").
 */
export class WispClient {
  /** Resolves when streams may be opened; rejects with an UpstreamError. */
  readonly ready: Promise<void>;
  /** 1 or 2, known once ready. */
  version: 1 | 2 = 1;
  /** The server's per-stream buffer, in packets: every TCP stream's first credit. */
  bufferSize = 0;
  /** v2: the server's extensions (as sent in its INFO). */
  serverExtensions: WispExtension[] = [];
  /** v2: the server's message of the day, if it sent one. */
  motd: string | null = null;
  /** Whether UDP streams may be opened (v1: mandatory; v2: the server listed extension 0x01). */
  udp = true;
  /** v2 extension 0x05 agreed: the server confirms each open with a CONTINUE. */
  openConfirmation = false;
  /** Well-formed packets that made no sense here (DATA for a closed stream, …): ignored, counted. */
  ignoredPackets = 0;
  /** Why the connection ended (null while it lives or after close()). */
  error: UpstreamError | null = null;
  /** Called once when the connection ends (error null after close()). */
  onclose: ((error: UpstreamError | null) => void) | null = null;

  private state: ClientState = 'handshake';
  private readonly streams = new Map<number, WispStreamBase>();
  private nextStreamId = 1;
  private readonly sending = new Set<WispTcpStream>();
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  private resolveReady!: () => void;
  private rejectReady!: (error: UpstreamError) => void;
  private heldTotal = 0;
  private readingPaused = false;
  readonly options: Required<Omit<WispClientOptions, 'url'>> & { url: string };

  constructor(readonly socket: WebSocketLike, options: WispClientOptions = {}) {
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      openWaitMs: options.openWaitMs ?? 200,
      openTimeoutMs: options.openTimeoutMs ?? 10_000,
      maxDataBytes: Math.max(1, options.maxDataBytes ?? 65_536),
      writeHighWaterBytes: options.writeHighWaterBytes ?? 262_144,
      socketHighWaterBytes: options.socketHighWaterBytes ?? 1_048_576,
      pauseSocketAboveBytes: options.pauseSocketAboveBytes ?? 1_048_576,
      streamReceiveLimitBytes: options.streamReceiveLimitBytes ?? 16 * 1_048_576,
      url: options.url ?? 'the wisp server',
    };
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody may be awaiting `ready` (an open after a failure); an unobserved rejection must not crash.
    this.ready.catch(() => {});
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => this.onMessage(event.data);
    socket.onclose = (event) => this.onSocketClose(event?.code, event?.reason);
    socket.onerror = () => {
      // The browser says no more than "error"; onclose follows with a code. `ws` may not follow
      // with onclose before open in every case, so end here too (fail is idempotent).
      if (this.state !== 'closed' && socket.readyState !== WS_OPEN) {
        this.fail(new UpstreamError(this.state === 'handshake' ? 'unreachable' : 'reset', `wisp: WebSocket to ${this.options.url} failed`));
      }
    };
    socket.onopen = null;
    this.handshakeTimer = setTimeout(() => {
      this.fail(new UpstreamError('timeout', `wisp: no handshake from ${this.options.url} within ${this.options.connectTimeoutMs} ms`));
    }, this.options.connectTimeoutMs);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Bytes held for paused streams, all streams together. */
  get heldBytes(): number {
    return this.heldTotal;
  }

  /** Whether the WebSocket's reading is paused (see `pauseSocketAboveBytes`). */
  get socketPaused(): boolean {
    return this.readingPaused;
  }

  /** Open streams (and ones being opened). */
  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * A TCP stream to host:port. Resolves as described at `openWaitMs`; rejects with the CLOSE
   * reason's UpstreamError (`wispCloseError`).
   */
  openTcp(host: string, port: number, options: { signal?: AbortSignal } = {}): Promise<UpstreamStream> {
    return this.ready.then(() => {
      this.checkOpen(`tcp ${host}:${port}`);
      const stream = new WispTcpStream(this, this.allocateStreamId(), host, port);
      return stream.open(options.signal);
    });
  }

  /** A UDP stream: each DATA is one datagram, no credits (protocol.md CONTINUE). Resolves once CONNECT is sent. */
  openUdp(host: string, port: number, options: { signal?: AbortSignal } = {}): Promise<UpstreamDatagrams> {
    return this.ready.then(() => {
      this.checkOpen(`udp ${host}:${port}`);
      if (options.signal?.aborted) throw new UpstreamError('error', `wisp: open of udp ${host}:${port} aborted`);
      if (!this.udp) throw new UpstreamError('forbidden', `wisp: ${this.options.url} does not offer UDP (no v2 extension 0x01)`);
      const flow = new WispUdpFlow(this, this.allocateStreamId(), host, port);
      flow.open();
      return flow;
    });
  }

  private checkOpen(what: string): void {
    if (this.state !== 'closed') return;
    const e = this.error;
    throw new UpstreamError(e ? 'unreachable' : 'error', `wisp: cannot open ${what}: ${e ? e.message : `the client for ${this.options.url} is closed`}`);
  }

  /** Closes the WebSocket; every stream gets onclose('reset'). Idempotent. */
  close(): void {
    this.fail(null);
  }

  // --- internals used by the streams ---

  /** @internal */
  sendPacket(packet: WispPacket): void {
    if (this.state === 'closed') return;
    try {
      this.socket.send(encodeWispPacket(packet));
    } catch (error) {
      this.fail(new UpstreamError('reset', `wisp: send on the WebSocket failed: ${(error as Error).message}`));
    }
  }

  /** @internal */
  register(stream: WispStreamBase): void {
    this.streams.set(stream.id, stream);
  }

  /** @internal */
  unregister(stream: WispStreamBase): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    if (stream instanceof WispTcpStream) this.sending.delete(stream);
  }

  /** @internal room for more DATA in the WebSocket's own buffer */
  socketHasRoom(): boolean {
    return this.socket.bufferedAmount < this.options.socketHighWaterBytes;
  }

  /**
   * @internal Sends what streams have queued, one packet per stream per round (fair), while
   * they have credit and the WebSocket has room; polls bufferedAmount when it is full (a
   * WebSocket has no drain event). Every loop is bounded by the queued packets.
   */
  flush(stream?: WispTcpStream): void {
    if (stream) this.sending.add(stream);
    if (this.state !== 'ready') return;
    while (this.sending.size > 0 && this.socketHasRoom()) {
      for (const s of this.sending) {
        if (!s.sendOne()) this.sending.delete(s);
        if (!this.socketHasRoom() || this.state !== 'ready') break;
      }
    }
    if (this.sending.size > 0 && this.state === 'ready' && this.pollTimer === null) {
      // Only streams blocked by the WebSocket (not by credit) need the poll.
      let waiting = false;
      for (const s of this.sending) if (s.canSend()) waiting = true;
      if (waiting) {
        this.pollTimer = setTimeout(() => {
          this.pollTimer = null;
          this.flush();
        }, 5);
      }
    }
  }

  /** @internal bytes held (paused) for a stream changed by delta */
  held(delta: number): void {
    this.heldTotal += delta;
    const socket = this.socket;
    if (typeof socket.pause !== 'function' || typeof socket.resume !== 'function') return;
    if (!this.readingPaused && this.heldTotal > this.options.pauseSocketAboveBytes && this.state !== 'closed') {
      this.readingPaused = true;
      socket.pause();
    } else if (this.readingPaused && this.heldTotal <= this.options.pauseSocketAboveBytes / 2) {
      this.readingPaused = false;
      socket.resume();
    }
  }

  // --- the WebSocket's events ---

  private onMessage(data: unknown): void {
    if (this.state === 'closed') return;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.fail(new UpstreamError('error', `wisp: ${this.options.url} sent a ${typeof data === 'string' ? 'text' : 'non-binary'} message; Wisp uses binary messages only`));
      return;
    }
    let packet: WispPacket;
    try {
      packet = decodeWispPacket(bytes);
    } catch (error) {
      this.fail(new UpstreamError('error', `${(error as Error).message} (from ${this.options.url})`));
      return;
    }
    if (this.state === 'handshake') this.onHandshakePacket(packet);
    else this.onStreamPacket(packet);
  }

  private onHandshakePacket(packet: WispPacket): void {
    if (packet.streamId !== 0) {
      this.fail(new UpstreamError('error', `wisp: ${this.options.url} sent ${packet.type.toUpperCase()} for stream ${packet.streamId} before the handshake ended`));
      return;
    }
    switch (packet.type) {
      case 'continue':
        // v1, or the end of the v2 handshake: the initial buffer size for every stream.
        this.bufferSize = packet.bufferRemaining;
        this.state = 'ready';
        this.clearHandshakeTimer();
        this.resolveReady();
        return;
      case 'info': {
        if (this.version === 2) {
          this.fail(new UpstreamError('error', `wisp: ${this.options.url} sent INFO twice`));
          return;
        }
        if (packet.major < 2) {
          this.fail(new UpstreamError('error', `wisp: ${this.options.url} sent INFO for version ${packet.major}.${packet.minor}`));
          return;
        }
        this.version = 2;
        this.serverExtensions = packet.extensions;
        const has = (id: number): WispExtension | undefined => packet.extensions.find((e) => e.id === id);
        this.udp = has(WispExtensionId.udp) !== undefined;
        const motd = has(WispExtensionId.motd);
        if (motd) {
          try { this.motd = utf8Decoder.decode(motd.payload); } catch { this.motd = null; }
        }
        // Authentication (extensions 0x02, 0x03) is not implemented: if the server requires it
        // (the first metadata byte, "Required"), reject as the spec says: CLOSE on stream 0.
        for (const id of [WispExtensionId.passwordAuth, WispExtensionId.keyAuth]) {
          const ext = has(id);
          if (ext && ext.payload.length > 0 && ext.payload[0] !== 0) {
            this.sendPacket({ type: 'close', streamId: 0, reason: WispCloseReason.incompatibleExtensions });
            this.fail(new UpstreamError('forbidden', `wisp: ${this.options.url} requires ${id === WispExtensionId.passwordAuth ? 'password' : 'key'} authentication, which this client does not implement`));
            return;
          }
        }
        this.openConfirmation = has(WispExtensionId.streamOpenConfirmation) !== undefined;
        const ours: WispExtension[] = [{ id: WispExtensionId.udp, payload: new Uint8Array(0) }];
        if (this.openConfirmation) ours.push({ id: WispExtensionId.streamOpenConfirmation, payload: new Uint8Array(0) });
        // "The version numbers must be set to the latest protocol version supported by both."
        this.sendPacket({ type: 'info', streamId: 0, major: 2, minor: 0, extensions: ours });
        return;
      }
      case 'close':
        this.fail(new UpstreamError(packet.reason === WispCloseReason.incompatibleExtensions ? 'error' : wispCloseError(packet.reason, true).code,
          `wisp: ${this.options.url} refused the connection: ${wispCloseReasonName(packet.reason)}`));
        return;
      default:
        this.fail(new UpstreamError('error', `wisp: ${this.options.url} sent ${packet.type.toUpperCase()} during the handshake`));
    }
  }

  private onStreamPacket(packet: WispPacket): void {
    const stream = packet.streamId === 0 ? undefined : this.streams.get(packet.streamId);
    if (!stream) {
      // Late DATA or CLOSE for a stream we closed, CONTINUE for stream 0, …: harmless.
      this.ignoredPackets++;
      return;
    }
    switch (packet.type) {
      case 'data': stream.onData(packet.data); return;
      case 'continue': stream.onContinue(packet.bufferRemaining); return;
      case 'close': stream.onClose(packet.reason); return;
      default: this.ignoredPackets++;
    }
  }

  private onSocketClose(code: number | undefined, reason: string | undefined): void {
    if (this.state === 'closed') return;
    const why = `code ${code ?? '?'}${reason ? ` ${reason}` : ''}`;
    this.fail(new UpstreamError(this.state === 'handshake' ? 'unreachable' : 'reset',
      this.state === 'handshake'
        ? `wisp: WebSocket to ${this.options.url} closed before the handshake ended (${why})`
        : `wisp: the WebSocket to ${this.options.url} closed (${why})`));
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /** Ends the connection: every stream ends with `error` (or 'reset: wisp client closed' for close()). */
  private fail(error: UpstreamError | null): void {
    if (this.state === 'closed') return;
    const wasHandshake = this.state === 'handshake';
    this.state = 'closed';
    this.error = error;
    this.clearHandshakeTimer();
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    const socket = this.socket;
    socket.onmessage = null;
    socket.onopen = null;
    socket.onclose = null;
    socket.onerror = () => {};
    try {
      if (socket.readyState === WS_OPEN || socket.readyState === WS_CONNECTING) socket.close();
    } catch { /* a CONNECTING browser socket may throw on some engines; it is abandoned anyway */ }
    const streamError = error ?? new UpstreamError('reset', `wisp: the client for ${this.options.url} was closed`);
    if (wasHandshake) this.rejectReady(streamError);
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.sending.clear();
    for (const s of streams) s.onConnectionLost(streamError);
    const onclose = this.onclose;
    this.onclose = null;
    onclose?.(error);
  }

  private allocateStreamId(): number {
    // Ids are the client's choice (protocol.md); 0 is the handshake's. Bounded: at most
    // streams.size + 1 tries.
    for (;;) {
      const id = this.nextStreamId;
      this.nextStreamId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.streams.has(id)) return id;
    }
  }
}

abstract class WispStreamBase {
  constructor(readonly client: WispClient, readonly id: number, readonly host: string, readonly port: number) {}
  abstract onData(data: Uint8Array): void;
  abstract onContinue(credit: number): void;
  abstract onClose(reason: number): void;
  abstract onConnectionLost(error: UpstreamError): void;
}

type TcpState = 'opening' | 'open' | 'closed';

/** A TCP stream (stream type 0x01). */
class WispTcpStream extends WispStreamBase implements UpstreamStream {
  ondata: ((data: Uint8Array) => void) | null = null;
  onend: (() => void) | null = null;
  ondrain: (() => void) | null = null;
  onclose: ((error: UpstreamError | null) => void) | null = null;
  readonly halfClose = false;

  private state: TcpState = 'opening';
  /** DATA packets the server can still take (protocol.md CONTINUE). */
  private credit: number;
  private readonly txQueue: Uint8Array[] = [];
  private txBytes = 0;
  private needDrain = false;
  private ending = false;
  private readonly rxQueue: Uint8Array[] = [];
  private rxBytes = 0;
  private paused = false;
  /** Holds delivery until the opener has set the callbacks (one macrotask after resolving). */
  private held = true;
  /** The close to report once the held data is delivered. */
  private pendingClose: { error: UpstreamError | null; end: boolean } | null = null;
  private closeReported = false;
  private resolveOpen: ((stream: UpstreamStream) => void) | null = null;
  private rejectOpen: ((error: UpstreamError) => void) | null = null;
  private openTimer: ReturnType<typeof setTimeout> | null = null;
  private abortListener: (() => void) | null = null;
  private signal: AbortSignal | undefined;

  constructor(client: WispClient, id: number, host: string, port: number) {
    super(client, id, host, port);
    this.credit = client.bufferSize;
  }

  open(signal: AbortSignal | undefined): Promise<UpstreamStream> {
    const what = `tcp ${this.host}:${this.port}`;
    if (signal?.aborted) return Promise.reject(new UpstreamError('error', `wisp: open of ${what} aborted`));
    return new Promise<UpstreamStream>((resolve, reject) => {
      this.resolveOpen = resolve;
      this.rejectOpen = reject;
      this.client.register(this);
      this.client.sendPacket({ type: 'connect', streamId: this.id, streamType: WISP_STREAM_TCP, port: this.port, hostname: this.host });
      if (this.client.closed) return; // fail() already rejected us through onConnectionLost
      const o = this.client.options;
      if (this.client.openConfirmation) {
        this.openTimer = setTimeout(() => {
          this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.voluntary });
          this.failOpen(new UpstreamError('timeout', `wisp: no confirmation of ${what} within ${o.openTimeoutMs} ms`));
        }, o.openTimeoutMs);
      } else if (o.openWaitMs <= 0) {
        this.confirm();
      } else {
        this.openTimer = setTimeout(() => this.confirm(), o.openWaitMs);
      }
      if (signal) {
        this.signal = signal;
        this.abortListener = () => {
          if (this.state !== 'opening') return;
          this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.voluntary });
          this.failOpen(new UpstreamError('error', `wisp: open of ${what} aborted`));
        };
        signal.addEventListener('abort', this.abortListener, { once: true });
      }
    });
  }

  // --- UpstreamStream ---

  write(data: Uint8Array): boolean {
    if (this.state === 'closed' || this.ending) return false;
    const max = this.client.options.maxDataBytes;
    for (let at = 0; at < data.length; at += max) this.txQueue.push(data.subarray(at, Math.min(at + max, data.length)));
    this.txBytes += data.length;
    this.client.flush(this);
    const ok = this.txBytes < this.client.options.writeHighWaterBytes;
    if (!ok) this.needDrain = true;
    return ok;
  }

  /** Wisp has no half-close: sends what is queued, then CLOSE 0x02; nothing more is received. */
  end(): void {
    if (this.state === 'closed' || this.ending) return;
    this.ending = true;
    if (this.txQueue.length === 0) this.finishEnd();
    else this.client.flush(this);
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.voluntary });
    this.rxQueue.length = 0;
    this.setRx(0);
    this.finish(null, false, false);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
  }

  // --- from the client ---

  /** Whether the next queued packet could go now (credit, not closed). */
  canSend(): boolean {
    return this.state !== 'closed' && this.txQueue.length > 0 && this.credit > 0;
  }

  /** Sends one queued DATA packet if it may; false when this stream has nothing more to send now. */
  sendOne(): boolean {
    if (!this.canSend()) return false;
    let chunk = this.txQueue.shift()!;
    // Credit counts packets, not bytes (protocol.md CONTINUE): small writes queued behind a spent
    // credit go out joined, up to maxDataBytes, or a relay writing a segment at a time would be
    // held to one segment per credit.
    const max = this.client.options.maxDataBytes;
    if (this.txQueue.length > 0 && chunk.length + this.txQueue[0]!.length <= max) {
      let n = chunk.length;
      let k = 0;
      while (k < this.txQueue.length && n + this.txQueue[k]!.length <= max) n += this.txQueue[k++]!.length;
      const joined = new Uint8Array(n);
      joined.set(chunk, 0);
      let at = chunk.length;
      for (const c of this.txQueue.splice(0, k)) {
        joined.set(c, at);
        at += c.length;
      }
      chunk = joined;
    }
    this.txBytes -= chunk.length;
    this.credit--;
    this.client.sendPacket({ type: 'data', streamId: this.id, data: chunk });
    if (this.state === 'closed') return false;
    if (this.needDrain && this.txBytes <= this.client.options.writeHighWaterBytes / 2) {
      this.needDrain = false;
      queueMicrotask(() => {
        if (this.state !== 'closed' && !this.ending) this.call(() => this.ondrain?.());
      });
    }
    if (this.txQueue.length === 0) {
      if (this.ending) this.finishEnd();
      return false;
    }
    return true;
  }

  onData(data: Uint8Array): void {
    if (this.state === 'closed') return;
    if (this.state === 'opening') this.confirm();
    if (this.held || this.paused || this.rxQueue.length > 0) {
      this.rxQueue.push(data);
      this.setRx(this.rxBytes + data.length);
      if (this.rxBytes > this.client.options.streamReceiveLimitBytes) {
        // Wisp has no receive window (see the module comment): the bound is to give up.
        this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.clientError });
        this.rxQueue.length = 0;
        this.setRx(0);
        this.finish(new UpstreamError('error', `wisp: tcp ${this.host}:${this.port}: more than ${this.client.options.streamReceiveLimitBytes} bytes held while paused (Wisp has no receive window)`), false, false);
      }
      return;
    }
    this.call(() => this.ondata?.(data));
  }

  onContinue(credit: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'opening') this.confirm();
    // "it must store the received buffer size" (protocol.md CONTINUE): a new value, not an increment.
    this.credit = credit;
    this.client.flush(this);
  }

  onClose(reason: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'opening') {
      if (reason === WispCloseReason.voluntary) {
        // Connected and closed at once, with nothing to say: an open stream that ends.
        this.confirm();
      } else {
        this.failOpen(wispCloseError(reason, true));
        return;
      }
    }
    // 0x02 from the server is what servers send when the destination closed (wisp-js on the
    // destination's FIN): an orderly end, after the data already received. Anything else: an error.
    if (reason === WispCloseReason.voluntary) this.finish(null, true, true);
    else this.finish(wispCloseError(reason, false), false, true);
  }

  onConnectionLost(error: UpstreamError): void {
    if (this.state === 'closed') return;
    if (this.state === 'opening') {
      // The connection went while the destination was being reached: for the guest, unreachable.
      this.failOpen(new UpstreamError(error.code === 'reset' ? 'unreachable' : error.code,
        `${error.message.slice(error.code.length + 2)} (opening tcp ${this.host}:${this.port})`));
      return;
    }
    this.rxQueue.length = 0;
    this.setRx(0);
    this.finish(error, false, false);
  }

  // --- internals ---

  private confirm(): void {
    if (this.state !== 'opening') return;
    this.state = 'open';
    this.clearOpen();
    const resolve = this.resolveOpen;
    this.resolveOpen = this.rejectOpen = null;
    resolve?.(this);
    // The opener sets the callbacks right after its await; deliver after that (a macrotask).
    setTimeout(() => {
      this.held = false;
      this.deliver();
    }, 0);
    this.client.flush(this);
  }

  private failOpen(error: UpstreamError): void {
    if (this.state !== 'opening') return;
    this.state = 'closed';
    this.clearOpen();
    this.client.unregister(this);
    const reject = this.rejectOpen;
    this.resolveOpen = this.rejectOpen = null;
    reject?.(error);
  }

  private clearOpen(): void {
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    this.openTimer = null;
    if (this.abortListener && this.signal) this.signal.removeEventListener('abort', this.abortListener);
    this.abortListener = null;
    this.signal = undefined;
  }

  private finishEnd(): void {
    this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.voluntary });
    this.finish(null, true, true);
  }

  /** Closed for sending; reports onend (if `end`) and onclose once the held data is delivered (if `afterData`). */
  private finish(error: UpstreamError | null, end: boolean, afterData: boolean): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearOpen();
    this.txQueue.length = 0;
    this.txBytes = 0;
    this.client.unregister(this);
    this.pendingClose = { error, end };
    if (!afterData) {
      this.rxQueue.length = 0;
      this.setRx(0);
    }
    this.deliver();
  }

  /** Delivers held data while not paused, then a pending close. Bounded by the queue. */
  private deliver(): void {
    while (!this.held && !this.paused && this.rxQueue.length > 0) {
      const data = this.rxQueue.shift()!;
      this.setRx(this.rxBytes - data.length);
      this.call(() => this.ondata?.(data));
    }
    // An orderly end waits for resume (like a paused stream's 'end'); an error or destroy() has no
    // data left to wait for and is reported even while paused.
    const pending = this.pendingClose;
    if (pending && !this.closeReported && !this.held && this.rxQueue.length === 0 && (!this.paused || !pending.end)) this.reportClose();
  }

  private reportClose(): void {
    if (this.closeReported || !this.pendingClose) return;
    if (this.held) return; // the opener has not set the callbacks yet; the held timer comes back here
    this.closeReported = true;
    const { error, end } = this.pendingClose;
    if (end) this.call(() => this.onend?.());
    const onclose = this.onclose;
    this.ondata = this.onend = this.ondrain = this.onclose = null;
    try { onclose?.(error); } catch { /* the last call: nothing left to tear down */ }
  }

  private setRx(bytes: number): void {
    const delta = bytes - this.rxBytes;
    this.rxBytes = bytes;
    if (delta !== 0) this.client.held(delta);
  }

  /** A relay callback that throws ends its stream with the reason, never the WebSocket's handler. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      if (this.state !== 'closed') this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.clientError });
      this.rxQueue.length = 0;
      this.setRx(0);
      const e = new UpstreamError('error', `wisp: a handler of tcp ${this.host}:${this.port} threw: ${(error as Error)?.message ?? String(error)}`);
      if (this.state !== 'closed') this.finish(e, false, false);
      else if (this.pendingClose && !this.closeReported) this.pendingClose = { error: e, end: false };
    }
  }
}

/** A UDP stream (stream type 0x02): one DATA per datagram, no credits. */
class WispUdpFlow extends WispStreamBase implements UpstreamDatagrams {
  onmessage: ((data: Uint8Array) => void) | null = null;
  onclose: ((error: UpstreamError | null) => void) | null = null;
  /** Datagrams dropped because the WebSocket's buffer was full (UDP may drop; memory stays bounded). */
  dropped = 0;
  private isClosed = false;

  open(): void {
    this.client.register(this);
    this.client.sendPacket({ type: 'connect', streamId: this.id, streamType: WISP_STREAM_UDP, port: this.port, hostname: this.host });
  }

  send(data: Uint8Array): void {
    if (this.isClosed) return;
    if (!this.client.socketHasRoom()) {
      this.dropped++;
      return;
    }
    this.client.sendPacket({ type: 'data', streamId: this.id, data });
  }

  close(): void {
    if (this.isClosed) return;
    this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.voluntary });
    this.end(null);
  }

  onData(data: Uint8Array): void {
    if (this.isClosed) return;
    try {
      this.onmessage?.(data);
    } catch (error) {
      this.client.sendPacket({ type: 'close', streamId: this.id, reason: WispCloseReason.clientError });
      this.end(new UpstreamError('error', `wisp: the message handler of udp ${this.host}:${this.port} threw: ${(error as Error)?.message ?? String(error)}`));
    }
  }

  onContinue(): void {
    // "If the associated stream is a UDP socket, then CONTINUE packets must not be sent": ignore.
    this.client.ignoredPackets++;
  }

  onClose(reason: number): void {
    this.end(reason === WispCloseReason.voluntary ? null : wispCloseError(reason, false));
  }

  onConnectionLost(error: UpstreamError): void {
    this.end(error);
  }

  private end(error: UpstreamError | null): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.client.unregister(this);
    const onclose = this.onclose;
    this.onmessage = this.onclose = null;
    try { onclose?.(error); } catch { /* the last call */ }
  }
}

// ---------------------------------------------------------------------------------------------
// The upstream

export interface WispUpstreamOptions extends Omit<WispClientOptions, 'url'> {
  /** ws:// or wss:// URL of the Wisp endpoint; its path ends with '/' (protocol.md "Choosing a Websocket URL"). */
  url: string;
  /** Default globalThis.WebSocket (browsers, Node ≥ 22); in Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /** 2 (default): ask for v2 (a subprotocol), take v1 if the server answers so; 1: v1 only. */
  version?: 1 | 2;
  /** After a failed connect, opens fail at once with that error for this long. Default 1000 ms. */
  reconnectDelayMs?: number;
}

/**
 * The Wisp way out: one WebSocket (opened at the first open, again at the next open after it
 * dropped) carrying every relayed connection. By name: the server resolves host names.
 */
export class WispUpstream implements Upstream {
  readonly name = 'wisp';
  readonly byName = true;
  private current: WispClient | null = null;
  private connecting: Promise<WispClient> | null = null;
  private lastFailure: { error: UpstreamError; at: number } | null = null;
  private closed = false;
  private readonly WebSocketCtor: WebSocketConstructor | undefined;

  constructor(readonly options: WispUpstreamOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`wisp: ${JSON.stringify(options.url)} is not a URL`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`wisp: ${options.url} is not a ws:// or wss:// URL`);
    if (!url.pathname.endsWith('/')) throw new TypeError(`wisp: ${options.url}: a Wisp URL's path ends with '/' (without it servers take it for wsproxy)`);
    this.WebSocketCtor = options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket as WebSocketConstructor | undefined;
    if (!this.WebSocketCtor) throw new TypeError('wisp: no WebSocket here (Node 20): pass options.WebSocket, e.g. the ws package\'s');
  }

  /** The live client, if connected. */
  get client(): WispClient | null {
    return this.current && !this.current.closed ? this.current : null;
  }

  /** The connected client: the current one, or a new WebSocket and handshake. */
  connect(): Promise<WispClient> {
    if (this.closed) return Promise.reject(new UpstreamError('error', 'wisp: the upstream is closed'));
    const live = this.client;
    if (live) return Promise.resolve(live);
    if (this.connecting) return this.connecting;
    const failure = this.lastFailure;
    if (failure && Date.now() - failure.at < (this.options.reconnectDelayMs ?? 1000)) return Promise.reject(failure.error);
    this.connecting = this.handshake().then(
      (client) => {
        this.connecting = null;
        this.lastFailure = null;
        if (this.closed) {
          client.close();
          throw new UpstreamError('error', 'wisp: the upstream is closed');
        }
        this.current = client;
        return client;
      },
      (error: unknown) => {
        this.connecting = null;
        const e = error instanceof UpstreamError ? error : new UpstreamError('error', `wisp: ${String(error)}`);
        this.lastFailure = { error: e, at: Date.now() };
        throw e;
      },
    );
    return this.connecting;
  }

  async openTcp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamStream> {
    const client = await this.connect();
    return client.openTcp(target.host, target.port, options);
  }

  async openUdp(target: UpstreamTarget, options: { signal?: AbortSignal } = {}): Promise<UpstreamDatagrams> {
    const client = await this.connect();
    return client.openUdp(target.host, target.port, options);
  }

  /** Closes the WebSocket (every stream ends with 'reset') and refuses further opens. */
  close(): void {
    this.closed = true;
    this.current?.close();
    this.current = null;
  }

  private async handshake(): Promise<WispClient> {
    const version = this.options.version ?? 2;
    try {
      return await this.attempt(version);
    } catch (error) {
      // A server that rejects the subprotocol fails the upgrade: try v1 once (as wisp-js's client does).
      if (version === 2 && error instanceof UpstreamError && error.code === 'unreachable' && !this.closed) return this.attempt(1);
      throw error;
    }
  }

  private async attempt(version: 1 | 2): Promise<WispClient> {
    let socket: WebSocketLike;
    try {
      socket = version === 2 ? new this.WebSocketCtor!(this.options.url, WISP_V2_SUBPROTOCOL) : new this.WebSocketCtor!(this.options.url);
    } catch (error) {
      throw new UpstreamError('error', `wisp: cannot open a WebSocket to ${this.options.url}: ${(error as Error).message}`);
    }
    const { url: _url, WebSocket: _ws, version: _v, reconnectDelayMs: _r, ...clientOptions } = this.options;
    const client = new WispClient(socket, { ...clientOptions, url: this.options.url });
    await client.ready;
    return client;
  }
}
