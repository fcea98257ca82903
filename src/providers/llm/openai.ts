import type OpenAI from 'openai';
import { blockNumber, blockString, type ProviderBlock } from '../block.js';
import { abortError, callSignals, openAiClient, toProviderError } from '../openai-common.js';
import { stripThink, ThinkFilter } from '../../voice/think-filter.js';
import { callSignal, ProviderError } from '../types.js';
import type { CallOptions, ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolCall } from '../types.js';

/** Every call has a deadline (D9): the block's `timeout_ms`, else the caller's, else this. */
const DEFAULT_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- the LLM provider

type OaMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

function toOpenAiMessage(m: ChatMessage): OaMessage {
  if (m.role === 'assistant' && m.tool_calls?.length) {
    return {
      role: 'assistant',
      content: m.content,
      tool_calls: m.tool_calls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
      })),
    };
  }
  if (m.role === 'assistant') return { role: 'assistant', content: m.content ?? '' };
  return m;
}

export interface OpenAiLlmOptions {
  /** Used when the block names no base URL (the endpoint of the type: deepseek, qwen...). */
  defaultBaseUrl?: string;
}

export function createOpenAiLlm(alias: string, block: ProviderBlock, options: OpenAiLlmOptions = {}): LlmProvider {
  const where = `LLM.${alias}`;
  const model = blockString(block, where, ['model_name', 'model']);
  if (!model) throw new ProviderError(where, 'config', `${where}.model_name is required`);
  const client = openAiClient(block, where, options.defaultBaseUrl);
  const maxTokens = blockNumber(block, where, ['max_tokens']);
  const temperature = blockNumber(block, where, ['temperature']);
  const blockTimeout = blockNumber(block, where, ['timeout_ms']);

  const body = (req: LlmRequest) => ({
    model,
    messages: req.messages.map(toOpenAiMessage),
    // An empty tools array is rejected by some compatible servers, so it is left out.
    ...(req.tools?.length
      ? {
          tools: req.tools.map((t) => ({
            type: 'function' as const,
            function: { name: t.name, description: t.description, parameters: t.parameters },
          })),
        }
      : {}),
    ...((req.maxTokens ?? maxTokens) !== undefined ? { max_tokens: req.maxTokens ?? maxTokens } : {}),
    ...((req.temperature ?? temperature) !== undefined ? { temperature: req.temperature ?? temperature } : {}),
  });
  const withTimeout = (req: LlmRequest): CallOptions => ({
    signal: req.signal,
    timeoutMs: blockTimeout ?? req.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });

  return {
    name: alias,
    model,

    async *stream(req: LlmRequest): AsyncGenerator<LlmEvent> {
      const opts = withTimeout(req);
      const { signal, deadline, local } = callSignals(opts);
      const think = new ThinkFilter();
      const calls: ToolCall[] = [];
      let handedOut = false;
      try {
        const stream = await client.chat.completions.create({ ...body(req), stream: true }, { signal });
        for await (const chunk of stream) {
          const delta = chunk.choices[0]?.delta;
          if (!delta) continue;
          if (delta.content) {
            const text = think.push(delta.content);
            if (text) {
              handedOut = true;
              yield { type: 'text', text };
              handedOut = false;
            }
          }
          if (delta.tool_calls?.length && !calls.length) {
            // Arguments can take as long as a spoken answer to stream: the answer began here, not at their end.
            handedOut = true;
            yield { type: 'tool_call_started' };
            handedOut = false;
          }
          for (const [i, d] of (delta.tool_calls ?? []).entries()) {
            // Deltas of one call share its index; the id and name come once, the arguments in pieces.
            const call = (calls[d.index ?? i] ??= { id: '', name: '', arguments: '' });
            if (d.id) call.id = d.id;
            if (d.function?.name && !call.name) call.name = d.function.name;
            if (d.function?.arguments) call.arguments += d.function.arguments;
          }
        }
        // The SDK ends the iteration quietly when its signal aborts; a cut answer must not look complete.
        if (signal.aborted) throw abortError();
      } catch (err) {
        // The consumer stopped while holding an event; closing the stream may fail, but that is no news to it.
        if (handedOut) return;
        throw toProviderError(alias, err, opts, deadline);
      } finally {
        // Also reached when the consumer stops iterating early: the HTTP request must not outlive it.
        local.abort();
      }
      const tail = think.end();
      if (tail) yield { type: 'text', text: tail };
      const done = calls.filter(Boolean).map((c, i) => ({ ...c, id: c.id || `call_${i}` }));
      if (done.length) yield { type: 'tool_calls', calls: done };
    },

    async complete(req: LlmRequest): Promise<string> {
      const opts = withTimeout(req);
      const signal = callSignal(opts);
      try {
        const res = await client.chat.completions.create({ ...body(req), stream: false }, { signal });
        return stripThink(res.choices[0]?.message.content ?? '');
      } catch (err) {
        throw toProviderError(alias, err, opts, signal);
      }
    },

    async dispose(): Promise<void> {},
  };
}
