import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { DeviceRegistry } from '../registry.js';
import type { ClusterHub } from './index.js';

type DeviceMessage = { type: string } & Record<string, unknown>;

/**
 * Who gets a relay, as the sending feature's policy puts it. Each node picks its own devices by it (the groups
 * come from devices.yaml, which every node has), so a relay names no device list, whatever the fleet's size.
 */
export interface Audience {
  /** Every device. */
  all?: boolean;
  /** The devices of this group. */
  group?: string;
  /** Devices named by the policy (e.g. `meeting.broadcast.allowed_targets`). */
  named?: string[];
  /** Never this one (the device the relay is about), even when named. */
  except?: string;
}

/** The devices of `ids` the audience takes, in their order. */
export function pickAudience(audience: Audience, ids: Iterable<string>, groupOf: (id: string) => string): string[] {
  const named = new Set(audience.named);
  const out: string[] = [];
  for (const id of ids) {
    if (id === audience.except) continue;
    if (audience.all || named.has(id) || (audience.group !== undefined && groupOf(id) === audience.group)) out.push(id);
  }
  return out;
}

function deliverLocal(
  registry: DeviceRegistry,
  audience: Audience,
  message: DeviceMessage,
  groupOf: (id: string) => string,
): void {
  for (const id of pickAudience(audience, registry.deviceIds(), groupOf)) registry.get(id)?.deliver(message);
}

/**
 * A relay (meeting broadcasts, coding notices) to the audience, best effort (D17): this node's devices get it at
 * once; in cluster mode one bus broadcast carries the audience and the message, and every other node hands it
 * to its own devices of that audience (as task fan-out does). While Redis is away only this node's get it.
 * Resolves once the broadcast went out (or failed, logged).
 */
export async function relay(
  where: { registry: DeviceRegistry; cluster?: ClusterHub | undefined },
  groupOf: (id: string) => string,
  audience: Audience,
  message: DeviceMessage,
  log: Logger,
): Promise<void> {
  deliverLocal(where.registry, audience, message, groupOf);
  if (!where.cluster) return;
  await where.cluster.bus.broadcast({ kind: 'fanout', audience, message }).catch((err: unknown) => {
    // Best effort, as a relay on one node: devices elsewhere miss this one while Redis is away.
    log.warn({ err: errorMessage(err), type: message.type }, 'relay not passed on to the other nodes');
  });
}

/**
 * To one device, best effort: at once when it is on this node; in cluster mode through the node that holds it, as
 * a task of `scope` (`failed` hears why it was not handed on: Redis away, no answer in time). Nothing when it is
 * offline: the callers' messages are notices or results the device reads again on its next request.
 */
export function deliverTo(
  where: { registry: DeviceRegistry; cluster?: ClusterHub | undefined },
  scope: { run(name: string, task: () => Promise<unknown>): Promise<void> },
  deviceId: string,
  message: DeviceMessage,
  failed: (err: unknown) => void,
): void {
  const conn = where.registry.get(deviceId);
  if (conn) {
    conn.deliver(message);
    return;
  }
  const cluster = where.cluster;
  if (!cluster) return;
  void scope.run('deliver', async () => {
    try {
      await cluster.registry.deliver(deviceId, message);
    } catch (err) {
      failed(err);
    }
  });
}

/** The receiving side: this node hands each relay of another node to its own devices of the audience. */
export function receiveRelays(hub: ClusterHub, groupOf: (id: string) => string): () => void {
  return hub.bus.on('fanout', (m) => deliverLocal(hub.registry.local, m.audience, m.message, groupOf));
}
