import { blockNumber, blockString, type ProviderBlock } from '../block.js';
import {
  abortError,
  callSignals,
  jsonBody,
  openAiEndpoint,
  ProtocolError,
  sseData,
  toProviderError,
} from '../openai-common.js';
import { stripThink, ThinkFilter } from '../../voice/think-filter.js';
import { callSignal, ProviderError } from '../types.js';
import type { CallOptions, ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolCall } from '../types.js';

/** Every call has a deadline (D9): the block's `timeout_ms`, else the caller's, else this. */
const DEFAULT_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- the LLM provider

/** The parts of the chat API's answers read here (a stream's chunks, a whole completion). */
interface ChatChunk {
  choices?: Array<{
    delta?: {
      content?: string | null;
      tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string; arguments?: string } }>;
    };
  }>;
  error?: { message?: string };
}
interface ChatCompletion {
  choices?: Array<{ message?: { content?: string | null } }>;
}

/** One event of the chat stream. A server that fails mid-answer may send an `error` object instead of a chunk. */
export function parseChatChunk(data: string): ChatChunk {
  let chunk: ChatChunk;
  try {
    chunk = JSON.parse(data) as ChatChunk;
  } catch (err) {
    throw new ProtocolError(`a stream event is not JSON: ${data.slice(0, 100)}`, { cause: err });
  }
  if (chunk.error) throw new ProtocolError(`the server sent an error mid-answer: ${chunk.error.message ?? '?'}`);
  return chunk;
}

function toOpenAiMessage(m: ChatMessage): Record<string, unknown> {
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
  const endpoint = openAiEndpoint(block, where, options.defaultBaseUrl);
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
        const res = await endpoint.post('/chat/completions', jsonBody({ ...body(req), stream: true }), signal);
        for await (const data of sseData(res)) {
          const delta = parseChatChunk(data).choices?.[0]?.delta;
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
        // Should a body ever end quietly on abort, a cut answer must still not look complete.
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
        const res = (await endpoint.json(
          '/chat/completions',
          jsonBody({ ...body(req), stream: false }),
          signal,
        )) as ChatCompletion;
        return stripThink(res.choices?.[0]?.message?.content ?? '');
      } catch (err) {
        throw toProviderError(alias, err, opts, signal);
      }
    },

    async dispose(): Promise<void> {},
  };
}
