import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/log.js';
import { startServer, StartupError } from '../../src/server.js';
import { tempDir } from '../support/server.js';
import { sleep } from '../support/wait.js';

/** Counts of the process's active resources by kind (timers, sockets, servers, watchers...). */
function resources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

function leaked(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after]
    .filter(([kind, n]) => n > (before.get(kind) ?? 0))
    .map(([kind, n]) => `${kind} +${n - (before.get(kind) ?? 0)}`);
}

/** Something else holding a port of 127.0.0.1. */
async function holdPort(): Promise<{ port: number; blocker: Server }> {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  return { port: (blocker.address() as { port: number }).port, blocker };
}

describe('a failed start closes every part it started', () => {
  it('a port in use: StartupError naming server.port, and no timer, socket, watcher or thread left behind', async () => {
    const { port, blocker } = await holdPort();
    const dataDir = tempDir();
    // A devices.yaml watcher, process metrics and every feature's intervals (the peer
    // feature's sweeps) are all started before the listen that fails.
    const config = validateConfig({
      server: { ip: '127.0.0.1', port, audio_workers: 2 },
      log: { log_level: 'silent' },
    });
    await sleep(50);
    const before = resources();
    try {
      await assert.rejects(
        startServer({
          config,
          dataDir,
          logger: silentLogger(),
          defaultMetrics: true,
          reload: { configPath: `${dataDir}/config.yaml`, watch: true },
        }),
        (err: unknown) => err instanceof StartupError && err.key === 'server.port' && /in use/.test(err.message),
      );
      await sleep(200);
      assert.deepEqual(leaked(before, resources()), [], 'left behind by the failed start');
    } finally {
      await new Promise((r) => blocker.close(r));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the MQTT port in use after HTTP is up: StartupError naming server.mqtt.port, HTTP closed, nothing left', async () => {
    const { port, blocker } = await holdPort();
    const dataDir = tempDir();
    const config = validateConfig({
      server: {
        ip: '127.0.0.1',
        port: 0,
        mqtt: { enabled: true, port },
        udp: { port: 0 },
      },
      log: { log_level: 'silent' },
    });
    await sleep(50);
    const before = resources();
    try {
      await assert.rejects(
        startServer({ config, dataDir, logger: silentLogger() }),
        (err: unknown) =>
          err instanceof StartupError && err.key === 'server.mqtt.port' && /EADDRINUSE/.test(err.message),
      );
      await sleep(200);
      assert.deepEqual(leaked(before, resources()), [], 'left behind by the failed start');
    } finally {
      await new Promise((r) => blocker.close(r));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
