import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Device tokens as the reference server issues them: `<sig>.<ts>` where
 * sig = base64url(HMAC-SHA256(key, "<clientId>|<deviceId>|<ts>")) and ts is Unix seconds.
 * A token is bound to both ids, so one pair's token cannot be replayed by another.
 */
export function signDeviceToken(key: string, clientId: string, deviceId: string, nowSeconds: number): string {
  const ts = Math.floor(nowSeconds);
  return `${signature(key, clientId, deviceId, ts)}.${ts}`;
}

/** How far in the future a token's timestamp may be (another node's or the CLI machine's clock running ahead). */
export const TOKEN_CLOCK_SKEW_SECONDS = 60;

export type TokenCheck =
  { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'future' };

export function verifyDeviceToken(
  key: string,
  token: string | undefined,
  clientId: string,
  deviceId: string,
  expireSeconds: number,
  nowSeconds: number,
): TokenCheck {
  if (!token) return { ok: false, reason: 'missing' };
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return { ok: false, reason: 'malformed' };
  const tsText = token.slice(dot + 1);
  if (!/^\d{1,12}$/.test(tsText)) return { ok: false, reason: 'malformed' };
  const ts = Number(tsText);
  const given = Buffer.from(token.slice(0, dot));
  const expected = Buffer.from(signature(key, clientId, deviceId, ts));
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: 'bad_signature' };
  // A future timestamp would stretch the token's life past expire_seconds (or forever when expiry is off).
  if (ts - nowSeconds > TOKEN_CLOCK_SKEW_SECONDS) return { ok: false, reason: 'future' };
  if (expireSeconds > 0 && nowSeconds - ts > expireSeconds) return { ok: false, reason: 'expired' };
  return { ok: true };
}

function signature(key: string, clientId: string, deviceId: string, ts: number): string {
  return createHmac('sha256', key).update(`${clientId}|${deviceId}|${ts}`).digest('base64url');
}

/** Constant-time string comparison for shared secrets (admin tokens, static tokens). */
export function secretEquals(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
