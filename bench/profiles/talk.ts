/**
 * talk: N simulated talking devices against one Linus server process, for each N of --levels (devices reconnect
 * per level). Real Opus up and down, Silero VAD in the server, fake OpenAI-compatible ASR/LLM/TTS in a process of
 * their own, zero or realistic delays (bench/lib/voice-load.ts). Server pinned to CPU 0, everything else on the
 * other CPUs. Figures per level; the targets: 500 devices with 100 % of turns and < 1 % late downlink frames,
 * server-added latency (VAD end → first frame, zero-delay providers) p50 ≤ 5 ms and p99 ≤ 25 ms at 100 devices,
 * event-loop lag p99 ≤ 20 ms at every level. `--transport mqtt` runs each level over WebSocket and then over MQTT +
 * UDP and compares them (bench/lib/transport-compare.ts). With --duty, devices talk push-to-talk at that duty cycle
 * and the figures include the server's CPU per device-second (target ≤ 2 ms, issue #13).
 */
import { cpus } from 'node:os';
import { cpuLayout, isAbort, pinSelf } from '../lib/children.js';
import { health } from '../lib/linus-server.js';
import {
  int,
  intList,
  num,
  oneOf,
  onOff,
  serverNodeArgs,
  SERVER_HELP,
  SERVER_SET_HELP,
  SERVER_SET_OPTIONS,
  serverSettings,
  SERVER_OPTIONS,
} from '../lib/flags.js';
import type { Figure, HistogramFigure, Profile, ProfileContext, ProfileResult, Series } from '../lib/profile.js';
import { cpuMs, rssBytes } from '../lib/proc-stats.js';
import { Sampler } from '../lib/sampler.js';
import { levelTransports, MQTT_SERVER_CONFIG, transportFigures, transportLabel } from '../lib/transport-compare.js';
import { MiB } from '../lib/stats.js';
import {
  LAG_RESOLUTION_MS,
  LATE_MS,
  levelFailures,
  VoiceRig,
  type LevelOptions,
  type LevelResult,
} from '../lib/voice-load.js';
import type { VoiceTransport } from '../voice-link.js';
import { deepMerge } from '../../src/config/reload.js';

/** The issue's targets. */
export const TALK_TARGETS = {
  devices: 500,
  lateFramesPct: 1,
  latencyAtDevices: 100,
  serverP50Ms: 5,
  serverP99Ms: 25,
  loopLagP99Ms: 20,
  /** At --duty 100 (issue #13). */
  cpuMsPerDeviceSecond: 2,
};

const options = {
  levels: { type: 'string', default: '10,100,300,500' },
  'provider-delay': { type: 'string', default: 'zero' },
  turns: { type: 'string', default: '3' },
  seconds: { type: 'string', default: '0' },
  'per-generator': { type: 'string', default: '250' },
  stagger: { type: 'string', default: '7' },
  pause: { type: 'string', default: '0' },
  duty: { type: 'string', default: 'off' },
  'turn-timeout': { type: 'string', default: '30' },
  decode: { type: 'string', default: 'first' },
  utterance: { type: 'string', default: 'what time is it' },
  'min-completed': { type: 'string', default: '50' },
  rounds: { type: 'string', default: '1' },
  'max-rounds': { type: 'string', default: '2' },
  quiet: { type: 'string', default: '25' },
  warmup: { type: 'string', default: 'on' },
  transport: { type: 'string', default: 'websocket' },
  ...SERVER_OPTIONS,
  ...SERVER_SET_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  levels: 'device counts, run in this order on one server',
  'provider-delay':
    'zero | realistic: zero for the server-latency targets; realistic = ASR 300 ms, LLM first token 400 ms then a token per 30 ms, TTS first audio 200 ms',
  turns: 'turns per device per level',
  seconds: 'instead of --turns: keep starting turns for N s per level (0 = use --turns)',
  'per-generator': 'devices per load-generator process',
  stagger:
    'device starts spread over the first N s of a level (about one turn cycle, so that devices are spread over the phases of a turn)',
  pause: "ms between a device's tts stop and its next listen start",
  duty: 'off | 1..100: push-to-talk turns (listen start manual, the utterance without added silences: ~1.1 s for the default, listen stop, a ~1.5 s reply) keeping each device in turns this % of the time (100 = back to back, no pause); adds server CPU per device-second. off: auto turns with --pause',
  'turn-timeout': 's after its last uplink packet before a turn counts as timed out',
  decode: 'downlink Opus decoded by the devices: first (of each turn) | all | none',
  utterance: 'what the devices say (flite voice slt)',
  'min-completed': 'stop escalating after a level with fewer than N % of turns completed',
  rounds:
    'quiet rounds wanted per level; the median (by client latency p50) is reported, or the least disturbed round when none was quiet',
  'max-rounds': 'runs per level at most while looking for quiet ones',
  quiet: 'a round is quiet when other work on the box used < N % of a core',
  warmup: 'on|off: one unmeasured 2-device turn before the first level (VAD model load, JIT)',
  transport:
    'websocket | mqtt: mqtt runs every level over WebSocket and then over MQTT + UDP (the built-in broker) on the same server, and compares them',
  ...SERVER_HELP,
  ...SERVER_SET_HELP,
};

interface LevelEntry {
  devices: number;
  transport?: VoiceTransport;
  chosen: LevelResult;
  quietRounds: number;
  rounds: LevelResult[];
}

const profile: Profile = {
  name: 'talk',
  summary: 'N talking devices per level: real Opus both ways, Silero VAD, fake providers; turns, latency, late frames',
  options,
  help,
  smokeDefaults: {
    levels: '2',
    turns: '1',
    stagger: '0',
    warmup: 'off',
    pin: 'off',
    'turn-timeout': '20',
    'max-rounds': '1',
  },
  timeoutSec: () => 1800,
  run,
};
export default profile;

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const levels = intList(f, 'levels', 1, 20_000);
  const delay = oneOf(f, 'provider-delay', ['zero', 'realistic'] as const);
  const level: Omit<LevelOptions, 'devices'> = {
    turns: int(f, 'turns', 1, 1000),
    seconds: num(f, 'seconds', 0, 86_400),
    perGenerator: int(f, 'per-generator', 1, 5000),
    staggerMs: num(f, 'stagger', 0, 120) * 1000,
    pauseMs: num(f, 'pause', 0, 60_000),
    turnTimeoutMs: num(f, 'turn-timeout', 1, 600) * 1000,
    decode: oneOf(f, 'decode', ['first', 'all', 'none'] as const),
  };
  const duty = dutyFlag(f);
  if (duty !== undefined) level.duty = duty;
  const minCompleted = num(f, 'min-completed', 0, 100);
  const rounds = int(f, 'rounds', 1, 20);
  const maxRounds = Math.max(rounds, int(f, 'max-rounds', 1, 50));
  const quietPct = num(f, 'quiet', 0, 1000);
  const warmup = onOff(f, 'warmup');
  const transports = levelTransports(oneOf(f, 'transport', ['websocket', 'mqtt'] as const));
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);

  const startedAt = new Date();
  const notes: string[] = [];
  const failures: string[] = [];
  const entries: LevelEntry[] = [];
  let stoppedEarly: string | undefined;
  let providerRequests: Record<string, number> | undefined;

  const rig = await VoiceRig.start({
    root: ctx.root,
    fromSource: ctx.serverFromSource,
    cpu,
    delay,
    utterance: String(f.utterance),
    // Two reply sentences of 0.6–0.9 s each: the issue's ~1.5 s reply per turn.
    ...(duty !== undefined ? { ttsAudioMs: [600, 900] as [number, number] } : {}),
    serverNodeArgs: serverNodeArgs(f),
    config: transports.includes('mqtt') ? deepMerge(MQTT_SERVER_CONFIG, serverSettings(f)) : serverSettings(f),
    signal: ctx.signal,
    progress: ctx.progress,
    log: ctx.log,
  });
  const pid = rig.server.child.pid;
  let lastCpu = { at: performance.now(), ms: cpuMs(pid) };
  // RSS and CPU of the server over the whole run, from /proc (no scrape: it would restart the lag window).
  const sampler = new Sampler(1000, () => {
    const now = { at: performance.now(), ms: cpuMs(pid) };
    const pct = ((now.ms - lastCpu.ms) / Math.max(1, now.at - lastCpu.at)) * 100;
    lastCpu = now;
    return { rss: rssBytes(pid) / MiB, cpu: pct };
  }).start();
  try {
    for (const transport of warmup ? transports : []) {
      const w = await rig.runLevel({ ...level, devices: 2, turns: 1, seconds: 0, staggerMs: 0, transport });
      ctx.log(
        `warm-up${transportLabel(transport)}: ${w.turns.completed}/${w.turns.started} turns completed (not reported)`,
      );
    }
    for (const n of levels) {
      let byTransport: Map<VoiceTransport, ChosenRound>;
      try {
        const lo = { ...level, devices: n };
        byTransport = await levelRounds(ctx, rig, lo, transports, rounds, maxRounds, quietPct, minCompleted);
      } catch (err) {
        if (isAbort(err)) throw err;
        stoppedEarly = `level ${n} failed: ${(err as Error).message}`;
        failures.push(stoppedEarly);
        break;
      }
      for (const [transport, chosen] of byTransport) {
        const at = `${n} devices${transportLabel(transport)}`;
        entries.push({
          devices: n,
          transport,
          chosen: chosen.chosen,
          quietRounds: chosen.quiet,
          rounds: chosen.rounds,
        });
        const c = chosen.chosen;
        failures.push(...levelFailures(c));
        if (c.turns.completedPct < minCompleted || c.connected < (n * minCompleted) / 100)
          stoppedEarly ??= `after ${at}: ${c.turns.completedPct.toFixed(1)} % of turns completed, ${c.connected} of ${n} connected (needs ≥ ${minCompleted} %)`;
      }
      if (stoppedEarly) break;
      if (!(await health(rig.server.port))) {
        stoppedEarly = `after ${n} devices: the server no longer answers /health`;
        break;
      }
    }
  } catch (err) {
    if (!isAbort(err)) throw err; // the runner notes the interruption itself
  } finally {
    sampler.stop();
    providerRequests = await rig.providerCounts();
    await rig.stop();
  }
  if (stoppedEarly) notes.push(`Stopped: ${stoppedEarly}`);

  const figures = [...talkFigures(entries, levels, delay), ...entries.flatMap((e) => costFigures(e, duty))];
  for (const n of levels) {
    const ws = entries.find((e) => e.devices === n && e.transport === 'websocket');
    const mqtt = entries.find((e) => e.devices === n && e.transport === 'mqtt');
    if (ws && mqtt) figures.push(...transportFigures(n, ws, mqtt));
  }
  const series: Series[] = [];
  for (const e of entries) {
    const base = sampler.t(e.chosen.startAt);
    series.push({
      name: `late downlink frame intervals (> ${LATE_MS} ms), ${e.devices} devices${transportLabel(e.transport)}`,
      unit: '%',
      points: e.chosen.lateShare.map(([t, v]) => [base + t, v]),
    });
  }
  series.push(sampler.series('rss', 'server RSS', 'MiB'), sampler.series('cpu', 'server CPU', '% of a core'));
  const histograms: HistogramFigure[] = entries.map((e) => ({
    name: `VAD end → first frame (server metric), ${e.devices} devices${transportLabel(e.transport)}`,
    unit: 'ms',
    buckets: e.chosen.server.totalBuckets,
  }));

  notes.push(
    `node ${process.version}, ${cpus().length} CPUs, ${cpu.pinned ? `server pinned to CPU ${cpu.server}, generators + fake providers + bench on CPU ${cpu.load}` : 'no CPU pinning'}, all on 127.0.0.1${ctx.serverFromSource ? '; server from src/ through tsx (not the build)' : ''}`,
    `Providers: fake OpenAI-compatible, ${delay === 'zero' ? 'zero delay' : 'realistic delays'}; reply = 2 sentences × ${duty !== undefined ? '0.6–0.9' : '1.5–3'} s of 24 kHz speech; "${rig.utterance.text}" = ${Math.round(rig.utterance.speechMs)} ms of speech`,
    'Server-added latency = stage "total" of linus_turn_stage_seconds (VAD end → first frame) with zero-delay providers: all server, plus 3 localhost round trips to the fake providers.',
    `Event-loop lag p99 is /metrics' value, which includes the ${LAG_RESOLUTION_MS} ms sampling interval of monitorEventLoopDelay.`,
  );
  if (duty !== undefined)
    notes.push(
      `--duty ${duty}: push-to-talk turns (listen start manual, speech packets, listen stop), each device in turns ${duty} % of the time. CPU per device-second = the server's CPU (/proc, all threads) over the level ÷ the seconds of voice the devices sent and received (uplink packets × 60 ms + reply frames × 60 ms), so a server that got less CPU and served fewer turns does not look cheaper; main thread = the event loop, other threads = audio workers + V8/libuv helpers.`,
    );
  if (delay !== 'zero')
    notes.push('Realistic provider delays: the latency figures include provider time, so they carry no target.');
  const unquiet = entries.filter((e) => !e.quietRounds).map((e) => `${e.devices}${transportLabel(e.transport)}`);
  if (unquiet.length)
    notes.push(
      `Levels without a quiet round (other CPU ≥ ${quietPct} % of a core): ${unquiet.join(', ')}; other work on the box skews them.`,
    );
  const totalCompleted = entries.reduce((s, e) => s + e.chosen.turns.completed, 0);
  if (!entries.length && !stoppedEarly) failures.push('no level ran');
  return {
    profile: 'talk',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    series,
    histograms,
    generatorCpuPct: Math.max(0, ...entries.map((e) => e.chosen.load.generatorCpuPct)),
    notes,
    ok: failures.length === 0 && (entries.length > 0 || ctx.signal.aborted),
    ...(failures.length ? { failures } : {}),
    details: { levels: entries, providerRequests, stoppedEarly, turnsCompleted: totalCompleted, cpuLayout: cpu },
  };
}

/** `--duty`: off, or a duty cycle in % (1..100). */
function dutyFlag(f: ProfileContext['flags']): number | undefined {
  return String(f.duty) === 'off' ? undefined : num(f, 'duty', 1, 100);
}

/** Issue #13's cost figures of a level: server CPU per device-second, split by thread, and the reply's first frame. */
export function costFigures(
  e: { devices: number; chosen: LevelResult; transport?: Parameters<typeof transportLabel>[0] },
  duty: number | undefined,
): Figure[] {
  const p = `${e.devices} devices${e.transport ? transportLabel(e.transport) : ''}: `;
  const s = e.chosen.server;
  const c = e.chosen.client;
  return [
    {
      name: `${p}server CPU per device-second of voice${duty !== undefined ? ` (duty ${duty} %)` : ''}`,
      value: s.cpuMsPerDeviceSecond,
      unit: 'ms',
      ...(duty === 100
        ? {
            target: `≤ ${TALK_TARGETS.cpuMsPerDeviceSecond} ms`,
            met: s.cpuMsPerDeviceSecond <= TALK_TARGETS.cpuMsPerDeviceSecond,
          }
        : {}),
    },
    { name: `${p}  of which main thread`, value: s.mainThreadCpuMsPerDeviceSecond, unit: 'ms' },
    { name: `${p}  of which other threads (audio)`, value: s.otherThreadsCpuMsPerDeviceSecond, unit: 'ms' },
    ...(duty !== undefined
      ? [
          { name: `${p}client: listen stop → first reply frame p99`, value: c.vadEndToFirstFrameMs.p99, unit: 'ms' },
          { name: `${p}server: late downlink frames`, value: s.lateFramesPct, unit: '%' },
        ]
      : []),
  ];
}

interface ChosenRound {
  chosen: LevelResult;
  rounds: LevelResult[];
  quiet: number;
}

/**
 * Runs a level until each transport has `want` quiet rounds or `max` runs, the transports taking turns round by
 * round so that they share the box's conditions; per transport the median quiet round (by client p50).
 */
async function levelRounds(
  ctx: ProfileContext,
  rig: VoiceRig,
  lo: LevelOptions,
  transports: VoiceTransport[],
  want: number,
  max: number,
  quietPct: number,
  minCompleted: number,
): Promise<Map<VoiceTransport, ChosenRound>> {
  const rounds = new Map(transports.map((t) => [t, [] as LevelResult[]]));
  const quiet = (t: VoiceTransport): LevelResult[] => rounds.get(t)!.filter((x) => x.load.otherCpuPct < quietPct);
  let failing = false;
  for (let i = 0; i < max && !failing; i++) {
    const pending = transports.filter((t) => quiet(t).length < want);
    if (!pending.length) break;
    for (const transport of pending) {
      const r = await rig.runLevel({ ...lo, transport, round: i + 1 });
      rounds.get(transport)!.push(r);
      ctx.log(
        `${lo.devices} devices${transportLabel(transport)}, round ${i + 1}: ${r.turns.completed}/${r.turns.started} turns, VAD end → first frame p50 ${r.server.stages.total!.p50.toFixed(1)} ms, ` +
          `late ${r.client.lateIntervalsPct.toFixed(2)} %, loop lag p99 ${r.server.loopLagP99Ms.toFixed(1)} ms, server CPU ${r.server.cpuPct.toFixed(0)} %, other CPU ${r.load.otherCpuPct.toFixed(0)} %`,
      );
      if (r.turns.completedPct < minCompleted) failing = true; // a failing level is not repeated
    }
  }
  const out = new Map<VoiceTransport, ChosenRound>();
  for (const t of transports) {
    const pool = quiet(t);
    const chosen = pool.length
      ? [...pool].sort(
          (a, b) => (a.client.lastSpeechToFirstFrameMs.p50 || 0) - (b.client.lastSpeechToFirstFrameMs.p50 || 0),
        )[Math.floor(pool.length / 2)]!
      : [...rounds.get(t)!].sort((a, b) => a.load.otherCpuPct - b.load.otherCpuPct)[0]!;
    out.set(t, { chosen, rounds: rounds.get(t)!, quiet: pool.length });
  }
  return out;
}

/** The figures of every level run, with the targets where they apply, and the target levels that were not run. */
export function talkFigures(
  entries: Array<{ devices: number; chosen: LevelResult; transport?: VoiceTransport }>,
  levels: number[],
  delay: 'zero' | 'realistic',
): Figure[] {
  const T = TALK_TARGETS;
  const out: Figure[] = [];
  for (const { devices: n, chosen: l, transport } of entries) {
    const p = `${n} devices${transportLabel(transport)}: `;
    // The targets are WebSocket's; MQTT's is to stay within 10 % of it (transportFigures).
    const atTop = n === T.devices && transport !== 'mqtt';
    const atMid = n === T.latencyAtDevices && delay === 'zero' && transport !== 'mqtt';
    out.push({ name: `${p}devices connected`, value: l.connected, unit: `of ${n}` });
    out.push({
      name: `${p}turns completed`,
      value: l.turns.completedPct,
      unit: '%',
      ...(atTop ? { target: '100 %', met: l.turns.completed === l.turns.started && l.connected === n } : {}),
    });
    const total = l.server.stages.total!;
    out.push({
      name: `${p}server-added latency p50 (VAD end → first frame)`,
      value: total.p50,
      unit: 'ms',
      ...(atMid ? { target: `≤ ${T.serverP50Ms} ms`, met: total.p50 <= T.serverP50Ms } : {}),
    });
    out.push({
      name: `${p}server-added latency p99 (VAD end → first frame)`,
      value: total.p99,
      unit: 'ms',
      ...(atMid ? { target: `≤ ${T.serverP99Ms} ms`, met: total.p99 <= T.serverP99Ms } : {}),
    });
    out.push({
      name: `${p}client: VAD-end frame sent → first reply frame p50`,
      value: l.client.vadEndToFirstFrameMs.p50,
      unit: 'ms',
    });
    out.push({
      name: `${p}downlink frame intervals > ${LATE_MS} ms`,
      value: l.client.lateIntervalsPct,
      unit: '%',
      ...(atTop ? { target: `< ${T.lateFramesPct} %`, met: l.client.lateIntervalsPct < T.lateFramesPct } : {}),
    });
    out.push({ name: `${p}max downlink lead`, value: l.client.maxLeadMs, unit: 'ms' });
    out.push({
      name: `${p}event-loop lag p99`,
      value: l.server.loopLagP99Ms,
      unit: 'ms',
      target: `≤ ${T.loopLagP99Ms} ms`,
      met: l.server.loopLagP99Ms <= T.loopLagP99Ms,
    });
    out.push({ name: `${p}server CPU`, value: l.server.cpuPct, unit: '% of a core' });
    out.push({ name: `${p}server RSS`, value: l.server.rssMiB, unit: 'MiB' });
    out.push({ name: `${p}generator CPU`, value: l.load.generatorCpuPct, unit: '% of a core' });
  }
  const ran = new Set(entries.filter((e) => e.transport !== 'mqtt').map((e) => e.devices));
  if (!ran.has(T.devices)) {
    const why = levels.includes(T.devices) ? 'not reached' : 'not run';
    out.push({ name: `${T.devices} devices: turns completed`, value: why, target: '100 %' });
    out.push({
      name: `${T.devices} devices: downlink frame intervals > ${LATE_MS} ms`,
      value: why,
      target: `< ${T.lateFramesPct} %`,
    });
  }
  if (!ran.has(T.latencyAtDevices) && delay === 'zero') {
    const why = levels.includes(T.latencyAtDevices) ? 'not reached' : 'not run';
    out.push({
      name: `${T.latencyAtDevices} devices: server-added latency p50 (VAD end → first frame)`,
      value: why,
      target: `≤ ${T.serverP50Ms} ms`,
    });
    out.push({
      name: `${T.latencyAtDevices} devices: server-added latency p99 (VAD end → first frame)`,
      value: why,
      target: `≤ ${T.serverP99Ms} ms`,
    });
  }
  return out;
}
