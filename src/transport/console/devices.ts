import type { ModeController } from '../../features/modes.js';
import type { DeviceDirectory } from '../../hub/directory.js';
import type { DeviceRegistry } from '../../hub/registry.js';
import type { Session, TurnReport } from '../../session/session.js';

export interface DeviceView {
  deviceId: string;
  alias: string | null;
  group: string;
  role: string | null;
  online: boolean;
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

  #view(deviceId: string, session: Session | undefined): DeviceView {
    const { directory, modes } = this.deps;
    const turns = this.#seen.get(deviceId)?.turns;
    return {
      deviceId,
      alias: directory.aliasOf(deviceId) ?? null,
      group: directory.groupOf(deviceId),
      role: directory.roleOf(deviceId) ?? null,
      online: session !== undefined,
      mode: session ? (modes.current(session) ?? 'chat') : '',
      connectedAt: session?.connectedAt ?? null,
      protocolVersion: session?.protocolVersion ?? null,
      clientId: session?.clientId ?? null,
      address: session?.info.remoteAddress ?? null,
      lastTurn: turns?.at(-1) ?? null,
    };
  }

  /** Online devices first (by id), then the known offline ones. */
  list(): DeviceView[] {
    const live = this.#live();
    const ids = new Set([...live.keys(), ...this.deps.directory.knownIds(), ...this.#seen.keys()]);
    return [...ids]
      .map((id) => this.#view(id, live.get(id)))
      .sort((a, b) => Number(b.online) - Number(a.online) || a.deviceId.localeCompare(b.deviceId));
  }

  detail(deviceId: string): (DeviceView & { turns: TurnReport[]; events: DeviceEvent[] }) | undefined {
    const session = this.#live().get(deviceId);
    const seen = this.#seen.get(deviceId);
    if (!session && !seen && !this.deps.directory.knownIds().includes(deviceId)) return undefined;
    return { ...this.#view(deviceId, session), turns: [...(seen?.turns ?? [])], events: [...(seen?.events ?? [])] };
  }

  /** Groups of every device listed (for the Tasks and Messages pickers). */
  groups(): string[] {
    return [...new Set(this.list().map((d) => d.group))].sort();
  }
}
