import type { Feature, FeatureDeps } from '../feature.js';

/** Scaffolding: replaced by the peer feature. */
export function createPeerFeature(_deps: FeatureDeps): Feature {
  return { name: 'peer' };
}
