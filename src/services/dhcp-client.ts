/**
 * A DHCPv4 client state machine (RFC 2131 §4.4, figure 5), sans I/O. Every input — `start`,
 * `handle(message)`, `tick` when `nextTimeout()` is due, `release`, `decline` — takes the time and
 * returns actions: messages to send (with their destination and the source address to send from)
 * and `configure` / `deconfigure` for the interface. `runDhcpClient` (src/services/dhcp.ts) runs
 * it on a stack.
 *
 *   INIT → SELECTING (DISCOVER, take the first OFFER) → REQUESTING (REQUEST, broadcast) → BOUND
 *   BOUND at T1 → RENEWING (REQUEST unicast to the server) → BOUND on ACK
 *   RENEWING at T2 → REBINDING (REQUEST broadcast to any server) → BOUND on ACK
 *   REBINDING at the lease's end → deconfigure, INIT.    A NAK anywhere → deconfigure, INIT.
 *   With `previousAddress`: INIT-REBOOT (REQUEST for it) first, INIT when refused or unanswered.
 *
 * Retransmission (§4.1): 4 s, 8 s, … up to 64 s, each ±1 s of uniform jitter, in SELECTING;
 * REQUESTING and INIT-REBOOT give up after `maxRequestAttempts` and start over. In RENEWING and
 * REBINDING (§4.4.5) the client waits half the time left until T2 (or the lease's end), at least 60 s.
 * A fresh random xid per exchange; retransmissions of one exchange keep it.
 */
import { Rng } from '../link/rng.js';
import {
  BOOTREPLY, BOOTREQUEST, DHCP_FLAG_BROADCAST, DHCP_SERVER_PORT, DhcpOption, DhcpType, emptyDhcpMessage,
  maskToPrefix, type DhcpMessage, type DhcpOptions,
} from '../wire/dhcp.js';

export type DhcpClientState =
  | 'STOPPED' | 'INIT' | 'INIT-REBOOT' | 'SELECTING' | 'REQUESTING' | 'BOUND' | 'RENEWING' | 'REBINDING';

/** What an ACK configured. Times are ms on the clock the client was given. */
export interface DhcpLease {
  address: string;
  prefix: number;
  /** The first router (option 3), or null. */
  router: string | null;
  routers: string[];
  dnsServers: string[];
  domainName?: string;
  mtu?: number;
  serverId: string;
  /** Seconds, as the server gave them (T1/T2 defaulted per RFC 2131 §4.4.5 when absent). */
  leaseTime: number;
  renewalTime: number;
  rebindingTime: number;
  acquiredAt: number;
  renewAt: number;
  rebindAt: number;
  expiresAt: number;
}

export type DhcpClientAction =
  | { type: 'send'; message: DhcpMessage; to: { address: string; port: number }; from: string }
  /** Use this lease. `previous` is the lease it replaces (a renewal: same address, new times). */
  | { type: 'configure'; lease: DhcpLease; previous: DhcpLease | null }
  /** Stop using this address. */
  | { type: 'deconfigure'; lease: DhcpLease; reason: 'expired' | 'nak' | 'released' | 'declined' };

export interface DhcpClientOptions {
  /** The interface's hardware address (chaddr): 6 bytes or "52:54:00:12:34:56". */
  mac: Uint8Array | string;
  /** Option 12. */
  hostname?: string;
  /** Option 61. Default type 1 (Ethernet) + MAC, as udhcpc sends; null for none. */
  clientId?: Uint8Array | null;
  /** Option 55. Default subnet mask, router, DNS, domain name, MTU, broadcast, lease, T1, T2. */
  requestList?: number[];
  /** Start in INIT-REBOOT asking for this address (a lease remembered across restarts). */
  previousAddress?: string;
  /** Seeds the xids and the retransmission jitter. Default Math.random. */
  seed?: number;
  /** Set the broadcast flag (§4.1) in DISCOVER and REQUEST before an address is configured. Default true. */
  broadcastFlag?: boolean;
  /** First retransmission delay and cap, ms. Default 4000 and 64 000 (RFC 2131 §4.1). */
  initialRetransmitMs?: number;
  maxRetransmitMs?: number;
  /** REQUESTs sent in REQUESTING/INIT-REBOOT before going back to INIT. Default 4. */
  maxRequestAttempts?: number;
}

const BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';
/** RFC 2131 §3.1 step 5: after a DECLINE, wait at least 10 s before starting over. */
const DECLINE_WAIT_MS = 10_000;
/** RFC 2131 §4.4.5: retransmissions while renewing or rebinding at least 60 s apart. */
const MIN_RENEW_RETRANSMIT_MS = 60_000;
const DEFAULT_REQUEST_LIST = [
  DhcpOption.SUBNET_MASK, DhcpOption.ROUTER, DhcpOption.DNS, DhcpOption.DOMAIN_NAME, DhcpOption.INTERFACE_MTU,
  DhcpOption.BROADCAST_ADDRESS, DhcpOption.LEASE_TIME, DhcpOption.RENEWAL_TIME, DhcpOption.REBINDING_TIME,
];

function macFrom(mac: Uint8Array | string): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new TypeError(`DHCP client mac: ${mac.length} bytes, expected 6`);
    return mac.slice();
  }
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) throw new TypeError(`not a MAC address: ${mac}`);
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** RFC 2131 §2.2 / RFC 950: without option 1, the classful mask of the address. */
function classfulPrefix(address: string): number {
  const first = Number(address.split('.')[0]);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

export class DhcpClient {
  private stateNow: DhcpClientState = 'STOPPED';
  private current: DhcpLease | null = null;
  private readonly mac: Uint8Array;
  private readonly rng: Rng;
  private readonly options: DhcpClientOptions;
  private readonly initialRetransmitMs: number;
  private readonly maxRetransmitMs: number;
  private readonly maxRequestAttempts: number;
  private readonly clientId: Uint8Array | null;
  private xid = 0;
  /** When the current exchange began (for secs, §4.4.1). */
  private exchangeStart = 0;
  private attempts = 0;
  /** Consecutive NAKs without a lease: each one waits longer before starting over. */
  private naks = 0;
  /** When the next timer-driven step is due, or null. */
  private deadline: number | null = null;
  /** The OFFER being requested: its address and server. */
  private offer: { address: string; serverId: string } | null = null;

  constructor(options: DhcpClientOptions) {
    this.options = options;
    this.mac = macFrom(options.mac);
    this.rng = new Rng(options.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.initialRetransmitMs = options.initialRetransmitMs ?? 4000;
    this.maxRetransmitMs = options.maxRetransmitMs ?? 64_000;
    this.maxRequestAttempts = options.maxRequestAttempts ?? 4;
    this.clientId = options.clientId === undefined ? Uint8Array.of(1, ...this.mac) : options.clientId;
  }

  get state(): DhcpClientState {
    return this.stateNow;
  }

  /** The lease in use (BOUND, RENEWING, REBINDING), or null. */
  get lease(): DhcpLease | null {
    return this.current;
  }

  /**
   * Whether a datagram on port 68 can be for this client, read from the raw bytes without parsing:
   * a BOOTREPLY with the current exchange's xid and this client's chaddr. Replies are broadcast, so
   * on a LAN of N clients each sees every other's: this keeps that from being N full parses.
   */
  wants(data: Uint8Array): boolean {
    if (data.length < 34 || data[0] !== BOOTREPLY || this.stateNow === 'STOPPED') return false;
    const xid = ((data[4] << 24) | (data[5] << 16) | (data[6] << 8) | data[7]) >>> 0;
    if (xid !== this.xid) return false;
    for (let i = 0; i < 6; i++) if (data[28 + i] !== this.mac[i]) return false;
    return true;
  }

  /** When `tick` should next be called (absolute ms), or null for no timer. */
  nextTimeout(): number | null {
    return this.deadline;
  }

  /** Starts: INIT-REBOOT with a previous address, else INIT (a DISCOVER now). */
  start(now: number): DhcpClientAction[] {
    if (this.stateNow !== 'STOPPED') return [];
    const prev = this.options.previousAddress;
    if (prev !== undefined) {
      this.newExchange(now);
      this.stateNow = 'INIT-REBOOT';
      this.offer = { address: prev, serverId: '' };
      return [this.sendRequest(now)];
    }
    return this.discover(now);
  }

  /** Handles a message that arrived on port 68. Messages not for this client are ignored. */
  handle(m: DhcpMessage, now: number): DhcpClientAction[] {
    if (m.op !== BOOTREPLY || m.xid !== this.xid || !this.forMe(m)) return [];
    const type = m.options.messageType;
    switch (this.stateNow) {
      case 'SELECTING':
        if (type !== DhcpType.OFFER || m.yiaddr === ZERO || m.options.serverId === undefined) return [];
        // §4.4.1: the client may wait for more offers; the first one is as good as any here.
        this.offer = { address: m.yiaddr, serverId: m.options.serverId };
        this.stateNow = 'REQUESTING';
        this.attempts = 0;
        return [this.sendRequest(now)];
      case 'REQUESTING':
      case 'INIT-REBOOT':
      case 'RENEWING':
      case 'REBINDING':
        if (type === DhcpType.ACK) return this.bind(m, now);
        if (type === DhcpType.NAK) return this.restart(now, 'nak');
        return [];
      default:
        return [];
    }
  }

  /** Runs what is due at `now` (retransmissions, T1, T2, expiry). */
  tick(now: number): DhcpClientAction[] {
    const out: DhcpClientAction[] = [];
    while (this.deadline !== null && this.deadline <= now) {
      const before = this.deadline;
      out.push(...this.timeout(now));
      if (this.deadline === before) break; // nothing moved: do not spin
    }
    return out;
  }

  /** RELEASE (§4.4.6): tells the server, stops using the address, and stops. */
  release(now: number): DhcpClientAction[] {
    const lease = this.current;
    this.stop();
    if (lease === null) return [];
    const m = this.base(DhcpType.RELEASE, now);
    m.xid = this.rng.nextU32();
    m.flags = 0;
    m.ciaddr = lease.address;
    m.options.serverId = lease.serverId;
    delete m.options.parameterRequestList;
    return [
      { type: 'send', message: m, to: { address: lease.serverId, port: DHCP_SERVER_PORT }, from: lease.address },
      { type: 'deconfigure', lease, reason: 'released' },
    ];
  }

  /**
   * DECLINE (§4.4.1): the address turned out to be in use (an ARP probe was answered). Tells the
   * server, stops using it, and starts over after 10 s.
   */
  decline(now: number, message?: string): DhcpClientAction[] {
    const lease = this.current;
    if (lease === null) return [];
    const m = this.base(DhcpType.DECLINE, now);
    m.flags = 0;
    m.options.requestedIp = lease.address;
    m.options.serverId = lease.serverId;
    if (message !== undefined) m.options.message = message;
    delete m.options.parameterRequestList;
    delete m.options.hostname;
    this.current = null;
    this.stateNow = 'INIT';
    this.deadline = now + DECLINE_WAIT_MS;
    return [
      { type: 'send', message: m, to: { address: BROADCAST, port: DHCP_SERVER_PORT }, from: ZERO },
      { type: 'deconfigure', lease, reason: 'declined' },
    ];
  }

  /** Stops without telling anyone (the interface goes away): no more timers or actions. */
  stop(): void {
    this.stateNow = 'STOPPED';
    this.current = null;
    this.deadline = null;
    this.offer = null;
  }

  // --------------------------------------------------------------------------------------- steps

  private timeout(now: number): DhcpClientAction[] {
    const lease = this.current;
    switch (this.stateNow) {
      case 'INIT':
        return this.discover(now);
      case 'SELECTING':
        this.attempts++;
        return [this.send(this.discoverMessage(now), BROADCAST, ZERO, now, this.backoff())];
      case 'REQUESTING':
      case 'INIT-REBOOT':
        if (this.attempts + 1 >= this.maxRequestAttempts) return this.discover(now);
        this.attempts++;
        return [this.sendRequest(now)];
      case 'BOUND':
        // T1 (§4.4.5): renew with the server that granted the lease, by unicast.
        this.stateNow = 'RENEWING';
        this.newExchange(now);
        return [this.sendRenewal(now)];
      case 'RENEWING':
        if (lease !== null && now >= lease.rebindAt) {
          // T2: that server is not answering; ask any server.
          this.stateNow = 'REBINDING';
          this.newExchange(now);
        }
        return [this.sendRenewal(now)];
      case 'REBINDING':
        if (lease !== null && now >= lease.expiresAt) return this.restart(now, 'expired');
        return [this.sendRenewal(now)];
      default:
        this.deadline = null;
        return [];
    }
  }

  private discover(now: number): DhcpClientAction[] {
    this.newExchange(now);
    this.stateNow = 'SELECTING';
    this.offer = null;
    return [this.send(this.discoverMessage(now), BROADCAST, ZERO, now, this.backoff())];
  }

  private discoverMessage(now: number): DhcpMessage {
    const m = this.base(DhcpType.DISCOVER, now);
    if (this.options.previousAddress !== undefined) m.options.requestedIp = this.options.previousAddress;
    return m;
  }

  /** REQUEST in REQUESTING (with the server id) or INIT-REBOOT (without): broadcast, from 0.0.0.0. */
  private sendRequest(now: number): DhcpClientAction {
    const m = this.base(DhcpType.REQUEST, now);
    const offer = this.offer!;
    m.options.requestedIp = offer.address;
    if (this.stateNow === 'REQUESTING') m.options.serverId = offer.serverId;
    return this.send(m, BROADCAST, ZERO, now, this.backoff());
  }

  /** REQUEST in RENEWING (unicast to the server) or REBINDING (broadcast): ciaddr set, §4.3.2. */
  private sendRenewal(now: number): DhcpClientAction {
    const lease = this.current!;
    const m = this.base(DhcpType.REQUEST, now);
    m.flags = 0;
    m.ciaddr = lease.address;
    const renewing = this.stateNow === 'RENEWING';
    const until = renewing ? lease.rebindAt : lease.expiresAt;
    const wait = Math.max(MIN_RENEW_RETRANSMIT_MS, (until - now) / 2);
    const next = Math.min(until, now + wait);
    return this.send(m, renewing ? lease.serverId : BROADCAST, lease.address, now, next - now);
  }

  private send(m: DhcpMessage, to: string, from: string, now: number, retransmitIn: number): DhcpClientAction {
    this.deadline = now + retransmitIn;
    return { type: 'send', message: m, to: { address: to, port: DHCP_SERVER_PORT }, from };
  }

  private bind(m: DhcpMessage, now: number): DhcpClientAction[] {
    const o = m.options;
    const serverId = o.serverId ?? this.current?.serverId ?? this.offer?.serverId ?? '';
    if (m.yiaddr === ZERO || o.leaseTime === undefined || serverId === '') return [];
    const leaseTime = o.leaseTime;
    const infinite = leaseTime === 0xffffffff;
    // §4.4.5: T1 defaults to 0.5 and T2 to 0.875 of the lease; a server's T1 ≥ T2 or T2 ≥ lease is
    // not believed.
    let rebindingTime = o.rebindingTime ?? Math.floor(leaseTime * 0.875);
    if (rebindingTime >= leaseTime && !infinite) rebindingTime = Math.floor(leaseTime * 0.875);
    let renewalTime = o.renewalTime ?? Math.floor(leaseTime * 0.5);
    if (renewalTime >= rebindingTime) renewalTime = Math.floor(rebindingTime * 0.5 / 0.875);
    const prefix = (o.subnetMask !== undefined ? maskToPrefix(o.subnetMask) : null) ?? classfulPrefix(m.yiaddr);
    const lease: DhcpLease = {
      address: m.yiaddr,
      prefix,
      router: o.routers?.[0] ?? null,
      routers: o.routers ?? [],
      dnsServers: o.dnsServers ?? [],
      serverId,
      leaseTime,
      renewalTime,
      rebindingTime,
      acquiredAt: now,
      renewAt: infinite ? Infinity : now + renewalTime * 1000,
      rebindAt: infinite ? Infinity : now + rebindingTime * 1000,
      expiresAt: infinite ? Infinity : now + leaseTime * 1000,
    };
    if (o.domainName !== undefined) lease.domainName = o.domainName;
    // RFC 2132 §5.1: 68 is the smallest MTU; a smaller one is not used.
    if (o.interfaceMtu !== undefined && o.interfaceMtu >= 68) lease.mtu = o.interfaceMtu;
    const out: DhcpClientAction[] = [];
    const previous = this.current;
    if (previous !== null && previous.address !== lease.address) {
      out.push({ type: 'deconfigure', lease: previous, reason: 'expired' });
    }
    out.push({ type: 'configure', lease, previous: previous !== null && previous.address === lease.address ? previous : null });
    this.current = lease;
    this.stateNow = 'BOUND';
    this.offer = null;
    this.naks = 0;
    this.deadline = infinite ? null : lease.renewAt;
    return out;
  }

  /** Back to INIT after a NAK or expiry: stop using the address, DISCOVER (after a pause if NAKs repeat). */
  private restart(now: number, reason: 'nak' | 'expired'): DhcpClientAction[] {
    const out: DhcpClientAction[] = [];
    if (this.current !== null) out.push({ type: 'deconfigure', lease: this.current, reason });
    this.current = null;
    this.offer = null;
    if (reason === 'nak') this.naks++;
    if (reason === 'nak' && this.naks > 1) {
      // A server that NAKs every time must not make us loop at network speed: back off like a
      // retransmission.
      this.stateNow = 'INIT';
      this.attempts = this.naks - 2;
      this.deadline = now + this.backoff();
      return out;
    }
    out.push(...this.discover(now));
    return out;
  }

  // --------------------------------------------------------------------------------------- helpers

  private newExchange(now: number): void {
    this.xid = this.rng.nextU32();
    this.exchangeStart = now;
    this.attempts = 0;
  }

  /** §4.1: 4 s × 2^attempts up to 64 s, ±1 s uniform jitter (scaled with initialRetransmitMs). */
  private backoff(): number {
    const base = Math.min(this.maxRetransmitMs, this.initialRetransmitMs * 2 ** Math.min(this.attempts, 16));
    const jitter = (this.rng.next() * 2 - 1) * (this.initialRetransmitMs / 4);
    return Math.max(1, base + jitter);
  }

  private forMe(m: DhcpMessage): boolean {
    if (m.chaddr.length < 6) return false;
    for (let i = 0; i < 6; i++) if (m.chaddr[i] !== this.mac[i]) return false;
    return true;
  }

  private base(type: number, now: number): DhcpMessage {
    const m = emptyDhcpMessage(BOOTREQUEST);
    m.xid = this.xid;
    m.chaddr = this.mac.slice();
    m.secs = Math.min(0xffff, Math.floor((now - this.exchangeStart) / 1000));
    if (this.options.broadcastFlag ?? true) m.flags = DHCP_FLAG_BROADCAST;
    const o: DhcpOptions = { messageType: type, parameterRequestList: (this.options.requestList ?? DEFAULT_REQUEST_LIST).slice() };
    if (this.clientId !== null) o.clientId = this.clientId;
    if (this.options.hostname !== undefined) o.hostname = this.options.hostname;
    m.options = o;
    return m;
  }
}
