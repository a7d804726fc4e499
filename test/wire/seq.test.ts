import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  seqAdd, seqDiff, seqGeq, seqGt, seqInWindow, seqLeq, seqLt, seqMax, seqMin,
} from '../../src/wire/seq.js';

test('comparisons wrap at 2^32: 0xffffffff < 0', () => {
  assert.equal(seqLt(0xffffffff, 0), true);
  assert.equal(seqGt(0, 0xffffffff), true);
  assert.equal(seqLt(0, 0xffffffff), false);
  assert.equal(seqLeq(5, 5), true);
  assert.equal(seqGeq(5, 5), true);
  assert.equal(seqLt(5, 5), false);
  assert.equal(seqLt(0xfffffff0, 0x10), true);
  assert.equal(seqGeq(0x10, 0xfffffff0), true);
});

test('half the space ahead is "greater"; 2^31 apart is the ambiguous edge', () => {
  assert.equal(seqLt(0, 0x7fffffff), true);
  assert.equal(seqGt(0, 0x80000001), true); // more than 2^31 ahead means behind
  assert.equal(seqDiff(0x80000000, 0), -0x80000000);
});

test('seqAdd wraps into 0..2^32-1 and takes negative steps', () => {
  assert.equal(seqAdd(0xffffffff, 1), 0);
  assert.equal(seqAdd(0xfffffff0, 0x20), 0x10);
  assert.equal(seqAdd(0, -1), 0xffffffff);
  assert.equal(seqAdd(1000, 500), 1500);
});

test('seqDiff is signed', () => {
  assert.equal(seqDiff(0x10, 0xfffffff0), 0x20);
  assert.equal(seqDiff(0xfffffff0, 0x10), -0x20);
  assert.equal(seqDiff(7, 7), 0);
});

test('seqMax / seqMin across the wrap', () => {
  assert.equal(seqMax(0xffffffff, 2), 2);
  assert.equal(seqMin(0xffffffff, 2), 0xffffffff);
  assert.equal(seqMax(3, 9), 9);
});

test('seqInWindow: left <= x < left+len, modular', () => {
  assert.equal(seqInWindow(0xfffffffe, 0xfffffff0, 0x20), true);
  assert.equal(seqInWindow(5, 0xfffffff0, 0x20), true);
  assert.equal(seqInWindow(0x10, 0xfffffff0, 0x20), false); // right edge excluded
  assert.equal(seqInWindow(0xfffffff0, 0xfffffff0, 0x20), true); // left edge included
  assert.equal(seqInWindow(0xffffffef, 0xfffffff0, 0x20), false);
  assert.equal(seqInWindow(100, 100, 0), false); // an empty window holds nothing
});
