/**
 * Router mode: Router Advertisements (RFC 4861 §6.2) so that hosts on the link configure addresses
 * by SLAAC (RFC 4862 §5.5.3: a /64 prefix with the A flag) and learn DNS servers (RFC 8106 RDNSS).
 * Unsolicited RAs go out at random intervals between MinRtrAdvInterval and MaxRtrAdvInterval, the
 * first few (MAX_INITIAL_RTR_ADVERTISEMENTS) no more than 16 s apart (§6.2.4); a Router Solicitation
 * is answered with a multicast RA after a short random delay, at most one per MIN_DELAY_BETWEEN_RAS
 * (§6.2.6). RAs come from the link-local address (§4.2).
 */
import type { TimerHandle } from '../link/clock.js';
import { formatAddress, parseAddress } from '../wire/address.js';
import { ipv6MulticastMac } from '../wire/ethernet.js';
import { ALL_NODES, type NdpMessage, type NdpOption } from '../wire/ndp.js';
import type { LinkContext } from './host.js';
import type { Ndp } from './ndp.js';

/** RFC 4861 §10 router constants. */
const MAX_INITIAL_RTR_ADVERT_INTERVAL_MS = 16_000;
const MAX_INITIAL_RTR_ADVERTISEMENTS = 3;
const MIN_DELAY_BETWEEN_RAS_MS = 3000;
const MAX_RA_DELAY_TIME_MS = 500;
/** §6.2.1 default MaxRtrAdvInterval. */
const DEFAULT_MAX_INTERVAL_MS = 600_000;
/** §6.2.1 AdvValidLifetime and AdvPreferredLifetime defaults: 30 and 7 days. */
const VALID_LIFETIME_S = 2_592_000;
const PREFERRED_LIFETIME_S = 604_800;
/** RDNSS addresses per RA at most (an option's 8-bit length allows 127). */
const MAX_DNS_SERVERS = 16;
/** Prefixes per RA at most: 16 × 32 bytes, so an RA with the rest fits a 1280-byte IPv6 MTU. */
const MAX_PREFIXES = 16;

export interface AdvertiseOptions {
  /** Recursive DNS servers to advertise (RFC 8106); IPv4 addresses are left out (that is DHCP's job). */
  dns?: string[];
  /** The link MTU to advertise (§4.6.4). Default: the interface's MTU. */
  mtu?: number;
  /** MaxRtrAdvInterval in ms (§6.2.1: 4 s to 1800 s). Default 600 000. */
  intervalMs?: number;
}

export class RouterAdvertiser {
  private readonly maxMs: number;
  private readonly minMs: number;
  private readonly dns: Uint8Array[];
  private readonly mtu: number;
  private timer: TimerHandle | null = null;
  private nextAt = Infinity;
  private lastAt = -Infinity;
  private initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
  private started = false;
  /** The prefixes last advertised, as text, to notice a change. */
  private advertisedKey = '';

  constructor(
    private readonly ctx: LinkContext,
    private readonly ndp: Ndp,
    linkMtu: number,
    options: AdvertiseOptions,
  ) {
    this.maxMs = Math.min(1_800_000, Math.max(4000, options.intervalMs ?? DEFAULT_MAX_INTERVAL_MS));
    // §6.2.1: MinRtrAdvInterval defaults to 0.33 × Max (0.75 × Max below 9 s).
    this.minMs = this.maxMs >= 9000 ? 0.33 * this.maxMs : 0.75 * this.maxMs;
    this.dns = [];
    for (const s of options.dns ?? []) {
      const a = parseAddress(s);
      if (a === null) throw new TypeError(`advertise.dns: bad address ${JSON.stringify(s)}`);
      if (a.length === 16 && this.dns.length < MAX_DNS_SERVERS) this.dns.push(a);
    }
    this.mtu = options.mtu ?? linkMtu;
  }

  /** Start advertising (the interface became an advertising interface), or readvertise soon after a
   *  change in what is advertised (§6.2.4: "may transmit up to MAX_INITIAL_RTR_ADVERTISEMENTS"). */
  start(): void {
    this.started = true;
    this.advertisedKey = this.prefixKey();
    this.initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
    this.sendBy(this.ctx.host.clock.now());
  }

  /** The stack's addresses changed: readvertise soon if the advertised prefixes did (§6.2.4). */
  addressesChanged(): void {
    const key = this.prefixKey();
    if (key === this.advertisedKey) return;
    this.advertisedKey = key;
    if (this.started) this.start();
  }

  /** A valid Router Solicitation arrived (§6.2.6). */
  solicited(): void {
    const now = this.ctx.host.clock.now();
    this.sendBy(now + this.ctx.random() * MAX_RA_DELAY_TIME_MS);
  }

  stop(): void {
    if (this.timer !== null) this.ctx.host.clock.cancel(this.timer);
    this.timer = null;
    this.nextAt = Infinity;
  }

  private prefixKey(): string {
    return this.advertisement().options.flatMap((o) => (o.kind === 'prefix' ? [formatAddress(o.prefix)] : [])).join(' ');
  }

  /** The RA as it would be sent now. */
  advertisement(): Extract<NdpMessage, { type: 'router-advertisement' }> {
    const options: NdpOption[] = [{ kind: 'source-link-layer', address: this.ctx.mac }, { kind: 'mtu', mtu: this.mtu }];
    const seen = new Set<string>();
    for (const a of this.ctx.host.addresses()) {
      // SLAAC needs a 64-bit interface identifier (RFC 4862 §5.5.3 d), so only /64s are advertised;
      // link-local prefixes never are (§5.5.3 b).
      if (a.version !== 6 || a.prefix !== 64 || (a.bytes[0] === 0xfe && (a.bytes[1] & 0xc0) === 0x80)) continue;
      const prefix = new Uint8Array(16);
      prefix.set(a.bytes.subarray(0, 8));
      const key = formatAddress(prefix);
      if (seen.has(key)) continue;
      if (seen.size >= MAX_PREFIXES) break;
      seen.add(key);
      options.push({
        kind: 'prefix', prefixLength: 64, onLink: true, autonomous: true,
        validLifetime: VALID_LIFETIME_S, preferredLifetime: PREFERRED_LIFETIME_S, prefix,
      });
    }
    if (this.dns.length > 0) {
      // RFC 8106 §5.1: the lifetime SHOULD be at least 3 × MaxRtrAdvInterval.
      options.push({ kind: 'rdnss', lifetime: Math.ceil((3 * this.maxMs) / 1000), servers: this.dns });
    }
    return {
      type: 'router-advertisement',
      curHopLimit: 64,
      managed: false,
      other: false,
      // §6.2.1 AdvDefaultLifetime: 3 × MaxRtrAdvInterval, at most 9000 s.
      routerLifetime: Math.min(9000, Math.ceil((3 * this.maxMs) / 1000)),
      reachableTime: 0,
      retransTimer: 0,
      options,
    };
  }

  /** Have an RA go out no later than `at`, and no sooner than MIN_DELAY_BETWEEN_RAS after the last. */
  private sendBy(at: number): void {
    at = Math.max(at, this.lastAt + MIN_DELAY_BETWEEN_RAS_MS);
    if (at >= this.nextAt) return;
    const clock = this.ctx.host.clock;
    if (this.timer !== null) clock.cancel(this.timer);
    this.nextAt = at;
    this.timer = clock.schedule(at, () => this.fire());
  }

  private fire(): void {
    const ctx = this.ctx;
    const clock = ctx.host.clock;
    this.timer = null;
    this.nextAt = Infinity;
    const now = clock.now();
    this.lastAt = now;
    const ra = this.advertisement();
    this.ndp.send(ipv6MulticastMac(ALL_NODES), ctx.linkLocal, ALL_NODES, ra);
    ctx.counters.raOut++;
    if (ctx.host.tracing()) {
      const prefixes = ra.options.flatMap((o) => (o.kind === 'prefix' ? [`${formatAddress(o.prefix)}/64`] : []));
      ctx.note(`NDP: router advertisement, prefixes ${prefixes.join(' ') || 'none'}`, 'RFC 4861 §6.2');
    }
    let interval = this.minMs + ctx.random() * (this.maxMs - this.minMs);
    if (this.initialLeft > 0) {
      this.initialLeft--;
      interval = Math.min(interval, MAX_INITIAL_RTR_ADVERT_INTERVAL_MS);
    }
    this.nextAt = now + interval;
    this.timer = clock.schedule(this.nextAt, () => this.fire());
  }
}
