/**
 * A DHCPv4 server core (RFC 2131 §4.3), sans I/O: `handle(message, now)` returns the reply and
 * where it goes, or null. `serveDhcp` (src/services/dhcp.ts) binds it to a stack's UDP port 67.
 *
 * What it does:
 *  - a pool (an address range in one subnet) and leases with expiry; an OFFER holds its address
 *    only briefly (30 s), a RELEASE or an expiry makes the address free again (the client that
 *    had it still gets it back first);
 *  - DISCOVER → OFFER; REQUEST in SELECTING (with our server id), INIT-REBOOT (requested address,
 *    no server id) and RENEWING/REBINDING (ciaddr) → ACK or NAK; RELEASE; DECLINE (the address is
 *    unusable for a while: another host answers ARP for it); INFORM → ACK without an address or
 *    lease time (§3.4);
 *  - options subnet mask, router, DNS, domain name, broadcast address, lease time, T1/T2, interface
 *    MTU, written in the order of the client's parameter request list (RFC 2132 §9.8);
 *  - static leases per MAC; a bound on outstanding offers and token buckets per MAC and overall,
 *    so that a guest flooding DISCOVERs with random MACs holds at most a few addresses at a time;
 *  - counters by reason and events (granted, released, declined, pool exhausted).
 *
 * Defaults are QEMU user-mode networking's: 10.0.2.0/24, server and router 10.0.2.2, DNS 10.0.2.3,
 * pool 10.0.2.15–10.0.2.254, a 24-hour lease.
 *
 * Replies go to 255.255.255.255:68 unless ciaddr is set (then to ciaddr:68) or a relay forwarded the
 * request (then to giaddr:67). RFC 2131 §4.1 lets a server broadcast to a client that cannot receive
 * unicast before it is configured; always doing so needs no ARP entry for an unconfigured client and
 * works whatever the broadcast flag says. NAKs are always broadcast (§4.1).
 */
import { parseCidr } from '../wire/address.js';
import {
  BOOTREPLY, BOOTREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpType, emptyDhcpMessage, formatMac,
  prefixToMask, type DhcpMessage, type DhcpOptions,
} from '../wire/dhcp.js';

export interface DhcpStaticLease {
  /** "52:54:00:12:34:56" (case and separators ":" or "-" as you like). */
  mac: string;
  address: string;
}

export interface DhcpServerOptions {
  /** This server's address: the server identifier (option 54). Default "10.0.2.2". */
  serverAddress?: string;
  /** The subnet the pool is in. Default "10.0.2.0/24". */
  subnet?: string;
  /** Option 3; null for none. Default the server address. */
  router?: string | null;
  /** Option 6. Default ["10.0.2.3"]. */
  dnsServers?: string[];
  /** Option 15. Default none. */
  domainName?: string;
  /** Option 26. Default none. */
  mtu?: number;
  /** First and last pool address. Default 10.0.2.15 and the last host address of the subnet. */
  poolStart?: string;
  poolEnd?: string;
  /** Lease time, seconds (option 51). Default 86400. */
  leaseTime?: number;
  /** T1 and T2, seconds (options 58, 59). Default 0.5 and 0.875 of the lease (RFC 2131 §4.4.5). */
  renewalTime?: number;
  rebindingTime?: number;
  /** How long an OFFER holds its address for the client, ms. Default 30 000. */
  offerHoldMs?: number;
  /** How long a DECLINEd address stays unusable, ms. Default 600 000. */
  declineHoldMs?: number;
  staticLeases?: DhcpStaticLease[];
  /** At most this many OFFERs awaiting a REQUEST at once: a new one withdraws the oldest. Default 32. */
  maxPendingOffers?: number;
  /** Bound on the lease table (bound leases + offers + remembered expired ones). Default 4096. */
  maxLeases?: number;
  /** Token bucket per client MAC: messages/second and burst. Default 4/s, burst 8. */
  perClientRate?: { perSecond: number; burst: number };
  /** Token bucket for all clients together. Default 100/s, burst 200. */
  globalRate?: { perSecond: number; burst: number };
  /** Answer an INIT-REBOOT or renewal for an address it has no record of when it is free (as a
   *  restarted server should on its own link). Default true; false follows RFC 2131 §4.3.2 to the
   *  letter: stay silent. */
  authoritative?: boolean;
  onEvent?: (e: DhcpServerEvent) => void;
}

export type DhcpServerEvent =
  | { type: 'lease-granted'; mac: string; address: string; hostname?: string; expiresAt: number; renewed: boolean }
  | { type: 'lease-released'; mac: string; address: string }
  | { type: 'lease-declined'; mac: string; address: string; message?: string }
  | { type: 'pool-exhausted'; mac: string };

/** What the server did with each message: one counter per outcome. */
export type DhcpServerCounter =
  | 'received'
  | 'offers'
  | 'acks'
  | 'naks'
  | 'informs'
  | 'releases'
  | 'declines'
  /** Not a BOOTREQUEST, no message type (plain BOOTP), or a type a server does not take. */
  | 'ignored-not-request'
  | 'ignored-no-type'
  | 'ignored-type'
  /** No client identifier and no chaddr: nothing to key a lease on. */
  | 'ignored-no-client'
  | 'rate-limited-client'
  | 'rate-limited-global'
  /** No address to offer: every pool address is bound, offered or declined, or the table is full. */
  | 'pool-exhausted'
  /** Offers withdrawn, oldest first, to keep at most maxPendingOffers outstanding. */
  | 'offers-withdrawn'
  /** A REQUEST that selects another server's offer: ours is withdrawn. */
  | 'request-other-server'
  /** A REQUEST, RELEASE or DECLINE about an address or client we have no record of. */
  | 'unknown-lease';

export interface DhcpReply {
  message: DhcpMessage;
  /** Where to send it: 255.255.255.255:68, ciaddr:68 or giaddr:67. */
  to: { address: string; port: number };
  /** The client's parameter request list, to order the options when written (writeDhcp's `order`). */
  order?: number[];
}

export interface DhcpLeaseInfo {
  mac: string;
  address: string;
  state: 'offered' | 'bound' | 'free';
  /** ms, on the clock `handle` was given. */
  expiresAt: number;
  hostname?: string;
  static: boolean;
}

interface Lease {
  key: string;
  mac: string;
  address: number;
  state: 'offered' | 'bound';
  expiresAt: number;
  hostname?: string;
}

interface Bucket {
  tokens: number;
  at: number;
}

const BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';
/** Remembered clients for the per-client rate limit (oldest forgotten first). */
const MAX_BUCKETS = 1024;

function toNum(s: string, what: string): number {
  const c = parseCidr(s.includes('/') ? s : `${s}/32`);
  if (c === null || c.address.length !== 4) throw new TypeError(`DHCP server ${what}: not an IPv4 address: ${s}`);
  const a = c.address;
  return ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0;
}

function toStr(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** "52-54-00-AB-cd-EF" → "52:54:00:ab:cd:ef". */
export function normalizeMac(mac: string): string {
  const parts = mac.toLowerCase().split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-f]{1,2}$/.test(p))) {
    throw new TypeError(`not a MAC address: ${mac}`);
  }
  return parts.map((p) => p.padStart(2, '0')).join(':');
}

export class DhcpServer {
  readonly serverAddress: string;
  readonly counters: Record<DhcpServerCounter, number> = {
    received: 0, offers: 0, acks: 0, naks: 0, informs: 0, releases: 0, declines: 0,
    'ignored-not-request': 0, 'ignored-no-type': 0, 'ignored-type': 0, 'ignored-no-client': 0,
    'rate-limited-client': 0, 'rate-limited-global': 0, 'pool-exhausted': 0, 'offers-withdrawn': 0,
    'request-other-server': 0, 'unknown-lease': 0,
  };

  private readonly server: number;
  private readonly network: number;
  private readonly prefix: number;
  private readonly netmask: number;
  private readonly poolStart: number;
  private readonly poolEnd: number;
  private readonly leaseTime: number;
  private readonly t1: number;
  private readonly t2: number;
  private readonly offerHoldMs: number;
  private readonly declineHoldMs: number;
  private readonly maxPendingOffers: number;
  private readonly maxLeases: number;
  private readonly authoritative: boolean;
  private readonly perClient: { perSecond: number; burst: number };
  private readonly global: { perSecond: number; burst: number };
  private readonly onEvent: ((e: DhcpServerEvent) => void) | undefined;
  /** Options every reply about this subnet carries (message type, server id and lease added per reply). */
  private readonly subnetOptions: DhcpOptions;
  /** Addresses never handed out dynamically: server, router, DNS, network, broadcast, static ones. */
  private readonly reserved = new Set<number>();
  /** MAC → static address. */
  private readonly statics = new Map<string, number>();
  /** Client key (client id, else MAC) → lease; and address → lease. */
  private readonly byClient = new Map<string, Lease>();
  private readonly byAddress = new Map<number, Lease>();
  /** Declined address → the time it becomes usable again. */
  private readonly declined = new Map<number, number>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly globalBucket: Bucket;
  /** Next-fit cursor into the pool, so that freed addresses are not handed out again at once. */
  private cursor: number;

  constructor(options: DhcpServerOptions = {}) {
    this.serverAddress = options.serverAddress ?? '10.0.2.2';
    this.server = toNum(this.serverAddress, 'serverAddress');
    const subnet = parseCidr(options.subnet ?? '10.0.2.0/24');
    if (subnet === null || subnet.address.length !== 4 || subnet.prefix > 30) {
      throw new TypeError(`DHCP server subnet: not an IPv4 prefix of /30 or shorter: ${options.subnet}`);
    }
    this.prefix = subnet.prefix;
    this.netmask = subnet.prefix === 0 ? 0 : (0xffffffff << (32 - subnet.prefix)) >>> 0;
    const a = subnet.address;
    this.network = (((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) & this.netmask) >>> 0;
    const broadcast = (this.network | ~this.netmask) >>> 0;
    const inSubnet = (n: number): boolean => ((n & this.netmask) >>> 0) === this.network;
    const defaultStart = this.prefix <= 27 ? this.network + 15 : this.network + 1;
    this.poolStart = options.poolStart !== undefined ? toNum(options.poolStart, 'poolStart') : defaultStart;
    this.poolEnd = options.poolEnd !== undefined ? toNum(options.poolEnd, 'poolEnd') : broadcast - 1;
    if (!inSubnet(this.poolStart) || !inSubnet(this.poolEnd) || this.poolEnd < this.poolStart) {
      throw new RangeError(`DHCP server pool ${toStr(this.poolStart)}–${toStr(this.poolEnd)} is not a range in ${toStr(this.network)}/${this.prefix}`);
    }
    this.cursor = this.poolStart;
    this.leaseTime = options.leaseTime ?? 86400;
    // RFC 2131 §4.4.5: T1 defaults to 0.5 × lease, T2 to 0.875 × lease.
    this.t1 = options.renewalTime ?? Math.floor(this.leaseTime * 0.5);
    this.t2 = options.rebindingTime ?? Math.floor(this.leaseTime * 0.875);
    this.offerHoldMs = options.offerHoldMs ?? 30_000;
    this.declineHoldMs = options.declineHoldMs ?? 600_000;
    this.maxPendingOffers = options.maxPendingOffers ?? 32;
    this.maxLeases = options.maxLeases ?? 4096;
    this.authoritative = options.authoritative ?? true;
    this.perClient = options.perClientRate ?? { perSecond: 4, burst: 8 };
    this.global = options.globalRate ?? { perSecond: 100, burst: 200 };
    this.globalBucket = { tokens: this.global.burst, at: -Infinity };
    this.onEvent = options.onEvent;

    const router = options.router === undefined ? this.serverAddress : options.router;
    const dns = options.dnsServers ?? ['10.0.2.3'];
    this.subnetOptions = { subnetMask: prefixToMask(this.prefix), broadcastAddress: toStr(broadcast) };
    if (router !== null) this.subnetOptions.routers = [router];
    if (dns.length > 0) this.subnetOptions.dnsServers = dns.slice();
    if (options.domainName !== undefined) this.subnetOptions.domainName = options.domainName;
    if (options.mtu !== undefined) this.subnetOptions.interfaceMtu = options.mtu;

    for (const n of [this.server, this.network, broadcast]) this.reserved.add(n);
    if (router !== null) this.reserved.add(toNum(router, 'router'));
    for (const d of dns) this.reserved.add(toNum(d, 'dnsServers'));
    for (const s of options.staticLeases ?? []) {
      const a = toNum(s.address, 'static lease');
      if (!inSubnet(a)) throw new RangeError(`DHCP static lease ${s.address} is not in ${toStr(this.network)}/${this.prefix}`);
      this.statics.set(normalizeMac(s.mac), a);
      this.reserved.add(a);
    }
  }

  /** Handles one message from a client; `now` in ms. Returns the reply, or null for none. */
  handle(m: DhcpMessage, now: number): DhcpReply | null {
    this.counters.received++;
    if (m.op !== BOOTREQUEST) return this.ignore('ignored-not-request');
    const type = m.options.messageType;
    if (type === undefined) return this.ignore('ignored-no-type');
    const key = clientKey(m);
    if (key === null) return this.ignore('ignored-no-client');
    if (!this.take(this.globalBucket, this.global, now)) return this.ignore('rate-limited-global');
    if (!this.take(this.bucket(key, now), this.perClient, now)) return this.ignore('rate-limited-client');
    switch (type) {
      case DhcpType.DISCOVER:
        return this.discover(m, key, now);
      case DhcpType.REQUEST:
        return this.request(m, key, now);
      case DhcpType.RELEASE:
        this.release(m, key, now);
        return null;
      case DhcpType.DECLINE:
        this.decline(m, key, now);
        return null;
      case DhcpType.INFORM:
        return this.inform(m);
      default:
        return this.ignore('ignored-type');
    }
  }

  /** The lease table now: bound and offered leases, and remembered (free) ones. */
  leases(now: number): DhcpLeaseInfo[] {
    const out: DhcpLeaseInfo[] = [];
    for (const l of this.byClient.values()) {
      const info: DhcpLeaseInfo = {
        mac: l.mac, address: toStr(l.address), state: l.expiresAt > now ? l.state : 'free', expiresAt: l.expiresAt,
        static: this.statics.get(l.mac) === l.address,
      };
      if (l.hostname !== undefined) info.hostname = l.hostname;
      out.push(info);
    }
    return out;
  }

  // ------------------------------------------------------------------------------------- messages

  private discover(m: DhcpMessage, key: string, now: number): DhcpReply | null {
    const mac = formatMac(m.chaddr);
    let lease = this.byClient.get(key);
    if (lease === undefined || !this.stillUsable(lease, now)) {
      if (lease !== undefined) this.forget(lease);
      // A guest inventing MACs gets offers that each hold an address for offerHoldMs; at most
      // maxPendingOffers are held at once, so the flood churns a few addresses, never the pool, and a
      // real client's DISCOVER is still answered (its REQUEST follows within a round trip).
      this.limitPendingOffers(now);
      const address = this.choose(m, mac, now);
      if (address === null) {
        this.counters['pool-exhausted']++;
        this.onEvent?.({ type: 'pool-exhausted', mac });
        return null;
      }
      lease = { key, mac, address, state: 'offered', expiresAt: 0 };
      this.byClient.set(key, lease);
      this.byAddress.set(address, lease);
    }
    // A bound client that DISCOVERs again (it rebooted and lost its state) keeps its lease; an
    // offered or expired one is held for offerHoldMs.
    if (lease.state !== 'bound' || lease.expiresAt <= now) {
      lease.state = 'offered';
      lease.expiresAt = now + this.offerHoldMs;
    }
    if (m.options.hostname !== undefined) lease.hostname = m.options.hostname;
    this.counters.offers++;
    return this.reply(m, DhcpType.OFFER, lease.address, true);
  }

  private request(m: DhcpMessage, key: string, now: number): DhcpReply | null {
    const o = m.options;
    const lease = this.byClient.get(key);
    if (o.serverId !== undefined) {
      // SELECTING (RFC 2131 §4.3.2): the client names the server whose offer it takes.
      if (o.serverId !== this.serverAddress) {
        if (lease !== undefined && lease.state === 'offered') this.forget(lease);
        return this.ignore('request-other-server');
      }
      const wanted = o.requestedIp ?? m.ciaddr;
      if (lease !== undefined && this.stillUsable(lease, now)) {
        if (toStr(lease.address) === wanted) return this.bind(m, lease, now);
        return this.nak(m, 'not the address offered');
      }
      // The offer was withdrawn (a flood of offers) or forgotten: the address may still be free.
      return this.grantUnrecorded(m, key, lease, wanted, now);
    }
    // INIT-REBOOT: requested address, ciaddr zero. RENEWING/REBINDING: ciaddr, no requested address.
    const initReboot = m.ciaddr === ZERO;
    const wanted = initReboot ? o.requestedIp : m.ciaddr;
    if (wanted === undefined) return this.ignore('unknown-lease');
    const address = toNum(wanted, 'request');
    if (((address & this.netmask) >>> 0) !== this.network) {
      // §4.3.2: the client moved to another network: NAK (INIT-REBOOT); a renewal is not ours.
      return initReboot ? this.nak(m, 'wrong network') : this.ignore('unknown-lease');
    }
    if (lease !== undefined && lease.address === address && this.stillUsable(lease, now)) return this.bind(m, lease, now);
    if (!this.authoritative) return this.ignore('unknown-lease');
    return this.grantUnrecorded(m, key, lease, wanted, now);
  }

  /**
   * A REQUEST for an address we hold no current record of for this client (a restarted server, an
   * expired lease or offer): grant it if it is free and this client may have it, else NAK so that
   * the client starts over.
   */
  private grantUnrecorded(m: DhcpMessage, key: string, lease: Lease | undefined, wanted: string, now: number): DhcpReply {
    const mac = formatMac(m.chaddr);
    const address = toNum(wanted, 'request');
    if (!this.available(address, mac, now)) return this.nak(m, 'address not available');
    if (lease !== undefined) this.forget(lease);
    if (this.byClient.size >= this.maxLeases) this.sweep(now);
    if (this.byClient.size >= this.maxLeases) return this.nak(m, 'lease table full');
    this.claim(address);
    const fresh: Lease = { key, mac, address, state: 'offered', expiresAt: now };
    this.byClient.set(key, fresh);
    this.byAddress.set(address, fresh);
    return this.bind(m, fresh, now);
  }

  private bind(m: DhcpMessage, lease: Lease, now: number): DhcpReply {
    const renewed = lease.state === 'bound' && lease.expiresAt > now;
    lease.state = 'bound';
    lease.expiresAt = this.leaseTime === 0xffffffff ? Infinity : now + this.leaseTime * 1000;
    if (m.options.hostname !== undefined) lease.hostname = m.options.hostname;
    this.counters.acks++;
    const e: DhcpServerEvent = {
      type: 'lease-granted', mac: lease.mac, address: toStr(lease.address), expiresAt: lease.expiresAt, renewed,
    };
    if (lease.hostname !== undefined) e.hostname = lease.hostname;
    this.onEvent?.(e);
    return this.reply(m, DhcpType.ACK, lease.address, true);
  }

  private release(m: DhcpMessage, key: string, now: number): void {
    // RFC 2131 §4.3.4: the client's lease for ciaddr ends. The record stays (expired) so that the
    // client gets the same address back if nobody else took it meanwhile.
    const lease = this.byClient.get(key);
    if (lease === undefined || toStr(lease.address) !== m.ciaddr || lease.state !== 'bound') {
      this.counters['unknown-lease']++;
      return;
    }
    lease.expiresAt = now;
    this.counters.releases++;
    this.onEvent?.({ type: 'lease-released', mac: lease.mac, address: toStr(lease.address) });
  }

  private decline(m: DhcpMessage, key: string, now: number): void {
    // RFC 2131 §4.3.3: the client found the address in use (ARP): mark it unusable, end the lease.
    const lease = this.byClient.get(key);
    const wanted = m.options.requestedIp;
    if (lease === undefined || wanted === undefined || toStr(lease.address) !== wanted) {
      this.counters['unknown-lease']++;
      return;
    }
    this.forget(lease);
    this.declined.set(lease.address, now + this.declineHoldMs);
    this.counters.declines++;
    const e: DhcpServerEvent = { type: 'lease-declined', mac: lease.mac, address: wanted };
    if (m.options.message !== undefined) e.message = m.options.message;
    this.onEvent?.(e);
  }

  private inform(m: DhcpMessage): DhcpReply | null {
    // RFC 2131 §3.4, §4.3.5: configuration only, to ciaddr; no yiaddr, no lease time.
    if (m.ciaddr === ZERO) return this.ignore('unknown-lease');
    this.counters.informs++;
    return this.reply(m, DhcpType.ACK, 0, false);
  }

  private nak(m: DhcpMessage, why: string): DhcpReply {
    this.counters.naks++;
    const r = this.reply(m, DhcpType.NAK, 0, false);
    // §4.3.2 table 3: a NAK carries only the type, server id, client id and a message.
    r.message.options = { messageType: DhcpType.NAK, serverId: this.serverAddress, message: why };
    if (m.options.clientId !== undefined) r.message.options.clientId = m.options.clientId;
    // §4.1: with giaddr zero, a NAK is broadcast (the client's address is what is wrong).
    if (m.giaddr === ZERO) r.to = { address: BROADCAST, port: DHCP_CLIENT_PORT };
    return r;
  }

  private reply(m: DhcpMessage, type: number, yiaddr: number, withLease: boolean): DhcpReply {
    const message = emptyDhcpMessage(BOOTREPLY);
    message.htype = m.htype;
    message.hlen = m.hlen;
    message.chaddr = m.chaddr;
    message.xid = m.xid;
    message.flags = m.flags;
    message.giaddr = m.giaddr;
    // §4.3.1 table 3: ciaddr is echoed for INFORM (and may be for ACKs to a renewing client).
    message.ciaddr = type === DhcpType.NAK ? ZERO : m.ciaddr;
    message.yiaddr = yiaddr === 0 ? ZERO : toStr(yiaddr);
    const options: DhcpOptions = { messageType: type, serverId: this.serverAddress, ...this.subnetOptions };
    if (withLease) {
      options.leaseTime = this.leaseTime;
      options.renewalTime = this.t1;
      options.rebindingTime = this.t2;
    }
    // RFC 6842: a server echoes the client identifier.
    if (m.options.clientId !== undefined) options.clientId = m.options.clientId;
    message.options = options;
    let to: { address: string; port: number };
    if (m.giaddr !== ZERO) to = { address: m.giaddr, port: DHCP_SERVER_PORT };
    else if (m.ciaddr !== ZERO) to = { address: m.ciaddr, port: DHCP_CLIENT_PORT };
    else to = { address: BROADCAST, port: DHCP_CLIENT_PORT };
    const r: DhcpReply = { message, to };
    if (m.options.parameterRequestList !== undefined) r.order = m.options.parameterRequestList;
    return r;
  }

  // ------------------------------------------------------------------------------------- addresses

  /** Whether a client's own lease (bound, offered, or expired but not taken) can still be its. */
  private stillUsable(lease: Lease, now: number): boolean {
    const hold = this.declined.get(lease.address);
    if (hold !== undefined && hold > now) return false;
    const st = this.statics.get(lease.mac);
    if (st !== undefined && st !== lease.address) return false;
    return this.byAddress.get(lease.address) === lease;
  }

  /** An address for a new lease: the static one, the requested one, or the next free in the pool. */
  private choose(m: DhcpMessage, mac: string, now: number): number | null {
    const st = this.statics.get(mac);
    if (st !== undefined) {
      const holder = this.byAddress.get(st);
      if (holder !== undefined) this.forget(holder);
      return st;
    }
    if (this.byClient.size >= this.maxLeases) this.sweep(now);
    if (this.byClient.size >= this.maxLeases) return null;
    const wanted = m.options.requestedIp;
    if (wanted !== undefined) {
      const a = toNum(wanted, 'requested address');
      if (a >= this.poolStart && a <= this.poolEnd && this.available(a, mac, now)) return this.claim(a);
    }
    // Next fit: first a never-leased address, then one whose lease ended longest ago.
    const size = this.poolEnd - this.poolStart + 1;
    let oldest: Lease | null = null;
    for (let i = 0; i < size; i++) {
      const a = this.poolStart + ((this.cursor - this.poolStart + i) % size);
      if (this.reserved.has(a)) continue;
      const hold = this.declined.get(a);
      if (hold !== undefined) {
        if (hold > now) continue;
        this.declined.delete(a);
      }
      const holder = this.byAddress.get(a);
      if (holder === undefined) {
        this.cursor = a + 1 > this.poolEnd ? this.poolStart : a + 1;
        return a;
      }
      if (holder.expiresAt <= now && (oldest === null || holder.expiresAt < oldest.expiresAt)) oldest = holder;
    }
    if (oldest === null) return null;
    return this.claim(oldest.address);
  }

  /** Whether `a` can be given to the client with `mac`: in pool (or its static), not held by another. */
  private available(a: number, mac: string, now: number): boolean {
    const st = this.statics.get(mac);
    if (st !== undefined) return a === st;
    if (this.reserved.has(a) || a < this.poolStart || a > this.poolEnd) return false;
    const hold = this.declined.get(a);
    if (hold !== undefined && hold > now) return false;
    const holder = this.byAddress.get(a);
    return holder === undefined || holder.mac === mac || holder.expiresAt <= now;
  }

  /** Takes `a` from whatever expired lease remembered it. */
  private claim(a: number): number {
    const holder = this.byAddress.get(a);
    if (holder !== undefined) this.forget(holder);
    return a;
  }

  private forget(lease: Lease): void {
    if (this.byClient.get(lease.key) === lease) this.byClient.delete(lease.key);
    if (this.byAddress.get(lease.address) === lease) this.byAddress.delete(lease.address);
  }

  private limitPendingOffers(now: number): void {
    let n = 0;
    let oldest: Lease | null = null;
    for (const l of this.byClient.values()) {
      if (l.state !== 'offered' || l.expiresAt <= now) continue;
      n++;
      if (oldest === null || l.expiresAt < oldest.expiresAt) oldest = l;
    }
    if (n >= this.maxPendingOffers && oldest !== null) {
      this.forget(oldest);
      this.counters['offers-withdrawn']++;
    }
  }

  /** Drops expired leases from the table (when it is full). */
  private sweep(now: number): void {
    for (const l of [...this.byClient.values()]) if (l.expiresAt <= now) this.forget(l);
    for (const [a, until] of this.declined) if (until <= now) this.declined.delete(a);
  }

  // ------------------------------------------------------------------------------------- limits

  private ignore(c: DhcpServerCounter): null {
    this.counters[c]++;
    return null;
  }

  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      b = { tokens: this.perClient.burst, at: now };
      this.buckets.set(key, b);
    }
    return b;
  }

  /** Token bucket: refill at rate.perSecond up to rate.burst, then take one if there is one. */
  private take(b: Bucket, rate: { perSecond: number; burst: number }, now: number): boolean {
    if (now > b.at) {
      b.tokens = b.at === -Infinity ? rate.burst : Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
}

/** RFC 2131 §4.2: a lease is the client identifier's if there is one, else chaddr's. */
function clientKey(m: DhcpMessage): string | null {
  const id = m.options.clientId;
  if (id !== undefined && id.length > 0) return `id:${Array.from(id, (x) => x.toString(16).padStart(2, '0')).join('')}`;
  if (m.hlen === 0) return null;
  return `hw:${m.htype}:${formatMac(m.chaddr)}`;
}

