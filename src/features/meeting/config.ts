import { z } from 'zod';
import type { LinusConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/log.js';

/**
 * The `meeting` block (C2, fork-contracts §6). The config schema keeps it open, so its keys are validated here,
 * with every default in this one table (the fork's code defaults: push 5000 ms, disable_tts false...).
 * An invalid value falls back to the default of that key only, and is logged once per config snapshot.
 * Callers read `meetingConfig(ctx.config.current)` at the moment they need a value: never keep the result.
 */

const clampInt = (min: number, max: number) => (v: number) => Math.min(max, Math.max(min, Math.round(v)));

/** Lower-cased, trimmed device ids (the form routes use). */
const deviceIdList = z.array(
  z.string().transform((s) =>
    s
      .trim()
      .replace(/^["']+|["']+$/g, '')
      .toLowerCase(),
  ),
);

const llmFields = {
  /** Tokens of the final summary (the fork lowered 1200 → 800); clamped to 256..4000. */
  max_tokens: z.number().default(800).transform(clampInt(256, 4000)),
  /** Deadline of one summary call; the fallback summary is used when it passes. */
  timeout_ms: z.number().default(30_000).transform(clampInt(500, 300_000)),
};

const webhookFields = {
  /** Empty = no webhook. */
  url: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
  /** HMAC-SHA256 key of the `X-Meeting-Signature` header; empty = unsigned. */
  secret: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
  timeout_ms: z.number().default(5000).transform(clampInt(100, 60_000)),
};

const broadcastFields = {
  enabled: z.boolean().default(false),
  /** `group`: devices of the origin's group (devices.yaml group, else id[:8]) plus allowed_targets; `session`: allowed_targets only. */
  mode: z.enum(['off', 'group', 'session']).default('off'),
  allowed_targets: deviceIdList.default([]),
  /** Also send the origin device its own broadcasts (single-device tests). */
  include_origin: z.boolean().default(false),
};

const promptFields = {
  /** Replaces the built-in system prompt. */
  system: z.string().default(''),
  /** User message; `{transcript}`, `{lang}`, `{industry}`, `{scenario}`, `{earlier}` are filled in. */
  userTemplate: z.string().default(''),
  /** Extra instructions per industry (tech, finance, medical, education, legal...), chosen by `meeting.industry`. */
  templates: z.record(z.string(), z.string()).default({}),
};

const fields = {
  /** Transcript push period, clamped to 3000..15000; a change applies from the next cycle. */
  transcript_push_interval_ms: z.number().default(5000).transform(clampInt(3000, 15_000)),
  /** Replies in meeting mode are reduced to `tts start/stop` placeholders (no audio). */
  disable_tts: z.boolean().default(false),
  /** Speech in meeting mode becomes a snippet only, never a chat turn. */
  disable_chat_on_snippet: z.boolean().default(true),
  /** Meeting start switches the session to manual listening (the device brackets utterances). */
  prefer_device_vad: z.boolean().default(true),
  /** Minutes between checkpoint summaries; 0 = none. Fractions are allowed. */
  checkpoint_interval_min: z.number().min(0).default(10),
  /** Shortest duration a summary reports. */
  min_duration_ms: z.number().int().min(0).default(5000),
  llm: z.looseObject(llmFields).prefault({}),
  checkpoint_max_tokens: z.number().default(400).transform(clampInt(256, 4000)),
  /** The summary prompt keeps the tail of the transcript up to this many characters. */
  summary_transcript_max_chars: z.number().default(4000).transform(clampInt(200, 200_000)),
  webhook: z.looseObject(webhookFields).prefault({}),
  broadcast: z.looseObject(broadcastFields).prefault({}),
  /** `auto` = the language of the transcript; else e.g. `zh`, `en`. */
  target_lang: z.string().default('auto'),
  industry: z.string().default(''),
  scenario: z.string().default(''),
  /** Replacements applied to every snippet (jargon, names): `{ "wei xin": "WeChat" }`. */
  term_map: z.record(z.string(), z.string()).default({}),
  prompts: z.looseObject(promptFields).prefault({}),
} as const;

const strictSchema = z.looseObject(fields);
export type MeetingConfig = z.output<typeof strictSchema>;

/** A schema where every key (nested ones too) falls back to its own default when invalid. */
function lenient(shape: Record<string, z.ZodType>): z.ZodType {
  const out: Record<string, z.ZodType> = {};
  for (const [key, schema] of Object.entries(shape)) {
    const nested = NESTED[key as keyof typeof NESTED];
    out[key] = nested ? lenientNested(nested) : schema.catch(() => schema.parse(undefined));
  }
  return z.looseObject(out);
}

function lenientNested(shape: Record<string, z.ZodType>): z.ZodType {
  const inner = lenient(shape);
  // A nested block that is not an object at all becomes its defaults.
  return z.preprocess((v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {}), inner);
}

const NESTED = { llm: llmFields, webhook: webhookFields, broadcast: broadcastFields, prompts: promptFields } as const;
const lenientSchema = lenient(fields);

const cache = new WeakMap<object, MeetingConfig>();

/** The meeting config of a snapshot, parsed once per snapshot (snapshots are immutable). */
export function meetingConfig(config: LinusConfig, log?: Logger): MeetingConfig {
  const block = config.meeting;
  const hit = cache.get(block);
  if (hit) return hit;
  const strict = strictSchema.safeParse(block);
  let parsed: MeetingConfig;
  if (strict.success) parsed = strict.data;
  else {
    for (const issue of strict.error.issues) {
      log?.error(
        `config: invalid value at meeting.${issue.path.map(String).join('.')}: ${issue.message}; using its default`,
      );
    }
    parsed = lenientSchema.parse(block) as MeetingConfig;
  }
  cache.set(block, parsed);
  return parsed;
}
