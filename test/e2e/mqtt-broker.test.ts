import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectAsync } from 'mqtt';
import { StartupError } from '../../src/server.js';
import { createOpusDecoder } from '../../src/voice/opus.js';
import { freePort, runCli } from '../support/cli.js';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { MqttTestDevice, otaMqtt } from '../support/mqtt-device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { offlineVoiceConfig, silence } from '../support/speech.js';
import { waitFor } from '../support/wait.js';

/**
 * server.mqtt.broker_url: Linus as a client of an external broker, here the machine's Mosquitto at 127.0.0.1:1883.
 * Every run uses its own topic prefix, so runs (and other users of the broker) do not see each other's devices.
 * Mosquitto does not subscribe clients on connect, so the test devices subscribe to their OTA `subscribe_topic`
 * themselves (what EMQX's auto-subscribe does for the stock firmware).
 */
const BROKER = { host: '127.0.0.1', port: 1883 };
const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';

function brokerReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(BROKER);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const reachable = await brokerReachable();
const skip = reachable ? false : `no MQTT broker at ${BROKER.host}:${BROKER.port} (start mosquitto)`;
if (skip) console.log(`# skipped: ${skip}`);

describe('external MQTT broker (server.mqtt.broker_url, Mosquitto)', { skip }, () => {
  const prefix = `linus-test-${randomBytes(4).toString('hex')}/`;
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(
      offlineVoiceConfig(fake, {
        server: {
          // Mosquitto here takes any user name and password: Linus's own login is checked by the auth route below.
          mqtt: {
            enabled: true,
            broker_url: `mqtt://linus:s3cret@${BROKER.host}:${BROKER.port}`,
            topic_prefix: prefix,
          },
          udp: { port: 0 },
        },
      }),
    );
  });
  after(async () => {
    await server?.stop();
    await fake?.stop();
  });

  it("OTA hands out the broker and the device's own topics, named by its client id", async () => {
    const settings = await otaMqtt(server, 'aa:bb:cc:20:00:01');
    assert.equal(settings.endpoint, `${BROKER.host}:${BROKER.port}`);
    assert.equal(settings.client_id, 'GID_default@@@aa_bb_cc_20_00_01@@@aa_bb_cc_20_00_01');
    assert.equal(settings.publish_topic, `${prefix}device-server/${settings.client_id}`);
    assert.equal(settings.subscribe_topic, `${prefix}devices/p2p/${settings.client_id}`);
  });

  it('hello → typed turn with reply audio over UDP → goodbye, through the broker', async () => {
    fake.chat = { chunks: ['Through the broker.'] };
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:20:00:02'), true);
    const hello = await dev.hello();
    assert.equal(hello.transport, 'udp');
    assert.equal((hello.udp as Json).server, '127.0.0.1');
    // Microphone silence first: the server learns the device's UDP address from its packets.
    for (const p of dev.encodePcm(Buffer.from(silence(300).buffer))) dev.sendOpus(p);
    dev.send({ type: 'listen', state: 'detect', text: 'are you there' });
    assert.equal((await dev.next('stt', 10_000)).text, 'are you there');
    await dev.next(isStop, 20_000);
    await waitFor(() => dev.downlink.length > 0, 3000, 'reply audio over UDP');
    const decoder = createOpusDecoder(24000, 1);
    assert.ok(decoder.decode(dev.downlink[0]!.payload).length > 0);
    decoder.dispose();

    const connections = await metricValue(server, 'linus_connections');
    dev.goodbye(String(hello.session_id));
    await waitFor(async () => (await metricValue(server, 'linus_connections')) === connections - 1);
    // The device keeps its MQTT connection; a new hello opens a new session.
    const again = await dev.hello();
    assert.notEqual(again.session_id, hello.session_id);
    await dev.close();
  });

  it('linus simulate --transport mqtt does a typed turn through the broker', async () => {
    fake.chat = { chunks: ['Simulated and served.'] };
    const { code, stdout, stderr } = await runCli(
      [
        'simulate',
        '--transport',
        'mqtt',
        '--url',
        server.url('/xiaozhi/ota/'),
        '--type',
        'hello there',
        '--device-id',
        'aa:bb:cc:20:00:08',
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /tts: Simulated and served\./);
    assert.match(stdout, /first reply audio \d+ ms/);
  });

  it('a peer message from a WebSocket device reaches a device behind the broker', async () => {
    const mqtt = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:20:00:03'), true);
    await mqtt.hello();
    const ws = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:20:00:04' });
    await ws.hello();
    ws.send({ type: 'peer', to: ['aa:bb:cc:20:00:03'], payload: { text: 'over the broker' } });
    const msg = await mqtt.next((m) => m.type === 'peer' && m.event === 'message', 5000);
    assert.deepEqual(msg.payload, { text: 'over the broker' });
    await Promise.all([ws.close(), mqtt.close()]);
  });

  it('a message on the uplink topic that names no device is dropped and counted', async () => {
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'mqtt_unknown_device' });
    const stranger = await connectAsync(`mqtt://${BROKER.host}:${BROKER.port}`, { reconnectPeriod: 0 });
    await stranger.publishAsync(
      `${prefix}device-server/not-a-client-id`,
      JSON.stringify({ type: 'hello', version: 3, transport: 'udp' }),
    );
    await stranger.endAsync();
    await waitFor(
      async () =>
        (await metricValue(server, 'linus_bad_frames_total', { reason: 'mqtt_unknown_device' })) === before + 1,
    );
  });

  it("answers the broker's HTTP auth and ACL questions (EMQX): issued credentials and own topics only", async () => {
    const ask = async (path: string, body: Json): Promise<Json> => {
      const res = await fetch(server.url(path), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as Json;
    };
    const a = await otaMqtt(server, 'aa:bb:cc:20:00:06');
    const b = await otaMqtt(server, 'aa:bb:cc:20:00:07');
    const login = { clientid: a.client_id, username: a.username, password: a.password };
    assert.deepEqual(await ask('/mqtt/auth', login), { result: 'allow', is_superuser: false });
    assert.deepEqual(await ask('/mqtt/auth', { ...login, password: b.password }), { result: 'deny' });
    assert.deepEqual(await ask('/mqtt/auth', { ...login, clientid: b.client_id }), { result: 'deny' });
    // Linus's own login (the user and password of broker_url) may do anything; a wrong password may not.
    assert.deepEqual(await ask('/mqtt/auth', { clientid: 'linus-x', username: 'linus', password: 's3cret' }), {
      result: 'allow',
      is_superuser: true,
    });
    assert.equal((await ask('/mqtt/auth', { clientid: 'linus-x', username: 'linus', password: 's3' })).result, 'deny');
    const acl = (topic: string, action: string) =>
      ask('/mqtt/acl', { clientid: a.client_id, username: a.username, topic, action });
    assert.equal((await acl(a.publish_topic, 'publish')).result, 'allow');
    assert.equal((await acl(a.subscribe_topic!, 'subscribe')).result, 'allow');
    assert.equal((await acl(b.publish_topic, 'publish')).result, 'deny', "another device's topic");
    assert.equal((await acl(b.subscribe_topic!, 'subscribe')).result, 'deny');
    assert.equal((await acl(`${prefix}device-server/+`, 'subscribe')).result, 'deny');
    assert.equal((await acl(a.subscribe_topic!, 'publish')).result, 'deny', 'a device does not write its own inbox');
    for (const body of ['null', '[1]', '7']) {
      const res = await fetch(server.url('/mqtt/auth'), { method: 'POST', body });
      assert.deepEqual([res.status, await res.json()], [200, { result: 'deny' }], `body ${body}`);
    }
    // Only the broker may ask: an address outside server.mqtt.broker_auth_allow gets 403, whatever it sends.
    const config = server.ctx.config;
    const before = config.current;
    config.replace({
      ...before,
      server: { ...before.server, mqtt: { ...before.server.mqtt, broker_auth_allow: ['10.0.0.0/8'] } },
    });
    try {
      for (const path of ['/mqtt/auth', '/mqtt/acl']) {
        const res = await fetch(server.url(path), { method: 'POST', body: JSON.stringify(login) });
        assert.equal(res.status, 403, path);
        assert.match(((await res.json()) as { error: string }).error, /server\.mqtt\.broker_auth_allow/);
      }
    } finally {
      config.replace(before);
    }
    assert.equal((await ask('/mqtt/auth', login)).result, 'allow');
  });

  it('a server stop says goodbye with the session id to the device', async () => {
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:20:00:05'), true);
    const hello = await dev.hello();
    await server.stop();
    const goodbye = await dev.next('goodbye', 5000);
    assert.equal(goodbye.session_id, hello.session_id);
    await dev.close();
  });
});

/** A Mosquitto of this test's own on a free port (`-p`: loopback only, anonymous), so that it can be restarted. */
async function ownMosquitto(port: number): Promise<ChildProcess> {
  const child = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = tcpConnect({ host: '127.0.0.1', port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
    5000,
    `mosquitto on port ${port}`,
  );
  return child;
}

const stopped = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

const hasMosquitto = spawnSync('mosquitto', ['-h']).error === undefined;

describe('external MQTT broker restarted under Linus', { skip: hasMosquitto ? false : 'no mosquitto binary' }, () => {
  it('Linus reconnects and subscribes again: a device served before the restart is served after it', async () => {
    const port = await freePort();
    let broker = await ownMosquitto(port);
    const server = await startTestServer({
      server: { mqtt: { enabled: true, broker_url: `mqtt://127.0.0.1:${port}` }, udp: { port: 0 } },
    });
    try {
      const settings = await otaMqtt(server, 'aa:bb:cc:20:01:01');
      const first = await MqttTestDevice.connect(settings, true);
      await first.hello();
      await first.close();
      await stopped(broker);
      broker = await ownMosquitto(port);
      // Linus retries every 2 s; until it is back, a hello goes unanswered, so the device asks again.
      const again = await MqttTestDevice.connect(settings, true);
      const hello = await waitFor(() => again.hello().catch(() => undefined), 15_000, 'hello after the restart');
      assert.equal(hello.transport, 'udp');
      await again.close();
    } finally {
      await server.stop();
      await stopped(broker);
    }
  });
});

describe('external MQTT broker that cannot be reached', () => {
  it('fails the start with one line naming server.mqtt.broker_url', async () => {
    // Port 1: nothing listens there, the connection is refused.
    await assert.rejects(
      startTestServer({
        server: { mqtt: { enabled: true, broker_url: 'mqtt://127.0.0.1:1' }, udp: { port: 0 } },
      }),
      (err: unknown) => err instanceof StartupError && err.key === 'server.mqtt.broker_url',
    );
  });
});
