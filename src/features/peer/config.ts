import { z } from 'zod';
import type { LinusConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/log.js';

/**
 * The `peer` block (C4, D19). The config schema keeps it open, so its keys are validated here, with every default
 * in this one table. A block with an invalid value keeps the defaults of the invalid keys only (and says which key
 * once per config snapshot): a typo in one key must not switch the ACL off or the queue limits to something else.
 */
const grantList = z.array(z.string().trim().min(1));

const fields = {
  /** Master switch: off = every peer message is refused with UNAUTHORIZED. */
  enabled: z.boolean().default(true),
  /**
   * Any device may message any device. Default true (the fork's yaml pinned false): device identity is not
   * authenticated unless `server.auth` is on, so a default-deny ACL would give no security, only a dead feature
   * out of the box. Set false to enforce `allowlist` / `device_roles` + `roles_grants`.
   */
  allow_all: z.boolean().default(true),
  /** `to: ["broadcast"]` allowed at all; with allow_all false the sender also needs the `broadcast` grant. */
  allow_broadcast: z.boolean().default(true),
  /**
   * With allow_all false: a list of sender ids that may message anyone (and broadcast), or a map
   * sender id → grants (`*`, `broadcast`, a device id, `role:<name>`, `group:<key>`, `same_group`).
   */
  allowlist: z.union([grantList, z.record(z.string(), grantList)]).default([]),
  /** Device id → role; `role` in devices.yaml works too (this map wins). */
  device_roles: z.record(z.string(), z.string()).default({}),
  /** Role → grants (same vocabulary as the allowlist map); the role `*` applies to every device. */
  roles_grants: z.record(z.string(), grantList).default({}),
  /** Explicit targets per message (broadcast is limited by its own rate instead). */
  max_targets: z.number().int().min(1).max(1000).default(10),
  /** Unicast peer messages per sending device per second. */
  rate_limit_per_second: z.number().int().min(1).default(5),
  /** Broadcasts per sending device per minute. */
  broadcast_per_minute: z.number().int().min(1).default(6),
  /** Offline queue: messages kept per target device (more are refused with QUEUE_FULL, never silently dropped). */
  offline_max_per_device: z.number().int().min(0).default(100),
  /** Offline queue: how long a message waits for its target (3 days). */
  offline_ttl_ms: z
    .number()
    .int()
    .min(0)
    .default(3 * 24 * 3600 * 1000),
  /** Structure `payload.text` with the `chat` LLM into `normalized`; any LLM failure falls back to pass-through. */
  llm_structuring: z.boolean().default(false),
  llm_timeout_ms: z.number().int().min(100).default(8000),
  /** Text sent to the LLM is cut to this many characters. */
  llm_max_input_chars: z.number().int().min(50).default(1000),
  /** `category: "task"` messages go to the workflow feature (the `onTask` hook) for the target's group. */
  peer_task_to_workflow: z.boolean().default(true),
} as const;

/**
 * The block's schema with its defaults. Exported so that the config schema can adopt it in place of the open block
 * (then an invalid value fails the load with its key path, D11); until then the feature validates on read.
 */
export const peerConfigSchema = z.looseObject(fields);

type Fields = typeof fields;
export type PeerConfig = { [K in keyof Fields]: z.output<Fields[K]> };

/** Each key falls back to its own default when invalid. */
const lenientSchema = z.looseObject(
  Object.fromEntries(
    Object.entries(fields).map(([k, s]) => [k, (s as z.ZodType).catch(() => (s as z.ZodType).parse(undefined))]),
  ),
);

const KNOWN = new Set(Object.keys(fields));
const cache = new WeakMap<object, PeerConfig>();

/** The peer config of a snapshot (parsed once per snapshot; snapshots are immutable). */
export function peerConfig(config: LinusConfig, log?: Logger): PeerConfig {
  const block = config.peer;
  const hit = cache.get(block);
  if (hit) return hit;
  const strict = peerConfigSchema.safeParse(block);
  let parsed: PeerConfig;
  if (strict.success) parsed = strict.data as PeerConfig;
  else {
    for (const issue of strict.error.issues) {
      log?.error(
        `config: invalid value at peer.${issue.path.map(String).join('.')}: ${issue.message}; using its default`,
      );
    }
    parsed = lenientSchema.parse(block) as PeerConfig;
  }
  const unknown = Object.keys(block).filter((k) => !KNOWN.has(k));
  if (unknown.length)
    log?.warn(
      `config: peer.${unknown.join(', peer.')} not supported (ignored); ACL grants cover groups: same_group, group:<key>`,
    );
  cache.set(block, parsed);
  return parsed;
}
