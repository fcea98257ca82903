import { endianness } from 'node:os';
import { blockNumber, blockString } from '../block.js';
import { abortError, callSignals, jsonBody, openAiEndpoint, toProviderError } from '../openai-common.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { CallOptions, PcmChunk, TtsProvider } from '../types.js';

/** Every call has a deadline (D9): the block's `timeout_ms`, else the caller's, else this. */
const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * OpenAI-compatible `/audio/speech`. Asks for `pcm` (OpenAI documents it as raw 24 kHz 16-bit little-endian
 * mono) or `wav`, and streams the body out as it arrives. Compressed formats are refused: nothing here decodes mp3.
 */
export function createOpenAiTts(alias: string, block: ProviderBlock): TtsProvider {
  const where = `TTS.${alias}`;
  const endpoint = openAiEndpoint(block, where);
  const model = blockString(block, where, ['model', 'model_name']) ?? 'tts-1';
  const voice = blockString(block, where, ['voice']) ?? 'alloy';
  const speed = blockNumber(block, where, ['speed']);
  const format = (blockString(block, where, ['format', 'response_format']) ?? 'pcm').toLowerCase();
  if (format !== 'pcm' && format !== 'wav')
    throw new ProviderError(where, 'config', `${where}.format must be pcm or wav (compressed audio is not decoded)`);
  // The rate of raw pcm is not in the stream, so it comes from the config (OpenAI's is 24000).
  const pcmRate = blockNumber(block, where, ['sample_rate']) ?? 24000;
  const blockTimeout = blockNumber(block, where, ['timeout_ms']);

  return {
    name: alias,
    async *synthesize(text: string, opts: CallOptions): AsyncGenerator<PcmChunk> {
      if (!text.trim()) return;
      const call: CallOptions = {
        signal: opts.signal,
        timeoutMs: blockTimeout ?? opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      };
      const { signal, deadline, local, hold, release } = callSignals(call);
      const reader = format === 'wav' ? new WavReader(alias) : new PcmReader(pcmRate, 1);
      let handedOut = false;
      try {
        const res = await endpoint.post(
          '/audio/speech',
          jsonBody({ model, voice, input: text, response_format: format, ...(speed ? { speed } : {}) }),
          signal,
        );
        // An abort destroys the response: a pending read ends with an error, it does not hang.
        for await (const bytes of res) {
          const chunk = reader.push(bytes as Buffer);
          if (!chunk?.samples.length) continue;
          handedOut = true;
          hold();
          yield chunk;
          release();
          handedOut = false;
        }
        // Should a body ever end quietly on abort, a cut sentence must still not look complete.
        if (signal.aborted) throw abortError();
      } catch (err) {
        // The consumer stopped while holding a chunk; closing the body may fail, but that is no news to it.
        if (handedOut) return;
        throw toProviderError(alias, err, call, deadline);
      } finally {
        // Also reached when the consumer stops early (barge-in): the HTTP request must not outlive it.
        local.abort();
      }
    },
    async dispose(): Promise<void> {},
  };
}

/** Little-endian 16-bit PCM bytes → samples, keeping a split sample frame (an odd byte) for the next push. */
class PcmReader {
  #carry: Uint8Array = new Uint8Array(0);
  readonly #frameBytes: number;

  constructor(
    readonly sampleRate: number,
    readonly channels: number,
  ) {
    this.#frameBytes = 2 * channels;
  }

  push(bytes: Uint8Array): PcmChunk {
    const all = this.#carry.length ? concat(this.#carry, bytes) : bytes;
    const usable = all.length - (all.length % this.#frameBytes);
    this.#carry = all.slice(usable);
    const raw = new Int16Array(usable / 2);
    new Uint8Array(raw.buffer).set(all.subarray(0, usable));
    if (endianness() === 'BE') Buffer.from(raw.buffer).swap16();
    return { sampleRate: this.sampleRate, samples: this.channels === 1 ? raw : downmix(raw, this.channels) };
  }
}

/** A WAV stream: header first (any chunk order, RIFF padding), then the data chunk's PCM as it arrives. */
class WavReader {
  #head: Uint8Array = new Uint8Array(0);
  #pcm: PcmReader | undefined;
  /** Data bytes still expected; streaming servers write 0 or 0xFFFFFFFF when the length is unknown. */
  #left = Infinity;

  constructor(private readonly alias: string) {}

  push(bytes: Uint8Array): PcmChunk | undefined {
    if (!this.#pcm) {
      this.#head = concat(this.#head, bytes);
      const start = this.#parseHeader();
      if (start === undefined) return undefined;
      bytes = this.#head.subarray(start);
      this.#head = new Uint8Array(0);
    }
    const take = bytes.subarray(0, Math.min(bytes.length, this.#left));
    this.#left -= take.length;
    return this.#pcm!.push(take);
  }

  /** Offset of the PCM data once the header is complete, undefined while more bytes are needed. */
  #parseHeader(): number | undefined {
    const h = Buffer.from(this.#head.buffer, this.#head.byteOffset, this.#head.length);
    if (h.length < 12) return undefined;
    if (h.toString('ascii', 0, 4) !== 'RIFF' || h.toString('ascii', 8, 12) !== 'WAVE')
      throw this.#bad('not a RIFF/WAVE stream');
    let fmt: { channels: number; rate: number } | undefined;
    for (let at = 12; at + 8 <= h.length;) {
      const id = h.toString('ascii', at, at + 4);
      const size = h.readUInt32LE(at + 4);
      if (id === 'data') {
        if (!fmt) throw this.#bad('data chunk before fmt chunk');
        this.#pcm = new PcmReader(fmt.rate, fmt.channels);
        if (size !== 0 && size !== 0xffffffff) this.#left = size;
        return at + 8;
      }
      if (at + 8 + size > h.length) break; // the rest of this chunk has not arrived yet
      if (id === 'fmt ') {
        const tag = h.readUInt16LE(at + 8);
        const bits = h.readUInt16LE(at + 22);
        if ((tag !== 1 && tag !== 0xfffe) || bits !== 16)
          throw this.#bad(`only 16-bit PCM WAV is supported (format ${tag}, ${bits} bits)`);
        fmt = { channels: h.readUInt16LE(at + 10), rate: h.readUInt32LE(at + 12) };
      }
      at += 8 + size + (size & 1);
    }
    if (h.length > 65536) throw this.#bad('no data chunk in the first 64 KiB');
    return undefined;
  }

  #bad(why: string): ProviderError {
    return new ProviderError(this.alias, 'protocol', `bad WAV from the TTS server: ${why}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function downmix(interleaved: Int16Array, channels: number): Int16Array {
  const out = new Int16Array(interleaved.length / channels);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[i * channels + c]!;
    out[i] = Math.round(sum / channels);
  }
  return out;
}
