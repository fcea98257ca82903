import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { access } from 'node:fs/promises';
import { z } from 'zod';
import { findExecutable, missingToolError, stderrTail } from '../system-tools.js';
import { ProviderError } from '../types.js';
import type { AsrProvider, AsrResult, AsrStream, CallOptions } from '../types.js';

/**
 * Offline ASR with Debian's `pocketsphinx_continuous`: one process per utterance, started when the stream is
 * created so that the ~0.5 s model load overlaps the speech, fed raw 16 kHz s16le mono PCM on stdin.
 */

const MODEL = '/usr/share/pocketsphinx/model/en-us';

const Options = z.looseObject({
  /** Overrides the executable (a name on PATH or a path). */
  binary: z.string().min(1).default('pocketsphinx_continuous'),
  hmm: z.string().min(1).default(`${MODEL}/en-us`),
  lm: z.string().min(1).default(`${MODEL}/en-us.lm.bin`),
  dict: z.string().min(1).default(`${MODEL}/cmudict-en-us.dict`),
  /** A JSGF grammar file: recognition is then limited to it (and the language model is not loaded). */
  jsgf: z.string().min(1).optional(),
  /**
   * How long the process may take, after finish(), to print its text. The deadline runs from finish(), not
   * from the stream's start: how long someone speaks is the VAD's business. Set here, it wins over the
   * caller's `timeoutMs`, which wins over 10 s.
   */
  timeout_ms: z.number().int().positive().optional(),
});
type Options = z.infer<typeof Options>;

/**
 * Node's stdio pipes are socketpairs, and pocketsphinx fopen()s `-infile`: `/dev/stdin` on a socket fails with
 * ENXIO, so `cat |` hands it a real pipe. The tool and its arguments arrive as "$@", never inside the script.
 * sh ignores SIGTERM while cat and pocketsphinx get it back: killing the process group with SIGTERM ends both
 * at once and sh stays to reap them, so no orphan is left for PID 1 (which may be Node, which never reaps it).
 */
const WRAPPER = `trap '' TERM; { trap - TERM; exec cat; } | { trap - TERM; exec "$@"; }`;
const DEFAULT_TIMEOUT_MS = 10_000;
const TERM_REPEAT_MS = 20;
const KILL_AFTER_MS = 2000;

export function createPocketsphinxAsr(alias: string, block: Record<string, unknown>): AsrProvider {
  const parsed = Options.safeParse(block);
  if (!parsed.success) throw new ProviderError(alias, 'config', z.prettifyError(parsed.error));
  const options = parsed.data;
  const args = [
    '-infile',
    '/dev/stdin',
    '-hmm',
    options.hmm,
    '-dict',
    options.dict,
    ...(options.jsgf ? ['-jsgf', options.jsgf] : ['-lm', options.lm]),
  ];
  const live = new Set<PocketsphinxStream>();
  return {
    name: alias,
    streaming: true,
    createStream(opts) {
      const stream = new PocketsphinxStream(alias, options, args, opts, () => live.delete(stream));
      live.add(stream);
      return stream;
    },
    async dispose() {
      for (const stream of live) stream.abort();
    },
  };
}

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

class PocketsphinxStream implements AsrStream {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exit: Promise<Exit>;
  readonly #stderr = stderrTail();
  readonly #abortController = new AbortController();
  #stdout = '';
  #exited = false;
  #killing = false;
  #finishing: Promise<AsrResult> | undefined;

  constructor(
    private readonly provider: string,
    private readonly options: Options,
    args: string[],
    private readonly opts: CallOptions,
    onEnd: () => void,
  ) {
    // detached: sh leads its own process group, so abort can signal cat and pocketsphinx too.
    this.#child = spawn('sh', ['-c', WRAPPER, 'sh', options.binary, ...args], { stdio: 'pipe', detached: true });
    this.#child.stdout.setEncoding('utf8').on('data', (text: string) => (this.#stdout += text));
    this.#child.stderr.on('data', (chunk: Buffer) => this.#stderr.push(chunk));
    // Writes after the process died fail with EPIPE; finish() reports why it died instead.
    this.#child.stdin.on('error', () => {});
    this.#exit = new Promise<Exit>((resolve) => {
      this.#child.once('error', (error) => resolve({ code: null, signal: null, error }));
      // 'close' rather than 'exit': stdout is then complete.
      this.#child.once('close', (code, signal) => resolve({ code, signal }));
    }).finally(() => {
      this.#exited = true;
      opts.signal.removeEventListener('abort', this.#onAbort);
      onEnd();
    });
    if (opts.signal.aborted) this.abort();
    else opts.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  write(samples: Int16Array): void {
    if (this.#finishing || this.#abortController.signal.aborted) return;
    // A copy: the caller may reuse its buffer while this one waits in the pipe's queue.
    this.#child.stdin.write(Buffer.from(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength)));
  }

  finish(): Promise<AsrResult> {
    this.#finishing ??= this.#finish();
    return this.#finishing;
  }

  abort(): void {
    if (this.#abortController.signal.aborted) return;
    this.#abortController.abort(
      this.opts.signal.aborted ? this.opts.signal.reason : new DOMException('ASR stream aborted', 'AbortError'),
    );
    this.#kill();
  }

  readonly #onAbort = (): void => this.abort();

  async #finish(): Promise<AsrResult> {
    const aborted = this.#abortController.signal;
    if (aborted.aborted) throw aborted.reason;
    this.#child.stdin.end();
    const timeoutMs = this.options.timeout_ms ?? this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#kill();
        reject(new ProviderError(this.provider, 'timeout', `no result within ${timeoutMs} ms`));
      }, timeoutMs);
      onAbort = () => reject(aborted.reason);
      aborted.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const exit = await Promise.race([this.#exit, deadline]);
      if (exit.code === 0)
        return {
          text: this.#stdout
            .split('\n')
            .map((line) => line.trim())
            .filter(Boolean)
            .join(' '),
        };
      throw await this.#failure(exit);
    } finally {
      clearTimeout(timer);
      if (onAbort) aborted.removeEventListener('abort', onAbort);
    }
  }

  /** Why the process failed: a missing tool or model is a config error, anything else a process error. */
  async #failure(exit: Exit): Promise<ProviderError> {
    const { binary, hmm, dict, lm, jsgf } = this.options;
    // 127/126: sh could not find or run the tool.
    if (exit.code === 127 || exit.code === 126 || !(await findExecutable(binary)))
      return missingToolError(this.provider, binary);
    for (const path of [hmm, dict, jsgf ?? lm]) {
      try {
        await access(path);
      } catch {
        // Absent or unreadable, this file is why the tool failed: the error names it.
        const hint = path.startsWith(MODEL) ? ' (apt-get install pocketsphinx-en-us)' : '';
        return new ProviderError(this.provider, 'config', `model file ${path} is missing${hint}`);
      }
    }
    const errors = this.#stderr
      .text()
      .split('\n')
      .filter((line) => /ERROR|FATAL/.test(line))
      .slice(-3)
      .join('; ');
    const how = exit.error ? exit.error.message : exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
    return new ProviderError(this.provider, 'process', `${binary} failed (${how})${errors ? `: ${errors}` : ''}`, {
      cause: exit.error,
    });
  }

  /**
   * Ends the whole process group now. SIGTERM is repeated because a subshell forked a moment ago still
   * ignores it until its `trap - TERM` has run; SIGKILL (which would orphan cat and pocketsphinx) is the last resort.
   */
  #kill(): void {
    if (this.#exited || this.#killing) return;
    this.#killing = true;
    this.#child.stdin.destroy();
    const group = this.#child.pid;
    if (group === undefined) return;
    signalGroup(group, 'SIGTERM');
    const repeat = setInterval(() => signalGroup(group, 'SIGTERM'), TERM_REPEAT_MS);
    const escalate = setTimeout(() => signalGroup(group, 'SIGKILL'), KILL_AFTER_MS);
    void this.#exit.finally(() => {
      clearInterval(repeat);
      clearTimeout(escalate);
    });
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}
