/**
 * DiagramRecorder keeps its own copies of packets, never the packet objects: an outgoing packet is a
 * view into a shared 1 MiB slab (src/wire/packet.ts), so keeping it keeps the whole slab alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DiagramRecorder } from '../../src/diagram/model.js';
import { VirtualClock } from '../../src/link/clock.js';
import { MemoryLink } from '../../src/link/memory.js';
import { Stack } from '../../src/stack/stack.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('DiagramRecorder: recording a transfer (with link drops) does not keep the packet slabs alive', async () => {
  const clock = new VirtualClock();
  const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500, lossRate: 0.01, seed: 7 });
  const a = new Stack({ link: ea, addresses: ['10.0.0.1/24'], clock, seed: 1 });
  const b = new Stack({ link: eb, addresses: ['10.0.0.2/24'], clock, seed: 2 });
  const rec = new DiagramRecorder({ t0: clock.now() });
  rec.attach(a, 'client').attach(b, 'server', { initialState: 'LISTEN' });
  rec.observeLink(ea).observeLink(eb);
  // Every slab an outgoing packet was carved from, weakly.
  const slabs = new Map<ArrayBufferLike, WeakRef<ArrayBufferLike>>();
  for (const s of [a, b]) {
    s.on('trace', (e) => {
      if (e.type === 'segment' && e.dir === 'out' && !slabs.has(e.packet.buffer)) slabs.set(e.packet.buffer, new WeakRef(e.packet.buffer));
    });
  }
  const bytes = 6_000_000;
  let got = 0;
  b.tcpListen({ port: 9 }).onConnection = (s) => {
    s.events = { onReadable() { for (let d = s.read(); d !== null; d = s.read()) got += d.length; } };
  };
  const c = a.tcpConnect({ host: '10.0.0.2', port: 9 });
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  const pump = (): void => {
    while (sent < bytes) {
      const n = c.write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
      if (n === 0) return;
      sent += n;
    }
    c.close();
  };
  c.events = { onEstablished: pump, onWritable: pump };
  clock.runUntilIdleSync({ maxMs: 600_000 });
  assert.equal(got, bytes);
  const model = rec.build(false);
  assert.ok(model.segments.some((s) => s.dropped), 'the recorder saw link drops (else identity matching is not exercised)');
  const weak = [...slabs.values()];
  slabs.clear();
  assert.ok(weak.length >= 4, `${weak.length} slabs used`);
  for (let i = 0; i < 3; i++) {
    await turn();
    gc();
  }
  const alive = weak.filter((w) => w.deref() !== undefined).length;
  // The slab packets are still carved from, and the checksum's cached word view of the last two
  // buffers (src/wire/checksum.ts), may stay; the rest must go although `rec` is alive.
  assert.ok(alive <= 2, `${alive} of ${weak.length} slabs still alive while the recorder is`);
  assert.ok(rec.build(false).segments.length > 0);
});
