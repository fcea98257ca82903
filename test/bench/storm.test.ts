import assert from 'node:assert/strict';
import { it } from 'node:test';
import storm from '../../bench/profiles/storm.js';
import { explain, runSmoke } from './smoke-context.js';

/** Smoke run of `linus bench storm`: correctness only; RSS is reported by the profile, never asserted. */
it('storm: handovers counted, replaced sockets closed, connections and fds back to the baseline', async () => {
  const r = await runSmoke(storm, 90_000);
  const fig = (prefix: string) => r.figures.find((f) => f.name.startsWith(prefix));
  assert.ok(r.ok, explain(r));
  for (const name of [
    'events that failed',
    'connections accepted',
    'handovers counted',
    'replaced sockets told and closed',
    'linus_connections / linus_devices after',
    'open fds',
    'server crashed',
    'a new device connects',
  ]) {
    assert.equal(fig(name)?.met, true, `${name}\n${explain(r)}`);
  }
});
