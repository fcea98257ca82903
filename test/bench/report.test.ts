import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProfileResult } from '../../bench/lib/profile.js';
import { barChart, lineChart, niceTicks, renderReport } from '../../bench/lib/report.js';
import { figuresTable, formatNumber, formatSummary, formatTable, formatValue } from '../../bench/lib/table.js';

const result: ProfileResult = {
  profile: 'talk',
  command: 'node --import tsx bench/run.ts talk --levels 10',
  startedAt: '2026-01-01T00:00:00.000Z',
  durationSec: 42.5,
  figures: [
    { name: '10 devices: turns completed', value: 100, unit: '%', target: '100 %', met: true },
    { name: '10 devices: event-loop lag p99', value: 31.25, unit: 'ms', target: '≤ 20 ms', met: false },
    { name: '500 devices: turns completed', value: 'not run', target: '100 %' },
    { name: 'server RSS', value: 212.4, unit: 'MiB' },
  ],
  series: [
    {
      name: 'server RSS',
      unit: 'MiB',
      points: [
        [0, 200],
        [1, 205],
        [2, 212.4],
      ],
    },
    { name: 'late <frames> & "more"', unit: '%', points: [[3, 1.5]] },
  ],
  histograms: [
    {
      name: 'VAD end → first frame',
      unit: 'ms',
      buckets: [
        { le: 1, count: 0 },
        { le: 2.5, count: 3 },
        { le: 5, count: 1 },
        { le: Infinity, count: 0 },
      ],
    },
  ],
  generatorCpuPct: 12.5,
  notes: ['a note with <b>markup</b>'],
  ok: false,
  failures: ['10 devices: 1 turns ended with the socket closed by the server'],
};

describe('bench report (HTML)', () => {
  it('is one self-contained page with the figures and an SVG polyline per series', () => {
    const html = renderReport(result);
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /<script|<link|src="http|href="http/, 'no external assets');
    assert.equal(html.match(/<svg /g)?.length, 3, 'two series and one histogram');
    assert.match(
      html,
      /<figcaption>server RSS<\/figcaption><svg [^>]*>.*<polyline class="line" [^>]*points="[\d.]+,[\d.]+ [\d.]+,[\d.]+ [\d.]+,[\d.]+"\/>/s,
    );
    assert.match(
      html,
      /<td>10 devices: event-loop lag p99<\/td><td class="v">31.3 ms<\/td><td>≤ 20 ms<\/td><td class="missed">✗<\/td>/,
    );
    assert.match(html, /<td class="met">✓<\/td>/);
    assert.match(html, /NOT OK/);
    assert.ok(html.includes('late &lt;frames&gt; &amp; &quot;more&quot;'), 'names are escaped');
    assert.ok(html.includes('a note with &lt;b&gt;markup&lt;/b&gt;'));
    assert.ok(!html.includes('<b>markup'));
  });

  it('draws a single point as a dot and bars up to the last bucket with observations', () => {
    assert.match(lineChart({ name: 'x', unit: 'u', points: [[1, 2]] }), /<circle class="dot"/);
    assert.match(lineChart({ name: 'x', unit: 'u', points: [] }), /no data/);
    const bars = barChart(result.histograms![0]!);
    assert.equal(bars.match(/<rect class="bar"/g)?.length, 3, 'the empty +Inf bucket is left out');
    assert.match(bars, />≤ 2.50</);
    assert.match(barChart({ name: 'h', unit: 'ms', buckets: [{ le: 1, count: 0 }] }), /no observations/);
  });

  it('puts axis ticks on round values that cover the data', () => {
    assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(0, 0.9), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    const t = niceTicks(3, 212.4);
    assert.ok(t[0]! <= 3 && t.at(-1)! >= 212.4, t.join(','));
  });
});

describe('bench summary table', () => {
  it('formats values by size, with units', () => {
    assert.equal(formatNumber(43512.7), '43,513');
    assert.equal(formatNumber(31.25), '31.3');
    assert.equal(formatNumber(2.104), '2.10');
    assert.equal(formatNumber(7), '7');
    assert.equal(formatNumber(NaN), '–');
    assert.equal(formatValue(100, '%'), '100 %');
    assert.equal(formatValue(12, 'ms'), '12 ms');
    assert.equal(formatValue('not run', 'ms'), 'not run');
  });

  it('aligns columns: names left, values right, a met mark only where there is a target', () => {
    const lines = figuresTable(result.figures).split('\n');
    assert.match(lines[0]!, /^figure\s+value\s+target\s+met$/);
    assert.match(lines[1]!, /^─+ {2}─+ {2}─+ {2}─+$/);
    const row = (name: string): string => lines.find((l) => l.startsWith(name))!;
    assert.match(row('10 devices: turns completed'), /100 % {2}100 %\s+✓$/);
    assert.match(row('10 devices: event-loop lag p99'), /31.3 ms {2}≤ 20 ms\s+✗$/);
    assert.match(row('500 devices: turns completed'), /not run {2}100 %\s+–$/);
    assert.match(row('server RSS'), /212 MiB$/);
    const valueEnd = lines[0]!.indexOf('value') + 'value'.length;
    for (const l of lines.slice(2)) assert.equal(l[valueEnd - 1] !== ' ', true, `right-aligned value in "${l}"`);
    assert.equal(formatTable(['a', 'b'], [['xx', '1']], ['left', 'right']), 'a   b\n──  ─\nxx  1');
  });

  it('ends with the targets count, generator CPU, notes and failures', () => {
    const s = formatSummary(result);
    assert.match(s, /^linus bench talk: NOT OK, 42.5 s — node --import tsx bench\/run.ts talk --levels 10/);
    assert.match(s, /targets: 1 met, 1 missed, 1 not judged/);
    assert.match(s, /generator CPU: 12.5 % of a core/);
    assert.match(s, /notes:\n {2}- a note with <b>markup<\/b>/);
    assert.match(s, /failures:\n {2}- 10 devices: 1 turns ended/);
  });
});
