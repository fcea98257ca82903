import { concatPcm } from '../../voice/pcm.js';
import { blockNumber, blockString } from '../block.js';
import { abortError, multipartBody, openAiEndpoint, toProviderError } from '../openai-common.js';
import type { ProviderBlock } from '../block.js';
import { writeWav } from '../../voice/wav.js';
import { callSignal } from '../types.js';
import type { AsrProvider, AsrStream, CallOptions } from '../types.js';
import { anySignal } from '../../signals.js';

/** Every call has a deadline (D9): the block's `timeout_ms`, else the caller's, else this. */
const DEFAULT_TIMEOUT_MS = 15_000;

const SAMPLE_RATE = 16000;

/**
 * OpenAI-compatible `/audio/transcriptions` (OpenAI whisper, or a local whisper server). The endpoint takes a
 * whole file, so the utterance is buffered and uploaded as a WAV when it ends.
 */
export function createOpenAiAsr(alias: string, block: ProviderBlock): AsrProvider {
  const where = `ASR.${alias}`;
  const endpoint = openAiEndpoint(block, where);
  const model = blockString(block, where, ['model_name', 'model']) ?? 'whisper-1';
  const language = blockString(block, where, ['language']);
  const prompt = blockString(block, where, ['prompt']);
  const blockTimeout = blockNumber(block, where, ['timeout_ms']);

  return {
    name: alias,
    streaming: false,
    createStream(opts: CallOptions & { sessionId: string }): AsrStream {
      const local = new AbortController();
      // The deadline counts from finish(): the upload is the only network call.
      const call: CallOptions = {
        signal: anySignal([opts.signal, local.signal]),
        timeoutMs: blockTimeout ?? opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      };
      let chunks: Int16Array[] = [];
      let finished = false;
      return {
        write(samples: Int16Array): void {
          // Copied: the caller may reuse its buffer for the next frame.
          if (!finished && !call.signal.aborted) chunks.push(samples.slice());
        },
        async finish() {
          if (call.signal.aborted) throw abortError();
          if (finished) throw new Error(`${alias}: finish() called twice`);
          finished = true;
          const pcm = concatPcm(chunks);
          chunks = [];
          if (!pcm.length) {
            local.abort();
            return { text: '' };
          }
          const signal = callSignal(call);
          try {
            const body = multipartBody(
              { model, ...(language ? { language } : {}), ...(prompt ? { prompt } : {}) },
              {
                field: 'file',
                name: 'audio.wav',
                type: 'audio/wav',
                data: writeWav({ sampleRate: SAMPLE_RATE, samples: pcm }),
              },
            );
            const res = (await endpoint.json('/audio/transcriptions', body, signal)) as { text?: unknown };
            return { text: typeof res.text === 'string' ? res.text.trim() : '' };
          } catch (err) {
            throw toProviderError(alias, err, call, signal);
          } finally {
            // Ends the linked signal: its listener on the session's signal would otherwise stay until the
            // session closes, one per utterance (a soak found them piling up).
            local.abort();
          }
        },
        abort(): void {
          chunks = [];
          local.abort();
        },
      };
    },
    async dispose(): Promise<void> {},
  };
}
