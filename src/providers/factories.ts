import { createAsr } from './asr/index.js';
import { createLlm } from './llm/index.js';
import { withAsrDeadline, withLlmDeadline, withTtsDeadline } from './deadlines.js';
import type { ProviderFactories } from './registry.js';
import { createTts } from './tts/index.js';
import { ProviderError, type VadProvider } from './types.js';
import { createEnergyVad } from './vad/energy.js';
import { createVllm } from './vllm/index.js';
import { createSileroVad } from './vad/silero.js';

/** `VAD.<alias>` types and their constructors (webrtc, the reference's other VAD, gets the energy detector). */
const VAD_TYPES: Record<string, (alias: string, block: Record<string, unknown>) => VadProvider> = {
  silero: createSileroVad,
  energy: createEnergyVad,
  webrtc: createEnergyVad,
};
export const vadTypes = Object.keys(VAD_TYPES);

function createVad(alias: string, block: Record<string, unknown>): VadProvider {
  const type = String(block.type ?? '').toLowerCase();
  const create = VAD_TYPES[type];
  if (!create)
    throw new ProviderError(
      `VAD.${alias}`,
      'config',
      `VAD.${alias}.type "${type}" is not supported (use silero or energy)`,
    );
  return create(alias, block);
}

/**
 * The concrete provider constructors, by kind; the registry builds instances through these. Every LLM, ASR and
 * TTS gets its time-to-first-result deadline here, whatever its type.
 */
export function createProviderFactories(): ProviderFactories {
  return {
    asr: (alias, block) => withAsrDeadline(createAsr(alias, block), alias, block),
    llm: (alias, block) => withLlmDeadline(createLlm(alias, block), alias, block),
    tts: (alias, block) => withTtsDeadline(createTts(alias, block), alias, block),
    vad: createVad,
    vllm: createVllm,
  };
}
