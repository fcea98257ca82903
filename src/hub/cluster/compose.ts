import type { LinusConfig } from '../../config/schema.js';
import { errorMessage } from '../../errors.js';
import type { Lifecycle } from '../../lifecycle.js';
import type { Logger } from '../../observability/log.js';
import { StartupError } from '../../startup-error.js';
import { nodeIdOf } from '../../store/compose.js';
import { startClusterHub, type ClusterHub } from './index.js';

/**
 * The Redis side of a cluster node as one part of the server (D17): started before the features and the
 * listener, so it closes after the sessions (their routes are released while the bus still runs). A Redis that
 * cannot be reached at start is a start-up error naming `cluster.redis_url` (D15), well within 5 s (the link's
 * connect timeout is 3 s).
 */
export async function startClusterPart(config: LinusConfig, log: Logger, parts: Lifecycle): Promise<ClusterHub> {
  const nodeId = nodeIdOf(config);
  let hub: ClusterHub;
  try {
    hub = await startClusterHub({
      redisUrl: config.cluster.redis_url,
      keyPrefix: config.cluster.key_prefix,
      nodeId,
      log: log.child({ node: nodeId }),
    });
  } catch (err) {
    const cause = errorMessage(err).replace(/^cluster\.redis_url: /, '');
    throw new StartupError(`cluster.redis_url (LINUS_REDIS_URL): ${cause}`, 'cluster.redis_url');
  }
  parts.add('cluster hub', () => hub.close());
  log.info({ node: nodeId, keyPrefix: config.cluster.key_prefix }, 'cluster node joined (Redis routes and bus)');
  return hub;
}
