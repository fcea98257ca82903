import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { deepMerge } from '../../src/config/reload.js';
import { silentLogger, type Logger } from '../../src/observability/log.js';
import { startServer, type LinusServer } from '../../src/server.js';

export interface TestServer extends LinusServer {
  dataDir: string;
  /** Closes the server and removes its data dir. */
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

export function tempDir(prefix = 'linus-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A real Linus server on 127.0.0.1 with an ephemeral port and its own temp data dir. */
export async function startTestServer(
  overrides: Record<string, unknown> = {},
  opts: { dataDir?: string; logger?: Logger; reload?: { configPath: string; watch?: boolean } } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const raw = deepMerge({ server: { ip: '127.0.0.1', port: 0 }, log: { log_level: 'silent' } }, overrides);
  const server = await startServer({
    config: validateConfig(raw),
    dataDir,
    logger: opts.logger ?? silentLogger(),
    defaultMetrics: false,
    ...(opts.reload ? { reload: opts.reload } : {}),
  });
  return Object.assign(server, {
    dataDir,
    async stop() {
      await server.close('test done');
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** Reads one sample value from the server's Prometheus registry (sum over series matching the labels). */
export async function metricValue(
  server: LinusServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = server.ctx.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val))
    .reduce((sum, v) => sum + v.value, 0);
}

export type { DeepPartial };
