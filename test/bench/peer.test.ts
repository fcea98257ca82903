import assert from 'node:assert/strict';
import { it } from 'node:test';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/** `linus bench peer --smoke`: 300 messages to 10 offline devices, then redelivered; correctness only. */
it('peer: every message is enqueued durably, redelivered once, and acknowledged to its sender', async () => {
  const run = await runBench(['peer', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  assert.equal(figure(r, 'messages enqueued').value, 300, explainRun(run));
  assert.equal(figure(r, 'messages redelivered').value, 300, explainRun(run));
  assert.equal(figure(r, 'messages redelivered').unit, 'of 300');
  assert.equal(figure(r, 'redelivered acks to the senders').value, 300, explainRun(run));
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
