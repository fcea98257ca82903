import type { Feature, FeatureDeps } from './feature.js';

/** Scaffolding: replaced by the stats broadcast (C6). */
export function createStatsFeature(_deps: FeatureDeps): Feature {
  return { name: 'stats' };
}
