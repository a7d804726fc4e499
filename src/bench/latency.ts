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
import type { TcpConnection } from '../tcp/user.js';
import { median, percentile, result, round, stackPair, turn } from './common.js';
import { closeServerLike, kernelNet, listenOn, type SocketLike } from './netlike.js';
import type { Benchmark, BenchContext, BenchResult } from './types.js';

const WARMUP = 1000;
const TIMEOUT_MS = 60_000;

function timeout(what: string, reject: (e: Error) => void): ReturnType<typeof setTimeout> {
  return setTimeout(() => reject(new Error(`${what}: not done within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
}

/** Round-trip times in µs of `n` 1-byte ping-pongs through two synack stacks. */
export async function synackPingPong(n: number): Promise<number[]> {
  const { a, b } = stackPair({ mtu: 1500 });
  const l = b.tcpListen({ port: 7100 });
  l.onConnection = (c: TcpConnection) => {
    c.setNoDelay(true);
    c.events = {
      onReadable: () => {
        const d = c.read();
        if (d !== null) c.write(d);
      },
      onEnd: () => c.close(),
    };
  };
  const one = new Uint8Array([0x2a]);
  const samples: number[] = [];
  const c = a.tcpConnect({ host: '10.0.0.2', port: 7100 });
  c.setNoDelay(true);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = timeout('synack ping-pong', reject);
      let t = 0;
      let count = 0;
      const ping = (): void => {
        t = performance.now();
        c.write(one);
      };
      c.events = {
        onEstablished: ping,
        onReadable: () => {
          if (c.read() === null) return;
          const rtt = (performance.now() - t) * 1000;
          if (count++ >= WARMUP) samples.push(rtt);
          if (samples.length >= n) {
            clearTimeout(timer);
            resolve();
          } else ping();
        },
        onClosed: (err) => {
          if (err !== null) {
            clearTimeout(timer);
            reject(err);
          }
        },
      };
    });
  } finally {
    c.abort();
    l.close();
  }
  return samples;
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
  const samples: number[] = [];
  const s = net.connect({ host: net.host, port });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = timeout('node:net ping-pong', reject);
      let t = 0;
      let count = 0;
      const ping = (): void => {
        t = performance.now();
        s.write(one);
      };
      s.on('error', ((e: Error) => {
        clearTimeout(timer);
        reject(e);
      }) as (...a: never[]) => void);
      s.once('connect', ping);
      // One byte per write and one write outstanding: each 'data' event is one echo.
      s.on('data', () => {
        const rtt = (performance.now() - t) * 1000;
        if (count++ >= WARMUP) samples.push(rtt);
        if (samples.length >= n) {
          clearTimeout(timer);
          resolve();
        } else ping();
      });
    });
  } finally {
    s.destroy();
    await closeServerLike(server);
  }
  return samples;
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
