/**
 * Voice load benchmark: N simulated talking devices against a Linus server process, for N = 10, 100, 300, 500
 * (one server, devices reconnected per level). Real Opus up and down, Silero VAD in the server, and fake
 * OpenAI-compatible ASR/LLM/TTS (bench/fake-providers.ts, a process of its own) with zero or realistic delays.
 *   - the server (dist/, as shipped) is pinned to CPU 0; load generators (bench/voice-client.ts), the fake
 *     providers and this process run on the other CPUs;
 *   - every device streams a flite utterance as 60 ms Opus packets in real time, waits for `tts stop`, repeats;
 *   - the server's own numbers come from /metrics (histogram bucket deltas between two scrapes), CPU and RSS
 *     from /proc; the client's from the devices' clocks.
 * It prints numbers and asserts nothing. Run: npm run bench:voice -- [--levels 10,100,300,500] [--json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { validateConfig } from '../src/config/load.js';
import { createSileroVad } from '../src/providers/vad/silero.js';
import { createOpusDecoder, createOpusEncoder } from '../src/voice/opus.js';
import { readWav } from '../src/voice/wav.js';
import { cpuLayout, installExitHandlers, nextMessage, note, pinSelf, send, spawnNode, stopChild, type Child } from './lib/children.js';
import { buildDist, health, startLinus, waitForConnections, type LinusProcess } from './lib/linus-server.js';
import { cpuDelta, cpuSnapshot, fdHardLimit, openFds, peakRssBytes, rssBytes, threadCount, type CpuSnapshot } from './lib/proc-stats.js';
import { byLabel, histogram, histogramDelta, histogramQuantile, metricSum, metricValue, scrape, shareAtMost, type HistogramData, type Sample } from './lib/prom.js';
import { Histogram } from './shared.js';
import type { FromFake, FromVoiceClient, ToFake, ToVoiceClient, TurnOutcome, TurnRecord, Utterance, VoiceClientConfig } from './voice-shared.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `usage: npm run bench:voice -- [options]
  --levels LIST          device counts, run in this order on one server (10,100,300,500)
  --provider-delay D     zero | realistic (zero): zero for the server-latency targets; realistic = ASR 300 ms,
                         LLM first token 400 ms then a token per 30 ms, TTS first audio 200 ms
  --turns N              turns per device per level (3)
  --seconds N            instead of --turns: keep starting turns for N s per level (0 = use --turns)
  --per-generator N      devices per load-generator process (250)
  --stagger N            device starts spread over the first N s of a level (7: about one turn cycle, so that
                         devices are spread over the phases of a turn; shorter bunches them into a herd)
  --pause N              ms between a device's tts stop and its next listen start (0)
  --turn-timeout N       s after its last uplink packet before a turn counts as timed out (30)
  --decode MODE          downlink Opus decoded by the devices: first (of each turn) | all | none (first)
  --utterance TEXT       what the devices say (flite voice slt) ("what time is it")
  --min-completed N      stop escalating after a level with fewer than N % of turns completed (50)
  --rounds N             quiet rounds wanted per level; the median (by client latency p50) is reported, or the
                         least disturbed round when none was quiet (1)
  --max-rounds N         runs per level at most while looking for quiet ones (2)
  --quiet N              a round is quiet when other work on the box used < N % of a core (25)
  --warmup on|off        one unmeasured 2-device turn before the first level (VAD model load, JIT) (on)
  --server-node-args=S   extra node flags for the server (note the =), e.g.
                         --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (written when the server exits)
  --pin on|off           server on CPU 0, everything else on the other CPUs, with taskset (on)
  --timeout N            hard limit for the whole run in seconds (1800)
  --json                 print machine-readable results instead of the table`;

function parseFlags() {
  try {
    return parseArgs({
      options: {
        levels: { type: 'string', default: '10,100,300,500' },
        'provider-delay': { type: 'string', default: 'zero' },
        turns: { type: 'string', default: '3' },
        seconds: { type: 'string', default: '0' },
        'per-generator': { type: 'string', default: '250' },
        stagger: { type: 'string', default: '7' },
        pause: { type: 'string', default: '0' },
        'turn-timeout': { type: 'string', default: '30' },
        decode: { type: 'string', default: 'first' },
        utterance: { type: 'string', default: 'what time is it' },
        'min-completed': { type: 'string', default: '50' },
        rounds: { type: 'string', default: '1' },
        'max-rounds': { type: 'string', default: '2' },
        quiet: { type: 'string', default: '25' },
        warmup: { type: 'string', default: 'on' },
        'server-node-args': { type: 'string', default: '' },
        pin: { type: 'string', default: 'on' },
        timeout: { type: 'string', default: '1800' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${HELP}\n`);
    process.exit(2);
  }
}
const flags = parseFlags();
if (flags.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

function num(name: keyof typeof flags, min: number, max: number, value = flags[name]): number {
  const v = Number(value);
  if (!Number.isFinite(v) || v < min || v > max) {
    process.stderr.write(`bench: --${name} must be a number in ${min}..${max}, got "${String(value)}"\n`);
    process.exit(2);
  }
  return v;
}
function oneOf<T extends string>(name: keyof typeof flags, allowed: readonly T[]): T {
  const v = String(flags[name]);
  if (!allowed.includes(v as T)) {
    process.stderr.write(`bench: --${name} must be one of ${allowed.join(', ')}, got "${v}"\n`);
    process.exit(2);
  }
  return v as T;
}

const LEVELS = flags.levels.split(',').map((s) => num('levels', 1, 20_000, s.trim()));
const DELAY = oneOf('provider-delay', ['zero', 'realistic'] as const);
const TURNS = num('turns', 1, 1000);
const SECONDS = num('seconds', 0, 3600);
const PER_GEN = num('per-generator', 1, 5000);
const STAGGER_MS = num('stagger', 0, 120) * 1000;
const PAUSE_MS = num('pause', 0, 60_000);
const TURN_TIMEOUT_MS = num('turn-timeout', 1, 600) * 1000;
const DECODE = oneOf('decode', ['first', 'all', 'none'] as const);
const MIN_COMPLETED = num('min-completed', 0, 100) / 100;
const ROUNDS = num('rounds', 1, 20);
const MAX_ROUNDS = Math.max(ROUNDS, num('max-rounds', 1, 50));
const QUIET_PCT = num('quiet', 0, 1000);
const WARMUP = oneOf('warmup', ['on', 'off'] as const) === 'on';
const TIMEOUT_S = num('timeout', 10, 86_400);
const CPU = cpuLayout(flags.pin !== 'off');

/** The issue's targets, printed beside the numbers. */
const TARGETS = {
  devices: 500,
  turnsCompletedPct: 100,
  lateFramesPct: 1,
  latencyAtDevices: 100,
  serverP50Ms: 5,
  serverP99Ms: 25,
  loopLagP99Ms: 20,
};
const LATE_MS = 65;
/** Sampling interval of the server's monitorEventLoopDelay (src/observability/metrics.ts); its values include it. */
const LAG_RESOLUTION_MS = 10;
const UPLINK_FRAME_MS = 60;
const LEAD_SILENCE_MS = 240;
const TAIL_SILENCE_MS = 1200;

const tempDirs: string[] = [];
let server: LinusProcess | undefined;
let fake: Child<FromFake> | undefined;

const finish = installExitHandlers(TIMEOUT_S, async () => {
  // The server first and gracefully: a --cpu-prof profile is only written on a clean exit.
  if (server) await server.stop(15_000);
  if (fake) await stopChild(fake, 3000);
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- the utterance

/** flite → 16 kHz PCM → silence + speech + silence → 60 ms Opus packets; where speech ends; where the VAD will. */
async function prepareUtterance(dir: string): Promise<Utterance & { path: string }> {
  const wavPath = join(dir, 'utterance.wav');
  execFileSync('flite', ['-voice', 'slt', '-t', flags.utterance, '-o', wavPath]);
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
    text: flags.utterance,
    packets: packets.map((p) => p.toString('base64')),
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
    note(`could not find the VAD end offline (${(err as Error).message}); the VAD-end latency column stays empty`);
    return null;
  }
}

// ---------------------------------------------------------------- fake providers and the server

async function startFake(): Promise<{ child: Child<FromFake>; port: number }> {
  const child = spawnNode<FromFake>('fake providers', ['--import', 'tsx', 'bench/fake-providers.ts', '--delay', DELAY], { cwd: ROOT, ipc: true, cpuList: CPU.load }, CPU.pinned);
  const { port } = await nextMessage(child, 'listening', 30_000);
  return { child, port };
}

function serverConfig(fakePort: number): string {
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
  const { warnings } = validateConfig(raw); // a mistake here should fail now, not as a server that will not start
  for (const w of warnings) note(`config warning: ${w}`);
  return `# written by bench/voice.ts\n${toYaml(raw)}`;
}

// ---------------------------------------------------------------- one level

interface GeneratorResult extends Extract<FromVoiceClient, { kind: 'result' }> {
  cpuMs: number;
}

interface Quantiles {
  p50: number;
  p99: number;
  n: number;
}

interface LevelResult {
  devices: number;
  round: number;
  connected: number;
  connectFailed: number;
  connectFirstError?: string;
  connectSeconds: number;
  generators: number;
  windowSeconds: number;
  turns: { started: number; completed: number; completedPct: number; outcomes: Partial<Record<TurnOutcome, number>>; serverOutcomes: Record<string, number> };
  /** Server-side stages (ms) from linus_turn_stage_seconds bucket deltas; shares are of turns ≤ the bound. */
  server: {
    stages: Record<string, Quantiles & { meanMs: number }>;
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
    cpuPeakPct: number;
    rssMiB: number;
    peakRssMiB: number;
    threads: number;
    fds: number;
    uplinkDecodeErrors: number;
    sendFailures: number;
    /** linus_provider_errors_total deltas by kind:reason. */
    providerErrors: Record<string, number>;
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
  load: { generatorCpuPct: number; generatorLoopLagP99Ms: number; generatorLoopLagMaxMs: number; uplinkSendLateP99Ms: number; fakeCpuPct: number; benchCpuPct: number; otherCpuPct: number };
}

const split = (total: number, parts: number): number[] =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0)).filter((n) => n > 0);

function quantiles(values: number[]): Quantiles {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (p: number): number => (s.length ? s[Math.max(0, Math.ceil(p * s.length) - 1)]! : NaN);
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

function stageStats(h: HistogramData): Quantiles & { meanMs: number } {
  return { p50: histogramQuantile(h, 0.5) * 1000, p99: histogramQuantile(h, 0.99) * 1000, n: h.count, meanMs: h.count ? (h.sum / h.count) * 1000 : NaN };
}

let idBase = 1_000_000;

async function runLevel(srv: LinusProcess, utterance: Utterance & { path: string }, n: number, round: number, turns = TURNS, seconds = SECONDS): Promise<LevelResult> {
  const parts = split(n, Math.ceil(n / PER_GEN));
  let firstIndex = 0;
  const gens = parts.map((count, i) => {
    const cfg: VoiceClientConfig = {
      url: srv.url('/xiaozhi/v1/', 'ws'),
      utterancePath: utterance.path,
      count,
      firstId: idBase + firstIndex,
      firstIndex,
      levelSize: n,
      turns,
      seconds,
      staggerMs: STAGGER_MS,
      pauseMs: PAUSE_MS,
      turnTimeoutMs: TURN_TIMEOUT_MS,
      connectTimeoutMs: 20_000,
      concurrency: 50,
      decode: DECODE,
    };
    firstIndex += count;
    return spawnNode<FromVoiceClient>(`voice generator ${i}`, ['--import', 'tsx', 'bench/voice-client.ts'], { cwd: ROOT, ipc: true, env: { BENCH_VOICE: JSON.stringify(cfg) }, cpuList: CPU.load }, CPU.pinned);
  });
  idBase += n + 1000; // fresh device ids every level: no handover from a connection still closing
  try {
    const ready = await Promise.all(gens.map((g) => nextMessage(g, 'ready', 60_000 + n * 100)));
    const connected = ready.reduce((s, r) => s + r.connected, 0);
    const connectFailed = ready.reduce((s, r) => s + r.failed, 0);
    const connectFirstError = ready.find((r) => r.firstError)?.firstError;
    if (connectFailed) note(`${n} devices: ${connectFailed} failed to connect (first: ${connectFirstError})`);
    const pids = [srv.child.pid, fake!.pid, process.pid, ...gens.map((g) => g.pid)];
    const m0 = await scrape(srv.url('/metrics')); // also restarts the server's event-loop lag window
    const c0 = cpuSnapshot(pids);
    // Server CPU once a second, for the busiest second.
    let peak = 0;
    let prev = c0;
    const sampler = setInterval(() => {
      const now = cpuSnapshot([srv.child.pid]);
      const pct = (cpuDelta(prev, now, srv.child.pid) / (now.at - prev.at)) * 100;
      if (now.at - prev.at > 500) peak = Math.max(peak, pct);
      prev = now;
    }, 1000);
    const startAt = Date.now() + 300;
    for (const g of gens) send<ToVoiceClient>(g, { kind: 'go', startAt });
    const utteranceMs = utterance.packets.length * UPLINK_FRAME_MS;
    const levelTimeout = 300 + STAGGER_MS + (seconds > 0 ? seconds * 1000 + utteranceMs + TURN_TIMEOUT_MS : turns * (utteranceMs + TURN_TIMEOUT_MS + PAUSE_MS + 10_000)) + 60_000;
    const results = await Promise.all(gens.map((g) => nextMessage(g, 'result', levelTimeout)));
    const c1 = cpuSnapshot(pids);
    clearInterval(sampler);
    const m1 = await scrape(srv.url('/metrics'));
    const pid = srv.child.pid;
    const rss = rssBytes(pid);
    const fds = openFds(pid);
    const threads = threadCount(pid);
    const windowMs = c1.at - c0.at;
    const gen: GeneratorResult[] = results.map((r, i) => ({ ...r, cpuMs: cpuDelta(c0, c1, gens[i]!.pid) }));
    return summarize({ n, round, connected, connectFailed, connectFirstError, connectMs: Math.max(...ready.map((r) => r.ms)), gens: gen, m0, m1, c0, c1, windowMs, rss, fds, threads, peak, pid });
  } finally {
    await Promise.all(gens.map((g) => stopChild(g, 3000)));
    const left = await waitForConnections(srv.port, 0, 30_000);
    if (left) note(`${left} connections still open on the server 30 s after level ${n}`);
  }
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
  windowMs: number;
  rss: number;
  fds: number;
  threads: number;
  peak: number;
  pid: number;
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

  const stage = (name: string): HistogramData => histogramDelta(histogram(r.m1, 'linus_turn_stage_seconds', { stage: name }), histogram(r.m0, 'linus_turn_stage_seconds', { stage: name }));
  const delta = (name: string, labels: Record<string, string> = {}): number => metricSum(r.m1, name, labels) - metricSum(r.m0, name, labels);
  const stages: Record<string, Quantiles & { meanMs: number }> = {};
  for (const s of ['server', 'total', 'asr', 'llm', 'tts', 'send']) stages[s] = stageStats(stage(s));
  const serverStage = stage('server');
  const before = byLabel(r.m0, 'linus_turns_total', 'outcome');
  const serverOutcomes: Record<string, number> = {};
  for (const [k, v] of byLabel(r.m1, 'linus_turns_total', 'outcome')) if (v - (before.get(k) ?? 0)) serverOutcomes[k] = v - (before.get(k) ?? 0);
  const frames = delta('linus_downlink_frames_total');
  const late = delta('linus_downlink_late_frames_total');
  const genCpu = r.gens.reduce((s, g) => s + g.cpuMs, 0);
  const serverCpu = cpuDelta(r.c0, r.c1, r.pid);
  const fakeCpu = cpuDelta(r.c0, r.c1, fake!.pid);
  const benchCpu = cpuDelta(r.c0, r.c1, process.pid);
  const pct = (ms: number): number => (ms / r.windowMs) * 100;
  return {
    devices: r.n,
    round: r.round,
    connected: r.connected,
    connectFailed: r.connectFailed,
    ...(r.connectFirstError ? { connectFirstError: r.connectFirstError } : {}),
    connectSeconds: r.connectMs / 1000,
    generators: r.gens.length,
    windowSeconds: r.windowMs / 1000,
    turns: { started: turns.length, completed, completedPct: turns.length ? (completed / turns.length) * 100 : 0, outcomes, serverOutcomes },
    server: {
      stages,
      serverStageShareLe5ms: shareAtMost(serverStage, 0.005) * 100,
      serverStageShareLe25ms: shareAtMost(serverStage, 0.025) * 100,
      downlinkFrames: frames,
      lateFrames: late,
      lateFramesPct: frames ? (late / frames) * 100 : NaN,
      loopLagP99Ms: metricValue(r.m1, 'linus_event_loop_lag_p99_seconds') * 1000,
      loopLagMaxMs: metricValue(r.m1, 'linus_event_loop_lag_max_seconds') * 1000,
      loopLagP99ExcessMs: Math.max(0, metricValue(r.m1, 'linus_event_loop_lag_p99_seconds') * 1000 - LAG_RESOLUTION_MS),
      cpuPct: pct(serverCpu),
      cpuPeakPct: r.peak,
      rssMiB: r.rss / 1048576,
      peakRssMiB: peakRssBytes(r.pid) / 1048576,
      threads: r.threads,
      fds: r.fds,
      uplinkDecodeErrors: delta('linus_uplink_decode_errors_total'),
      sendFailures: delta('linus_send_failures_total'),
      providerErrors: providerErrors(r.m0, r.m1),
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
  };
}

function providerErrors(before: Sample[], after: Sample[]): Record<string, number> {
  const key = (s: Sample): string => `${s.labels.kind ?? '?'}:${s.labels.reason ?? '?'}`;
  const prev = new Map(before.filter((s) => s.name === 'linus_provider_errors_total').map((s) => [key(s), s.value]));
  const out: Record<string, number> = {};
  for (const s of after) if (s.name === 'linus_provider_errors_total' && s.value - (prev.get(key(s)) ?? 0) > 0) out[key(s)] = s.value - (prev.get(key(s)) ?? 0);
  return out;
}

/** Runs a level until it has ROUNDS quiet rounds or MAX_ROUNDS runs; the median quiet round (by client p50). */
async function levelRounds(srv: LinusProcess, utterance: Utterance & { path: string }, n: number): Promise<{ chosen: LevelResult; rounds: LevelResult[]; quiet: number }> {
  const rounds: LevelResult[] = [];
  const quiet = (): LevelResult[] => rounds.filter((x) => x.load.otherCpuPct < QUIET_PCT);
  for (let i = 0; i < MAX_ROUNDS && quiet().length < ROUNDS; i++) {
    note(`level ${n} devices, round ${i + 1}: connecting`);
    const r = await runLevel(srv, utterance, n, i + 1);
    rounds.push(r);
    note(
      `level ${n} round ${i + 1}: ${r.turns.completed}/${r.turns.started} turns, server p50 ${fmt(r.server.stages.server!.p50, 1)} ms, ` +
        `late ${fmt(r.client.lateIntervalsPct, 2)} %, loop lag p99 ${fmt(r.server.loopLagP99Ms, 1)} ms, server CPU ${fmt(r.server.cpuPct)} %, other CPU ${fmt(r.load.otherCpuPct)} %`,
    );
    if (r.turns.completedPct < MIN_COMPLETED * 100) break; // a failing level is not repeated
  }
  // The median quiet round; with none quiet, the least disturbed one.
  const pool = quiet();
  const chosen = pool.length
    ? [...pool].sort((a, b) => (a.client.lastSpeechToFirstFrameMs.p50 || 0) - (b.client.lastSpeechToFirstFrameMs.p50 || 0))[Math.floor(pool.length / 2)]!
    : [...rounds].sort((a, b) => a.load.otherCpuPct - b.load.otherCpuPct)[0]!;
  return { chosen, rounds, quiet: quiet().length };
}

// ---------------------------------------------------------------- report

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');
/** p50 / p99, with decimals only for small values so that a cell stays narrow. */
const pair = (q: Quantiles, digits = 0): string => (q.n ? `${fmt(q.p50, q.p50 >= 100 ? 0 : digits)} / ${fmt(q.p99, q.p99 >= 100 ? 0 : digits)}` : '-');

interface Results {
  node: string;
  cpus: number;
  pinned: boolean;
  cpuLayout: { server: string; load: string };
  fdHardLimit: number;
  providerDelay: 'zero' | 'realistic';
  turnsPerDevice: number;
  seconds: number;
  utterance: { text: string; packets: number; speechMs: number; lastSpeechPacket: number; vadEndPacket: number | null };
  serverNodeArgs: string;
  levels: { devices: number; chosen: LevelResult; quietRounds: number; rounds: LevelResult[] }[];
  stoppedEarly?: string;
  providerRequests?: Record<string, number>;
  targets: typeof TARGETS;
  verdicts: { target: string; met: boolean | null; detail: string }[];
}

function verdicts(r: Results): Results['verdicts'] {
  const at = (n: number): LevelResult | undefined => r.levels.find((l) => l.devices === n)?.chosen;
  const out: Results['verdicts'] = [];
  const top = at(TARGETS.devices);
  const missing = `${TARGETS.devices} devices not run${r.stoppedEarly ? ` (${r.stoppedEarly})` : ''}`;
  out.push(
    top
      ? { target: `${TARGETS.devices} devices: 100 % turns completed`, met: top.turns.completed === top.turns.started && top.connected === TARGETS.devices, detail: `${top.turns.completed}/${top.turns.started} (${fmt(top.turns.completedPct, 1)} %), ${top.connected} connected` }
      : { target: `${TARGETS.devices} devices: 100 % turns completed`, met: false, detail: missing },
  );
  out.push(
    top
      ? { target: `${TARGETS.devices} devices: late frames < ${TARGETS.lateFramesPct} % (client, > ${LATE_MS} ms)`, met: top.client.lateIntervalsPct < TARGETS.lateFramesPct, detail: `${fmt(top.client.lateIntervalsPct, 2)} % (server's own count ${fmt(top.server.lateFramesPct, 2)} %)` }
      : { target: `${TARGETS.devices} devices: late frames < ${TARGETS.lateFramesPct} %`, met: false, detail: missing },
  );
  const mid = at(TARGETS.latencyAtDevices);
  const zero = r.providerDelay === 'zero' ? '' : ' (measured with realistic provider delays; the target is for zero-delay providers)';
  // Both readings of "server-added": the stage that subtracts provider waits, and VAD end → first frame, which
  // with zero-delay providers is all server (plus three localhost round trips to the fake).
  for (const [stageName, what] of [['server', 'stage "server" (total − asr − provider waits)'], ['total', 'stage "total" (VAD end → first frame)']] as const) {
    for (const [q, limit] of [['p50', TARGETS.serverP50Ms], ['p99', TARGETS.serverP99Ms]] as const) {
      const v = mid?.server.stages[stageName]?.[q];
      out.push({
        target: `${TARGETS.latencyAtDevices} devices: server-added latency ${q} ≤ ${limit} ms, ${what}`,
        met: mid && v !== undefined && Number.isFinite(v) ? v <= limit : mid ? null : false,
        detail: mid ? `${fmt(v ?? NaN, 1)} ms${stageName === 'total' ? ` (client clocks, VAD-end frame → first frame: ${fmt(mid.client.vadEndToFirstFrameMs[q], 1)} ms)` : ''}${zero}` : `${TARGETS.latencyAtDevices} devices not run`,
      });
    }
  }
  const lag = r.levels.map((l) => `${l.devices}: ${fmt(l.chosen.server.loopLagP99Ms, 1)} ms (${fmt(l.chosen.server.loopLagP99ExcessMs, 1)} without the ${LAG_RESOLUTION_MS} ms sampling interval)`).join(', ');
  out.push({ target: `event-loop lag p99 ≤ ${TARGETS.loopLagP99Ms} ms, as /metrics reports it (every level)`, met: r.levels.length ? r.levels.every((l) => l.chosen.server.loopLagP99Ms <= TARGETS.loopLagP99Ms) : null, detail: lag || 'no level run' });
  return out;
}

function printTable(r: Results): void {
  const L = r.levels.map((l) => l.chosen);
  const width = 17;
  const head = (label: string): string => `  ${label.padEnd(44)}`;
  const row = (label: string, cells: string[], target = ''): string => `${head(label)}${cells.map((c) => c.padStart(width)).join('')}  ${target}`.trimEnd();
  const col = (f: (l: LevelResult) => string): string[] => L.map(f);
  const out: string[] = [];
  out.push(
    `Linus voice load benchmark: node ${r.node}, ${r.cpus} CPUs, ${r.pinned ? `server pinned to CPU ${r.cpuLayout.server}, generators + fake providers + bench on CPU ${r.cpuLayout.load}` : 'no CPU pinning'}, all on 127.0.0.1`,
    `Providers: fake OpenAI-compatible, ${r.providerDelay === 'zero' ? 'zero delay' : 'realistic delays (ASR 300 ms, LLM first token 400 ms + 30 ms/token, TTS first audio 200 ms)'}; Silero VAD in the server; reply = 2 sentences × 1.5–3 s of 24 kHz speech`,
    `Each device: "${r.utterance.text}" (${fmt(r.utterance.speechMs)} ms of speech, ${r.utterance.packets} packets of 60 ms incl. ${LEAD_SILENCE_MS} ms + ${TAIL_SILENCE_MS} ms silence), ${r.seconds > 0 ? `turns for ${r.seconds} s` : `${r.turnsPerDevice} turns`}, starts staggered over ${STAGGER_MS / 1000} s`,
    '',
  );
  out.push(row('devices', col((l) => String(l.devices)), 'target'));
  out.push(row('connected', col((l) => String(l.connected))));
  out.push(row('turns completed / started', col((l) => `${l.turns.completed}/${l.turns.started}`), `100 % at ${TARGETS.devices}`));
  out.push(row('  completed (%)', col((l) => fmt(l.turns.completedPct, 1))));
  const outcome = (k: TurnOutcome): string[] => col((l) => String(l.turns.outcomes[k] ?? 0));
  out.push(row('  no reply (no stt/tts within the timeout)', outcome('no_reply')));
  out.push(row('  tts start but no tts stop (timeout)', outcome('timeout')));
  out.push(row('  tts stop without any audio frame', outcome('no_audio')));
  out.push(row('  socket closed', outcome('closed')));
  out.push(row('  server linus_turns_total', col((l) => Object.entries(l.turns.serverOutcomes).map(([k, v]) => `${k.slice(0, 4)} ${v}`).join(' ') || '-')));
  out.push('  Latency, server metrics (ms, p50 / p99 from histogram buckets 1, 2.5, 5, 10, 25, 50, 100, 250 ms...)');
  out.push(row('server-added (stage "server")', col((l) => pair(l.server.stages.server!, 1)), `p50 ≤ ${TARGETS.serverP50Ms}, p99 ≤ ${TARGETS.serverP99Ms} at ${TARGETS.latencyAtDevices}`));
  out.push(row('  turns with server-added ≤ 5 / ≤ 25 ms (%)', col((l) => `${fmt(l.server.serverStageShareLe5ms)} / ${fmt(l.server.serverStageShareLe25ms)}`)));
  out.push(row('VAD end → first frame (stage "total")', col((l) => pair(l.server.stages.total!, 1))));
  out.push(row('  asr (VAD end → transcript)', col((l) => pair(l.server.stages.asr!, 1))));
  out.push(row('  llm (→ first token)', col((l) => pair(l.server.stages.llm!, 1))));
  out.push(row('  tts (→ first audio)', col((l) => pair(l.server.stages.tts!, 1))));
  out.push(row('  send (first audio → first frame out)', col((l) => pair(l.server.stages.send!, 1))));
  out.push('  Latency, client clocks (ms, p50 / p99 over completed turns)');
  out.push(row('last speech frame sent → first reply frame', col((l) => pair(l.client.lastSpeechToFirstFrameMs))));
  out.push(row(`VAD-end frame sent → first reply frame`, col((l) => pair(l.client.vadEndToFirstFrameMs, 1))));
  out.push(row('stt received → first reply frame', col((l) => pair(l.client.sttToFirstFrameMs, 1))));
  out.push('  Downlink (client clocks)');
  out.push(row('frames per completed turn', col((l) => fmt(l.client.framesPerTurn))));
  out.push(row(`frame intervals > ${LATE_MS} ms (%)`, col((l) => fmt(l.client.lateIntervalsPct, 2)), `< ${TARGETS.lateFramesPct} % at ${TARGETS.devices}`));
  out.push(row('  late / intervals', col((l) => `${l.client.lateIntervals}/${l.client.intervals}`)));
  out.push(row('frame interval p99 / max (ms)', col((l) => `${fmt(l.client.intervalP99Ms, 1)} / ${fmt(l.client.intervalMaxMs)}`)));
  out.push(row('max downlink lead (ms)', col((l) => fmt(l.client.maxLeadMs)), 'pre-buffer is 3 frames = 180 ms'));
  out.push(row('buffer underruns (device ran dry)', col((l) => String(l.client.underruns))));
  out.push(row('late frames, server metric (%)', col((l) => fmt(l.server.lateFramesPct, 2))));
  out.push(row('downlink decode errors', col((l) => String(l.client.decodeErrors))));
  out.push('  Server process');
  out.push(row('event-loop lag p99 / max (ms, /metrics)', col((l) => `${fmt(l.server.loopLagP99Ms, 1)} / ${fmt(l.server.loopLagMaxMs)}`), `p99 ≤ ${TARGETS.loopLagP99Ms}`));
  out.push(row(`  p99 minus the ${LAG_RESOLUTION_MS} ms sampling interval`, col((l) => fmt(l.server.loopLagP99ExcessMs, 1))));
  out.push(row('CPU, % of a core (mean / busiest 1 s)', col((l) => `${fmt(l.server.cpuPct)} / ${fmt(l.server.cpuPeakPct)}`)));
  out.push(row('RSS at end of level / peak (MiB)', col((l) => `${fmt(l.server.rssMiB)} / ${fmt(l.server.peakRssMiB)}`)));
  out.push(row('threads / open fds', col((l) => `${l.server.threads} / ${l.server.fds}`)));
  out.push(row('uplink decode errors / send failures', col((l) => `${l.server.uplinkDecodeErrors} / ${l.server.sendFailures}`)));
  out.push(row('provider errors (kind:reason count)', col((l) => Object.entries(l.server.providerErrors).map(([k, v]) => `${k} ${v}`).join(' ') || '0')));
  out.push('  Load side (is the client the bottleneck?)');
  out.push(row('generator processes / CPU (% of a core)', col((l) => `${l.generators} / ${fmt(l.load.generatorCpuPct)}`)));
  out.push(row('generator loop lag p99 / max (ms, excess)', col((l) => `${fmt(l.load.generatorLoopLagP99Ms, 1)} / ${fmt(l.load.generatorLoopLagMaxMs)}`)));
  out.push(row('uplink packet send lateness p99 (ms)', col((l) => fmt(l.load.uplinkSendLateP99Ms, 1))));
  out.push(row('fake providers / bench CPU (%)', col((l) => `${fmt(l.load.fakeCpuPct)} / ${fmt(l.load.benchCpuPct)}`)));
  out.push(row('other busy CPU on the box (%)', col((l) => fmt(l.load.otherCpuPct)), `quiet < ${QUIET_PCT}`));
  out.push(row('measured window (s) / quiet rounds', col((l) => `${fmt(l.windowSeconds, 1)} / ${r.levels.find((x) => x.chosen === l)!.quietRounds}`)));
  out.push('');
  out.push(
    'Notes: stage "server" is total − asr − provider waits, all on the server\'s clock; time the event loop was blocked while a',
    '  provider answer waited to be read counts as provider wait, so under load it under-reports. With zero-delay providers,',
    '  stage "total" (and the client\'s VAD-end frame → first frame) is the server-added latency plus 3 localhost round trips.',
    '  The VAD-end frame is the uplink packet on which the server\'s VAD (same code, offline) ends the utterance.',
    ...(r.providerDelay === 'realistic'
      ? ['  With realistic delays, stage "server" also holds the LLM\'s time to stream the rest of the first sentence after its', '  first token (not provider wait on the server\'s books): only the zero-delay run measures server-added latency.']
      : []),
    '',
  );
  if (r.stoppedEarly) out.push(`Stopped escalating: ${r.stoppedEarly}`, '');
  out.push('Targets');
  for (const v of r.verdicts) out.push(`  ${(v.met === null ? 'n/a' : v.met ? 'met' : 'MISSED').padEnd(7)} ${v.target}: ${v.detail}`);
  if (r.levels.some((l) => !l.quietRounds)) out.push('', `WARNING: levels without a quiet round (other CPU ≥ ${QUIET_PCT} % of a core): ${r.levels.filter((l) => !l.quietRounds).map((l) => l.devices).join(', ')}; other work on the box skews them.`);
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  buildDist(ROOT);
  if (CPU.pinned) pinSelf(CPU.load);
  const dir = mkdtempSync(join(tmpdir(), 'linus-bench-voice-'));
  tempDirs.push(dir);
  const utterance = await prepareUtterance(dir);
  note(`utterance: ${utterance.packets.length} packets, speech ends at packet ${utterance.lastSpeechPacket}, server VAD ends it at packet ${utterance.vadEndPacket ?? '?'}`);
  const f = await startFake();
  fake = f.child;
  const nodeArgs = flags['server-node-args'].split(/\s+/).filter(Boolean);
  server = await startLinus({ root: ROOT, config: serverConfig(f.port), nodeArgs, cpuList: CPU.server, pin: CPU.pinned });
  note(`Linus pid ${server.child.pid} on port ${server.port}; fake providers pid ${fake.pid} (${DELAY} delay)`);
  if (WARMUP) {
    const w = await runLevel(server, utterance, 2, 0, 1, 0);
    note(`warm-up: ${w.turns.completed}/${w.turns.started} turns completed (not reported)`);
    if (!w.turns.completed) note(`warm-up completed no turn: ${JSON.stringify(w.turns.outcomes)}; server output: ${server.child.output().slice(-800)}`);
  }
  const r: Results = {
    node: process.version,
    cpus: cpus().length,
    pinned: CPU.pinned,
    cpuLayout: { server: CPU.server, load: CPU.load },
    fdHardLimit: fdHardLimit(),
    providerDelay: DELAY,
    turnsPerDevice: TURNS,
    seconds: SECONDS,
    utterance: { text: utterance.text, packets: utterance.packets.length, speechMs: utterance.speechMs, lastSpeechPacket: utterance.lastSpeechPacket, vadEndPacket: utterance.vadEndPacket },
    serverNodeArgs: flags['server-node-args'],
    levels: [],
    targets: TARGETS,
    verdicts: [],
  };
  for (const n of LEVELS) {
    if (n + 100 > r.fdHardLimit) {
      r.stoppedEarly = `${n} devices exceed the fd limit of ${r.fdHardLimit}`;
      break;
    }
    let level: Awaited<ReturnType<typeof levelRounds>>;
    try {
      level = await levelRounds(server, utterance, n);
    } catch (err) {
      r.stoppedEarly = `level ${n} failed: ${(err as Error).message}`;
      note(r.stoppedEarly);
      break;
    }
    r.levels.push({ devices: n, chosen: level.chosen, quietRounds: level.quiet, rounds: level.rounds });
    const c = level.chosen;
    if (c.turns.completedPct < MIN_COMPLETED * 100 || c.connected < n * MIN_COMPLETED) {
      r.stoppedEarly = `after ${n} devices: ${fmt(c.turns.completedPct, 1)} % of turns completed, ${c.connected} of ${n} connected (needs ≥ ${MIN_COMPLETED * 100} %)`;
      note(r.stoppedEarly);
      break;
    }
    if (!(await health(server.port))) {
      r.stoppedEarly = `after ${n} devices: the server no longer answers /health`;
      break;
    }
  }
  send<ToFake>(fake, { kind: 'counts' });
  r.providerRequests = (await nextMessage(fake, 'counts', 5000).catch(() => undefined))?.counts;
  r.verdicts = verdicts(r);
  if (flags.json) console.log(JSON.stringify(r, null, 2));
  else printTable(r);
}

main().then(
  () => finish(0),
  (err: unknown) => {
    note(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return finish(1);
  },
);
