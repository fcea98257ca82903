import { performance } from 'node:perf_hooks';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { errorCode, errorMessage } from '../errors.js';
import { blockString, type ProviderBlock } from './block.js';
import { ProviderError } from './types.js';
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

export interface CallSignals {
  /** Aborts on the caller's signal, the deadline, or `local`: the signal to give the request. */
  signal: AbortSignal;
  /** The caller's signal and the deadline (aborted while the caller's is not: the deadline passed). */
  deadline: AbortSignal;
  /** Ends the request early (the consumer stopped); also stops the deadline's clock. */
  local: AbortController;
  /**
   * Stops the deadline's clock while the consumer holds a result (a streamed chunk it is encoding), and starts it
   * again: the deadline measures the provider's time, so a busy server does not fail answers that came in time.
   */
  hold(): void;
  release(): void;
}

/** One signal for a call: the caller's signal, its deadline, and a local controller that ends the request early. */
export function callSignals(opts: CallOptions): CallSignals {
  const local = new AbortController();
  const clock = new AbortController();
  let left = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : Infinity;
  let timer: NodeJS.Timeout | undefined;
  let startedAt = 0;
  const release = (): void => {
    if (timer || left === Infinity || clock.signal.aborted || local.signal.aborted) return;
    startedAt = performance.now();
    const ms = Math.max(0, left);
    timer = setTimeout(() => clock.abort(new DOMException(`timed out after ${opts.timeoutMs} ms`, 'TimeoutError')), ms);
    // The timer must not keep a shutting-down process alive; the call it guards does that if needed.
    timer.unref();
  };
  const hold = (): void => {
    if (!timer) return;
    clearTimeout(timer);
    timer = undefined;
    left -= performance.now() - startedAt;
  };
  // The call is over: the clock stops, and the combined signals let go of the caller's (which may outlive it).
  local.signal.addEventListener(
    'abort',
    () => {
      hold();
      clock.abort(local.signal.reason);
    },
    { once: true },
  );
  release();
  const deadline = anySignal([opts.signal, clock.signal]);
  return { signal: anySignal([deadline, local.signal]), deadline, local, hold, release };
}

/**
 * Iterates a response body (or an SDK stream over one) until `signal` aborts, then throws the signal's reason at
 * once. Node 20's fetch leaves a body read pending forever when the request is aborted after the whole body has
 * arrived but before the reader saw its end (a consumer still busy with the previous chunk when the deadline
 * passes): iterated directly, that call would never end, and neither would the turn waiting on it.
 */
export async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => (onAbort = () => reject(signal.reason)));
  aborted.catch(() => {}); // observed through the race below; this only keeps it from being reported unhandled
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const next = it.next();
      next.catch(() => {}); // a read the abort overtook may still fail later: nobody waits for it any more
      const r = await Promise.race([next, aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Not awaited: the source's own clean-up can hang the same way; the request is aborted by the caller.
    void it.return?.()?.catch(() => {});
  }
}
