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
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, existsSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';

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

/**
 * An open TUN or TAP fd and its read loop. Subclasses write (`fd` is theirs to write to) and may
 * transform what is read (`unwrap`). Start reading with `startReading()` once constructed.
 */
export abstract class TunTapDevice<S extends TunTapStats> {
  /** The device's name as the kernel knows it. */
  readonly name: string;
  readonly mtu: number;
  readonly stats: S;
  /** The read error that stopped reading (e.g. the device was deleted under us), if any. */
  readError: string | undefined;

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

  protected constructor(lib: Libc, fd: number, wakeFd: number, name: string, mtu: number, readSize: number, stats: S) {
    this.libc = lib;
    this.fd = fd;
    this.#wakeFd = wakeFd;
    this.name = name;
    this.mtu = mtu;
    this.#readSize = readSize;
    this.stats = stats;
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
   * The packet handed up for the `len` bytes read at `slab[at]`, or undefined to skip them. Default:
   * the bytes as they are (a view into the slab, no copy).
   */
  protected unwrap(slab: Uint8Array, at: number, len: number): Uint8Array | undefined {
    return slab.subarray(at, at + len);
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
