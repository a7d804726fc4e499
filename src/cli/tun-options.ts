/**
 * What `synack serve` and `synack get` share: the device options (`--tun` or `--tap`, `--mac`,
 * `--kernel-address`, `--address`, `--mtu`), their checks, and the setup and teardown of a Stack on
 * the TUN or TAP device.
 *
 * Node only (CLI). The device is opened through `src/link/tun.ts` or `src/link/tap.ts`, loaded on
 * first use so that the commands' usage errors and `--help`, and their tests on a MemoryLink, need no
 * TUN support. On a TAP device the stack speaks Ethernet: its EthernetInterface (src/net/) answers
 * the kernel's ARP and neighbour solicitations with the stack's own MAC (`--mac`, else a random
 * locally administered one).
 */
import { isIP } from 'node:net';
import { RealClock, type Clock, type TimerHandle } from '../link/clock.js';
import type { EthernetLinkEnd, LinkEnd } from '../link/link.js';
import { Stack } from '../index.node.js';
import { formatAddress, formatEndpoint, inPrefix, parseCidr } from '../wire/address.js';
import { formatMac, parseMac } from '../wire/ethernet.js';
import { impair } from '../link/impair.js';
import { UsageError } from './io.js';
import { IMPAIR_OPTIONS, describeImpairment, impairs, parseImpairValues, type ImpairValues, type Impairment } from './impair-options.js';

/** The parseArgs option table both commands spread into theirs. */
export const TUN_OPTIONS = {
  tun: { type: 'string' },
  tap: { type: 'string' },
  mac: { type: 'string' },
  netns: { type: 'string' },
  'kernel-address': { type: 'string', multiple: true },
  address: { type: 'string', multiple: true },
  mtu: { type: 'string' },
  offload: { type: 'boolean' },
  dhcp: { type: 'boolean' },
  ...IMPAIR_OPTIONS,
} as const;

export const TUN_HELP = `  --tun IF                 the TUN device to use (created if missing; needs CAP_NET_ADMIN)
  --tap IF                 or a TAP device (Ethernet: the stack answers the kernel's ARP and
                           neighbour discovery); created if missing, needs CAP_NET_ADMIN
  --mac MAC                with --tap: the stack's own MAC (default: a random locally administered
                           one); the kernel side keeps its own
  --netns NS               with --tap: move the device's kernel side into network namespace NS
                           (made by \`ip netns add NS\`), where --kernel-address is set; this
                           process stays in its own
  --kernel-address CIDR    the kernel's side of the link, e.g. 10.9.0.1/24 or fd09::1/64; set on
                           the device, which is then brought up (repeatable: one per family)
  --address IP             the stack's own address, CIDR or plain (10.9.0.2/24 or 10.9.0.2);
                           repeatable, for IPv4 and IPv6 (with --tap a plain one takes the
                           --kernel-address's prefix: on Ethernet the prefix says what is on-link)
  --dhcp                   with --tap, instead of an IPv4 --address: take the stack's address,
                           default router and DNS servers from the LAN's DHCP server (waits up to
                           30 s; the lease is shown on stderr; no RELEASE at exit)
  --mtu N                  the device's MTU (default 1500)
  --offload                virtio-net offloads on the device (IFF_VNET_HDR): the kernel hands over
                           TCP segments of up to 64 KiB in one read, and the stack's back-to-back
                           segments cross as one GSO packet per write (about 20 system calls per
                           MiB instead of ~700); not with the impairment flags
  --loss P, --reorder P, --duplicate P, --corrupt P
                           impair the path to the kernel, both ways, with synack's own seeded model
                           (the one MemoryLink uses): probabilities from 0 to 1 per packet
  --delay MS               one-way delay added to every packet, both ways (reordered ones get up to
                           2×MS + 1 more)
  --bandwidth BPS          a bottleneck of BPS bit/s each way (its queue has no limit)
  --seed N                 seed of the impairments (default 1)`;

/** One address of the stack or of the kernel, checked. */
export interface LinkAddress {
  /** Canonical text of the address alone (RFC 5952 for IPv6). */
  address: string;
  prefix: number;
  family: 4 | 6;
  /** `address/prefix`. */
  cidr: string;
}

export interface TunConfig {
  /** The device's name (TUN or TAP). */
  tun: string;
  /** Which kind of device: IP packets (TUN) or Ethernet frames (TAP). */
  kind: 'tun' | 'tap';
  /** With --tap: the stack's MAC (`aa:bb:cc:dd:ee:ff`), or undefined for a random one. */
  mac: string | undefined;
  /** With --tap: the namespace the kernel side is moved into. */
  netns: string | undefined;
  mtu: number | undefined;
  /** The stack's addresses, in the order given. */
  addresses: LinkAddress[];
  /** The kernel's side, possibly none (then the device must already be configured). */
  kernelAddresses: LinkAddress[];
  /** Remarks worth a line on stderr (e.g. a stack address the kernel has no route to). */
  notes: string[];
  /** The impairment flags given (applied around the device when `impairs()` says they change anything). */
  impairment: Impairment;
  /** Ask the kernel for virtio-net offloads (TunLink `offload` and `gso`). */
  offload: boolean;
  /** --dhcp: the IPv4 address, router and DNS servers come from DHCP (src/cli/dhcp-option.ts). */
  dhcp: boolean;
}

/** The values parseArgs gives for TUN_OPTIONS. */
export interface TunValues extends ImpairValues {
  tun?: string | undefined;
  tap?: string | undefined;
  mac?: string | undefined;
  netns?: string | undefined;
  'kernel-address'?: string[] | undefined;
  address?: string[] | undefined;
  mtu?: string | undefined;
  offload?: boolean | undefined;
  dhcp?: boolean | undefined;
}

/**
 * Parses `10.9.0.2`, `10.9.0.2/24`, `fd09::2`, `fd09::2/64`. Without a prefix the prefix is
 * `undefined` (the caller decides); throws UsageError naming the option.
 */
export function parseLinkAddress(option: string, text: string): { address: string; prefix: number | undefined; family: 4 | 6 } {
  const slash = text.indexOf('/');
  const bare = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(bare);
  const parsed = family === 0 ? null : parseCidr(text);
  if (parsed === null || (family !== 4 && family !== 6)) {
    throw new UsageError(`bad --${option} '${text}': expected an IPv4 or IPv6 address, optionally with /prefix (10.9.0.2/24, fd09::2/64)`);
  }
  return { address: formatAddress(parsed.address), prefix: slash < 0 ? undefined : parsed.prefix, family };
}

function withPrefix(a: { address: string; family: 4 | 6 }, prefix: number): LinkAddress {
  return { address: a.address, prefix, family: a.family, cidr: `${a.address}/${prefix}` };
}

/** Linux interface names: at most IFNAMSIZ-1 = 15 bytes, no '/', ':' or white space, not '.'/'..'. */
function checkInterfaceName(option: string, name: string): void {
  if (name === '' || name === '.' || name === '..' || Buffer.byteLength(name) > 15 || /[/:\s]/.test(name)) {
    throw new UsageError(`bad --${option} '${name}': an interface name of 1 to 15 characters without '/', ':' or spaces`);
  }
}

/**
 * Checks the TUN options. A plain `--address` gets the full prefix (/32, /128): the stack's prefix
 * only picks a source address among several of one family, and everything leaves through the one
 * link anyway. A plain `--kernel-address` takes the prefix of the stack's address of its family when
 * that one was written with a prefix (so `--kernel-address 10.9.0.1 --address 10.9.0.2/24` means
 * the /24), else the full prefix; the kernel routes the stack's address to the device only if the
 * prefix covers it, and a note says so when it does not.
 */
export function parseTunValues(v: TunValues): TunConfig {
  if (v.tun !== undefined && v.tap !== undefined) throw new UsageError('--tun and --tap exclude each other: choose one');
  const kind = v.tap !== undefined ? 'tap' : 'tun';
  const device = v.tap ?? v.tun;
  if (device === undefined) throw new UsageError('--tun IF is required (the TUN device, e.g. --tun synack0), or --tap IF for a TAP device');
  checkInterfaceName(kind, device);
  let mac: string | undefined;
  if (v.mac !== undefined) {
    if (kind !== 'tap') throw new UsageError('--mac goes with --tap: a TUN device carries IP packets, without MAC addresses');
    const bytes = parseMac(v.mac);
    // A station address: not a group address (the I/G bit, bit 0 of the first byte), not all zeros (IEEE 802).
    if (bytes === null || (bytes[0]! & 1) !== 0 || bytes.every((b) => b === 0)) {
      throw new UsageError(`bad --mac '${v.mac}': expected a unicast MAC such as 02:00:00:00:00:02`);
    }
    mac = formatMac(bytes);
  }
  if (v.netns !== undefined) {
    if (kind !== 'tap') throw new UsageError('--netns goes with --tap (it moves the TAP device\'s kernel side)');
    if (v.netns === '' || v.netns === '.' || v.netns === '..' || /[/\s]/.test(v.netns)) {
      throw new UsageError(`bad --netns '${v.netns}': a namespace name as \`ip netns add\` takes`);
    }
  }
  const given = (v.address ?? []).map((t) => parseLinkAddress('address', t));
  const dhcp = v.dhcp === true;
  if (dhcp) {
    // DHCP (RFC 2131) is broadcast to and from MAC addresses: it needs an Ethernet link.
    if (kind !== 'tap') throw new UsageError('--dhcp goes with --tap: DHCP needs Ethernet (broadcast and a MAC), which a TUN device lacks');
    const v4 = given.find((a) => a.family === 4);
    if (v4 !== undefined) throw new UsageError(`--dhcp gives the IPv4 address: drop --address ${v4.address} (an IPv6 --address may stay)`);
  } else if (given.length === 0) throw new UsageError('--address IP is required (the stack\'s own address, e.g. --address 10.9.0.2/24), or --dhcp with --tap');
  // On Ethernet the prefix decides what is on-link (reached by ARP/NDP): a plain address takes the
  // kernel side's prefix, else the usual subnet (/24, /64). On TUN everything crosses the one link.
  const kernelPrefix = (family: 4 | 6): number | undefined =>
    (v['kernel-address'] ?? []).map((t) => parseLinkAddress('kernel-address', t)).find((k) => k.family === family && k.prefix !== undefined)?.prefix;
  const plainPrefix = (family: 4 | 6): number =>
    kind === 'tap' ? kernelPrefix(family) ?? (family === 4 ? 24 : 64) : family === 4 ? 32 : 128;
  const addresses = given.map((a) => withPrefix(a, a.prefix ?? plainPrefix(a.family)));
  const seen = new Set<string>();
  for (const a of addresses) {
    if (seen.has(a.address)) throw new UsageError(`--address ${a.address} is given twice`);
    seen.add(a.address);
  }
  const kernelAddresses = (v['kernel-address'] ?? []).map((t) => {
    const k = parseLinkAddress('kernel-address', t);
    if (seen.has(k.address)) {
      throw new UsageError(`--kernel-address ${k.address} is also an --address: the kernel and the stack need an address each`);
    }
    const stackPrefix = given.find((a) => a.family === k.family && a.prefix !== undefined)?.prefix;
    return withPrefix(k, k.prefix ?? stackPrefix ?? (k.family === 4 ? 32 : 128));
  });
  let mtu: number | undefined;
  if (v.mtu !== undefined) {
    mtu = Number(v.mtu);
    // RFC 791: every IPv4 host takes 576-byte datagrams; RFC 8200 §5: IPv6 links carry 1280.
    const min = addresses.some((a) => a.family === 6) ? 1280 : 576;
    if (v.mtu.trim() === '' || !Number.isInteger(mtu) || mtu < min || mtu > 65535) {
      throw new UsageError(`bad --mtu '${v.mtu}': expected an integer from ${min} to 65535`);
    }
  }
  const notes: string[] = [];
  for (const a of addresses) {
    const family = kernelAddresses.filter((k) => k.family === a.family);
    if (family.length === 0) continue;
    const bytes = parseCidr(a.address)!.address;
    if (!family.some((k) => inPrefix(bytes, parseCidr(k.address)!.address, k.prefix))) {
      notes.push(`${a.address} is outside ${family.map((k) => k.cidr).join(', ')}: the kernel needs a route to it over ${device}`);
    }
  }
  const impairment = parseImpairValues(v);
  const offload = v.offload === true;
  if (offload && kind === 'tap') throw new UsageError('--offload goes with --tun (TAP devices here run without virtio offloads)');
  if (impairs(impairment)) {
    // The impairment model works per packet and drops what exceeds the MTU: a 64 KiB super-packet
    // would be lost, delayed or reordered as one, which is not the path being modelled.
    if (offload) throw new UsageError('--offload cannot be combined with the impairment flags (a 64 KiB super-packet would be impaired as one packet)');
    notes.push(`the path to the kernel is impaired both ways: ${describeImpairment(impairment)}`);
  }
  return { tun: device, kind, mac, netns: v.netns, mtu, addresses, kernelAddresses, notes, impairment, offload, dhcp };
}

interface CommandLinkParts {
  readonly name: string;
  close(): void;
  /** Packet counters, reported as they are in `--json` summaries (TunLink: packetsIn, bytesOut, drops…). */
  readonly stats?: object;
}

/** A link the commands run on: a TunLink or TapLink, or (in tests) any packet or frame port with a name and close(). */
export type CommandLink = (LinkEnd & CommandLinkParts) | (EthernetLinkEnd & CommandLinkParts);

/**
 * `link` behind synack's impairment model in both directions. Its `stats` are the link's own plus
 * `impairment: { out, in }`, the counters of each direction (what was lost, reordered…).
 */
function impaired(link: CommandLink, impairment: Impairment, clock: Clock): CommandLink {
  if (link.linkType === 'ethernet') {
    // The same model on frames: impair() sees a packet port (it checks no MTU; the TAP does).
    const frames = link;
    const end = impair({
      mtu: frames.mtu,
      send: (f) => frames.send(f),
      onPacket: (fn) => frames.onFrame(fn),
      receivePending: () => frames.receivePending?.(),
    }, { ...impairment, clock });
    return {
      linkType: 'ethernet',
      name: frames.name,
      mtu: end.mtu,
      send: (frame) => end.send(frame),
      onFrame: (fn) => end.onPacket(fn),
      receivePending: () => end.receivePending(),
      close: () => frames.close(),
      get stats() {
        return { ...frames.stats, impairment: end.stats };
      },
    };
  }
  const end = impair(link, { ...impairment, clock });
  return {
    name: link.name,
    mtu: end.mtu,
    send: (packet) => end.send(packet),
    onPacket: (fn) => end.onPacket(fn),
    receivePending: () => end.receivePending(),
    close: () => link.close(),
    get stats() {
      return { ...link.stats, impairment: end.stats };
    },
  };
}

export interface OpenLinkOptions {
  /** Default 'tun'. */
  kind?: 'tun' | 'tap';
  name: string;
  /** TAP: the namespace to move the kernel side into. */
  netns?: string;
  mtu?: number;
  kernelAddresses: string[];
  /** Receive offload and send-side GSO (TunLink `offload` and `gso`). */
  offload?: boolean;
  gso?: boolean;
}

/** What a command takes from its surroundings beyond CliIO; tests replace each part. */
export interface TunDeps {
  /** Opens the link (default: `TunLink.open`, or `TapLink.open` for kind 'tap'). */
  openLink?: (opts: OpenLinkOptions) => CommandLink | Promise<CommandLink>;
  /** Stops the command as SIGINT would (default: SIGINT and SIGTERM). */
  signal?: AbortSignal;
}

/** `TunLink.open` or `TapLink.open`, imported on first use (see the file comment). */
async function openTun(opts: OpenLinkOptions): Promise<CommandLink> {
  const { kind, netns, ...rest } = opts;
  if (kind === 'tap') {
    const { TapLink } = await import('../link/tap.js');
    return TapLink.open({
      name: rest.name,
      kernelAddresses: rest.kernelAddresses,
      ...(rest.mtu !== undefined ? { mtu: rest.mtu } : {}),
      ...(netns !== undefined ? { netns } : {}),
    });
  }
  const { TunLink } = await import('../link/tun.js');
  return TunLink.open(rest);
}

/**
 * The one-line reason a link could not be opened: a TunError's message as it is (it is written to be
 * shown), anything else's first line with its errno code (EACCES, ENOENT…) in front when it lacks one.
 */
export function linkErrorReason(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  // TunLink's messages start 'synack: ', which the command's own prefix already says.
  const message = ((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '').replace(/^synack: /, '');
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * A real-time clock whose pending timers can all be dropped at once. When a command is done, the
 * stack may still hold a connection in TIME-WAIT (2×MSL, RFC 9293 §3.4.2) whose host timer would keep
 * the process alive for a minute after its link is closed; `stop()` lets the process exit.
 */
export class StoppableClock implements Clock {
  readonly #inner = new RealClock();
  readonly #pending = new Set<TimerHandle>();
  #stopped = false;

  now(): number {
    return this.#inner.now();
  }

  schedule(at: number, fn: () => void): TimerHandle {
    if (this.#stopped) return { id: 0 };
    const h: TimerHandle = this.#inner.schedule(at, () => {
      this.#pending.delete(h);
      fn();
    });
    this.#pending.add(h);
    return h;
  }

  cancel(handle: TimerHandle): void {
    this.#pending.delete(handle);
    this.#inner.cancel(handle);
  }

  defer(fn: () => void): void {
    if (!this.#stopped) this.#inner.defer(fn);
  }

  stop(): void {
    this.#stopped = true;
    for (const h of this.#pending) this.#inner.cancel(h);
    this.#pending.clear();
  }
}

export interface StackOnLink {
  stack: Stack;
  link: CommandLink;
  clock: StoppableClock;
  /** Remarks found while opening, for a note line each (e.g. offload refused by the kernel). */
  notes: string[];
  /** Waits (up to `graceMs`) for connections to finish closing, then drops the stack's timers and closes the link. */
  shutdown(graceMs?: number): Promise<void>;
  /** Ends a shutdown's wait now (a second Ctrl-C). */
  hurry(): void;
}

/**
 * Opens the link and puts a Stack on it. Throws a one-line Error when the link cannot be opened
 * (no /dev/net/tun, no CAP_NET_ADMIN, a bad name).
 */
export async function openStack(config: TunConfig, deps: TunDeps, name: string): Promise<StackOnLink> {
  const open = deps.openLink ?? openTun;
  let link: CommandLink;
  try {
    link = await open({
      ...(config.kind === 'tap' ? { kind: 'tap' as const } : {}),
      ...(config.netns !== undefined ? { netns: config.netns } : {}),
      name: config.tun,
      ...(config.mtu !== undefined ? { mtu: config.mtu } : {}),
      ...(config.offload ? { offload: true, gso: true } : {}),
      kernelAddresses: config.kernelAddresses.map((k) => k.cidr),
    });
  } catch (e) {
    throw new Error(`cannot open ${config.kind === 'tap' ? 'TAP' : 'TUN'} device ${config.tun}: ${linkErrorReason(e)}`, { cause: e });
  }
  const notes: string[] = [];
  const refused = (link as { offloadRefused?: string }).offloadRefused;
  if (config.offload && refused !== undefined) notes.push(`the kernel refused offload (${refused}); running without it`);
  const clock = new StoppableClock();
  if (impairs(config.impairment)) link = impaired(link, config.impairment, clock);
  let stack: Stack;
  try {
    stack = new Stack({ link, addresses: config.addresses.map((a) => a.cidr), clock, name, ...(config.mac !== undefined ? { mac: config.mac } : {}) });
  } catch (e) {
    link.close();
    throw e;
  }
  let closed = false;
  let hurried = false;
  const shutdown = async (graceMs = 2000): Promise<void> => {
    if (closed) return;
    closed = true;
    // Let FINs and their ACKs be exchanged so the peer sees a clean end; TIME-WAIT (and CLOSED) need
    // nothing more from us. Bounded: a peer that has gone away must not hold the exit.
    const deadline = Date.now() + graceMs;
    while (!hurried && Date.now() < deadline && stack.connections().some((c) => c.state !== 'TIME-WAIT')) {
      await new Promise((r) => setTimeout(r, 10));
    }
    clock.stop();
    link.close();
  };
  if (stack.interface !== null) notes.push(`synack's MAC on ${link.name} is ${formatMac(stack.interface.mac)}`);
  return { stack, link, clock, notes, shutdown, hurry: () => void (hurried = true) };
}

/**
 * Resolves on SIGINT or SIGTERM (or when `signal` aborts) with the reason; `dispose()` removes the
 * handlers. A second signal while the first is handled calls `onAgain` (e.g. skip the grace period).
 * Until disposed it holds the event loop open: an idle stack has no timer armed, and whether the
 * link's reads keep node running is the link's business.
 */
export function stopSignal(signal: AbortSignal | undefined): { stopped: Promise<string>; onAgain(fn: () => void): void; dispose(): void } {
  let resolve!: (why: string) => void;
  const stopped = new Promise<string>((r) => (resolve = r));
  let count = 0;
  let again: (() => void) | undefined;
  const on = (why: string): void => {
    count++;
    if (count === 1) resolve(why);
    else again?.();
  };
  const onInt = (): void => on('SIGINT');
  const onTerm = (): void => on('SIGTERM');
  const onAbort = (): void => on('aborted');
  const keepAlive = setInterval(() => {}, 1 << 30);
  if (signal === undefined) {
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  } else if (signal.aborted) on('aborted');
  else signal.addEventListener('abort', onAbort);
  return {
    stopped,
    onAgain(fn) {
      again = fn;
    },
    dispose() {
      clearInterval(keepAlive);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** Where a listener on `port` is reached: `10.9.0.2:8000`, `[fd09::2]:8000`. */
export function hostPort(address: string, port: number): string {
  return formatEndpoint(address, port);
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/**
 * The stack's counters as `netstat -s` shows the kernel's: one `  name value` line each, drops by
 * reason as `  drops.reason value`, zero counters included (a zero says "checked, none").
 */
export function formatCounters(counters: object): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(counters)) {
    if (typeof value === 'number') lines.push(`  ${name} ${value}`);
    else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value as Record<string, number>).sort(([a], [b]) => a.localeCompare(b));
      if (entries.length === 0) lines.push(`  ${name} (none)`);
      for (const [k, v] of entries) lines.push(`  ${name}.${k} ${v}`);
    }
  }
  return lines.join('\n') + '\n';
}
