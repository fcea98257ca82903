/**
 * The PostgreSQL side of cluster mode through the real command line: `linus migrate`, `linus migrate --from-sqlite`
 * and the start-up errors of `linus serve` for the cluster keys. PostgreSQL is the machine's (test/support/pg.ts),
 * one schema per test file; the tests skip with the reason printed when it cannot be reached.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { normalizeSummary } from '../../src/features/meeting/summary.js';
import { SqliteActivationStore } from '../../src/store/activation.js';
import { pgCoreStores, pgFeatureStores, sqliteFeatureStores } from '../../src/store/compose.js';
import { SqliteMemoryStore } from '../../src/store/memory.js';
import { DB_FILE, openDatabase } from '../../src/store/sqlite.js';
import { freePort, killAllCli, lines, runCli, type CliResult } from '../support/cli.js';
import { PG_SKIP, testSchema, type TestSchema } from '../support/pg.js';
import { tempDir } from '../support/server.js';

const dirs: string[] = [];
function scratch(): string {
  const dir = tempDir('linus-cluster-cli-');
  dirs.push(dir);
  return dir;
}

after(async () => {
  await killAllCli();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** One line on stderr, a non-zero exit; the time taken is reported, not asserted. */
function assertOneLineFailure(t: TestContext, r: CliResult, patterns: RegExp[]): void {
  t.diagnostic(`exited with code ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr.trim()}`);
  assert.ok(r.code !== null && r.code !== 0, `non-zero exit expected, got ${r.code}\nstdout: ${r.stdout}`);
  const errLines = lines(r.stderr);
  assert.equal(errLines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  for (const p of patterns) assert.match(errLines[0]!, p);
}

describe('linus serve: cluster keys at start', () => {
  it('one URL without the other names the missing key', async (t) => {
    const dir = scratch();
    const onlyPg = await runCli(['serve', '--data-dir', dir, '--port', String(await freePort())], {
      env: { LINUS_DATABASE_URL: 'postgres://127.0.0.1:1/none' },
    });
    assertOneLineFailure(t, onlyPg, [/cluster\.redis_url/, /LINUS_REDIS_URL/]);
    const onlyRedis = await runCli(['serve', '--data-dir', dir, '--port', String(await freePort())], {
      env: { LINUS_REDIS_URL: 'redis://127.0.0.1:1' },
    });
    assertOneLineFailure(t, onlyRedis, [/cluster\.postgres_url/, /LINUS_DATABASE_URL/]);
  });

  it('an unreachable PostgreSQL names cluster.postgres_url and the cause, password hidden', async (t) => {
    const port = await closedPort();
    const r = await runCli(['serve', '--data-dir', scratch(), '--port', String(await freePort())], {
      env: {
        LINUS_DATABASE_URL: `postgres://linus:hunter2@127.0.0.1:${port}/linus`,
        LINUS_REDIS_URL: 'redis://127.0.0.1:6379',
      },
    });
    assertOneLineFailure(t, r, [/cluster\.postgres_url/, /ECONNREFUSED/, new RegExp(`127\\.0\\.0\\.1:${port}`)]);
    assert.doesNotMatch(r.stderr, /hunter2/);
  });
});

describe('linus migrate', { skip: PG_SKIP }, () => {
  let schema: TestSchema;
  before(async () => {
    schema = await testSchema({ migrate: false });
  });
  after(() => schema.drop());

  const migrate = (args: string[] = []) =>
    runCli(['migrate', '--data-dir', scratch(), ...args], { env: { LINUS_DATABASE_URL: schema.url } });

  it('applies every step once and says so; a second run applies nothing', async () => {
    const first = await migrate();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^applied core 1$/m);
    assert.match(first.stdout, /^applied peer 1$/m);
    assert.match(first.stdout, /^schema now at core 1, meeting 2, peer 1, workflow 1$/m);
    const second = await migrate();
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /applied/);
    assert.match(second.stdout, /schema already current \(core 1, meeting 2, peer 1, workflow 1\)/);
  });

  it('--from-sqlite copies a single node into PostgreSQL, and a second run copies nothing twice', async () => {
    // A single node's data dir, written through its own stores.
    const dataDir = scratch();
    const db = openDatabase(dataDir);
    const local = sqliteFeatureStores(db);
    const { meeting } = await local.meetings.openMeeting('dev-1', 's', 'meet-1', 1000);
    await local.meetings.appendSnippets(
      meeting.id,
      [
        { ts: 1100, text: 'hello' },
        { ts: 1200, text: 'world' },
      ],
      200,
    );
    await local.meetings.beginFinalize(meeting.id, 2000);
    const summary = normalizeSummary(
      { title: 'Copied', bullets: ['b'], actions: ['a'], nextSteps: [] },
      { durationMs: 1000, sourceSegments: 2, checkpoint: false, lang: 'en' },
    );
    const meta = {
      source: 'llm' as const,
      llmElapsedMs: 1,
      durationMs: 1000,
      segmentsCount: 2,
      checkpointCount: 0,
      emptyBullets: false,
      industry: '',
      scenario: '',
    };
    await local.meetings.complete(meeting.id, summary, meta, 2100);
    await local.meetings.openMeeting('dev-2', 's', 'meet-open', 3000);
    await local.meetings.appendSnippets('meet-open', [{ ts: 3100, text: 'still going' }], 200);
    await local.tasks.upsert(
      [
        { id: 't1', groupKey: 'team', title: 'first' },
        { id: 't2', groupKey: 'team', title: 'second', priority: 0 },
      ],
      4000,
    );
    const now = Date.now();
    const envelope = (id: string, text: string) => ({
      type: 'peer' as const,
      event: 'message' as const,
      id,
      from: 'dev-1',
      to: 'dev-off',
      category: 'chat',
      payload: { text },
      ts: now,
    });
    await local.peerQueue.enqueue(
      ['p1', 'p2', 'p3'].map((id, i) => ({
        deviceId: 'dev-off',
        envelope: envelope(id, `msg ${i}`),
        queuedAt: now,
        expiresAt: now + 3_600_000,
        maxPerDevice: 100,
      })),
    );
    await local.peerQueue.close();
    await new SqliteMemoryStore(db).save('dev-1', 'likes tea', 5000);
    const code = (await new SqliteActivationStore(db).issue('dev-3', 'client-3', 6000)).code;
    db.close();

    const file = join(dataDir, DB_FILE);
    const first = await migrate(['--from-sqlite', file]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^copied meetings: 2 of 2$/m);
    assert.match(first.stdout, /^copied meeting_segments: 2 of 2$/m);
    assert.match(first.stdout, /^copied meeting_pending: 1 of 1$/m);
    assert.match(first.stdout, /^copied meeting_summaries: 1 of 1$/m);
    assert.match(first.stdout, /^copied workflow_tasks: 2 of 2$/m);
    assert.match(first.stdout, /^copied peer_queue: 3 of 3$/m);
    assert.match(first.stdout, /^copied memories: 1 of 1$/m);
    assert.match(first.stdout, /^copied activations: 1 of 1$/m);

    // Read back through the PostgreSQL stores, as a node would.
    const pg = pgFeatureStores(schema.db, 'test');
    assert.equal((await pg.meetings.summary('meet-1'))?.summary.title, 'Copied');
    assert.deepEqual(
      (await pg.meetings.transcript('meet-1', 0, 10)).items.map((s) => s.text),
      ['hello', 'world'],
    );
    assert.equal((await pg.meetings.activeMeeting('dev-2'))?.id, 'meet-open');
    assert.deepEqual(
      (await pg.meetings.appendSnippets('meet-open', [{ ts: 3200, text: 'on PG' }], 200)).ok,
      true,
      'the open meeting continues in PostgreSQL with its sequence',
    );
    assert.deepEqual(
      (await pg.meetings.transcript('meet-open', 0, 10)).items.map((s) => [s.seq, s.text]),
      [
        [1, 'still going'],
        [2, 'on PG'],
      ],
    );
    assert.deepEqual(
      (await pg.tasks.list('team')).items.map((t) => t.id),
      ['t2', 't1'],
    );
    assert.deepEqual(
      (await pg.peerQueue.peek('dev-off', 10, now)).map((m) => m.envelope.payload.text),
      ['msg 0', 'msg 1', 'msg 2'],
    );
    assert.deepEqual(await schema.db.row('SELECT summary FROM memories WHERE device_id = $1', ['dev-1']), {
      summary: 'likes tea',
    });
    assert.deepEqual(await schema.db.row('SELECT code FROM activations WHERE device_id = $1', ['dev-3']), { code });

    const second = await migrate(['--from-sqlite', file]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^copied 0 rows from /m);
    assert.match(second.stdout, /^copied peer_queue: 0 of 3 \(3 there already\)$/m);
    assert.equal(await pg.peerQueue.count('dev-off', now), 3, 'nothing copied twice');
    assert.equal((await pg.tasks.list('team')).total, 2);
    await pg.peerQueue.close();
  });

  it('--from-sqlite of a missing file fails with one line', async (t) => {
    const r = await migrate(['--from-sqlite', join(scratch(), 'nope.db')]);
    assertOneLineFailure(t, r, [/--from-sqlite: no such file/]);
  });

  it('serve with both URLs and an unreachable Redis names cluster.redis_url and the cause', async (t) => {
    const port = await closedPort();
    const r = await runCli(['serve', '--data-dir', scratch(), '--port', String(await freePort())], {
      env: { LINUS_DATABASE_URL: schema.url, LINUS_REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    assertOneLineFailure(t, r, [/cluster\.redis_url/, /ECONNREFUSED/]);
  });
});

describe('linus activate / devices with the cluster keys: the cluster’s PostgreSQL', { skip: PG_SKIP }, () => {
  let schema: TestSchema;
  before(async () => {
    schema = await testSchema();
  });
  after(() => schema.drop());

  // The CLI reads no Redis; both keys only say "cluster mode", as for `serve`.
  const cli = (args: string[]) =>
    runCli([...args, '--data-dir', scratch()], {
      env: { LINUS_DATABASE_URL: schema.url, LINUS_REDIS_URL: 'redis://127.0.0.1:1' },
    });

  it('lists and rebinds the bindings and activates a code kept in PostgreSQL', async () => {
    const { activations, bindings } = pgCoreStores(schema.db);
    assert.equal((await bindings.claim('cl:d0:00:00:00:01', 'first-client', 1000)).clientId, 'first-client');
    const list = await cli(['devices', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^cl:d0:00:00:00:01\tfirst-client\t/m);

    const rebound = await cli(['devices', 'rebind', 'cl:d0:00:00:00:01', 'second-client']);
    assert.equal(rebound.code, 0, rebound.stderr);
    assert.match(rebound.stdout, /now bound to client second-client \(was first-client\)/);
    assert.equal((await bindings.get('cl:d0:00:00:00:01'))?.clientId, 'second-client');

    const code = (await activations.issue('cl:d0:00:00:00:02', 'c2', 2000)).code;
    const activated = await cli(['activate', code]);
    assert.equal(activated.code, 0, activated.stderr);
    assert.match(activated.stdout, /^activated cl:d0:00:00:00:02$/m);
    assert.equal(await activations.isActivated('cl:d0:00:00:00:02'), true);
    const again = await cli(['activate', code]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /no device is waiting with code/);
  });
});
