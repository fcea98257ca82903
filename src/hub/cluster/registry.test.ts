import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  adminClient,
  dropPrefix,
  RecordingConnection,
  redisSkipReason,
  startNode,
  testPrefix,
} from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';
import type { ClusterHub } from './index.js';
import { RemoteConnection } from './registry.js';

const skip = await redisSkipReason();

describe('cluster registry over real Redis (D6, D17)', { skip }, () => {
  let admin: Redis;
  let prefix: string;
  const hubs: ClusterHub[] = [];
  const node = async (id: string, opts = {}): Promise<ClusterHub> => {
    const hub = await startNode(prefix, id, opts);
    hubs.push(hub);
    return hub;
  };

  before(() => {
    admin = adminClient();
  });
  after(() => admin.disconnect());
  afterEach(async () => {
    for (const h of hubs.splice(0)) await h.close();
    await dropPrefix(admin, prefix);
  });

  it('a register claims the route; another node sees it and the cluster count includes it', async () => {
    prefix = testPrefix();
    const a = await node('a');
    const b = await node('b');
    const d1 = new RecordingConnection('dev-1');
    const { record } = a.registry.register(d1);
    assert.equal(record.deviceId, 'dev-1', 'the local registry answers synchronously');
    assert.equal(a.registry.get('dev-1'), d1);
    const route = await waitFor(() => b.registry.route('dev-1'), 3000, 'route of dev-1 seen from b');
    assert.deepEqual(
      { nodeId: route.nodeId, connectionId: route.connectionId },
      { nodeId: 'a', connectionId: d1.connectionId },
    );
    b.registry.register(new RecordingConnection('dev-2'));
    await waitFor(async () => (await a.registry.devices()).count === 2, 3000, 'two devices cluster-wide');
    const { devices } = await b.registry.devices();
    assert.deepEqual([...devices].sort(), [
      ['dev-1', 'a'],
      ['dev-2', 'b'],
    ]);
    assert.equal(a.registry.size, 1, 'size stays this node’s own');
  });

  it('a device reconnecting on another node takes the route over: the old node tells its connection and drops it', async () => {
    prefix = testPrefix();
    const a = await node('a');
    const b = await node('b');
    const onA = new RecordingConnection('dev-h');
    a.registry.register(onA);
    await waitFor(() => b.registry.route('dev-h'), 3000, 'route on a');
    const offline: string[] = [];
    a.registry.on('offline', (id) => offline.push(id));
    const onB = new RecordingConnection('dev-h');
    b.registry.register(onB);
    await waitFor(() => onA.replacedByConn, 3000, 'the connection on a told it was replaced');
    assert.ok(onA.replacedByConn instanceof RemoteConnection);
    assert.equal(onA.replacedByConn.connectionId, onB.connectionId);
    assert.equal((onA.replacedByConn as RemoteConnection).nodeId, 'b');
    assert.equal(a.registry.get('dev-h'), undefined, 'a no longer routes the device to the old socket');
    assert.deepEqual(offline, ['dev-h']);
    assert.equal(onB.replacedByConn, undefined);
    // The old session's own close later is a no-op for the route, which stays b's.
    assert.equal(a.registry.unregister(onA), false);
    const route = await a.registry.route('dev-h');
    assert.equal(route?.nodeId, 'b');
    assert.equal(route?.connectionId, onB.connectionId);
  });

  it('delivers to a device on another node with the result; offline and refused are told apart', async () => {
    prefix = testPrefix();
    const a = await node('a');
    const b = await node('b');
    const dev = new RecordingConnection('dev-d');
    b.registry.register(dev);
    await waitFor(() => a.registry.route('dev-d'), 3000, 'route on b');
    const r = await a.registry.deliver('dev-d', { type: 'peer', event: 'message', id: 'm1', payload: { text: 'hi' } });
    assert.deepEqual(r, { ok: true, nodeId: 'b' });
    assert.deepEqual(dev.inbox, [{ type: 'peer', event: 'message', id: 'm1', payload: { text: 'hi' } }]);
    const written = await a.registry.deliver('dev-d', { type: 'peer', id: 'm2' }, { written: true });
    assert.equal(written.ok, true);
    assert.deepEqual(dev.writtenIds, ['m2'], 'written: true settles through deliverWritten on the holding node');
    dev.accepting = false;
    assert.deepEqual(await a.registry.deliver('dev-d', { type: 'peer', id: 'm3' }), {
      ok: false,
      reason: 'not_sent',
      nodeId: 'b',
    });
    assert.deepEqual(await a.registry.deliver('nobody', { type: 'peer' }), { ok: false, reason: 'offline' });
    // Local devices are delivered to without Redis.
    const local = new RecordingConnection('dev-l');
    a.registry.register(local);
    assert.deepEqual(await a.registry.deliver('dev-l', { type: 'x' }), { ok: true, nodeId: 'a' });
    assert.equal(local.inbox.length, 1);
  });

  it('presence: other nodes hear of devices coming and going; a node leaving drops its routes at once', async () => {
    prefix = testPrefix();
    const a = await node('a');
    const b = await node('b');
    const heard: string[] = [];
    b.registry.presence.on('change', (id, online, from) => heard.push(`${id}:${online ? 'on' : 'off'}@${from}`));
    const dev = new RecordingConnection('dev-p');
    a.registry.register(dev);
    await waitFor(() => heard.includes('dev-p:on@a'), 3000, 'online heard on b');
    a.registry.unregister(dev);
    await waitFor(() => heard.includes('dev-p:off@a'), 3000, 'offline heard on b');
    a.registry.register(new RecordingConnection('dev-q'));
    await waitFor(async () => (await b.registry.devices()).count === 1, 3000, 'dev-q counted');
    await hubs.splice(0, 1)[0]!.close();
    assert.equal((await b.registry.devices()).count, 0, 'a closed: its device is gone at once, not at lease end');
    await waitFor(() => heard.includes('dev-q:off@a'), 3000, 'offline of dev-q heard on b');
  });
});
