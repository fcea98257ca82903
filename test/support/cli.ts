import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

/** The repository root: the CLI is run from there, through tsx, as `linus` would run it. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI_ENTRY = 'src/cli/index.ts';

export interface CliOptions {
  /** Extra environment; LINUS_* variables of the parent are always removed first. `undefined` removes a key. */
  env?: Record<string, string | undefined>;
  /** Where the child's stdout goes (an open file descriptor: a FIFO, a file); by default a pipe read into `stdout`. */
  stdout?: number;
  /** Run as this user/group (child_process.spawn `uid`/`gid`). */
  uid?: number;
  gid?: number;
}

export interface CliResult {
  /** Exit code; null when the process was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, for diagnostics only. */
  ms: number;
}

/** The parent environment without any LINUS_* variable, plus `extra`. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LINUS_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

const live = new Set<ChildProcess>();

/** A running `linus ...` child process with its output collected as it comes. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly started = performance.now();
  stdout = '';
  stderr = '';
  /** Resolves when the process has exited and its output streams are drained. */
  readonly exited: Promise<CliResult>;

  constructor(args: string[], opts: CliOptions = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
      cwd: REPO_ROOT,
      env: cliEnv(opts.env),
      stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    live.add(this.child);
    this.child.stdout?.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', (err) => {
        live.delete(this.child);
        reject(err);
      });
      // 'close' (not 'exit') fires once stdout and stderr are fully read.
      this.child.once('close', (code, signal) => {
        live.delete(this.child);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, ms: performance.now() - this.started });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGKILL if still running, and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited.catch(() => undefined);
  }
}

/** Starts `linus <args>` and returns at once; the caller waits on `exited` or kills it. */
export function spawnCli(args: string[], opts: CliOptions = {}): CliProcess {
  return new CliProcess(args, opts);
}

/**
 * Runs `linus <args>` to completion. A process still running after `timeoutMs` is killed and the
 * promise rejects with what it printed so far: a hung CLI is a failure, never a hung test run.
 */
export async function runCli(args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  const proc = spawnCli(args, opts);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void proc.kill();
      reject(
        new Error(
          `linus ${args.join(' ')} still running after ${timeoutMs} ms\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`,
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every CLI child still running (for `after` hooks). */
export async function killAllCli(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** A TCP port that was free a moment ago (bound on port 0, then released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls GET /health until it answers, the process exits, or the deadline passes. */
export async function waitForHealth(
  proc: CliProcess,
  port: number,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running)
      throw new Error(`linus exited before serving on port ${port}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return (await res.json()) as Record<string, unknown>;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(
        `no /health on port ${port} within ${timeoutMs} ms\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`,
      );
    await sleep(50);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function isListening(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

/** The non-empty lines of a text. */
export const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
