/**
 * A Linus server under test as a process of its own: the built product (dist/, compiled JavaScript, as shipped)
 * or, for smoke runs, src/ through tsx; `serve` on 127.0.0.1 with a temp data dir holding the given config.yaml,
 * ready once /health answers. Also the bare `ws` baseline server (bench/bare-ws-server.mjs).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { running, sleep, spawnNode, stopChild, type Child } from './children.js';
import { httpGet } from './http.js';

/** Compiles src/ to dist/ (a build error stops the bench: it throws). */
export function buildDist(root: string): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}

let built = false;
/** Builds dist/ once per run (so that the numbers are those of the current sources); nothing to do from source. */
export function ensureBuilt(root: string, fromSource: boolean): void {
  if (fromSource || built) return;
  buildDist(root);
  built = true;
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

/** /health on a connection of its own (see http.ts); undefined when it does not answer 200. */
export async function health(port: number, timeoutMs = 2000): Promise<Health | undefined> {
  try {
    const res = await httpGet(`http://127.0.0.1:${port}/health`, timeoutMs);
    return res.status === 200 ? (JSON.parse(res.body) as Health) : undefined;
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
  /** Run src/ through tsx (`node --import tsx src/cli/index.ts serve`) instead of the built dist/. */
  fromSource?: boolean;
  /**
   * Serve this data dir instead of a fresh temp one (a restart on the same store). The caller owns it: stop()
   * and a failed start leave it in place.
   */
  dataDir?: string;
}

export async function startLinus(opts: StartLinusOptions): Promise<LinusProcess> {
  const port = await freePort();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'linus-bench-'));
  const removeDataDir = (): void => {
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  writeFileSync(join(dataDir, 'config.yaml'), opts.config);
  const entry = opts.fromSource ? ['--import', 'tsx', 'src/cli/index.ts'] : ['dist/cli/index.js'];
  const args = [
    ...(opts.nodeArgs ?? []),
    ...entry,
    'serve',
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--data-dir',
    dataDir,
  ];
  // The config is the file written here alone: LINUS_* variables of the caller's shell must not change it.
  const env = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('LINUS_'))
      .map((k) => [k, undefined]),
  );
  const child = spawnNode(
    'Linus',
    args,
    { cwd: opts.root, env, ...(opts.cpuList ? { cpuList: opts.cpuList } : {}) },
    opts.pin,
  );
  const server: LinusProcess = {
    child,
    port,
    dataDir,
    url: (path, scheme = 'http') => `${scheme}://127.0.0.1:${port}${path}`,
    async stop(graceMs = 10_000) {
      await stopChild(child, graceMs);
      removeDataDir();
    },
  };
  const deadline = Date.now() + (opts.startupTimeoutMs ?? 60_000);
  for (;;) {
    if ((await health(port))?.status === 'ok') return server;
    if (!running(child)) {
      removeDataDir();
      throw new Error(`Linus exited during startup: ${child.output()}`);
    }
    if (Date.now() > deadline) {
      await server.stop(2000);
      throw new Error(
        `Linus did not answer /health within ${(opts.startupTimeoutMs ?? 60_000) / 1000} s: ${child.output()}`,
      );
    }
    await sleep(100);
  }
}

export interface BareServer {
  child: Child;
  port: number;
  url(path: string, scheme?: 'http' | 'ws'): string;
  stop(graceMs?: number): Promise<void>;
}

/** The bare `ws` baseline (bench/bare-ws-server.mjs, plain JavaScript), ready once /health answers. */
export async function startBareWs(opts: {
  root: string;
  nodeArgs?: string[];
  cpuList?: string;
  pin: boolean;
}): Promise<BareServer> {
  const port = await freePort();
  // With an IPC channel: when this process goes away, the server's `disconnect` handler ends it.
  const child = spawnNode(
    'bare ws server',
    [...(opts.nodeArgs ?? []), 'bench/bare-ws-server.mjs', '--port', String(port)],
    { cwd: opts.root, ipc: true, ...(opts.cpuList ? { cpuList: opts.cpuList } : {}) },
    opts.pin,
  );
  const server: BareServer = {
    child,
    port,
    url: (path, scheme = 'http') => `${scheme}://127.0.0.1:${port}${path}`,
    stop: (graceMs = 5000) => stopChild(child, graceMs),
  };
  const deadline = Date.now() + 30_000;
  while ((await health(port))?.status !== 'ok') {
    if (!running(child)) throw new Error(`the bare ws server exited during startup: ${child.output()}`);
    if (Date.now() > deadline) {
      await server.stop(1000);
      throw new Error(`the bare ws server did not answer /health within 30 s: ${child.output()}`);
    }
    await sleep(100);
  }
  return server;
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
