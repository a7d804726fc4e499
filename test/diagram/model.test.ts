import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiagramRecorder } from '../../src/diagram/model.js';
import { CLIENT, CLIENT_ISN, SERVER, SERVER_ISN, Script, handshakeScript } from './synthetic.js';

test('relative numbering: the handshake reads SYN 0 / SYN,ACK 0 ack 1 / ACK 1 ack 1', () => {
  const m = handshakeScript().rec.build();
  const [syn, synAck, ack] = m.segments;
  assert.deepEqual(
    [syn, synAck, ack].map((s) => [s!.from, s!.to, s!.flags.join(','), s!.seq, s!.ack]),
    [
      ['client', 'server', 'SYN', 0, 0],
      ['server', 'client', 'SYN,ACK', 0, 1],
      ['client', 'server', 'ACK', 1, 1],
    ],
  );
  // Absolute numbers are kept beside the relative ones.
  assert.equal(syn!.seqAbs, CLIENT_ISN);
  assert.equal(synAck!.seqAbs, SERVER_ISN);
  assert.equal(synAck!.ackAbs, CLIENT_ISN + 1);
});

test('relative numbers count modulo 2^32 across the sequence-space wrap', () => {
  const m = handshakeScript().rec.build();
  // The server's ISN is 4294967000: its FIN at ISN+101 wraps past 2^32 in absolute terms.
  const fin = m.segments.find((s) => s.from === 'server' && s.flags.includes('FIN'))!;
  assert.equal(fin.seq, 101);
  assert.equal(fin.seqAbs, (SERVER_ISN + 101) % 2 ** 32);
  const lastAck = m.segments[m.segments.length - 1]!;
  assert.equal(lastAck.ack, 102);
  assert.equal(lastAck.seq, 20);
});

test('lengths, windows, options, and ack=0 when the ACK bit is off', () => {
  const m = handshakeScript().rec.build();
  assert.deepEqual(m.segments[0]!.options, ['MSS=1460']);
  assert.equal(m.segments[0]!.win, 65535);
  assert.equal(m.segments[0]!.ack, 0);
  const data = m.segments.find((s) => s.len === 100)!;
  assert.equal(data.from, 'server');
  assert.equal(data.seq, 1);
  assert.equal(data.ack, 19);
});

test('states: the first comes from the first event`s from; times in seconds', () => {
  const m = handshakeScript().rec.build();
  const [client, server] = m.endpoints;
  assert.equal(client!.name, 'client');
  assert.equal(client!.address, CLIENT.address);
  assert.equal(client!.port, CLIENT.port);
  assert.equal(server!.address, SERVER.address);
  assert.equal(server!.port, SERVER.port);
  assert.deepEqual(
    client!.states.map((s) => s.state),
    ['CLOSED', 'SYN-SENT', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'TIME-WAIT', 'CLOSED'],
  );
  assert.deepEqual(
    server!.states.map((s) => s.state),
    ['LISTEN', 'SYN-RECEIVED', 'ESTABLISHED', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSED'],
  );
  assert.equal(client!.states[client!.states.length - 1]!.t, 60.11);
  assert.equal(client!.states[1]!.cause, 'active OPEN');
  assert.equal(client!.states[1]!.rfc, 'RFC 9293 §3.10');
  assert.equal(m.inferred, false);
  assert.equal(m.ok, true);
  assert.equal(new DiagramRecorder().build(false).ok, false);
});

test('arrival times come from the receiver`s "in" events', () => {
  const m = handshakeScript().rec.build();
  assert.equal(m.segments[0]!.t, 0);
  assert.equal(m.segments[0]!.tArrive, 0.01);
  assert.equal(m.segments[1]!.tArrive, 0.02);
});

test('a segment the link dropped is marked, whether the drop is reported before or after the out event', () => {
  const s = new Script()
    .state(0, 'client', 'CLOSED', 'SYN-SENT')
    .send(0, 'client', ['SYN'], CLIENT_ISN, 0, { drop: 'after', label: 'syn1' })
    .send(1000, 'client', ['SYN'], CLIENT_ISN, 0, { drop: 'before', label: 'syn2' })
    .send(3000, 'client', ['SYN'], CLIENT_ISN, 0, { label: 'syn3' });
  const m = s.rec.build();
  assert.deepEqual(m.segments.map((x) => x.dropped), [true, true, false]);
  assert.equal(m.segments[0]!.dropReason, 'loss');
  assert.equal(m.segments[0]!.tArrive, undefined);
  assert.equal(m.segments[2]!.tArrive, 3.01);
});

test('a drop reported with a copy of the packet (not the same object) is matched by its bytes', () => {
  const s = new Script()
    .send(0, 'client', ['SYN'], CLIENT_ISN, 0, { arrive: null, label: 'a' })
    .send(5, 'client', ['SYN'], CLIENT_ISN + 7, 0, { arrive: null, label: 'b' });
  s.rec.linkDropped(s.packets.get('a')!.slice(), 'queue');
  const m = s.rec.build();
  assert.deepEqual(m.segments.map((x) => x.dropped), [true, false]);
  assert.equal(m.segments[0]!.dropReason, 'queue');
});

test('an endpoint that never changes state (a refusing host) takes its address from what it sent', () => {
  const rec = new DiagramRecorder().add('client').add('server');
  rec.record('client', {
    type: 'state', t: 0, from: 'CLOSED', to: 'SYN-SENT', cause: 'OPEN', rfc: '',
    conn: { localAddress: CLIENT.address, localPort: CLIENT.port, remoteAddress: SERVER.address, remotePort: 81 },
  });
  const seg = (from: typeof CLIENT, to: { address: string; port: number }, flags: string[], seq: number, ack: number) => ({
    srcAddress: from.address, srcPort: from.port, dstAddress: to.address, dstPort: to.port,
    seq, ack, flags, flagBits: 0, window: 0, len: 0, options: [],
  });
  rec.record('client', { type: 'segment', t: 0, dir: 'out', segment: seg(CLIENT, { ...SERVER, port: 81 }, ['SYN'], 77, 0), packet: new Uint8Array([1]) });
  rec.record('server', { type: 'segment', t: 10, dir: 'out', segment: seg({ ...SERVER, port: 81 }, CLIENT, ['RST', 'ACK'], 0, 78), packet: new Uint8Array([2]) });
  const m = rec.build();
  assert.deepEqual(m.endpoints[1]!.states.map((x) => x.state), ['CLOSED']);
  assert.equal(m.endpoints[1]!.port, 81);
  // No SYN from the server: its seq stays absolute; the ack counts from the client's ISN.
  assert.equal(m.segments[1]!.seq, 0);
  assert.equal(m.segments[1]!.ack, 1);
  assert.equal(m.segments[1]!.to, 'client');
});

test('state changes of another connection on the same stack are not mixed in', () => {
  const s = handshakeScript();
  s.rec.record('server', {
    type: 'state', t: 5, from: 'LISTEN', to: 'SYN-RECEIVED', cause: 'another client', rfc: '',
    conn: { localAddress: SERVER.address, localPort: SERVER.port, remoteAddress: '10.0.0.9', remotePort: 1234 },
  });
  const m = s.rec.build();
  assert.equal(m.endpoints[1]!.states.filter((x) => x.state === 'SYN-RECEIVED').length, 1);
});

test('the model is plain JSON of the contract shape', () => {
  const m = handshakeScript().rec.build();
  const j = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(j).sort(), ['endpoints', 'inferred', 'notes', 'ok', 'segments']);
  const seg = (j['segments'] as Array<Record<string, unknown>>)[0]!;
  for (const k of ['t', 'from', 'to', 'flags', 'seq', 'ack', 'len', 'win', 'options', 'dropped', 'seqAbs', 'ackAbs']) {
    assert.ok(k in seg, k);
  }
});
