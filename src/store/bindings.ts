import type { Db } from './sqlite.js';

export interface DeviceBinding {
  deviceId: string;
  clientId: string;
  boundAt: number;
}

interface Row {
  device_id: string;
  client_id: string;
  bound_at: number;
}

const toBinding = (r: Row): DeviceBinding => ({ deviceId: r.device_id, clientId: r.client_id, boundAt: r.bound_at });

/**
 * Which client id owns a device id, trust on first use: the firmware's client id is a UUID kept across reboots,
 * so the first client that obtains a token (or connects with one) owns the device id from then on, and a token for
 * another client id is refused. A re-flashed device has a new client id: an admin rebinds it. Kept in SQLite, so
 * a restart does not reopen the door; read on every use, so a rebind from the CLI takes effect at once.
 */
export class DeviceBindings {
  readonly #get;
  readonly #claim;
  readonly #set;
  readonly #clear;
  readonly #list;

  constructor(db: Db) {
    this.#get = db.prepare<[string], Row>('SELECT * FROM device_bindings WHERE device_id = ?');
    this.#claim = db.prepare(
      'INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO NOTHING',
    );
    this.#set = db.prepare(
      'INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET client_id = excluded.client_id, bound_at = excluded.bound_at',
    );
    this.#clear = db.prepare('DELETE FROM device_bindings WHERE device_id = ?');
    this.#list = db.prepare<[], Row>('SELECT * FROM device_bindings ORDER BY bound_at DESC LIMIT 1000');
  }

  get(deviceId: string): DeviceBinding | undefined {
    const row = this.#get.get(deviceId);
    return row ? toBinding(row) : undefined;
  }

  /** Binds a free device id to this client id; true when the device id is (now) this client's. */
  claim(deviceId: string, clientId: string, now = Date.now()): boolean {
    this.#claim.run(deviceId, clientId, now);
    return this.get(deviceId)?.clientId === clientId;
  }

  /**
   * The admin's rebind: to `clientId`, or with none, freed for the next client that obtains a token.
   * Returns the binding it replaced.
   */
  rebind(deviceId: string, clientId?: string, now = Date.now()): DeviceBinding | undefined {
    const before = this.get(deviceId);
    if (clientId) this.#set.run(deviceId, clientId, now);
    else this.#clear.run(deviceId);
    return before;
  }

  list(): DeviceBinding[] {
    return this.#list.all().map(toBinding);
  }
}
