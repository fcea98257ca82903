import type { LinusConfig } from '../config/schema.js';
import type { DeviceConnection } from '../hub/registry.js';
import { secretEquals, verifyDeviceToken } from '../protocol/auth-token.js';
import { bearerToken, normalizeId, type HandshakeIds } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import type { DeviceBindings } from '../store/bindings.js';

export type AuthDecision =
  | { ok: true; via: 'disabled' | 'allow_list' | 'token' | 'static_token' }
  /** `guessed`: a token was presented and is not one of ours (counts against the address's failed-secret budget). */
  | { ok: false; reason: string; guessed: boolean };

export function isAllowListed(config: LinusConfig, deviceId: string): boolean {
  return config.server.auth.allowed_devices.some((d) => normalizeId(d) === deviceId);
}

/** Whether a connection of this device must present a secret (auth on and not allow-listed). */
export function needsDeviceSecret(config: LinusConfig, deviceId: string): boolean {
  return config.server.auth.enabled && !isAllowListed(config, deviceId);
}

/**
 * Device auth as the reference does it (D5): off by default; when on, an allow-listed device passes,
 * every other one needs a token bound to its device+client id, not expired nor from the future, or a configured
 * static token. Who owns the device id is the next check (`checkOwnership`).
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
  if (!token) return { ok: false, reason: 'missing token', guessed: false };
  for (const t of auth.tokens) {
    if (secretEquals(typeof t === 'string' ? t : t.token, token)) return { ok: true, via: 'static_token' };
  }
  const check = verifyDeviceToken(authKey, token, ids.clientId, ids.deviceId, auth.expire_seconds, nowSeconds);
  if (check.ok) return { ok: true, via: 'token' };
  // Expired or future tokens carry our signature: their holder knew the key once, it is not guessing.
  const guessed = check.reason === 'bad_signature' || check.reason === 'malformed';
  return {
    ok: false,
    reason: check.reason === 'future' ? 'token from the future' : check.reason.replace('_', ' '),
    guessed,
  };
}

export type OwnershipDecision = { ok: true } | { ok: false; status: 401 | 409; reason: string };

/**
 * Who may use a device id, with auth on (trust on first use, see DeviceBindings): a device token only for the
 * client id that owns the device id (the first to use one claims it); a static token is the operator's own
 * secret and may act for any device. An allow-listed device proves nothing, so it may not take the connection
 * of the device id over from another client id (handover): the live connection stays until it ends.
 */
export async function checkOwnership(
  decision: Extract<AuthDecision, { ok: true }>,
  ids: HandshakeIds,
  bindings: DeviceBindings,
  live: Pick<DeviceConnection, 'clientId'> | undefined,
): Promise<OwnershipDecision> {
  if (decision.via === 'token' && (await bindings.claim(ids.deviceId, ids.clientId)).clientId !== ids.clientId)
    return { ok: false, status: 401, reason: unboundHint(ids.deviceId) };
  if (decision.via === 'allow_list' && live && live.clientId !== undefined && live.clientId !== ids.clientId)
    return {
      ok: false,
      status: 409,
      reason: 'the device id is connected from another client id; an allow-listed device cannot take it over',
    };
  return { ok: true };
}

/**
 * Whether activation lets the device be served (every transport and OTA ask this): `server.activation.enabled` off,
 * or its code was entered. A refusal is counted on `refused` when given. Rejects while the store is unreachable.
 */
export async function activationPasses(
  config: LinusConfig,
  activations: ActivationStore,
  deviceId: string,
  refused?: { inc(): void },
): Promise<boolean> {
  if (!config.server.activation.enabled || (await activations.isActivated(deviceId))) return true;
  refused?.inc();
  return false;
}

/** The refusal for a client that is not the device id's owner, with the admin's way out. */
export function unboundHint(deviceId: string): string {
  return `device id ${deviceId} is bound to another client id; if the device was re-flashed, an admin can rebind it (linus devices rebind ${deviceId})`;
}

/** The key device tokens are signed with: server.auth_key, else manager-api.secret, else a per-process random key. */
export function resolveAuthKey(config: LinusConfig, fallback: string): { key: string; ephemeral: boolean } {
  const key = config.server.auth_key || config['manager-api'].secret;
  return key ? { key, ephemeral: false } : { key: fallback, ephemeral: true };
}
