/**
 * control: control-message throughput, ping→pong round trips per second, Linus against a bare `ws` server in the
 * same run. --clients connections, each a sequential ping → wait for pong → ping loop, for --seconds; the box may
 * be shared, so rounds run in bare/Linus pairs (alternating who goes first) until each server has --rounds quiet
 * ones (little other CPU use), and the median quiet round counts. Target: Linus ≥ 0.6 × bare.
 */
import { cpus } from 'node:os';
import { cpuLayout, isAbort, nextMessage, pinSelf, send, sleep } from '../lib/children.js';
import { int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { boxBusyMs, cpuMs } from '../lib/proc-stats.js';
import type { Figure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
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
import { Histogram, type Pushes, type ToLoad } from '../shared.js';

const TARGET_RATIO = 0.6;

const options = {
  seconds: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  clients: { type: 'string', default: '100' },
  'ping-procs': { type: 'string', default: '1' },
  rounds: { type: 'string', default: '3' },
  'max-rounds': { type: 'string', default: '8' },
  quiet: { type: 'string', default: '25' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  seconds: 'measured ping→pong time per round and server',
  warmup: 'unmeasured ping→pong time before it',
  clients: 'concurrent ping→pong connections',
  'ping-procs': 'load-client processes',
  rounds: 'quiet rounds wanted per server; the median quiet round is reported',
  'max-rounds': 'rounds per server at most while looking for quiet ones',
  quiet: 'a round is quiet when other work on the box used < N % of a core',
  ...SERVER_HELP,
};

export interface PingResult {
  connections: number;
  roundTrips: number;
  roundTripsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPct: number;
  serverCpuUsPerRoundTrip: number;
  clientCpuPct: number;
  /** Busy CPU on the box not used by the server or the load clients (other work, kernel networking). */
  otherCpuPct: number;
  lostConnections: number;
  pushes: Pushes;
}

const profile: Profile = {
  name: 'control',
  summary: 'ping→pong round trips/s over N connections, Linus vs a bare ws server in the same run',
  options,
  help,
  smokeDefaults: { seconds: '1', warmup: '0.5', clients: '10', rounds: '1', 'max-rounds': '1', pin: 'off' },
  timeoutSec: () => 1800,
  run,
};
export default profile;

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const warmupMs = num(f, 'warmup', 0, 60) * 1000;
  const measureMs = num(f, 'seconds', 0.1, 600) * 1000;
  const clients = int(f, 'clients', 1, 5000);
  const procs = int(f, 'ping-procs', 1, 16);
  const want = int(f, 'rounds', 1, 20);
  const maxRounds = Math.max(want, int(f, 'max-rounds', 1, 50));
  const quietPct = num(f, 'quiet', 0, 1000);
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
  const rounds: Record<Kind, PingResult[]> = { bare: [], linus: [] };
  const quiet = (k: Kind): PingResult[] => rounds[k].filter((x) => x.otherCpuPct < quietPct);
  try {
    for (let i = 0; i < maxRounds && (quiet('bare').length < want || quiet('linus').length < want); i++) {
      for (const k of i % 2 ? [...KINDS].reverse() : KINDS) {
        ctx.progress(`round ${i + 1}: ${LABEL[k]}, ${clients} ping→pong connections`);
        const r = await pingRound(ctx, rig, k, clients, procs, warmupMs, measureMs);
        rounds[k].push(r);
        ctx.log(
          `round ${i + 1} ${LABEL[k]}: ${Math.round(r.roundTripsPerSec)} round trips/s, other CPU ${r.otherCpuPct.toFixed(0)} %`,
        );
      }
    }
  } catch (err) {
    if (!isAbort(err)) throw err;
    notes.push('interrupted: rounds run before it are reported');
  }
  const median = (k: Kind): PingResult | undefined => {
    const xs = quiet(k).length ? quiet(k) : rounds[k];
    return [...xs].sort((a, b) => a.roundTripsPerSec - b.roundTripsPerSec)[Math.floor(xs.length / 2)];
  };
  const chosen = { bare: median('bare'), linus: median('linus') };
  const figures: Figure[] = [];
  for (const k of KINDS) {
    const r = chosen[k];
    if (!r) continue;
    figures.push({ name: `${LABEL[k]}: connections`, value: r.connections, unit: `of ${clients}` });
    figures.push({ name: `${LABEL[k]}: round trips (pongs received) in the window`, value: r.roundTrips });
    figures.push({ name: `${LABEL[k]}: ping→pong round trips/s`, value: r.roundTripsPerSec });
    figures.push({ name: `${LABEL[k]}: round trip p50`, value: r.p50Ms, unit: 'ms' });
    figures.push({ name: `${LABEL[k]}: round trip p99`, value: r.p99Ms, unit: 'ms' });
    figures.push({ name: `${LABEL[k]}: server CPU`, value: r.serverCpuPct, unit: '% of a core' });
    figures.push({ name: `${LABEL[k]}: server CPU per round trip`, value: r.serverCpuUsPerRoundTrip, unit: 'µs' });
  }
  if (chosen.bare && chosen.linus) {
    const ratio = chosen.linus.roundTripsPerSec / chosen.bare.roundTripsPerSec;
    figures.push({
      name: 'Linus / bare ws round trips/s',
      value: ratio,
      unit: '×',
      target: `≥ ${TARGET_RATIO}`,
      met: ratio >= TARGET_RATIO,
    });
  } else if (!ctx.signal.aborted) failures.push('a server could not be measured');
  for (const k of KINDS) {
    for (const [i, r] of rounds[k].entries()) {
      if (r.connections < clients)
        failures.push(`${LABEL[k]} round ${i + 1}: ${r.connections} of ${clients} connections opened`);
      if (r.lostConnections) failures.push(`${LABEL[k]} round ${i + 1}: ${r.lostConnections} connections lost`);
      if (!r.roundTrips) failures.push(`${LABEL[k]} round ${i + 1}: no pong received`);
    }
    if (rounds[k].length && !quiet(k).length)
      notes.push(
        `${LABEL[k]}: no quiet round (other CPU < ${quietPct} % of a core); the median is over all rounds and other load on the box skews it.`,
      );
  }
  notes.push(
    `node ${process.version}, ${cpus().length} CPUs, ${cpu.pinned ? `server pinned to CPU ${cpu.server}, load to CPU ${cpu.load}` : 'no CPU pinning'}, all on 127.0.0.1; ${clients} connections in ${procs} load process(es), ${measureMs / 1000} s measured after ${warmupMs / 1000} s of warm-up`,
    `Every round, round trips/s: ${KINDS.map((k) => `${LABEL[k]} ${rounds[k].map((r) => `${Math.round(r.roundTripsPerSec)} (other CPU ${r.otherCpuPct.toFixed(0)} %)`).join(', ') || '-'}`).join('; ')}`,
  );
  const clientCpu = Math.max(0, ...KINDS.flatMap((k) => rounds[k].map((r) => r.clientCpuPct)));
  return {
    profile: 'control',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    generatorCpuPct: clientCpu,
    notes,
    ok: failures.length === 0,
    ...(failures.length ? { failures } : {}),
    details: { chosen, rounds, quietBelowPct: quietPct },
  };
}

async function pingRound(
  ctx: ProfileContext,
  rig: TransportRig,
  kind: Kind,
  total: number,
  procs: number,
  warmupMs: number,
  measureMs: number,
): Promise<PingResult> {
  const server = await startServerUnderTest(kind, rig);
  try {
    const load = await openLoad(rig, server, 'ping', total, Math.ceil(total / procs), 30_000);
    try {
      for (const p of load.clients) send<ToLoad>(p, { kind: 'go', warmupMs, measureMs });
      await sleep(warmupMs, ctx.signal);
      const [cpu0, box0] = [cpuMs(server.child.pid), boxBusyMs()];
      await sleep(measureMs, ctx.signal);
      const [serverCpu, boxCpu] = [cpuMs(server.child.pid) - cpu0, boxBusyMs() - box0];
      const results = await Promise.all(load.clients.map((p) => nextMessage(p, 'result', 15_000, ctx.signal)));
      const hist = new Histogram();
      for (const r of results) hist.merge(r.buckets);
      const roundTrips = results.reduce((s, r) => s + r.roundTrips, 0);
      const clientCpu = results.reduce((s, r) => s + r.cpuMs, 0);
      return {
        connections: load.opened,
        roundTrips,
        roundTripsPerSec: roundTrips / (measureMs / 1000),
        p50Ms: hist.percentile(0.5) / 1000,
        p99Ms: hist.percentile(0.99) / 1000,
        serverCpuPct: (serverCpu / measureMs) * 100,
        serverCpuUsPerRoundTrip: roundTrips ? (serverCpu * 1000) / roundTrips : NaN,
        clientCpuPct: (clientCpu / measureMs) * 100,
        otherCpuPct: (Math.max(0, boxCpu - serverCpu - clientCpu) / measureMs) * 100,
        lostConnections: results.reduce((s, r) => s + r.lost, 0),
        pushes: sumPushes(results.map((r) => r.pushes)),
      };
    } finally {
      await stopLoad(load.clients);
    }
  } finally {
    await server.stop();
  }
}
