/**
 * The machine's PostgreSQL for tests (127.0.0.1:5432, trust auth, database `test`; LINUS_TEST_DATABASE_URL
 * overrides): each test file gets its own schema with a random name, dropped at the end. When no server answers,
 * `PG_SKIP` says why and the PostgreSQL tests skip with that reason printed.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../../src/errors.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { connectPg, PgDb, quoteIdent } from '../../src/store/postgres/pool.js';

const CANDIDATES = process.env.LINUS_TEST_DATABASE_URL
  ? [process.env.LINUS_TEST_DATABASE_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

async function probe(): Promise<{ url: string } | { skip: string }> {
  const errors: string[] = [];
  for (const url of CANDIDATES) {
    try {
      const db = await connectPg({ url, connectTimeoutMs: 2000, max: 1 });
      await db.close();
      return { url };
    } catch (err) {
      errors.push(errorMessage(err));
    }
  }
  return { skip: `PostgreSQL not reachable (${errors.join('; ')})` };
}

const found = await probe();
/** The URL of the test database, when one answers. */
export const PG_URL = 'url' in found ? found.url : '';
/** Why PostgreSQL tests skip, or false when they run. */
export const PG_SKIP: string | false = 'skip' in found ? found.skip : false;
// CI starts PostgreSQL: there a missing one is a failure, not a skip.
if (PG_SKIP && process.env.LINUS_REQUIRE_SERVICES === '1') throw new Error(`${PG_SKIP}; LINUS_REQUIRE_SERVICES=1`);
if (PG_SKIP) process.stdout.write(`# PostgreSQL tests skipped: ${PG_SKIP}\n`);

export interface TestSchema {
  /** A pool whose `search_path` is the schema. */
  db: PgDb;
  schema: string;
  /** The URL with the schema in `options`, for a child process (`linus migrate`). */
  url: string;
  /** Another pool on the same schema (a second node). */
  open(): PgDb;
  /** Closes the pools opened here and drops the schema. */
  drop(): Promise<void>;
}

/** A fresh schema (`linus_test_<random>`), migrated unless `migrate: false`. */
export async function testSchema(opts: { migrate?: boolean } = {}): Promise<TestSchema> {
  const schema = `linus_test_${randomBytes(6).toString('hex')}`;
  const admin = new PgDb({ url: PG_URL, max: 1 });
  await admin.exec(`CREATE SCHEMA ${quoteIdent(schema)}`);
  const pools: PgDb[] = [];
  const open = (): PgDb => {
    const db = new PgDb({ url: PG_URL, schema });
    pools.push(db);
    return db;
  };
  const db = open();
  if (opts.migrate !== false) await migratePg(db);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    db,
    schema,
    url: url.toString(),
    open,
    async drop() {
      await Promise.all(pools.map((p) => p.close()));
      await admin.exec(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      await admin.close();
    },
  };
}
