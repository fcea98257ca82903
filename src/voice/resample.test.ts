import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { concatPcm } from './pcm.js';
import { createResampler, type Resampler } from './resample.js';
import { readWav } from './wav.js';

function sine(freq: number, rate: number, seconds: number, amplitude = 16000): Int16Array {
  return Int16Array.from({ length: Math.round(rate * seconds) }, (_, i) =>
    Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate)),
  );
}

function rms(x: Int16Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += (x[i] ?? 0) ** 2;
  return Math.sqrt(sum / (to - from));
}

function zeroCrossings(x: Int16Array, from: number, to: number): number {
  let n = 0;
  for (let i = from + 1; i < to; i++) if ((x[i - 1] ?? 0) < 0 !== (x[i] ?? 0) < 0) n++;
  return n;
}

/** Feeds `input` in chunks of the given sizes (cycled), then flushes. */
function run(r: Resampler, input: Int16Array, sizes: number[]): Int16Array {
  const parts: Int16Array[] = [];
  for (let at = 0, k = 0; at < input.length; k++) {
    const n = sizes[k % sizes.length] ?? 1;
    parts.push(r.push(input.subarray(at, at + n)));
    at += n;
  }
  parts.push(r.flush());
  return concatPcm(parts);
}

const PAIRS: Array<[number, number]> = [
  [16000, 24000],
  [22050, 24000],
  [24000, 16000],
  [22050, 16000],
  [48000, 16000],
];

describe('createResampler', () => {
  for (const [from, to] of PAIRS) {
    it(`${from} → ${to}: a 1 kHz sine keeps its frequency and amplitude`, () => {
      const seconds = 2;
      const out = run(createResampler(from, to), sine(1000, from, seconds), [Math.round(from * 0.06)]);
      assert.equal(out.length, Math.ceil((from * seconds * to) / from));
      // Skip the edges, where the sine starts and stops abruptly.
      const a = Math.round(0.1 * to);
      const b = out.length - a;
      const expectedCrossings = (2 * 1000 * (b - a)) / to;
      assert.ok(
        Math.abs(zeroCrossings(out, a, b) - expectedCrossings) <= 2,
        `crossings ${zeroCrossings(out, a, b)} vs ${expectedCrossings}`,
      );
      const inRms = 16000 / Math.SQRT2;
      assert.ok(Math.abs(rms(out, a, b) / inRms - 1) < 0.01, `rms ${rms(out, a, b)} vs ${inRms}`);
    });
  }

  it('the output is what an ideal resampler gives (sample-exact sine at the new rate)', () => {
    const out = run(createResampler(22050, 24000), sine(1000, 22050, 1), [1323]);
    const ideal = sine(1000, 24000, 1);
    let maxErr = 0;
    for (let i = 2400; i < 21600; i++) maxErr = Math.max(maxErr, Math.abs((out[i] ?? 0) - (ideal[i] ?? 0)));
    assert.ok(maxErr < 16000 * 0.002, `max error ${maxErr}`); // better than -54 dB: no delay, no phase shift
  });

  it('is band-limited: a tone above the new Nyquist is removed, not aliased', () => {
    const out = run(createResampler(24000, 16000), sine(10000, 24000, 1), [1440]);
    const a = 1600;
    assert.ok(rms(out, a, out.length - a) < 16000 * 0.001, `alias rms ${rms(out, a, out.length - a)}`); // < -60 dB
  });

  it('keeps the length exact over many odd chunks (no drift)', () => {
    for (const [from, to] of PAIRS) {
      const r = createResampler(from, to);
      const input = sine(440, from, 0.01);
      let inTotal = 0;
      let outTotal = 0;
      for (let k = 0; k < 3000; k++) {
        const chunk = input.subarray(0, 1 + ((k * 37) % input.length));
        inTotal += chunk.length;
        outTotal += r.push(chunk).length;
        // While streaming, the output lags by at most the filter's look-ahead.
        const ideal = (inTotal * to) / from;
        assert.ok(
          outTotal <= Math.ceil(ideal) && outTotal >= ideal - (60 * to) / from - 2,
          `${from}→${to}: ${outTotal} vs ${ideal}`,
        );
      }
      outTotal += r.flush().length;
      assert.equal(outTotal, Math.ceil((inTotal * to) / from), `${from}→${to}`);
    }
  });

  it('chunked output equals one-shot output', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linus-resample-'));
    try {
      const file = join(dir, 'x.wav');
      execFileSync('espeak-ng', ['-w', file, 'the quick brown fox jumps over the lazy dog']);
      const speech = readWav(readFileSync(file));
      const oneShot = run(createResampler(speech.sampleRate, 16000), speech.samples, [speech.samples.length]);
      const chunked = run(createResampler(speech.sampleRate, 16000), speech.samples, [1, 7, 441, 1323, 50, 3000]);
      assert.deepEqual(chunked, oneShot);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts a new stream after flush()', () => {
    const r = createResampler(16000, 24000);
    const first = run(r, sine(1000, 16000, 0.5), [960]);
    const second = run(r, sine(1000, 16000, 0.5), [960]);
    assert.deepEqual(second, first);
  });

  it('is a pass-through at the same rate', () => {
    const r = createResampler(16000, 16000);
    const x = sine(1000, 16000, 0.06);
    assert.equal(r.push(x), x);
    assert.equal(r.flush().length, 0);
  });

  it('rejects bad rates and use after dispose', () => {
    assert.throws(() => createResampler(0, 16000), RangeError);
    assert.throws(() => createResampler(16000, 22050.5), RangeError);
    const r = createResampler(16000, 24000);
    r.dispose();
    assert.throws(() => r.push(new Int16Array(10)), /dispose/);
  });
});
