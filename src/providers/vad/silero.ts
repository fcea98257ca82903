/**
 * Silero VAD v5 run directly with onnxruntime-node, for one speech probability per 512-sample window (the
 * reference's dual-threshold decision needs probabilities; sherpa-onnx's Vad only exposes segments).
 *
 * Runtime choice (measured on this 2-core machine, one thread, CPU time): onnxruntime-node 4–7k windows/s
 * (140–250 µs each); onnxruntime-web (wasm) 0.5–1.8k windows/s and 1.5–2.4 s to create a session. Both only
 * offer an async `run()`, while VadDetector.process is synchronous; onnxruntime-node's public run() is only
 * `setImmediate` around its native synchronous `run`, so we call that binding (version pinned, shape checked).
 *
 * One ORT session (the weights) per provider (per audio worker thread), shared by all streams: it holds no
 * per-stream state. The model's recurrent state and its 64-sample context live with each stream, so two device
 * sessions never share them, and a stream costs a few kB to create.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as OrtBindingModule from 'onnxruntime-node/dist/binding.js';
import type * as OrtModule from 'onnxruntime-node';
import { errorMessage } from '../../errors.js';
import {
  createWindowedDetector,
  parseVadThresholds,
  singleStream,
  VAD_SAMPLE_RATE,
  VAD_WINDOW_SAMPLES,
  type BatchWindowModel,
} from '../../voice/vad-decision.js';
import { ProviderError } from '../types.js';
import type { VadDetector, VadProvider } from '../types.js';

type OrtSession = InstanceType<typeof OrtBindingModule.binding.InferenceSession>;
type Tensor = OrtModule.Tensor;

/** Silero's own wrapper prepends the previous window's last 64 samples; without them p is much less sharp. */
const CONTEXT_SAMPLES = 64;
const STATE_SIZE = 2 * 1 * 128;
const MODEL_FILE = 'silero_vad_v5.onnx';

const require = createRequire(import.meta.url);

/** Loaded on first use, so a config that uses another VAD never loads the 45 MB native runtime. */
function loadOrt(alias: string): { ort: typeof OrtModule; binding: typeof OrtBindingModule.binding } {
  try {
    const ort = require('onnxruntime-node') as typeof OrtModule;
    const internal = require('onnxruntime-node/dist/binding.js') as typeof OrtBindingModule;
    if (typeof internal.initOrt !== 'function' || typeof internal.binding?.InferenceSession !== 'function') {
      throw new Error('onnxruntime-node/dist/binding.js changed shape; this code expects onnxruntime-node 1.30');
    }
    internal.initOrt();
    return { ort, binding: internal.binding };
  } catch (err) {
    throw new ProviderError(alias, 'config', `cannot load onnxruntime-node: ${errorMessage(err)}`, { cause: err });
  }
}

/** `model_path` (a file), else `model_dir` (the reference's layout or a folder with the file), else models/ of this repo. */
export function resolveSileroModel(alias: string, block: Record<string, unknown>): string {
  const path = block.model_path;
  if (typeof path === 'string' && path !== '') {
    if (!existsSync(path)) throw new ProviderError(alias, 'config', `model_path ${path} does not exist`);
    return resolve(path);
  }
  const dir = block.model_dir;
  if (typeof dir === 'string' && dir !== '') {
    const candidates = [MODEL_FILE, 'silero_vad.onnx', 'src/silero_vad/data/silero_vad.onnx'].map((f) => join(dir, f));
    const found = candidates.find((f) => existsSync(f));
    if (!found)
      throw new ProviderError(
        alias,
        'config',
        `no Silero ONNX model in model_dir ${dir} (looked for ${candidates.join(', ')})`,
      );
    return resolve(found);
  }
  // Walk up from this file: the same code runs from src/ (tsx) and from dist/src/ (built).
  for (let d = dirname(fileURLToPath(import.meta.url)), i = 0; i < 6; d = dirname(d), i++) {
    const f = join(d, 'models', MODEL_FILE);
    if (existsSync(f) && statSync(f).isFile()) return f;
  }
  throw new ProviderError(alias, 'config', `models/${MODEL_FILE} not found; set model_path`);
}

interface SileroState {
  /** The model's recurrent state, [2, 1, 128]. */
  state: Float32Array;
  /** The previous window's last 64 samples. */
  context: Float32Array;
}

const HALF_STATE = STATE_SIZE / 2;

/**
 * Silero v5 as a batch model: one ORT session (the weights) scores the windows of many streams in one run,
 * each stream bringing its own recurrent state and context. Throws ProviderError when the file is not a v5 model.
 */
export function createSileroModel(alias: string, modelPath: string): BatchWindowModel<SileroState> {
  const { ort, binding } = loadOrt(alias);
  let session: OrtSession | undefined = new binding.InferenceSession();
  try {
    // One thread: parallelism comes from batching and from audio worker threads, not from ORT's own pool.
    // No memory arena or per-shape memory pattern: batches come in every size, and ORT kept memory for each
    // (+30 MiB over 34 sizes here, a soak's RSS climbing for minutes), at no measurable gain in speed.
    session.loadModel(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableCpuMemArena: false,
      enableMemPattern: false,
    });
  } catch (err) {
    throw new ProviderError(alias, 'config', `cannot load ${modelPath}: ${errorMessage(err)}`, { cause: err });
  }
  const inputs = session.inputMetadata
    .map((m) => m.name)
    .sort()
    .join(',');
  if (inputs !== 'input,sr,state') {
    session.dispose();
    throw new ProviderError(
      alias,
      'config',
      `${modelPath} is not a Silero v5 model (inputs: ${inputs}; v5 has input, state, sr)`,
    );
  }
  const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]), []);
  let silenceState: Float32Array | undefined;
  const row = CONTEXT_SAMPLES + VAD_WINDOW_SAMPLES;
  return {
    createState: () => ({ state: new Float32Array(STATE_SIZE), context: new Float32Array(CONTEXT_SAMPLES) }),
    resetState(s) {
      s.state.fill(0);
      s.context.fill(0);
    },
    score(states, windows) {
      if (!session) throw new ProviderError(alias, 'config', 'VAD used after its provider was disposed');
      const n = states.length;
      const input = new Float32Array(n * row);
      // The state tensor is [2, batch, 128]: layer-major, so each stream's two halves sit n·128 apart.
      const state = new Float32Array(2 * n * HALF_STATE);
      for (let b = 0; b < n; b++) {
        const s = states[b]!;
        input.set(s.context, b * row);
        input.set(windows[b]!, b * row + CONTEXT_SAMPLES);
        state.set(s.state.subarray(0, HALF_STATE), b * HALF_STATE);
        state.set(s.state.subarray(HALF_STATE), (n + b) * HALF_STATE);
      }
      const out = session.run(
        {
          input: new ort.Tensor('float32', input, [n, row]),
          state: new ort.Tensor('float32', state, [2, n, HALF_STATE]),
          sr,
        },
        { output: null, stateN: null },
        {},
      ) as Record<'output' | 'stateN', Tensor>;
      const next = out.stateN.data as Float32Array;
      for (let b = 0; b < n; b++) {
        const s = states[b]!;
        s.state.set(next.subarray(b * HALF_STATE, (b + 1) * HALF_STATE), 0);
        s.state.set(next.subarray((n + b) * HALF_STATE, (n + b + 1) * HALF_STATE), HALF_STATE);
        s.context.set(windows[b]!.subarray(VAD_WINDOW_SAMPLES - CONTEXT_SAMPLES));
      }
      return out.output.data as Float32Array;
    },
    skip(s, window) {
      if (!session) throw new ProviderError(alias, 'config', 'VAD used after its provider was disposed');
      // As if the window had been scored: the state Silero settles in on silence (a stale state made it hear speech
      // in faint noise after a quiet stretch), and this window's end prepended to the next one.
      silenceState ??= settleOnSilence(this);
      s.state.set(silenceState);
      s.context.set(window.subarray(VAD_WINDOW_SAMPLES - CONTEXT_SAMPLES));
    },
    dispose() {
      // Frees the native session; a stream still alive then throws on its next window instead of touching freed memory.
      session?.dispose();
      session = undefined;
    },
  };
}

/** Silero's recurrent state after a second of digital silence: where it settles whatever came before. */
function settleOnSilence(model: BatchWindowModel<SileroState>): Float32Array {
  const s = model.createState();
  const zero = new Float32Array(VAD_WINDOW_SAMPLES);
  for (let i = 0; i < 32; i++) model.score([s], [zero]);
  return s.state;
}

/**
 * The provider: thresholds and model path are checked at once; the ORT session is built on the first
 * detector, so a server whose VAD runs in audio worker threads never loads the runtime on its main thread.
 */
export function createSileroVad(alias: string, block: Record<string, unknown>): VadProvider {
  const thresholds = parseVadThresholds(alias, block);
  const modelPath = resolveSileroModel(alias, block);
  let model: BatchWindowModel<SileroState> | undefined;
  let disposed = false;
  return {
    name: alias,
    spec: { kind: 'silero', alias, modelPath, thresholds },
    createDetector(): VadDetector {
      if (disposed) throw new ProviderError(alias, 'config', 'VAD provider used after dispose()');
      model ??= createSileroModel(alias, modelPath);
      return createWindowedDetector(singleStream(model), thresholds);
    },
    async dispose() {
      disposed = true;
      model?.dispose();
    },
  };
}
