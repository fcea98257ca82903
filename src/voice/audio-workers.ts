/**
 * The worker-thread audio engine: a fixed pool of threads runs Opus decode, resampling, VAD and Opus encode
 * for every session, so the main thread (sockets, pacing timers, providers) never waits on a codec or a model.
 *
 * - A stream (one session's uplink, or its encoder) is pinned to one worker: codec and VAD state live there.
 * - Messages to a worker are batched per event-loop turn (one postMessage carrying every session's packets),
 *   and the worker answers a batch with one message: the VAD scores all streams' windows in a few model calls.
 * - Buffers cross by transfer, never by copying a shared pool (a view into ws's read buffer would clone all of it).
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
import type { OpusSettings } from './opus.js';
import type { UplinkOptions, UplinkResult } from './uplink.js';

export type WorkerOp =
  | { t: 'uplink-open'; id: number; opts: UplinkOptions }
  | { t: 'uplink'; id: number; packet: Uint8Array; vad: boolean }
  | { t: 'uplink-reset'; id: number }
  | { t: 'uplink-close'; id: number }
  | { t: 'encoder-open'; id: number; rate: number; frameMs: number; opus: OpusSettings }
  | { t: 'encode'; id: number; req: number; frames: Int16Array[]; urgent: boolean }
  | { t: 'encoder-close'; id: number };

export interface ToWorker {
  ops: WorkerOp[];
}

export interface FromWorker {
  uplink: UplinkResult[];
  encoded: Array<{ req: number; packets?: Uint8Array[]; error?: string }>;
  errors: Array<{ id: number; message: string }>;
}

/** Whether a typed array owns its whole buffer (so the buffer can be transferred without taking others' bytes). */
export function ownsBuffer(a: ArrayBufferView): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer;
}

interface Stream {
  slot: Slot;
  /** Re-sent first after a worker was replaced. */
  open: WorkerOp;
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
  ops: WorkerOp[] = [];
  transfer: ArrayBuffer[] = [];
  scheduled = false;
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
    this.ops = [];
    this.transfer = [];
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

  send(stream: Stream, op: WorkerOp, transfer?: ArrayBuffer[]): void {
    if (!this.up) return;
    if (stream.needsOpen) {
      stream.needsOpen = false;
      this.ops.push(stream.open);
    }
    this.ops.push(op);
    if (transfer) this.transfer.push(...transfer);
    if (!this.scheduled) {
      this.scheduled = true;
      // One message per worker per event-loop turn, carrying every packet that arrived in it.
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (!this.ops.length || !this.#worker) return;
    const msg: ToWorker = { ops: this.ops };
    const transfer = this.transfer;
    this.ops = [];
    this.transfer = [];
    this.#worker.postMessage(msg, transfer);
  }

  #receive(msg: FromWorker): void {
    for (const e of msg.errors) this.streams.get(e.id)?.uplink?.onError(e.message);
    for (const r of msg.uplink) this.streams.get(r.id)?.uplink?.onResult(r);
    for (const e of msg.encoded) {
      const req = this.requests.get(e.req);
      if (!req) continue;
      this.requests.delete(e.req);
      if (e.packets) req.resolve(e.packets.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
      else req.reject(new Error(e.error ?? 'encode failed'));
    }
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

class WorkerPool implements AudioEngine {
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

  #stream(open: (id: number) => WorkerOp, uplink?: UplinkHandlers): { id: number; stream: Stream } {
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
        const own = new Uint8Array(packet); // a copy that owns its bytes, transferred below
        inFlight.sent();
        slot.send(stream, { t: 'uplink', id, packet: own, vad }, [own.buffer]);
      },
      whenDrained: () => inFlight.drained(),
      resetVad() {
        if (closed) return;
        epoch++;
        slot.send(stream, { t: 'uplink-reset', id });
      },
      get epoch() {
        return epoch;
      },
      close() {
        if (closed) return;
        closed = true;
        if (!stream.needsOpen) slot.send(stream, { t: 'uplink-close', id });
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
        const own = frames.map((f) => (ownsBuffer(f) ? f : f.slice()));
        return new Promise<AudioPacket[]>((resolve, reject) => {
          slot.requests.set(req, { resolve, reject });
          slot.send(
            stream,
            { t: 'encode', id, req, frames: own, urgent },
            own.map((f) => f.buffer as ArrayBuffer),
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
        if (!stream.needsOpen) slot.send(stream, { t: 'encoder-close', id });
        slot.streams.delete(id);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.#slots.map((s) => s.terminate()));
  }
}

/** A pool of `workers` audio threads (≥ 1), started on first use. */
export function createWorkerAudio(workers: number, log: Logger): AudioEngine {
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
