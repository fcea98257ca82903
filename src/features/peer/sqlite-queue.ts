import type { Statement } from 'better-sqlite3';
import { applyMigrations, type Db } from '../../store/sqlite.js';
import {
  toQueuedMessage,
  type EnqueueItem,
  type EnqueueOutcome,
  type FlushView,
  type PeerQueue,
  type PeerQueueRow,
  type PendingWrite,
  type QueuedPeerMessage,
} from './queue.js';

/** Schema steps of the `peer` component (applied once per data file, in order). */
export const PEER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE peer_queue (
     seq        INTEGER PRIMARY KEY,
     device_id  TEXT NOT NULL,
     msg_id     TEXT NOT NULL,
     sender     TEXT NOT NULL,
     envelope   TEXT NOT NULL,
     queued_at  INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX peer_queue_device ON peer_queue(device_id, seq);
   CREATE INDEX peer_queue_expiry ON peer_queue(expires_at);`,
];

/** Rows deleted per statement when purging, so a big purge yields to the event loop between chunks. */
const PURGE_CHUNK = 1000;

/**
 * The embedded offline queue: one SQLite table (WAL). Enqueues and removals that arrive in the same event-loop turn
 * are committed together in one transaction (group commit), and every caller's promise resolves after that commit.
 * Order: `seq` is the rowid, always above every existing row, so a device's messages come back in enqueue order.
 * Durability is that of the store: WAL with synchronous=NORMAL survives a killed process (kill -9); an OS crash
 * may lose the last commits.
 */
export class SqlitePeerQueue implements PeerQueue {
  readonly #db: Db;
  readonly #insert: Statement<[string, string, string, string, number, number]>;
  readonly #count: Statement<[string, number], { n: number }>;
  /** Index-only (device_id, seq): the cheap count used by enqueue; expired rows are purged only when it says full. */
  readonly #countAll: Statement<[string], { n: number }>;
  readonly #peek: Statement<[string, number, number], PeerQueueRow>;
  readonly #waiting: Statement<[number, number], { deviceId: string; count: number }>;
  readonly #delete: Statement<[number]>;
  readonly #purgeAll: Statement<[number, number]>;
  readonly #purgeDevice: Statement<[string, number]>;
  #pending: PendingWrite[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(db: Db) {
    this.#db = db;
    applyMigrations(db, 'peer', PEER_MIGRATIONS);
    this.#insert = db.prepare(
      'INSERT INTO peer_queue (device_id, msg_id, sender, envelope, queued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.#count = db.prepare('SELECT COUNT(*) AS n FROM peer_queue WHERE device_id = ? AND expires_at > ?');
    this.#countAll = db.prepare('SELECT COUNT(*) AS n FROM peer_queue WHERE device_id = ?');
    this.#peek = db.prepare('SELECT * FROM peer_queue WHERE device_id = ? AND expires_at > ? ORDER BY seq LIMIT ?');
    this.#delete = db.prepare('DELETE FROM peer_queue WHERE seq = ?');
    this.#waiting = db.prepare(
      `SELECT device_id AS deviceId, COUNT(*) AS count FROM peer_queue WHERE expires_at > ?
       GROUP BY device_id ORDER BY count DESC, device_id LIMIT ?`,
    );
    this.#purgeAll = db.prepare(
      'DELETE FROM peer_queue WHERE seq IN (SELECT seq FROM peer_queue WHERE expires_at <= ? LIMIT ?)',
    );
    this.#purgeDevice = db.prepare('DELETE FROM peer_queue WHERE device_id = ? AND expires_at <= ?');
  }

  enqueue(items: readonly EnqueueItem[]): Promise<EnqueueOutcome[]> {
    if (this.#closed) return Promise.reject(new Error('peer queue is closed'));
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.#write({ kind: 'enqueue', items, resolve, reject }));
  }

  #write(w: PendingWrite): void {
    this.#pending.push(w);
    this.#scheduled ??= setImmediate(() => this.#commit());
  }

  async peek(deviceId: string, limit: number, now: number): Promise<QueuedPeerMessage[]> {
    this.#open();
    return this.#peek.all(deviceId, now, limit).map(toQueuedMessage);
  }

  remove(refs: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('peer queue is closed'));
    if (!refs.length) return Promise.resolve();
    // Group-committed like enqueues: devices flushing at the same time share one commit.
    return new Promise((resolve, reject) => this.#write({ kind: 'remove', refs, resolve, reject }));
  }

  /** One process owns the SQLite file: the feature's per-device lanes already run one flush at a time. */
  exclusive<T>(_deviceId: string, _now: number, fn: (q: FlushView) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async dropExpired(now: number, deviceId?: string): Promise<number> {
    this.#open();
    if (deviceId !== undefined) return this.#purgeDevice.run(deviceId, now).changes;
    let total = 0;
    for (;;) {
      const { changes } = this.#purgeAll.run(now, PURGE_CHUNK);
      total += changes;
      if (changes < PURGE_CHUNK || this.#closed) return total;
      await new Promise((r) => setImmediate(r));
    }
  }

  async count(deviceId: string, now: number): Promise<number> {
    this.#open();
    return this.#count.get(deviceId, now)?.n ?? 0;
  }

  async waiting(now: number, limit: number): Promise<{ deviceId: string; count: number }[]> {
    this.#open();
    return this.#waiting.all(now, limit);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#commit();
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new Error('peer queue is closed');
  }

  /** One transaction for every write that arrived since the last commit, applied in arrival order. */
  #commit(): void {
    this.#scheduled = undefined;
    const writes = this.#pending;
    this.#pending = [];
    if (!writes.length) return;
    let results: (EnqueueOutcome[] | undefined)[];
    try {
      results = this.#db.transaction(() => {
        const counts = new Map<string, number>();
        return writes.map((w) => {
          if (w.kind === 'remove') {
            for (const ref of w.refs) this.#delete.run(Number(ref));
            counts.clear();
            return undefined;
          }
          return w.items.map((item): EnqueueOutcome => {
            let n = counts.get(item.deviceId) ?? this.#countAll.get(item.deviceId)?.n ?? 0;
            if (n >= item.maxPerDevice) {
              // Expired rows still count until purged: purge this device's, then decide.
              this.#purgeDevice.run(item.deviceId, item.queuedAt);
              n = this.#countAll.get(item.deviceId)?.n ?? 0;
            }
            if (n >= item.maxPerDevice || item.expiresAt <= item.queuedAt) {
              counts.set(item.deviceId, n);
              return 'full';
            }
            const e = item.envelope;
            this.#insert.run(item.deviceId, e.id, e.from, JSON.stringify(e), item.queuedAt, item.expiresAt);
            counts.set(item.deviceId, n + 1);
            return 'queued';
          });
        });
      })();
    } catch (err) {
      for (const w of writes) w.reject(err);
      return;
    }
    writes.forEach((w, i) => {
      if (w.kind === 'remove') w.resolve();
      else w.resolve(results[i]!);
    });
  }
}
