/**
 * `synack bench` — the gateway (issue 15): a Linux guest's traffic relayed by `synack gateway`,
 * each figure beside a reference measured in the same run.
 *
 * The lab (namespaces made and removed here, see src/bench/netns.ts): `gw`, with nothing but
 * loopback, runs `synack gateway --tap … --netns guest` (src/bench/gateway-worker.ts: the CLI's own
 * gatewayCommand) and the servers on 127.0.0.1; `guest` holds the TAP device's kernel side at
 * 10.0.2.15/24, default route 10.0.2.2, and reaches the servers through the host alias 10.0.2.2
 * (→ the gateway namespace's 127.0.0.1). The peers are python3 with plain sockets (a bulk server
 * and client, below) and Node (gateway-worker.ts: echo server, connection drivers, Wisp clients).
 *
 *   direct download / upload: N bytes from / to a server in `gw` through `--upstream direct`;
 *     reference: the same client and server with the kernel routing — guest ↔ veth ↔ router
 *     (ip_forward=1) ↔ veth ↔ server, three namespaces, MTU 1500 like the TAP (veth has GRO/TSO; the
 *     TAP has no offload, so every 1500-byte frame is a system call on the gateway's side).
 *   wisp download / upload: the same through `--upstream ws://127.0.0.1:P/`, wisp-js's server in
 *     `gw`; reference: wisp-js's own client moving the same bytes to the same server through the
 *     same Wisp server, no VM (the best a Wisp path can do); our WispUpstream alone is in `detail`.
 *   connection rate: open, 1-byte echo, close, 64 in flight, through the gateway (direct) to an echo
 *     server in `gw`; reference: the same client and server over the kernel's routed path.
 *   memory per idle relayed connection: the gateway's heap (after a full collection, in the
 *     gateway process) with N relayed connections held idle, minus before, over N; no reference
 *     (unit bytes/conn), `detail` has the RSS delta too.
 *
 * Goals (issue 15): ≥ 0.5× the kernel's routed throughput, ≥ 0.8× the Wisp-only path,
 * ≥ 2,000 relayed connections/s, ≤ 16 KiB per idle relayed connection; `detail.goal` says which.
 * Runs: quick one each, 32 MiB, 1,000 connections, 500 held; full best of three, 256 MiB,
 * 10,000 connections, 4,000 held. Needs root, /dev/net/tun, ip, python3; Wisp figures also need
 * the dev dependency @mercuryworkshop/wisp-js (without it those two figures are left out, and the log
 * says why).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { result, round } from './common.js';
import { guardSignals, have, withNetns } from './netns.js';
import { tunUnavailable } from './tun.js';
import type { Netns, NsProcess } from './netns.js';
import type { BenchContext, BenchResult, Benchmark } from './types.js';

const WORKER = fileURLToPath(new URL('./gateway-worker.js', import.meta.url));
const MiB = 1 << 20;
/** The servers' ports (inside namespaces of the bench's own: nothing else listens there). */
const BULK_PORT = 5001;
const ECHO_PORT = 5007;
const MTU = 1500;

/**
 * The bulk server: accepts one connection on addr:port. down: sends N bytes, then waits for the
 * client's close (it closes once it has them all); up: reads N bytes, then closes. Prints what it
 * moved. No half-close on either side: Wisp has none (a CLOSE may drop what is still queued).
 */
const BULK_SERVER_PY = `
import json, socket, sys, time
addr, port, mode, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(60)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(60)
chunk = bytes(range(256)) * 256
moved = 0
try:
    if mode == "down":
        while moved < n:
            moved += c.send(memoryview(chunk)[:min(n - moved, len(chunk))])
        while c.recv(1 << 16):
            pass
    else:
        while moved < n:
            b = c.recv(1 << 16)
            if not b:
                break
            moved += len(b)
except OSError:
    pass
c.close()
print(json.dumps({"moved": moved}), flush=True)
`;

/** The bulk client: down: reads N bytes from host:port and closes; up: sends N and waits for the server's close. */
const BULK_CLIENT_PY = `
import json, socket, sys, time
host, port, mode, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
chunk = bytes(range(256)) * 256
start = time.monotonic()
s = socket.create_connection((host, port), timeout=60)
got = 0
if mode == "down":
    while got < n:
        b = s.recv(1 << 16)
        if not b:
            break
        got += len(b)
else:
    while got < n:
        got += s.send(memoryview(chunk)[:min(n - got, len(chunk))])
    while s.recv(1 << 16):
        pass
secs = time.monotonic() - start
s.close()
print(json.dumps({"bytes": got, "seconds": secs, "mbps": got * 8 / secs / 1e6}))
`;

export interface GatewaySizes {
  bytes: number;
  connections: number;
  held: number;
  runs: number;
}

export function gatewaySizes(quick: boolean): GatewaySizes {
  return quick
    ? { bytes: 32 * MiB, connections: 1000, held: 500, runs: 1 }
    : { bytes: 256 * MiB, connections: 10_000, held: 4000, runs: 3 };
}

type Dir = 'down' | 'up';
interface Rate { mbps: number; seconds: number }

/** Bounded wait for a transfer of `bytes`: at least 30 s, or 20 Mbit/s. */
const transferMs = (bytes: number): number => Math.max(30_000, (bytes * 8) / 20e6 * 1000);

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

function after<T>(line: string, prefix: string): T {
  return JSON.parse(line.slice(prefix.length)) as T;
}

function worker(ns: Netns, mode: string, args: string[] = [], node: string[] = []): NsProcess {
  return ns.start(process.execPath, [...node, WORKER, '--bench-worker', mode, ...args]);
}

/** python3's bulk client in `client` against a fresh bulk server in `server` (listening on listenAddr). */
async function pythonBulk(client: Netns, server: Netns, listenAddr: string, host: string, dir: Dir, bytes: number, what: string): Promise<Rate> {
  const srv = server.start('python3', ['-c', BULK_SERVER_PY, listenAddr, String(BULK_PORT), dir, String(bytes)]);
  try {
    await srv.waitForLine(/^listening$/, 10_000);
    const r = await client.run('python3', ['-c', BULK_CLIENT_PY, host, String(BULK_PORT), dir, String(bytes)], { timeoutMs: transferMs(bytes) });
    if (r.status !== 0) throw new Error(`synack bench gateway: ${what} ${dir}: the client ${r.timedOut ? 'timed out' : `failed: ${lastLine(r.stderr)}`}`);
    const c = JSON.parse(lastLine(r.stdout)) as { bytes: number; seconds: number; mbps: number };
    const s = JSON.parse(await srv.waitForLine(/^\{/, 10_000)) as { moved: number };
    if (c.bytes !== bytes || s.moved !== bytes) throw new Error(`synack bench gateway: ${what} ${dir}: moved ${c.bytes} / ${s.moved} of ${bytes} bytes`);
    return { mbps: c.mbps, seconds: c.seconds };
  } finally {
    await srv.stop(1000);
  }
}

/** A Wisp client with no VM (ours or wisp-js's) in `gw` against a fresh bulk server there. */
async function wispOnly(gw: Netns, url: string, client: 'ours' | 'wisp-js', dir: Dir, bytes: number): Promise<Rate> {
  const srv = gw.start('python3', ['-c', BULK_SERVER_PY, '127.0.0.1', String(BULK_PORT), dir, String(bytes)]);
  try {
    await srv.waitForLine(/^listening$/, 10_000);
    const limitS = Math.ceil(transferMs(bytes) / 1000);
    const w = worker(gw, 'wisp-client', ['--client', client, '--url', url, '--port', String(BULK_PORT), '--dir', dir, '--bytes', String(bytes), '--limit-s', String(limitS)]);
    const line = await w.waitForLine(/^(result|error) /, limitS * 1000 + 10_000);
    if (line.startsWith('error ')) throw new Error(`synack bench gateway: the ${client} Wisp client ${dir}: ${after<{ message: string }>(line, 'error ').message}`);
    const r = after<{ bytes: number; seconds: number; mbps: number }>(line, 'result ');
    const s = JSON.parse(await srv.waitForLine(/^\{/, 10_000)) as { moved: number };
    if (s.moved !== bytes) throw new Error(`synack bench gateway: the ${client} Wisp client ${dir}: the server moved ${s.moved} of ${bytes} bytes`);
    await w.waitExit(5000);
    return { mbps: r.mbps, seconds: r.seconds };
  } finally {
    await srv.stop(1000);
  }
}

/** The node connection driver (connect mode) in `client` against host:ECHO_PORT. */
async function connRate(client: Netns, host: string, count: number, what: string): Promise<{ rate: number; seconds: number; errors: number }> {
  const limitS = Math.max(60, Math.ceil(count / 100));
  const w = worker(client, 'connect', ['--host', host, '--port', String(ECHO_PORT), '--count', String(count), '--parallel', '64', '--limit-s', String(limitS)]);
  const line = await w.waitForLine(/^(result|error) /, limitS * 1000 + 10_000);
  if (line.startsWith('error ')) throw new Error(`synack bench gateway: ${what} connections: ${after<{ message: string }>(line, 'error ').message}`);
  await w.waitExit(5000);
  return after<{ rate: number; seconds: number; errors: number }>(line, 'result ');
}

/** Sysctls of a namespace of ours: wide ephemeral range, TIME-WAIT reuse (10,000 connections in a row). */
async function tuneNs(ns: Netns, forward = false): Promise<void> {
  await ns.check('sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000', 'net.ipv4.tcp_tw_reuse=1']);
  if (forward) await ns.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
}

function best(runs: Rate[]): Rate {
  return runs.reduce((a, b) => (b.mbps > a.mbps ? b : a));
}

/** Download and upload `s.runs` times each through python3's bulk peers; the best of each. */
async function bulkBest(s: GatewaySizes, next: (label: string) => void, what: string, client: Netns, server: Netns, listenAddr: string, host: string): Promise<{ down: Rate; up: Rate }> {
  const down: Rate[] = [];
  const up: Rate[] = [];
  for (let i = 0; i < s.runs; i++) {
    next(`${what}: download`);
    down.push(await pythonBulk(client, server, listenAddr, host, 'down', s.bytes, what));
    next(`${what}: upload`);
    up.push(await pythonBulk(client, server, listenAddr, host, 'up', s.bytes, what));
  }
  return { down: best(down), up: best(up) };
}

/** The echo server (gateway-worker.ts echo) on host:ECHO_PORT in `ns`, until the namespace goes. */
async function startEcho(ns: Netns, host: string): Promise<void> {
  await worker(ns, 'echo', ['--host', host, '--port', String(ECHO_PORT)]).waitForLine(/^ready$/, 10_000);
}

interface Routed { down: Rate; up: Rate; connRate: number; connErrors: number }

/** The reference: guest ↔ veth ↔ router (ip_forward) ↔ veth ↔ server, kernel all the way. */
async function routedReference(s: GatewaySizes, next: (label: string) => void): Promise<Routed> {
  return withNetns(async (guest?: Netns, router?: Netns, server?: Netns) => {
    if (guest === undefined || router === undefined || server === undefined) throw new Error('three namespaces');
    await router.check('ip', ['link', 'add', 'rt-g', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guest.name]);
    await router.check('ip', ['link', 'add', 'rt-s', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server.name]);
    for (const [ns, dev, addr] of [[router, 'rt-g', '10.0.2.2/24'], [router, 'rt-s', '10.0.3.1/24'], [guest, 'eth0', '10.0.2.15/24'], [server, 'eth0', '10.0.3.2/24']] as const) {
      await ns.check('ip', ['addr', 'add', addr, 'dev', dev]);
      await ns.check('ip', ['link', 'set', dev, 'mtu', String(MTU), 'up']);
    }
    await guest.check('ip', ['route', 'add', 'default', 'via', '10.0.2.2']);
    await server.check('ip', ['route', 'add', 'default', 'via', '10.0.3.1']);
    await tuneNs(router, true);
    await tuneNs(guest);
    await tuneNs(server);
    const { down, up } = await bulkBest(s, next, 'kernel routed', guest, server, '0.0.0.0', '10.0.3.2');
    next('kernel routed: connections');
    await startEcho(server, '0.0.0.0');
    const c = await connRate(guest, '10.0.3.2', s.connections, 'kernel routed');
    return { down, up, connRate: c.rate, connErrors: c.errors };
  }, 3);
}

/** `synack gateway` in `gw` with its TAP's kernel side in `guest`, configured as 10.0.2.15. */
async function startGateway(gw: Netns, guest: Netns, upstream: string): Promise<NsProcess> {
  const tap = `sgb${randomBytes(4).toString('hex')}`;
  const g = worker(gw, 'gateway', ['--', '--tap', tap, '--netns', guest.name, '--mtu', String(MTU), '--upstream', upstream, '--json'], ['--expose-gc']);
  await g.waitForLine(/^\{"event":"up"/, 15_000);
  await guest.check('ip', ['link', 'set', 'dev', tap, 'up']);
  await guest.check('ip', ['addr', 'replace', '10.0.2.15/24', 'dev', tap]);
  await guest.check('ip', ['route', 'replace', 'default', 'via', '10.0.2.2', 'dev', tap]);
  const ping = await guest.run('ping', ['-c', '1', '-W', '5', '10.0.2.2'], { timeoutMs: 10_000 });
  if (ping.status !== 0) throw new Error(`synack bench gateway: the guest cannot ping the gateway: ${lastLine(ping.stdout + ping.stderr)}`);
  return g;
}

/** Probes asked of each gateway process (gateway-worker.ts numbers its answers from 1). */
const heapProbes = new WeakMap<NsProcess, number>();
/** The gateway's heap after a full collection (SIGUSR2 to gateway-worker.ts). */
async function heap(g: NsProcess): Promise<{ heapUsed: number; rss: number }> {
  const n = (heapProbes.get(g) ?? 0) + 1;
  heapProbes.set(g, n);
  g.kill('SIGUSR2');
  return after(await g.waitForLine(new RegExp(`^heap ${n} `), 10_000), `heap ${n} `);
}

interface Relayed {
  direct: { down: Rate; up: Rate; connRate: number; connErrors: number; idle: { perConn: number; rssPerConn: number; held: number; heapBefore: number; heapAfter: number } };
  wisp: { down: Rate; up: Rate; refDown: Rate; refUp: Rate; oursDown: Rate; oursUp: Rate } | { missing: string };
}

function wispMissing(): string | undefined {
  try {
    createRequire(import.meta.url).resolve('@mercuryworkshop/wisp-js/server');
    return undefined;
  } catch {
    return 'needs the dev dependency @mercuryworkshop/wisp-js (npm install in the repository)';
  }
}

async function throughGateway(s: GatewaySizes, next: (label: string) => void): Promise<Relayed> {
  return withNetns(async (gw?: Netns, guest?: Netns) => {
    if (gw === undefined || guest === undefined) throw new Error('two namespaces');
    await tuneNs(gw);
    await tuneNs(guest);
    await startEcho(gw, '127.0.0.1');
    const g = await startGateway(gw, guest, 'direct');
    const { down, up } = await bulkBest(s, next, 'gateway direct', guest, gw, '127.0.0.1', '10.0.2.2');
    next('gateway direct: connections');
    const c = await connRate(guest, '10.0.2.2', s.connections, 'gateway direct');
    next('gateway direct: idle connections');
    const before = await heap(g);
    const holder = worker(guest, 'hold', ['--host', '10.0.2.2', '--port', String(ECHO_PORT), '--count', String(s.held), '--parallel', '128', '--limit-s', '300']);
    const heldLine = await holder.waitForLine(/^(held|error) /, 120_000);
    if (heldLine.startsWith('error ')) throw new Error(`synack bench gateway: holding ${s.held} connections: ${after<{ message: string }>(heldLine, 'error ').message}`);
    const held = after<{ count: number; errors: number }>(heldLine, 'held ');
    const heldOk = held.count - held.errors;
    if (heldOk <= 0) throw new Error(`synack bench gateway: no relayed connection could be held (${held.errors} errors)`);
    const afterHeld = await heap(g);
    await holder.stop(5000);
    const idle = {
      perConn: (afterHeld.heapUsed - before.heapUsed) / heldOk,
      rssPerConn: (afterHeld.rss - before.rss) / heldOk,
      held: heldOk,
      heapBefore: before.heapUsed,
      heapAfter: afterHeld.heapUsed,
    };
    await g.stop(5000);
    const direct = { down, up, connRate: c.rate, connErrors: c.errors, idle };

    const missing = wispMissing();
    if (missing !== undefined) return { direct, wisp: { missing } };
    const ws = worker(gw, 'wisp-server');
    const port = Number((await ws.waitForLine(/^ready \d+$/, 15_000)).slice('ready '.length));
    const url = `ws://127.0.0.1:${port}/`;
    const gwWisp = await startGateway(gw, guest, url);
    const runs = { gateway: { down: [] as Rate[], up: [] as Rate[] }, ref: { down: [] as Rate[], up: [] as Rate[] }, ours: { down: [] as Rate[], up: [] as Rate[] } };
    for (let i = 0; i < s.runs; i++) {
      for (const dir of ['down', 'up'] as const) {
        const name = dir === 'down' ? 'download' : 'upload';
        next(`gateway wisp: ${name}`);
        runs.gateway[dir].push(await pythonBulk(guest, gw, '127.0.0.1', '10.0.2.2', dir, s.bytes, 'gateway wisp'));
        next(`wisp-js client: ${name}`);
        runs.ref[dir].push(await wispOnly(gw, url, 'wisp-js', dir, s.bytes));
        next(`WispUpstream alone: ${name}`);
        runs.ours[dir].push(await wispOnly(gw, url, 'ours', dir, s.bytes));
      }
    }
    await gwWisp.stop(5000);
    return {
      direct,
      wisp: {
        down: best(runs.gateway.down), up: best(runs.gateway.up), refDown: best(runs.ref.down), refUp: best(runs.ref.up),
        oursDown: best(runs.ours.down), oursUp: best(runs.ours.up),
      },
    };
  }, 2);
}

export function gatewayUnavailable(): string | undefined {
  // The TUN benchmark's needs (Linux, root, /dev/net/tun, ip, python3), then this one's own.
  const tun = tunUnavailable();
  if (tun !== undefined) return tun;
  if (!have('sysctl', ['-V'])) return 'needs sysctl (procps)';
  if (!existsSync(WORKER)) return `needs the compiled worker ${WORKER}`;
  return undefined;
}

const gbps = (r: Rate): number => r.mbps / 1000;

/** The steps `run` reports progress for (each `next` call). */
function stepCount(s: GatewaySizes): number {
  return s.runs * 2 + 1 + s.runs * 2 + 2 + s.runs * 6;
}

export const gatewayBenchmark: Benchmark = {
  name: 'gateway',
  describe: 'a Linux guest through `synack gateway` (TAP): download/upload via the direct upstream (reference: the kernel routing over veth) and via Wisp (reference: wisp-js\'s client alone), relayed connections/s, heap per idle relayed connection',
  unavailable: gatewayUnavailable,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const s = gatewaySizes(ctx.quick);
    const steps = stepCount(s);
    let step = 0;
    const next = (label: string): void => ctx.progress(Math.min(step++ / steps, 0.99), `gateway: ${label}`);
    return guardSignals(async () => {
      const routed = await routedReference(s, next);
      const relayed = await throughGateway(s, next);
      const results: BenchResult[] = [];
      const common = { bytes: s.bytes, mtu: MTU, runs: s.runs, tapOffload: false };
      const d = relayed.direct;
      for (const [dir, mine, ref] of [['download', d.down, routed.down], ['upload', d.up, routed.up]] as const) {
        const ratio = mine.mbps / ref.mbps;
        ctx.log(`gateway direct ${dir}: ${gbps(mine).toFixed(2)} Gbit/s (kernel routed ${gbps(ref).toFixed(2)}, ${ratio.toFixed(2)}×)`);
        results.push(result(`gateway direct ${dir}`, round(gbps(mine)), 'Gbit/s', { name: 'kernel routed over veth (guest ↔ router ↔ server)', value: round(gbps(ref)) }, {
          ...common, seconds: round(mine.seconds), referenceSeconds: round(ref.seconds), goal: '>= 0.5x', goalMet: ratio >= 0.5,
        }));
      }
      const w = relayed.wisp;
      if ('missing' in w) {
        ctx.log(`gateway wisp: skipped, ${w.missing}`);
      } else {
        for (const [dir, mine, ref, ours] of [['download', w.down, w.refDown, w.oursDown], ['upload', w.up, w.refUp, w.oursUp]] as const) {
          const ratio = mine.mbps / ref.mbps;
          ctx.log(`gateway wisp ${dir}: ${gbps(mine).toFixed(2)} Gbit/s (wisp-js client alone ${gbps(ref).toFixed(2)}, ${ratio.toFixed(2)}×; our WispUpstream alone ${gbps(ours).toFixed(2)})`);
          results.push(result(`gateway wisp ${dir}`, round(gbps(mine)), 'Gbit/s', { name: "wisp-js's client alone, same Wisp server and bytes (no VM)", value: round(gbps(ref)) }, {
            ...common, seconds: round(mine.seconds), referenceSeconds: round(ref.seconds),
            wispUpstreamAloneGbps: round(gbps(ours)), ratioToWispUpstreamAlone: round(mine.mbps / ours.mbps),
            goal: '>= 0.8x', goalMet: ratio >= 0.8,
          }));
        }
      }
      ctx.log(`gateway connections: ${Math.round(d.connRate)}/s (kernel routed ${Math.round(routed.connRate)}/s)`);
      results.push(result('gateway relayed connections', round(d.connRate), 'conn/s', { name: 'kernel routed over veth, same client and echo server', value: round(routed.connRate) }, {
        connections: s.connections, parallel: 64, errors: d.connErrors, referenceErrors: routed.connErrors, eventsPrinted: false,
        goal: '>= 2000 conn/s', goalMet: d.connRate >= 2000,
      }));
      const idle = d.idle;
      ctx.log(`gateway idle relayed connection: ${Math.round(idle.perConn)} bytes of heap each (${idle.held} held)`);
      results.push(result('gateway heap per idle relayed connection', Math.round(idle.perConn), 'bytes/conn', undefined, {
        held: idle.held, heapBefore: idle.heapBefore, heapAfter: idle.heapAfter, rssPerConn: Math.round(idle.rssPerConn),
        goal: '<= 16384 bytes/conn', goalMet: idle.perConn <= 16384,
      }));
      ctx.progress(1);
      return results;
    });
  },
};
