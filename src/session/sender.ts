import { encodeFrame, type ProtocolVersion } from '../protocol/framing.js';
import type { Metrics } from '../observability/metrics.js';

/** `readyState` while open (the WebSocket OPEN constant); text frames are JSON, binary frames audio. */
export const SOCKET_OPEN = 1;

export interface SenderOptions {
  /** Bytes handed to the socket and not yet flushed, above which frames queue here instead. */
  highWaterBytes?: number;
  /** Bytes allowed in this queue before audio is dropped; read on every overflow check, so it follows reloads. */
  maxQueuedBytes: () => number;
  /** Called when the peer stops reading even control messages. */
  onOverflow?: () => void;
}

interface Pending {
  data: Buffer | string;
  bytes: number;
  audio: boolean;
  type: string;
  /** Told once whether the frame was written to the socket (true) or dropped (false). */
  written?: (ok: boolean) => void;
}

/** What the sender uses of a socket (a `ws` WebSocket is one): its state, and a send that says when it was written. */
export interface SenderSocket {
  readonly readyState: number;
  send(data: Buffer | string, options: { binary: boolean }, written: (err?: Error) => void): void;
}

/**
 * The one way a connection sends. It never throws into the caller and says whether the frame was accepted.
 * Under back-pressure frames wait in a bounded queue; when it overflows, the oldest audio is dropped first
 * and JSON control messages are never dropped (a peer that will not even read those is cut off).
 */
export class Sender {
  #inflight = 0;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #dead = false;
  readonly #ws: SenderSocket;
  readonly #metrics: Metrics;
  readonly #opts: Required<Pick<SenderOptions, 'highWaterBytes'>> & SenderOptions;
  #version: ProtocolVersion = 1;
  #gateway = false;

  constructor(ws: SenderSocket, metrics: Metrics, opts: SenderOptions) {
    this.#ws = ws;
    this.#metrics = metrics;
    this.#opts = { highWaterBytes: 64 * 1024, ...opts };
  }

  /** Binary framing used for audio from now on (set by the handshake header or hello). */
  setProtocolVersion(v: ProtocolVersion): void {
    if (!this.#gateway) this.#version = v;
  }

  /** A `?from=mqtt_gateway` link: v2 framing for its whole life, whatever its hello says (as the reference does). */
  useGatewayFraming(): void {
    this.#version = 2;
    this.#gateway = true;
  }

  get gatewayFraming(): boolean {
    return this.#gateway;
  }

  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  /** Bytes waiting in this queue (not counting what the socket holds). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  json(message: { type: string } & Record<string, unknown>): boolean {
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch {
      // A cycle or a BigInt in the message: counted, and the caller is told it was not sent.
      this.#metrics.sendFailures.labels('unserializable').inc();
      return false;
    }
    return this.#submit({ data: text, bytes: Buffer.byteLength(text), audio: false, type: message.type });
  }

  /**
   * json(), settled once the frame was written to the socket (true) or dropped before that (false): accepted
   * here is not sent yet, and what waits in this queue or the socket's buffer is gone when the connection or the
   * process dies.
   */
  jsonWritten(message: { type: string } & Record<string, unknown>): Promise<boolean> {
    return new Promise((resolve) => {
      let text: string;
      try {
        text = JSON.stringify(message);
      } catch {
        // Counted as in json(); the promise settles false.
        this.#metrics.sendFailures.labels('unserializable').inc();
        return resolve(false);
      }
      if (
        !this.#submit({
          data: text,
          bytes: Buffer.byteLength(text),
          audio: false,
          type: message.type,
          written: resolve,
        })
      )
        resolve(false);
    });
  }

  /** A raw text frame (the echo of a bare JSON number, as the reference does). */
  text(raw: string, type = 'other'): boolean {
    return this.#submit({ data: raw, bytes: Buffer.byteLength(raw), audio: false, type });
  }

  /** One Opus packet, framed for the connection's protocol version. */
  audio(opus: Buffer, timestamp = 0): boolean {
    let frame: Buffer;
    try {
      frame = encodeFrame(this.#version, opus, timestamp);
    } catch {
      // A packet too large for the frame header: counted, and the caller is told it was not sent.
      this.#metrics.sendFailures.labels('frame_encode').inc();
      return false;
    }
    return this.#submit({ data: frame, bytes: frame.length, audio: true, type: 'binary' });
  }

  /** Drops queued audio (an abort: stale speech must not play after it). */
  dropQueuedAudio(): number {
    let dropped = 0;
    this.#queue = this.#queue.filter((p) => {
      if (!p.audio) return true;
      this.#queuedBytes -= p.bytes;
      dropped++;
      return false;
    });
    return dropped;
  }

  /** Forgets everything queued; called once the connection is closed. */
  dispose(): void {
    this.#dead = true;
    if (this.#queue.length) this.#metrics.sendFailures.labels('closed').inc(this.#queue.length);
    for (const p of this.#queue) p.written?.(false);
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #submit(p: Pending): boolean {
    if (this.#dead || this.#ws.readyState !== SOCKET_OPEN) {
      this.#metrics.sendFailures.labels('closed').inc();
      return false;
    }
    if (this.#queue.length === 0 && this.#inflight < this.#opts.highWaterBytes) {
      this.#write(p);
      return true;
    }
    return this.#enqueue(p);
  }

  #enqueue(p: Pending): boolean {
    const limit = this.#opts.maxQueuedBytes();
    if (p.audio) {
      // Make room by dropping the oldest audio; the newest audio is the one still worth playing.
      for (let i = 0; this.#queuedBytes + p.bytes > limit && i < this.#queue.length;) {
        const q = this.#queue[i]!;
        if (q.audio) {
          this.#queue.splice(i, 1);
          this.#queuedBytes -= q.bytes;
          this.#metrics.sendFailures.labels('backpressure_audio').inc();
        } else i++;
      }
      if (this.#queuedBytes + p.bytes > limit) {
        this.#metrics.sendFailures.labels('backpressure_audio').inc();
        return false;
      }
    } else if (this.#queuedBytes + p.bytes > limit * 4) {
      this.#metrics.sendFailures.labels('overflow').inc();
      this.#dead = true;
      this.#opts.onOverflow?.();
      return false;
    }
    this.#queue.push(p);
    this.#queuedBytes += p.bytes;
    return true;
  }

  #write(p: Pending): void {
    this.#inflight += p.bytes;
    try {
      this.#ws.send(p.data, { binary: p.audio }, (err) => {
        this.#inflight -= p.bytes;
        if (err) this.#metrics.sendFailures.labels('socket_error').inc();
        p.written?.(!err);
        this.#pump();
      });
      this.#metrics.countOut(p.type, p.bytes);
    } catch {
      // ws throws only when the socket is no longer open: counted, and the frame's waiter is told.
      this.#inflight -= p.bytes;
      this.#metrics.sendFailures.labels('socket_error').inc();
      p.written?.(false);
    }
  }

  #pump(): void {
    while (!this.#dead && this.#queue.length && this.#inflight < this.#opts.highWaterBytes) {
      if (this.#ws.readyState !== SOCKET_OPEN) {
        this.dispose();
        return;
      }
      const p = this.#queue.shift()!;
      this.#queuedBytes -= p.bytes;
      this.#write(p);
    }
  }
}
