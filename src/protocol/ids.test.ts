import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerToken, normalizeId, parseProtocolVersion, resolveHandshakeIds } from './ids.js';

const fixedAuto = () => 'auto-12345678';

describe('normalizeId', () => {
  it('trims, strips quotes and lower-cases', () => {
    assert.equal(normalizeId('  "AA:BB:CC:DD:EE:FF" '), 'aa:bb:cc:dd:ee:ff');
    assert.equal(normalizeId("'Dev-1'"), 'dev-1');
    assert.equal(normalizeId('""'), undefined);
    assert.equal(normalizeId('   '), undefined);
    assert.equal(normalizeId(undefined), undefined);
    assert.equal(normalizeId(42), undefined);
  });
});

describe('resolveHandshakeIds (seed #12)', () => {
  it('reads device-id and client-id from the query', () => {
    const ids = resolveHandshakeIds('/xiaozhi/v1/?device-id=AA:BB&client-id=C1', {}, fixedAuto);
    assert.deepEqual(ids, { deviceId: 'aa:bb', clientId: 'c1', source: 'query' });
  });

  it('accepts the underscore spellings in the query', () => {
    const ids = resolveHandshakeIds('/supie/v1/?device_id=Dev&client_id=Cli', {}, fixedAuto);
    assert.equal(ids.deviceId, 'dev');
    assert.equal(ids.clientId, 'cli');
  });

  it('query wins over headers', () => {
    const ids = resolveHandshakeIds(
      '/?device-id=fromquery',
      { 'device-id': 'fromheader', 'client-id': 'hc' },
      fixedAuto,
    );
    assert.equal(ids.deviceId, 'fromquery');
    assert.equal(ids.source, 'query');
    assert.equal(ids.clientId, 'hc');
  });

  for (const header of ['device-id', 'device_id', 'x-device-id', 'x-device_id']) {
    it(`reads the ${header} header`, () => {
      const ids = resolveHandshakeIds('/', { [header]: ' "MAC-1" ' }, fixedAuto);
      assert.equal(ids.deviceId, 'mac-1');
      assert.equal(ids.source, 'header');
    });
  }

  it('reads Client-Id and its variants from headers', () => {
    for (const h of ['client-id', 'client_id', 'x-client-id']) {
      assert.equal(resolveHandshakeIds('/', { 'device-id': 'd', [h]: 'UUID-X' }, fixedAuto).clientId, 'uuid-x');
    }
  });

  it('falls back to the device id for the client id', () => {
    assert.equal(resolveHandshakeIds('/?device-id=d1', {}, fixedAuto).clientId, 'd1');
  });

  it('treats empty values as missing and moves on', () => {
    const ids = resolveHandshakeIds('/?device-id=%20%20', { device_id: 'real' }, fixedAuto);
    assert.equal(ids.deviceId, 'real');
  });

  it('generates auto-<8 hex> for both ids when none is given', () => {
    const ids = resolveHandshakeIds('/xiaozhi/v1/', {}, fixedAuto);
    assert.deepEqual(ids, { deviceId: 'auto-12345678', clientId: 'auto-12345678', source: 'auto' });
    assert.match(resolveHandshakeIds('/', {}).deviceId, /^auto-[0-9a-f]{8}$/);
  });

  it('reads Protocol-Version and Authorization', () => {
    const ids = resolveHandshakeIds(
      '/',
      { 'device-id': 'd', 'protocol-version': '3', authorization: 'Bearer abc.1' },
      fixedAuto,
    );
    assert.equal(ids.protocolVersion, 3);
    assert.equal(ids.authorization, 'Bearer abc.1');
    const q = resolveHandshakeIds('/?device-id=d&authorization=Bearer%20tok.2', {}, fixedAuto);
    assert.equal(q.authorization, 'Bearer tok.2');
  });

  it('ignores a bad Protocol-Version and survives a malformed URL', () => {
    assert.equal(
      resolveHandshakeIds('/', { 'device-id': 'd', 'protocol-version': '9' }, fixedAuto).protocolVersion,
      undefined,
    );
    assert.equal(resolveHandshakeIds('http://[bad', { 'device-id': 'd' }, fixedAuto).deviceId, 'd');
  });

  it('takes the first value of a repeated header', () => {
    assert.equal(resolveHandshakeIds('/', { 'device-id': ['One', 'Two'] }, fixedAuto).deviceId, 'one');
  });
});

describe('parseProtocolVersion and bearerToken', () => {
  it('parses versions', () => {
    assert.equal(parseProtocolVersion(2), 2);
    assert.equal(parseProtocolVersion(' 1 '), 1);
    assert.equal(parseProtocolVersion('4'), undefined);
    assert.equal(parseProtocolVersion(''), undefined);
  });
  it('extracts bearer tokens', () => {
    assert.equal(bearerToken('Bearer x.1'), 'x.1');
    assert.equal(bearerToken('bearer   y'), 'y');
    assert.equal(bearerToken('z'), 'z');
    assert.equal(bearerToken('Bearer '), 'Bearer');
    assert.equal(bearerToken(undefined), undefined);
  });
});
