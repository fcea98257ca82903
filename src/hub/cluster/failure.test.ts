import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  adminClient,
  dropPrefix,
  OwnRedis,
  RecordingConnection,
  redisSkipReason,
  startNode,
  TcpProxy,
  testPrefix,
} from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';
import { ClusterUnavailableError, type ClusterHub } from './index.js';

const skip = await redisSkipReason();

describe('cluster hub when Redis goes away (issue #10, failures)', { skip }, () => {
  let admin: Redis;
  let prefix: string;
  const hubs: ClusterHub[] = [];
  const proxy = new TcpProxy();

  before(() => {
    admin = adminClient();
  });
  after(() => admin.disconnect());
  afterEach(async () => {
    for (const h of hubs.splice(0)) await h.close();
    await proxy.down();
    await dropPrefix(admin, prefix);
  });

  it('Redis unreachable at start: a ClusterUnavailableError naming cluster.redis_url, nothing left open', async () => {
    prefix = testPrefix();
    await proxy.up();
    const url = proxy.url;
    await proxy.down();
    await assert.rejects(
      startNode(prefix, 'x', { redisUrl: url }),
      (err: Error) =>
        err instanceof ClusterUnavailableError && /cluster\.redis_url: cannot reach Redis/.test(err.message),
    );
  });

  it('while Redis is away the node serves its own devices and reports degraded; back, it reclaims its routes and reads what it missed', async () => {
    prefix = testPrefix();
    await proxy.up();
    const a = await startNode(prefix, 'a');
    hubs.push(a);
    const b = await startNode(prefix, 'b', { redisUrl: proxy.url, requestTimeoutMs: 500 });
    hubs.push(b);
    const onA = new RecordingConnection('dev-a');
    a.registry.register(onA);
    const leaving = new RecordingConnection('dev-leaving');
    const moving = new RecordingConnection('dev-moving');
    b.registry.register(leaving);
    b.registry.register(moving);
    await waitFor(async () => (await a.registry.devices()).count === 3, 3000, 'three routes');
    const configs: string[] = [];
    b.bus.on('config', (m) => void configs.push(m.source));

    await proxy.down();
    const health = await waitFor(
      () => (b.registry.health().status === 'degraded' ? b.registry.health() : undefined),
      3000,
      'b degraded',
    );
    assert.match(health.reason ?? '', /connection/);
    assert.equal(a.registry.health().status, 'ok', 'a is not affected');
    // Calls that need Redis fail fast, so that the caller can queue the message instead.
    await assert.rejects(b.registry.deliver('dev-a', { type: 'peer' }), ClusterUnavailableError);
    await assert.rejects(b.registry.devices(), ClusterUnavailableError);
    // Local serving goes on: register, deliver, unregister on b, all without Redis.
    const fresh = new RecordingConnection('dev-fresh');
    assert.equal(b.registry.register(fresh).record.deviceId, 'dev-fresh');
    assert.deepEqual(await b.registry.deliver('dev-fresh', { type: 'x' }), { ok: true, nodeId: 'b' });
    assert.equal(b.registry.unregister(leaving), true);
    // Meanwhile the cluster goes on: a broadcast, and a device of b reconnects to a.
    await a.bus.broadcast({ kind: 'config', source: 'sighup' });
    const movedToA = new RecordingConnection('dev-moving');
    a.registry.register(movedToA);
    await waitFor(async () => (await a.registry.route('dev-moving'))?.nodeId === 'a', 3000, 'dev-moving on a');

    await proxy.up();
    await waitFor(() => b.registry.health().status === 'ok', 8000, 'b recovered');
    // What b missed arrives; its devices are routed again; the one that left is gone; the one that moved is told.
    await waitFor(() => configs.includes('sighup'), 3000, 'the broadcast sent while b was away');
    await waitFor(async () => (await a.registry.route('dev-fresh'))?.nodeId === 'b', 3000, 'dev-fresh claimed');
    await waitFor(async () => (await a.registry.route('dev-leaving')) === undefined, 3000, 'dev-leaving released');
    await waitFor(() => moving.replacedByConn, 3000, 'the moved device’s old connection on b told');
    assert.equal(moving.replacedByConn?.connectionId, movedToA.connectionId);
    assert.equal(b.registry.get('dev-moving'), undefined);
    assert.equal((await a.registry.route('dev-moving'))?.nodeId, 'a', 'the newer connection keeps the device');
    assert.deepEqual(await a.registry.deliver('dev-fresh', { type: 'hello-again' }), { ok: true, nodeId: 'b' });
    assert.equal(onA.replacedByConn, undefined);
  });
});

describe('cluster hub when Redis restarts empty (issue #10, failures)', { skip }, () => {
  const redis = new OwnRedis();
  const hubs: ClusterHub[] = [];
  after(async () => {
    for (const h of hubs.splice(0)) await h.close();
    await redis.kill();
  });

  it('a new, empty Redis server: lease and routes are claimed again, the bus carries on', async () => {
    await redis.start();
    const prefix = testPrefix();
    const a = await startNode(prefix, 'a', { redisUrl: redis.url });
    const b = await startNode(prefix, 'b', { redisUrl: redis.url });
    hubs.push(a, b);
    const got: string[] = [];
    b.bus.on('tasks', (m) => void got.push(m.groups[0]!));
    const gaps: string[] = [];
    b.bus.onGap((g) => void gaps.push(g.reason));
    // Enough traffic that the stream ids b has read are well past those of a fresh server's first entries.
    for (let i = 0; i < 20; i++) await a.bus.send('b', { kind: 'tasks', groups: [`old-${i}`] });
    const onB = new RecordingConnection('dev-b');
    b.registry.register(onB);
    await waitFor(async () => (await a.registry.route('dev-b'))?.nodeId === 'b', 3000, 'dev-b routed');
    await waitFor(() => got.length === 20, 3000, 'the first messages');

    await redis.kill();
    await waitFor(() => b.registry.health().status === 'degraded', 3000, 'b degraded');
    await redis.start();
    await waitFor(() => a.registry.health().status === 'ok' && b.registry.health().status === 'ok', 8000, 'both back');
    await waitFor(async () => (await a.registry.route('dev-b'))?.nodeId === 'b', 3000, 'dev-b routed again');
    assert.equal((await a.registry.devices()).count, 1);
    await a.bus.send('b', { kind: 'tasks', groups: ['new'] });
    await waitFor(() => got.includes('new'), 3000, 'a message on the new server');
    assert.deepEqual(await a.registry.deliver('dev-b', { type: 'x' }), { ok: true, nodeId: 'b' });
    // What the old server held is gone: b says so (its config and task snapshots are resynced on it).
    assert.deepEqual(gaps, ['restarted']);
    assert.equal(b.bus.stats.gaps, 1);
  });
});
