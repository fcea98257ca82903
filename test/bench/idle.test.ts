import assert from 'node:assert/strict';
import { it } from 'node:test';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/** `linus bench idle --smoke`: 50 idle connections with heartbeats on each server; correctness only. */
it('idle: every connection opens on both servers, every heartbeat is answered, the presence opt-out saves bytes', async () => {
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
  // Half the Linus connections opted out of presence broadcasts in their hello: they were pushed less.
  const on = figure(r, 'Linus: pushed per connection, presence broadcasts on').value as number;
  const out = figure(r, 'Linus: pushed per connection, presence opted out').value as number;
  assert.ok(out < on, `opted out ${out} B, on ${on} B per connection\n${explainRun(run)}`);
  assert.ok((figure(r, 'Linus: bytes saved if all 50 connections opt out').value as number) > 0, explainRun(run));
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
