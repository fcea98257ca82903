import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metrics } from './metrics.js';

test('right after start /metrics has no NaN and no empty-histogram sentinel in the event-loop gauges', async () => {
  const metrics = new Metrics({ defaultMetrics: true });
  try {
    const samples = (await metrics.registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(
      samples.filter((l) => /\bNaN\b|9223372036/.test(l)),
      [],
    );
    const lag = samples.filter((l) => l.includes('event_loop_lag') || l.includes('eventloop_lag'));
    assert.deepEqual(
      lag.map((l) => l.split(' ')[0]),
      ['linus_event_loop_lag_p50_seconds', 'linus_event_loop_lag_p99_seconds', 'linus_event_loop_lag_max_seconds'],
    );
    // Without samples yet they read 0; a busy machine may already have one, which is a real delay, never a sentinel.
    for (const l of lag) assert.ok(Number(l.split(' ')[1]) < 60, l);
  } finally {
    metrics.close();
  }
});
