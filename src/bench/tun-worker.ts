/**
 * The synack side of the TUN benchmark (src/bench/tun.ts), run as a child process inside a network
 * namespace the benchmark made (a TUN device belongs to the namespace of the process that creates it):
 *
 *   node dist/src/bench/tun-worker.js --bench-worker --mode sink|send [--mtu N] [--offload] [--gso]
 *                                     [--bytes N] [--name synack0]
 *
 * Both modes open a TunLink with the kernel at 10.9.0.1/24 and a Stack at 10.9.0.2/24.
 * sink: a discard server (RFC 863) on port 9. Prints `ready {json}`; when a connection has sent its
 *   FIN, `done {bytes, link}` (bytes received, the link's counters) and exits 0.
 * send: connects to 10.9.0.1:9, sends --bytes bytes, half-closes and waits for the peer's FIN. Prints
 *   `sent {bytes, seconds, mbps, link}` or `error {code, message}`, and exits 0.
 * A bound on the whole run (--limit-s, default 120) ends it with `error` if the peer never finishes.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Stack } from '../index.node.js';
import type { Socket } from '../index.node.js';
import { TunError, TunLink } from '../link/tun.js';

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'bench-worker': { type: 'boolean' },
      mode: { type: 'string', default: 'sink' },
      name: { type: 'string', default: 'synack0' },
      mtu: { type: 'string', default: '1500' },
      offload: { type: 'boolean', default: false },
      gso: { type: 'boolean', default: false },
      bytes: { type: 'string', default: String(64 << 20) },
      'limit-s': { type: 'string', default: '120' },
    },
  });
  let link: TunLink;
  try {
    link = TunLink.open({ name: values.name, mtu: Number(values.mtu), kernelAddresses: ['10.9.0.1/24'], offload: values.offload, gso: values.gso });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    say('error ' + JSON.stringify({ code: e instanceof TunError ? e.code : 'open-failed', message }));
    process.exit(3);
  }
  const stack = new Stack({ link, addresses: ['10.9.0.2/24'] });
  const linkInfo = (): Record<string, unknown> => ({ ...link.stats, offload: link.offload, gso: link.gso, offloadRefused: link.offloadRefused ?? null });
  const finish = (line: string): void => {
    say(line);
    link.close();
    process.exit(0);
  };
  const limit = setTimeout(() => finish('error ' + JSON.stringify({ code: 'timeout', message: `no end within ${values['limit-s']} s` })), Number(values['limit-s']) * 1000);
  limit.unref();

  if (values.mode === 'sink') {
    const server = stack.net.createServer((s: Socket) => {
      let bytes = 0;
      s.on('data', (chunk: Uint8Array) => {
        bytes += chunk.length;
      });
      s.on('error', (e: Error & { code?: string }) => finish('error ' + JSON.stringify({ code: e.code ?? 'error', message: e.message, bytes })));
      s.on('end', () => {
        // Answer the FIN only once the numbers are out: the sender's clock stops at our FIN.
        say('done ' + JSON.stringify({ bytes, link: linkInfo() }));
        s.end();
        // Let the FIN leave before the device goes away with the process.
        setTimeout(() => finish('closed'), 200);
      });
    });
    server.listen(9);
    say('ready ' + JSON.stringify({ name: link.name, mtu: link.mtu, offload: link.offload, offloadRefused: link.offloadRefused ?? null }));
    return;
  }

  const total = Number(values.bytes);
  const chunk = new Uint8Array(256 * 1024).map((_, i) => i & 0xff);
  let sent = 0;
  const start = performance.now();
  const s = stack.net.connect({ host: '10.9.0.1', port: 9 });
  s.on('error', (e: Error & { code?: string }) => finish('error ' + JSON.stringify({ code: e.code ?? 'error', message: e.message, sent })));
  s.on('data', () => {});
  s.on('end', () => {
    const seconds = (performance.now() - start) / 1000;
    finish('sent ' + JSON.stringify({ bytes: sent, seconds, mbps: (sent * 8) / seconds / 1e6, link: linkInfo() }));
  });
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  s.once('connect', pump);
}

// Only when started as the worker (never when imported, e.g. by a test that lists modules).
if (process.argv.includes('--bench-worker')) main();
