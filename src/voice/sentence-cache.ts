/**
 * The audio of the server's fixed sentences (exit goodbyes, the error fallback, "no language model is configured"),
 * synthesized and encoded once and then reused by every session (issue #13): such a turn costs no TTS request and
 * no encoding. Keyed by everything the audio depends on: the TTS provider instance (its voice; a config reload
 * makes a new one), the rate, the frame duration, the encoder settings and the text. Bounded in entries and bytes,
 * least recently used first out. The packets were encoded by an encoder of their own (its first frame stands alone),
 * so they can follow whatever a device decoded before.
 */
import type { TtsProvider } from '../providers/types.js';
import type { AudioPacket } from './audio-engine.js';
import type { OpusSettings } from './opus.js';

export interface SentenceKey {
  tts: TtsProvider;
  rate: number;
  frameMs: number;
  opus: OpusSettings;
  text: string;
}

/** A number per provider instance: a key must not keep a disposed provider alive, nor mix two with one name. */
const providerIds = new WeakMap<TtsProvider, number>();
let nextProviderId = 1;

export class SentenceCache {
  readonly #entries = new Map<string, { packets: AudioPacket[]; bytes: number }>();
  #bytes = 0;

  constructor(
    readonly maxEntries = 64,
    readonly maxBytes = 4 << 20,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  static key(k: SentenceKey): string {
    let id = providerIds.get(k.tts);
    if (id === undefined) providerIds.set(k.tts, (id = nextProviderId++));
    return `${id}\0${k.rate}\0${k.frameMs}\0${k.opus.complexity}\0${k.opus.bitrate}\0${k.text}`;
  }

  get(key: string): AudioPacket[] | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    // Most recently used last: eviction takes from the front.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e.packets;
  }

  /** Keeps copies: a worker's packets are views into a whole batch's buffer, which must not stay alive with them. */
  set(key: string, given: AudioPacket[]): void {
    const packets = given.map((p) => (Buffer.isBuffer(p) ? Buffer.from(p) : p.slice()));
    const bytes = packets.reduce((s, p) => s + p.byteLength, 0);
    if (bytes > this.maxBytes) return;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    this.#entries.set(key, { packets, bytes });
    this.#bytes += bytes;
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.maxEntries && this.#bytes <= this.maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
    }
  }
}
