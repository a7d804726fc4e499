/**
 * A Linux TAP device as a synack link: whole Ethernet II frames (no FCS) between synack and the
 * kernel, which sees the device as an Ethernet NIC — it ARPs for synack's addresses, sends neighbour
 * discovery and router solicitations, runs DHCP clients on it, bridges it. synack's side has a MAC of
 * its own (its EthernetInterface's, src/net/); the kernel side's MAC is the kernel's (`kernelMac`).
 * Node only, Linux only; the core never imports this file (src/index.node.ts exports it).
 *
 * Opening, reading, the kernel-side setup and the one-line errors are TunLink's (src/link/tuntap.ts),
 * with IFF_TAP|IFF_NO_PI: each read or write is exactly one frame, without the 4-byte
 * packet-information header; a frame is at most mtu + 18 bytes.
 *
 * Offload (`offload: true`, `gso: true`), as for TUN and with the same code (src/link/tuntap.ts):
 * IFF_VNET_HDR puts a virtio header in front of every frame, TUNSETOFFLOAD lets the kernel hand over
 * TCP data as GSO super-frames — one Ethernet header, then an IP packet of up to 64 KiB — with
 * partial checksums (csum_start counts from the start of the frame), and with `gso` the segments
 * the stack sends in one turn go out joined the same way. The EthernetInterface above takes such a
 * frame as any other (it never checks a frame against the MTU), and the stack above it still sizes
 * its segments by the real MTU (`mtu`): the kernel re-segments what it forwards.
 *
 * `netns`: the kernel side can serve another network namespace while this process stays in its own.
 * The device is made here, then moved (`ip link set dev X netns NAME`); our fd stays attached to it
 * across the move, so frames keep flowing, and the kernel side's MTU, state and addresses are then
 * set inside that namespace (`ip -n NAME …`). So a test or `synack gateway` can give a guest namespace
 * a NIC without ever entering it. Closing the fd removes the device, wherever it is.
 */
import { closeSync } from 'node:fs';
import type { EthernetLinkEnd } from './link.js';
import {
  ETHERNET_HLEN, GSO_MAX_IP, IFF_NO_PI, IFF_TAP, IFNAMSIZ, IFREQ_SIZE, LE, TunError, TunTapDevice, checkDeviceOptions, configureKernelSide,
  loadLibc, newTunTapStats, openTunFile, setIffOffload, wakeFd,
} from './tuntap.js';
import type { DeviceOffload, Libc, TunTapStats } from './tuntap.js';

export { TunError } from './tuntap.js';

/** `SIOCGIFHWADDR`/`SIOCSIFHWADDR` (linux/sockios.h): a TUN/TAP fd answers them for its device. */
const SIOCGIFHWADDR = 0x8927;
const SIOCSIFHWADDR = 0x8924;
/** `ARPHRD_ETHER` (linux/if_arp.h): the sa_family of an Ethernet hardware address. */
const ARPHRD_ETHER = 1;
/** Offset of `ifr_hwaddr.sa_data` in struct ifreq: the name, then the sockaddr's 2-byte family. */
const HWADDR_AT = IFNAMSIZ + 2;
/**
 * Largest frame a read can return: the largest MTU (65535) plus the Ethernet header and an 802.1Q
 * tag. Without offloads the kernel never hands over more than mtu + 18; the room keeps a frame
 * whole if someone raises the MTU behind our back. With offload, a GSO super-frame: the Ethernet
 * header (and a tag) before the largest super-packet.
 */
const READ_SIZE = 65535 + 18;
const READ_SIZE_OFFLOAD = 18 + GSO_MAX_IP;

/** A TAP link's counters: those of every TUN/TAP link, offload counters included (src/link/tuntap.ts). */
export type TapStats = TunTapStats;

export interface TapOptions {
  /** Device name (at most 15 bytes). Default: the kernel picks `tapN`. Opened if it exists (a persistent device). */
  name?: string;
  /** MTU set on the device and reported to the stack (the IP MTU: frames are up to mtu + 18 bytes). Default 1500. */
  mtu?: number;
  /**
   * The kernel side's MAC (`aa:bb:cc:dd:ee:ff`), set before the device comes up. Default: the one
   * the kernel made up (random, locally administered). It is the kernel's, not synack's: synack's
   * own MAC belongs to the EthernetInterface on top.
   */
  kernelMac?: string;
  /** Addresses given to the kernel's side of the device, in CIDR form (`10.0.2.15/24`, `fd00::15/64`). */
  kernelAddresses?: string[];
  /**
   * An existing network namespace (as `ip netns add NAME` makes) to move the kernel side into before
   * it is configured; this process stays in its own. A missing namespace is a TunError 'no-netns'.
   */
  netns?: string;
  /**
   * Ask the kernel for receive offloads (default false): IFF_VNET_HDR, then TUNSETOFFLOAD with
   * TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6. The kernel then hands over TCP data as GSO super-frames of up
   * to 64 KiB of IP — one read where there were ~45 at MTU 1500 — with the TCP checksum left partial,
   * which this link completes before the interface sees the frame. Writes stay one frame each (a
   * zeroed virtio header in front) unless `gso` is set too. If the kernel refuses, the link works
   * without: `offload` says what was granted, `offloadRefused` why not.
   */
  offload?: boolean;
  /**
   * Send-side GSO (default false; implies `offload`, and is on only if that is granted): runs of
   * back-to-back TCP data segments of one connection sent in one turn, to the same MAC, are written
   * as one super-frame with a virtio header saying "TCP, segments of gso_size" — what a NIC's TSO
   * takes (see `gsoRunEnd` in src/link/tuntap.ts). Everything else (ARP, NDP, UDP, SYNs, FINs, pure
   * ACKs) is written alone, in order.
   */
  gso?: boolean;
}

function parseMac(text: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (m === null) return undefined;
  return new Uint8Array(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export class TapLink extends TunTapDevice<TapStats> implements EthernetLinkEnd {
  readonly linkType = 'ethernet' as const;
  /** The kernel side's MAC as it was when the device was opened (`aa:bb:cc:dd:ee:ff`). */
  readonly kernelMac: string;
  /** The namespace the kernel side was moved into, if any. */
  readonly netns: string | undefined;

  private constructor(lib: Libc, fd: number, wake: number, name: string, mtu: number, kernelMac: string, netns: string | undefined, offload: DeviceOffload) {
    super(lib, fd, wake, name, mtu, offload.vnet ? READ_SIZE_OFFLOAD : READ_SIZE, newTunTapStats(), offload);
    this.kernelMac = kernelMac;
    this.netns = netns;
  }

  /**
   * Open (or create) a TAP device and configure the kernel's side of it (in `netns` if given). Throws
   * a `TunError` with a one-line message when that cannot be done.
   */
  static open(opts: TapOptions = {}): TapLink {
    const mtu = opts.mtu ?? 1500;
    const wanted = opts.name ?? '';
    checkDeviceOptions('TAP', mtu, wanted);
    let mac: Uint8Array | undefined;
    if (opts.kernelMac !== undefined) {
      mac = parseMac(opts.kernelMac);
      // A station address: not multicast (bit 0 of the first byte), not all zeros (IEEE 802).
      if (mac === undefined || (mac[0]! & 1) !== 0 || mac.every((b) => b === 0)) {
        throw new TunError('open-failed', `synack: bad TAP kernel MAC "${opts.kernelMac}" (six hex bytes, unicast, not all zeros)`);
      }
    }
    const lib = loadLibc('TAP');
    const fd = openTunFile('TAP');
    let wake = -1;
    try {
      const set = setIffOffload('TAP', lib, fd, wanted, IFF_TAP | IFF_NO_PI, opts.offload === true || opts.gso === true);
      const name = set.name;
      const ifr = new Uint8Array(IFREQ_SIZE);
      if (mac !== undefined) {
        // struct sockaddr: sa_family (host order), then the address in sa_data.
        new DataView(ifr.buffer).setUint16(IFNAMSIZ, ARPHRD_ETHER, LE);
        ifr.set(mac, HWADDR_AT);
        if (lib.ioctl(fd, SIOCSIFHWADDR, ifr) < 0) {
          throw new TunError('open-failed', `synack: cannot set the MAC of TAP device ${name} to ${opts.kernelMac} (errno ${lib.errno()})`);
        }
      }
      // Read before a move to another namespace: the kernel answers SIOCGIFHWADDR on a TUN/TAP fd by
      // looking the device's name up in the namespace the fd was opened in.
      ifr.fill(0);
      if (lib.ioctl(fd, SIOCGIFHWADDR, ifr) < 0) {
        throw new TunError('open-failed', `synack: cannot read the MAC of TAP device ${name} (errno ${lib.errno()})`);
      }
      const kernelMac = formatMac(ifr.subarray(HWADDR_AT, HWADDR_AT + 6));
      wake = wakeFd(lib);
      configureKernelSide('TAP', name, mtu, opts.kernelAddresses ?? [], opts.netns);
      const link = new TapLink(lib, fd, wake, name, mtu, kernelMac, opts.netns, { ...set, gso: set.offload && opts.gso === true, l2: ETHERNET_HLEN });
      link.startReading();
      return link;
    } catch (e) {
      // A device we created goes away with its last fd (moved to a namespace or not); a persistent one stays.
      closeSync(fd);
      if (wake >= 0) closeSync(wake);
      throw e;
    }
  }

  /** The receiver of the frames the kernel sends (one; a later call replaces it). Frames are views into a slab. */
  onFrame(fn: (frame: Uint8Array) => void): void {
    this.setReceiver(fn);
  }

  /** Write one frame (Ethernet II, no FCS) to the kernel (with gso: at the end of this turn). Never throws: a frame that cannot be written is a drop. */
  send(frame: Uint8Array): void {
    this.sendOut(frame);
  }
}
