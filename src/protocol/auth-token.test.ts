import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { secretEquals, signDeviceToken, TOKEN_CLOCK_SKEW_SECONDS, verifyDeviceToken } from './auth-token.js';

describe('device tokens (D5)', () => {
  const now = 1_800_000_000;
  const token = signDeviceToken('key', 'client-1', 'dev-1', now);

  it('has the reference shape <base64url sig>.<unix seconds>', () => {
    assert.match(token, /^[A-Za-z0-9_-]{43}\.1800000000$/);
  });

  it('verifies for the same pair within the expiry', () => {
    assert.deepEqual(verifyDeviceToken('key', token, 'client-1', 'dev-1', 3600, now + 10), { ok: true });
  });

  it('is bound to both ids and to the key', () => {
    assert.deepEqual(verifyDeviceToken('key', token, 'client-2', 'dev-1', 3600, now), {
      ok: false,
      reason: 'bad_signature',
    });
    assert.deepEqual(verifyDeviceToken('key', token, 'client-1', 'dev-2', 3600, now), {
      ok: false,
      reason: 'bad_signature',
    });
    assert.deepEqual(verifyDeviceToken('other', token, 'client-1', 'dev-1', 3600, now), {
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('expires', () => {
    assert.deepEqual(verifyDeviceToken('key', token, 'client-1', 'dev-1', 3600, now + 3601), {
      ok: false,
      reason: 'expired',
    });
  });

  it('refuses a timestamp in the future beyond the clock skew, even with expiry off', () => {
    const ahead = signDeviceToken('key', 'client-1', 'dev-1', now + TOKEN_CLOCK_SKEW_SECONDS + 1);
    assert.deepEqual(verifyDeviceToken('key', ahead, 'client-1', 'dev-1', 0, now), { ok: false, reason: 'future' });
    const slightlyAhead = signDeviceToken('key', 'client-1', 'dev-1', now + TOKEN_CLOCK_SKEW_SECONDS);
    assert.deepEqual(verifyDeviceToken('key', slightlyAhead, 'client-1', 'dev-1', 3600, now), { ok: true });
  });

  it('rejects malformed and missing tokens', () => {
    for (const t of ['nodot', '.123', 'abc.', 'abc.12x', `${token}x`]) {
      assert.notEqual(verifyDeviceToken('key', t, 'client-1', 'dev-1', 3600, now).ok, true, t);
    }
    assert.deepEqual(verifyDeviceToken('key', undefined, 'c', 'd', 1, now), { ok: false, reason: 'missing' });
  });

  it('compares secrets without shortcuts for empty values', () => {
    assert.equal(secretEquals('a', 'a'), true);
    assert.equal(secretEquals('a', 'b'), false);
    assert.equal(secretEquals('', ''), false);
    assert.equal(secretEquals(undefined, 'a'), false);
  });
});
