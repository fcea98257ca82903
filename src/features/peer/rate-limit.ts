/**
 * Sliding-window limits per key (a sending device): at most `limit` accepted events in any `windowMs`.
 * A refusal says how long to wait. Keys whose events are all older than their window are forgotten by `sweep`.
 */
export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

export class SlidingWindowLimiter {
  #events = new Map<string, number[]>();

  /** Records the event when it is allowed. `limit` and `windowMs` are read per call, so config reloads apply at once. */
  take(key: string, limit: number, windowMs: number, now = Date.now()): RateDecision {
    let list = this.#events.get(key);
    if (!list) {
      list = [];
      this.#events.set(key, list);
    }
    while (list.length && list[0]! <= now - windowMs) list.shift();
    if (list.length >= limit) {
      // The event that frees a slot is the (length - limit + 1)-th oldest.
      const freeing = list[list.length - limit] ?? list[0]!;
      return { ok: false, retryAfterMs: Math.max(1, freeing + windowMs - now) };
    }
    list.push(now);
    return { ok: true };
  }

  /** Forgets keys with no event in the last `windowMs`. */
  sweep(windowMs: number, now = Date.now()): void {
    for (const [key, list] of this.#events)
      if (!list.length || list[list.length - 1]! <= now - windowMs) this.#events.delete(key);
  }

  get size(): number {
    return this.#events.size;
  }
}
