/** A fixed one-second window: admits up to `maxPerSecond` events per second from one source (frames, publishes). */
export class RateWindow {
  #windowStart = 0;
  #count = 0;

  admit(maxPerSecond: number, now = Date.now()): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
    return ++this.#count <= maxPerSecond;
  }
}
