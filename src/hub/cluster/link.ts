import { EventEmitter } from 'node:events';
import { Redis, ReplyError } from 'ioredis';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';

/**
 * A call that needs Redis while it cannot be reached (or did not answer in time). Callers fall back: a peer
 * message goes to the durable queue, a count to the local one.
 */
export class ClusterUnavailableError extends Error {
  override readonly name = 'ClusterUnavailableError';
}

export interface LinkHealth {
  /** `connecting` before the first connect, `degraded` while a connection is down, `closed` after close. */
  status: 'connecting' | 'ok' | 'degraded' | 'closed';
  /** Why it is not ok (the last connection error). */
  reason?: string;
  /** When the status last changed (ms since the epoch). */
  since: number;
}

export interface RedisLinkOptions {
  /** `cluster.redis_url`. */
  redisUrl: string;
  /** Shown in `CLIENT LIST` (`<name>:cmd`, `<name>:read`): tells this node's connections apart. */
  name: string;
  log: Logger;
  /** A command not answered within this fails with ClusterUnavailableError (default 1000). */
  commandTimeoutMs?: number;
  /** The first connect at start gives up after this (default 3000): a start-up error, not a hang. */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect back-off (default 2000). */
  maxBackoffMs?: number;
}

export interface LinkEvents {
  /** Both connections are up again (or for the first time). `reset`: the Redis server is a new one (restarted). */
  ready: [info: { reset: boolean }];
  degraded: [reason: string];
}

/** Back-off before reconnect attempt `n` (1-based): 100, 200, 400 ... ms up to the cap, with ±20 % jitter. */
export function backoffMs(n: number, capMs: number): number {
  const base = Math.min(capMs, 100 * 2 ** Math.min(n - 1, 16));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

type Which = 'cmd' | 'read';

/**
 * The Redis connections of one node: `cmd` for commands (fails fast: no offline queue, a command timeout) and
 * `read` for the bus's blocking XREAD, which must not share a connection with anything. Reconnects on its own
 * with back-off; `health()` says `degraded` with the reason while either connection is down, for /health.
 */
export class RedisLink extends EventEmitter<LinkEvents> {
  readonly cmd: Redis;
  readonly read: Redis;
  readonly #opts: RedisLinkOptions;
  readonly #scope = new Scope('redis-link');
  #up: Record<Which, boolean> = { cmd: false, read: false };
  #health: LinkHealth = { status: 'connecting', since: Date.now() };
  #runId: string | undefined;
  #closed = false;

  constructor(opts: RedisLinkOptions) {
    super();
    this.#opts = opts;
    const common = {
      lazyConnect: true,
      // Fail fast instead of queueing while down: callers fall back to the durable queue (issue #10, failures).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: opts.connectTimeoutMs ?? 3000,
      retryStrategy: (n: number) => (this.#closed ? null : backoffMs(n, opts.maxBackoffMs ?? 2000)),
    };
    this.cmd = new Redis(opts.redisUrl, {
      ...common,
      connectionName: `${opts.name}:cmd`,
      // Commands issued in the same tick go out in one write: one syscall per burst, not per message.
      enableAutoPipelining: true,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
    });
    // No command timeout: XREAD BLOCK waits on purpose.
    this.read = new Redis(opts.redisUrl, { ...common, connectionName: `${opts.name}:read` });
    for (const [which, conn] of [
      ['cmd', this.cmd],
      ['read', this.read],
    ] as const) {
      this.#scope.on(conn, 'ready', () => this.#onUp(which));
      this.#scope.on(conn, 'error', (err: Error) => this.#onDown(which, errorMessage(err)));
      this.#scope.on(conn, 'close', () => this.#onDown(which, 'connection closed'));
    }
  }

  /** Connects both; rejects with ClusterUnavailableError (naming `cluster.redis_url` and the cause) if it cannot. */
  async start(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.read.connect()]);
      await this.#whenOk(this.#opts.connectTimeoutMs ?? 3000);
    } catch (err) {
      const reason = this.#health.reason ?? errorMessage(err);
      this.close();
      throw new ClusterUnavailableError(`cluster.redis_url: cannot reach Redis (${reason})`);
    }
  }

  health(): LinkHealth {
    return { ...this.#health };
  }

  get ok(): boolean {
    return this.#health.status === 'ok';
  }

  /** Throws ClusterUnavailableError unless both connections are up. */
  require(): void {
    if (this.#health.status !== 'ok')
      throw new ClusterUnavailableError(`Redis unavailable: ${this.#health.reason ?? this.#health.status}`);
  }

  /**
   * Runs commands on `cmd`. Fails fast while degraded; a lost connection or a timeout becomes
   * ClusterUnavailableError, a Redis error reply (a bug of ours) stays what it is.
   */
  async call<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    this.require();
    try {
      return await fn(this.cmd);
    } catch (err) {
      if (err instanceof ReplyError) throw err;
      throw new ClusterUnavailableError(`Redis unavailable: ${errorMessage(err)}`);
    }
  }

  /** Resolves when the link is ok (at once if it is), or rejects when the signal aborts. */
  whenReady(signal: AbortSignal): Promise<void> {
    if (this.ok) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.off('ready', done);
        signal.removeEventListener('abort', done);
        if (signal.aborted) reject(signal.reason as Error);
        else resolve();
      };
      this.on('ready', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Idempotent: both connections are closed and stop reconnecting. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#set('closed', 'closed');
    this.#scope.close();
    this.cmd.disconnect();
    this.read.disconnect();
  }

  async #whenOk(timeoutMs: number): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
    try {
      await this.whenReady(ac.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  #set(status: LinkHealth['status'], reason?: string): void {
    this.#health = { status, ...(reason ? { reason } : {}), since: Date.now() };
  }

  #onDown(which: Which, cause: string): void {
    if (this.#closed) return;
    this.#up[which] = false;
    const reason = `Redis ${which === 'cmd' ? 'command' : 'bus'} connection: ${cause}`;
    if (this.#health.status === 'ok') {
      this.#set('degraded', reason);
      this.#opts.log.warn({ reason }, 'Redis link degraded; serving local devices only');
      this.emit('degraded', reason);
    } else if (cause !== 'connection closed' || !this.#health.reason) {
      // Keep the most telling reason (ECONNREFUSED rather than the close that follows it).
      this.#health.reason = reason;
    }
  }

  #onUp(which: Which): void {
    this.#up[which] = true;
    if (!this.#up.cmd || !this.#up.read || this.#closed) return;
    void this.#scope.run('recover', async () => {
      // A new run_id means a new Redis (restarted, nothing kept): the bus re-reads its streams from the start.
      let runId: string | undefined;
      try {
        runId = /run_id:(\w+)/.exec(await this.cmd.info('server'))?.[1];
      } catch (err) {
        // The connection dropped again at once: its close event has marked the link down, the next ready retries.
        this.#onDown('cmd', errorMessage(err));
        return;
      }
      if (!this.#up.cmd || !this.#up.read || this.#closed) return;
      const reset = this.#runId !== undefined && runId !== this.#runId;
      this.#runId = runId;
      const was = this.#health.status;
      this.#set('ok');
      if (was === 'degraded') this.#opts.log.info({ reset }, 'Redis link recovered');
      this.emit('ready', { reset });
    });
  }
}
