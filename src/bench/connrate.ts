/**
 * Connection rate: open, 1-byte echo, close — 64 connections in flight at a time, N in all — through
 * synack (two stacks in one process over a MemoryLink, real time) beside the same through node:net
 * over the kernel's loopback.
 *
 * Methodology:
 * - A client opens a connection; once established it writes 1 byte; the server echoes it; when the
 *   client has read it back it closes (active close: the client ends in TIME-WAIT, as a kernel
 *   client does); the server closes when it sees the client's FIN. A connection counts when the
 *   client learns both directions are done (synack: onClosed; node:net: 'close'), and then the next
 *   one opens, keeping 64 in flight. Rate = N / wall time from the first open to the last close.
 * - TIME-WAIT lasts 2×MSL (60 s with synack's default MSL of 30 s) and pins the client port, so
 *   servers listen on several ports, one per 8,000 connections (the ephemeral range of synack is
 *   16,384 ports per destination, RFC 6056); the kernel run uses the same number of ports.
 * - synack is driven through its fastest public API, the RFC 9293 user interface
 *   (`stack.tcpConnect` / `stack.tcpListen`, TcpConnection events, src/tcp/user.ts): no streams,
 *   no promises, no node:stream machinery. The same workload through synack's node:net look-alike
 *   (`stack.net`) is reported as a second figure, the like-for-like comparison with node:net
 *   (the very same driver code runs both).
 * - Both sides have Nagle off (noDelay). Runs alternate synack / kernel; best of the runs.
 */
import { performance } from 'node:perf_hooks';
import type { TcpConnection, TcpListener } from '../tcp/user.js';
import { echo, result, round, stackPair, turn, type StackPair } from './common.js';
import { closeServerLike, kernelNet, listenOn, synackNet, type NetLike, type ServerLike, type SocketLike } from './netlike.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

export const PARALLEL = 64;
const PER_PORT = 8000;
const TIMEOUT_MS = 120_000;

export interface RateResult {
  connections: number;
  ms: number;
  perSecond: number;
}

/** How long a failed run waits for its servers to close before it gives up on them. */
const CLOSE_WAIT_MS = 2000;

/** Runs `run` until it calls `finish`, or fails after TIMEOUT_MS. */
function deadline(what: string, run: (finish: (e: Error | null) => void) => void, timeoutMs = TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs / 1000} s`)), timeoutMs);
    run((e) => {
      clearTimeout(timer);
      if (e === null) resolve();
      else reject(e);
    });
  });
}

/** N short connections through the RFC 9293 user interface of two synack stacks. */
export async function synackConnRate(pair: StackPair, n: number, parallel = PARALLEL): Promise<RateResult> {
  const { a, b } = pair;
  const listeners: TcpListener[] = [];
  const ports: number[] = [];
  const one = new Uint8Array([0x2a]);
  for (let i = 0; i < Math.ceil(n / PER_PORT); i++) {
    const l = b.tcpListen({ port: 7000 + i, backlog: 1024 });
    listeners.push(l);
    ports.push(l.localPort);
    l.onConnection = echo;
  }
  let started = 0;
  let finished = 0;
  // A failed or timed-out run stops opening connections and aborts the ones still open, so it
  // neither hangs nor loads the CPU under the benchmarks that follow.
  let stopped = false;
  const live = new Set<TcpConnection>();
  const t0 = performance.now();
  try {
    await deadline('synack connection rate', (finish) => {
      const open = (): void => {
        if (stopped) return;
        const i = started++;
        let c: TcpConnection;
        try {
          c = a.tcpConnect({ host: '10.0.0.2', port: ports[Math.floor(i / PER_PORT)]! });
        } catch (e) {
          finish(e as Error);
          return;
        }
        c.setNoDelay(true);
        live.add(c);
        c.events = {
          onEstablished: () => void c.write(one),
          onReadable: () => {
            if (c.read() !== null) c.close();
          },
          onClosed: (err) => {
            live.delete(c);
            if (err !== null) return finish(err);
            if (++finished === n) return finish(null);
            if (started < n) open();
          },
        };
      };
      for (let i = 0; i < Math.min(parallel, n); i++) open();
    });
  } catch (e) {
    stopped = true;
    for (const c of live) c.abort();
    throw e;
  } finally {
    for (const l of listeners) l.close();
  }
  const ms = performance.now() - t0;
  return { connections: n, ms, perSecond: (n / ms) * 1000 };
}

/** N short connections through a node:net-like API (node:net on loopback, or synack's stack.net). */
export async function netConnRate(net: NetLike, n: number, parallel = PARALLEL, timeoutMs = TIMEOUT_MS): Promise<RateResult> {
  const servers: ServerLike[] = [];
  const ports: number[] = [];
  const one = new Uint8Array([0x2a]);
  let failure: ((e: Error) => void) | undefined;
  const onError = (e: Error): void => failure?.(e);
  // Every socket still open, both ends: a failed run destroys them (a server's close() waits for
  // its connections, so one stuck connection would otherwise hang the benchmark).
  const live = new Set<SocketLike>();
  const track = (s: SocketLike): void => {
    live.add(s);
    s.once('close', (() => void live.delete(s)) as (...a: never[]) => void);
  };
  let stopped = false;
  for (let i = 0; i < Math.ceil(n / PER_PORT); i++) {
    const server = net.createServer((s: SocketLike) => {
      track(s);
      s.setNoDelay(true);
      s.on('data', ((d: Uint8Array) => void s.write(d)) as (...a: never[]) => void);
      s.on('error', onError as (...a: never[]) => void);
      // allowHalfOpen is false: the server ends its side when the client's FIN arrives.
    });
    servers.push(server);
    ports.push(await listenOn(net, server, 1024));
  }
  let started = 0;
  let finished = 0;
  const t0 = performance.now();
  try {
    await deadline(`${net.label} connection rate`, (finish) => {
      failure = (e) => finish(e);
      const open = (): void => {
        if (stopped) return;
        const i = started++;
        const s = net.connect({ host: net.host, port: ports[Math.floor(i / PER_PORT)]! });
        track(s);
        s.on('error', onError as (...a: never[]) => void);
        s.once('connect', () => void s.write(one));
        s.once('data', () => void s.end());
        s.once('close', () => {
          if (++finished === n) return finish(null);
          if (started < n) open();
        });
      };
      for (let i = 0; i < Math.min(parallel, n); i++) open();
    }, timeoutMs);
  } catch (e) {
    stopped = true;
    for (const s of live) s.destroy();
    throw e;
  } finally {
    const closing = Promise.all(servers.map((s) => closeServerLike(s)));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closing, new Promise<void>((r) => void (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  return { connections: n, ms, perSecond: (n / ms) * 1000 };
}

export function connRateCount(quick: boolean): { n: number; runs: number } {
  return quick ? { n: 2000, runs: 2 } : { n: 16000, runs: 3 };
}

export const connRateBenchmark: Benchmark = {
  name: 'connrate',
  describe: 'open, 1-byte echo, close, 64 in parallel: RFC 9293 API and stack.net — reference: node:net over loopback',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const { n, runs } = connRateCount(ctx.quick);
    const steps = 1 + runs * 3;
    let step = 0;
    const tick = (label: string): void => ctx.progress(++step / steps, label);
    const fresh = (): StackPair => stackPair({ mtu: 1500 });
    // Warm-up of all three paths.
    const warm = Math.min(1000, n);
    await synackConnRate(fresh(), warm);
    { const p = fresh(); await netConnRate(synackNet(p.a, p.b, '10.0.0.2'), warm); }
    await netConnRate(kernelNet(), warm);
    tick('warm-up');
    let raw = 0;
    let viaNet = 0;
    let kernel = 0;
    const rawRuns: number[] = [];
    const netRuns: number[] = [];
    const kernelRuns: number[] = [];
    for (let r = 0; r < runs; r++) {
      const x = await synackConnRate(fresh(), n);
      rawRuns.push(x.perSecond);
      raw = Math.max(raw, x.perSecond);
      tick('synack');
      await turn();
      const p = fresh();
      const y = await netConnRate(synackNet(p.a, p.b, '10.0.0.2'), n);
      netRuns.push(y.perSecond);
      viaNet = Math.max(viaNet, y.perSecond);
      tick('synack stack.net');
      await turn();
      const k = await netConnRate(kernelNet(), n);
      kernelRuns.push(k.perSecond);
      kernel = Math.max(kernel, k.perSecond);
      tick('kernel');
      await turn();
    }
    const ref = { name: 'node:net over kernel loopback', value: round(kernel) };
    const detail = { connections: n, parallel: PARALLEL, runs, kernelRuns: kernelRuns.map(round).join(' ') };
    return [
      result('connection rate', round(raw), 'conn/s', ref, { ...detail, api: 'stack.tcpConnect/tcpListen (RFC 9293 user interface)', synackRuns: rawRuns.map(round).join(' ') }),
      result('connection rate stack.net', round(viaNet), 'conn/s', ref, { ...detail, api: 'stack.net (node:net look-alike)', synackRuns: netRuns.map(round).join(' ') }),
    ];
  },
};
