/**
 * meeting: how many meeting snippets per second Linus acknowledges (= commits to SQLite) through real WebSocket
 * connections. For each N of --devices, a fresh server; N devices (in the runner process) each send --rate
 * snippet messages per second (the server admits 10 snippets/s per connection) for --seconds, and every
 * acknowledgement is timed. No target: context for capacity planning.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { cpuLayout, isAbort, pinSelf, sleep } from '../lib/children.js';
import { int, intList, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import { cpuMs, rssBytes } from '../lib/proc-stats.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { bucketize, MiB, quantiles } from '../lib/stats.js';
import { HELLO } from '../shared.js';

const options = {
  devices: { type: 'string', default: '10,100,500' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '1' },
  rate: { type: 'string', default: '9' },
  items: { type: 'string', default: '1' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  devices: 'device counts, one round (and one fresh server) each',
  seconds: 'measured time per round',
  warmup: 'unmeasured sending before it',
  rate: 'snippet messages per device per second (the server admits 10 snippets/s per connection)',
  items: 'snippets per message',
  ...SERVER_HELP,
};

const profile: Profile = {
  name: 'meeting',
  summary: 'meeting snippets acknowledged (committed) per second through real sockets, with ack latency',
  options,
  help,
  smokeDefaults: { devices: '3', seconds: '1', warmup: '0.5', pin: 'off' },
  timeoutSec: () => 1800,
  run,
};
export default profile;

const CONFIG = `# written by bench/profiles/meeting.ts
log:
  log_level: warn
server:
  max_connections: 100000
  max_messages_per_second: 1000
  hello_timeout_ms: 0
  ws_ping_interval_ms: 0
selected_module:
  VAD: EnergyVAD
meeting:
  transcript_push_interval_ms: 15000
  checkpoint_interval_min: 0
`;

interface Device {
  ws: WebSocket;
  /** Send times of messages not acknowledged yet (acks come back in order). */
  inFlight: number[];
  seq: number;
}

interface Tally {
  measuring: boolean;
  acked: number;
  limited: number;
  duplicates: number;
  errors: number;
  latenciesMs: number[];
}

export interface MeetingRound {
  devices: number;
  offeredPerSecond: number;
  ackedPerSecond: number;
  acked: number;
  limited: number;
  errors: number;
  unanswered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuPct: number;
  serverRssMiB: number;
  dbMiB: number;
  latencyBuckets: Array<{ le: number; count: number }>;
}

/** A device, its socket added to `all` at once so that every path can terminate it. */
async function connect(
  all: WebSocket[],
  server: LinusProcess,
  i: number,
  items: number,
  tally: Tally,
): Promise<Device> {
  const id = `bench:${String(i).padStart(6, '0')}`;
  const ws = new WebSocket(server.url('/xiaozhi/v1/', 'ws'), {
    headers: { 'Device-Id': id, 'Client-Id': id, 'Protocol-Version': '1' },
    perMessageDeflate: false,
  });
  all.push(ws);
  const dev: Device = { ws, inFlight: [], seq: 0 };
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString()) as Record<string, unknown>;
    if (m.type !== 'meeting' || m.phase !== 'snippet' || m.status === undefined) return;
    const sent = dev.inFlight.shift();
    if (!tally.measuring) return;
    if (m.status === 'ok') {
      tally.acked += Number(m.accepted ?? 0);
      tally.duplicates += Number(m.duplicates ?? 0);
      tally.limited += Number(m.dropped ?? 0);
      if (sent !== undefined) tally.latenciesMs.push(performance.now() - sent);
    } else if (m.code === 'RATE_LIMITED') tally.limited += items;
    else tally.errors++;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {}); // a later error shows as unanswered messages
      resolve();
    });
    ws.once('error', reject);
  });
  ws.send(HELLO);
  return dev;
}

function sendSnippet(dev: Device, i: number, items: number): void {
  if (dev.ws.readyState !== WebSocket.OPEN) return;
  const list = Array.from({ length: items }, () => ({
    text: `device ${i} says snippet number ${dev.seq++} about the quarterly plan`,
  }));
  dev.inFlight.push(performance.now());
  dev.ws.send(JSON.stringify({ type: 'meeting', phase: 'snippet', items: list }));
}

async function round(
  ctx: ProfileContext,
  n: number,
  o: {
    seconds: number;
    warmup: number;
    rate: number;
    items: number;
    cpu: ReturnType<typeof cpuLayout>;
    nodeArgs: string[];
  },
): Promise<MeetingRound> {
  const server = await startLinus({
    root: ctx.root,
    config: CONFIG,
    nodeArgs: o.nodeArgs,
    cpuList: o.cpu.server,
    pin: o.cpu.pinned,
    fromSource: ctx.serverFromSource,
  });
  const pid = server.child.pid;
  const tally: Tally = { measuring: false, acked: 0, limited: 0, duplicates: 0, errors: 0, latenciesMs: [] };
  const devices: Device[] = [];
  const sockets: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    for (let i = 0; i < n; i += 50)
      devices.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, (_, j) => connect(sockets, server, i + j, o.items, tally)),
        )),
      );
    await sleep(500, ctx.signal);
    // Each device sends on its own clock, spread over the first period so the load is even.
    const period = 1000 / o.rate;
    devices.forEach((d, i) => {
      timers.push(
        setTimeout(
          () => {
            sendSnippet(d, i, o.items);
            timers.push(setInterval(() => sendSnippet(d, i, o.items), period));
          },
          (i / n) * period,
        ),
      );
    });
    ctx.progress(`${n} devices: warming up`);
    await sleep(o.warmup * 1000, ctx.signal);
    tally.measuring = true;
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    ctx.progress(`${n} devices: measuring ${o.seconds} s`);
    await sleep(o.seconds * 1000, ctx.signal);
    tally.measuring = false;
    const elapsed = performance.now() - t0;
    const cpu1 = cpuMs(pid);
    for (const t of timers) clearInterval(t);
    await sleep(500, ctx.signal);
    const q = quantiles(tally.latenciesMs);
    let dbBytes = 0;
    for (const f of ['linus.db', 'linus.db-wal']) {
      try {
        dbBytes += statSync(join(server.dataDir, f)).size;
      } catch {
        // no WAL file
      }
    }
    return {
      devices: n,
      offeredPerSecond: n * o.rate * o.items,
      ackedPerSecond: (tally.acked / elapsed) * 1000,
      acked: tally.acked,
      limited: tally.limited,
      errors: tally.errors,
      unanswered: devices.reduce((s, d) => s + d.inFlight.length, 0),
      p50Ms: q.p50,
      p99Ms: q.p99,
      maxMs: tally.latenciesMs.length ? tally.latenciesMs.reduce((m, v) => Math.max(m, v), 0) : NaN,
      serverCpuPct: ((cpu1 - cpu0) / elapsed) * 100,
      serverRssMiB: rssBytes(pid) / MiB,
      dbMiB: dbBytes / MiB,
      latencyBuckets: bucketize(tally.latenciesMs, [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, Infinity]),
    };
  } finally {
    for (const t of timers) clearInterval(t);
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const counts = intList(f, 'devices', 1, 20_000);
  const o = {
    seconds: num(f, 'seconds', 0.5, 600),
    warmup: num(f, 'warmup', 0, 60),
    rate: num(f, 'rate', 0.1, 1000),
    items: int(f, 'items', 1, 100),
    cpu: cpuLayout(onOff(f, 'pin')),
    nodeArgs: serverNodeArgs(f),
  };
  if (o.cpu.pinned) pinSelf(o.cpu.load);
  ensureBuilt(ctx.root, ctx.serverFromSource);
  const startedAt = new Date();
  const rounds: MeetingRound[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  const cpu0 = process.cpuUsage();
  try {
    for (const n of counts) {
      const r = await round(ctx, n, o);
      rounds.push(r);
      ctx.log(
        `${n} devices: ${Math.round(r.ackedPerSecond)} snippets/s acked, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`,
      );
    }
  } catch (err) {
    if (!isAbort(err)) throw err;
    notes.push('interrupted: rounds run before it are reported');
  }
  const cpu = process.cpuUsage(cpu0);
  const figures: Figure[] = [];
  const histograms: HistogramFigure[] = [];
  for (const r of rounds) {
    const p = `${r.devices} devices: `;
    figures.push({ name: `${p}snippets acked/s`, value: r.ackedPerSecond, unit: `of ${r.offeredPerSecond} offered` });
    figures.push({ name: `${p}ack latency p50`, value: r.p50Ms, unit: 'ms' });
    figures.push({ name: `${p}ack latency p99`, value: r.p99Ms, unit: 'ms' });
    figures.push({
      name: `${p}rate-limited / errors / unanswered`,
      value: `${r.limited} / ${r.errors} / ${r.unanswered}`,
    });
    figures.push({ name: `${p}server CPU`, value: r.serverCpuPct, unit: '% of a core' });
    figures.push({ name: `${p}server RSS`, value: r.serverRssMiB, unit: 'MiB' });
    histograms.push({ name: `snippet ack latency, ${r.devices} devices`, unit: 'ms', buckets: r.latencyBuckets });
    if (r.errors) failures.push(`${r.devices} devices: ${r.errors} snippet messages answered with an error`);
    if (!r.acked) failures.push(`${r.devices} devices: no snippet acknowledged`);
  }
  notes.push(
    `${o.rate} messages/s per device × ${o.items} snippet(s), ${o.seconds} s measured after ${o.warmup} s; devices in the runner process`,
  );
  return {
    profile: 'meeting',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    histograms,
    generatorCpuPct: ((cpu.user + cpu.system) / 1000 / Math.max(1, Date.now() - startedAt.getTime())) * 100,
    notes,
    ok: failures.length === 0 && (rounds.length > 0 || ctx.signal.aborted),
    ...(failures.length ? { failures } : {}),
    details: { rounds },
  };
}
