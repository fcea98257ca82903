/**
 * What the fuzz profile (bench/profiles/fuzz.ts) and its generators (bench/fuzz-client.ts) share: the classes of
 * malformed frames, where the server must count each one in /metrics, and the IPC shapes.
 */

/** A class of bad frame, the metric (and labels) that must count every one the server received. */
export interface FuzzClass {
  what: string;
  metric: string;
  labels?: Record<string, string>;
  /** Ends the connection (sent last on a connection, after a round trip that proves everything before it arrived). */
  closing?: boolean;
}

export const FUZZ_CLASSES = {
  bad_json: {
    what: 'text that is not JSON (truncated, single quotes, trailing commas, garbage, empty)',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'bad_json' },
  },
  no_type: {
    what: 'JSON without a string type (arrays, null, true, "s", {"type":5}, {})',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'no_type' },
  },
  schema: {
    what: 'known types with wrong field types (hello, listen, abort, mcp, iot, mode, server, meeting, peer, workflow, coding)',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'schema' },
  },
  unknown_type: {
    what: 'unknown message types (random names, server-to-device types)',
    metric: 'linus_unknown_messages_total',
  },
  too_large: {
    what: 'text and binary frames over server.max_frame_bytes',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'too_large' },
  },
  binary_length_mismatch: {
    what: 'v2/v3 headers whose length lies',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'binary_length_mismatch' },
  },
  binary_bad_version: {
    what: 'v2 headers with another version',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'binary_bad_version' },
  },
  binary_too_short: {
    what: 'v2/v3 frames shorter than their header',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'binary_too_short' },
  },
  binary_empty: {
    what: 'empty v1 binary frames',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'binary_empty' },
  },
  random_audio: {
    what: 'random bytes as audio (v1, and v2/v3 with an honest header)',
    metric: 'linus_messages_in_total',
    labels: { type: 'binary' },
  },
  invalid_utf8: {
    what: 'text frames that are not UTF-8',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'invalid_utf8' },
    closing: true,
  },
  over_hard_limit: {
    what: 'frames over server.max_frame_hard_bytes',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'over_hard_limit' },
    closing: true,
  },
  ws_protocol: {
    what: 'WebSocket framing errors (reserved opcode, unmasked, RSV1, unfinished control, stray continuation)',
    metric: 'linus_bad_frames_total',
    labels: { reason: 'ws_protocol' },
    closing: true,
  },
} as const satisfies Record<string, FuzzClass>;

export type FuzzClassName = keyof typeof FUZZ_CLASSES;

/** Binary classes that reach the session's frame counter (linus_messages_in_total{type="binary"}). */
export const COUNTED_BINARY: readonly FuzzClassName[] = [
  'binary_length_mismatch',
  'binary_bad_version',
  'binary_too_short',
  'binary_empty',
  'random_audio',
];

/** Handed to a generator in the BENCH_FUZZ environment variable. */
export interface FuzzClientConfig {
  url: string;
  /** Frames this generator sends in all. */
  frames: number;
  /** Connections open at once. */
  connections: number;
  /** Mean frames per connection (each draws 50..150 % of it). */
  framesPerConnection: number;
  /** Share of connections that end with a closing class instead of a clean close. */
  closingShare: number;
  maxFrameBytes: number;
  hardFrameBytes: number;
  seed: number;
  idPrefix: string;
}

export interface FuzzTally {
  /** Frames sent per class, on connections that stayed open until the round trip after them. */
  sent: Record<FuzzClassName, number>;
  /** Of those, binary frames sent before the hello. */
  beforeHello: number;
  connections: number;
  /** Connections the server closed when no closing frame asked for it (their frames may not all have arrived). */
  unexpectedCloses: number;
  /** Frames sent on those connections since their last successful round trip (not counted in `sent`). */
  unconfirmed: number;
  /** Close codes the server gave after closing frames, by class. */
  closeCodes: Record<string, number>;
  /** Connections that could not be opened. */
  connectFailures: number;
  errors: string[];
}

export function emptyTally(): FuzzTally {
  return {
    sent: Object.fromEntries(Object.keys(FUZZ_CLASSES).map((k) => [k, 0])) as Record<FuzzClassName, number>,
    beforeHello: 0,
    connections: 0,
    unexpectedCloses: 0,
    unconfirmed: 0,
    closeCodes: {},
    connectFailures: 0,
    errors: [],
  };
}

export type FromFuzz = { kind: 'progress'; sent: number } | { kind: 'result'; tally: FuzzTally; cpuMs: number };
