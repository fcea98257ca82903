/**
 * Readings at a fixed interval for the report's charts (server RSS, CPU, open fds, ...): one reading function,
 * any number of named values per reading, t in seconds from start(). A reading still in flight when the next
 * is due is not doubled; a failed reading is skipped.
 */
import type { Series } from './profile.js';

export type Reading = Record<string, number>;

export class Sampler {
  readonly points = new Map<string, Array<[number, number]>>();
  /** Date.now() at start(): the origin of t. */
  startedAt = 0;
  #t0 = 0;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly everyMs: number,
    private readonly read: () => Reading | Promise<Reading>,
  ) {}

  start(): this {
    this.startedAt = Date.now();
    this.#t0 = performance.now();
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.everyMs);
    return this;
  }

  /** Seconds since start() for a Date.now() value. */
  t(epochMs: number): number {
    return (epochMs - this.startedAt) / 1000;
  }

  /** Takes a reading now (also used for the readings around a phase). */
  async sample(): Promise<Reading | undefined> {
    if (this.#busy) return undefined;
    this.#busy = true;
    try {
      const t = (performance.now() - this.#t0) / 1000;
      const r = await this.read();
      for (const [k, v] of Object.entries(r)) {
        if (!Number.isFinite(v)) continue;
        let pts = this.points.get(k);
        if (!pts) this.points.set(k, (pts = []));
        pts.push([t, v]);
      }
      return r;
    } catch {
      return undefined;
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  series(key: string, name: string, unit: string): Series {
    return { name, unit, points: [...(this.points.get(key) ?? [])] };
  }
}
