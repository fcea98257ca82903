import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { ClusterHub } from './index.js';
import { ClusterUnavailableError } from './link.js';

/** Devices of the whole cluster one relay names at most (the route table's listing is capped). */
const MAX_FANOUT = 10_000;

type DeviceMessage = { type: string } & Record<string, unknown>;

/**
 * Relays (meeting broadcasts, coding notices) to devices on every node, best effort as on one node (D17): the
 * targets are picked from the cluster's online devices, this node's get it at once, and one bus broadcast names
 * the others for their nodes. While Redis is away only this node's devices are picked.
 */
export async function relayToCluster(
  hub: ClusterHub,
  pick: (online: string[]) => string[],
  message: DeviceMessage,
  log: Logger,
): Promise<void> {
  const local = hub.registry.local;
  let online: string[];
  try {
    online = (await hub.registry.devices(MAX_FANOUT)).ids;
  } catch (err) {
    if (!(err instanceof ClusterUnavailableError)) throw err;
    // Degraded (shown in /health): the devices here are the ones that can be reached.
    online = local.deviceIds();
  }
  const remote: string[] = [];
  for (const id of pick([...new Set([...online, ...local.deviceIds()])])) {
    const conn = local.get(id);
    if (conn) conn.deliver(message);
    else remote.push(id);
  }
  if (!remote.length) return;
  await hub.bus.broadcast({ kind: 'fanout', deviceIds: remote, message }).catch((err: unknown) => {
    // Best effort, as a relay on one node: devices elsewhere miss this one while Redis is away.
    log.warn({ err: errorMessage(err), type: message.type }, 'relay not passed on to the other nodes');
  });
}

/** The receiving side: every node hands a relay to its own devices among those named. Returns the disposer. */
export function receiveRelays(hub: ClusterHub): () => void {
  return hub.bus.on('fanout', (m) => {
    for (const id of m.deviceIds) hub.registry.local.get(id)?.deliver(m.message);
  });
}
