import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProviderError } from '../providers/types.js';
import {
  createWindowedDetector,
  parseVadThresholds,
  VadDecider,
  VAD_WINDOW_SAMPLES,
  type WindowModel,
} from './vad-decision.js';

const CFG = { threshold: 0.5, thresholdLow: 0.3, minSilenceMs: 700 };
const W = 32; // ms per window

/** Runs probabilities through a decider, one window each, and returns the verdicts. */
function feed(decider: VadDecider, probs: number[], startWindow = 0) {
  return probs.map((p, i) => decider.update(p, (startWindow + i + 1) * W));
}

describe('VadDecider', () => {
  it('applies the dual threshold: the band between them keeps the previous state', () => {
    const v = feed(new VadDecider(CFG), [0.4, 0.5, 0.4, 0.31, 0.3, 0.45, 0.9, 0.2]).map((x) => x.voice);
    assert.deepEqual(v, [false, true, true, true, false, false, true, false]);
  });

  it('speaks when 3 of the last 5 windows are voice', () => {
    const s = feed(new VadDecider(CFG), [1, 0, 1, 0, 1, 1, 0, 0, 0, 0]).map((x) => x.speaking);
    assert.deepEqual(s, [false, false, false, false, true, true, true, false, false, false]);
  });

  it('ends the utterance once, min_silence after the last speaking window', () => {
    const d = new VadDecider(CFG);
    const talk = feed(d, Array(20).fill(0.9));
    assert.ok(talk.every((x, i) => x.speaking === i >= 2 && !x.endOfUtterance));
    const quiet = feed(d, Array(40).fill(0.1), 20);
    // Speaking lasts while 3 of 5 windows are voice: windows 21 and 22 still speak; the last speaking one ends at 22 × 32 ms.
    const endAt = quiet.findIndex((x) => x.endOfUtterance);
    assert.equal((20 + endAt + 1) * W, 22 * W + Math.ceil(700 / W) * W);
    assert.equal(quiet.filter((x) => x.endOfUtterance).length, 1);
  });

  it('never ends an utterance that never spoke (two voice windows are a blip)', () => {
    const v = feed(new VadDecider(CFG), [0.9, 0.9, 0.1, 0.1, ...Array(60).fill(0)]);
    assert.ok(v.every((x) => !x.speaking && !x.endOfUtterance));
  });

  it('voice in the middle of the silence postpones the end', () => {
    const d = new VadDecider(CFG);
    feed(d, Array(10).fill(0.9));
    const v = feed(d, [...Array(15).fill(0), ...Array(3).fill(0.9), ...Array(40).fill(0)], 10);
    const ends = v.flatMap((x, i) => (x.endOfUtterance ? [i] : []));
    assert.equal(ends.length, 1);
    assert.ok((ends[0] ?? 0) > 18 + 20, `ended at window ${ends[0]}`);
  });

  it('reset forgets everything', () => {
    const d = new VadDecider(CFG);
    feed(d, Array(5).fill(0.9));
    d.reset();
    assert.deepEqual(d.update(0.4, 32), { voice: false, speaking: false, endOfUtterance: false });
  });
});

/** A real (if crude) model: a window is speech when its mean absolute level is above 0.1. */
function levelModel(): WindowModel & { windows: number } {
  return {
    windows: 0,
    probability(w) {
      this.windows++;
      let sum = 0;
      for (const x of w) sum += Math.abs(x);
      return sum / w.length > 0.1 ? 1 : 0;
    },
    reset() {},
    dispose() {},
  };
}

function audio(loudWindows: number[], total: number): Int16Array {
  const out = new Int16Array(total * VAD_WINDOW_SAMPLES);
  for (const w of loudWindows) out.fill(10000, w * VAD_WINDOW_SAMPLES, (w + 1) * VAD_WINDOW_SAMPLES);
  return out;
}

describe('createWindowedDetector', () => {
  it('gives the same decisions whatever the chunk size', () => {
    const pcm = audio([5, 6, 7, 8, 9, 10, 11, 12], 60);
    const decisionsWith = (chunk: number) => {
      const model = levelModel();
      const det = createWindowedDetector(model, CFG);
      const events: string[] = [];
      let wasSpeaking = false;
      for (let at = 0; at < pcm.length; at += chunk) {
        const d = det.process(pcm.subarray(at, at + chunk));
        const t = Math.floor(Math.min(at + chunk, pcm.length) / VAD_WINDOW_SAMPLES);
        if (d.speaking && !wasSpeaking) events.push(`start@${t}`);
        if (d.endOfUtterance) events.push(`end@${t}`);
        wasSpeaking = d.speaking;
      }
      assert.equal(model.windows, 60);
      return events;
    };
    const exact = decisionsWith(VAD_WINDOW_SAMPLES);
    assert.deepEqual(exact, ['start@8', 'end@37']); // last speaking window ends at 480 ms; 480 + 700 ≤ 37 × 32
    assert.deepEqual(decisionsWith(7), exact);
    assert.deepEqual(decisionsWith(VAD_WINDOW_SAMPLES * 3), ['start@9', 'end@39']); // coarser chunks see it at their end
  });

  it('reports speaking from the last window when a chunk holds no full window', () => {
    const det = createWindowedDetector(levelModel(), CFG);
    assert.equal(det.process(audio([0, 1, 2], 3)).speaking, true);
    assert.equal(det.process(new Int16Array(100)).speaking, true);
    det.reset();
    assert.equal(det.process(new Int16Array(100)).speaking, false);
    det.dispose();
    assert.throws(() => det.process(new Int16Array(1)), /dispose/);
  });
});

describe('parseVadThresholds', () => {
  it('reads the reference keys, numbers given as strings, and defaults for empty values', () => {
    assert.deepEqual(parseVadThresholds('v', {}), CFG);
    assert.deepEqual(
      parseVadThresholds('v', { threshold: '0.6', threshold_low: '', min_silence_duration_ms: 200, model_dir: 'x' }),
      {
        threshold: 0.6,
        thresholdLow: 0.3,
        minSilenceMs: 200,
      },
    );
  });

  it('rejects impossible values with the alias', () => {
    assert.throws(
      () => parseVadThresholds('SileroVAD', { threshold: 'high' }),
      (e: unknown) => e instanceof ProviderError && e.kind === 'config' && /SileroVAD/.test(e.message),
    );
    assert.throws(() => parseVadThresholds('v', { threshold: 0.3, threshold_low: 0.5 }), /threshold_low/);
    assert.throws(() => parseVadThresholds('v', { min_silence_duration_ms: -1 }), /min_silence/);
  });
});
