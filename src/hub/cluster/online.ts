import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { DeviceRegistry } from '../registry.js';
import type { ClusterHub } from './index.js';
import { ClusterUnavailableError } from './link.js';

/** Devices one view lists at most (the console's list, a broadcast's recipients, a group's members). */
export const MAX_LISTED = 10_000;

export interface OnlineDevices {
  /** Devices online: the whole cluster's, or this node's (one node, or Redis away). */
  count: number;
  /** Up to the limit of them: deviceId → the node it is on (this node's id; null on a single node). */
  devices: Map<string, string | null>;
  /** Live nodes (cluster view), else this node alone (empty on a single node). */
  nodes: string[];
  /** Whether this is the whole cluster's view; false while Redis is away (degraded, shown in /health). */
  cluster: boolean;
}

/**
 * The devices online where a view can see them (D17): in cluster mode the route table's, which knows every
 * device and its node, with this node's own added (a route may be claimed a moment after the register); on a
 * single node, or while Redis is away, this node's. The one place every cluster-wide list comes from.
 */
export async function onlineDevices(
  where: { registry: DeviceRegistry; cluster?: ClusterHub | undefined },
  opts: { limit?: number; log?: Logger } = {},
): Promise<OnlineDevices> {
  const limit = opts.limit ?? MAX_LISTED;
  const { registry, cluster } = where;
  const nodeId = cluster?.registry.nodeId ?? null;
  const local = registry.deviceIds();
  const devices = localDevices(local, nodeId, limit);
  if (cluster) {
    try {
      const all = await cluster.registry.devices(limit);
      for (const [id, node] of all.devices) if (devices.size < limit && !devices.has(id)) devices.set(id, node);
      return { count: Math.max(all.count, local.length), devices, nodes: all.nodes, cluster: true };
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      opts.log?.debug({ err: errorMessage(err) }, 'cluster device list unavailable; listing this node’s');
    }
  }
  return { count: local.length, devices, nodes: nodeId ? [nodeId] : [], cluster: false };
}

/** This node's devices, up to `limit`: synchronous, for the single-node paths that must not wait. */
export function localDevices(ids: string[], nodeId: string | null, limit: number): Map<string, string | null> {
  const devices = new Map<string, string | null>();
  for (const id of ids) {
    if (devices.size >= limit) break;
    devices.set(id, nodeId);
  }
  return devices;
}
