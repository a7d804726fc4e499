/**
 * `synack gateway --tap IF [--netns NS] [--subnet CIDR] [--subnet6 CIDR|none] [--dhcp] [--dns]
 * [--dns-record NAME=IP]... [--pcap F] [--stats] [--json]`: synack as the network of a guest behind
 * a TAP device (CONTRACT.md, CLI). This is the LAN half (issue 14): ARP/NDP, ping, Router
 * Advertisements, DHCP and DNS; the gateway issue adds relaying the guest's connections.
 *
 * The core (src/gateway/lan.ts) runs anywhere; this file adds the TAP device, the host's resolver
 * as DNS upstream, the pcap file, the signals and the output.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { LanGateway, lanLayout, type LanGatewayEvent } from '../gateway/lan.js';
import { TapLink, TunError } from '../link/tap.js';
import { NodeDnsUpstream } from '../services/dns-upstream-node.js';
import type { DnsStaticEntry, DnsStaticRecords } from '../services/dns-server.js';
import { PcapWriter } from '../trace/pcap.js';
import { parseAddress } from '../wire/address.js';
import { formatMac } from '../wire/ethernet.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, numberOption, parseCommandArgs, type CliIO } from './io.js';
import { formatCounters, stopSignal } from './tun-options.js';

export const GATEWAY_HELP = `Usage: synack gateway --tap IF [--netns NS] [--subnet CIDR] [--subnet6 CIDR|none]
                      [--dhcp] [--dns] [--dns-record NAME=IP]... [--pcap F] [--stats] [--json]

Puts a synack router on a Linux TAP device whose kernel side is the guest (a VM's NIC, or a network
namespace given with --netns): it answers ARP and neighbour discovery and ping, sends Router
Advertisements (the guest configures IPv6 by SLAAC and learns the DNS server), and with --dhcp and
--dns hands out leases and answers names. Runs until SIGINT or SIGTERM, then removes the device.
Needs root or CAP_NET_ADMIN. The layout is QEMU user-mode networking's:

  10.0.2.2   the gateway (router, DHCP server)      fd00:0:0:2::2  the gateway (RAs)
  10.0.2.3   DNS                                    fd00:0:0:2::3  DNS
  10.0.2.15… leases

Options:
  --tap IF                 the TAP device (made if missing; removed on exit)
  --netns NS               move the device's kernel side (the guest's NIC) into network namespace NS;
                           this process stays in its own
  --mtu N                  the link MTU (default 1500), also offered by DHCP
  --subnet CIDR            IPv4 subnet (default 10.0.2.0/24; a /27 or larger)
  --subnet6 CIDR|none      IPv6 /64 advertised to the guest (default fd00:0:0:2::/64); none: IPv4 only
  --mac MAC                the gateway's MAC (default: random, locally administered)
  --dhcp                   serve DHCPv4 (RFC 2131): leases from .15 to the end of the subnet
  --lease-time S           lease time in seconds (default 86400)
  --pool-end IP            the last address leased (default the subnet's last host address)
  --dns                    answer DNS on .3 and ::3, over UDP and TCP: the --dns-record names, and
                           every other name through the host's resolver (its resolv.conf servers)
  --dns-record NAME=IP     a static name (A or AAAA, and its PTR); repeat for more, or for a name's
                           second address
  --pcap F                 write every frame on the device to F (pcap, Ethernet)
  --stats                  on exit, print the counters on stderr (SIGUSR1: at any time)
  --json                   one JSON object per line on stdout: {"event":"up"|"lease"|"release"|
                           "decline"|"pool-exhausted"|"dns", "t": seconds, …}
  -h, --help               this help

Example (as root): a namespace as the guest, with Debian's own DHCP client
  ip netns add guest
  synack gateway --tap tap0 --netns guest --dhcp --dns --dns-record host.lan=10.0.2.2 &
  ip netns exec guest udhcpc -i tap0 -q
  ip netns exec guest ping -c1 10.0.2.2
  ip netns exec guest dig @10.0.2.3 host.lan
`;

interface GatewayConfig {
  tap: string;
  netns: string | undefined;
  mtu: number;
  subnet: string;
  subnet6: string | null;
  mac: string | undefined;
  dhcp: boolean;
  leaseTime: number | undefined;
  poolEnd: string | undefined;
  dns: boolean;
  records: DnsStaticRecords;
  pcap: string | undefined;
  stats: boolean;
  json: boolean;
}

function parseGatewayArgs(args: string[]): GatewayConfig | 'help' {
  const { values, positionals } = parseCommandArgs({
    args,
    allowPositionals: true,
    options: {
      tap: { type: 'string' },
      netns: { type: 'string' },
      mtu: { type: 'string' },
      subnet: { type: 'string' },
      subnet6: { type: 'string' },
      mac: { type: 'string' },
      dhcp: { type: 'boolean' },
      'lease-time': { type: 'string' },
      'pool-end': { type: 'string' },
      dns: { type: 'boolean' },
      'dns-record': { type: 'string', multiple: true },
      pcap: { type: 'string' },
      stats: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.tap === undefined || values.tap === '') throw new UsageError('--tap IF is required');
  const mtu = numberOption('--mtu', values.mtu, (n) => Number.isInteger(n) && n >= 1280 && n <= 65535, 'an integer 1280..65535') ?? 1500;
  const leaseTime = numberOption('--lease-time', values['lease-time'], (n) => Number.isInteger(n) && n >= 60 && n < 2 ** 32, 'seconds, 60 or more');
  const subnet = values.subnet ?? '10.0.2.0/24';
  const subnet6 = values.subnet6 === 'none' ? null : values.subnet6 ?? 'fd00:0:0:2::/64';
  try {
    lanLayout(subnet, subnet6); // checked here, so a bad subnet is a usage error before any device opens
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const poolEnd = values['pool-end'];
  if (poolEnd !== undefined && parseAddress(poolEnd)?.length !== 4) throw new UsageError(`bad --pool-end ${JSON.stringify(poolEnd)}: expected an IPv4 address`);
  if (values['dns-record'] !== undefined && values.dns !== true) throw new UsageError('--dns-record needs --dns');
  const records: Record<string, DnsStaticEntry> = {};
  for (const r of values['dns-record'] ?? []) {
    const eq = r.indexOf('=');
    const name = eq > 0 ? r.slice(0, eq).trim().replace(/\.$/, '') : '';
    const ip = eq > 0 ? r.slice(eq + 1).trim() : '';
    if (name === '' || !/^[A-Za-z0-9_.-]+$/.test(name) || name.length > 253) throw new UsageError(`bad --dns-record ${JSON.stringify(r)}: expected NAME=IP, e.g. host.lan=10.0.2.2`);
    if (parseAddress(ip) === null) throw new UsageError(`bad --dns-record ${JSON.stringify(r)}: ${JSON.stringify(ip)} is not an IP address`);
    (records[name.toLowerCase()] ??= { addresses: [] }).addresses!.push(ip);
  }
  return {
    tap: values.tap,
    netns: values.netns,
    mtu,
    subnet,
    subnet6,
    mac: values.mac,
    dhcp: values.dhcp === true,
    leaseTime,
    poolEnd,
    dns: values.dns === true,
    records,
    pcap: values.pcap,
    stats: values.stats === true,
    json: values.json === true,
  };
}

/** A human line for an event (without --json). */
function describe(e: LanGatewayEvent): string {
  switch (e.event) {
    case 'lease':
      return `lease ${e.address} to ${e.mac}${e.hostname !== undefined ? ` (${e.hostname})` : ''}${e.renewed ? ' (renewed)' : ''}`;
    case 'release':
      return `release ${e.address} by ${e.mac}`;
    case 'decline':
      return `decline ${e.address} by ${e.mac}`;
    case 'pool-exhausted':
      return `no address left for ${e.mac}`;
    case 'dns':
      return `dns ${e.source} ${e.transport} ${e.name} ${e.type} → ${e.rcode}${e.cached ? ' (cached)' : e.forwarded ? ' (forwarded)' : ''}`;
  }
}

/** Every frame on the interface, both ways, written to a pcap file (Ethernet) as it passes. */
function capture(path: string, now: () => number): { record(dir: 'in' | 'out', frame: Uint8Array): void; close(): void } {
  const writer = new PcapWriter({ linkType: 'ethernet', collect: false });
  const fd = openSync(path, 'w');
  writeSync(fd, writer.header());
  return {
    record: (_dir, frame) => void writeSync(fd, writer.record(now(), frame)),
    close: () => closeSync(fd),
  };
}

export async function gatewayCommand(args: string[], io: CliIO, signal?: AbortSignal): Promise<number> {
  let config: GatewayConfig | 'help';
  try {
    config = parseGatewayArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`synack gateway: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (config === 'help') {
    io.stdout(GATEWAY_HELP);
    return EXIT_OK;
  }
  let tap: TapLink;
  try {
    tap = TapLink.open({ name: config.tap, mtu: config.mtu, ...(config.netns !== undefined ? { netns: config.netns } : {}) });
  } catch (e) {
    io.stderr(`${e instanceof TunError ? e.message : `synack gateway: ${String(e)}`}\n`);
    return EXIT_FAILED;
  }
  const started = Date.now();
  const cap = config.pcap !== undefined ? capture(config.pcap, () => Date.now()) : null;
  const print = (e: LanGatewayEvent): void => {
    if (config.json) io.stdout(`${JSON.stringify(e)}\n`);
    else io.stdout(`${describe(e)}\n`);
  };
  let gw: LanGateway;
  try {
    gw = new LanGateway({
      link: tap,
      subnet: config.subnet,
      subnet6: config.subnet6,
      dhcp: config.dhcp,
      dns: config.dns,
      dnsRecords: config.records,
      dnsUpstream: config.dns ? new NodeDnsUpstream() : null,
      ...(config.leaseTime !== undefined ? { leaseTime: config.leaseTime } : {}),
      ...(config.poolEnd !== undefined ? { poolEnd: config.poolEnd } : {}),
      ...(config.mac !== undefined ? { mac: config.mac } : {}),
      onEvent: print,
    });
  } catch (e) {
    tap.close();
    cap?.close();
    io.stderr(`synack gateway: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILED;
  }
  if (cap !== null && gw.stack.interface !== null) gw.stack.interface.frameObserver = cap.record;
  const l = gw.layout;
  const mac = gw.stack.interface !== null ? formatMac(gw.stack.interface.mac) : '';
  const up = {
    event: 'up', t: 0, tap: tap.name, netns: config.netns ?? null, mac, gateway: l.gateway, dns: config.dns ? l.dns : null,
    gateway6: l.gateway6, dns6: config.dns ? l.dns6 : null, subnet: l.subnet, subnet6: l.subnet6,
    pool: config.dhcp ? [l.poolStart, config.poolEnd ?? l.poolEnd] : null,
  };
  if (config.json) io.stdout(`${JSON.stringify(up)}\n`);
  io.stderr(`synack gateway: up on ${tap.name}${config.netns !== undefined ? ` (guest side in ${config.netns})` : ''}, ` +
    `${mac} ${l.gateway}${l.gateway6 !== null ? ` ${l.gateway6}` : ''}` +
    `${config.dhcp ? `; DHCP ${l.poolStart}–${config.poolEnd ?? l.poolEnd}` : ''}${config.dns ? `; DNS ${l.dns}` : ''}\n`);
  const showStats = (): void => io.stderr(`synack gateway counters:\n${formatCounters(flatten(gw.counters()))}\n`);
  const onUsr1 = (): void => showStats();
  process.on('SIGUSR1', onUsr1);
  const stop = stopSignal(signal);
  const why = await stop.stopped;
  stop.dispose();
  process.off('SIGUSR1', onUsr1);
  gw.close();
  tap.close();
  cap?.close();
  if (config.stats) showStats();
  io.stderr(`synack gateway: ${why}, stopped after ${((Date.now() - started) / 1000).toFixed(1)} s; ${tap.name} removed\n`);
  return EXIT_OK;
}

/** `{ stack: { ipIn: 1, drops: {…} } }` → `{ 'stack.ipIn': 1, 'stack.drops': {…} }` for formatCounters. */
function flatten(groups: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [g, v] of Object.entries(groups)) {
    if (typeof v !== 'object' || v === null) continue;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[`${g}.${k}`] = x;
  }
  return out;
}
