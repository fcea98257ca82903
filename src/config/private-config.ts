import type { LinusConfig } from './schema.js';
import { isJsonObject, parseJsonObject } from '../json.js';
import { managerPost } from './manager-api.js';

/**
 * Per-device private config from the manager API (the reference's `/config/agent-models`): another alias per
 * provider kind, provider blocks that exist only for this device, and its own prompt. Fetched when a device
 * connects; until it arrives, or when the manager API fails, the device uses the server config.
 */
export interface PrivateConfig {
  selected: Partial<Record<'VAD' | 'ASR' | 'LLM' | 'TTS', string>>;
  blocks: Partial<Record<'VAD' | 'ASR' | 'LLM' | 'TTS', Record<string, Record<string, unknown>>>>;
  prompt?: string;
}

const KINDS = ['VAD', 'ASR', 'LLM', 'TTS'] as const;

/** The reference sends some blocks as JSON strings; both forms are accepted. */
function objectOf(v: unknown): Record<string, unknown> | undefined {
  if (typeof v === 'string') return parseJsonObject(v);
  return isJsonObject(v) ? v : undefined;
}

export function parsePrivateConfig(data: unknown): PrivateConfig {
  const d = objectOf(data) ?? {};
  const out: PrivateConfig = { selected: {}, blocks: {} };
  const selected = objectOf(d.selected_module) ?? {};
  for (const kind of KINDS) {
    if (typeof selected[kind] === 'string' && selected[kind]) out.selected[kind] = selected[kind] as string;
    const blocks = objectOf(d[kind]);
    if (blocks) {
      const valid = Object.entries(blocks).flatMap(([alias, b]) =>
        objectOf(b) ? [[alias, objectOf(b)!] as const] : [],
      );
      if (valid.length) out.blocks[kind] = Object.fromEntries(valid);
    }
  }
  if (typeof d.prompt === 'string' && d.prompt) out.prompt = d.prompt;
  return out;
}

/** Plain values, not a session: the config layer knows nothing of connections. */
export async function fetchPrivateConfig(
  config: LinusConfig,
  device: { deviceId: string; clientId: string },
  signal: AbortSignal,
): Promise<PrivateConfig | undefined> {
  const api = config['manager-api'];
  if (!api.url) return undefined;
  const data = await managerPost(
    '/config/agent-models',
    { macAddress: device.deviceId, clientId: device.clientId, selectedModule: config.selected_module },
    { url: api.url, secret: api.secret, attempts: 2, backoffMs: 300, timeoutMs: 5000, signal },
  );
  return parsePrivateConfig(data);
}
