import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { TestDevice, UpgradeRefused, type Json } from '../support/device.js';
import { httpRequest, type HttpReply } from '../support/http.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** What the firmware sends to the OTA URL (device-protocol.md §5.1), trimmed to the fields that matter. */
const FIRMWARE_VERSION = '1.6.2';
const systemInfo = (mac: string): Json => ({
  version: 2,
  language: 'zh-CN',
  flash_size: 16777216,
  minimum_free_heap_size: '123456',
  mac_address: mac,
  uuid: 'b1f0c2a4-0000-4000-8000-000000000001',
  chip_model_name: 'esp32s3',
  application: {
    name: 'xiaozhi',
    version: FIRMWARE_VERSION,
    compile_time: '2025-01-01T00:00:00Z',
    idf_version: 'v5.4',
    elf_sha256: 'ab'.repeat(32),
  },
  board: {
    type: 'bread-compact-wifi',
    name: 'bread-compact-wifi',
    ssid: 'lab',
    rssi: -50,
    channel: 1,
    ip: '192.168.1.10',
    mac,
  },
});

const http = httpRequest;

/** The firmware's OTA call: POST with Device-Id / Client-Id headers and the system-info body. */
function ota(
  server: TestServer,
  path: string,
  device: { mac: string; client?: string },
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  return http(server, 'POST', path, {
    headers: {
      'Device-Id': device.mac,
      'Client-Id': device.client ?? `${device.mac}-client`,
      'Activation-Version': '1',
      'User-Agent': `bread-compact-wifi/${FIRMWARE_VERSION}`,
      ...headers,
    },
    body: systemInfo(device.mac),
  });
}

const wsUrl = (server: TestServer): string => server.url('/xiaozhi/v1/', 'ws');

function connect(server: TestServer, deviceId: string, clientId: string, token?: string): Promise<TestDevice> {
  return TestDevice.connect({ url: wsUrl(server), deviceId, clientId, ...(token !== undefined ? { token } : {}) });
}

/** Asserts the upgrade is refused with this HTTP status. */
async function assertRefused(attempt: Promise<TestDevice>, status: number): Promise<void> {
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof UpgradeRefused, `expected an HTTP refusal, got ${String(err)}`);
    assert.equal(err.status, status);
    return true;
  });
}

const ADMIN_SECRET = 'admin-s3cret-for-tests';
const adminActivate = (server: TestServer, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> =>
  http(server, 'POST', '/admin/activate', { headers, body });
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('OTA: what the firmware parses', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { timezone_offset: 5.5, binary_protocol_version: 3 } });
  });
  after(() => server.stop());

  const families = [
    { ota: '/xiaozhi/ota/', ws: '/xiaozhi/v1/' },
    { ota: '/xiaozhi/ota', ws: '/xiaozhi/v1/' },
    { ota: '/supie/ota/', ws: '/supie/v1/' },
    { ota: '/supie/ota', ws: '/supie/v1/' },
  ];
  for (const [i, family] of families.entries()) {
    it(`POST ${family.ota} answers server_time, firmware and websocket`, async () => {
      const mac = `AA:BB:CC:00:01:0${i}`;
      const before = Date.now();
      const res = await ota(server, family.ota, { mac });
      const afterTs = Date.now();
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const serverTime = res.json.server_time as Json;
      assert.equal(typeof serverTime.timestamp, 'number');
      assert.ok(
        (serverTime.timestamp as number) >= before && (serverTime.timestamp as number) <= afterTs,
        `timestamp ${String(serverTime.timestamp)} is not now, in ms`,
      );
      assert.equal(serverTime.timezone_offset, 330, 'timezone_offset is server.timezone_offset (5.5 h) in minutes');
      const firmware = res.json.firmware as Json;
      assert.equal(firmware.version, FIRMWARE_VERSION, 'the device is told its own version, so it does not upgrade');
      assert.equal(firmware.url, '');
      const websocket = res.json.websocket as Json;
      assert.equal(websocket.url, `ws://127.0.0.1:${server.port}${family.ws}`);
      assert.equal(websocket.token, '', 'no token when server.auth is off');
      assert.equal(websocket.version, 3, 'websocket.version is server.binary_protocol_version');
      assert.equal(res.json.activation, undefined, 'no activation block when activation is off');
    });
  }

  it('builds the WebSocket URL from the Host header the device used', async () => {
    const res = await ota(server, '/xiaozhi/ota/', { mac: 'aa:bb:cc:00:02:01' }, { Host: 'linus.lan:9000' });
    assert.equal((res.json.websocket as Json).url, 'ws://linus.lan:9000/xiaozhi/v1/');
    const supie = await ota(server, '/supie/ota/', { mac: 'aa:bb:cc:00:02:01' }, { Host: 'linus.lan:9000' });
    assert.equal((supie.json.websocket as Json).url, 'ws://linus.lan:9000/supie/v1/');
  });

  it('a missing Device-Id is answered 200 with success:false', async () => {
    const res = await http(server, 'POST', '/xiaozhi/ota/', {
      headers: { 'Client-Id': 'some-client' },
      body: { application: { version: '1.0.0' } },
    });
    assert.equal(res.status, 200);
    assert.equal(res.json.success, false);
    assert.equal(typeof res.json.message, 'string');
    assert.equal(res.json.websocket, undefined);
  });

  it('GET on the OTA path answers 200 with text', async () => {
    for (const path of ['/xiaozhi/ota/', '/supie/ota']) {
      const res = await http(server, 'GET', path);
      assert.equal(res.status, 200, path);
      assert.match(String(res.headers['content-type']), /^text\/plain/, path);
      assert.ok(res.text.length > 0, path);
    }
  });

  it('OPTIONS answers 204 with CORS headers', async () => {
    for (const path of ['/xiaozhi/ota/', '/xiaozhi/ota', '/supie/ota/', '/xiaozhi/ota/activate']) {
      const res = await http(server, 'OPTIONS', path, {
        headers: { origin: 'http://console.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(res.status, 204, path);
      assert.equal(res.headers['access-control-allow-origin'], '*', path);
      assert.match(String(res.headers['access-control-allow-methods']), /POST/, path);
      assert.match(String(res.headers['access-control-allow-headers']).toLowerCase(), /device-id/, path);
      assert.match(String(res.headers['access-control-allow-headers']).toLowerCase(), /client-id/, path);
    }
  });
});

describe('OTA: configured server.websocket', () => {
  it('hands out server.websocket as configured, for both URL families', async () => {
    const server = await startTestServer({ server: { websocket: 'wss://voice.example.com/xiaozhi/v1/' } });
    try {
      for (const path of ['/xiaozhi/ota/', '/supie/ota/']) {
        const res = await ota(server, path, { mac: 'aa:bb:cc:00:03:01' });
        assert.equal((res.json.websocket as Json).url, 'wss://voice.example.com/xiaozhi/v1/', path);
      }
    } finally {
      await server.stop();
    }
  });

  it("ignores the reference's placeholder value and builds the URL from the Host header", async () => {
    const server = await startTestServer({ server: { websocket: 'ws://你的ip或者域名:端口号/xiaozhi/v1/' } });
    try {
      const res = await ota(server, '/xiaozhi/ota/', { mac: 'aa:bb:cc:00:03:02' });
      assert.equal((res.json.websocket as Json).url, `ws://127.0.0.1:${server.port}/xiaozhi/v1/`);
    } finally {
      await server.stop();
    }
  });
});

describe('OTA: device tokens', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: { auth_key: 'ota-test-key', auth: { enabled: true, allowed_devices: ['"AA:BB:CC:00:04:FF"'] } },
    });
  });
  after(() => server.stop());

  it('issues a token when auth is on, and that token opens the WebSocket', async () => {
    const device = { mac: 'AA:BB:CC:00:04:01', client: 'C0FFEE00-0000-4000-8000-000000000401' };
    const res = await ota(server, '/xiaozhi/ota/', device);
    const token = String((res.json.websocket as Json).token);
    assert.match(token, /^[\w-]+\.\d+$/, 'token is <sig>.<ts>');
    // Without the token this device is refused; with it, it is in.
    await assertRefused(connect(server, device.mac, device.client), 401);
    const dev = await connect(server, device.mac, device.client, token);
    const hello = await dev.hello();
    assert.equal(hello.type, 'hello');
    await dev.close();
  });

  it('the token is bound to the client id it was issued for', async () => {
    const device = { mac: 'AA:BB:CC:00:04:02', client: 'client-a' };
    const token = String(((await ota(server, '/supie/ota/', device)).json.websocket as Json).token);
    await assertRefused(connect(server, device.mac, 'client-b', token), 401);
  });

  it('issues no token to an allow-listed device', async () => {
    const res = await ota(server, '/xiaozhi/ota/', { mac: 'aa:bb:cc:00:04:ff' });
    assert.equal(res.status, 200);
    assert.equal((res.json.websocket as Json).token, '');
  });
});

describe('OTA: activation with a 6-digit code', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { admin_secret: ADMIN_SECRET, activation: { enabled: true } } });
  });
  after(() => server.stop());

  const pollActivate = (mac: string, path = '/xiaozhi/ota/activate'): Promise<HttpReply> =>
    http(server, 'POST', path, { headers: { 'Device-Id': mac, 'Client-Id': `${mac}-client` }, body: {} });

  /** A well-formed code that no device is waiting with. */
  const unusedCode = async (): Promise<string> => {
    const taken = new Set((await server.activations.list()).map((r) => r.code));
    for (let n = 123456; ; n = (n + 7919) % 1_000_000) {
      const code = String(n).padStart(6, '0');
      if (!taken.has(code)) return code;
    }
  };

  it('a device gets a code, waits (202, upgrade 401) until an admin activates it, then connects', async () => {
    const mac = 'AA:BB:CC:00:05:01';
    const first = await ota(server, '/xiaozhi/ota/', { mac });
    assert.equal(first.status, 200);
    const activation = first.json.activation as Json;
    assert.ok(activation, 'an unknown device gets an activation block');
    const code = String(activation.code);
    assert.match(code, /^\d{6}$/);
    assert.equal(typeof activation.message, 'string');
    assert.ok(String(activation.message).length > 0);
    assert.equal(typeof activation.challenge, 'string');
    assert.ok(String(activation.challenge).length > 0, 'a challenge starts the firmware activation loop');

    const again = await ota(server, '/xiaozhi/ota/', { mac });
    assert.equal((again.json.activation as Json).code, code, 'the same device keeps its code');

    assert.equal((await pollActivate(mac)).status, 202);
    await assertRefused(connect(server, mac, `${mac}-client`), 401);

    assert.equal((await adminActivate(server, { code })).status, 401, 'no admin token');
    assert.equal((await adminActivate(server, { code }, bearer('wrong-secret'))).status, 401, 'wrong admin token');
    assert.equal(
      (await adminActivate(server, { code }, { 'x-admin-token': 'wrong-secret' })).status,
      401,
      'wrong X-Admin-Token',
    );
    assert.equal((await pollActivate(mac)).status, 202, 'refused admin calls activate nothing');
    const unknown = await adminActivate(server, { code: await unusedCode() }, bearer(ADMIN_SECRET));
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.success, false);

    const ok = await adminActivate(server, { code }, bearer(ADMIN_SECRET));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.success, true);
    assert.equal((ok.json.data as Json).deviceId, 'aa:bb:cc:00:05:01');

    assert.equal((await pollActivate(mac)).status, 200);
    assert.equal((await pollActivate(mac, '/supie/ota/activate')).status, 200);
    const dev = await connect(server, mac, `${mac}-client`);
    assert.equal((await dev.hello()).type, 'hello');
    await dev.close();

    const afterActivation = await ota(server, '/xiaozhi/ota/', { mac });
    assert.equal(afterActivation.json.activation, undefined, 'an activated device is not asked again');
    const reused = await adminActivate(server, { code }, bearer(ADMIN_SECRET));
    assert.equal(reused.status, 404, 'a used code cannot activate again');
  });

  it('codes are per device: two devices get two different codes', async () => {
    const a = String(((await ota(server, '/xiaozhi/ota/', { mac: 'aa:bb:cc:00:05:02' })).json.activation as Json).code);
    const b = String(((await ota(server, '/supie/ota/', { mac: 'aa:bb:cc:00:05:03' })).json.activation as Json).code);
    assert.match(a, /^\d{6}$/);
    assert.match(b, /^\d{6}$/);
    assert.notEqual(a, b);
  });

  it('`linus activate <code> --data-dir` activates a device of a running server (two processes, one SQLite file)', async () => {
    const mac = 'AA:BB:CC:00:05:04';
    const code = String(((await ota(server, '/xiaozhi/ota/', { mac })).json.activation as Json).code);
    assert.equal((await pollActivate(mac)).status, 202);

    const cli = await runCli(['activate', code, '--data-dir', server.dataDir]);
    assert.equal(cli.code, 0, `stdout: ${cli.stdout}\nstderr: ${cli.stderr}`);
    assert.match(cli.stdout, /aa:bb:cc:00:05:04/);

    assert.equal((await pollActivate(mac)).status, 200);
    const dev = await connect(server, mac, `${mac}-client`);
    assert.equal((await dev.hello()).type, 'hello');
    await dev.close();
  });

  it('`linus activate` with a code nobody waits with fails with one line', async () => {
    const cli = await runCli(['activate', await unusedCode(), '--data-dir', server.dataDir]);
    assert.notEqual(cli.code, 0);
    assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
    assert.match(cli.stderr, /code/);
  });
});

describe('OTA: admin endpoints without server.admin_secret', () => {
  it('POST /admin/activate answers 403 when no admin_secret is configured', async () => {
    const server = await startTestServer({ server: { activation: { enabled: true } } });
    try {
      const mac = 'aa:bb:cc:00:06:01';
      const code = String(((await ota(server, '/xiaozhi/ota/', { mac })).json.activation as Json).code);
      const res = await adminActivate(server, { code }, bearer('anything'));
      assert.equal(res.status, 403, res.text);
      assert.equal(res.json.success, false);
      assert.equal(await server.activations.isActivated(mac), false);
    } finally {
      await server.stop();
    }
  });
});
