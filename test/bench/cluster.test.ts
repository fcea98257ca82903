import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PG_SKIP } from '../support/pg.js';
import { redisSkipReason } from '../support/redis.js';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

const SKIP = PG_SKIP || (await redisSkipReason()) || false;

/**
 * `linus bench cluster --smoke`: three nodes; 50 peer messages half across nodes, 5 handovers, 200 messages through
 * the PostgreSQL queue, then node 3 killed under load; correctness only.
 */
it(
  'cluster: every message reaches its target; handovers served; queue drained; kill -9 loses nothing acknowledged',
  { skip: SKIP },
  async () => {
    const run = await runBench(['cluster', '--smoke', '--source', '--json']);
    const r = run.result;
    assert.equal(run.code, 0, explainRun(run));
    assert.ok(r.ok, explainRun(run));
    assert.equal(figure(r, 'messages received').value, 50, explainRun(run));
    assert.equal(figure(r, 'messages received').unit, 'of 50');
    assert.equal(figure(r, 'handover: served and old told').unit, 'of 5', explainRun(run));
    assert.equal(figure(r, 'handover: served and old told').value, 5, explainRun(run));
    for (const kind of ['peer messages', 'tasks', 'snippets']) {
      const lost = figure(r, `kill -9: acknowledged ${kind} lost`);
      assert.equal(lost.value, 0, explainRun(run));
      assert.notEqual(lost.unit, 'of 0', `${kind}: something acknowledged before the kill\n${explainRun(run)}`);
    }
    const moved = figure(r, 'kill -9: devices of node 3 served again');
    assert.equal(moved.unit, `of ${String(moved.value)}`, explainRun(run));
    for (const name of ['PostgreSQL queue: enqueue', 'PostgreSQL queue: redelivery', 'kill -9: reconnect → served p99'])
      assert.equal(typeof figure(r, name).value, 'number', `${name}\n${explainRun(run)}`);
    assert.deepEqual(nonFinite(r), [], explainRun(run));
  },
);
