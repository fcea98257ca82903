import { blockString } from '../block.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { AsrProvider } from '../types.js';
import { createFunAsr } from './funasr.js';
import { createOpenAiAsr } from './openai.js';
import { createPocketsphinxAsr } from './pocketsphinx.js';

/** `ASR.<alias>` block → provider, by `type` (the reference's names included). */
export function createAsr(alias: string, block: ProviderBlock): AsrProvider {
  const where = `ASR.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  switch (type) {
    case 'openai':
    case 'whisper':
      return createOpenAiAsr(alias, block);
    case 'fun_server':
    case 'funasr_server':
    case 'funasr':
      return createFunAsr(alias, block);
    case 'pocketsphinx':
    case 'sphinx':
      return createPocketsphinxAsr(alias, block);
    default:
      throw new ProviderError(
        where,
        'config',
        `${where}.type "${type}" is not supported (use openai, whisper, fun_server or pocketsphinx)`,
      );
  }
}
