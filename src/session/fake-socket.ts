import { EventEmitter } from 'node:events';
import type { SenderSocket } from './sender.js';

/**
 * The socket boundary for unit tests, as ws's own sender tests drive a fake socket: it holds every frame handed to
 * it until the test says the kernel took it (`flush`), so what is not yet flushed is the back-pressure the sender
 * sees. It is an EventEmitter so a test can play the device (`receive`) into a Session.
 */
export class FakeSocket extends EventEmitter implements SenderSocket {
  readyState = 1;
  /** Every frame handed to the socket, in order. */
  readonly frames: { data: Buffer | string; binary: boolean }[] = [];
  /** The kernel keeps up: each frame is written right after it is handed over (default: only on `flush`). */
  autoFlush = false;
  /** Make the next sends throw (a socket torn down under the sender). */
  throwOnSend = false;
  /** The close code and reason once the server closed it. */
  closedWith: { code: number; reason: string } | undefined;
  #unflushed: ((err?: Error) => void)[] = [];

  send(data: Buffer | string, options: { binary: boolean }, written: (err?: Error) => void): void {
    if (this.throwOnSend) throw new Error('socket gone');
    this.frames.push({ data, binary: options.binary });
    if (this.autoFlush) queueMicrotask(() => written());
    else this.#unflushed.push(written);
  }

  /** The kernel wrote the oldest `n` frames (all by default), or failed them with `err`. */
  flush(n = Infinity, err?: Error): void {
    for (const written of this.#unflushed.splice(0, n)) written(err);
  }

  get unflushed(): number {
    return this.#unflushed.length;
  }

  /** The JSON messages sent so far, parsed. */
  json(): ({ type: string } & Record<string, unknown>)[] {
    return this.frames.filter((f) => !f.binary).map((f) => JSON.parse(String(f.data)));
  }

  /** The device sends a text frame. */
  receive(message: unknown): void {
    this.emit('message', Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false);
  }

  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  terminate(): void {
    this.close(1006, '');
  }
}
