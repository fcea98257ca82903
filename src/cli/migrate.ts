import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { LinusConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { copySqliteToPg } from '../store/postgres/import-sqlite.js';
import { migratePg, schemaVersions } from '../store/postgres/migrations.js';
import { connectPg } from '../store/postgres/pool.js';

/**
 * `linus migrate [--from-sqlite FILE]`: brings the PostgreSQL schema of `cluster.postgres_url` up to date (as every
 * node does at start, under the same advisory lock), prints what it applied, and optionally copies a single node's
 * SQLite file into it. Throws with one line for the operator.
 */
export async function migrateCommand(
  config: LinusConfig,
  opts: { fromSqlite?: string; print: (line: string) => void },
): Promise<void> {
  const url = config.cluster.postgres_url;
  if (!url) throw new Error('set cluster.postgres_url (or LINUS_DATABASE_URL) to the PostgreSQL to migrate');
  if (opts.fromSqlite !== undefined && !existsSync(opts.fromSqlite))
    throw new Error(`--from-sqlite: no such file ${opts.fromSqlite}`);
  const pg = await connectPg({ url, max: 2 }).catch((err: unknown) => {
    throw new Error(`${errorMessage(err)}; check cluster.postgres_url (or LINUS_DATABASE_URL)`, { cause: err });
  });
  try {
    const applied = await migratePg(pg);
    for (const step of applied) opts.print(`applied ${step.component} ${step.version}`);
    const versions = (await schemaVersions(pg)).map((v) => `${v.component} ${v.version}`).join(', ');
    opts.print(applied.length ? `schema now at ${versions}` : `schema already current (${versions})`);
    if (opts.fromSqlite === undefined) return;
    let sqlite: Database.Database;
    try {
      sqlite = new Database(opts.fromSqlite, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new Error(`--from-sqlite: cannot open ${opts.fromSqlite}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      const report = await copySqliteToPg(sqlite, pg);
      for (const t of report) {
        const skipped = t.read - t.copied;
        opts.print(`copied ${t.table}: ${t.copied} of ${t.read}${skipped ? ` (${skipped} there already)` : ''}`);
      }
      opts.print(`copied ${report.reduce((n, t) => n + t.copied, 0)} rows from ${opts.fromSqlite}`);
    } finally {
      sqlite.close();
    }
  } finally {
    await pg.close();
  }
}
