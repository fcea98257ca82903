import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Session } from '../../src/session/session.js';
import { TestDevice } from '../support/device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

const sessionOf = (server: TestServer, deviceId: string): Promise<Session> =>
  waitFor(() => [...server.sessions].find((s) => s.deviceId === deviceId && !s.closed), 2000, `session of ${deviceId}`);

describe('heartbeat (A4, seed #11)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { ws_ping_interval_ms: 100 } });
  });
  after(() => server.stop());

  it('ping and keepalive each get exactly one pong', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'hb-1' });
    await dev.hello();
    dev.send({ type: 'ping' });
    dev.send({ type: 'keepalive' });
    await dev.next('pong');
    await dev.next('pong');
    await sleep(150);
    assert.equal(dev.all('pong').length, 2);
    assert.deepEqual(dev.all('pong')[0], { type: 'pong' });
    await dev.close();
  });

  it('a peer that stops answering WS pings is dropped; a live one is kept', async () => {
    const dead = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'hb-dead',
      autoPong: false,
    });
    const live = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'hb-live' });
    await dead.hello();
    await live.hello();
    const closed = await dead.closed;
    assert.equal(closed.code, 1006);
    await sleep(300);
    live.send({ type: 'ping' });
    await live.next('pong');
    assert.ok(!server.registry.get('hb-dead'));
    assert.ok(server.registry.get('hb-live'));
    await live.close();
  });

  it('the ping sweep re-arms itself without adding timers: the count stays flat over many cycles', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await sleep(250);
    const before = timers();
    await sleep(1000); // 10 ping cycles
    assert.ok(timers() <= before + 1, `timers ${before} → ${timers()}`);
  });

  it('every inbound frame counts as liveness, even without pongs', async () => {
    const chatty = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'hb-chatty',
      autoPong: false,
    });
    await chatty.hello();
    for (let i = 0; i < 8; i++) {
      chatty.send({ type: 'keepalive' });
      await sleep(50);
    }
    assert.equal(chatty.ws.readyState, chatty.ws.OPEN);
    await chatty.close();
  });
});

describe('idle close (A7) and hello timeout', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      close_connection_no_voice_time: 1,
      server: { idle_warning_ms: 500, hello_timeout_ms: 300 },
    });
  });
  after(() => server.stop());

  it('warns with timeout_warning, then closes an idle connection', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'idle-1' });
    await dev.hello();
    const warning = await dev.next((m) => m.type === 'system' && m.event === 'timeout_warning', 1500);
    assert.equal(typeof warning.message, 'string');
    const closed = await dev.closed;
    assert.equal(closed.code, 1000);
    assert.ok(dev.received.some((m) => m.type === 'system' && m.event === 'idle_close'));
    assert.ok((await metricValue(server, 'linus_idle_closes_total', { reason: 'no_activity' })) >= 1);
  });

  it('activity keeps the connection open; a warned connection is saved by any message', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'idle-2' });
    await dev.hello();
    await dev.next((m) => m.type === 'system' && m.event === 'timeout_warning', 1500);
    for (let i = 0; i < 6; i++) {
      dev.send({ type: 'keepalive' });
      await sleep(250);
    }
    assert.equal(dev.ws.readyState, dev.ws.OPEN);
    await dev.close();
  });

  it('the idle clock is paused while the server speaks', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'idle-3' });
    await dev.hello();
    const session = await sessionOf(server, 'idle-3');
    session.speaking = true;
    await sleep(1600);
    assert.equal(dev.ws.readyState, dev.ws.OPEN);
    session.speaking = false;
    await dev.closed;
  });

  it('meeting and working modes triple the idle limit', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'idle-4' });
    await dev.hello();
    const session = await sessionOf(server, 'idle-4');
    assert.equal(session.idleLimitMs(), 1000);
    session.record?.state.set('mode', 'meeting');
    assert.equal(session.idleLimitMs(), 3000);
    session.record?.state.set('mode', 'working');
    assert.equal(session.idleLimitMs(), 3000);
    await dev.close();
  });

  it('closes a connection that sends nothing at all within hello_timeout_ms', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'silent' });
    const closed = await dev.closed;
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'no hello');
  });
});

describe('handover of a device to a new connection (D6, seed #7)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { handover_close_ms: 200 } });
  });
  after(() => server.stop());

  it('the new connection takes over at once; the old one is told and closed after handover_close_ms', async () => {
    const url = server.url('/xiaozhi/v1/', 'ws');
    const a = await TestDevice.connect({ url, deviceId: 'AA:00:00:00:00:01' });
    await a.hello();
    const sa = await sessionOf(server, 'aa:00:00:00:00:01');
    const b = await TestDevice.connect({ url, deviceId: 'aa:00:00:00:00:01', style: 'browser' });
    const notice = await a.next((m) => m.type === 'system' && m.event === 'replaced');
    assert.match(String(notice.message), /200 ms/);
    const sb = [...server.sessions].find((s) => s.deviceId === 'aa:00:00:00:00:01' && s !== sa)!;
    assert.equal(server.registry.get('aa:00:00:00:00:01'), sb, 'route points at the new connection at once');
    assert.equal(sb.record, sa.record, 'device-level state carries over');
    // The old channel still works during the overlap, so a dictation in progress is not cut.
    a.send({ type: 'ping' });
    await a.next('pong');
    const t0 = Date.now();
    const closed = await a.closed;
    assert.ok(Date.now() - t0 >= 100, 'closed only after the handover delay');
    assert.equal(closed.code, 1000);
    // The old connection's close must not remove the new route.
    await sleep(50);
    assert.equal(server.registry.get('aa:00:00:00:00:01'), sb);
    await b.hello();
    b.send({ type: 'ping' });
    await b.next('pong');
    assert.equal(await metricValue(server, 'linus_handovers_total'), 1);
    await b.close();
    await waitFor(() => !server.registry.get('aa:00:00:00:00:01'), 2000, 'route removed');
  });

  it('three quick reconnects leave exactly one route, to the newest', async () => {
    const url = server.url('/xiaozhi/v1/', 'ws');
    const devs = [];
    for (let i = 0; i < 3; i++) devs.push(await TestDevice.connect({ url, deviceId: 'storm-1' }));
    await Promise.all(devs.slice(0, 2).map((d) => d.closed));
    assert.equal([...server.sessions].filter((s) => s.deviceId === 'storm-1').length, 1);
    assert.equal(
      server.registry.get('storm-1'),
      [...server.sessions].find((s) => s.deviceId === 'storm-1'),
    );
    await devs[2]!.close();
  });
});

describe('one send path with back-pressure (D7, seed #3)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { send_buffer_bytes: 16_384 } });
  });
  after(() => server.stop());

  it('a slow reader loses the oldest audio, never control messages, and gets the newest audio', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'slow-reader' });
    await dev.hello();
    const session = await sessionOf(server, 'slow-reader');
    dev.ws.pause();
    const total = 30_000;
    for (let i = 0; i < total; i++) {
      const frame = Buffer.alloc(200);
      frame.writeUInt32BE(i, 0);
      session.send.audio(frame);
      if (i === total / 2) assert.equal(session.send.json({ type: 'tts', state: 'sentence_start', text: 'mid' }), true);
    }
    assert.equal(session.send.json({ type: 'tts', state: 'stop' }), true);
    assert.ok(session.send.queuedBytes <= 16_384 + 1024, `queue bounded: ${session.send.queuedBytes}`);
    dev.ws.resume();
    await dev.next((m) => m.type === 'tts' && m.state === 'stop', 5000);
    assert.ok(dev.received.some((m) => m.type === 'tts' && m.state === 'sentence_start'));
    const seqs = dev.binary.map((b) => b.readUInt32BE(0));
    assert.ok(seqs.length < total, `old audio was dropped (${seqs.length} of ${total} delivered)`);
    assert.equal(seqs.at(-1), total - 1, 'the newest frame is delivered');
    assert.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
      'frames stay in order',
    );
    assert.ok((await metricValue(server, 'linus_send_failures_total', { reason: 'backpressure_audio' })) > 0);
    await dev.close();
  });

  it('a peer that will not read even control messages is cut off instead of buffering forever', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'stuck-reader' });
    await dev.hello();
    const session = await sessionOf(server, 'stuck-reader');
    dev.ws.pause();
    const big = 'x'.repeat(4096);
    let refused = false;
    for (let i = 0; i < 5000 && !refused; i++)
      refused = !session.send.json({ type: 'alert', status: 'info', message: big, emotion: 'neutral' });
    assert.equal(refused, true);
    assert.equal(session.closed, true);
    assert.equal(await metricValue(server, 'linus_send_failures_total', { reason: 'overflow' }), 1);
    dev.ws.terminate();
  });

  it('sending to a closed connection returns false and never throws', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'gone' });
    await dev.hello();
    const session = await sessionOf(server, 'gone');
    await dev.close();
    await waitFor(() => session.closed, 2000, 'server saw the close');
    const before = await metricValue(server, 'linus_send_failures_total', { reason: 'closed' });
    assert.equal(session.send.json({ type: 'tts', state: 'stop' }), false);
    assert.equal(session.send.audio(Buffer.alloc(10)), false);
    assert.equal(session.notify('x', 'y'), false);
    assert.equal(await metricValue(server, 'linus_send_failures_total', { reason: 'closed' }), before + 3);
  });

  it('close() is idempotent and unregisters once', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'twice' });
    await dev.hello();
    const session = await sessionOf(server, 'twice');
    session.close(1000, 'first');
    session.close(1000, 'second');
    assert.equal(session.closeReason, 'first');
    assert.equal((await dev.closed).reason, 'first');
    assert.equal(await metricValue(server, 'linus_connections'), [...server.sessions].length);
  });
});
