/**
 * The byte layout of the messages between the main thread and an audio worker (src/voice/audio-workers.ts):
 * every packet, frame and result of a batch is a record in one ArrayBuffer, transferred with the message.
 * Structured clone costs a few µs per object and per typed array; one buffer per batch costs one (issue #13: the
 * messages were 15 % of the main thread's CPU at 50 talking devices). Little-endian, 16-bit samples 2-aligned.
 */

/** Record kinds, main thread → worker. */
export const TO_WORKER = {
  /** Open the stream of the next entry of `opens` (its id is in there). */
  open: 1,
  /** id u32, vad u8, length u32, Opus bytes. */
  uplink: 2,
  /** id u32 */
  uplinkReset: 3,
  uplinkClose: 4,
  encoderClose: 5,
  /** id u32, req u32, urgent u8, frames u32, samples per frame u32, then the PCM (2-aligned). */
  encode: 6,
} as const;

/** Record kinds, worker → main thread. */
export const FROM_WORKER = {
  /** id u32, flags u8 (FLAG_*), epoch u32, samples u32, then the 16 kHz PCM (2-aligned). */
  uplinkResult: 1,
  /** req u32, packets u32, then per packet: length u32, Opus bytes. */
  encoded: 2,
} as const;

export const FLAG_DECODE_ERROR = 1;
export const FLAG_SPEAKING = 2;
export const FLAG_END_OF_UTTERANCE = 4;

const MIN_CAPACITY = 4096;

/** Appends records to a growable buffer; `take()` hands the filled part over and starts a new one. */
export class WireWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #at = 0;

  constructor() {
    this.#bytes = new Uint8Array(MIN_CAPACITY);
    this.#view = new DataView(this.#bytes.buffer);
  }

  get length(): number {
    return this.#at;
  }

  #room(n: number): void {
    if (this.#at + n <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#at + n));
    grown.set(this.#bytes.subarray(0, this.#at));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  u8(v: number): void {
    this.#room(1);
    this.#bytes[this.#at++] = v;
  }

  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.#at, v, true);
    this.#at += 4;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.#room(b.length);
    this.#bytes.set(b, this.#at);
    this.#at += b.length;
  }

  /** Samples only (the count is written by the caller), at an even offset. */
  samples(pcm: Int16Array): void {
    if (this.#at & 1) this.u8(0);
    this.#room(pcm.byteLength);
    this.#bytes.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), this.#at);
    this.#at += pcm.byteLength;
  }

  /** Hands the buffer over (to transfer): its first `length` bytes are the records. The writer starts empty. */
  take(): { buffer: ArrayBuffer; length: number } {
    const out = { buffer: this.#bytes.buffer as ArrayBuffer, length: this.#at };
    // Sized like the batch just sent, so a steady load rarely grows a buffer.
    this.#bytes = new Uint8Array(Math.max(MIN_CAPACITY, this.#at + (this.#at >> 1)));
    this.#view = new DataView(this.#bytes.buffer);
    this.#at = 0;
    return out;
  }

  /** Drops what was written (the worker it was meant for is gone). */
  clear(): void {
    this.#at = 0;
  }
}

/** Reads the records of a buffer in order. Views it hands out share the buffer: copy what outlives the batch. */
export class WireReader {
  readonly #buffer: ArrayBuffer;
  readonly #length: number;
  readonly #view: DataView;
  #at = 0;

  constructor(buffer: ArrayBuffer, length: number) {
    this.#buffer = buffer;
    this.#length = length;
    this.#view = new DataView(buffer, 0, length);
  }

  get done(): boolean {
    return this.#at >= this.#length;
  }

  u8(): number {
    return this.#view.getUint8(this.#at++);
  }

  u32(): number {
    const v = this.#view.getUint32(this.#at, true);
    this.#at += 4;
    return v;
  }

  /** A view of the next length-prefixed bytes. */
  bytes(): Uint8Array {
    const n = this.u32();
    const out = new Uint8Array(this.#buffer, this.#at, n);
    this.#at += n;
    return out;
  }

  /** A view of the next `n` samples. */
  samples(n: number): Int16Array {
    if (this.#at & 1) this.#at++;
    const out = new Int16Array(this.#buffer, this.#at, n);
    this.#at += n * 2;
    return out;
  }
}
