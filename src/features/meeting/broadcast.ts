import type { MeetingConfig } from './config.js';

/**
 * Who else hears about a device's meeting (snippets, summary, final transcript): the `meeting.broadcast` policy.
 * Off by default. `group`: online devices of the origin's group, plus `allowed_targets`. `session`: only
 * `allowed_targets`. The origin itself only with `include_origin`.
 */
export function broadcastTargets(
  policy: MeetingConfig['broadcast'],
  origin: string,
  online: Iterable<string>,
  groupOf: (deviceId: string) => string,
): string[] {
  if (!policy.enabled || policy.mode === 'off') return [];
  const allowed = new Set(policy.allowed_targets);
  const group = groupOf(origin);
  const out: string[] = [];
  for (const id of online) {
    if (id === origin) {
      if (policy.include_origin) out.push(id);
      continue;
    }
    if (allowed.has(id) || (policy.mode === 'group' && groupOf(id) === group)) out.push(id);
  }
  return out;
}
