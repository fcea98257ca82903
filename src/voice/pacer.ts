import { performance } from 'node:perf_hooks';
import type { Scope } from '../session/scope.js';

export interface PacerOptions<F = Buffer> {
  scope: Scope;
  frameMs: number;
  prebufferFrames: number;
  sendAudio: (frame: F) => boolean;
  sendControl: (message: { type: string } & Record<string, unknown>) => boolean;
  /** Called with the gap between two consecutive audio sends, for the late-frame metric. */
  onFrameSent?: (intervalMs: number, leadMs: number) => void;
  now?: () => number;
}

type Item<F> = { audio: F } | { control: { type: string } & Record<string, unknown> };

/**
 * Downlink pacing by absolute deadlines (D10). With the play clock anchored when the first frame goes out,
 * frame i plays at anchor + i·frame; it is sent `prebuffer` frames ahead of that, never earlier, so the
 * device holds at most `prebuffer` frames beyond what it is playing (far under its 40-frame queue).
 * When the device has run dry (a gap between TTS sentences) the clock re-anchors with a fresh pre-buffer
 * instead of bursting to catch up. Control messages (sentence_start) queue in order and take no play time.
 */
export class Pacer<F = Buffer> {
  #queue: Item<F>[] = [];
  #head = 0;
  #anchor = -1;
  #index = 0;
  #lastSend = -1;
  #cancelTimer: () => void = () => {};
  #timerAt = -1;
  #waiters: (() => void)[] = [];
  #framesSent = 0;
  readonly #o: PacerOptions<F>;
  readonly #now: () => number;

  constructor(options: PacerOptions<F>) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    options.scope.add(() => this.clear());
  }

  get framesSent(): number {
    return this.#framesSent;
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  enqueueAudio(frame: F): void {
    this.#queue.push({ audio: frame });
    this.#pump();
  }

  enqueueControl(message: { type: string } & Record<string, unknown>): void {
    this.#queue.push({ control: message });
    this.#pump();
  }

  /** Resolves once everything queued so far was sent and the device has had time to play it. */
  whenPlayed(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#pump();
    });
  }

  /** Drops what is queued (abort). Waiters are released: nothing more will play. */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#cancelTimer();
    this.#timerAt = -1;
    this.#release();
  }

  #playEnd(): number {
    return this.#anchor < 0 ? -1 : this.#anchor + this.#index * this.#o.frameMs;
  }

  #pump(): void {
    const { frameMs, prebufferFrames } = this.#o;
    for (;;) {
      const item = this.#queue[this.#head];
      const now = this.#now();
      if (!item) {
        this.#queue = [];
        this.#head = 0;
        if (this.#waiters.length) {
          const end = this.#playEnd();
          if (end <= now) this.#release();
          else this.#arm(end);
        }
        return;
      }
      if ('control' in item) {
        this.#head++;
        this.#o.sendControl(item.control);
        continue;
      }
      // The device has played everything: start a new pre-buffer rather than bursting to catch up.
      if (this.#anchor < 0 || now >= this.#playEnd()) {
        this.#anchor = now;
        this.#index = 0;
      }
      const due = this.#anchor + Math.max(0, this.#index - prebufferFrames + 1) * frameMs;
      if (due > now + 0.5) {
        this.#arm(due);
        return;
      }
      this.#head++;
      this.#index++;
      this.#o.sendAudio(item.audio);
      this.#framesSent++;
      this.#o.onFrameSent?.(this.#lastSend < 0 ? 0 : now - this.#lastSend, this.#playEnd() - now);
      this.#lastSend = now;
    }
  }

  #arm(at: number): void {
    if (this.#timerAt === at) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#cancelTimer = this.#o.scope.timeout(Math.max(0, at - this.#now()), () => {
      this.#timerAt = -1;
      this.#pump();
    });
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
