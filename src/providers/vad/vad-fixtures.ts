import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav } from '../../voice/wav.js';
import { concatPcm } from '../../voice/pcm.js';
import type { VadDetector } from '../types.js';

/** Audio fixtures and a feeder shared by the VAD provider tests. */
export const RATE = 16000;
export const CHUNK = 960; // 60 ms, one device frame
export const MIN_SILENCE_MS = 700;

export function flite(text: string): Int16Array {
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

export const silence = (seconds: number) => new Int16Array(seconds * RATE);

/** Uniform noise at about -50 dBFS RMS, from a fixed seed. */
export function noise(seconds: number): Int16Array {
  let seed = 12345;
  return Int16Array.from({ length: seconds * RATE }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.round((seed / 2 ** 31 - 0.5) * 2 * 180);
  });
}

export const concat = (...parts: Int16Array[]): Int16Array => concatPcm(parts);

/** Where the waveform is above -40 dB of its loudest 10 ms: the "true" speech spans, in ms. */
export function speechSpan(pcm: Int16Array): { start: number; end: number } {
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

export interface Run {
  /** Audio time (ms, end of the chunk) where speaking turned on, and where an utterance ended. */
  starts: number[];
  ends: number[];
  everSpoke: boolean;
}

export function feed(det: VadDetector, pcm: Int16Array): Run {
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
