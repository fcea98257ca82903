import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { makeDirs } from '../dirs.js';
import { dirname } from 'node:path';
import type { LinusServer } from '../server.js';

/** After the drain's waits end at `server.shutdown_timeout_ms`, closing the rest takes milliseconds; allow this. */
export const STOP_GRACE_MS = 1000;

/**
 * Drains the server within `server.shutdown_timeout_ms` plus a grace: resolves true when the drain finished,
 * false when a close hung past the budget (then the caller goes on regardless — a stop or restart always ends,
 * whatever a part or the log sink does).
 */
export function drainWithin(server: LinusServer, reason: string): Promise<boolean> {
  const budget = server.ctx.config.current.server.shutdown_timeout_ms;
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`linus: the drain did not finish within ${budget} ms (server.shutdown_timeout_ms)\n`);
      resolve(false);
    }, budget + STOP_GRACE_MS);
  });
  return Promise.race([server.close(reason).then(() => true), hung]).finally(() => clearTimeout(timer));
}

/**
 * Restart (D14, seed #6): drain first (stop accepting, tell devices, finish saves, flush the store), then
 * either exit for a supervisor to restart us, or start the replacement detached — same argv, env and cwd,
 * stdio to the log file and never the terminal, so nohup and background runs cannot be stopped by SIGTTIN —
 * and exit 0. The replacement retries the port until this process has let it go. A drain that hangs past its
 * budget does not stop the restart: the replacement is started all the same (it waits for the port).
 */
export async function restartProcess(
  server: LinusServer,
  opts: { supervised: boolean; logFile: string },
): Promise<never> {
  const drained = await drainWithin(server, 'restart');
  if (opts.supervised) process.exit(drained ? 0 : 1);
  makeDirs(dirname(opts.logFile));
  const out = openSync(opts.logFile, 'a');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    cwd: process.cwd(),
    env: { ...process.env, LINUS_BIND_RETRY_MS: '15000' },
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  closeSync(out);
  process.exit(0);
}
