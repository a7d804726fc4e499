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
 * Reading without blocking the event loop. The fd is non-blocking. One `poll()` on it (and on an
 * eventfd used to wake the poll at close) runs at a time, as a koffi async call in libuv's threadpool;
 * when it says readable, the main thread drains the queue with non-blocking `read()`s until EAGAIN
 * (at most READ_BURST packets per turn, then a `setImmediate` so timers and other I/O get their
 * turn), handing each packet to the receiver, and only then polls again. So a burst of packets costs
 * one threadpool round trip, not one each, and the stack sees the burst in one turn (its deferred
 * work — ACKs, sends — runs after it, in one go).
 *
 * Offload (`offload: true`, `gso: true`): with IFF_VNET_HDR every read and write carries a virtio
 * header, and TUNSETOFFLOAD lets the kernel hand over TCP data as 64 KiB GSO super-packets with
 * partial checksums (completed here); with `gso`, the segments the stack sends in one turn are
 * joined back into super-packets the kernel takes whole. One system call per 64 KiB instead of per
 * 1500 bytes, in each direction, without any change to the stack (see `TunOptions`).
 *
 * The alternative not taken: an async `fs.read` on a blocking fd, one outstanding. Simpler, but one
 * threadpool round trip per packet (the burst is never seen as one), and it cannot be stopped: a
 * thread blocked in `read()` on a TUN fd does not wake when the fd is closed, so the pending request
 * keeps the event loop — and the process — alive until the next packet arrives. Here close() writes
 * the eventfd, which always ends the poll.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { internetChecksum, pseudoHeaderSum, sum16 } from '../wire/checksum.js';
import type { LinkEnd } from './link.js';

// linux/if_tun.h, linux/if.h
/** `_IOW('T', 202, int)`. */
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
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
/** `IFNAMSIZ`: interface names are at most 15 bytes plus the NUL. */
const IFNAMSIZ = 16;
/** `sizeof(struct ifreq)` on 64-bit Linux: the name, then a 24-byte union whose first member is `short ifr_flags`. */
const IFREQ_SIZE = 40;

// poll.h, sys/eventfd.h, errno.h (the generic Linux values, same on x86-64 and arm64)
const POLLIN = 0x001;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const EINTR = 4;
/** Consecutive failed polls (EINTR) tolerated before reading stops. */
const MAX_POLL_FAILURES = 1000;
const EAGAIN = 11;

/** C structs are in the host's byte order. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Packets drained per event-loop turn before yielding to other I/O, timers and the applications.
 * 32 (about 46 KB at MTU 1500) is well under the stack's first window (256 KiB): the application
 * reads between bursts, so a fast kernel sender does not fill our window during one burst (with 256
 * packets a turn and a 64 KiB window, Wireshark saw zero windows); throughput was the same within
 * noise (about 1.0–1.4 Gbit/s either way).
 */
const READ_BURST = 32;
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
/** Incoming packets are views into slabs of this size: no copy and no allocation per packet. */
const SLAB_SIZE = 1 << 20;

export type TunErrorCode =
  /** No CAP_NET_ADMIN (TUNSETIFF → EPERM/EACCES). */
  | 'permission'
  /** /dev/net/tun does not exist (no tun module, or a container without the device node). */
  | 'no-tun'
  /** The named TUN device exists and another process has it open (TUNSETIFF → EBUSY). */
  | 'busy'
  /** The name is taken by a device that is not a TUN device, or is not a valid name. */
  | 'bad-name'
  /** iproute2's `ip` is not installed. */
  | 'ip-missing'
  /** `ip` ran and failed (its stderr's first line is in the message). */
  | 'ip-failed'
  /** koffi (the FFI used for ioctl) could not be loaded, or this is not Linux. */
  | 'unsupported'
  /** Any other failure of open/ioctl. */
  | 'open-failed';

/** A failure to set up the TUN device: the message is one line, meant to be shown as it is. */
export class TunError extends Error {
  override readonly name = 'TunError';
  readonly code: TunErrorCode;
  constructor(code: TunErrorCode, message: string) {
    super(message);
    this.code = code;
    // Shown as it is, these errors are the user's to fix (run as root, install iproute2), not bugs:
    // the one line is the whole story, so no stack trace comes with it.
    this.stack = `${this.name}: ${message}`;
  }
}

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

export interface TunStats {
  /** Packets read from the device (kernel → us) and their bytes. */
  packetsIn: number;
  bytesIn: number;
  /** Packets written to the device (us → kernel) and their bytes. */
  packetsOut: number;
  bytesOut: number;
  /** Packets `send` could not write (EAGAIN, ENOBUFS, EIO, closed...). */
  drops: number;
  /** Polls that returned readable: each is one round trip through libuv's threadpool. */
  polls: number;
  /** Event-loop turns that read packets (a poll's, or a continued drain's): packetsIn / turns is the mean burst. */
  turns: number;
  /** Reads that failed with something other than EAGAIN (reading stops at the first). */
  readErrors: number;
  /** With offload: packets read that were GSO super-packets (larger than the MTU, cut by us never). */
  gsoPacketsIn: number;
  /** With offload: partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM) this link completed. */
  checksumsCompleted: number;
  /** With gso: super-packets written, and the segments of the stack's they carried. */
  gsoPacketsOut: number;
  gsoSegmentsOut: number;
}

// ------------------------------------------------------------------------------------------------
// libc through koffi, loaded on first open so that importing synack never loads a native module.

interface Libc {
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl whose third argument is an integer value, not a pointer (TUNSETOFFLOAD). */
  ioctlValue(fd: number, request: number, value: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  eventfd(initval: number, flags: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number, done: (err: unknown, ready: number) => void): void;
  errno(): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc !== undefined) return libc;
  if (process.platform !== 'linux') throw new TunError('unsupported', `synack: TUN devices need Linux (this is ${process.platform})`);
  type Koffi = typeof import('koffi');
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    throw new TunError('unsupported', `synack: cannot load koffi (the FFI TUN needs): ${firstLine(e)}`);
  }
  let lib: ReturnType<Koffi['load']>;
  try {
    lib = koffi.load('libc.so.6');
  } catch (e) {
    throw new TunError('unsupported', `synack: cannot load the C library (glibc's libc.so.6) for TUN: ${firstLine(e)}`);
  }
  // ioctl is variadic in C: its third argument is passed as a typed extra argument.
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const read = lib.func('long read(int fd, void *buf, unsigned long count)');
  const eventfd = lib.func('int eventfd(unsigned int initval, int flags)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  libc = {
    ioctl: (fd, request, arg) => ioctl(fd, request, 'void *', arg) as number,
    ioctlValue: (fd, request, value) => ioctl(fd, request, 'unsigned long', value) as number,
    read: (fd, buf, count) => read(fd, buf, count) as number,
    eventfd: (initval, flags) => eventfd(initval, flags) as number,
    poll: (fds, nfds, timeoutMs, done) => {
      poll.async(fds, nfds, timeoutMs, done);
    },
    errno: () => koffi.errno(),
  };
  return libc;
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0] ?? text;
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Run iproute2's `ip` with the given arguments; failures become one-line TunErrors. */
function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000, encoding: 'utf8' });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new TunError('ip-missing', 'synack: TUN setup needs iproute2\'s `ip` command, which is not installed');
    }
    const stderr = typeof e === 'object' && e !== null && 'stderr' in e ? String(e.stderr) : '';
    const line = stderr.split('\n').find((l) => l.trim() !== '') ?? firstLine(e);
    throw new TunError('ip-failed', `synack: \`ip ${args.join(' ')}\` failed: ${line.trim()}`);
  }
}

// ------------------------------------------------------------------------------------------------

export class TunLink implements LinkEnd {
  /** The device's name as the kernel knows it. */
  readonly name: string;
  readonly mtu: number;
  readonly stats: TunStats = {
    packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, drops: 0, polls: 0, turns: 0, readErrors: 0,
    gsoPacketsIn: 0, checksumsCompleted: 0, gsoPacketsOut: 0, gsoSegmentsOut: 0,
  };
  /** Receive offload (GSO super-packets, partial checksums) is on: asked for and granted. */
  readonly offload: boolean;
  /** Why offload was asked for and is off (the kernel refused), or undefined. */
  readonly offloadRefused: string | undefined;
  /** Send-side GSO is on (asked for, and offload granted). */
  readonly gso: boolean;
  /** The read error that stopped reading (e.g. the device was deleted under us), if any. */
  readError: string | undefined;

  readonly #libc: Libc;
  #fd: number;
  #wakeFd: number;
  #receiver: ((packet: Uint8Array) => void) | undefined;
  #closed = false;
  #polling = false;
  #drainScheduled = false;
  /** A burst of reads is under way (receivePending must not start another inside it). */
  #reading = false;
  #pollFailures = 0;
  /** `struct pollfd[2]`: { int fd; short events; short revents } for the device and the eventfd. */
  readonly #pollfds = new Uint8Array(16);
  readonly #pollView = new DataView(this.#pollfds.buffer);
  #slab = new Uint8Array(SLAB_SIZE);
  #slabUsed = 0;
  /** Every read and write carries a virtio header (IFF_VNET_HDR). */
  readonly #vnet: boolean;
  readonly #readSize: number;
  /** With #vnet: a zeroed virtio header (no offload asked of the kernel) and room for the packet behind it. */
  #writeBuf: Uint8Array | undefined;
  /** With gso: packets sent this turn, written (joined where possible) at the end of it. */
  #pending: Uint8Array[] = [];
  #flushScheduled = false;

  private constructor(lib: Libc, fd: number, wakeFd: number, name: string, mtu: number, vnet: boolean, offload: boolean, refused: string | undefined, gso: boolean) {
    this.#libc = lib;
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.mtu = mtu;
    this.#vnet = vnet;
    this.#readSize = vnet ? READ_SIZE_VNET : READ_SIZE;
    this.offload = offload;
    this.offloadRefused = refused;
    this.gso = gso;
    this.#pollView.setInt32(0, fd, LE);
    this.#pollView.setInt16(4, POLLIN, LE);
    this.#pollView.setInt32(8, wakeFd, LE);
    this.#pollView.setInt16(12, POLLIN, LE);
  }

  /**
   * Open (or create) a TUN device and configure the kernel's side of it. Throws a `TunError` with a
   * one-line message when that cannot be done.
   */
  static open(opts: TunOptions = {}): TunLink {
    const mtu = opts.mtu ?? 1500;
    // RFC 791: every IPv4 host must take 68-byte packets; 65535 is the largest Total Length.
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new TunError('open-failed', `synack: bad TUN MTU ${mtu}`);
    const wanted = opts.name ?? '';
    if (Buffer.byteLength(wanted) >= IFNAMSIZ || /[\s/:]/.test(wanted)) {
      throw new TunError('bad-name', `synack: bad TUN device name "${wanted}" (at most 15 bytes, no spaces, '/' or ':')`);
    }
    const lib = loadLibc();

    let fd: number;
    try {
      fd = openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
        throw new TunError('no-tun', 'synack: /dev/net/tun is missing (load the tun module, or give the container the device)');
      }
      if (code === 'EACCES' || code === 'EPERM') {
        throw new TunError('permission', `synack: TUN needs root or CAP_NET_ADMIN: cannot open /dev/net/tun (${code})`);
      }
      throw new TunError('open-failed', `synack: cannot open /dev/net/tun: ${firstLine(e)}`);
    }

    let wakeFd = -1;
    try {
      const setIff = (flags: number): { ok: true; name: string } | { ok: false; errno: number } => {
        const ifr = new Uint8Array(IFREQ_SIZE);
        ifr.set(Buffer.from(wanted));
        new DataView(ifr.buffer).setInt16(IFNAMSIZ, flags, LE);
        if (lib.ioctl(fd, TUNSETIFF, ifr) < 0) return { ok: false, errno: lib.errno() };
        const end = ifr.indexOf(0);
        return { ok: true, name: Buffer.from(ifr.subarray(0, end < 0 ? IFNAMSIZ : end)).toString() };
      };
      let vnet = opts.offload === true || opts.gso === true;
      let offload = false;
      let refused: string | undefined;
      let set = setIff(IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0));
      if (!set.ok && vnet && set.errno === 22) {
        // EINVAL: a kernel without IFF_VNET_HDR for TUN (or a persistent device made without it). A
        // plain device still works; try that (a name taken by another kind of device fails again).
        refused = 'the kernel refused IFF_VNET_HDR (EINVAL)';
        vnet = false;
        set = setIff(IFF_TUN | IFF_NO_PI);
      }
      if (!set.ok) throw ioctlError(set.errno, wanted);
      const name = set.name;
      if (vnet) {
        // TSO4/TSO6 are only accepted together with CSUM (a super-packet's checksum is always partial).
        if (lib.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) === 0) offload = true;
        else refused = `the kernel refused TUNSETOFFLOAD (errno ${lib.errno()})`;
        // Without it the virtio header stays (IFF_VNET_HDR cannot be undone on this fd): always zero.
      }

      wakeFd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wakeFd < 0) throw new TunError('open-failed', `synack: eventfd failed (errno ${lib.errno()})`);

      ip(['link', 'set', 'dev', name, 'mtu', String(mtu), 'up']);
      for (const cidr of opts.kernelAddresses ?? []) {
        // nodad: RFC 4862 §5.4 Duplicate Address Detection would hold the address "tentative" (unusable)
        // for a second or more; on a point-to-point device of our own no one else can have it.
        ip(cidr.includes(':') ? ['-6', 'addr', 'add', cidr, 'dev', name, 'nodad'] : ['addr', 'add', cidr, 'dev', name]);
      }
      const link = new TunLink(lib, fd, wakeFd, name, mtu, vnet, offload, refused, offload && opts.gso === true);
      link.#poll();
      return link;
    } catch (e) {
      // A device we created goes away with its last fd; one that was persistent stays as it was.
      closeSync(fd);
      if (wakeFd >= 0) closeSync(wakeFd);
      throw e;
    }
  }

  onPacket(fn: (packet: Uint8Array) => void): void {
    this.#receiver = fn;
  }

  /** Write one IP packet to the kernel. Never throws: a packet that cannot be written is a drop. */
  send(packet: Uint8Array): void {
    if (this.#closed) {
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
    try {
      // A TUN write takes the whole packet or nothing (EAGAIN, ENOBUFS when the kernel is out of
      // buffers, EIO while the device is down, EINVAL for a malformed packet).
      if (this.#vnet) {
        // A zeroed virtio header (no GSO, checksum complete: the stack always fills it), then the
        // packet: one write, as the kernel wants it (a copy is cheaper than a writev's arrays).
        const need = VNET_HDR_LEN + packet.length;
        if (this.#writeBuf === undefined || this.#writeBuf.length < need) this.#writeBuf = new Uint8Array(Math.max(need, VNET_HDR_LEN + 1500));
        // The buffer is shared with #writeGso, which fills the header in: zero it again.
        this.#writeBuf.fill(0, 0, VNET_HDR_LEN);
        this.#writeBuf.set(packet, VNET_HDR_LEN);
        writeSync(this.#fd, this.#writeBuf, 0, need);
      } else {
        writeSync(this.#fd, packet);
      }
      this.stats.packetsOut++;
      this.stats.bytesOut += packet.length;
    } catch {
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
      if (this.#closed) {
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
      out[10] = 0;
      out[11] = 0;
      const c = internetChecksum(out, 0, ipHl);
      out[10] = c >>> 8;
      out[11] = c & 0xff;
    } else {
      out[4] = (total - 40) >>> 8;
      out[5] = (total - 40) & 0xff;
    }
    const src = v4 ? out.subarray(12, 16) : out.subarray(8, 24);
    const dst = v4 ? out.subarray(16, 20) : out.subarray(24, 40);
    const pseudo = pseudoHeaderSum(src, dst, 6, total - ipHl);
    out[ipHl + 16] = pseudo >>> 8;
    out[ipHl + 17] = pseudo & 0xff;
    try {
      writeSync(this.#fd, buf, 0, need);
      this.stats.packetsOut++;
      this.stats.bytesOut += total;
      this.stats.gsoPacketsOut++;
      this.stats.gsoSegmentsOut += j - i;
    } catch {
      this.stats.drops += j - i;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop reading and close the device (a device we created disappears). Idempotent. */
  close(): void {
    if (this.#closed) return;
    // What this turn sent still goes out (gso: it waits for the end of the turn).
    if (this.#pending.length > 0) this.#flush();
    this.#closed = true;
    closeSync(this.#fd);
    this.#fd = -1;
    if (this.#polling) {
      // The poll in the threadpool does not notice the closed fd; the eventfd, which stays open
      // until the poll returns (see #poll), ends it at once.
      const one = new Uint8Array(8);
      one[0] = 1;
      writeSync(this.#wakeFd, one);
    } else {
      closeSync(this.#wakeFd);
      this.#wakeFd = -1;
    }
  }

  #poll(): void {
    this.#polling = true;
    this.#libc.poll(this.#pollfds, 2, -1, (err, ready) => {
      this.#polling = false;
      if (this.#closed) {
        closeSync(this.#wakeFd);
        this.#wakeFd = -1;
        return;
      }
      if (err !== undefined && err !== null) {
        this.#fail(`poll: ${firstLine(err)}`);
        return;
      }
      if (ready < 0) {
        // Only EINTR is expected (a signal landing on the pool thread); errno is that thread's, not
        // ours, so bound the retries instead of trusting it.
        if (++this.#pollFailures > MAX_POLL_FAILURES) this.#fail('poll keeps failing');
        else this.#poll();
        return;
      }
      this.#pollFailures = 0;
      this.stats.polls++;
      this.#drain();
    });
  }

  /** Read what the device has queued, up to a burst; then poll again, or come back next turn. */
  #drain(): void {
    // A read error (met by receivePending while this poll was out) stopped reading for good.
    if (this.readError !== undefined) return;
    this.stats.turns++;
    const outcome = this.#readBurst();
    if (outcome === 'empty') this.#poll();
    else if (outcome === 'more' && !this.#drainScheduled) {
      this.#drainScheduled = true;
      setImmediate(() => {
        this.#drainScheduled = false;
        this.#drain();
      });
    }
  }

  /**
   * Hands the receiver what the device has queued right now, without waiting for the poll (see
   * `LinkEnd.receivePending`): the stack calls this before its timers run, so that when the process
   * was held up (another process on the CPU, a pause for garbage collection), an ACK already in the
   * queue is read before a retransmission timer decides the data it acknowledges was lost.
   */
  receivePending(): void {
    if (this.#closed || this.#reading || this.readError !== undefined) return;
    this.#readBurst();
  }

  /** Up to READ_BURST non-blocking reads: 'empty' at EAGAIN, 'more' if the burst ran out first. */
  #readBurst(): 'empty' | 'more' | 'stopped' {
    this.#reading = true;
    try {
      for (let n = 0; n < READ_BURST; n++) {
        if (this.#closed) return 'stopped';
        const readSize = this.#readSize;
        if (SLAB_SIZE - this.#slabUsed < readSize) {
          // Packets handed out keep their slab alive for as long as someone holds them; never reused.
          this.#slab = new Uint8Array(SLAB_SIZE);
          this.#slabUsed = 0;
        }
        const at = this.#slabUsed;
        const len = this.#libc.read(this.#fd, this.#slab.subarray(at, at + readSize), readSize);
        if (len < 0) {
          const errno = this.#libc.errno();
          if (errno === EAGAIN) return 'empty';
          if (errno === EINTR) continue;
          this.#fail(`read failed (errno ${errno})`);
          return 'stopped';
        }
        if (len === 0) continue;
        // Keep the next packet 8-byte aligned (DataView reads of headers do not care; it is cheap).
        this.#slabUsed = at + ((len + 7) & ~7);
        let packet: Uint8Array;
        if (this.#vnet) {
          if (len <= VNET_HDR_LEN) continue;
          packet = this.#slab.subarray(at + VNET_HDR_LEN, at + len);
          this.#fromVirtio(this.#slab, at, packet);
        } else {
          packet = this.#slab.subarray(at, at + len);
        }
        this.stats.packetsIn++;
        this.stats.bytesIn += packet.length;
        const fn = this.#receiver;
        if (fn !== undefined) {
          try {
            fn(packet);
          } catch {
            // The receiver's failure is its own (the stack never throws); reading goes on.
          }
        }
      }
      return this.#closed ? 'stopped' : 'more';
    } finally {
      this.#reading = false;
    }
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

  /** Reading cannot go on (e.g. the device was deleted under us): stop, and say why. */
  #fail(why: string): void {
    this.stats.readErrors++;
    this.readError = why;
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

function ioctlError(errno: number, wanted: string): TunError {
  const dev = wanted === '' ? 'a TUN device' : `TUN device ${wanted}`;
  switch (errno) {
    case 1: // EPERM
    case 13: // EACCES
      return new TunError('permission', `synack: TUN needs root or CAP_NET_ADMIN: cannot create ${dev} (EPERM)`);
    case 16: // EBUSY
      return new TunError('busy', `synack: ${dev} is busy: another process has it open`);
    case 22: // EINVAL
      return new TunError('bad-name', `synack: cannot use ${dev}: the name belongs to a device that is not a TUN device`);
    default:
      return new TunError('open-failed', `synack: cannot create ${dev}: TUNSETIFF failed (errno ${errno})`);
  }
}
