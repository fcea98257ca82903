import type { Audience } from '../../hub/cluster/fanout.js';
import type { MeetingConfig } from './config.js';

/**
 * Who else hears about a device's meeting (snippets, summary, final transcript): the `meeting.broadcast` policy.
 * Off by default. `group`: online devices of the origin's group, plus `allowed_targets`. `session`: only
 * `allowed_targets`. The origin itself only with `include_origin`. Undefined: nobody.
 */
export function broadcastAudience(
  policy: MeetingConfig['broadcast'],
  origin: string,
  groupOf: (deviceId: string) => string,
): Audience | undefined {
  if (!policy.enabled || policy.mode === 'off') return undefined;
  return {
    ...(policy.mode === 'group' ? { group: groupOf(origin) } : {}),
    named: policy.include_origin ? [...policy.allowed_targets, origin] : policy.allowed_targets,
    ...(policy.include_origin ? {} : { except: origin }),
  };
}
