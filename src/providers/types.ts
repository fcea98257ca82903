import { timeoutSignal } from '../signals.js';

/**
 * Provider interfaces. Providers know nothing of sessions or sockets: they get audio or text, an AbortSignal
 * and a deadline, and return audio or text. Every call must stop its network/process work when the signal aborts.
 */

/** 16-bit signed mono PCM with its rate. */
export interface PcmChunk {
  sampleRate: number;
  samples: Int16Array;
}

export interface CallOptions {
  signal: AbortSignal;
  /** Milliseconds this call may take before it is abandoned (on top of `signal`). */
  timeoutMs?: number;
}

// ---------------------------------------------------------------- ASR

export interface AsrResult {
  text: string;
}

/** One utterance being recognized. Audio is 16 kHz mono PCM. */
export interface AsrStream {
  write(samples: Int16Array): void;
  /** End of the utterance: resolves with the final text ('' when nothing was recognized). */
  finish(): Promise<AsrResult>;
  /** Drops the utterance and releases everything the stream holds (sockets, processes). Idempotent. */
  abort(): void;
}

export interface AsrProvider {
  readonly name: string;
  /** True when it recognizes while audio arrives (the pipeline then streams frames instead of buffering). */
  readonly streaming: boolean;
  /** A new, private stream: nothing is shared between sessions (seed #8). */
  createStream(opts: CallOptions & { sessionId: string }): AsrStream;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------- LLM

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as the model produced it. */
  arguments: string;
}

export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON schema of the arguments. */
  parameters: Record<string, unknown>;
}

export type LlmEvent =
  | { type: 'text'; text: string }
  /** The model began a tool call (its arguments still streaming): the answer has started, for the first-token deadline. */
  | { type: 'tool_call_started' }
  | { type: 'tool_calls'; calls: ToolCall[] };

export interface LlmRequest extends CallOptions {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  maxTokens?: number;
  temperature?: number;
}

export interface LlmProvider {
  readonly name: string;
  readonly model: string;
  /** Streams text deltas (with `<think>` blocks removed), `tool_call_started` once, and at the end any tool calls. */
  stream(req: LlmRequest): AsyncIterable<LlmEvent>;
  /** One non-streamed answer (memory summaries, meeting minutes). */
  complete(req: LlmRequest): Promise<string>;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------- TTS

export interface TtsProvider {
  readonly name: string;
  /** Speaks one sentence; chunks come at the engine's own rate and the caller resamples. */
  synthesize(text: string, opts: CallOptions): AsyncIterable<PcmChunk>;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------- VLLM

export interface VisionRequest extends CallOptions {
  question: string;
  image: Buffer;
  /** `image/jpeg`, `image/png`... */
  mimeType: string;
}

/** A vision model: answers one question about one image (the reference's `VLLM.response(question, image)`). */
export interface VllmProvider {
  readonly name: string;
  explain(req: VisionRequest): Promise<string>;
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------- VAD

export interface VadDecision {
  /** The smoothed "someone is speaking" state after this audio. */
  speaking: boolean;
  /** True on the chunk where an utterance ended (voice seen, then min_silence_duration_ms of silence). */
  endOfUtterance: boolean;
}

/** The reference's VAD block (`threshold`, `threshold_low`, `min_silence_duration_ms`), as src/voice/vad-decision.ts reads it. */
export interface VadThresholds {
  threshold: number;
  thresholdLow: number;
  minSilenceMs: number;
}

/** Per-session VAD state; 16 kHz mono PCM in any chunk size. */
export interface VadDetector {
  process(samples: Int16Array): VadDecision;
  reset(): void;
  dispose(): void;
}

/**
 * A VAD in plain data: enough to rebuild its model elsewhere (an audio worker thread builds its own from it,
 * see src/voice/audio-engine.ts).
 */
export type VadSpec =
  | { kind: 'silero'; alias: string; modelPath: string; thresholds: VadThresholds }
  | { kind: 'energy'; alias: string; thresholdDb: number; thresholds: VadThresholds };

export interface VadProvider {
  readonly name: string;
  readonly spec: VadSpec;
  /** A detector on the calling thread (tests, and servers run with `server.audio_workers: 0`). */
  createDetector(): VadDetector;
  dispose(): Promise<void>;
}

/** A provider that failed; `kind` lets the turn pick the spoken error and the metric label. */
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly kind: 'timeout' | 'http' | 'network' | 'process' | 'protocol' | 'config',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider}: ${message}`, options);
    this.name = 'ProviderError';
  }
}

/** Combines the caller's signal with a timeout into one signal. */
export function callSignal(opts: CallOptions): AbortSignal {
  return opts.timeoutMs && opts.timeoutMs > 0 ? timeoutSignal(opts.timeoutMs, opts.signal) : opts.signal;
}
