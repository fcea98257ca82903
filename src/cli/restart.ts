import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { makeDirs } from '../dirs.js';
import { dirname } from 'node:path';
import type { LinusServer } from '../server.js';

/**
 * Restart (D14, seed #6): drain first (stop accepting, tell devices, finish saves, flush the store), then
 * either exit for a supervisor to restart us, or start the replacement detached — same argv, env and cwd,
 * stdio to the log file and never the terminal, so nohup and background runs cannot be stopped by SIGTTIN —
 * and exit 0. The replacement retries the port until this process has let it go.
 */
export async function restartProcess(
  server: LinusServer,
  opts: { supervised: boolean; logFile: string },
): Promise<never> {
  await server.close('restart');
  if (opts.supervised) process.exit(0);
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
