import assert from 'node:assert/strict';
import { request } from 'node:http';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/observability/log.js';
import { signDeviceToken, TOKEN_CLOCK_SKEW_SECONDS } from '../../src/protocol/auth-token.js';
import { runCli } from '../support/cli.js';
import { TestDevice, UpgradeRefused, type DeviceOptions, type Json } from '../support/device.js';
import { metricValue, startTestServer, tempDir, type TestServer } from '../support/server.js';
import { httpRequest, type HttpReply } from '../support/http.js';
import { waitFor } from '../support/wait.js';

const AUTH_KEY = 'security-test-key-0123456789';
const ADMIN_SECRET = 'admin-secret-for-security-tests';
const API_TOKEN = 'meeting-api-token-for-security-tests';
/** Another loopback address: to the server, a client on another machine. */
const OTHER_ADDRESS = '127.0.0.2';

type Reply = HttpReply;

const call = httpRequest;

/** The firmware's OTA call for a device id and client id. */
const ota = (server: TestServer, deviceId: string, clientId: string, from?: string): Promise<Reply> =>
  call(server, 'POST', '/xiaozhi/ota/', {
    headers: { 'Device-Id': deviceId, 'Client-Id': clientId },
    body: { mac_address: deviceId, application: { version: '1.6.2' } },
    ...(from ? { from } : {}),
  });

const tokenOf = (reply: Reply): string => String((reply.json.websocket as Json | undefined)?.token ?? '');

/** The HTTP status an upgrade was refused with, or 101 when it was accepted (the connection is closed again). */
async function upgradeStatus(opts: DeviceOptions): Promise<{ status: number; body: string }> {
  try {
    const dev = await TestDevice.connect(opts);
    await dev.close();
    return { status: 101, body: '' };
  } catch (err) {
    if (err instanceof UpgradeRefused) return { status: err.status, body: err.body };
    throw err;
  }
}

/** A logger whose lines the test can read. */
function captureLog(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

const authConfig = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  server: {
    auth_key: AUTH_KEY,
    admin_secret: ADMIN_SECRET,
    auth: { enabled: true, allowed_devices: ['aa:bb:cc:0a:00:ff'] },
    ...extra,
  },
});

describe('device ownership with auth on: trust on first use', () => {
  let server: TestServer;
  const dataDir = tempDir();
  before(async () => {
    server = await startTestServer(authConfig(), { dataDir });
  });
  after(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const ws = (): string => server.url('/xiaozhi/v1/', 'ws');

  it('an outsider cannot get a token for a device id another client owns, nor evict the connected device', async () => {
    const device = { id: 'aa:bb:cc:0a:00:01', client: 'c0ffee00-0000-4000-8000-00000000a001' };
    const first = await ota(server, device.id, device.client);
    assert.equal(first.status, 200);
    const owner = await TestDevice.connect({
      url: ws(),
      deviceId: device.id,
      clientId: device.client,
      token: tokenOf(first),
    });
    await owner.hello();
    const handoversBefore = await metricValue(server, 'linus_handovers_total');

    // The attack of the issue: OTA with the victim's device id and any client id.
    const stolen = await ota(server, device.id, 'attacker-client');
    assert.equal(stolen.status, 403);
    assert.equal(stolen.json.websocket, undefined, 'no token for a client that does not own the device id');
    assert.match(String(stolen.json.message), /bound to another client id.*linus devices rebind/);

    // A token signed for the attacker's client id (leaked key, or a token issued before) does not help either.
    const forged = signDeviceToken(AUTH_KEY, 'attacker-client', device.id, Date.now() / 1000);
    const refused = await upgradeStatus({ url: ws(), deviceId: device.id, clientId: 'attacker-client', token: forged });
    assert.equal(refused.status, 401);
    assert.match(refused.body, /bound to another client id/);

    // The owner was never told it was replaced and still talks to the server.
    assert.equal((await owner.hello()).type, 'hello');
    assert.ok(!owner.received.some((m) => m.type === 'system' && m.event === 'replaced'));
    assert.equal(server.registry.get(device.id)?.clientId, device.client);
    assert.equal(await metricValue(server, 'linus_handovers_total'), handoversBefore);
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'not_owner' }), 1);

    // The owner itself may take its connection over (a reconnect after Wi-Fi trouble): it proved possession.
    const again = await ota(server, device.id, device.client);
    assert.equal(again.status, 200);
    const second = await TestDevice.connect({
      url: ws(),
      deviceId: device.id,
      clientId: device.client,
      token: tokenOf(again),
    });
    await second.hello();
    const replaced = await owner.next((m) => m.type === 'system' && m.event === 'replaced');
    assert.equal(replaced.event, 'replaced');
    await Promise.all([owner.close(), second.close()]);
  });

  it('the first valid token used also claims the device id when OTA was never called', async () => {
    const id = 'aa:bb:cc:0a:00:02';
    const token = signDeviceToken(AUTH_KEY, 'cli-client', id, Date.now() / 1000);
    assert.equal((await upgradeStatus({ url: ws(), deviceId: id, clientId: 'cli-client', token })).status, 101);
    assert.equal((await ota(server, id, 'someone-else')).status, 403);
    assert.equal((await ota(server, id, 'cli-client')).status, 200);
  });

  it('a token dated in the future beyond the clock skew is refused; one within it connects', async () => {
    const id = 'aa:bb:cc:0a:00:03';
    const now = Date.now() / 1000;
    const ahead = signDeviceToken(AUTH_KEY, 'client-3', id, now + TOKEN_CLOCK_SKEW_SECONDS + 300);
    const refusal = await upgradeStatus({ url: ws(), deviceId: id, clientId: 'client-3', token: ahead });
    assert.equal(refusal.status, 401);
    assert.match(refusal.body, /future/);
    const slightlyAhead = signDeviceToken(AUTH_KEY, 'client-3', id, now + TOKEN_CLOCK_SKEW_SECONDS / 2);
    assert.equal(
      (await upgradeStatus({ url: ws(), deviceId: id, clientId: 'client-3', token: slightlyAhead })).status,
      101,
    );
  });

  it('an allow-listed device (no secret) cannot take the connection over from another client id', async () => {
    const id = 'aa:bb:cc:0a:00:ff';
    const first = await TestDevice.connect({ url: ws(), deviceId: id, clientId: 'lab-client' });
    await first.hello();
    const refusal = await upgradeStatus({ url: ws(), deviceId: id, clientId: 'other-client' });
    assert.equal(refusal.status, 409);
    assert.equal(server.registry.get(id)?.clientId, 'lab-client');
    assert.equal((await first.hello()).type, 'hello', 'the first connection is untouched');
    // The same client id reconnecting still hands over, as before.
    const second = await TestDevice.connect({ url: ws(), deviceId: id, clientId: 'lab-client' });
    await second.hello();
    await first.next((m) => m.type === 'system' && m.event === 'replaced');
    await Promise.all([first.close(), second.close()]);
  });

  it('the binding survives a restart; an admin rebinds a re-flashed device (API and CLI)', async () => {
    const id = 'aa:bb:cc:0a:00:04';
    assert.equal((await ota(server, id, 'old-uuid')).status, 200);
    await server.close('restart');
    server = await startTestServer(authConfig(), { dataDir });

    assert.equal((await ota(server, id, 'new-uuid')).status, 403, 'the binding is in the store, not in memory');
    const listed = await call(server, 'GET', '/admin/devices', {
      headers: { authorization: `Bearer ${ADMIN_SECRET}` },
    });
    assert.equal(listed.status, 200);
    assert.ok((listed.json.data as Json[]).some((b) => b.deviceId === id && b.clientId === 'old-uuid'));

    // Admin API: bind the device id to the new client id.
    const unauthorized = await call(server, 'POST', '/admin/devices/rebind', { body: { deviceId: id, clientId: 'x' } });
    assert.equal(unauthorized.status, 401);
    const rebound = await call(server, 'POST', '/admin/devices/rebind', {
      headers: { authorization: `Bearer ${ADMIN_SECRET}` },
      body: { deviceId: id.toUpperCase(), clientId: 'new-uuid' },
    });
    assert.equal(rebound.status, 200);
    assert.deepEqual(rebound.json.data, { deviceId: id, clientId: 'new-uuid', previousClientId: 'old-uuid' });
    const fresh = await ota(server, id, 'new-uuid');
    assert.equal(fresh.status, 200);
    assert.equal(
      (await upgradeStatus({ url: ws(), deviceId: id, clientId: 'new-uuid', token: tokenOf(fresh) })).status,
      101,
    );
    assert.equal((await ota(server, id, 'old-uuid')).status, 403, 'the old client id lost the device id');

    // CLI, against the running server's store: free the device id; the next client to ask owns it.
    const cli = await runCli(['devices', 'rebind', id, '--data-dir', dataDir]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /is free.*was new-uuid/);
    assert.equal((await ota(server, id, 'third-uuid')).status, 200);
    assert.equal((await ota(server, id, 'new-uuid')).status, 403);
    const list = await runCli(['devices', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id}\\tthird-uuid\\t`));
  });
});

describe('new device ids per address', () => {
  it('one address claims at most new_devices_per_hour device ids; known ones and other addresses go on', async () => {
    const server = await startTestServer(authConfig({ auth: { enabled: true, new_devices_per_hour: 3 } }));
    try {
      for (let i = 1; i <= 3; i++) assert.equal((await ota(server, `aa:00:00:00:00:0${i}`, `c-${i}`)).status, 200);
      const fourth = await ota(server, 'aa:00:00:00:00:04', 'c-4');
      assert.equal(fourth.status, 429);
      assert.match(String(fourth.json.message), /server\.auth\.new_devices_per_hour: 3/);
      assert.ok(Number(fourth.headers['retry-after']) > 0, 'Retry-After says when');
      const again = await ota(server, 'aa:00:00:00:00:02', 'c-2');
      assert.equal(again.status, 200, 'a device already bound is not a new claim');
      assert.ok(tokenOf(again), 'and still gets its token');
      const elsewhere = await ota(server, 'aa:00:00:00:00:04', 'c-4', OTHER_ADDRESS);
      assert.equal(elsewhere.status, 200, 'another address has its own budget');
    } finally {
      await server.stop();
    }
  });
});

describe('failed-secret throttling per address', () => {
  let server: TestServer;
  const log = captureLog();
  before(async () => {
    // A back-off far longer than any test: the counts below do not depend on how fast the machine is.
    server = await startTestServer(
      authConfig({ meeting_api_token: API_TOKEN, api_rate_limit: 5, failed_secrets: { backoff_ms: 600_000 } }),
      { logger: log.logger },
    );
  });
  after(() => server.stop());

  const admin = (secret: string | undefined, from?: string): Promise<Reply> =>
    call(server, 'GET', '/admin/activations', {
      headers: secret ? { authorization: `Bearer ${secret}` } : {},
      ...(from ? { from } : {}),
    });
  const meetings = (token: string, from?: string): Promise<Reply> =>
    call(server, 'GET', '/supie/meetings/recent', { headers: { 'x-api-token': token }, ...(from ? { from } : {}) });
  const burstLines = (): string[] => log.lines.filter((l) => l.includes('wrong secrets from'));

  it('wrong admin secrets: 401 up to the limit, then 429 with Retry-After even for the right one, one log line', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await admin(`wrong-${i}`, OTHER_ADDRESS)).status);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
    assert.deepEqual(statuses.slice(10), Array(20).fill(429));
    const locked = await admin(ADMIN_SECRET, OTHER_ADDRESS);
    assert.equal(locked.status, 429, 'while backing off no secret is checked, or guesses would still be answered');
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    assert.equal(burstLines().length, 1, burstLines().join('\n'));
    assert.match(burstLines()[0]!, /127\.0\.0\.2/);
    assert.equal(await metricValue(server, 'linus_auth_failures_total', { kind: 'admin' }), 10);
    assert.equal(await metricValue(server, 'linus_auth_throttled_total', { kind: 'admin' }), 21);
    assert.equal(await metricValue(server, 'linus_auth_lockouts_total'), 1);

    // Another address is not affected, and missing secrets are not guesses (not counted).
    assert.equal((await admin(ADMIN_SECRET)).status, 200);
    for (let i = 0; i < 15; i++) assert.equal((await admin(undefined)).status, 401);
    assert.equal(await metricValue(server, 'linus_auth_failures_total', { kind: 'admin' }), 10);
  });

  it('after the back-off the right secret gets in again', async () => {
    const quick = await startTestServer(authConfig({ failed_secrets: { limit: 3, backoff_ms: 300 } }));
    try {
      const adminOf = (secret: string): Promise<Reply> =>
        call(quick, 'GET', '/admin/activations', { headers: { authorization: `Bearer ${secret}` } });
      for (let i = 0; i < 3; i++) assert.equal((await adminOf('wrong')).status, 401);
      await waitFor(async () => (await adminOf(ADMIN_SECRET)).status === 200, 5000, 'the back-off to end');
      assert.equal(await metricValue(quick, 'linus_auth_lockouts_total'), 1);
    } finally {
      await quick.stop();
    }
  });

  it('wrong meeting-API tokens do not use up the valid client budget; a locked-out address gets 429', async () => {
    // Fewer wrong tokens than the failure limit, then as many right ones as the per-second rate allows: before,
    // the wrong ones counted against that rate and the right ones were answered 429.
    for (let i = 0; i < 9; i++) assert.equal((await meetings(`wrong-${i}`)).status, 401);
    for (let i = 0; i < 4; i++) assert.equal((await meetings(API_TOKEN)).status, 200);

    // The 500 wrong tokens, from another address: 10 are checked, the rest are not, and a valid client
    // elsewhere is served right after.
    const statuses = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const s = (await meetings(`guess-${i}`, '127.0.0.3')).status;
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(statuses), { 401: 10, 429: 490 });
    assert.equal((await meetings(API_TOKEN)).status, 200);
    assert.equal((await meetings(API_TOKEN, '127.0.0.3')).status, 429, 'the guessing address backs off');
    assert.ok((await metricValue(server, 'linus_auth_failures_total', { kind: 'api' })) >= 19);
  });

  it('wrong secrets in `server` actions over the WebSocket count too', async () => {
    const dev = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'aa:bb:cc:0a:00:ff', // allow-listed: connects without a token
      clientId: 'console',
      localAddress: '127.0.0.5',
    });
    await dev.hello();
    const action = (secret: string): Promise<Json> => {
      dev.send({ type: 'server', action: 'update_config', content: { secret } });
      // Not the `server` stats broadcasts: the answer names the action.
      return dev.next((m) => m.type === 'server' && (m.content as Json | undefined)?.action === 'update_config');
    };
    for (let i = 0; i < 10; i++) assert.equal((await action(`wrong-${i}`)).message, 'wrong secret');
    const locked = await action(ADMIN_SECRET);
    assert.equal(locked.status, 'error');
    assert.match(String(locked.message), /too many wrong secrets/);
    await dev.close();
  });

  it('forged device tokens: the address backs off (429 before the handshake); the owner elsewhere connects', async () => {
    const url = server.url('/xiaozhi/v1/', 'ws');
    const id = 'aa:bb:cc:0b:00:01';
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const forged = `${'A'.repeat(43)}.${Math.floor(Date.now() / 1000)}`;
      const r = await upgradeStatus({ url, deviceId: id, clientId: 'x', token: forged, localAddress: '127.0.0.4' });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [...Array(10).fill(401), 429, 429]);
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'throttled' }), 2);
    const token = tokenOf(await ota(server, id, 'owner'));
    assert.equal((await upgradeStatus({ url, deviceId: id, clientId: 'owner', token })).status, 101);
  });
});

/** Writes raw bytes and collects the answer until the server closes; a reset is reported, not thrown. */
function rawExchange(port: number, payload: string): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ text, error: err.code ?? err.message }));
    socket.on('close', () => resolve({ text }));
    socket.write(payload);
  });
}

const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

describe('oversized requests are answered, not dropped', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(authConfig());
  });
  after(() => server.stop());

  it('a 20 KB URL, a 17 KB header and 3,000 headers are answered 431 and counted', async () => {
    const manyLines = Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const tinyLines = 'a:\r\n'.repeat(3000); // under 16 KB in all: refused by count
    const cases = [
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(17_000)}\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: x\r\n${manyLines}\r\n`,
      `GET /health HTTP/1.1\r\nHost: x\r\n${tinyLines}\r\n`,
    ];
    for (const payload of cases) {
      const r = await rawExchange(server.port, payload);
      assert.equal(
        statusOf(r.text),
        431,
        `${payload.slice(0, 40)}… got ${r.error ?? JSON.stringify(r.text.slice(0, 80))}`,
      );
      assert.match(r.text, /"success":false/);
    }
    assert.equal(await metricValue(server, 'linus_http_refused_total', { reason: 'header_too_large' }), 3);
    assert.equal(await metricValue(server, 'linus_http_refused_total', { reason: 'too_many_headers' }), 1);
  });

  it('a malformed request is answered 400 and counted', async () => {
    const r = await rawExchange(server.port, 'GET / HTTP/1.1\r\nHost x\r\n\r\n');
    assert.equal(statusOf(r.text), 400, r.error ?? r.text);
    assert.equal(await metricValue(server, 'linus_http_refused_total', { reason: 'bad_request' }), 1);
  });

  it('a WebSocket upgrade with too many header lines is answered 431', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 150; i++) headers[`x-h${i}`] = 'v';
    const r = await upgradeStatus({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:0a:00:ff', headers });
    assert.equal(r.status, 431);
  });

  it('a 50 MB chunked body is answered 413 while it is still being sent, and counted', async () => {
    const before = await metricValue(server, 'linus_http_refused_total', { reason: 'body_too_large' });
    for (const path of ['/xiaozhi/ota/', '/admin/activate']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: server.port,
            method: 'POST',
            path,
            agent: false,
            headers: {
              'transfer-encoding': 'chunked',
              'device-id': 'aa:bb:cc:0c:00:01',
              authorization: `Bearer ${ADMIN_SECRET}`,
            },
          },
          (res) => {
            res.resume();
            req.destroy(); // stop sending: the answer is in
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = (): void => {
          while (sent < 50 * 1024 * 1024 && !req.destroyed) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          if (!req.destroyed) req.end();
        };
        pump();
      });
      assert.equal(status, 413, path);
    }
    // A declared Content-Length over the limit is refused before reading.
    const declared = await rawExchange(
      server.port,
      'POST /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\nDevice-Id: aa:bb:cc:0c:00:02\r\nContent-Length: 10000000\r\n\r\n{',
    );
    assert.equal(statusOf(declared.text), 413);
    assert.equal(await metricValue(server, 'linus_http_refused_total', { reason: 'body_too_large' }), before + 3);
    assert.equal((await call(server, 'GET', '/health')).status, 200, 'the server is still serving');
  });
});
