import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Message types that get their own label; anything else is counted as `other`, so labels stay bounded. */
const KNOWN_TYPES = new Set([
  'hello',
  'listen',
  'abort',
  'mcp',
  'iot',
  'ping',
  'keepalive',
  'pong',
  'config_update',
  'goodbye',
  'server',
  'stt',
  'tts',
  'llm',
  'system',
  'alert',
  'error',
  'mode',
  'meeting',
  'workflow',
  'peer',
  'coding',
  'audio',
  'binary',
  'custom',
]);

export function typeLabel(type: string): string {
  return KNOWN_TYPES.has(type) ? type : 'other';
}

/** All server metrics in one registry per server instance (tests run several servers in one process). */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'linus_connections',
    help: 'Open device WebSocket connections',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'linus_connections_total',
    help: 'Accepted WebSocket connections',
    registers: [this.registry],
  });
  readonly devices = new Gauge({
    name: 'linus_devices',
    help: 'Devices with a live route',
    registers: [this.registry],
  });
  readonly rejectedUpgrades = new Counter({
    name: 'linus_rejected_upgrades_total',
    help: 'WebSocket upgrades refused before the handshake',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'linus_auth_failures_total',
    help: 'Wrong secrets presented, by kind: admin (admin secret), api (meeting API token), device (device token)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly authThrottled = new Counter({
    name: 'linus_auth_throttled_total',
    help: 'Requests answered 429 unchecked because their address is backing off after wrong secrets',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly authLockouts = new Counter({
    name: 'linus_auth_lockouts_total',
    help: 'Back-offs started: an address presented too many wrong secrets in a row',
    registers: [this.registry],
  });
  readonly httpRefused = new Counter({
    name: 'linus_http_refused_total',
    help: 'HTTP requests refused for their size or form: header_too_large, too_many_headers (431), body_too_large (413), bad_request (400), timeout (408)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  // Per-frame counts are plain numbers, published at scrape time: a prom-client inc per frame costs ~6 % CPU.
  readonly #in = new Map<string, number>();
  readonly #out = new Map<string, number>();
  #bytesIn = 0;
  #bytesOut = 0;
  readonly messagesIn: Counter<'type'>;
  readonly messagesOut: Counter<'type'>;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly sendFailures = new Counter({
    name: 'linus_send_failures_total',
    help: 'Frames not delivered by the send path',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly badFrames = new Counter({
    name: 'linus_bad_frames_total',
    help: 'Inbound frames rejected as malformed or over a limit',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly unknownMessages = new Counter({
    name: 'linus_unknown_messages_total',
    help: 'Inbound JSON messages of an unknown type',
    registers: [this.registry],
  });
  readonly handovers = new Counter({
    name: 'linus_handovers_total',
    help: 'Connections replaced by a newer one of the same device',
    registers: [this.registry],
  });
  readonly clusterBusGaps = new Counter({
    name: 'linus_cluster_bus_gaps_total',
    help: 'Times the cluster bus resumed reading after broadcasts were lost (then resynced)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly idleCloses = new Counter({
    name: 'linus_idle_closes_total',
    help: 'Connections closed for inactivity',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly turns = new Counter({
    name: 'linus_turns_total',
    help: 'Voice turns by how they ended',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly turnStage = new Histogram({
    name: 'linus_turn_stage_seconds',
    help: 'Voice turn latency by stage: asr (VAD end to ASR final), llm (to first token), tts (to first audio), send (to first frame), total (VAD end to first frame), server (total minus provider time)',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly providerErrors = new Counter({
    name: 'linus_provider_errors_total',
    help: 'Provider call failures',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });
  readonly downlinkFrames = new Counter({
    name: 'linus_downlink_frames_total',
    help: 'Paced downlink audio frames sent',
    registers: [this.registry],
  });
  readonly downlinkLateFrames = new Counter({
    name: 'linus_downlink_late_frames_total',
    help: 'Downlink frames sent more than 5 ms later than one frame after the previous one',
    registers: [this.registry],
  });
  readonly uplinkDecodeErrors = new Counter({
    name: 'linus_uplink_decode_errors_total',
    help: 'Uplink Opus packets that failed to decode',
    registers: [this.registry],
  });
  readonly loopLag: IntervalHistogram;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const publish = (counter: Counter<'type'>, counts: Map<string, number>) => {
      counter.reset();
      for (const [type, n] of counts) counter.labels(type).inc(n);
    };
    const ins = this.#in;
    const outs = this.#out;
    const bytes = () => ({ in: this.#bytesIn, out: this.#bytesOut });
    this.messagesIn = new Counter({
      name: 'linus_messages_in_total',
      help: 'Inbound frames by message type',
      labelNames: ['type'] as const,
      registers: [this.registry],
      collect() {
        publish(this, ins);
      },
    });
    this.messagesOut = new Counter({
      name: 'linus_messages_out_total',
      help: 'Outbound frames by message type',
      labelNames: ['type'] as const,
      registers: [this.registry],
      collect() {
        publish(this, outs);
      },
    });
    this.bytesIn = new Counter({
      name: 'linus_bytes_in_total',
      help: 'Inbound WebSocket payload bytes',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(bytes().in);
      },
    });
    this.bytesOut = new Counter({
      name: 'linus_bytes_out_total',
      help: 'Outbound WebSocket payload bytes',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(bytes().out);
      },
    });
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'linus_' });
      // prom-client's own event-loop gauges read an empty histogram before the first sample (min 9223372036.85 s,
      // mean NaN); the linus_event_loop_lag_* gauges below report the same delays, 0 until there are samples.
      for (const name of this.registry.getMetricsAsArray().map((m) => m.name))
        if (name.startsWith('linus_nodejs_eventloop_lag')) this.registry.removeSingleMetric(name);
    }
    this.loopLag = monitorEventLoopDelay({ resolution: 10 });
    this.loopLag.enable();
    const lag = this.loopLag;
    for (const [q, name] of [
      [50, 'p50'],
      [99, 'p99'],
    ] as const) {
      new Gauge({
        name: `linus_event_loop_lag_${name}_seconds`,
        help: `Event-loop delay ${name} since the previous scrape`,
        registers: [this.registry],
        collect() {
          // An empty histogram answers its lowest bucket (0.5 µs); no samples yet means no delay seen.
          this.set(lag.count ? lag.percentile(q) / 1e9 : 0);
        },
      });
    }
    new Gauge({
      name: 'linus_event_loop_lag_max_seconds',
      help: 'Largest event-loop delay since the previous scrape',
      registers: [this.registry],
      collect() {
        this.set(lag.max / 1e9);
        lag.reset();
      },
    });
  }

  countIn(type: string, bytes: number): void {
    const label = typeLabel(type);
    this.#in.set(label, (this.#in.get(label) ?? 0) + 1);
    this.#bytesIn += bytes;
  }

  countOut(type: string, bytes: number): void {
    const label = typeLabel(type);
    this.#out.set(label, (this.#out.get(label) ?? 0) + 1);
    this.#bytesOut += bytes;
  }

  close(): void {
    this.loopLag.disable();
  }
}
