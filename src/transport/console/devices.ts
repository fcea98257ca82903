import { modeOf, type ModeController } from '../../features/modes.js';
import type { ClusterHub } from '../../hub/cluster/index.js';
import { ClusterUnavailableError } from '../../hub/cluster/link.js';
import { onlineDevices } from '../../hub/cluster/online.js';
import type { DeviceDirectory } from '../../hub/directory.js';
import type { DeviceRegistry } from '../../hub/registry.js';
import type { Session, TurnReport } from '../../session/session.js';

export interface DeviceView {
  deviceId: string;
  alias: string | null;
  group: string;
  role: string | null;
  online: boolean;
  /** The cluster node it is connected to (cluster mode); null when offline or on a single node. */
  node: string | null;
  mode: string;
  connectedAt: number | null;
  protocolVersion: number | null;
  clientId: string | null;
  address: string | null;
  lastTurn: TurnReport | null;
}

export interface DeviceEvent {
  at: number;
  what: string;
}

const KEEP_TURNS = 20;
const KEEP_EVENTS = 50;
/** Devices remembered by this process (offline ones included); the oldest is forgotten beyond this. */
const KEEP_DEVICES = 5_000;

/**
 * What the console shows of devices: the live routes (sessions), the devices named in devices.yaml, and what
 * this process saw of each since it started (recent turns and connection/mode events).
 */
export class DeviceBook {
  readonly #seen = new Map<string, { turns: TurnReport[]; events: DeviceEvent[] }>();

  constructor(
    private readonly deps: {
      registry: DeviceRegistry;
      /** Cluster mode: devices on the other nodes are listed too (D17). */
      cluster?: ClusterHub | undefined;
      directory: DeviceDirectory;
      modes: ModeController;
      sessions: () => Iterable<Session>;
    },
  ) {}

  #entry(deviceId: string) {
    let e = this.#seen.get(deviceId);
    if (!e) {
      if (this.#seen.size >= KEEP_DEVICES) this.#seen.delete(this.#seen.keys().next().value!);
      this.#seen.set(deviceId, (e = { turns: [], events: [] }));
    }
    return e;
  }

  note(deviceId: string, what: string): void {
    const events = this.#entry(deviceId).events;
    events.push({ at: Date.now(), what });
    if (events.length > KEEP_EVENTS) events.shift();
  }

  turn(deviceId: string, report: TurnReport): void {
    const turns = this.#entry(deviceId).turns;
    turns.push(report);
    if (turns.length > KEEP_TURNS) turns.shift();
  }

  /** The session that holds a device's route (a replaced connection still closing is not it). */
  #live(): Map<string, Session> {
    const live = new Map<string, Session>();
    for (const s of this.deps.sessions()) if (this.deps.registry.get(s.deviceId) === s) live.set(s.deviceId, s);
    return live;
  }

  /**
   * A device's view: `session` when it is connected here; `remote` when it is online on another node, with the
   * mode kept for it in the shared device state (the other fields are that node's to know).
   */
  #view(deviceId: string, session: Session | undefined, remote?: { node: string; mode: unknown }): DeviceView {
    const { directory, modes } = this.deps;
    const turns = this.#seen.get(deviceId)?.turns;
    const mode = session ? (modes.current(session) ?? 'chat') : remote ? (modeOf(remote.mode) ?? 'chat') : '';
    return {
      deviceId,
      alias: directory.aliasOf(deviceId) ?? null,
      group: directory.groupOf(deviceId),
      role: directory.roleOf(deviceId) ?? null,
      online: session !== undefined || remote !== undefined,
      node: remote?.node ?? (session ? (this.deps.cluster?.registry.nodeId ?? null) : null),
      mode,
      connectedAt: session?.connectedAt ?? null,
      protocolVersion: session?.protocolVersion ?? null,
      clientId: session?.clientId ?? null,
      address: session?.info.remoteAddress ?? null,
      lastTurn: turns?.at(-1) ?? null,
    };
  }

  /** Devices online on other nodes (cluster mode), each with its node and kept mode. */
  async #remote(live: Map<string, Session>): Promise<Map<string, { node: string; mode: unknown }>> {
    const { cluster } = this.deps;
    const remote = new Map<string, { node: string; mode: unknown }>();
    if (!cluster) return remote;
    const online = await onlineDevices(this.deps);
    const elsewhere = new Map<string, string>();
    for (const [id, node] of online.devices)
      if (node && node !== cluster.registry.nodeId && !live.has(id)) elsewhere.set(id, node);
    const modes = await cluster.registry.kept([...elsewhere.keys()], 'mode');
    for (const [id, node] of elsewhere) remote.set(id, { node, mode: modes.get(id) });
    return remote;
  }

  /** Online devices first (by id), then the known offline ones; in cluster mode those of every node. */
  async list(): Promise<DeviceView[]> {
    const live = this.#live();
    const remote = await this.#remote(live);
    const ids = new Set([...live.keys(), ...remote.keys(), ...this.deps.directory.knownIds(), ...this.#seen.keys()]);
    return [...ids]
      .map((id) => this.#view(id, live.get(id), remote.get(id)))
      .sort((a, b) => Number(b.online) - Number(a.online) || a.deviceId.localeCompare(b.deviceId));
  }

  async detail(deviceId: string): Promise<(DeviceView & { turns: TurnReport[]; events: DeviceEvent[] }) | undefined> {
    const session = this.#live().get(deviceId);
    const remote = session ? undefined : await this.#remoteOne(deviceId);
    const seen = this.#seen.get(deviceId);
    if (!session && !remote && !seen && !this.deps.directory.knownIds().includes(deviceId)) return undefined;
    return {
      ...this.#view(deviceId, session, remote),
      turns: [...(seen?.turns ?? [])],
      events: [...(seen?.events ?? [])],
    };
  }

  /** One device on another node, if it is online there (cluster mode; nothing while Redis is away). */
  async #remoteOne(deviceId: string): Promise<{ node: string; mode: unknown } | undefined> {
    const { cluster } = this.deps;
    if (!cluster) return undefined;
    let route;
    try {
      route = await cluster.registry.route(deviceId);
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      return undefined;
    }
    if (!route || route.nodeId === cluster.registry.nodeId) return undefined;
    return { node: route.nodeId, mode: (await cluster.registry.kept([deviceId], 'mode')).get(deviceId) };
  }

  /** Groups of every device listed (for the Tasks and Messages pickers). */
  static groups(list: DeviceView[]): string[] {
    return [...new Set(list.map((d) => d.group))].sort();
  }
}
