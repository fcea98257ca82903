// Health: the figures behind /metrics, one point every 10 s, the last hour as small charts.
import { api } from '../api.js';
import { useEvent } from '../events.js';
import { Page, useLoad, useTitle } from '../ui.js';

type Sample = Record<string, number | null | undefined>;

const SERIES = [
  ['connections', 'Connections', ''],
  ['turnsPerMin', 'Turns per minute', ''],
  ['turnP50Ms', 'Turn latency p50', 'ms'],
  ['turnP99Ms', 'Turn latency p99', 'ms'],
  ['lateFrames', 'Late downlink frames', ''],
  ['loopLagP99Ms', 'Event-loop lag p99', 'ms'],
  ['providerErrors', 'Provider errors', ''],
] as const;

const HOUR = 3_600_000;
const W = 300;
const H = 60;

function Chart({ values, label }: { values: (number | null | undefined)[]; label: string }) {
  const nums = values.map((v) => (typeof v === 'number' ? v : 0));
  const max = Math.max(1, ...nums);
  const step = nums.length > 1 ? W / (nums.length - 1) : W;
  const points = nums.map((v, i) => `${(i * step).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${label} over the last hour`}>
      <polyline
        points={points.length > 1 ? points.join(' ') : `0,${H - 2} ${W},${H - 2}`}
        fill="none"
        stroke="currentColor"
        stroke-width="2"
      />
    </svg>
  );
}

export function HealthPage() {
  useTitle('Health');
  const loaded = useLoad(() => api<{ everyMs: number; samples: Sample[]; now: Sample }>('GET', '/api/health'));
  // The last hour only, as the server keeps it.
  useEvent('health', (s: Sample) =>
    loaded.setData((old) => old && { ...old, samples: [...old.samples, s].slice(-HOUR / old.everyMs), now: s }),
  );
  return (
    <Page loaded={loaded}>
      {({ everyMs, samples, now }) => (
        <section>
          <h1>Health</h1>
          <p class="muted">One point every {everyMs / 1000} s; the same figures as /metrics.</p>
          <div class="cards">
            {SERIES.map(([key, label, unit]) => {
              const v = now[key];
              return (
                <figure class="card metric" data-metric={key}>
                  <figcaption>{label}</figcaption>
                  <p class="big">{v === null || v === undefined ? '—' : `${v}${unit ? ` ${unit}` : ''}`}</p>
                  <Chart values={samples.map((s) => s[key])} label={label} />
                </figure>
              );
            })}
          </div>
        </section>
      )}
    </Page>
  );
}
