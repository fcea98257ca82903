import type { Logger } from '../../observability/log.js';
import { NodeBus } from './bus.js';
import { RedisDeviceStateStore } from './device-state.js';
import { RedisLink } from './link.js';
import { ClusterRegistry } from './registry.js';
import { RouteTable } from './routes.js';

export { ClusterUnavailableError, type LinkHealth } from './link.js';
export { ClusterRegistry, type DeliveryResult } from './registry.js';
export type { NodeBus } from './bus.js';

export interface ClusterHubOptions {
  /** `cluster.redis_url`. */
  redisUrl: string;
  /** `cluster.key_prefix`: every key this node writes starts with it. */
  keyPrefix: string;
  /** `cluster.node_id`. */
  nodeId: string;
  log: Logger;
  /** Route lease (default 5000 ms): a killed node's devices count as offline this long after its last beat. */
  leaseMs?: number;
  /** Cross-node request timeout (default 2000 ms). */
  requestTimeoutMs?: number;
  /** Redis command timeout (default 1000 ms). */
  commandTimeoutMs?: number;
}

/** The Redis side of a cluster node: registry (routes, handover, presence) and bus (for the other kinds). */
export interface ClusterHub {
  registry: ClusterRegistry;
  bus: NodeBus;
  /** Calls `listener` each time the Redis link is back after an outage; returns the disposer. */
  onRecovered(listener: () => void): () => void;
  close(): Promise<void>;
}

/**
 * Connects to Redis and starts the node's routes and bus. Rejects with ClusterUnavailableError naming
 * `cluster.redis_url` when Redis cannot be reached at start (a start-up error, D15); nothing is left open then.
 */
export async function startClusterHub(o: ClusterHubOptions): Promise<ClusterHub> {
  const link = new RedisLink({
    redisUrl: o.redisUrl,
    name: `linus:${o.nodeId}`,
    log: o.log,
    ...(o.commandTimeoutMs ? { commandTimeoutMs: o.commandTimeoutMs } : {}),
  });
  await link.start();
  const bus = new NodeBus({
    link,
    keyPrefix: o.keyPrefix,
    nodeId: o.nodeId,
    log: o.log,
    ...(o.requestTimeoutMs ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
  });
  const routes = new RouteTable({
    link,
    keyPrefix: o.keyPrefix,
    nodeId: o.nodeId,
    log: o.log,
    ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
  });
  const deviceState = new RedisDeviceStateStore({ link, keyPrefix: o.keyPrefix, log: o.log });
  const registry = new ClusterRegistry({ link, bus, routes, deviceState, keyPrefix: o.keyPrefix, log: o.log });
  try {
    await bus.start();
    await routes.start();
  } catch (err) {
    await registry.close();
    throw err;
  }
  return {
    registry,
    bus,
    onRecovered(listener) {
      const on = (): void => listener();
      link.on('ready', on);
      return () => link.off('ready', on);
    },
    close: () => registry.close(),
  };
}
