import { randomBytes, randomInt } from 'node:crypto';
import type { Db } from './sqlite.js';

export interface ActivationRecord {
  deviceId: string;
  clientId: string;
  code: string;
  challenge: string;
  createdAt: number;
  activatedAt: number | null;
}

interface Row {
  device_id: string;
  client_id: string;
  code: string;
  challenge: string;
  created_at: number;
  activated_at: number | null;
}

const toRecord = (r: Row): ActivationRecord => ({
  deviceId: r.device_id,
  clientId: r.client_id,
  code: r.code,
  challenge: r.challenge,
  createdAt: r.created_at,
  activatedAt: r.activated_at,
});

/** Device activation with a 6-digit code (the firmware shows and speaks it), kept in SQLite. */
export class ActivationStore {
  readonly #get;
  readonly #insert;
  readonly #byCode;
  readonly #activate;
  readonly #list;

  constructor(private readonly db: Db) {
    this.#get = db.prepare<[string], Row>('SELECT * FROM activations WHERE device_id = ?');
    this.#insert = db.prepare(
      'INSERT INTO activations (device_id, client_id, code, challenge, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.#byCode = db.prepare<[string], Row>('SELECT * FROM activations WHERE code = ? AND activated_at IS NULL');
    this.#activate = db.prepare('UPDATE activations SET activated_at = ? WHERE device_id = ? AND activated_at IS NULL');
    this.#list = db.prepare<[], Row>('SELECT * FROM activations ORDER BY created_at DESC LIMIT 500');
  }

  get(deviceId: string): ActivationRecord | undefined {
    const row = this.#get.get(deviceId);
    return row ? toRecord(row) : undefined;
  }

  isActivated(deviceId: string): boolean {
    return (this.get(deviceId)?.activatedAt ?? null) !== null;
  }

  /** The device's record, creating a pending one with a fresh code unique among pending codes. */
  issue(deviceId: string, clientId: string, now = Date.now()): ActivationRecord {
    return this.db.transaction(() => {
      const existing = this.get(deviceId);
      if (existing) return existing;
      for (let attempt = 0; attempt < 20; attempt++) {
        const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
        if (this.#byCode.get(code)) continue;
        const challenge = randomBytes(16).toString('hex');
        this.#insert.run(deviceId, clientId, code, challenge, now);
        return { deviceId, clientId, code, challenge, createdAt: now, activatedAt: null };
      }
      throw new Error('could not allocate a free activation code');
    })();
  }

  /** Activates the pending device holding this code; undefined when no pending device has it. */
  activateByCode(code: string, now = Date.now()): ActivationRecord | undefined {
    const trimmed = code.trim();
    if (!/^\d{6}$/.test(trimmed)) return undefined;
    return this.db.transaction(() => {
      const row = this.#byCode.get(trimmed);
      if (!row) return undefined;
      this.#activate.run(now, row.device_id);
      return { ...toRecord(row), activatedAt: now };
    })();
  }

  list(): ActivationRecord[] {
    return this.#list.all().map(toRecord);
  }
}
