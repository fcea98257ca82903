import type { ConfigReloader } from '../../config/reload.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { NodeBus } from './bus.js';

/** A reload another node accepted and this one rejected: it keeps its old config (D12) and says so in /health. */
export interface RejectedReload {
  from: string;
  error: string;
  at: number;
}

/**
 * Live config across the cluster (D17): a reload this node accepted (file, SIGHUP, admin API, `update_config`,
 * manager API) is broadcast on the bus; every other node reloads through its own path with the same patch,
 * validated there. What a node rejects leaves its old config in force, logged and kept for /health. A reload
 * that came from the bus is never broadcast again. Returns the disposer and the last rejection.
 */
export function syncConfig(
  bus: NodeBus,
  reloader: ConfigReloader,
  log: Logger,
): { close(): void; rejected(): RejectedReload | undefined } {
  let rejected: RejectedReload | undefined;
  const offReload = reloader.onReload((result, patch) => {
    if (!result.ok || result.source === 'cluster' || result.source === 'start') return;
    bus.broadcast({ kind: 'config', source: result.source, ...(patch ? { patch } : {}) }).catch((err: unknown) => {
      // The local reload stands; the other nodes keep theirs until the next one (Redis is away: degraded).
      log.warn({ err: errorMessage(err) }, 'config reload not passed on to the other nodes');
    });
  });
  const offBus = bus.on('config', async (m) => {
    const r = await reloader.reload('cluster', m.patch);
    if (r.ok) {
      rejected = undefined;
      log.info({ from: m.from, source: m.source, changed: r.changed }, 'config reload from another node applied');
    } else {
      rejected = { from: m.from, error: r.error, at: Date.now() };
      log.error({ from: m.from, error: r.error }, 'config reload from another node rejected; the old config stays');
    }
  });
  return {
    close() {
      offReload();
      offBus();
    },
    rejected: () => rejected,
  };
}
