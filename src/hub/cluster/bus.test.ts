import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  adminClient,
  dropPrefix,
  killClients,
  REDIS_URL,
  redisSkipReason,
  TcpProxy,
  testPrefix,
} from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';
import { silentLogger } from '../../observability/log.js';
import { NodeBus, type BusGap } from './bus.js';
import { ClusterUnavailableError, RedisLink } from './link.js';
import type { BusMessage } from './messages.js';

const skip = await redisSkipReason();

describe('node bus on Redis Streams (D17)', { skip }, () => {
  let admin: Redis;
  let prefix: string;
  const open: Array<{ link: RedisLink; bus: NodeBus }> = [];
  const node = async (nodeId: string, o: { redisUrl?: string; streamTtlMs?: number } = {}): Promise<NodeBus> => {
    const log = silentLogger();
    const link = new RedisLink({ redisUrl: o.redisUrl ?? REDIS_URL, name: `linus:${nodeId}`, log, maxBackoffMs: 200 });
    await link.start();
    const bus = new NodeBus({
      link,
      keyPrefix: prefix,
      nodeId,
      log,
      blockMs: 500,
      ...(o.streamTtlMs ? { streamTtlMs: o.streamTtlMs } : {}),
    });
    open.push({ link, bus });
    await bus.start();
    return bus;
  };

  before(() => {
    admin = adminClient();
  });
  after(() => admin.disconnect());
  afterEach(async () => {
    for (const { link, bus } of open.splice(0)) {
      bus.close();
      link.close();
      await bus.stopped;
    }
    await dropPrefix(admin, prefix);
  });

  it('send reaches one node; broadcast reaches every other node and not the sender', async () => {
    prefix = testPrefix();
    const [a, b, c] = [await node('a'), await node('b'), await node('c')];
    const got: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const [name, bus] of Object.entries({ a, b, c })) {
      bus.on('tasks', (m) => void got[name]!.push(`tasks:${m.groups.join(',')}@${m.from}`));
      bus.on('config', (m) => void got[name]!.push(`config:${m.source}@${m.from}`));
    }
    await a.send('b', { kind: 'tasks', groups: ['g1'] });
    await a.broadcast({ kind: 'config', source: 'admin', patch: { server: { stats_interval_ms: 5000 } } });
    await waitFor(() => got.b!.length === 2 && got.c!.length === 1, 3000, 'b and c to receive');
    assert.deepEqual(got, { a: [], b: ['tasks:g1@a', 'config:admin@a'], c: ['config:admin@a'] });
    assert.equal(a.stats.sent, 2);
  });

  it('a request is answered by the handler on the other node; no answer fails with ClusterUnavailableError', async () => {
    prefix = testPrefix();
    const [a, b] = [await node('a'), await node('b')];
    b.on('deliver', (m) => b.reply(m, m.deviceId === 'here' ? { ok: true } : { ok: false, reason: 'offline' }));
    // Posted to the node's inbox as the route table's script does it.
    const ask = async (to: string, deviceId: string, timeoutMs?: number) =>
      (await a.requestVia(
        async (json, stream) => {
          await admin.xadd(`${stream.inboxPrefix}${to}`, '*', 'm', json);
          return to;
        },
        { kind: 'deliver', deviceId, message: { type: 'x' } },
        timeoutMs,
      ))!;
    const ok = await ask('b', 'here');
    assert.deepEqual([ok.nodeId, ok.result.ok], ['b', true]);
    const no = (await ask('b', 'gone')).result;
    assert.deepEqual([no.ok, no.reason], [false, 'offline']);
    await assert.rejects(
      ask('nobody', 'x', 200),
      (err: Error) => err instanceof ClusterUnavailableError && /no answer from node nobody/.test(err.message),
    );
    assert.equal(a.stats.timeouts, 1);
    assert.equal(
      await a.requestVia(async () => undefined, { kind: 'deliver', deviceId: 'x', message: { type: 'x' } }),
      undefined,
      'no node: nothing sent',
    );
  });

  it('bad entries are counted and dropped, expired requests are not acted on, and the next good message still arrives', async () => {
    prefix = testPrefix();
    const b = await node('b');
    const seen: BusMessage[] = [];
    b.on('deliver', (m) => void seen.push(m));
    b.on('tasks', (m) => void seen.push(m));
    b.on('presence', () => {
      throw new Error('handler bug');
    });
    const inbox = NodeBus.inboxKey(prefix, 'b');
    const base = { v: 1, id: 'x1', from: 'evil', ts: Date.now() };
    await admin.xadd(inbox, '*', 'm', 'not json');
    await admin.xadd(inbox, '*', 'other', 'field');
    await admin.xadd(inbox, '*', 'm', JSON.stringify({ ...base, kind: 'tasks', groups: 'not-an-array' }));
    await admin.xadd(inbox, '*', 'm', JSON.stringify({ ...base, kind: 'launch-missiles' }));
    await admin.xadd(inbox, '*', 'm', JSON.stringify({ ...base, v: 2, kind: 'tasks', groups: [] }));
    const stale = { ...base, kind: 'deliver', deviceId: 'd', message: { type: 'x' }, expiresAt: Date.now() - 1 };
    await admin.xadd(inbox, '*', 'm', JSON.stringify(stale));
    await admin.xadd(inbox, '*', 'm', JSON.stringify({ ...base, kind: 'presence', deviceId: 'd', online: true }));
    await admin.xadd(inbox, '*', 'm', JSON.stringify({ ...base, kind: 'tasks', groups: ['ok'] }));
    await waitFor(() => seen.length === 1, 3000, 'the good message');
    assert.equal(seen[0]?.kind, 'tasks');
    assert.deepEqual(
      { invalid: b.stats.invalid, expired: b.stats.expired, handlerErrors: b.stats.handlerErrors },
      { invalid: 5, expired: 1, handlerErrors: 1 },
    );
  });

  it('a node whose connections are killed reports degraded, recovers on its own, and reads what was sent meanwhile', async () => {
    prefix = testPrefix();
    const [a, b] = [await node('a'), await node('b')];
    const linkB = open[1]!.link;
    const got: string[] = [];
    b.on('tasks', (m) => void got.push(m.groups[0]!));
    await a.send('b', { kind: 'tasks', groups: ['before'] });
    await waitFor(() => got.length === 1, 3000, 'first message');
    const states: string[] = [];
    linkB.on('degraded', () => states.push('degraded'));
    linkB.on('ready', () => states.push('ready'));
    // Kill b's connections and send while it reconnects (its first retry waits ~100 ms).
    assert.ok((await killClients(admin, 'linus:b:')) >= 2);
    await a.send('b', { kind: 'tasks', groups: ['during'] });
    await a.broadcast({ kind: 'tasks', groups: ['broadcast-during'] });
    await waitFor(() => states.includes('ready'), 5000, 'b to reconnect');
    assert.equal(states[0], 'degraded');
    await waitFor(() => got.length === 3, 3000, 'the messages sent while b was down');
    assert.deepEqual(got, ['before', 'during', 'broadcast-during']);
    assert.equal(linkB.health().status, 'ok');
    assert.equal(b.stats.gaps, 0, 'nothing lost: no gap');
  });

  describe('a node away longer than the broadcast stream keeps what it missed', () => {
    const proxy = new TcpProxy();
    afterEach(() => proxy.down());

    /** b reads through the proxy; `gaps` records what its bus reports. */
    const pair = async (streamTtlMs?: number) => {
      prefix = testPrefix();
      await proxy.up();
      const a = await node('a', streamTtlMs ? { streamTtlMs } : {});
      const b = await node('b', { redisUrl: proxy.url, ...(streamTtlMs ? { streamTtlMs } : {}) });
      const gaps: BusGap[] = [];
      const got: string[] = [];
      b.onGap((g) => void gaps.push(g));
      b.on('tasks', (m) => void got.push(m.groups[0]!));
      await a.broadcast({ kind: 'tasks', groups: ['before'] });
      await waitFor(() => got.length === 1, 3000, 'b to read the first broadcast');
      return { a, b, gaps, got };
    };

    it('the broadcast stream trimmed past its position is a gap, reported once it reads again, before what is left', async () => {
      const { a, b, gaps, got } = await pair();
      // Read up to here: trimming what b has read is no gap.
      await admin.xtrim(`${prefix}bus:all`, 'MAXLEN', 0);
      await a.broadcast({ kind: 'tasks', groups: ['kept'] });
      await waitFor(() => got.length === 2, 3000, 'b to read on');
      await proxy.down();
      await a.broadcast({ kind: 'tasks', groups: ['lost'] });
      await admin.xtrim(`${prefix}bus:all`, 'MAXLEN', 0);
      await a.broadcast({ kind: 'tasks', groups: ['after-trim'] });
      let gotAtGap = -1;
      b.onGap(() => (gotAtGap = got.length));
      await proxy.up();
      await waitFor(() => got.length === 3, 5000, 'b to read what is left');
      assert.deepEqual(got, ['before', 'kept', 'after-trim']);
      assert.equal(gaps.length, 1, JSON.stringify(gaps));
      assert.equal(gaps[0]?.reason, 'trimmed');
      assert.equal(gotAtGap, 2, 'told before it reads on');
      assert.equal(b.stats.gaps, 1);
      // Emptied (XTRIM MAXLEN 0) after a broadcast it did not read: a gap too.
      await proxy.down();
      await a.broadcast({ kind: 'tasks', groups: ['lost-too'] });
      await admin.xtrim(`${prefix}bus:all`, 'MAXLEN', 0);
      await proxy.up();
      await waitFor(() => gaps.length === 2, 5000, 'the second gap');
      assert.equal(gaps[1]?.reason, 'trimmed');
      assert.deepEqual(got, ['before', 'kept', 'after-trim']);
    });

    it('a broadcast stream that expired while the node was away is a gap; a short outage with the stream gone is not', async () => {
      const { a, b, gaps, got } = await pair(2000);
      await waitFor(async () => (await admin.exists(`${prefix}bus:all`)) === 0, 5000, 'the stream to expire');
      // Away for less than the TTL: nothing written since its last read can have expired with the stream.
      assert.ok((await killClients(admin, 'linus:b:')) >= 1);
      await a.broadcast({ kind: 'tasks', groups: ['short'] });
      await waitFor(() => got.length === 2, 5000, 'b to read after a short outage');
      assert.equal(gaps.length, 0, JSON.stringify(gaps));
      await proxy.down();
      await a.broadcast({ kind: 'tasks', groups: ['expired'] });
      await waitFor(async () => (await admin.exists(`${prefix}bus:all`)) === 0, 5000, 'the stream to expire');
      await proxy.up();
      await waitFor(() => gaps.length === 1, 5000, 'the gap');
      assert.equal(gaps[0]?.reason, 'expired');
      assert.deepEqual(got, ['before', 'short']);
      assert.equal(b.stats.gaps, 1);
    });
  });

  it('a kept broadcast is numbered, reaches the others, and can be read back by a node that missed it', async () => {
    prefix = testPrefix();
    const [a, b] = [await node('a'), await node('b')];
    const seqs: Array<number | undefined> = [];
    b.on('config', (m) => void seqs.push(m.seq));
    assert.equal(await b.lastKept('config'), undefined);
    const first = await a.broadcastKept({ kind: 'config', source: 'admin', patch: { x: 1 } });
    assert.equal(first.seq, 1);
    assert.deepEqual(await a.broadcastKept({ kind: 'config', source: 'file' }), { seq: 2, epoch: first.epoch });
    // A number already used (a Redis restored from an older snapshot) is never handed out again.
    assert.deepEqual(await a.broadcastKept({ kind: 'config', source: 'file' }, 7), { seq: 8, epoch: first.epoch });
    await waitFor(() => seqs.length === 3, 3000, 'b to receive them');
    assert.deepEqual(seqs, [1, 2, 8]);
    const last = await b.lastKept('config');
    assert.deepEqual(
      [last?.from, last?.source, last?.seq, last?.epoch, last?.patch],
      ['a', 'file', 8, first.epoch, undefined],
    );
    await admin.hset(`${prefix}bus:last:config`, 'm', 'not json');
    assert.equal(await b.lastKept('config'), undefined, 'a bad kept entry is ignored');
  });
});
