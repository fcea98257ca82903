import { performance } from 'node:perf_hooks';
import type { ConfigStore } from '../config/store.js';
import { errorMessage, providerErrorKind } from '../errors.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Lease } from '../providers/registry.js';
import type { ChatMessage, LlmProvider, ToolCall, TtsProvider } from '../providers/types.js';
import type { Scope } from '../session/scope.js';
import type { Sender } from '../session/sender.js';
import type { TurnReport } from '../session/session.js';
import type { Dialogue } from './dialogue.js';
import { AudioEngineClosedError, type AudioPacket } from './audio-engine.js';
import type { DownlinkEncoder } from './downlink.js';
import { Pacer } from './pacer.js';
import { SentenceCache } from './sentence-cache.js';
import { SentenceSplitter } from './sentences.js';
import { displayText, emotionOf, speakableText } from './text.js';
import { runTool, type ToolOutcome, type Tools } from './tools.js';

/** Time marks of one turn (performance.now() ms) for the latency report (B9). */
export interface TurnTimings {
  vadEnd?: number;
  asrDone?: number;
  llmFirstToken?: number;
  ttsFirstAudio?: number;
  firstFrameSent?: number;
  /** Time spent waiting on providers before the first frame, subtracted to get the server's own share. */
  providerWaitMs: number;
}

export interface TurnInput {
  /** What the user said or typed (already cleaned). */
  text: string;
  /** Send `stt` with the text first (false for greetings the user did not say). */
  echoStt: boolean;
  /** Speak this instead of asking the LLM (exit command goodbye, fixed replies). */
  fixedReply?: string;
  /** Close the session after `tts stop` (exit). */
  exitAfter?: boolean;
  /** The turn reports a provider failure that happened before it (ASR): it speaks the fallback sentence. */
  failed?: boolean;
  timings?: Partial<TurnTimings>;
}

/** What a turn uses of its session (a Session is one), so that a turn can run without a connection. */
export interface TurnSession {
  /** The turn's scope is a child of this one: closing the session ends the turn. */
  readonly scope: Scope;
  readonly ctx: { readonly config: ConfigStore; readonly metrics: Metrics };
  readonly send: Pick<Sender, 'json' | 'audio' | 'dropQueuedAudio'>;
  readonly log: Logger;
  readonly sessionId: string;
  /** The client hello's features (`emoji: false` turns the emotion message off). */
  readonly features: Record<string, unknown>;
  /** The device's own prompt, when it has one. */
  readonly privateConfig: { readonly prompt?: string } | undefined;
  /** True while the turn speaks: pauses the session's idle clock. */
  speaking: boolean;
  close(code: number, reason: string): void;
}

export interface TurnDeps {
  session: TurnSession;
  dialogue: Dialogue;
  llm: Lease<LlmProvider> | undefined;
  tts: Lease<TtsProvider> | undefined;
  encoder: DownlinkEncoder;
  /** Where the server's fixed sentences are kept once encoded (none: always synthesized). */
  sentences?: SentenceCache | undefined;
  /** The tools offered to the LLM, built when the turn first asks it. */
  tools(): Tools;
  /** Told how the turn ended and its latency by stage (the console shows each device's last turns). */
  onReport?(report: TurnReport): void;
}

export type TurnOutcome = 'completed' | 'aborted' | 'failed' | 'no_llm';

const MAX_TOOL_ROUNDS = 5;
const PREBUFFER_FRAMES = 3;
/** Frames per encode request after the first (which is the pre-buffer's worth: a turn's first frames never wait on a whole sentence). */
const ENCODE_PIECE_FRAMES = 16;

/**
 * One voice turn: stt → tts start → llm emotion → per sentence sentence_start + paced frames → tts stop.
 * It owns a child scope of the session: closing it aborts the LLM stream and TTS requests for real
 * (their signal), drops queued audio, and `tts stop` is sent exactly once whatever happened (D9).
 */
export class Turn {
  readonly scope: Scope;
  readonly timings: TurnTimings;
  outcome: TurnOutcome | undefined;
  #started = false;
  #stopped = false;
  #pacer: Pacer<AudioPacket>;
  #spoken = '';
  /** What the model answered, when the server spoke after it (the fallback after an LLM failure). */
  #answered: string | undefined;
  #emotionSent = false;
  #speech: Promise<void> = Promise.resolve();
  #exitAfter = false;
  /** Set when the TTS missed its deadline: the rest of the turn is shown, not spoken, so it ends without more waits. */
  #ttsDown = false;
  readonly #deps: TurnDeps;

  constructor(deps: TurnDeps, input: TurnInput) {
    this.#deps = deps;
    const { session } = deps;
    this.scope = session.scope.child('turn');
    this.timings = { providerWaitMs: 0, ...input.timings };
    this.#exitAfter = !!input.exitAfter;
    if (input.failed) this.outcome = 'failed';
    const metrics = session.ctx.metrics;
    const frameMs = session.ctx.config.current.xiaozhi.audio_params.frame_duration;
    // Each frame carries its play position in ms (mod 2^32), as the reference stamps them: v2 devices and the MQTT
    // gateway pass it on (server-side AEC pairs the echo with it); v1/v3 framing has no field for it.
    const playStart = Date.now();
    let framesSent = 0;
    this.#pacer = new Pacer<AudioPacket>({
      scope: this.scope,
      frameMs,
      prebufferFrames: PREBUFFER_FRAMES,
      sendAudio: (prepared) => {
        if (this.timings.firstFrameSent === undefined) this.timings.firstFrameSent = performance.now();
        return session.send.audio(deps.encoder.packet(prepared), (playStart + framesSent++ * frameMs) >>> 0);
      },
      sendControl: (m) => session.send.json(m),
      onFrameSent: (interval) => {
        metrics.downlinkFrames.inc();
        if (interval > frameMs + 5) metrics.downlinkLateFrames.inc();
      },
    });
    this.scope.add(() => {
      deps.llm?.release();
      deps.tts?.release();
    });
    this.done = this.#run(input);
  }

  /** Settles when the turn has ended, however it ended. Never rejects. */
  readonly done: Promise<TurnOutcome>;

  get active(): boolean {
    return !this.scope.closed;
  }

  /** Barge-in or device abort: stop speaking now. */
  abort(reason: string): void {
    if (this.scope.closed) return;
    this.outcome ??= 'aborted';
    this.#deps.session.log.info({ reason }, 'turn aborted');
    this.#deps.session.send.dropQueuedAudio();
    this.#sendStop();
    this.scope.close();
  }

  async #run(input: TurnInput): Promise<TurnOutcome> {
    const { session, dialogue } = this.#deps;
    session.speaking = true;
    try {
      if (input.echoStt) session.send.json({ type: 'stt', text: input.text, session_id: session.sessionId });
      this.#sendStart();
      if (input.fixedReply !== undefined) {
        this.#say(input.fixedReply, true);
      } else {
        dialogue.add({ role: 'user', content: input.text });
        await this.#converse();
      }
      await this.#speech;
      if (this.scope.closed) return this.outcome ?? 'aborted';
      await this.#pacer.whenPlayed();
      this.outcome ??= 'completed';
    } catch (err) {
      if (this.scope.closed) {
        this.outcome ??= 'aborted';
      } else {
        this.outcome = 'failed';
        session.log.warn({ err: errorMessage(err) }, 'turn failed');
      }
    } finally {
      const answer = this.#answered ?? this.#spoken;
      if (answer && input.fixedReply === undefined) dialogue.add({ role: 'assistant', content: answer });
      this.#sendStop();
      this.#report();
      session.speaking = false;
      this.scope.close();
      if (this.#exitAfter && this.outcome === 'completed') {
        // Let the final frames leave before the socket closes.
        session.scope.timeout(50, () => session.close(1000, 'exit'));
      }
    }
    return this.outcome ?? 'completed';
  }

  /** LLM rounds: stream text into speech; run tool calls and feed results back, at most 5 rounds. */
  async #converse(): Promise<void> {
    const { session, dialogue, llm } = this.#deps;
    const config = session.ctx.config.current;
    if (!llm) {
      this.outcome = 'no_llm';
      session.log.warn(
        'no LLM is configured: set selected_module.LLM to an alias defined under LLM (e.g. an openai block with base_url, model_name, api_key)',
      );
      this.#say('No language model is configured yet. Please set selected_module LLM in the Linus config.', true);
      return;
    }
    const tools = this.#deps.tools();
    const specs = [...tools.values()].map((t) => t.spec);
    const extra: ChatMessage[] = [];
    const splitter = new SentenceSplitter();
    const asked = performance.now();
    for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
      let calls: ToolCall[] = [];
      let text = '';
      const stream = llm.provider.stream({
        messages: dialogue.messages(session.privateConfig?.prompt ?? config.prompt, extra),
        tools: specs,
        // The deadline is the LLM block's `timeout_ms` (the provider's default when unset).
        signal: this.scope.signal,
      });
      try {
        for await (const ev of stream) {
          if (this.scope.closed) return;
          if (ev.type === 'tool_calls') {
            calls = ev.calls;
            continue;
          }
          if (ev.type === 'tool_call_started') continue;
          if (!ev.text) continue;
          if (this.timings.llmFirstToken === undefined) {
            this.timings.llmFirstToken = performance.now();
            this.timings.providerWaitMs += this.timings.llmFirstToken - asked;
          }
          text += ev.text;
          this.#emotion(ev.text);
          for (const s of splitter.push(ev.text)) this.#say(s);
        }
      } catch (err) {
        // An abort (the scope closed) is not a provider failure.
        if (this.scope.closed) throw err;
        // Counted like ASR and TTS failures; the user hears the fallback sentence, and the turn ends with tts stop.
        session.ctx.metrics.providerErrors.labels('llm', providerErrorKind(err)).inc();
        session.log.warn({ err: errorMessage(err) }, 'LLM failed');
        this.outcome = 'failed';
        // A sentence cut off mid-way is dropped: the fallback says why the answer stops there. The fallback is the
        // server's, not the model's: it stays out of the dialogue the model reads next time.
        this.#answered = this.#spoken;
        this.#say(config.system_error_response, true);
        return;
      }
      if (!calls.length) break;
      extra.push({ role: 'assistant', content: text || null, tool_calls: calls });
      let respond: Extract<ToolOutcome, { action: 'respond' }> | undefined;
      for (const call of calls) {
        const outcome = await runTool(tools, call, this.scope.signal);
        extra.push({
          role: 'tool',
          tool_call_id: call.id,
          content: outcome.action === 'reqllm' ? outcome.result : outcome.text,
        });
        if (outcome.action === 'respond') respond = outcome;
      }
      if (respond) {
        for (const s of splitter.flush()) this.#say(s);
        this.#say(respond.text);
        if (respond.exit) this.#exitAfter = true;
        return;
      }
    }
    for (const s of splitter.flush()) this.#say(s);
  }

  #emotion(text: string): void {
    const { session } = this.#deps;
    if (this.#emotionSent || !text.trim()) return;
    this.#emotionSent = true;
    if (session.features.emoji === false) return;
    const { emoji, emotion } = emotionOf(text);
    session.send.json({ type: 'llm', text: emoji, emotion, session_id: session.sessionId });
  }

  /** Queues one segment: its sentence_start and audio go out in order, paced. `fixed`: the server's own words. */
  #say(segment: string, fixed = false): void {
    const speak = speakableText(segment);
    const show = displayText(segment);
    if (!show && !speak) return;
    this.#spoken += (this.#spoken ? ' ' : '') + show;
    this.#speech = this.#speech.then(() => this.#synthesize(show, speak, fixed));
  }

  async #synthesize(show: string, speak: string, fixed: boolean): Promise<void> {
    const { session, tts, encoder } = this.#deps;
    if (this.scope.closed) return;
    this.#pacer.enqueueControl({ type: 'tts', state: 'sentence_start', text: show, session_id: session.sessionId });
    if (!tts || !speak || this.#ttsDown) return;
    const cache = fixed ? this.#deps.sentences : undefined;
    const key = cache
      ? SentenceCache.key({
          tts: tts.provider,
          rate: encoder.sampleRate,
          frameMs: encoder.frameMs,
          opus: encoder.opus,
          text: speak,
        })
      : '';
    const cached = cache?.get(key);
    if (cached) {
      if (this.timings.ttsFirstAudio === undefined) this.timings.ttsFirstAudio = performance.now();
      for (const p of cached) this.#pacer.enqueueAudio(p);
      encoder.restart();
      return;
    }
    // A sentence to keep is encoded from a fresh state, so that it can follow any other audio later.
    const target = cache ? encoder.fork() : encoder;
    const kept: AudioPacket[] | undefined = cache ? [] : undefined;
    const config = session.ctx.config.current;
    const asked = performance.now();
    try {
      const out = target.sentence();
      for await (const chunk of tts.provider.synthesize(speak, {
        signal: this.scope.signal,
        timeoutMs: config.tts_timeout * 1000,
      })) {
        if (this.scope.closed) return;
        if (this.timings.ttsFirstAudio === undefined) {
          this.timings.ttsFirstAudio = performance.now();
          this.timings.providerWaitMs += this.timings.ttsFirstAudio - asked;
        }
        await this.#enqueue(target, out.push(chunk), kept);
      }
      await this.#enqueue(target, out.end(), kept);
      // A TTS that sent no audio is not remembered as silence: the next use asks again.
      if (cache && kept?.length && !this.scope.closed) cache.set(key, kept);
    } catch (err) {
      if (this.scope.closed) return;
      // One sentence failing does not end the turn: the rest is still spoken, and the turn still ends with tts stop.
      if (err instanceof AudioEngineClosedError) {
        // Our audio thread, not the TTS provider: not a provider error.
        session.log.warn({ err: err.message }, 'sentence not encoded: the audio thread is unavailable');
        return;
      }
      const kind = providerErrorKind(err);
      session.ctx.metrics.providerErrors.labels('tts', kind).inc();
      session.log.warn({ err: errorMessage(err) }, 'TTS failed for a sentence');
      // A TTS that does not answer in time would make every later sentence wait as long again.
      if (kind === 'timeout') this.#ttsDown = true;
    } finally {
      if (target !== encoder) {
        target.dispose();
        encoder.restart();
      }
    }
  }

  /**
   * Frames go to the pacer in order once encoded (off the main thread with audio workers). A long TTS chunk is
   * encoded in small pieces, all requested at once: the first frames can leave while the rest are encoded.
   */
  async #enqueue(encoder: DownlinkEncoder, frames: Int16Array[], kept?: AudioPacket[]): Promise<void> {
    const pieces: Promise<AudioPacket[]>[] = [];
    for (let i = 0, n = PREBUFFER_FRAMES; i < frames.length; i += n, n = ENCODE_PIECE_FRAMES) {
      pieces.push(encoder.prepare(frames.slice(i, i + n), i === 0 && this.#pacer.pending < PREBUFFER_FRAMES));
    }
    // Every piece is awaited, so none rejects unobserved when an earlier one fails.
    const settled = pieces.map((p) =>
      p.then(
        (packets) => ({ packets }),
        (error: unknown) => ({ error }),
      ),
    );
    for (const piece of settled) {
      const r = await piece;
      if ('error' in r) throw r.error;
      if (this.scope.closed) return;
      // A sentence to keep is turned into Opus now, by its own encoder: with the inline engine prepare() hands
      // back raw frames, which the pacer would otherwise encode later with the session's encoder.
      const packets = kept ? r.packets.map((p) => encoder.packet(p)) : r.packets;
      for (const p of packets) this.#pacer.enqueueAudio(p);
      kept?.push(...packets);
    }
  }

  #sendStart(): void {
    if (this.#started) return;
    this.#started = true;
    this.#deps.session.send.json({ type: 'tts', state: 'start', session_id: this.#deps.session.sessionId });
  }

  #sendStop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#pacer.clear();
    this.#deps.session.send.json({ type: 'tts', state: 'stop', session_id: this.#deps.session.sessionId });
  }

  #report(): void {
    const { session } = this.#deps;
    const t = this.timings;
    const m = session.ctx.metrics;
    m.turns.labels(this.outcome ?? 'completed').inc();
    const span = (a?: number, b?: number) => (a !== undefined && b !== undefined ? (b - a) / 1000 : undefined);
    const stages: Record<string, number | undefined> = {
      asr: span(t.vadEnd, t.asrDone),
      llm: span(t.asrDone, t.llmFirstToken),
      tts: span(t.llmFirstToken, t.ttsFirstAudio),
      send: span(t.ttsFirstAudio, t.firstFrameSent),
      total: span(t.vadEnd, t.firstFrameSent),
    };
    const total = stages.total;
    const asr = stages.asr ?? 0;
    if (total !== undefined) stages.server = Math.max(0, total - asr - t.providerWaitMs / 1000);
    for (const [stage, v] of Object.entries(stages)) if (v !== undefined) m.turnStage.labels(stage).observe(v);
    const report: TurnReport = {
      outcome: this.outcome ?? 'completed',
      at: Date.now(),
      latencyMs: Object.fromEntries(
        Object.entries(stages)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, Math.round((v as number) * 1000)]),
      ),
    };
    session.log.info({ outcome: this.outcome, latencyMs: report.latencyMs }, 'turn ended');
    try {
      this.#deps.onReport?.(report);
    } catch (err) {
      session.log.error({ err }, 'turn report listener failed');
    }
  }
}
