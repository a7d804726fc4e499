/**
 * The Linux side of the LAN tests: Debian's DHCP clients (busybox udhcpc, ISC dhclient), each run
 * with a script of ours that configures the interface with `ip` and prints what it was given, so a
 * test reads the lease from the client's own output and never lets a distribution script touch a
 * resolv.conf (and each namespace has its own anyway: Netns.create); `dnsmasq` as the upstream
 * resolver or as a DHCP server; the tools' presence for `skipped: needs X`.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { have } from './netns.js';
import type { Netns, NsProcess } from './netns.js';

/** What a DHCP client reported when it was bound. */
export interface KernelLease {
  ip: string;
  mask: string;
  router: string;
  dns: string[];
  domain: string;
  lease: number;
  mtu: number | null;
}

/** Parses a `LEASE key=value …` line printed by the scripts below. */
export function parseLeaseLine(line: string): KernelLease {
  const fields = new Map<string, string>();
  for (const m of line.matchAll(/(\w+)=(\S*)/g)) fields.set(m[1]!, m[2]!);
  const mtu = fields.get('mtu');
  return {
    ip: fields.get('ip') ?? '',
    mask: fields.get('mask') ?? '',
    router: (fields.get('router') ?? '').split(',')[0] ?? '',
    dns: (fields.get('dns') ?? '').split(',').filter((s) => s !== ''),
    domain: fields.get('domain') ?? '',
    lease: Number(fields.get('lease') ?? NaN),
    mtu: mtu === undefined || mtu === '' ? null : Number(mtu),
  };
}

/**
 * busybox udhcpc's script ($1 is the event; the lease in $ip, $subnet, $router, $dns, …). It
 * prints one `LEASE …` line on bound/renew and configures the address and default route.
 */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface" scope global 2>/dev/null; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface" scope global 2>/dev/null
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface"
    echo "LEASE udhcpc-$1 ip=$ip mask=$mask router=$(echo $router | tr ' ' ,) dns=$(echo $dns | tr ' ' ,) domain=$domain lease=$lease mtu=$mtu"
    ;;
  leasefail|nak) echo "DHCP udhcpc-$1 $message" ;;
esac
exit 0
`;

/** ISC dhclient's script ($reason; the lease in $new_ip_address, …). */
const DHCLIENT_SCRIPT = `#!/bin/sh
case "$reason" in
  PREINIT) ip link set "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface" scope global 2>/dev/null
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_routers" ] && ip route replace default via "\${new_routers%% *}" dev "$interface"
    echo "LEASE dhclient-$reason ip=$new_ip_address mask=$new_subnet_mask router=$(echo $new_routers | tr ' ' ,) dns=$(echo $new_domain_name_servers | tr ' ' ,) domain=$new_domain_name lease=$new_dhcp_lease_time mtu=$new_interface_mtu"
    ;;
  EXPIRE|FAIL|RELEASE|STOP) ip addr flush dev "$interface" scope global 2>/dev/null; echo "DHCP dhclient-$reason" ;;
esac
exit 0
`;

/** A temporary folder with the scripts, lease and pid files; `dispose` removes it. */
export class DhcpClientFiles {
  readonly dir: string;
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'synack-dhcp-'));
    for (const [name, text] of [['udhcpc.sh', UDHCPC_SCRIPT], ['dhclient.sh', DHCLIENT_SCRIPT]] as const) {
      writeFileSync(join(this.dir, name), text);
      chmodSync(join(this.dir, name), 0o755);
    }
  }

  /** busybox udhcpc in the foreground: up to 5 DISCOVERs a second apart, exits after a lease (-q). */
  udhcpcArgs(iface: string, extra: string[] = []): string[] {
    return ['udhcpc', '-f', '-i', iface, '-s', join(this.dir, 'udhcpc.sh'), '-t', '5', '-T', '1', '-n', ...extra];
  }

  /** ISC dhclient in the foreground (-d), IPv4, one try (-1), its files in our folder. */
  dhclientArgs(iface: string, extra: string[] = []): string[] {
    return ['-4', '-d', '-1', '-v', '-sf', join(this.dir, 'dhclient.sh'), '-lf', join(this.dir, 'dhclient.leases'),
      '-pf', join(this.dir, 'dhclient.pid'), ...extra, iface];
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The Debian tools the LAN tests drive, by command, and the package that brings each. */
export const LAN_TOOLS: Record<string, { check: [string, string[]]; pkg: string }> = {
  busybox: { check: ['busybox', ['true']], pkg: 'busybox' },
  dhclient: { check: ['dhclient', ['--version']], pkg: 'isc-dhcp-client' },
  dig: { check: ['dig', ['-v']], pkg: 'bind9-dnsutils' },
  dnsmasq: { check: ['dnsmasq', ['--version']], pkg: 'dnsmasq-base' },
  ping: { check: ['ping', ['-V']], pkg: 'iputils-ping' },
};

/** The tools of `names` that this machine lacks. */
export function missingTools(names: string[]): string[] {
  return names.filter((n) => {
    const t = LAN_TOOLS[n];
    return t === undefined || !have(t.check[0], t.check[1]);
  });
}

/**
 * Starts dnsmasq inside `ns` in the foreground (killed with the namespace), with no resolv.conf,
 * no /etc/hosts and the given extra arguments (records, or a DHCP range). Resolves once it has
 * started (its "started, version" line).
 */
export async function startDnsmasq(ns: Netns, args: string[]): Promise<NsProcess> {
  // Its log goes to stderr: joined to stdout, where NsProcess reads lines.
  const p = ns.start('sh', ['-c', 'exec dnsmasq "$@" 2>&1', 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts',
    '--log-facility=-', '--pid-file', '--user=root', ...args]);
  await p.waitForLine(/started, version|FAILED|failed/, 10_000);
  return p;
}
