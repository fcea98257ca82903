import {
  toQueuedMessage,
  type EnqueueItem,
  type EnqueueOutcome,
  type FlushView,
  type PeerQueue,
  type PeerQueueRow,
  type PendingWrite,
  type QueuedPeerMessage,
} from '../../features/peer/queue.js';
import type { PgDb, Sql } from './pool.js';

/**
 * The offline queue in PostgreSQL (D16, D19), shared by every node: the contract of SqlitePeerQueue
 * (peer/sqlite-queue.ts). Writes are group-committed the same way: everything that arrives while the previous
 * commit is in flight goes into the next transaction, in arrival order, and each caller's promise resolves after
 * that commit. One commit at a time per node keeps a device's messages in enqueue order on this node; across
 * nodes, a per-device advisory lock makes "count, then insert" one step (the cap holds) and orders the commits,
 * so `seq` order is commit order for each device.
 */

/** Rows deleted per statement when purging, so a big purge does not hold one long transaction. */
const PURGE_CHUNK = 1000;

/** The view of a flush that found nothing: a message queued after that check is flushed by its sender's nudge. */
const NOTHING_QUEUED: FlushView = { peek: () => Promise.resolve([]), remove: () => Promise.resolve() };

async function peekWith(sql: Sql, deviceId: string, limit: number, now: number): Promise<QueuedPeerMessage[]> {
  const rows = await sql.rows<PeerQueueRow>(
    'SELECT * FROM peer_queue WHERE device_id = $1 AND expires_at > $2 ORDER BY seq LIMIT $3',
    [deviceId, now, limit],
  );
  return rows.map(toQueuedMessage);
}

export class PgPeerQueue implements PeerQueue {
  readonly #db: PgDb;
  #pending: PendingWrite[] = [];
  /** The commit in flight, if any; the next one starts when it ends. */
  #committing: Promise<void> | undefined;
  #closed = false;

  constructor(db: PgDb) {
    this.#db = db;
  }

  enqueue(items: readonly EnqueueItem[]): Promise<EnqueueOutcome[]> {
    if (this.#closed) return Promise.reject(new Error('peer queue is closed'));
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.#write({ kind: 'enqueue', items, resolve, reject }));
  }

  remove(refs: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('peer queue is closed'));
    if (!refs.length) return Promise.resolve();
    return new Promise((resolve, reject) => this.#write({ kind: 'remove', refs, resolve, reject }));
  }

  peek(deviceId: string, limit: number, now: number): Promise<QueuedPeerMessage[]> {
    this.#open();
    return peekWith(this.#db, deviceId, limit, now);
  }

  /**
   * The flush's transaction holds a per-device advisory lock: a flush of the device on another node waits for it
   * and then reads only what this one left. Its reads and removals run on that transaction's connection (a flush
   * never waits for a second one from the pool), committed when `fn` ends; a node killed meanwhile rolls them back
   * (what it wrote to the socket comes again: at least once). A device with nothing queued (most registers)
   * costs one read and no transaction.
   */
  async exclusive<T>(deviceId: string, now: number, fn: (q: FlushView) => Promise<T>): Promise<T> {
    this.#open();
    if (!(await this.peek(deviceId, 1, now)).length) return fn(NOTHING_QUEUED);
    return this.#db.tx(async (sql) => {
      // Bounded both ways: a flush stuck behind a device that stopped reading (or a node cut off from the network)
      // is ended by PostgreSQL after 30 s idle, which rolls it back and frees the lock (its messages stay queued);
      // another node waits for the lock at most 5 s, then its flush fails and the messages wait for the next one.
      await sql.exec("SET LOCAL idle_in_transaction_session_timeout = '30s'");
      await sql.exec("SET LOCAL lock_timeout = '5s'");
      await sql.exec('SELECT pg_advisory_xact_lock(hashtext($1))', [`peer-flush:${deviceId}`]);
      return fn({
        peek: (id, limit, now) => peekWith(sql, id, limit, now),
        remove: async (refs) => {
          if (refs.length) await sql.exec('DELETE FROM peer_queue WHERE seq = ANY($1::bigint[])', [refs.map(Number)]);
        },
      });
    });
  }

  async dropExpired(now: number, deviceId?: string): Promise<number> {
    this.#open();
    if (deviceId !== undefined)
      return this.#db.exec('DELETE FROM peer_queue WHERE device_id = $1 AND expires_at <= $2', [deviceId, now]);
    let total = 0;
    for (;;) {
      const n = await this.#db.exec(
        'DELETE FROM peer_queue WHERE seq IN (SELECT seq FROM peer_queue WHERE expires_at <= $1 LIMIT $2)',
        [now, PURGE_CHUNK],
      );
      total += n;
      if (n < PURGE_CHUNK || this.#closed) return total;
    }
  }

  async count(deviceId: string, now: number): Promise<number> {
    this.#open();
    const row = await this.#db.row<{ n: number }>(
      'SELECT COUNT(*) AS n FROM peer_queue WHERE device_id = $1 AND expires_at > $2',
      [deviceId, now],
    );
    return row?.n ?? 0;
  }

  async waiting(now: number, limit: number): Promise<{ deviceId: string; count: number }[]> {
    this.#open();
    return this.#db.rows(
      `SELECT device_id AS "deviceId", COUNT(*) AS count FROM peer_queue WHERE expires_at > $1
       GROUP BY device_id ORDER BY count DESC, device_id LIMIT $2`,
      [now, limit],
    );
  }

  /** Commits what is pending (awaiting the commit in flight first); later calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#committing || this.#pending.length) {
      if (this.#committing) await this.#committing;
      else this.#kick();
    }
  }

  #open(): void {
    if (this.#closed) throw new Error('peer queue is closed');
  }

  #write(w: PendingWrite): void {
    this.#pending.push(w);
    this.#kick();
  }

  #kick(): void {
    if (this.#committing || !this.#pending.length) return;
    const writes = this.#pending;
    this.#pending = [];
    this.#committing = this.#commit(writes).finally(() => {
      this.#committing = undefined;
      this.#kick();
    });
  }

  /** One transaction for the writes, applied in arrival order; every caller is answered (never rejects). */
  async #commit(writes: PendingWrite[]): Promise<void> {
    let results: (EnqueueOutcome[] | undefined)[];
    try {
      results = await this.#db.tx((sql) => apply(sql, writes));
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

/**
 * Inside one transaction: the removals and enqueues of a batch, in arrival order. Enqueues are decided per item
 * against each device's count (expired rows count until purged, as in SQLite) and inserted with one statement per
 * run of consecutive enqueues.
 */
async function apply(sql: Sql, writes: readonly PendingWrite[]): Promise<(EnqueueOutcome[] | undefined)[]> {
  const devices = new Set<string>();
  for (const w of writes) if (w.kind === 'enqueue') for (const it of w.items) devices.add(it.deviceId);
  const counts = new Map<string, number>();
  if (devices.size) {
    const sorted = [...devices].sort();
    // Sorted, so that two nodes locking overlapping devices never wait on each other in a circle. The count is a
    // statement of its own: under READ COMMITTED its snapshot is taken after the locks, so it sees the rows of a
    // transaction that held one of them before us.
    await sql.exec(
      "SELECT pg_advisory_xact_lock(hashtext('peer:' || d)) FROM unnest($1::text[]) WITH ORDINALITY AS t(d, n) ORDER BY n",
      [sorted],
    );
    const rows = await sql.rows<{ device_id: string; n: number }>(
      'SELECT device_id, COUNT(*) AS n FROM peer_queue WHERE device_id = ANY($1::text[]) GROUP BY device_id',
      [sorted],
    );
    for (const d of sorted) counts.set(d, 0);
    for (const r of rows) counts.set(r.device_id, r.n);
  }
  const batch: EnqueueItem[] = [];
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    await sql.exec(
      `INSERT INTO peer_queue (device_id, msg_id, sender, envelope, queued_at, expires_at)
       SELECT d, m, s, e, q, x FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
         WITH ORDINALITY AS t(d, m, s, e, q, x, n) ORDER BY n`,
      [
        batch.map((i) => i.deviceId),
        batch.map((i) => i.envelope.id),
        batch.map((i) => i.envelope.from),
        batch.map((i) => JSON.stringify(i.envelope)),
        batch.map((i) => i.queuedAt),
        batch.map((i) => i.expiresAt),
      ],
    );
    batch.length = 0;
  };
  const results: (EnqueueOutcome[] | undefined)[] = [];
  for (const w of writes) {
    if (w.kind === 'remove') {
      await flush();
      const refs = w.refs.map(Number);
      const gone = await sql.rows<{ device_id: string }>(
        'DELETE FROM peer_queue WHERE seq = ANY($1::bigint[]) RETURNING device_id',
        [refs],
      );
      for (const g of gone) if (counts.has(g.device_id)) counts.set(g.device_id, counts.get(g.device_id)! - 1);
      results.push(undefined);
      continue;
    }
    const outcomes: EnqueueOutcome[] = [];
    for (const item of w.items) {
      let n = counts.get(item.deviceId)!;
      if (n >= item.maxPerDevice) {
        // Expired rows still count until purged: purge this device's, then decide.
        await flush();
        n -= await sql.exec('DELETE FROM peer_queue WHERE device_id = $1 AND expires_at <= $2', [
          item.deviceId,
          item.queuedAt,
        ]);
      }
      if (n >= item.maxPerDevice || item.expiresAt <= item.queuedAt) {
        counts.set(item.deviceId, n);
        outcomes.push('full');
        continue;
      }
      batch.push(item);
      counts.set(item.deviceId, n + 1);
      outcomes.push('queued');
    }
    results.push(outcomes);
  }
  await flush();
  return results;
}
