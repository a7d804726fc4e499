/**
 * Acceptance tests for data transfer: a 1 MiB echo, over IPv4 and IPv6, through a link that loses,
 * reorders, duplicates and corrupts packets in both directions, for many seeds; then at 30 % loss;
 * then in real time. Every byte must come back in order, and both sides must close cleanly: no
 * error on either side, the active closer (the client, whose FIN goes first) through TIME-WAIT
 * (RFC 9293 §3.4.2, §3.10.7.4) to CLOSED, the passive closer through LAST-ACK to CLOSED, and both
 * stacks holding no connection at the end.
 *
 * The applications sit directly on the connection's user interface (RFC 9293 §3.9.1), and run
 * after the stack's processing (deferred on the clock) as a socket layer would. The echo server
 * reads nothing more while its last chunk waits for send-buffer space, so a slow echo closes the
 * receive window rather than growing a queue.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Clock, MemoryLinkOptions, TcpConnection, TcpError, TcpInfo, TcpState } from '../../src/index.node.js';
import { FAMILIES, pattern, twoStacks, type Family, type Mode, type Net2 } from '../socket/harness.js';

const SIZE = 1 << 20;
const PORT = 7;
/** Most the echo server reads at once (and so holds, when its send buffer is full). */
const ECHO_CHUNK = 64 * 1024;
/** Seeds per family for the virtual-time cases (the issue asks for 16; do not cut them). */
const SEEDS = 16;
/** Seeds per family in real time. */
const REAL_SEEDS = 2;
/** Simulated time one virtual case may take, handshake to both sides CLOSED (TIME-WAIT included). */
const MAX_VIRTUAL_MS = 60 * 60 * 1000;
/** Wall time one case may take before it fails (the whole file must stay well under a minute). */
const MAX_WALL_MS = 20_000;
/** Real time one real-time case may take (its own clock is the wall). */
const MAX_REAL_MS = 15_000;

/** Clock time between checks of whether a case is done. */
const STEP_MS = 10;
/** The virtual-time path: 10 ms one way, a 100 Mbit/s bottleneck (per direction). */
const VIRTUAL_PATH: MemoryLinkOptions = { delayMs: 10, bandwidthBps: 100e6 };
const IMPAIRED: MemoryLinkOptions = { lossRate: 0.05, reorderRate: 0.05, duplicateRate: 0.02, corruptRate: 0.01 };
const HEAVY_LOSS: MemoryLinkOptions = { lossRate: 0.3 };

interface EchoStats {
  /** Clock time from connect to the last echoed byte and the server's FIN read by the client. */
  echoMs: number;
  /** Clock time from connect to both stacks holding no connection. */
  closedMs: number;
  wallMs: number;
  clientRetransmits: number;
  serverRetransmits: number;
}

/**
 * Runs the simulation until `done()` holds, at most `maxMs` of clock time and `maxWallMs` of wall
 * time, throwing `failed()` as soon as it is set. The applications here are plain clock callbacks,
 * so virtual time runs synchronously (no host turn per instant: hours of simulated idle time, RTO
 * backoff and TIME-WAIT, cost milliseconds); real time polls on the clock through the harness.
 */
async function runUntil(
  net: Net2, done: () => boolean, failed: () => unknown, maxMs: number, maxWallMs: number, what: () => string,
): Promise<void> {
  const { clock, virtual } = net;
  const t0 = clock.now();
  const wall0 = performance.now();
  const check = (): boolean => {
    const err = failed();
    if (err !== undefined) throw err;
    if (done()) return true;
    if (clock.now() - t0 >= maxMs) throw new Error(`not done within ${maxMs} ms of ${virtual ? 'simulated' : 'real'} time: ${what()}`);
    if (performance.now() - wall0 >= maxWallMs) throw new Error(`not done within ${maxWallMs} ms of wall time: ${what()}`);
    return false;
  };
  if (virtual) {
    while (!check()) virtual.advanceSync(STEP_MS);
    return;
  }
  await net.run(
    new Promise<void>((resolve, reject) => {
      const poll = (): void => {
        try {
          if (check()) resolve();
          else clock.schedule(clock.now() + STEP_MS, poll);
        } catch (e) {
          reject(e);
        }
      };
      poll();
    }),
    maxMs + 1000,
  );
}

/** A callback the stack may call many times, run once after the current processing. */
function deferred(clock: Clock, fn: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    clock.defer(() => {
      queued = false;
      fn();
    });
  };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * One echo of `SIZE` bytes from a (client) to b (server) and back, then both sides closed; asserts
 * everything the acceptance criteria name and returns the figures to print.
 */
async function echoCase(mode: Mode, fam: Family, link: MemoryLinkOptions, seed: number): Promise<EchoStats> {
  const wallStart = performance.now();
  const net = twoStacks(mode, { link: { ...link, seed }, stack: { seed } });
  const { a, b, clock } = net;
  const t0 = clock.now();
  const maxMs = mode === 'virtual' ? MAX_VIRTUAL_MS : MAX_REAL_MS;
  const maxWall = mode === 'virtual' ? MAX_WALL_MS : MAX_REAL_MS + 5_000;

  const data = pattern(SIZE, 0x9e3779b9 ^ seed);
  const got = new Uint8Array(SIZE);
  let gotLen = 0;
  let sent = 0;
  let clientCloseCalled = false;
  let serverCloseCalled = false;
  let client: TcpConnection | undefined;
  let server: TcpConnection | undefined;
  let clientClosed: { error: TcpError | null; info: TcpInfo } | undefined;
  let serverClosed: { error: TcpError | null; info: TcpInfo; clientState: TcpState | undefined; clientHeld: boolean } | undefined;
  let echoDoneAt = NaN;

  /** The first thing that went wrong: a connection error, or an exception in an application. */
  let failure: unknown;
  const fail = (e: unknown): void => {
    failure ??= e;
  };
  const guarded = (fn: () => void) => () => {
    try {
      fn();
    } catch (e) {
      fail(e);
    }
  };

  // When the client's connection entered and left TIME-WAIT (see the closing assertions).
  let timeWaitFrom = NaN;
  let timeWaitTo = NaN;
  a.on('trace', (e) => {
    if (e.type !== 'state') return;
    if (e.to === 'TIME-WAIT') timeWaitFrom = clock.now();
    else if (e.from === 'TIME-WAIT') timeWaitTo = clock.now();
  });

  const listener = b.tcpListen({ port: PORT });
  listener.onConnection = (c) => {
    assert.equal(server, undefined, 'one connection only');
    server = c;
    // Echo, as node's pipe does: write what was read; a short write means the send buffer is full
    // (and asks for onWritable), and nothing more is read until the rest is taken, so the receive
    // window closes instead of a queue growing here. The application holds at most one chunk.
    let pending: Uint8Array | null = null;
    const pump = deferred(clock, guarded(() => {
      for (;;) {
        if (pending !== null) {
          const n = c.write(pending);
          if (n < pending.length) {
            pending = pending.subarray(n);
            break;
          }
          pending = null;
        }
        pending = c.read(ECHO_CHUNK);
        if (pending === null) break;
      }
      if (pending === null && c.finReceived && c.readableLength === 0 && !serverCloseCalled) {
        serverCloseCalled = true;
        c.close();
      }
    }));
    c.events = {
      onReadable: pump,
      onEnd: pump,
      onWritable: pump,
      onClosed: (error) => {
        serverClosed = {
          error,
          info: c.info(),
          clientState: client?.state,
          clientHeld: client !== undefined && a.connections().includes(client),
        };
        if (error) fail(error);
      },
    };
    pump();
  };

  client = a.tcpConnect({ host: fam.b, port: PORT });
  const cl = client;
  const pumpClient = deferred(clock, guarded(() => {
    if (cl.state === 'SYN-SENT') return; // CLOSE in SYN-SENT would delete the TCB (RFC 9293 §3.10.4).
    // A short write (the send buffer is full) asks for onWritable.
    if (sent < SIZE) sent += cl.write(data.subarray(sent));
    if (sent === SIZE && !clientCloseCalled) {
      clientCloseCalled = true;
      cl.close();
    }
    for (let chunk = cl.read(); chunk !== null; chunk = cl.read()) {
      if (gotLen + chunk.length > SIZE) throw new Error(`more than ${SIZE} bytes echoed`);
      got.set(chunk, gotLen);
      gotLen += chunk.length;
    }
    if (cl.finReceived && cl.readableLength === 0 && Number.isNaN(echoDoneAt)) {
      echoDoneAt = clock.now();
    }
  }));
  cl.events = {
    onEstablished: pumpClient,
    onReadable: pumpClient,
    onEnd: pumpClient,
    onWritable: pumpClient,
    onClosed: (error) => {
      clientClosed = { error, info: cl.info() };
      if (error) fail(error);
    },
  };

  // Where a case that runs out of time got to, for the failure message.
  const side = (name: string, c: TcpConnection | undefined): string => {
    if (c === undefined) return `${name} none`;
    const i = c.info();
    return `${name} ${i.state} srtt ${i.srtt.toFixed(0)} ms rto ${i.rto.toFixed(0)} ms retransmits ${i.totalRetransmits}`;
  };
  const what = (): string =>
    `${mode} ${fam.name} seed ${seed} at ${(clock.now() - t0).toFixed(0)} ms: ${sent} bytes written, ` +
    `${gotLen} echoed; ${side('client', client)}; ${side('server', server)}`;
  try {
    await runUntil(net, () => clientClosed !== undefined && serverClosed !== undefined && !Number.isNaN(echoDoneAt),
      () => failure, maxMs, maxWall, what);
    // The active closer leaves TIME-WAIT after 2×MSL (RFC 9293 §3.4.2); then nothing is left.
    await runUntil(net, () => a.connections().length === 0 && b.connections().length === 0,
      () => failure, maxMs - (clock.now() - t0), maxWall - (performance.now() - wallStart), what);
  } finally {
    listener.close();
    // A case that failed may leave connections retransmitting: in real time their host timers
    // would hold the test process open.
    for (const c of [...a.connections(), ...b.connections()]) c.abort();
  }
  const closedMs = clock.now() - t0;

  const diff = firstDifference(got.subarray(0, gotLen), data);
  assert.equal(gotLen, SIZE, `echoed ${gotLen} of ${SIZE} bytes`);
  assert.equal(diff, -1, `echoed bytes differ from byte ${diff} on`);
  assert.ok(clientClosed && serverClosed && server);
  assert.equal(clientClosed.error, null);
  assert.equal(serverClosed.error, null);
  // The server closed last (LAST-ACK → CLOSED) while the client still held its connection in
  // TIME-WAIT; afterwards both are CLOSED and forgotten. One exception TCP itself has: when the
  // client's ACK of the FIN is lost and the server's retransmission timer has backed off beyond
  // 2×MSL (RTOs of 51–120 s after repeated losses at 30 %), the next FIN finds TIME-WAIT over — which
  // then must have lasted its full 2×MSL (RFC 9293 §3.4.2), not ended early.
  const twMs = 2 * (mode === 'real' ? 100 : 30_000);
  const fullTimeWaitBeforeLastFin = serverClosed.clientState === 'CLOSED' && timeWaitTo - timeWaitFrom >= twMs;
  if (!fullTimeWaitBeforeLastFin) {
    assert.equal(serverClosed.clientState, 'TIME-WAIT',
      `the server left LAST-ACK while the client was ${serverClosed.clientState}, not in TIME-WAIT ` +
      `(TIME-WAIT lasted ${(timeWaitTo - timeWaitFrom).toFixed(0)} ms; one that ends before the last FIN ` +
      'arrives leaves that FIN to be answered with RST)');
    assert.equal(serverClosed.clientHeld, true, 'the client in TIME-WAIT is still held by its stack');
  }
  assert.equal(cl.state, 'CLOSED');
  assert.equal(server.state, 'CLOSED');
  assert.deepEqual(a.connections(), []);
  assert.deepEqual(b.connections(), []);
  assert.equal(serverClosed.info.bytesReceived, SIZE);
  assert.equal(clientClosed.info.bytesReceived, SIZE);
  // Nothing threw inside either stack (an exception there is caught and counted, not raised).
  assert.equal(a.counters.internalErrors, 0);
  assert.equal(b.counters.internalErrors, 0);

  return {
    echoMs: echoDoneAt - t0,
    closedMs,
    wallMs: performance.now() - wallStart,
    clientRetransmits: Math.max(clientClosed.info.totalRetransmits, cl.info().totalRetransmits),
    serverRetransmits: Math.max(serverClosed.info.totalRetransmits, server.info().totalRetransmits),
  };
}

function describeStats(s: EchoStats, mode: Mode): string {
  const clock = mode === 'virtual' ? 'simulated' : 'real';
  return `echo ${(s.echoMs / 1000).toFixed(3)} s ${clock}, all closed at ${(s.closedMs / 1000).toFixed(3)} s; ` +
    `retransmits client ${s.clientRetransmits} server ${s.serverRetransmits}; wall ${s.wallMs.toFixed(0)} ms`;
}

interface Suite {
  title: string;
  mode: Mode;
  link: MemoryLinkOptions;
  seeds: number;
  /** Seed of the first case; each case adds one (so the suites use different seeds). */
  firstSeed: number;
}

const SUITES: Suite[] = [
  {
    title: '5% loss, 5% reordering, 2% duplication, 1% corruption, both ways (virtual time)',
    mode: 'virtual',
    link: { ...VIRTUAL_PATH, ...IMPAIRED },
    seeds: SEEDS,
    firstSeed: 1,
  },
  {
    title: '30% loss both ways (virtual time)',
    mode: 'virtual',
    link: { ...VIRTUAL_PATH, ...HEAVY_LOSS },
    seeds: SEEDS,
    firstSeed: 101,
  },
  {
    title: '1% loss both ways, 1 ms delay (real time, MSL 100 ms)',
    mode: 'real',
    link: { delayMs: 1, lossRate: 0.01 },
    seeds: REAL_SEEDS,
    firstSeed: 201,
  },
];

describe('1 MiB echo: every byte back in order, both sides closed cleanly', () => {
  for (const suite of SUITES) {
    describe(suite.title, () => {
      for (const fam of FAMILIES) {
        describe(fam.name, () => {
          for (let i = 0; i < suite.seeds; i++) {
            const seed = suite.firstSeed + i;
            test(`seed ${seed}`, { timeout: (suite.mode === 'virtual' ? MAX_WALL_MS : MAX_REAL_MS) + 10_000 }, async (t) => {
              const stats = await echoCase(suite.mode, fam, suite.link, seed);
              t.diagnostic(describeStats(stats, suite.mode));
            });
          }
        });
      }
    });
  }
});
