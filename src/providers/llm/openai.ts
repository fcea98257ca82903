import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { stripThink, ThinkFilter } from '../../voice/think-filter.js';
import { callSignal, ProviderError } from '../types.js';
import type { CallOptions, ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolCall } from '../types.js';

/** A provider block from the config (`LLM.<alias>`, `ASR.<alias>`, `TTS.<alias>`): free-form, checked here. */
export type ProviderBlock = Record<string, unknown>;

// ---------------------------------------------------------------- helpers shared by the OpenAI-compatible providers

/** The first of `keys` set in the block (the reference spells the same setting several ways), as a string. */
export function blockString(block: ProviderBlock, where: string, keys: string[]): string | undefined {
  for (const key of keys) {
    const v = block[key];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'string') return v.trim();
    if (typeof v === 'number') return String(v);
    throw new ProviderError(where, 'config', `${where}.${key} must be a string`);
  }
  return undefined;
}

/** Like blockString, for numbers; numeric strings are accepted because some config sources only carry strings. */
export function blockNumber(block: ProviderBlock, where: string, keys: string[]): number | undefined {
  for (const key of keys) {
    const v = block[key];
    if (v === undefined || v === null || v === '') continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new ProviderError(where, 'config', `${where}.${key} must be a number`);
    return n;
  }
  return undefined;
}

/**
 * An OpenAI SDK client for the block's endpoint. The reference's TTS blocks give the full endpoint
 * (`api_url: https://api.openai.com/v1/audio/speech`), so a trailing endpoint path is cut off to get the base URL.
 * Retries are off: a turn has a deadline, and the caller decides what to do on failure.
 */
export function openAiClient(block: ProviderBlock, where: string, defaultBaseUrl = 'https://api.openai.com/v1'): OpenAI {
  const given = blockString(block, where, ['base_url', 'url', 'api_url', 'baseURL']);
  const baseURL = (given ?? defaultBaseUrl).replace(/\/+$/, '').replace(/\/(chat\/completions|audio\/speech|audio\/transcriptions)$/, '');
  if (!baseURL) throw new ProviderError(where, 'config', `${where}.base_url is required`);
  const apiKey = blockString(block, where, ['api_key']);
  // The reference's sample config ships placeholders such as "你的api_key" ("your api_key").
  if (apiKey?.includes('你的')) throw new ProviderError(where, 'config', `${where}.api_key is still the sample placeholder`);
  if (!apiKey && /^https:\/\/api\.openai\.com\//.test(baseURL)) {
    throw new ProviderError(where, 'config', `${where}.api_key is required for ${baseURL}`);
  }
  // Local servers (ollama, vLLM, whisper servers) ignore the key, but the SDK insists on one.
  return new OpenAI({ baseURL, apiKey: apiKey || 'none', maxRetries: 0 });
}

/** The error a caller sees when its own signal aborted the call: not a provider failure. */
export function abortError(): Error {
  return new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Turns whatever the SDK or fetch threw into a ProviderError (or an AbortError when the caller aborted).
 * `signal` is the call's combined signal: aborted while the caller's is not means the deadline passed.
 */
export function toProviderError(provider: string, err: unknown, opts: CallOptions, signal: AbortSignal): Error {
  if (err instanceof ProviderError) return err;
  if (opts.signal.aborted) return abortError();
  if (signal.aborted || err instanceof APIConnectionTimeoutError) {
    return new ProviderError(provider, 'timeout', `no answer within ${opts.timeoutMs ?? '?'} ms`, { cause: err });
  }
  if (err instanceof APIConnectionError) {
    const cause = err.cause as { code?: string; cause?: { code?: string } } | undefined;
    const code = cause?.code ?? cause?.cause?.code ?? '';
    return new ProviderError(provider, 'network', `connection failed${code ? ` (${code})` : ''}: ${err.message}`, { cause: err });
  }
  if (err instanceof APIError && err.status !== undefined) {
    return new ProviderError(provider, 'http', `HTTP ${err.status}: ${err.message}`, { cause: err });
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new ProviderError(provider, 'timeout', `aborted: ${err.message}`, { cause: err });
  }
  // Failures while reading a response body (socket reset mid-stream) surface as plain errors.
  return new ProviderError(provider, 'network', err instanceof Error ? err.message : String(err), { cause: err });
}

/** One signal for a call: the caller's signal, its deadline, and a local controller that ends the request early. */
export function callSignals(opts: CallOptions): { signal: AbortSignal; deadline: AbortSignal; local: AbortController } {
  const deadline = callSignal(opts);
  const local = new AbortController();
  return { signal: AbortSignal.any([deadline, local.signal]), deadline, local };
}

// ---------------------------------------------------------------- the LLM provider

type OaMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

function toOpenAiMessage(m: ChatMessage): OaMessage {
  if (m.role === 'assistant' && m.tool_calls?.length) {
    return {
      role: 'assistant',
      content: m.content,
      tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
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
      ? { tools: req.tools.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.parameters } })) }
      : {}),
    ...((req.maxTokens ?? maxTokens) !== undefined ? { max_tokens: req.maxTokens ?? maxTokens } : {}),
    ...((req.temperature ?? temperature) !== undefined ? { temperature: req.temperature ?? temperature } : {}),
  });
  const withTimeout = (req: LlmRequest): CallOptions => ({ signal: req.signal, timeoutMs: req.timeoutMs ?? blockTimeout });

  return {
    name: alias,
    model,

    async *stream(req: LlmRequest): AsyncGenerator<LlmEvent> {
      const opts = withTimeout(req);
      const { signal, deadline, local } = callSignals(opts);
      const think = new ThinkFilter();
      const calls: ToolCall[] = [];
      try {
        const stream = await client.chat.completions.create({ ...body(req), stream: true }, { signal });
        for await (const chunk of stream) {
          const delta = chunk.choices[0]?.delta;
          if (!delta) continue;
          if (delta.content) {
            const text = think.push(delta.content);
            if (text) yield { type: 'text', text };
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
