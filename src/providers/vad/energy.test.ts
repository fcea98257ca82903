import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { readWav } from '../../voice/wav.js';
import { ProviderError } from '../types.js';
import type { VadDetector } from '../types.js';
import { createEnergyVad, windowDb } from './energy.js';

const RATE = 16000;
const CHUNK = 960; // 60 ms, one device frame
const MIN_SILENCE_MS = 700;

function flite(text: string): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'linus-vad-'));
  try {
    execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', join(dir, 'x.wav')]);
    const wav = readWav(readFileSync(join(dir, 'x.wav')));
    assert.equal(wav.sampleRate, RATE);
    return wav.samples;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const silence = (seconds: number) => new Int16Array(seconds * RATE);

/** Uniform noise at about -50 dBFS RMS, from a fixed seed. */
function noise(seconds: number): Int16Array {
  let seed = 12345;
  return Int16Array.from({ length: seconds * RATE }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.round((seed / 2 ** 31 - 0.5) * 2 * 180);
  });
}

function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Where the waveform is above -40 dB of its loudest 10 ms: the "true" speech spans, in ms. */
function speechSpan(pcm: Int16Array): { start: number; end: number } {
  const frame = RATE / 100;
  const levels: number[] = [];
  for (let at = 0; at + frame <= pcm.length; at += frame) {
    let sum = 0;
    for (let i = at; i < at + frame; i++) sum += (pcm[i] ?? 0) ** 2;
    levels.push(Math.sqrt(sum / frame));
  }
  const floor = Math.max(...levels) / 100;
  const loud = levels.flatMap((l, i) => (l > floor ? [i] : []));
  return { start: (loud[0] ?? 0) * 10, end: ((loud.at(-1) ?? 0) + 1) * 10 };
}

interface Run {
  /** Audio time (ms, end of the chunk) where speaking turned on, and where an utterance ended. */
  starts: number[];
  ends: number[];
  everSpoke: boolean;
}

function feed(det: VadDetector, pcm: Int16Array): Run {
  const run: Run = { starts: [], ends: [], everSpoke: false };
  let speaking = false;
  for (let at = 0; at < pcm.length; at += CHUNK) {
    const d = det.process(pcm.subarray(at, at + CHUNK));
    const t = (Math.min(at + CHUNK, pcm.length) * 1000) / RATE;
    if (d.speaking && !speaking) run.starts.push(t);
    if (d.endOfUtterance) run.ends.push(t);
    speaking = d.speaking;
    run.everSpoke ||= d.speaking;
  }
  return run;
}

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
    assert.ok(end - truth.end >= MIN_SILENCE_MS && end - truth.end <= MIN_SILENCE_MS + 250, `end ${end} ms, speech until ${truth.end} ms`);
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
    const tone = (db: number) => Float32Array.from({ length: 512 }, (_, i) => Math.SQRT2 * 10 ** (db / 20) * Math.sin(i / 3));
    assert.ok(Math.abs(windowDb(tone(-45)) + 45) < 0.1);
    assert.equal(windowDb(new Float32Array(512)), -Infinity);
    const quiet = createEnergyVad('e', { threshold_db: '-30' });
    const det = quiet.createDetector();
    const pcm = Int16Array.from({ length: 16000 }, (_, i) => Math.round(32768 * Math.SQRT2 * 10 ** (-40 / 20) * Math.sin(i / 3)));
    assert.equal(det.process(pcm).speaking, false); // -40 dBFS is below a -30 dB threshold
    assert.equal(vad.createDetector().process(pcm).speaking, true); // and above the default -45
    assert.throws(() => createEnergyVad('e', { threshold_db: 'loud' }), (e: unknown) => e instanceof ProviderError && e.kind === 'config');
  });
});
