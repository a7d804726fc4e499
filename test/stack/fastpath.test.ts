/**
 * The fast path (docs/performance.md): checksum offload on memory links, burst-batched input,
 * hashed 4-tuple demux, slab-carved packets. Each test checks behaviour a user can see: bytes
 * arrive intact, the ACK count, which connection gets which segment, what a captured packet holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealClock, VirtualClock } from '../../src/link/clock.js';
import { MemoryLink, type MemoryLinkEnd } from '../../src/link/memory.js';
import type { LinkEnd } from '../../src/link/link.js';
import { impair } from '../../src/link/impair.js';
import { Stack, tupleHash } from '../../src/stack/stack.js';
import { TimerEntry, TimerWheel } from '../../src/stack/timerWheel.js';
import type { TcpConnection } from '../../src/tcp/user.js';
import { sum16, pseudoHeaderSum } from '../../src/wire/checksum.js';
import { parseIpPacket, PROTO_TCP } from '../../src/wire/ip.js';
import { ACK, parseTcp } from '../../src/wire/tcp.js';

/** A link end without onBurstEnd/checksumOffload: the stack sees packets one at a time. */
function unbatched(end: MemoryLinkEnd): LinkEnd {
  return { mtu: end.mtu, send: (p) => end.send(p), onPacket: (fn) => end.onPacket(fn) };
}

interface Run {
  received: Uint8Array;
  /** Pure ACKs (no data, no SYN/FIN) the receiving stack sent. */
  pureAcks: number;
  dataSegments: number;
  /** Packets sent by the receiver, as transmitted (copies) and as retained views. */
  sentByB: Array<{ copy: Uint8Array; view: Uint8Array }>;
  /** Virtual time at which the last byte reached the receiving application. */
  doneAt: number;
  /** The most new data one of the receiver's pure ACKs acknowledged. */
  maxAckStep: number;
}

function transfer(bytes: number, opts: { offload?: boolean; batched?: boolean; delayMs?: number } = {}): Run {
  const clock = new VirtualClock();
  const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500, checksumOffload: opts.offload === true, delayMs: opts.delayMs ?? 0 });
  const a = new Stack({ link: opts.batched === false ? unbatched(ea) : ea, addresses: ['10.0.0.1/24'], clock, seed: 1 });
  const b = new Stack({ link: opts.batched === false ? unbatched(eb) : eb, addresses: ['10.0.0.2/24'], clock, seed: 2 });
  const run: Run = { received: new Uint8Array(0), pureAcks: 0, dataSegments: 0, sentByB: [], doneAt: -1, maxAckStep: 0 };
  let lastAck = -1;
  eb.onTransmit((p) => {
    run.sentByB.push({ copy: p.slice(), view: p });
    const ip = parseIpPacket(p);
    assert.ok(typeof ip !== 'string');
    const seg = parseTcp(p.subarray(ip.payloadOffset), 0, false);
    assert.ok(typeof seg !== 'string');
    if (seg.flags === ACK && seg.payload.length === 0) {
      run.pureAcks++;
      if (lastAck >= 0) run.maxAckStep = Math.max(run.maxAckStep, (seg.ack - lastAck) >>> 0);
    }
    if (seg.flags & ACK) lastAck = seg.ack;
  });
  ea.onTransmit((p) => {
    const ip = parseIpPacket(p);
    assert.ok(typeof ip !== 'string');
    const seg = parseTcp(p.subarray(ip.payloadOffset), 0, false);
    assert.ok(typeof seg !== 'string');
    if (seg.payload.length > 0) run.dataSegments++;
  });
  const chunks: Uint8Array[] = [];
  const l = b.tcpListen({ port: 9 });
  l.onConnection = (s: TcpConnection) => {
    s.events = {
      onReadable() {
        for (let d = s.read(); d !== null; d = s.read()) chunks.push(d);
        if (chunks.reduce((n, x) => n + x.length, 0) >= bytes && run.doneAt < 0) run.doneAt = clock.now();
      },
    };
  };
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + (i >>> 11)) & 0xff;
  const c = a.tcpConnect({ host: '10.0.0.2', port: 9 });
  let sent = 0;
  const pump = (): void => {
    while (sent < bytes) {
      const n = c.write(data.subarray(sent));
      if (n === 0) return;
      sent += n;
    }
  };
  c.events = { onEstablished: pump, onWritable: pump };
  clock.runUntilIdleSync({ maxMs: 60_000 });
  const total = chunks.reduce((n, x) => n + x.length, 0);
  run.received = new Uint8Array(total);
  let at = 0;
  for (const x of chunks) {
    run.received.set(x, at);
    at += x.length;
  }
  assert.deepEqual(run.received, data, 'every byte arrives, in order');
  return run;
}

test('checksumOffload: refused together with corruption, which must be detected', () => {
  assert.throws(() => MemoryLink.pair({ checksumOffload: true, corruptRate: 0.01 }), /checksumOffload.*corruptRate/);
  assert.doesNotThrow(() => MemoryLink.pair({ checksumOffload: true, lossRate: 0.01 }));
});

test('checksumOffload: the stacks leave the TCP checksum 0 and still deliver every byte; without it every checksum verifies', () => {
  const off = transfer(200_000, { offload: true });
  const on = transfer(200_000, { offload: false });
  for (const [run, offload] of [[off, true], [on, false]] as const) {
    assert.ok(run.sentByB.length > 0);
    for (const { copy } of run.sentByB) {
      const ip = parseIpPacket(copy);
      assert.ok(typeof ip !== 'string' && ip.protocol === PROTO_TCP);
      const body = copy.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength);
      if (offload) {
        assert.equal((body[16]! << 8) | body[17]!, 0, 'checksum field left 0');
      } else {
        assert.equal(sum16(body, 0, body.length, pseudoHeaderSum(ip.src, ip.dst, PROTO_TCP, body.length)), 0xffff);
      }
    }
  }
});

test('burst batching: one ACK per burst of in-order data instead of one per two segments (RFC 5681 §4.2 as a floor)', () => {
  const batched = transfer(2_000_000, { batched: true });
  const single = transfer(2_000_000, { batched: false });
  // One at a time, the receiver ACKs at least every second full-sized segment.
  assert.ok(single.pureAcks >= single.dataSegments / 2 - 2, `unbatched: ${single.pureAcks} ACKs for ${single.dataSegments} segments`);
  // In bursts, one ACK per burst: far fewer.
  assert.ok(batched.pureAcks < single.pureAcks / 2, `batched: ${batched.pureAcks} ACKs vs ${single.pureAcks} unbatched`);
  assert.ok(batched.pureAcks > 0);
});

test('burst batching over a link with delay: slow start still doubles each RTT (one ACK per ≤ 64 KiB, every acked byte counted)', () => {
  // With 25 ms one-way delay and no rate limit, a whole flight arrives as one burst. One ACK per
  // burst plus RFC 3465's L = 2·SMSS cap made slow start grow ~2 SMSS per RTT: 3,575 ms for 8 MB
  // against 615 ms unbatched. GRO-like coalescing (≤ 64 KiB per ACK) and Linux's slow start fix it.
  const batched = transfer(8_000_000, { batched: true, delayMs: 25 });
  const single = transfer(8_000_000, { batched: false, delayMs: 25 });
  assert.ok(batched.doneAt > 0 && single.doneAt > 0);
  assert.ok(batched.doneAt <= single.doneAt * 1.2,
    `batched: ${batched.doneAt.toFixed(0)} ms, unbatched: ${single.doneAt.toFixed(0)} ms`);
  assert.ok(batched.maxAckStep <= 65536 + 1460, `one ACK acknowledged ${batched.maxAckStep} bytes (GRO's bound is 64 KiB)`);
  assert.ok(batched.pureAcks < single.pureAcks / 2, `batched: ${batched.pureAcks} ACKs vs ${single.pureAcks} unbatched`);
});

test('packets are carved from shared slabs, yet a packet the link kept is never overwritten by later ones', () => {
  const run = transfer(300_000);
  const buffers = new Set(run.sentByB.map((p) => p.view.buffer));
  assert.ok(buffers.size < run.sentByB.length, 'packets share buffers');
  for (const { copy, view } of run.sentByB) assert.deepEqual(view, copy);
});

test('demux by hashed 4-tuple: 3000 connections each get their own bytes back; connections() lists them all, in creation order', () => {
  const clock = new VirtualClock();
  const [ea, eb] = MemoryLink.pair({ clock });
  const a = new Stack({ link: ea, addresses: ['10.0.0.1/24'], clock, seed: 3 });
  const b = new Stack({ link: eb, addresses: ['10.0.0.2/24'], clock, seed: 4 });
  for (const port of [7, 8]) {
    b.tcpListen({ port }).onConnection = (s) => {
      s.events = {
        onReadable() {
          const d = s.read();
          if (d) s.write(d);
        },
      };
    };
  }
  const n = 3000;
  const got = new Map<number, number>();
  const conns: TcpConnection[] = [];
  for (let i = 0; i < n; i++) {
    const c = a.tcpConnect({ host: '10.0.0.2', port: 7 + (i & 1) });
    conns.push(c);
    c.events = {
      onEstablished: () => c.write(new Uint8Array([i & 0xff, i >>> 8])),
      onReadable: () => {
        const d = c.read();
        if (d) got.set(i, d[0]! | (d[1]! << 8));
      },
    };
  }
  clock.runUntilIdleSync({ maxMs: 60_000 });
  assert.equal(got.size, n);
  for (const [i, v] of got) assert.equal(v, i);
  assert.deepEqual(a.connections(), conns);
  assert.equal(b.connections().length, n);
});

test('timer wheel: the cached earliest deadline stays exact through arms, moves and cancels of timers sharing a deadline', () => {
  const wheel = new TimerWheel<number>(1);
  const entries = Array.from({ length: 300 }, (_, i) => new TimerEntry(i));
  let x = 0x9e3779b9;
  const rand = (n: number): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  let now = 0;
  let checkedArmed = 0;
  for (let op = 0; op < 20_000; op++) {
    const e = entries[rand(entries.length)]!;
    const r = rand(10);
    // Few distinct deadlines, so many timers share one (the case the tie count is for).
    if (r < 5) wheel.arm(e, now + 10 + rand(4) * 5);
    else if (r < 9) wheel.cancel(e);
    else {
      now += rand(8);
      wheel.expire(now, (i) => {
        assert.ok(entries[i]!.deadline === Infinity);
      });
    }
    let min = Infinity;
    for (const t of entries) if (t.armed && t.deadline < min) min = t.deadline;
    const next = wheel.nextDeadline();
    assert.equal(next, min, `op ${op}`);
    if (next !== Infinity) checkedArmed++;
  }
  assert.ok(checkedArmed > 1000, "most checks had timers armed");
});

test('RealClock: a host timer fires on time while two stacks stream to each other in memory (a turn of deferred work is bounded in time)', async () => {
  const clock = new RealClock();
  const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500 });
  const a = new Stack({ link: ea, addresses: ['10.0.0.1/24'], clock, seed: 5 });
  const b = new Stack({ link: eb, addresses: ['10.0.0.2/24'], clock, seed: 6 });
  const total = 48 * 1024 * 1024;
  let received = 0;
  let doneAt = 0;
  const finished = new Promise<void>((resolve) => {
    b.tcpListen({ port: 9 }).onConnection = (s) => {
      s.events = {
        onReadable() {
          for (let d = s.read(); d !== null; d = s.read()) received += d.length;
          if (received >= total && doneAt === 0) {
            doneAt = performance.now();
            resolve();
          }
        },
      };
    };
  });
  const chunk = new Uint8Array(64 * 1024);
  const c = a.tcpConnect({ host: '10.0.0.2', port: 9 });
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = c.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
      if (n === 0) return;
      sent += n;
    }
  };
  // A host timer armed as the transfer starts, due 5 ms later, while the stacks are busy.
  let due = 0;
  const timerLate = new Promise<number>((resolve) => {
    c.events = {
      onEstablished: () => {
        due = performance.now() + 5;
        setTimeout(() => resolve(performance.now() - due), 5);
        pump();
      },
      onWritable: pump,
    };
  });
  const bailout = setTimeout(() => assert.fail('transfer did not finish in 60 s'), 60_000);
  await finished;
  clearTimeout(bailout);
  const late = await timerLate;
  assert.ok(doneAt > due + 20, 'the transfer was still running when the timer was due (else this test shows nothing)');
  assert.ok(late < 100, `the timer fired ${late.toFixed(1)} ms late during the transfer`);
});

test('timer wheel: entries beyond one revolution (TIME-WAIT, keepalive) fire on time, and nextDeadline is exact once they are gone or moved', () => {
  const wheel = new TimerWheel<string>(1, 64);
  const far = new TimerEntry('far');
  const near = new TimerEntry('near');
  wheel.arm(far, 10_000);
  wheel.arm(near, 5);
  assert.equal(wheel.nextDeadline(), 5);
  // The far timer comes near (a keepalive re-armed soon): no stale bound may remain.
  wheel.arm(far, 20);
  wheel.expire(6, () => {});
  assert.equal(wheel.nextDeadline(), 20);
  wheel.cancel(far);
  assert.equal(wheel.nextDeadline(), Infinity);
  // Again, then time passes the far timer's old deadline with only near timers armed (a delayed
  // ACK re-armed every few ms): the old deadline must not come back as a due wakeup (a livelock).
  wheel.arm(far, 10_000);
  wheel.arm(far, 30);
  const ack = new TimerEntry('ack');
  for (let now = 30; now <= 12_000; now += 20) {
    wheel.arm(ack, now + 30); // near: within the 64-tick revolution of the cursor
    wheel.expire(now, () => {});
    assert.ok(wheel.nextDeadline() > now, `at ${now}: nextDeadline ${wheel.nextDeadline()} is already due`);
  }
  wheel.cancel(ack);
  // Many far timers, due at scattered times, fire each at its own time and in order.
  const fired: number[] = [];
  const entries = Array.from({ length: 500 }, (_, i) => new TimerEntry(String(i)));
  const t0 = 12_000;
  entries.forEach((e, i) => wheel.arm(e, t0 + 100 + ((i * 7919) % 50_000)));
  for (let now = t0 + 37; now <= t0 + 60_000; now += 37) {
    wheel.expire(now, (o) => {
      const d = t0 + 100 + ((Number(o) * 7919) % 50_000);
      assert.ok(d <= now && d > now - 37, `timer due at ${d} fired at ${now}`);
      fired.push(d);
    });
    const next = wheel.nextDeadline();
    if (wheel.size > 0) assert.ok(next > now, 'nothing due is left waiting');
  }
  assert.equal(fired.length, 500);
  for (let i = 1; i < fired.length; i++) assert.ok(fired[i - 1]! <= fired[i]!);
});

test('demux hash: no seed-independent collisions from paired bit flips in neighbouring address words (IPv6)', () => {
  const seeds = [0x1234567, 0x9abcdef0, 42];
  const rng = (() => {
    let x = 99;
    return (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  })();
  const local = new Uint8Array(16).map(() => rng() & 0xff);
  const base = new Uint8Array(16).map(() => rng() & 0xff);
  const setWord = (b: Uint8Array, k: number, xor: number): void => {
    for (let j = 0; j < 4; j++) b[k * 4 + j]! ^= (xor >>> (24 - 8 * j)) & 0xff;
  };
  // Differences a multiply-xorshift chain can pass with certainty: one bit in word k, then in word
  // k+1 one bit, or two bits a shift apart (the review's family: bit 31, then bits 31 and 16).
  const nextDiffs: number[] = [];
  for (let j = 0; j < 32; j++) {
    nextDiffs.push((1 << j) >>> 0);
    for (const s of [13, 15, 16, 17]) if (j >= s) nextDiffs.push(((1 << j) | (1 << (j - s))) >>> 0);
  }
  const hashes = seeds.map((seed) => tupleHash(seed, local, 80, base, 40000));
  let always = 0;
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < 32; i++) {
      for (const d of nextDiffs) {
        const other = base.slice();
        setWord(other, k, (1 << i) >>> 0);
        setWord(other, k + 1, d);
        if (seeds.every((seed, n) => tupleHash(seed, local, 80, other, 40000) === hashes[n])) always++;
      }
    }
  }
  assert.equal(always, 0, `${always} address pairs collide for every seed`);
  // The review's concrete family: 8 peers differing by such moves, one local port.
  const peers: Uint8Array[] = [];
  for (let m = 0; m < 8; m++) {
    const p = base.slice();
    for (let k = 0; k < 3; k++) if (m & (1 << k)) { setWord(p, k, 0x80000000); setWord(p, k + 1, 0x80010000); }
    peers.push(p);
  }
  for (const seed of seeds) {
    const buckets = new Set(peers.map((p) => tupleHash(seed, local, 80, p, 40000)));
    assert.ok(buckets.size >= 7, `seed ${seed}: 8 peers in ${buckets.size} buckets`);
  }
});

test('burst batching: a handshake completed in mid-burst counts in the accept queue at once (backlog holds within the burst)', () => {
  // A's first data (carrying the handshake's final ACK) and B's SYN reach the server in one burst.
  // The queue bookkeeping must not wait for the burst's end with A's user events: with a backlog of
  // 1 and nobody accepting, B's SYN is refused, as it is one packet at a time.
  for (const batched of [true, false]) {
    const clock = new VirtualClock();
    const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500 });
    const a = new Stack({ link: batched ? ea : unbatched(ea), addresses: ['10.0.0.1/24'], clock, seed: 1 });
    const b = new Stack({ link: batched ? eb : unbatched(eb), addresses: ['10.0.0.2/24'], clock, seed: 2, synCookies: false });
    const l = b.tcpListen({ port: 9, backlog: 1 });
    let connB: TcpConnection | undefined;
    const connA = a.tcpConnect({ host: '10.0.0.2', port: 9 });
    connA.events = {
      onEstablished: () => {
        connA.write(new Uint8Array([1, 2, 3]));
        connB = a.tcpConnect({ host: '10.0.0.2', port: 9 });
      },
    };
    clock.advanceSync(200);
    const queue = (l as unknown as { acceptQueue: unknown[] }).acceptQueue;
    assert.equal(queue.length, 1, `${batched ? 'batched' : 'unbatched'}: accept queue ${queue.length} with backlog 1`);
    assert.equal(connB?.state, 'SYN-SENT', `${batched ? 'batched' : 'unbatched'}: B is ${connB?.state}`);
    assert.ok((b.counters.listenOverflows ?? 0) >= 1);
  }
});

test('burst batching: a link that offers onBurstEnd but never calls it still gets its ACKs and events at once (deferred backstop)', () => {
  // LinkEnd's contract says every delivery is followed by the burst-end call; a link that breaks it
  // used to leave the stack "in a burst" and the deferred connections silent until some later burst
  // or timer (the delayed ACK's). With the backstop a 1-byte echo takes no longer than on a link
  // that keeps the contract: no delay on the wire, so 0 ms of virtual time.
  for (const keeps of [true, false]) {
    const clock = new VirtualClock();
    const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500 });
    const forgetful = (end: MemoryLinkEnd): LinkEnd => ({
      mtu: end.mtu,
      send: (p) => end.send(p),
      onPacket: (fn) => end.onPacket(fn),
      onBurstEnd: (fn) => { if (keeps) end.onBurstEnd(fn); },
    });
    const a = new Stack({ link: forgetful(ea), addresses: ['10.0.0.1/24'], clock, seed: 1 });
    const b = new Stack({ link: forgetful(eb), addresses: ['10.0.0.2/24'], clock, seed: 2 });
    let serverEstablishedAt = -1;
    b.tcpListen({ port: 7 }).onConnection = (s) => {
      serverEstablishedAt = clock.now();
      s.events = { onReadable() { for (let d = s.read(); d !== null; d = s.read()) s.write(d); } };
    };
    const rounds: number[] = [];
    let sentAt = 0;
    const c = a.tcpConnect({ host: '10.0.0.2', port: 7 });
    const ping = (): void => {
      sentAt = clock.now();
      c.write(new Uint8Array([rounds.length]));
    };
    c.events = {
      onEstablished: ping,
      onReadable() {
        for (let d = c.read(); d !== null; d = c.read()) rounds.push(clock.now() - sentAt);
        if (rounds.length < 5) ping();
      },
    };
    clock.advanceSync(2_000);
    const what = keeps ? 'link keeps the contract' : 'link never signals burst ends';
    assert.equal(serverEstablishedAt, 0, `${what}: the server's connection was handed over at ${serverEstablishedAt} ms`);
    assert.deepEqual(rounds, [0, 0, 0, 0, 0], `${what}: echo round trips (ms)`);
  }
});

test('checksumOffload survives impair(); a one-sided offload fails with its own drop reason and a note, not as corruption', () => {
  const [oa] = MemoryLink.pair({ checksumOffload: true, clock: new VirtualClock() });
  assert.equal(impair(oa, { clock: new VirtualClock() }).checksumOffload, true, 'impair() forwards the inner link\'s offload');
  assert.throws(() => impair(oa, { corruptRate: 0.01 }), /corruptRate.*checksumOffload/);
  const [pa] = MemoryLink.pair({ clock: new VirtualClock() });
  assert.equal(impair(pa, { corruptRate: 0.01 }).checksumOffload, false);

  // A transfer over an offload pair with one end behind impair(): every byte arrives.
  const run = (wrap: (e: MemoryLinkEnd, clock: VirtualClock) => LinkEnd): { got: number; drops: Record<string, number>; notes: string[] } => {
    const clock = new VirtualClock();
    const [ea, eb] = MemoryLink.pair({ clock, mtu: 1500, checksumOffload: true });
    const a = new Stack({ link: wrap(ea, clock), addresses: ['10.0.0.1/24'], clock, seed: 1 });
    const b = new Stack({ link: eb, addresses: ['10.0.0.2/24'], clock, seed: 2 });
    const notes: string[] = [];
    a.on('trace', (e) => { if (e.type === 'note') notes.push(e.what); });
    let got = 0;
    a.tcpListen({ port: 9 }).onConnection = (s) => {
      s.events = { onReadable() { for (let d = s.read(); d !== null; d = s.read()) got += d.length; } };
    };
    const c = b.tcpConnect({ host: '10.0.0.1', port: 9 });
    c.events = { onEstablished: () => { c.write(new Uint8Array(50_000)); } };
    clock.advanceSync(5_000);
    return { got, drops: { ...a.counters.drops } as Record<string, number>, notes };
  };
  const impaired = run((e, clock) => impair(e, { clock, delayMs: 1 }));
  assert.equal(impaired.got, 50_000);
  assert.deepEqual(impaired.drops, {});
  // A hand-made wrapper that forgets checksumOffload: the stack behind it verifies checksums its
  // peer leaves 0. Every segment is lost — but it says why.
  const oneSided = run((e) => ({ mtu: e.mtu, send: (p) => e.send(p), onPacket: (fn) => e.onPacket(fn) }));
  assert.equal(oneSided.got, 0);
  assert.ok((oneSided.drops['tcp-checksum-zero'] ?? 0) > 0, JSON.stringify(oneSided.drops));
  assert.equal(oneSided.drops['tcp-bad-checksum'], undefined);
  assert.equal(oneSided.notes.filter((n) => n.includes('checksumOffload')).length, 1, 'one note per stack');
});
