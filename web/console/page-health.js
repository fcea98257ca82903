// Health: the figures behind /metrics, one point every 10 s, the last hour as small charts.
import { api, h, on, state } from './core.js';

const SERIES = [
  ['connections', 'Connections', ''],
  ['turnsPerMin', 'Turns per minute', ''],
  ['turnP50Ms', 'Turn latency p50', 'ms'],
  ['turnP99Ms', 'Turn latency p99', 'ms'],
  ['lateFrames', 'Late downlink frames', ''],
  ['loopLagP99Ms', 'Event-loop lag p99', 'ms'],
  ['providerErrors', 'Provider errors', ''],
];
const SVG = 'http://www.w3.org/2000/svg';

function chart(values, label) {
  const w = 300;
  const ht = 60;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${ht}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${label} over the last hour`);
  const nums = values.map((v) => (typeof v === 'number' ? v : 0));
  const max = Math.max(1, ...nums);
  const step = nums.length > 1 ? w / (nums.length - 1) : w;
  const points = nums.map((v, i) => `${(i * step).toFixed(1)},${(ht - 2 - (v / max) * (ht - 4)).toFixed(1)}`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points.length > 1 ? points.join(' ') : `0,${ht - 2} ${w},${ht - 2}`);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '2');
  svg.append(line);
  return svg;
}

export async function healthPage() {
  const data = await api('GET', '/api/health');
  state.health = [...data.samples];
  let now = data.now;
  const grid = h('div', { class: 'cards' });
  const draw = () => {
    grid.replaceChildren(
      ...SERIES.map(([key, label, unit]) => {
        const v = now[key];
        return h(
          'figure',
          { class: 'card metric', 'data-metric': key },
          h('figcaption', {}, label),
          h('p', { class: 'big' }, v === null || v === undefined ? '—' : `${v}${unit ? ` ${unit}` : ''}`),
          chart(
            state.health.map((s) => s[key]),
            label,
          ),
        );
      }),
    );
  };
  draw();
  return {
    title: 'Health',
    node: h(
      'section',
      {},
      h('h1', {}, 'Health'),
      h('p', { class: 'muted' }, `One point every ${data.everyMs / 1000} s; the same figures as /metrics.`),
      grid,
    ),
    cleanup: [
      on('health', (s) => {
        now = s;
        draw();
      }),
    ],
  };
}
