import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { errorCode, errorMessage } from '../errors.js';
import { blockString, type ProviderBlock } from './block.js';
import { callSignal, ProviderError } from './types.js';
import type { CallOptions } from './types.js';
import { anySignal } from '../signals.js';

/** Helpers shared by the OpenAI-compatible providers (LLM, ASR, TTS): client set-up, error mapping, call signals. */

/**
 * An OpenAI SDK client for the block's endpoint. The reference's TTS blocks give the full endpoint
 * (`api_url: https://api.openai.com/v1/audio/speech`), so a trailing endpoint path is cut off to get the base URL.
 * Retries are off: a turn has a deadline, and the caller decides what to do on failure.
 */
export function openAiClient(
  block: ProviderBlock,
  where: string,
  defaultBaseUrl = 'https://api.openai.com/v1',
): OpenAI {
  const given = blockString(block, where, ['base_url', 'url', 'api_url', 'baseURL']);
  const baseURL = (given ?? defaultBaseUrl)
    .replace(/\/+$/, '')
    .replace(/\/(chat\/completions|audio\/speech|audio\/transcriptions)$/, '');
  if (!baseURL) throw new ProviderError(where, 'config', `${where}.base_url is required`);
  const apiKey = blockString(block, where, ['api_key']);
  // The reference's sample config ships placeholders such as "你的api_key" ("your api_key").
  if (apiKey?.includes('你的'))
    throw new ProviderError(where, 'config', `${where}.api_key is still the sample placeholder`);
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
    // fetch wraps the socket's error: its code is on the cause, or on the cause's cause.
    const cause = err.cause instanceof Error ? err.cause : undefined;
    const code = errorCode(cause) ?? errorCode(cause?.cause) ?? '';
    return new ProviderError(provider, 'network', `connection failed${code ? ` (${code})` : ''}: ${err.message}`, {
      cause: err,
    });
  }
  if (err instanceof APIError && err.status !== undefined) {
    return new ProviderError(provider, 'http', `HTTP ${err.status}: ${err.message}`, { cause: err });
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new ProviderError(provider, 'timeout', `aborted: ${err.message}`, { cause: err });
  }
  // Failures while reading a response body (socket reset mid-stream) surface as plain errors.
  return new ProviderError(provider, 'network', errorMessage(err), { cause: err });
}

/** One signal for a call: the caller's signal, its deadline, and a local controller that ends the request early. */
export function callSignals(opts: CallOptions): { signal: AbortSignal; deadline: AbortSignal; local: AbortController } {
  const deadline = callSignal(opts);
  const local = new AbortController();
  return { signal: anySignal([deadline, local.signal]), deadline, local };
}
