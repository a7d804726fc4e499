import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScript } from '../../src/drill/parse.js';
import {
  DrillParseError,
  type CodeEvent,
  type CommandEvent,
  type DrillEvent,
  type DrillScript,
  type SegmentEvent,
  type SyscallEvent,
  type UnsupportedEvent,
} from '../../src/drill/ast.js';

// ---- helpers -------------------------------------------------------------------------------------

function only(text: string): DrillEvent {
  const s = parseScript(text);
  assert.equal(s.events.length, 1, `one event in ${JSON.stringify(text)}`);
  return s.events[0]!;
}

function segment(text: string): SegmentEvent {
  const ev = only(text);
  assert.equal(ev.kind, 'segment', text);
  return ev as SegmentEvent;
}

function syscall(text: string): SyscallEvent {
  const ev = only(text);
  assert.equal(ev.kind, 'syscall', text);
  return ev as SyscallEvent;
}

function unsupported(text: string): UnsupportedEvent {
  const ev = only(text);
  assert.equal(ev.kind, 'unsupported', text);
  return ev as UnsupportedEvent;
}

/** Parses `text`, which must fail; returns the error after checking its line (and column if given). */
function parseError(text: string, line: number, column?: number, message?: RegExp): DrillParseError {
  let caught: unknown = null;
  try {
    parseScript(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DrillParseError, `expected a DrillParseError for ${JSON.stringify(text)}, got ${String(caught)}`);
  assert.equal(caught.line, line, `line of the error for ${JSON.stringify(text)}: ${caught.message}`);
  if (column !== undefined) assert.equal(caught.column, column, `column of the error for ${JSON.stringify(text)}: ${caught.message}`);
  if (message !== undefined) assert.match(caught.message, message);
  assert.match(caught.message, new RegExp(`^line ${line}:\\d+: `));
  return caught;
}

function kinds(s: DrillScript): string[] {
  return s.events.map((e) => e.kind);
}

// ---- whole scripts, modelled on public ones -------------------------------------------------------

test('passive open with data and close (Linux selftests style)', () => {
  const s = parseScript(`// SPDX-License-Identifier: GPL-2.0
// Test a passive open, a request and a response, then a close by the local side.

--tolerance_usecs=10000

\`./defaults.sh\`

// Initialize a server socket.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0

   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4

// The client sends a request; we read it and write a response.
   +0 < P. 1:1001(1000) ack 1 win 257
   +0 > . 1:1(0) ack 1001
   +0 read(4, ..., 1000) = 1000
   +0 write(4, ..., 2000) = 2000
   +0 > P. 1:2001(2000) ack 1001
 +.01 < . 1001:1001(0) ack 2001 win 257

   +0 close(4) = 0
   +0 > F. 2001:2001(0) ack 1001
 +.01 < F. 1001:1001(0) ack 2002 win 257
   +0 > . 2002:2002(0) ack 1002
`);
  assert.deepEqual(s.options, { tolerance_usecs: '10000' });
  assert.deepEqual(s.warnings, []);
  assert.deepEqual(kinds(s), [
    'command', 'syscall', 'syscall', 'syscall', 'syscall', 'segment', 'segment', 'segment', 'syscall',
    'segment', 'segment', 'syscall', 'syscall', 'segment', 'segment', 'syscall', 'segment', 'segment', 'segment',
  ]);
  assert.deepEqual(s.events.map((e) => e.line), [6, 9, 10, 11, 12, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 27, 28, 29, 30]);
  assert.deepEqual(s.events[0], { kind: 'command', line: 6, time: { kind: 'relative', t: 0 }, text: './defaults.sh' });
  assert.deepEqual(s.events[1], {
    kind: 'syscall', line: 9, time: { kind: 'absolute', t: 0 }, name: 'socket',
    args: [{ t: 'ellipsis' }, { t: 'sym', v: 'SOCK_STREAM' }, { t: 'sym', v: 'IPPROTO_TCP' }],
    result: { t: 'num', v: 3 },
  });
  assert.deepEqual(s.events[5], {
    kind: 'segment', line: 14, time: { kind: 'relative', t: 0 }, direction: '<', flags: 'S',
    start: 0, end: 0, length: 0, win: 32792,
    options: [{ kind: 'mss', value: 1000 }, { kind: 'sackOK' }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'wscale', value: 7 }],
  });
  assert.deepEqual(s.events[7], {
    kind: 'segment', line: 16, time: { kind: 'relative', t: 0.1 }, direction: '<', flags: '.',
    start: 1, end: 1, length: 0, ack: 1, win: 257,
  });
  const data = s.events[13] as SegmentEvent;
  assert.equal(data.flags, 'P.');
  assert.equal(data.direction, '>');
  assert.deepEqual([data.start, data.end, data.length, data.ack, data.win, data.options], [1, 2001, 2000, 1001, undefined, undefined]);
  assert.deepEqual((s.events[15] as SyscallEvent).args, [{ t: 'num', v: 4 }]);
  assert.equal((s.events[16] as SegmentEvent).flags, 'F.');
  assert.deepEqual(s.events[14]!.time, { kind: 'relative', t: 0.01 });
});

test('active open with a non-blocking connect and SO_ERROR (gtests nonblocking style)', () => {
  const s = parseScript(`// Non-blocking connect; the peer answers with RST, SO_ERROR says ECONNREFUSED.
\`../common/defaults.sh\`

    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
   +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
 +.01 < R. 0:0(0) ack 1 win 0
   +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0
   +0 write(3, ..., 1000) = -1 EPIPE (Broken pipe)
   +0 close(3) = 0
`);
  assert.deepEqual(kinds(s), ['command', 'syscall', 'syscall', 'syscall', 'syscall', 'segment', 'segment', 'syscall', 'syscall', 'syscall']);
  const getfl = s.events[2] as SyscallEvent;
  assert.deepEqual(getfl.result, { t: 'num', v: 2 });
  assert.equal(getfl.note, 'flags O_RDWR');
  assert.equal(getfl.errno, undefined);
  assert.deepEqual((s.events[3] as SyscallEvent).args, [
    { t: 'num', v: 3 }, { t: 'sym', v: 'F_SETFL' }, { t: 'or', items: [{ t: 'sym', v: 'O_RDWR' }, { t: 'sym', v: 'O_NONBLOCK' }] },
  ]);
  const connect = s.events[4] as SyscallEvent;
  assert.deepEqual(connect.result, { t: 'num', v: -1 });
  assert.equal(connect.errno, 'EINPROGRESS');
  assert.equal(connect.errnoText, 'Operation now in progress');
  const syn = s.events[5] as SegmentEvent;
  assert.deepEqual(syn.options, [
    { kind: 'mss', value: 1460 }, { kind: 'sackOK' }, { kind: 'TS', val: 100, ecr: 0 }, { kind: 'nop' }, { kind: 'wscale', value: 8 },
  ]);
  const rst = s.events[6] as SegmentEvent;
  assert.equal(rst.flags, 'R.');
  assert.equal(rst.win, 0);
  assert.deepEqual((s.events[7] as SyscallEvent).args.slice(3), [
    { t: 'list', items: [{ t: 'sym', v: 'ECONNREFUSED' }] }, { t: 'list', items: [{ t: 'num', v: 4 }] },
  ]);
  assert.equal((s.events[8] as SyscallEvent).errno, 'EPIPE');
});

test('SACK and timestamps on an established connection', () => {
  const s = parseScript(`    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 200 ecr 0,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 100 ecr 200,nop,wscale 8>
 +.02 < . 1:1(0) ack 1 win 257 <nop,nop,TS val 201 ecr 100>
   +0 accept(3, ..., ...) = 4
   +0 write(4, ..., 4000) = 4000
   +0 > P. 1:4001(4000) ack 1 <nop,nop,TS val 101 ecr 201>
 +.02 < . 1:1(0) ack 1 win 257 <nop,nop,TS val 202 ecr 101,nop,nop,sack 1001:2001 3001:4001>
   +0 > . 1:1001(1000) ack 1 <nop,nop,TS val 102 ecr 202>
`);
  assert.equal(s.events.length, 12);
  const sack = s.events[10] as SegmentEvent;
  assert.deepEqual(sack.options, [
    { kind: 'nop' }, { kind: 'nop' }, { kind: 'TS', val: 202, ecr: 101 }, { kind: 'nop' }, { kind: 'nop' },
    { kind: 'sack', blocks: [[1001, 2001], [3001, 4001]] },
  ]);
  assert.deepEqual(sack.time, { kind: 'relative', t: 0.02 });
  const retx = s.events[11] as SegmentEvent;
  assert.deepEqual([retx.flags, retx.start, retx.end, retx.length, retx.ack], ['.', 1, 1001, 1000, 1]);
});

test('poll on a connected socket', () => {
  const s = parseScript(`0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <...>
+.1 < S. 0:0(0) ack 1 win 5792 <mss 1460,nop,wscale 2>
+0 > . 1:1(0) ack 1
+0 poll([{fd=3, events=POLLOUT, revents=POLLOUT}], 1, 0) = 1
+0 poll([{fd=3, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1
+.1 < P. 1:11(10) ack 1 win 5792
+0 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 1000) = 1
`);
  assert.equal((s.events[3] as SegmentEvent).options, 'any');
  const poll = s.events[7] as SyscallEvent;
  assert.deepEqual(poll.args, [
    {
      t: 'list',
      items: [{
        t: 'struct',
        fields: [
          { name: 'fd', value: { t: 'num', v: 3 } },
          { name: 'events', value: { t: 'or', items: [{ t: 'sym', v: 'POLLIN' }, { t: 'sym', v: 'POLLOUT' }] } },
          { name: 'revents', value: { t: 'sym', v: 'POLLOUT' } },
        ],
      }],
    },
    { t: 'num', v: 1 },
    { t: 'num', v: 0 },
  ]);
  assert.deepEqual(poll.result, { t: 'num', v: 1 });
});

test('blocking accept: +0...0.200 returns 0.2 s after it starts', () => {
  const s = parseScript(`// Test for blocking accept.
\`../common/defaults.sh\`

// Establish a connection.
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0

   +0...0.200 accept(3, ..., ...) = 4

  +.1 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257

  +.1 close(4) = 0
   +0 > F. 1:1(0) ack 1
`);
  const accept = s.events[5] as SyscallEvent;
  assert.equal(accept.name, 'accept');
  assert.equal(accept.line, 10);
  assert.deepEqual(accept.time, { kind: 'relative', t: 0 });
  assert.deepEqual(accept.end, { kind: 'relative', t: 0.2 });
  assert.deepEqual(accept.result, { t: 'num', v: 4 });
  assert.equal(s.events.length, 11);
});

test('FreeBSD tcp-testsuite style: leading option, 0.000 times, eol padding, TCP_INFO', () => {
  const s = parseScript(`--ip_version=ipv4

 0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.000 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.000 bind(3, ..., ...) = 0
+0.000 listen(3, 1) = 0
+0.000 < S  0:0(0) win 65535 <mss 1460,sackOK,eol,eol>
+0.000 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.100 < .  1:1(0) ack 1 win 65535
+0.000 accept(3, ..., ...) = 4
+0.000 getsockopt(4, IPPROTO_TCP, TCP_INFO, {tcpi_state=TCPS_ESTABLISHED, ...}, [224]) = 0
+0.000 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
+0.000 close(4) = 0
+0.000 > R. 1:1(0) ack 1 win 0
`);
  assert.deepEqual(s.options, { ip_version: 'ipv4' });
  assert.deepEqual((s.events[5] as SegmentEvent).options, [{ kind: 'mss', value: 1460 }, { kind: 'sackOK' }, { kind: 'eol' }, { kind: 'eol' }]);
  assert.equal((s.events[5] as SegmentEvent).win, 65535);
  assert.deepEqual((s.events[8] as SyscallEvent).args[3], {
    t: 'struct', fields: [{ name: 'tcpi_state', value: { t: 'sym', v: 'TCPS_ESTABLISHED' } }, { name: null, value: { t: 'ellipsis' } }],
  });
  assert.deepEqual((s.events[9] as SyscallEvent).args[3], {
    t: 'struct', fields: [{ name: 'onoff', value: { t: 'num', v: 1 } }, { name: 'linger', value: { t: 'num', v: 0 } }],
  });
  assert.deepEqual(s.events[0]!.time, { kind: 'absolute', t: 0 });
  assert.deepEqual(s.events[6]!.time, { kind: 'relative', t: 0.1 });
});

// ---- file layout: comments, blank lines, options -----------------------------------------------

test('comments: // to end of line, /* */ anywhere and over several lines', () => {
  const s = parseScript(`/* a header
   over three
   lines */ 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 // trailing
// whole line

+0 /* between time and event */ bind(3, /* inside args */ ..., ...) = 0
+0 < S 0:0(0) /* in a segment */ win 100 <mss 1000 /* in options */, nop>
`);
  assert.deepEqual(kinds(s), ['syscall', 'syscall', 'segment']);
  assert.deepEqual(s.events.map((e) => e.line), [3, 6, 7]);
  assert.deepEqual((s.events[2] as SegmentEvent).options, [{ kind: 'mss', value: 1000 }, { kind: 'nop' }]);
  assert.deepEqual(parseScript('// only a comment\n\n/* and another */\n'), { options: {}, events: [], warnings: [] });
  assert.deepEqual(parseScript(''), { options: {}, events: [], warnings: [] });
});

test('CRLF line ends and a byte-order mark are read like plain text', () => {
  const s = parseScript('\uFEFF--mtu=1500\r\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\r\n+0 < S 0:0(0) win 10\r\n');
  assert.deepEqual(s.options, { mtu: '1500' });
  assert.deepEqual(s.events.map((e) => e.line), [2, 3]);
  assert.equal((s.events[1] as SegmentEvent).win, 10);
});

test('a comment spanning lines separates events like a newline', () => {
  const s = parseScript('0 close(3) = 0 /*\n*/ +0 close(4) = 0\n');
  assert.deepEqual(s.events.map((e) => e.line), [1, 2]);
});

test('options: --name=value and --name, several on a line; unknown ones kept with a warning', () => {
  const s = parseScript(`// leading comment
--tolerance_usecs=10000
--mtu=1500 --ip_version=ipv4-mapped-ipv6
--wire_client_dev=eth0
--verbose
--strange_flag=abc // says nothing
--local_ip="192.168.0.1"
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
`);
  assert.deepEqual(s.options, {
    tolerance_usecs: '10000', mtu: '1500', ip_version: 'ipv4-mapped-ipv6', wire_client_dev: 'eth0', verbose: '',
    strange_flag: 'abc', local_ip: '192.168.0.1',
  });
  assert.deepEqual(s.warnings, [{ line: 6, message: 'unknown option --strange_flag (kept; the runner decides)' }]);
});

test('an option given twice keeps the last value and warns', () => {
  const s = parseScript('--mtu=1500\n--mtu=9000\n');
  assert.equal(s.options['mtu'], '9000');
  assert.equal(s.warnings.length, 1);
  assert.equal(s.warnings[0]!.line, 2);
});

// ---- times -------------------------------------------------------------------------------------

test('times: absolute, relative, any, ranges', () => {
  const cases: Array<[string, unknown]> = [
    ['0', { kind: 'absolute', t: 0 }],
    ['1.250', { kind: 'absolute', t: 1.25 }],
    ['.5', { kind: 'absolute', t: 0.5 }],
    ['+0', { kind: 'relative', t: 0 }],
    ['+0.1', { kind: 'relative', t: 0.1 }],
    ['+.1', { kind: 'relative', t: 0.1 }],
    ['+ 2', { kind: 'relative', t: 2 }],
    ['*', { kind: 'any' }],
    ['1.0~2.0', { kind: 'range', relative: false, from: 1, to: 2 }],
    ['+0~+0.2', { kind: 'range', relative: true, from: 0, to: 0.2 }],
    ['+0.1 ~ +0.1', { kind: 'range', relative: true, from: 0.1, to: 0.1 }],
  ];
  for (const [time, want] of cases) {
    assert.deepEqual(only(`${time} > . 1:1(0) ack 1`).time, want, time);
  }
});

test('blocking times: start...end in each combination', () => {
  const cases: Array<[string, unknown, unknown]> = [
    // Absolute start and end: the end is absolute.
    ['0...0.1', { kind: 'absolute', t: 0 }, { kind: 'absolute', t: 0.1 }],
    ['1.5...2', { kind: 'absolute', t: 1.5 }, { kind: 'absolute', t: 2 }],
    // packetdrill adds the previous event's time to both ends of `+S...E`: E−S after the start.
    ['+0...0.1', { kind: 'relative', t: 0 }, { kind: 'relative', t: 0.1 }],
    ['+.1...0.3', { kind: 'relative', t: 0.1 }, { kind: 'relative', t: 0.2 }],
    ['+0.1...0.1', { kind: 'relative', t: 0.1 }, { kind: 'relative', t: 0 }],
    // A written `+` on the end: that long after the call's start.
    ['0...+0.1', { kind: 'absolute', t: 0 }, { kind: 'relative', t: 0.1 }],
    ['+0...+0.2', { kind: 'relative', t: 0 }, { kind: 'relative', t: 0.2 }],
    ['+0.5...+0.2', { kind: 'relative', t: 0.5 }, { kind: 'relative', t: 0.2 }],
    ['+0 ... 0.1', { kind: 'relative', t: 0 }, { kind: 'relative', t: 0.1 }],
  ];
  for (const [time, start, end] of cases) {
    const ev = syscall(`${time} read(4, ..., 10) = 10`);
    assert.deepEqual(ev.time, start, time);
    assert.deepEqual(ev.end, end, time);
  }
  assert.equal(syscall('+0 read(4, ..., 10) = 10').end, undefined);
});

// ---- segments ----------------------------------------------------------------------------------

test('flags: every letter and the usual combinations; - for none', () => {
  for (const flags of ['S', 'S.', 'F', 'F.', 'R', 'R.', 'P', 'P.', '.', 'U', 'U.', 'E', 'W', 'SEW', 'SE.', 'SF', 'FP.', 'S.E', 'SFRP.UEW']) {
    assert.equal(segment(`+0 < ${flags} 0:0(0) win 100`).flags, flags, flags);
  }
  assert.equal(segment('+0 < - 0:0(0) win 100').flags, '');
});

test('sequence numbers, payload length, and ack/win/urg in any order', () => {
  const a = segment('+0 > P. 1:1001(1000) ack 1');
  assert.deepEqual([a.direction, a.start, a.end, a.length, a.ack, a.win, a.urg, a.options], ['>', 1, 1001, 1000, 1, undefined, undefined, undefined]);
  const b = segment('+0 < P.U 1:11(10) urg 5 win 257 ack 1');
  assert.deepEqual([b.ack, b.win, b.urg], [1, 257, 5]);
  const c = segment('+0 < . 1:1(0) win 0 ack 4294967295');
  assert.deepEqual([c.ack, c.win], [4294967295, 0]);
  const d = segment('0 < S 4294967295:4294967295(0) win 65535');
  assert.equal(d.start, 4294967295);
  const e = segment('0 < . 4294902271:4294967295(65024) ack 1');
  assert.equal(e.length, 65024);
});

test('TCP options: every kind, <...>, and unknown kinds kept as text', () => {
  const seg = segment('+0 < S 0:0(0) win 1 <mss 536,nop,eol,wscale 14,sackOK,sack 1:2 3:4 5:6,TS val 4294967295 ecr 0,FO 1234abcd,FOEXP,md5,exp 0xf989 00>');
  assert.deepEqual(seg.options, [
    { kind: 'mss', value: 536 },
    { kind: 'nop' },
    { kind: 'eol' },
    { kind: 'wscale', value: 14 },
    { kind: 'sackOK' },
    { kind: 'sack', blocks: [[1, 2], [3, 4], [5, 6]] },
    { kind: 'TS', val: 4294967295, ecr: 0 },
    { kind: 'other', text: 'FO 1234abcd' },
    { kind: 'other', text: 'FOEXP' },
    { kind: 'other', text: 'md5' },
    { kind: 'other', text: 'exp 0xf989 00' },
  ]);
  assert.equal(segment('+0 > S 0:0(0) <...>').options, 'any');
  assert.equal(segment('+0 > S 0:0(0) < ... >').options, 'any');
  assert.deepEqual(segment('+0 > S 0:0(0) <>').options, []);
  assert.deepEqual(segment('+0 > S 0:0(0) < mss 1460 , nop >').options, [{ kind: 'mss', value: 1460 }, { kind: 'nop' }]);
});

test('ECN markings before the flags are parsed and ignored with a warning', () => {
  for (const mark of ['ect0', 'ect1', 'ect01', 'ce', 'noecn']) {
    const s = parseScript(`0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > [${mark}] P. 1:1001(1000) ack 1\n`);
    const seg = s.events[1] as SegmentEvent;
    assert.equal(seg.kind, 'segment');
    assert.equal(seg.flags, 'P.');
    assert.equal(seg.length, 1000);
    assert.equal(s.warnings.length, 1, mark);
    assert.equal(s.warnings[0]!.line, 2);
    assert.match(s.warnings[0]!.message, new RegExp(`\\[${mark}\\] ignored`));
  }
});

test('other packet kinds are unsupported events, not errors', () => {
  const udp = unsupported('+0 > udp (1472)');
  assert.equal(udp.text, '> udp (1472)');
  assert.match(udp.reason, /UDP/);
  const icmp = unsupported('+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)] // path MTU');
  assert.equal(icmp.text, '< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]');
  assert.match(icmp.reason, /ICMP/);
  assert.match(unsupported('+0 < [tos 0x4] S 0:0(0) win 100').reason, /IP header fields/);
  assert.match(unsupported('+0 < [ipv6 flowlabel 7] S 0:0(0) win 100').reason, /IP header fields/);
  assert.match(unsupported('+0 < ipv4 192.0.2.2 > 192.168.0.1: < S 0:0(0) win 100').reason, /encapsulated/);
  assert.match(unsupported('+0.0 > sctp: INIT[flgs=0, tag=1, a_rwnd=1500,\n  os=1, is=1, tsn=1]').reason, /SCTP/);
  // The event goes on while a bracket is open, and the next event is read normally after it.
  const s = parseScript('+0.0 > sctp: INIT[flgs=0,\n tag=1]\n+0 close(3) = 0\n+0 > udp (10) /* x */\n');
  assert.deepEqual(kinds(s), ['unsupported', 'syscall', 'unsupported']);
  assert.deepEqual(s.events.map((e) => e.line), [1, 3, 4]);
  assert.equal((s.events[0] as UnsupportedEvent).text, '> sctp: INIT[flgs=0, tag=1]');
  assert.deepEqual(s.events[0]!.time, { kind: 'relative', t: 0 });
  // `*` and windows are for outbound packets, whatever their kind.
  assert.deepEqual(unsupported('* > udp (10)').time, { kind: 'any' });
});

// ---- system calls ------------------------------------------------------------------------------

test('system calls and their arguments', () => {
  assert.deepEqual(syscall('+0 listen(3, 1) = 0').args, [{ t: 'num', v: 3 }, { t: 'num', v: 1 }]);
  assert.deepEqual(syscall('+0 shutdown(4, SHUT_RD|SHUT_WR) = 0').args[1], {
    t: 'or', items: [{ t: 'sym', v: 'SHUT_RD' }, { t: 'sym', v: 'SHUT_WR' }],
  });
  assert.deepEqual(syscall('+0 getpid() = 1').args, []);
  const sendto = syscall('+0 sendto(4, ..., 1000, 0, ..., ...) = 1000');
  assert.deepEqual(sendto.args.map((a) => a.t), ['num', 'ellipsis', 'num', 'num', 'ellipsis', 'ellipsis']);
  const bind = syscall('+0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0');
  assert.deepEqual(bind.args[1], {
    t: 'struct',
    fields: [
      { name: 'sa_family', value: { t: 'sym', v: 'AF_INET' } },
      { name: 'sin_port', value: { t: 'call', name: 'htons', args: [{ t: 'num', v: 8080 }] } },
      { name: 'sin_addr', value: { t: 'call', name: 'inet_addr', args: [{ t: 'str', v: '192.0.2.1' }] } },
    ],
  });
  const info = syscall('+0 getsockopt(4, IPPROTO_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_rto=201000, tcpi_options=TCPI_OPT_SACK|TCPI_OPT_WSCALE}, [232]) = 0');
  assert.deepEqual(info.args[3], {
    t: 'struct',
    fields: [
      { name: 'tcpi_state', value: { t: 'sym', v: 'TCP_ESTABLISHED' } },
      { name: 'tcpi_rto', value: { t: 'num', v: 201000 } },
      { name: 'tcpi_options', value: { t: 'or', items: [{ t: 'sym', v: 'TCPI_OPT_SACK' }, { t: 'sym', v: 'TCPI_OPT_WSCALE' }] } },
    ],
  });
  assert.deepEqual(syscall('+0 f({1, 0}, {}, [], NULL) = 0').args, [
    { t: 'struct', fields: [{ name: null, value: { t: 'num', v: 1 } }, { name: null, value: { t: 'num', v: 0 } }] },
    { t: 'struct', fields: [] },
    { t: 'list', items: [] },
    { t: 'null' },
  ]);
  const msg = syscall('+0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{iov_base=..., iov_len=10}], msg_flags=0}, 0) = 10');
  assert.deepEqual((msg.args[1] as { t: 'struct'; fields: Array<{ name: string | null }> }).fields.map((f) => f.name), ['msg_name(...)', 'msg_iov(1)', 'msg_flags']);
  // A call spanning lines, as packetdrill's token grammar allows.
  const multi = syscall('+0 setsockopt(4, SOL_SOCKET,\n   SO_LINGER, {onoff=1,\n linger=0}, 8) = 0');
  assert.equal(multi.args.length, 5);
  assert.equal(multi.line, 1);
});

test('numbers: negative, hex; strings with escapes', () => {
  assert.deepEqual(syscall('+0 f(-5, 0x1F, 0XfF, 007) = -22').args, [
    { t: 'num', v: -5 }, { t: 'num', v: 31 }, { t: 'num', v: 255 }, { t: 'num', v: 7 },
  ]);
  assert.deepEqual(syscall('+0 f(1) = -22').result, { t: 'num', v: -22 });
  assert.deepEqual(syscall('+0 f(1) = 0xffffffff').result, { t: 'num', v: 4294967295 });
  assert.deepEqual(syscall('+0 write(4, "a\\n\\t\\"q\\"\\\\\\x41\\101\\0z", 10) = 10').args[1], {
    t: 'str', v: 'a\n\t"q"\\AA\0z',
  });
});

test('results: errno and its text, a note, and other expressions', () => {
  const a = syscall('+0 read(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)');
  assert.deepEqual([a.errno, a.errnoText, a.note], ['EAGAIN', 'Resource temporarily unavailable', undefined]);
  const b = syscall("+0 bind(3, ..., ...) = -1 EADDRNOTAVAIL (Can't assign requested address)");
  assert.equal(b.errnoText, "Can't assign requested address");
  const c = syscall('+0 close(3) = -1 EBADF');
  assert.deepEqual([c.errno, c.errnoText], ['EBADF', undefined]);
  const d = syscall('+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)');
  assert.deepEqual([d.errno, d.note], [undefined, 'flags O_RDWR|O_NONBLOCK']);
  assert.deepEqual(syscall('+0 f(1) = ...').result, { t: 'ellipsis' });
  assert.deepEqual(syscall('+0 f(1) = [1, 2]').result, { t: 'list', items: [{ t: 'num', v: 1 }, { t: 'num', v: 2 }] });
});

// ---- commands and code blocks ------------------------------------------------------------------

test('backtick commands, with or without a time, over several lines', () => {
  const s = parseScript('`sysctl -q net.ipv4.tcp_sack=1`\n+0 `tc qdisc add dev tun0 root pfifo\n  limit 10`\n0 close(3) = 0\n');
  assert.deepEqual(s.events[0], { kind: 'command', line: 1, time: { kind: 'relative', t: 0 }, text: 'sysctl -q net.ipv4.tcp_sack=1' });
  const cmd = s.events[1] as CommandEvent;
  assert.deepEqual([cmd.line, cmd.time, cmd.text], [2, { kind: 'relative', t: 0 }, 'tc qdisc add dev tun0 root pfifo\n  limit 10']);
  assert.equal(s.events[2]!.line, 4);
});

test('%{ }% code blocks, with or without a time, over several lines', () => {
  const s = parseScript('+0.1 %{ assert tcpi_snd_cwnd == 10 }%\n%{\nassert tcpi_state == TCP_ESTABLISHED, tcpi_state\nassert tcpi_rto >= 200000\n}%\n0.5 %{ x = {1: 2} }%\n');
  const [a, b, c] = s.events as CodeEvent[];
  assert.deepEqual(a, { kind: 'code', line: 1, time: { kind: 'relative', t: 0.1 }, text: ' assert tcpi_snd_cwnd == 10 ' });
  assert.deepEqual([b!.kind, b!.line, b!.time], ['code', 2, { kind: 'relative', t: 0 }]);
  assert.equal(b!.text, '\nassert tcpi_state == TCP_ESTABLISHED, tcpi_state\nassert tcpi_rto >= 200000\n');
  assert.deepEqual([c!.line, c!.time, c!.text], [6, { kind: 'absolute', t: 0.5 }, ' x = {1: 2} ']);
});

// ---- errors ------------------------------------------------------------------------------------

test('malformed scripts give a DrillParseError at the right line', () => {
  const good = '0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n';
  // [script, line, column?, message pattern?]
  const cases: Array<[string, number, number?, RegExp?]> = [
    [`${good}+0 close(3) = 0 /* never closed\n\n`, 2, 17, /unclosed comment/],
    [`${good}\n+0 %{ assert tcpi_state == 1\n`, 3, 4, /unclosed code block/],
    [`${good}+0 \`sysctl -q x\n`, 2, 4, /unclosed command/],
    [`${good}+0 < X 0:0(0) win 100\n`, 2, 6, /bad TCP flags 'X'/],
    [`${good}+0 < S.x 0:0(0) win 100\n`, 2, 8, /bad TCP flags 'S.x'/],
    [`${good}+0 < s 0:0(0)\n`, 2, 6, /bad TCP flags/],
    [`${good}+0 close(3) 0\n`, 2, 13, /expected '=' and the expected result/],
    [`${good}+0 close(3)\n+0 close(4) = 0\n`, 3, 1, /expected '='/],
    [`${good}+0 < P. 1:2(5) ack 1\n`, 2, 11, /inconsistent TCP sequence numbers and payload size/],
    [`${good}+0 > . 1:1(1) ack 1\n`, 2, 10, /inconsistent/],
    ['this is not a script\n', 1, 1, /missing time/],
    [`${good}$%^&*\n`, 2, 1, /expected a time/],
    [`${good}+0 < S 0:0(0) <mss 1460, nop\n+0 close(3) = 0\n`, 2, 15, /unclosed option list/],
    [`${good}+0 < S 0:0(0) <mss 1460 nop>\n`, 2, 25, /expected ',' or '>'/],
    [`${good}+0 < S 0:0(0) <mss>\n`, 2, 19, /mss value/],
    [`${good}+0 < S 0:0(0) <mss 70000>\n`, 2, 20, /out of range/],
    [`${good}+0 < S 0:0(0) <wscale 256>\n`, 2, 23, /out of range/],
    [`${good}+0 < S 0:0(0) <sack>\n`, 2, 20, /at least one block/],
    [`${good}+0 < S 0:0(0) <TS 1 ecr 2>\n`, 2, 19, /expected 'val'/],
    [`${good}+0 < S 0:0(0) <TS val 1 2>\n`, 2, 25, /expected 'ecr'/],
    [`${good}+0 < S 0:0(0) <, nop>\n`, 2, 16, /expected a TCP option/],
    [`${good}+0 < S 0:0(0) win 70000\n`, 2, 19, /TCP window 70000 is out of range/],
    [`${good}+0 < S 0:0(0) ack 4294967296\n`, 2, 19, /out of range/],
    [`${good}+0 < S 4294967296:4294967296(0)\n`, 2, 8, /out of range/],
    [`${good}+0 < . 1:65537(65536)\n`, 2, 16, /payload length 65536 is out of range/],
    [`${good}+0 < S 0:0(0) ack 1 ack 2\n`, 2, 21, /given twice/],
    [`${good}+0 < S 0:0(0) bogus 3\n`, 2, 15, /expected ack N, win N, urg N or <options>/],
    [`${good}+0 < S 0:0 win 100\n`, 2, 12, /expected '\('/],
    [`${good}+0 < S 0 0(0)\n`, 2, 10, /expected ':'/],
    [`${good}+0 < S 0x10:0x10(0)\n`, 2, 8, /decimal integer/],
    [`${good}+0 < S\n0:0(0)\n`, 2, 7, /TCP start sequence number/],
    [`${good}+0 <\n`, 2, 5, /expected TCP flags/],
    [`${good}+0 < foo 0:0(0)\n`, 2, 6, /bad TCP flags 'foo'/],
    [`${good}+0 < 1:1(0)\n`, 2, 6, /expected TCP flags/],
    [`${good}+0 < [ect0 S 0:0(0)\n`, 2, 6, /unclosed \[/],
    [`${good}< S 0:0(0) win 100\n`, 2, 1, /missing time/],
    [`${good}close(3) = 0\n`, 2, 1, /missing time/],
    [`${good}-1 close(3) = 0\n`, 2, 1, /negative time/],
    [`${good}0x1 close(3) = 0\n`, 2, 1, /decimal seconds/],
    [`${good}+0\n`, 3, 1, /expected an event after the time/],
    [`${good}+0 42\n`, 2, 4, /expected an event/],
    [`${good}+0~0.2 > . 1:1(0) ack 1\n`, 2, 1, /both ends relative/],
    [`${good}0~+0.2 > . 1:1(0) ack 1\n`, 2, 3, /both ends relative/],
    [`${good}2~1 > . 1:1(0) ack 1\n`, 2, 1, /backwards/],
    [`${good}* < . 1:1(0) ack 1\n`, 2, 1, /outbound/],
    [`${good}* close(3) = 0\n`, 2, 1, /outbound/],
    [`${good}+0~+1 close(3) = 0\n`, 2, 1, /outbound/],
    [`${good}0~1 < udp (10)\n`, 2, 1, /outbound/],
    [`${good}+0...0.1 > . 1:1(0) ack 1\n`, 2, 3, /only be given to a system call/],
    [`${good}*...0.1 accept(3, ..., ...) = 4\n`, 2, 1, /single start time/],
    [`${good}0.5...0.1 accept(3, ..., ...) = 4\n`, 2, 7, /before it starts/],
    [`${good}+0.5...0.1 accept(3, ..., ...) = 4\n`, 2, 8, /before it starts/],
    [`${good}+0 close 3 = 0\n`, 2, 10, /expected '\(' after the system call name 'close'/],
    [`${good}+0 close(3 = 0\n`, 2, 12, /expected ',' or '\)'/],
    [`${good}+0 close(3,) = 0\n`, 2, 12, /expected an expression/],
    [`${good}+0 close(3) =\n+0 close(4) = 0\n`, 3, 1, /expected the result/],
    [`${good}+0 close(3) = 0 0\n`, 2, 17, /one event a line/],
    [`${good}+0 close(3) = 0 +0 close(4) = 0\n`, 2, 17, /one event a line/],
    [`${good}+0 f({a=1 b=2}) = 0\n`, 2, 11, /expected ',' or '}'/],
    [`${good}+0 f([1, 2) = 0\n`, 2, 11, /expected ',' or ']'/],
    [`${good}+0 write(4, "abc, 3) = 3\n`, 2, 13, /unterminated string/],
    [`${good}+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now\n`, 2, 42, /unclosed \(/],
    [`${good}+0 > S 0:0(0) <...\n`, 2, 15, /unclosed option list/],
    [`${good}+0 > S 0:0(0) <... mss>\n`, 2, 20, /expected '>' after <\.\.\./],
    [`${good}--mtu=1500\n`, 2, 1, /options must come before any event/],
    [`${good}+0 close(3) = 0 # shell comment\n`, 2, 17, /one event a line/],
  ];
  for (const [script, line, column, message] of cases) parseError(script, line, column, message);
  assert.ok(cases.length >= 60);
});

test('the error message names the line and column, and the error is a DrillParseError', () => {
  const err = parseError('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < X 0:0(0)\n', 2, 6);
  assert.equal(err.name, 'DrillParseError');
  assert.ok(err.message.startsWith('line 2:6: bad TCP flags'));
});

test('deep nesting and long inputs are refused or read without overflowing the stack', () => {
  parseError(`0 f(${'['.repeat(100_000)}`, 1, undefined, /nested too deeply/);
  parseError(`0 f(${'{'.repeat(5_000)}`, 1, undefined, /nested too deeply/);
  parseError(`0 f(${'g('.repeat(5_000)}`, 1, undefined, /nested too deeply/);
  const wide = syscall(`0 f(${Array.from({ length: 20_000 }, (_, i) => String(i)).join(', ')}) = 0`);
  assert.equal(wide.args.length, 20_000);
  const many = parseScript(Array.from({ length: 5_000 }, (_, i) => `+0 close(${i}) = 0`).join('\n'));
  assert.equal(many.events.length, 5_000);
  assert.equal(many.events[4_999]!.line, 5_000);
});

// ---- fuzz --------------------------------------------------------------------------------------

/** xorshift32: a seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

const FUZZ_PIECES = [
  '0', '+0', '+.1', '1.250', '*', '~', '...', '+', '-', '<', '>', '[', ']', '(', ')', '{', '}', ',', '=', '|', ':',
  'S', 'S.', 'P.', 'F.', '.', 'R', 'X', ' ', ' ', ' ', '\n', '\n', '\t', '//', '/*', '*/', '`', '%{', '}%', '"', '\\',
  'ack', 'win', 'urg', 'mss', 'nop', 'eol', 'wscale', 'sackOK', 'sack', 'TS', 'val', 'ecr', 'FO', 'udp', 'icmp',
  'ect0', 'socket', 'close', '...', 'NULL', '0x1f', '4294967296', '65536', '1:1001(1000)', '0:0(0)', 'EAGAIN',
  '--mtu=1500', '--', 'htons(8080)', '\u00e9', '\u{1F600}', '\0', '\r',
];

const SEED_SCRIPT = `--tolerance_usecs=10000
\`./defaults.sh\`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.2 accept(3, ..., ...) = 4
+.1 < [ect0] S 0:0(0) win 32792 <mss 1000,sackOK,TS val 1 ecr 0,nop,wscale 7>
* > S. 0:0(0) ack 1 <...>
+0~+0.1 > udp (1472)
+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLIN}], 1, 0) = 1
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 %{ assert tcpi_snd_cwnd == 10 }%
/* done */`;

test('fuzz: 2000 random inputs never throw anything but DrillParseError', () => {
  const next = rng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const started = Date.now();
  let parsed = 0;
  let rejected = 0;
  for (let i = 0; i < 2000; i++) {
    let input: string;
    const mode = i % 3;
    if (mode === 0) {
      // Random pieces of the language, up to 60 of them.
      input = Array.from({ length: Math.floor(next() * 60) }, () => pick(FUZZ_PIECES)).join('');
    } else if (mode === 1) {
      // A real script with up to 8 random edits (delete, insert a piece, replace a character).
      input = SEED_SCRIPT;
      for (let k = Math.floor(next() * 8); k >= 0; k--) {
        const at = Math.floor(next() * (input.length + 1));
        const op = Math.floor(next() * 3);
        if (op === 0) input = input.slice(0, at) + input.slice(at + 1 + Math.floor(next() * 5));
        else if (op === 1) input = input.slice(0, at) + pick(FUZZ_PIECES) + input.slice(at);
        else input = input.slice(0, at) + String.fromCharCode(Math.floor(next() * 128)) + input.slice(at + 1);
      }
    } else {
      // Raw characters, up to 200.
      input = Array.from({ length: Math.floor(next() * 200) }, () => String.fromCharCode(Math.floor(next() * 0x80))).join('');
    }
    try {
      const script = parseScript(input);
      parsed++;
      for (const ev of script.events) assert.ok(ev.line >= 1 && ev.line <= input.split('\n').length, JSON.stringify(input));
    } catch (err) {
      if (!(err instanceof DrillParseError)) assert.fail(`not a DrillParseError for ${JSON.stringify(input)}: ${String(err)}`);
      assert.doesNotMatch(err.message, /internal parser error/, JSON.stringify(input));
      assert.ok(err.line >= 1 && err.line <= input.split('\n').length, `line ${err.line} for ${JSON.stringify(input)}`);
      assert.ok(err.column >= 1, `column ${err.column} for ${JSON.stringify(input)}`);
      rejected++;
    }
  }
  assert.equal(parsed + rejected, 2000);
  // Both outcomes occur, so the test exercises more than the error path.
  assert.ok(parsed > 50, `parsed ${parsed}`);
  assert.ok(rejected > 50, `rejected ${rejected}`);
  assert.ok(Date.now() - started < 20_000, 'fuzzing took too long');
});
