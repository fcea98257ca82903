import type { Db } from './sqlite.js';

export interface DeviceBinding {
  deviceId: string;
  clientId: string;
  boundAt: number;
}

/**
 * Which client id owns a device id, trust on first use: the firmware's client id is a UUID kept across reboots,
 * so the first client that obtains a token (or connects with one) owns the device id from then on, and a token for
 * another client id is refused. A re-flashed device has a new client id: an admin rebinds it. Kept in the store
 * (SQLite, or PostgreSQL shared by every node of a cluster), so a restart or another node does not reopen the door;
 * read on every use, so a rebind from the CLI takes effect at once.
 */
export interface DeviceBindings {
  get(deviceId: string): Promise<DeviceBinding | undefined>;
  /**
   * Binds a free device id to this client id, atomically; returns the binding in force after it (this client's
   * when it was free, else its owner's). A bound device id costs one read.
   */
  claim(deviceId: string, clientId: string, now?: number): Promise<DeviceBinding>;
  /**
   * The admin's rebind: to `clientId`, or with none, freed for the next client that obtains a token.
   * Returns the binding it replaced.
   */
  rebind(deviceId: string, clientId?: string, now?: number): Promise<DeviceBinding | undefined>;
  /** The latest 1000 bindings, newest first. */
  list(): Promise<DeviceBinding[]>;
}

export interface BindingRow {
  device_id: string;
  client_id: string;
  bound_at: number;
}

export const toBinding = (r: BindingRow): DeviceBinding => ({
  deviceId: r.device_id,
  clientId: r.client_id,
  boundAt: r.bound_at,
});

/** Device bindings in the embedded SQLite file (single mode). */
export class SqliteDeviceBindings implements DeviceBindings {
  readonly #get;
  readonly #claim;
  readonly #set;
  readonly #clear;
  readonly #list;

  constructor(db: Db) {
    this.#get = db.prepare<[string], BindingRow>('SELECT * FROM device_bindings WHERE device_id = ?');
    this.#claim = db.prepare(
      'INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO NOTHING',
    );
    this.#set = db.prepare(
      'INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET client_id = excluded.client_id, bound_at = excluded.bound_at',
    );
    this.#clear = db.prepare('DELETE FROM device_bindings WHERE device_id = ?');
    this.#list = db.prepare<[], BindingRow>('SELECT * FROM device_bindings ORDER BY bound_at DESC LIMIT 1000');
  }

  async get(deviceId: string): Promise<DeviceBinding | undefined> {
    return this.#read(deviceId);
  }

  #read(deviceId: string): DeviceBinding | undefined {
    const row = this.#get.get(deviceId);
    return row ? toBinding(row) : undefined;
  }

  // The read and the INSERT run back to back on the one connection: nothing else writes in between.
  async claim(deviceId: string, clientId: string, now = Date.now()): Promise<DeviceBinding> {
    const bound = this.#read(deviceId);
    if (bound) return bound;
    this.#claim.run(deviceId, clientId, now);
    return { deviceId, clientId, boundAt: now };
  }

  async rebind(deviceId: string, clientId?: string, now = Date.now()): Promise<DeviceBinding | undefined> {
    const before = this.#read(deviceId);
    if (clientId) this.#set.run(deviceId, clientId, now);
    else this.#clear.run(deviceId);
    return before;
  }

  async list(): Promise<DeviceBinding[]> {
    return this.#list.all().map(toBinding);
  }
}
