import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { issueMqttCredentials, verifyMqttLogin } from './credentials.js';

describe('MQTT credentials', () => {
  const creds = issueMqttCredentials('k1', 'aa:bb:cc:dd:ee:ff', 'default');

  it('what OTA issues logs in and names the device', () => {
    const login = verifyMqttLogin('k1', creds.client_id, creds.username, Buffer.from(creds.password));
    assert.deepEqual(login, { ok: true, deviceId: 'aa:bb:cc:dd:ee:ff', clientId: 'aa_bb_cc_dd_ee_ff' });
  });

  it('refuses another key, another client id, a changed username, no password and a malformed client id', () => {
    assert.equal(verifyMqttLogin('k2', creds.client_id, creds.username, creds.password).ok, false);
    const other = creds.client_id.replace('ff@@@', 'fe@@@');
    assert.equal(verifyMqttLogin('k1', other, creds.username, creds.password).ok, false);
    assert.equal(verifyMqttLogin('k1', creds.client_id, `${creds.username}x`, creds.password).ok, false);
    assert.equal(verifyMqttLogin('k1', creds.client_id, creds.username, undefined).ok, false);
    assert.equal(verifyMqttLogin('k1', 'GID_x@@@aa_bb', creds.username, creds.password).ok, false);
  });

  it('leaves the password empty without a key, as the reference does', () => {
    assert.equal(issueMqttCredentials('', 'aa:bb:cc:dd:ee:ff', 'default').password, '');
  });
});
