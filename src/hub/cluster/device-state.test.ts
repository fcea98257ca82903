import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  adminClient,
  dropPrefix,
  RecordingConnection,
  redisSkipReason,
  startNode,
  TcpProxy,
  testPrefix,
} from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';
import type { ClusterHub } from './index.js';

const skip = await redisSkipReason();

/** Registers a connection of `deviceId` on the hub and returns its record once its kept state is loaded. */
async function registered(hub: ClusterHub, deviceId: string) {
  const { record } = hub.registry.register(new RecordingConnection(deviceId));
  assert.ok(record.loaded, 'a cluster record loads its kept state');
  await record.loaded;
  return record;
}

describe('device state in Redis (D17): the mode follows the device to another node', { skip }, () => {
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

  it('a mode set on one node is loaded on another; only shared keys are kept, with a TTL; an end removes it', async () => {
    prefix = testPrefix();
    const [a, b, c] = await Promise.all([startNode(prefix, 'a'), startNode(prefix, 'b'), startNode(prefix, 'c')]);
    hubs.push(a, b, c);
    const key = `${prefix}device:dev-1:state`;
    const onA = await registered(a, 'dev-1');
    onA.state.set('mode', 'working');
    onA.state.set('scratch', 1);
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"working"', 3000, 'mode kept');
    assert.equal(await admin.hget(key, 'scratch'), null, 'a key that is not shared stays on the node');
    const ttl = await admin.pttl(key);
    assert.ok(ttl > 23 * 3600_000 && ttl <= 24 * 3600_000, `ttl ${ttl}`);
    assert.equal((await registered(b, 'dev-1')).state.get('mode'), 'working');

    // A mode set on the node before the load answered is the newer one: the kept value does not overwrite it.
    const { record: onC } = c.registry.register(new RecordingConnection('dev-1'));
    onC.state.set('mode', 'coding');
    await onC.loaded;
    assert.equal(onC.state.get('mode'), 'coding');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"coding"', 3000, 'newer mode kept');

    onC.state.delete('mode');
    await waitFor(async () => (await admin.hget(key, 'mode')) === null, 3000, 'mode removed');
    c.registry.local.unregister(c.registry.get('dev-1')!);
    assert.equal((await registered(c, 'dev-1')).state.has('mode'), false);
  });

  it('a device back on a node that still holds its record loads the mode another node set meanwhile', async () => {
    prefix = testPrefix();
    await proxy.up();
    const [a, b] = await Promise.all([startNode(prefix, 'a', { redisUrl: proxy.url }), startNode(prefix, 'b')]);
    hubs.push(a, b);
    const key = `${prefix}device:dev-3:state`;
    const first = new RecordingConnection('dev-3');
    const { record } = a.registry.register(first);
    await record.loaded;
    record.state.set('mode', 'working');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"working"', 3000, 'mode kept');
    await waitFor(
      async () => (await a.registry.route('dev-3')) !== undefined && (await b.registry.route('dev-3'))?.nodeId === 'a',
      3000,
      'routed to a',
    );
    // Node a reads nothing for a moment: the notice that b took the device over has not reached it yet.
    proxy.hold();
    const onB = await registered(b, 'dev-3');
    assert.equal(onB.state.get('mode'), 'working');
    onB.state.set('mode', 'meeting');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"meeting"', 3000, 'mode changed on b');
    // The device is back on a, whose record of it is still there (the handover notice is on its way).
    const back = a.registry.register(new RecordingConnection('dev-3'));
    assert.equal(back.record, record, 'the same record');
    proxy.release();
    await back.record.loaded;
    assert.equal(back.record.state.get('mode'), 'meeting');

    // Ended on b while a still held the record: gone on a too.
    proxy.hold();
    b.registry.register(new RecordingConnection('dev-3')).record.state.delete('mode');
    await waitFor(async () => (await admin.hget(key, 'mode')) === null, 3000, 'mode ended on b');
    const again = a.registry.register(new RecordingConnection('dev-3'));
    proxy.release();
    await again.record.loaded;
    assert.equal(again.record.state.has('mode'), false);
  });

  it('a load overtaken by a newer register does not put back a mode set after that register', async () => {
    prefix = testPrefix();
    await proxy.up();
    const a = await startNode(prefix, 'a', { redisUrl: proxy.url });
    hubs.push(a);
    const key = `${prefix}device:dev-4:state`;
    const first = await registered(a, 'dev-4');
    first.state.set('mode', 'working');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"working"', 3000, 'mode kept');
    // Two registers in a row whose loads both answer "working" (Redis's answers held back until the mode changed
    // here after them): the older load must not put "working" back.
    proxy.hold();
    const one = a.registry.register(new RecordingConnection('dev-4'));
    const firstLoad = one.record.loaded;
    const two = a.registry.register(new RecordingConnection('dev-4'));
    assert.equal(two.record, one.record, 'the same record');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"working"', 3000, 'reads sent');
    two.record.state.set('mode', 'meeting');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"meeting"', 3000, 'the store has the new mode');
    proxy.release();
    await firstLoad;
    await two.record.loaded;
    assert.equal(two.record.state.get('mode'), 'meeting');
  });

  it('Redis away: the load finds nothing and a write is dropped, the node keeps its own state; never throws', async () => {
    prefix = testPrefix();
    await proxy.up();
    const hub = await startNode(prefix, 'p', { redisUrl: proxy.url });
    hubs.push(hub);
    const key = `${prefix}device:dev-2:state`;
    await admin.hset(key, 'mode', '"meeting"');
    await proxy.down();
    await waitFor(() => hub.registry.health().status === 'degraded', 3000, 'degraded');
    const record = await registered(hub, 'dev-2');
    assert.equal(record.state.has('mode'), false, 'nothing loaded while Redis is away');
    record.state.set('mode', 'working');
    assert.equal(record.state.get('mode'), 'working');

    // Once Redis is back: the dropped write is not replayed late over the kept value, the node's own state holds,
    // and the next write is kept again.
    await proxy.up();
    await waitFor(() => hub.registry.health().status === 'ok', 5000, 'recovered');
    const { record: probe } = hub.registry.register(new RecordingConnection('dev-probe'));
    probe.state.set('mode', 'coding');
    // Writes go out in call order on one connection: once this one is in Redis, any earlier one would be too.
    await waitFor(
      async () => (await admin.hget(`${prefix}device:dev-probe:state`, 'mode')) === '"coding"',
      3000,
      'probe',
    );
    assert.equal(await admin.hget(key, 'mode'), '"meeting"', 'the write made while Redis was away was dropped');
    assert.equal(record.state.get('mode'), 'working', 'the node goes on with its own state');
    record.state.set('mode', 'coding');
    await waitFor(async () => (await admin.hget(key, 'mode')) === '"coding"', 3000, 'a write after the outage is kept');
  });
});
