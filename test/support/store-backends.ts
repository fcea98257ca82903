/**
 * The two store backends the contract suites run against: the embedded SQLite file and PostgreSQL (a fresh schema
 * per suite). A suite is written once against the interfaces and run for each backend; PostgreSQL skips, with its
 * reason printed, only when no server answers.
 */
import { rmSync } from 'node:fs';
import type { FeatureStores } from '../../src/features/feature.js';
import { SqliteActivationStore, type ActivationStore } from '../../src/store/activation.js';
import { PgActivationStore } from '../../src/store/postgres/activations.js';
import type { DeviceBindings } from '../../src/store/bindings.js';
import {
  nodeIdOf,
  pgCoreStores,
  pgFeatureStores,
  sqliteCoreStores,
  sqliteFeatureStores,
  type CoreStores,
} from '../../src/store/compose.js';
import { defaultConfig } from '../../src/config/load.js';
import type { MemoryStore } from '../../src/store/memory.js';
import { openDatabase, type Db } from '../../src/store/sqlite.js';
import { PG_SKIP, testSchema } from './pg.js';
import { tempDir } from './server.js';

export interface OpenedStores {
  stores: FeatureStores;
  memory: MemoryStore;
  activations: ActivationStore;
  bindings: DeviceBindings;
  /** An activation store on the same data whose codes come from `codes` (to make collisions happen). */
  activationsWith(codes: () => string): ActivationStore;
  /** The core stores (activations, bindings, memory) opened a second time on the same data. */
  againCore(): CoreStores;
  /** The same stores opened a second time on the same data (another process, another node). */
  again(): FeatureStores;
  close(): Promise<void>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Why this backend's tests skip, or false. */
  skip: string | false;
  open(): Promise<OpenedStores>;
}

const sqlite: Backend = {
  name: 'sqlite',
  skip: false,
  async open() {
    const dir = tempDir('linus-store-contract-');
    const dbs: Db[] = [];
    const open = (): FeatureStores => {
      const db = openDatabase(dir);
      dbs.push(db);
      return sqliteFeatureStores(db);
    };
    const stores = open();
    return {
      stores,
      ...sqliteCoreStores(dbs[0]!),
      againCore: () => {
        const db = openDatabase(dir);
        dbs.push(db);
        return sqliteCoreStores(db);
      },
      again: open,
      activationsWith: (codes) => new SqliteActivationStore(dbs[0]!, codes),
      async close() {
        await stores.peerQueue.close();
        for (const db of dbs) db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: Backend = {
  name: 'postgres',
  skip: PG_SKIP,
  async open() {
    const schema = await testSchema();
    const node = nodeIdOf(defaultConfig());
    const stores = pgFeatureStores(schema.db, node);
    return {
      stores,
      ...pgCoreStores(schema.db),
      againCore: () => pgCoreStores(schema.open()),
      activationsWith: (codes) => new PgActivationStore(schema.db, codes),
      again: () => pgFeatureStores(schema.open(), `${node}-b`),
      async close() {
        await stores.peerQueue.close();
        await schema.drop();
      },
    };
  },
};

export const BACKENDS: readonly Backend[] = [sqlite, postgres];
