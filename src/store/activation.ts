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

export interface ActivationRow {
  device_id: string;
  client_id: string;
  code: string;
  challenge: string;
  created_at: number;
  activated_at: number | null;
}

export const toRecord = (r: ActivationRow): ActivationRecord => ({
  deviceId: r.device_id,
  clientId: r.client_id,
  code: r.code,
  challenge: r.challenge,
  createdAt: r.created_at,
  activatedAt: r.activated_at,
});

/**
 * Device activation with a 6-digit code (the firmware shows and speaks it), kept in the store: SQLite, or
 * PostgreSQL shared by every node of a cluster (a code shown by one node is entered on any).
 */
export interface ActivationStore {
  get(deviceId: string): Promise<ActivationRecord | undefined>;
  isActivated(deviceId: string): Promise<boolean>;
  /** The device's record, creating a pending one with a fresh code unique among pending codes. */
  issue(deviceId: string, clientId: string, now?: number): Promise<ActivationRecord>;
  /** Activates the pending device holding this code; undefined when no pending device has it. */
  activateByCode(code: string, now?: number): Promise<ActivationRecord | undefined>;
  /** The latest 500 records, newest first. */
  list(): Promise<ActivationRecord[]>;
}

/** A fresh 6-digit code. */
export const newActivationCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, '0');

/** The code as typed, or undefined when it cannot be one (6 digits). */
export const activationCodeOf = (code: string): string | undefined => {
  const trimmed = code.trim();
  return /^\d{6}$/.test(trimmed) ? trimmed : undefined;
};

/** Codes tried before giving up: a million codes, a collision with a pending one is rare. */
export const CODE_ATTEMPTS = 20;

/** Activations in the embedded SQLite file (single mode). */
export class SqliteActivationStore implements ActivationStore {
  readonly #get;
  readonly #insert;
  readonly #byCode;
  readonly #activate;
  readonly #list;

  /** `codes`: the code generator (a test passes one that repeats itself, to make a collision happen). */
  constructor(
    private readonly db: Db,
    private readonly codes: () => string = newActivationCode,
  ) {
    this.#get = db.prepare<[string], ActivationRow>('SELECT * FROM activations WHERE device_id = ?');
    this.#insert = db.prepare(
      'INSERT INTO activations (device_id, client_id, code, challenge, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.#byCode = db.prepare<[string], ActivationRow>(
      'SELECT * FROM activations WHERE code = ? AND activated_at IS NULL',
    );
    this.#activate = db.prepare('UPDATE activations SET activated_at = ? WHERE device_id = ? AND activated_at IS NULL');
    this.#list = db.prepare<[], ActivationRow>('SELECT * FROM activations ORDER BY created_at DESC LIMIT 500');
  }

  async get(deviceId: string): Promise<ActivationRecord | undefined> {
    return this.#read(deviceId);
  }

  #read(deviceId: string): ActivationRecord | undefined {
    const row = this.#get.get(deviceId);
    return row ? toRecord(row) : undefined;
  }

  async isActivated(deviceId: string): Promise<boolean> {
    return (this.#read(deviceId)?.activatedAt ?? null) !== null;
  }

  async issue(deviceId: string, clientId: string, now = Date.now()): Promise<ActivationRecord> {
    return this.db.transaction(() => {
      const existing = this.#read(deviceId);
      if (existing) return existing;
      for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
        const code = this.codes();
        if (this.#byCode.get(code)) continue;
        const challenge = randomBytes(16).toString('hex');
        this.#insert.run(deviceId, clientId, code, challenge, now);
        return { deviceId, clientId, code, challenge, createdAt: now, activatedAt: null };
      }
      throw new Error('could not allocate a free activation code');
    })();
  }

  async activateByCode(code: string, now = Date.now()): Promise<ActivationRecord | undefined> {
    const wanted = activationCodeOf(code);
    if (!wanted) return undefined;
    return this.db.transaction(() => {
      const row = this.#byCode.get(wanted);
      if (!row) return undefined;
      this.#activate.run(now, row.device_id);
      return { ...toRecord(row), activatedAt: now };
    })();
  }

  async list(): Promise<ActivationRecord[]> {
    return this.#list.all().map(toRecord);
  }
}
