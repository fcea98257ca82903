import { blockNumber, blockString, type ProviderBlock } from '../block.js';
import { jsonBody, openAiEndpoint, toProviderError } from '../openai-common.js';
import { stripThink } from '../../voice/think-filter.js';
import { callSignal, ProviderError, type CallOptions, type VllmProvider } from '../types.js';

/** Used when neither the block (`timeout_ms`) nor the caller sets a deadline. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** `VLLM.<alias>` block → provider. `openai`: an OpenAI-compatible chat model that takes an image part. */
export function createVllm(alias: string, block: ProviderBlock): VllmProvider {
  const where = `VLLM.${alias}`;
  const type = (blockString(block, where, ['type']) ?? '').toLowerCase();
  if (type !== 'openai') {
    throw new ProviderError(where, 'config', `${where}.type "${type}" is not supported (use openai)`);
  }
  const model = blockString(block, where, ['model_name', 'model']);
  if (!model) throw new ProviderError(where, 'config', `${where}.model_name is required`);
  const endpoint = openAiEndpoint(block, where);
  const maxTokens = blockNumber(block, where, ['max_tokens']);
  const blockTimeout = blockNumber(block, where, ['timeout_ms']);
  return {
    name: alias,
    async explain(req) {
      const opts: CallOptions = { signal: req.signal, timeoutMs: blockTimeout ?? req.timeoutMs ?? DEFAULT_TIMEOUT_MS };
      const signal = callSignal(opts);
      try {
        const res = (await endpoint.json(
          '/chat/completions',
          jsonBody({
            model,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: req.question },
                  {
                    type: 'image_url',
                    image_url: { url: `data:${req.mimeType};base64,${req.image.toString('base64')}` },
                  },
                ],
              },
            ],
            ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
            stream: false,
          }),
          signal,
        )) as { choices?: Array<{ message?: { content?: string | null } }> };
        return stripThink(res.choices?.[0]?.message?.content ?? '');
      } catch (err) {
        throw toProviderError(alias, err, opts, signal);
      }
    },
    async dispose() {},
  };
}
