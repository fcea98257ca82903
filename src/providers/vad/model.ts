import type { VadSpec } from '../types.js';
import type { BatchWindowModel } from '../../voice/vad-decision.js';
import { createEnergyModel } from './energy.js';
import { createSileroModel } from './silero.js';

/** The speech model a VadSpec describes, built on the calling thread (an audio worker builds its own). */
export function createVadModel(spec: VadSpec): BatchWindowModel<unknown> {
  switch (spec.kind) {
    case 'silero':
      return createSileroModel(spec.alias, spec.modelPath) as BatchWindowModel<unknown>;
    case 'energy':
      return createEnergyModel(spec.thresholdDb) as BatchWindowModel<unknown>;
  }
}

/** Two specs with the same key can share one model (the weights); thresholds live per stream. */
export function vadModelKey(spec: VadSpec): string {
  return spec.kind === 'silero' ? `silero:${spec.modelPath}` : `energy:${spec.thresholdDb}`;
}
