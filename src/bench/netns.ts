/**
 * Network namespaces for benchmarks and tests that need real kernel networking (TUN devices, veth
 * pairs): each user gets namespaces of its own, named `synack-<random>`, and everything it configures
 * lives inside them, so nothing outside — the host's interfaces, routes, addresses — is ever touched.
 * Every command and every wait is bounded in time; `withNetns` deletes the namespaces (killing what
 * still runs in them) whatever happened, failure included, and `guardSignals` does the same when the
 * process is interrupted (SIGINT, SIGTERM) while namespaces exist. Node only; needs root and iproute2.
 * (Moved here from test/support/netns.ts, which re-exports it, so that `synack bench` can use it.)
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Namespaces made and not yet deleted: what `destroyAllNetnsSync` removes. */
const live = new Set<Netns>();

export interface NsResult {
  /** Exit code, or null if killed by a signal (e.g. at the timeout). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface NsRunOptions {
  /** Killed (SIGKILL) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
}

export interface NsExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A long-running process inside a namespace, with its output collected line by line. */
export class NsProcess {
  readonly lines: string[] = [];
  #stderr = '';
  #partial = '';
  #exit: NsExit | undefined;
  readonly exited: Promise<NsExit>;
  readonly #child: ChildProcess;
  readonly #waiters = new Set<() => void>();

  constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.#notify();
    });
    child.stderr?.on('data', (chunk: string) => {
      // Bounded: a chatty process cannot grow the test's memory without limit.
      if (this.#stderr.length < 1 << 20) this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        if (this.#partial !== '') this.lines.push(this.#partial);
        this.#partial = '';
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      });
      child.once('error', () => {
        this.#exit ??= { code: null, signal: null };
        this.#notify();
        resolve(this.#exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get exitStatus(): NsExit | undefined {
    return this.#exit;
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** The first stdout line matching `re`, waiting at most `timeoutMs`; rejects on timeout or exit. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = this.lines.find((l) => re.test(l));
        if (line !== undefined) {
          done();
          resolve(line);
          return true;
        }
        if (this.#exit !== undefined) {
          done();
          reject(new Error(`process exited (${JSON.stringify(this.#exit)}) before printing ${re}; stderr: ${this.#stderr.trim()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stdout: ${this.lines.join(' | ')}; stderr: ${this.#stderr.trim()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      const waiter = (): void => {
        check();
      };
      if (!check()) this.#waiters.add(waiter);
    });
  }

  /** Send a signal (default SIGTERM) to the process, if it still runs. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.#exit === undefined) this.#child.kill(signal);
  }

  /** Wait for the exit at most `timeoutMs`; undefined if it is still running then. */
  async waitExit(timeoutMs: number): Promise<NsExit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves when it is gone (bounded). */
  async stop(graceMs = 2000): Promise<NsExit | undefined> {
    if (this.#exit !== undefined) return this.#exit;
    this.kill('SIGTERM');
    const e = await this.waitExit(graceMs);
    if (e !== undefined) return e;
    this.kill('SIGKILL');
    return this.waitExit(5000);
  }
}

/** One network namespace of the test's own, with helpers to run commands inside it. */
export class Netns {
  readonly name: string;
  readonly #processes = new Set<NsProcess>();

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * Create a namespace `synack-<random>` with its loopback up and a resolv.conf of its own
   * (/etc/netns/NAME/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf): by default
   * one that names no server, so nothing run inside can query the machine's real resolver, and a
   * DHCP client or resolver there writes that file, never the machine's. `resolvConf` replaces the
   * contents (e.g. `nameserver 127.0.0.1` for a test's own dnsmasq); `setResolvConf` changes them.
   */
  static create(options: { resolvConf?: string } = {}): Netns {
    const name = `synack-${randomBytes(4).toString('hex')}`;
    const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: 10_000 });
    if (add.status !== 0) throw new Error(`ip netns add ${name} failed: ${(add.stderr ?? '').trim() || String(add.error)}`);
    const ns = new Netns(name);
    live.add(ns);
    try {
      ns.setResolvConf(options.resolvConf ?? '# a synack test namespace: no resolver\n');
    } catch (e) {
      ns.#delete();
      throw e;
    }
    const lo = spawnSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8', timeout: 10_000 });
    if (lo.status !== 0) {
      ns.#delete();
      throw new Error(`cannot bring lo up in ${name}: ${(lo.stderr ?? '').trim()}`);
    }
    return ns;
  }

  /** Run a command inside the namespace to completion (at most `timeoutMs`), without blocking the event loop. */
  run(cmd: string, args: string[], opts: NsRunOptions = {}): Promise<NsResult> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const p = this.spawn(cmd, args, { stdin: opts.input !== undefined });
    if (opts.input !== undefined) p.writeInput(opts.input);
    return (async () => {
      let exit = await p.process.waitExit(timeoutMs);
      const timedOut = exit === undefined;
      if (timedOut) {
        p.process.kill('SIGKILL');
        exit = await p.process.waitExit(5000);
      }
      this.#processes.delete(p.process);
      return {
        status: exit?.code ?? null,
        signal: exit?.signal ?? null,
        stdout: p.process.lines.join('\n'),
        stderr: p.process.stderr,
        timedOut,
      };
    })();
  }

  /** Like `run`, but rejects unless the command exits 0. */
  async check(cmd: string, args: string[], opts: NsRunOptions = {}): Promise<string> {
    const r = await this.run(cmd, args, opts);
    if (r.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} in ${this.name} ${r.timedOut ? 'timed out' : `exited ${r.status ?? r.signal}`}: ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  /** Start a long-running process inside the namespace; `withNetns` kills it at the end if it still runs. */
  start(cmd: string, args: string[]): NsProcess {
    return this.spawn(cmd, args, { stdin: false }).process;
  }

  private spawn(cmd: string, args: string[], o: { stdin: boolean }): { process: NsProcess; writeInput(s: string): void } {
    // `ip netns exec` execs the command (same pid), so signals reach it directly.
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const p = new NsProcess(child);
    this.#processes.add(p);
    return {
      process: p,
      writeInput: (s) => {
        child.stdin?.on('error', () => undefined);
        child.stdin?.end(s);
      },
    };
  }

  /** Kill what this namespace still runs, then delete it. Bounded; never throws. */
  async destroy(): Promise<void> {
    for (const p of this.#processes) p.kill('SIGKILL');
    await Promise.all([...this.#processes].map((p) => p.waitExit(5000)));
    this.#processes.clear();
    // Processes started inside by others (e.g. by a command we ran) are ours too: only this
    // namespace's pids are listed.
    this.#killRemaining();
    this.#delete();
  }

  /** Synchronous and without waiting for exits: for a process that is about to die (a signal). */
  destroySync(): void {
    for (const p of this.#processes) p.kill('SIGKILL');
    this.#processes.clear();
    this.#killRemaining();
    this.#delete();
  }

  #killRemaining(): void {
    const pids = spawnSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8', timeout: 10_000 });
    for (const pid of (pids.stdout ?? '').split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 1)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  /** The namespace's own /etc/resolv.conf (see create). */
  setResolvConf(contents: string): void {
    mkdirSync(this.etcDir, { recursive: true });
    writeFileSync(join(this.etcDir, 'resolv.conf'), contents);
  }

  /** /etc/netns/NAME: files here are mounted over /etc's inside the namespace. */
  get etcDir(): string {
    return join('/etc/netns', this.name);
  }

  #delete(): void {
    live.delete(this);
    spawnSync('ip', ['netns', 'del', this.name], { timeout: 10_000 });
    rmSync(this.etcDir, { recursive: true, force: true });
  }
}

/** Run `fn` with `count` fresh namespaces; they are deleted afterwards, whatever happens. */
export async function withNetns<T>(fn: (...ns: Netns[]) => Promise<T>, count = 1): Promise<T> {
  const made: Netns[] = [];
  try {
    for (let i = 0; i < count; i++) made.push(Netns.create());
    return await fn(...made);
  } finally {
    for (const ns of made) await ns.destroy();
  }
}

/** True if this process can make namespaces (root); the tests that need them skip otherwise. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Whether a command runs here (exit status 0), e.g. `have('ping', ['-V'])`. */
export function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** Names of the namespaces made here and not yet deleted. */
export function liveNetnsNames(): string[] {
  return [...live].map((ns) => ns.name);
}

/** Delete every namespace made here and not yet deleted, at once (killing what runs in them). */
export function destroyAllNetnsSync(): void {
  for (const ns of [...live]) ns.destroySync();
}

/**
 * Run `fn`; if SIGINT or SIGTERM arrives meanwhile, delete the namespaces first, then die of the
 * signal as the process would have (the default action, re-raised). Node runs no `finally` when a
 * signal kills it, so without this an interrupted benchmark would leave its namespaces behind.
 */
export async function guardSignals<T>(fn: () => Promise<T>): Promise<T> {
  const handler = (signal: NodeJS.Signals): void => {
    destroyAllNetnsSync();
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  try {
    return await fn();
  } finally {
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
  }
}
