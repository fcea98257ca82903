import { toBinding, type BindingRow, type DeviceBinding, type DeviceBindings } from '../bindings.js';
import type { PgDb } from './pool.js';

/**
 * Device bindings in PostgreSQL: the contract of SqliteDeviceBindings (store/bindings.ts), shared by every node, so
 * a device id claimed through one node is refused to another client id on all of them.
 */
export class PgDeviceBindings implements DeviceBindings {
  constructor(private readonly db: PgDb) {}

  async get(deviceId: string): Promise<DeviceBinding | undefined> {
    const row = await this.db.row<BindingRow>('SELECT * FROM device_bindings WHERE device_id = $1', [deviceId]);
    return row ? toBinding(row) : undefined;
  }

  /**
   * One read when the device id is bound (every connection of a bound device). A free one: atomic across nodes, of
   * two claims racing for it the primary key lets one INSERT in and the other do nothing, then read the winner.
   */
  async claim(deviceId: string, clientId: string, now = Date.now()): Promise<DeviceBinding> {
    const bound = await this.get(deviceId);
    if (bound) return bound;
    const row = await this.db.row<BindingRow>(
      `INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES ($1, $2, $3)
       ON CONFLICT (device_id) DO NOTHING RETURNING *`,
      [deviceId, clientId, now],
    );
    if (row) return toBinding(row);
    const winner = await this.get(deviceId);
    // Claimed and freed again (an admin's rebind) between the two: the next use claims it.
    if (!winner) throw new Error(`device id ${deviceId} was freed while being claimed; retry`);
    return winner;
  }

  async rebind(deviceId: string, clientId?: string, now = Date.now()): Promise<DeviceBinding | undefined> {
    return this.db.tx(async (sql) => {
      const row = await sql.row<BindingRow>('SELECT * FROM device_bindings WHERE device_id = $1 FOR UPDATE', [
        deviceId,
      ]);
      if (clientId)
        await sql.exec(
          `INSERT INTO device_bindings (device_id, client_id, bound_at) VALUES ($1, $2, $3)
           ON CONFLICT (device_id) DO UPDATE SET client_id = excluded.client_id, bound_at = excluded.bound_at`,
          [deviceId, clientId, now],
        );
      else await sql.exec('DELETE FROM device_bindings WHERE device_id = $1', [deviceId]);
      return row ? toBinding(row) : undefined;
    });
  }

  async list(): Promise<DeviceBinding[]> {
    const rows = await this.db.rows<BindingRow>('SELECT * FROM device_bindings ORDER BY bound_at DESC LIMIT 1000');
    return rows.map(toBinding);
  }
}
