import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { budgetKey, SecretThrottle } from './secret-throttle.js';

describe('SecretThrottle (failed-secret budget per address)', () => {
  const metrics = new Metrics({ defaultMetrics: false });
  after(() => metrics.close());
  /** A throttle on a clock the test moves by hand: back-off lengths are checked exactly, without waiting. */
  const make = (limits = { limit: 3, backoff_ms: 1000, max_backoff_ms: 5000 }) => {
    const clock = { now: 1_000_000 };
    return {
      clock,
      throttle: new SecretThrottle(
        metrics,
        silentLogger(),
        () => limits,
        () => clock.now,
      ),
    };
  };
  const failTimes = (t: SecretThrottle, address: string, n: number): void => {
    for (let i = 0; i < n; i++) t.failed(address, 'admin');
  };

  it('backs off after `limit` failures, doubling per burst up to the cap', () => {
    const { clock, throttle } = make();
    failTimes(throttle, 'a', 2);
    assert.equal(throttle.retryAfterMs('a', 'admin'), 0, 'under the limit nothing is refused');
    const waits: number[] = [];
    for (let burst = 0; burst < 5; burst++) {
      failTimes(throttle, 'a', burst === 0 ? 1 : 3);
      const wait = throttle.retryAfterMs('a', 'admin');
      waits.push(wait);
      clock.now += wait;
      assert.equal(throttle.retryAfterMs('a', 'admin'), 0, 'the back-off ends on time');
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 5000, 5000]);
    assert.equal(throttle.retryAfterMs('b', 'admin'), 0, 'another address is not affected');
  });

  it('failures older than the window do not add up; a quiet address starts again from the first back-off', () => {
    const { clock, throttle } = make();
    failTimes(throttle, 'a', 2);
    clock.now += 61_000;
    failTimes(throttle, 'a', 2);
    assert.equal(throttle.retryAfterMs('a', 'admin'), 0);
    failTimes(throttle, 'a', 1);
    clock.now += throttle.retryAfterMs('a', 'admin');
    // Quiet for less than 15 minutes after the back-off: the next burst backs off twice as long.
    clock.now += 14 * 60_000;
    failTimes(throttle, 'a', 3);
    const doubled = throttle.retryAfterMs('a', 'admin');
    assert.equal(doubled, 2000);
    clock.now += doubled + 16 * 60_000;
    failTimes(throttle, 'a', 3);
    assert.equal(throttle.retryAfterMs('a', 'admin'), 1000);
  });

  it('stays bounded when failures come from very many addresses', () => {
    const { throttle } = make();
    for (let i = 0; i < 25_000; i++) throttle.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'device');
    assert.ok(throttle.size <= 10_000, String(throttle.size));
  });

  it('keys IPv4 (also IPv4-mapped) by address and IPv6 by its /64', () => {
    assert.equal(budgetKey('192.0.2.7'), '192.0.2.7');
    assert.equal(budgetKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(budgetKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(budgetKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(budgetKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(budgetKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(budgetKey(undefined), 'unknown');
  });
});
