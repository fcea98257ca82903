import type { Scope } from './scope.js';

export interface IdleOptions {
  /** Inactivity after which the connection closes (read at every check, so reloads apply). */
  idleMs: () => number;
  /** How long before the close the warning goes out. */
  warningMs: () => number;
  /** While true (the server is speaking) the clock does not run. */
  paused: () => boolean;
  onWarning: () => void;
  onIdle: () => void;
}

/**
 * Idle close with a warning first. `touch()` only stores a timestamp, so the per-frame cost is one
 * assignment; the single timer re-arms itself from that timestamp when it fires.
 */
export class IdleMonitor {
  #last = Date.now();
  #warned = false;
  #cancel: () => void = () => {};

  constructor(
    private readonly scope: Scope,
    private readonly opts: IdleOptions,
  ) {
    this.#arm(this.#nextCheckIn(Date.now()));
  }

  touch(now = Date.now()): void {
    this.#last = now;
    this.#warned = false;
  }

  get lastActivity(): number {
    return this.#last;
  }

  #nextCheckIn(now: number): number {
    const idle = this.opts.idleMs();
    const warnAt = this.#last + Math.max(0, idle - this.opts.warningMs());
    const due = this.#warned ? this.#last + idle : warnAt;
    return Math.max(10, due - now);
  }

  #arm(ms: number): void {
    this.#cancel();
    this.#cancel = this.scope.timeout(ms, () => this.#check());
  }

  #check(): void {
    const now = Date.now();
    if (this.opts.paused()) this.touch(now);
    const idle = this.opts.idleMs();
    const elapsed = now - this.#last;
    if (elapsed >= idle) {
      this.opts.onIdle();
      return;
    }
    if (!this.#warned && elapsed >= idle - this.opts.warningMs()) {
      this.#warned = true;
      this.opts.onWarning();
    }
    this.#arm(this.#nextCheckIn(now));
  }
}
