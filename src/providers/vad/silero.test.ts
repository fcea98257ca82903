import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProviderError } from '../types.js';
import type { VadProvider } from '../types.js';
import { createWindowedDetector, singleStream, type WindowModel } from '../../voice/vad-decision.js';
import { createSileroModel, createSileroVad, resolveSileroModel } from './silero.js';
import {
  CHUNK,
  concat,
  feed,
  flite,
  MIN_SILENCE_MS,
  noise,
  RATE,
  silence,
  speechSpan,
  type Run,
} from './vad-fixtures.js';

describe('Silero VAD', () => {
  let vad: VadProvider;
  let sentence: Int16Array;
  let second: Int16Array;

  before(() => {
    vad = createSileroVad('SileroVAD', { threshold: 0.5, threshold_low: 0.3, min_silence_duration_ms: MIN_SILENCE_MS });
    sentence = flite('what is the weather like today');
    second = flite('please turn on the kitchen light');
  });
  after(() => vad.dispose());

  it('finds one utterance: start within 150 ms, end min_silence after the speech', () => {
    const pcm = concat(silence(1), sentence, silence(1));
    const truth = speechSpan(pcm);
    const det = vad.createDetector();
    const run = feed(det, pcm);
    det.dispose();
    assert.equal(run.starts.length, 1, `starts ${run.starts}`);
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
      const det = vad.createDetector();
      const run = feed(det, pcm);
      det.dispose();
      assert.equal(run.everSpoke, false);
      assert.equal(run.ends.length, 0);
    }
  });

  it('finds two utterances in two sentences 1.5 s apart', () => {
    const run = feed(vad.createDetector(), concat(silence(1), sentence, silence(1.5), second, silence(1)));
    assert.equal(run.starts.length, 2, `starts ${run.starts}`);
    assert.equal(run.ends.length, 2, `ends ${run.ends}`);
    assert.ok((run.ends[0] ?? 0) < (run.starts[1] ?? 0));
  });

  it('keeps the recurrent state per detector: interleaved sessions decide as if alone', () => {
    const a = concat(silence(1), sentence, silence(1));
    const b = concat(noise(1), second, silence(1.2));
    const alone = [feed(vad.createDetector(), a), feed(vad.createDetector(), b)];
    const da = vad.createDetector();
    const db = vad.createDetector();
    const both: Run[] = [
      { starts: [], ends: [], everSpoke: false },
      { starts: [], ends: [], everSpoke: false },
    ];
    const speaking = [false, false];
    for (let at = 0; at < Math.max(a.length, b.length); at += CHUNK) {
      [da, db].forEach((det, k) => {
        const pcm = k === 0 ? a : b;
        if (at >= pcm.length) return;
        const d = det.process(pcm.subarray(at, at + CHUNK));
        const t = (Math.min(at + CHUNK, pcm.length) * 1000) / RATE;
        const run = both[k] as Run;
        if (d.speaking && !speaking[k]) run.starts.push(t);
        if (d.endOfUtterance) run.ends.push(t);
        speaking[k] = d.speaking;
        run.everSpoke ||= d.speaking;
      });
    }
    assert.deepEqual(both, alone);
  });

  it('reset() starts a detector over', () => {
    const pcm = concat(silence(1), sentence, silence(1));
    const det = vad.createDetector();
    const first = feed(det, pcm.subarray(0, 1.5 * RATE)); // cut in the middle of the speech
    assert.equal(first.starts.length, 1);
    det.reset();
    assert.deepEqual(feed(det, pcm), feed(vad.createDetector(), pcm));
  });

  it('finds the model in model_dir or model_path, and says what is wrong otherwise', () => {
    const file = resolveSileroModel('v', {});
    assert.match(file, /models\/silero_vad_v5\.onnx$/);
    assert.equal(resolveSileroModel('v', { model_dir: join(file, '..') }), file);
    assert.equal(resolveSileroModel('v', { model_path: file }), file);
    assert.throws(
      () => resolveSileroModel('v', { model_dir: tmpdir() }),
      (e: unknown) => e instanceof ProviderError && e.kind === 'config',
    );
    assert.throws(() => createSileroVad('v', { model_path: '/nonexistent.onnx' }), /does not exist/);
  });

  it('the quiet-window pre-gate skips Silero on digital silence and changes no decision', () => {
    const model = createSileroModel('gate', resolveSileroModel('gate', {}));
    const thresholds = { threshold: 0.5, thresholdLow: 0.3, minSilenceMs: MIN_SILENCE_MS };
    let scored = 0;
    // The detector's own adapter (singleStream) over the model, with its scoring counted and its skip optional.
    const counting = (skips: boolean): WindowModel =>
      singleStream({
        createState: () => model.createState(),
        resetState: (state) => model.resetState(state),
        score: (states, windows) => ((scored += windows.length), model.score(states, windows)),
        ...(skips ? { skip: model.skip!.bind(model) } : {}),
        dispose() {},
      });
    const pcm = concat(silence(1), sentence, silence(1.5), second, silence(1), noise(1), silence(1));
    const decisions = (skips: boolean) => {
      scored = 0;
      const det = createWindowedDetector(counting(skips), thresholds);
      const out: string[] = [];
      for (let at = 0; at + CHUNK <= pcm.length; at += CHUNK) {
        const d = det.process(pcm.subarray(at, at + CHUNK));
        out.push(`${d.speaking ? 'S' : '.'}${d.endOfUtterance ? 'E' : ''}`);
      }
      return { verdicts: out.join(''), scored };
    };
    const all = decisions(false);
    const gated = decisions(true);
    model.dispose();
    assert.equal(gated.verdicts, all.verdicts);
    assert.equal(all.verdicts.split('E').length - 1, 2, all.verdicts);
    const windows = Math.floor((Math.floor(pcm.length / CHUNK) * CHUNK) / 512);
    assert.equal(all.scored, windows);
    // 5.5 s of digital silence ≈ 170 windows not scored; the -50 dBFS noise is scored.
    assert.ok(gated.scored < windows - 150, `${gated.scored} of ${windows} windows scored`);
    assert.ok(gated.scored > windows - 200, `${gated.scored} of ${windows} windows scored`);
  });

  it('refuses use after the provider is disposed', async () => {
    const own = createSileroVad('v', {});
    const det = own.createDetector();
    await own.dispose();
    assert.throws(() => own.createDetector(), /dispose/);
    assert.throws(() => det.process(new Int16Array(512)), /disposed/);
  });
});
