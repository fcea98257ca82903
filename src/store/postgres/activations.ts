import { randomBytes } from 'node:crypto';
import {
  activationCodeOf,
  CODE_ATTEMPTS,
  newActivationCode,
  toRecord,
  type ActivationRecord,
  type ActivationRow,
  type ActivationStore,
} from '../activation.js';
import type { PgDb } from './pool.js';

/** Activations in PostgreSQL: the contract of SqliteActivationStore (store/activation.ts), shared by every node. */
export class PgActivationStore implements ActivationStore {
  /** `codes`: the code generator (a test passes one that repeats itself, to make a collision happen). */
  constructor(
    private readonly db: PgDb,
    private readonly codes: () => string = newActivationCode,
  ) {}

  async get(deviceId: string): Promise<ActivationRecord | undefined> {
    const row = await this.db.row<ActivationRow>('SELECT * FROM activations WHERE device_id = $1', [deviceId]);
    return row ? toRecord(row) : undefined;
  }

  async isActivated(deviceId: string): Promise<boolean> {
    return ((await this.get(deviceId))?.activatedAt ?? null) !== null;
  }

  /**
   * Atomic across nodes without a lock: the INSERT does nothing when the device already has a record (another
   * node's, maybe just written) or when the code is pending for another device (the partial unique index); the
   * read tells which, and only a code collision tries another code.
   */
  async issue(deviceId: string, clientId: string, now = Date.now()): Promise<ActivationRecord> {
    for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
      const existing = await this.get(deviceId);
      if (existing) return existing;
      const row = await this.db.row<ActivationRow>(
        `INSERT INTO activations (device_id, client_id, code, challenge, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING RETURNING *`,
        [deviceId, clientId, this.codes(), randomBytes(16).toString('hex'), now],
      );
      if (row) return toRecord(row);
    }
    const last = await this.get(deviceId);
    if (last) return last;
    throw new Error('could not allocate a free activation code');
  }

  /** One UPDATE: of two admins entering the same code, one activates and the other finds no pending device. */
  async activateByCode(code: string, now = Date.now()): Promise<ActivationRecord | undefined> {
    const wanted = activationCodeOf(code);
    if (!wanted) return undefined;
    const row = await this.db.row<ActivationRow>(
      'UPDATE activations SET activated_at = $1 WHERE code = $2 AND activated_at IS NULL RETURNING *',
      [now, wanted],
    );
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ActivationRecord[]> {
    const rows = await this.db.rows<ActivationRow>('SELECT * FROM activations ORDER BY created_at DESC LIMIT 500');
    return rows.map(toRecord);
  }
}
