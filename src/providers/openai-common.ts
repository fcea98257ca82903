import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { errorCode, errorMessage } from '../errors.js';
import { blockString, type ProviderBlock } from './block.js';
import { ProviderError } from './types.js';
import type { CallOptions } from './types.js';
import { anySignal } from '../signals.js';
import { createParser } from 'eventsource-parser';

/**
 * Helpers shared by the OpenAI-compatible providers (LLM, ASR, TTS, VLLM): the endpoint's HTTP client, error
 * mapping, call signals. The client is node:http with a keep-alive pool and eventsource-parser, not the
 * OpenAI SDK: a turn makes four requests, and the SDK's fetch, web streams and abort plumbing cost the event loop
 * about a third of its time per talking device (issue #13, README "Voice cost per device").
 */

/** Keep-alive pools shared by every provider: a turn's requests go to the same few hosts, one after the other. */
const AGENTS = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** How much of an error response is read for its message. */
const ERROR_BODY_BYTES = 16 * 1024;

/** A non-2xx answer; `message` is the server's (its JSON `error.message` when there is one). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

/** A request body and its content type. */
export interface RequestBody {
  type: string;
  data: Buffer;
}

export const jsonBody = (value: unknown): RequestBody => ({
  type: 'application/json',
  data: Buffer.from(JSON.stringify(value)),
});

/** multipart/form-data of text fields and one file. */
export function multipartBody(
  fields: Record<string, string>,
  file: { field: string; name: string; type: string; data: Buffer },
): RequestBody {
  const boundary = `----linus${process.hrtime.bigint().toString(36)}`;
  const parts = Object.entries(fields).map(
    ([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`,
  );
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`;
  return {
    type: `multipart/form-data; boundary=${boundary}`,
    data: Buffer.concat([Buffer.from(parts.join('') + fileHead), file.data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
  };
}

/** One OpenAI-compatible endpoint (a base URL and a key). */
export interface OpenAiEndpoint {
  readonly baseUrl: string;
  /**
   * POSTs to `path` (e.g. `/chat/completions`) and resolves with the response once its status is 2xx (the body
   * still to read: iterate it to its end, or abort `signal`); rejects with HttpStatusError otherwise. `signal`
   * aborts the request and the body's reading.
   */
  post(path: string, body: RequestBody, signal: AbortSignal): Promise<IncomingMessage>;
  /** post() and the whole answer parsed as JSON. */
  json(path: string, body: RequestBody, signal: AbortSignal): Promise<unknown>;
}

/**
 * The block's endpoint. The reference's TTS blocks give the full endpoint
 * (`api_url: https://api.openai.com/v1/audio/speech`), so a trailing endpoint path is cut off to get the base URL.
 * No retries: a turn has a deadline, and the caller decides what to do on failure.
 */
export function openAiEndpoint(
  block: ProviderBlock,
  where: string,
  defaultBaseUrl = 'https://api.openai.com/v1',
): OpenAiEndpoint {
  const given = blockString(block, where, ['base_url', 'url', 'api_url', 'baseURL']);
  const baseUrl = (given ?? defaultBaseUrl)
    .replace(/\/+$/, '')
    .replace(/\/(chat\/completions|audio\/speech|audio\/transcriptions)$/, '');
  if (!baseUrl) throw new ProviderError(where, 'config', `${where}.base_url is required`);
  let base: URL;
  try {
    base = new URL(`${baseUrl}/`);
  } catch (err) {
    throw new ProviderError(where, 'config', `${where}.base_url "${baseUrl}" is not a URL`, { cause: err });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new ProviderError(where, 'config', `${where}.base_url must be http:// or https://, got ${baseUrl}`);
  const apiKey = blockString(block, where, ['api_key']);
  // The reference's sample config ships placeholders such as "你的api_key" ("your api_key").
  if (apiKey?.includes('你的'))
    throw new ProviderError(where, 'config', `${where}.api_key is still the sample placeholder`);
  if (!apiKey && /^https:\/\/api\.openai\.com\//.test(baseUrl)) {
    throw new ProviderError(where, 'config', `${where}.api_key is required for ${baseUrl}`);
  }
  // Local servers (ollama, vLLM, whisper servers) ignore the key; some want the header all the same.
  const authorization = `Bearer ${apiKey || 'none'}`;
  const secure = base.protocol === 'https:';
  const post = (path: string, body: RequestBody, signal: AbortSignal): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        new URL(path.replace(/^\//, ''), base),
        {
          method: 'POST',
          agent: secure ? AGENTS.https : AGENTS.http,
          signal,
          headers: {
            authorization,
            accept: 'application/json',
            'content-type': body.type,
            'content-length': body.data.length,
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(res);
          readBody(res, ERROR_BODY_BYTES).then(
            (text) => reject(new HttpStatusError(status, errorDetail(text) || res.statusMessage || '')),
            reject,
          );
        },
      );
      req.on('error', reject);
      req.end(body.data);
    });
  return {
    baseUrl,
    post,
    async json(path, body, signal) {
      const text = await readBody(await post(path, body, signal));
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new ProtocolError(`the answer is not JSON: ${errorMessage(err)}`, { cause: err });
      }
    },
  };
}

/** The answer could not be read (bad JSON, a bad event): a protocol failure, not the network's. */
export class ProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
  }
}

/** A body as text (at most `limit` bytes; the rest is dropped and the socket not reused). */
async function readBody(res: IncomingMessage, limit = Infinity): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    parts.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= limit) {
      res.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8');
}

/** An error answer's message: OpenAI's `{"error":{"message"}}`, else the text itself (short). */
function errorDetail(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: the text itself
  }
  return text.trim().slice(0, 300);
}

/**
 * The `data` of each server-sent event of a body, in order, until the `[DONE]` event or the body's end (an
 * OpenAI-compatible chat stream). The event syntax (comments, fields, \r\n, lines split between chunks) is
 * eventsource-parser's; a server that closes without the blank line after its last event still sent it.
 */
export async function* sseData(body: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const events: string[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event.data) });
  /** The events parsed so far; false once `[DONE]` came. */
  function* parsed(): Generator<string, boolean> {
    for (const data of events.splice(0)) {
      if (data === '[DONE]') return false;
      yield data;
    }
    return true;
  }
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    if (!(yield* parsed())) return;
  }
  // Ends the last line and event, if the server did not (blank lines alone dispatch nothing).
  parser.feed(`${decoder.decode()}\n\n`);
  yield* parsed();
}

/** The error a caller sees when its own signal aborted the call: not a provider failure. */
export function abortError(): Error {
  return new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Turns whatever the request threw into a ProviderError (or an AbortError when the caller aborted).
 * `signal` is the call's combined signal: aborted while the caller's is not means the deadline passed.
 */
export function toProviderError(provider: string, err: unknown, opts: CallOptions, signal: AbortSignal): Error {
  if (err instanceof ProviderError) return err;
  if (opts.signal.aborted) return abortError();
  if (signal.aborted) {
    return new ProviderError(provider, 'timeout', `no answer within ${opts.timeoutMs ?? '?'} ms`, { cause: err });
  }
  if (err instanceof HttpStatusError) {
    return new ProviderError(provider, 'http', `HTTP ${err.status}: ${err.message}`, { cause: err });
  }
  if (err instanceof ProtocolError) return new ProviderError(provider, 'protocol', err.message, { cause: err });
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new ProviderError(provider, 'timeout', `aborted: ${err.message}`, { cause: err });
  }
  // Socket errors (refused, reset, a body cut mid-stream) carry their code.
  const code = errorCode(err);
  return new ProviderError(provider, 'network', `connection failed${code ? ` (${code})` : ''}: ${errorMessage(err)}`, {
    cause: err,
  });
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
