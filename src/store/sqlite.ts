import { makeDirs } from '../dirs.js';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DB_FILE = 'linus.db';

/** Opens (creating if needed) the embedded store under the data dir: WAL, foreign keys, core migrations applied. */
export function openDatabase(dataDir: string): Db {
  makeDirs(dataDir);
  const db = new Database(join(dataDir, DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  applyMigrations(db, 'core', CORE_MIGRATIONS);
  return db;
}

/**
 * Applies the schema steps of one component (core, meeting, peer...) that a file has not seen yet, each step
 * in its own transaction. Components keep their own step lists, so features never edit a shared file.
 */
export function applyMigrations(db: Db, component: string, steps: readonly string[]): void {
  const row = db
    .prepare<[string], { version: number }>('SELECT version FROM schema_migrations WHERE component = ?')
    .get(component);
  for (let v = row?.version ?? 0; v < steps.length; v++) {
    db.transaction(() => {
      db.exec(steps[v]!);
      db.prepare(
        'INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version',
      ).run(component, v + 1);
    })();
  }
}

const CORE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE activations (
     device_id    TEXT PRIMARY KEY,
     client_id    TEXT NOT NULL,
     code         TEXT NOT NULL,
     challenge    TEXT NOT NULL,
     created_at   INTEGER NOT NULL,
     activated_at INTEGER
   );
   CREATE UNIQUE INDEX activations_pending_code ON activations(code) WHERE activated_at IS NULL;
   CREATE TABLE memories (
     device_id  TEXT PRIMARY KEY,
     summary    TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
  // Trust on first use: the client id that first obtained a token owns the device id (see DeviceBindings).
  `CREATE TABLE device_bindings (
     device_id TEXT PRIMARY KEY,
     client_id TEXT NOT NULL,
     bound_at  INTEGER NOT NULL
   );`,
];
