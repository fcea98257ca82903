import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { StartupError } from '../../src/server.js';
import { createOpusDecoder } from '../../src/voice/opus.js';
import type { Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { MqttTestDevice, otaMqtt, OWN_TRANSPORT } from '../support/mqtt-device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { join16, offlineVoiceConfig, silence, speechPcm, streamPcm } from '../support/speech.js';
import { waitFor } from '../support/wait.js';

const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';

const bad = (server: TestServer, reason: string): Promise<number> =>
  metricValue(server, 'linus_bad_frames_total', { reason });

/** A second of silence from the device, so the server has learnt its UDP address (as a listening device would). */
async function someSilence(dev: MqttTestDevice): Promise<void> {
  for (const p of dev.encodePcm(Buffer.from(silence(300).buffer))) dev.sendOpus(p);
}

describe('built-in MQTT + UDP transport (server.mqtt.enabled)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(offlineVoiceConfig(fake, OWN_TRANSPORT));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('OTA → CONNECT → hello → voice turn over UDP (frames decrypt and decode) → goodbye', async () => {
    fake.chat = { chunks: ['It is twelve o clock.'] };
    const settings = await otaMqtt(server, 'aa:bb:cc:10:00:01');
    assert.equal(settings.endpoint.split(':')[0], '127.0.0.1', 'the endpoint is the host the device reached OTA at');
    const dev = await MqttTestDevice.connect(settings);
    const hello = await dev.hello();
    assert.equal(hello.transport, 'udp');
    const udp = hello.udp as Json;
    assert.equal(udp.server, '127.0.0.1');
    assert.equal(typeof udp.port, 'number');
    assert.match(String(udp.key), /^[0-9a-f]{32}$/);
    assert.match(String(udp.nonce), /^01[0-9a-f]{30}$/);
    assert.equal(typeof hello.session_id, 'string');

    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    await streamPcm(dev, join16(silence(500), speechPcm('what time is it'), silence(1500)));
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    await dev.next(isStop, 15_000);
    await waitFor(() => dev.downlink.length > 5, 3000, 'downlink audio');
    const rate = (hello.audio_params as Json).sample_rate as number;
    const decoder = createOpusDecoder(rate, 1);
    for (const p of dev.downlink) assert.equal(decoder.decode(p.payload).length, (rate * 60) / 1000);
    decoder.dispose();
    // Sequence numbers count up from 1; timestamps are the frames' play positions.
    assert.deepEqual(
      dev.downlink.map((p) => p.sequence),
      dev.downlink.map((_, i) => i + 1),
    );
    for (let i = 1; i < dev.downlink.length; i++)
      assert.equal((dev.downlink[i]!.timestamp - dev.downlink[0]!.timestamp) >>> 0, i * 60);

    const connectionsBefore = await metricValue(server, 'linus_connections');
    dev.goodbye(String(hello.session_id));
    await waitFor(async () => (await metricValue(server, 'linus_connections')) === connectionsBefore - 1);
    // The MQTT connection stays; a new hello opens a new session with a new key.
    const again = await dev.hello();
    assert.notEqual((again.udp as Json).key, udp.key);
    assert.notEqual(again.session_id, hello.session_id);
    await dev.close();
  });

  it('refuses a wrong password at CONNECT and counts it', async () => {
    const settings = await otaMqtt(server, 'aa:bb:cc:10:00:02');
    const before = await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'auth' });
    await assert.rejects(
      MqttTestDevice.connect({ ...settings, password: 'not-the-password' }),
      /Bad username or password/i,
    );
    const other = await otaMqtt(server, 'aa:bb:cc:10:00:03');
    await assert.rejects(
      MqttTestDevice.connect({ ...settings, password: other.password }),
      /Bad username or password/i,
    );
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'auth' }), before + 2);
  });

  it('drops and counts replayed, forged and random datagrams; the session goes on', async () => {
    fake.chat = { chunks: ['Still here.'] };
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:10:00:04'));
    const hello = await dev.hello();
    await someSilence(dev);
    const captured = dev.sent.at(-1)!;

    const stale = await bad(server, 'udp_stale_sequence');
    dev.sendDatagram(captured); // a replay: its sequence number was already taken
    await waitFor(async () => (await bad(server, 'udp_stale_sequence')) === stale + 1);

    // Same session, a sequence number far ahead (a forger who saw the ssrc): refused, and the device's own
    // next packets are still taken (checked by the turn below).
    const jumps = await bad(server, 'udp_sequence_jump');
    const leap = Buffer.from(captured);
    leap.writeUInt32BE((leap.readUInt32BE(12) + 5000) >>> 0, 12);
    dev.sendDatagram(leap);
    await waitFor(async () => (await bad(server, 'udp_sequence_jump')) === jumps + 1);

    const unknown = await bad(server, 'udp_unknown_session');
    const forged = Buffer.from(captured);
    forged.writeUInt32BE((forged.readUInt32BE(4) + 1) >>> 0, 4); // another ssrc
    forged.writeUInt32BE(0xfffffff0, 12);
    dev.sendDatagram(forged);
    await waitFor(async () => (await bad(server, 'udp_unknown_session')) === unknown + 1);

    // 1,000 random datagrams from a stranger: nothing crashes, nothing reaches the session.
    const stranger = createSocket('udp4');
    const port = (hello.udp as Json).port as number;
    for (let i = 0; i < 1000; i++) stranger.send(randomBytes(1 + (i % 300)), port, '127.0.0.1');
    await new Promise<void>((r) => stranger.send(Buffer.alloc(0), port, '127.0.0.1', () => r()));
    stranger.close();

    dev.send({ type: 'listen', state: 'detect', text: 'are you there' });
    await dev.next(isStop, 20_000);
    await waitFor(() => dev.downlink.length > 0, 3000, 'downlink audio after the noise');
    await dev.close();
  });

  it('follows a device whose UDP source port changes (NAT rebinding)', async () => {
    fake.chat = { chunks: ['Found you again.'] };
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:10:00:05'));
    await dev.hello();
    await someSilence(dev);
    const oldPort = dev.udpPort;
    await dev.rebind();
    assert.notEqual(dev.udpPort, oldPort);
    await someSilence(dev);
    dev.send({ type: 'listen', state: 'detect', text: 'where am i' });
    await dev.next(isStop, 20_000);
    await waitFor(() => dev.downlink.length > 0, 3000, 'downlink audio at the new port');
    await dev.close();
  });

  it('a second MQTT connection of the same client id takes over', async () => {
    const settings = await otaMqtt(server, 'aa:bb:cc:10:00:06');
    const first = await MqttTestDevice.connect(settings);
    await first.hello();
    const firstClosed = new Promise<void>((r) => first.client.once('close', () => r()));
    const second = await MqttTestDevice.connect(settings);
    await firstClosed;
    const hello = await second.hello();
    assert.equal(hello.transport, 'udp');
    await second.close();
    await first.close();
  });
});

describe('MQTT + UDP: idle close, flood and guessing limits', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      ...OWN_TRANSPORT,
      close_connection_no_voice_time: 1,
      server: {
        ...OWN_TRANSPORT.server,
        idle_warning_ms: 0,
        max_messages_per_second: 20,
        failed_secrets: { limit: 2, backoff_ms: 60_000 },
      },
    });
  });
  after(() => server.stop());

  it('sends goodbye with the session id, and the MQTT connection stays usable', async () => {
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:10:00:07'));
    const hello = await dev.hello();
    const goodbye = await dev.next('goodbye', 5000);
    assert.equal(goodbye.session_id, hello.session_id);
    assert.equal((await dev.hello()).transport, 'udp');
    await dev.close();
  });

  it('a hello flood is cut at server.max_messages_per_second: the rest are dropped and counted, not opened', async () => {
    const dev = await MqttTestDevice.connect(await otaMqtt(server, 'aa:bb:cc:10:00:09'));
    const opened0 = await metricValue(server, 'linus_connections_total');
    const limited0 = await metricValue(server, 'linus_bad_frames_total', { reason: 'rate_limited' });
    for (let i = 0; i < 100; i++) dev.send({ type: 'hello', version: 3, transport: 'udp' });
    const counts = async (): Promise<{ opened: number; limited: number }> => ({
      opened: (await metricValue(server, 'linus_connections_total')) - opened0,
      limited: (await metricValue(server, 'linus_bad_frames_total', { reason: 'rate_limited' })) - limited0,
    });
    await waitFor(async () => {
      const c = await counts();
      return c.opened + c.limited === 100;
    });
    // 100 hellos sent at once against 20 per second: some are refused, and every other one opened a session.
    assert.ok((await counts()).limited > 0);
    await dev.close();
  });
  // Last in this suite: it leaves 127.0.0.1 backing off.
  it('wrong passwords from one address back it off: then even the right one is refused for a while', async () => {
    const settings = await otaMqtt(server, 'aa:bb:cc:10:00:0a');
    const throttled = await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'throttled' });
    for (let i = 0; i < 2; i++)
      await assert.rejects(
        MqttTestDevice.connect({ ...settings, password: `guess-${i}` }),
        /Bad username or password/i,
      );
    await assert.rejects(MqttTestDevice.connect(settings), /Server unavailable/i);
    assert.equal(await metricValue(server, 'linus_rejected_upgrades_total', { reason: 'throttled' }), throttled + 1);
  });
});

describe('MQTT + UDP: a port in use', () => {
  it('fails the start with one line naming server.mqtt.port', async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const port = (squatter.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startTestServer({ server: { mqtt: { enabled: true, port }, udp: { port: 0 } } }),
        (err: unknown) =>
          err instanceof StartupError && err.key === 'server.mqtt.port' && /EADDRINUSE/.test(err.message),
      );
    } finally {
      squatter.close();
    }
  });
});
