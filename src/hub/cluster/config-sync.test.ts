import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  adminClient,
  dropPrefix,
  OwnRedis,
  REDIS_URL,
  redisSkipReason,
  TcpProxy,
  testPrefix,
} from '../../../test/support/redis.js';
import { tempDir } from '../../../test/support/server.js';
import { waitFor } from '../../../test/support/wait.js';
import { validateConfig } from '../../config/load.js';
import { ConfigReloader } from '../../config/reload.js';
import { ConfigStore } from '../../config/store.js';
import { silentLogger } from '../../observability/log.js';
import { NodeBus } from './bus.js';
import { syncConfig, type ConfigSync } from './config-sync.js';
import { RedisLink } from './link.js';

const skip = await redisSkipReason();

describe('cluster config after a bus gap or a late start (D17)', { skip }, () => {
  let admin: Redis;
  let prefix: string;
  const dir = tempDir();
  const proxy = new TcpProxy();
  const closers: Array<() => Promise<void>> = [];

  /** A node: its link (through `redisUrl`), bus, config (defaults; the file does not exist) and config sync. */
  const node = async (nodeId: string, redisUrl = REDIS_URL) => {
    const log = silentLogger();
    const link = new RedisLink({ redisUrl, name: `linus:${nodeId}`, log, maxBackoffMs: 200 });
    await link.start();
    const bus = new NodeBus({ link, keyPrefix: prefix, nodeId, log, blockMs: 500 });
    await bus.start();
    const store = new ConfigStore(validateConfig({}).config);
    const reloader = new ConfigReloader(store, { configPath: join(dir, `${nodeId}.yaml`) }, log);
    const sync: ConfigSync = syncConfig(bus, reloader, log);
    closers.push(async () => {
      sync.close();
      bus.close();
      link.close();
      await bus.stopped;
    });
    return { bus, store, reloader, sync, cap: () => store.current.close_connection_no_voice_time };
  };
  const patch = (cap: number | string) => ({ close_connection_no_voice_time: cap });

  before(() => {
    admin = adminClient();
  });
  after(() => {
    admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await proxy.down();
    await dropPrefix(admin, prefix);
  });

  it('a node that missed reloads (the stream trimmed while it was cut off) applies the last one once back; older ones read later are skipped', async () => {
    prefix = testPrefix();
    await proxy.up();
    const a = await node('a');
    const b = await node('b', proxy.url);
    assert.equal((await a.reloader.reload('admin', patch(11))).ok, true);
    await waitFor(() => b.cap() === 11, 3000, 'b to apply the first reload');
    await proxy.down();
    assert.equal((await a.reloader.reload('admin', patch(12))).ok, true);
    assert.equal((await a.reloader.reload('device', patch(13))).ok, true);
    await admin.xtrim(`${prefix}bus:all`, 'MAXLEN', 0);
    await proxy.up();
    await waitFor(() => b.cap() === 13, 5000, 'b to apply the last reload it missed');
    assert.equal(b.bus.stats.gaps, 1);
    // An announcement older than the one applied (here written by hand, as one read late would be) changes nothing.
    const stale = {
      v: 1,
      id: 'old',
      from: 'a',
      ts: Date.now(),
      kind: 'config',
      source: 'admin',
      patch: patch(12),
      seq: 2,
    };
    const applied: unknown[] = [];
    b.reloader.onReload((r, p) => void (r.source === 'cluster' && applied.push(p)));
    await admin.xadd(`${prefix}bus:all`, '*', 'm', JSON.stringify(stale));
    assert.equal((await a.reloader.reload('admin', patch(14))).ok, true);
    // Reloads run in order: once the next one is in force, the stale one was read first and left alone.
    await waitFor(() => b.cap() === 14, 3000, 'b to apply the next reload');
    assert.deepEqual(applied, [patch(14)]);
  });

  it('a Redis restored from an older snapshot does not take the cluster back to an older config, nor reuse its number', async () => {
    prefix = testPrefix();
    const snapshots = tempDir();
    const redis = new OwnRedis(snapshots);
    await redis.start();
    closers.push(async () => {
      await redis.kill();
      rmSync(snapshots, { recursive: true, force: true });
    });
    const a = await node('a', redis.url);
    const b = await node('b', redis.url);
    assert.equal((await a.reloader.reload('admin', patch(21))).ok, true);
    await waitFor(() => b.cap() === 21, 3000, 'b to apply the first reload');
    const direct = new Redis(redis.url);
    await direct.save();
    direct.disconnect();
    assert.equal((await a.reloader.reload('admin', patch(22))).ok, true);
    await waitFor(() => b.cap() === 22, 3000, 'b to apply the second reload');

    // Redis dies and comes back from the snapshot holding the first reload as the last one.
    await redis.kill();
    await redis.start();
    await waitFor(() => a.bus.stats.gaps === 1 && b.bus.stats.gaps === 1, 8000, 'both to see the restart');
    // Both caught up and kept the newer config (asked again here, and given the gap's own catch-up time to land).
    await Promise.all([a.sync.catchUp(), b.sync.catchUp()]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual([a.cap(), b.cap()], [22, 22]);
    // The next reload gets a number above the ones used before the restore, so the other node takes it.
    assert.equal((await b.reloader.reload('admin', patch(23))).ok, true);
    await waitFor(() => a.cap() === 23, 3000, 'a to apply the reload made after the restore');
  });

  it('a node started after a reload applies it on catchUp; one it cannot take is shown as rejected, its config kept', async () => {
    prefix = testPrefix();
    const a = await node('a');
    assert.equal((await a.reloader.reload('admin', patch(21))).ok, true);
    const late = await node('late');
    assert.equal(late.cap(), validateConfig({}).config.close_connection_no_voice_time);
    await late.sync.catchUp();
    assert.equal(late.cap(), 21);
    // Valid where it was made, not here: e.g. a value this node's schema refuses (written as another node would).
    await admin.hset(
      `${prefix}bus:last:config`,
      'm',
      JSON.stringify({
        v: 1,
        id: 'x',
        from: 'a',
        ts: Date.now(),
        kind: 'config',
        source: 'admin',
        patch: patch('x'),
        seq: 9,
      }),
    );
    const later = await node('later');
    await later.sync.catchUp();
    assert.equal(later.sync.rejected()?.from, 'a');
    assert.match(String(later.sync.rejected()?.error), /close_connection_no_voice_time/);
    assert.equal(later.cap(), validateConfig({}).config.close_connection_no_voice_time);
  });
});
