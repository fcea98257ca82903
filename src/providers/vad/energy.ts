/**
 * A cheap VAD without a model: the RMS level of each 512-sample window, mapped to a pseudo-probability
 * that goes through the same decision as Silero (dual threshold, 3 of 5 windows, min silence).
 *
 * p rises linearly from 0 at `threshold_db` − 10 dB to 1 at `threshold_db` + 10 dB, so p = 0.5 (the default
 * `threshold`) at `threshold_db` and p = 0.3 (the default `threshold_low`) 4 dB below it. It cannot tell
 * speech from other loud sound: use it where the room is quiet, or when the model cannot load.
 */
import { z } from 'zod';
import {
  createWindowedDetector,
  parseVadThresholds,
  singleStream,
  type BatchWindowModel,
} from '../../voice/vad-decision.js';
import { ProviderError } from '../types.js';
import type { VadDetector, VadProvider } from '../types.js';

const DEFAULT_THRESHOLD_DB = -45;
const SPAN_DB = 20;

const Keys = z.looseObject({
  threshold_db: z.preprocess(
    (v) => (v === '' || v === null || v === undefined ? DEFAULT_THRESHOLD_DB : typeof v === 'string' ? Number(v) : v),
    z.number().max(0),
  ),
});

/** dBFS of a window of samples in [-1, 1); -Infinity for digital silence. */
export function windowDb(window: Float32Array): number {
  let sum = 0;
  for (const x of window) sum += x * x;
  return 10 * Math.log10(sum / window.length);
}

/** The level model has no state of its own: every stream can share it. */
export function createEnergyModel(thresholdDb: number): BatchWindowModel<null> {
  const floorDb = thresholdDb - SPAN_DB / 2;
  return {
    createState: () => null,
    resetState() {},
    score: (_states, windows) => windows.map((w) => Math.min(1, Math.max(0, (windowDb(w) - floorDb) / SPAN_DB))),
    dispose() {},
  };
}

export function createEnergyVad(alias: string, block: Record<string, unknown>): VadProvider {
  const thresholds = parseVadThresholds(alias, block);
  const parsed = Keys.safeParse(block);
  if (!parsed.success) throw new ProviderError(alias, 'config', z.prettifyError(parsed.error));
  const thresholdDb = parsed.data.threshold_db;
  const model = createEnergyModel(thresholdDb);
  return {
    name: alias,
    spec: { kind: 'energy', alias, thresholdDb, thresholds },
    createDetector: (): VadDetector => createWindowedDetector(singleStream(model), thresholds),
    async dispose() {},
  };
}
