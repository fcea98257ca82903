import assert from 'node:assert/strict';
import { it } from 'node:test';
import faults from '../../bench/profiles/faults.js';
import { explain, runSmoke } from './smoke-context.js';

/** Smoke run of `linus bench faults`: correctness only (the profile cleans up its processes on every path). */
it('faults: every answered turn ends with tts stop, faults are counted, sessions stay usable', async () => {
  const r = await runSmoke(faults, 120_000);
  const fig = (prefix: string) => r.figures.find((f) => f.name.startsWith(prefix));
  assert.ok(r.ok, explain(r));
  assert.equal(fig('answered turns that ended with tts stop')?.met, true, explain(r));
  assert.equal(fig('stuck sessions')?.value, 0, explain(r));
  assert.equal(fig('server crashed')?.value, 'no', explain(r));
  for (const kind of [
    'ASR faults counted',
    'TTS faults counted',
    'LLM + ASR faults → failed turns',
    'voice turns the server left unanswered',
    'voice turns answered with the fallback sentence',
    'clean turn after the faults',
  ]) {
    assert.equal(fig(kind)?.met, true, `${kind}\n${explain(r)}`);
  }
});
