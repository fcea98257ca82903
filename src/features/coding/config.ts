import { z } from 'zod';
import type { LinusConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/log.js';

/**
 * The `coding` block (C5), validated here because the config schema keeps it open. Defaults are the fork's
 * (`insight_enabled` true, debounce 1200 ms clamped to ≥ 300, 512 chars per message, 200 history lines, 1600 chars
 * of history per LLM call, 5 insights, 6 actions/next steps) plus our own LLM deadline and broadcast scope.
 */
const fields = {
  insight_enabled: z.boolean().default(true),
  /** Delay between the first `log` of a burst and its insight; error logs, steps and phases do not wait. */
  insight_debounce_ms: z
    .number()
    .int()
    .default(1200)
    .transform((v) => Math.max(300, v)),
  per_message_max_len: z.number().int().min(16).default(512),
  history_max_lines: z.number().int().min(1).default(200),
  /** History characters sent to the LLM (the tail is kept). */
  insight_max_chars: z.number().int().min(200).default(1600),
  insight_max_items: z.number().int().min(1).default(5),
  /** Cap of `actions` and `nextSteps`. */
  summary_max_items: z.number().int().min(1).default(6),
  max_tokens: z.number().int().min(64).default(512),
  llm_timeout_ms: z.number().int().min(100).default(15_000),
  /** Who else sees a device's coding events and insights: every other device, its workflow group, or nobody. */
  broadcast: z.enum(['all', 'group', 'off']).default('all'),
} as const;

/**
 * The block's schema with its defaults. Exported so that the config schema can adopt it in place of the open block
 * (then an invalid value fails the load with its key path, D11); until then the feature validates on read.
 */
export const codingConfigSchema = z.looseObject(fields);
const lenientSchema = z.looseObject(
  Object.fromEntries(
    Object.entries(fields).map(([k, s]) => [k, (s as z.ZodType).catch(() => (s as z.ZodType).parse(undefined))]),
  ),
);

type Fields = typeof fields;
export type CodingConfig = { [K in keyof Fields]: z.output<Fields[K]> };

/** Risks are capped at 4 (the fork's fixed limit). */
export const MAX_RISKS = 4;

const cache = new WeakMap<object, CodingConfig>();

export function codingConfig(config: LinusConfig, log?: Logger): CodingConfig {
  const block = config.coding;
  const hit = cache.get(block);
  if (hit) return hit;
  const strict = codingConfigSchema.safeParse(block);
  let parsed: CodingConfig;
  if (strict.success) parsed = strict.data as CodingConfig;
  else {
    for (const issue of strict.error.issues)
      log?.error(
        `config: invalid value at coding.${issue.path.map(String).join('.')}: ${issue.message}; using its default`,
      );
    parsed = lenientSchema.parse(block) as CodingConfig;
  }
  cache.set(block, parsed);
  return parsed;
}
