import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MCP_INITIALIZE_ID, MCP_TOOLS_LIST_ID_BASE, TOOL_CALL_ID_BASE } from '../../src/protocol/mcp.js';
import { TestDevice, type Json } from '../support/device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

describe('session: hello, MCP, legacy messages', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const connect = (deviceId: string, extra: Partial<Parameters<typeof TestDevice.connect>[0]> = {}) =>
    TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId, clientId: `${deviceId}-client`, ...extra });

  it('answers hello with the rate it really encodes at, never an echo of the client params (D4)', async (t) => {
    const dev = await connect('aa:bb:cc:00:00:01');
    const t0 = performance.now();
    const hello = await dev.hello();
    const elapsed = performance.now() - t0;
    assert.equal(hello.transport, 'websocket');
    assert.equal(typeof hello.session_id, 'string');
    assert.deepEqual(hello.audio_params, { format: 'opus', sample_rate: 24000, channels: 1, frame_duration: 60 });
    t.diagnostic(`hello answered in ${elapsed.toFixed(1)} ms`);
    await dev.close();
  });

  it('a hello with a sample rate Opus cannot decode is refused, naming the field and the allowed rates', async (t) => {
    // A server of its own: the refused hellos count as bad frames, which other tests here expect to be none.
    const own = await startTestServer();
    t.after(() => own.stop());
    const dev = await TestDevice.connect({ url: own.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:00:00:0a' });
    for (const rate of [44100, 7, 1e9]) {
      dev.send(
        dev.helloMessage({ audio_params: { format: 'opus', sample_rate: rate, channels: 1, frame_duration: 60 } }),
      );
      const err = await dev.next('error');
      assert.equal(err.for, 'hello');
      assert.match(
        String(err.message),
        new RegExp(
          `audio_params\\.sample_rate: ${rate} is not a rate Opus decodes; use one of 8000, 12000, 16000, 24000, 48000`,
        ),
      );
      // The error replies are throttled to one per second per code: the next bad hello must not fall in the window.
      await sleep(1100);
    }
    assert.equal(dev.all('hello').length, 0, 'no hello answer to a refused hello');
    const hello = await dev.hello();
    assert.equal(typeof hello.session_id, 'string', 'a corrected hello is answered on the same connection');
    await dev.close();
  });

  it('hello is idempotent: a repeated hello keeps the session id and does not restart MCP', async () => {
    const dev = await connect('aa:bb:cc:00:00:02');
    const first = await dev.hello();
    await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'initialize');
    const second = await dev.hello();
    assert.equal(second.session_id, first.session_id);
    await sleep(100);
    assert.equal(dev.all((m) => m.type === 'mcp' && (m.payload as Json).method === 'initialize').length, 1);
    await dev.close();
  });

  it('initializes MCP with a numeric id and vision capability, pages tools/list, keeps tool-call ids disjoint (A2)', async () => {
    const dev = await connect('aa:bb:cc:00:00:03');
    await dev.hello();
    const init = (await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'initialize'))
      .payload as Json;
    assert.equal(init.id, MCP_INITIALIZE_ID);
    const vision = ((init.params as Json).capabilities as Json).vision as Json;
    assert.match(String(vision.url), /^http:\/\/127\.0\.0\.1:\d+\/mcp\/vision\/explain$/);
    assert.match(String(vision.token), /^[\w-]+\.\d+$/);
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: init.id,
        result: {
          protocolVersion: '2024-11-05',
          capabilities: { tools: {} },
          serverInfo: { name: 'board', version: '1' },
        },
      },
    });

    const page1 = (await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/list'))
      .payload as Json;
    assert.equal(typeof page1.id, 'number');
    assert.equal(page1.params, undefined);
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: page1.id,
        result: {
          tools: [{ name: 'self.get_device_status', description: 'status', inputSchema: { type: 'object' } }],
          nextCursor: 'self.audio_speaker.set_volume',
        },
      },
    });
    const page2 = (await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/list'))
      .payload as Json;
    assert.deepEqual(page2.params, { cursor: 'self.audio_speaker.set_volume' });
    assert.notEqual(page2.id, page1.id);
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: page2.id,
        result: { tools: [{ name: 'self.audio_speaker.set_volume', inputSchema: { type: 'object' } }], nextCursor: '' },
      },
    });

    const session = await waitFor(() =>
      [...server.sessions].find((s) => s.deviceId === 'aa:bb:cc:00:00:03' && s.mcp.ready),
    );
    assert.deepEqual(
      session.mcp.tools.map((t) => t.name),
      ['self.get_device_status', 'self.audio_speaker.set_volume'],
    );

    const call = session.mcp.callTool('self.audio_speaker.set_volume', { volume: 50 }, 2000);
    const req = (await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/call'))
      .payload as Json;
    assert.ok(
      typeof req.id === 'number' && req.id >= TOOL_CALL_ID_BASE,
      `tool-call id ${String(req.id)} is outside the control range`,
    );
    assert.ok(![MCP_INITIALIZE_ID, page1.id, page2.id].includes(req.id as number));
    assert.ok((req.id as number) > MCP_TOOLS_LIST_ID_BASE);
    dev.send({
      type: 'mcp',
      payload: { jsonrpc: '2.0', id: req.id, result: { content: [{ type: 'text', text: 'true' }], isError: false } },
    });
    assert.deepEqual(await call, { content: [{ type: 'text', text: 'true' }], isError: false });

    // A device error reply (no code, as the firmware sends it) rejects the call.
    const failing = session.mcp.callTool('self.camera.take_photo', {}, 2000);
    const req2 = (await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/call'))
      .payload as Json;
    assert.notEqual(req2.id, req.id);
    dev.send({ type: 'mcp', payload: { jsonrpc: '2.0', id: req2.id, error: { message: 'no camera' } } });
    await assert.rejects(failing, /no camera/);
    await dev.close();
  });

  it('a pending tool call is rejected when the device disconnects', async () => {
    const dev = await connect('aa:bb:cc:00:00:04');
    await dev.hello();
    const session = await waitFor(() => [...server.sessions].find((s) => s.deviceId === 'aa:bb:cc:00:00:04'));
    const rejected = assert.rejects(session.mcp.callTool('self.get_device_status', {}, 5000), /closed/);
    await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/call');
    await dev.close();
    await rejected;
  });

  it('stores legacy iot descriptors and states, acks config_update as a no-op (A11)', async () => {
    const dev = await connect('aa:bb:cc:00:00:05');
    await dev.hello();
    dev.send({
      type: 'iot',
      update: true,
      descriptors: [
        {
          name: 'Speaker',
          description: 'speaker',
          properties: { volume: { description: 'v', type: 'number' } },
          methods: {},
        },
      ],
    });
    dev.send({ type: 'iot', update: true, states: [{ name: 'Speaker', state: { volume: 50 } }] });
    dev.send({ type: 'config_update', config: { a: 1 } });
    const ack = await dev.next('config_update');
    assert.deepEqual(ack, { type: 'config_update', status: 'ok', noop: true });
    const session = [...server.sessions].find((s) => s.deviceId === 'aa:bb:cc:00:00:05')!;
    assert.equal(session.iot.descriptors.get('Speaker')?.description, 'speaker');
    assert.deepEqual(session.iot.states.get('Speaker'), { volume: 50 });
    await dev.close();
  });

  it('browser clients: ids from the query, hello without version or audio_params', async () => {
    const dev = await connect('Browser-Client-1', { style: 'browser' });
    const hello = await dev.hello();
    assert.equal(hello.type, 'hello');
    assert.equal((hello.audio_params as Json).sample_rate, 24000);
    const session = await waitFor(() => [...server.sessions].find((s) => s.deviceId === 'browser-client-1'));
    assert.equal(session.info.ids.source, 'query');
    assert.equal(session.clientId, 'browser-client-1-client');
    // features.mcp false: no initialize is sent.
    await sleep(50);
    assert.equal(dev.all('mcp').length, 0);
    await dev.close();
  });

  it('abort with nothing playing still answers tts stop at once', async () => {
    const dev = await connect('aa:bb:cc:00:00:06');
    const hello = await dev.hello();
    dev.send({ type: 'abort', reason: 'wake_word_detected' });
    const stop = await dev.next('tts');
    assert.deepEqual(stop, { type: 'tts', state: 'stop', session_id: hello.session_id });
    await dev.close();
  });

  it('seed #16: audio, hello and MCP in the same burst right after connect are all handled, nothing dropped', async () => {
    const dev = await connect('aa:bb:cc:00:00:07', { protocolVersion: 3 });
    const frames: Buffer[] = [];
    const registered = waitFor(() => [...server.sessions].find((s) => s.deviceId === 'aa:bb:cc:00:00:07'));
    const session = await registered;
    session.voice = {
      onAudio: (_s, f) => frames.push(Buffer.from(f.payload)),
      onListen: () => {},
      onAbort: () => {},
    };
    const packets = dev.encodePcm(Buffer.alloc(1920 * 3));
    for (const p of packets) dev.sendOpus(p);
    dev.send(dev.helloMessage());
    dev.send({ type: 'ping' });
    await dev.next('hello');
    await dev.next('pong');
    await waitFor(() => frames.length === packets.length, 2000, 'all audio frames');
    assert.deepEqual(frames, packets);
    assert.equal(await metricValue(server, 'linus_bad_frames_total'), 0);
    await dev.close();
  });

  it('seed #1: fifty devices connecting at once all get their hello', async () => {
    const devices = await Promise.all(Array.from({ length: 50 }, (_, i) => connect(`burst-${i}`)));
    const hellos = await Promise.all(devices.map((d) => d.hello()));
    assert.equal(new Set(hellos.map((h) => h.session_id)).size, 50);
    await Promise.all(devices.map((d) => d.close()));
  });
});
