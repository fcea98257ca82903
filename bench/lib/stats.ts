/** Small statistics of the profiles: quantiles of raw values, least-squares slopes, splitting work into shares. */

export interface Quantiles {
  p50: number;
  p99: number;
  n: number;
}

/** Nearest-rank p50/p99 of the finite values (NaN when there are none). */
export function quantiles(values: number[]): Quantiles {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  const at = (p: number): number => (s.length ? s[Math.max(0, Math.ceil(p * s.length) - 1)]! : NaN);
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

export function median(values: number[]): number {
  return quantiles(values).p50;
}

/** Least-squares slope of value over t (value units per t unit); NaN with fewer than two distinct t. */
export function slope(points: Array<[t: number, value: number]>): number {
  const pts = points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
  if (pts.length < 2) return NaN;
  const mt = pts.reduce((s, [t]) => s + t, 0) / pts.length;
  const mv = pts.reduce((s, [, v]) => s + v, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const [t, v] of pts) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den ? num / den : NaN;
}

/** The points of the second half of the time span (by t). */
export function secondHalf<T extends [number, number]>(points: T[]): T[] {
  if (!points.length) return [];
  const t0 = points[0]![0];
  const t1 = points.at(-1)![0];
  return points.filter(([t]) => t >= t0 + (t1 - t0) / 2);
}

/** Splits total into `parts` near-equal positive shares. */
export const split = (total: number, parts: number): number[] =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0)).filter((n) => n > 0);

export const MiB = 1048576;

/** Per-bucket (not cumulative) counts of raw values against ascending upper bounds (the last Infinity). */
export function bucketize(values: number[], bounds: number[]): Array<{ le: number; count: number }> {
  const out = bounds.map((le) => ({ le, count: 0 }));
  for (const v of values) {
    const b = out.find((x) => v <= x.le);
    if (b) b.count++;
  }
  return out;
}
