/**
 * peer: the durable offline queue (C4, D19) through real sockets.
 *   1. enqueue: --senders connections send --messages peer messages, round robin over --targets devices that are
 *      offline, each sender keeping --window requests in flight. A message counts when its receipt says
 *      `enqueued`, which the server sends only after the SQLite commit (durable).
 *   2. redelivery: the targets connect at once; the phase ends when every queued message has arrived. The
 *      senders' `redelivered` acks must add up to the messages.
 * Target: ≥ 5,000 msg/s each way.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { cpuLayout, pinSelf, sleep } from '../lib/children.js';
import { int, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { openTextDevice } from '../lib/device.js';
import { ensureBuilt, startLinus } from '../lib/linus-server.js';
import { cpuMs } from '../lib/proc-stats.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { bucketize, MiB, quantiles } from '../lib/stats.js';

const TARGET_PER_SEC = 5000;

const options = {
  messages: { type: 'string', default: '20000' },
  senders: { type: 'string', default: '10' },
  targets: { type: 'string', default: '200' },
  window: { type: 'string', default: '100' },
  text: { type: 'string', default: '100' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  messages: 'peer messages to queue',
  senders: 'sending connections',
  targets: 'offline target devices',
  window: 'requests in flight per sender',
  text: 'characters of payload.text',
  ...SERVER_HELP,
};

const profile: Profile = {
  name: 'peer',
  summary: 'durable offline-queue enqueue and redelivery through real sockets, msg/s',
  options,
  help,
  smokeDefaults: { messages: '300', senders: '3', targets: '10', window: '20', pin: 'off' },
  timeoutSec: () => 1800,
  run,
};
export default profile;

interface Phase {
  messages: number;
  ms: number;
  perSecond: number;
  serverCpuMs: number;
  /** CPU of this process (the clients), to tell a client-bound run from a server-bound one. */
  clientCpuMs: number;
}

const clientCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Waits for `p`, failing after `ms` or on abort; nothing outlives the wait. */
async function within<T>(p: Promise<T>, ms: number, signal: AbortSignal, what: () => string): Promise<T> {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([p, sleep(ms, ac.signal).then(() => Promise.reject(new Error(what())))]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    ac.abort(); // ends the sleep
  }
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const MESSAGES = int(f, 'messages', 1, 10_000_000);
  const SENDERS = int(f, 'senders', 1, 10_000);
  const TARGETS = int(f, 'targets', 1, 10_000);
  const WINDOW = int(f, 'window', 1, 100_000);
  const TEXT = 'x'.repeat(int(f, 'text', 0, 100_000));
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);
  ensureBuilt(ctx.root, ctx.serverFromSource);
  const config = [
    '# written by bench/profiles/peer.ts: limits out of the way of the measurement',
    'log:',
    '  log_level: warn',
    'server:',
    '  hello_timeout_ms: 0',
    '  ws_ping_interval_ms: 0',
    '  max_messages_per_second: 1000000',
    '  stats_interval_ms: 0',
    'peer:',
    '  rate_limit_per_second: 1000000',
    `  offline_max_per_device: ${Math.ceil(MESSAGES / TARGETS) + 10}`,
    '',
  ].join('\n');
  const startedAt = new Date();
  const server = await startLinus({
    root: ctx.root,
    config,
    nodeArgs: serverNodeArgs(f),
    cpuList: cpu.server,
    pin: cpu.pinned,
    fromSource: ctx.serverFromSource,
  });
  const sockets: WebSocket[] = [];
  const url = server.url('/xiaozhi/v1/', 'ws');
  const pid = server.child.pid;
  const failures: string[] = [];
  try {
    ctx.log(
      `server pid ${pid} on port ${server.port}; ${MESSAGES} messages, ${SENDERS} senders, ${TARGETS} offline targets`,
    );
    // ---- phase 1: enqueue
    const targets = Array.from({ length: TARGETS }, (_, i) => `bench:t${i}`);
    const perSender = Array.from(
      { length: SENDERS },
      (_, i) => Math.floor(MESSAGES / SENDERS) + (i < MESSAGES % SENDERS ? 1 : 0),
    );
    let enqueued = 0;
    let refused = 0;
    let redeliveredAcks = 0;
    const latencies: number[] = [];
    let finishEnqueue!: () => void;
    const enqueueDone = new Promise<void>((r) => (finishEnqueue = r));
    const senders = await Promise.all(
      perSender.map(async (count, s) => {
        let sent = 0;
        let answered = 0;
        const sentAt: number[] = [];
        const pump = (): void => {
          while (sent < count && sent - answered < WINDOW) {
            const target = targets[(s + sent * SENDERS) % TARGETS]!;
            sentAt.push(performance.now());
            ws.send(`{"type":"peer","to":["${target}"],"payload":{"text":"${s}:${sent}:${TEXT}"}}`);
            sent++;
          }
        };
        const ws: WebSocket = await openTextDevice(sockets, url, `bench:s${s}`, (text) => {
          if (text.includes('"event":"redelivered"')) {
            redeliveredAcks += (JSON.parse(text) as { count: number }).count;
            return;
          }
          if (!text.startsWith('{"type":"peer"')) return;
          const done = text.includes('"status":"done"');
          const error = text.includes('"status":"error"');
          if (!done && !error) return;
          if (error && text.includes('"code":"TARGET_OFFLINE"')) return; // the follow-up of a receipt, not an answer
          if (done && text.includes('"enqueued":["')) enqueued++;
          else refused++;
          latencies.push(performance.now() - sentAt[answered]!);
          answered++;
          if (enqueued + refused === MESSAGES) finishEnqueue();
          else pump();
        });
        return { ws, start: pump };
      }),
    );
    await sleep(300, ctx.signal); // hellos answered
    let cpu0 = cpuMs(pid);
    let ccpu0 = clientCpu();
    let t0 = performance.now();
    for (const s of senders) s.start();
    const progress = setInterval(() => ctx.progress(`enqueue: ${enqueued + refused}/${MESSAGES} answered`), 1000);
    try {
      await within(enqueueDone, 600_000, ctx.signal, () => `enqueue phase stuck at ${enqueued + refused}/${MESSAGES}`);
    } finally {
      clearInterval(progress);
    }
    const enqueue: Phase = {
      messages: enqueued,
      ms: performance.now() - t0,
      perSecond: 0,
      serverCpuMs: cpuMs(pid) - cpu0,
      clientCpuMs: clientCpu() - ccpu0,
    };
    enqueue.perSecond = (enqueued / enqueue.ms) * 1000;

    // ---- phase 2: redelivery
    let received = 0;
    let finishRedelivery!: () => void;
    const redeliveryDone = new Promise<void>((r) => (finishRedelivery = r));
    if (enqueued === 0) finishRedelivery();
    cpu0 = cpuMs(pid);
    ccpu0 = clientCpu();
    t0 = performance.now();
    const progress2 = setInterval(() => ctx.progress(`redelivery: ${received}/${enqueued} received`), 1000);
    try {
      // All at once, as devices coming back online would.
      await Promise.all(
        targets.map((id) =>
          openTextDevice(sockets, url, id, (text) => {
            if (text.startsWith('{"type":"peer","event":"message"') && ++received === enqueued) finishRedelivery();
          }),
        ),
      );
      await within(redeliveryDone, 600_000, ctx.signal, () => `redelivery stuck at ${received}/${enqueued}`);
    } finally {
      clearInterval(progress2);
    }
    const redelivery: Phase = {
      messages: received,
      ms: performance.now() - t0,
      perSecond: 0,
      serverCpuMs: cpuMs(pid) - cpu0,
      clientCpuMs: clientCpu() - ccpu0,
    };
    redelivery.perSecond = (received / redelivery.ms) * 1000;
    for (let i = 0; i < 100 && redeliveredAcks < received; i++) await sleep(20, ctx.signal);

    const dbFile = join(server.dataDir, 'linus.db');
    const dbBytes = existsSync(dbFile)
      ? statSync(dbFile).size + (existsSync(`${dbFile}-wal`) ? statSync(`${dbFile}-wal`).size : 0)
      : 0;
    const q = quantiles(latencies);
    if (refused) failures.push(`${refused} of ${MESSAGES} messages were refused`);
    if (enqueued !== MESSAGES) failures.push(`${enqueued} of ${MESSAGES} messages enqueued`);
    if (received !== enqueued) failures.push(`${received} of ${enqueued} queued messages redelivered`);
    if (redeliveredAcks !== received)
      failures.push(`the senders' redelivered acks add up to ${redeliveredAcks}, not ${received}`);
    const figures: Figure[] = [
      { name: 'messages enqueued (durable receipts)', value: enqueued, unit: `of ${MESSAGES}` },
      {
        name: 'enqueue rate',
        value: enqueue.perSecond,
        unit: 'msg/s',
        target: `≥ ${TARGET_PER_SEC.toLocaleString('en-US')} msg/s`,
        met: enqueue.perSecond >= TARGET_PER_SEC,
      },
      { name: 'receipt latency p50 (under load)', value: q.p50, unit: 'ms' },
      { name: 'receipt latency p99 (under load)', value: q.p99, unit: 'ms' },
      { name: 'messages redelivered', value: received, unit: `of ${enqueued}` },
      {
        name: 'redelivery rate',
        value: redelivery.perSecond,
        unit: 'msg/s',
        target: `≥ ${TARGET_PER_SEC.toLocaleString('en-US')} msg/s`,
        met: redelivery.perSecond >= TARGET_PER_SEC,
      },
      { name: 'redelivered acks to the senders', value: redeliveredAcks, unit: `of ${received}` },
      {
        name: 'server CPU, enqueue / redelivery',
        value: `${Math.round((enqueue.serverCpuMs / enqueue.ms) * 100)} / ${Math.round((redelivery.serverCpuMs / redelivery.ms) * 100)} % of a core`,
      },
      { name: 'store size (db + wal)', value: dbBytes / MiB, unit: 'MiB' },
    ];
    const histograms: HistogramFigure[] = [
      {
        name: 'enqueue receipt latency',
        unit: 'ms',
        buckets: bucketize(latencies, [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, Infinity]),
      },
    ];
    const totalMs = enqueue.ms + redelivery.ms;
    return {
      profile: 'peer',
      command: '',
      startedAt: startedAt.toISOString(),
      durationSec: (Date.now() - startedAt.getTime()) / 1000,
      figures,
      histograms,
      generatorCpuPct: ((enqueue.clientCpuMs + redelivery.clientCpuMs) / totalMs) * 100,
      notes: [
        `${MESSAGES} messages, ${SENDERS} senders (window ${WINDOW}), ${TARGETS} offline targets, text ${TEXT.length} chars; clients in the runner process${cpu.pinned ? `, server pinned to CPU ${cpu.server}` : ''}${ctx.serverFromSource ? '; server from src/ through tsx' : ''}`,
      ],
      ok: failures.length === 0,
      ...(failures.length ? { failures } : {}),
      details: { enqueue: { ...enqueue, refused }, redelivery, redeliveredAckTotal: redeliveredAcks, dbBytes },
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}
