import { blockString } from '../block.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { AsrProvider } from '../types.js';
import { createFunAsr } from './funasr.js';
import { createOpenAiAsr } from './openai.js';
import { createPocketsphinxAsr } from './pocketsphinx.js';

/** `ASR.<alias>` types (the reference's names included) and their constructors. */
const ASR_TYPES: Record<string, (alias: string, block: ProviderBlock) => AsrProvider> = {
  openai: createOpenAiAsr,
  whisper: createOpenAiAsr,
  fun_server: createFunAsr,
  funasr_server: createFunAsr,
  funasr: createFunAsr,
  pocketsphinx: createPocketsphinxAsr,
  sphinx: createPocketsphinxAsr,
};
export const asrTypes = Object.keys(ASR_TYPES);

/** `ASR.<alias>` block → provider, by `type`. */
export function createAsr(alias: string, block: ProviderBlock): AsrProvider {
  const where = `ASR.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  const create = ASR_TYPES[type];
  if (!create)
    throw new ProviderError(where, 'config', `${where}.type "${type}" is not supported (use ${asrTypes.join(', ')})`);
  return create(alias, block);
}
