import { ProviderError } from '../types.js';
import type { LlmProvider } from '../types.js';
import { blockString } from '../block.js';
import { createOpenAiLlm } from './openai.js';
import type { ProviderBlock } from '../block.js';

/**
 * LLM types that speak OpenAI chat completions, with the endpoint used when the block gives none
 * ('' = the block must name one). The reference uses `type: openai` with a URL for most of them; the
 * vendor names are accepted too so that a block can just say what it is.
 */
const OPENAI_COMPATIBLE: Record<string, string> = {
  openai: 'https://api.openai.com/v1',
  deepseek: 'https://api.deepseek.com',
  qwen: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
  aliyun: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
  chatglm: 'https://open.bigmodel.cn/api/paas/v4',
  doubao: 'https://ark.cn-beijing.volces.com/api/v3',
  gemini: 'https://generativelanguage.googleapis.com/v1beta/openai',
  lmstudio: 'http://localhost:1234/v1',
  vllm: '',
  ollama: 'http://localhost:11434',
  xinference: 'http://localhost:9997',
};

export const llmTypes = Object.keys(OPENAI_COMPATIBLE);

/** Servers whose OpenAI-compatible API lives under /v1 while the reference's blocks give the bare server URL. */
const V1_SUFFIXED = new Set(['ollama', 'xinference']);

export function createLlm(alias: string, block: ProviderBlock): LlmProvider {
  const where = `LLM.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  const defaultBaseUrl = OPENAI_COMPATIBLE[type];
  if (defaultBaseUrl === undefined) {
    throw new ProviderError(
      where,
      'config',
      `${where}.type "${type}" is not supported (use one of: ${llmTypes.join(', ')})`,
    );
  }
  if (!V1_SUFFIXED.has(type)) return createOpenAiLlm(alias, block, { defaultBaseUrl });
  const base = (blockString(block, where, ['base_url', 'url', 'api_url', 'baseURL']) ?? defaultBaseUrl).replace(
    /\/+$/,
    '',
  );
  return createOpenAiLlm(alias, { ...block, base_url: /\/v1$/.test(base) ? base : `${base}/v1` });
}
