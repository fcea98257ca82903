import { EventEmitter } from 'node:events';
import { bindDeviceState, DeviceState, type DeviceStateStore } from './device-state.js';

/** What the registry needs from a live connection. */
export interface DeviceConnection {
  readonly connectionId: string;
  readonly deviceId: string;
  /** The client id it connected with, when known (a handover from another client id needs proof, see upgrade). */
  readonly clientId?: string;
  /** Told that a newer connection of the same device took the route over. */
  replacedBy(newer: DeviceConnection): void;
  /** Hands the device one JSON message; false when it could not be sent. */
  deliver(message: { type: string } & Record<string, unknown>): boolean;
  /** The same, already serialized (one broadcast serialized once for every device). */
  deliverText(json: string, type: string): boolean;
  /**
   * Like deliver, settled once the message has left this process (written to the socket: true) or was dropped
   * before that (the connection closed or stopped reading: false). For what must not be lost (the peer queue).
   */
  deliverWritten?(message: { type: string } & Record<string, unknown>): Promise<boolean>;
}

/** State that belongs to the device rather than to one connection, so it survives a handover. */
export class DeviceRecord {
  readonly state = new DeviceState();
  /** Set in cluster mode: settles once the device's kept state (its mode) is loaded from the shared store. */
  loaded: Promise<void> | undefined;
  /** Set in cluster mode: loads the kept state again (`loaded` follows the new load). */
  reload: (() => void) | undefined;
  constructor(
    readonly deviceId: string,
    readonly firstSeen = Date.now(),
  ) {}
}

export interface RegisterResult {
  record: DeviceRecord;
  /** The connection that held the route before, if any; it has been told already. */
  replaced?: DeviceConnection;
}

export interface RegistryEvents {
  online: [deviceId: string];
  offline: [deviceId: string];
}

/**
 * Which connection is the route to a device. A device is one route: registering takes it over at once.
 * Implementations: in-process (below); a Redis-backed one for several nodes (cluster mode).
 */
export interface DeviceRegistry extends EventEmitter<RegistryEvents> {
  register(conn: DeviceConnection): RegisterResult;
  /** Removes the route only if it still points at this connection; returns whether it did. */
  unregister(conn: DeviceConnection): boolean;
  get(deviceId: string): DeviceConnection | undefined;
  record(deviceId: string): DeviceRecord | undefined;
  deviceIds(): string[];
  readonly size: number;
}

export class LocalDeviceRegistry extends EventEmitter<RegistryEvents> implements DeviceRegistry {
  #routes = new Map<string, { conn: DeviceConnection; record: DeviceRecord }>();

  /** `stateStore`: where device-owned state is kept beyond this process (cluster mode); none = the record only. */
  readonly #stateStore: DeviceStateStore | undefined;

  constructor(stateStore?: DeviceStateStore) {
    super();
    this.#stateStore = stateStore;
  }

  register(conn: DeviceConnection): RegisterResult {
    const existing = this.#routes.get(conn.deviceId);
    let record = existing?.record;
    if (!record) {
      record = new DeviceRecord(conn.deviceId);
      if (this.#stateStore) bindDeviceState(record, this.#stateStore);
    } else {
      // A record kept here may be stale: another node may have served the device (and changed its mode) since.
      record.reload?.();
    }
    this.#routes.set(conn.deviceId, { conn, record });
    if (existing && existing.conn !== conn) {
      existing.conn.replacedBy(conn);
      return { record, replaced: existing.conn };
    }
    if (!existing) this.emit('online', conn.deviceId);
    return { record };
  }

  unregister(conn: DeviceConnection): boolean {
    const route = this.#routes.get(conn.deviceId);
    if (!route || route.conn !== conn) return false;
    this.#routes.delete(conn.deviceId);
    this.emit('offline', conn.deviceId);
    return true;
  }

  get(deviceId: string): DeviceConnection | undefined {
    return this.#routes.get(deviceId)?.conn;
  }

  record(deviceId: string): DeviceRecord | undefined {
    return this.#routes.get(deviceId)?.record;
  }

  deviceIds(): string[] {
    return [...this.#routes.keys()];
  }

  get size(): number {
    return this.#routes.size;
  }
}
