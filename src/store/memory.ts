import type { Db } from './sqlite.js';

/**
 * Per-device dialogue memory (B7): one summary per device, replaced atomically on save. Async, so that the
 * PostgreSQL store of a cluster (store/postgres/memory.ts) can take the place of the SQLite one below.
 */
export interface MemoryStore {
  /** The device's summary, or '' when it has none. */
  load(deviceId: string): Promise<string>;
  save(deviceId: string, summary: string, now?: number): Promise<void>;
}

export class SqliteMemoryStore implements MemoryStore {
  readonly #get;
  readonly #put;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { summary: string }>('SELECT summary FROM memories WHERE device_id = ?');
    this.#put = db.prepare(
      'INSERT INTO memories (device_id, summary, updated_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET summary = excluded.summary, updated_at = excluded.updated_at',
    );
  }

  async load(deviceId: string): Promise<string> {
    return this.#get.get(deviceId)?.summary ?? '';
  }

  async save(deviceId: string, summary: string, now = Date.now()): Promise<void> {
    this.#put.run(deviceId, summary, now);
  }
}
