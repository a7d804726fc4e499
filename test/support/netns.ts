/**
 * Network namespaces for tests that need real kernel networking (TUN devices, veth pairs): the
 * namespace helpers live in src/bench/netns.ts (`synack bench` uses them too) and are re-exported
 * here, beside what only tests need (assertions). Each test gets namespaces of its own, named
 * `synack-<random>`; every command and every wait is bounded in time; `withNetns` deletes the
 * namespaces (killing what still runs in them) whatever the test did, failure included.
 *
 * Needs root (`ip netns add`) and iproute2.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { have, isRoot } from '../../src/bench/netns.js';
import type { Netns } from '../../src/bench/netns.js';

export { Netns, NsProcess, withNetns, isRoot, have } from '../../src/bench/netns.js';
export type { NsResult, NsRunOptions, NsExit } from '../../src/bench/netns.js';

/**
 * What the TUN tests lack on this machine: root, /dev/net/tun, iproute2, python3 (the kernel-side
 * peer), and the compiled files they start (`needed`). Empty when they can run.
 */
export function tunTestsMissing(needed: string[]): string[] {
  const missing: string[] = [];
  if (!isRoot()) missing.push('root');
  else {
    if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
    if (!have('ip', ['-V'])) missing.push('iproute2');
    if (!have('python3', ['--version'])) missing.push('python3');
  }
  if (!needed.every((f) => existsSync(f))) missing.push('the compiled files (run tsc first)');
  return missing;
}

/** The last line of `stdout` that is a JSON object, parsed (fixtures print their results so). */
export function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  assert.ok(line !== undefined, `no JSON line in: ${stdout}`);
  return JSON.parse(line) as T;
}

/** Runs a python3 snippet inside `ns` (the kernel-side peer); its stdout, or an assertion error. */
export async function python(ns: Netns, script: string, args: string[], timeoutMs: number): Promise<string> {
  const r = await ns.run('python3', ['-c', script, ...args], { timeoutMs });
  assert.equal(r.timedOut, false, `python3 timed out after ${timeoutMs} ms; stderr: ${r.stderr}`);
  assert.equal(r.status, 0, `python3 exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}
