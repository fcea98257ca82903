/**
 * idle: memory per idle connection, Linus against a bare `ws` server measured in the same run. N firmware-style
 * connections (Device-Id/Client-Id headers, hello with features.mcp=false, waiting for the hello reply) that
 * then only send a `ping` heartbeat now and then; the server's RSS growth over the N connections, after settling,
 * divided by N. Target: at 20,000 connections, Linus ≤ 2 × the bare server's bytes per connection.
 * Every `--presence-opt-out`-th Linus connection opts out of presence broadcasts in its hello
 * (`features.presence: false`): what was pushed to either kind, per connection, shows the bytes the opt-out saves.
 */
import { cpus } from 'node:os';
import { cpuLayout, isAbort, nextMessage, pinSelf, send, sleep } from '../lib/children.js';
import { int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { health } from '../lib/linus-server.js';
import { fdHardLimit, openFds, rssBytes } from '../lib/proc-stats.js';
import type { Figure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { MiB } from '../lib/stats.js';
import {
  KINDS,
  LABEL,
  openLoad,
  startServerUnderTest,
  stopLoad,
  sumPushes,
  type Kind,
  type TransportRig,
} from '../lib/transport-load.js';
import type { Heartbeats, Pushes, ToLoad } from '../shared.js';

const TARGET_CONNECTIONS = 20_000;
const TARGET_RATIO = 2;

const options = {
  connections: { type: 'string', default: String(TARGET_CONNECTIONS) },
  'per-process': { type: 'string', default: '5000' },
  heartbeat: { type: 'string', default: '30' },
  settle: { type: 'string', default: '3' },
  'presence-opt-out': { type: 'string', default: '2' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  connections: 'idle connections per server (lowered to what the open-file limit of one process allows)',
  'per-process': 'connections per load-client process',
  heartbeat: 's between two `ping` heartbeats of a connection, spread over the interval (0 = none)',
  settle: 's to wait before each RSS reading',
  'presence-opt-out': 'every k-th Linus connection opts out of presence broadcasts (0 = none)',
  ...SERVER_HELP,
};

export interface IdleServerResult {
  requested: number;
  connected: number;
  failed: number;
  firstError?: string;
  serverSaysConnected?: number;
  connectSeconds: number;
  loadProcesses: number;
  fdsBefore: number;
  fdsAfter: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  pushes: Pushes;
  heartbeats: Heartbeats;
  /** Connections that opted out of presence broadcasts, and what was pushed to them (part of `pushes`). */
  optedOut?: { connections: number; pushes: Pushes };
}

const profile: Profile = {
  name: 'idle',
  summary: "bytes per idle hello'd connection (with heartbeats), Linus vs a bare ws server in the same run",
  options,
  help,
  smokeDefaults: { connections: '50', 'per-process': '25', heartbeat: '1', settle: '1', pin: 'off' },
  timeoutSec: () => 1800,
  run,
};
export default profile;

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const requested = int(f, 'connections', 1, 1_000_000);
  const perProcess = int(f, 'per-process', 1, 19_000);
  const heartbeatMs = num(f, 'heartbeat', 0, 3600) * 1000;
  const settleMs = num(f, 'settle', 0, 60) * 1000;
  const optOutEvery = int(f, 'presence-opt-out', 0, 1_000_000);
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);
  const rig: TransportRig = {
    root: ctx.root,
    fromSource: ctx.serverFromSource,
    cpu,
    nodeArgs: serverNodeArgs(f),
    signal: ctx.signal,
  };
  const startedAt = new Date();
  const notes: string[] = [];
  const failures: string[] = [];
  const results: Partial<Record<Kind, IdleServerResult>> = {};
  try {
    for (const kind of KINDS)
      results[kind] = await measure(ctx, rig, kind, requested, perProcess, heartbeatMs, settleMs, notes, optOutEvery);
  } catch (err) {
    if (!isAbort(err)) throw err;
    notes.push('interrupted: servers measured before it are reported');
  }
  const { bare, linus } = results;
  const n = Math.max(bare?.requested ?? 0, linus?.requested ?? 0);
  const figures: Figure[] = [];
  for (const kind of KINDS) {
    const r = results[kind];
    if (!r) continue;
    figures.push({
      name: `${LABEL[kind]}: connections open (client view)`,
      value: r.connected,
      unit: `of ${r.requested}`,
    });
    figures.push({ name: `${LABEL[kind]}: connections open (server /health)`, value: r.serverSaysConnected ?? NaN });
    figures.push({ name: `${LABEL[kind]}: bytes per idle connection`, value: r.bytesPerConnection, unit: 'B' });
    figures.push({ name: `${LABEL[kind]}: RSS with the connections open`, value: r.rssAfterBytes / MiB, unit: 'MiB' });
    figures.push({ name: `${LABEL[kind]}: connect + hello time`, value: r.connectSeconds, unit: 's' });
    if (heartbeatMs)
      figures.push({
        name: `${LABEL[kind]}: heartbeats answered`,
        value: r.heartbeats.pongs,
        unit: `of ${r.heartbeats.sent}`,
      });
    if (r.failed)
      failures.push(`${LABEL[kind]}: ${r.failed} of ${r.requested} connections failed (first: ${r.firstError})`);
    if (r.heartbeats.open !== r.connected)
      failures.push(`${LABEL[kind]}: ${r.connected - r.heartbeats.open} connections closed while idle`);
    if (r.heartbeats.pongs !== r.heartbeats.sent)
      failures.push(
        `${LABEL[kind]}: ${r.heartbeats.sent - r.heartbeats.pongs} of ${r.heartbeats.sent} heartbeats unanswered`,
      );
    if (r.serverSaysConnected !== undefined && r.serverSaysConnected !== r.connected)
      failures.push(
        `${LABEL[kind]}: the server counts ${r.serverSaysConnected} connections, the clients ${r.connected}`,
      );
  }
  if (bare && linus) {
    const ratio = linus.bytesPerConnection / bare.bytesPerConnection;
    const atTarget = n >= TARGET_CONNECTIONS;
    figures.push({
      name: `Linus / bare ws bytes per connection at ${n.toLocaleString('en-US')} connections`,
      value: ratio,
      unit: '×',
      target: `≤ ${TARGET_RATIO} × at ${TARGET_CONNECTIONS.toLocaleString('en-US')}`,
      ...(atTarget ? { met: ratio <= TARGET_RATIO } : {}),
    });
    if (!atTarget)
      notes.push(
        `The target is for ${TARGET_CONNECTIONS.toLocaleString('en-US')} connections; this run had ${n}, so the ratio is not judged.`,
      );
  } else if (!ctx.signal.aborted) failures.push('a server could not be measured');
  notes.push(
    `node ${process.version}, ${cpus().length} CPUs, ${cpu.pinned ? `server pinned to CPU ${cpu.server}, load to CPU ${cpu.load}` : 'no CPU pinning'}, all on 127.0.0.1; hello features.mcp=false; heartbeat every ${heartbeatMs / 1000} s per connection`,
    'Bytes per connection = (RSS with the connections open − RSS before, after 20 warm-up connections came and went) / connections open.',
  );
  if (ctx.serverFromSource)
    notes.push(
      'Server from src/ through tsx: its per-closure metadata inflates memory per connection; measure the build (no --source) for the real figure.',
    );
  if (linus?.optedOut?.connections && linus.optedOut.connections < linus.connected)
    figures.push(...presenceFigures(linus, linus.optedOut));
  for (const kind of KINDS) {
    const r = results[kind];
    if (r?.pushes.messages)
      notes.push(
        `${LABEL[kind]} pushed ${r.pushes.messages} unasked messages (${(r.pushes.bytes / MiB).toFixed(2)} MiB) to its idle clients.`,
      );
  }
  return {
    profile: 'idle',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    notes,
    ok: failures.length === 0,
    ...(failures.length ? { failures } : {}),
    details: { ...results, fdHardLimit: fdHardLimit(), heartbeatMs },
  };
}

/** Pushed bytes per connection with and without the presence opt-out, and what all N opting out would save. */
function presenceFigures(r: IdleServerResult, out: { connections: number; pushes: Pushes }): Figure[] {
  const onBytes = (r.pushes.bytes - out.pushes.bytes) / (r.connected - out.connections);
  const outBytes = out.pushes.bytes / out.connections;
  return [
    { name: 'Linus: pushed per connection, presence broadcasts on', value: onBytes, unit: 'B' },
    { name: 'Linus: pushed per connection, presence opted out', value: outBytes, unit: 'B' },
    {
      name: `Linus: bytes saved if all ${r.connected.toLocaleString('en-US')} connections opt out`,
      value: ((onBytes - outBytes) * r.connected) / MiB,
      unit: 'MiB',
    },
  ];
}

async function measure(
  ctx: ProfileContext,
  rig: TransportRig,
  kind: Kind,
  requested: number,
  perProcess: number,
  heartbeatMs: number,
  settleMs: number,
  notes: string[],
  optOutEvery: number,
): Promise<IdleServerResult> {
  ctx.progress(`${LABEL[kind]}: starting`);
  const server = await startServerUnderTest(kind, rig);
  const pid = server.child.pid;
  try {
    // A few connections first, so that one-time costs (lazy code, JIT, first allocations) land in "before".
    const warm = await openLoad(rig, server, 'idle', 20, 20, 20_000);
    await stopLoad(warm.clients);
    for (let i = 0; i < 50 && (await health(server.port))?.connections; i++) await sleep(100, ctx.signal);
    await sleep(settleMs, ctx.signal);
    const fdsBefore = openFds(pid);
    const rssBeforeBytes = rssBytes(pid);
    // One process cannot hold more sockets than its open-file limit allows.
    const max = fdHardLimit() - fdsBefore - 30;
    const n = Math.min(requested, max);
    if (n < requested)
      notes.push(
        `${LABEL[kind]}: ${requested} connections lowered to ${n}: the open-file limit of one process is ${fdHardLimit()}.`,
      );
    ctx.progress(`${LABEL[kind]} (pid ${pid}): opening ${n} idle connections`);
    // Only Linus knows the opt-out; the bare server has no broadcasts to opt out of.
    const optOut = kind === 'linus' ? optOutEvery : 0;
    const load = await openLoad(rig, server, 'idle', n, perProcess, 30_000 + n * 5, heartbeatMs, optOut);
    try {
      const serverSaysConnected = (await health(server.port))?.connections;
      ctx.progress(`${LABEL[kind]}: ${load.opened} connections open, settling ${settleMs / 1000} s`);
      await sleep(Math.max(settleMs, heartbeatMs ? Math.min(heartbeatMs, 10_000) : 0), ctx.signal);
      const rssAfterBytes = rssBytes(pid);
      const fdsAfter = openFds(pid);
      for (const p of load.clients) send<ToLoad>(p, { kind: 'report' });
      const reports = await Promise.all(load.clients.map((p) => nextMessage(p, 'pushes', 10_000, ctx.signal)));
      const heartbeats = reports.reduce(
        (a, r) => ({
          sent: a.sent + (r.heartbeats?.sent ?? 0),
          pongs: a.pongs + (r.heartbeats?.pongs ?? 0),
          open: a.open + (r.heartbeats?.open ?? 0),
        }),
        { sent: 0, pongs: 0, open: 0 },
      );
      ctx.log(
        `${LABEL[kind]}: ${load.opened} connections, ${((rssAfterBytes - rssBeforeBytes) / Math.max(1, load.opened)).toFixed(0)} bytes each`,
      );
      return {
        requested: n,
        connected: load.opened,
        failed: load.failed,
        ...(load.firstError ? { firstError: load.firstError } : {}),
        ...(serverSaysConnected !== undefined ? { serverSaysConnected } : {}),
        connectSeconds: load.connectMs / 1000,
        loadProcesses: load.clients.length,
        fdsBefore,
        fdsAfter,
        rssBeforeBytes,
        rssAfterBytes,
        bytesPerConnection: load.opened ? (rssAfterBytes - rssBeforeBytes) / load.opened : NaN,
        pushes: sumPushes(reports.map((r) => r.pushes)),
        heartbeats,
        ...(optOut
          ? {
              optedOut: {
                connections: reports.reduce((s, r) => s + (r.optedOut?.connections ?? 0), 0),
                pushes: sumPushes(reports.map((r) => r.optedOut?.pushes ?? { messages: 0, bytes: 0 })),
              },
            }
          : {}),
      };
    } finally {
      await stopLoad(load.clients);
    }
  } finally {
    await server.stop();
  }
}
