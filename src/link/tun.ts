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
import type { LinkEnd } from './link.js';
import {
  GSO_MAX_IP, IFF_NO_PI, IFF_TUN, TunTapDevice, checkDeviceOptions, configureKernelSide, loadLibc, newTunTapStats, openTunFile,
  setIffOffload, wakeFd,
} from './tuntap.js';
import type { DeviceOffload, Libc, TunTapStats } from './tuntap.js';

export { TunError } from './tuntap.js';
export type { TunErrorCode } from './tuntap.js';

/**
 * Largest packet a read can return. Without IFF_VNET_HDR the kernel hands a TUN device no packet
 * larger than its MTU; reading with room for the IPv4 maximum (RFC 791 Total Length) keeps a packet
 * whole even if someone raises the MTU behind our back. With offload the kernel hands over GSO
 * super-packets: an IPv6 one is larger (GSO_MAX_IP), and the virtio header comes in front.
 */
const READ_SIZE = 65535;

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

/** A TUN link's counters: those of every TUN/TAP link, offload counters included (src/link/tuntap.ts). */
export type TunStats = TunTapStats;

export class TunLink extends TunTapDevice<TunStats> implements LinkEnd {
  private constructor(lib: Libc, fd: number, wake: number, name: string, mtu: number, offload: DeviceOffload) {
    super(lib, fd, wake, name, mtu, offload.vnet ? GSO_MAX_IP : READ_SIZE, newTunTapStats(), offload);
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
      const want = opts.offload === true || opts.gso === true;
      const set = setIffOffload('TUN', lib, fd, wanted, IFF_TUN | IFF_NO_PI, want);
      const name = set.name;
      wake = wakeFd(lib);
      configureKernelSide('TUN', name, mtu, opts.kernelAddresses ?? []);
      const link = new TunLink(lib, fd, wake, name, mtu, { ...set, gso: set.offload && opts.gso === true, l2: 0 });
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

  /** Write one IP packet to the kernel (with gso: at the end of this turn). Never throws: a packet that cannot be written is a drop. */
  send(packet: Uint8Array): void {
    this.sendOut(packet);
  }
}
