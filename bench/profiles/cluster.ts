/**
 * cluster: three `linus serve` nodes on the machine's PostgreSQL and Redis (issue #10, D17), devices over real
 * WebSockets. Senders on node 1 send peer messages, open loop at --rate msg/s for --seconds, alternating between
 * a target on node 1 (same node) and targets on nodes 2 and 3 (cross node); latency = the sender's write → the
 * target's read of the message, one clock (this process). Target: cross-node p99 ≤ 20 ms.
 * Needs PostgreSQL (LINUS_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a schema of its
 * own, dropped at the end) and Redis (LINUS_BENCH_REDIS_URL, default redis://127.0.0.1:6379; a key prefix of its
 * own, deleted at the end).
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import type WebSocket from 'ws';
import { PgDb, quoteIdent } from '../../src/store/postgres/pool.js';
import { sleep } from '../lib/children.js';
import { int } from '../lib/flags.js';
import { openTextDevice } from '../lib/device.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { bucketize, quantiles } from '../lib/stats.js';

const CROSS_P99_MS = 20;
const BOUNDS = [0.5, 1, 2, 3, 5, 10, 20, 50, 100, 250, Infinity];

const options = {
  rate: { type: 'string', default: '1000' },
  seconds: { type: 'string', default: '10' },
  senders: { type: 'string', default: '10' },
} as const;

const help: Record<keyof typeof options, string> = {
  rate: 'peer messages per second, half same-node, half cross-node',
  seconds: 'length of the run',
  senders: 'sending devices on node 1',
};

const profile: Profile = {
  name: 'cluster',
  summary: 'three linus serve nodes on PostgreSQL + Redis: cross-node vs same-node peer latency',
  options,
  help,
  smokeDefaults: { rate: '50', seconds: '1', senders: '2' },
  timeoutSec: () => 600,
  run,
};
export default profile;

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const RATE = int(f, 'rate', 1, 100_000);
  const SECONDS = int(f, 'seconds', 1, 3600);
  const SENDERS = int(f, 'senders', 1, 1000);
  const pgUrl = process.env.LINUS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.LINUS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const schema = `linus_bench_${randomBytes(6).toString('hex')}`;
  const prefix = `linus-bench:${randomBytes(6).toString('hex')}:`;
  ensureBuilt(ctx.root, ctx.serverFromSource);
  const startedAt = new Date();
  const admin = new PgDb({ url: pgUrl, max: 1 });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const nodes: LinusProcess[] = [];
  const sockets: WebSocket[] = [];
  await admin.exec(`CREATE SCHEMA ${quoteIdent(schema)}`);
  try {
    const url = new URL(pgUrl);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const config = (id: string): string =>
      [
        '# written by bench/profiles/cluster.ts',
        'log:',
        '  log_level: warn',
        'server:',
        '  hello_timeout_ms: 0',
        '  ws_ping_interval_ms: 0',
        '  max_messages_per_second: 1000000',
        '  stats_interval_ms: 0',
        '  audio_workers: 1',
        'selected_module:',
        "  LLM: ''",
        'peer:',
        '  rate_limit_per_second: 1000000',
        'cluster:',
        `  postgres_url: ${JSON.stringify(url.toString())}`,
        `  redis_url: ${JSON.stringify(redisUrl)}`,
        `  node_id: ${id}`,
        `  key_prefix: ${JSON.stringify(prefix)}`,
        '',
      ].join('\n');
    // One first (it migrates), then the other two together.
    nodes.push(
      await startLinus({ root: ctx.root, config: config('n1'), pin: false, fromSource: ctx.serverFromSource }),
    );
    nodes.push(
      ...(await Promise.all(
        ['n2', 'n3'].map((id) =>
          startLinus({ root: ctx.root, config: config(id), pin: false, fromSource: ctx.serverFromSource }),
        ),
      )),
    );
    ctx.log(`nodes on ports ${nodes.map((n) => n.port).join(', ')}; schema ${schema}, prefix ${prefix}`);
    const ws = (n: LinusProcess): string => n.url('/xiaozhi/v1/', 'ws');

    // Sent-at per message text, read back by the target.
    const sentAt = new Map<string, number>();
    const same: number[] = [];
    const cross: number[] = [];
    const onMessage = (kind: number[]) => (text: string) => {
      if (!text.startsWith('{"type":"peer","event":"message"')) return;
      const key = /"text":"([^"]+)"/.exec(text)?.[1];
      const t0 = key ? sentAt.get(key) : undefined;
      if (t0 === undefined) return;
      kind.push(performance.now() - t0);
      sentAt.delete(key!);
    };
    const targets = [
      { id: 'bench:same', node: nodes[0]!, kind: same },
      { id: 'bench:cross2', node: nodes[1]!, kind: cross },
      { id: 'bench:cross3', node: nodes[2]!, kind: cross },
    ];
    for (const t of targets) await openTextDevice(sockets, ws(t.node), t.id, onMessage(t.kind));
    let refused = 0;
    const senders = await Promise.all(
      Array.from({ length: SENDERS }, (_, i) =>
        openTextDevice(sockets, ws(nodes[0]!), `bench:s${i}`, (text) => {
          if (text.startsWith('{"type":"peer"') && text.includes('"status":"error"')) refused++;
        }),
      ),
    );
    await sleep(1000, ctx.signal); // routes claimed in Redis, hellos answered

    // Open loop: what is due is sent every 2 ms; every other message crosses nodes.
    const total = RATE * SECONDS;
    let sent = 0;
    let sentCross = 0;
    const t0 = performance.now();
    while (sent < total && !ctx.signal.aborted) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
      for (; sent < due; sent++) {
        const target = sent % 2 === 0 ? targets[0]! : targets[1 + ((sent >> 1) % 2)]!;
        if (target.kind === cross) sentCross++;
        const key = `m${sent}`;
        sentAt.set(key, performance.now());
        senders[sent % SENDERS]!.send(`{"type":"peer","to":["${target.id}"],"payload":{"text":"${key}"}}`);
      }
      ctx.progress(`sent ${sent}/${total}; received ${same.length + cross.length}`);
      await sleep(2, ctx.signal);
    }
    for (let i = 0; i < 250 && same.length + cross.length < sent; i++) await sleep(20, ctx.signal);

    const s = quantiles(same);
    const c = quantiles(cross);
    const failures: string[] = [];
    if (same.length + cross.length < sent)
      failures.push(`${sent - same.length - cross.length} of ${sent} messages not received within 5 s`);
    if (refused) failures.push(`${refused} messages refused`);
    const figures: Figure[] = [
      { name: 'messages received', value: same.length + cross.length, unit: `of ${sent}` },
      { name: 'same-node latency p50', value: s.p50, unit: 'ms' },
      { name: 'same-node latency p99', value: s.p99, unit: 'ms' },
      { name: 'cross-node latency p50', value: c.p50, unit: 'ms' },
      {
        name: 'cross-node latency p99',
        value: c.p99,
        unit: 'ms',
        target: `≤ ${CROSS_P99_MS} ms`,
        met: c.p99 <= CROSS_P99_MS,
      },
      { name: 'load average (1 min) at the end', value: loadavg()[0]!.toFixed(1) },
    ];
    const histograms: HistogramFigure[] = [
      { name: 'same-node latency', unit: 'ms', buckets: bucketize(same, BOUNDS) },
      { name: 'cross-node latency', unit: 'ms', buckets: bucketize(cross, BOUNDS) },
    ];
    return {
      profile: 'cluster',
      command: '',
      startedAt: startedAt.toISOString(),
      durationSec: (Date.now() - startedAt.getTime()) / 1000,
      figures,
      histograms,
      notes: [
        `${RATE} msg/s for ${SECONDS} s from ${SENDERS} senders on node 1: ${sent - sentCross} to a device on node 1, ${sentCross} to devices on nodes 2 and 3; write → read on one clock; nothing pinned${ctx.serverFromSource ? '; nodes from src/ through tsx' : ''}`,
      ],
      ok: failures.length === 0,
      ...(failures.length ? { failures } : {}),
      details: { same: s, cross: c, sent, sentCross, refused },
    };
  } finally {
    for (const s of sockets) s.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await admin.exec(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`).catch(() => undefined);
    await admin.close();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
}
