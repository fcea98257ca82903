import { blockString } from '../block.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { TtsProvider } from '../types.js';
import { createEspeakTts } from './espeak.js';
import { createFliteTts } from './flite.js';
import { createOpenAiTts } from './openai.js';

/** `TTS.<alias>` block → provider, by `type`. */
export function createTts(alias: string, block: ProviderBlock): TtsProvider {
  const where = `TTS.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  switch (type) {
    case 'openai':
      return createOpenAiTts(alias, block);
    case 'flite':
      return createFliteTts(alias, block);
    case 'espeak':
    case 'espeak-ng':
    case 'espeak_ng':
      return createEspeakTts(alias, block);
    default:
      throw new ProviderError(
        where,
        'config',
        `${where}.type "${type}" is not supported (use openai, flite or espeak)`,
      );
  }
}
