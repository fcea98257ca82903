/**
 * bus: the cluster hub's own figures (D17, issue #10) between two nodes on the machine's Redis, each node in a
 * process of its own (this one, and bench/bus-node.ts).
 *   1. cross-node deliver: --rate messages/s for --seconds, open loop (sent on schedule whatever the answers),
 *      from this node to devices held by the other; latency = deliver() call → its delivery result (route lookup,
 *      request over the bus, hand-over to the connection, reply). The same run on devices of this node is the
 *      same-node reference. Target p99 ≤ 20 ms.
 *   2. handover: the other node holds --handovers devices; this node registers a newer connection for each, one
 *      every 10 ms; latency = register() → the old connection told `replaced` on the other node (a shared clock).
 *      Target p99 ≤ 50 ms.
 * Needs Redis (LINUS_BENCH_REDIS_URL, default redis://127.0.0.1:6379); its keys go under a prefix of its own,
 * deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { startClusterHub, type ClusterHub } from '../../src/hub/cluster/index.js';
import type { DeviceConnection } from '../../src/hub/registry.js';
import { silentLogger } from '../../src/observability/log.js';
import type { FromBusNode, ToBusNode } from '../bus-node.js';
import { nextMessage, send, sleep, spawnNode, stopChild, type Child } from '../lib/children.js';
import { int } from '../lib/flags.js';
import { openLoop } from '../lib/open-loop.js';
import { benchRedisUrl, dropPrefix } from '../lib/redis.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { bucketize, quantiles } from '../lib/stats.js';

const DELIVER_P99_MS = 20;
const HANDOVER_P99_MS = 50;
const BOUNDS = [0.5, 1, 2, 3, 5, 10, 20, 50, 100, 250];

const options = {
  rate: { type: 'string', default: '1000' },
  seconds: { type: 'string', default: '10' },
  devices: { type: 'string', default: '100' },
  handovers: { type: 'string', default: '500' },
} as const;

const help: Record<keyof typeof options, string> = {
  rate: 'cross-node deliveries per second',
  seconds: 'length of each deliver run',
  devices: 'devices held by each node for the deliver runs',
  handovers: 'devices taken over from the other node',
};

const profile: Profile = {
  name: 'bus',
  summary: 'cluster hub over Redis: cross-node deliver latency at a fixed rate, cross-node handover latency',
  options,
  help,
  smokeDefaults: { rate: '200', seconds: '1', devices: '10', handovers: '20' },
  timeoutSec: () => 600,
  run,
};
export default profile;

const now = (): number => performance.timeOrigin + performance.now();

/** A local device of this node that takes every message. */
class Sink implements DeviceConnection {
  readonly connectionId = `a-${Math.random().toString(36).slice(2)}`;
  constructor(readonly deviceId: string) {}
  replacedBy(): void {}
  deliver(): boolean {
    return true;
  }
  deliverText(): boolean {
    return true;
  }
}

interface DeliverRun {
  latencies: number[];
  sent: number;
  ok: number;
  failed: number;
  seconds: number;
}

/** Sends `rate`/s for `seconds` on schedule (bench/lib/open-loop.ts), to targets round robin. */
async function deliverRun(
  hub: ClusterHub,
  targets: string[],
  rate: number,
  seconds: number,
  signal: AbortSignal,
): Promise<DeliverRun> {
  const latencies: number[] = [];
  const pending: Array<Promise<void>> = [];
  let ok = 0;
  let failed = 0;
  const { sent, seconds: took } = await openLoop({
    rate,
    total: rate * seconds,
    signal,
    send: (i) => {
      const start = performance.now();
      pending.push(
        hub.registry
          .deliver(targets[i % targets.length]!, {
            type: 'peer',
            event: 'message',
            id: `m${i}`,
            payload: { text: 'bench' },
          })
          .then(
            (r) => {
              latencies.push(performance.now() - start);
              if (r.ok) ok++;
              else failed++;
            },
            () => void failed++,
          ),
      );
    },
  });
  await Promise.all(pending);
  return { latencies, sent, ok, failed, seconds: took };
}

async function waitRoutes(hub: ClusterHub, ids: string[], nodeId: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const routes = await Promise.all(ids.map((id) => hub.registry.route(id)));
    if (routes.every((r) => r?.nodeId === nodeId)) return;
    if (Date.now() > deadline || signal.aborted) throw new Error(`routes of ${nodeId} not seen within 10 s`);
    await sleep(20);
  }
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const startedAt = new Date();
  const rate = int(ctx.flags, 'rate', 1, 100_000);
  const seconds = int(ctx.flags, 'seconds', 1, 3600);
  const devices = int(ctx.flags, 'devices', 1, 100_000);
  const handovers = int(ctx.flags, 'handovers', 1, 100_000);
  const redisUrl = benchRedisUrl();
  const keyPrefix = `linus-bench:${randomBytes(6).toString('hex')}:`;
  const failures: string[] = [];
  let hub: ClusterHub | undefined;
  let child: Child<FromBusNode> | undefined;
  try {
    hub = await startClusterHub({ redisUrl, keyPrefix, nodeId: 'bench-a', log: silentLogger() });
    child = spawnNode<FromBusNode>(
      'bus-node',
      ['--import', 'tsx', 'bench/bus-node.ts', redisUrl, keyPrefix, 'bench-b'],
      { cwd: ctx.root, ipc: true },
      false,
    );
    await nextMessage(child, 'ready', 30_000, ctx.signal);

    ctx.progress('deliver: the other node takes its devices');
    const remote = Array.from({ length: devices }, (_, i) => `dev-b-${i}`);
    send<ToBusNode>(child, { kind: 'hold', deviceIds: remote });
    await nextMessage(child, 'holding', 10_000, ctx.signal);
    await waitRoutes(hub, remote, 'bench-b', ctx.signal);
    const local = Array.from({ length: devices }, (_, i) => `dev-a-${i}`);
    for (const id of local) hub.registry.register(new Sink(id));

    // Warm-up: connections, scripts and JIT, not counted.
    await deliverRun(hub, remote, rate, ctx.smoke ? 1 : 2, ctx.signal);
    ctx.progress(`deliver: ${rate}/s for ${seconds} s to the other node`);
    const cpuA = process.cpuUsage();
    send<ToBusNode>(child, { kind: 'cpu' });
    const cpuB = (await nextMessage(child, 'cpu', 5000, ctx.signal)).ms;
    const cross = await deliverRun(hub, remote, rate, seconds, ctx.signal);
    const { user, system } = process.cpuUsage(cpuA);
    send<ToBusNode>(child, { kind: 'cpu' });
    const cpuPerMsg = {
      a: (user + system) / 1000 / cross.sent,
      b: ((await nextMessage(child, 'cpu', 5000, ctx.signal)).ms - cpuB) / cross.sent,
    };
    ctx.progress(`deliver: ${rate}/s for ${seconds} s to this node's own devices`);
    const same = await deliverRun(hub, local, rate, seconds, ctx.signal);

    ctx.progress(`handover: ${handovers} devices`);
    const moving = Array.from({ length: handovers }, (_, i) => `dev-h-${i}`);
    send<ToBusNode>(child, { kind: 'hold', deviceIds: moving });
    await nextMessage(child, 'holding', 10_000, ctx.signal);
    await waitRoutes(hub, moving, 'bench-b', ctx.signal);
    const registeredAt = new Map<string, number>();
    for (const id of moving) {
      if (ctx.signal.aborted) break;
      registeredAt.set(id, now());
      hub.registry.register(new Sink(id));
      await sleep(10);
    }
    const handoverMs: number[] = [];
    const deadline = Date.now() + 5000;
    while (handoverMs.length < registeredAt.size && Date.now() < deadline) {
      const m = await nextMessage(child, 'replaced', Math.max(1, deadline - Date.now()), ctx.signal).catch(
        () => undefined,
      );
      if (!m) break;
      const at = registeredAt.get(m.deviceId);
      if (at !== undefined) handoverMs.push(m.at - at);
    }

    const c = quantiles(cross.latencies);
    const s = quantiles(same.latencies);
    const h = quantiles(handoverMs);
    if (cross.ok !== cross.sent) failures.push(`cross-node: ${cross.sent - cross.ok} of ${cross.sent} not delivered`);
    if (same.ok !== same.sent) failures.push(`same-node: ${same.sent - same.ok} of ${same.sent} not delivered`);
    if (handoverMs.length !== registeredAt.size)
      failures.push(
        `handover: ${registeredAt.size - handoverMs.length} of ${registeredAt.size} old connections not told`,
      );
    const r2 = (x: number): number => Math.round(x * 100) / 100;
    const figures: Figure[] = [
      { name: 'cross-node deliver: delivered', value: cross.ok, unit: `of ${cross.sent}` },
      { name: 'cross-node deliver: rate reached', value: Math.round(cross.sent / cross.seconds), unit: 'msg/s' },
      { name: 'cross-node deliver p50', value: r2(c.p50), unit: 'ms' },
      {
        name: 'cross-node deliver p99',
        value: r2(c.p99),
        unit: 'ms',
        target: `≤ ${DELIVER_P99_MS}`,
        met: c.p99 <= DELIVER_P99_MS,
      },
      { name: 'CPU per cross-node message, sending node', value: r2(cpuPerMsg.a * 1000), unit: 'µs' },
      { name: 'CPU per cross-node message, holding node', value: r2(cpuPerMsg.b * 1000), unit: 'µs' },
      { name: 'same-node deliver p50', value: r2(s.p50), unit: 'ms' },
      { name: 'same-node deliver p99', value: r2(s.p99), unit: 'ms' },
      { name: 'handover: old connections told', value: handoverMs.length, unit: `of ${registeredAt.size}` },
      { name: 'handover p50', value: r2(h.p50), unit: 'ms' },
      {
        name: 'handover p99',
        value: r2(h.p99),
        unit: 'ms',
        target: `≤ ${HANDOVER_P99_MS}`,
        met: h.p99 <= HANDOVER_P99_MS,
      },
    ];
    const histograms: HistogramFigure[] = [
      { name: 'cross-node deliver', unit: 'ms', buckets: bucketize(cross.latencies, BOUNDS) },
      { name: 'handover', unit: 'ms', buckets: bucketize(handoverMs, BOUNDS) },
    ];
    return {
      profile: 'bus',
      command: '',
      startedAt: startedAt.toISOString(),
      durationSec: (Date.now() - startedAt.getTime()) / 1000,
      figures,
      histograms,
      notes: [
        `two nodes (this process and bench/bus-node.ts) on Redis ${redisUrl}; ${devices} devices each`,
        'deliver latency includes the route lookup in Redis, the request over the bus and the reply',
        `machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)} at the end (other work shares them)`,
      ],
      ok: failures.length === 0,
      ...(failures.length ? { failures } : {}),
      details: { cross: { ...c, sent: cross.sent }, same: { ...s, sent: same.sent }, handover: h },
    };
  } finally {
    await hub?.close();
    if (child) {
      send<ToBusNode>(child, { kind: 'stop' });
      await nextMessage(child, 'stopped', 5000).catch(() => undefined);
      await stopChild(child, 1000);
    }
    await dropPrefix(redisUrl, keyPrefix);
  }
}
