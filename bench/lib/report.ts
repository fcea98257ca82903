/**
 * The HTML report of a run (`--report FILE.html`): one self-contained file, no external assets. The figures
 * table, each Series as a line chart and each histogram as a bar chart, drawn by hand as inline SVG (axes with
 * round ticks, a polyline, bars).
 */
import type { HistogramFigure, ProfileResult, Series } from './profile.js';
import { formatNumber, formatValue, metMark } from './table.js';

const W = 720;
const H = 260;
const M = { left: 64, right: 16, top: 16, bottom: 40 };

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.at(-1)! < hi) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

// Presentation attributes, not CSS classes alone: an SVG copied out of the page still draws the same.
const text = (x: number, y: number, s: string, anchor = 'middle', extra = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="${anchor}" font-family="sans-serif" font-size="11" fill="#444"${extra}>${escapeHtml(s)}</text>`;

/** Axes, grid lines and tick labels for the plot area; returns the SVG pieces and the value → pixel maps. */
function frame(xTicks: number[], yTicks: number[], xLabel: string, yLabel: string) {
  const x0 = xTicks[0]!;
  const x1 = xTicks.at(-1)!;
  const y0 = yTicks[0]!;
  const y1 = yTicks.at(-1)!;
  const px = (x: number): number => M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number): number => H - M.bottom - ((y - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const parts: string[] = [];
  for (const t of yTicks) {
    parts.push(
      `<line class="grid" stroke="#eee" x1="${M.left}" x2="${W - M.right}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}"/>`,
    );
    parts.push(text(M.left - 6, py(t) + 4, formatNumber(t), 'end'));
  }
  parts.push(
    `<line class="axis" stroke="#888" x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}"/>`,
  );
  parts.push(`<line class="axis" stroke="#888" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}"/>`);
  parts.push(text((M.left + W - M.right) / 2, H - 6, xLabel));
  parts.push(
    text(
      14,
      (M.top + H - M.bottom) / 2,
      yLabel,
      'middle',
      ` transform="rotate(-90 14 ${((M.top + H - M.bottom) / 2).toFixed(1)})"`,
    ),
  );
  return { parts, px, py };
}

/** A Series as a line chart (t in seconds on x). */
export function lineChart(s: Series): string {
  const pts = s.points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
  if (!pts.length) return `<p class="empty">${escapeHtml(s.name)}: no data</p>`;
  const ts = pts.map(([t]) => t);
  const vs = pts.map(([, v]) => v);
  const xTicks = niceTicks(Math.min(...ts), Math.max(...ts));
  const yTicks = niceTicks(Math.min(0, ...vs), Math.max(...vs) || 1);
  const { parts, px, py } = frame(xTicks, yTicks, 'seconds', s.unit);
  for (const t of xTicks) parts.push(text(px(t), H - M.bottom + 16, formatNumber(t)));
  const line = pts.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  parts.push(
    pts.length > 1
      ? `<polyline class="line" fill="none" stroke="#1f6feb" stroke-width="1.5" points="${line}"/>`
      : `<circle class="dot" fill="#1f6feb" cx="${px(ts[0]!).toFixed(1)}" cy="${py(vs[0]!).toFixed(1)}" r="3"/>`,
  );
  return svg(s.name, parts);
}

/** A histogram as bars, one per bucket (equal widths: the bounds are uneven), labelled by upper bound. */
export function barChart(h: HistogramFigure): string {
  let buckets = h.buckets;
  // Empty buckets past the last observation only make the bars thinner.
  const last = buckets.reduce((k, b, i) => (b.count > 0 ? i : k), -1);
  if (last < 0) return `<p class="empty">${escapeHtml(h.name)}: no observations</p>`;
  buckets = buckets.slice(0, Math.max(last + 1, Math.min(buckets.length, 3)));
  const yTicks = niceTicks(0, Math.max(...buckets.map((b) => b.count)) || 1);
  const { parts, py } = frame([0, buckets.length], yTicks, h.unit, 'count');
  const slot = (W - M.left - M.right) / buckets.length;
  buckets.forEach((b, i) => {
    const x = M.left + i * slot;
    const y = py(b.count);
    parts.push(
      `<rect class="bar" fill="#1f6feb" x="${(x + slot * 0.1).toFixed(1)}" y="${y.toFixed(1)}" width="${(slot * 0.8).toFixed(1)}" height="${(H - M.bottom - y).toFixed(1)}"><title>${b.count}</title></rect>`,
    );
    const prev = i ? buckets[i - 1]!.le : undefined;
    const label = Number.isFinite(b.le) ? `≤ ${formatNumber(b.le)}` : `> ${formatNumber(prev ?? 0)}`;
    parts.push(text(x + slot / 2, H - M.bottom + 16, label));
  });
  return svg(h.name, parts);
}

function svg(title: string, parts: string[]): string {
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">${parts.join('')}</svg></figure>`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}code{background:#f3f3f3;padding:0 .3em}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}
td.v{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.met{color:#1a7f37;font-weight:bold}.missed{color:#c62828;font-weight:bold}
.ok{color:#1a7f37}.bad{color:#c62828}figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}
.empty{color:#888}`;

export function renderReport(r: ProfileResult): string {
  const rows = r.figures
    .map((f) => {
      const mark = metMark(f);
      const cls = f.met === true ? 'met' : f.met === false ? 'missed' : '';
      return `<tr><td>${escapeHtml(f.name)}</td><td class="v">${escapeHtml(formatValue(f.value, f.unit))}</td><td>${escapeHtml(f.target ?? '')}</td><td class="${cls}">${mark}</td></tr>`;
    })
    .join('\n');
  const list = (title: string, items: string[] | undefined): string =>
    items?.length ? `<h2>${title}</h2><ul>${items.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : '';
  const charts = (r.series ?? []).map(lineChart).join('\n');
  const hists = (r.histograms ?? []).map(barChart).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>linus bench ${escapeHtml(r.profile)}</title><style>${CSS}</style></head>
<body>
<h1>linus bench ${escapeHtml(r.profile)} — <span class="${r.ok ? 'ok' : 'bad'}">${r.ok ? 'ok' : 'NOT OK'}</span></h1>
<p><code>${escapeHtml(r.command)}</code><br>started ${escapeHtml(r.startedAt)}, ${formatNumber(r.durationSec)} s${r.generatorCpuPct !== undefined ? `; generator CPU ${formatNumber(r.generatorCpuPct)} % of a core` : ''}</p>
<h2>Figures</h2>
<table><thead><tr><th>figure</th><th>value</th><th>target</th><th>met</th></tr></thead><tbody>
${rows}
</tbody></table>
${list('Failures', r.failures)}
${list('Notes', r.notes)}
${charts ? `<h2>Over time</h2>\n${charts}` : ''}
${hists ? `<h2>Latency histograms</h2>\n${hists}` : ''}
</body></html>
`;
}
