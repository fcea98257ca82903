import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PG_SKIP, PG_URL, testSchema, type TestSchema } from '../../../test/support/pg.js';
import { migratePg, PG_COMPONENTS, schemaVersions } from './migrations.js';
import { enqueueWebhookPg } from './meetings.js';
import { PgWebhookOutbox } from './outbox.js';
import { PgPeerQueue } from './peer-queue.js';
import { redactUrl } from '../../config/load.js';
import { connectPg } from './pool.js';

/** What only PostgreSQL does: migrations shared by nodes, the outbox drained by one node at a time, the pool. */

describe('postgres migrations', { skip: PG_SKIP }, () => {
  let schema: TestSchema;
  before(async () => {
    schema = await testSchema({ migrate: false });
  });
  after(() => schema.drop());

  it('three nodes starting at once migrate once; a later run applies nothing', async () => {
    const nodes = [schema.db, schema.open(), schema.open()];
    const runs = await Promise.all(nodes.map((db) => migratePg(db)));
    const applied = runs.flat();
    const expected = PG_COMPONENTS.reduce((n, c) => n + c.steps.length, 0);
    assert.equal(applied.length, expected, 'every step applied exactly once across the three');
    assert.equal(runs.filter((r) => r.length > 0).length, 1, 'one node did the work');
    assert.deepEqual(await migratePg(schema.db), []);
    assert.deepEqual(
      await schemaVersions(schema.db),
      PG_COMPONENTS.map((c) => ({ component: c.component, version: c.steps.length })).sort((a, b) =>
        a.component.localeCompare(b.component),
      ),
    );
  });
});

describe('postgres webhook outbox', { skip: PG_SKIP }, () => {
  let schema: TestSchema;
  before(async () => {
    schema = await testSchema();
  });
  after(() => schema.drop());

  it('two nodes draining at once get disjoint deliveries; a claim expires for a node that died', async () => {
    await schema.db.exec(
      "INSERT INTO meetings (id, device_id, session_id, started_at, status) VALUES ('m', 'd', 's', 0, 'done')",
    );
    await schema.db.tx(async (sql) => {
      for (let i = 0; i < 20; i++)
        await enqueueWebhookPg(
          sql,
          { id: `w${i}`, meetingId: 'm', url: 'http://x/', headers: { a: 'b' }, body: '{}', timeoutMs: 1000 },
          1000 + i,
        );
    });
    const a = new PgWebhookOutbox(schema.db, 'node-a');
    const b = new PgWebhookOutbox(schema.open(), 'node-b');
    const now = 10_000;
    const [ja, jb] = await Promise.all([a.due(now, 16), b.due(now, 16)]);
    const ids = [...ja, ...jb].map((j) => j.id);
    assert.equal(ids.length, 20, 'every due row handed out');
    assert.equal(new Set(ids).size, 20, 'none handed to both nodes');
    assert.deepEqual(ja[0]?.headers ?? jb[0]?.headers, { a: 'b' });
    assert.deepEqual(await a.due(now, 16), [], 'claimed rows are not due again while the claim holds');
    await a.delivered(ja[0]!.id, now);
    assert.deepEqual(await b.status(ja[0]!.id), { status: 'delivered', attempts: 0 }, 'seen by the other node');
    // Node B "dies" with its claims: after the claim (timeout + margin) they are due again, for anyone.
    const later = now + 1000 + 30_000 + 1;
    const again = await a.due(later, 100);
    assert.equal(again.length, 19, 'everything not delivered is due again once the claims ran out');
  });
});

describe('postgres peer queue: a flush of one device is single-owner across nodes', { skip: PG_SKIP }, () => {
  let schema: TestSchema;
  before(async () => {
    schema = await testSchema();
  });
  after(() => schema.drop());

  /** A flush as the peer feature runs it: pages read, handed over (a socket write takes a moment), removed. */
  const flush = (queue: PgPeerQueue, got: string[]) =>
    queue.exclusive('hand', 2000, async (q) => {
      for (;;) {
        const items = await q.peek('hand', 10, 2000);
        if (!items.length) return;
        await new Promise((r) => setTimeout(r, 5));
        got.push(...items.map((m) => m.id));
        await q.remove(items.map((m) => m.ref));
      }
    });

  it('two nodes flushing one device at once (a handover) hand each queued message out once', async () => {
    const a = new PgPeerQueue(schema.db);
    const b = new PgPeerQueue(schema.open());
    const items = Array.from({ length: 50 }, (_, i) => ({
      deviceId: 'hand',
      envelope: {
        type: 'peer' as const,
        event: 'message' as const,
        id: `h${i}`,
        from: 's',
        to: 'hand',
        category: 'chat',
        payload: { text: `m${i}` },
        ts: 1000,
      },
      queuedAt: 1000,
      expiresAt: 100_000,
      maxPerDevice: 100,
    }));
    assert.ok((await a.enqueue(items)).every((o) => o === 'queued'));
    const onA: string[] = [];
    const onB: string[] = [];
    await Promise.all([flush(a, onA), flush(b, onB)]);
    const all = [...onA, ...onB];
    assert.equal(new Set(all).size, 50, 'every message handed out');
    assert.equal(all.length, 50, `handed out twice: ${all.length - new Set(all).size}`);
    assert.deepEqual(
      all,
      items.map((i) => i.envelope.id),
      'in order',
    );
    assert.equal(await a.count('hand', 2000), 0);
    // Nothing queued: no lock and no transaction, the view is empty.
    assert.deepEqual(await a.exclusive('hand', 2000, (q) => q.peek('hand', 10, 2000)), []);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('postgres pool', () => {
  it('an unreachable server fails fast with the URL (password hidden) and the cause', async () => {
    // A port that refuses: bound, then closed.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const { port } = srv.address() as { port: number };
    await new Promise<void>((r) => srv.close(() => r()));
    const started = Date.now();
    await assert.rejects(connectPg({ url: `postgres://u:secret@127.0.0.1:${port}/x` }), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`cannot reach PostgreSQL at postgres://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x: .*ECONNREFUSED`),
      );
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
  });

  it('a server that accepts and never answers is given up after the connect timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((s) => void sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const { port } = silent.address() as { port: number };
    try {
      const started = Date.now();
      await assert.rejects(
        connectPg({ url: `postgres://u@127.0.0.1:${port}/x`, connectTimeoutMs: 500 }),
        /cannot reach PostgreSQL at postgres:\/\/u@127\.0\.0\.1:\d+\/x: .*timeout/i,
      );
      assert.ok(Date.now() - started < 3000, 'the timeout, not the socket, ended the attempt');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('redactUrl hides the password only', () => {
    assert.equal(redactUrl('postgres://u:p@h:5432/db?x=1'), 'postgres://u:***@h:5432/db?x=1');
    assert.equal(redactUrl('postgres://h/db'), 'postgres://h/db');
    assert.equal(redactUrl('not a url'), '(unparsable URL)');
  });

  it('BIGINT and COUNT(*) come back as numbers', { skip: PG_SKIP }, async () => {
    const db = await connectPg({ url: PG_URL, max: 1 });
    try {
      assert.deepEqual(await db.row('SELECT 1700000000000::bigint AS t, COUNT(*) AS n FROM (VALUES (1), (2)) v'), {
        t: 1700000000000,
        n: 2,
      });
    } finally {
      await db.close();
    }
  });
});
