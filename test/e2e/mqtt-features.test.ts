import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { MqttTestDevice, otaMqtt, OWN_TRANSPORT } from '../support/mqtt-device.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue #15 §4: the session and the team features do not know the transport. A device over MQTT + UDP gets modes,
 * meetings, task lists, peer messages and MCP exactly as a WebSocket device does, and the two talk to each other.
 */

type AnyDevice = TestDevice | MqttTestDevice;
const isMcp = (method: string) => (m: Json) => m.type === 'mcp' && (m.payload as Json | undefined)?.method === method;
const isPeerMessage = (m: Json) => m.type === 'peer' && m.event === 'message';
const isPeerReceipt = (m: Json) => m.type === 'peer' && m.status === 'done';
const isSnapshot = (title: string) => (m: Json) =>
  m.type === 'workflow' &&
  m.event === 'update' &&
  Array.isArray(m.tasks) &&
  (m.tasks as Json[]).some((t) => t.title === title);

const MINUTES = JSON.stringify({
  title: 'Beta planning',
  bullets: ['Ship the beta'],
  decisions: ['Friday'],
  actions: ['Write release notes'],
  risks: [],
  nextSteps: ['Collect feedback'],
});

describe('MQTT + UDP devices get every session and team feature', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  const open: AnyDevice[] = [];
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer({
      ...OWN_TRANSPORT,
      selected_module: { LLM: 'Fake' },
      LLM: { Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'fake', api_key: 'k', timeout_ms: 5000 } },
      meeting: { disable_tts: true },
      peer: { enabled: true, allow_all: true },
    });
  });
  after(async () => {
    await Promise.all(open.map((d) => d.close()));
    await server.stop();
    await fake.stop();
  });

  const mqttDevice = async (mac: string): Promise<MqttTestDevice> => {
    const dev = await MqttTestDevice.connect(await otaMqtt(server, mac));
    open.push(dev);
    await dev.hello();
    return dev;
  };
  const wsDevice = async (deviceId: string): Promise<TestDevice> => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
    open.push(dev);
    await dev.hello();
    return dev;
  };

  it('modes and a meeting: mode start, snippets acked, finalize, summary, mode end', async () => {
    const dev = await mqttDevice('e1:00:00:00:00:01');
    dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
    assert.deepEqual(await dev.next((m) => m.type === 'mode' && m.state === 'start'), {
      type: 'mode',
      status: 'ok',
      state: 'start',
      mode: 'meeting',
    });
    const texts = ['We ship the beta on Friday', 'Li writes the release notes'];
    for (const [i, text] of texts.entries()) {
      dev.send({ type: 'meeting', phase: 'snippet', items: [{ tag: `s${i}`, text }] });
      const ack = await dev.next((m) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined);
      assert.equal(ack.status, 'ok');
      assert.equal(ack.accepted, 1);
    }
    fake.chat = { chunks: [MINUTES] };
    dev.send({ type: 'meeting', phase: 'finalize' });
    const summary = await dev.next(
      (m) => m.type === 'meeting' && m.phase === 'summary' && m.checkpoint === false,
      10_000,
    );
    assert.equal(summary.title, 'Beta planning');
    assert.equal(summary.sourceSegments, 2);
    const prompt = JSON.stringify(fake.last('/v1/chat/completions').body);
    for (const t of texts) assert.ok(prompt.includes(t), `the summary prompt has "${t}"`);

    dev.send({ type: 'mode', state: 'start', mode: 'working' });
    assert.equal((await dev.next((m) => m.type === 'mode' && m.mode === 'working')).status, 'ok');
    dev.send({ type: 'mode', state: 'end', mode: 'working' });
    assert.equal((await dev.next((m) => m.type === 'mode' && m.state === 'end')).status, 'ok');
  });

  it('a task-list update from a WebSocket device reaches an MQTT device of its group', async () => {
    const group = 'e2:00:0a';
    const ws = await wsDevice(`${group}:00:01`);
    const mqtt = await mqttDevice(`${group}:00:02`);
    ws.send({ type: 'workflow', event: 'update', tasks: [{ id: 'm1', title: 'Flash the boards', priority: 1 }] });
    const snap = await mqtt.next(isSnapshot('Flash the boards'), 5000);
    assert.equal(snap.groupKey, group);
    // And back: the MQTT device completes it, the WebSocket device sees the new list.
    mqtt.send({ type: 'workflow', event: 'complete', ids: ['m1'] });
    const done = await ws.next(
      (m) => isSnapshot('Flash the boards')(m) && (m.tasks as Json[]).some((t) => t.id === 'm1' && t.status === 'done'),
      5000,
    );
    assert.equal(done.groupKey, group);
  });

  it('peer messages between a WebSocket device and an MQTT device, both directions', async () => {
    const ws = await wsDevice('e3:00:00:00:00:01');
    const mqtt = await mqttDevice('e3:00:00:00:00:02');

    ws.send({ type: 'peer', to: ['E3:00:00:00:00:02'], payload: { text: 'to the mqtt one' } });
    const atMqtt = await mqtt.next(isPeerMessage, 5000);
    assert.equal(atMqtt.from, 'e3:00:00:00:00:01');
    assert.deepEqual(atMqtt.payload, { text: 'to the mqtt one' });
    assert.deepEqual((await ws.next(isPeerReceipt)).delivered, ['e3:00:00:00:00:02']);

    mqtt.send({ type: 'peer', to: ['e3:00:00:00:00:01'], payload: { text: 'to the websocket one' } });
    const atWs = await ws.next(isPeerMessage, 5000);
    assert.equal(atWs.from, 'e3:00:00:00:00:02');
    assert.deepEqual(atWs.payload, { text: 'to the websocket one' });
    assert.deepEqual((await mqtt.next(isPeerReceipt)).delivered, ['e3:00:00:00:00:01']);
  });

  it('the embedded broker checks devices itself: no broker auth routes for an external broker', async () => {
    const res = await fetch(server.url('/mqtt/auth'), { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
  });

  it('MCP: initialize and tools/list over MQTT, then a tool call the server makes is answered', async () => {
    const dev = await mqttDevice('e4:00:00:00:00:01');
    const init = (await dev.next(isMcp('initialize'))).payload as Json;
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: init.id,
        result: { protocolVersion: '2024-11-05', capabilities: { tools: {} }, serverInfo: { name: 'b', version: '1' } },
      },
    });
    const list = (await dev.next(isMcp('tools/list'))).payload as Json;
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: list.id,
        result: { tools: [{ name: 'self.audio_speaker.set_volume', inputSchema: { type: 'object' } }], nextCursor: '' },
      },
    });
    const session = await waitFor(() =>
      [...server.sessions].find((s) => s.deviceId === 'e4:00:00:00:00:01' && s.mcp.ready),
    );
    assert.deepEqual(
      session.mcp.tools.map((t) => t.name),
      ['self.audio_speaker.set_volume'],
    );
    const call = session.mcp.callTool('self.audio_speaker.set_volume', { volume: 30 }, 3000);
    const req = (await dev.next(isMcp('tools/call'))).payload as Json;
    assert.deepEqual((req.params as Json).arguments, { volume: 30 });
    dev.send({ type: 'mcp', payload: { jsonrpc: '2.0', id: req.id, result: { content: [], isError: false } } });
    assert.deepEqual(await call, { content: [], isError: false });
  });
});
