/**
 * The uplink audio stage of many sessions: Opus packet → 16 kHz PCM → VAD decision. It runs in an audio worker
 * thread (src/voice/audio-workers.ts) or on the main thread (`server.audio_workers: 0`), with the same results.
 *
 * Packets are processed in batches: every packet is decoded first, then the VAD windows of all streams are
 * scored round by round (the first pending window of every stream, then the second...), one model call per
 * round, so a Silero batch serves many sessions for the price of a few. Within a stream, windows are scored in
 * order, so each stream decides exactly as if it were alone.
 */
import type { VadSpec } from '../providers/types.js';
import { createVadModel, vadModelKey } from '../providers/vad/model.js';
import { createOpusDecoder, OpusDecodeError, type OpusDecoder } from './opus.js';
import { createResampler, type Resampler } from './resample.js';
import { quietWindow, VadDecider, VAD_SAMPLE_RATE, VAD_WINDOW_SAMPLES, type BatchWindowModel } from './vad-decision.js';

const WINDOW_MS = (VAD_WINDOW_SAMPLES * 1000) / VAD_SAMPLE_RATE;

export interface UplinkOptions {
  /** The device's uplink sample rate (decoded, then resampled to 16 kHz). */
  rate: number;
  /** No VAD: packets are only decoded (manual listening, or no VAD configured). */
  vad?: VadSpec | undefined;
}

export interface UplinkPacket {
  id: number;
  packet: Uint8Array;
  /** Run the VAD on this packet (false: decode only, e.g. manual listening). */
  vad: boolean;
}

export interface UplinkResult {
  id: number;
  /** 16 kHz mono PCM; empty for an empty or corrupted packet. */
  pcm: Int16Array;
  decodeError: boolean;
  /** 3 of the last 5 windows were voice, as of the end of this packet. */
  speaking: boolean;
  /** The utterance ended in this packet; the stream's VAD state has then been reset. */
  endOfUtterance: boolean;
  /** Counts the stream's VAD resets: a result computed before the latest reset carries an older epoch. */
  epoch: number;
}

interface VadState {
  /** The shared model's key in the processor's model table. */
  key: string;
  model: BatchWindowModel<unknown>;
  modelState: unknown;
  decider: VadDecider;
  window: Float32Array;
  filled: number;
  windows: number;
  speaking: boolean;
}

interface Stream {
  rate: number;
  decoder: OpusDecoder;
  resampler: Resampler | undefined;
  vad: VadState | undefined;
  epoch: number;
}

interface PendingWindow {
  window: Float32Array;
  result: UplinkResult;
  /** Quiet: p = 0 without running the model (vad-decision.ts quietWindow). */
  quiet: boolean;
}

export class UplinkProcessor {
  readonly #streams = new Map<number, Stream>();
  /** One model (the weights) per kind and file, shared by every stream; refcounted by stream. */
  readonly #models = new Map<string, { model: BatchWindowModel<unknown>; users: number }>();
  /** Windows the speech model scored (quiet ones skipped): the test's proof that the pre-gate is wired in. */
  modelWindows = 0;

  get streams(): number {
    return this.#streams.size;
  }

  /** Starts (or restarts) stream `id`. Throws a ProviderError when the VAD model cannot load; the stream then decodes without a VAD. */
  open(id: number, opts: UplinkOptions): void {
    this.close(id);
    const stream: Stream = {
      rate: opts.rate,
      decoder: createOpusDecoder(opts.rate, 1),
      resampler: opts.rate === VAD_SAMPLE_RATE ? undefined : createResampler(opts.rate, VAD_SAMPLE_RATE),
      vad: undefined,
      epoch: 0,
    };
    this.#streams.set(id, stream);
    if (!opts.vad) return;
    const key = vadModelKey(opts.vad);
    let shared = this.#models.get(key);
    if (!shared) {
      shared = { model: createVadModel(opts.vad), users: 0 };
      this.#models.set(key, shared);
    }
    shared.users++;
    stream.vad = {
      key,
      model: shared.model,
      modelState: shared.model.createState(),
      decider: new VadDecider(opts.vad.thresholds),
      window: new Float32Array(VAD_WINDOW_SAMPLES),
      filled: 0,
      windows: 0,
      speaking: false,
    };
  }

  /** Forgets the VAD state (a new listening phase): the next utterance needs new voice. */
  reset(id: number): void {
    const s = this.#streams.get(id);
    if (!s) return;
    s.epoch++;
    if (s.vad) {
      resetVad(s.vad);
      s.vad.filled = 0;
    }
  }

  close(id: number): void {
    const s = this.#streams.get(id);
    if (!s) return;
    this.#streams.delete(id);
    s.decoder.dispose();
    s.resampler?.dispose();
    if (!s.vad) return;
    const shared = this.#models.get(s.vad.key);
    if (shared && --shared.users === 0) {
      shared.model.dispose();
      this.#models.delete(s.vad.key);
    }
  }

  /** Decodes every packet, then scores the VAD windows of all streams in batched rounds. Results are in packet order. */
  process(packets: readonly UplinkPacket[]): UplinkResult[] {
    const results: UplinkResult[] = [];
    const queues = new Map<Stream, PendingWindow[]>();
    for (const p of packets) {
      const s = this.#streams.get(p.id);
      if (!s) continue; // closed while the packet was on its way
      const pcm = this.#decode(s, p.packet);
      const result: UplinkResult = {
        id: p.id,
        pcm: pcm ?? new Int16Array(0),
        decodeError: !pcm,
        speaking: s.vad?.speaking ?? false,
        endOfUtterance: false,
        epoch: s.epoch,
      };
      results.push(result);
      if (!p.vad || !s.vad || result.pcm.length === 0) continue;
      const v = s.vad;
      let queue = queues.get(s);
      for (const sample of result.pcm) {
        v.window[v.filled++] = sample / 32768;
        if (v.filled < VAD_WINDOW_SAMPLES) continue;
        v.filled = 0;
        if (!queue) queues.set(s, (queue = []));
        const window = v.window.slice();
        queue.push({ window, result, quiet: !!v.model.skip && quietWindow(window) });
      }
    }
    const scored = this.#score(queues);
    // A packet without a whole window of its own speaks for the state left by the packets before it.
    const last = new Map<number, boolean>();
    for (const r of results) {
      if (scored.has(r)) last.set(r.id, r.speaking);
      else if (last.has(r.id)) r.speaking = last.get(r.id)!;
    }
    return results;
  }

  /** Scores every queued window; returns the results that had at least one window of their own. */
  #score(queues: Map<Stream, PendingWindow[]>): Set<UplinkResult> {
    const scored = new Set<UplinkResult>();
    for (let round = 0; queues.size > 0; round++) {
      const byModel = new Map<BatchWindowModel<unknown>, { streams: Stream[]; items: PendingWindow[] }>();
      for (const [s, queue] of queues) {
        const item = queue[round];
        if (!item) {
          queues.delete(s);
          continue;
        }
        const v = s.vad!;
        if (item.quiet) {
          v.model.skip!(v.modelState, item.window);
          this.#decide(s, item, 0, scored);
          continue;
        }
        this.modelWindows++;
        let group = byModel.get(v.model);
        if (!group) byModel.set(v.model, (group = { streams: [], items: [] }));
        group.streams.push(s);
        group.items.push(item);
      }
      for (const [model, { streams, items }] of byModel) {
        const probabilities = model.score(
          streams.map((s) => s.vad!.modelState),
          items.map((i) => i.window),
        );
        streams.forEach((s, i) => this.#decide(s, items[i]!, probabilities[i] ?? 0, scored));
      }
    }
    return scored;
  }

  /** One window's probability through the stream's decision (windows of a stream come here in order). */
  #decide(s: Stream, item: PendingWindow, p: number, scored: Set<UplinkResult>): void {
    const v = s.vad!;
    v.windows++;
    const verdict = v.decider.update(p, v.windows * WINDOW_MS);
    v.speaking = verdict.speaking;
    item.result.speaking = verdict.speaking;
    scored.add(item.result);
    if (verdict.endOfUtterance) {
      item.result.endOfUtterance = true;
      // As the reference after an utterance: the next one starts from a clean state.
      resetVad(v);
    }
  }

  /** The packet's 16 kHz PCM, or undefined when it is corrupted. */
  #decode(s: Stream, packet: Uint8Array): Int16Array | undefined {
    if (packet.length === 0) return new Int16Array(0); // an empty packet would decode to 360 ms of PLC
    try {
      const pcm = s.decoder.decode(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
      return s.resampler ? s.resampler.push(pcm) : pcm;
    } catch (err) {
      if (!(err instanceof OpusDecodeError)) throw err;
      s.decoder.reset();
      return undefined;
    }
  }

  dispose(): void {
    for (const id of [...this.#streams.keys()]) this.close(id);
  }
}

function resetVad(v: VadState): void {
  v.decider.reset();
  v.model.resetState(v.modelState);
  v.windows = 0;
  v.speaking = false;
}
