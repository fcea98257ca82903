import { cpus, freemem, totalmem } from 'node:os';
import { localDevices, onlineDevices } from '../hub/cluster/online.js';
import { Scope } from '../session/scope.js';
import type { Session } from '../session/session.js';
import type { Feature, FeatureDeps } from './feature.js';

const COALESCE_MS = 1000;
/** Devices sent to per event-loop turn. */
const FANOUT_SLICE = 500;
/** Ids listed in `online`; `deviceCount` always carries the true number. */
const MAX_ONLINE_LISTED = 100;

export interface StatsMessage {
  type: 'server';
  event: 'stats';
  ts: number;
  deviceCount: number;
  online: string[];
  cpuPercent: number;
  memPercent: number;
  memUsedMB: number;
  memTotalMB: number;
  [key: string]: unknown;
}

/** System CPU use between two calls, from the kernel's per-CPU time counters. */
export class CpuSampler {
  #prev = CpuSampler.#read();

  static #read(): { idle: number; total: number } {
    let idle = 0;
    let total = 0;
    for (const c of cpus()) {
      const t = c.times;
      idle += t.idle;
      total += t.user + t.nice + t.sys + t.idle + t.irq;
    }
    return { idle, total };
  }

  /** Percent busy since the previous call (0..100, one decimal). */
  sample(): number {
    const now = CpuSampler.#read();
    const total = now.total - this.#prev.total;
    const idle = now.idle - this.#prev.idle;
    this.#prev = now;
    if (total <= 0) return 0;
    return Math.round(Math.min(100, Math.max(0, (1 - idle / total) * 100)) * 10) / 10;
  }
}

/** What the stats feature uses of the server. */
export type StatsDeps = Pick<FeatureDeps, 'ctx' | 'directory'>;

/**
 * `server.stats` broadcast (C6): `{"type":"server","event":"stats","ts","deviceCount","online":[ids],"cpuPercent",
 * "memPercent","memUsedMB","memTotalMB"}` to every device every `server.stats_interval_ms` (10 s; read each cycle,
 * so a reload applies from the next one) and on every register/unregister (registry `online`/`offline`).
 *
 * Nothing here blocks: CPU is the delta of the kernel's counters since the previous sample (no sampling sleep,
 * the psutil `cpu_percent(interval=...)` trap), memory comes from two cheap calls, and the fan-out to many
 * devices is cut into slices, one event-loop turn each. Register/unregister bursts are coalesced into one
 * broadcast per window of at least `COALESCE_MS`, longer with many devices (`server.presence_max_messages_per_second`),
 * and the message is serialized once for all devices, so N devices connecting at once cost O(N) messages per
 * window, not O(N²). A device opts out of the presence broadcasts (not the periodic ones) with `presence: false` in
 * devices.yaml (its own entry, its group's or the file's) or `features.presence: false` in its hello.
 */
export class StatsFeature implements Feature {
  readonly name = 'stats';
  readonly #deps: StatsDeps;
  readonly #scope: Scope;
  readonly #cpu = new CpuSampler();
  #lastSent = 0;
  /** Cancels the coalesced presence broadcast that is waiting. */
  #pending: (() => void) | undefined;
  /** Devices whose current session said `features.presence: false` in its hello. */
  readonly #helloOptOut = new Map<string, Session>();

  constructor(deps: StatsDeps) {
    this.#deps = deps;
    const { registry, log } = deps.ctx;
    this.#scope = new Scope('stats', (err, where) => log.error({ err, where }, 'stats broadcast failed'));
    this.#scope.on(registry, 'online', () => this.#onPresence());
    this.#scope.on(registry, 'offline', () => this.#onPresence());
    // Devices coming and going on other nodes change the count this node's devices see.
    if (deps.ctx.cluster) this.#scope.on(deps.ctx.cluster.registry.presence, 'change', () => this.#onPresence());
    this.#scope.on(deps.ctx.events, 'ready', (session: Session) => {
      if (session.features.presence === false) this.#helloOptOut.set(session.deviceId, session);
      else this.#helloOptOut.delete(session.deviceId);
    });
    this.#scope.on(deps.ctx.events, 'closed', (session: Session) => {
      if (this.#helloOptOut.get(session.deviceId) === session) this.#helloOptOut.delete(session.deviceId);
    });
    this.#cycle();
  }

  close(): void {
    this.#scope.close();
  }

  /** Devices online: the whole cluster's in cluster mode (D17), this node's while Redis is away or alone. */
  async #online(): Promise<{ count: number; ids: string[] }> {
    const online = await onlineDevices(this.#deps.ctx, { limit: MAX_ONLINE_LISTED, log: this.#deps.ctx.log });
    return { count: online.count, ids: [...online.devices.keys()] };
  }

  #local(): { count: number; ids: string[] } {
    const ids = this.#deps.ctx.registry.deviceIds();
    return { count: ids.length, ids: [...localDevices(ids, null, MAX_ONLINE_LISTED).keys()] };
  }

  #build(online: { count: number; ids: string[] }): StatsMessage {
    const total = totalmem();
    const used = total - freemem();
    return {
      type: 'server',
      event: 'stats',
      ts: Date.now(),
      deviceCount: online.count,
      online: online.ids,
      cpuPercent: this.#cpu.sample(),
      memPercent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0,
      memUsedMB: Math.round(used / 1048576),
      memTotalMB: Math.round(total / 1048576),
    };
  }

  #wantsPresence(deviceId: string): boolean {
    return !this.#helloOptOut.has(deviceId) && this.#deps.directory.setting(deviceId, 'presence') !== false;
  }

  /** To every device; a presence broadcast leaves out those that opted out of it. */
  #broadcast(presence: boolean): void {
    this.#lastSent = Date.now();
    if (!this.#deps.ctx.cluster) this.#send(presence, this.#build(this.#local()));
    else void this.#scope.run('broadcast', async () => this.#send(presence, this.#build(await this.#online())));
  }

  #send(presence: boolean, stats: StatsMessage): void {
    const { registry } = this.#deps.ctx;
    const text = JSON.stringify(stats);
    const all = registry.deviceIds();
    const targets = presence ? all.filter((id) => this.#wantsPresence(id)) : all;
    const sendSlice = (from: number): void => {
      for (const id of targets.slice(from, from + FANOUT_SLICE)) registry.get(id)?.deliverText(text, 'server');
      if (from + FANOUT_SLICE < targets.length) this.#scope.timeout(0, () => sendSlice(from + FANOUT_SLICE));
    };
    sendSlice(0);
  }

  /** A presence change: one broadcast soon, shared by every change of the same window. */
  #onPresence(): void {
    const { registry, config } = this.#deps.ctx;
    const server = config.current.server;
    if (this.#pending || server.stats_interval_ms <= 0) return;
    const spacing = Math.max(COALESCE_MS, (registry.size * 1000) / server.presence_max_messages_per_second);
    const wait = Math.max(0, this.#lastSent + spacing - Date.now());
    this.#pending = this.#scope.timeout(wait, () => {
      this.#pending = undefined;
      this.#broadcast(true);
    });
  }

  /** The periodic cycle re-reads its interval every time, like the server's ping sweep: reloads apply next cycle. */
  #cycle(): void {
    const { registry, config } = this.#deps.ctx;
    const every = config.current.server.stats_interval_ms;
    this.#scope.timeout(every > 0 ? every : 5000, () => {
      if (every > 0 && registry.size > 0) this.#broadcast(false);
      this.#cycle();
    });
  }
}
