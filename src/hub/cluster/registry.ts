import { EventEmitter } from 'node:events';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';
import {
  LocalDeviceRegistry,
  type DeviceConnection,
  type DeviceRecord,
  type DeviceRegistry,
  type RegisterResult,
  type RegistryEvents,
} from '../registry.js';
import type { NodeBus } from './bus.js';
import type { RedisDeviceStateStore } from './device-state.js';
import { ClusterUnavailableError, type LinkHealth, type RedisLink } from './link.js';
import type { BusMessageOf } from './messages.js';
import type { ClusterDevices, Route, RouteTable } from './routes.js';

export interface PresenceEvents {
  /** A device came online or went offline on another node (for the presence broadcast). */
  change: [deviceId: string, online: boolean, nodeId: string];
}

/** Where a delivery went: `ok` with the node that took it, or why not. */
export type DeliveryResult =
  { ok: true; nodeId: string } | { ok: false; reason: 'offline' | 'not_sent'; nodeId?: string };

/** The newer connection of a device on another node, as the replaced connection is told of it (D6). */
export class RemoteConnection implements DeviceConnection {
  constructor(
    readonly deviceId: string,
    readonly connectionId: string,
    readonly nodeId: string,
  ) {}
  replacedBy(): void {
    // A remote connection is never in this node's registry, so it is never replaced here.
  }
  deliver(): boolean {
    return false;
  }
  deliverText(): boolean {
    return false;
  }
}

/**
 * A delivery answered this close to the sender's deadline (or later) may have been given up on: the sender then
 * queued the message too. Such deliveries are noted (below), so the flush of that queue does not send them again.
 */
const LATE_MARGIN_MS = 500;
/** How long a late delivery stays noted: longer than a device stays away in all but rare cases. */
const LATE_NOTE_TTL_MS = 24 * 3600_000;

export interface ClusterRegistryParts {
  link: RedisLink;
  bus: NodeBus;
  routes: RouteTable;
  /** Where the device's own state (its mode) is kept, so it follows the device to another node. */
  deviceState: RedisDeviceStateStore;
  /** `cluster.key_prefix`. */
  keyPrefix: string;
  log: Logger;
}

/**
 * The device registry of a cluster node (D6, D17). This node's own connections stay in a LocalDeviceRegistry,
 * which answers every synchronous call exactly as in single-node mode; Redis only follows it: a register claims
 * the route asynchronously, an unregister releases it. When the claim took the device over from a connection on
 * another node, that node is told on the bus and hands its connection the same `replaced` notice and delayed
 * close as a local handover. While Redis is down, local serving goes on; when it is back, every local route is
 * claimed again, and a connection that meanwhile lost its device to a newer one elsewhere is told then.
 */
export class ClusterRegistry extends EventEmitter<RegistryEvents> implements DeviceRegistry {
  readonly local: LocalDeviceRegistry;
  /** Presence changes on other nodes; this node's own are the registry's `online`/`offline`. */
  readonly presence = new EventEmitter<PresenceEvents>();
  readonly nodeId: string;
  readonly #p: ClusterRegistryParts;
  readonly #scope: Scope;
  /** When each local connection registered: its claim's `since`, kept for claiming again after an outage. */
  readonly #since = new WeakMap<DeviceConnection, number>();
  /** Connections already told they were replaced from another node (a notice may come twice: bus and reclaim). */
  readonly #told = new WeakSet<DeviceConnection>();
  /** Routes whose release failed while Redis was down (deviceId → connectionId), released when it is back. */
  readonly #unreleased = new Map<string, string>();
  #closing: Promise<void> | undefined;

  constructor(parts: ClusterRegistryParts) {
    super();
    this.#p = parts;
    this.local = new LocalDeviceRegistry(parts.deviceState);
    this.#scope = new Scope('cluster-registry', (err, where) =>
      parts.log.error({ err: errorMessage(err), where }, 'cluster registry task failed'),
    );
    this.nodeId = parts.bus.nodeId;
    const { bus, routes, link } = parts;
    this.#scope.on(this.local, 'online', (id: string) => this.emit('online', id));
    this.#scope.on(this.local, 'offline', (id: string) => this.emit('offline', id));
    this.#scope.add(bus.on('replaced', (m) => this.#onReplaced(m)));
    this.#scope.add(bus.on('deliver', (m) => this.#onDeliver(m)));
    this.#scope.add(bus.on('presence', (m) => void this.presence.emit('change', m.deviceId, m.online, m.from)));
    this.#scope.on(routes, 'expired', (ids: string[], nodeId: string) => {
      for (const id of ids) this.#announce(id, false, nodeId);
    });
    this.#scope.on(routes, 'leaseLost', () => this.#reclaimAll('lease lost'));
    this.#scope.on(link, 'ready', () => this.#reclaimAll('Redis link ready'));
  }

  // --- DeviceRegistry: the local registry, then Redis in the background ---

  register(conn: DeviceConnection): RegisterResult {
    const result = this.local.register(conn);
    const since = Date.now();
    this.#since.set(conn, since);
    void this.#scope.run('claim', () => this.#claim(conn, since));
    return result;
  }

  unregister(conn: DeviceConnection): boolean {
    if (!this.local.unregister(conn)) return false;
    void this.#scope.run('release', () => this.#release(conn.deviceId, conn.connectionId));
    return true;
  }

  async #release(deviceId: string, connectionId: string): Promise<void> {
    try {
      if (await this.#p.routes.release(deviceId, connectionId)) this.#announce(deviceId, false);
      if (this.#unreleased.get(deviceId) === connectionId) this.#unreleased.delete(deviceId);
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      // Kept for when the link is back (#reclaimAll); a newer claim of the device meanwhile makes it a no-op.
      if (!this.local.get(deviceId)) this.#unreleased.set(deviceId, connectionId);
    }
  }

  get(deviceId: string): DeviceConnection | undefined {
    return this.local.get(deviceId);
  }

  record(deviceId: string): DeviceRecord | undefined {
    return this.local.record(deviceId);
  }

  deviceIds(): string[] {
    return this.local.deviceIds();
  }

  get size(): number {
    return this.local.size;
  }

  // --- The cluster ---

  health(): LinkHealth {
    return this.#p.link.health();
  }

  /** The route of a device anywhere in the cluster (this node's own first, without asking Redis). */
  async route(deviceId: string): Promise<Route | undefined> {
    const conn = this.local.get(deviceId);
    if (conn) return { nodeId: this.nodeId, connectionId: conn.connectionId, since: this.#since.get(conn) ?? 0 };
    return this.#p.routes.lookup(deviceId);
  }

  /**
   * Hands a device a JSON message wherever it is connected. `written`: settle once it left the process of the
   * node that holds the device (for the peer queue). Throws ClusterUnavailableError when Redis is down or the
   * other node does not answer in time: the caller keeps the message (durable queue) and tries later.
   */
  async deliver(
    deviceId: string,
    message: { type: string } & Record<string, unknown>,
    opts: { written?: boolean; timeoutMs?: number } = {},
  ): Promise<DeliveryResult> {
    const conn = this.local.get(deviceId);
    if (conn) return this.#deliverLocal(conn, message, opts.written ?? false);
    // One round trip finds the device's node and writes the request to its inbox. A route of this node with no
    // local connection is one being released: the device is gone.
    const sent = await this.#p.bus.requestVia(
      async (json, stream) => {
        const route = await this.#p.routes.post(deviceId, json, stream);
        return route && route.nodeId !== this.nodeId ? route.nodeId : undefined;
      },
      { kind: 'deliver', deviceId, message, written: opts.written ?? false },
      opts.timeoutMs,
    );
    if (!sent) return { ok: false, reason: 'offline' };
    const { nodeId, result } = sent;
    return result.ok ? { ok: true, nodeId } : { ok: false, reason: result.reason ?? 'not_sent', nodeId };
  }

  /**
   * The live nodes and the devices online in the whole cluster, up to `limit` of them with their node; fails fast
   * while degraded. Views use `onlineDevices` (online.ts), which falls back to this node's own.
   */
  devices(limit = 100): Promise<ClusterDevices> {
    return this.#p.routes.devices(limit);
  }

  /** The kept value of one shared key (e.g. `mode`) of each device; absent when it has none or Redis is away. */
  kept(deviceIds: string[], key: string): Promise<Map<string, unknown>> {
    return this.#p.deviceState.peek(deviceIds, key);
  }

  /**
   * Idempotent. Leaving on purpose: this node's routes and lease are dropped at once (so other nodes see the
   * devices offline now rather than when the lease ends), then the bus and the link close.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#scope.close();
      this.#p.bus.close();
      const { routes, link, log } = this.#p;
      if (link.ok) {
        try {
          const left = await routes.leave();
          await Promise.all(left.map((id) => this.#p.bus.broadcast({ kind: 'presence', deviceId: id, online: false })));
        } catch (err) {
          // Redis went away meanwhile: the lease runs out on its own and the routes with it.
          log.warn({ err: errorMessage(err) }, 'could not release routes on close; they expire with the lease');
        }
      }
      // The sessions closed before this part; their last state writes land before the link closes.
      await this.#p.deviceState.flush();
      routes.close();
      link.close();
      await this.#p.bus.stopped;
    })();
    return this.#closing;
  }

  async #deliverLocal(
    conn: DeviceConnection,
    message: { type: string } & Record<string, unknown>,
    written: boolean,
  ): Promise<DeliveryResult> {
    const ok = written && conn.deliverWritten ? await conn.deliverWritten(message) : conn.deliver(message);
    return ok ? { ok: true, nodeId: this.nodeId } : { ok: false, reason: 'not_sent', nodeId: this.nodeId };
  }

  async #claim(conn: DeviceConnection, since: number): Promise<void> {
    let r;
    try {
      r = await this.#p.routes.claim(conn.deviceId, conn.connectionId, since);
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      // Serving goes on locally; the route is claimed when the link is back (#reclaimAll).
      return;
    }
    if (!r.won) {
      if (r.holder) this.#replaceLocal(conn, r.holder);
      return;
    }
    if (r.previous && r.previous.nodeId !== this.nodeId) {
      await this.#p.bus.send(r.previous.nodeId, {
        kind: 'replaced',
        deviceId: conn.deviceId,
        connectionId: r.previous.connectionId,
        byNodeId: this.nodeId,
        byConnectionId: conn.connectionId,
      });
    } else if (!r.previous && this.local.get(conn.deviceId) === conn) {
      this.#announce(conn.deviceId, true);
    }
  }

  #reclaimAll(why: string): void {
    if (this.#scope.closed) return;
    for (const [deviceId, connectionId] of this.#unreleased)
      if (!this.local.get(deviceId)) void this.#scope.run('release', () => this.#release(deviceId, connectionId));
    this.#unreleased.clear();
    const conns = this.local.deviceIds().flatMap((id) => this.local.get(id) ?? []);
    if (conns.length) this.#p.log.info({ devices: conns.length, why }, 'claiming this node’s routes again');
    for (const conn of conns) void this.#scope.run('reclaim', () => this.#claim(conn, this.#since.get(conn) ?? 0));
  }

  #onReplaced(m: BusMessageOf<'replaced'>): void {
    const conn = this.local.get(m.deviceId);
    if (!conn || conn.connectionId !== m.connectionId) return;
    this.#replaceLocal(conn, { nodeId: m.byNodeId, connectionId: m.byConnectionId, since: 0 });
  }

  /** The device is served by a newer connection on another node: this one is told and closes as in D6. */
  #replaceLocal(conn: DeviceConnection, by: Route): void {
    if (this.#told.has(conn)) return;
    this.#told.add(conn);
    // The local route goes at once: messages for the device must follow it to its new node, not the old socket.
    this.local.unregister(conn);
    conn.replacedBy(new RemoteConnection(conn.deviceId, by.connectionId, by.nodeId));
  }

  async #onDeliver(m: BusMessageOf<'deliver'>): Promise<void> {
    const conn = this.local.get(m.deviceId);
    const r = conn ? await this.#deliverLocal(conn, m.message, m.written) : ({ ok: false, reason: 'offline' } as const);
    // A message that must not be lost (`written`) has an id the flush of the offline queue can tell again.
    const id = m.written && r.ok && typeof m.message.id === 'string' ? m.message.id : undefined;
    const late = (): boolean => m.expiresAt !== undefined && Date.now() > m.expiresAt - LATE_MARGIN_MS;
    try {
      await this.#p.bus.reply(m, r.ok ? { ok: true } : { ok: false, reason: r.reason });
    } catch (err) {
      if (id) await this.#noteDelivered(m.deviceId, id);
      throw err;
    }
    if (id && late()) await this.#noteDelivered(m.deviceId, id);
  }

  /** `<prefix>delivered:<deviceId>` (a sorted set by time): ids of messages handed to the device whose sender may not have learnt it. */
  #deliveredKey(deviceId: string): string {
    return `${this.#p.keyPrefix}delivered:${deviceId}`;
  }

  /**
   * Notes a late delivery. Sent on the command connection after the reply, so a flush that reads the notes later on
   * this node sees it; lost only with Redis itself (then the message may come twice: at least once).
   */
  async #noteDelivered(deviceId: string, id: string): Promise<void> {
    const key = this.#deliveredKey(deviceId);
    try {
      // Scored by time: notes older than their lifetime go with the next one, so a device that often gets late
      // deliveries does not grow its set for as long as it keeps getting them.
      const now = Date.now();
      await this.#p.link.call((r) =>
        r
          .multi()
          .zadd(key, now, id)
          .zremrangebyscore(key, '-inf', now - LATE_NOTE_TTL_MS)
          .pexpire(key, LATE_NOTE_TTL_MS)
          .exec(),
      );
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      this.#p.log.warn({ device: deviceId, id, err: err.message }, 'late delivery not noted; it may come twice');
    }
  }

  /**
   * Which of `ids` were already handed to the device by a delivery whose sender may have given up on it (and
   * queued it): the flush skips them. Empty while Redis is away (then such a message may come twice).
   */
  async deliveredLate(deviceId: string, ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    try {
      const key = this.#deliveredKey(deviceId);
      const scores = await this.#p.link.call((r) => r.zmscore(key, ...ids));
      const found = ids.filter((_, i) => scores[i] !== null);
      // Used once: the flush drops these messages now (a flush rolled back may then send one again: at least once).
      if (found.length) await this.#p.link.call((r) => r.zrem(key, ...found));
      return new Set(found);
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      return new Set();
    }
  }

  /** Presence of a device: told to the other nodes (when it changed here) and to this node's listeners. */
  #announce(deviceId: string, online: boolean, nodeId = this.nodeId): void {
    if (nodeId !== this.nodeId) this.presence.emit('change', deviceId, online, nodeId);
    void this.#scope.run('presence', () => this.#p.bus.broadcast({ kind: 'presence', deviceId, online }));
  }
}
