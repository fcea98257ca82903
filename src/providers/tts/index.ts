import { blockString } from '../block.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { TtsProvider } from '../types.js';
import { createEspeakTts } from './espeak.js';
import { createFliteTts } from './flite.js';
import { createOpenAiTts } from './openai.js';

/** `TTS.<alias>` types and their constructors. */
const TTS_TYPES: Record<string, (alias: string, block: ProviderBlock) => TtsProvider> = {
  openai: createOpenAiTts,
  flite: createFliteTts,
  espeak: createEspeakTts,
  'espeak-ng': createEspeakTts,
  espeak_ng: createEspeakTts,
};
export const ttsTypes = Object.keys(TTS_TYPES);

/** `TTS.<alias>` block → provider, by `type`. */
export function createTts(alias: string, block: ProviderBlock): TtsProvider {
  const where = `TTS.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  const create = TTS_TYPES[type];
  if (!create)
    throw new ProviderError(where, 'config', `${where}.type "${type}" is not supported (use ${ttsTypes.join(', ')})`);
  return create(alias, block);
}
