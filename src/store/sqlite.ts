import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** Schema changes, applied in order, each in one transaction; `user_version` records how far a file got. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE activations (
     device_id    TEXT PRIMARY KEY,
     client_id    TEXT NOT NULL,
     code         TEXT NOT NULL,
     challenge    TEXT NOT NULL,
     created_at   INTEGER NOT NULL,
     activated_at INTEGER
   );
   CREATE UNIQUE INDEX activations_pending_code ON activations(code) WHERE activated_at IS NULL;`,
];

export const DB_FILE = 'linus.db';

/** Opens (creating if needed) the embedded store under the data dir: WAL, foreign keys, migrations applied. */
export function openDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
