import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeFrame, type ProtocolVersion } from '../../src/protocol/framing.js';
import type { Session } from '../../src/session/session.js';
import { TestDevice, tonePcm } from '../support/device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

/** Bad input gets a clear, counted answer and never costs the connection (A10). */
describe('bad input and limits (A10)', () => {
  let server: TestServer;
  let n = 0;
  before(async () => {
    server = await startTestServer({
      server: { max_frame_bytes: 4096, max_frame_hard_bytes: 65536, max_messages_per_second: 50 },
    });
  });
  after(() => server.stop());

  const connect = async (version: ProtocolVersion = 1) => {
    const dev = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: `limits-${n++}`,
      protocolVersion: version,
    });
    await dev.hello();
    return dev;
  };
  const stillAlive = async (dev: TestDevice) => {
    dev.send({ type: 'ping' });
    assert.equal((await dev.next('pong')).type, 'pong');
  };

  it('bad JSON → BAD_JSON error, counted, connection kept', async () => {
    const dev = await connect();
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'bad_json' });
    dev.sendText('{"type": "hello", oops');
    const err = await dev.next('error');
    assert.equal(err.code, 'BAD_JSON');
    assert.match(String(err.message), /not valid JSON/);
    assert.equal(await metricValue(server, 'linus_bad_frames_total', { reason: 'bad_json' }), before + 1);
    await stillAlive(dev);
    await dev.close();
  });

  it('JSON without a type → NO_TYPE; a bare number is echoed as the reference does', async () => {
    const dev = await connect();
    dev.sendText('[1,2,3]');
    assert.equal((await dev.next('error')).code, 'NO_TYPE');
    dev.sendText('12345');
    await waitFor(() => dev.rawText.includes('12345'), 2000, 'number echo');
    await stillAlive(dev);
    await dev.close();
  });

  it('unknown types are counted and ignored, with no reply', async () => {
    const dev = await connect();
    const before = await metricValue(server, 'linus_unknown_messages_total');
    dev.send({ type: 'definitely_unknown', x: 1 });
    await stillAlive(dev);
    assert.equal(await metricValue(server, 'linus_unknown_messages_total'), before + 1);
    assert.equal(dev.all('error').length, 0);
    await dev.close();
  });

  it('a message that fails its schema → SCHEMA_INVALID naming the field', async () => {
    const dev = await connect();
    dev.send({ type: 'listen', state: 'sideways' });
    const err = await dev.next('error');
    assert.equal(err.code, 'SCHEMA_INVALID');
    assert.equal(err.for, 'listen');
    assert.match(String(err.message), /state/);
    await stillAlive(dev);
    await dev.close();
  });

  it('frames over server.max_frame_bytes → FRAME_TOO_LARGE, dropped, connection kept', async () => {
    const dev = await connect();
    dev.send({ type: 'iot', descriptors: [{ name: 'x'.repeat(5000) }] });
    const err = await dev.next('error');
    assert.equal(err.code, 'FRAME_TOO_LARGE');
    assert.ok((await metricValue(server, 'linus_bad_frames_total', { reason: 'too_large' })) >= 1);
    await stillAlive(dev);
    await dev.close();
  });

  it('frames over the hard limit close the socket with 1009 instead of being buffered, and are counted', async () => {
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'over_hard_limit' });
    const dev = await connect();
    dev.sendBinary(Buffer.alloc(70_000));
    const closed = await dev.closed;
    assert.equal(closed.code, 1009);
    await waitFor(
      async () => (await metricValue(server, 'linus_bad_frames_total', { reason: 'over_hard_limit' })) === before + 1,
      2000,
      'over_hard_limit counted',
    );
  });

  it('a text frame that is not UTF-8 closes the socket with 1007 and is counted', async () => {
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'invalid_utf8' });
    const dev = await connect();
    dev.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    assert.equal((await dev.closed).code, 1007);
    await waitFor(
      async () => (await metricValue(server, 'linus_bad_frames_total', { reason: 'invalid_utf8' })) === before + 1,
      2000,
      'invalid_utf8 counted',
    );
  });

  it('a WebSocket framing error (reserved opcode, unmasked frame) closes the socket with 1002 and is counted', async () => {
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'ws_protocol' });
    const frames = [Buffer.from([0x83, 0x80, 1, 2, 3, 4]), Buffer.from([0x81, 0x02, 0x68, 0x69])];
    for (const raw of frames) {
      const dev = await connect();
      (dev.ws as unknown as { _socket: Socket })._socket.write(raw);
      assert.equal((await dev.closed).code, 1002);
    }
    await waitFor(
      async () =>
        (await metricValue(server, 'linus_bad_frames_total', { reason: 'ws_protocol' })) === before + frames.length,
      2000,
      'ws_protocol counted',
    );
  });

  it('peer, workflow and coding messages that fail their own checks are counted as schema errors', async () => {
    const dev = await connect();
    const before = await metricValue(server, 'linus_bad_frames_total', { reason: 'schema' });
    dev.send({ type: 'peer', to: 'not-a-list', payload: { text: 'hi' } });
    assert.equal((await dev.next((m) => m.type === 'peer' && m.status === 'error')).code, 'INVALID_REQUEST');
    dev.send({ type: 'workflow', event: 'explode' });
    assert.equal((await dev.next((m) => m.type === 'workflow' && m.status === 'error')).code, 'SCHEMA_INVALID');
    dev.send({ type: 'coding', event: 5 });
    assert.equal((await dev.next((m) => m.type === 'coding' && m.status === 'error')).code, 'SCHEMA_INVALID');
    assert.equal(await metricValue(server, 'linus_bad_frames_total', { reason: 'schema' }), before + 3);
    await stillAlive(dev);
    await dev.close();
  });

  it('a v2/v3 header with a lying length → BAD_FRAME, counted, connection kept', async () => {
    for (const version of [2, 3] as const) {
      const dev = await connect(version);
      const frame = encodeFrame(version, Buffer.from([1, 2, 3, 4]));
      if (version === 2) frame.writeUInt32BE(999, 12);
      else frame.writeUInt16BE(999, 2);
      dev.sendBinary(frame);
      const err = await dev.next('error');
      assert.equal(err.code, 'BAD_FRAME');
      assert.match(String(err.message), /length_mismatch/);
      await stillAlive(dev);
      await dev.close();
    }
    assert.ok((await metricValue(server, 'linus_bad_frames_total', { reason: 'binary_length_mismatch' })) >= 2);
  });

  it('over max_messages_per_second → frames dropped with one RATE_LIMITED reply, connection kept', async () => {
    const dev = await connect();
    for (let i = 0; i < 120; i++) dev.send({ type: 'ping' });
    const err = await dev.next('error');
    assert.equal(err.code, 'RATE_LIMITED');
    await sleep(200);
    const pongs = dev.all('pong').length;
    assert.ok(pongs <= 50, `${pongs} pongs for 120 pings at a 50/s limit`);
    assert.equal(dev.all('error').filter((e) => e.code === 'RATE_LIMITED').length, 1, 'error replies are throttled');
    await sleep(1000);
    await stillAlive(dev);
    await dev.close();
  });

  it('binary audio before hello is accepted with the default parameters (D4)', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'early-audio' });
    const session = await waitFor(() => [...server.sessions].find((s) => s.deviceId === 'early-audio'));
    const got: Buffer[] = [];
    session.voice = { onAudio: (_s, f) => got.push(f.payload), onListen: () => {}, onAbort: () => {} };
    const packets = dev.encodePcm(tonePcm(180));
    for (const p of packets) dev.sendOpus(p);
    await waitFor(() => got.length === packets.length, 2000, 'audio before hello');
    assert.equal(session.uplink.sampleRate, 16000);
    assert.equal(dev.all('error').length, 0);
    await dev.close();
  });
});

describe('binary framing end to end, both directions (D3)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  for (const version of [1, 2, 3] as const) {
    it(`v${version}: uplink Opus reaches the session intact, downlink audio arrives framed v${version}`, async () => {
      // The firmware announces the version in the header and repeats it in hello.
      const dev = await TestDevice.connect({
        url: server.url('/xiaozhi/v1/', 'ws'),
        deviceId: `framing-v${version}`,
        protocolVersion: version,
      });
      const session: Session = await waitFor(() =>
        [...server.sessions].find((s) => s.deviceId === `framing-v${version}`),
      );
      const got: { payload: Buffer; ts: number }[] = [];
      session.voice = {
        onAudio: (_s, f) => got.push({ payload: Buffer.from(f.payload), ts: f.timestamp }),
        onListen: () => {},
        onAbort: () => {},
      };
      const hello = await dev.hello();
      assert.equal(hello.version, version);
      const packets = dev.encodePcm(tonePcm(600));
      packets.forEach((p, i) => dev.sendOpus(p, i * 60));
      await waitFor(() => got.length === packets.length, 2000, 'uplink frames');
      assert.deepEqual(
        got.map((g) => g.payload),
        packets,
      );
      if (version === 2)
        assert.deepEqual(
          got.map((g) => g.ts),
          packets.map((_, i) => i * 60),
        );

      for (const p of packets) assert.equal(session.send.audio(p), true);
      await waitFor(() => dev.binary.length === packets.length, 2000, 'downlink frames');
      assert.deepEqual(dev.receivedOpus(), packets);
      await dev.close();
    });
  }

  it('hello.version selects the framing when the header is absent (browser style)', async () => {
    const dev = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'browser-v3',
      style: 'browser',
    });
    dev.version = 3;
    const hello = await dev.hello({ version: 3 });
    assert.equal(hello.version, 3);
    const session = [...server.sessions].find((s) => s.deviceId === 'browser-v3')!;
    assert.equal(session.protocolVersion, 3);
    session.send.audio(Buffer.from([9, 9, 9]));
    await waitFor(() => dev.binary.length === 1);
    assert.deepEqual([...dev.binary[0]!], [0, 0, 0, 3, 9, 9, 9]);
    await dev.close();
  });
});
