import type { Db } from './sqlite.js';

/** Per-device dialogue memory (B7): one summary per device, replaced atomically on save. */
export class MemoryStore {
  readonly #get;
  readonly #put;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { summary: string }>('SELECT summary FROM memories WHERE device_id = ?');
    this.#put = db.prepare(
      'INSERT INTO memories (device_id, summary, updated_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET summary = excluded.summary, updated_at = excluded.updated_at',
    );
  }

  load(deviceId: string): string {
    return this.#get.get(deviceId)?.summary ?? '';
  }

  save(deviceId: string, summary: string, now = Date.now()): void {
    this.#put.run(deviceId, summary, now);
  }
}
