import assert from 'node:assert/strict';
import { it } from 'node:test';
import queue from '../../bench/profiles/queue.js';
import { PG_SKIP } from '../support/pg.js';
import { runSmoke } from './smoke-context.js';

/** `linus bench queue --smoke`: both queues take every message and give each back once, in order; correctness only. */
it('queue: SQLite and PostgreSQL queues deliver every message once, in order', async () => {
  const r = await runSmoke(queue, 120_000, PG_SKIP ? { backend: 'sqlite' } : {});
  assert.ok(r.ok, (r.failures ?? []).join('\n'));
  const names = r.figures.map((f) => f.name);
  assert.ok(names.includes('SQLite: enqueue') && names.includes('SQLite: redelivery'));
  if (!PG_SKIP) assert.ok(names.includes('PostgreSQL: enqueue') && names.includes('PostgreSQL: redelivery'));
  for (const f of r.figures) assert.ok(typeof f.value === 'number' && f.value > 0, `${f.name}: ${f.value}`);
});
