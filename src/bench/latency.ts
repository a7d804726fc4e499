/**
 * Request/response latency: 1-byte ping-pong on one established connection, through synack (two
 * stacks over a MemoryLink, real time) and through node:net over the kernel's loopback.
 *
 * Methodology: the client writes 1 byte, the server echoes it, the client times the round trip
 * (performance.now) when the byte is back and sends the next at once. Nagle off on both ends. After
 * a warm-up of 1,000 round trips, the median and the 99th percentile of the next N. synack is driven
 * through the RFC 9293 user interface (TcpConnection events, src/tcp/user.ts), the kernel through
 * node:net, each with its own event loop turns: a synack round trip includes the clock's deferred
 * delivery turns of the MemoryLink, a kernel one the epoll wakeups of both sockets.
 * Lower is better: the ratio is synack / kernel.
 */
import { performance } from 'node:perf_hooks';
import { echo, median, percentile, result, round, stackPair, turn } from './common.js';
import { closeServerLike, kernelNet, listenOn, type SocketLike } from './netlike.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const WARMUP = 1000;
const TIMEOUT_MS = 60_000;

/**
 * The client's side of `n` timed round trips (after WARMUP more): `wire` hooks the connection's
 * events to `ping` (start the clock, `send` one byte), `pong` (it is back: record the round trip in
 * µs, then ping again) and `fail`. Resolves with the samples once there are `n`; rejects on `fail`
 * or after TIMEOUT_MS.
 */
function pingPong(
  what: string, n: number, send: () => void,
  wire: (ping: () => void, pong: () => void, fail: (e: Error) => void) => void,
): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const samples: number[] = [];
    const timer = setTimeout(() => reject(new Error(`${what}: not done within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    let t = 0;
    let count = 0;
    const ping = (): void => {
      t = performance.now();
      send();
    };
    const pong = (): void => {
      const rtt = (performance.now() - t) * 1000;
      if (count++ >= WARMUP) samples.push(rtt);
      if (samples.length >= n) {
        clearTimeout(timer);
        resolve(samples);
      } else ping();
    };
    wire(ping, pong, (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Round-trip times in µs of `n` 1-byte ping-pongs through two synack stacks. */
export async function synackPingPong(n: number): Promise<number[]> {
  const { a, b } = stackPair({ mtu: 1500 });
  const l = b.tcpListen({ port: 7100 });
  l.onConnection = echo;
  const one = new Uint8Array([0x2a]);
  const c = a.tcpConnect({ host: '10.0.0.2', port: 7100 });
  c.setNoDelay(true);
  try {
    return await pingPong('synack ping-pong', n, () => void c.write(one), (ping, pong, fail) => {
      c.events = {
        onEstablished: ping,
        onReadable: () => {
          if (c.read() !== null) pong();
        },
        onClosed: (err) => {
          if (err !== null) fail(err);
        },
      };
    });
  } finally {
    c.abort();
    l.close();
  }
}

/** The same through node:net over the kernel's loopback. */
export async function kernelPingPong(n: number): Promise<number[]> {
  const net = kernelNet();
  const server = net.createServer((s: SocketLike) => {
    s.setNoDelay(true);
    s.on('data', ((d: Uint8Array) => void s.write(d)) as (...a: never[]) => void);
    s.on('error', () => {});
  });
  const port = await listenOn(net, server, 16);
  const one = new Uint8Array([0x2a]);
  const s = net.connect({ host: net.host, port });
  try {
    return await pingPong('node:net ping-pong', n, () => void s.write(one), (ping, pong, fail) => {
      s.on('error', fail as (...a: never[]) => void);
      s.once('connect', ping);
      // One byte per write and one write outstanding: each 'data' event is one echo.
      s.on('data', pong);
    });
  } finally {
    s.destroy();
    await closeServerLike(server);
  }
}

export const latencyBenchmark: Benchmark = {
  name: 'latency',
  describe: '1-byte ping-pong round trip, median and p99 (lower is better) — reference: node:net over loopback',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const n = ctx.quick ? 5000 : 50_000;
    ctx.progress(0, 'synack');
    const syn = await synackPingPong(n);
    ctx.progress(0.5, 'kernel');
    await turn();
    const ker = await kernelPingPong(n);
    ctx.progress(1, 'done');
    const detail = { roundTrips: n, warmup: WARMUP, lowerIsBetter: true };
    return [
      result('latency p50', round(median(syn)), 'µs', { name: 'node:net over kernel loopback, p50', value: round(median(ker)) }, detail),
      result('latency p99', round(percentile(syn, 0.99)), 'µs', { name: 'node:net over kernel loopback, p99', value: round(percentile(ker, 0.99)) }, detail),
    ];
  },
};
