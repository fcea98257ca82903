/**
 * A Linus server under test as a process of its own: the built product (dist/, compiled JavaScript, as shipped),
 * `serve` on 127.0.0.1 with a temp data dir holding the given config.yaml, ready once /health answers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { running, sleep, spawnNode, stopChild, type Child } from './children.js';

/** Compiles src/ to dist/ (a build error stops the bench: it throws). */
export function buildDist(root: string): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface Health {
  status?: string;
  connections?: number;
  devices?: number;
}

export async function health(port: number, timeoutMs = 2000): Promise<Health | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as Health) : undefined;
  } catch {
    return undefined;
  }
}

export interface LinusProcess {
  child: Child;
  port: number;
  dataDir: string;
  url(path: string, scheme?: 'http' | 'ws'): string;
  /** SIGTERM (graceful: a --cpu-prof profile is written), SIGKILL after graceMs; removes the data dir. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartLinusOptions {
  root: string;
  config: string;
  /** Extra node flags, e.g. --cpu-prof --cpu-prof-dir=/tmp/prof. */
  nodeArgs?: string[];
  cpuList?: string;
  pin: boolean;
  startupTimeoutMs?: number;
}

export async function startLinus(opts: StartLinusOptions): Promise<LinusProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'linus-bench-'));
  writeFileSync(join(dataDir, 'config.yaml'), opts.config);
  const args = [...(opts.nodeArgs ?? []), 'dist/cli/index.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir];
  const child = spawnNode('Linus', args, { cwd: opts.root, ...(opts.cpuList ? { cpuList: opts.cpuList } : {}) }, opts.pin);
  const server: LinusProcess = {
    child,
    port,
    dataDir,
    url: (path, scheme = 'http') => `${scheme}://127.0.0.1:${port}${path}`,
    async stop(graceMs = 10_000) {
      await stopChild(child, graceMs);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + (opts.startupTimeoutMs ?? 60_000);
  for (;;) {
    if ((await health(port))?.status === 'ok') return server;
    if (!running(child)) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`Linus exited during startup: ${child.output()}`);
    }
    if (Date.now() > deadline) {
      await server.stop(2000);
      throw new Error(`Linus did not answer /health within ${(opts.startupTimeoutMs ?? 60_000) / 1000} s: ${child.output()}`);
    }
    await sleep(100);
  }
}

/** Waits until /health reports at most `n` connections; returns the last count seen. */
export async function waitForConnections(port: number, n: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  let seen: number | undefined;
  while (Date.now() < deadline) {
    seen = (await health(port))?.connections;
    if (seen !== undefined && seen <= n) return seen;
    await sleep(200);
  }
  return seen;
}
