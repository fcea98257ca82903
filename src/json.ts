/** A JSON object: not null, not an array, not a scalar. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** `text` parsed, when it is a JSON object; undefined for anything else, so callers fall back in one way. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON is one of the "not an object" answers: every caller has its fallback for undefined.
    return undefined;
  }
  return isJsonObject(value) ? value : undefined;
}

/** A model's answer as a JSON object: the whole text, else its outermost `{...}` (models add prose or code fences). */
export function extractJsonObject(answer: string): Record<string, unknown> | undefined {
  const direct = parseJsonObject(answer.trim());
  if (direct) return direct;
  const start = answer.indexOf('{');
  const end = answer.lastIndexOf('}');
  return start >= 0 && end > start ? parseJsonObject(answer.slice(start, end + 1)) : undefined;
}
