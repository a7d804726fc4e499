/**
 * The reassembly memory bound (src/net/fragments.ts: 256 KiB per source, 4 MiB in all, each fragment
 * charged its data, the first one's header and 128 bytes of bookkeeping, each datagram 1 KiB,
 * tombstones included) under floods of fragments
 * that never complete: random sources, identifications, offsets, lengths and overlaps, IPv4 and IPv6.
 * The charge (`Reassembler.bytesHeld`) is read after every fragment, not inferred from eviction
 * counts as test/udp/fragments.test.ts does; and the V8 heap the flood leaves behind is compared with
 * the charge, so the bound is one on memory, not only on the reassembler's own arithmetic.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VirtualClock } from '../../src/link/clock.js';
import { Reassembler, REASSEMBLY_PER_SOURCE_BYTES, REASSEMBLY_TOTAL_BYTES } from '../../src/net/fragments.js';
import { StackCore } from '../../src/stack/core.js';

const DST4 = [10, 0, 0, 1];
const DST6 = [0xfd, 0, ...new Array<number>(13).fill(0), 1];

/** An IPv4 fragment (header checksum not set: the reassembler runs after the IP header checks). */
function frag4(src: number, id: number, offset8: number, len: number, more: boolean): Uint8Array {
  const p = new Uint8Array(20 + len);
  p[0] = 0x45;
  p[2] = (20 + len) >>> 8;
  p[3] = (20 + len) & 0xff;
  p[4] = id >>> 8;
  p[5] = id & 0xff;
  const word = (more ? 0x2000 : 0) | offset8;
  p[6] = word >>> 8;
  p[7] = word & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, (src >>> 16) & 0xff, (src >>> 8) & 0xff, src & 0xff], 12);
  p.set(DST4, 16);
  return p;
}

/** An IPv6 packet with a Fragment header (RFC 8200 §4.5) carrying `len` bytes. */
function frag6(src: number, id: number, offset8: number, len: number, more: boolean): Uint8Array {
  const p = new Uint8Array(48 + len);
  p[0] = 0x60;
  p[4] = (8 + len) >>> 8;
  p[5] = (8 + len) & 0xff;
  p[6] = 44;
  p[7] = 64;
  p.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (src >>> 16) & 0xff, (src >>> 8) & 0xff, src & 0xff], 8);
  p.set(DST6, 24);
  p[40] = 17;
  const word = (offset8 << 3) | (more ? 1 : 0);
  p[42] = word >>> 8;
  p[43] = word & 0xff;
  p[44] = id >>> 24;
  p[45] = (id >>> 16) & 0xff;
  p[46] = (id >>> 8) & 0xff;
  p[47] = id & 0xff;
  return p;
}

function reassembler(limits: { perSourceBytes?: number; totalBytes?: number } = {}): { r: Reassembler; core: StackCore; clock: VirtualClock } {
  const clock = new VirtualClock();
  const core = new StackCore(clock, 'flood');
  const r = new Reassembler({ core, timeExceeded: () => undefined }, limits);
  return { r, core, clock };
}

const fragment = fc.record({
  v6: fc.boolean(),
  src: fc.integer({ min: 0, max: 7 }),
  id: fc.integer({ min: 0, max: 40 }),
  offset8: fc.integer({ min: 0, max: 8000 }),
  // Non-last fragments carry a multiple of 8 bytes; some lengths are bad on purpose.
  len: fc.oneof(fc.integer({ min: 1, max: 184 }).map((n) => n * 8), fc.integer({ min: 1, max: 1480 })),
  more: fc.boolean(),
});

test('floods of random fragments never hold more than the per-source and total bounds (charge read after every fragment)', () => {
  const PER_SOURCE = 16 * 1024;
  const TOTAL = 48 * 1024;
  fc.assert(fc.property(fc.array(fragment, { minLength: 1, maxLength: 400 }), (flood) => {
    const { r, core } = reassembler({ perSourceBytes: PER_SOURCE, totalBytes: TOTAL });
    // One source alone is held to the per-source bound.
    const one = reassembler({ perSourceBytes: PER_SOURCE, totalBytes: TOTAL });
    for (const f of flood) {
      const make = f.v6 ? frag6 : frag4;
      if (f.v6) r.inputV6(make(f.src, f.id, f.offset8, f.len, f.more));
      else r.inputV4(make(f.src, f.id, f.offset8, f.len, f.more));
      assert.ok(r.bytesHeld >= 0 && r.bytesHeld <= TOTAL, `${r.bytesHeld} bytes held, bound ${TOTAL}`);
      // (IPv4 only: the IPv6 address of "source 0" is another source, with a bound of its own.)
      one.r.inputV4(frag4(0, f.id, f.offset8, f.len, f.more));
      assert.ok(one.r.bytesHeld >= 0 && one.r.bytesHeld <= PER_SOURCE, `one source: ${one.r.bytesHeld} bytes held, bound ${PER_SOURCE}`);
    }
    assert.equal(core.counters.internalErrors, 0);
  }), { numRuns: 200 });
});

// A full collection before each heap reading (node runs tests without --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** JS heap and ArrayBuffer bytes in use after full collections (backing stores are freed late). */
async function settledMemory(): Promise<number> {
  for (let k = 0; k < 3; k++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Feeds `n` fragments made by `make(i)` at the default bounds; the peak charge and what memory it left. */
async function flood(n: number, make: (i: number) => { v6: boolean; packet: Uint8Array }): Promise<{
  r: Reassembler; core: StackCore; clock: VirtualClock; peak: number; heap: number;
}> {
  const { r, core, clock } = reassembler();
  const heap0 = await settledMemory();
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const f = make(i);
    if (f.v6) r.inputV6(f.packet);
    else r.inputV4(f.packet);
    if (r.bytesHeld > peak) peak = r.bytesHeld;
  }
  return { r, core, clock, peak, heap: (await settledMemory()) - heap0 };
}

const MiB = (n: number): string => (n / 1024 / 1024).toFixed(2);

test('a flood of 100,000 full-size first fragments from 500 sources: 4 MiB charged at most, under 3 × that in memory', async (t: TestContext) => {
  const N = 100_000;
  const { r, core, peak, heap } = await flood(N, (i) => {
    const v6 = i % 2 === 1;
    return { v6, packet: (v6 ? frag6 : frag4)(i % 500, Math.floor(i / 500), 0, v6 ? 1448 : 1480, true) };
  });
  assert.ok(peak <= REASSEMBLY_TOTAL_BYTES, `peak ${peak}`);
  assert.ok(core.counters.reassemblyEvictions > N / 2, String(core.counters.reassemblyEvictions));
  // No more datagrams held than the charge allows (an IPv6 first fragment here is charged at least
  // 1,448 + 40 + 128 bytes, an IPv4 one 1,480 + 20 + 128): 500 sources × 256 KiB would have been 125 MiB.
  assert.ok(r.pending <= Math.floor(REASSEMBLY_TOTAL_BYTES / 1552), `${r.pending} datagrams pending`);
  t.diagnostic(`${N} first fragments of ~1.5 kB (500 sources): peak charge ${MiB(peak)} MiB (bound ${MiB(REASSEMBLY_TOTAL_BYTES)} MiB, `
    + `${REASSEMBLY_PER_SOURCE_BYTES / 1024} KiB per source), ${r.pending} datagrams held, ${core.counters.reassemblyEvictions} evicted; `
    + `JS heap and buffers held: ${MiB(heap)} MiB`);
  assert.ok(heap < 3 * REASSEMBLY_TOTAL_BYTES, `memory grew ${heap} bytes`);
});

// Each datagram costs about 1.1 kB of V8 heap (its object, key string, Map entry, timer and closure,
// pieces array, typed-array views), whatever its data: the charge counts it (1 KiB per datagram, 128
// bytes per fragment), or 8-byte fragments would hold ~13× the bound (they did: ~50 MiB).
test('a flood of tiny first fragments stays within a few times the bound in memory too', async (t: TestContext) => {
  const N = 50_000;
  const { r, peak, heap } = await flood(N, (i) => ({ v6: false, packet: frag4(i % 500, Math.floor(i / 500), 0, 8, true) }));
  t.diagnostic(`${N} first fragments of 8 bytes (500 sources): peak charge ${MiB(peak)} MiB, ${r.pending} datagrams held; JS heap and buffers held: ${MiB(heap)} MiB`);
  assert.ok(peak <= REASSEMBLY_TOTAL_BYTES, `peak ${peak}`);
  assert.ok(heap < 3 * REASSEMBLY_TOTAL_BYTES, `memory grew ${MiB(heap)} MiB for ${MiB(peak)} MiB charged`);
});

// RFC 5722 tombstones (a discarded datagram's key, kept until its 30/60 s timeout so its later
// fragments are dropped) stay charged their record, and are evicted oldest first like the rest.
test('a flood of overlapping fragment pairs, each with a new identification, keeps memory bounded too', async (t: TestContext) => {
  const PAIRS = 70_000;
  // The second of each pair overlaps the first: the datagram becomes a tombstone.
  const { r, clock, heap } = await flood(2 * PAIRS, (i) => ({ v6: false, packet: frag4((i >> 1) % 256, Math.floor((i >> 1) / 256), i & 1, 16, true) }));
  t.diagnostic(`${PAIRS} overlapping pairs: ${r.bytesHeld} bytes charged, ${r.pending} datagrams (tombstones) kept with `
    + `${clock.pending()} timers for 30 s; JS heap and buffers held: ${MiB(heap)} MiB`);
  // Bounded as the charge is: no more kept than 4 MiB allows at 1 KiB each.
  assert.ok(r.pending <= REASSEMBLY_TOTAL_BYTES / 1024, `${r.pending} tombstones kept for up to 30 s`);
  assert.ok(r.bytesHeld <= REASSEMBLY_TOTAL_BYTES, `${r.bytesHeld} bytes charged`);
  assert.ok(heap < 3 * REASSEMBLY_TOTAL_BYTES, `memory grew ${MiB(heap)} MiB`);
});
