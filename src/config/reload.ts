import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import { isJsonObject } from '../json.js';
import type { Logger } from '../observability/log.js';
import { selectionError } from '../providers/selection.js';
import { ConfigError, loadConfigFile, validateConfig, type ValidatedConfig } from './load.js';
import { fetchServerConfig } from './manager-api.js';
import { applyOverrides, type RuntimeOptions } from './runtime.js';
import type { LinusConfig } from './schema.js';
import type { ConfigStore } from './store.js';

export type ReloadSource = 'file' | 'signal' | 'admin' | 'device' | 'manager' | 'start' | 'cluster';

/** Told of every reload's outcome, with the patch it was asked with (cluster mode passes accepted ones on). */
export type ReloadListener = (result: ReloadResult, patch?: Record<string, unknown>) => void;

export type ReloadResult =
  | { ok: true; source: ReloadSource; changed: string[]; restartRequired: string[]; warnings: string[] }
  | { ok: false; source: ReloadSource; error: string };

/** Keys whose new value only a restart can apply (the listening socket is bound once, the audio threads started once). */
const RESTART_KEYS = [
  'server.ip',
  'server.port',
  'server.max_frame_hard_bytes',
  'server.audio_workers',
  'server.console.enabled',
  'cluster',
] as const;

/**
 * Hot reload (D12): every source (file change, SIGHUP, admin call, device `update_config`, manager API) goes
 * through `reload()`, which builds the whole new config — file, manager API, optional patch overlay,
 * command-line overrides — validates it completely, and only then swaps the snapshot. Any failure keeps the
 * old config in force and says what was wrong (seed #15). Reloads run one at a time.
 */
export class ConfigReloader {
  #queue: Promise<unknown> = Promise.resolve();
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #lastText = '';
  readonly #listeners = new Set<ReloadListener>();

  constructor(
    private readonly store: ConfigStore,
    private readonly runtime: Pick<RuntimeOptions, 'configPath' | 'port' | 'host' | 'postgresUrl' | 'redisUrl'> & {
      defaultConfigPath?: boolean;
    },
    private readonly log: Logger,
  ) {}

  reload(source: ReloadSource, patch?: Record<string, unknown>): Promise<ReloadResult> {
    const run = this.#queue.then(async () => {
      const result = await this.#reload(source, patch);
      for (const listener of this.#listeners) listener(result, patch);
      return result;
    });
    // The caller of this reload gets its failure through `run`; the queue only keeps the next one in order.
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Calls `listener` after every reload, whatever its source; returns the disposer. */
  onReload(listener: ReloadListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Builds the config this process would start with now, without swapping it in. */
  async build(patch?: Record<string, unknown>): Promise<ValidatedConfig> {
    const fromFile = loadConfigFile(this.runtime.configPath, { defaultsIfMissing: true });
    let raw: Record<string, unknown> = structuredClone(fromFile.config) as Record<string, unknown>;
    const api = fromFile.config['manager-api'];
    if (api.url)
      raw = await fetchServerConfig(raw, {
        url: api.url,
        secret: api.secret,
        attempts: 3,
        backoffMs: 500,
        timeoutMs: 10_000,
      });
    if (patch) raw = deepMerge(raw, patch);
    const validated = validateConfig(raw);
    const selection = selectionError(validated.config);
    if (selection) throw new ConfigError(selection.message, selection.key);
    return applyOverrides(
      { config: validated.config, warnings: [...fromFile.warnings, ...validated.warnings] },
      this.runtime,
    );
  }

  async #reload(source: ReloadSource, patch?: Record<string, unknown>): Promise<ReloadResult> {
    let next: ValidatedConfig;
    try {
      next = await this.build(patch);
    } catch (err) {
      const error =
        err instanceof ConfigError ? err.message : `${err instanceof Error ? err.name : 'Error'}: ${errorMessage(err)}`;
      this.log.error({ source, error }, 'config reload failed; the previous config stays in force');
      return { ok: false, source, error };
    }
    const previous = this.store.current;
    const changed = changedPaths(previous, next.config);
    const restartRequired = RESTART_KEYS.filter((k) => changed.some((c) => c === k || c.startsWith(`${k}.`)));
    if (changed.length) this.store.replace(keepBound(next.config, previous));
    this.log.info(
      { source, changed, restartRequired },
      changed.length ? 'config reloaded' : 'config reloaded (no change)',
    );
    for (const w of next.warnings) this.log.warn(`config: ${w}`);
    return { ok: true, source, changed, restartRequired, warnings: next.warnings };
  }

  /** Reloads once per save of the config file (editors write in several steps). */
  watchFile(): void {
    const file = this.runtime.configPath;
    try {
      this.#lastText = readFileSync(file, 'utf8');
    } catch {
      // No file yet: its first save then counts as a change and is loaded.
      this.#lastText = '';
    }
    try {
      this.#watcher = watch(dirname(file), (_event, name) => {
        if (name && name !== basename(file)) return;
        if (this.#debounce) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.#onFileChange(), 300);
      });
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch (err) {
      this.log.warn(
        { err: errorMessage(err) },
        'cannot watch the config file; use SIGHUP or the admin endpoint to reload',
      );
    }
  }

  async #onFileChange(): Promise<void> {
    // A touch without a content change is no reason to rebuild anything.
    let text: string;
    try {
      text = readFileSync(this.runtime.configPath, 'utf8');
    } catch {
      // Mid-save or removed: the editor's next write fires the watcher again; the running config stays.
      return;
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    await this.reload('file');
  }

  close(): void {
    this.#watcher?.close();
    if (this.#debounce) clearTimeout(this.#debounce);
  }
}

/** The socket stays bound where it is: report a host/port change, do not pretend it applied. */
function keepBound(next: LinusConfig, previous: LinusConfig): LinusConfig {
  if (next.server.ip === previous.server.ip && next.server.port === previous.server.port) return next;
  const { config } = validateConfig({
    ...structuredClone(next),
    server: { ...structuredClone(next.server), ip: previous.server.ip, port: previous.server.port },
  });
  return config;
}

export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isJsonObject(v) && isJsonObject(b) ? deepMerge(b, v) : v;
  }
  return out;
}

/** Dotted paths whose values differ (objects compared key by key, arrays and scalars as values). */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)'];
}
