import type { MemoryStore } from '../memory.js';
import type { PgDb } from './pool.js';

/** Dialogue memory in PostgreSQL: the contract of SqliteMemoryStore (store/memory.ts), shared by every node. */
export class PgMemoryStore implements MemoryStore {
  constructor(private readonly db: PgDb) {}

  async load(deviceId: string): Promise<string> {
    return (
      (await this.db.row<{ summary: string }>('SELECT summary FROM memories WHERE device_id = $1', [deviceId]))
        ?.summary ?? ''
    );
  }

  async save(deviceId: string, summary: string, now = Date.now()): Promise<void> {
    await this.db.exec(
      `INSERT INTO memories (device_id, summary, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (device_id) DO UPDATE SET summary = excluded.summary, updated_at = excluded.updated_at`,
      [deviceId, summary, now],
    );
  }
}
