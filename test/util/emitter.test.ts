import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Emitter } from '../../src/util/emitter.js';

interface Events {
  trace: [event: { t: number }];
  close: [];
  data: [chunk: string, n: number];
}

test('on/emit call listeners in order with typed arguments; emit reports whether anyone listened', () => {
  const e = new Emitter<Events>();
  const log: string[] = [];
  assert.equal(e.emit('data', 'x', 1), false);
  e.on('data', (chunk, n) => log.push(`1:${chunk}${n}`));
  e.on('data', (chunk, n) => log.push(`2:${chunk}${n}`));
  e.on('close', () => log.push('close'));
  assert.equal(e.emit('data', 'a', 7), true);
  e.emit('close');
  assert.deepEqual(log, ['1:a7', '2:a7', 'close']);
});

test('listenerCount lets a hot path skip building events', () => {
  const e = new Emitter<Events>();
  assert.equal(e.listenerCount('trace'), 0);
  const fn = (): void => {};
  e.on('trace', fn);
  e.on('trace', fn);
  assert.equal(e.listenerCount('trace'), 2);
  e.off('trace', fn);
  assert.equal(e.listenerCount('trace'), 1);
  e.off('trace', fn);
  assert.equal(e.listenerCount('trace'), 0);
  e.off('trace', fn); // nothing left: harmless
});

test('once fires a single time and can be removed with off before it fires', () => {
  const e = new Emitter<Events>();
  let n = 0;
  e.once('close', () => n++);
  e.emit('close');
  e.emit('close');
  assert.equal(n, 1);
  assert.equal(e.listenerCount('close'), 0);
  const fn = (): void => void n++;
  e.once('close', fn);
  e.off('close', fn);
  e.emit('close');
  assert.equal(n, 1);
});

test('listeners added or removed during emit do not change that emit', () => {
  const e = new Emitter<Events>();
  const log: string[] = [];
  const second = (): void => void log.push('second');
  e.on('close', () => {
    log.push('first');
    e.off('close', second);
    e.on('close', () => log.push('added'));
  });
  e.on('close', second);
  e.emit('close');
  assert.deepEqual(log, ['first', 'second']);
  log.length = 0;
  e.emit('close');
  assert.deepEqual(log, ['first', 'added']);
});

test('a once listener re-emitting the same event does not run twice', () => {
  const e = new Emitter<Events>();
  let n = 0;
  e.once('close', () => {
    n++;
    e.emit('close');
  });
  e.emit('close');
  assert.equal(n, 1);
});

test('removeAllListeners clears one event or all', () => {
  const e = new Emitter<Events>();
  e.on('close', () => {});
  e.on('trace', () => {});
  e.removeAllListeners('close');
  assert.equal(e.listenerCount('close'), 0);
  assert.equal(e.listenerCount('trace'), 1);
  e.removeAllListeners();
  assert.equal(e.listenerCount('trace'), 0);
});
