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

  /** One event: whether it fits in the current window. */
  admit(limit: number, now = Date.now()): boolean {
    return this.take(1, limit, now) === 1;
  }
}
