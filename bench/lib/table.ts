/** The runner's text output: a profile's figures as a table (figure | value | target | met), then the notes. */
import type { Figure, ProfileResult } from './profile.js';

/** A number with as many decimals as its size deserves (thousands separated); '–' when not finite. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const digits = a === 0 || a >= 100 || Number.isInteger(v) ? 0 : a >= 10 ? 1 : 2;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function formatValue(value: number | string, unit?: string): string {
  const v = typeof value === 'number' ? formatNumber(value) : value;
  if (!unit || typeof value !== 'number' || !Number.isFinite(value)) return v;
  return unit === '%' ? `${v} %` : `${v} ${unit}`;
}

/** ✓ met, ✗ missed, – a target that could not be judged (not run), blank without a target. */
export function metMark(f: Figure): string {
  if (f.target === undefined) return '';
  return f.met === undefined ? '–' : f.met ? '✓' : '✗';
}

export type Align = 'left' | 'right';

/** Columns padded to their widest cell, two spaces apart; a rule under the header. */
export function formatTable(header: string[], rows: string[][], align: Align[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (align[c] === 'right' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function figuresTable(figures: Figure[]): string {
  const rows = figures.map((f) => [f.name, formatValue(f.value, f.unit), f.target ?? '', metMark(f)]);
  return formatTable(['figure', 'value', 'target', 'met'], rows, ['left', 'right', 'left', 'left']);
}

/** Everything the runner prints at the end of a run. */
export function formatSummary(r: ProfileResult): string {
  const out: string[] = [
    `linus bench ${r.profile}: ${r.ok ? 'ok' : 'NOT OK'}, ${formatNumber(r.durationSec)} s — ${r.command}`,
    '',
  ];
  out.push(r.figures.length ? figuresTable(r.figures) : '(no figures)');
  const targets = r.figures.filter((f) => f.target !== undefined);
  if (targets.length) {
    const met = targets.filter((f) => f.met === true).length;
    const missed = targets.filter((f) => f.met === false).length;
    out.push(
      '',
      `targets: ${met} met, ${missed} missed${targets.length - met - missed ? `, ${targets.length - met - missed} not judged` : ''}`,
    );
  }
  if (r.generatorCpuPct !== undefined)
    out.push(
      `generator CPU: ${formatNumber(r.generatorCpuPct)} % of a core (the load side; near 100 % per process means the client was the limit)`,
    );
  if (r.notes?.length) out.push('', 'notes:', ...r.notes.map((n) => `  - ${n}`));
  if (r.failures?.length) out.push('', 'failures:', ...r.failures.map((f) => `  - ${f}`));
  return out.join('\n');
}
