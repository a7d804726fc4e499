/**
 * The Node processes of the gateway benchmark (src/bench/gateway.ts), each run inside a network
 * namespace the benchmark made:
 *
 *   node [--expose-gc] dist/src/bench/gateway-worker.js --bench-worker MODE [options] [-- gateway args]
 *
 * gateway      `synack gateway` itself (src/cli/gateway.ts, gatewayCommand) with the arguments after
 *              `--`; per-connection events are formatted but not printed (the bench would read tens
 *              of thousands of lines). SIGUSR2 (with --expose-gc): a full collection, then
 *              `heap N {heapUsed, rss}` (N counts the requests from 1) — the gateway's heap without
 *              the garbage a moment's traffic leaves.
 * wisp-server  wisp-js's server (@mercuryworkshop/wisp-js, a dev dependency) on 127.0.0.1, any port,
 *              loopback and private destinations allowed; prints `ready PORT`.
 * wisp-client  --client ours|wisp-js --url U --port P --dir down|up --bytes N: a Wisp stream to
 *              127.0.0.1:P with no VM in between — down: reads N bytes and closes; up: writes N bytes
 *              (as the server's credits allow) and waits for the server's close. Prints
 *              `result {bytes, seconds, mbps}`, timed from the WebSocket's opening to the end.
 * echo         --host H --port P: a TCP server echoing what it reads, closing at the peer's FIN (Nagle
 *              off); prints `ready`.
 * connect      --host H --port P --count N --parallel K: N connections, K in flight: open, write one
 *              byte, read it back, close; prints `result {count, seconds, rate, errors}`.
 * hold         --host H --port P --count N --parallel K: opens N connections (K at a time), each
 *              echoing one byte, prints `held {count, seconds, errors}` and keeps them, idle, until
 *              SIGTERM.
 * Every mode is bounded (--limit-s, default 300): past it, `error {message}` and exit 1.
 */
import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gatewayCommand } from '../cli/gateway.js';
import { nodeIO } from '../cli/io.js';
import { NodeWebSocket } from '../gateway/websocket-node.js';
import { WispUpstream } from '../gateway/wisp.js';
import type { UpstreamStream } from '../gateway/upstream.js';

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function fail(message: string): never {
  say('error ' + JSON.stringify({ message }));
  process.exit(1);
}

const CHUNK = Buffer.from(new Uint8Array(64 * 1024).map((_, i) => i & 0xff));

interface Options {
  client: string;
  url: string;
  host: string;
  port: number;
  dir: string;
  bytes: number;
  count: number;
  parallel: number;
}

/** `synack gateway` with a SIGUSR2 heap probe. */
async function gateway(args: string[]): Promise<void> {
  let probes = 0;
  process.on('SIGUSR2', () => {
    const g = (globalThis as { gc?: () => void }).gc;
    // Twice: the first pass may leave objects whose finalizers free more (as src/bench/common.ts gc()).
    g?.();
    g?.();
    const m = process.memoryUsage();
    say(`heap ${++probes} ${JSON.stringify({ heapUsed: m.heapUsed, rss: m.rss, collected: g !== undefined })}`);
  });
  const perConnection = /^\{"event":"(tcp|udp)-/;
  const io = nodeIO();
  const code = await gatewayCommand(args, {
    ...io,
    stdout: (t) => {
      if (!perConnection.test(t)) io.stdout(t);
    },
  });
  process.exit(code);
}

async function importWisp(entry: 'server' | 'client'): Promise<Record<string, unknown>> {
  // A dev dependency, named at run time: the package builds and `synack bench` loads without it.
  const name = `@mercuryworkshop/wisp-js/${entry}`;
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (e) {
    return fail(`cannot load ${name} (a dev dependency): ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function wispServer(): Promise<void> {
  const http = await import('node:http');
  const mod = await importWisp('server');
  const wisp = mod['server'] as { options: Record<string, unknown>; routeRequest(req: unknown, sock: unknown, head: unknown): void };
  const logging = mod['logging'] as { set_level(l: unknown): void; NONE: unknown } | undefined;
  logging?.set_level(logging.NONE);
  Object.assign(wisp.options, { allow_loopback_ips: true, allow_private_ips: true });
  const s = http.createServer((_req, res) => res.end('wisp'));
  s.on('upgrade', (req, sock, head) => wisp.routeRequest(req, sock, head));
  s.listen(0, '127.0.0.1', () => {
    const a = s.address();
    say(`ready ${typeof a === 'object' && a !== null ? a.port : 0}`);
  });
}

function done(bytes: number, start: number): never {
  const seconds = (performance.now() - start) / 1000;
  say('result ' + JSON.stringify({ bytes, seconds, mbps: (bytes * 8) / seconds / 1e6 }));
  process.exit(0);
}

/** A Wisp stream through our WispUpstream (the gateway's own client), no VM. */
async function oursClient(o: Options): Promise<void> {
  const start = performance.now();
  const up = new WispUpstream({ url: o.url, WebSocket: NodeWebSocket });
  let s: UpstreamStream;
  try {
    s = await up.openTcp({ host: '127.0.0.1', port: o.port }, {});
  } catch (e) {
    return fail(`wisp open: ${e instanceof Error ? e.message : String(e)}`);
  }
  let got = 0;
  s.onclose = (e) => {
    if (o.dir === 'up') done(o.bytes, start);
    fail(`the stream closed after ${got} of ${o.bytes} bytes${e !== null ? `: ${e.message}` : ''}`);
  };
  s.onend = () => {
    if (o.dir === 'up') done(o.bytes, start);
  };
  if (o.dir === 'down') {
    s.ondata = (d) => {
      got += d.length;
      // The exit closes the WebSocket, and with it the stream (the server's socket sees its end).
      if (got >= o.bytes) done(got, start);
    };
    return;
  }
  s.ondata = () => {};
  let sent = 0;
  const pump = (): void => {
    while (sent < o.bytes) {
      const n = Math.min(CHUNK.length, o.bytes - sent);
      sent += n;
      if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return; // ondrain follows
    }
  };
  s.ondrain = pump;
  pump();
}

interface WispJsStream {
  buffer_size: number;
  send(data: Uint8Array): void;
  close(reason?: number): void;
  continue_received(n: number): void;
  onmessage: (data: Uint8Array) => void;
  onclose: (reason: number) => void;
}

/** The same through wisp-js's own client (ClientConnection, create_stream). */
async function wispJsClient(o: Options): Promise<void> {
  const mod = await importWisp('client');
  const client = mod['client'] as { ClientConnection: new (url: string) => { onopen: () => void; onerror: () => void; create_stream(host: string, port: number): WispJsStream } };
  const start = performance.now();
  const conn = new client.ClientConnection(o.url);
  conn.onerror = () => fail('wisp-js: the WebSocket failed');
  conn.onopen = () => {
    const s = conn.create_stream('127.0.0.1', o.port);
    let got = 0;
    s.onclose = (reason) => {
      if (o.dir === 'up') done(o.bytes, start);
      fail(`wisp-js: the stream closed (reason ${reason}) after ${got} of ${o.bytes} bytes`);
    };
    if (o.dir === 'down') {
      s.onmessage = (d) => {
        got += d.length;
        if (got >= o.bytes) done(got, start);
      };
      return;
    }
    // Its send() queues without bound past the server's credit: write only while credit remains.
    let sent = 0;
    const pump = (): void => {
      while (sent < o.bytes && s.buffer_size > 0) {
        const n = Math.min(CHUNK.length, o.bytes - sent);
        sent += n;
        s.send(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      }
    };
    const onContinue = s.continue_received.bind(s);
    s.continue_received = (n) => {
      onContinue(n);
      pump();
    };
    pump();
  };
}

function echoServer(o: Options): void {
  const server = createServer({ noDelay: true }, (s: Socket) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => s.destroy());
  });
  server.on('error', (e) => fail(`echo server: ${e.message}`));
  server.listen({ host: o.host, port: o.port, backlog: 4096 }, () => say('ready'));
}

/**
 * Opens `count` connections, `parallel` at a time: each writes one byte and, once it is back, is
 * handed to `onEchoed` (which closes or keeps it); `settled` counts the ones finished.
 */
function drive(o: Options, onEchoed: (s: Socket, finish: () => void) => void, onAll: (errors: number) => void): void {
  let opened = 0;
  let finished = 0;
  let errors = 0;
  const open = (): void => {
    if (opened >= o.count) return;
    opened++;
    const s = connect({ host: o.host, port: o.port, noDelay: true });
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (++finished === o.count) onAll(errors);
      else open();
    };
    s.once('connect', () => s.write(CHUNK.subarray(0, 1)));
    s.once('data', () => onEchoed(s, finish));
    s.on('error', () => {
      errors++;
      s.destroy();
      finish();
    });
  };
  for (let i = 0; i < Math.min(o.parallel, o.count); i++) open();
}

function connectRate(o: Options): void {
  const start = performance.now();
  drive(o, (s, finish) => {
    // Active close, as a client does; counted once both directions are done.
    s.once('close', finish);
    s.end();
  }, (errors) => {
    const seconds = (performance.now() - start) / 1000;
    say('result ' + JSON.stringify({ count: o.count, seconds, rate: (o.count - errors) / seconds, errors }));
    process.exit(0);
  });
}

function hold(o: Options): void {
  const start = performance.now();
  const kept: Socket[] = [];
  drive(o, (s, finish) => {
    kept.push(s);
    finish();
  }, (errors) => {
    say('held ' + JSON.stringify({ count: kept.length, seconds: (performance.now() - start) / 1000, errors }));
  });
  process.on('SIGTERM', () => {
    for (const s of kept) s.destroy();
    process.exit(0);
  });
}

function main(): void {
  const argv = process.argv.slice(2);
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      'bench-worker': { type: 'boolean' },
      client: { type: 'string', default: 'ours' },
      url: { type: 'string', default: '' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      dir: { type: 'string', default: 'down' },
      bytes: { type: 'string', default: String(1 << 20) },
      count: { type: 'string', default: '100' },
      parallel: { type: 'string', default: '64' },
      'limit-s': { type: 'string', default: '300' },
    },
  });
  const limit = setTimeout(() => fail(`no end within ${values['limit-s']} s`), Number(values['limit-s']) * 1000);
  limit.unref();
  const o: Options = {
    client: values.client, url: values.url, host: values.host, port: Number(values.port), dir: values.dir,
    bytes: Number(values.bytes), count: Number(values.count), parallel: Number(values.parallel),
  };
  const mode = positionals[0];
  const run = (p: Promise<void> | void): void => {
    void Promise.resolve(p).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
  };
  switch (mode) {
    case 'gateway':
      // The gateway runs until the bench stops it: only the bench's own bound applies.
      clearTimeout(limit);
      return run(gateway(dash >= 0 ? argv.slice(dash + 1) : []));
    case 'wisp-server':
      clearTimeout(limit);
      return run(wispServer());
    case 'wisp-client':
      return run(o.client === 'wisp-js' ? wispJsClient(o) : oursClient(o));
    case 'echo':
      clearTimeout(limit);
      return echoServer(o);
    case 'connect':
      return connectRate(o);
    case 'hold':
      return hold(o);
    default:
      fail(`unknown mode ${JSON.stringify(mode)}`);
  }
}

// Only when started as the worker (never when imported, e.g. by a test that lists modules).
if (process.argv.includes('--bench-worker')) main();
