import type { z } from 'zod';
import { objectShape } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

/**
 * A raw config built from the schema itself with every key that may be left out set to null, the way the
 * reference's config.yaml writes an unset key. `deep`: every block is present with null inside (recursively);
 * otherwise the top-level keys themselves are null.
 */
export function nullConfig(deep: boolean): Record<string, unknown> {
  return nullBlock(configSchema, deep);
}

function nullBlock(schema: z.ZodType, deep: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(objectShape(schema) ?? {})) {
    const nested = deep ? objectShape(child) : undefined;
    out[key] = nested ? nullBlock(child, deep) : null;
  }
  return out;
}
