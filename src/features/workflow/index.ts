import type { Feature, FeatureDeps } from '../feature.js';

/** Scaffolding: replaced by the workflow feature. */
export function createWorkflowFeature(_deps: FeatureDeps): Feature {
  return { name: 'workflow' };
}
