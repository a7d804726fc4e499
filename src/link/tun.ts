/**
 * A Linux TUN device as a synack link: the kernel routes IP packets for the device's subnet to us, and
 * what we write comes out of the device as if it had arrived on a wire. Node only, Linux only; the
 * core never imports this file (src/index.node.ts exports it).
 *
 * Opening: `open("/dev/net/tun")`, then `ioctl(fd, TUNSETIFF, struct ifreq)` (linux/if_tun.h) through
 * koffi, which Node has no binding for. IFF_NO_PI: each read or write is exactly one IP packet, with no
 * 4-byte packet-information header in front. The kernel side (MTU, up, addresses) is set with
 * iproute2's `ip`, as an administrator would.
 *
 * Reading: the poll-and-drain loop shared with TAP devices, in src/link/tuntap.ts (as are the
 * FFI, the kernel-side setup and the errors): a burst of packets costs one threadpool round trip,
 * and the stack sees it in one turn.
 *
 * Offload (`offload: true`, `gso: true`): with IFF_VNET_HDR every read and write carries a virtio
 * header, and TUNSETOFFLOAD lets the kernel hand over TCP data as 64 KiB GSO super-packets with
 * partial checksums (completed here); with `gso`, the segments the stack sends in one turn are
 * joined back into super-packets the kernel takes whole. One system call per 64 KiB instead of per
 * 1500 bytes, in each direction, without any change to the stack (see `TunOptions`).
 */
import { closeSync } from 'node:fs';
import { pseudoHeaderSum, sum16 } from '../wire/checksum.js';
import { setIpv4HeaderChecksum } from '../wire/ipv4.js';
import type { LinkEnd } from './link.js';
import {
  IFF_NO_PI, IFF_TUN, LE, TunTapDevice, checkDeviceOptions, configureKernelSide, ioctlError, loadLibc, openTunFile, setIff, wakeFd,
} from './tuntap.js';
import type { Libc, TunTapStats } from './tuntap.js';

export { TunError } from './tuntap.js';
export type { TunErrorCode } from './tuntap.js';

// linux/if_tun.h
/** Every read and write starts with a `struct virtio_net_hdr` (linux/virtio_net.h): offload metadata. */
const IFF_VNET_HDR = 0x4000;
/** `_IOW('T', 208, unsigned int)`: which offloads this side of the device can take (TUN_F_*). */
const TUNSETOFFLOAD = 0x400454d0;
/** We complete partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
const TUN_F_CSUM = 0x01;
/** We take TCP segments larger than the MTU (GSO super-packets), IPv4 and IPv6. */
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
/**
 * `sizeof(struct virtio_net_hdr)`, the TUN default (TUNSETVNETHDRSZ not used): flags u8, gso_type u8,
 * hdr_len, gso_size, csum_start, csum_offset u16, in the host's byte order (a TUN device is
 * native-endian unless TUNSETVNETLE/BE says otherwise).
 */
const VNET_HDR_LEN = 10;
/** virtio_net_hdr.flags: the checksum from csum_start to the end is still to be computed and stored at csum_start + csum_offset. */
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr.gso_type: a TCP super-packet for the kernel to treat as segments of gso_size. */
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** TCP flags (RFC 9293 §3.1) a coalesced run may carry: ACK on every segment, PSH on the last. */
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

/**
 * Largest packet a read can return. Without IFF_VNET_HDR the kernel hands a TUN device no packet
 * larger than its MTU; reading with room for the IPv4 maximum (RFC 791 Total Length) keeps a packet
 * whole even if someone raises the MTU behind our back.
 */
const READ_SIZE = 65535;
/**
 * With offload the kernel hands over GSO super-packets: an IPv6 one is a 40-byte header plus up to
 * 65535 bytes of payload (RFC 8200 Payload Length), behind the virtio header.
 */
const READ_SIZE_VNET = VNET_HDR_LEN + 40 + 65535;

export interface TunOptions {
  /** Device name (at most 15 bytes). Default: the kernel picks `tunN`. Opened if it exists (a persistent device). */
  name?: string;
  /** MTU set on the device and reported to the stack. Default 1500. */
  mtu?: number;
  /** Addresses given to the kernel's side of the device, in CIDR form (`10.9.0.1/24`, `fd09::1/64`). */
  kernelAddresses?: string[];
  /**
   * Ask the kernel for receive offloads (default false): IFF_VNET_HDR, then TUNSETOFFLOAD with
   * TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6. The kernel then hands over TCP data as GSO super-packets of up
   * to 64 KiB — one read where there were ~45 at MTU 1500 — with the TCP checksum left partial, which
   * this link completes before the stack sees the packet. Writes stay one packet each (a zeroed
   * virtio header in front) unless `gso` is set too. If the kernel refuses, the link works without:
   * `offload` says what was granted, `offloadRefused` why not.
   */
  offload?: boolean;
  /**
   * Send-side GSO (default false; implies `offload`, and is on only if that is granted): the TCP segments the stack sends in
   * one turn are written as they come, except that runs of back-to-back data segments of one
   * connection (consecutive sequence numbers, same headers otherwise, full-sized but the last) are
   * joined into one super-packet of up to 64 KiB with a virtio header saying "TCP, segments of
   * gso_size" — what a NIC's TSO takes. One write where there were up to ~45; the kernel handles the
   * super-packet as one (as it does GRO's), or cuts it up itself if it forwards it.
   */
  gso?: boolean;
}

export interface TunStats extends TunTapStats {
  /** With offload: packets read that were GSO super-packets (larger than the MTU, cut by us never). */
  gsoPacketsIn: number;
  /** With offload: partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM) this link completed. */
  checksumsCompleted: number;
  /** With gso: super-packets written, and the segments of the stack's they carried. */
  gsoPacketsOut: number;
  gsoSegmentsOut: number;
}

export class TunLink extends TunTapDevice<TunStats> implements LinkEnd {
  /** Receive offload (GSO super-packets, partial checksums) is on: asked for and granted. */
  readonly offload: boolean;
  /** Why offload was asked for and is off (the kernel refused), or undefined. */
  readonly offloadRefused: string | undefined;
  /** Send-side GSO is on (asked for, and offload granted). */
  readonly gso: boolean;

  /** Every read and write carries a virtio header (IFF_VNET_HDR). */
  readonly #vnet: boolean;
  /** With #vnet: a zeroed virtio header (no offload asked of the kernel) and room for the packet behind it. */
  #writeBuf: Uint8Array | undefined;
  /** With gso: packets sent this turn, written (joined where possible) at the end of it. */
  #pending: Uint8Array[] = [];
  #flushScheduled = false;

  private constructor(lib: Libc, fd: number, wake: number, name: string, mtu: number, vnet: boolean, offload: boolean, refused: string | undefined, gso: boolean) {
    super(lib, fd, wake, name, mtu, vnet ? READ_SIZE_VNET : READ_SIZE, {
      packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, drops: 0, polls: 0, turns: 0, readErrors: 0,
      gsoPacketsIn: 0, checksumsCompleted: 0, gsoPacketsOut: 0, gsoSegmentsOut: 0,
    });
    this.#vnet = vnet;
    this.offload = offload;
    this.offloadRefused = refused;
    this.gso = gso;
  }

  /**
   * Open (or create) a TUN device and configure the kernel's side of it. Throws a `TunError` with a
   * one-line message when that cannot be done.
   */
  static open(opts: TunOptions = {}): TunLink {
    const mtu = opts.mtu ?? 1500;
    const wanted = opts.name ?? '';
    checkDeviceOptions('TUN', mtu, wanted);
    const lib = loadLibc('TUN');
    const fd = openTunFile('TUN');

    let wake = -1;
    try {
      let vnet = opts.offload === true || opts.gso === true;
      let offload = false;
      let refused: string | undefined;
      let set = setIff(lib, fd, wanted, IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0));
      if (!set.ok && vnet && set.errno === 22) {
        // EINVAL: a kernel without IFF_VNET_HDR for TUN (or a persistent device made without it). A
        // plain device still works; try that (a name taken by another kind of device fails again).
        refused = 'the kernel refused IFF_VNET_HDR (EINVAL)';
        vnet = false;
        set = setIff(lib, fd, wanted, IFF_TUN | IFF_NO_PI);
      }
      if (!set.ok) throw ioctlError('TUN', set.errno, wanted);
      const name = set.name;
      if (vnet) {
        // TSO4/TSO6 are only accepted together with CSUM (a super-packet's checksum is always partial).
        if (lib.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) === 0) offload = true;
        else refused = `the kernel refused TUNSETOFFLOAD (errno ${lib.errno()})`;
        // Without it the virtio header stays (IFF_VNET_HDR cannot be undone on this fd): always zero.
      }

      wake = wakeFd(lib);
      configureKernelSide('TUN', name, mtu, opts.kernelAddresses ?? []);
      const link = new TunLink(lib, fd, wake, name, mtu, vnet, offload, refused, offload && opts.gso === true);
      link.startReading();
      return link;
    } catch (e) {
      // A device we created goes away with its last fd; one that was persistent stays as it was.
      closeSync(fd);
      if (wake >= 0) closeSync(wake);
      throw e;
    }
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.setReceiver(fn);
  }

  /** Write one IP packet to the kernel. Never throws: a packet that cannot be written is a drop. */
  send(packet: Uint8Array): void {
    if (this.closed) {
      this.stats.drops++;
      return;
    }
    if (this.gso) {
      // Written at the end of this turn (a microtask: before any I/O or timer), in order.
      this.#pending.push(packet);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(this.#flush);
      }
      return;
    }
    this.#write(packet);
  }

  #write(packet: Uint8Array): void {
    let ok: boolean;
    if (this.#vnet) {
      // A zeroed virtio header (no GSO, checksum complete: the stack always fills it), then the
      // packet: one write, as the kernel wants it (a copy is cheaper than a writev's arrays).
      const need = VNET_HDR_LEN + packet.length;
      if (this.#writeBuf === undefined || this.#writeBuf.length < need) this.#writeBuf = new Uint8Array(Math.max(need, VNET_HDR_LEN + 1500));
      // The buffer is shared with #writeGso, which fills the header in: zero it again.
      this.#writeBuf.fill(0, 0, VNET_HDR_LEN);
      this.#writeBuf.set(packet, VNET_HDR_LEN);
      ok = this.writeOut(this.#writeBuf, need);
    } else {
      ok = this.writeOut(packet);
    }
    if (ok) {
      this.stats.packetsOut++;
      this.stats.bytesOut += packet.length;
    } else {
      this.stats.drops++;
    }
  }

  /** Writes what this turn sent: runs of segments that can be joined as one GSO super-packet each. */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    let i = 0;
    while (i < pending.length) {
      if (this.closed) {
        this.stats.drops += pending.length - i;
        return;
      }
      const j = gsoRunEnd(pending, i);
      if (j - i === 1) this.#write(pending[i]!);
      else this.#writeGso(pending, i, j);
      i = j;
    }
  };

  /**
   * One super-packet for pending[i..j) (see `gsoRunEnd`): the first packet's headers, every
   * payload, the IP length for the whole, the last segment's flags (PSH if it had it); the TCP
   * checksum left partial — the field holds the pseudo-header sum, as Linux's own TSO path leaves it
   * (CHECKSUM_PARTIAL) — with a virtio header: NEEDS_CSUM from the TCP header, GSO TCPV4/TCPV6 with
   * gso_size = the first segment's payload.
   */
  #writeGso(pending: Uint8Array[], i: number, j: number): void {
    const first = pending[i]!;
    const v4 = first[0]! >> 4 === 4;
    const ipHl = v4 ? (first[0]! & 0x0f) * 4 : 40;
    const hl = ipHl + (first[ipHl + 12]! >> 4) * 4;
    let total = hl;
    for (let k = i; k < j; k++) total += pending[k]!.length - hl;
    const need = VNET_HDR_LEN + total;
    if (this.#writeBuf === undefined || this.#writeBuf.length < need) this.#writeBuf = new Uint8Array(Math.max(need, VNET_HDR_LEN + 65535 + 40));
    const buf = this.#writeBuf;
    const v = new DataView(buf.buffer, buf.byteOffset, VNET_HDR_LEN);
    v.setUint8(0, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    v.setUint8(1, v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6);
    v.setUint16(2, hl, LE);
    v.setUint16(4, first.length - hl, LE);
    v.setUint16(6, ipHl, LE);
    v.setUint16(8, 16, LE);
    const out = buf.subarray(VNET_HDR_LEN, need);
    out.set(first.subarray(0, hl), 0);
    let at = hl;
    for (let k = i; k < j; k++) {
      const p = pending[k]!;
      out.set(p.subarray(hl), at);
      at += p.length - hl;
    }
    out[ipHl + 13] = pending[j - 1]![ipHl + 13]!;
    if (v4) {
      out[2] = total >>> 8;
      out[3] = total & 0xff;
      setIpv4HeaderChecksum(out, ipHl);
    } else {
      out[4] = (total - 40) >>> 8;
      out[5] = (total - 40) & 0xff;
    }
    const src = v4 ? out.subarray(12, 16) : out.subarray(8, 24);
    const dst = v4 ? out.subarray(16, 20) : out.subarray(24, 40);
    const pseudo = pseudoHeaderSum(src, dst, 6, total - ipHl);
    out[ipHl + 16] = pseudo >>> 8;
    out[ipHl + 17] = pseudo & 0xff;
    if (this.writeOut(buf, need)) {
      this.stats.packetsOut++;
      this.stats.bytesOut += total;
      this.stats.gsoPacketsOut++;
      this.stats.gsoSegmentsOut += j - i;
    } else {
      this.stats.drops += j - i;
    }
  }

  /** Stop reading and close the device (a device we created disappears). Idempotent. */
  override close(): void {
    if (this.closed) return;
    // What this turn sent still goes out (gso: it waits for the end of the turn).
    if (this.#pending.length > 0) this.#flush();
    super.close();
  }

  /** With the virtio header: the packet behind it, its partial checksum completed (`#fromVirtio`). */
  protected override unwrap(slab: Uint8Array, at: number, len: number): Uint8Array | undefined {
    if (!this.#vnet) return slab.subarray(at, at + len);
    if (len <= VNET_HDR_LEN) return undefined;
    const packet = slab.subarray(at + VNET_HDR_LEN, at + len);
    this.#fromVirtio(slab, at, packet);
    return packet;
  }

  /**
   * What the virtio header in front of `packet` (at `slab[at]`) asks of the receiver. A GSO
   * super-packet (gso_type ≠ 0) is one TCP segment of up to 64 KiB, longer than the MTU, with a
   * valid IP header (Linux fills Total Length and the header checksum for the whole): the stack
   * takes it as it is, as Linux's own GRO would hand it up. NEEDS_CSUM: the transport checksum field
   * holds only the pseudo-header sum (CHECKSUM_PARTIAL); the ones'-complement sum from csum_start to
   * the end, that field included, complemented, is the checksum (RFC 1071), stored at
   * csum_start + csum_offset. Completed here so the stack checks it as for any packet.
   */
  #fromVirtio(slab: Uint8Array, at: number, packet: Uint8Array): void {
    const flags = slab[at]!;
    const gsoType = slab[at + 1]!;
    if (gsoType !== 0) this.stats.gsoPacketsIn++;
    if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) return;
    const csumStart = LE ? slab[at + 6]! | (slab[at + 7]! << 8) : (slab[at + 6]! << 8) | slab[at + 7]!;
    const csumOffset = LE ? slab[at + 8]! | (slab[at + 9]! << 8) : (slab[at + 8]! << 8) | slab[at + 9]!;
    const field = csumStart + csumOffset;
    if (field + 2 > packet.length) return; // malformed: the stack will find the checksum bad
    const sum = sum16(packet, csumStart, packet.length - csumStart);
    const check = ~sum & 0xffff;
    packet[field] = check >>> 8;
    packet[field + 1] = check & 0xff;
    this.stats.checksumsCompleted++;
  }
}

/** Largest IP packet a super-packet may become: IPv4 Total Length (RFC 791); IPv6 Payload Length + 40. */
const GSO_MAX_V4 = 65535;
const GSO_MAX_V6 = 65535 + 40;

/**
 * The end (exclusive) of the run of packets from pending[i] that can cross as one TCP super-packet:
 * IPv4 without options or fragmentation, or IPv6 with TCP as the next header; all of one connection
 * with byte-identical headers but for the IP length, ID and checksum and the TCP sequence number,
 * flags and checksum; each with data, the sequence numbers back to back (RFC 9293 §3.4); ACK only,
 * but the last may add PSH; every payload the first's size (the gso_size) but the last, which may be
 * shorter; at most 64 KiB in all. Anything else (a SYN, a FIN, a pure ACK, another connection) ends
 * the run and is written alone: the order of packets on the wire never changes. Returns i + 1 when
 * nothing joins.
 */
function gsoRunEnd(pending: Uint8Array[], i: number): number {
  const first = pending[i]!;
  if (first.length < 40) return i + 1;
  const version = first[0]! >> 4;
  let ipHl: number;
  let max: number;
  if (version === 4) {
    ipHl = (first[0]! & 0x0f) * 4;
    // No IP options, TCP, no MF flag or fragment offset (DF may be set).
    if (ipHl !== 20 || first[9] !== 6 || ((first[6]! << 8) | first[7]!) & 0x3fff) return i + 1;
    max = GSO_MAX_V4;
  } else if (version === 6) {
    ipHl = 40;
    if (first[6] !== 6) return i + 1;
    max = GSO_MAX_V6;
  } else {
    return i + 1;
  }
  if (first.length < ipHl + 20) return i + 1;
  const hl = ipHl + (first[ipHl + 12]! >> 4) * 4;
  const mss = first.length - hl;
  if (mss <= 0 || first[ipHl + 13] !== TCP_ACK) return i + 1;
  let seq = (seqOf(first, ipHl) + mss) >>> 0;
  let total = first.length;
  let j = i + 1;
  for (; j < pending.length; j++) {
    const p = pending[j]!;
    const len = p.length - hl;
    if (len <= 0 || len > mss || total + len > max || p.length < hl) break;
    if (seqOf(p, ipHl) !== seq) break;
    const flags = p[ipHl + 13]!;
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) break;
    if (!sameHeaders(first, p, ipHl, hl, version === 4)) break;
    seq = (seq + len) >>> 0;
    total += len;
    // A short segment or PSH ends the run (TSO puts PSH on the last segment only).
    if (len < mss || flags !== TCP_ACK) {
      j++;
      break;
    }
  }
  return j;
}

function seqOf(p: Uint8Array, ipHl: number): number {
  return ((p[ipHl + 4]! << 24) | (p[ipHl + 5]! << 16) | (p[ipHl + 6]! << 8) | p[ipHl + 7]!) >>> 0;
}

/** Headers equal but for IP length/ID/checksum (IPv6: payload length) and TCP seq/flags/checksum. */
function sameHeaders(a: Uint8Array, b: Uint8Array, ipHl: number, hl: number, v4: boolean): boolean {
  for (let k = 0; k < hl; k++) {
    if (a[k] === b[k]) continue;
    if (v4 ? k === 2 || k === 3 || k === 4 || k === 5 || k === 10 || k === 11 : k === 4 || k === 5) continue;
    const t = k - ipHl;
    if ((t >= 4 && t <= 7) || t === 13 || t === 16 || t === 17) continue;
    return false;
  }
  return true;
}
