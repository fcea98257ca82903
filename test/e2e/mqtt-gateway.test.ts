import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeFrame } from '../../src/protocol/framing.js';
import { createOpusDecoder } from '../../src/voice/opus.js';
import { gatewayFrame, readGatewayFrame, TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { join16, offlineVoiceConfig, silence, speechPcm, streamPcm } from '../support/speech.js';
import { waitFor } from '../support/wait.js';

const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';

/**
 * Linus behind the official xiaozhi-mqtt-gateway: the gateway bridges each MQTT+UDP device to its chat server over
 * a WebSocket that carries `protocol-version: 2`, the device's ids, `authorization: Bearer test-token` and a hello
 * with `version: 2`, and frames audio with a 16-byte header of which only the timestamp and the payload length are
 * written. These tests frame exactly so.
 */
describe('behind the official MQTT gateway', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(offlineVoiceConfig(fake));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  /** Connects the way the gateway does for one device. */
  function gatewayLink(deviceId: string, query = '?from=mqtt_gateway'): Promise<TestDevice> {
    return TestDevice.connect({
      url: server.url(`/xiaozhi/v1/${query}`, 'ws'),
      deviceId,
      clientId: `${deviceId.replaceAll(':', '_')}`,
      protocolVersion: 2,
      token: 'test-token',
      framing: 'gateway',
    });
  }

  /** One spoken turn through the link; returns the downlink frames as the gateway reads them. */
  async function voiceTurn(link: TestDevice): Promise<{ timestamp: number; payload: Buffer }[]> {
    const hello = await link.hello({ version: 2 });
    assert.equal(hello.version, 2);
    link.send({ type: 'listen', state: 'start', mode: 'auto' });
    await streamPcm(link, join16(silence(500), speechPcm('what time is it'), silence(1500)));
    assert.equal((await link.next('stt', 10_000)).text, 'what time is it');
    await link.next(isStop, 15_000);
    const frames = link.binary.map(readGatewayFrame);
    assert.ok(frames.length > 5, `${frames.length} downlink frames`);
    const rate = (hello.audio_params as Json).sample_rate as number;
    const decoder = createOpusDecoder(rate, 1);
    for (const f of frames) assert.equal(decoder.decode(f.payload).length, (rate * 60) / 1000);
    decoder.dispose();
    return frames;
  }

  it('does a voice turn over a ?from=mqtt_gateway link with zeroed version/type fields, timestamps kept', async () => {
    fake.chat = { chunks: ['It is twelve o clock.'] };
    const rejectedBefore = await metricValue(server, 'linus_bad_frames_total');
    const link = await gatewayLink('aa:bb:cc:00:00:01');
    const frames = await voiceTurn(link);
    // Every uplink frame was taken: nothing counted as bad, no error reply.
    assert.equal(await metricValue(server, 'linus_bad_frames_total'), rejectedBefore);
    assert.equal(link.all('error').length, 0);
    // The gateway passes bytes 8–12 on to the device's UDP header: each frame carries its play position.
    for (let i = 1; i < frames.length; i++)
      assert.equal((frames[i]!.timestamp - frames[0]!.timestamp) >>> 0, i * 60, `frame ${i} timestamp`);
    assert.notEqual(frames[0]!.timestamp, 0);
    await link.close();
  });

  it('accepts the same framing on a plain Protocol-Version 2 link (the official gateway adds no ?from=)', async () => {
    fake.chat = { chunks: ['Noon.'] };
    const rejectedBefore = await metricValue(server, 'linus_bad_frames_total');
    const link = await gatewayLink('aa:bb:cc:00:00:02', '');
    await voiceTurn(link);
    assert.equal(await metricValue(server, 'linus_bad_frames_total'), rejectedBefore);
    await link.close();
  });

  it('still refuses and counts a frame whose length lies, on either kind of link', async () => {
    for (const query of ['?from=mqtt_gateway', '']) {
      const link = await gatewayLink('aa:bb:cc:00:00:03', query);
      await link.hello({ version: 2 });
      const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'binary_length_mismatch' });
      const lying = gatewayFrame(Buffer.from([0xf8, 1, 2, 3]), 0);
      lying.writeUInt32BE(400, 12);
      link.sendBinary(lying);
      const err = await link.next('error');
      assert.match(String(err.message), /length_mismatch/);
      assert.equal(
        await metricValue(server, 'linus_bad_frames_total', { reason: 'binary_length_mismatch' }),
        before + 1,
      );
      await link.close();
    }
  });

  it('a device-framed v2 link still refuses a version field that is neither 2 nor the gateway 0', async () => {
    const dev = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'v2-strict',
      protocolVersion: 2,
    });
    await dev.hello();
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'binary_bad_version' });
    const bad = encodeFrame(2, Buffer.from([0xf8, 1, 2]));
    bad.writeUInt16BE(7, 0);
    dev.sendBinary(bad);
    await waitFor(
      async () =>
        (await metricValue(server, 'linus_bad_frames_total', { reason: 'binary_bad_version' })) === before + 1,
    );
    await dev.close();
  });
});
