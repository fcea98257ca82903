import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signDeviceToken } from '../../src/protocol/auth-token.js';
import { TestDevice, UpgradeRefused, type DeviceOptions } from '../support/device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const AUTH_KEY = 'auth-test-key-0123456789';
const EXPIRE_SECONDS = 3600;
const STATIC_TOKEN = 'static-token-for-a-bench-rig';
const NAMED_STATIC_TOKEN = 'named-static-token-for-ci';

const nowSeconds = (): number => Date.now() / 1000;
/** A token as the OTA endpoint would issue it for this client/device pair. */
const tokenFor = (clientId: string, deviceId: string, atSeconds = nowSeconds(), key = AUTH_KEY): string =>
  signDeviceToken(key, clientId, deviceId, atSeconds);

/** Asserts the upgrade is answered with a plain HTTP status instead of 101, i.e. before any WebSocket exists. */
async function assertRefused(attempt: Promise<TestDevice>, status: number): Promise<UpgradeRefused> {
  let refusal: UpgradeRefused | undefined;
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof UpgradeRefused, `expected an HTTP refusal, got ${String(err)}`);
    assert.equal(err.status, status, err.body);
    refusal = err;
    return true;
  });
  return refusal!;
}

/** Connects, completes hello, checks the server holds a session for this device, and disconnects. */
async function assertAccepted(server: TestServer, opts: DeviceOptions, expectedDeviceId: string): Promise<void> {
  const dev = await TestDevice.connect(opts);
  try {
    const hello = await dev.hello();
    assert.equal(hello.type, 'hello');
    assert.ok(
      [...server.sessions].some((s) => s.deviceId === expectedDeviceId),
      `no session for ${expectedDeviceId}`,
    );
  } finally {
    await dev.close();
  }
}

describe('device auth before the WebSocket handshake (D5)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: {
        auth_key: AUTH_KEY,
        auth: {
          enabled: true,
          expire_seconds: EXPIRE_SECONDS,
          // Written as operators paste MAC addresses: upper case, with quotes.
          allowed_devices: ['"AA:BB:CC:DD:EE:FF"', "'11:22:33:44:55:66'"],
          tokens: [STATIC_TOKEN, { token: NAMED_STATIC_TOKEN, name: 'ci' }],
        },
      },
    });
  });
  after(() => server.stop());

  const url = (): string => server.url('/xiaozhi/v1/', 'ws');
  const device = (deviceId: string, clientId: string, extra: Partial<DeviceOptions> = {}): DeviceOptions => ({
    url: url(),
    deviceId,
    clientId,
    ...extra,
  });

  it('no token: HTTP 401 before the handshake, nothing allocated, counted as an auth rejection', async () => {
    await waitFor(() => server.sessions.size === 0 && server.registry.size === 0, 3000, 'an idle server');
    const rejectedBefore = await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'auth' });
    const acceptedBefore = await metricValue(server, 'linus_connections_total');

    const refusal = await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:01', 'client-1')), 401);
    assert.equal((JSON.parse(refusal.body) as { success?: unknown }).success, false);
    // The browser style (ids in the query) is refused the same way.
    await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:01', 'client-1', { style: 'browser' })), 401);

    assert.equal(server.sessions.size, 0);
    assert.equal(server.registry.size, 0);
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'auth' }), rejectedBefore + 2);
    assert.equal(await metricValue(server, 'linus_connections_total'), acceptedBefore, 'no connection was accepted');
  });

  it('a valid token in the Authorization header (firmware style) connects', async () => {
    const token = tokenFor('client-2', 'aa:bb:cc:00:00:02');
    await assertAccepted(server, device('AA:BB:CC:00:00:02', 'Client-2', { token }), 'aa:bb:cc:00:00:02');
  });

  it('a valid token in the `authorization` query parameter (browser style) connects', async () => {
    const token = tokenFor('web-client-3', 'web-device-3');
    await assertAccepted(server, device('web-device-3', 'web-client-3', { token, style: 'browser' }), 'web-device-3');
  });

  it('a token signed for another device id or another client id is refused with 401', async () => {
    const forOtherDevice = tokenFor('client-4', 'aa:bb:cc:00:00:99');
    await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:04', 'client-4', { token: forOtherDevice })), 401);
    const forOtherClient = tokenFor('client-other', 'aa:bb:cc:00:00:04');
    await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:04', 'client-4', { token: forOtherClient })), 401);
    // The right pair still gets in: the refusals were about the binding, not the device.
    await assertAccepted(
      server,
      device('aa:bb:cc:00:00:04', 'client-4', { token: tokenFor('client-4', 'aa:bb:cc:00:00:04') }),
      'aa:bb:cc:00:00:04',
    );
  });

  it('a token signed with another key, or garbage, is refused with 401', async () => {
    const otherKey = tokenFor('client-5', 'aa:bb:cc:00:00:05', nowSeconds(), 'some-other-key');
    await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:05', 'client-5', { token: otherKey })), 401);
    await assertRefused(TestDevice.connect(device('aa:bb:cc:00:00:05', 'client-5', { token: 'not-a-token' })), 401);
  });

  it('a token older than expire_seconds is refused; one just inside the window connects', async () => {
    const expired = tokenFor('client-6', 'aa:bb:cc:00:00:06', nowSeconds() - EXPIRE_SECONDS - 120);
    const refusal = await assertRefused(
      TestDevice.connect(device('aa:bb:cc:00:00:06', 'client-6', { token: expired })),
      401,
    );
    assert.match(refusal.body, /expired/);
    const fresh = tokenFor('client-6', 'aa:bb:cc:00:00:06', nowSeconds() - EXPIRE_SECONDS + 120);
    await assertAccepted(server, device('aa:bb:cc:00:00:06', 'client-6', { token: fresh }), 'aa:bb:cc:00:00:06');
  });

  it('a device in allowed_devices (upper case and quotes in config) connects lower-case without a token', async () => {
    await assertAccepted(server, device('aa:bb:cc:dd:ee:ff', 'whatever-client'), 'aa:bb:cc:dd:ee:ff');
    await assertAccepted(
      server,
      device('11:22:33:44:55:66', '11:22:33:44:55:66', { style: 'browser' }),
      '11:22:33:44:55:66',
    );
  });

  it('a static token from server.auth.tokens connects any device (plain and named entries)', async () => {
    await assertAccepted(server, device('bench-rig-1', 'bench-rig-1', { token: STATIC_TOKEN }), 'bench-rig-1');
    await assertAccepted(
      server,
      device('ci-runner-1', 'ci-runner-1', { token: NAMED_STATIC_TOKEN, style: 'browser' }),
      'ci-runner-1',
    );
    await assertRefused(TestDevice.connect(device('bench-rig-1', 'bench-rig-1', { token: `${STATIC_TOKEN}x` })), 401);
  });
});

describe('server.max_connections', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { max_connections: 2 } });
  });
  after(() => server.stop());

  it('refuses the connection over the limit with 503 before the handshake, and accepts again once one leaves', async () => {
    const url = server.url('/xiaozhi/v1/', 'ws');
    const a = await TestDevice.connect({ url, deviceId: 'limit-a' });
    const b = await TestDevice.connect({ url, deviceId: 'limit-b' });
    await waitFor(() => server.sessions.size === 2, 3000, 'two sessions');
    const acceptedBefore = await metricValue(server, 'linus_connections_total');

    await assertRefused(TestDevice.connect({ url, deviceId: 'limit-c' }), 503);
    assert.equal(server.sessions.size, 2);
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'max_connections' }), 1);
    assert.equal(await metricValue(server, 'linus_connections_total'), acceptedBefore);

    await a.close();
    await waitFor(() => server.sessions.size === 1, 3000, 'the closed session to go');
    const c = await TestDevice.connect({ url, deviceId: 'limit-c' });
    assert.equal((await c.hello()).type, 'hello');
    await Promise.all([b.close(), c.close()]);
  });
});
