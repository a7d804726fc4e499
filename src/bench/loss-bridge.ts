/**
 * The loss benchmark's bridge (src/bench/loss.ts): joins two TUN devices through synack's impairment
 * model, so that two Linux TCP stacks in two network namespaces talk over exactly the path two synack
 * stacks get on a `MemoryLink` — the same `ImpairedWire` (delay, bottleneck with a drop-tail queue,
 * loss), one per direction with the same seeds. The kernel has no netem qdisc here; this is the
 * substitute, and the same code as the synack figure's.
 *
 *   node dist/src/bench/loss-bridge.js --bench-bridge --a tunA --b tunB --delay MS --bandwidth BPS
 *                                      --loss P --queue N [--seed N] [--mtu 1500]
 *
 * Opens both devices in the namespace it runs in (the benchmark then moves `--b` into the other
 * namespace: the open fd keeps working), prints `ready`, forwards until SIGTERM, then prints
 * `stats {json}` (per direction: sent, delivered, dropped by reason) and exits 0.
 */
import { parseArgs } from 'node:util';
import { RealClock } from '../link/clock.js';
import { ImpairedWire, reverseSeed } from '../link/impair.js';
import type { LinkDropReason } from '../link/impair.js';
import { TunError, TunLink } from '../link/tun.js';

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'bench-bridge': { type: 'boolean' },
      a: { type: 'string', default: 'lossa' },
      b: { type: 'string', default: 'lossb' },
      mtu: { type: 'string', default: '1500' },
      delay: { type: 'string', default: '25' },
      bandwidth: { type: 'string', default: '100e6' },
      loss: { type: 'string', default: '0.01' },
      queue: { type: 'string', default: '417' },
      seed: { type: 'string', default: '1' },
    },
  });
  const mtu = Number(values.mtu);
  let a: TunLink;
  let b: TunLink;
  try {
    a = TunLink.open({ name: values.a, mtu });
    b = TunLink.open({ name: values.b, mtu });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    say('error ' + JSON.stringify({ code: e instanceof TunError ? e.code : 'open-failed', message }));
    process.exit(3);
  }
  const clock = new RealClock();
  const impairments = {
    delayMs: Number(values.delay),
    bandwidthBps: Number(values.bandwidth),
    lossRate: Number(values.loss),
    queuePackets: Number(values.queue),
    mtu,
  };
  const seed = Number(values.seed);
  // As in MemoryLink.pair: a → b on `seed`, b → a on the derived stream.
  const ab = new ImpairedWire(clock, impairments, seed);
  const ba = new ImpairedWire(clock, impairments, reverseSeed(seed));
  const drops = { ab: { loss: 0, mtu: 0, queue: 0 }, ba: { loss: 0, mtu: 0, queue: 0 } };
  ab.dropObservers.push((_, reason: LinkDropReason) => drops.ab[reason]++);
  ba.dropObservers.push((_, reason: LinkDropReason) => drops.ba[reason]++);
  ab.receiver = (p) => b.send(p);
  ba.receiver = (p) => a.send(p);
  a.onPacket((p) => ab.send(p));
  b.onPacket((p) => ba.send(p));

  process.once('SIGTERM', () => {
    say('stats ' + JSON.stringify({
      ab: { ...ab.stats, drops: drops.ab },
      ba: { ...ba.stats, drops: drops.ba },
      tun: { a: a.stats, b: b.stats },
    }));
    a.close();
    b.close();
    process.exit(0);
  });
  say('ready ' + JSON.stringify({ a: a.name, b: b.name }));
}

if (process.argv.includes('--bench-bridge')) main();
