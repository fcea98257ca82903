/** What bench/lib/voice-load.ts, its load generators (bench/voice-client.ts) and bench/fake-providers.ts share. */
import type { VoiceTransport } from './voice-link.js';

/** The uplink utterance, encoded once by the orchestrator and read by every generator. */
export interface Utterance {
  text: string;
  /** 60 ms 16 kHz mono Opus packets, base64: leading silence, speech, trailing silence. */
  packets: string[];
  /** Packets [from, to) of flite's recording without the silences added around it: what a push-to-talk turn sends. */
  manualPackets: [from: number, to: number];
  /** Index of the last packet that carries speech (flite's trailing silence excluded). */
  lastSpeechPacket: number;
  /**
   * Index of the packet on which the server's VAD (the same Opus decoder and Silero code and thresholds) ends the
   * utterance, found offline by the orchestrator; null when it could not be computed.
   */
  vadEndPacket: number | null;
  speechMs: number;
}

/** Handed to a generator in the BENCH_VOICE environment variable. */
export interface VoiceClientConfig {
  /** The WebSocket URL, or the OTA URL when `transport` is `mqtt`. */
  url: string;
  /** How the devices reach the server (default websocket); see bench/voice-link.ts. */
  transport?: VoiceTransport;
  utterancePath: string;
  count: number;
  /** Numeric id of this process's first device (device ids are unique per level and process). */
  firstId: number;
  /** Position of this process's first device in the level, for the start stagger. */
  firstIndex: number;
  levelSize: number;
  /** Turns per device; ignored when `seconds` > 0. */
  turns: number;
  /** When > 0, devices keep starting turns for this long after `go`. */
  seconds: number;
  staggerMs: number;
  /** Pause between `tts stop` and the next `listen start` (ignored when `duty` is set). */
  pauseMs: number;
  /**
   * Manual (push-to-talk) turns at this duty cycle, % of the time in a turn: `listen start manual`, the speech
   * packets only, `listen stop`, the reply; then a pause of (100 − duty) / duty × the turn's length (none at 100).
   * Unset: auto turns (the whole utterance with its silences, the server's VAD ends it) and `pauseMs`.
   */
  duty?: number;
  /** A turn that has not ended this long after its last uplink packet counts as timed out. */
  turnTimeoutMs: number;
  connectTimeoutMs: number;
  /** Handshakes in flight at once. */
  concurrency: number;
  /** Decode every downlink frame, only the first of each turn, or none. */
  decode: 'all' | 'first' | 'none';
  /** When set, a `progress` message this often while turns run. */
  progressEveryMs?: number;
  /** When set, the result carries a timeline of downlink intervals in bins this wide. */
  binMs?: number;
  /**
   * A turn that got neither `stt` nor `tts start` this long after its last uplink packet ends as no_reply
   * (default: turnTimeoutMs); once either came, turnTimeoutMs applies. Lets a silent server fail a turn fast.
   */
  replyTimeoutMs?: number;
  /** Devices stay connected after a result, so that another `go` runs more turns on the same sessions. */
  keepOpen?: boolean;
}

/** Downlink frame intervals over time: bin i covers [startAt + i × binMs, startAt + (i + 1) × binMs). */
export interface Timeline {
  /** Date.now() of `go`'s startAt, the same for every generator of a level. */
  startAt: number;
  binMs: number;
  intervals: number[];
  /** Intervals > 65 ms. */
  late: number[];
}

export type TurnOutcome = 'completed' | 'no_reply' | 'no_audio' | 'timeout' | 'closed';

/** One turn as the device saw it; times are ms after its `listen start`, absent when it never happened. */
export interface TurnRecord {
  outcome: TurnOutcome;
  lastSpeechSent?: number;
  vadEndSent?: number;
  stt?: number;
  ttsStart?: number;
  firstFrame?: number;
  lastFrame?: number;
  ttsStop?: number;
  packetsSent: number;
  frames: number;
  /** Inter-arrival gaps between consecutive reply frames of this turn, and how many were > 65 ms. */
  intervals: number;
  lateIntervals: number;
  maxIntervalMs: number;
  /** Most audio the device held beyond what it had played (its play clock starts at the first frame). */
  maxLeadMs: number;
  /** Frames that found the device's buffer already empty (it ran dry mid-reply). */
  underruns: number;
  decodeErrors: number;
}

/** `turns` overrides the config's turns per device for this round. */
export type ToVoiceClient = { kind: 'go'; startAt: number; turns?: number };

export type FromVoiceClient =
  | { kind: 'ready'; connected: number; failed: number; firstError?: string; ms: number }
  | {
      kind: 'result';
      turns: TurnRecord[];
      /** Histogram (shared.ts buckets, µs) of reply-frame inter-arrival gaps. */
      intervalBuckets: number[];
      /** Histogram (µs) of how late each uplink packet left against its 60 ms deadline: the generator's own lag. */
      sendLateBuckets: number[];
      /** Event-loop delay beyond the 10 ms sampling interval. */
      loopLagP99Ms: number;
      loopLagMaxMs: number;
      /** Devices whose socket closed before they were done. */
      lost: number;
      /** Messages the server sent that a turn does not expect (stats broadcasts...). */
      otherMessages: number;
      timeline?: Timeline;
    }
  | { kind: 'progress'; turns: number; completed: number };

export type FromFake =
  | { kind: 'listening'; port: number }
  | { kind: 'counts'; counts: Record<string, number> }
  | { kind: 'faults'; errorRate: number; hangRate: number };
/** `faults` changes the injected fault rates from now on (answered with `faults`); see bench/fake-providers.ts. */
export type ToFake = { kind: 'counts' } | { kind: 'faults'; errorRate: number; hangRate: number };
