import type { LinusConfig } from '../config/schema.js';
import type { PcmChunk } from '../providers/types.js';
import type { AudioEngine, AudioPacket } from './audio-engine.js';
import type { OpusSettings } from './opus.js';
import { concatPcm } from './pcm.js';
import { createResampler } from './resample.js';

/**
 * Turns TTS audio (any rate, any chunk size) into PCM frames of exactly the advertised rate and duration,
 * then into Opus packets through the audio engine: in a worker thread ahead of time, or (inline engine) one
 * frame per pacer tick, never a sentence at once on the main thread (a burst of 50 encodes, ~12 ms, would hold
 * every other session's pacer timers back).
 */
export interface SentenceFrames {
  push(chunk: PcmChunk): Int16Array[];
  /** Pads the last partial frame with silence: the device needs whole frames. */
  end(): Int16Array[];
}

export interface DownlinkEncoder {
  readonly sampleRate: number;
  readonly frameMs: number;
  readonly opus: OpusSettings;
  sentence(): SentenceFrames;
  /** Frames → packets ready for the pacer, in order; `urgent` ones (a sentence's first) are answered ahead of batched work. */
  prepare(frames: Int16Array[], urgent?: boolean): Promise<AudioPacket[]>;
  /** The Opus packet of a prepared frame (encodes it now with the inline engine). */
  packet(prepared: AudioPacket): Buffer;
  /** Another encoder with the same settings and a fresh state (a cached sentence is encoded by one of its own). */
  fork(): DownlinkEncoder;
  /**
   * Starts the Opus state over: the next frame stands alone. After packets of another encoder (a cached sentence),
   * the device's decoder no longer follows this one's state, so its next frame must not build on it.
   */
  restart(): void;
  dispose(): void;
}

/** One per session: the Opus encoder keeps its state across sentences and turns. */
export function createDownlinkEncoder(
  engine: AudioEngine,
  sampleRate: number,
  frameMs: number,
  opus: OpusSettings,
): DownlinkEncoder {
  let encoder = engine.openEncoder(sampleRate, frameMs, opus);
  const frameSamples = (sampleRate * frameMs) / 1000;
  return {
    sampleRate,
    frameMs,
    opus,
    sentence() {
      let resampler: ReturnType<typeof createResampler> | undefined;
      let resampledFrom = 0;
      let pending = new Int16Array(0);
      const frames = (samples: Int16Array): Int16Array[] => {
        const all = pending.length ? concatPcm([pending, samples]) : samples;
        const out: Int16Array[] = [];
        let off = 0;
        for (; off + frameSamples <= all.length; off += frameSamples) out.push(all.slice(off, off + frameSamples));
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
            out.push(last);
          }
          return out;
        },
      };
    },
    prepare: (frames, urgent) => encoder.prepare(frames, urgent),
    packet: (p) => encoder.packet(p),
    fork: () => createDownlinkEncoder(engine, sampleRate, frameMs, opus),
    restart() {
      // In order behind the work already asked of the old one: its pending frames are still encoded.
      encoder.close();
      encoder = engine.openEncoder(sampleRate, frameMs, opus);
    },
    dispose() {
      encoder.close();
    },
  };
}

/** The downlink encoder's settings from the config. */
export function downlinkOpus(config: Pick<LinusConfig, 'server'>): OpusSettings {
  return { complexity: config.server.opus_complexity, bitrate: config.server.opus_bitrate };
}
