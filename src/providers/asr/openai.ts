import { endianness } from 'node:os';
import { toFile } from 'openai';
import { abortError, blockNumber, blockString, openAiClient, toProviderError } from '../llm/openai.js';
import type { ProviderBlock } from '../llm/openai.js';
import { callSignal } from '../types.js';
import type { AsrProvider, AsrStream, CallOptions } from '../types.js';

const SAMPLE_RATE = 16000;

/**
 * OpenAI-compatible `/audio/transcriptions` (OpenAI whisper, or a local whisper server). The endpoint takes a
 * whole file, so the utterance is buffered and uploaded as a WAV when it ends.
 */
export function createOpenAiAsr(alias: string, block: ProviderBlock): AsrProvider {
  const where = `ASR.${alias}`;
  const client = openAiClient(block, where);
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
      const call: CallOptions = { signal: AbortSignal.any([opts.signal, local.signal]), timeoutMs: opts.timeoutMs ?? blockTimeout };
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
          const pcm = concat(chunks);
          chunks = [];
          if (!pcm.length) return { text: '' };
          const signal = callSignal(call);
          try {
            const file = await toFile(wav(pcm, SAMPLE_RATE), 'audio.wav', { type: 'audio/wav' });
            const res = await client.audio.transcriptions.create(
              { file, model, ...(language ? { language } : {}), ...(prompt ? { prompt } : {}) },
              { signal },
            );
            return { text: (res.text ?? '').trim() };
          } catch (err) {
            throw toProviderError(alias, err, call, signal);
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

function concat(chunks: Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** 16-bit mono PCM in a 44-byte RIFF/WAVE header. */
function wav(samples: Int16Array, sampleRate: number): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  if (endianness() === 'BE') data.swap16(); // WAV is little-endian; `samples` is ours to change
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28); // byte rate
  h.writeUInt16LE(2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
