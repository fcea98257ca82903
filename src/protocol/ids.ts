import { randomBytes } from 'node:crypto';

/** Where a device/client id was found during the handshake. */
export type IdSource = 'query' | 'header' | 'auto' | 'mqtt';

export interface HandshakeIds {
  deviceId: string;
  clientId: string;
  /** Where the device id came from; `auto` means none was sent and one was generated. */
  source: IdSource;
  /** Protocol-Version header, when the client sent a valid one (1, 2 or 3). */
  protocolVersion?: 1 | 2 | 3;
  /** Raw `Authorization` value (header, or `authorization` query parameter), when present. */
  authorization?: string;
  /**
   * A link that bridges an MQTT + UDP device: `?from=mqtt_gateway` (as the reference reads it) or Linus's own MQTT
   * transport. Its audio is v2-framed for the life of the link, bytes 0–8 of the header unread.
   */
  fromGateway?: true;
}

export type HeaderBag = Record<string, string | string[] | undefined>;

const DEVICE_QUERY_KEYS = ['device-id', 'device_id'] as const;
const DEVICE_HEADER_KEYS = ['device-id', 'device_id', 'x-device-id', 'x-device_id'] as const;
const CLIENT_QUERY_KEYS = ['client-id', 'client_id'] as const;
const CLIENT_HEADER_KEYS = ['client-id', 'client_id', 'x-client-id', 'x-client_id'] as const;

/**
 * Canonical form of a device or client id: trimmed, surrounding quotes removed, lower-cased.
 * Returns undefined for anything that is empty after that, so "" counts as missing.
 */
export function normalizeId(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  let v = raw.trim();
  while (v.length >= 1 && (v.startsWith('"') || v.startsWith("'"))) v = v.slice(1);
  while (v.length >= 1 && (v.endsWith('"') || v.endsWith("'"))) v = v.slice(0, -1);
  v = v.trim().toLowerCase();
  return v.length > 0 ? v : undefined;
}

function headerValue(headers: HeaderBag, key: string): string | undefined {
  // Node lower-cases incoming header names; callers may pass a hand-built bag, so check both.
  const v = headers[key] ?? headers[key.toLowerCase()];
  if (Array.isArray(v)) return v[0];
  return v;
}

function firstId(read: (key: string) => string | null | undefined, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const id = normalizeId(read(k));
    if (id) return id;
  }
  return undefined;
}

export function parseProtocolVersion(raw: unknown): 1 | 2 | 3 | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw.trim()) : NaN;
  return n === 1 || n === 2 || n === 3 ? n : undefined;
}

export function autoDeviceId(): string {
  return `auto-${randomBytes(4).toString('hex')}`;
}

/**
 * The one place that reads ids from a WebSocket (or OTA) request.
 * Priority: query `device-id`/`device_id`, then headers `Device-Id`/`device_id`/`x-device-id`;
 * the client id follows the same pattern and falls back to the device id.
 * With no device id at all an `auto-<8 hex>` id is generated and used for both.
 */
export function resolveHandshakeIds(
  url: string | undefined,
  headers: HeaderBag,
  makeAutoId: () => string = autoDeviceId,
): HandshakeIds {
  let query: URLSearchParams;
  try {
    query = new URL(url ?? '/', 'http://localhost').searchParams;
  } catch {
    // An unparsable request URL has no query to read; the ids then come from the headers.
    query = new URLSearchParams();
  }
  const q = (k: string): string | null => query.get(k);
  const h = (k: string): string | undefined => headerValue(headers, k);

  let deviceId = firstId(q, DEVICE_QUERY_KEYS);
  let source: IdSource = 'query';
  if (!deviceId) {
    deviceId = firstId(h, DEVICE_HEADER_KEYS);
    source = 'header';
  }
  let clientId = firstId(q, CLIENT_QUERY_KEYS) ?? firstId(h, CLIENT_HEADER_KEYS);
  if (!deviceId) {
    deviceId = makeAutoId();
    source = 'auto';
    clientId = deviceId;
  }
  const ids: HandshakeIds = { deviceId, clientId: clientId ?? deviceId, source };
  const version = parseProtocolVersion(h('protocol-version') ?? q('protocol-version') ?? undefined);
  if (version) ids.protocolVersion = version;
  const authorization = h('authorization') ?? q('authorization') ?? undefined;
  if (authorization && authorization.trim()) ids.authorization = authorization.trim();
  if (q('from') === 'mqtt_gateway') ids.fromGateway = true;
  return ids;
}

/** Extracts the bearer token from `Bearer x`, or returns the value itself when it has no scheme. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const v = authorization.trim();
  const m = /^bearer\s+(.+)$/i.exec(v);
  const token = (m ? m[1] : v)?.trim();
  return token ? token : undefined;
}
