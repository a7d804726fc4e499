/**
 * What DNS over UDP and TCP share between the server, the stub resolver and the upstreams: TCP's
 * two-byte length prefix (RFC 1035 §4.2.2, RFC 7766 §8) and the size a UDP answer may take
 * (RFC 1035 §4.2.1: 512 bytes; RFC 6891 §6.2.5: the requestor's advertised EDNS payload size).
 */
import type { DnsMessage } from '../wire/dns.js';

/**
 * The UDP socket `stack.udpBind` returns (src/udp/socket.ts), as far as the DNS server and stub use
 * it: declared here so that these services depend on the shape only. `onError`'s argument is a
 * UdpError with node's `code`; typed `never` so the socket's own narrower handler type fits.
 */
export interface DnsUdpSocket {
  readonly localAddress: string;
  readonly localPort: number;
  connect(address: string, port: number): void;
  send(data: Uint8Array, address?: string, port?: number, from?: string): void;
  onMessage: ((data: Uint8Array, remote: { address: string; port: number; family: 4 | 6 },
    local: { address: string; port: number }) => void) | null;
  onError: ((err: never) => void) | null;
  close(): void;
}

/** A message with its TCP length prefix. */
export function frameDns(message: Uint8Array): Uint8Array {
  if (message.length > 0xffff) throw new RangeError('synack dns: a DNS message over 65535 bytes');
  const out = new Uint8Array(2 + message.length);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * Splits a TCP byte stream into DNS messages (RFC 7766 §8: each one after a two-byte length; a
 * segment may hold part of one or several). Holds at most one message's bytes (< 64 KiB + 2).
 */
export class DnsStreamDecoder {
  #buf = new Uint8Array(0);

  /** Feed bytes; returns the messages completed by them, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf: Uint8Array;
    if (this.#buf.length === 0) buf = chunk;
    else {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    const out: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= 2) {
      const len = (buf[at]! << 8) | buf[at + 1]!;
      if (buf.length - at - 2 < len) break;
      out.push(buf.slice(at + 2, at + 2 + len));
      at += 2 + len;
    }
    this.#buf = buf.slice(at);
    return out;
  }

  /** Bytes of an unfinished message held. */
  get pending(): number {
    return this.#buf.length;
  }
}

/** The classic limit for a UDP DNS message without EDNS (RFC 1035 §2.3.4). */
export const DNS_UDP_CLASSIC = 512;

/**
 * Our EDNS UDP payload size: 1232 bytes keeps an answer in one unfragmented IPv6 packet on a
 * 1280-byte path (DNS Flag Day 2020's recommendation).
 */
export const DNS_EDNS_PAYLOAD = 1232;

/**
 * How large a UDP answer to `query` may be: 512 without EDNS, else the requestor's size (at least
 * 512, RFC 6891 §6.2.3) capped at what we are willing to send (§6.2.5).
 */
export function udpAnswerLimit(query: DnsMessage | null, ours = DNS_EDNS_PAYLOAD): number {
  if (!query?.edns) return DNS_UDP_CLASSIC;
  return Math.max(DNS_UDP_CLASSIC, Math.min(query.edns.udpPayloadSize, ours));
}
