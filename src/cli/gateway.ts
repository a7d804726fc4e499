/**
 * `synack gateway --tap IF [--netns NS] [--dhcp] [--dns] [--upstream direct|ws(s)://…]
 * [--forward RULE]... [--allow RULE]... [--deny RULE]... …`: synack as the whole network of a guest
 * behind a TAP device (CONTRACT.md, CLI): ARP/NDP, ping, Router Advertisements, DHCP and DNS (the
 * LAN half, issue 14), and every TCP connection and UDP flow of the guest relayed through a way out,
 * port forwarding into the guest and a policy (issue 15).
 *
 * The core (src/gateway/gateway.ts) runs anywhere; this file adds the TAP device, the direct
 * upstream and the host's resolver, the `ws` WebSocket for Wisp, host listeners for --forward, the
 * pcap file, the signals and the output.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Gateway, type GatewayEvent } from '../gateway/gateway.js';
import { parseHostForward, type HostForwardSpec } from '../gateway/hostfwd.js';
import { startHostForward, type HostForward } from '../gateway/hostfwd-node.js';
import { lanLayout } from '../gateway/lan.js';
import { Policy, parseRule } from '../gateway/policy.js';
import { relayTcp } from '../gateway/relay.js';
import { DirectUpstream } from '../gateway/upstream-direct.js';
import type { Upstream } from '../gateway/upstream.js';
import { NodeWebSocket } from '../gateway/websocket-node.js';
import { WispUpstream } from '../gateway/wisp.js';
import { impairEthernet } from '../link/impair.js';
import type { EthernetLinkEnd } from '../link/link.js';
import { TapLink, TunError } from '../link/tap.js';
import { NodeDnsUpstream } from '../services/dns-upstream-node.js';
import type { DnsStaticEntry, DnsStaticRecords } from '../services/dns-server.js';
import { PcapWriter } from '../trace/pcap.js';
import { parseAddress } from '../wire/address.js';
import { formatMac } from '../wire/ethernet.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, numberOption, parseCommandArgs, type CliIO } from './io.js';
import { IMPAIR_OPTIONS, describeImpairment, impairs, parseImpairValues, type Impairment } from './impair-options.js';
import { formatCounters, stopSignal } from './tun-options.js';

export const GATEWAY_HELP = `Usage: synack gateway --tap IF [--netns NS] [--dhcp] [--dns] [--upstream direct|ws(s)://URL]
                      [--forward RULE]... [--allow RULE]... [--deny RULE]... [options]

Puts a synack router on a Linux TAP device whose kernel side is the guest (a VM's NIC, or a network
namespace given with --netns): it answers ARP, neighbour discovery and ping, sends Router
Advertisements (SLAAC, and the DNS server), and with --dhcp and --dns hands out leases and answers
names. With --upstream it is the guest's way out: every TCP connection and UDP flow the guest opens,
to any address and port, is terminated here and relayed — the destination is reached first, so a
refused port is a reset for the guest at once and an unreachable or denied one an ICMP unreachable.
Runs until SIGINT or SIGTERM, then removes the device. Needs root or CAP_NET_ADMIN. The layout is
QEMU user-mode networking's:

  10.0.2.2   the gateway; with an upstream, also the host (its 127.0.0.1)   fd00:0:0:2::2 (::1)
  10.0.2.3   DNS                                                             fd00:0:0:2::3
  10.0.2.15… leases

Options:
  --tap IF                 the TAP device (made if missing; removed on exit)
  --netns NS               move the device's kernel side (the guest's NIC) into network namespace NS;
                           this process stays in its own
  --mtu N                  the link MTU (default 1500), also offered by DHCP
  --offload, --no-offload  virtio-net offloads on the TAP device (default: on, off with the
                           impairment flags): the guest's TCP data comes in 64 KiB super-frames, one
                           read each, and the gateway's back-to-back segments leave the same way
                           (about 20 system calls per MiB instead of ~700); segments stay MTU-sized
  --subnet CIDR            IPv4 subnet (default 10.0.2.0/24; a /27 or larger)
  --subnet6 CIDR|none      IPv6 /64 advertised to the guest (default fd00:0:0:2::/64); none: IPv4 only
  --mac MAC                the gateway's MAC (default: random, locally administered)
  --dhcp                   serve DHCPv4 (RFC 2131): leases from .15 to the end of the subnet
  --lease-time S           lease time in seconds (default 86400)
  --pool-end IP            the last address leased (default the subnet's last host address)
  --dns                    answer DNS on .3 and ::3, over UDP and TCP: the --dns-record names, and
                           every other name through the upstream (direct: the host's resolver, its
                           resolv.conf servers; Wisp: fake IPs, see --fake-ip)
  --dns-record NAME=IP     a static name (A or AAAA, and its PTR); repeat for more

Relaying (with --upstream):
  --upstream WAY           none (default: the LAN only), direct (this process's own sockets:
                           node:net and node:dgram), or ws://… / wss://… (a Wisp server, v2 or v1)
  --forward RULE           host → guest, QEMU's hostfwd syntax: [tcp|udp]:[HOSTADDR]:HOSTPORT-
                           [GUESTADDR]:GUESTPORT, e.g. tcp:127.0.0.1:8080-:80 (HOSTPORT 0: any free
                           port, reported in the up event; empty GUESTADDR: the guest's DHCP address);
                           repeat for more. Works without --upstream too
  --allow RULE, --deny RULE
                           what the guest may reach: CIDR, CIDR:PORT, CIDR:LO-HI, [V6CIDR]:PORT,
                           *:PORT (optionally tcp: or udp: first); repeatable; checked before any
                           upstream is opened. An explicit --deny beats everything, an explicit
                           --allow beats the default denies
  --no-default-deny        drop the default denies (loopback, private, link-local incl. the cloud
                           metadata address 169.254.169.254, CGNAT, ULA, multicast, reserved)
  --no-host-alias          the gateway's address does not reach the host's loopback
  --fake-ip, --no-fake-ip  answer A/AAAA with addresses from 198.18.0.0/15 and connect by name
                           (default: on for Wisp, whose server resolves names; off for direct)
  --max-connections N      relayed TCP connections at once (default 4096); more get a reset
  --max-pending N          guest SYNs waiting for their upstream (default 256)
  --connect-timeout MS     opening an upstream takes at most this (default 10000), else unreachable
  --udp-idle S             a UDP flow idle this long is forgotten (default 300, RFC 4787)
  --max-udp-flows N        UDP flows at once (default 1024; the least recently used makes room)
  --keepalive S            keep-alive probes on idle relayed connections after S (default 60; 0 off)
  --user-timeout S         give up a guest that stops acknowledging after S (default 120; 0 off)

Impairing the guest's link (both directions, synack's own seeded model):
  --loss P --delay MS --reorder P --duplicate P --corrupt P --bandwidth BPS --seed N

Output:
  --pcap F                 write every frame on the device to F (pcap, Ethernet)
  --stats                  on exit, print the counters on stderr (SIGUSR1: at any time)
  --json                   one JSON object per line on stdout: {"event": "up" | "lease" | "release" |
                           "decline" | "pool-exhausted" | "dns" | "open" | "refused" | "close" |
                           "stats", "t": s, …}; open/refused/close have "protocol" (tcp or udp),
                           close has "bytesOut" (guest → destination), "bytesIn", "durationMs"
  -h, --help               this help

Examples (as root):
  # a namespace as the guest, with Debian's own DHCP client, and the host's network as its way out
  ip netns add guest
  synack gateway --tap tap0 --netns guest --dhcp --dns --upstream direct &
  ip netns exec guest udhcpc -i tap0 -q
  ip netns exec guest curl http://10.0.2.2:8000/     # the host's 127.0.0.1:8000
  # the same through a Wisp server, and the guest's web server on the host's port 8080
  synack gateway --tap tap0 --netns guest --dhcp --dns --upstream wss://wisp.example/ \\
    --forward tcp:127.0.0.1:8080-:80
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
  upstream: 'none' | 'direct' | URL;
  forwards: HostForwardSpec[];
  allow: string[];
  deny: string[];
  defaultDeny: boolean;
  hostAlias: boolean;
  fakeIp: boolean | undefined;
  maxConnections: number | undefined;
  maxPending: number | undefined;
  connectTimeoutMs: number | undefined;
  udpIdleMs: number | undefined;
  maxUdpFlows: number | undefined;
  keepAliveMs: number | undefined;
  userTimeoutMs: number | undefined;
  impairment: Impairment;
  /** Ask for TapLink `offload` and `gso`. */
  offload: boolean;
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
      upstream: { type: 'string' },
      forward: { type: 'string', multiple: true },
      allow: { type: 'string', multiple: true },
      deny: { type: 'string', multiple: true },
      'no-default-deny': { type: 'boolean' },
      'no-host-alias': { type: 'boolean' },
      'fake-ip': { type: 'boolean' },
      offload: { type: 'boolean' },
      'no-offload': { type: 'boolean' },
      'no-fake-ip': { type: 'boolean' },
      'max-connections': { type: 'string' },
      'max-pending': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'udp-idle': { type: 'string' },
      'max-udp-flows': { type: 'string' },
      keepalive: { type: 'string' },
      'user-timeout': { type: 'string' },
      ...IMPAIR_OPTIONS,
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
  let upstream: GatewayConfig['upstream'] = 'none';
  const u = values.upstream;
  if (u !== undefined && u !== 'none') {
    if (u === 'direct') upstream = 'direct';
    else {
      let url: URL | null = null;
      try {
        url = new URL(u);
      } catch {
        url = null;
      }
      if (url === null || (url.protocol !== 'ws:' && url.protocol !== 'wss:')) {
        throw new UsageError(`bad --upstream ${JSON.stringify(u)}: expected none, direct, or a Wisp server's ws:// or wss:// URL`);
      }
      upstream = url;
    }
  }
  const forwards: HostForwardSpec[] = [];
  for (const f of values.forward ?? []) {
    try {
      forwards.push(parseHostForward(f));
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
  }
  for (const [flag, list] of [['--allow', values.allow], ['--deny', values.deny]] as const) {
    for (const r of list ?? []) {
      try {
        parseRule(r, flag === '--allow' ? 'allow' : 'deny');
      } catch (e) {
        throw new UsageError(`bad ${flag} ${JSON.stringify(r)}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  if (values['fake-ip'] === true && values['no-fake-ip'] === true) throw new UsageError('--fake-ip and --no-fake-ip contradict each other');
  const positive = (flag: string, v: string | undefined): number | undefined =>
    numberOption(flag, v, (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
  const seconds = (flag: string, v: string | undefined): number | undefined => {
    const n = numberOption(flag, v, (x) => Number.isFinite(x) && x >= 0 && x <= 86400 * 7, 'seconds, 0 to 604800');
    return n === undefined ? undefined : Math.round(n * 1000);
  };
  const udpIdle = numberOption('--udp-idle', values['udp-idle'], (x) => Number.isFinite(x) && x > 0 && x <= 86400, 'seconds, more than 0');
  let impairment: Impairment;
  try {
    impairment = parseImpairValues(values);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.offload === true && values['no-offload'] === true) throw new UsageError('--offload and --no-offload contradict each other');
  // The impairment model works per frame: a 64 KiB super-frame would be lost, delayed or reordered
  // as one, which is not the path being modelled. So offload is off with impairment, and asking
  // for both is an error (as `synack serve --offload` with --loss is).
  if (values.offload === true && impairs(impairment)) {
    throw new UsageError('--offload cannot be combined with the impairment flags (a 64 KiB super-frame would be impaired as one frame)');
  }
  const offload = values['no-offload'] !== true && !impairs(impairment);
  return {
    upstream,
    forwards,
    offload,
    allow: values.allow ?? [],
    deny: values.deny ?? [],
    defaultDeny: values['no-default-deny'] !== true,
    hostAlias: values['no-host-alias'] !== true,
    fakeIp: values['fake-ip'] === true ? true : values['no-fake-ip'] === true ? false : undefined,
    maxConnections: positive('--max-connections', values['max-connections']),
    maxPending: positive('--max-pending', values['max-pending']),
    connectTimeoutMs: positive('--connect-timeout', values['connect-timeout']),
    udpIdleMs: udpIdle === undefined ? undefined : Math.round(udpIdle * 1000),
    maxUdpFlows: positive('--max-udp-flows', values['max-udp-flows']),
    keepAliveMs: seconds('--keepalive', values.keepalive),
    userTimeoutMs: seconds('--user-timeout', values['user-timeout']),
    impairment,
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
function describe(e: GatewayEvent): string {
  switch (e.event) {
    case 'open':
      return `${e.protocol} #${e.id} ${e.guest} → ${e.destination}${e.target !== e.destination ? ` (${e.target})` : ''} via ${e.upstream}`;
    case 'refused':
      return `${e.protocol} ${e.guest} → ${e.destination} refused (${e.answer}): ${e.reason}`;
    case 'close':
      return e.protocol === 'tcp'
        ? `tcp #${e.id} closed after ${(e.durationMs / 1000).toFixed(1)} s: ${e.bytesOut} B out, ${e.bytesIn} B in${e.error !== null ? `; ${e.error}` : ''}`
        : `udp #${e.id} closed (${e.reason}): ${e.datagramsOut} datagrams out, ${e.datagramsIn} in`;
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
    tap = TapLink.open({
      name: config.tap, mtu: config.mtu, ...(config.netns !== undefined ? { netns: config.netns } : {}),
      ...(config.offload ? { offload: true, gso: true } : {}),
    });
  } catch (e) {
    io.stderr(`${e instanceof TunError ? e.message : `synack gateway: ${String(e)}`}\n`);
    return EXIT_FAILED;
  }
  const started = Date.now();
  const cap = config.pcap !== undefined ? capture(config.pcap, () => Date.now()) : null;
  const print = (e: GatewayEvent | Record<string, unknown>): void => {
    if (config.json) io.stdout(`${JSON.stringify(e)}\n`);
    else if ('event' in e && typeof e.event === 'string' && e.event !== 'stats') io.stdout(`${describe(e as GatewayEvent)}\n`);
  };
  let upstream: Upstream | null = null;
  if (config.upstream === 'direct') {
    upstream = new DirectUpstream({ ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}) });
  } else if (config.upstream instanceof URL) {
    upstream = new WispUpstream({ url: config.upstream.href, WebSocket: NodeWebSocket });
  }
  const link: EthernetLinkEnd = impairs(config.impairment) ? impairEthernet(tap, config.impairment) : tap;
  let gw: Gateway;
  try {
    gw = new Gateway({
      link,
      upstream,
      subnet: config.subnet,
      subnet6: config.subnet6,
      dhcp: config.dhcp,
      dns: config.dns,
      dnsRecords: config.records,
      // Without an upstream, names not known here still go to the host's resolver (the LAN half).
      ...(upstream === null ? { dnsUpstream: config.dns ? new NodeDnsUpstream() : null } : {}),
      policy: new Policy({ allow: config.allow, deny: config.deny, defaults: config.defaultDeny }),
      hostAlias: config.hostAlias,
      ...(config.fakeIp !== undefined ? { fakeIp: config.fakeIp } : {}),
      ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
      ...(config.maxPending !== undefined ? { maxPending: config.maxPending } : {}),
      ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
      ...(config.udpIdleMs !== undefined ? { udpIdleMs: config.udpIdleMs } : {}),
      ...(config.maxUdpFlows !== undefined ? { maxUdpFlows: config.maxUdpFlows } : {}),
      ...(config.keepAliveMs !== undefined ? { keepAliveMs: config.keepAliveMs } : {}),
      ...(config.userTimeoutMs !== undefined ? { userTimeoutMs: config.userTimeoutMs } : {}),
      ...(config.leaseTime !== undefined ? { leaseTime: config.leaseTime } : {}),
      ...(config.poolEnd !== undefined ? { poolEnd: config.poolEnd } : {}),
      ...(config.mac !== undefined ? { mac: config.mac } : {}),
      onEvent: print,
    });
  } catch (e) {
    tap.close();
    cap?.close();
    upstream?.close();
    io.stderr(`synack gateway: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILED;
  }
  if (cap !== null && gw.stack.interface !== null) gw.stack.interface.frameObserver = cap.record;
  const forwards: HostForward[] = [];
  for (const spec of config.forwards) {
    try {
      forwards.push(await startHostForward(spec, {
        connect: (a, p) => gw.tcpConnectToGuest(p, a),
        udpBind: (family) => gw.stack.udpBind({ family }),
        guestAddress: () => gw.guestAddress(),
      }, (conn, stream) => void relayTcp(conn, stream)));
    } catch (e) {
      for (const f of forwards) await f.close();
      gw.close();
      tap.close();
      cap?.close();
      io.stderr(`synack gateway: --forward ${spec.protocol}:${spec.hostAddress}:${spec.hostPort}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT_FAILED;
    }
  }
  const l = gw.lan.layout;
  const mac = gw.stack.interface !== null ? formatMac(gw.stack.interface.mac) : '';
  const upstreamText = config.upstream instanceof URL ? config.upstream.href : config.upstream;
  const up = {
    event: 'up', t: 0, tap: tap.name, netns: config.netns ?? null, mac, gateway: l.gateway, dns: config.dns ? l.dns : null,
    gateway6: l.gateway6, dns6: config.dns ? l.dns6 : null, subnet: l.subnet, subnet6: l.subnet6,
    pool: config.dhcp ? [l.poolStart, config.poolEnd ?? l.poolEnd] : null,
    upstream: upstreamText,
    offload: tap.offload,
    forwards: forwards.map((f) => ({
      protocol: f.spec.protocol, host: f.address, port: f.port, guest: `${f.spec.guestAddress ?? ''}:${f.spec.guestPort}`,
    })),
  };
  if (config.json) io.stdout(`${JSON.stringify(up)}\n`);
  io.stderr(`synack gateway: up on ${tap.name}${config.netns !== undefined ? ` (guest side in ${config.netns})` : ''}, ` +
    `${mac} ${l.gateway}${l.gateway6 !== null ? ` ${l.gateway6}` : ''}` +
    `${config.dhcp ? `; DHCP ${l.poolStart}–${config.poolEnd ?? l.poolEnd}` : ''}${config.dns ? `; DNS ${l.dns}` : ''}` +
    `; upstream ${upstreamText}${forwards.map((f) => `; ${f.spec.protocol} ${f.address}:${f.port} → guest :${f.spec.guestPort}`).join('')}` +
    `${impairs(config.impairment) ? `; link impaired: ${describeImpairment(config.impairment)}` : ''}` +
    `${config.offload && !tap.offload ? `; offload refused (${tap.offloadRefused ?? 'unknown'}), running without it` : ''}\n`);
  const counters = (): Record<string, unknown> => ({
    ...gw.allCounters(),
    ...(forwards.length > 0 ? { forward: Object.fromEntries(forwards.map((f, i) => [`${i}`, f.counters])) } : {}),
    process: { heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss },
  });
  const showStats = (): void => io.stderr(`synack gateway counters:\n${formatCounters(flatten(counters()))}\n`);
  const onUsr1 = (): void => {
    if (config.json) {
      print({ event: 'stats', t: (Date.now() - started) / 1000, heapUsed: process.memoryUsage().heapUsed, ...counters() });
    }
    showStats();
  };
  process.on('SIGUSR1', onUsr1);
  const stop = stopSignal(signal);
  const why = await stop.stopped;
  stop.dispose();
  process.off('SIGUSR1', onUsr1);
  for (const f of forwards) await f.close();
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
