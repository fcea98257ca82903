/**
 * queue: the offline peer queue as a store (D16, D19), SQLite and PostgreSQL side by side in one run, without
 * sockets (the `peer` profile measures the SQLite queue through a server; cluster mode cannot serve yet).
 *   1. enqueue: --messages one-message enqueues, round robin over --targets devices, --window calls in flight
 *      (as the peer feature enqueues one message per offline target); a message counts when its promise resolves,
 *      i.e. after the commit.
 *   2. redelivery: every target drains at once as a flush does on reconnect: peek a page of 100, remove it, again.
 * PostgreSQL: a fresh schema in the database of --url (dropped at the end).
 * Target: ≥ 5,000 msg/s each way.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redactUrl } from '../../src/config/load.js';
import type { PeerEnvelope } from '../../src/features/peer/message.js';
import type { PeerQueue } from '../../src/features/peer/queue.js';
import { SqlitePeerQueue } from '../../src/features/peer/sqlite-queue.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { PgPeerQueue } from '../../src/store/postgres/peer-queue.js';
import { connectPg, PgDb, quoteIdent } from '../../src/store/postgres/pool.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { int } from '../lib/flags.js';
import type { Figure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';

const TARGET_PER_SEC = 5000;
const PAGE = 100;

const options = {
  messages: { type: 'string', default: '20000' },
  targets: { type: 'string', default: '200' },
  window: { type: 'string', default: '200' },
  text: { type: 'string', default: '100' },
  backend: { type: 'string', default: 'both' },
  url: { type: 'string', default: process.env.LINUS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
} as const;

const help: Record<keyof typeof options, string> = {
  messages: 'messages to queue',
  targets: 'offline target devices',
  window: 'enqueue calls in flight',
  text: 'characters of payload.text',
  backend: 'sqlite, postgres or both',
  url: 'PostgreSQL database (a schema is made in it and dropped); env LINUS_DATABASE_URL',
};

const profile: Profile = {
  name: 'queue',
  summary: 'offline peer queue store alone, SQLite vs PostgreSQL: enqueue and redelivery msg/s',
  options,
  help,
  smokeDefaults: { messages: '500', targets: '10', window: '20' },
  timeoutSec: () => 600,
  run,
};
export default profile;

interface Phases {
  enqueue: { messages: number; ms: number };
  redelivery: { messages: number; ms: number };
}

async function measure(queue: PeerQueue, f: { messages: number; targets: number; window: number; text: string }) {
  const targets = Array.from({ length: f.targets }, (_, i) => `bench:q${i}`);
  const now = Date.now();
  let next = 0;
  let queued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(f.window, f.messages) }, async () => {
      while (next < f.messages) {
        const i = next++;
        const to = targets[i % targets.length]!;
        const envelope: PeerEnvelope = {
          type: 'peer',
          event: 'message',
          id: `m${i}`,
          from: 'bench:sender',
          to,
          category: 'chat',
          payload: { text: f.text, n: i },
          ts: now,
        };
        const [outcome] = await queue.enqueue([
          { deviceId: to, envelope, queuedAt: now, expiresAt: now + 3_600_000, maxPerDevice: f.messages },
        ]);
        if (outcome === 'queued') queued++;
      }
    }),
  );
  const enqueueMs = performance.now() - t0;
  let delivered = 0;
  let outOfOrder = 0;
  const t1 = performance.now();
  await Promise.all(
    targets.map(async (to) => {
      let last = -1;
      for (;;) {
        const page = await queue.peek(to, PAGE, now);
        if (!page.length) return;
        for (const m of page) {
          const n = m.envelope.payload.n as number;
          if (n <= last) outOfOrder++;
          last = n;
        }
        await queue.remove(page.map((m) => m.ref));
        delivered += page.length;
      }
    }),
  );
  const phases: Phases = {
    enqueue: { messages: queued, ms: enqueueMs },
    redelivery: { messages: delivered, ms: performance.now() - t1 },
  };
  return { phases, outOfOrder };
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const settings = {
    messages: int(f, 'messages', 1, 10_000_000),
    targets: int(f, 'targets', 1, 100_000),
    window: int(f, 'window', 1, 100_000),
    text: 'x'.repeat(int(f, 'text', 0, 100_000)),
  };
  const backend = String(f.backend);
  if (!['sqlite', 'postgres', 'both'].includes(backend)) throw new Error('--backend must be sqlite, postgres or both');
  const url = String(f.url);
  const startedAt = new Date();
  const figures: Figure[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const details: Record<string, unknown> = {};

  const report = (name: string, r: Awaited<ReturnType<typeof measure>>, targeted: boolean): void => {
    details[name] = r;
    for (const phase of ['enqueue', 'redelivery'] as const) {
      const p = r.phases[phase];
      const perSec = Math.round((p.messages / p.ms) * 1000);
      figures.push({
        name: `${name}: ${phase}`,
        value: perSec,
        unit: 'msg/s',
        ...(targeted ? { target: `≥ ${TARGET_PER_SEC}`, met: perSec >= TARGET_PER_SEC } : {}),
      });
    }
    if (r.phases.enqueue.messages !== settings.messages)
      failures.push(`${name}: ${r.phases.enqueue.messages} of ${settings.messages} queued`);
    if (r.phases.redelivery.messages !== r.phases.enqueue.messages)
      failures.push(`${name}: ${r.phases.redelivery.messages} redelivered of ${r.phases.enqueue.messages} queued`);
    if (r.outOfOrder) failures.push(`${name}: ${r.outOfOrder} messages out of order`);
  };

  if (backend !== 'postgres') {
    const dir = mkdtempSync(join(tmpdir(), 'linus-bench-queue-'));
    const db = openDatabase(dir);
    const queue = new SqlitePeerQueue(db);
    try {
      ctx.progress('sqlite: running');
      report('SQLite', await measure(queue, settings), false);
    } finally {
      await queue.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (backend !== 'sqlite') {
    const schema = `linus_bench_${randomBytes(6).toString('hex')}`;
    const admin = await connectPg({ url, max: 1 });
    await admin.exec(`CREATE SCHEMA ${quoteIdent(schema)}`);
    const pg = new PgDb({ url, schema });
    const queue = new PgPeerQueue(pg);
    try {
      await migratePg(pg);
      ctx.progress('postgres: running');
      report('PostgreSQL', await measure(queue, settings), true);
      const version = await pg.row<{ v: string }>("SELECT current_setting('server_version') AS v");
      notes.push(`PostgreSQL ${version?.v ?? '?'} at ${redactUrl(url)}, pool of 10`);
    } finally {
      await queue.close();
      await pg.close();
      await admin.exec(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      await admin.close();
    }
  }
  notes.push(
    `${settings.messages} messages, ${settings.targets} targets, ${settings.window} enqueues in flight, pages of ${PAGE}; store only, in this process`,
  );
  return {
    profile: 'queue',
    command: `linus bench queue --messages ${settings.messages} --targets ${settings.targets} --window ${settings.window} --backend ${backend}`,
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    notes,
    ok: failures.length === 0,
    ...(failures.length ? { failures } : {}),
    details,
  };
}
