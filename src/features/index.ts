import { createCodingFeature } from './coding/index.js';
import type { Feature, FeatureDeps } from './feature.js';
import { createMeetingFeature } from './meeting/index.js';
import { createPeerFeature } from './peer/index.js';
import { createStatsFeature } from './stats.js';
import { createWorkflowFeature } from './workflow/index.js';

/** Every team feature, in start order; closed in reverse order on shutdown. */
export function createFeatures(deps: FeatureDeps): Feature[] {
  return [createMeetingFeature(deps), createWorkflowFeature(deps), createPeerFeature(deps), createCodingFeature(deps), createStatsFeature(deps)];
}
