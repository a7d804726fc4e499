/**
 * A `synack gateway` process for the kernel tests (test/cli/gateway-*.test.ts): started in one
 * namespace with its TAP device's kernel side in another, read through its --json events. Importing
 * this does nothing (node --test runs every .js under test/).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Netns, NsProcess } from './netns.js';
import { repoRoot } from './repo.js';

/** The compiled CLI. */
export const MAIN = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** One line of `--json` output. */
export type GatewayEvent = { event: string; [k: string]: unknown };

/** The `up` event: the gateway's MAC, its upstream, its bound host forwards … */
export interface UpEvent extends GatewayEvent {
  mac?: string;
  upstream?: string;
  forwards?: { protocol: string; host: string; port: number; guest: string }[];
}

/** A `synack gateway --json` process, with its JSON events and when each was first seen. */
export class GatewayProcess {
  up!: UpEvent;
  readonly #seenAt = new Map<number, number>();

  constructor(readonly proc: NsProcess) {}

  static async start(gw: Netns, guest: Netns, tap: string, extra: string[]): Promise<GatewayProcess> {
    const proc = gw.start(process.execPath, [MAIN, 'gateway', '--tap', tap, '--netns', guest.name, '--json', ...extra]);
    const g = new GatewayProcess(proc);
    g.up = JSON.parse(await proc.waitForLine(/"event":"up"/, 15_000)) as UpEvent;
    return g;
  }

  events(): GatewayEvent[] {
    const out: GatewayEvent[] = [];
    const lines = this.proc.lines;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (!l.startsWith('{')) continue;
      if (!this.#seenAt.has(i)) this.#seenAt.set(i, Date.now());
      try {
        out.push({ ...(JSON.parse(l) as GatewayEvent), seenAt: this.#seenAt.get(i) });
      } catch {
        // A line cut at exit: not an event.
      }
    }
    return out;
  }

  /** Waits (bounded, 10 ms polls) for an event matching `pred`; `seenAt` is when it was first seen. */
  async waitEvent(pred: (e: GatewayEvent) => boolean, ms: number, what: string): Promise<GatewayEvent & { seenAt: number }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.events().find(pred);
      if (e !== undefined) return e as GatewayEvent & { seenAt: number };
      if (Date.now() > deadline) {
        const tail = this.events().slice(-30);
        throw new Error(`no ${what} event within ${ms} ms; last events: ${JSON.stringify(tail)}`);
      }
      if (this.proc.exitStatus !== undefined) throw new Error(`gateway exited: ${this.proc.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** SIGUSR1: the stats event it prints (with --json), waited for (bounded). */
  async stats(): Promise<GatewayEvent & { heapUsed: number }> {
    const before = this.events().filter((e) => e.event === 'stats').length;
    this.proc.kill('SIGUSR1');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const all = this.events().filter((e) => e.event === 'stats');
      if (all.length > before) return all[all.length - 1] as GatewayEvent & { heapUsed: number };
      if (Date.now() > deadline) throw new Error(`no stats event within 10 s of SIGUSR1; stderr: ${this.proc.stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(): Promise<string> {
    this.proc.kill('SIGINT');
    const exit = await this.proc.waitExit(10_000);
    if (exit === undefined) this.proc.kill('SIGKILL');
    assert.deepEqual(exit, { code: 0, signal: null }, `gateway did not stop cleanly: ${this.proc.stderr}`);
    return this.proc.stderr;
  }
}

