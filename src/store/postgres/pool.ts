import pg from 'pg';
import { redactUrl } from '../../config/load.js';
import { errorCode, errorMessage } from '../../errors.js';
import { StoreUnavailableError } from '../unavailable.js';

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

/**
 * Whether a failure means the server could not be reached or the connection broke, as opposed to an error in the
 * statement: a system error (ECONNREFUSED, ECONNRESET...), the pool's connect timeout or a terminated connection,
 * or a server answer of class 08 (connection exception), 57P0x (shutting down) or 53300 (too many connections).
 */
function isConnectionFailure(err: unknown): boolean {
  const code = errorCode(err);
  if (err instanceof pg.DatabaseError) return /^08|^57P0|^53300$/.test(code ?? '');
  if (code && /^E[A-Z]+$/.test(code)) return true;
  return /timeout|terminated|not queryable|connection/i.test(errorMessage(err));
}

/** Whether the last store call reached the server (what /health reports). */
export type StoreReach = { status: 'ok' } | { status: 'unreachable'; error: string; since: number };

/**
 * Runs one store call; a connection failure becomes a StoreUnavailableError, any other error passes as it is.
 * `reach` records the outcome.
 */
async function reaching<T>(reach: { current: StoreReach }, run: () => Promise<T>): Promise<T> {
  try {
    const result = await run();
    reach.current = { status: 'ok' };
    return result;
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw err;
    if (!isConnectionFailure(err)) {
      // The server answered (a constraint, a syntax error): it is reachable.
      reach.current = { status: 'ok' };
      throw err;
    }
    const unavailable = new StoreUnavailableError(errorMessage(err) || errorCode(err) || 'connection failed', {
      cause: err,
    });
    const since = reach.current.status === 'unreachable' ? reach.current.since : Date.now();
    reach.current = { status: 'unreachable', error: unavailable.message, since };
    throw unavailable;
  }
}

/**
 * Checks a client out for `fn`. A checked-out client has no pool listener: a connection cut between two of its
 * queries would be an unhandled 'error' event (the process ends), so one is held meanwhile and the client leaves
 * the pool broken instead of going back to it.
 */
async function withClient<T>(
  pool: pg.Pool,
  reach: { current: StoreReach },
  fn: (client: pg.PoolClient, broke: (err: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await reaching(reach, () => pool.connect());
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    return await fn(client, onError);
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

function helpers(
  reach: { current: StoreReach },
  query: (text: string, params?: readonly unknown[]) => Promise<pg.QueryResult>,
): Sql {
  const q = (text: string, params?: readonly unknown[]) => reaching(reach, () => query(text, params));
  return {
    rows: async <R>(text: string, params?: readonly unknown[]) => (await q(text, params)).rows as R[],
    row: async <R>(text: string, params?: readonly unknown[]) => (await q(text, params)).rows[0] as R | undefined,
    exec: async (text: string, params?: readonly unknown[]) => (await q(text, params)).rowCount ?? 0,
  };
}

/** A dedicated client's SQL (PgDb.session), with transactions on that client. */
export interface SessionSql extends Sql {
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
}

/** `fn` in one transaction on `client`: committed when it resolves, rolled back when it throws. */
async function transaction<T>(
  reach: { current: StoreReach },
  client: pg.PoolClient,
  broke: (err: Error) => void,
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  const sql = helpers(reach, (text, params) => client.query(text, params as unknown[]));
  await sql.exec('BEGIN');
  try {
    const result = await fn(sql);
    await sql.exec('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      // The connection itself failed: it leaves the pool instead of going back to it.
      broke(rollbackErr instanceof Error ? rollbackErr : new Error(errorMessage(rollbackErr)));
    });
    throw err;
  }
}

export class PgDb implements Sql {
  readonly pool: pg.Pool;
  readonly url: string;
  readonly #sql: Sql;
  /** Updated by every query: until one succeeds again after a failure, the store counts as unreachable. */
  readonly #reach: { current: StoreReach } = { current: { status: 'ok' } };
  #closing: Promise<void> | undefined;

  constructor(opts: PgOptions) {
    this.url = opts.url;
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 4000,
      // A server that accepted the connection and then went silent (a cut without a reset) must not hang a
      // request forever: the query fails and counts as a connection failure.
      query_timeout: 30_000,
      idleTimeoutMillis: 30_000,
      application_name: 'linus',
      types,
      ...(opts.schema ? { options: `-c search_path=${quoteIdent(opts.schema)}` } : {}),
    });
    // Without a listener an idle connection's error (server restart, network cut) would end the process.
    this.pool.on('error', (err) => opts.onError?.(err));
    this.#sql = helpers(this.#reach, (text, params) => this.pool.query(text, params as unknown[]));
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
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return withClient(this.pool, this.#reach, (client, broke) => transaction(this.#reach, client, broke, fn));
  }

  /**
   * Runs `fn` on one dedicated client (session-level locks), released afterwards; its `tx` runs a transaction on
   * that same client.
   */
  session<T>(fn: (sql: SessionSql) => Promise<T>): Promise<T> {
    return withClient(this.pool, this.#reach, (client, broke) =>
      fn({
        ...helpers(this.#reach, (text, params) => client.query(text, params as unknown[])),
        tx: (inner) => transaction(this.#reach, client, broke, inner),
      }),
    );
  }

  /** Whether the last query reached the server, and since when it has not. */
  reach(): StoreReach {
    return this.#reach.current;
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
    // The pg error itself: the start-up message names it without the store-unreachable wrapping.
    const pgErr = err instanceof StoreUnavailableError ? err.cause : err;
    const cause = errorMessage(pgErr) || errorCode(pgErr) || 'connection failed';
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(opts.url)}: ${cause}`, { cause: err });
  }
}
