/**
 * The way out of the gateway (issue 15): one small interface, several implementations — direct
 * (node:net and node:dgram, src/gateway/upstream-direct.ts, Node only), Wisp over a WebSocket
 * (src/gateway/wisp.ts, core) and in-process JavaScript handlers (src/gateway/upstream-local.ts).
 * The relay (src/gateway/relay.ts) drives a stream through these calls only, so what the guest
 * sees (RST, ICMP unreachable, a window that follows the upstream's drain) is the same whatever the
 * upstream is.
 *
 * Core: no Node built-ins.
 */
import type { DnsUpstream } from '../services/dns-server.js';

/**
 * Why an upstream could not open a stream or lost it, in words the relay maps to what the guest
 * sees (RFC 1812 §5.2.7.1 for the ICMP codes a router sends):
 * - refused: the destination answered with a reset → RST to the guest's SYN (ECONNREFUSED);
 * - unreachable / timeout: no route, no answer → ICMP host unreachable (EHOSTUNREACH);
 * - forbidden: policy (ours or the upstream's, e.g. a Wisp server's firewall) → ICMP
 *   communication administratively prohibited (RFC 1812: type 3 code 13; ICMPv6 type 1 code 1);
 * - reset: an open stream torn down by the far side → RST;
 * - dns: the name did not resolve (Wisp, by hostname) → ICMP host unreachable;
 * - throttled, error: anything else → RST.
 */
export type UpstreamErrorCode = 'refused' | 'unreachable' | 'timeout' | 'forbidden' | 'reset' | 'dns' | 'throttled' | 'error';

export class UpstreamError extends Error {
  constructor(readonly code: UpstreamErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'UpstreamError';
  }
}

/** Where a relayed connection goes: an IP literal, or a host name (Wisp's fake-IP mode). */
export interface UpstreamTarget {
  host: string;
  port: number;
}

/**
 * One relayed TCP stream. The relay sets the callbacks right after `openTcp` resolves and before
 * it yields to the event loop; an implementation delivers nothing before that.
 */
export interface UpstreamStream {
  /**
   * Queues bytes towards the destination (the stream may keep `data`: the relay never reuses it).
   * False when the stream's buffer is above its high-water mark: the relay stops reading the guest
   * until `ondrain`, so the guest's receive window closes instead of memory growing.
   */
  write(data: Uint8Array): boolean;
  /** Half-close towards the destination (FIN), after what was written. */
  end(): void;
  /** Abort at once (a RST where the transport can send one). Idempotent; `onclose` follows. */
  destroy(): void;
  /** Stop calling `ondata` until `resume` (the guest's side is full). */
  pause(): void;
  resume(): void;
  /** Bytes from the destination; valid during the call only if the implementation says so — the relay copies. */
  ondata: ((data: Uint8Array) => void) | null;
  /** The destination half-closed (FIN). */
  onend: (() => void) | null;
  /** `write` may be called again. */
  ondrain: (() => void) | null;
  /** Last call, once: null for an orderly close of both directions, else why it ended. */
  onclose: ((error: UpstreamError | null) => void) | null;
  /** Whether `end` really half-closes (direct: yes; Wisp: no, it closes the whole stream). */
  readonly halfClose: boolean;
}

/** One relayed UDP flow (the guest's 4-tuple ↔ one destination). */
export interface UpstreamDatagrams {
  /** One datagram towards the destination (may be kept). */
  send(data: Uint8Array): void;
  /** A datagram from the destination (the relay copies). */
  onmessage: ((data: Uint8Array) => void) | null;
  /** Last call, once. */
  onclose: ((error: UpstreamError | null) => void) | null;
  close(): void;
}

export interface Upstream {
  /** 'direct', 'wisp', 'local', … for events and errors. */
  readonly name: string;
  /** Rejects with an UpstreamError (never anything else) when the destination cannot be reached. */
  openTcp(target: UpstreamTarget, options?: { signal?: AbortSignal }): Promise<UpstreamStream>;
  openUdp(target: UpstreamTarget, options?: { signal?: AbortSignal }): Promise<UpstreamDatagrams>;
  /** The resolver the guest's DNS uses through this upstream, when it has one. */
  readonly dns?: DnsUpstream;
  /** Connect by host name (Wisp resolves on the server): the gateway may answer DNS with fake IPs. */
  readonly byName?: boolean;
  close(): void;
}
