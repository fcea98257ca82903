/**
 * Child processes of a benchmark: every one is tracked, so that any exit path (normal end, error, SIGINT,
 * SIGTERM, the hard timeout) stops all of them. Optionally pinned with taskset (server on CPU 0, load on the
 * others) and tied to this process with `setpriv --pdeathsig KILL`, so the kernel kills them even when this
 * process dies by SIGKILL. Both exec the next command, so a child's pid is the node process's own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';

export interface Child<M = unknown> {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  /** IPC messages received and not yet taken with nextMessage. */
  inbox: M[];
  /** The last few kB of its stdout + stderr. */
  output(): string;
}

export interface SpawnOptions {
  cwd: string;
  /** Added to this process's environment; an undefined value removes the variable (spawn skips it). */
  env?: Record<string, string | undefined>;
  /** Open an IPC channel (process.send in the child). */
  ipc?: boolean;
  /** taskset CPU list, used when pinning is on. */
  cpuList?: string;
}

/** Waits ms; with a signal, rejects (AbortError) as soon as it is aborted, its timer cleared. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((r) => setTimeout(r, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const err = new Error(reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted');
  err.name = 'AbortError';
  return err;
}

export const isAbort = (err: unknown): boolean => err instanceof Error && err.name === 'AbortError';
export const note = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

const available = (cmd: string, arg = '--version'): boolean => spawnSync(cmd, [arg]).status === 0;
const PDEATHSIG = available('setpriv');

/** CPU 0 for the server, the rest for everything else; `pinned` is false when asked off or impossible. */
export function cpuLayout(wanted: boolean): { pinned: boolean; server: string; load: string } {
  const n = cpus().length;
  const pinned = wanted && n >= 2 && available('taskset');
  return { pinned, server: '0', load: n > 2 ? `1-${n - 1}` : '1' };
}

/** Moves this very process onto a CPU list (so that the orchestrator stays off the server's CPU). */
export function pinSelf(cpuList: string): void {
  spawnSync('taskset', ['-pc', cpuList, String(process.pid)]);
}

const children = new Set<Child>();

export function running(c: Child): boolean {
  return c.pid > 0 && c.child.exitCode === null && c.child.signalCode === null;
}

/** Starts `node <args>` (this node binary), tracked until it exits. `pin` decides whether cpuList applies. */
export function spawnNode<M = unknown>(name: string, args: string[], opts: SpawnOptions, pin: boolean): Child<M> {
  const prefix = [
    ...(PDEATHSIG ? ['setpriv', '--pdeathsig', 'KILL'] : []),
    ...(pin && opts.cpuList ? ['taskset', '-c', opts.cpuList] : []),
  ];
  const [cmd, ...argv] = [...prefix, process.execPath, ...args] as [string, ...string[]];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  // Always drained: a full pipe would block a child that writes synchronously.
  const keep = (b: Buffer | string): void => void (tail = (tail + String(b)).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => keep(`spawn error: ${err.message}\n`));
  const c: Child<M> = {
    name,
    child,
    pid: child.pid ?? -1,
    inbox: [],
    output: () => tail.trim(),
    exited: new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => child.pid === undefined && resolve()); // never started
    }),
  };
  child.on('message', (m: M) => c.inbox.push(m));
  children.add(c as Child);
  void c.exited.then(() => children.delete(c as Child));
  return c;
}

/** SIGTERM, then SIGKILL after graceMs. */
export async function stopChild(c: Child, graceMs = 5000): Promise<void> {
  if (!running(c)) return;
  c.child.kill('SIGTERM');
  await exitedWithin(c, graceMs);
  if (running(c)) c.child.kill('SIGKILL');
  await exitedWithin(c, 2000);
}

/** Waits for the exit at most ms; the timer is cleared, so that it does not keep this process alive after. */
async function exitedWithin(c: Child, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.exited, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Every child still alive, stopped in parallel. */
export async function stopAllChildren(graceMs = 3000): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, graceMs)));
}

export function liveChildren(): Child[] {
  return [...children].filter(running);
}

export function send<T>(c: Child, msg: T): void {
  if (c.child.connected) c.child.send(msg as object, () => {});
}

/**
 * The next IPC message of this kind; fails if the child exits first, nothing comes within timeoutMs, or the
 * signal is aborted (AbortError).
 */
export async function nextMessage<M extends { kind: string }, K extends M['kind']>(
  c: Child<M>,
  kind: K,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Extract<M, { kind: K }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = c.inbox.findIndex((m) => m.kind === kind);
    if (i >= 0) return c.inbox.splice(i, 1)[0] as Extract<M, { kind: K }>;
    if (signal?.aborted) throw abortError(signal);
    if (!running(c)) throw new Error(`${c.name} exited before "${kind}": ${c.output()}`);
    if (Date.now() > deadline) throw new Error(`${c.name}: no "${kind}" within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export interface AbortOptions {
  /**
   * With it, SIGINT/SIGTERM and the timeout first abort it, so that the main path can stop its loops and report
   * what it measured; exit follows after graceMs if the main path has not called finish by then, or at once on a
   * second signal.
   */
  abort: AbortController;
  graceMs: number;
}

/**
 * Exit paths: SIGINT/SIGTERM and the hard timeout run `cleanup` (children are always stopped after it) and
 * exit. Returns `finish(code)`, which the main path calls the same way.
 */
export function installExitHandlers(
  timeoutSec: number,
  cleanup: () => Promise<void> | void = () => {},
  aborting?: AbortOptions,
): (code: number) => Promise<never> {
  let finishing: Promise<never> | undefined;
  const finish = (code: number): Promise<never> =>
    (finishing ??= (async () => {
      try {
        await cleanup();
      } catch (err) {
        note(`cleanup: ${(err as Error).message}`);
      }
      await stopAllChildren();
      process.exit(code);
    })());
  const stop = (why: string, code: number): void => {
    if (!aborting || aborting.abort.signal.aborted) {
      note(`${why}: stopping every child process`);
      void finish(code);
      return;
    }
    note(`${why}: stopping (again to stop at once)`);
    aborting.abort.abort(new Error(why));
    setTimeout(() => void finish(code), aborting.graceMs).unref();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => stop(sig, 130));
  setTimeout(() => stop(`--timeout of ${timeoutSec} s reached`, 1), timeoutSec * 1000).unref();
  return finish;
}
