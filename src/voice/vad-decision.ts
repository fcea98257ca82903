/**
 * The reference server's VAD decision (xiaozhi-server core/providers/vad/silero.py), shared by every VAD
 * provider: a provider only turns each 32 ms window (512 samples at 16 kHz) into a speech probability.
 *
 * - p ≥ threshold → voice; p ≤ threshold_low → silence; in between → the previous window's state.
 * - "have voice" (speaking) = at least 3 of the last 5 windows are voice.
 * - end of utterance = voice was seen, the current window does not have voice, and the time since the last
 *   window that had voice is ≥ min_silence_duration_ms.
 *
 * Difference from the reference: time is the audio clock (samples processed), not the wall clock, so the
 * decision does not depend on network jitter or on how frames are batched, and tests are deterministic.
 */
import { z } from 'zod';
import { ProviderError } from '../providers/types.js';
import type { VadDecision, VadDetector, VadThresholds } from '../providers/types.js';

export const VAD_SAMPLE_RATE = 16000;
export const VAD_WINDOW_SAMPLES = 512;
const WINDOW_MS = (VAD_WINDOW_SAMPLES * 1000) / VAD_SAMPLE_RATE;
/** The reference's `frame_window_threshold` and the length of its voice window. */
const VOICE_WINDOWS = 5;
const VOICE_WINDOWS_NEEDED = 3;

export interface WindowVerdict {
  /** This window alone, after the dual threshold. */
  voice: boolean;
  /** Smoothed: 3 of the last 5 windows are voice. */
  speaking: boolean;
  endOfUtterance: boolean;
}

/** The decision state of one stream (one session). Pure: feed it probabilities and audio times. */
export class VadDecider {
  readonly #cfg: VadThresholds;
  #lastVoice = false;
  #recent: boolean[] = [];
  #seenVoice = false;
  #lastSpeakingMs = 0;

  constructor(cfg: VadThresholds) {
    this.#cfg = cfg;
  }

  /** `nowMs` is the audio time at the end of the window. */
  update(probability: number, nowMs: number): WindowVerdict {
    const { threshold, thresholdLow, minSilenceMs } = this.#cfg;
    const voice = probability >= threshold ? true : probability <= thresholdLow ? false : this.#lastVoice;
    this.#lastVoice = voice;
    this.#recent.push(voice);
    if (this.#recent.length > VOICE_WINDOWS) this.#recent.shift();
    const speaking = this.#recent.filter(Boolean).length >= VOICE_WINDOWS_NEEDED;
    let endOfUtterance = false;
    if (speaking) {
      this.#seenVoice = true;
      this.#lastSpeakingMs = nowMs;
    } else if (this.#seenVoice && nowMs - this.#lastSpeakingMs >= minSilenceMs) {
      endOfUtterance = true;
      // As the reference's reset_vad_states after an utterance: the next one needs new voice.
      this.#seenVoice = false;
    }
    return { voice, speaking, endOfUtterance };
  }

  reset(): void {
    this.#lastVoice = false;
    this.#recent = [];
    this.#seenVoice = false;
    this.#lastSpeakingMs = 0;
  }
}

/** A per-stream speech model: one probability per 512-sample window of 16 kHz audio in [-1, 1). */
export interface WindowModel {
  probability(window: Float32Array): number;
  /** See BatchWindowModel.skip. */
  skip?(window: Float32Array): void;
  reset(): void;
  dispose(): void;
}

/**
 * The pre-gate (issue #13): a window below -60 dBFS (a muted or digitally silent microphone) cannot be speech, so a
 * model that can skip windows is not run on it and the window counts as p = 0. Silero says ~0 on such windows anyway.
 */
const QUIET_MEAN_SQUARE = 1e-6;

/** Whether a window (samples in [-1, 1)) is quiet enough to skip the model. */
export function quietWindow(window: Float32Array): boolean {
  let sum = 0;
  for (let i = 0; i < window.length; i++) sum += window[i]! * window[i]!;
  return sum < QUIET_MEAN_SQUARE * window.length;
}

/**
 * A speech model that scores windows of many streams in one call: one ONNX run for a batch costs far less
 * than a run per window (Silero: ~120 µs for one window, ~55 µs per window in a batch of 16). The per-stream
 * state (`S`) lives with the stream; the model itself (the weights) is shared.
 */
export interface BatchWindowModel<S> {
  createState(): S;
  resetState(state: S): void;
  /** `windows[i]` belongs to `states[i]`; a stream appears at most once per call. */
  score(states: readonly S[], windows: readonly Float32Array[]): ArrayLike<number>;
  /**
   * Models that implement it are not run on quiet windows (quietWindow): this keeps what the stream needs to go on
   * as if the window had been scored (Silero: the last samples it prepends to the next window).
   */
  skip?(state: S, window: Float32Array): void;
  dispose(): void;
}

/** One stream of a batch model, as a WindowModel (batches of one). */
export function singleStream<S>(model: BatchWindowModel<S>): WindowModel {
  const state = model.createState();
  const skip = model.skip?.bind(model);
  return {
    probability: (window) => model.score([state], [window])[0] ?? 0,
    ...(skip ? { skip: (window: Float32Array) => skip(state, window) } : {}),
    reset: () => model.resetState(state),
    dispose() {},
  };
}

/**
 * A VadDetector from a window model: cuts any chunk size into 512-sample windows (carrying the rest over)
 * and runs each window through the decision.
 */
export function createWindowedDetector(model: WindowModel, cfg: VadThresholds): VadDetector {
  const decider = new VadDecider(cfg);
  const window = new Float32Array(VAD_WINDOW_SAMPLES);
  let filled = 0;
  let windows = 0;
  let speaking = false;
  let disposed = false;
  return {
    process(samples) {
      if (disposed) throw new Error('VAD detector used after dispose()');
      let endOfUtterance = false;
      for (let i = 0; i < samples.length; i++) {
        window[filled++] = (samples[i] ?? 0) / 32768;
        if (filled < VAD_WINDOW_SAMPLES) continue;
        filled = 0;
        windows++;
        let p = 0;
        if (model.skip && quietWindow(window)) model.skip(window);
        else p = model.probability(window);
        const verdict = decider.update(p, windows * WINDOW_MS);
        speaking = verdict.speaking;
        endOfUtterance ||= verdict.endOfUtterance;
      }
      return { speaking, endOfUtterance } satisfies VadDecision;
    },
    reset() {
      decider.reset();
      model.reset();
      filled = 0;
      windows = 0;
      speaking = false;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      model.dispose();
    },
  };
}

/** Reference configs may carry numbers as strings, or '' for "default". */
const num = (fallback: number) =>
  z.preprocess(
    (v) => (v === '' || v === null || v === undefined ? fallback : typeof v === 'string' ? Number(v) : v),
    z.number().finite(),
  );

const ThresholdKeys = z.looseObject({
  threshold: num(0.5),
  threshold_low: num(0.3),
  min_silence_duration_ms: num(700),
});

/** Reads `threshold`, `threshold_low` and `min_silence_duration_ms` from a `VAD.<alias>` block. */
export function parseVadThresholds(alias: string, block: Record<string, unknown>): VadThresholds {
  const parsed = ThresholdKeys.safeParse(block);
  if (!parsed.success) throw new ProviderError(alias, 'config', z.prettifyError(parsed.error));
  const { threshold, threshold_low: thresholdLow, min_silence_duration_ms: minSilenceMs } = parsed.data;
  if (!(threshold > 0 && threshold <= 1))
    throw new ProviderError(alias, 'config', `threshold must be in (0, 1], got ${threshold}`);
  if (!(thresholdLow >= 0 && thresholdLow <= threshold)) {
    throw new ProviderError(alias, 'config', `threshold_low must be in [0, threshold], got ${thresholdLow}`);
  }
  if (!(minSilenceMs >= 0))
    throw new ProviderError(alias, 'config', `min_silence_duration_ms must be ≥ 0, got ${minSilenceMs}`);
  return { threshold, thresholdLow, minSilenceMs };
}
