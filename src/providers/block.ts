import { ProviderError } from './types.js';

/** A provider block from the config (`LLM.<alias>`, `ASR.<alias>`, `TTS.<alias>`): free-form, checked here. */
export type ProviderBlock = Record<string, unknown>;

/** The first of `keys` set in the block (the reference spells the same setting several ways), as a string. */
export function blockString(block: ProviderBlock, where: string, keys: string[]): string | undefined {
  for (const key of keys) {
    const v = block[key];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'string') return v.trim();
    if (typeof v === 'number') return String(v);
    throw new ProviderError(where, 'config', `${where}.${key} must be a string`);
  }
  return undefined;
}

/** Like blockString, for numbers; numeric strings are accepted because some config sources only carry strings. */
export function blockNumber(block: ProviderBlock, where: string, keys: string[]): number | undefined {
  for (const key of keys) {
    const v = block[key];
    if (v === undefined || v === null || v === '') continue;
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw new ProviderError(where, 'config', `${where}.${key} must be a number`);
    return n;
  }
  return undefined;
}
