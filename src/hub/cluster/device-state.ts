import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { DeviceStateStore } from '../device-state.js';
import { ClusterUnavailableError, type RedisLink } from './link.js';

export interface RedisDeviceStateOptions {
  link: RedisLink;
  /** `cluster.key_prefix`. */
  keyPrefix: string;
  log: Logger;
  /** How long a device's state is kept after its last change (default a day). */
  ttlMs?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A device's own state in Redis (D17): one hash per device, `<prefix>device:<id>:state`, each key a JSON value,
 * kept `ttlMs` after the last write. While Redis is away a load reads nothing and a write is dropped (logged):
 * the device goes on with this node's state, as in single-node mode.
 */
export class RedisDeviceStateStore implements DeviceStateStore {
  readonly #o: RedisDeviceStateOptions;
  readonly #pending = new Set<Promise<void>>();

  constructor(o: RedisDeviceStateOptions) {
    this.#o = o;
  }

  #key(deviceId: string): string {
    return `${this.#o.keyPrefix}device:${deviceId}:state`;
  }

  async load(deviceId: string): Promise<Record<string, unknown> | undefined> {
    try {
      const hash = await this.#o.link.call((r) => r.hgetall(this.#key(deviceId)));
      const kept: Record<string, unknown> = {};
      for (const [key, json] of Object.entries(hash)) kept[key] = JSON.parse(json) as unknown;
      return kept;
    } catch (err) {
      // Redis away or a value we cannot read: the device goes on with this node's state, as on a single node.
      this.#o.log.warn({ device: deviceId, err: errorMessage(err) }, 'device state not loaded; going on without it');
      return undefined;
    }
  }

  /**
   * One key's kept value for each of `deviceIds` (one round trip), for views of devices on other nodes; a device
   * without it, or every device while Redis is away, is absent from the map.
   */
  async peek(deviceIds: string[], key: string): Promise<Map<string, unknown>> {
    const kept = new Map<string, unknown>();
    if (!deviceIds.length) return kept;
    try {
      const values = await this.#o.link.call((r) => {
        const p = r.pipeline();
        for (const id of deviceIds) p.hget(this.#key(id), key);
        return p.exec();
      });
      values?.forEach(([err, json], i) => {
        if (!err && typeof json === 'string') kept.set(deviceIds[i]!, JSON.parse(json) as unknown);
      });
    } catch (err) {
      // A view: it shows the devices without their kept state rather than failing.
      this.#o.log.debug({ err: errorMessage(err) }, 'device state not read for a view');
    }
    return kept;
  }

  save(deviceId: string, key: string, value: unknown): void {
    const k = this.#key(deviceId);
    const ttl = this.#o.ttlMs ?? DAY_MS;
    // Sent at once on the one command connection, so writes of a device reach Redis in call order.
    const write = this.#o.link
      .call((r) =>
        value === undefined
          ? r.multi().hdel(k, key).pexpire(k, ttl).exec()
          : r.multi().hset(k, key, JSON.stringify(value)).pexpire(k, ttl).exec(),
      )
      .then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof ClusterUnavailableError))
            this.#o.log.error({ err, device: deviceId }, 'device state write failed');
          // Redis away: this node's record keeps the state; another node would not see this change.
          else this.#o.log.warn({ device: deviceId, key, err: err.message }, 'device state not kept; Redis away');
        },
      )
      .finally(() => this.#pending.delete(write));
    this.#pending.add(write);
  }

  /** Settles once the writes in flight are done (before the link closes). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
