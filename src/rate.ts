/**
 * Fixed windows (one second by default) over the events of one source: frames, publishes, meeting snippets.
 * The limit is passed per call so that a reload applies at once.
 */
export class RateWindow {
  #windowStart = -Infinity;
  #count = 0;

  constructor(readonly windowMs = 1000) {}

  /** Admits as many of `n` items as the current window still allows; returns how many. */
  take(n: number, limit: number, now = Date.now()): number {
    if (now - this.#windowStart >= this.windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    const admitted = Math.max(0, Math.min(n, limit - this.#count));
    this.#count += admitted;
    return admitted;
  }

  /** Milliseconds until the current window ends. */
  remainingMs(now = Date.now()): number {
    return Math.max(0, this.#windowStart + this.windowMs - now);
  }

  /** One event: whether it fits in the current window. */
  admit(limit: number, now = Date.now()): boolean {
    return this.take(1, limit, now) === 1;
  }
}

/** Sweep the table once it holds this many keys, so that many sources stay bounded. */
const SWEEP_AT = 10_000;

/**
 * One RateWindow per key (a client address, a device id), swept of idle keys as the table grows. The next sweep
 * waits until the table has doubled from what a sweep left, so that live keys (long windows: an hour of OTA
 * claims) do not make every new key scan the whole table: amortized O(1) per key, at most twice the live keys.
 */
export class KeyedRateWindows {
  readonly #windows = new Map<string, RateWindow>();
  #sweepAt = SWEEP_AT;

  constructor(readonly windowMs = 1000) {}

  take(key: string, n: number, limit: number, now = Date.now()): number {
    let window = this.#windows.get(key);
    if (!window) {
      if (this.#windows.size >= this.#sweepAt) {
        this.#sweep(now);
        this.#sweepAt = Math.max(SWEEP_AT, 2 * this.#windows.size);
      }
      window = new RateWindow(this.windowMs);
      this.#windows.set(key, window);
    }
    return window.take(n, limit, now);
  }

  admit(key: string, limit: number, now = Date.now()): boolean {
    return this.take(key, 1, limit, now) === 1;
  }

  /** Milliseconds until a key's current window ends (0 when it has none running). */
  retryAfterMs(key: string, now = Date.now()): number {
    return this.#windows.get(key)?.remainingMs(now) ?? 0;
  }

  get size(): number {
    return this.#windows.size;
  }

  #sweep(now: number): void {
    for (const [key, window] of this.#windows) if (window.remainingMs(now) === 0) this.#windows.delete(key);
  }
}
