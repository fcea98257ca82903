/**
 * Prometheus text exposition: scrape, parse, and histogram quantiles from bucket deltas (two scrapes), computed
 * as Prometheus' histogram_quantile does: linear interpolation inside the bucket holding the quantile.
 */
import { httpGet } from './http.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** GET /metrics on a connection of its own, closed after (no keep-alive socket left in the server). */
export async function scrape(url: string, timeoutMs = 10_000): Promise<Sample[]> {
  const res = await httpGet(url, timeoutMs);
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return parsePrometheus(res.body);
}

function parseValue(s: string): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s); // "NaN" gives NaN too
}

/** Parses `name{a="b",...} value [timestamp]` lines; comments and blank lines are skipped. */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      const parsed = parseLabels(line, brace + 1);
      labels = parsed.labels;
      rest = line.slice(parsed.end + 1).trim();
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    out.push({ name, labels, value: parseValue(rest.split(/\s+/)[0] ?? '') });
  }
  return out;
}

/** Labels from just after `{` up to the matching `}` (returned as `end`), with \\, \" and \n unescaped. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}' || i >= line.length) return { labels, end: i };
    const eq = line.indexOf('=', i);
    const key = line.slice(i, eq).trim();
    i = eq + 2; // past ="
    let value = '';
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
      } else value += line[i++];
    }
    labels[key] = value;
    i++; // past the closing quote
  }
}

const matches = (s: Sample, labels: Record<string, string>): boolean =>
  Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** Sum of the samples of one metric whose labels include `labels` (0 when there are none). */
export function metricSum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && matches(s, labels)).reduce((a, s) => a + s.value, 0);
}

/** The first matching sample's value, NaN when absent. */
export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.find((s) => s.name === name && matches(s, labels))?.value ?? NaN;
}

/** Values of one label over the samples of a metric, e.g. the outcomes of linus_turns_total. */
export function byLabel(samples: Sample[], name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples)
    if (s.name === name && s.labels[label] !== undefined)
      out.set(s.labels[label]!, (out.get(s.labels[label]!) ?? 0) + s.value);
  return out;
}

/** Cumulative buckets (ascending `le`, the last +Inf), with count and sum. */
export interface HistogramData {
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** The histogram `name` (without the _bucket suffix) restricted to `labels`, summed over other labels. */
export function histogram(samples: Sample[], name: string, labels: Record<string, string> = {}): HistogramData {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !matches(s, labels) || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return {
    buckets: [...byLe].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count })),
    count: metricSum(samples, `${name}_count`, labels),
    sum: metricSum(samples, `${name}_sum`, labels),
  };
}

/** What was observed between two scrapes of the same histogram. */
export function histogramDelta(after: HistogramData, before: HistogramData): HistogramData {
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/**
 * The q-quantile as Prometheus' histogram_quantile computes it: linear inside the bucket that holds it (from 0
 * for the first bucket). NaN when empty; the highest finite bound when it falls in the +Inf bucket.
 */
export function histogramQuantile(h: HistogramData, q: number): number {
  const total = h.buckets.at(-1)?.count ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1e-12, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Share (0..1) of observations ≤ `le`, exact when `le` is a bucket bound. NaN when empty. */
export function shareAtMost(h: HistogramData, le: number): number {
  const total = h.buckets.at(-1)?.count ?? 0;
  if (!total) return NaN;
  const b = [...h.buckets].reverse().find((x) => x.le <= le);
  return (b?.count ?? 0) / total;
}
