import pg from 'pg';
import { redactUrl } from '../../config/load.js';
import { errorCode, errorMessage } from '../../errors.js';

/**
 * The PostgreSQL connection pool of a node (D16): every PostgreSQL store shares it. Queries go through three small
 * helpers (`rows`, `row`, `exec`) on the pool or, inside `tx`, on one client holding a transaction.
 */

/** What a store runs its SQL on: the pool, or one client inside a transaction. */
export interface Sql {
  rows<R>(text: string, params?: readonly unknown[]): Promise<R[]>;
  row<R>(text: string, params?: readonly unknown[]): Promise<R | undefined>;
  /** Runs a statement; resolves with the number of rows it touched. */
  exec(text: string, params?: readonly unknown[]): Promise<number>;
}

export interface PgOptions {
  url: string;
  /** Tables live in this schema (`search_path`); default: the server's (`public`). */
  schema?: string;
  /** Connections at most (default 10). */
  max?: number;
  /** Giving up on a connection attempt (default 4000 ms: a start-up failure must show within 5 s). */
  connectTimeoutMs?: number;
  /** An idle connection failed (the server restarted...): the pool drops it; the owner logs it. */
  onError?: (err: Error) => void;
}

const INT8_OID = 20;

/**
 * BIGINT (our millisecond times, COUNT(*)) comes back as a JS number, as better-sqlite3 gives it: every value we
 * store is far below 2^53.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** A schema name as a quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function helpers(q: (text: string, params?: readonly unknown[]) => Promise<pg.QueryResult>): Sql {
  return {
    rows: async <R>(text: string, params?: readonly unknown[]) => (await q(text, params)).rows as R[],
    row: async <R>(text: string, params?: readonly unknown[]) => (await q(text, params)).rows[0] as R | undefined,
    exec: async (text: string, params?: readonly unknown[]) => (await q(text, params)).rowCount ?? 0,
  };
}

export class PgDb implements Sql {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly #sql: Sql;
  #closing: Promise<void> | undefined;

  constructor(opts: PgOptions) {
    this.url = opts.url;
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 4000,
      idleTimeoutMillis: 30_000,
      application_name: 'linus',
      types,
      ...(opts.schema ? { options: `-c search_path=${quoteIdent(opts.schema)}` } : {}),
    });
    // Without a listener an idle connection's error (server restart, network cut) would end the process.
    this.pool.on('error', (err) => opts.onError?.(err));
    this.#sql = helpers((text, params) => this.pool.query(text, params as unknown[]));
  }

  rows<R>(text: string, params?: readonly unknown[]): Promise<R[]> {
    return this.#sql.rows<R>(text, params);
  }

  row<R>(text: string, params?: readonly unknown[]): Promise<R | undefined> {
    return this.#sql.row<R>(text, params);
  }

  exec(text: string, params?: readonly unknown[]): Promise<number> {
    return this.#sql.exec(text, params);
  }

  /** Runs `fn` in one transaction on one client: committed when it resolves, rolled back when it throws. */
  async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(helpers((text, params) => client.query(text, params as unknown[])));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        // The connection itself failed: it leaves the pool instead of going back to it.
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(errorMessage(rollbackErr));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Runs `fn` on one dedicated client (session-level locks), released afterwards. */
  async session<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await fn(helpers((text, params) => client.query(text, params as unknown[])));
    } finally {
      client.release();
    }
  }

  /** Ends every connection; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.pool.end();
    return this.#closing;
  }
}

/**
 * Opens the pool and proves the server answers (`SELECT 1`), so that a wrong URL or a server that is down shows at
 * start, within the connect timeout. The error names what failed, never the password.
 */
export async function connectPg(opts: PgOptions): Promise<PgDb> {
  const db = new PgDb(opts);
  try {
    await db.exec('SELECT 1');
    return db;
  } catch (err) {
    await db.close();
    const code = errorCode(err);
    const cause = errorMessage(err) || code || 'connection failed';
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(opts.url)}: ${cause}`, { cause: err });
  }
}
