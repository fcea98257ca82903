import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DedupWindow } from './limits.js';

describe('dedup window', () => {
  it('reports a text seen again within 60 s, and not after', () => {
    const d = new DedupWindow(60_000);
    assert.equal(d.check('a', 0), false);
    assert.equal(d.check('a', 59_999), true);
    // Seen again at 59 999: the window restarts from the last sight.
    assert.equal(d.check('a', 119_998), true);
    assert.equal(d.check('a', 180_000), false);
    assert.equal(d.check('b', 180_000), false);
  });

  it('expires old keys and stays bounded', () => {
    const d = new DedupWindow(1000, 100);
    for (let i = 0; i < 1000; i++) d.check(`k${i}`, i);
    assert.ok(d.size <= 100);
    d.check('x', 10_000);
    assert.equal(d.size, 1);
  });

  it('remember seeds the window; forget undoes a check', () => {
    const d = new DedupWindow(60_000);
    d.remember('seed', 1000);
    assert.equal(d.check('seed', 2000), true);
    d.check('new', 3000);
    d.forget('new', 3000);
    assert.equal(d.check('new', 3001), false);
  });
});
