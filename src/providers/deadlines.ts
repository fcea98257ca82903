import { anySignal } from '../signals.js';
import { blockNumber, type ProviderBlock } from './block.js';
import { ProviderError, type AsrProvider, type LlmProvider, type TtsProvider } from './types.js';

/**
 * Time-to-first-result deadlines, next to each call's whole-call deadline (`timeout_ms`): a person waiting for an
 * answer gives up long before a whole answer's deadline. Every LLM, ASR and TTS provider the factories build is
 * wrapped here, whatever its type, with the deadline read from its own block; a reload that changes the key
 * changes the block, so the registry builds a new instance and the next turn uses the new value. 0 = off.
 */
export const FIRST_RESULT_DEADLINES = {
  /** LLM: from the request to the first text or the start of a tool call (a `<think>` section is not an answer yet). */
  llm: { key: 'first_token_timeout_ms', defaultMs: 10_000, what: 'first token' },
  /** ASR: from the end of the utterance to its text. */
  asr: { key: 'result_timeout_ms', defaultMs: 10_000, what: 'result' },
  /** TTS: from the request to the first audio of a sentence. */
  tts: { key: 'first_audio_timeout_ms', defaultMs: 10_000, what: 'first audio' },
} as const;

type DeadlineKind = keyof typeof FIRST_RESULT_DEADLINES;

function deadlineOf(
  kind: DeadlineKind,
  where: string,
  block: ProviderBlock,
): { ms: number; error: () => ProviderError } {
  const d = FIRST_RESULT_DEADLINES[kind];
  const ms = blockNumber(block, where, [d.key]) ?? d.defaultMs;
  if (ms < 0) throw new ProviderError(where, 'config', `${where}.${d.key} must be 0 (off) or more`);
  return { ms, error: () => new ProviderError(where, 'timeout', `no ${d.what} within ${ms} ms (${where}.${d.key})`) };
}

/**
 * Runs `make` with a signal of its own and gives up when its first item has not come within `ms`: the request is
 * cancelled (its signal aborts) and `expired()` is thrown. Later items take as long as the whole-call deadline lets.
 */
export async function* firstItemWithin<T>(
  ms: number,
  outer: AbortSignal,
  make: (signal: AbortSignal) => AsyncIterable<T>,
  expired: () => Error,
): AsyncGenerator<T> {
  const local = new AbortController();
  const it = make(anySignal([outer, local.signal]))[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  try {
    const first = it.next();
    // Nobody awaits it once the deadline has won; its rejection (the cancelled request) is expected.
    first.catch(() => undefined);
    // Unref'd like every call deadline (signals.ts): it must not keep a shutting-down process alive.
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms).unref()));
    const r = await Promise.race([first, late]);
    clearTimeout(timer);
    if (r === 'late') {
      local.abort();
      throw expired();
    }
    if (r.done) {
      done = true;
      return;
    }
    yield r.value;
    for (;;) {
      const n = await it.next();
      if (n.done) {
        done = true;
        return;
      }
      yield n.value;
    }
  } finally {
    clearTimeout(timer);
    // Ends the request when the deadline passed or the consumer stopped early, and releases the signal's listeners.
    local.abort();
    if (!done) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

export function withLlmDeadline(provider: LlmProvider, alias: string, block: ProviderBlock): LlmProvider {
  const { ms, error } = deadlineOf('llm', `LLM.${alias}`, block);
  if (ms <= 0) return provider;
  return {
    name: provider.name,
    model: provider.model,
    stream: (req) => firstItemWithin(ms, req.signal, (signal) => provider.stream({ ...req, signal }), error),
    // One non-streamed answer (minutes, summaries) has no first token: its whole-call deadline applies.
    complete: (req) => provider.complete(req),
    dispose: () => provider.dispose(),
  };
}

export function withTtsDeadline(provider: TtsProvider, alias: string, block: ProviderBlock): TtsProvider {
  const { ms, error } = deadlineOf('tts', `TTS.${alias}`, block);
  if (ms <= 0) return provider;
  return {
    name: provider.name,
    synthesize: (text, opts) =>
      firstItemWithin(ms, opts.signal, (signal) => provider.synthesize(text, { ...opts, signal }), error),
    dispose: () => provider.dispose(),
  };
}

export function withAsrDeadline(provider: AsrProvider, alias: string, block: ProviderBlock): AsrProvider {
  const { ms, error } = deadlineOf('asr', `ASR.${alias}`, block);
  if (ms <= 0) return provider;
  return {
    name: provider.name,
    streaming: provider.streaming,
    createStream(opts) {
      const stream = provider.createStream(opts);
      return {
        write: (samples) => stream.write(samples),
        abort: () => stream.abort(),
        finish: async () => {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              stream.abort();
              reject(error());
            }, ms).unref();
          });
          try {
            return await Promise.race([stream.finish(), late]);
          } finally {
            clearTimeout(timer);
          }
        },
      };
    },
    dispose: () => provider.dispose(),
  };
}
