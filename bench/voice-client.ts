/**
 * A load generator of the talking-device profiles (bench/lib/voice-load.ts): `count` devices that talk like the
 * firmware. Each connects over WebSocket or MQTT + UDP (bench/voice-link.ts: firmware headers or OTA credentials,
 * hello with 16 kHz / 60 ms Opus), says `ready`, and on `go` (after its
 * share of the start stagger) runs turns: `listen start auto`, the pre-encoded utterance streamed in real time
 * (one packet per 60 ms against absolute deadlines) until `tts start` or the end of the packets, then the reply
 * received until `tts stop`. With a duty cycle (`duty`), turns are push-to-talk instead: `listen start manual`, the
 * speech packets only, `listen stop`, the reply, then a pause that keeps the device in turns `duty` % of the time.
 * It times every turn (see TurnRecord) and reports once all its devices are done.
 * It ends on SIGTERM or when the orchestrator goes away.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createOpusDecoder, type OpusDecoder } from '../src/voice/opus.js';
import { Histogram } from './shared.js';
import { connectLink, type VoiceLink } from './voice-link.js';
import type { FromVoiceClient, ToVoiceClient, TurnRecord, Utterance, VoiceClientConfig } from './voice-shared.js';

const cfg = JSON.parse(process.env.BENCH_VOICE ?? '{}') as VoiceClientConfig;
const utterance = JSON.parse(readFileSync(cfg.utterancePath, 'utf8')) as Utterance;
const PACKETS = utterance.packets.map((b) => Buffer.from(b, 'base64'));
const UPLINK_FRAME_MS = 60;
const LATE_INTERVAL_MS = 65;
const MANUAL = cfg.duty !== undefined;
const LISTEN_START = JSON.stringify({ type: 'listen', state: 'start', mode: MANUAL ? 'manual' : 'auto' });
const LISTEN_STOP = JSON.stringify({ type: 'listen', state: 'stop' });
/** Manual turns send flite's recording only (~1.1 s for the default); auto turns the added silences too. */
const [FIRST_PACKET, END_PACKET] = MANUAL ? utterance.manualPackets : [0, PACKETS.length];

const intervalHist = new Histogram();
const sendLateHist = new Histogram();
let otherMessages = 0;
/** performance.now() of `go`, for the timeline bins. */
let goAtPerf = 0;
const timelineIntervals: number[] = [];
const timelineLate: number[] = [];
let turnsDone = 0;
let turnsCompleted = 0;

function tell(msg: FromVoiceClient): void {
  process.send?.(msg);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Current {
  t0: number;
  rec: TurnRecord;
  ttsStarted: boolean;
  lastFrameAt: number;
  playEnd: number;
  ended: () => void;
}

class Device {
  current: Current | undefined;
  closed = false;
  #decoder: OpusDecoder | undefined;
  #closedWaiters: (() => void)[] = [];

  constructor(
    readonly link: VoiceLink,
    readonly downRate: number,
    readonly downFrameMs: number,
  ) {
    link.onMessage((data, isBinary) => this.#onMessage(data, isBinary));
    link.onClose(() => {
      this.closed = true;
      this.current?.ended();
      for (const w of this.#closedWaiters.splice(0)) w();
    });
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    const now = performance.now();
    const cur = this.current;
    if (isBinary) {
      if (!cur) return void otherMessages++;
      this.#frame(cur, data, now);
      return;
    }
    let msg: { type?: string; state?: string };
    try {
      msg = JSON.parse(data.toString()) as { type?: string; state?: string };
    } catch {
      return void otherMessages++;
    }
    if (!cur) return void otherMessages++;
    if (msg.type === 'stt') cur.rec.stt ??= now - cur.t0;
    else if (msg.type === 'tts' && msg.state === 'start') {
      cur.rec.ttsStart ??= now - cur.t0;
      cur.ttsStarted = true;
    } else if (msg.type === 'tts' && msg.state === 'stop') {
      cur.rec.ttsStop = now - cur.t0;
      cur.ended();
    } else if (msg.type !== 'llm' && msg.type !== 'tts') otherMessages++;
  }

  #frame(cur: Current, data: Buffer, now: number): void {
    const rec = cur.rec;
    rec.frames++;
    if (rec.frames === 1) {
      rec.firstFrame = now - cur.t0;
    } else {
      const gap = now - cur.lastFrameAt;
      rec.intervals++;
      if (gap > LATE_INTERVAL_MS) rec.lateIntervals++;
      if (gap > rec.maxIntervalMs) rec.maxIntervalMs = gap;
      if (cfg.binMs) {
        const bin = Math.max(0, Math.floor((now - goAtPerf) / cfg.binMs));
        timelineIntervals[bin] = (timelineIntervals[bin] ?? 0) + 1;
        if (gap > LATE_INTERVAL_MS) timelineLate[bin] = (timelineLate[bin] ?? 0) + 1;
      }
      intervalHist.add(gap * 1000);
      if (cur.playEnd < now) rec.underruns++;
    }
    rec.lastFrame = now - cur.t0;
    cur.lastFrameAt = now;
    // The device plays from the first frame on, one frame per frame duration; what it holds beyond that is lead.
    cur.playEnd = Math.max(cur.playEnd, now) + this.downFrameMs;
    rec.maxLeadMs = Math.max(rec.maxLeadMs, cur.playEnd - now);
    if (cfg.decode === 'all' || (cfg.decode === 'first' && rec.frames === 1)) {
      try {
        this.#decoder ??= createOpusDecoder(this.downRate, 1);
        const pcm = this.#decoder.decode(data);
        if (pcm.length !== (this.downRate * this.downFrameMs) / 1000) rec.decodeErrors++;
      } catch {
        rec.decodeErrors++;
      }
    }
  }

  /** One turn, start to `tts stop` (or timeout / close). */
  async turn(): Promise<TurnRecord> {
    const rec: TurnRecord = {
      outcome: 'no_reply',
      packetsSent: 0,
      frames: 0,
      intervals: 0,
      lateIntervals: 0,
      maxIntervalMs: 0,
      maxLeadMs: 0,
      underruns: 0,
      decodeErrors: 0,
    };
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    let isDone = false;
    void done.then(() => (isDone = true));
    const t0 = performance.now();
    const cur: Current = { t0, rec, ttsStarted: false, lastFrameAt: 0, playEnd: 0, ended };
    this.current = cur;
    this.#decoder?.reset();
    this.link.sendText(LISTEN_START);
    let lastSentAt = t0;
    // Like the firmware in auto mode: stop sending once the server starts speaking.
    for (let i = FIRST_PACKET; i < END_PACKET && !cur.ttsStarted && !isDone && !this.closed; i++) {
      const due = t0 + (i - FIRST_PACKET) * UPLINK_FRAME_MS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (cur.ttsStarted || isDone || this.closed) break;
      const now = performance.now();
      sendLateHist.add(Math.max(0, now - due) * 1000);
      this.link.sendAudio(PACKETS[i]!, i * UPLINK_FRAME_MS);
      rec.packetsSent++;
      lastSentAt = now;
      if (i === utterance.lastSpeechPacket) rec.lastSpeechSent = now - t0;
      if (!MANUAL && i === utterance.vadEndPacket) rec.vadEndSent = now - t0;
    }
    if (MANUAL && !isDone && !this.closed) {
      // Push-to-talk: the device marks the end of the utterance; the server's "VAD end" is this listen stop.
      await sleep(Math.max(0, t0 + (END_PACKET - FIRST_PACKET) * UPLINK_FRAME_MS - performance.now()));
      this.link.sendText(LISTEN_STOP);
      lastSentAt = performance.now();
      rec.vadEndSent = lastSentAt - t0;
    }
    let timer: NodeJS.Timeout | undefined;
    const waitUntil = async (at: number): Promise<void> => {
      await Promise.race([
        done,
        new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, at - performance.now())))),
      ]);
      clearTimeout(timer);
    };
    // A server that stays silent (no stt, no tts start) fails the turn after replyTimeoutMs; one that answered gets turnTimeoutMs.
    if (cfg.replyTimeoutMs !== undefined) await waitUntil(lastSentAt + cfg.replyTimeoutMs);
    if (cfg.replyTimeoutMs === undefined || (!isDone && (rec.stt !== undefined || rec.ttsStart !== undefined)))
      await waitUntil(lastSentAt + cfg.turnTimeoutMs);
    this.current = undefined;
    if (this.closed && rec.ttsStop === undefined) rec.outcome = 'closed';
    else if (rec.ttsStop !== undefined) rec.outcome = rec.frames > 0 ? 'completed' : 'no_audio';
    else rec.outcome = rec.ttsStart !== undefined ? 'timeout' : 'no_reply';
    return rec;
  }

  close(): void {
    this.link.close();
    this.#decoder?.dispose();
  }
}

/** Connects over the configured transport and wraps the link once the server's hello came. */
async function connect(n: number): Promise<Device> {
  const link = await connectLink(cfg.transport ?? 'websocket', n, { url: cfg.url, timeoutMs: cfg.connectTimeoutMs });
  const audio = link.hello.audio_params;
  return new Device(link, audio?.sample_rate ?? 24000, audio?.frame_duration ?? 60);
}

const devices: (Device | undefined)[] = [];

async function connectAll(): Promise<void> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < cfg.count) {
      const i = next++;
      try {
        devices[i] = await connect(cfg.firstId + i);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency, cfg.count) }, worker));
  tell({
    kind: 'ready',
    connected: devices.filter(Boolean).length,
    failed,
    ...(firstError ? { firstError } : {}),
    ms: performance.now() - started,
  });
}

async function run(startAt: number, turnsPerDevice = cfg.turns): Promise<void> {
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const turns: TurnRecord[] = [];
  const goAt = performance.now() + (startAt - Date.now());
  goAtPerf = goAt;
  const until = cfg.seconds > 0 ? goAt + cfg.seconds * 1000 : Infinity;
  let lost = 0;
  const progress = cfg.progressEveryMs
    ? setInterval(() => tell({ kind: 'progress', turns: turnsDone, completed: turnsCompleted }), cfg.progressEveryMs)
    : undefined;
  await Promise.all(
    devices.map(async (dev, i) => {
      if (!dev) return;
      const offset = ((cfg.firstIndex + i) / cfg.levelSize) * cfg.staggerMs;
      await sleep(goAt + offset - performance.now());
      for (let k = 0; cfg.seconds > 0 ? performance.now() < until : k < turnsPerDevice; k++) {
        if (dev.closed) {
          lost++;
          return;
        }
        const began = performance.now();
        const rec = await dev.turn();
        turns.push(rec);
        turnsDone++;
        if (rec.outcome === 'completed') turnsCompleted++;
        const pause =
          cfg.duty === undefined ? cfg.pauseMs : ((performance.now() - began) * (100 - cfg.duty)) / cfg.duty;
        if (pause) await sleep(pause);
      }
      if (dev.closed) lost++;
    }),
  );
  lag.disable();
  clearInterval(progress);
  const bins = Math.max(timelineIntervals.length, timelineLate.length);
  const dense = (a: number[]): number[] => Array.from({ length: bins }, (_, i) => a[i] ?? 0);
  tell({
    kind: 'result',
    turns,
    intervalBuckets: intervalHist.counts,
    sendLateBuckets: sendLateHist.counts,
    // Node's histogram includes its own sampling interval: what is left is how late the loop was.
    loopLagP99Ms: Math.max(0, lag.percentile(99) / 1e6 - 10),
    loopLagMaxMs: Math.max(0, lag.max / 1e6 - 10),
    lost,
    otherMessages,
    ...(cfg.binMs
      ? { timeline: { startAt, binMs: cfg.binMs, intervals: dense(timelineIntervals), late: dense(timelineLate) } }
      : {}),
  });
  if (!cfg.keepOpen) for (const d of devices) d?.close();
}

process.on('message', (msg: ToVoiceClient) => {
  if (msg.kind === 'go') void run(msg.startAt, msg.turns);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  for (const d of devices) d?.close();
  setTimeout(() => process.exit(0), 200).unref();
});

// Load the native Opus module now, not inside the first turn's timing (it takes tens of ms the first time).
if (cfg.decode !== 'none') createOpusDecoder(24000, 1).dispose();
void connectAll();
