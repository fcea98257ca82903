/**
 * faults: voice turns while the fake providers fail: --error-rate of ASR/LLM/TTS requests get HTTP 500,
 * --hang-rate never get an answer (half before the response, half after its first chunk). The server's provider
 * deadlines are short (--provider-timeout), so a hung call ends a turn quickly. Part of the devices are real voice
 * devices (bench/voice-client.ts: Opus up, Silero VAD in the server, Opus down), the rest type their turns
 * (`listen detect` with text) over real sockets. Correctness: every turn the server answered ends with `tts stop`,
 * no session is stuck, the server does not crash, each injected fault is counted in /metrics, and afterwards
 * (faults off) every device completes one more turn on the same connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  FromFake,
  FromVoiceClient,
  ToFake,
  ToVoiceClient,
  TurnOutcome,
  TurnRecord,
  VoiceClientConfig,
} from '../voice-shared.js';
import {
  cpuLayout,
  nextMessage,
  pinSelf,
  running,
  send,
  sleep,
  spawnNode,
  stopChild,
  type Child,
} from '../lib/children.js';
import { BenchDevice, healthOk, scrapeClose } from '../lib/device.js';
import { int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import type { Figure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import { cpuDelta, cpuSnapshot } from '../lib/proc-stats.js';
import { byLabel, metricSum, type Sample } from '../lib/prom.js';
import { split } from '../lib/stats.js';
import { prepareUtterance, voiceServerConfig } from '../lib/voice-load.js';

const options = {
  turns: { type: 'string', default: '1000' },
  devices: { type: 'string', default: '40' },
  'voice-share': { type: 'string', default: '0.5' },
  'error-rate': { type: 'string', default: '0.1' },
  'hang-rate': { type: 'string', default: '0.1' },
  'provider-timeout': { type: 'string', default: '1500' },
  'fault-seed': { type: 'string', default: '1' },
  'per-generator': { type: 'string', default: '250' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  turns: 'turns in all, spread over the devices (each device runs ceil(turns / devices))',
  devices: 'devices, all connected for the whole run',
  'voice-share': 'share of the devices that speak (real Opus, server VAD and ASR); the others type (listen detect)',
  'error-rate': 'share of provider requests (ASR, LLM, TTS) answered with HTTP 500',
  'hang-rate': 'share of provider requests never answered (until the server gives up)',
  'provider-timeout': "ms: the server's deadline for each provider call (timeout_ms of the ASR, LLM and TTS blocks)",
  'fault-seed':
    'seed of the fault draws (one sequence per endpoint: the n-th request of an endpoint gets the same fault in every run)',
  'per-generator': 'voice devices per load-generator process',
  ...SERVER_HELP,
};

const TYPED_TEXT = 'tell me the time please';
/** Reply audio per TTS request: short, so that a turn is quick; the audio path is the talk profile's subject. */
const AUDIO_MS = { min: 300, max: 600 };
/** The reply is split into at most this many segments (the first sentence is split early). */
const MAX_SEGMENTS = 3;
const SLACK_MS = 3000;

const profile: Profile = {
  name: 'faults',
  summary:
    'voice turns with injected provider errors and hangs: every turn ends with tts stop, none stuck, faults counted, sessions stay usable',
  options,
  help,
  // Seed 141 puts an error and a hang on the first few requests of every endpoint, so that ~20 turns meet all six.
  smokeDefaults: { turns: '20', devices: '10', 'fault-seed': '141', pin: 'off' },
  timeoutSec: (flags) => 300 + Number(flags.turns) * 2,
  run,
};
export default profile;

type Outcome = TurnOutcome;
interface Turns {
  outcomes: Partial<Record<Outcome, number>>;
  total: number;
}

const tally = (outcomes: Outcome[]): Turns => {
  const out: Partial<Record<Outcome, number>> = {};
  for (const o of outcomes) out[o] = (out[o] ?? 0) + 1;
  return { outcomes: out, total: outcomes.length };
};

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const turnsWanted = int(f, 'turns', 1, 1_000_000);
  const devices = int(f, 'devices', 1, 5000);
  const voiceShare = num(f, 'voice-share', 0, 1);
  const errorRate = num(f, 'error-rate', 0, 1);
  const hangRate = num(f, 'hang-rate', 0, 1 - errorRate);
  const providerTimeoutMs = int(f, 'provider-timeout', 100, 60_000);
  const faultSeed = int(f, 'fault-seed', 1, 2 ** 31);
  const perGenerator = int(f, 'per-generator', 1, 5000);
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);

  const voiceDevices = Math.round(devices * voiceShare);
  const typedDevices = devices - voiceDevices;
  const turnsPerDevice = Math.ceil(turnsWanted / devices);
  // A turn the server answered must end within its deadlines: LLM, then each segment's TTS, then the reply's audio.
  const turnTimeoutMs = providerTimeoutMs * (1 + MAX_SEGMENTS) + AUDIO_MS.max * MAX_SEGMENTS + SLACK_MS;
  // A voice turn whose ASR failed is answered (the fallback sentence) once the ASR deadline has passed.
  const replyTimeoutMs = providerTimeoutMs + 1500;

  const startedAt = new Date();
  const failures: string[] = [];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'linus-bench-faults-'));
  let fake: Child<FromFake> | undefined;
  let server: LinusProcess | undefined;
  const gens: Child<FromVoiceClient>[] = [];
  const typed: BenchDevice[] = [];
  try {
    ensureBuilt(ctx.root, ctx.serverFromSource);
    ctx.progress('faults: starting the fake providers and the server');
    fake = spawnNode<FromFake>(
      'fake providers',
      [
        '--import',
        'tsx',
        'bench/fake-providers.ts',
        '--delay',
        'zero',
        '--min-audio-ms',
        String(AUDIO_MS.min),
        '--max-audio-ms',
        String(AUDIO_MS.max),
        '--error-rate',
        String(errorRate),
        '--hang-rate',
        String(hangRate),
        '--fault-seed',
        String(faultSeed),
      ],
      { cwd: ctx.root, ipc: true, cpuList: cpu.load },
      cpu.pinned,
    );
    const utterance = voiceDevices ? prepareUtterance(dir, 'what time is it') : undefined;
    const { port: fakePort } = await nextMessage(fake, 'listening', 30_000, ctx.signal);
    const base = `http://127.0.0.1:${fakePort}/v1`;
    const timeout_ms = providerTimeoutMs;
    const config = voiceServerConfig(fakePort, {
      tts_timeout: Math.max(1, Math.ceil(providerTimeoutMs / 1000)),
      ASR: { BenchASR: { type: 'openai', base_url: base, model_name: 'whisper-1', timeout_ms } },
      LLM: { BenchLLM: { type: 'openai', base_url: base, model_name: 'bench-llm', api_key: 'bench', timeout_ms } },
      TTS: { BenchTTS: { type: 'openai', base_url: base, format: 'pcm', timeout_ms } },
    });
    server = await startLinus({
      root: ctx.root,
      config,
      fromSource: ctx.serverFromSource,
      nodeArgs: serverNodeArgs(f),
      cpuList: cpu.server,
      pin: cpu.pinned,
    });
    const srv = server;
    const wsUrl = srv.url('/xiaozhi/v1/', 'ws');

    // ---- devices: voice generators (real Opus) and typed devices (in this process)
    ctx.progress(`faults: connecting ${voiceDevices} voice and ${typedDevices} typed devices`);
    let firstIndex = 0;
    for (const [i, count] of split(voiceDevices, Math.ceil(voiceDevices / perGenerator)).entries()) {
      const cfg: VoiceClientConfig = {
        url: wsUrl,
        utterancePath: utterance!.path,
        count,
        firstId: 5_000_000 + firstIndex,
        firstIndex,
        levelSize: voiceDevices,
        turns: turnsPerDevice,
        seconds: 0,
        staggerMs: Math.min(2000, voiceDevices * 50),
        pauseMs: 200,
        turnTimeoutMs,
        replyTimeoutMs,
        keepOpen: true,
        connectTimeoutMs: 20_000,
        concurrency: 50,
        decode: 'first',
        progressEveryMs: 1000,
      };
      firstIndex += count;
      gens.push(
        spawnNode<FromVoiceClient>(
          `voice generator ${i}`,
          ['--import', 'tsx', 'bench/voice-client.ts'],
          { cwd: ctx.root, ipc: true, env: { BENCH_VOICE: JSON.stringify(cfg) }, cpuList: cpu.load },
          cpu.pinned,
        ),
      );
    }
    const [ready] = await Promise.all([
      Promise.all(gens.map((g) => nextMessage(g, 'ready', 60_000 + voiceDevices * 100, ctx.signal))),
      (async () => {
        for (let i = 0; i < typedDevices; i++)
          typed.push(await BenchDevice.connect({ url: wsUrl, deviceId: `bench-typed-${i}`, timeoutMs: 20_000 }));
      })(),
    ]);
    const voiceConnected = ready.reduce((s, r) => s + r.connected, 0);
    if (voiceConnected < voiceDevices)
      failures.push(
        `${voiceDevices - voiceConnected} voice devices did not connect (${ready.find((r) => r.firstError)?.firstError})`,
      );

    // ---- the fault round
    const m0 = await scrapeClose(srv.url('/metrics'));
    const pids = [srv.child.pid, fake.pid, process.pid, ...gens.map((g) => g.pid)];
    const c0 = cpuSnapshot(pids);
    ctx.log(
      `faults: ${turnsPerDevice} turns per device, ${voiceDevices} voice + ${typedDevices} typed devices, ${errorRate * 100} % errors + ${hangRate * 100} % hangs, provider deadline ${providerTimeoutMs} ms`,
    );
    const faultRound = await round(ctx, gens, typed, turnsPerDevice, turnTimeoutMs, 'faults');
    const c1 = cpuSnapshot(pids);
    const m1 = await scrapeClose(srv.url('/metrics'));
    send<ToFake>(fake, { kind: 'counts' });
    const injected = (await nextMessage(fake, 'counts', 5000, ctx.signal)).counts;

    // ---- faults off: one more turn on every device, on the same connections
    send<ToFake>(fake, { kind: 'faults', errorRate: 0, hangRate: 0 });
    await nextMessage(fake, 'faults', 5000, ctx.signal);
    ctx.log('faults: providers healthy again; one clean turn per device');
    const cleanRound = await round(ctx, gens, typed, 1, turnTimeoutMs, 'clean turn');
    send<ToFake>(fake, { kind: 'counts' });
    const after = (await nextMessage(fake, 'counts', 5000, ctx.signal)).counts;
    const alive = running(srv.child) && (await healthOk(srv.port));

    // ---- figures
    const figures: Figure[] = [];
    const fr = faultRound;
    const answered =
      fr.voice.filter((t) => t.stt !== undefined || t.ttsStart !== undefined || t.ttsStop !== undefined).length +
      fr.typed.filter((o) => o !== 'no_reply').length;
    const withStop = [...fr.voice.map((t) => t.outcome), ...fr.typed].filter(
      (o) => o === 'completed' || o === 'no_audio',
    ).length;
    const voiceOutcomes = tally(fr.voice.map((t) => t.outcome));
    const typedOutcomes = tally(fr.typed);
    const noReply = voiceOutcomes.outcomes.no_reply ?? 0;
    const typedNoReply = typedOutcomes.outcomes.no_reply ?? 0;
    const hungOrClosed =
      (voiceOutcomes.outcomes.timeout ?? 0) +
      (voiceOutcomes.outcomes.closed ?? 0) +
      (typedOutcomes.outcomes.timeout ?? 0) +
      (typedOutcomes.outcomes.closed ?? 0);
    const k = (kind: string, path: string): number => injected[`${kind} ${path}`] ?? 0;
    const P = { asr: '/v1/audio/transcriptions', llm: '/v1/chat/completions', tts: '/v1/audio/speech' };
    const inj = {
      asr: k('error', P.asr) + k('hang', P.asr),
      llm: k('error', P.llm) + k('hang', P.llm),
      tts: k('error', P.tts) + k('hang', P.tts),
    };
    const asrRequests = injected[P.asr] ?? 0;
    // Every voice turn sends one utterance, so one ASR request; then a no-reply turn is exactly an ASR fault.
    const oneAsrPerTurn = asrRequests === fr.voice.length;
    // An ASR failure is answered with the fallback sentence: a turn with no stt that still ends with tts stop.
    const fallbackTurns = fr.voice.filter((t) => t.stt === undefined && t.ttsStop !== undefined).length;
    const stuck = hungOrClosed + noReply + typedNoReply;
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      metricSum(m1, name, labels) - metricSum(m0, name, labels);
    const counted = {
      asr: delta('linus_provider_errors_total', { kind: 'asr' }),
      tts: delta('linus_provider_errors_total', { kind: 'tts' }),
      llm: delta('linus_provider_errors_total', { kind: 'llm' }),
    };
    const failedTurns = delta('linus_turns_total', { outcome: 'failed' });
    const serverOutcomes = outcomesDelta(m0, m1);
    const clean = [...cleanRound.voice.map((t) => t.outcome), ...cleanRound.typed];
    const cleanOk = clean.filter((o) => o === 'completed').length;
    const lostDevices = fr.lost + cleanRound.lost;

    const pct = (a: number, b: number): number => (b ? (a / b) * 100 : 100);
    figures.push(
      {
        name: 'turns run (voice / typed)',
        value: `${fr.voice.length + fr.typed.length} (${fr.voice.length} / ${fr.typed.length})`,
      },
      {
        name: 'answered turns that ended with tts stop',
        value: Number(pct(withStop, answered).toFixed(2)),
        unit: '%',
        target: '100 %',
        met: withStop === answered,
      },
      { name: '  answered / ended with tts stop', value: `${answered} / ${withStop}` },
      { name: 'stuck sessions (no tts stop within deadline + slack)', value: stuck, target: '0', met: stuck === 0 },
      { name: 'voice turns the server left unanswered', value: noReply, target: '0', met: noReply === 0 },
      {
        name: 'voice turns answered with the fallback sentence (ASR failed)',
        value: fallbackTurns,
        target: oneAsrPerTurn ? `= ASR faults injected (${inj.asr})` : `≤ ASR faults injected (${inj.asr})`,
        met: oneAsrPerTurn ? fallbackTurns === inj.asr : fallbackTurns <= inj.asr,
      },
      { name: 'server crashed', value: alive ? 'no' : 'yes', target: 'no', met: alive },
      {
        name: 'ASR faults counted (linus_provider_errors_total{kind="asr"}) / injected',
        value: `${counted.asr} / ${inj.asr}`,
        target: 'equal',
        met: counted.asr === inj.asr,
      },
      {
        name: 'TTS faults counted (linus_provider_errors_total{kind="tts"}) / injected',
        value: `${counted.tts} / ${inj.tts}`,
        target: 'equal',
        met: counted.tts === inj.tts,
      },
      {
        name: 'LLM + ASR faults → failed turns (linus_turns_total{outcome="failed"}) / injected',
        value: `${failedTurns} / ${inj.llm + inj.asr}`,
        target: 'equal',
        met: failedTurns === inj.llm + inj.asr,
      },
      {
        name: 'LLM faults in linus_provider_errors_total{kind="llm"} / injected',
        value: `${counted.llm} / ${inj.llm}`,
        target: 'equal',
        met: counted.llm === inj.llm,
      },
      {
        name: 'clean turn after the faults, per device (completed with audio)',
        value: `${cleanOk} / ${clean.length}`,
        target: `${devices} / ${devices}`,
        met: cleanOk === devices && clean.length === devices,
      },
      { name: 'devices whose connection dropped', value: lostDevices, target: '0', met: lostDevices === 0 },
      {
        name: 'faults injected: errors / hangs (asr, llm, tts)',
        value: `${k('error', P.asr)}/${k('hang', P.asr)}, ${k('error', P.llm)}/${k('hang', P.llm)}, ${k('error', P.tts)}/${k('hang', P.tts)}`,
      },
      {
        name: 'provider requests (asr, llm, tts)',
        value: `${asrRequests}, ${injected[P.llm] ?? 0}, ${injected[P.tts] ?? 0}`,
      },
      { name: 'device outcomes, voice', value: outcomeText(voiceOutcomes) },
      { name: 'device outcomes, typed', value: outcomeText(typedOutcomes) },
      {
        name: 'server turn outcomes (linus_turns_total)',
        value:
          Object.entries(serverOutcomes)
            .map(([o, n]) => `${o} ${n}`)
            .join(', ') || '-',
      },
    );
    if (!alive) failures.push(`the server is gone or unhealthy: ${srv.child.output().slice(-600)}`);
    if (withStop !== answered) failures.push(`${answered - withStop} answered turns did not end with tts stop`);
    if (stuck) failures.push(`${stuck} stuck turns (tts start without tts stop, closed, or unanswered)`);
    if (oneAsrPerTurn ? fallbackTurns !== inj.asr : fallbackTurns > inj.asr)
      failures.push(`${fallbackTurns} voice turns answered with the fallback for ${inj.asr} ASR faults`);
    if (counted.asr !== inj.asr)
      failures.push(`ASR faults: ${inj.asr} injected, ${counted.asr} counted in linus_provider_errors_total`);
    if (counted.tts !== inj.tts)
      failures.push(`TTS faults: ${inj.tts} injected, ${counted.tts} counted in linus_provider_errors_total`);
    if (failedTurns !== inj.llm + inj.asr)
      failures.push(`LLM + ASR faults: ${inj.llm + inj.asr} injected, ${failedTurns} turns failed`);
    if (cleanOk !== devices || clean.length !== devices)
      failures.push(`clean turn: ${cleanOk} of ${devices} devices completed it`);
    if (lostDevices) failures.push(`${lostDevices} devices lost their connection`);
    if (!oneAsrPerTurn)
      notes.push(
        `${asrRequests} ASR requests for ${fr.voice.length} voice turns (the VAD split or missed utterances): fallback turns can only be bounded by the ASR faults, not matched`,
      );
    notes.push(
      `Provider deadline ${providerTimeoutMs} ms on every block; a device gives a voice turn ${replyTimeoutMs} ms after its last packet to be answered at all, and an answered turn ${turnTimeoutMs} ms to end with tts stop.`,
      'A failed ASR call is answered with the fallback sentence (system_error_response; no stt) and ends with tts stop; those turns are matched against the ASR faults.',
      `Clean round: provider requests after it ${JSON.stringify(after)}.`,
    );
    const genCpu = gens.reduce((s, g) => s + cpuDelta(c0, c1, g.pid), 0) + cpuDelta(c0, c1, process.pid);
    return result(startedAt, figures, failures, notes, {
      generatorCpuPct: (genCpu / Math.max(1, c1.at - c0.at)) * 100,
      details: {
        injected,
        counted,
        failedTurns,
        serverOutcomes,
        voiceOutcomes,
        typedOutcomes,
        cleanOutcomes: tally(clean),
        turnTimeoutMs,
        replyTimeoutMs,
      },
    });
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    failures.push(`interrupted: ${(err as Error).message}`);
    return result(startedAt, [], failures, notes, {});
  } finally {
    for (const d of typed) d.terminate();
    await Promise.all(gens.map((g) => stopChild(g, 3000)));
    await server?.stop(10_000);
    if (fake) await stopChild(fake, 3000);
    rmSync(dir, { recursive: true, force: true });
  }
}

function result(
  startedAt: Date,
  figures: Figure[],
  failures: string[],
  notes: string[],
  extra: Partial<ProfileResult>,
): ProfileResult {
  return {
    profile: 'faults',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    notes,
    ok: failures.length === 0 && figures.length > 0,
    ...(failures.length ? { failures } : {}),
    ...extra,
  };
}

interface RoundResult {
  voice: TurnRecord[];
  typed: Outcome[];
  lost: number;
}

/** One round: every voice generator and every typed device runs `turns` turns; all finish before it resolves. */
async function round(
  ctx: ProfileContext,
  gens: Child<FromVoiceClient>[],
  typed: BenchDevice[],
  turns: number,
  turnTimeoutMs: number,
  label: string,
): Promise<RoundResult> {
  let typedDone = 0;
  let voiceDone = 0;
  const show = (): void => ctx.progress(`faults (${label}): ${voiceDone + typedDone} turns done`);
  const startAt = Date.now() + 200;
  for (const g of gens) send<ToVoiceClient>(g, { kind: 'go', startAt, turns });
  const timer = setInterval(() => {
    for (const g of gens) {
      for (let i = g.inbox.length - 1; i >= 0; i--) {
        const m = g.inbox[i]!;
        if (m.kind === 'progress') {
          g.inbox.splice(i, 1);
          voiceDone = m.turns;
        }
      }
    }
    show();
  }, 1000);
  try {
    const typedRuns = typed.map(async (dev) => {
      const out: Outcome[] = [];
      await sleep(200);
      for (let k = 0; k < turns && !ctx.signal.aborted; k++) {
        out.push(await typedTurn(dev, turnTimeoutMs));
        typedDone++;
        await sleep(100);
      }
      return out;
    });
    const generous = turns * (turnTimeoutMs + 15_000) + 60_000;
    const [results, typedOut] = await Promise.all([
      Promise.all(gens.map((g) => nextMessage(g, 'result', generous, ctx.signal))),
      Promise.all(typedRuns),
    ]);
    return {
      voice: results.flatMap((r) => r.turns),
      typed: typedOut.flat(),
      lost: results.reduce((s, r) => s + r.lost, 0) + typed.filter((d) => !d.open).length,
    };
  } finally {
    clearInterval(timer);
  }
}

/** A typed turn: `listen detect` with text, then everything up to `tts stop` (or the deadline, or a close). */
async function typedTurn(dev: BenchDevice, timeoutMs: number): Promise<Outcome> {
  if (!dev.open) return 'closed';
  const frames0 = dev.binaryFrames;
  const seen0 = dev.received.length;
  const stop = dev.next((m) => m.type === 'tts' && m.state === 'stop', timeoutMs, 'tts stop');
  dev.send({ type: 'listen', state: 'detect', text: TYPED_TEXT });
  try {
    await stop;
    return dev.binaryFrames > frames0 ? 'completed' : 'no_audio';
  } catch {
    if (!dev.open) return 'closed';
    const answered = dev.received
      .slice(seen0)
      .some((m) => m.type === 'stt' || (m.type === 'tts' && m.state === 'start'));
    return answered ? 'timeout' : 'no_reply';
  }
}

function outcomesDelta(m0: Sample[], m1: Sample[]): Record<string, number> {
  const before = byLabel(m0, 'linus_turns_total', 'outcome');
  const out: Record<string, number> = {};
  for (const [k, v] of byLabel(m1, 'linus_turns_total', 'outcome'))
    if (v - (before.get(k) ?? 0)) out[k] = v - (before.get(k) ?? 0);
  return out;
}

function outcomeText(t: Turns): string {
  return (
    Object.entries(t.outcomes)
      .map(([o, n]) => `${o} ${n}`)
      .join(', ') || '-'
  );
}
