import type { LinusConfig } from '../config/schema.js';
import { secretEquals, verifyDeviceToken } from '../protocol/auth-token.js';
import { bearerToken, normalizeId, type HandshakeIds } from '../protocol/ids.js';

export type AuthDecision =
  { ok: true; via: 'disabled' | 'allow_list' | 'token' | 'static_token' } | { ok: false; reason: string };

export function isAllowListed(config: LinusConfig, deviceId: string): boolean {
  return config.server.auth.allowed_devices.some((d) => normalizeId(d) === deviceId);
}

/**
 * Device auth as the reference does it (D5): off by default; when on, an allow-listed device passes,
 * every other one needs a token bound to its device+client id and not expired, or a configured static token.
 */
export function checkDeviceAuth(
  config: LinusConfig,
  authKey: string,
  ids: HandshakeIds,
  nowSeconds = Date.now() / 1000,
): AuthDecision {
  const auth = config.server.auth;
  if (!auth.enabled) return { ok: true, via: 'disabled' };
  if (isAllowListed(config, ids.deviceId)) return { ok: true, via: 'allow_list' };
  const token = bearerToken(ids.authorization);
  if (!token) return { ok: false, reason: 'missing token' };
  for (const t of auth.tokens) {
    if (secretEquals(typeof t === 'string' ? t : t.token, token)) return { ok: true, via: 'static_token' };
  }
  const check = verifyDeviceToken(authKey, token, ids.clientId, ids.deviceId, auth.expire_seconds, nowSeconds);
  return check.ok ? { ok: true, via: 'token' } : { ok: false, reason: check.reason.replace('_', ' ') };
}

/** The key device tokens are signed with: server.auth_key, else manager-api.secret, else a per-process random key. */
export function resolveAuthKey(config: LinusConfig, fallback: string): { key: string; ephemeral: boolean } {
  const key = config.server.auth_key || config['manager-api'].secret;
  return key ? { key, ephemeral: false } : { key: fallback, ephemeral: true };
}
