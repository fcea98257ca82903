import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedRateWindows, RateWindow } from './rate.js';

describe('rate window', () => {
  it('admits up to the limit per window and the rest of a batch is refused', () => {
    const r = new RateWindow(1000);
    assert.equal(r.take(4, 10, 0), 4);
    assert.equal(r.take(4, 10, 100), 4);
    assert.equal(r.take(4, 10, 200), 2);
    assert.equal(r.take(1, 10, 999), 0);
    assert.equal(r.take(3, 10, 1000), 3);
  });

  it('admit counts one event; a lower limit after a reload applies within the window', () => {
    const r = new RateWindow();
    assert.equal(r.admit(2, 5000), true);
    assert.equal(r.admit(2, 5001), true);
    assert.equal(r.admit(2, 5002), false);
    assert.equal(r.admit(1, 6000), true);
    assert.equal(r.admit(1, 6001), false);
  });
});

describe('keyed rate windows', () => {
  it('keeps one window per key and says how long until a key may go again', () => {
    const w = new KeyedRateWindows(60_000);
    assert.equal(w.admit('a', 1, 0), true);
    assert.equal(w.admit('a', 1, 10), false);
    assert.equal(w.admit('b', 1, 10), true, 'another key is not held back');
    assert.equal(w.retryAfterMs('a', 20_000), 40_000);
    assert.equal(w.retryAfterMs('unknown', 20_000), 0);
    assert.equal(w.admit('a', 1, 60_000), true);
  });

  it('sweeps keys whose window ended once the table is large', () => {
    const w = new KeyedRateWindows(1000);
    for (let i = 0; i < 10_000; i++) w.admit(`k${i}`, 1, 0);
    assert.equal(w.size, 10_000);
    w.admit('late', 1, 5000);
    assert.equal(w.size, 1);
  });

  it('live keys are not scanned for every new key: the next sweep waits for the table to double', () => {
    const w = new KeyedRateWindows(1000);
    for (let i = 0; i < 10_000; i++) w.admit(`live${i}`, 1, 0);
    w.admit('x', 1, 0); // a sweep that frees nothing: every window is live
    assert.equal(w.size, 10_001);
    w.admit('y', 1, 5000); // the windows have ended, but the table has not doubled: no sweep yet
    assert.equal(w.size, 10_002);
    let before: number;
    let i = 0;
    do {
      before = w.size;
      w.admit(`more${i++}`, 1, 5000);
    } while (w.size > before);
    assert.equal(before, 20_000, 'the next sweep came once the table had doubled');
    assert.ok(w.size < 10_100, `the ended windows went (${w.size} left)`);
  });
});
