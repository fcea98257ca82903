import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PG_SKIP } from '../support/pg.js';
import { redisSkipReason } from '../support/redis.js';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

const SKIP = PG_SKIP || (await redisSkipReason()) || false;

/** `linus bench cluster --smoke`: three nodes, 50 peer messages half across nodes; correctness only. */
it('cluster: every message reaches its target, on its own node or another', { skip: SKIP }, async () => {
  const run = await runBench(['cluster', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  assert.equal(figure(r, 'messages received').value, 50, explainRun(run));
  assert.equal(figure(r, 'messages received').unit, 'of 50');
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
