/**
 * Device-owned state beyond one node (D17): the DeviceRecord keys that follow a device to another node, and
 * the store that keeps them. Without a store (single node) the state lives in the record only, as it always
 * did: nothing is loaded or written, and a record is ready at once.
 */

/** Keys of `DeviceRecord.state` kept in the store: the device's mode (chat when absent). */
export const SHARED_DEVICE_KEYS: ReadonlySet<string> = new Set(['mode']);

export interface DeviceStateStore {
  /** The device's kept keys (`{}` when it has none); undefined when the store cannot be reached. Never rejects. */
  load(deviceId: string): Promise<Record<string, unknown> | undefined>;
  /** Keeps one key (`undefined` removes it). In the background, in call order; a failure is logged, never thrown. */
  save(deviceId: string, key: string, value: unknown): void;
}

/** `DeviceRecord.state`: a Map that tells its owner of each change (set/delete), so a store can follow it. */
export class DeviceState extends Map<string, unknown> {
  onChange: ((key: string, value: unknown) => void) | undefined;

  override set(key: string, value: unknown): this {
    super.set(key, value);
    this.onChange?.(key, value);
    return this;
  }

  override delete(key: string): boolean {
    const had = super.delete(key);
    if (had) this.onChange?.(key, undefined);
    return had;
  }

  /** Sets a key from the store without writing it back. */
  restore(key: string, value: unknown): void {
    super.set(key, value);
  }

  /** Removes a key the store no longer has, without writing it back. */
  forget(key: string): void {
    super.delete(key);
  }
}

/**
 * Binds a new record to the store: shared keys set on it are saved, and the kept ones are loaded into it now and
 * again on each `reload` (every register in cluster mode: another node may have changed them while this record
 * sat here). A load replaces the shared keys with the store's, except a key this node set since the load began
 * (the newer value wins); a store that cannot be reached changes nothing. `loaded` settles once the latest load is
 * done (never rejects).
 */
export function bindDeviceState(
  record: { deviceId: string; state: DeviceState; loaded?: Promise<void>; reload?: () => void },
  store: DeviceStateStore,
): void {
  let setHere = new Set<string>();
  record.state.onChange = (key, value) => {
    if (!SHARED_DEVICE_KEYS.has(key)) return;
    setHere.add(key);
    store.save(record.deviceId, key, value);
  };
  let latest = 0;
  record.reload = () => {
    const mine = (setHere = new Set());
    const load = ++latest;
    record.loaded = store.load(record.deviceId).then((kept) => {
      // A load overtaken by a newer one is dropped: its `mine` no longer sees this node's later changes.
      if (!kept || load !== latest) return;
      for (const key of SHARED_DEVICE_KEYS) {
        if (mine.has(key)) continue;
        if (key in kept) record.state.restore(key, kept[key]);
        else record.state.forget(key);
      }
    });
  };
  record.reload();
}
