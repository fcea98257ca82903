/**
 * Runs `linus bench` as a user would (bench/run.ts in a process of its own, --json) and hands back the parsed
 * ProfileResult with the exit code. A run still going at the deadline gets SIGTERM (the runner aborts its profile
 * and stops its children), then SIGKILL (its children die with it: they are spawned with --pdeathsig).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Figure, ProfileResult } from '../../bench/lib/profile.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
  result: ProfileResult;
}

export function runBench(args: string[], deadlineMs = 120_000): Promise<BenchRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const term = setTimeout(() => child.kill('SIGTERM'), deadlineMs);
  const kill = setTimeout(() => child.kill('SIGKILL'), deadlineMs + 40_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      let result: ProfileResult;
      try {
        result = JSON.parse(stdout) as ProfileResult;
      } catch {
        return reject(
          new Error(
            `bench ${args.join(' ')} exited ${code} without a JSON result\nstdout: ${stdout}\nstderr: ${stderr.slice(-4000)}`,
          ),
        );
      }
      resolve({ code, stdout, stderr, result });
    });
  });
}

/** The figure whose name starts with `prefix` (it must exist). */
export function figure(r: ProfileResult, prefix: string): Figure {
  const f = r.figures.find((x) => x.name.startsWith(prefix));
  if (!f) throw new Error(`no figure "${prefix}…" in ${r.figures.map((x) => x.name).join(' | ')}`);
  return f;
}

/** Every numeric figure is finite (JSON turns NaN and Infinity into null). */
export function nonFinite(r: ProfileResult): string[] {
  return r.figures.filter((f) => typeof f.value !== 'string' && !Number.isFinite(f.value)).map((f) => f.name);
}

/** What went wrong, for an assertion message. */
export function explainRun(run: BenchRun): string {
  return `exit ${run.code}\n${JSON.stringify({ failures: run.result.failures, figures: run.result.figures.map((f) => `${f.name}: ${f.value}`), notes: run.result.notes }, null, 2)}\nstderr: ${run.stderr.slice(-3000)}`;
}
