import type { ConfigStore } from '../config/store.js';
import type { LinusConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/log.js';
import type { AsrProvider, LlmProvider, TtsProvider, VadProvider, VllmProvider } from './types.js';

export interface ProviderKinds {
  asr: AsrProvider;
  llm: LlmProvider;
  tts: TtsProvider;
  vad: VadProvider;
  vllm: VllmProvider;
}
export type ProviderKind = keyof ProviderKinds;

export type ProviderFactories = {
  [K in ProviderKind]: (alias: string, block: Record<string, unknown>) => ProviderKinds[K] | Promise<ProviderKinds[K]>;
};

/** Config section and selected_module key of each kind. */
const SECTION = { asr: 'ASR', llm: 'LLM', tts: 'TTS', vad: 'VAD', vllm: 'VLLM' } as const;

export interface Lease<T> {
  readonly provider: T;
  readonly alias: string;
  /** True once a reload replaced this instance: long-held leases (a session's VAD) re-lease when convenient. */
  readonly stale: boolean;
  /** Idempotent. The instance is disposed once replaced and no lease holds it. */
  release(): void;
}

interface Entry {
  key: string;
  kind: ProviderKind;
  alias: string;
  overrides: Record<string, unknown>;
  /** Built from a device's private block, not from the server config: a reload does not retire it. */
  private: boolean;
  fingerprint: string;
  provider: Promise<unknown>;
  leases: number;
  stale: boolean;
}

/** The purposes that `llm_by_mode` can route to a different LLM alias. */
export type LlmPurpose = 'chat' | 'meeting' | 'working' | 'coding' | 'intent' | 'memory' | 'default';

/**
 * One registry of provider instances keyed by `kind:alias:stable JSON of overrides` (D12, seed #4).
 * A lease pins the instance a turn started with; when the config block behind a key changes, the next
 * lease gets a new instance and the old one is disposed when its last lease ends. Sessions never cache
 * instances of their own.
 */
export class ProviderRegistry {
  #entries = new Map<string, Entry>();
  #failed = new Map<string, string>();
  #retiring = new Set<Entry>();
  #disposed = 0;
  #closed = false;
  readonly #onChange = () => this.prune();

  constructor(
    private readonly config: ConfigStore,
    private readonly factories: ProviderFactories,
    private readonly log: Logger,
  ) {
    // A reload retires exactly the instances whose block changed or vanished; leases in flight keep theirs.
    config.on('change', this.#onChange);
  }

  /** Retires every instance whose config block is no longer what it was built from. */
  prune(): void {
    const config = this.config.current;
    for (const entry of [...this.#entries.values()]) {
      if (entry.private) continue;
      const base = (config[SECTION[entry.kind]] as Record<string, Record<string, unknown> | undefined>)[entry.alias];
      if (!base || stableJson({ ...base, ...entry.overrides }) !== entry.fingerprint) this.#retire(entry);
    }
  }

  /** Alias selected for a kind in `selected_module`, '' when none. */
  selectedAlias(kind: ProviderKind, config: LinusConfig = this.config.current): string {
    return config.selected_module[SECTION[kind]] ?? '';
  }

  /** Resolves an `llm_by_mode` purpose to an alias and overrides: purpose → default → selected_module.LLM. */
  llmRoute(
    purpose: LlmPurpose,
    config: LinusConfig = this.config.current,
  ): { alias: string; overrides: Record<string, unknown> } {
    const table = config.llm_by_mode;
    for (const key of [purpose, 'default']) {
      const r = table[key];
      if (typeof r === 'string' && r) return { alias: r, overrides: {} };
      if (r && typeof r === 'object') {
        const o = r as Record<string, unknown>;
        const alias = [o.alias, o.name, o.module, o.llm].find(
          (v): v is string => typeof v === 'string' && v.length > 0,
        );
        const overrides = (o.overrides && typeof o.overrides === 'object' ? o.overrides : {}) as Record<
          string,
          unknown
        >;
        if (alias) return { alias, overrides };
        // Flat overrides on the selected LLM.
        const { alias: _a, name: _n, module: _m, llm: _l, ...flat } = o;
        return { alias: this.selectedAlias('llm', config), overrides: flat };
      }
    }
    return { alias: this.selectedAlias('llm', config), overrides: {} };
  }

  /**
   * Leases the provider for `alias` (default: the selected one). Resolves undefined when none is configured
   * or it cannot be built (logged once per config version, with the key to fix).
   */
  async lease<K extends ProviderKind>(
    kind: K,
    alias?: string,
    overrides: Record<string, unknown> = {},
    /** A block that is not in the server config (a device's private config); part of the instance key. */
    privateBlock?: Record<string, unknown>,
  ): Promise<Lease<ProviderKinds[K]> | undefined> {
    if (this.#closed) return undefined;
    const config = this.config.current;
    const name = alias ?? this.selectedAlias(kind, config);
    if (!name) return undefined;
    const section = config[SECTION[kind]] as Record<string, Record<string, unknown> | undefined>;
    const baseBlock = privateBlock ?? section[name];
    const path = `${SECTION[kind]}.${name}`;
    const key = `${kind}:${name}:${stableJson(overrides)}${privateBlock ? `:private:${stableJson(privateBlock)}` : ''}`;
    if (!baseBlock) {
      this.#logOnce(
        key,
        'missing',
        `${path} is not defined: add it to the config or change selected_module.${SECTION[kind]}`,
      );
      return undefined;
    }
    const block = { ...baseBlock, ...overrides };
    const fingerprint = stableJson(block);
    let entry = this.#entries.get(key);
    if (entry && entry.fingerprint !== fingerprint) {
      this.#retire(entry);
      entry = undefined;
    }
    if (!entry) {
      entry = {
        key,
        kind,
        alias: name,
        overrides,
        private: !!privateBlock,
        fingerprint,
        provider: Promise.resolve().then(() => this.factories[kind](name, block)),
        leases: 0,
        stale: false,
      };
      this.#entries.set(key, entry);
    }
    entry.leases++;
    let provider: ProviderKinds[K];
    try {
      provider = (await entry.provider) as ProviderKinds[K];
    } catch (err) {
      entry.leases--;
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
      this.#logOnce(key, fingerprint, `${path} cannot be used: ${errorMessage(err)}`);
      return undefined;
    }
    const held = entry;
    let released = false;
    return {
      provider,
      alias: name,
      get stale() {
        return held.stale;
      },
      release: () => {
        if (released) return;
        released = true;
        held.leases--;
        if (held.stale && held.leases === 0) this.#dispose(held);
      },
    };
  }

  /** Number of live instances (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  /** Live instances, replaced ones still leased by a turn in flight, and instances disposed so far. */
  stats(): { live: number; retiring: number; disposed: number } {
    return { live: this.#entries.size, retiring: this.#retiring.size, disposed: this.#disposed };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.config.off('change', this.#onChange);
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(all.map((e) => e.provider.then((p) => (p as { dispose(): Promise<void> }).dispose())));
  }

  #retire(entry: Entry): void {
    this.#entries.delete(entry.key);
    entry.stale = true;
    this.#retiring.add(entry);
    if (entry.leases === 0) this.#dispose(entry);
  }

  #dispose(entry: Entry): void {
    this.#retiring.delete(entry);
    this.#disposed++;
    entry.provider
      .then((p) => (p as { dispose(): Promise<void> }).dispose())
      .catch((err: unknown) => this.log.warn({ err, key: entry.key }, 'provider dispose failed'));
  }

  #logOnce(key: string, version: string, message: string): void {
    if (this.#failed.get(key) === version) return;
    this.#failed.set(key, version);
    this.log.error(message);
  }
}

/** JSON with sorted keys, so equal configs give equal keys. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
