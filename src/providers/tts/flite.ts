import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { readWav } from '../../voice/wav.js';
import { missingToolError, requireExecutable, stderrTail } from '../system-tools.js';
import { ProviderError } from '../types.js';
import type { CallOptions, PcmChunk, TtsProvider } from '../types.js';

/**
 * Offline TTS with Debian's `flite` (voice `slt` speaks 16 kHz mono, what the device wants). flite cannot write
 * to /dev/stdout when Node spawns it (stdio is a socketpair), so each sentence goes through a temp WAV file.
 */

const Options = z.looseObject({
  /** Overrides the executable (a name on PATH or a path). */
  binary: z.string().min(1).default('flite'),
  /** `flite -lv` lists them; an unknown name makes flite fall back to `kal` (8 kHz) without an error. */
  voice: z.string().min(1).default('slt'),
  /** Per sentence; set here, it wins over the caller's `timeoutMs`, which wins over 10 s. */
  timeout_ms: z.number().int().positive().optional(),
});

const DEFAULT_TIMEOUT_MS = 10_000;

export function createFliteTts(alias: string, block: Record<string, unknown>): TtsProvider {
  const parsed = Options.safeParse(block);
  if (!parsed.success) throw new ProviderError(alias, 'config', z.prettifyError(parsed.error));
  const options = parsed.data;
  let executable: string | undefined; // only a success is remembered: installing flite later fixes it

  return {
    name: alias,
    async *synthesize(text: string, opts: CallOptions): AsyncIterable<PcmChunk> {
      // A text starting with '-' looks like an option: flite 2.2 happens to take the word after -t literally,
      // but that is one parser's detail, and dropping leading dashes costs nothing.
      const spoken = text.replace(/^[\s-]+/, '').trimEnd();
      if (!spoken) return;
      opts.signal.throwIfAborted();
      executable ??= await requireExecutable(alias, options.binary);
      const file = join(tmpdir(), `linus-flite-${randomUUID()}.wav`);
      let pcm: PcmChunk;
      try {
        const timeoutMs = options.timeout_ms ?? opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        await run(alias, executable, ['-voice', options.voice, '-o', file, '-t', spoken], opts.signal, timeoutMs);
        pcm = readWav(await readFile(file));
      } finally {
        // Before the yield: a consumer that never comes back must not leave the file behind.
        await rm(file, { force: true });
      }
      opts.signal.throwIfAborted();
      yield pcm;
    },
    async dispose() {},
  };
}

/** Runs flite to the end; the caller's abort or the deadline kills it at once. */
function run(
  provider: string,
  executable: string,
  args: string[],
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr = stderrTail();
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let failure: unknown;
    const stop = (reason: unknown): void => {
      failure ??= reason;
      child.kill('SIGKILL');
    };
    const onAbort = (): void => stop(signal.reason);
    const timer = setTimeout(
      () => stop(new ProviderError(provider, 'timeout', `no audio within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const done = (error: unknown): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      done(failure ?? (err.code === 'ENOENT' ? missingToolError(provider, executable) : err)),
    );
    // 'close' waits for stderr too, so the message below is complete.
    child.once('close', (code, sig) => {
      if (failure) done(failure);
      else if (code === 0) done(undefined);
      else
        done(
          new ProviderError(
            provider,
            'process',
            `flite failed (${sig ? `killed by ${sig}` : `exit code ${code}`}): ${stderr.text()}`,
          ),
        );
    });
  });
}
