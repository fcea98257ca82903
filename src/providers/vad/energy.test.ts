import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ProviderError } from '../types.js';
import { createEnergyVad, windowDb } from './energy.js';
import { concat, feed, flite, MIN_SILENCE_MS, noise, silence, speechSpan } from './vad-fixtures.js';

describe('energy VAD', () => {
  const vad = createEnergyVad('EnergyVAD', { threshold_db: -45, min_silence_duration_ms: MIN_SILENCE_MS });
  let sentence: Int16Array;
  let second: Int16Array;

  before(() => {
    sentence = flite('what is the weather like today');
    second = flite('please turn on the kitchen light');
  });

  it('finds one utterance: start within 150 ms, end min_silence after the speech', () => {
    const pcm = concat(silence(1), sentence, silence(1));
    const truth = speechSpan(pcm);
    const run = feed(vad.createDetector(), pcm);
    // A level detector may drop out for a moment inside the sentence; what counts is one end of utterance.
    assert.equal(run.ends.length, 1, `ends ${run.ends}`);
    const [start = NaN] = run.starts;
    const [end = NaN] = run.ends;
    assert.ok(Math.abs(start - truth.start) <= 150, `start ${start} ms, speech from ${truth.start} ms`);
    assert.ok(
      end - truth.end >= MIN_SILENCE_MS && end - truth.end <= MIN_SILENCE_MS + 250,
      `end ${end} ms, speech until ${truth.end} ms`,
    );
  });

  it('hears nothing in 3 s of silence or of low white noise', () => {
    for (const pcm of [silence(3), noise(3)]) {
      const run = feed(vad.createDetector(), pcm);
      assert.equal(run.everSpoke, false);
      assert.equal(run.ends.length, 0);
    }
  });

  it('finds two utterances in two sentences 1.5 s apart', () => {
    const run = feed(vad.createDetector(), concat(silence(1), sentence, silence(1.5), second, silence(1)));
    assert.equal(run.ends.length, 2, `ends ${run.ends}`);
    assert.ok((run.ends[0] ?? 0) < (run.starts.at(-1) ?? 0));
  });

  it('maps levels to probabilities around threshold_db', () => {
    const tone = (db: number) =>
      Float32Array.from({ length: 512 }, (_, i) => Math.SQRT2 * 10 ** (db / 20) * Math.sin(i / 3));
    assert.ok(Math.abs(windowDb(tone(-45)) + 45) < 0.1);
    assert.equal(windowDb(new Float32Array(512)), -Infinity);
    const quiet = createEnergyVad('e', { threshold_db: '-30' });
    const det = quiet.createDetector();
    const pcm = Int16Array.from({ length: 16000 }, (_, i) =>
      Math.round(32768 * Math.SQRT2 * 10 ** (-40 / 20) * Math.sin(i / 3)),
    );
    assert.equal(det.process(pcm).speaking, false); // -40 dBFS is below a -30 dB threshold
    assert.equal(vad.createDetector().process(pcm).speaking, true); // and above the default -45
    assert.throws(
      () => createEnergyVad('e', { threshold_db: 'loud' }),
      (e: unknown) => e instanceof ProviderError && e.kind === 'config',
    );
  });
});
