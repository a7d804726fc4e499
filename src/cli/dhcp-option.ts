/**
 * `--dhcp` for `synack serve` and `synack get` on a TAP device: the stack starts without an IPv4
 * address and takes one from the LAN's DHCP server (RFC 2131, src/services/dhcp.ts runDhcpClient),
 * with the default router and the DNS servers (options 3 and 6) that the command's names are then
 * resolved through (src/services/dns-stub.ts). The wait for the first lease is bounded; the client
 * keeps running after it (renewals, RFC 2131 §4.4.5) until the command closes the stack.
 *
 * No RELEASE at exit, as dhclient and udhcpc do by default: the server keeps the lease until it
 * expires, and a run with the same `--mac` gets the same address back.
 *
 * Node only (CLI), though it touches nothing of Node's but the clock of the stack it is given.
 */
import { formatMac } from '../wire/ethernet.js';
import { runDhcpClient, type DhcpClientHandle, type DhcpHost } from '../services/dhcp.js';
import type { DhcpLease } from '../services/dhcp-client.js';

/** How long a command waits for its first lease before giving up (exit 1). */
export const DHCP_TIMEOUT_MS = 30_000;

/** What the commands take from their surroundings for --dhcp; tests replace it. */
export interface DhcpDeps {
  /** The wait for the first lease (default DHCP_TIMEOUT_MS). */
  dhcpTimeoutMs?: number;
}

/** The lease as the commands report it (the `dhcp` field of their --json summaries). */
export interface DhcpSummary {
  /** The stack's MAC, the lease's chaddr. */
  mac: string;
  address: string;
  prefix: number;
  router: string | null;
  dns: string[];
  /** The server that granted it (option 54). */
  server: string;
  /** Seconds, as the server gave them. */
  leaseTime: number;
  domain?: string;
  /** From the first DISCOVER to the ACK, in milliseconds. */
  ms: number;
}

/** A running client with its first lease. */
export interface DhcpRun {
  handle: DhcpClientHandle;
  summary: DhcpSummary;
}

/**
 * Starts a DHCP client on `stack` and waits for its first lease, at most `timeoutMs`, or until
 * `signal` aborts. Rejects with a one-line Error (the client closed) on timeout or abort. On success
 * the stack has the address, router and DNS servers, and the client stays on to renew.
 */
export async function acquireLease(
  stack: DhcpHost & { readonly interface: { readonly mac: Uint8Array } | null },
  device: string,
  opts: { timeoutMs: number; hostname?: string; signal?: AbortSignal },
): Promise<DhcpRun> {
  if (stack.interface === null) throw new Error('DHCP needs an Ethernet link (--tap)');
  const mac = formatMac(stack.interface.mac);
  const started = performance.now();
  const handle = runDhcpClient(stack, opts.hostname !== undefined ? { hostname: opts.hostname } : {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    const fail = (why: string): void => {
      // The state says how far it got: SELECTING (no offer at all) or REQUESTING (offered, no ACK).
      const state = handle.client.state;
      // Rejected before close() rejects `ready`, so the race reports this reason.
      reject(new Error(`${why} (the DHCP client was ${state}; synack's MAC is ${mac})`));
      handle.close();
    };
    timer = setTimeout(() => fail(`no DHCP lease on ${device} within ${opts.timeoutMs / 1000} s`), opts.timeoutMs);
    onAbort = () => fail(`interrupted while waiting for a DHCP lease on ${device}`);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort);
  });
  try {
    const lease: DhcpLease = await Promise.race([handle.ready, failed]);
    return { handle, summary: summarize(lease, mac, performance.now() - started) };
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) opts.signal?.removeEventListener('abort', onAbort);
  }
}

function summarize(l: DhcpLease, mac: string, ms: number): DhcpSummary {
  return {
    mac,
    address: l.address,
    prefix: l.prefix,
    router: l.router,
    dns: [...l.dnsServers],
    server: l.serverId,
    leaseTime: l.leaseTime,
    ...(l.domainName !== undefined ? { domain: l.domainName } : {}),
    ms: Math.round(ms * 10) / 10,
  };
}

/** 43200 → "12 h", 90 → "90 s", 0xffffffff → "infinite" (RFC 2131 §3.3). */
function formatSeconds(s: number): string {
  if (s === 0xffffffff) return 'infinite';
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}

/** `DHCP lease 10.0.3.53/24 from 10.0.3.1 in 12.3 ms: router 10.0.3.1, DNS 10.0.3.1, lease 12 h`. */
export function describeLease(d: DhcpSummary): string {
  return `DHCP lease ${d.address}/${d.prefix} from ${d.server} in ${d.ms} ms: router ${d.router ?? 'none'}, ` +
    `DNS ${d.dns.length > 0 ? d.dns.join(' ') : 'none'}${d.domain !== undefined ? `, domain ${d.domain}` : ''}, lease ${formatSeconds(d.leaseTime)}`;
}
