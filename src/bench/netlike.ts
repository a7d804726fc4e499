/**
 * The slice of the node:net API the short-connection benchmarks drive, so the very same driver runs
 * over the kernel (node:net) and over synack's node:net look-alike (`stack.net`, src/socket/net.ts).
 */
import * as nodeNet from 'node:net';
import { Net } from '../socket/net.js';
import type { Stack } from '../stack/stack.js';

export interface SocketLike {
  write(data: Uint8Array): boolean;
  end(): unknown;
  destroy(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  on(event: string, fn: (...args: never[]) => void): unknown;
  once(event: string, fn: (...args: never[]) => void): unknown;
}

export interface ServerLike {
  listen(options: { host: string; port: number; backlog?: number }, cb: () => void): unknown;
  address(): unknown;
  close(cb?: () => void): unknown;
  once(event: string, fn: (...args: never[]) => void): unknown;
}

export interface NetLike {
  /** What it is, for result names: 'node:net (kernel loopback)' or 'synack stack.net'. */
  label: string;
  /** The address servers listen on and clients connect to. */
  host: string;
  createServer(listener: (s: SocketLike) => void): ServerLike;
  connect(options: { host: string; port: number }): SocketLike;
}

export function kernelNet(): NetLike {
  return {
    label: 'node:net (kernel loopback)',
    host: '127.0.0.1',
    createServer: (listener) => nodeNet.createServer({ noDelay: true }, listener) as unknown as ServerLike,
    connect: (o) => nodeNet.connect({ ...o, noDelay: true }) as unknown as SocketLike,
  };
}

/** synack's node:net look-alike on the server stack (`server`) and the client stack (`client`). */
export function synackNet(client: Stack, server: Stack, serverHost: string): NetLike {
  const c = new Net(client);
  const s = new Net(server);
  return {
    label: 'synack stack.net',
    host: serverHost,
    createServer: (listener) => s.createServer({ noDelay: true }, listener) as unknown as ServerLike,
    connect: (o) => c.connect({ ...o, noDelay: true }) as unknown as SocketLike,
  };
}

/** Starts a server listening on `host`, a port chosen by the stack; resolves with the port. */
export async function listenOn(net: NetLike, server: ServerLike, backlog: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject as (...a: never[]) => void);
    server.listen({ host: net.host, port: 0, backlog }, () => resolve());
  });
  const addr = server.address() as { port?: number } | null;
  if (addr === null || typeof addr.port !== 'number') throw new Error(`${net.label}: server has no port`);
  return addr.port;
}

export function closeServerLike(server: ServerLike): Promise<void> {
  return new Promise((resolve) => void server.close(() => resolve()));
}
