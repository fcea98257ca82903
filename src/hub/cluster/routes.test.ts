import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { adminClient, dropPrefix, REDIS_URL, redisSkipReason, testPrefix } from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';
import { silentLogger } from '../../observability/log.js';
import { RedisLink } from './link.js';
import { RouteTable } from './routes.js';

const skip = await redisSkipReason();
const HOLDER = fileURLToPath(new URL('../../../test/support/route-holder.ts', import.meta.url));

describe('route table in Redis (D17)', { skip }, () => {
  let admin: Redis;
  let prefix: string;
  const open: Array<{ link: RedisLink; routes: RouteTable }> = [];
  const table = async (nodeId: string, leaseMs = 5000): Promise<RouteTable> => {
    const log = silentLogger();
    const link = new RedisLink({ redisUrl: REDIS_URL, name: `linus:${nodeId}`, log });
    await link.start();
    const routes = new RouteTable({ link, keyPrefix: prefix, nodeId, log, leaseMs });
    open.push({ link, routes });
    await routes.start();
    return routes;
  };

  before(() => {
    admin = adminClient();
  });
  after(() => admin.disconnect());
  afterEach(async () => {
    for (const { link, routes } of open.splice(0)) {
      routes.close();
      link.close();
    }
    await dropPrefix(admin, prefix);
  });

  it('claim, lookup and release: a release only removes the route of the same connection', async () => {
    prefix = testPrefix();
    const a = await table('a');
    const b = await table('b');
    assert.deepEqual(await a.claim('dev', 'c1', 1000), { won: true });
    assert.deepEqual(await a.claim('dev', 'c1', 1000), { won: true }, 'claiming again is a no-op');
    assert.deepEqual(await b.lookup('dev'), { nodeId: 'a', connectionId: 'c1', since: 1000 });
    assert.deepEqual(await b.claim('dev', 'c2', 2000), {
      won: true,
      previous: { nodeId: 'a', connectionId: 'c1', since: 1000 },
    });
    assert.equal(await a.release('dev', 'c1'), false, 'the old connection’s release leaves the new route');
    assert.equal((await a.lookup('dev'))?.connectionId, 'c2');
    const listed = await a.devices();
    assert.equal(listed.count, 1);
    assert.deepEqual([...listed.devices], [['dev', 'b']], 'each device with its node');
    assert.deepEqual(listed.nodes.sort(), ['a', 'b'], 'the live nodes, whether they hold devices or not');
    assert.equal(await b.release('dev', 'c2'), true);
    assert.equal(await a.lookup('dev'), undefined);
    const none = await a.devices();
    assert.deepEqual([none.count, none.devices.size, none.nodes.length], [0, 0, 2]);
  });

  it('a claim registered earlier than the live route loses and names the newer holder (D6: the newer connection wins)', async () => {
    prefix = testPrefix();
    const a = await table('a');
    const b = await table('b');
    await b.claim('dev', 'newer', 5000);
    assert.deepEqual(await a.claim('dev', 'older', 4000), {
      won: false,
      holder: { nodeId: 'b', connectionId: 'newer', since: 5000 },
    });
    assert.equal((await a.lookup('dev'))?.connectionId, 'newer');
  });

  it('a node killed with SIGKILL: its routes stop counting when its lease runs out, and a live node sweeps them', async () => {
    prefix = testPrefix();
    const b = await table('b', 600);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', HOLDER, REDIS_URL, prefix, 'k', '600', 'dev-k1', 'dev-k2'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      await waitFor(() => out.includes('claimed'), 15_000, 'the holder process to claim');
      assert.equal((await b.lookup('dev-k1'))?.nodeId, 'k');
      assert.equal((await b.devices()).count, 2);
      const swept: string[] = [];
      b.on('expired', (ids, node) => {
        if (node === 'k') swept.push(...ids);
      });
      child.kill('SIGKILL');
      await once(child, 'exit');
      await waitFor(async () => (await b.lookup('dev-k1')) === undefined, 5000, 'dev-k1 route to expire');
      assert.equal((await b.devices()).count, 0, 'a dead node’s devices are not counted');
      await waitFor(() => swept.length === 2, 5000, 'b to sweep the dead node’s routes');
      assert.deepEqual(swept.sort(), ['dev-k1', 'dev-k2']);
      assert.deepEqual((await b.devices()).nodes, ['b']);
      assert.equal(await admin.hlen(`${prefix}routes`), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a route of a dead node is taken by any claim, whatever its time', async () => {
    prefix = testPrefix();
    const a = await table('a', 300);
    await a.claim('dev', 'c1', 9_999_999_999_999);
    a.close(); // No more heartbeats: the lease runs out.
    const b = await table('b');
    await waitFor(async () => (await b.lookup('dev')) === undefined, 3000, 'a’s lease to run out');
    assert.deepEqual(await b.claim('dev', 'c2', 1), { won: true });
  });
});
