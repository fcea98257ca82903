/**
 * A cluster node in a process of its own, for the lease tests: it claims the devices named on its command line,
 * prints `claimed`, and then only heartbeats until it is killed (SIGKILL: no release, no goodbye).
 *   node --import tsx test/support/route-holder.ts <redisUrl> <prefix> <nodeId> <leaseMs> <deviceId>...
 */
import { silentLogger } from '../../src/observability/log.js';
import { RedisLink } from '../../src/hub/cluster/link.js';
import { RouteTable } from '../../src/hub/cluster/routes.js';

const [redisUrl, keyPrefix, nodeId, leaseMs, ...devices] = process.argv.slice(2);
if (!redisUrl || !keyPrefix || !nodeId || !leaseMs)
  throw new Error('usage: route-holder <url> <prefix> <node> <leaseMs> <device>...');
const log = silentLogger();
const link = new RedisLink({ redisUrl, name: `linus:${nodeId}`, log });
await link.start();
const routes = new RouteTable({ link, keyPrefix, nodeId, log, leaseMs: Number(leaseMs) });
await routes.start();
for (const d of devices) await routes.claim(d, `conn-${d}`, Date.now());
process.stdout.write('claimed\n');
