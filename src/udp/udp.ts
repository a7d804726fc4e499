/**
 * UDP for one stack (RFC 768, RFC 1122 §4.1): the port table, demultiplexing of incoming
 * datagrams to sockets, sending, and ICMP in both directions (port unreachable out for a closed
 * port, errors in to the connected socket whose datagram they quote).
 *
 * Demultiplexing picks the most specific socket for (destination address, destination port,
 * source address, source port), as Linux's udp4_lib_lookup scores them: a connected socket whose
 * peer is the source, then one bound to the destination address, then one bound to any address.
 * A socket is IPv4 or IPv6 (no dual-stack IPv4-mapped delivery). One socket per port and address
 * (no SO_REUSEADDR): a bind that overlaps another of its family is EADDRINUSE.
 * @internal
 */
import { AddressTable, isLimitedBroadcast, isLoopbackOrUnspecified, isMulticastOrBroadcast, type LocalAddress } from '../net/addresses.js';
import type { IcmpLayer } from '../net/icmp.js';
import type { IpLayer } from '../net/ip.js';
import type { StackCore } from '../stack/core.js';
import { PortAllocator } from '../stack/ports.js';
import { unreachableCode, type UdpForwardHandler, type UdpForwardVerdict } from '../stack/forward.js';
import { addressEquals, formatAddress, parseAddress } from '../wire/address.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import type { DropReason } from '../wire/drop.js';
import type { IcmpOriginal } from '../wire/icmp.js';
import { PROTO_UDP, type IpPacketInfo } from '../wire/ip.js';
import { allocPacket } from '../wire/packet.js';
import { UDP_HEADER_LENGTH, parseUdp, writeUdp } from '../wire/udp.js';
import {
  UdpError, type UdpBindOptions, type UdpErrorCode, type UdpMessageHandler, type UdpSocket,
} from './socket.js';

/** Largest payload: 65535 − IPv4 header − UDP header; IPv6's Payload Length excludes its header. */
export const UDP_MAX_PAYLOAD_V4 = 65535 - 20 - 8;
export const UDP_MAX_PAYLOAD_V6 = 65535 - 8;

const ANY4 = new Uint8Array(4);
const ANY6 = new Uint8Array(16);

class Socket implements UdpSocket {
  onMessage: UdpMessageHandler | null = null;
  onError: ((err: UdpError) => void) | null = null;
  broadcast: boolean;
  remote: Uint8Array | null = null;
  remotePort: number | null = null;
  remoteAddress: string | null = null;
  closed = false;
  readonly localAddress: string;

  constructor(
    private readonly layer: UdpLayer,
    readonly family: 4 | 6,
    /** null: any address. */
    readonly local: Uint8Array | null,
    readonly localPort: number,
    broadcast: boolean,
    readonly anyDestination: boolean,
  ) {
    this.broadcast = broadcast;
    this.localAddress = local === null ? (family === 4 ? '0.0.0.0' : '::') : formatAddress(local);
  }

  connect(address: string, port: number): void {
    if (this.closed) throw new UdpError('EBADF', 'the socket is closed', 'connect');
    const remote = parseAddress(String(address));
    if (remote === null) throw new UdpError('EINVAL', `not an IP address: ${JSON.stringify(address)}`, 'connect');
    if ((remote.length === 4 ? 4 : 6) !== this.family) {
      throw new UdpError('EINVAL', `${address} is not an IPv${this.family} address`, 'connect');
    }
    checkUdpPort(port, 'connect');
    this.remote = remote;
    this.remotePort = port;
    this.remoteAddress = formatAddress(remote);
  }

  disconnect(): void {
    if (this.remote === null) throw new UdpError('ENOTCONN', 'the socket is not connected', 'disconnect');
    this.remote = null;
    this.remotePort = null;
    this.remoteAddress = null;
  }

  send(data: Uint8Array, address?: string, port?: number, from?: string): void {
    if (this.closed) throw new UdpError('EBADF', 'the socket is closed', 'send');
    let remote: Uint8Array;
    let remotePort: number;
    if (address === undefined || address === null) {
      if (this.remote === null || this.remotePort === null) {
        throw new UdpError('EDESTADDRREQ', 'no destination: pass an address and port, or connect()', 'send');
      }
      remote = this.remote;
      remotePort = this.remotePort;
    } else {
      if (this.remote !== null) throw new UdpError('EISCONN', 'the socket is connected: send without an address', 'send');
      const r = parseAddress(String(address));
      if (r === null) throw new UdpError('EINVAL', `not an IP address: ${JSON.stringify(address)}`, 'send');
      if ((r.length === 4 ? 4 : 6) !== this.family) throw new UdpError('EINVAL', `${address} is not an IPv${this.family} address`, 'send');
      checkUdpPort(port, 'send');
      remote = r;
      remotePort = port!;
    }
    this.layer.send(this, data, remote, remotePort, from);
  }

  /** The streams form's queue was full: counted as the stack's 'udp-queue-full' drop. */
  queueFull(data: Uint8Array): void {
    this.layer.queueFull(data);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onMessage = null;
    this.layer.unbind(this);
  }

  /** Whether a datagram to `dst` from `src`:`srcPort` is for this socket; higher is more specific. */
  score(dst: Uint8Array, unicastLocal: boolean, src: Uint8Array, srcPort: number): number {
    let score = 0;
    if (this.remote !== null) {
      if (this.remotePort !== srcPort || !addressEquals(this.remote, src)) return -1;
      score += 4;
    }
    if (this.local !== null) {
      if (!addressEquals(this.local, dst)) return -1;
      score += 2;
    } else if (!unicastLocal && !this.anyDestination && !isBroadcastFor(this.layer.addresses, dst)) {
      // Reached us only because some socket has anyDestination: not for a plain any-address socket.
      return -1;
    }
    return score;
  }
}

function isBroadcastFor(table: AddressTable, dst: Uint8Array): boolean {
  return table.isBroadcast(dst);
}

export function checkUdpPort(port: unknown, syscall: string, allowZero = false): void {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UdpError('EINVAL', `bad port ${String(port)}: expected an integer ${allowZero ? 0 : 1}..65535`, syscall);
  }
}

export class UdpLayer {
  icmp!: IcmpLayer;
  /** Sockets bound with `anyDestination` (IP input then passes UDP for any destination here). */
  anyDestination = 0;
  /** Catch-all: datagrams no socket takes (src/stack/forward.ts); IP input passes any destination. */
  forwarder: UdpForwardHandler | null = null;
  private readonly byPort = new Map<number, Socket[]>();
  private readonly ports: PortAllocator;
  private readonly checksumOffload: boolean;

  constructor(
    private readonly core: StackCore,
    readonly addresses: AddressTable,
    private readonly ip: IpLayer,
    checksumOffload: boolean,
    k0: number,
    k1: number,
  ) {
    this.ports = new PortAllocator(k0, k1);
    this.checksumOffload = checksumOffload;
  }

  bind(options: UdpBindOptions = {}): UdpSocket {
    const port = options.port ?? 0;
    checkUdpPort(port, 'bind', true);
    let local: LocalAddress | null = null;
    let family: 4 | 6 | undefined = options.family;
    if (family !== undefined && family !== 4 && family !== 6) throw new UdpError('EINVAL', `bad family ${String(family)}: expected 4 or 6`, 'bind');
    const a = options.address;
    if (a !== undefined && a !== '' && a !== '0.0.0.0' && a !== '::') {
      const bytes = parseAddress(String(a));
      if (bytes === null) throw new UdpError('EINVAL', `not an IP address: ${JSON.stringify(a)}`, 'bind');
      const v = bytes.length === 4 ? 4 : 6;
      if (family !== undefined && family !== v) throw new UdpError('EINVAL', `${a} is not an IPv${family} address`, 'bind');
      family = v;
      local = this.addresses.find(bytes) ?? null;
      if (local === null) throw new UdpError('EADDRNOTAVAIL', `${a} is not an address of this stack`, 'bind');
    } else if (a === '0.0.0.0' || a === '::') {
      const v = a === '0.0.0.0' ? 4 : 6;
      if (family !== undefined && family !== v) throw new UdpError('EINVAL', `${a} is not an IPv${family} address`, 'bind');
      family = v;
    }
    family ??= 4;
    const localBytes = local === null ? null : local.bytes;
    let chosen = port;
    if (chosen === 0) {
      const none = family === 4 ? ANY4 : ANY6;
      const c = this.ports.choose(localBytes ?? none, none, this.byPort.size, (p) => !this.conflicts(family!, localBytes, p));
      if (c === null) throw new UdpError('EADDRINUSE', 'no ephemeral port free', 'bind');
      chosen = c;
    } else if (this.conflicts(family, localBytes, chosen)) {
      throw new UdpError('EADDRINUSE', `${local?.text ?? (family === 4 ? '0.0.0.0' : '::')}:${chosen} is in use`, 'bind');
    }
    const s = new Socket(this, family, localBytes, chosen, options.broadcast === true, options.anyDestination === true);
    const list = this.byPort.get(chosen);
    if (list === undefined) this.byPort.set(chosen, [s]);
    else list.push(s);
    if (s.anyDestination) this.anyDestination++;
    return s;
  }

  /** Every open socket, for views and tests. */
  sockets(): UdpSocket[] {
    return [...this.byPort.values()].flat();
  }

  private conflicts(family: 4 | 6, local: Uint8Array | null, port: number): boolean {
    const list = this.byPort.get(port);
    if (list === undefined) return false;
    for (const s of list) {
      if (s.family !== family) continue;
      if (s.local === null || local === null || addressEquals(s.local, local)) return true;
    }
    return false;
  }

  queueFull(data: Uint8Array): void {
    this.core.drop('udp-queue-full', data);
  }

  unbind(s: Socket): void {
    const list = this.byPort.get(s.localPort);
    if (list === undefined) return;
    const i = list.indexOf(s);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.byPort.delete(s.localPort);
    if (s.anyDestination) this.anyDestination--;
  }

  /**
   * A datagram from IP input. `unicastLocal`: its destination is one of our addresses (else a
   * broadcast, or any destination while an anyDestination socket exists).
   */
  input(ip: IpPacketInfo, packet: Uint8Array, unicastLocal: boolean): void {
    const core = this.core;
    const body = packet.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
    const d = parseUdp(body, pseudoHeaderSum(ip.src, ip.dst, PROTO_UDP, ip.payloadLength), ip.version, !this.checksumOffload);
    if (typeof d === 'string') return core.drop(d, packet);
    // RFC 1122 §4.1.3.6 / §3.2.1.3: not from a broadcast or multicast source; port 0 is reserved.
    if (d.dstPort === 0 || isMulticastOrBroadcast(ip.src) || this.addresses.isBroadcast(ip.src)) {
      return core.drop('udp-bad-address', packet);
    }
    core.counters.udpIn++;
    if (core.traced) {
      core.trace({
        type: 'datagram', t: core.clock.now(), dir: 'in', src: formatAddress(ip.src), dst: formatAddress(ip.dst),
        srcPort: d.srcPort, dstPort: d.dstPort, len: d.payload.length, packet,
      });
    }
    let best: Socket | null = null;
    let bestScore = -1;
    const list = this.byPort.get(d.dstPort);
    if (list !== undefined) {
      for (const s of list) {
        if (s.family !== ip.version) continue;
        const score = s.score(ip.dst, unicastLocal, ip.src, d.srcPort);
        if (score > bestScore) {
          best = s;
          bestScore = score;
        }
      }
    }
    if (best === null) {
      if (this.forwarder !== null && this.forward(ip, d.srcPort, d.dstPort, d.payload, unicastLocal, packet)) return;
      core.drop('udp-no-socket', packet);
      // RFC 1122 §4.1.3.1: SHOULD send port unreachable — not for broadcasts (§3.2.2).
      if (unicastLocal) this.icmp.portUnreachable(ip, packet);
      return;
    }
    const handler = best.onMessage;
    if (handler === null) return;
    // The socket's own copy: the packet is a view into its sender's slab.
    const data = d.payload.slice();
    const remote = { address: formatAddress(ip.src), port: d.srcPort, family: ip.version };
    const local = { address: formatAddress(ip.dst), port: d.dstPort };
    try {
      handler(data, remote, local);
    } catch (err) {
      core.internalError(err);
    }
  }

  /**
   * A unicast datagram no socket takes, offered to the forwarder (src/stack/forward.ts). True when
   * it was taken or answered with an ICMP error; false for the usual path.
   */
  private forward(ip: IpPacketInfo, srcPort: number, dstPort: number, payload: Uint8Array, unicastLocal: boolean, packet: Uint8Array): boolean {
    // Broadcasts and multicasts stay on the segment (a DHCP DISCOVER with no server is not relayed).
    if (!unicastLocal && (isMulticastOrBroadcast(ip.dst) || this.addresses.isBroadcast(ip.dst))) return false;
    // Nothing is relayed for a source that cannot be answered (see TcpLayer.forwardSyn).
    if (isLoopbackOrUnspecified(ip.src)) return false;
    let verdict: UdpForwardVerdict;
    try {
      verdict = this.forwarder!({
        src: formatAddress(ip.src), srcPort, dst: formatAddress(ip.dst), dstPort, family: ip.version,
        toLocal: unicastLocal, data: payload.slice(),
      });
    } catch (err) {
      this.core.internalError(err);
      return false;
    }
    if (verdict === true) {
      this.core.counters.udpForwarded++;
      return true;
    }
    if (verdict === false) return false;
    this.core.drop('udp-no-socket', packet);
    const [type, code] = unreachableCode(verdict, ip.version);
    this.icmp.sendError(packet, ip.version, type, code);
    return true;
  }

  /**
   * An ICMP error quoting a datagram we sent. Like Linux without IP_RECVERR (__udp4_lib_err,
   * __udp6_lib_err): only a connected socket hears of it, and only a hard error. Returns the drop
   * reason when no socket sent such a datagram, else null.
   */
  icmpError(o: IcmpOriginal, version: 4 | 6, type: number, code: number): DropReason | null {
    if (o.srcPort === undefined || o.dstPort === undefined) return 'icmp-unhandled';
    const list = this.byPort.get(o.srcPort);
    let found: Socket | undefined;
    for (const s of list ?? []) {
      if (s.family !== version || (s.local !== null && !addressEquals(s.local, o.src))) continue;
      if (s.remote !== null && (s.remotePort !== o.dstPort || !addressEquals(s.remote, o.dst))) continue;
      if (found === undefined || (s.remote !== null && found.remote === null)) found = s;
    }
    if (found === undefined) return 'icmp-unhandled';
    const e = icmpErrno(version, type, code);
    if (e === null || !e.hard || found.remote === null) {
      this.core.note(`UDP ${found.localAddress}:${found.localPort}: ICMP type ${type} code ${code} ignored (${found.remote === null ? 'socket not connected' : 'soft error'})`, 'RFC 1122 §4.1.3.3');
      return null;
    }
    const handler = found.onError;
    if (handler !== null) {
      try {
        handler(new UdpError(e.code, `ICMP type ${type} code ${code} from ${formatAddress(o.dst)}:${o.dstPort}`, 'recvmsg'));
      } catch (err) {
        this.core.internalError(err);
      }
    }
    return null;
  }

  send(s: Socket, data: Uint8Array, remote: Uint8Array, remotePort: number, from: string | undefined): void {
    const version = s.family;
    const max = version === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6;
    if (data.length > max) throw new UdpError('EMSGSIZE', `${data.length} bytes: more than a UDP datagram holds (${max})`, 'send');
    if (version === 4 && this.addresses.isBroadcast(remote) && !s.broadcast) {
      throw new UdpError('EACCES', `${formatAddress(remote)} is a broadcast address: set broadcast first`, 'send');
    }
    let local: Uint8Array | undefined;
    if (from !== undefined) {
      const f = parseAddress(String(from));
      if (f === null || (f.length === 4 ? 4 : 6) !== version) throw new UdpError('EINVAL', `bad source address ${JSON.stringify(from)}`, 'send');
      // 0.0.0.0 is "this host" before it has an address (RFC 1122 §3.2.1.3 (a)): a DHCP client's source.
      if (!f.every((b) => b === 0) && !this.addresses.isLocal(f)) {
        throw new UdpError('EADDRNOTAVAIL', `${from} is not an address of this stack`, 'send');
      }
      local = f;
    } else if (s.local !== null) {
      local = s.local;
    } else {
      local = this.addresses.source(remote)?.bytes;
      if (local === undefined) {
        throw new UdpError('ENETUNREACH', `no IPv${version} address on this stack to reach ${formatAddress(remote)}`, 'send');
      }
    }
    if (isLimitedBroadcast(local) || isMulticastOrBroadcast(local)) throw new UdpError('EINVAL', 'a broadcast source address', 'send');
    this.sendRaw(local, s.localPort, remote, remotePort, data);
  }

  /**
   * One datagram from any source address and port (the forwarder answers as the address the guest
   * wrote to). Only the size is checked: the caller vouches for the addresses.
   */
  sendRaw(local: Uint8Array, localPort: number, remote: Uint8Array, remotePort: number, data: Uint8Array): void {
    const version = local.length === 4 ? 4 : 6;
    const max = version === 4 ? UDP_MAX_PAYLOAD_V4 : UDP_MAX_PAYLOAD_V6;
    if (data.length > max) throw new UdpError('EMSGSIZE', `${data.length} bytes: more than a UDP datagram holds (${max})`, 'send');
    if (remote.length !== local.length) throw new UdpError('EINVAL', 'source and destination differ in family', 'send');
    const udpLen = UDP_HEADER_LENGTH + data.length;
    const hl = version === 4 ? 20 : 40;
    const packet = allocPacket(hl + udpLen);
    this.ip.writeHeader(packet, local, remote, PROTO_UDP, udpLen);
    writeUdp(packet, hl, localPort, remotePort, data, pseudoHeaderSum(local, remote, PROTO_UDP, udpLen));
    const core = this.core;
    core.counters.udpOut++;
    if (core.traced) {
      core.trace({
        type: 'datagram', t: core.clock.now(), dir: 'out', src: formatAddress(local), dst: formatAddress(remote),
        srcPort: localPort, dstPort: remotePort, len: data.length, packet,
      });
    }
    this.ip.sendFragmentable(packet);
  }
}

/**
 * Linux's icmp_err_convert (net/ipv4/icmp.c) and icmpv6_err_convert: the errno an ICMP error
 * becomes, and whether it is "fatal" (reported to a connected UDP socket). IPv4 frag-needed is not
 * reported: our datagrams go with DF clear.
 */
function icmpErrno(version: 4 | 6, type: number, code: number): { code: UdpErrorCode; hard: boolean } | null {
  if (version === 4) {
    if (type === 3) {
      const table: Array<[UdpErrorCode, boolean]> = [
        ['ENETUNREACH', false], ['EHOSTUNREACH', false], ['ENOPROTOOPT', true], ['ECONNREFUSED', true],
        ['EMSGSIZE', false], ['EOPNOTSUPP', false], ['ENETUNREACH', true], ['EHOSTDOWN', true],
        ['ENONET', true], ['ENETUNREACH', true], ['EHOSTUNREACH', true], ['ENETUNREACH', false],
        ['EHOSTUNREACH', false], ['EHOSTUNREACH', true], ['EHOSTUNREACH', true], ['EHOSTUNREACH', true],
      ];
      const e = table[code];
      return e === undefined ? { code: 'EHOSTUNREACH', hard: false } : { code: e[0], hard: e[1] };
    }
    if (type === 11) return { code: 'EHOSTUNREACH', hard: false };
    if (type === 12) return { code: 'EPROTO', hard: true };
    return null;
  }
  switch (type) {
    case 1: {
      const table: Array<[UdpErrorCode, boolean]> = [
        ['ENETUNREACH', false], ['EACCES', true], ['EHOSTUNREACH', false], ['EHOSTUNREACH', false],
        ['ECONNREFUSED', true], ['EACCES', true], ['EACCES', true],
      ];
      const e = table[code];
      return e === undefined ? { code: 'EPROTO', hard: false } : { code: e[0], hard: e[1] };
    }
    case 2: return { code: 'EMSGSIZE', hard: false };
    case 3: return { code: 'EHOSTUNREACH', hard: false };
    case 4: return { code: 'EPROTO', hard: true };
    default: return null;
  }
}
