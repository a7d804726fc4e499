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
 * The alternative not taken: an async `fs.read` on a blocking fd, one outstanding. Simpler, but one
 * threadpool round trip per packet (the burst is never seen as one), and it cannot be stopped: a
 * thread blocked in `read()` on a TUN fd does not wake when the fd is closed, so the pending request
 * keeps the event loop — and the process — alive until the next packet arrives. Here close() writes
 * the eventfd, which always ends the poll.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { LinkEnd } from './link.js';

// linux/if_tun.h, linux/if.h
/** `_IOW('T', 202, int)`. */
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
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
}

// ------------------------------------------------------------------------------------------------
// libc through koffi, loaded on first open so that importing synack never loads a native module.

interface Libc {
  ioctl(fd: number, request: number, arg: Uint8Array): number;
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
  };
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

  private constructor(lib: Libc, fd: number, wakeFd: number, name: string, mtu: number) {
    this.#libc = lib;
    this.#fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.mtu = mtu;
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
      const ifr = new Uint8Array(IFREQ_SIZE);
      ifr.set(Buffer.from(wanted));
      new DataView(ifr.buffer).setInt16(IFNAMSIZ, IFF_TUN | IFF_NO_PI, LE);
      if (lib.ioctl(fd, TUNSETIFF, ifr) < 0) throw ioctlError(lib.errno(), wanted);
      const end = ifr.indexOf(0);
      const name = Buffer.from(ifr.subarray(0, end < 0 ? IFNAMSIZ : end)).toString();

      wakeFd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wakeFd < 0) throw new TunError('open-failed', `synack: eventfd failed (errno ${lib.errno()})`);

      ip(['link', 'set', 'dev', name, 'mtu', String(mtu), 'up']);
      for (const cidr of opts.kernelAddresses ?? []) {
        // nodad: RFC 4862 §5.4 Duplicate Address Detection would hold the address "tentative" (unusable)
        // for a second or more; on a point-to-point device of our own no one else can have it.
        ip(cidr.includes(':') ? ['-6', 'addr', 'add', cidr, 'dev', name, 'nodad'] : ['addr', 'add', cidr, 'dev', name]);
      }
      const link = new TunLink(lib, fd, wakeFd, name, mtu);
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
    try {
      // A TUN write takes the whole packet or nothing (EAGAIN, ENOBUFS when the kernel is out of
      // buffers, EIO while the device is down, EINVAL for a malformed packet).
      writeSync(this.#fd, packet);
      this.stats.packetsOut++;
      this.stats.bytesOut += packet.length;
    } catch {
      this.stats.drops++;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop reading and close the device (a device we created disappears). Idempotent. */
  close(): void {
    if (this.#closed) return;
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
        if (SLAB_SIZE - this.#slabUsed < READ_SIZE) {
          // Packets handed out keep their slab alive for as long as someone holds them; never reused.
          this.#slab = new Uint8Array(SLAB_SIZE);
          this.#slabUsed = 0;
        }
        const at = this.#slabUsed;
        const len = this.#libc.read(this.#fd, this.#slab.subarray(at, at + READ_SIZE), READ_SIZE);
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
        this.stats.packetsIn++;
        this.stats.bytesIn += len;
        const packet = this.#slab.subarray(at, at + len);
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
