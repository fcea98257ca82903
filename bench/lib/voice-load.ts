/**
 * The talking-device machinery of the `talk` and `soak` profiles (and any profile that needs devices that
 * speak): one Linus server process and the fake OpenAI-compatible providers (bench/fake-providers.ts), then
 * levels of N devices run by load-generator processes (bench/voice-client.ts), each streaming a flite utterance
 * as real-time 60 ms Opus packets and waiting for `tts stop`. The server's numbers come from /metrics (bucket
 * deltas between a scrape before and one after a level), CPU and RSS from /proc, the devices' from their clocks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import { deepMerge } from '../../src/config/reload.js';
import { createSileroVad } from '../../src/providers/vad/silero.js';
import { createOpusDecoder, createOpusEncoder } from '../../src/voice/opus.js';
import { readWav } from '../../src/voice/wav.js';
import { Histogram } from '../shared.js';
import type {
  FromFake,
  FromVoiceClient,
  Timeline,
  ToFake,
  ToVoiceClient,
  TurnOutcome,
  TurnRecord,
  Utterance,
  VoiceClientConfig,
} from '../voice-shared.js';
import type { VoiceTransport } from '../voice-link.js';
import { nextMessage, note, send, sleep, spawnNode, stopChild, type Child } from './children.js';
import { ensureBuilt, health, startLinus, waitForConnections, type LinusProcess } from './linus-server.js';
import {
  cpuDelta,
  cpuSnapshot,
  openFds,
  peakRssBytes,
  rssBytes,
  threadCount,
  threadCpuMs,
  type CpuSnapshot,
} from './proc-stats.js';
import {
  byLabel,
  histogram,
  histogramDelta,
  histogramQuantile,
  metricSum,
  metricValue,
  scrape,
  shareAtMost,
  type HistogramData,
  type Sample,
} from './prom.js';
import { quantiles, split, type Quantiles } from './stats.js';

export const LATE_MS = 65;
/** Sampling interval of the server's monitorEventLoopDelay (src/observability/metrics.ts); its values include it. */
export const LAG_RESOLUTION_MS = 10;
const UPLINK_FRAME_MS = 60;
/** The bench server's xiaozhi.audio_params.frame_duration (the default). */
const DOWNLINK_FRAME_MS = 60;
const LEAD_SILENCE_MS = 240;
const TAIL_SILENCE_MS = 1200;

export type ProviderDelay = 'zero' | 'realistic';
export type DecodeMode = 'first' | 'all' | 'none';

export interface CpuLayout {
  pinned: boolean;
  server: string;
  load: string;
}

// ---------------------------------------------------------------- the utterance

export type PreparedUtterance = Utterance & { path: string };

/** flite → 16 kHz PCM → silence + speech + silence → 60 ms Opus packets; where speech ends; where the VAD will. */
export function prepareUtterance(dir: string, text: string): PreparedUtterance {
  const wavPath = join(dir, 'utterance.wav');
  try {
    execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', wavPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`flite could not say the utterance (apt-get install flite): ${(err as Error).message}`, {
      cause: err,
    });
  }
  const wav = readWav(readFileSync(wavPath));
  if (wav.sampleRate !== 16000) throw new Error(`flite gave ${wav.sampleRate} Hz, expected 16000`);
  const frame = (16000 * UPLINK_FRAME_MS) / 1000;
  const lead = (16000 * LEAD_SILENCE_MS) / 1000;
  const tail = (16000 * TAIL_SILENCE_MS) / 1000;
  const total = Math.ceil((lead + wav.samples.length + tail) / frame) * frame;
  const pcm = new Int16Array(total);
  pcm.set(wav.samples, lead);
  let lastLoud = wav.samples.length - 1;
  while (lastLoud > 0 && Math.abs(wav.samples[lastLoud]!) < 300) lastLoud--;
  let firstLoud = 0;
  while (firstLoud < lastLoud && Math.abs(wav.samples[firstLoud]!) < 300) firstLoud++;
  const encoder = createOpusEncoder(16000, UPLINK_FRAME_MS);
  const packets: Buffer[] = [];
  for (let at = 0; at < total; at += frame) packets.push(encoder.encode(pcm.subarray(at, at + frame)));
  encoder.dispose();
  const u: Utterance = {
    text,
    packets: packets.map((p) => p.toString('base64')),
    manualPackets: [Math.floor(lead / frame), Math.ceil((lead + wav.samples.length) / frame)],
    lastSpeechPacket: Math.floor((lead + lastLoud) / frame),
    vadEndPacket: vadEndPacket(packets),
    speechMs: ((lastLoud - firstLoud) / 16000) * 1000,
  };
  const path = join(dir, 'utterance.json');
  writeFileSync(path, JSON.stringify(u));
  return { ...u, path };
}

/** The packet on which the server's VAD ends the utterance: its decoder, Silero code and default thresholds. */
function vadEndPacket(packets: Buffer[]): number | null {
  try {
    const block = validateConfig({}).config.VAD.SileroVAD as Record<string, unknown>;
    const vad = createSileroVad('bench', block);
    const detector = vad.createDetector();
    const decoder = createOpusDecoder(16000, 1);
    let speaking = false;
    let end: number | null = null;
    for (const [i, p] of packets.entries()) {
      const d = detector.process(decoder.decode(p));
      if (!speaking) speaking = d.speaking;
      else if (d.endOfUtterance) {
        end = i;
        break;
      }
    }
    detector.dispose();
    decoder.dispose();
    void vad.dispose();
    return end;
  } catch (err) {
    note(`could not find the VAD end offline (${(err as Error).message}); the client VAD-end latency stays empty`);
    return null;
  }
}

// ---------------------------------------------------------------- one level's result

export interface LevelResult {
  devices: number;
  round: number;
  connected: number;
  connectFailed: number;
  connectFirstError?: string;
  connectSeconds: number;
  generators: number;
  /** Date.now() of the level's start (all generators' `go`) and its measured window. */
  startAt: number;
  windowSeconds: number;
  turns: {
    started: number;
    completed: number;
    completedPct: number;
    outcomes: Partial<Record<TurnOutcome, number>>;
    serverOutcomes: Record<string, number>;
  };
  /** Server-side stages (ms) from linus_turn_stage_seconds bucket deltas; shares are of turns ≤ the bound. */
  server: {
    stages: Record<string, Quantiles & { meanMs: number }>;
    /** Per-bucket (not cumulative) counts of stage "total" (VAD end → first frame), bounds in ms. */
    totalBuckets: Array<{ le: number; count: number }>;
    serverStageShareLe5ms: number;
    serverStageShareLe25ms: number;
    downlinkFrames: number;
    lateFrames: number;
    lateFramesPct: number;
    /** linus_event_loop_lag_p99_seconds as exposed: Node's histogram includes its 10 ms sampling interval. */
    loopLagP99Ms: number;
    loopLagMaxMs: number;
    /** The same minus the sampling interval: how late the loop really was. */
    loopLagP99ExcessMs: number;
    cpuPct: number;
    /**
     * Server CPU (all threads) per device-second of voice: ÷ the audio the devices sent and received (uplink packets
     * × 60 ms + reply frames × their duration), so a starved server that got through fewer turns is not cheaper.
     */
    cpuMsPerDeviceSecond: number;
    /** The same split: the main thread (sockets, pacing, providers) and every other thread (audio workers, GC). */
    mainThreadCpuMsPerDeviceSecond: number;
    otherThreadsCpuMsPerDeviceSecond: number;
    cpuPeakPct: number;
    rssMiB: number;
    peakRssMiB: number;
    threads: number;
    fds: number;
    uplinkDecodeErrors: number;
    sendFailures: number;
    /** linus_provider_errors_total deltas by kind:reason. */
    providerErrors: Record<string, number>;
    /** /health answered after the level. */
    healthy: boolean;
  };
  /** Client-side, from the devices' clocks. */
  client: {
    lastSpeechToFirstFrameMs: Quantiles;
    vadEndToFirstFrameMs: Quantiles;
    sttToFirstFrameMs: Quantiles;
    framesPerTurn: number;
    intervals: number;
    lateIntervals: number;
    lateIntervalsPct: number;
    intervalP99Ms: number;
    intervalMaxMs: number;
    maxLeadMs: number;
    underruns: number;
    decodeErrors: number;
    lostDevices: number;
    otherMessages: number;
  };
  load: {
    generatorCpuPct: number;
    generatorLoopLagP99Ms: number;
    generatorLoopLagMaxMs: number;
    uplinkSendLateP99Ms: number;
    fakeCpuPct: number;
    benchCpuPct: number;
    otherCpuPct: number;
  };
  /** Downlink late-interval share over time (t = s from startAt), from the generators' timelines. */
  lateShare: Array<[t: number, pct: number]>;
}

export interface LevelOptions {
  devices: number;
  /** Turns per device; ignored when seconds > 0. */
  turns: number;
  /** When > 0, devices keep starting turns for this long. */
  seconds: number;
  perGenerator: number;
  staggerMs: number;
  pauseMs: number;
  /** Push-to-talk turns at this duty cycle (%, see VoiceClientConfig.duty); unset: auto turns and pauseMs. */
  duty?: number;
  turnTimeoutMs: number;
  decode: DecodeMode;
  /** How the devices connect (default websocket); `mqtt` needs the server's MQTT transport on (mqttServerConfig). */
  transport?: VoiceTransport;
  round?: number;
  /** Called every second or so while the level runs, e.g. for a soak's samples. */
  onTick?: (elapsedMs: number) => void | Promise<void>;
}

// ---------------------------------------------------------------- the rig

export interface VoiceRigOptions {
  root: string;
  fromSource: boolean;
  cpu: CpuLayout;
  delay: ProviderDelay;
  utterance: string;
  serverNodeArgs: string[];
  signal: AbortSignal;
  progress: (line: string) => void;
  log: (line: string) => void;
  /** Server config overrides, merged over the bench defaults (top-level keys replaced). */
  config?: Record<string, unknown>;
  /** Idle keep-alive of the fake providers' connections (the server's pooled sockets live this long). */
  fakeKeepAliveMs?: number;
  /** Length of the fake TTS's audio per sentence, [min, max] ms (its default: 1500–3000). */
  ttsAudioMs?: [number, number];
}

/** The server, the fake providers and the utterance of a run; levels run on it one after another. */
export class VoiceRig {
  #idBase = 1_000_000;

  private constructor(
    readonly opts: VoiceRigOptions,
    readonly server: LinusProcess,
    readonly fake: Child<FromFake>,
    readonly utterance: PreparedUtterance,
    readonly dir: string,
  ) {}

  static async start(opts: VoiceRigOptions): Promise<VoiceRig> {
    ensureBuilt(opts.root, opts.fromSource);
    const dir = mkdtempSync(join(tmpdir(), 'linus-bench-voice-'));
    let fake: Child<FromFake> | undefined;
    try {
      const utterance = prepareUtterance(dir, opts.utterance);
      opts.log(
        `utterance: ${utterance.packets.length} packets, speech ends at packet ${utterance.lastSpeechPacket}, server VAD ends it at packet ${utterance.vadEndPacket ?? '?'}`,
      );
      fake = spawnNode<FromFake>(
        'fake providers',
        [
          '--import',
          'tsx',
          'bench/fake-providers.ts',
          '--delay',
          opts.delay,
          ...(opts.fakeKeepAliveMs ? ['--keep-alive-ms', String(opts.fakeKeepAliveMs)] : []),
          ...(opts.ttsAudioMs
            ? ['--min-audio-ms', String(opts.ttsAudioMs[0]), '--max-audio-ms', String(opts.ttsAudioMs[1])]
            : []),
        ],
        { cwd: opts.root, ipc: true, cpuList: opts.cpu.load },
        opts.cpu.pinned,
      );
      const { port } = await nextMessage(fake, 'listening', 30_000, opts.signal);
      const server = await startLinus({
        root: opts.root,
        config: voiceServerConfig(port, opts.config),
        nodeArgs: opts.serverNodeArgs,
        cpuList: opts.cpu.server,
        pin: opts.cpu.pinned,
        fromSource: opts.fromSource,
      });
      opts.log(
        `Linus pid ${server.child.pid} on port ${server.port}${opts.fromSource ? ' (src/ through tsx)' : ''}; fake providers pid ${fake.pid} (${opts.delay} delay)`,
      );
      return new VoiceRig(opts, server, fake, utterance, dir);
    } catch (err) {
      if (fake) await stopChild(fake, 2000);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Requests the fake providers served, by path. */
  async providerCounts(): Promise<Record<string, number> | undefined> {
    send<ToFake>(this.fake, { kind: 'counts' });
    return (await nextMessage(this.fake, 'counts', 5000).catch(() => undefined))?.counts;
  }

  /** The server first and gracefully: a --cpu-prof profile is only written on a clean exit. */
  async stop(): Promise<void> {
    await this.server.stop(15_000);
    await stopChild(this.fake, 3000);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** One level: N devices connect, run their turns, disconnect; the server's connections drain before it returns. */
  async runLevel(lo: LevelOptions): Promise<LevelResult> {
    const { opts, server: srv, utterance } = this;
    const n = lo.devices;
    const parts = split(n, Math.ceil(n / lo.perGenerator));
    let firstIndex = 0;
    const gens = parts.map((count, i) => {
      const cfg: VoiceClientConfig = {
        ...(lo.transport === 'mqtt'
          ? { url: srv.url('/xiaozhi/ota/'), transport: 'mqtt' as const }
          : { url: srv.url('/xiaozhi/v1/', 'ws') }),
        utterancePath: utterance.path,
        count,
        firstId: this.#idBase + firstIndex,
        firstIndex,
        levelSize: n,
        turns: lo.turns,
        seconds: lo.seconds,
        staggerMs: lo.staggerMs,
        pauseMs: lo.pauseMs,
        ...(lo.duty !== undefined ? { duty: lo.duty } : {}),
        turnTimeoutMs: lo.turnTimeoutMs,
        connectTimeoutMs: 20_000,
        concurrency: 50,
        decode: lo.decode,
        progressEveryMs: 1000,
        binMs: 1000,
      };
      firstIndex += count;
      return spawnNode<FromVoiceClient>(
        `voice generator ${i}`,
        ['--import', 'tsx', 'bench/voice-client.ts'],
        { cwd: opts.root, ipc: true, env: { BENCH_VOICE: JSON.stringify(cfg) }, cpuList: opts.cpu.load },
        opts.cpu.pinned,
      );
    });
    this.#idBase += n + 1000; // fresh device ids every level: no handover from a connection still closing
    const label = `${n} device${n === 1 ? '' : 's'}${lo.transport === 'mqtt' ? ' (MQTT)' : ''}`;
    try {
      opts.progress(`${label}: connecting`);
      const ready = await Promise.all(gens.map((g) => nextMessage(g, 'ready', 60_000 + n * 100, opts.signal)));
      const connected = ready.reduce((s, r) => s + r.connected, 0);
      const connectFailed = ready.reduce((s, r) => s + r.failed, 0);
      const connectFirstError = ready.find((r) => r.firstError)?.firstError;
      if (connectFailed) opts.log(`${label}: ${connectFailed} failed to connect (first: ${connectFirstError})`);
      const pid = srv.child.pid;
      const pids = [pid, this.fake.pid, process.pid, ...gens.map((g) => g.pid)];
      const m0 = await scrape(srv.url('/metrics')); // also restarts the server's event-loop lag window
      const c0 = cpuSnapshot(pids);
      const t0 = threadCpuMs(pid);
      // Server CPU once a second, for the busiest second.
      let peak = 0;
      let prev = c0;
      const startAt = Date.now() + 300;
      for (const g of gens) send<ToVoiceClient>(g, { kind: 'go', startAt });
      const utteranceMs = utterance.packets.length * UPLINK_FRAME_MS;
      const levelTimeout =
        300 +
        lo.staggerMs +
        (lo.seconds > 0
          ? lo.seconds * 1000 + utteranceMs + lo.turnTimeoutMs
          : lo.turns * (utteranceMs + lo.turnTimeoutMs + lo.pauseMs + 10_000) * (100 / (lo.duty ?? 100))) +
        60_000;
      const deadline = Date.now() + levelTimeout;
      const expected = lo.seconds > 0 ? undefined : connected * lo.turns;
      const progress = new Map<Child<FromVoiceClient>, { turns: number; completed: number }>();
      // Waits for every generator's result, narrating progress and sampling the server's CPU once a second.
      while (!gens.every((g) => g.inbox.some((m) => m.kind === 'result'))) {
        await sleep(1000, opts.signal);
        const now = cpuSnapshot([pid]);
        if (now.at - prev.at > 500) peak = Math.max(peak, (cpuDelta(prev, now, pid) / (now.at - prev.at)) * 100);
        prev = now;
        for (const g of gens) {
          for (
            let i = g.inbox.findIndex((m) => m.kind === 'progress');
            i >= 0;
            i = g.inbox.findIndex((m) => m.kind === 'progress')
          ) {
            const m = g.inbox.splice(i, 1)[0] as Extract<FromVoiceClient, { kind: 'progress' }>;
            progress.set(g, { turns: m.turns, completed: m.completed });
          }
          if (!g.inbox.some((m) => m.kind === 'result') && g.child.exitCode !== null)
            throw new Error(`${g.name} exited during the level: ${g.output()}`);
        }
        const done = [...progress.values()].reduce((s, p) => s + p.turns, 0);
        const ok = [...progress.values()].reduce((s, p) => s + p.completed, 0);
        const elapsed = Math.max(0, (Date.now() - startAt) / 1000);
        opts.progress(
          `${label}: ${ok}/${done}${expected ? ` of ${expected}` : ''} turns completed, ${elapsed.toFixed(0)}${lo.seconds ? `/${lo.seconds}` : ''} s`,
        );
        await lo.onTick?.(Date.now() - startAt);
        if (Date.now() > deadline)
          throw new Error(`${label}: no result from every generator within ${Math.round(levelTimeout / 1000)} s`);
      }
      const results = await Promise.all(gens.map((g) => nextMessage(g, 'result', 1000)));
      const c1 = cpuSnapshot(pids);
      const t1 = threadCpuMs(pid);
      const m1 = await scrape(srv.url('/metrics'));
      const raw: Raw = {
        n,
        round: lo.round ?? 1,
        connected,
        connectFailed,
        connectFirstError,
        connectMs: Math.max(...ready.map((r) => r.ms)),
        gens: results.map((r, i) => ({ ...r, cpuMs: cpuDelta(c0, c1, gens[i]!.pid) })),
        m0,
        m1,
        c0,
        c1,
        mainThreadCpuMs: t1.main - t0.main,
        otherThreadsCpuMs: t1.others - t0.others,
        windowMs: c1.at - c0.at,
        rss: rssBytes(pid),
        fds: openFds(pid),
        threads: threadCount(pid),
        peak,
        pid,
        fakePid: this.fake.pid,
        startAt,
        healthy: (await health(srv.port))?.status === 'ok',
      };
      return summarize(raw);
    } finally {
      await Promise.all(gens.map((g) => stopChild(g, 3000)));
      if (!opts.signal.aborted) {
        const left = await waitForConnections(srv.port, 0, 30_000);
        if (left) opts.log(`${left} connections still open on the server 30 s after the ${label} level`);
      }
    }
  }
}

/** The server's config: fake providers for ASR/LLM/TTS, Silero VAD, limits out of the way of the load. */
export function voiceServerConfig(fakePort: number, overrides: Record<string, unknown> = {}): string {
  const base = `http://127.0.0.1:${fakePort}/v1`;
  const raw = {
    log: { log_level: 'warn' },
    server: { max_connections: 100000, max_messages_per_second: 1000, stats_interval_ms: 0 },
    close_connection_no_voice_time: 3600,
    selected_module: { VAD: 'SileroVAD', ASR: 'BenchASR', LLM: 'BenchLLM', TTS: 'BenchTTS' },
    ASR: { BenchASR: { type: 'openai', base_url: base, model_name: 'whisper-1' } },
    LLM: { BenchLLM: { type: 'openai', base_url: base, model_name: 'bench-llm', api_key: 'bench' } },
    TTS: { BenchTTS: { type: 'openai', base_url: base, format: 'pcm' } },
  };
  const merged = deepMerge(raw, overrides);
  const { warnings } = validateConfig(merged); // a mistake here should fail now, not as a server that will not start
  for (const w of warnings) note(`config warning: ${w}`);
  return `# written by bench/lib/voice-load.ts\n${toYaml(merged)}`;
}

// ---------------------------------------------------------------- summarizing a level

interface GeneratorResult extends Extract<FromVoiceClient, { kind: 'result' }> {
  cpuMs: number;
}

interface Raw {
  n: number;
  round: number;
  connected: number;
  connectFailed: number;
  connectFirstError: string | undefined;
  connectMs: number;
  gens: GeneratorResult[];
  m0: Sample[];
  m1: Sample[];
  c0: CpuSnapshot;
  c1: CpuSnapshot;
  /** The server's CPU over the window: its main thread's, and all its other threads' (read at the same instant). */
  mainThreadCpuMs: number;
  otherThreadsCpuMs: number;
  windowMs: number;
  rss: number;
  fds: number;
  threads: number;
  peak: number;
  pid: number;
  fakePid: number;
  startAt: number;
  healthy: boolean;
}

function stageStats(h: HistogramData): Quantiles & { meanMs: number } {
  return {
    p50: histogramQuantile(h, 0.5) * 1000,
    p99: histogramQuantile(h, 0.99) * 1000,
    n: h.count,
    meanMs: h.count ? (h.sum / h.count) * 1000 : NaN,
  };
}

/** Cumulative buckets in seconds → per-bucket counts in ms. */
function perBucketMs(h: HistogramData): Array<{ le: number; count: number }> {
  return h.buckets.map((b, i) => ({ le: b.le * 1000, count: b.count - (i ? h.buckets[i - 1]!.count : 0) }));
}

function mergeTimelines(timelines: Timeline[]): Array<[number, number]> {
  if (!timelines.length) return [];
  const binMs = timelines[0]!.binMs;
  const intervals: number[] = [];
  const late: number[] = [];
  for (const tl of timelines) {
    tl.intervals.forEach((v, i) => (intervals[i] = (intervals[i] ?? 0) + v));
    tl.late.forEach((v, i) => (late[i] = (late[i] ?? 0) + v));
  }
  const out: Array<[number, number]> = [];
  // A bin without downlink audio has no share to show (it is not 0 % late).
  for (let i = 0; i < intervals.length; i++)
    if (intervals[i]) out.push([((i + 1) * binMs) / 1000, ((late[i] ?? 0) / intervals[i]!) * 100]);
  return out;
}

function providerErrors(before: Sample[], after: Sample[]): Record<string, number> {
  const key = (s: Sample): string => `${s.labels.kind ?? '?'}:${s.labels.reason ?? '?'}`;
  const prev = new Map(before.filter((s) => s.name === 'linus_provider_errors_total').map((s) => [key(s), s.value]));
  const out: Record<string, number> = {};
  for (const s of after)
    if (s.name === 'linus_provider_errors_total' && s.value - (prev.get(key(s)) ?? 0) > 0)
      out[key(s)] = s.value - (prev.get(key(s)) ?? 0);
  return out;
}

function summarize(r: Raw): LevelResult {
  const turns: TurnRecord[] = r.gens.flatMap((g) => g.turns);
  const outcomes: Partial<Record<TurnOutcome, number>> = {};
  for (const t of turns) outcomes[t.outcome] = (outcomes[t.outcome] ?? 0) + 1;
  const completed = outcomes.completed ?? 0;
  const ok = turns.filter((t) => t.outcome === 'completed');
  const diff = (a?: number, b?: number): number => (a !== undefined && b !== undefined ? b - a : NaN);
  const intervalHist = new Histogram();
  const sendLate = new Histogram();
  for (const g of r.gens) {
    intervalHist.merge(g.intervalBuckets);
    sendLate.merge(g.sendLateBuckets);
  }
  const sum = (f: (t: TurnRecord) => number): number => turns.reduce((s, t) => s + f(t), 0);
  const intervals = sum((t) => t.intervals);
  const lateIntervals = sum((t) => t.lateIntervals);

  const stage = (name: string): HistogramData =>
    histogramDelta(
      histogram(r.m1, 'linus_turn_stage_seconds', { stage: name }),
      histogram(r.m0, 'linus_turn_stage_seconds', { stage: name }),
    );
  const delta = (name: string, labels: Record<string, string> = {}): number =>
    metricSum(r.m1, name, labels) - metricSum(r.m0, name, labels);
  const stages: Record<string, Quantiles & { meanMs: number }> = {};
  for (const s of ['server', 'total', 'asr', 'llm', 'tts', 'send']) stages[s] = stageStats(stage(s));
  const serverStage = stage('server');
  const before = byLabel(r.m0, 'linus_turns_total', 'outcome');
  const serverOutcomes: Record<string, number> = {};
  for (const [k, v] of byLabel(r.m1, 'linus_turns_total', 'outcome'))
    if (v - (before.get(k) ?? 0)) serverOutcomes[k] = v - (before.get(k) ?? 0);
  const frames = delta('linus_downlink_frames_total');
  const late = delta('linus_downlink_late_frames_total');
  const genCpu = r.gens.reduce((s, g) => s + g.cpuMs, 0);
  const serverCpu = cpuDelta(r.c0, r.c1, r.pid);
  const fakeCpu = cpuDelta(r.c0, r.c1, r.fakePid);
  const benchCpu = cpuDelta(r.c0, r.c1, process.pid);
  const pct = (ms: number): number => (ms / r.windowMs) * 100;
  const voiceSeconds = sum((t) => t.packetsSent * UPLINK_FRAME_MS + t.frames * DOWNLINK_FRAME_MS) / 1000;
  const perDeviceSecond = (ms: number): number => (voiceSeconds > 0 ? ms / voiceSeconds : NaN);
  const lagP99 = metricValue(r.m1, 'linus_event_loop_lag_p99_seconds') * 1000;
  return {
    devices: r.n,
    round: r.round,
    connected: r.connected,
    connectFailed: r.connectFailed,
    ...(r.connectFirstError ? { connectFirstError: r.connectFirstError } : {}),
    connectSeconds: r.connectMs / 1000,
    generators: r.gens.length,
    startAt: r.startAt,
    windowSeconds: r.windowMs / 1000,
    turns: {
      started: turns.length,
      completed,
      completedPct: turns.length ? (completed / turns.length) * 100 : 0,
      outcomes,
      serverOutcomes,
    },
    server: {
      stages,
      totalBuckets: perBucketMs(stage('total')),
      serverStageShareLe5ms: shareAtMost(serverStage, 0.005) * 100,
      serverStageShareLe25ms: shareAtMost(serverStage, 0.025) * 100,
      downlinkFrames: frames,
      lateFrames: late,
      lateFramesPct: frames ? (late / frames) * 100 : NaN,
      loopLagP99Ms: lagP99,
      loopLagMaxMs: metricValue(r.m1, 'linus_event_loop_lag_max_seconds') * 1000,
      loopLagP99ExcessMs: Math.max(0, lagP99 - LAG_RESOLUTION_MS),
      cpuPct: pct(serverCpu),
      // From the same two readings as its split (the window's snapshot is a moment apart: a 10 ms tick between
      // them was a visible gap in short runs).
      cpuMsPerDeviceSecond: perDeviceSecond(r.mainThreadCpuMs + r.otherThreadsCpuMs),
      mainThreadCpuMsPerDeviceSecond: perDeviceSecond(r.mainThreadCpuMs),
      otherThreadsCpuMsPerDeviceSecond: perDeviceSecond(r.otherThreadsCpuMs),
      cpuPeakPct: r.peak,
      rssMiB: r.rss / 1048576,
      peakRssMiB: peakRssBytes(r.pid) / 1048576,
      threads: r.threads,
      fds: r.fds,
      uplinkDecodeErrors: delta('linus_uplink_decode_errors_total'),
      sendFailures: delta('linus_send_failures_total'),
      providerErrors: providerErrors(r.m0, r.m1),
      healthy: r.healthy,
    },
    client: {
      lastSpeechToFirstFrameMs: quantiles(ok.map((t) => diff(t.lastSpeechSent, t.firstFrame))),
      vadEndToFirstFrameMs: quantiles(ok.map((t) => diff(t.vadEndSent, t.firstFrame))),
      sttToFirstFrameMs: quantiles(ok.map((t) => diff(t.stt, t.firstFrame))),
      framesPerTurn: ok.length ? ok.reduce((s, t) => s + t.frames, 0) / ok.length : NaN,
      intervals,
      lateIntervals,
      lateIntervalsPct: intervals ? (lateIntervals / intervals) * 100 : NaN,
      intervalP99Ms: intervalHist.percentile(0.99) / 1000,
      intervalMaxMs: turns.reduce((m, t) => Math.max(m, t.maxIntervalMs), 0),
      maxLeadMs: turns.reduce((m, t) => Math.max(m, t.maxLeadMs), 0),
      underruns: sum((t) => t.underruns),
      decodeErrors: sum((t) => t.decodeErrors),
      lostDevices: r.gens.reduce((s, g) => s + g.lost, 0),
      otherMessages: r.gens.reduce((s, g) => s + g.otherMessages, 0),
    },
    load: {
      generatorCpuPct: pct(genCpu),
      generatorLoopLagP99Ms: Math.max(...r.gens.map((g) => g.loopLagP99Ms)),
      generatorLoopLagMaxMs: Math.max(...r.gens.map((g) => g.loopLagMaxMs)),
      uplinkSendLateP99Ms: sendLate.percentile(0.99) / 1000,
      fakeCpuPct: pct(fakeCpu),
      benchCpuPct: pct(benchCpu),
      otherCpuPct: pct(Math.max(0, r.c1.box - r.c0.box - serverCpu - genCpu - fakeCpu - benchCpu)),
    },
    lateShare: mergeTimelines(r.gens.flatMap((g) => (g.timeline ? [g.timeline] : []))),
  };
}

/**
 * Correctness of a level, whatever the load (capacity shortfalls are targets, not failures): the server stayed
 * up, no socket was closed under a device, no audio was corrupt. Returns the failures.
 */
export function levelFailures(l: LevelResult): string[] {
  const f: string[] = [];
  const at = `${l.devices} devices`;
  if (!l.server.healthy) f.push(`${at}: the server no longer answered /health after the level`);
  if (l.turns.outcomes.closed)
    f.push(`${at}: ${l.turns.outcomes.closed} turns ended with the socket closed by the server`);
  if (l.client.lostDevices) f.push(`${at}: ${l.client.lostDevices} devices lost their connection`);
  if (l.client.decodeErrors) f.push(`${at}: ${l.client.decodeErrors} downlink frames did not decode`);
  if (l.server.uplinkDecodeErrors)
    f.push(`${at}: ${l.server.uplinkDecodeErrors} uplink packets did not decode on the server`);
  if (l.turns.outcomes.no_audio) f.push(`${at}: ${l.turns.outcomes.no_audio} turns ended with tts stop but no audio`);
  return f;
}
