import { spawn } from 'node:child_process';
import { z } from 'zod';
import { errorMessage } from '../../errors.js';
import { readWav } from '../../voice/wav.js';
import { missingToolError, requireExecutable, stderrTail } from '../system-tools.js';
import { ProviderError } from '../types.js';
import type { CallOptions, PcmChunk, TtsProvider } from '../types.js';

/**
 * Offline TTS with Debian's `espeak-ng` (GPL-3, kept out of the app by running it as a process). It writes a
 * 22050 Hz mono WAV to stdout, which works from Node (unlike /dev/stdout), and the samples are yielded as
 * they arrive, so a long sentence starts playing before espeak has finished it.
 */

const Options = z.looseObject({
  /** Overrides the executable (a name on PATH or a path). */
  binary: z.string().min(1).default('espeak-ng'),
  /** `espeak-ng --voices` lists them; an unknown one is an error (exit code 1). */
  voice: z.string().min(1).default('en-us'),
  /** Words per minute (espeak's own default is 175). */
  speed: z.number().int().min(80).max(500).optional(),
  /** Per sentence; set here, it wins over the caller's `timeoutMs`, which wins over 10 s. */
  timeout_ms: z.number().int().positive().optional(),
});

const DEFAULT_TIMEOUT_MS = 10_000;

export function createEspeakTts(alias: string, block: Record<string, unknown>): TtsProvider {
  const parsed = Options.safeParse(block);
  if (!parsed.success) throw new ProviderError(alias, 'config', z.prettifyError(parsed.error));
  const options = parsed.data;
  let executable: string | undefined; // only a success is remembered: installing espeak-ng later fixes it

  return {
    name: alias,
    async *synthesize(text: string, opts: CallOptions): AsyncIterable<PcmChunk> {
      if (!text.trim()) return;
      opts.signal.throwIfAborted();
      executable ??= await requireExecutable(alias, options.binary);
      const speed = options.speed === undefined ? [] : ['-s', String(options.speed)];
      // '--' ends the options: a sentence starting with '-' is spoken, not parsed.
      const child = spawn(executable, ['--stdout', '-v', options.voice, ...speed, '--', text], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stderr = stderrTail();
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      const exited = new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
        child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, error }));
        child.once('close', (code) => resolve({ code }));
      });

      // One signal for "stop now": the caller's abort or the deadline. It kills espeak, which ends stdout.
      const stop = new AbortController();
      const timeoutMs = options.timeout_ms ?? opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const timer = setTimeout(
        () => stop.abort(new ProviderError(alias, 'timeout', `no audio within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => stop.abort(opts.signal.reason);
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener('abort', onAbort, { once: true });
      stop.signal.addEventListener('abort', () => child.kill('SIGKILL'), { once: true });

      try {
        let pending: Buffer = Buffer.alloc(0);
        let sampleRate: number | undefined;
        for await (const data of child.stdout as AsyncIterable<Buffer>) {
          stop.signal.throwIfAborted();
          pending = pending.length ? Buffer.concat([pending, data]) : data;
          if (sampleRate === undefined) {
            const offset = dataOffset(pending);
            if (offset === undefined) continue; // the header is not complete yet
            sampleRate = headerRate(alias, pending.subarray(0, offset));
            pending = pending.subarray(offset);
          }
          const bytes = pending.length & ~1; // an odd byte waits for its other half
          if (bytes > 0) yield { sampleRate, samples: toSamples(pending.subarray(0, bytes)) };
          pending = pending.subarray(bytes);
        }
        const { code, error } = await exited;
        stop.signal.throwIfAborted();
        if (error) throw error.code === 'ENOENT' ? missingToolError(alias, executable) : error;
        if (code !== 0)
          throw new ProviderError(alias, 'process', `espeak-ng failed (exit code ${code}): ${stderr.text()}`);
        if (sampleRate === undefined) throw new ProviderError(alias, 'protocol', 'espeak-ng wrote no WAV header');
      } finally {
        clearTimeout(timer);
        opts.signal.removeEventListener('abort', onAbort);
        // The consumer may stop early (break, turn closed): the process must not outlive the sentence.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited; // immediate after SIGKILL; the caller then knows the process is gone
      }
    },
    async dispose() {},
  };
}

/**
 * Where the samples start in a WAV stream, once the whole header has arrived. espeak-ng writes a bogus data
 * length (it cannot know it), so readWav is used only to check the header, and the samples are streamed.
 */
function dataOffset(buf: Buffer): number | undefined {
  let offset = 12; // after "RIFF" <size> "WAVE"
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32LE(offset + 4);
    if (buf.toString('latin1', offset, offset + 4) === 'data') return offset + 8;
    offset += 8 + size + (size & 1);
  }
  return undefined;
}

/** The sample rate of a WAV header; readWav checks that it is RIFF, 16-bit PCM. */
function headerRate(provider: string, header: Buffer): number {
  try {
    return readWav(header).sampleRate;
  } catch (err) {
    throw new ProviderError(provider, 'protocol', `espeak-ng wrote an unexpected WAV: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Little-endian s16 bytes → samples, copied so that the chunk owns aligned memory. */
function toSamples(bytes: Buffer): Int16Array {
  const samples = new Int16Array(bytes.length / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
  return samples;
}
