import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateWindow } from './rate.js';

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
