/**
 * Start-up as an ordered list of parts (the store, the threads, the features, the listener...). A part's close is
 * registered the moment the part exists, and `close()` runs the closes in reverse: the same order on a normal stop
 * and after a start that failed half-way, so a failed start leaves nothing running. The model is fastify's
 * `onClose` hooks and ws's `addListeners` / `removeListeners` pairs.
 */

/** What every close gets: why we stop, and a signal that aborts when the stop's time budget is spent. */
export interface Stop {
  readonly reason: string;
  /** Aborts at the stop's deadline: a close that waits (connections, saves, log output) waits no longer. */
  readonly deadline: AbortSignal;
}

export type Close = (stop: Stop) => void | Promise<void>;

export interface LifecycleOptions {
  /** The whole stop's budget, read when the stop begins (a reloaded config applies). */
  budgetMs: () => number;
  /** A close that threw or rejected; the closes after it still run. */
  onError: (err: unknown, part: string) => void;
}

export class Lifecycle {
  readonly #closes: { part: string; close: Close }[] = [];
  readonly #opts: LifecycleOptions;
  #stopping: Promise<void> | undefined;

  constructor(opts: LifecycleOptions) {
    this.#opts = opts;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Registers the close of a part that exists now. */
  add(part: string, close: Close): void {
    // Nothing may start once the stop has begun: its close would never run.
    if (this.#stopping) throw new Error(`part "${part}" started while stopping`);
    this.#closes.push({ part, close });
  }

  /** Makes a part and registers its close in one step; returns the part. */
  start<T>(part: string, make: () => T, close: (value: T, stop: Stop) => void | Promise<void>): T {
    const value = make();
    this.add(part, (stop) => close(value, stop));
    return value;
  }

  /** Runs every close once, last registered first, each awaited. Later calls return the same promise. */
  close(reason: string): Promise<void> {
    this.#stopping ??= this.#run(reason);
    return this.#stopping;
  }

  async #run(reason: string): Promise<void> {
    const ms = this.#opts.budgetMs();
    const budget = new AbortController();
    const timer = setTimeout(() => budget.abort(new Error(`stop took longer than ${ms} ms`)), ms);
    const stop: Stop = { reason, deadline: budget.signal };
    try {
      for (const { part, close } of [...this.#closes].reverse()) {
        try {
          await close(stop);
        } catch (err) {
          this.#opts.onError(err, part);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Waits for `work` until `deadline` aborts, whichever is first. A rejection of `work` is its owner's to report. */
export function until(work: Promise<unknown>, deadline: AbortSignal): Promise<void> {
  if (deadline.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      deadline.removeEventListener('abort', done);
      resolve();
    };
    deadline.addEventListener('abort', done, { once: true });
    work.then(done, done);
  });
}
