import type { ConfigReloader } from '../../config/reload.js';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { NodeBus } from './bus.js';
import type { BusMessageOf } from './messages.js';

/** A reload another node accepted and this one rejected: it keeps its old config (D12) and says so in /health. */
export interface RejectedReload {
  from: string;
  error: string;
  at: number;
}

export interface ConfigSync {
  close(): void;
  rejected(): RejectedReload | undefined;
  /**
   * Applies the cluster's last accepted reload if this node has not had it (a node starting after it, or back
   * from an outage in which its bus lost broadcasts). Never rejects: a failure is logged.
   */
  catchUp(): Promise<void>;
}

/**
 * Live config across the cluster (D17): a reload this node accepted (file, SIGHUP, admin API, `update_config`,
 * manager API) is broadcast on the bus and kept in Redis as the cluster's last one, numbered; every other node
 * reloads through its own path with the same patch, validated there. What a node rejects leaves its old config
 * in force, logged and kept for /health. A reload that came from the bus is never broadcast again.
 *
 * Every reload builds the whole config from its source plus that reload's patch (D13: a patch is an overlay on
 * the source, not on the previous patch), so the last accepted reload alone gives the config the other nodes
 * have: a node that missed broadcasts (a bus gap) or starts later applies that one, unless it already had it.
 */
export function syncConfig(bus: NodeBus, reloader: ConfigReloader, log: Logger): ConfigSync {
  let rejected: RejectedReload | undefined;
  /**
   * The highest reload number this node applied, published or is applying, in the numbering `epoch`: older ones
   * arriving late are skipped. A Redis restored from an older snapshot keeps the epoch (its older kept reload is
   * skipped); a new, empty one starts a new epoch, whose numbers count again.
   */
  let seen = 0;
  let epoch: string | undefined;
  const apply = async (m: BusMessageOf<'config'>, how: string): Promise<void> => {
    if (m.seq !== undefined) {
      if (m.epoch !== undefined && m.epoch !== epoch) {
        epoch = m.epoch;
        seen = 0;
      }
      if (m.seq <= seen) return;
      seen = m.seq;
    }
    const r = await reloader.reload('cluster', m.patch);
    if (r.ok) {
      rejected = undefined;
      log.info({ from: m.from, source: m.source, seq: m.seq, changed: r.changed }, `config reload ${how} applied`);
    } else {
      rejected = { from: m.from, error: r.error, at: Date.now() };
      log.error({ from: m.from, seq: m.seq, error: r.error }, `config reload ${how} rejected; the old config stays`);
    }
  };
  const catchUp = async (): Promise<void> => {
    try {
      const last = await bus.lastKept('config');
      if (last) await apply(last, 'missed from another node');
    } catch (err) {
      // Redis away again: the next gap (or the next reload broadcast) brings it.
      log.warn({ err: errorMessage(err) }, 'cannot read the cluster config; this node keeps its own');
    }
  };
  const offReload = reloader.onReload((result, patch) => {
    if (!result.ok || result.source === 'cluster' || result.source === 'start') return;
    bus.broadcastKept({ kind: 'config', source: result.source, ...(patch ? { patch } : {}) }, seen).then(
      (kept) => {
        if (kept.epoch !== epoch) [epoch, seen] = [kept.epoch, kept.seq];
        else seen = Math.max(seen, kept.seq);
      },
      (err: unknown) => {
        // The local reload stands; the other nodes keep theirs until the next one (Redis is away: degraded).
        log.warn({ err: errorMessage(err) }, 'config reload not passed on to the other nodes');
      },
    );
  });
  const offBus = bus.on('config', (m) => apply(m, 'from another node'));
  // The epoch tells a new, empty Redis (numbers count again) from one restored from a snapshot (they do not).
  const offGap = bus.onGap(() => void catchUp());
  return {
    close() {
      offReload();
      offBus();
      offGap();
    },
    rejected: () => rejected,
    catchUp,
  };
}
