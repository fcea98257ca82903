import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Json } from '../support/device.js';
import { startTestServer, type TestServer } from '../support/server.js';

const MAC = 'AA:BB:CC:DD:EE:01';

/** The firmware's OTA call, reduced to what the mqtt block depends on. */
async function ota(server: TestServer, body: Json = { application: { version: '1.6.2' } }): Promise<Json> {
  const res = await fetch(server.url('/xiaozhi/ota/'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'device-id': MAC,
      'client-id': 'c0ffee00-1111-4222-8333-444455556666',
    },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

describe('OTA mqtt block for the official MQTT gateway (server.mqtt_gateway)', () => {
  const KEY = 'gateway-signature-key';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { mqtt_gateway: 'gw.example:1883', mqtt_signature_key: KEY } });
  });
  after(() => server.stop());

  it("answers the reference's client id, username and a password the gateway's check accepts", async () => {
    const reply = await ota(server);
    const mqtt = reply.mqtt as Record<string, string>;
    assert.equal(mqtt.endpoint, 'gw.example:1883');
    assert.equal(mqtt.client_id, 'GID_default@@@aa_bb_cc_dd_ee_01@@@aa_bb_cc_dd_ee_01');
    assert.deepEqual(JSON.parse(Buffer.from(mqtt.username!, 'base64').toString()), { ip: 'unknown' });
    // The gateway recomputes base64(HMAC-SHA256(MQTT_SIGNATURE_KEY, client_id|username)) and compares.
    const expected = createHmac('sha256', KEY).update(`${mqtt.client_id}|${mqtt.username}`).digest('base64');
    assert.equal(mqtt.password, expected);
    assert.equal(mqtt.publish_topic, 'device-server');
    assert.equal(mqtt.subscribe_topic, 'devices/p2p/aa_bb_cc_dd_ee_01');
    // WebSocket stays for clients that only speak it; the firmware takes mqtt when both are present.
    assert.equal(typeof (reply.websocket as Json).url, 'string');
  });

  it('takes the group id from the device model in the body, as the reference does', async () => {
    const reply = await ota(server, { application: { version: '1.6.2' }, device: { model: 'lichuang dev:2' } });
    assert.equal((reply.mqtt as Json).client_id, 'GID_lichuang_dev_2@@@aa_bb_cc_dd_ee_01@@@aa_bb_cc_dd_ee_01');
  });
});

describe("OTA with Linus's own MQTT transport on (server.mqtt.enabled), even with a gateway configured", () => {
  const KEY = 'own-signature-key';
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: {
        mqtt_gateway: 'gw.example:1883',
        mqtt_signature_key: KEY,
        mqtt: { enabled: true, port: 0 },
        udp: { port: 0 },
      },
    });
  });
  after(() => server.stop());

  it("hands out Linus's own endpoint (the host the device reached OTA at) and credentials signed for it", async () => {
    const mqtt = (await ota(server)).mqtt as Record<string, string>;
    const [host, port] = mqtt.endpoint!.split(':');
    assert.equal(host, '127.0.0.1');
    assert.ok(Number(port) > 0 && port !== '1883', mqtt.endpoint);
    const expected = createHmac('sha256', KEY).update(`${mqtt.client_id}|${mqtt.username}`).digest('base64');
    assert.equal(mqtt.password, expected);
  });
});

describe('OTA with neither server.mqtt_gateway nor server.mqtt.enabled (the default)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('has no mqtt block, so devices stay on WebSocket', async () => {
    const reply = await ota(server);
    assert.equal(reply.mqtt, undefined);
    assert.equal(typeof (reply.websocket as Json).url, 'string');
  });
});
