/**
 * The worker-thread audio engine: a fixed pool of threads runs Opus decode, resampling, VAD and Opus encode
 * for every session, so the main thread (sockets, pacing timers, providers) never waits on a codec or a model.
 *
 * - A stream (one session's uplink, or its encoder) is pinned to one worker: codec and VAD state live there.
 * - Messages to a worker are batched: one postMessage carries every record of an event-loop turn, and while a
 *   batch is with the worker the next turns' records wait and go as one when it answers (one batch in flight per
 *   worker; a sentence's first frames do not wait). The worker answers every message it read at once with one
 *   message, and the VAD scores all streams' windows in a few model calls. Fewer, larger messages: each costs
 *   both threads a wake-up and an event-loop pass (issue #13).
 * - A batch's packets, frames and results travel as records in one transferred buffer (src/voice/audio-wire.ts),
 *   not as objects and typed arrays to clone one by one.
 * - A worker that dies is replaced; its streams reopen on their next packet, pending encodes reject.
 * - close() terminates the threads; work in flight is dropped and pending encodes reject (shutdown drain).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../observability/log.js';
import {
  AudioEngineClosedError,
  createInlineAudio,
  InFlight,
  type AudioEngine,
  type AudioPacket,
  type FrameEncoder,
  type UplinkChannel,
  type UplinkHandlers,
} from './audio-engine.js';
import {
  FLAG_DECODE_ERROR,
  FLAG_END_OF_UTTERANCE,
  FLAG_SPEAKING,
  FROM_WORKER,
  TO_WORKER,
  WireReader,
  WireWriter,
} from './audio-wire.js';
import type { OpusSettings } from './opus.js';
import type { UplinkOptions } from './uplink.js';

/** What opens a stream in a worker: sent as an object (rarely), re-sent after a worker was replaced. */
export type OpenOp =
  | { t: 'uplink-open'; id: number; opts: UplinkOptions }
  | { t: 'encoder-open'; id: number; rate: number; frameMs: number; opus: OpusSettings };

/** A batch: the records (audio-wire.ts TO_WORKER) in the first `length` bytes of `bin`; `opens` in record order. */
export interface ToWorker {
  bin: ArrayBuffer;
  length: number;
  opens: OpenOp[];
}

/** A batch's answer: records (FROM_WORKER), then what failed. */
export interface FromWorker {
  /** How many batches (ToWorker messages) this answers; 0 for a sentence's first frames, sent ahead. */
  answers: number;
  bin: ArrayBuffer;
  length: number;
  errors: Array<{ id: number; message: string }>;
  encodeErrors: Array<{ req: number; error: string }>;
}

interface Stream {
  slot: Slot;
  /** Re-sent first after a worker was replaced. */
  open: OpenOp;
  needsOpen: boolean;
  uplink?: UplinkHandlers;
}

/** Back-off before a dead worker is replaced: a worker that dies at start must not respawn in a hot loop. */
const RESPAWN_MS = [100, 1000, 5000, 30_000];

/**
 * The worker file. Built, it is the .js next to this one. From src/ under tsx (tests, `npm run dev`-style runs)
 * a worker does not inherit the tsx loader on Node 20, so a one-line bootstrap registers it first.
 */
function workerEntry(): { code: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { code: new URL('./audio-worker.js', import.meta.url), eval: false };
  const tsx = import.meta.resolve('tsx/esm/api');
  const file = new URL('./audio-worker.ts', import.meta.url).href;
  return {
    code: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); })`,
    eval: true,
  };
}

class Slot {
  #worker: Worker | undefined;
  #respawn: NodeJS.Timeout | undefined;
  #crashes = 0;
  readonly wire = new WireWriter();
  opens: OpenOp[] = [];
  scheduled = false;
  /** Batches posted and not answered yet: the next waits for their answer, unless it holds urgent records. */
  inFlight = 0;
  urgent = false;
  /** Batches posted over the slot's life (a figure for tests and benches). */
  posted = 0;
  readonly streams = new Map<number, Stream>();
  readonly requests = new Map<number, { resolve: (p: Buffer[]) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly pool: WorkerPool,
    readonly index: number,
  ) {
    this.#worker = this.#spawn();
  }

  /** A live worker is there to take work (false between a crash and its replacement, and after close). */
  get up(): boolean {
    return !!this.#worker && !this.pool.closed;
  }

  #spawn(): Worker {
    const entry = workerEntry();
    const worker = new Worker(entry.code, { eval: entry.eval, name: `linus-audio-${this.index}` });
    const startedAt = Date.now();
    worker.on('message', (msg: FromWorker) => this.#receive(msg));
    worker.on('error', (err) => this.pool.log.error({ err, worker: this.index }, 'audio worker failed'));
    worker.on('exit', (code) => {
      if (this.pool.closed || worker !== this.#worker) return;
      // A worker that ran a good while before dying starts the back-off over.
      if (Date.now() - startedAt > 60_000) this.#crashes = 0;
      const delay = RESPAWN_MS[Math.min(this.#crashes++, RESPAWN_MS.length - 1)]!;
      this.pool.log.error(
        { code, worker: this.index, restartInMs: delay },
        'audio worker exited; its sessions lose audio until it is replaced',
      );
      this.#lost();
      this.#respawn = setTimeout(() => {
        this.#respawn = undefined;
        if (!this.pool.closed) this.#worker = this.#spawn();
      }, delay);
    });
    return worker;
  }

  /** The worker is gone with its state: pending work fails, every stream reopens on its next packet. */
  #lost(): void {
    this.#worker = undefined;
    this.wire.clear();
    this.opens = [];
    this.inFlight = 0;
    this.#failRequests(new AudioEngineClosedError('audio worker exited'));
    for (const s of this.streams.values()) {
      s.needsOpen = true;
      s.uplink?.onError('audio worker lost; VAD state reset');
    }
  }

  #failRequests(err: Error): void {
    const pending = [...this.requests.values()];
    this.requests.clear();
    for (const r of pending) r.reject(err);
  }

  /**
   * Adds a record for `stream` (after its open, when the worker does not have it yet) to the next batch. `urgent`
   * (a sentence's first frames) sends the batch at this turn's end even while another is in flight.
   */
  send(stream: Stream, write: (w: WireWriter) => void, urgent = false): void {
    if (!this.up) return;
    if (stream.needsOpen) {
      stream.needsOpen = false;
      this.wire.u8(TO_WORKER.open);
      this.opens.push(stream.open);
    }
    write(this.wire);
    if (urgent) this.urgent = true;
    if (!this.scheduled && (this.inFlight === 0 || this.urgent)) {
      this.scheduled = true;
      // At most one message per worker per event-loop turn, carrying every packet that arrived in it.
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (!this.wire.length || !this.#worker || (this.inFlight > 0 && !this.urgent)) return;
    const { buffer, length } = this.wire.take();
    const msg: ToWorker = { bin: buffer, length, opens: this.opens };
    this.opens = [];
    this.urgent = false;
    this.inFlight++;
    this.posted++;
    this.#worker.postMessage(msg, [buffer]);
  }

  #receive(msg: FromWorker): void {
    if (msg.answers > 0) {
      this.inFlight = Math.max(0, this.inFlight - msg.answers);
      // What came in while the worker was busy goes now, as one batch.
      if (this.inFlight === 0 && this.wire.length && !this.scheduled) this.flush();
    }
    for (const e of msg.errors) this.streams.get(e.id)?.uplink?.onError(e.message);
    for (const e of msg.encodeErrors) this.#settle(e.req)?.reject(new Error(e.error));
    const r = new WireReader(msg.bin, msg.length);
    while (!r.done) {
      const kind = r.u8();
      if (kind === FROM_WORKER.uplinkResult) {
        const id = r.u32();
        const flags = r.u8();
        const epoch = r.u32();
        // A copy: the PCM may be kept (ASR buffers, pre-roll) long after the batch's buffer is read.
        const pcm = r.samples(r.u32()).slice();
        this.streams.get(id)?.uplink?.onResult({
          id,
          pcm,
          decodeError: (flags & FLAG_DECODE_ERROR) !== 0,
          speaking: (flags & FLAG_SPEAKING) !== 0,
          endOfUtterance: (flags & FLAG_END_OF_UTTERANCE) !== 0,
          epoch,
        });
      } else if (kind === FROM_WORKER.encoded) {
        const req = this.#settle(r.u32());
        const packets: Buffer[] = [];
        // Copied out (a packet is ~150 bytes, from Node's pool): a view would keep the whole batch buffer, with
        // every other session's audio in it, alive for as long as the pacer holds the packet (seconds).
        for (let n = r.u32(); n > 0; n--) packets.push(Buffer.from(r.bytes()));
        req?.resolve(packets);
      } else {
        // A bug, not bad input: the rest of the batch cannot be read; its requests fail when their streams close.
        this.pool.log.error({ kind, worker: this.index }, 'audio worker sent an unknown record kind');
        return;
      }
    }
  }

  /** The request's callbacks, forgotten: each is answered once. */
  #settle(req: number): { resolve: (p: Buffer[]) => void; reject: (e: Error) => void } | undefined {
    const r = this.requests.get(req);
    this.requests.delete(req);
    return r;
  }

  async terminate(): Promise<void> {
    clearTimeout(this.#respawn);
    this.#failRequests(new AudioEngineClosedError());
    for (const s of this.streams.values()) s.uplink?.onError('audio engine closed');
    this.streams.clear();
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

class WorkerPool implements WorkerAudioEngine {
  closed = false;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #nextReq = 1;

  constructor(
    readonly workers: number,
    readonly log: Logger,
  ) {}

  /** The least loaded worker; threads start on first use, so an idle server runs none. */
  #slot(): Slot {
    if (this.#slots.length < this.workers) {
      const slot = new Slot(this, this.#slots.length);
      this.#slots.push(slot);
      return slot;
    }
    return this.#slots.reduce((a, b) => (b.streams.size < a.streams.size ? b : a));
  }

  #stream(open: (id: number) => OpenOp, uplink?: UplinkHandlers): { id: number; stream: Stream } {
    if (this.closed) throw new AudioEngineClosedError();
    const id = this.#nextId++;
    const slot = this.#slot();
    const stream: Stream = { slot, open: open(id), needsOpen: true, ...(uplink ? { uplink } : {}) };
    slot.streams.set(id, stream);
    return { id, stream };
  }

  openUplink(opts: UplinkOptions, handlers: UplinkHandlers): UplinkChannel {
    const inFlight = new InFlight();
    const { id, stream } = this.#stream((id) => ({ t: 'uplink-open', id, opts }), {
      onResult(r) {
        inFlight.answered();
        handlers.onResult(r);
      },
      onError(message) {
        inFlight.abandon();
        handlers.onError(message);
      },
    });
    const { slot } = stream;
    let epoch = 0;
    let closed = false;
    return {
      push(packet, vad) {
        if (closed || !slot.up) return;
        inFlight.sent();
        slot.send(stream, (w) => {
          w.u8(TO_WORKER.uplink);
          w.u32(id);
          w.u8(vad ? 1 : 0);
          w.bytes(packet); // copied into the batch: the packet may be a view into the socket's read buffer
        });
      },
      whenDrained: () => inFlight.drained(),
      resetVad() {
        if (closed) return;
        epoch++;
        slot.send(stream, (w) => {
          w.u8(TO_WORKER.uplinkReset);
          w.u32(id);
        });
      },
      get epoch() {
        return epoch;
      },
      close() {
        if (closed) return;
        closed = true;
        if (!stream.needsOpen)
          slot.send(stream, (w) => {
            w.u8(TO_WORKER.uplinkClose);
            w.u32(id);
          });
        slot.streams.delete(id);
        inFlight.abandon();
      },
    };
  }

  openEncoder(rate: number, frameMs: number, opus: OpusSettings): FrameEncoder {
    const { id, stream } = this.#stream((id) => ({ t: 'encoder-open', id, rate, frameMs, opus }));
    const { slot } = stream;
    let closed = false;
    return {
      prepare: (frames, urgent = false) => {
        if (closed || !slot.up)
          return Promise.reject(new AudioEngineClosedError(closed ? 'encoder closed' : 'audio worker unavailable'));
        if (!frames.length) return Promise.resolve([]);
        const req = this.#nextReq++;
        return new Promise<AudioPacket[]>((resolve, reject) => {
          slot.requests.set(req, { resolve, reject });
          slot.send(
            stream,
            (w) => {
              w.u8(TO_WORKER.encode);
              w.u32(id);
              w.u32(req);
              w.u8(urgent ? 1 : 0);
              w.u32(frames.length);
              for (const f of frames) {
                w.u32(f.length);
                w.samples(f);
              }
            },
            urgent,
          );
        });
      },
      packet: (p) => {
        if (!Buffer.isBuffer(p)) throw new TypeError('frame was not prepared');
        return p;
      },
      close() {
        if (closed) return;
        closed = true;
        if (!stream.needsOpen)
          slot.send(stream, (w) => {
            w.u8(TO_WORKER.encoderClose);
            w.u32(id);
          });
        slot.streams.delete(id);
      },
    };
  }

  get batchesPosted(): number {
    return this.#slots.reduce((n, s) => n + s.posted, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.#slots.map((s) => s.terminate()));
  }
}

export interface WorkerAudioEngine extends AudioEngine {
  /** Messages sent to the workers so far (each one a batch of records). */
  readonly batchesPosted: number;
}

/** A pool of `workers` audio threads (≥ 1), started on first use. */
export function createWorkerAudio(workers: number, log: Logger): WorkerAudioEngine {
  if (!Number.isInteger(workers) || workers < 1)
    throw new RangeError(`audio workers must be a whole number ≥ 1, got ${workers}`);
  return new WorkerPool(workers, log);
}

/** `server.audio_workers`: "auto" = one less than the CPUs (the main thread keeps one), 1 to 4. */
export function audioWorkerCount(setting: 'auto' | number, cpus = availableParallelism()): number {
  return setting === 'auto' ? Math.min(4, Math.max(1, cpus - 1)) : setting;
}

/** The server's audio engine: worker threads, or the main thread when the setting is 0. */
export function createAudioEngine(setting: 'auto' | number, log: Logger): AudioEngine {
  const n = audioWorkerCount(setting);
  return n === 0 ? createInlineAudio() : createWorkerAudio(n, log);
}
