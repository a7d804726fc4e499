/**
 * What a Linux TUN device (IP packets, src/link/tun.ts) and a TAP device (Ethernet frames,
 * src/link/tap.ts) share: both are a file descriptor on /dev/net/tun, made one or the other by
 * `ioctl(fd, TUNSETIFF, struct ifreq)` (linux/if_tun.h) through koffi, which Node has no binding for;
 * the kernel side (MTU, up, addresses, namespace) is set with iproute2's `ip`, as an administrator
 * would; one-line `TunError`s; and the read loop. Node only, Linux only; the core never imports this
 * file.
 *
 * Reading without blocking the event loop. The fd is non-blocking. One `poll()` on it (and on an
 * eventfd used to wake the poll at close) runs at a time, as a koffi async call in libuv's threadpool;
 * when it says readable, the main thread drains the queue with non-blocking `read()`s until EAGAIN
 * (at most READ_BURST packets per turn, then a `setImmediate` so timers and other I/O get their
 * turn), handing each packet to the receiver, and only then polls again. So a burst of packets costs
 * one threadpool round trip, not one each, and the stack sees the burst in one turn (its deferred
 * work — ACKs, sends — runs after it, in one go).
 *
 * The alternative not taken: an async `fs.read` on a blocking fd, one outstanding. Simpler, but one
 * threadpool round trip per packet (the burst is never seen as one), and it cannot be stopped: a
 * thread blocked in `read()` on a TUN fd does not wake when the fd is closed, so the pending request
 * keeps the event loop — and the process — alive until the next packet arrives. Here close() writes
 * the eventfd, which always ends the poll.
 *
 * Offload (virtio-net headers), for both kinds. With IFF_VNET_HDR every read and write starts with a
 * `struct virtio_net_hdr`; TUNSETOFFLOAD then lets the kernel hand over TCP data as GSO super-packets
 * of up to 64 KiB with partial checksums (completed here, `#fromVirtio`), and with `gso` the segments
 * the stack sends in one turn are joined back into super-packets the kernel takes whole (`gsoRunEnd`,
 * `#writeGso`). A TUN device carries IP packets, a TAP device Ethernet frames: the virtio header is
 * the same, its offsets (csum_start, hdr_len) count from the start of what follows it — for TAP the
 * Ethernet header (`l2`, 14 bytes) comes first.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pseudoHeaderSum, sum16 } from '../wire/checksum.js';
import { setIpv4HeaderChecksum } from '../wire/ipv4.js';

/** Which kind of device, as messages name it. */
export type TunTapKind = 'TUN' | 'TAP';

// linux/if_tun.h, linux/if.h
/** `_IOW('T', 202, int)`. */
export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
/** `IFNAMSIZ`: interface names are at most 15 bytes plus the NUL. */
export const IFNAMSIZ = 16;
/** `sizeof(struct ifreq)` on 64-bit Linux: the name, then a 24-byte union whose first member is `short ifr_flags`. */
export const IFREQ_SIZE = 40;
/** Every read and write starts with a `struct virtio_net_hdr` (linux/virtio_net.h): offload metadata. */
export const IFF_VNET_HDR = 0x4000;
/** `_IOW('T', 208, unsigned int)`: which offloads this side of the device can take (TUN_F_*). */
const TUNSETOFFLOAD = 0x400454d0;
/** We complete partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
const TUN_F_CSUM = 0x01;
/** We take TCP segments larger than the MTU (GSO super-packets), IPv4 and IPv6. */
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
/**
 * `sizeof(struct virtio_net_hdr)`, the default (TUNSETVNETHDRSZ not used): flags u8, gso_type u8,
 * hdr_len, gso_size, csum_start, csum_offset u16, in the host's byte order (a TUN/TAP device is
 * native-endian unless TUNSETVNETLE/BE says otherwise).
 */
export const VNET_HDR_LEN = 10;
/** virtio_net_hdr.flags: the checksum from csum_start to the end is still to be computed and stored at csum_start + csum_offset. */
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr.gso_type: a TCP super-packet for the kernel to treat as segments of gso_size. */
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** TCP flags (RFC 9293 §3.1) a coalesced run may carry: ACK on every segment, PSH on the last. */
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
/** Ethernet II header (no VLAN tag) in front of a TAP frame's IP packet, and its EtherTypes for IP. */
export const ETHERNET_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
/**
 * Largest IP packet a GSO super-packet is: an IPv6 one is a 40-byte header plus up to 65535 bytes of
 * payload (RFC 8200 Payload Length); an IPv4 one at most 65535 in all (RFC 791 Total Length).
 */
export const GSO_MAX_IP = 65535 + 40;

// poll.h, sys/eventfd.h, errno.h (the generic Linux values, same on x86-64 and arm64)
const POLLIN = 0x001;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const EINTR = 4;
/** Consecutive failed polls (EINTR) tolerated before reading stops. */
const MAX_POLL_FAILURES = 1000;
const EAGAIN = 11;

/** C structs are in the host's byte order. */
export const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Packets drained per event-loop turn before yielding to other I/O, timers and the applications.
 * 32 (about 46 KB at MTU 1500) is well under the stack's first window (256 KiB): the application
 * reads between bursts, so a fast kernel sender does not fill our window during one burst (with 256
 * packets a turn and a 64 KiB window, Wireshark saw zero windows); throughput was the same within
 * noise (about 1.0–1.4 Gbit/s either way).
 */
const READ_BURST = 32;
/** Incoming packets are views into slabs of this size: no copy and no allocation per packet. */
const SLAB_SIZE = 1 << 20;

export type TunErrorCode =
  /** No CAP_NET_ADMIN (TUNSETIFF → EPERM/EACCES). */
  | 'permission'
  /** /dev/net/tun does not exist (no tun module, or a container without the device node). */
  | 'no-tun'
  /** The named device exists and another process has it open (TUNSETIFF → EBUSY). */
  | 'busy'
  /** The name is taken by a device of another kind, or is not a valid name. */
  | 'bad-name'
  /** iproute2's `ip` is not installed. */
  | 'ip-missing'
  /** `ip` ran and failed (its stderr's first line is in the message). */
  | 'ip-failed'
  /** The network namespace named for the kernel side (TapOptions.netns) does not exist. */
  | 'no-netns'
  /** koffi (the FFI used for ioctl) could not be loaded, or this is not Linux. */
  | 'unsupported'
  /** Any other failure of open/ioctl. */
  | 'open-failed';

/** A failure to set up a TUN or TAP device: the message is one line, meant to be shown as it is. */
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

/** Counters every TUN/TAP link keeps. */
export interface TunTapStats {
  /** Packets (TAP: frames) read from the device (kernel → us) and their bytes. */
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

/** Every counter at zero. */
export function newTunTapStats(): TunTapStats {
  return {
    packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, drops: 0, polls: 0, turns: 0, readErrors: 0,
    gsoPacketsIn: 0, checksumsCompleted: 0, gsoPacketsOut: 0, gsoSegmentsOut: 0,
  };
}

// ------------------------------------------------------------------------------------------------
// libc through koffi, loaded on first open so that importing synack never loads a native module.

export interface Libc {
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl whose third argument is an integer value, not a pointer (TUNSETOFFLOAD). */
  ioctlValue(fd: number, request: number, value: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  eventfd(initval: number, flags: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number, done: (err: unknown, ready: number) => void): void;
  errno(): number;
}

let libc: Libc | undefined;

export function loadLibc(kind: TunTapKind): Libc {
  if (libc !== undefined) return libc;
  if (process.platform !== 'linux') throw new TunError('unsupported', `synack: ${kind} devices need Linux (this is ${process.platform})`);
  type Koffi = typeof import('koffi');
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (e) {
    throw new TunError('unsupported', `synack: cannot load koffi (the FFI ${kind} needs): ${firstLine(e)}`);
  }
  let lib: ReturnType<Koffi['load']>;
  try {
    lib = koffi.load('libc.so.6');
  } catch (e) {
    throw new TunError('unsupported', `synack: cannot load the C library (glibc's libc.so.6) for ${kind}: ${firstLine(e)}`);
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

export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0] ?? text;
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Run iproute2's `ip` with the given arguments; failures become one-line TunErrors. */
export function ip(kind: TunTapKind, args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000, encoding: 'utf8' });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new TunError('ip-missing', `synack: ${kind} setup needs iproute2's \`ip\` command, which is not installed`);
    }
    const stderr = typeof e === 'object' && e !== null && 'stderr' in e ? String(e.stderr) : '';
    const line = stderr.split('\n').find((l) => l.trim() !== '') ?? firstLine(e);
    throw new TunError('ip-failed', `synack: \`ip ${args.join(' ')}\` failed: ${line.trim()}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Opening

/** Checks the options every device takes: MTU and name. Throws a TunError. */
export function checkDeviceOptions(kind: TunTapKind, mtu: number, wanted: string): void {
  // RFC 791: every IPv4 host must take 68-byte packets; 65535 is the largest Total Length.
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new TunError('open-failed', `synack: bad ${kind} MTU ${mtu}`);
  if (Buffer.byteLength(wanted) >= IFNAMSIZ || /[\s/:]/.test(wanted)) {
    throw new TunError('bad-name', `synack: bad ${kind} device name "${wanted}" (at most 15 bytes, no spaces, '/' or ':')`);
  }
}

/** `open("/dev/net/tun")`, non-blocking; failures become one-line TunErrors. */
export function openTunFile(kind: TunTapKind): number {
  try {
    return openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      throw new TunError('no-tun', 'synack: /dev/net/tun is missing (load the tun module, or give the container the device)');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new TunError('permission', `synack: ${kind} needs root or CAP_NET_ADMIN: cannot open /dev/net/tun (${code})`);
    }
    throw new TunError('open-failed', `synack: cannot open /dev/net/tun: ${firstLine(e)}`);
  }
}

/** TUNSETIFF with `flags` for the device named `wanted` ('' : the kernel picks): its name, or the errno. */
export function setIff(lib: Libc, fd: number, wanted: string, flags: number): { ok: true; name: string } | { ok: false; errno: number } {
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(Buffer.from(wanted));
  new DataView(ifr.buffer).setInt16(IFNAMSIZ, flags, LE);
  if (lib.ioctl(fd, TUNSETIFF, ifr) < 0) return { ok: false, errno: lib.errno() };
  const end = ifr.indexOf(0);
  return { ok: true, name: Buffer.from(ifr.subarray(0, end < 0 ? IFNAMSIZ : end)).toString() };
}

/** What opening with offload asked for got (see `setIffOffload`). */
export interface Offload {
  /** Every read and write carries a virtio header (IFF_VNET_HDR was granted). */
  vnet: boolean;
  /** TUNSETOFFLOAD granted: GSO super-packets and partial checksums come in. */
  offload: boolean;
  /** Why offload was asked for and is off, or undefined. */
  refused: string | undefined;
}

/**
 * TUNSETIFF with `flags`, plus — when `want` — IFF_VNET_HDR and then TUNSETOFFLOAD with
 * TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6. If the kernel refuses IFF_VNET_HDR (EINVAL: too old, or a
 * persistent device made without it) the device is opened plain, and said so in `refused`; a name
 * taken by a device of another kind fails again, as a TunError. Throws a TunError when the device
 * cannot be had at all.
 */
export function setIffOffload(kind: TunTapKind, lib: Libc, fd: number, wanted: string, flags: number, want: boolean): { name: string } & Offload {
  let vnet = want;
  let refused: string | undefined;
  let set = setIff(lib, fd, wanted, flags | (vnet ? IFF_VNET_HDR : 0));
  if (!set.ok && vnet && set.errno === 22) {
    refused = 'the kernel refused IFF_VNET_HDR (EINVAL)';
    vnet = false;
    set = setIff(lib, fd, wanted, flags);
  }
  if (!set.ok) throw ioctlError(kind, set.errno, wanted);
  let offload = false;
  if (vnet) {
    // TSO4/TSO6 are only accepted together with CSUM (a super-packet's checksum is always partial).
    if (lib.ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) === 0) offload = true;
    else refused = `the kernel refused TUNSETOFFLOAD (errno ${lib.errno()})`;
    // Without it the virtio header stays (IFF_VNET_HDR cannot be undone on this fd): always zero.
  }
  return { name: set.name, vnet, offload, refused };
}

export function ioctlError(kind: TunTapKind, errno: number, wanted: string): TunError {
  const dev = wanted === '' ? `a ${kind} device` : `${kind} device ${wanted}`;
  switch (errno) {
    case 1: // EPERM
    case 13: // EACCES
      return new TunError('permission', `synack: ${kind} needs root or CAP_NET_ADMIN: cannot create ${dev} (EPERM)`);
    case 16: // EBUSY
      return new TunError('busy', `synack: ${dev} is busy: another process has it open`);
    case 22: // EINVAL
      return new TunError('bad-name', `synack: cannot use ${dev}: the name belongs to a device that is not a ${kind} device`);
    default:
      return new TunError('open-failed', `synack: cannot create ${dev}: TUNSETIFF failed (errno ${errno})`);
  }
}

/** The eventfd that ends a poll at close. */
export function wakeFd(lib: Libc): number {
  const fd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new TunError('open-failed', `synack: eventfd failed (errno ${lib.errno()})`);
  return fd;
}

/**
 * Configures the kernel's side of device `name`: moved into namespace `netns` first if given (the
 * fd stays ours and keeps working; the device is down after a move, so this comes before the rest),
 * then MTU and up, then the addresses — each `ip` run inside that namespace (`ip -n NS`).
 */
export function configureKernelSide(kind: TunTapKind, name: string, mtu: number, addresses: readonly string[], netns?: string): void {
  const inNs: string[] = [];
  if (netns !== undefined) {
    // `ip netns add` makes /run/netns/NAME (or /var/run/netns/NAME where /var/run is not a link).
    if (netns === '' || /[\s/]/.test(netns) || !(existsSync(`/run/netns/${netns}`) || existsSync(`/var/run/netns/${netns}`))) {
      throw new TunError('no-netns', `synack: network namespace "${netns}" does not exist (make it with \`ip netns add ${netns}\`)`);
    }
    ip(kind, ['link', 'set', 'dev', name, 'netns', netns]);
    inNs.push('-n', netns);
  }
  ip(kind, [...inNs, 'link', 'set', 'dev', name, 'mtu', String(mtu), 'up']);
  for (const cidr of addresses) {
    // nodad: RFC 4862 §5.4 Duplicate Address Detection would hold the address "tentative" (unusable)
    // for a second or more; on a device of our own no one else can have it (synack's addresses are
    // its own, never the kernel side's).
    ip(kind, cidr.includes(':') ? [...inNs, '-6', 'addr', 'add', cidr, 'dev', name, 'nodad'] : [...inNs, 'addr', 'add', cidr, 'dev', name]);
  }
}

// ------------------------------------------------------------------------------------------------
// The device: reading and closing

/** How a device's reads and writes are framed: `setIffOffload`'s answer, plus send-side GSO and the header in front of IP. */
export interface DeviceOffload extends Offload {
  /** Send-side GSO is on (asked for, and offload granted). */
  gso: boolean;
  /** Bytes in front of the IP header in a packet: 0 (TUN), ETHERNET_HLEN (TAP). */
  l2: number;
}

/**
 * An open TUN or TAP fd, its read loop, and its virtio-net offloads. Subclasses send through
 * `sendOut` and may transform what is read further (`unwrap`). Start reading with `startReading()`
 * once constructed.
 */
export abstract class TunTapDevice<S extends TunTapStats> {
  /** The device's name as the kernel knows it. */
  readonly name: string;
  readonly mtu: number;
  readonly stats: S;
  /** The read error that stopped reading (e.g. the device was deleted under us), if any. */
  readError: string | undefined;
  /** Receive offload (GSO super-packets, partial checksums) is on: asked for and granted. */
  readonly offload: boolean;
  /** Why offload was asked for and is off (the kernel refused), or undefined. */
  readonly offloadRefused: string | undefined;
  /** Send-side GSO is on (asked for, and offload granted). */
  readonly gso: boolean;

  protected readonly libc: Libc;
  /** The device fd; -1 once closed. */
  protected fd: number;
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
  readonly #readSize: number;
  /** Every read and write carries a virtio header (IFF_VNET_HDR). */
  readonly #vnet: boolean;
  readonly #l2: number;
  /** With #vnet: a virtio header and room for the packet behind it. */
  #writeBuf: Uint8Array | undefined;
  /** With gso: packets sent this turn, written (joined where possible) at the end of it. */
  #pending: Uint8Array[] = [];
  #flushScheduled = false;

  /**
   * `readSize`: the largest packet a read returns, without the virtio header (added here when
   * `offload.vnet`).
   */
  protected constructor(lib: Libc, fd: number, wakeFd: number, name: string, mtu: number, readSize: number, stats: S, offload: DeviceOffload) {
    this.libc = lib;
    this.fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.mtu = mtu;
    this.#readSize = readSize + (offload.vnet ? VNET_HDR_LEN : 0);
    this.stats = stats;
    this.#vnet = offload.vnet;
    this.#l2 = offload.l2;
    this.offload = offload.offload;
    this.offloadRefused = offload.refused;
    this.gso = offload.gso;
    this.#pollView.setInt32(0, fd, LE);
    this.#pollView.setInt16(4, POLLIN, LE);
    this.#pollView.setInt32(8, wakeFd, LE);
    this.#pollView.setInt16(12, POLLIN, LE);
  }

  protected startReading(): void {
    this.#poll();
  }

  /** The one receiver of what is read (a later call replaces it). */
  protected setReceiver(fn: (packet: Uint8Array) => void): void {
    this.#receiver = fn;
  }

  /**
   * The packet handed up for the `len` bytes read at `slab[at]`, or undefined to skip them: the
   * bytes as they are (a view into the slab, no copy), or with the virtio header, what is behind it,
   * its partial checksum completed (`#fromVirtio`).
   */
  protected unwrap(slab: Uint8Array, at: number, len: number): Uint8Array | undefined {
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
   * csum_start + csum_offset (both counted from the start of the packet — for TAP, of the frame).
   * Completed here so the stack checks it as for any packet.
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

  /** Send one packet (TAP: frame). Never throws: one that cannot be written is a drop. */
  protected sendOut(packet: Uint8Array): void {
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
    let ok: boolean;
    if (this.#vnet) {
      // A zeroed virtio header (no GSO, checksum complete: the stack always fills it), then the
      // packet: one write, as the kernel wants it (a copy is cheaper than a writev's arrays).
      const need = VNET_HDR_LEN + packet.length;
      if (this.#writeBuf === undefined || this.#writeBuf.length < need) this.#writeBuf = new Uint8Array(Math.max(need, VNET_HDR_LEN + this.#l2 + 1500));
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
      if (this.#closed) {
        this.stats.drops += pending.length - i;
        return;
      }
      const j = gsoRunEnd(pending, i, this.#l2);
      if (j - i === 1) this.#write(pending[i]!);
      else this.#writeGso(pending, i, j);
      i = j;
    }
  };

  /**
   * One super-packet for pending[i..j) (see `gsoRunEnd`): the first packet's headers (TAP: its
   * Ethernet header too), every payload, the IP length for the whole, the last segment's flags (PSH
   * if it had it); the TCP checksum left partial — the field holds the pseudo-header sum, as Linux's
   * own TSO path leaves it (CHECKSUM_PARTIAL) — with a virtio header: NEEDS_CSUM from the TCP
   * header, GSO TCPV4/TCPV6 with gso_size = the first segment's payload, offsets from the start of
   * the packet (TAP: of the frame).
   */
  #writeGso(pending: Uint8Array[], i: number, j: number): void {
    const l2 = this.#l2;
    const first = pending[i]!;
    const v4 = first[l2]! >> 4 === 4;
    const ipHl = v4 ? (first[l2]! & 0x0f) * 4 : 40;
    const tcpAt = l2 + ipHl;
    const hl = tcpAt + (first[tcpAt + 12]! >> 4) * 4;
    let total = hl;
    for (let k = i; k < j; k++) total += pending[k]!.length - hl;
    const need = VNET_HDR_LEN + total;
    if (this.#writeBuf === undefined || this.#writeBuf.length < need) this.#writeBuf = new Uint8Array(Math.max(need, VNET_HDR_LEN + l2 + GSO_MAX_IP));
    const buf = this.#writeBuf;
    const v = new DataView(buf.buffer, buf.byteOffset, VNET_HDR_LEN);
    v.setUint8(0, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    v.setUint8(1, v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6);
    v.setUint16(2, hl, LE);
    v.setUint16(4, first.length - hl, LE);
    v.setUint16(6, tcpAt, LE);
    v.setUint16(8, 16, LE);
    const out = buf.subarray(VNET_HDR_LEN, need);
    out.set(first.subarray(0, hl), 0);
    let at = hl;
    for (let k = i; k < j; k++) {
      const p = pending[k]!;
      out.set(p.subarray(hl), at);
      at += p.length - hl;
    }
    out[tcpAt + 13] = pending[j - 1]![tcpAt + 13]!;
    const ipLength = total - l2;
    const ip = out.subarray(l2);
    if (v4) {
      ip[2] = ipLength >>> 8;
      ip[3] = ipLength & 0xff;
      setIpv4HeaderChecksum(ip, ipHl);
    } else {
      ip[4] = (ipLength - 40) >>> 8;
      ip[5] = (ipLength - 40) & 0xff;
    }
    const src = v4 ? ip.subarray(12, 16) : ip.subarray(8, 24);
    const dst = v4 ? ip.subarray(16, 20) : ip.subarray(24, 40);
    const pseudo = pseudoHeaderSum(src, dst, 6, ipLength - ipHl);
    out[tcpAt + 16] = pseudo >>> 8;
    out[tcpAt + 17] = pseudo & 0xff;
    if (this.writeOut(buf, need)) {
      this.stats.packetsOut++;
      this.stats.bytesOut += total;
      this.stats.gsoPacketsOut++;
      this.stats.gsoSegmentsOut += j - i;
    } else {
      this.stats.drops += j - i;
    }
  }

  /** One write of `len` bytes from `buf`: true if the kernel took it (a TUN/TAP write takes all or nothing). */
  protected writeOut(buf: Uint8Array, len = buf.length): boolean {
    try {
      // EAGAIN, ENOBUFS when the kernel is out of buffers, EIO while the device is down, EINVAL for
      // a malformed packet: all a drop.
      writeSync(this.fd, buf, 0, len);
      return true;
    } catch {
      return false;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop reading and close the device (a device we created disappears, wherever its kernel side is). Idempotent. */
  close(): void {
    if (this.#closed) return;
    // What this turn sent still goes out (gso: it waits for the end of the turn).
    if (this.#pending.length > 0) this.#flush();
    this.#closed = true;
    closeSync(this.fd);
    this.fd = -1;
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
    this.libc.poll(this.#pollfds, 2, -1, (err, ready) => {
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
        const len = this.libc.read(this.fd, this.#slab.subarray(at, at + readSize), readSize);
        if (len < 0) {
          const errno = this.libc.errno();
          if (errno === EAGAIN) return 'empty';
          if (errno === EINTR) continue;
          this.#fail(`read failed (errno ${errno})`);
          return 'stopped';
        }
        if (len === 0) continue;
        // Keep the next packet 8-byte aligned (DataView reads of headers do not care; it is cheap).
        this.#slabUsed = at + ((len + 7) & ~7);
        const packet = this.unwrap(this.#slab, at, len);
        if (packet === undefined) continue;
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

  /** Reading cannot go on (e.g. the device was deleted under us): stop, and say why. */
  #fail(why: string): void {
    this.stats.readErrors++;
    this.readError = why;
  }
}

// ------------------------------------------------------------------------------------------------
// Send-side GSO: which segments join

/**
 * The end (exclusive) of the run of packets from pending[i] that can cross as one TCP super-packet.
 * `l2`: bytes before the IP header (0 for TUN; for TAP an Ethernet II header, whose EtherType must
 * be the IP version's and which must be the same in every packet of the run). IPv4 without options
 * or fragmentation, or IPv6 with TCP as the next header; all of one connection with byte-identical
 * headers but for the IP length, ID and checksum and the TCP sequence number, flags and checksum;
 * each with data, the sequence numbers back to back (RFC 9293 §3.4); ACK only, but the last may add
 * PSH; every payload the first's size (the gso_size) but the last, which may be shorter; at most
 * 64 KiB in all. Anything else (a SYN, a FIN, a pure ACK, another connection, ARP) ends the run and
 * is written alone: the order of packets on the wire never changes. Returns i + 1 when nothing joins.
 */
export function gsoRunEnd(pending: readonly Uint8Array[], i: number, l2: number): number {
  const first = pending[i]!;
  if (first.length < l2 + 40) return i + 1;
  const version = first[l2]! >> 4;
  let ipHl: number;
  /** Largest IP packet (RFC 791 Total Length; RFC 8200 Payload Length + 40). */
  let max: number;
  if (version === 4) {
    ipHl = (first[l2]! & 0x0f) * 4;
    // No IP options, TCP, no MF flag or fragment offset (DF may be set).
    if (ipHl !== 20 || first[l2 + 9] !== 6 || ((first[l2 + 6]! << 8) | first[l2 + 7]!) & 0x3fff) return i + 1;
    max = 65535;
  } else if (version === 6) {
    ipHl = 40;
    if (first[l2 + 6] !== 6) return i + 1;
    max = GSO_MAX_IP;
  } else {
    return i + 1;
  }
  if (l2 > 0 && ((first[l2 - 2]! << 8) | first[l2 - 1]!) !== (version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6)) return i + 1;
  const tcpAt = l2 + ipHl;
  if (first.length < tcpAt + 20) return i + 1;
  const hl = tcpAt + (first[tcpAt + 12]! >> 4) * 4;
  const mss = first.length - hl;
  if (mss <= 0 || first[tcpAt + 13] !== TCP_ACK) return i + 1;
  let seq = (seqOf(first, tcpAt) + mss) >>> 0;
  let total = first.length - l2;
  let j = i + 1;
  for (; j < pending.length; j++) {
    const p = pending[j]!;
    const len = p.length - hl;
    if (len <= 0 || len > mss || total + len > max) break;
    if (seqOf(p, tcpAt) !== seq) break;
    const flags = p[tcpAt + 13]!;
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) break;
    if (!sameHeaders(first, p, l2, ipHl, hl, version === 4)) break;
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

function seqOf(p: Uint8Array, tcpAt: number): number {
  return ((p[tcpAt + 4]! << 24) | (p[tcpAt + 5]! << 16) | (p[tcpAt + 6]! << 8) | p[tcpAt + 7]!) >>> 0;
}

/**
 * Headers (the first `hl` bytes: l2, IP, TCP) equal but for IP length/ID/checksum (IPv6: payload
 * length) and TCP seq/flags/checksum. The l2 header must match to the byte.
 */
function sameHeaders(a: Uint8Array, b: Uint8Array, l2: number, ipHl: number, hl: number, v4: boolean): boolean {
  for (let k = 0; k < hl; k++) {
    if (a[k] === b[k]) continue;
    const n = k - l2;
    if (n < 0) return false;
    if (v4 ? n === 2 || n === 3 || n === 4 || n === 5 || n === 10 || n === 11 : n === 4 || n === 5) continue;
    const t = n - ipHl;
    if ((t >= 4 && t <= 7) || t === 13 || t === 16 || t === 17) continue;
    return false;
  }
  return true;
}
