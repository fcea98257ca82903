import { performance } from 'node:perf_hooks';
import { errorMessage, providerErrorKind } from '../errors.js';
import type { AudioFrame } from '../protocol/framing.js';
import type { ListenMessage } from '../protocol/messages.js';
import type { Lease, LlmPurpose, ProviderKinds, ProviderRegistry } from '../providers/registry.js';
import type { AsrStream, VadProvider } from '../providers/types.js';
import type { Session, SessionVoice, TurnReport } from '../session/session.js';
import type { MemoryStore } from '../store/memory.js';
import type { AudioEngine, UplinkChannel, UplinkResult } from './audio-engine.js';
import { Dialogue } from './dialogue.js';
import { createDownlinkEncoder, downlinkOpus, type DownlinkEncoder } from './downlink.js';
import { saveMemory } from './memory.js';
import type { SentenceCache } from './sentence-cache.js';
import { cleanTranscript, commandKey } from './text.js';
import { toolsFor } from './tools.js';
import type { VoiceHooks } from './hooks.js';
import { Turn, type TurnInput, type TurnTimings } from './turn.js';

export interface VoiceServiceDeps {
  providers: ProviderRegistry;
  memory: MemoryStore;
  hooks: VoiceHooks;
  audio: AudioEngine;
  /** The server's fixed sentences, encoded once for every session (none: synthesized each time). */
  sentences?: SentenceCache;
}

/** Frames of audio kept before speech starts, so the first syllable is not cut (~600 ms at 60 ms). */
const PREROLL_FRAMES = 10;
/** Packets and listen start/stop held while the VAD lease is on its way (normally a few ms), then replayed. */
const EARLY_EVENTS = 64;
/** An utterance is ended by force after this long, whatever the VAD thinks. */
const MAX_UTTERANCE_MS = 60_000;
/** Shorter "utterances" are clicks and coughs; they never reach ASR. */
const MIN_UTTERANCE_MS = 250;
const ASR_SAMPLE_RATE = 16000;

interface Utterance {
  stream: AsrStream;
  lease: Lease<unknown> | undefined;
  samples: number;
  startedAt: number;
}

/**
 * The voice side of one session: Opus in → VAD → utterance → ASR → turn (LLM → TTS → paced Opus out).
 * Everything it holds (decoder, detector, streams, the current turn) lives in the session's scope.
 */
export class VoicePipeline implements SessionVoice {
  readonly dialogue: Dialogue;
  #uplink: UplinkChannel | undefined;
  #uplinkRate = 0;
  #vadLease: Lease<VadProvider> | undefined;
  #vadReady = false;
  #vadLoading: Promise<void> | undefined;
  #preroll: Int16Array[] = [];
  #utterance: Utterance | undefined;
  #finishing = false;
  #turn: Turn | undefined;
  #turnSeq = 0;
  #encoder: DownlinkEncoder | undefined;
  /**
   * Packets and listen start/stop that arrived while the VAD was still loading, replayed in arrival order once it
   * is ready: no syllable is lost, and a `listen stop` still ends the utterance its audio belongs to.
   */
  #early: Array<Buffer | ListenMessage> = [];
  /** The device's remembered summary is in the dialogue (or could not be had): the first turn waits for it. */
  readonly #memoryLoaded: Promise<void>;

  constructor(
    private readonly session: Session,
    private readonly deps: VoiceServiceDeps,
  ) {
    this.dialogue = new Dialogue(20);
    // A failed load is reported by the scope; the session then starts without the memory.
    this.#memoryLoaded = session.scope.run('memory:load', async () => {
      this.dialogue.memory = await deps.memory.load(session.deviceId);
    });
    session.scope.add(() => this.#dispose());
    this.#vadLoading = this.#loadVad();
  }

  get turn(): Turn | undefined {
    return this.#turn?.active ? this.#turn : undefined;
  }

  // ------------------------------------------------------------------ hooks from the session

  onAudio(session: Session, frame: AudioFrame): void {
    if (frame.payload.length === 0) return; // an empty packet would decode to 360 ms of PLC
    if (!this.#vadReady) {
      // Copied: the frame may be a view into the socket's read buffer.
      if (this.#early.length < EARLY_EVENTS) this.#early.push(Buffer.from(frame.payload));
      return;
    }
    this.#route(frame.payload);
  }

  /** Sends a packet on to be decoded (and VAD-checked when listening automatically), or drops it. */
  #route(packet: Buffer): void {
    const mode = this.session.listen.mode;
    if (mode === 'manual') {
      if (this.#utterance) this.#channel().push(packet, false);
      return;
    }
    if (this.#dropsAudio()) return;
    if (!this.#vadLease) return; // no VAD configured: nothing can find the end of speech (logged at load)
    this.#channel().push(packet, true);
  }

  /** In auto mode the device does not listen while we speak: audio then is echo, not a new utterance. */
  #dropsAudio(): boolean {
    return (!!this.turn && this.session.listen.mode === 'auto') || this.#finishing;
  }

  /** A decoded packet is back from the audio engine (same order as sent). */
  #onUplink(r: UplinkResult): void {
    if (this.session.closed) return;
    if (r.decodeError) this.session.ctx.metrics.uplinkDecodeErrors.inc(); // a corrupted packet costs one frame, not the session (B1)
    if (r.pcm.length === 0) return;
    if (this.session.listen.mode === 'manual') {
      if (this.#utterance) this.#write(r.pcm);
      return;
    }
    if (this.#dropsAudio()) return;
    // A decision made before the latest VAD reset is stale: the audio still counts (pre-roll), the decision not.
    const current = r.epoch === this.#uplink?.epoch;
    this.#detect(r.pcm, current && r.speaking, current && r.endOfUtterance);
  }

  /** Opens an utterance on speech, feeds it, ends it on silence. */
  #detect(pcm: Int16Array, speaking: boolean, endOfUtterance: boolean): void {
    if (!this.#utterance) {
      this.#preroll.push(pcm);
      if (this.#preroll.length > PREROLL_FRAMES) this.#preroll.shift();
      if (!speaking) return;
      if (this.turn) this.turn.abort('barge-in'); // realtime: the user talks over us
      this.#startUtterance();
      for (const p of this.#preroll) this.#write(p);
      this.#preroll = [];
      return;
    }
    this.#write(pcm);
    const tooLong = (this.#utterance.samples / ASR_SAMPLE_RATE) * 1000 > MAX_UTTERANCE_MS;
    // The VAD resets itself after an end of utterance; a forced end must reset it.
    if (endOfUtterance || tooLong) void this.#endUtterance(!endOfUtterance);
  }

  onListen(session: Session, msg: ListenMessage): void {
    if (msg.state === 'detect') {
      if (typeof msg.text === 'string') this.#onDetect(msg.text);
    } else if (!this.#vadReady) {
      // Under load the VAD can still be loading when a short utterance has ended: keep start/stop in line with audio.
      if (this.#early.length < EARLY_EVENTS) this.#early.push(msg);
    } else this.#onListenEdge(session, msg);
  }

  /** `listen start` opens a fresh utterance (manual) or VAD state (auto); `listen stop` ends the utterance. */
  #onListenEdge(session: Session, msg: ListenMessage): void {
    if (msg.state === 'start') {
      if (this.#vadLease?.stale && !this.#utterance) this.#swapVad();
      this.#uplink?.resetVad();
      this.#preroll = [];
      if (session.listen.mode === 'manual') {
        this.#utterance?.stream.abort();
        this.#utterance = undefined;
        this.#startUtterance();
      }
    } else if (msg.state === 'stop') {
      if (this.#utterance) void this.#endAfterInFlight(this.#utterance);
    }
  }

  onAbort(session: Session, reason: string | undefined): void {
    if (this.turn) this.turn.abort(reason ?? 'abort');
    else session.send.json({ type: 'tts', state: 'stop', session_id: session.sessionId });
  }

  /**
   * Drops the utterance in progress and the VAD state (meeting end, mode change): the next utterance starts
   * on a fresh ASR stream, nothing carries over (seed #8).
   */
  resetAudio(): void {
    this.#utterance?.stream.abort();
    this.#utterance = undefined;
    this.#preroll = [];
    this.#uplink?.resetVad();
  }

  // ------------------------------------------------------------------ text → turns

  /** A typed or recognized user utterance. Empty text starts nothing: the device keeps listening. */
  handleText(raw: string, source: 'voice' | 'typed', timings?: Partial<TurnTimings>): void {
    const text = cleanTranscript(raw);
    if (!text) return;
    for (const intercept of this.deps.hooks.interceptors) if (intercept(this.session, text, source)) return;
    const config = this.session.ctx.config.current;
    if (config.exit_commands.some((c) => commandKey(c) === commandKey(text))) {
      void this.startTurn({
        text,
        echoStt: true,
        fixedReply: 'Goodbye!',
        exitAfter: true,
        ...(timings ? { timings } : {}),
      });
      return;
    }
    void this.startTurn({ text, echoStt: true, ...(timings ? { timings } : {}) });
  }

  /** Starts a turn, cancelling the one in flight: one active turn per session. */
  async startTurn(input: TurnInput, purpose: LlmPurpose = this.#purpose()): Promise<Turn | undefined> {
    const seq = ++this.#turnSeq;
    this.#turn?.abort('replaced by a new turn');
    if (this.deps.hooks.ttsBypass.some((check) => check(this.session))) {
      this.session.send.json({ type: 'tts', state: 'start', session_id: this.session.sessionId });
      this.session.send.json({ type: 'tts', state: 'stop', session_id: this.session.sessionId });
      return undefined;
    }
    const { providers } = this.deps;
    const own = this.session.privateConfig;
    const route =
      own?.selected.LLM && purpose === 'chat'
        ? { alias: own.selected.LLM, overrides: {} }
        : providers.llmRoute(purpose);
    const [llm, tts] = await Promise.all([
      input.fixedReply === undefined && route.alias
        ? providers.lease('llm', route.alias, route.overrides, own?.blocks.LLM?.[route.alias])
        : undefined,
      this.#lease('tts', 'TTS'),
      this.#memoryLoaded,
    ]);
    if (seq !== this.#turnSeq || this.session.closed) {
      llm?.release();
      tts?.release();
      return undefined;
    }
    const { sample_rate: rate, frame_duration: frameMs } = this.session.ctx.config.current.xiaozhi.audio_params;
    this.#encoder ??= createDownlinkEncoder(
      this.deps.audio,
      rate,
      frameMs,
      downlinkOpus(this.session.ctx.config.current),
    );
    const session = this.session;
    const deps = {
      session,
      dialogue: this.dialogue,
      llm,
      tts,
      encoder: this.#encoder,
      sentences: this.deps.sentences,
      tools: () => toolsFor(session),
      onReport: (report: TurnReport) => session.ctx.events.emit('turn', session, report),
    };
    const turn = new Turn(deps, input);
    this.#turn = turn;
    return turn;
  }

  /** Leases the device's own choice of provider (private config) when it has one, else the server's. */
  #lease<K extends 'asr' | 'tts' | 'vad'>(
    kind: K,
    section: 'ASR' | 'TTS' | 'VAD',
  ): Promise<Lease<ProviderKinds[K]> | undefined> {
    const own = this.session.privateConfig;
    const alias = own?.selected[section];
    return alias
      ? this.deps.providers.lease(kind, alias, {}, own?.blocks[section]?.[alias])
      : this.deps.providers.lease(kind);
  }

  #purpose(): LlmPurpose {
    const mode = this.session.record?.state.get('mode');
    return mode === 'meeting' || mode === 'working' || mode === 'coding' ? mode : 'chat';
  }

  #onDetect(raw: string): void {
    const config = this.session.ctx.config.current;
    const text = cleanTranscript(raw);
    if (!text) return;
    const isWakeWord = config.wakeup_words.some((w) => commandKey(w) === commandKey(text));
    if (!isWakeWord) {
      this.handleText(text, 'typed');
      return;
    }
    if (config.enable_greeting) {
      void this.startTurn({ text, echoStt: true });
    } else {
      this.session.send.json({ type: 'stt', text, session_id: this.session.sessionId });
      this.session.send.json({ type: 'tts', state: 'stop', session_id: this.session.sessionId });
    }
  }

  // ------------------------------------------------------------------ utterances

  #startUtterance(): void {
    const session = this.session;
    const lease = this.#lease('asr', 'ASR');
    // The stream must exist now so no audio is lost; the provider arrives asynchronously, so buffer until then.
    const pending: Int16Array[] = [];
    let real: AsrStream | undefined;
    let aborted = false;
    let leaseHeld: Lease<unknown> | undefined;
    const ready = lease.then((l) => {
      leaseHeld = l;
      if (utterance) utterance.lease = l;
      if (!l || aborted) {
        l?.release();
        return;
      }
      real = l.provider.createStream({ signal: session.scope.signal, sessionId: session.sessionId, timeoutMs: 15_000 });
      for (const p of pending) real.write(p);
      pending.length = 0;
    });
    const stream: AsrStream = {
      write: (s) => (real ? real.write(s) : pending.push(s)),
      finish: async () => {
        await ready;
        if (!real) {
          if (!leaseHeld)
            session.log.warn('no ASR is configured: set selected_module.ASR to an alias defined under ASR');
          return { text: '' };
        }
        return real.finish();
      },
      abort: () => {
        aborted = true;
        real?.abort();
        leaseHeld?.release();
      },
    };
    const utterance: Utterance = { stream, lease: undefined, samples: 0, startedAt: performance.now() };
    this.#utterance = utterance;
  }

  #write(pcm: Int16Array): void {
    const u = this.#utterance;
    if (!u) return;
    u.samples += pcm.length;
    u.stream.write(pcm);
  }

  /** `listen stop`: the packets sent before it are still being decoded; they belong to the utterance. */
  async #endAfterInFlight(u: Utterance): Promise<void> {
    await this.#uplink?.whenDrained();
    if (this.#utterance === u) await this.#endUtterance(true);
  }

  async #endUtterance(resetVad: boolean): Promise<void> {
    const u = this.#utterance;
    if (!u) return;
    this.#utterance = undefined;
    if (this.#vadLease?.stale) this.#swapVad();
    else if (resetVad) this.#uplink?.resetVad();
    const vadEnd = performance.now();
    if ((u.samples / ASR_SAMPLE_RATE) * 1000 < MIN_UTTERANCE_MS) {
      u.stream.abort();
      return;
    }
    this.#finishing = true;
    let text = '';
    let failed = false;
    try {
      text = (await u.stream.finish()).text;
    } catch (err) {
      failed = true;
      // The device went away while its last words were being recognized: an ordinary end, not an ASR failure.
      if (this.session.closed) this.session.log.debug({ err: errorMessage(err) }, 'ASR ended with the session');
      else {
        this.session.ctx.metrics.providerErrors.labels('asr', providerErrorKind(err)).inc();
        this.session.log.warn({ err: errorMessage(err) }, 'ASR failed');
      }
    } finally {
      u.lease?.release();
      this.#finishing = false;
    }
    if (this.session.closed) return;
    if (failed) {
      // The user spoke and is waiting: they hear that it failed, and the turn ends with tts stop.
      const reply = this.session.ctx.config.current.system_error_response;
      void this.startTurn({ text: '', echoStt: false, fixedReply: reply, failed: true });
      return;
    }
    this.handleText(text, 'voice', { vadEnd, asrDone: performance.now() });
  }

  // ------------------------------------------------------------------ audio plumbing

  /** The uplink stream in the audio engine, (re)opened for the device's current rate and the current VAD. */
  #channel(): UplinkChannel {
    const rate = this.session.uplink.sampleRate;
    if (!this.#uplink || this.#uplinkRate !== rate) {
      this.#uplink?.close();
      this.#uplinkRate = rate;
      this.#uplink = this.deps.audio.openUplink(
        { rate, vad: this.#vadLease?.provider.spec },
        {
          onResult: (r) => this.#onUplink(r),
          onError: (message) => {
            if (!this.session.closed)
              this.session.log.warn({ err: message }, 'uplink audio: VAD unavailable for this stream');
          },
        },
      );
    }
    return this.#uplink;
  }

  async #loadVad(): Promise<void> {
    const lease = await this.#lease('vad', 'VAD');
    if (this.session.closed) {
      lease?.release();
      return;
    }
    if (!lease)
      this.session.log.warn(
        'no VAD is configured: auto listening cannot find the end of speech (set selected_module.VAD)',
      );
    this.#vadLease = lease;
    this.#vadReady = true;
    const early = this.#early;
    this.#early = [];
    for (const event of early) {
      if (Buffer.isBuffer(event)) this.#route(event);
      else this.#onListenEdge(this.session, event);
    }
  }

  /** A reload changed the VAD block: new thresholds apply from the next utterance (D12). */
  #swapVad(): void {
    this.#uplink?.close();
    this.#uplink = undefined;
    this.#vadLease?.release();
    this.#vadLease = undefined;
    this.#vadReady = false;
    this.#vadLoading = this.#loadVad();
  }

  /** Resolves once the VAD is loaded (tests and the simulator wait on it). */
  ready(): Promise<void> {
    return this.#vadLoading ?? Promise.resolve();
  }

  #dispose(): void {
    this.#turn?.abort('session closed');
    this.#utterance?.stream.abort();
    this.#utterance = undefined;
    this.#uplink?.close();
    this.#vadLease?.release();
    this.#encoder?.dispose();
    const { session, deps } = this;
    saveMemory(this.dialogue, {
      config: session.ctx.config.current,
      deviceId: session.deviceId,
      log: session.log,
      background: session.ctx.background,
      providers: deps.providers,
      memory: deps.memory,
    });
  }
}

/**
 * The voice side of a session, built on first use (first audio frame, listen or abort): an idle connection
 * pays for no decoder, VAD state or dialogue (the memory cost of 20,000 idle devices).
 */
export class LazyVoice implements SessionVoice {
  #pipeline: VoicePipeline | undefined;

  constructor(
    private readonly session: Session,
    private readonly deps: VoiceServiceDeps,
  ) {}

  /** The pipeline if it exists; never creates one. */
  get pipeline(): VoicePipeline | undefined {
    return this.#pipeline;
  }

  get(): VoicePipeline {
    this.#pipeline ??= new VoicePipeline(this.session, this.deps);
    return this.#pipeline;
  }

  onAudio(session: Session, frame: AudioFrame): void {
    if (frame.payload.length === 0 && !this.#pipeline) return;
    this.get().onAudio(session, frame);
  }

  onListen(session: Session, msg: ListenMessage): void {
    this.get().onListen(session, msg);
  }

  onAbort(session: Session, reason: string | undefined): void {
    if (this.#pipeline) this.#pipeline.onAbort(session, reason);
    else session.send.json({ type: 'tts', state: 'stop', session_id: session.sessionId });
  }
}
