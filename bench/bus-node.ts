/**
 * The second cluster node of the bus profile (bench/profiles/bus.ts), in a process of its own so that the two
 * nodes do not share an event loop. It holds the devices it is told to hold (connections that take every message),
 * and reports over IPC each of its connections replaced from the other node, with the time on the shared clock
 * (performance.timeOrigin + performance.now(), the same wall clock in both processes).
 *   node --import tsx bench/bus-node.ts <redisUrl> <keyPrefix> <nodeId>
 */
import { startClusterHub } from '../src/hub/cluster/index.js';
import type { DeviceConnection } from '../src/hub/registry.js';
import { silentLogger } from '../src/observability/log.js';

export type ToBusNode = { kind: 'hold'; deviceIds: string[] } | { kind: 'cpu' } | { kind: 'stop' };
export type FromBusNode =
  | { kind: 'ready' }
  | { kind: 'holding'; count: number }
  | { kind: 'replaced'; deviceId: string; at: number }
  | { kind: 'stopped'; received: number }
  | { kind: 'cpu'; ms: number };

const [redisUrl, keyPrefix, nodeId] = process.argv.slice(2);
if (!redisUrl || !keyPrefix || !nodeId) throw new Error('usage: bus-node <redisUrl> <keyPrefix> <nodeId>');
const tell = (m: FromBusNode): void => void process.send?.(m);
const now = (): number => performance.timeOrigin + performance.now();

let received = 0;
class HeldConnection implements DeviceConnection {
  readonly connectionId = `${nodeId}-${Math.random().toString(36).slice(2)}`;
  constructor(readonly deviceId: string) {}
  replacedBy(): void {
    tell({ kind: 'replaced', deviceId: this.deviceId, at: now() });
  }
  deliver(): boolean {
    received++;
    return true;
  }
  deliverText(): boolean {
    return this.deliver();
  }
}

const hub = await startClusterHub({ redisUrl, keyPrefix, nodeId, log: silentLogger() });
process.on('message', (m: ToBusNode) => {
  if (m.kind === 'hold') {
    // The claims go to Redis asynchronously: the other node waits until it sees the routes.
    for (const id of m.deviceIds) hub.registry.register(new HeldConnection(id));
    tell({ kind: 'holding', count: m.deviceIds.length });
  } else if (m.kind === 'cpu') {
    const { user, system } = process.cpuUsage();
    tell({ kind: 'cpu', ms: (user + system) / 1000 });
  } else {
    void hub.close().then(() => {
      tell({ kind: 'stopped', received });
      process.disconnect?.();
    });
  }
});
tell({ kind: 'ready' });
