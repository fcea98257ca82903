import type { RejectedReload } from '../hub/cluster/config-sync.js';
import type { DeviceRegistry } from '../hub/registry.js';
import type { LinkHealth } from '../hub/cluster/index.js';
import type { Metrics } from '../observability/metrics.js';
import { sendJson } from './http-util.js';
import type { Router } from './router.js';
import type { StoreReach } from '../store/postgres/pool.js';

/** What /health says of a cluster node (D17). */
export interface ClusterHealth extends LinkHealth {
  node: string;
  /** The last config reload broadcast by another node that this node rejected (it kept its old config). */
  configRejected?: RejectedReload;
}

export function registerStatusRoutes(
  router: Router,
  deps: {
    metrics: Metrics;
    registry: DeviceRegistry;
    connections: () => number;
    state: () => 'serving' | 'draining';
    version: string;
    /** Cluster mode: the Redis link's health and this node's config state (a reload it rejected, D17). */
    cluster?: () => ClusterHealth;
    /** Cluster mode: whether the last PostgreSQL query reached the server. */
    store?: () => StoreReach;
  },
): void {
  const started = Date.now();
  router.add('GET', '/health', (_req, res) => {
    const serving = deps.state() === 'serving';
    const cluster = deps.cluster?.();
    const store = deps.store?.();
    // Degraded still serves (its own devices; cross-node work falls back to PostgreSQL; without PostgreSQL, what
    // needs no store): 200, not 503.
    const degraded =
      (cluster && (cluster.status !== 'ok' || cluster.configRejected)) || (store && store.status !== 'ok');
    sendJson(res, serving ? 200 : 503, {
      status: serving ? (degraded ? 'degraded' : 'ok') : 'draining',
      ...(cluster ? { cluster } : {}),
      ...(store ? { store } : {}),
      pid: process.pid,
      version: deps.version,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      connections: deps.connections(),
      devices: deps.registry.size,
    });
  });
  router.add('GET', '/metrics', async (_req, res) => {
    const body = await deps.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
    res.end(body);
  });
}
