import assert from 'node:assert/strict';
import { it } from 'node:test';
import crash from '../../bench/profiles/crash.js';
import { explain, runSmoke } from './smoke-context.js';

/** Smoke run of `linus bench crash`: one SIGKILL during writes, restart on the same data dir, nothing acknowledged lost. */
it('crash: every snippet and peer message acknowledged before a SIGKILL is there after the restart', async () => {
  const r = await runSmoke(crash, 120_000);
  const fig = (prefix: string) => r.figures.find((f) => f.name.startsWith(prefix));
  assert.ok(r.ok, explain(r));
  assert.ok(
    Number(fig('meeting snippets acknowledged')?.value) > 0,
    `nothing acknowledged: nothing tested\n${explain(r)}`,
  );
  assert.ok(
    Number(fig('peer messages acknowledged')?.value) > 0,
    `nothing acknowledged: nothing tested\n${explain(r)}`,
  );
  assert.equal(fig('acknowledged snippets lost')?.value, 0, explain(r));
  assert.equal(fig('acknowledged peer messages lost')?.value, 0, explain(r));
});
