import type { Metrics } from '../../observability/metrics.js';

/** One point of the console's health charts; rates are over the interval since the previous point. */
export interface HealthSample {
  at: number;
  connections: number;
  devices: number;
  turnsPerMin: number;
  /** Voice turn latency (VAD end to first frame), ms, over the interval; null without turns. */
  turnP50Ms: number | null;
  turnP99Ms: number | null;
  lateFrames: number;
  /** Event-loop delay, ms (the histogram behind linus_event_loop_lag_*; not reset here). */
  loopLagP50Ms: number;
  loopLagP99Ms: number;
  providerErrors: number;
}

interface Totals {
  at: number;
  turns: number;
  late: number;
  providerErrors: number;
  /** Cumulative `total`-stage histogram buckets: upper bound (s) → count. */
  buckets: Map<number, number>;
}

export const HEALTH_SAMPLE_MS = 10_000;
const KEEP = Math.round(3_600_000 / HEALTH_SAMPLE_MS);

async function sum(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values.reduce((s, v) => s + v.value, 0);
}

/** Quantile `q` of the observations between two cumulative bucket snapshots (upper bound of its bucket, ms). */
function quantileMs(now: Map<number, number>, before: Map<number, number>, q: number): number | null {
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const count = (now.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (count <= 0) return null;
  const rank = q * count;
  for (const le of bounds) {
    if ((now.get(le) ?? 0) - (before.get(le) ?? 0) >= rank) return Number.isFinite(le) ? Math.round(le * 1000) : null;
  }
  return null;
}

/**
 * The Health page's figures, read from the same registry as `/metrics`: one sample every 10 s, the last hour
 * kept. Counters become per-interval deltas; turn latency percentiles come from the histogram's bucket deltas.
 */
export class HealthHistory {
  readonly #samples: HealthSample[] = [];
  #last: Totals | undefined;

  constructor(
    private readonly metrics: Metrics,
    /** Devices online: the whole cluster's in cluster mode, as /health counts them. */
    private readonly devices: () => Promise<number>,
  ) {}

  get samples(): readonly HealthSample[] {
    return this.#samples;
  }

  async #totals(): Promise<Totals> {
    const m = this.metrics;
    const hist = await m.turnStage.get();
    const buckets = new Map<number, number>();
    for (const v of hist.values) {
      const labels = v.labels as Record<string, unknown>;
      if (labels.stage !== 'total' || v.metricName !== 'linus_turn_stage_seconds_bucket') continue;
      buckets.set(labels.le === '+Inf' ? Infinity : Number(labels.le), v.value);
    }
    return {
      at: Date.now(),
      turns: await sum(m.turns),
      late: await sum(m.downlinkLateFrames),
      providerErrors: await sum(m.providerErrors),
      buckets,
    };
  }

  /** A sample over the interval since the last recorded one; `record` appends it to the history. */
  async sample(record: boolean): Promise<HealthSample> {
    const now = await this.#totals();
    const before = this.#last ?? { ...now, turns: 0, late: 0, providerErrors: 0, buckets: new Map() };
    const minutes = Math.max(1 / 60, (now.at - (this.#last?.at ?? now.at - HEALTH_SAMPLE_MS)) / 60_000);
    const lag = this.metrics.loopLag;
    const s: HealthSample = {
      at: now.at,
      connections: await sum(this.metrics.connections),
      devices: await this.devices(),
      turnsPerMin: Math.round(((now.turns - before.turns) / minutes) * 10) / 10,
      turnP50Ms: quantileMs(now.buckets, before.buckets, 0.5),
      turnP99Ms: quantileMs(now.buckets, before.buckets, 0.99),
      lateFrames: now.late - before.late,
      loopLagP50Ms: Math.round(lag.percentile(50) / 1e4) / 100,
      loopLagP99Ms: Math.round(lag.percentile(99) / 1e4) / 100,
      providerErrors: now.providerErrors - before.providerErrors,
    };
    if (record) {
      this.#last = now;
      this.#samples.push(s);
      if (this.#samples.length > KEEP) this.#samples.shift();
    }
    return s;
  }
}
