import type { ClusterHub } from '../../hub/cluster/index.js';
import { onlineDevices } from '../../hub/cluster/online.js';
import type { DeviceDirectory } from '../../hub/directory.js';
import type { DeviceRegistry } from '../../hub/registry.js';
import { normalizeId } from '../../protocol/ids.js';
import { validId, type ApiRoutes } from '../../transport/api.js';
import { z } from 'zod';
import { HttpError } from '../../transport/http-util.js';
import type { PeerFeature } from './index.js';
import { DEFAULT_CATEGORY, normalizeCategory } from './message.js';

const MAX_TEXT = 2000;
const QUEUE_PAGE = 100;

/** POST /supie/peer/send: checked (and documented) before the handler; it still checks ids and the group. */
const sendBody = z.object({
  to: z.array(z.string()).optional().describe('device ids'),
  group: z.string().optional().describe('a group key: every device of it online or named in devices.yaml'),
  text: z.string().trim().max(MAX_TEXT),
  category: z.string().optional().describe('a short word (letters, digits, _ - . :); default: the peer default'),
});

/**
 * Peer messages over HTTP (the console's Messages page):
 *   POST /supie/peer/send    {to?: [deviceId...], group?: groupKey, text, category?}  (admin) — from `console`
 *   GET  /supie/peer/queue   devices with queued (offline) messages and their counts
 *   GET  /supie/peer/queue/:deviceId   that device's queued messages, oldest first
 * A group means every device of it that is online (on any node of a cluster) or named in devices.yaml.
 */
export function registerPeerApi(
  api: ApiRoutes,
  deps: { peer: PeerFeature; registry: DeviceRegistry; cluster?: ClusterHub | undefined; directory: DeviceDirectory },
): void {
  const { peer, directory } = deps;
  // Online anywhere in the cluster (D17), or named in devices.yaml.
  const membersOf = async (group: string): Promise<string[]> => {
    const online = await onlineDevices(deps);
    return [...new Set([...online.devices.keys(), ...directory.knownIds()])].filter(
      (id) => directory.groupOf(id) === group,
    );
  };

  api.add(
    'POST',
    '/supie/peer/send',
    async (_req, _params, _url, body) => {
      const text = body.text.trim();
      if (!text) throw new HttpError(400, 'text is required');
      const category = body.category === undefined ? DEFAULT_CATEGORY : normalizeCategory(body.category);
      if (!category) throw new HttpError(400, 'category must be a short word (letters, digits, _ - . :)');
      const targets = (body.to ?? []).map((raw) => validId(normalizeId(raw), 'device id in to'));
      if (body.group !== undefined) {
        if (!body.group.trim()) throw new HttpError(400, 'group must be a group key');
        const members = await membersOf(body.group.trim());
        if (!members.length) throw new HttpError(404, `group ${body.group.trim()} has no known devices`);
        targets.push(...members);
      }
      if (!targets.length) throw new HttpError(400, 'give to (device ids) or group');
      return peer.sendFrom('console', targets, category, text);
    },
    { admin: true, body: sendBody },
  );

  // Message contents: never open to everyone, even where the rest of the API is.
  const priv = { private: true };
  api.add('GET', '/supie/peer/queue', () => peer.queue.waiting(Date.now(), 500), priv);

  api.add(
    'GET',
    '/supie/peer/queue/:deviceId',
    async (_req, params) => {
      const deviceId = validId(normalizeId(params.deviceId), 'device id');
      const items = await peer.queue.peek(deviceId, QUEUE_PAGE, Date.now());
      return items.map((m) => ({
        id: m.id,
        from: m.from,
        queuedAt: m.queuedAt,
        expiresAt: m.expiresAt,
        category: m.envelope.category,
        payload: m.envelope.payload,
      }));
    },
    priv,
  );
}
