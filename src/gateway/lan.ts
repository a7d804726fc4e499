/**
 * The LAN half of the gateway (issue 14; the gateway issue adds forwarding): a synack stack as the
 * router of an Ethernet segment whose other host is a guest — a VM, a container, the Linux kernel
 * behind a TAP device. It answers ARP and NDP, ping, sends Router Advertisements so the guest
 * configures IPv6 by SLAAC (RFC 4862) and learns DNS (RFC 8106), hands out DHCPv4 leases
 * (RFC 2131) and answers DNS (static names, and the rest through an upstream resolver).
 *
 * The layout is QEMU user-mode networking's, so its users find what they expect: subnet
 * 10.0.2.0/24, the gateway at .2, DNS at .3, leases from .15; for IPv6 (QEMU's fec0::/64 is the
 * deprecated site-local range, RFC 3879) a unique local prefix with the same host numbers.
 *
 * Core: no Node built-ins (the upstream resolver is passed in), so a page can run it beside a VM.
 */
import type { Clock } from '../link/clock.js';
import type { EthernetLinkEnd } from '../link/link.js';
import type { StackOptions } from '../stack/options.js';
import { Stack } from '../stack/stack.js';
import { serveDhcp, type DhcpServerHandle } from '../services/dhcp.js';
import type { DhcpServerEvent } from '../services/dhcp-server.js';
import { serveDns, type DnsService, type DnsQueryEvent, type DnsStaticRecords, type DnsUpstream } from '../services/dns-server.js';
import { formatAddress, parseCidr } from '../wire/address.js';

export const DEFAULT_SUBNET = '10.0.2.0/24';
export const DEFAULT_SUBNET6 = 'fd00:0:0:2::/64';
/** Host numbers in the subnet, as in QEMU's user-mode network. */
export const GATEWAY_HOST = 2;
export const DNS_HOST = 3;
export const FIRST_LEASE_HOST = 15;

export interface LanGatewayOptions {
  /** The segment the guest is on: a TapLink, an EthernetSwitch port, a v86 NIC adapter. */
  link: EthernetLinkEnd;
  clock?: Clock;
  /** IPv4 subnet (default 10.0.2.0/24); the gateway takes .2 and DNS .3. */
  subnet?: string;
  /** IPv6 /64 advertised to the guest (default fd00:0:0:2::/64); null for IPv4 only. */
  subnet6?: string | null;
  /** Serve DHCPv4 (pool from .15 to the last host address). Default true. */
  dhcp?: boolean;
  /** Lease time in seconds. Default 86400. */
  leaseTime?: number;
  /** Last pool address (default the subnet's last host address): a small pool for tests. */
  poolEnd?: string;
  /** Serve DNS on .3 (and ::3) over UDP and TCP. Default true. */
  dns?: boolean;
  /** Static names (A/AAAA, and PTR for them). */
  dnsRecords?: DnsStaticRecords;
  /** Where other names go; without one they are NXDOMAIN. */
  dnsUpstream?: DnsUpstream | null;
  /** The gateway's MAC; random locally administered (seeded) when omitted. */
  mac?: string;
  seed?: number;
  /** One call per event worth a line in `synack gateway --json`. */
  onEvent?: (e: LanGatewayEvent) => void;
  /** TCP buffer sizes and limits of the gateway's stack (src/stack/options.ts). */
  tcp?: Pick<StackOptions, 'receiveBufferSize' | 'receiveBufferMax' | 'sendBufferSize' | 'sendBufferMax' | 'mslMs' | 'maxConnections'>;
}

export type LanGatewayEvent =
  | { event: 'lease'; t: number; mac: string; address: string; hostname?: string; renewed: boolean; expiresAt: number }
  | { event: 'release'; t: number; mac: string; address: string }
  | { event: 'decline'; t: number; mac: string; address: string }
  | { event: 'pool-exhausted'; t: number; mac: string }
  | ({ event: 'dns'; t: number } & DnsQueryEvent);

/** The addresses a subnet gives the gateway. */
export interface LanLayout {
  subnet: string;
  prefix: number;
  gateway: string;
  dns: string;
  poolStart: string;
  poolEnd: string;
  subnet6: string | null;
  gateway6: string | null;
  dns6: string | null;
}

/** Host number `n` of `net` (an address with its host bits clear). */
function host(net: Uint8Array, n: number): Uint8Array {
  const out = Uint8Array.from(net);
  let carry = n;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = out[i]! + (carry & 0xff);
    out[i] = v & 0xff;
    carry = (carry >>> 8) + (v >>> 8);
  }
  return out;
}

/** `addr` with the host bits of a /`prefix` cleared. */
function networkOf(addr: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(addr);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i]! &= (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/**
 * The layout of a subnet (RangeError with a one-line reason when it cannot hold one): the IPv4
 * subnet needs room for the gateway, DNS and at least one lease (a /27 or larger); the IPv6 one
 * must be a /64, since SLAAC forms 64-bit interface identifiers (RFC 4862 §5.5.3).
 */
export function lanLayout(subnet = DEFAULT_SUBNET, subnet6: string | null = DEFAULT_SUBNET6): LanLayout {
  const v4 = parseCidr(subnet);
  if (v4 === null || v4.address.length !== 4) throw new RangeError(`bad subnet ${JSON.stringify(subnet)}: expected an IPv4 CIDR such as 10.0.2.0/24`);
  if (v4.prefix > 27) throw new RangeError(`subnet ${subnet} is too small: the gateway needs .2, .3 and leases from .${FIRST_LEASE_HOST} (a /27 or larger)`);
  const net = networkOf(v4.address, v4.prefix);
  const size = 2 ** (32 - v4.prefix);
  let layout6: Pick<LanLayout, 'subnet6' | 'gateway6' | 'dns6'> = { subnet6: null, gateway6: null, dns6: null };
  if (subnet6 !== null) {
    const v6 = parseCidr(subnet6);
    if (v6 === null || v6.address.length !== 16) throw new RangeError(`bad subnet6 ${JSON.stringify(subnet6)}: expected an IPv6 CIDR such as fd00:0:0:2::/64`);
    if (v6.prefix !== 64) throw new RangeError(`subnet6 ${subnet6} must be a /64 (SLAAC, RFC 4862 §5.5.3)`);
    const net6 = networkOf(v6.address, 64);
    layout6 = {
      subnet6: `${formatAddress(net6)}/64`,
      gateway6: formatAddress(host(net6, GATEWAY_HOST)),
      dns6: formatAddress(host(net6, DNS_HOST)),
    };
  }
  return {
    subnet: `${formatAddress(net)}/${v4.prefix}`,
    prefix: v4.prefix,
    gateway: formatAddress(host(net, GATEWAY_HOST)),
    dns: formatAddress(host(net, DNS_HOST)),
    poolStart: formatAddress(host(net, FIRST_LEASE_HOST)),
    poolEnd: formatAddress(host(net, size - 2)),
    ...layout6,
  };
}

/** A running LAN gateway: its stack and services. */
export class LanGateway {
  readonly stack: Stack;
  readonly layout: LanLayout;
  readonly dhcp: DhcpServerHandle | null;
  readonly dns: DnsService | null;

  constructor(options: LanGatewayOptions) {
    const layout = lanLayout(options.subnet, options.subnet6 === undefined ? DEFAULT_SUBNET6 : options.subnet6);
    this.layout = layout;
    const wantDns = options.dns ?? true;
    const addresses = [`${layout.gateway}/${layout.prefix}`];
    if (wantDns) addresses.push(`${layout.dns}/${layout.prefix}`);
    if (layout.gateway6 !== null) {
      addresses.push(`${layout.gateway6}/64`);
      if (wantDns) addresses.push(`${layout.dns6}/64`);
    }
    const clock = options.clock;
    this.stack = new Stack({
      link: options.link,
      addresses,
      name: 'gateway',
      ...options.tcp,
      ...(clock !== undefined ? { clock } : {}),
      ...(options.mac !== undefined ? { mac: options.mac } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      // Router mode on the segment (RFC 4861 §6): RAs for the /64 with the DNS server (RFC 8106).
      ...(layout.gateway6 !== null ? { advertise: { dns: wantDns && layout.dns6 !== null ? [layout.dns6] : [] } } : {}),
    });
    const now = (): number => this.stack.clock.now() / 1000;
    const emit = options.onEvent;
    if (options.dhcp ?? true) {
      this.dhcp = serveDhcp(this.stack, {
        serverAddress: layout.gateway,
        subnet: layout.subnet,
        router: layout.gateway,
        dnsServers: wantDns ? [layout.dns] : [],
        poolStart: layout.poolStart,
        poolEnd: options.poolEnd ?? layout.poolEnd,
        mtu: options.link.mtu,
        ...(options.leaseTime !== undefined ? { leaseTime: options.leaseTime } : {}),
        ...(emit !== undefined ? { onEvent: (e: DhcpServerEvent) => emit(dhcpEvent(e, now())) } : {}),
      });
    } else {
      this.dhcp = null;
    }
    if (wantDns) {
      this.dns = serveDns(this.stack, {
        records: options.dnsRecords ?? {},
        // The guest is one hop away on its own segment, where IP fragments are safe (the reason
        // for the 1232-byte default, DNS Flag Day 2020, is fragments lost across the Internet): a
        // client that offers a larger EDNS buffer (RFC 6891 §6.2.5) gets its answer in one piece
        // up to 4096 bytes, the size resolvers commonly offer, instead of a TC and a TCP retry.
        payloadSize: 4096,
        upstream: options.dnsUpstream ?? null,
        ...(emit !== undefined ? { onQuery: (e: DnsQueryEvent) => emit({ event: 'dns', t: now(), ...e }) } : {}),
      });
    } else {
      this.dns = null;
    }
  }

  /** Counters of every layer, for `--stats`. */
  counters(): Record<string, unknown> {
    return {
      stack: this.stack.counters,
      ...(this.stack.interface !== null ? { interface: this.stack.interface.counters } : {}),
      ...(this.dhcp !== null ? { dhcp: { ...this.dhcp.server.counters, notDhcp: this.dhcp.drops } } : {}),
      ...(this.dns !== null ? { dns: this.dns.server.counters } : {}),
    };
  }

  /** Stops the services and the interface's timers (RAs, neighbour cache). */
  close(): void {
    this.dhcp?.close();
    this.dns?.close();
    this.stack.interface?.close();
  }
}

function dhcpEvent(e: DhcpServerEvent, t: number): LanGatewayEvent {
  switch (e.type) {
    case 'lease-granted':
      return {
        event: 'lease', t, mac: e.mac, address: e.address, renewed: e.renewed, expiresAt: e.expiresAt / 1000,
        ...(e.hostname !== undefined ? { hostname: e.hostname } : {}),
      };
    case 'lease-released':
      return { event: 'release', t, mac: e.mac, address: e.address };
    case 'lease-declined':
      return { event: 'decline', t, mac: e.mac, address: e.address };
    case 'pool-exhausted':
      return { event: 'pool-exhausted', t, mac: e.mac };
  }
}
