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
 * Idle close with a warning first. `touch()` only stores a timestamp, so the per-frame cost is one assignment,
 * and there is no timer per connection: the server's sweep calls `check()` for every session, which keeps
 * 20,000 idle connections from holding 20,000 timers.
 */
export class IdleMonitor {
  #last = Date.now();
  #warned = false;
  #warnedAt = 0;

  constructor(private readonly opts: IdleOptions) {}

  touch(now = Date.now()): void {
    this.#last = now;
    this.#warned = false;
  }

  get lastActivity(): number {
    return this.#last;
  }

  /** Sends the warning or closes when due; returns true when the connection was found idle. */
  check(now = Date.now()): boolean {
    if (this.opts.paused()) {
      this.touch(now);
      return false;
    }
    const idle = this.opts.idleMs();
    const warning = this.opts.warningMs();
    const elapsed = now - this.#last;
    if (!this.#warned && elapsed >= idle - warning) {
      this.#warned = true;
      this.#warnedAt = now;
      this.opts.onWarning();
    }
    // Never a close without its warning: a sweep that ran late (a busy box) still gives the device its notice.
    if (elapsed >= idle && now - this.#warnedAt >= Math.min(warning, idle)) {
      this.opts.onIdle();
      return true;
    }
    return false;
  }
}
