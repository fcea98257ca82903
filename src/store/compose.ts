import { hostname } from 'node:os';
import type { LinusConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { FeatureStores } from '../features/feature.js';
import { SqliteWebhookOutbox } from '../features/meeting/outbox.js';
import { SqliteMeetingStore } from '../features/meeting/store.js';
import { SqlitePeerQueue } from '../features/peer/sqlite-queue.js';
import { SqliteTaskStore } from '../features/workflow/store.js';
import type { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../observability/log.js';
import { StartupError } from '../startup-error.js';
import { SqliteActivationStore, type ActivationStore } from './activation.js';
import { SqliteDeviceBindings, type DeviceBindings } from './bindings.js';
import { SqliteMemoryStore, type MemoryStore } from './memory.js';
import { PgActivationStore } from './postgres/activations.js';
import { PgDeviceBindings } from './postgres/bindings.js';
import { PgMeetingStore } from './postgres/meetings.js';
import { PgMemoryStore } from './postgres/memory.js';
import { migratePg } from './postgres/migrations.js';
import { PgWebhookOutbox } from './postgres/outbox.js';
import { PgPeerQueue } from './postgres/peer-queue.js';
import { connectPg, type PgDb } from './postgres/pool.js';
import { PgTaskStore } from './postgres/tasks.js';
import { openDatabase, type Db } from './sqlite.js';

/**
 * Which stores a server runs on, from its config (D16, D17): one process on the embedded SQLite file, or a node of
 * a cluster sharing PostgreSQL. Each store's close is registered with the lifecycle as it opens.
 */

export type StoreMode = 'single' | 'cluster';

/** Neither URL = single; both = cluster; one alone names the missing key. */
export function storeMode(config: LinusConfig): StoreMode {
  const { postgres_url: pg, redis_url: redis } = config.cluster;
  if (!pg && !redis) return 'single';
  if (pg && redis) return 'cluster';
  const [missing, env, given] = pg
    ? ['cluster.redis_url', 'LINUS_REDIS_URL', 'cluster.postgres_url']
    : ['cluster.postgres_url', 'LINUS_DATABASE_URL', 'cluster.redis_url'];
  throw new StartupError(
    `cluster mode needs both URLs: ${given} is set but ${missing} is not; set ${missing} (or ${env}), or unset ${given} for a single node`,
    missing,
  );
}

/** This node's name: `cluster.node_id`, or `<hostname>-<pid>`. */
export function nodeIdOf(config: LinusConfig): string {
  return config.cluster.node_id || `${hostname()}-${process.pid}`;
}

export interface Stores {
  mode: StoreMode;
  /**
   * The embedded SQLite file: every store in single mode. In cluster mode every store is in PostgreSQL and the
   * file holds nothing a node shares.
   */
  db: Db;
  /** Device activation codes. */
  activations: ActivationStore;
  /** Which client id owns a device id (trust on first use). */
  bindings: DeviceBindings;
  features: FeatureStores;
  /** Dialogue memory (B7). */
  memory: MemoryStore;
  /** The PostgreSQL pool in cluster mode. */
  pg?: PgDb;
}

/** The store of the data dir, or a startup error naming the flag to change. */
function openSqlite(dataDir: string): Db {
  try {
    return openDatabase(dataDir);
  } catch (err) {
    throw new StartupError(
      `cannot open the store in ${dataDir}: ${errorMessage(err)}; choose another with --data-dir or LINUS_DATA_DIR`,
      '--data-dir',
    );
  }
}

/** PostgreSQL reached and migrated, or a startup error naming `cluster.postgres_url` and the cause. */
export async function openPostgres(config: LinusConfig, log: Logger): Promise<PgDb> {
  let pg: PgDb;
  try {
    pg = await connectPg({
      url: config.cluster.postgres_url,
      onError: (err) => log.warn({ err: errorMessage(err) }, 'postgres connection lost (the pool reconnects)'),
    });
  } catch (err) {
    throw new StartupError(
      `${errorMessage(err)}; check cluster.postgres_url (or LINUS_DATABASE_URL)`,
      'cluster.postgres_url',
    );
  }
  try {
    const applied = await migratePg(pg);
    if (applied.length) log.info({ applied }, 'postgres schema migrated');
    return pg;
  } catch (err) {
    await pg.close();
    throw new StartupError(`cannot migrate the PostgreSQL schema: ${errorMessage(err)}`, 'cluster.postgres_url');
  }
}

/** The stores of the `core` component: activations, device bindings, dialogue memory. */
export type CoreStores = Pick<Stores, 'activations' | 'bindings' | 'memory'>;

export function sqliteCoreStores(db: Db): CoreStores {
  return {
    activations: new SqliteActivationStore(db),
    bindings: new SqliteDeviceBindings(db),
    memory: new SqliteMemoryStore(db),
  };
}

export function pgCoreStores(pg: PgDb): CoreStores {
  return { activations: new PgActivationStore(pg), bindings: new PgDeviceBindings(pg), memory: new PgMemoryStore(pg) };
}

export function sqliteFeatureStores(db: Db): FeatureStores {
  return {
    meetings: new SqliteMeetingStore(db),
    webhooks: new SqliteWebhookOutbox(db),
    tasks: new SqliteTaskStore(db),
    peerQueue: new SqlitePeerQueue(db),
  };
}

export function pgFeatureStores(pg: PgDb, nodeId: string): FeatureStores {
  return {
    meetings: new PgMeetingStore(pg),
    webhooks: new PgWebhookOutbox(pg, nodeId),
    tasks: new PgTaskStore(pg),
    peerQueue: new PgPeerQueue(pg),
  };
}

export async function openStores(
  opts: { config: LinusConfig; dataDir: string; log: Logger },
  parts: Lifecycle,
): Promise<Stores> {
  const mode = storeMode(opts.config);
  const db = parts.start(
    'store',
    () => openSqlite(opts.dataDir),
    (db) => void db.close(),
  );
  if (mode === 'single') return { mode, db, features: sqliteFeatureStores(db), ...sqliteCoreStores(db) };
  const pg = await openPostgres(opts.config, opts.log);
  parts.add('postgres', () => pg.close());
  return { mode, db, pg, features: pgFeatureStores(pg, nodeIdOf(opts.config)), ...pgCoreStores(pg) };
}
