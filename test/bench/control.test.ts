import assert from 'node:assert/strict';
import { it } from 'node:test';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/** `linus bench control --smoke`: 10 ping→pong connections on each server; correctness only. */
it('control: every connection opens and pongs come back from both servers', async () => {
  const run = await runBench(['control', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  for (const server of ['bare ws', 'Linus']) {
    assert.equal(figure(r, `${server}: connections`).value, 10, explainRun(run));
    assert.ok((figure(r, `${server}: round trips (pongs received)`).value as number) > 0, explainRun(run));
  }
  assert.equal(typeof figure(r, 'Linus / bare ws round trips/s').value, 'number');
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
