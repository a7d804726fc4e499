/**
 * Helpers shared by the benchmarks of `synack bench` (Node only): results with their ratio, bulk
 * transfers through synack and through the kernel's loopback driven the same way, timing, and
 * child processes with `--expose-gc`.
 */
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { MemoryLink, type MemoryLinkOptions } from '../link/memory.js';
import { RealClock, type Clock, type TimerHandle } from '../link/clock.js';
import { Stack } from '../stack/stack.js';
import type { StackOptions } from '../stack/options.js';
import type { TcpConnection } from '../tcp/user.js';
import type { BenchReference, BenchResult } from './types.js';

/** A result whose ratio is value / reference.value (CONTRACT.md bench shape). */
export function result(
  name: string, value: number, unit: string, reference?: BenchReference, detail?: BenchResult['detail'],
): BenchResult {
  const r: BenchResult = { name, value, unit };
  if (reference !== undefined) {
    r.reference = reference;
    // Rounded as the figures are (4 significant digits): value / reference.value to 1 part in 1000.
    r.ratio = reference.value > 0 ? round(value / reference.value) : 0;
  }
  if (detail !== undefined) r.detail = detail;
  return r;
}

export const gbitPerSecond = (bytes: number, ms: number): number => (bytes * 8) / (ms / 1000) / 1e9;

export function median(xs: number[]): number {
  return percentile(xs, 0.5);
}

/** The p-quantile (0..1) by nearest rank of a sample; NaN for an empty one. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1));
  return s[rank]!;
}

/** Rounds for display and JSON: 4 significant digits (a benchmark is never more exact than that). */
export function round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x))));
  return Number(x.toFixed(Math.min(digits, 6)));
}

/** The sender's bytes: one 1 MiB pattern written again and again (never modified, so views are safe). */
export const SOURCE = Buffer.from(new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24));

/** Gives the event loop a turn (I/O, timers) between measurements. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class BenchTimer implements TimerHandle {
  native: ReturnType<typeof setTimeout> | undefined;
  constructor(readonly id: number) {}
}

/**
 * Real time, as RealClock (whose `now` and `defer` it uses), except that its timers do not keep
 * the process alive: a benchmark leaves connections in TIME-WAIT (2×MSL = 60 s) and stacks with a
 * wakeup armed, and `synack bench` must exit when its last benchmark is done, not a minute later.
 */
export class BenchClock implements Clock {
  private readonly real = new RealClock();
  private nextId = 1;

  now(): number {
    return this.real.now();
  }

  defer(fn: () => void): void {
    this.real.defer(fn);
  }

  schedule(at: number, fn: () => void): TimerHandle {
    const timer = new BenchTimer(this.nextId++);
    const arm = (): void => {
      const delay = at - this.now();
      timer.native = setTimeout(() => {
        // Host timers may fire up to a millisecond early (as in RealClock): wait out the rest.
        if (this.now() < at) arm();
        else {
          timer.native = undefined;
          fn();
        }
      }, delay > 0 ? delay : 0);
      timer.native.unref();
    };
    arm();
    return timer;
  }

  cancel(handle: TimerHandle): void {
    if (handle instanceof BenchTimer && handle.native !== undefined) {
      clearTimeout(handle.native);
      handle.native = undefined;
    }
  }
}

/** Two synack stacks joined by a MemoryLink (no delay, no loss), on real time (a BenchClock). */
export interface StackPair {
  clock: Clock;
  a: Stack;
  b: Stack;
}

export function stackPair(link: MemoryLinkOptions, stack: Partial<StackOptions> = {}, clock: Clock = new BenchClock()): StackPair {
  const [ea, eb] = MemoryLink.pair({ ...link, clock });
  const a = new Stack({ ...stack, link: ea, clock, addresses: ['10.0.0.1/24'], name: 'a' });
  const b = new Stack({ ...stack, link: eb, clock, addresses: ['10.0.0.2/24'], name: 'b' });
  return { clock, a, b };
}

/**
 * A receiving end that reads all it is given: each chunk goes to `onChunk` (what is already queued
 * at once, then on every onReadable); at the peer's FIN it reads the rest and closes its own side;
 * a connection that closes with an error hands it to `onError`.
 */
export function sink(c: TcpConnection, onChunk: (chunk: Uint8Array) => void, onError: (err: Error) => void): void {
  const drain = (): void => {
    for (let chunk = c.read(); chunk !== null; chunk = c.read()) onChunk(chunk);
  };
  c.events = {
    onReadable: drain,
    onEnd: () => {
      drain();
      c.close();
    },
    onClosed: (err) => {
      if (err !== null) onError(err);
    },
  };
  drain();
}

/** An echo server's side of a connection, Nagle off: what it reads it writes back; it closes at the peer's FIN. */
export function echo(c: TcpConnection): void {
  c.setNoDelay(true);
  c.events = {
    onReadable: () => {
      const d = c.read();
      if (d !== null) c.write(d);
    },
    onEnd: () => c.close(),
  };
}

export interface BulkOptions {
  /** Total bytes, split evenly between the connections. */
  bytes: number;
  /** Parallel connections. */
  conns: number;
  /** Bytes per write call. */
  chunk: number;
  /** Give up (reject) after this many ms. */
  timeoutMs: number;
}

export interface BulkResult {
  bytes: number;
  ms: number;
  gbps: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function shares(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => base + (i < total - base * n ? 1 : 0));
}

/**
 * Bulk transfer a → b through a synack stack pair: `conns` connections opened at once, each writing
 * its share in `chunk`-byte writes (refilled on onWritable), the receiver reading everything in its
 * onReadable callback (and spot-checking what it reads). Timed from the first connect to the last
 * byte read, handshakes included (a few µs beside the transfer), like `kernelBulk`.
 */
export async function synackBulk(pair: StackPair, o: BulkOptions, port = 5001): Promise<BulkResult> {
  const { a, b } = pair;
  const each = shares(o.bytes, o.conns);
  let received = 0;
  let failure: Error | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const listener = b.tcpListen({ port, backlog: Math.max(511, o.conns) });
  const accepted: TcpConnection[] = [];
  listener.onConnection = (c) => {
    accepted.push(c);
    // Where this connection's stream is in SOURCE: the first and last byte of every chunk read are
    // checked against it (O(1) per read), so a benchmark cannot count bytes that were never moved.
    let offset = 0;
    sink(
      c,
      (chunk) => {
        const n = chunk.length;
        if (n > 0 && (chunk[0] !== SOURCE[offset % SOURCE.length] || chunk[n - 1] !== SOURCE[(offset + n - 1) % SOURCE.length])) {
          failure ??= new Error(`synack bulk transfer: wrong bytes received at offset ${offset}`);
          resolveDone();
        }
        offset += n;
        received += n;
        if (received >= o.bytes) resolveDone();
      },
      (err) => {
        failure ??= err;
        resolveDone();
      },
    );
  };
  const t0 = performance.now();
  const clients: TcpConnection[] = [];
  for (let i = 0; i < o.conns; i++) {
    const share = each[i]!;
    const conn = a.tcpConnect({ host: '10.0.0.2', port });
    clients.push(conn);
    let written = 0;
    const fill = (): void => {
      if (conn.state === 'SYN-SENT') return;
      while (written < share) {
        const off = written % SOURCE.length;
        const want = Math.min(o.chunk, SOURCE.length - off, share - written);
        const n = conn.write(SOURCE.subarray(off, off + want));
        written += n;
        if (n < want) return; // send buffer full: onWritable follows
      }
      conn.close();
    };
    conn.events = {
      onEstablished: fill,
      onWritable: fill,
      onClosed: (err) => {
        if (err !== null) {
          failure ??= err;
          resolveDone();
        }
      },
    };
  }
  try {
    await withTimeout(done, o.timeoutMs, `synack bulk transfer of ${o.bytes} bytes`);
  } finally {
    listener.close();
    for (const c of clients) if (c.state !== 'CLOSED' && c.state !== 'TIME-WAIT') c.abort();
    for (const c of accepted) if (c.state !== 'CLOSED' && c.state !== 'TIME-WAIT') c.abort();
  }
  const ms = performance.now() - t0;
  if (failure !== null) throw failure;
  return { bytes: received, ms, gbps: gbitPerSecond(received, ms) };
}

/** A node:net server on 127.0.0.1 with an ephemeral port. */
export async function listenLoopback(onConnection: (s: Socket) => void, backlog = 511): Promise<{ server: Server; port: number }> {
  const server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog }, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('loopback server has no port');
  return { server, port: addr.port };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The same bulk transfer through the kernel's loopback with node:net: same connection count, same
 * byte count, same write size, writes waiting for 'drain' when `write()` returns false, the
 * receiver counting 'data' bytes. Timed from the first connect to the last byte received.
 */
export async function kernelBulk(o: BulkOptions): Promise<BulkResult> {
  let received = 0;
  let resolveDone!: () => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const sockets: Socket[] = [];
  const { server, port } = await listenLoopback((s) => {
    sockets.push(s);
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= o.bytes) resolveDone();
    });
    s.on('error', rejectDone);
  }, Math.max(511, o.conns));
  const each = shares(o.bytes, o.conns);
  const t0 = performance.now();
  for (let i = 0; i < o.conns; i++) {
    const share = each[i]!;
    const s = netConnect({ host: '127.0.0.1', port, noDelay: true });
    sockets.push(s);
    s.on('error', rejectDone);
    let written = 0;
    const fill = (): void => {
      while (written < share) {
        const off = written % SOURCE.length;
        const want = Math.min(o.chunk, SOURCE.length - off, share - written);
        written += want;
        if (!s.write(SOURCE.subarray(off, off + want))) return; // 'drain' follows
      }
      s.end();
    };
    s.on('connect', fill);
    s.on('drain', fill);
  }
  try {
    await withTimeout(done, o.timeoutMs, `kernel loopback transfer of ${o.bytes} bytes`);
  } finally {
    for (const s of sockets) s.destroy();
    await closeServer(server);
  }
  const ms = performance.now() - t0;
  return { bytes: received, ms, gbps: gbitPerSecond(received, ms) };
}

/**
 * Runs `module` (a file of this directory, compiled) in a child Node with `--expose-gc` and the
 * given arguments; its last stdout line is JSON. A child keeps what one benchmark allocates (100k
 * connections) out of the others' heap, and gives it a heap of its own to measure.
 */
export function runChild<T>(module: string, args: string[], timeoutMs: number, onLine?: (line: string) => void): Promise<T> {
  const file = fileURLToPath(new URL(module, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=4096', file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${module} did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      let nl: number;
      while (onLine !== undefined && (nl = out.indexOf('\n')) >= 0 && out.slice(0, nl).startsWith('progress ')) {
        onLine(out.slice(0, nl));
        out = out.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = out.trim().split('\n').filter((l) => !l.startsWith('progress '));
      const last = lines[lines.length - 1];
      if (code !== 0 || last === undefined) {
        const why = err.trim().split('\n').find((l) => /Error|error/.test(l)) ?? err.trim().split('\n')[0] ?? '';
        reject(new Error(`${module} exited with ${code}${why ? `: ${why}` : ''}`));
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${module} printed no JSON result`));
      }
    });
  });
}

/** Forces a full garbage collection (only in a child started by `runChild`). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error('gc() is not exposed: run with --expose-gc');
  // Twice: the first pass may leave objects whose finalizers free more.
  g();
  g();
}
