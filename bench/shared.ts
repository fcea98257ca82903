/**
 * What the idle and control profiles (bench/lib/transport-load.ts) and their load-client processes share:
 * the wire messages, the IPC message shapes and a small mergeable latency histogram.
 */

/** The firmware's hello; `mcp: false` so Linus does not start an MCP exchange the bare server would not do. */
export const HELLO = JSON.stringify({
  type: 'hello',
  version: 1,
  features: { mcp: false },
  transport: 'websocket',
  audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
});
/** The same hello from a device that opts out of presence broadcasts (`features.presence: false`). */
export const HELLO_NO_PRESENCE = HELLO.replace('"mcp":false', '"mcp":false,"presence":false');
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

export type LoadMode = 'idle' | 'ping';

/** Handed to a load client in the BENCH_LOAD environment variable. */
export interface LoadConfig {
  url: string;
  mode: LoadMode;
  count: number;
  /** First numeric device id of this process; ids are unique across processes of one run. */
  firstId: number;
  /** Handshakes in flight at once, so the server's accept backlog is not overrun. */
  concurrency: number;
  /** Per-connection limit for upgrade + hello reply. */
  timeoutMs: number;
  /** No new connection is started after this long, so a slow server yields a partial result, not a hang. */
  openForMs: number;
  /** Idle mode: each connection sends a `ping` heartbeat this often (spread over the interval); 0 or absent = none. */
  heartbeatMs?: number;
  /** Every k-th connection (by device number) opts out of presence broadcasts in its hello; 0 or absent = none. */
  presenceOptOutEvery?: number;
}

/** Idle mode: heartbeats sent and answered, and the connections still open, at a `report`. */
export interface Heartbeats {
  sent: number;
  pongs: number;
  open: number;
}

/** Messages the server sent on its own (not a hello or pong reply), as seen by one load client. */
export interface Pushes {
  messages: number;
  bytes: number;
}

/** `go` starts the ping loops; `report` asks for the pushes so far. Clients are stopped with SIGTERM. */
export type ToLoad = { kind: 'go'; warmupMs: number; measureMs: number } | { kind: 'report' };

export type FromLoad =
  | { kind: 'ready'; opened: number; failed: number; firstError?: string; ms: number }
  | {
      kind: 'result';
      roundTrips: number;
      measuredMs: number;
      buckets: number[];
      cpuMs: number;
      lost: number;
      pushes: Pushes;
    }
  | {
      kind: 'pushes';
      pushes: Pushes;
      heartbeats?: Heartbeats;
      /** The connections that opted out of presence broadcasts, and what was pushed to them (part of `pushes`). */
      optedOut?: { connections: number; pushes: Pushes };
    };

/** Log-scale buckets 2% wide over microseconds: percentiles within 2%, and it merges by adding arrays. */
const GROWTH = Math.log(1.02);
const BUCKETS = 1200; // 1.02^1200 µs is far beyond any RTT we wait for

export class Histogram {
  readonly counts: number[] = new Array<number>(BUCKETS).fill(0);

  add(us: number): void {
    const b = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / GROWTH));
    this.counts[b]!++;
  }

  merge(counts: readonly number[]): void {
    counts.forEach((c, i) => (this.counts[i]! += c));
  }

  get total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Upper edge of the bucket holding the p-quantile, in µs (NaN when empty). */
  percentile(p: number): number {
    const target = Math.ceil(p * this.total);
    if (target === 0) return NaN;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.exp(i * GROWTH);
    }
    return NaN;
  }
}

/** A MAC-shaped device id, as the firmware sends, unique per connection number. */
export function deviceId(n: number): string {
  const hex = n.toString(16).padStart(8, '0');
  return `02:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}`;
}
