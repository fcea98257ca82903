import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { after, describe, it } from 'node:test';
import { PG_SKIP, testSchema } from '../../test/support/pg.js';
import { tempDir } from '../../test/support/server.js';
import { redactConfig, validateConfig } from '../config/load.js';
import { applyOverrides, resolveRuntimeOptions } from '../config/runtime.js';
import { SqliteMeetingStore } from '../features/meeting/store.js';
import { Lifecycle } from '../lifecycle.js';
import { silentLogger } from '../observability/log.js';
import { StartupError } from '../startup-error.js';
import { nodeIdOf, openStores, storeMode } from './compose.js';
import { PgMeetingStore } from './postgres/meetings.js';
import { PgMemoryStore } from './postgres/memory.js';
import { PgPeerQueue } from './postgres/peer-queue.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const cluster = (c: Record<string, string>) => validateConfig({ cluster: c }).config;
const parts = () => new Lifecycle({ budgetMs: () => 5000, onError: (err) => assert.fail(String(err)) });

describe('store composition', () => {
  it('mode from the two URLs: neither = single, both = cluster, one alone names the missing key', () => {
    assert.equal(storeMode(cluster({})), 'single');
    assert.equal(storeMode(cluster({ postgres_url: 'postgres://h/db', redis_url: 'redis://h' })), 'cluster');
    assert.throws(
      () => storeMode(cluster({ postgres_url: 'postgres://h/db' })),
      (err: unknown) => err instanceof StartupError && err.key === 'cluster.redis_url',
    );
    assert.throws(
      () => storeMode(cluster({ redis_url: 'redis://h' })),
      (err: unknown) => err instanceof StartupError && err.key === 'cluster.postgres_url',
    );
  });

  it('defaults, env overrides and redaction of the cluster keys', () => {
    const defaults = validateConfig({}).config.cluster;
    assert.deepEqual(defaults, { postgres_url: '', redis_url: '', node_id: '', key_prefix: 'linus:' });
    assert.equal(nodeIdOf(validateConfig({}).config), `${hostname()}-${process.pid}`);
    assert.equal(nodeIdOf(cluster({ node_id: 'n1' })), 'n1');
    const opts = resolveRuntimeOptions(
      {},
      { LINUS_DATABASE_URL: 'postgres://u:pw@h/db', LINUS_REDIS_URL: 'redis://r' },
    );
    const { config } = applyOverrides({ config: cluster({ postgres_url: 'postgres://file/db' }), warnings: [] }, opts);
    assert.equal(config.cluster.postgres_url, 'postgres://u:pw@h/db', 'the environment wins over the file');
    assert.equal(config.cluster.redis_url, 'redis://r');
    const shown = redactConfig(config) as typeof config;
    assert.equal(shown.cluster.postgres_url, 'postgres://u:***@h/db');
  });

  it('single mode opens the SQLite stores and closes them with the lifecycle', async () => {
    const dir = tempDir('linus-compose-');
    dirs.push(dir);
    const lc = parts();
    const stores = await openStores({ config: validateConfig({}).config, dataDir: dir, log: silentLogger() }, lc);
    assert.equal(stores.mode, 'single');
    assert.ok(stores.features.meetings instanceof SqliteMeetingStore);
    assert.equal(stores.pg, undefined);
    await stores.features.peerQueue.close();
    await lc.close('test');
    assert.equal(stores.db.open, false);
  });

  it('cluster mode opens PostgreSQL, migrated, with the PostgreSQL stores', { skip: PG_SKIP }, async () => {
    const schema = await testSchema({ migrate: false });
    const dir = tempDir('linus-compose-');
    dirs.push(dir);
    try {
      const lc = parts();
      const config = cluster({ postgres_url: schema.url, redis_url: 'redis://127.0.0.1:6379', node_id: 'n1' });
      const stores = await openStores({ config, dataDir: dir, log: silentLogger() }, lc);
      assert.equal(stores.mode, 'cluster');
      assert.ok(stores.features.meetings instanceof PgMeetingStore);
      assert.ok(stores.features.peerQueue instanceof PgPeerQueue);
      assert.ok(stores.memory instanceof PgMemoryStore);
      await stores.features.tasks.upsert([{ id: 't', groupKey: 'g', title: 'x' }], 1);
      assert.equal((await schema.db.row<{ n: number }>('SELECT COUNT(*) AS n FROM workflow_tasks'))?.n, 1);
      await stores.features.peerQueue.close();
      await lc.close('test');
      await assert.rejects(stores.pg!.exec('SELECT 1'), 'the pool is closed with the lifecycle');
    } finally {
      await schema.drop();
    }
  });
});
