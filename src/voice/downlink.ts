import type { PcmChunk } from '../providers/types.js';
import { createOpusEncoder } from './opus.js';
import { createResampler } from './resample.js';

/** Turns TTS audio (any rate, any chunk size) into Opus frames of exactly the advertised rate and duration. */
export interface SentenceFrames {
  push(chunk: PcmChunk): Buffer[];
  /** Pads the last partial frame with silence: the device needs whole frames. */
  end(): Buffer[];
}

export interface DownlinkEncoder {
  readonly sampleRate: number;
  readonly frameMs: number;
  sentence(): SentenceFrames;
  dispose(): void;
}

/** One per session: the Opus encoder keeps its state across sentences and turns. */
export function createDownlinkEncoder(sampleRate: number, frameMs: number): DownlinkEncoder {
  const encoder = createOpusEncoder(sampleRate, frameMs);
  const frameSamples = (sampleRate * frameMs) / 1000;
  return {
    sampleRate,
    frameMs,
    sentence() {
      let resampler: ReturnType<typeof createResampler> | undefined;
      let resampledFrom = 0;
      let pending = new Int16Array(0);
      const frames = (samples: Int16Array): Buffer[] => {
        const all = pending.length ? concat(pending, samples) : samples;
        const out: Buffer[] = [];
        let off = 0;
        for (; off + frameSamples <= all.length; off += frameSamples) out.push(encoder.encode(all.subarray(off, off + frameSamples)));
        pending = all.slice(off);
        return out;
      };
      return {
        push(chunk) {
          if (!resampler || resampledFrom !== chunk.sampleRate) {
            resampler?.dispose();
            resampler = createResampler(chunk.sampleRate, sampleRate);
            resampledFrom = chunk.sampleRate;
          }
          return frames(resampler.push(chunk.samples));
        },
        end() {
          const tail = resampler ? resampler.flush() : new Int16Array(0);
          resampler?.dispose();
          resampler = undefined;
          const out = frames(tail);
          if (pending.length) {
            const last = new Int16Array(frameSamples);
            last.set(pending);
            pending = new Int16Array(0);
            out.push(encoder.encode(last));
          }
          return out;
        },
      };
    },
    dispose() {
      encoder.dispose();
    },
  };
}

function concat(a: Int16Array, b: Int16Array): Int16Array {
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
