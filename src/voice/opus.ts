/**
 * Opus codec behind a small interface. Native `@discordjs/opus` (libopus built by node-gyp) is used when
 * it loads; otherwise, or with LINUS_OPUS=wasm, the wasm build in `opusscript`. Both are safe in worker_threads.
 */
import { createRequire } from 'node:module';
import type * as NativeOpusModule from '@discordjs/opus';
import type OpusScriptClass from 'opusscript';
import { errorMessage } from '../errors.js';

type NativeOpus = typeof NativeOpusModule;
type OpusScript = typeof OpusScriptClass;

export type OpusBackend = 'native' | 'wasm';

export interface OpusDecoder {
  readonly backend: OpusBackend;
  /** One packet to PCM. An empty packet gives an empty array; a corrupted one throws OpusDecodeError. */
  decode(packet: Buffer): Int16Array;
  /** Forgets the inter-packet state (start of a new stream). */
  reset(): void;
  dispose(): void;
}

export interface OpusEncoder {
  readonly backend: OpusBackend;
  /** Samples per frame (per channel): the exact length `encode` takes. */
  readonly frameSize: number;
  encode(pcm: Int16Array): Buffer;
  dispose(): void;
}

export interface OpusEncoderOptions extends Partial<OpusSettings> {
  backend?: OpusBackend;
}

/** The downlink encoder's settings (`server.opus_complexity`, `server.opus_bitrate`). */
export interface OpusSettings {
  /** libopus complexity 0..10 (the reference server uses 10, the device 0). */
  complexity: number;
  /** bit/s */
  bitrate: number;
}

export class OpusDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OpusDecodeError';
  }
}

const SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000];
const FRAME_MS = [2.5, 5, 10, 20, 40, 60, 80, 100, 120];
const OPUS_SET_COMPLEXITY = 4010;
const OPUS_APPLICATION_AUDIO = 2049;

const require = createRequire(import.meta.url);
let nativeModule: NativeOpus | null | undefined;
let nativeLoadError: unknown;
let wasmModule: OpusScript | undefined;

/**
 * Loaded on first use with require (the same object `import opus from '@discordjs/opus'` gives): a static
 * import would make a failed native build fatal at startup instead of falling back.
 */
function loadNative(): NativeOpus | null {
  if (nativeModule === undefined) {
    try {
      nativeModule = require('@discordjs/opus') as NativeOpus;
    } catch (err) {
      nativeModule = null;
      nativeLoadError = err;
    }
  }
  return nativeModule;
}

function loadWasm(): OpusScript {
  wasmModule ??= require('opusscript') as OpusScript;
  return wasmModule;
}

/** The backend new codecs get: LINUS_OPUS=wasm forces the wasm one; native is used whenever it loads. */
export function opusBackend(): OpusBackend {
  if (process.env.LINUS_OPUS === 'wasm') return 'wasm';
  return loadNative() ? 'native' : 'wasm';
}

/** Why the native module did not load (undefined when it did, or was never tried). */
export function opusNativeLoadError(): unknown {
  return nativeLoadError;
}

function checkRate(sampleRate: number): void {
  if (!SAMPLE_RATES.includes(sampleRate))
    throw new RangeError(`Opus sample rate must be one of ${SAMPLE_RATES.join(', ')}, got ${sampleRate}`);
}

/** The low-level pair both backends are adapted to. */
interface Codec {
  decode(packet: Buffer): Buffer;
  encode(pcm: Buffer, frameSize: number): Buffer;
  encoderCtl(ctl: number, value: number): void;
  setBitrate(bitrate: number): void;
  free(): void;
}

function openCodec(backend: OpusBackend, sampleRate: number, channels: number): Codec {
  if (backend === 'native') {
    const native = loadNative();
    if (!native) throw new Error('native @discordjs/opus is not available', { cause: nativeLoadError });
    // Always APPLICATION_AUDIO in @discordjs/opus. It has no explicit free: the addon releases libopus on GC.
    const c = new native.OpusEncoder(sampleRate, channels);
    return {
      decode: (p) => c.decode(p),
      encode: (pcm) => c.encode(pcm),
      encoderCtl: (ctl, v) => c.applyEncoderCTL(ctl, v),
      setBitrate: (b) => c.setBitrate(b),
      free: () => {},
    };
  }
  const Script = loadWasm();
  const c = new Script(sampleRate as 16000, channels, OPUS_APPLICATION_AUDIO, { wasm: true });
  return {
    decode: (p) => c.decode(p),
    encode: (pcm, frameSize) => c.encode(pcm, frameSize),
    encoderCtl: (ctl, v) => c.encoderCTL(ctl, v),
    setBitrate: (b) => c.setBitrate(b),
    free: () => c.delete(),
  };
}

export function createOpusDecoder(sampleRate: number, channels = 1, opts: { backend?: OpusBackend } = {}): OpusDecoder {
  checkRate(sampleRate);
  const backend = opts.backend ?? opusBackend();
  let codec: Codec | undefined = openCodec(backend, sampleRate, channels);
  const live = (): Codec => {
    if (!codec) throw new Error('Opus decoder used after dispose()');
    return codec;
  };
  return {
    backend,
    decode(packet) {
      const c = live();
      // libopus treats an empty packet as "lost" and conceals the maximum frame (360 ms at 16 kHz) of noise.
      if (packet.length === 0) return new Int16Array(0);
      let pcm: Buffer;
      try {
        pcm = c.decode(packet);
      } catch (err) {
        throw new OpusDecodeError(`corrupted Opus packet (${packet.length} bytes): ${errorMessage(err)}`, {
          cause: err,
        });
      }
      // Copy into an aligned array: the codec's buffer may sit at an odd offset or inside wasm memory.
      const out = new Int16Array(pcm.length >> 1);
      new Uint8Array(out.buffer).set(pcm.subarray(0, out.length * 2));
      return out;
    },
    reset() {
      // A fresh decoder is the portable OPUS_RESET_STATE: @discordjs/opus's ctl wrapper always passes a value.
      live().free();
      codec = openCodec(backend, sampleRate, channels);
    },
    dispose() {
      codec?.free();
      codec = undefined;
    },
  };
}

export function createOpusEncoder(
  sampleRate: number,
  frameDurationMs: number,
  opts: OpusEncoderOptions = {},
): OpusEncoder {
  checkRate(sampleRate);
  if (!FRAME_MS.includes(frameDurationMs))
    throw new RangeError(`Opus frame duration must be one of ${FRAME_MS.join(', ')} ms, got ${frameDurationMs}`);
  const complexity = opts.complexity ?? 5;
  if (!Number.isInteger(complexity) || complexity < 0 || complexity > 10)
    throw new RangeError(`Opus complexity must be 0..10, got ${complexity}`);
  const backend = opts.backend ?? opusBackend();
  const frameSize = (sampleRate * frameDurationMs) / 1000;
  let codec: Codec | undefined = openCodec(backend, sampleRate, 1);
  codec.setBitrate(opts.bitrate ?? 24000);
  codec.encoderCtl(OPUS_SET_COMPLEXITY, complexity);
  return {
    backend,
    frameSize,
    encode(pcm) {
      if (!codec) throw new Error('Opus encoder used after dispose()');
      if (pcm.length !== frameSize)
        throw new RangeError(`Opus encode takes exactly one frame of ${frameSize} samples, got ${pcm.length}`);
      return codec.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), frameSize);
    },
    dispose() {
      codec?.free();
      codec = undefined;
    },
  };
}
