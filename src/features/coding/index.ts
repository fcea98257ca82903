import type { Feature, FeatureDeps } from '../feature.js';

/** Scaffolding: replaced by the coding feature. */
export function createCodingFeature(_deps: FeatureDeps): Feature {
  return { name: 'coding' };
}
