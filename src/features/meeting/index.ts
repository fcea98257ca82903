import type { Feature, FeatureDeps } from '../feature.js';

/** Scaffolding: replaced by the meeting feature. */
export function createMeetingFeature(_deps: FeatureDeps): Feature {
  return { name: 'meeting' };
}
