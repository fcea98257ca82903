import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdleMonitor } from './idle.js';

function monitor(idleMs: number, warningMs: number, start: number) {
  const events: string[] = [];
  let paused = false;
  const m = new IdleMonitor({
    idleMs: () => idleMs,
    warningMs: () => warningMs,
    paused: () => paused,
    onWarning: () => events.push('warn'),
    onIdle: () => events.push('close'),
  });
  m.touch(start);
  return { m, events, pause: (p: boolean) => (paused = p) };
}

describe('idle monitor', () => {
  it('warns warningMs before the limit, then closes at the limit', () => {
    const { m, events } = monitor(10_000, 2_000, 0);
    assert.equal(m.check(7_999), false);
    assert.deepEqual(events, []);
    m.check(8_000);
    assert.deepEqual(events, ['warn']);
    assert.equal(m.check(9_999), false);
    assert.equal(m.check(10_000), true);
    assert.deepEqual(events, ['warn', 'close']);
  });

  it('never closes without the warning: a late check warns first and closes warningMs later', () => {
    const { m, events } = monitor(10_000, 2_000, 0);
    assert.equal(m.check(15_000), false);
    assert.deepEqual(events, ['warn']);
    assert.equal(m.check(16_999), false);
    assert.equal(m.check(17_000), true);
    assert.deepEqual(events, ['warn', 'close']);
  });

  it('activity after the warning starts over, and a pause keeps the clock still', () => {
    const { m, events, pause } = monitor(10_000, 2_000, 0);
    m.check(8_500);
    m.touch(9_000);
    assert.equal(m.check(18_999), false);
    assert.deepEqual(events, ['warn', 'warn']);
    pause(true);
    assert.equal(m.check(40_000), false);
    pause(false);
    assert.equal(m.check(47_999), false);
    assert.deepEqual(events, ['warn', 'warn']);
  });
});
