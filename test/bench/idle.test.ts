import assert from 'node:assert/strict';
import { it } from 'node:test';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/** `linus bench idle --smoke`: 50 idle connections with heartbeats on each server; correctness only. */
it('idle: every connection opens on both servers and every heartbeat is answered', async () => {
  const run = await runBench(['idle', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  for (const server of ['bare ws', 'Linus']) {
    assert.equal(figure(r, `${server}: connections open (client view)`).value, 50, explainRun(run));
    assert.equal(figure(r, `${server}: connections open (server /health)`).value, 50, explainRun(run));
    const hb = figure(r, `${server}: heartbeats answered`);
    assert.ok((hb.value as number) > 0, explainRun(run));
    assert.equal(hb.unit, `of ${hb.value}`, `${server}: every heartbeat answered\n${explainRun(run)}`);
  }
  assert.equal(typeof figure(r, 'Linus / bare ws bytes per connection').value, 'number');
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
