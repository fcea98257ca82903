import type { RejectedReload } from '../hub/cluster/config-sync.js';
import type { DeviceRegistry } from '../hub/registry.js';
import type { BusStats } from '../hub/cluster/bus.js';
import type { LinkHealth } from '../hub/cluster/index.js';
import type { OnlineDevices } from '../hub/cluster/online.js';
import type { Metrics } from '../observability/metrics.js';
import { sendJson } from './http-util.js';
import type { HttpRoutes } from './http-app.js';
import type { StoreReach } from '../store/postgres/pool.js';

/** What /health says of a cluster node (D17). */
export interface ClusterHealth extends LinkHealth {
  node: string;
  /** The node bus's counters since start (messages sent, received, failed, requests timed out...). */
  bus: BusStats;
  /** The last config reload broadcast by another node that this node rejected (it kept its old config). */
  configRejected?: RejectedReload;
}

export function registerStatusRoutes(
  router: HttpRoutes,
  deps: {
    metrics: Metrics;
    registry: DeviceRegistry;
    connections: () => number;
    state: () => 'serving' | 'draining';
    version: string;
    /** Devices online: the whole cluster's in cluster mode (this node's while Redis is away), with the live nodes. */
    online: () => Promise<OnlineDevices>;
    /** Cluster mode: the Redis link's health and this node's config state (a reload it rejected, D17). */
    cluster?: () => ClusterHealth;
    /** Cluster mode: whether the last PostgreSQL query reached the server. */
    store?: () => StoreReach;
  },
): void {
  const started = Date.now();
  router.add('GET', '/health', async (_req, res) => {
    const serving = deps.state() === 'serving';
    const online = await deps.online();
    const node = deps.cluster?.();
    // This node's own devices beside the cluster's count, and the nodes the route table sees alive.
    const cluster = node && { ...node, localDevices: deps.registry.size, nodes: online.nodes };
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
      devices: online.count,
    });
  });
  router.add('GET', '/metrics', async (_req, res) => {
    const body = await deps.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
    res.end(body);
  });
}
