import assert from 'node:assert/strict';
import { it } from 'node:test';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/**
 * `linus bench soak --smoke`: 2 talking devices for a few seconds, readings every second; correctness only. The
 * leak figures are reported with their targets, not asserted: a smoke run is too short to judge a trend.
 */
it('soak: turns complete, readings are taken, the leak figures are there', async () => {
  const run = await runBench(['soak', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  assert.equal(figure(r, 'devices connected').value, 2, explainRun(run));
  assert.equal(figure(r, 'turns completed').value, 100, explainRun(run));
  assert.ok((figure(r, 'turns').value as number) >= 2, explainRun(run));
  for (const prefix of [
    'RSS slope over the second half',
    'open fds left after the load',
    'active timers left after the load',
    'active resources left after the load',
  ]) {
    const f = figure(r, prefix);
    assert.equal(typeof f.value, 'number', prefix);
    assert.ok(f.target, `${prefix} has a target`);
  }
  assert.deepEqual(nonFinite(r), [], explainRun(run));
  for (const name of ['server RSS', 'server open fds', 'server active timers']) {
    assert.ok((r.series?.find((s) => s.name === name)?.points.length ?? 0) >= 2, `${name}: readings over time`);
  }
});
