import assert from 'node:assert/strict';
import { it } from 'node:test';
import { FUZZ_CLASSES } from '../../bench/fuzz-shared.js';
import fuzz from '../../bench/profiles/fuzz.js';
import { explain, runSmoke } from './smoke-context.js';

/** Smoke run of `linus bench fuzz`: the server survives and counts every class of bad frame it received. */
it('fuzz: no crash, a good device is still served, every bad frame counted under its class', async () => {
  const r = await runSmoke(fuzz, 90_000);
  const fig = (prefix: string) => r.figures.find((f) => f.name.startsWith(prefix));
  assert.ok(r.ok, explain(r));
  assert.equal(fig('server crashed')?.value, 'no', explain(r));
  assert.equal(fig('a well-formed device')?.met, true, explain(r));
  for (const cls of Object.keys(FUZZ_CLASSES)) {
    const f = fig(`${cls}: counted / sent`);
    const [counted, sent] = String(f?.value).split(' / ').map(Number);
    assert.ok(sent! > 0, `no ${cls} frame was sent\n${explain(r)}`);
    assert.equal(counted, sent, `${cls}\n${explain(r)}`);
  }
});
