import { errorMessage } from '../errors.js';

export type Disposer = () => void;

export interface ScopeErrorSink {
  (error: unknown, where: string): void;
}

type Listener = (...args: never[]) => void;

interface Emitterish<L extends Listener> {
  on(event: string, listener: L): unknown;
  off(event: string, listener: L): unknown;
}

/**
 * A scope owns everything a session (or a turn, or a meeting) starts: timers, intervals, listeners,
 * child scopes, tasks. `close()` disposes all of it in reverse order, once; later calls do nothing.
 * Nothing in a session creates a timer or a listener except through its scope.
 */
export class Scope {
  readonly name: string;
  #disposers = new Set<Disposer>();
  #closed = false;
  #controller: AbortController | undefined;
  // Tasks are rare on a scope; the set is made when the first one starts.
  #tasks: Set<Promise<unknown>> | undefined;
  readonly #onError: ScopeErrorSink;

  constructor(name: string, onError: ScopeErrorSink = defaultErrorSink) {
    this.name = name;
    this.#onError = onError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Aborted when the scope closes: hand it to every provider call and stream started in this scope. */
  get signal(): AbortSignal {
    // Made on first use: most scopes never hand out a signal.
    this.#controller ??= new AbortController();
    if (this.#closed && !this.#controller.signal.aborted)
      this.#controller.abort(new Error(`scope ${this.name} closed`));
    return this.#controller.signal;
  }

  /** Registers a disposer. On a closed scope it runs at once, so nothing can leak past close. */
  add(dispose: Disposer): Disposer {
    if (this.#closed) {
      this.#safe(dispose, 'dispose');
      return noop;
    }
    this.#disposers.add(dispose);
    return () => {
      if (this.#disposers.delete(dispose)) this.#safe(dispose, 'dispose');
    };
  }

  /** A one-shot timer. The returned function cancels it. */
  timeout(ms: number, fn: () => void): Disposer {
    if (this.#closed) return noop;
    const clear: Disposer = () => clearTimeout(handle);
    const handle = setTimeout(() => {
      this.#disposers.delete(clear);
      this.#safe(fn, 'timeout');
    }, ms);
    this.#disposers.add(clear);
    return () => {
      if (this.#disposers.delete(clear)) clear();
    };
  }

  interval(ms: number, fn: () => void): Disposer {
    if (this.#closed) return noop;
    const handle = setInterval(() => this.#safe(fn, 'interval'), ms);
    return this.add(() => clearInterval(handle));
  }

  on<L extends Listener>(emitter: Emitterish<L>, event: string, listener: L): Disposer {
    if (this.#closed) return noop;
    emitter.on(event, listener);
    return this.add(() => emitter.off(event, listener));
  }

  /** A child scope, closed with this one (or earlier, on its own). */
  child(name: string): Scope {
    const child = new Scope(`${this.name}/${name}`, this.#onError);
    if (this.#closed) {
      child.close();
      return child;
    }
    const closeChild: Disposer = () => child.close();
    this.#disposers.add(closeChild);
    // A child closed first unregisters itself, so long-lived parents do not collect dead children.
    child.#disposers.add(() => this.#disposers.delete(closeChild));
    return child;
  }

  /**
   * Runs an async task owned by this scope: it gets the scope's signal, its rejection is reported
   * instead of escaping, and `drain()` can await it.
   */
  run(name: string, task: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const p = (async () => {
      try {
        await task(this.signal);
      } catch (err) {
        if (!this.signal.aborted) this.#onError(err, `${this.name}:${name}`);
      }
    })();
    const tasks = (this.#tasks ??= new Set());
    tasks.add(p);
    void p.finally(() => tasks.delete(p));
    return p;
  }

  /** Waits for the tasks started with `run` (for shutdown paths that must finish their saves). */
  async drain(): Promise<void> {
    while (this.#tasks && this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller?.abort(new Error(`scope ${this.name} closed`));
    const all = [...this.#disposers].reverse();
    this.#disposers.clear();
    for (const d of all) this.#safe(d, 'dispose');
  }

  #safe(fn: () => void, where: string): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err, `${this.name}:${where}`);
    }
  }
}

function noop(): void {}

function defaultErrorSink(error: unknown, where: string): void {
  process.emitWarning(`scope error in ${where}: ${errorMessage(error)}`);
}
