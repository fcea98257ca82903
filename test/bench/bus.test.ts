import assert from 'node:assert/strict';
import { it } from 'node:test';
import { redisSkipReason } from '../support/redis.js';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

const skip = await redisSkipReason();

/** `linus bench bus --smoke`: two cluster nodes on Redis, 200 cross-node deliveries and 20 handovers; correctness only. */
it(
  'bus: every cross-node delivery answered ok, every replaced connection on the other node told',
  { skip },
  async () => {
    const run = await runBench(['bus', '--smoke', '--json']);
    const r = run.result;
    assert.equal(run.code, 0, explainRun(run));
    assert.ok(r.ok, explainRun(run));
    const delivered = figure(r, 'cross-node deliver: delivered');
    assert.equal(delivered.value, 200, explainRun(run));
    assert.equal(delivered.unit, 'of 200', explainRun(run));
    const told = figure(r, 'handover: old connections told');
    assert.equal(told.value, 20, explainRun(run));
    for (const name of ['cross-node deliver p99', 'handover p99', 'same-node deliver p99'])
      assert.equal(typeof figure(r, name).value, 'number', `${name}\n${explainRun(run)}`);
    assert.deepEqual(nonFinite(r), [], explainRun(run));
  },
);
