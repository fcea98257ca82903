/**
 * soak: --devices talking devices (the talk machinery, bench/lib/voice-load.ts) for --minutes, watching the server
 * for leaks: RSS, open file descriptors and active resources (handles and ref'd timers, from /metrics'
 * linus_nodejs_active_resources) every few seconds. Figures: the RSS slope over the second half (least
 * squares, MiB/min), the growth of fds and resources over the second half, and what is left after the load once
 * every device is gone, against the same reading before it. Targets: slope < 1 MiB/min, nothing left behind.
 */
import { cpus } from 'node:os';
import { cpuLayout, isAbort, pinSelf, sleep } from '../lib/children.js';
import {
  int,
  num,
  onOff,
  serverNodeArgs,
  SERVER_HELP,
  SERVER_SET_HELP,
  SERVER_SET_OPTIONS,
  serverSettings,
  SERVER_OPTIONS,
} from '../lib/flags.js';
import { waitForConnections } from '../lib/linus-server.js';
import { cpuMs, fdKinds, openFds, rssBytes } from '../lib/proc-stats.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult, Series } from '../lib/profile.js';
import { metricSum, metricValue, scrape, type Sample } from '../lib/prom.js';
import { Sampler, type Reading } from '../lib/sampler.js';
import { MiB, secondHalf, slope } from '../lib/stats.js';
import { LATE_MS, levelFailures, VoiceRig, type LevelResult } from '../lib/voice-load.js';

const TARGET_SLOPE = 1;

const options = {
  minutes: { type: 'string', default: '2' },
  devices: { type: 'string', default: '100' },
  'sample-every': { type: 'string', default: '5' },
  settle: { type: 'string', default: '6' },
  'provider-delay': { type: 'string', default: 'zero' },
  stagger: { type: 'string', default: '7' },
  pause: { type: 'string', default: '0' },
  'per-generator': { type: 'string', default: '250' },
  utterance: { type: 'string', default: 'what time is it' },
  ...SERVER_OPTIONS,
  ...SERVER_SET_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  minutes: 'how long the devices keep talking',
  devices: 'talking devices',
  'sample-every': 's between two readings of RSS, fds and active resources',
  settle: 's to wait, once the devices are gone, before the readings before and after the load',
  'provider-delay': 'zero | realistic (see the talk profile)',
  stagger: 'device starts spread over the first N s',
  pause: "ms between a device's tts stop and its next listen start",
  'per-generator': 'devices per load-generator process',
  utterance: 'what the devices say (flite voice slt)',
  ...SERVER_HELP,
  ...SERVER_SET_HELP,
};

const profile: Profile = {
  name: 'soak',
  summary: 'talking devices for M minutes: RSS slope, fd and timer/handle growth, what is left after the load',
  options,
  help,
  smokeDefaults: { minutes: '0.05', devices: '2', 'sample-every': '1', settle: '2', stagger: '0', pin: 'off' },
  // The load, then up to half as long again for turns in flight, plus start-up and settling.
  timeoutSec: (flags) => Math.round((Number(flags.minutes) || 0) * 60 * 1.5 + 600),
  run,
};
export default profile;

/** Open fds and active resources of the server: one reading. */
interface Snapshot {
  fds: number;
  fdKinds: Record<string, number>;
  resources: number;
  timers: number;
  byType: Record<string, number>;
}

/** The resources metric: prom-client's default `nodejs_active_resources` under the server's linus_ prefix. */
const RESOURCES = 'linus_nodejs_active_resources';

function resourcesOf(samples: Sample[]): { total: number; timers: number; byType: Record<string, number> } {
  const byType: Record<string, number> = {};
  for (const s of samples) if (s.name === RESOURCES && s.labels.type) byType[s.labels.type] = s.value;
  return { total: metricSum(samples, RESOURCES), timers: byType.Timeout ?? 0, byType };
}

async function snapshot(pid: number, metricsUrl: string): Promise<Snapshot> {
  const r = resourcesOf(await scrape(metricsUrl));
  return { fds: openFds(pid), fdKinds: fdKinds(pid), resources: r.total, timers: r.timers, byType: r.byType };
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const minutes = num(f, 'minutes', 0.05, 24 * 60);
  const devices = int(f, 'devices', 1, 20_000);
  const everyMs = num(f, 'sample-every', 0.2, 600) * 1000;
  const settleMs = num(f, 'settle', 0, 600) * 1000;
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);
  const startedAt = new Date();
  const failures: string[] = [];
  const notes: string[] = [];
  const rig = await VoiceRig.start({
    root: ctx.root,
    fromSource: ctx.serverFromSource,
    cpu,
    delay: String(f['provider-delay']) === 'realistic' ? 'realistic' : 'zero',
    utterance: String(f.utterance),
    serverNodeArgs: serverNodeArgs(f),
    config: serverSettings(f),
    signal: ctx.signal,
    progress: ctx.progress,
    log: ctx.log,
    // Pooled provider sockets close a second before this once idle, so that they are gone after `settle`.
    fakeKeepAliveMs: Math.max(2000, Math.min(5000, settleMs - 1000)),
  });
  const pid = rig.server.child.pid;
  const metricsUrl = rig.server.url('/metrics');
  let lastCpu = { at: performance.now(), ms: cpuMs(pid) };
  const sampler = new Sampler(everyMs, async (): Promise<Reading> => {
    const now = { at: performance.now(), ms: cpuMs(pid) };
    const cpuPct = ((now.ms - lastCpu.ms) / Math.max(1, now.at - lastCpu.at)) * 100;
    lastCpu = now;
    const samples = await scrape(metricsUrl);
    const r = resourcesOf(samples);
    return {
      rss: rssBytes(pid) / MiB,
      fds: openFds(pid),
      resources: r.total,
      timers: r.timers,
      cpu: cpuPct,
      lag: metricValue(samples, 'linus_event_loop_lag_p99_seconds') * 1000,
    };
  });
  let level: LevelResult | undefined;
  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  let loadFrom = 0;
  let loadTo = 0;
  try {
    // One unmeasured turn first: the VAD model, the provider clients and the JIT are not leaks.
    const w = await rig.runLevel({
      devices: 2,
      turns: 1,
      seconds: 0,
      perGenerator: 250,
      staggerMs: 0,
      pauseMs: 0,
      turnTimeoutMs: 30_000,
      decode: 'first',
    });
    if (w.turns.completed !== w.turns.started)
      ctx.log(`warm-up: ${w.turns.completed}/${w.turns.started} turns completed`);
    ctx.progress(`settling ${settleMs / 1000} s before the load`);
    await sleep(settleMs, ctx.signal);
    before = await snapshot(pid, metricsUrl);
    sampler.start();
    loadFrom = sampler.t(Date.now());
    level = await rig.runLevel({
      devices,
      turns: 1,
      seconds: minutes * 60,
      perGenerator: int(f, 'per-generator', 1, 5000),
      staggerMs: num(f, 'stagger', 0, 120) * 1000,
      pauseMs: num(f, 'pause', 0, 60_000),
      turnTimeoutMs: 30_000,
      decode: 'first',
    });
    loadTo = sampler.t(Date.now());
    failures.push(...levelFailures(level));
    ctx.progress(`load over; waiting for the connections to close and ${settleMs / 1000} s`);
    const left = await waitForConnections(rig.server.port, 0, 30_000);
    if (left) failures.push(`${left} connections still open 30 s after the devices left`);
    await sleep(settleMs, ctx.signal);
    await sampler.sample();
    after = await snapshot(pid, metricsUrl);
  } catch (err) {
    if (!isAbort(err)) throw err;
    notes.push('interrupted: the readings up to it are reported; nothing is judged');
  } finally {
    sampler.stop();
    await rig.stop();
  }

  // The steady state: readings taken while the devices talked, second half only (the start is warm-up).
  const during = (key: string): Array<[number, number]> =>
    secondHalf((sampler.points.get(key) ?? []).filter(([t]) => t >= loadFrom && t <= loadTo));
  const rssSlope = slope(during('rss')) * 60;
  const growth = (key: string): number => {
    const pts = during(key);
    return pts.length >= 2 ? slope(pts) * (pts.at(-1)![0] - pts[0]![0]) : NaN;
  };
  const judged = !!(level && before && after);
  const figures: Figure[] = [];
  if (level) {
    figures.push({ name: 'devices connected', value: level.connected, unit: `of ${devices}` });
    figures.push({
      name: 'turns completed',
      value: level.turns.completedPct,
      unit: '%',
      target: '100 %',
      met: level.turns.completed === level.turns.started && level.connected === devices,
    });
    figures.push({ name: 'turns', value: level.turns.started });
    figures.push({ name: `downlink frame intervals > ${LATE_MS} ms`, value: level.client.lateIntervalsPct, unit: '%' });
  }
  figures.push({
    name: 'RSS slope over the second half',
    value: rssSlope,
    unit: 'MiB/min',
    target: `< ${TARGET_SLOPE} MiB/min`,
    ...(judged && Number.isFinite(rssSlope) ? { met: rssSlope < TARGET_SLOPE } : {}),
  });
  const rss = sampler.points.get('rss') ?? [];
  if (rss.length)
    figures.push({
      name: 'RSS at the start / end of the load',
      value: `${rss[0]![1].toFixed(0)} / ${rss.at(-1)![1].toFixed(0)} MiB`,
    });
  figures.push({ name: 'open fds, growth over the second half (trend)', value: growth('fds') });
  figures.push({ name: 'active resources, growth over the second half (trend)', value: growth('resources') });
  figures.push({ name: 'active timers, growth over the second half (trend)', value: growth('timers') });
  if (before && after) {
    const b = before;
    const a = after;
    figures.push({
      name: 'open fds left after the load (after − before)',
      value: a.fds - b.fds,
      target: '≤ 0',
      met: a.fds <= b.fds,
    });
    figures.push({
      name: 'active timers left after the load (after − before)',
      value: a.timers - b.timers,
      target: '≤ 0',
      met: a.timers <= b.timers,
    });
    figures.push({
      name: 'active resources left after the load (after − before)',
      value: a.resources - b.resources,
      target: '≤ 0',
      met: a.resources <= b.resources,
    });
    const changes = (x: Record<string, number>, y: Record<string, number>): string =>
      [...new Set([...Object.keys(x), ...Object.keys(y)])]
        .filter((k) => (x[k] ?? 0) !== (y[k] ?? 0))
        .map((k) => `${k} ${x[k] ?? 0} → ${y[k] ?? 0}`)
        .join(', ');
    if (changes(b.byType, a.byType))
      notes.push(`Active resources by type, before → after: ${changes(b.byType, a.byType)}`);
    if (changes(b.fdKinds, a.fdKinds)) notes.push(`Open fds by kind, before → after: ${changes(b.fdKinds, a.fdKinds)}`);
  }
  const series: Series[] = [
    sampler.series('rss', 'server RSS', 'MiB'),
    sampler.series('fds', 'server open fds', 'fds'),
    sampler.series('resources', "server active resources (handles, requests, ref'd timers)", 'resources'),
    sampler.series('timers', 'server active timers', 'timers'),
    sampler.series('cpu', 'server CPU', '% of a core'),
    sampler.series('lag', 'server event-loop lag p99 per reading', 'ms'),
  ];
  const histograms: HistogramFigure[] = [];
  if (level) {
    const base = sampler.t(level.startAt);
    series.unshift({
      name: `late downlink frame intervals (> ${LATE_MS} ms)`,
      unit: '%',
      points: level.lateShare.map(([t, v]) => [base + t, v]),
    });
    histograms.push({ name: 'VAD end → first frame (server metric)', unit: 'ms', buckets: level.server.totalBuckets });
  }
  notes.push(
    `${devices} devices for ${minutes} min, readings every ${everyMs / 1000} s; node ${process.version}, ${cpus().length} CPUs, ${cpu.pinned ? `server pinned to CPU ${cpu.server}` : 'no CPU pinning'}${ctx.serverFromSource ? '; server from src/ through tsx' : ''}`,
    'Growth over the second half = least-squares slope × its duration (turns in flight make fds and timers go up and down; a trend is what matters). "Left after the load" compares readings taken with no device connected, before and after, both after settling.',
    `Active resources are ${RESOURCES} (process.getActiveResourcesInfo(): handles, requests and ref'd timers; unref'd timers are not counted).`,
  );
  if (!judged && !ctx.signal.aborted) failures.push('the soak did not complete');
  return {
    profile: 'soak',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    series,
    histograms,
    ...(level ? { generatorCpuPct: level.load.generatorCpuPct } : {}),
    notes,
    ok: failures.length === 0,
    ...(failures.length ? { failures } : {}),
    details: { level, before, after, points: Object.fromEntries(sampler.points) },
  };
}
