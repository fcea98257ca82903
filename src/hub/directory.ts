import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ConfigStore } from '../config/store.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/log.js';
import { normalizeId } from '../protocol/ids.js';

/**
 * Who a device is to the team features: its alias, workflow group and role. Read from `devices.yaml` in the
 * data dir (hot-reloaded on change) and from the config's `device_alias` / `workflow.device_alias` maps.
 * Group of a device (D20): its devices.yaml group if set, else the first 8 characters of its normalised id.
 */
/** `latest` (default), `none`, or a version cap such as "1.7.0" (YAML may read 1.7 as a number: quote versions). */
const firmwareRollout = z
  .union([z.string(), z.number()])
  .transform(String)
  .refine((v) => v === 'latest' || v === 'none' || /^\d+(\.\d+)*$/.test(v), {
    message: 'firmware must be latest, none or a version such as "1.7.0"',
  });
/** Settings a device gets from its own entry, else from its group's, else from the top of the file. */
const settingsShape = {
  firmware: firmwareRollout.optional(),
  /** false = this device is left out of the presence `stats` broadcast. */
  presence: z.boolean().optional(),
};
const entrySchema = z.looseObject({
  alias: z.string().optional(),
  name: z.string().optional(),
  group: z.string().optional(),
  groupKey: z.string().optional(),
  role: z.string().optional(),
  ...settingsShape,
});
const fileSchema = z.looseObject({
  devices: z.record(z.string(), entrySchema).default({}),
  groups: z.record(z.string(), z.looseObject(settingsShape)).default({}),
  ...settingsShape,
});

export interface DeviceSettings {
  firmware?: string;
  presence?: boolean;
}
type SettingKey = keyof DeviceSettings;

interface DeviceEntry extends DeviceSettings {
  alias?: string;
  group?: string;
  role?: string;
}

export const DEVICES_FILE = 'devices.yaml';

function settingsOf(v: DeviceSettings): DeviceSettings {
  return {
    ...(v.firmware !== undefined ? { firmware: v.firmware } : {}),
    ...(v.presence !== undefined ? { presence: v.presence } : {}),
  };
}

export function defaultGroupKey(deviceId: string): string {
  return deviceId.slice(0, 8);
}

export class DeviceDirectory {
  #entries = new Map<string, DeviceEntry>();
  #groups = new Map<string, DeviceSettings>();
  #defaults: DeviceSettings = {};
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #version = 0;
  #reloadListeners = new Set<() => void>();

  constructor(
    private readonly file: string,
    private readonly config: ConfigStore,
    private readonly log: Logger,
  ) {
    this.reload();
    this.#watch();
  }

  /** Bumped on every successful reload, so features can tell that groups may have changed. */
  get version(): number {
    return this.#version;
  }

  groupOf(deviceId: string): string {
    return this.#entries.get(deviceId)?.group ?? defaultGroupKey(deviceId);
  }

  aliasOf(deviceId: string): string | undefined {
    const fromFile = this.#entries.get(deviceId)?.alias;
    if (fromFile) return fromFile;
    const c = this.config.current;
    for (const map of [(c.workflow as Record<string, unknown>).device_alias, c.device_alias]) {
      if (map && typeof map === 'object') {
        for (const [id, alias] of Object.entries(map as Record<string, unknown>)) {
          if (normalizeId(id) === deviceId && typeof alias === 'string') return alias;
        }
      }
    }
    return undefined;
  }

  /** Devices named in devices.yaml. */
  knownIds(): string[] {
    return [...this.#entries.keys()];
  }

  roleOf(deviceId: string): string | undefined {
    return this.#entries.get(deviceId)?.role;
  }

  /** A per-device setting: the device's own entry, else its group's, else the file's top level. */
  setting<K extends SettingKey>(deviceId: string, key: K): DeviceSettings[K] {
    return this.#entries.get(deviceId)?.[key] ?? this.#groups.get(this.groupOf(deviceId))?.[key] ?? this.#defaults[key];
  }

  /** `alias|device-id` when an alias exists (the fork's owner display form), else the id. */
  displayName(deviceId: string): string {
    const alias = this.aliasOf(deviceId);
    return alias ? `${alias}|${deviceId}` : deviceId;
  }

  /** Called after every reload that may have changed entries (so groups may have moved). Returns a disposer. */
  onReload(listener: () => void): () => void {
    this.#reloadListeners.add(listener);
    return () => this.#reloadListeners.delete(listener);
  }

  #notifyReload(): void {
    for (const listener of [...this.#reloadListeners]) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, `${DEVICES_FILE} reload listener failed`);
      }
    }
  }

  /** Re-reads the file; a broken file keeps the previous entries and says why. */
  reload(): boolean {
    if (!existsSync(this.file)) {
      const had = this.#entries.size > 0 || this.#groups.size > 0 || Object.keys(this.#defaults).length > 0;
      if (had) this.#version++;
      this.#entries = new Map();
      this.#groups = new Map();
      this.#defaults = {};
      if (had) this.#notifyReload();
      return true;
    }
    try {
      const parsed = fileSchema.parse(parseYaml(readFileSync(this.file, 'utf8')) ?? {});
      const next = new Map<string, DeviceEntry>();
      for (const [rawId, e] of Object.entries(parsed.devices)) {
        const id = normalizeId(rawId);
        if (!id) continue;
        const alias = e.alias ?? e.name;
        const group = e.group ?? e.groupKey;
        next.set(id, {
          ...(alias ? { alias } : {}),
          ...(group ? { group } : {}),
          ...(e.role ? { role: e.role } : {}),
          ...settingsOf(e),
        });
      }
      this.#entries = next;
      this.#groups = new Map(Object.entries(parsed.groups).map(([g, v]) => [g, settingsOf(v)]));
      this.#defaults = settingsOf(parsed);
      this.#version++;
      this.log.info({ devices: next.size }, `${DEVICES_FILE} loaded`);
      this.#notifyReload();
      return true;
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, `${DEVICES_FILE} is invalid; keeping the previous entries`);
      return false;
    }
  }

  close(): void {
    this.#watcher?.close();
    if (this.#debounce) clearTimeout(this.#debounce);
  }

  /** Watches the directory (the file may not exist yet, or be replaced by an editor's rename). */
  #watch(): void {
    try {
      this.#watcher = watch(dirname(this.file), (_event, name) => {
        if (name && name !== basename(this.file)) return;
        // Editors write in several steps; one reload per save.
        if (this.#debounce) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => this.reload(), 150);
      });
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, `cannot watch ${DEVICES_FILE}; changes need a restart`);
    }
  }
}
