/**
 * The contract between `linus bench` (bench/run.ts) and one benchmark profile (bench/profiles/<name>.ts).
 * A profile starts its own server process and generators (bench/lib/linus-server.ts, bench/lib/children.ts),
 * reports progress through the context, and returns figures with their targets; the runner prints the table,
 * the JSON and the HTML report. A profile never asserts: `met` says whether a figure reached its target.
 */
import type { ParseArgsConfig } from 'node:util';

export type ProfileOptions = NonNullable<ParseArgsConfig['options']>;
export type FlagValues = Record<string, string | boolean | undefined>;

export interface ProfileContext {
  /** The repository root (where package.json is). */
  root: string;
  /** The profile's own flags, parsed with its `options` (defaults applied; smoke defaults when `smoke`). */
  flags: FlagValues;
  /** Small, fast, correctness-only run (npm test): seconds, small N. */
  smoke: boolean;
  /** Run the server from src/ with tsx instead of the built dist/ (smoke runs skip the build). */
  serverFromSource: boolean;
  /** Replaces the progress line (one line, rewritten in place on a TTY). */
  progress(line: string): void;
  /** A line of narration on stderr (kept above the progress line). */
  log(line: string): void;
  /** Aborted by SIGINT/SIGTERM or the run's hard timeout: stop loops, clean up, return what was measured. */
  signal: AbortSignal;
}

export interface Figure {
  /** What was measured, e.g. "turns completed". */
  name: string;
  value: number | string;
  unit?: string;
  /** The target in words, e.g. "≥ 0.6" or "100 %"; absent for figures that are context only. */
  target?: string;
  /** Whether the value met the target (absent when there is no target). */
  met?: boolean;
}

/** A value over time, for the report's charts (t in seconds from the start of the measurement). */
export interface Series {
  name: string;
  unit: string;
  points: Array<[t: number, value: number]>;
}

/** A latency histogram for the report: cumulative-free bucket counts with upper bounds. */
export interface HistogramFigure {
  name: string;
  unit: string;
  buckets: Array<{ le: number; count: number }>;
}

export interface ProfileResult {
  profile: string;
  /** The exact command that reproduces this run. */
  command: string;
  startedAt: string;
  durationSec: number;
  figures: Figure[];
  series?: Series[];
  histograms?: HistogramFigure[];
  /** CPU used by the load generators (% of one core), so a reader can tell whether the client was the limit. */
  generatorCpuPct?: number;
  /** What limited the run, what was noticed; printed under the table. */
  notes?: string[];
  /** Correctness held (smoke tests assert this): e.g. every turn ended with tts stop, nothing lost, no crash. */
  ok: boolean;
  /** Why ok is false. */
  failures?: string[];
  /** Everything else the profile measured, for the JSON (per-level raw numbers...). */
  details?: unknown;
}

export interface Profile {
  name: string;
  /** One line for `linus bench --help`. */
  summary: string;
  /** Flags of this profile (node:util parseArgs options). */
  options: ProfileOptions;
  /** Flag values used when running as a smoke test (override the defaults). */
  smokeDefaults: Record<string, string>;
  run(ctx: ProfileContext): Promise<ProfileResult>;
  /** One line per flag for `--help` (flag name without dashes → description). */
  help?: Record<string, string>;
  /** The runner's hard timeout for this run in seconds, from the flags (default 3600; --timeout overrides). */
  timeoutSec?: (flags: FlagValues, smoke: boolean) => number;
}
