/**
 * Where a session's audio work runs: Opus decode → resample → VAD on the way in, Opus encode on the way out.
 * Two engines with one interface: a pool of worker threads (src/voice/audio-workers.ts, the default) keeps this
 * CPU work off the event loop that paces every session's frames; the inline engine (`server.audio_workers: 0`)
 * runs it on the main thread.
 */
import { errorMessage } from '../errors.js';
import { createOpusEncoder, type OpusSettings } from './opus.js';
import { UplinkProcessor, type UplinkOptions, type UplinkResult } from './uplink.js';

export type { UplinkOptions, UplinkResult } from './uplink.js';

export interface UplinkHandlers {
  /** One result per packet, in packet order. */
  onResult(result: UplinkResult): void;
  /** The stream could not be set up as asked (e.g. the VAD model failed to load): it decodes without a VAD. */
  onError(message: string): void;
}

export interface UplinkChannel {
  push(packet: Uint8Array, vad: boolean): void;
  /** Forgets the VAD state. Results computed before it carry an older epoch: their decisions are stale. */
  resetVad(): void;
  readonly epoch: number;
  /** Resolves once every packet pushed so far has had its result delivered (or the stream failed or closed). */
  whenDrained(): Promise<void>;
  close(): void;
}

/**
 * Counts packets in flight for whenDrained(): each packet gets exactly one result, unless the stream fails
 * (worker lost, processing error) or closes, which releases every waiter.
 */
export class InFlight {
  #count = 0;
  #waiters: Array<() => void> = [];

  sent(): void {
    this.#count++;
  }

  answered(): void {
    if (this.#count > 0) this.#count--;
    if (this.#count === 0) this.#release();
  }

  /** Nothing more will be answered. */
  abandon(): void {
    this.#count = 0;
    this.#release();
  }

  drained(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** PCM waiting to be encoded (inline engine: encoded when sent), or an Opus packet (worker engine). */
export type AudioPacket = Int16Array | Buffer;

export interface FrameEncoder {
  /** Gets frames ready to send; with workers they are encoded off the main thread, in order (the frames are copied). */
  prepare(frames: Int16Array[], urgent?: boolean): Promise<AudioPacket[]>;
  /** The Opus packet to send for a prepared frame. */
  packet(prepared: AudioPacket): Buffer;
  close(): void;
}

export interface AudioEngine {
  /** Worker threads (0 = inline). */
  readonly workers: number;
  openUplink(opts: UplinkOptions, handlers: UplinkHandlers): UplinkChannel;
  openEncoder(rate: number, frameMs: number, settings: OpusSettings): FrameEncoder;
  /** Stops the workers; work in flight is dropped and pending encodes reject. Idempotent. */
  close(): Promise<void>;
}

export class AudioEngineClosedError extends Error {
  constructor(message = 'audio engine closed') {
    super(message);
    this.name = 'AudioEngineClosedError';
  }
}

/** The main-thread engine: the same processor as the workers, called directly. */
export function createInlineAudio(): AudioEngine {
  const uplink = new UplinkProcessor();
  let nextId = 1;
  let closed = false;
  return {
    workers: 0,
    openUplink(opts, handlers) {
      const id = nextId++;
      let epoch = 0;
      try {
        uplink.open(id, opts);
      } catch (err) {
        const message = errorMessage(err);
        queueMicrotask(() => handlers.onError(message));
      }
      return {
        push(packet, vad) {
          if (closed) return;
          for (const r of uplink.process([{ id, packet, vad }])) handlers.onResult(r);
        },
        resetVad() {
          epoch++;
          uplink.reset(id);
        },
        get epoch() {
          return epoch;
        },
        // Results are delivered synchronously inside push: nothing is ever in flight.
        whenDrained: () => Promise.resolve(),
        close: () => uplink.close(id),
      };
    },
    openEncoder(rate, frameMs, settings) {
      const encoder = createOpusEncoder(rate, frameMs, settings);
      return {
        // Kept as PCM and encoded one frame per pacer tick: a sentence encoded at once would block other sessions.
        prepare: (frames) => Promise.resolve(frames),
        packet: (p) => (Buffer.isBuffer(p) ? p : encoder.encode(p)),
        close: () => encoder.dispose(),
      };
    },
    async close() {
      closed = true;
      uplink.dispose();
    },
  };
}

/**
 * Starts the engine's threads and loads what a first utterance needs (Opus codecs, the VAD model) by running one
 * silent frame through an encoder and a VAD uplink per thread. A cold audio thread takes seconds to start on a
 * busy machine; paid at start-up, that wait does not fall on the first devices' first turns. Resolves with the
 * first error seen (the engine then works as it would have, opening what it can on use), or undefined.
 */
export async function warmAudio(
  engine: AudioEngine,
  opts: { vad: UplinkOptions['vad']; rate: number; frameMs: number; opus: OpusSettings },
): Promise<string | undefined> {
  // The pool places each new stream on its least loaded thread: one encoder and one uplink per thread.
  const encoders = Array.from({ length: Math.max(1, engine.workers) }, () =>
    engine.openEncoder(opts.rate, opts.frameMs, opts.opus),
  );
  const errors: string[] = [];
  const uplinks: UplinkChannel[] = [];
  try {
    const silence = new Int16Array((opts.rate * opts.frameMs) / 1000);
    const packets = await Promise.all(encoders.map(async (e) => e.packet((await e.prepare([silence.slice()]))[0]!)));
    await Promise.all(
      packets.map(
        (packet) =>
          new Promise<void>((resolve) => {
            const uplink = engine.openUplink(
              { rate: 16000, vad: opts.vad },
              {
                onResult: () => resolve(),
                onError: (message) => {
                  errors.push(message);
                  resolve();
                },
              },
            );
            uplinks.push(uplink);
            uplink.push(packet, !!opts.vad);
          }),
      ),
    );
  } catch (err) {
    errors.push(errorMessage(err));
  } finally {
    for (const u of uplinks) u.close();
    for (const e of encoders) e.close();
  }
  return errors[0];
}
