import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { afterEach, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { validateConfig } from '../config/load.js';
import { ConfigStore } from '../config/store.js';
import { LocalDeviceRegistry } from '../hub/registry.js';
import { silentLogger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import { FakeSocket } from './fake-socket.js';
import { LISTEN_DEBOUNCE_MS, registerCoreHandlers } from './handlers.js';
import { MessageTable } from './message-table.js';
import { Scope } from './scope.js';
import { Session, type ServerContext, type SessionEvents, type SessionVoice } from './session.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0).reverse()) close();
});

/** A real Session on the real message table with the core handlers; only the socket is a fake (the boundary). */
function connect(raw: Record<string, unknown> = {}) {
  const ctx: ServerContext = {
    config: new ConfigStore(validateConfig({ server: { hello_timeout_ms: 0 }, ...raw }).config),
    metrics: new Metrics({ defaultMetrics: false }),
    log: silentLogger(),
    registry: new LocalDeviceRegistry(),
    authKey: 'k',
    background: new Scope('background'),
    messages: new MessageTable(),
    events: new EventEmitter<SessionEvents>(),
  };
  registerCoreHandlers(ctx.messages);
  const socket = new FakeSocket();
  // The cast is the boundary: a Session uses of its socket what FakeSocket implements (send, events, close).
  const session = new Session(socket as unknown as WebSocket, { ids: ids(), path: '/xiaozhi/v1/' }, ctx);
  session.start();
  closers.push(
    () => ctx.metrics.close(),
    () => session.close(1000, 'test over'),
  );
  const counter = async (name: 'unknownMessages' | 'badFrames', reason?: string) =>
    (await ctx.metrics[name].get()).values
      .filter((v) => reason === undefined || v.labels.reason === reason)
      .reduce((n, v) => n + v.value, 0);
  return { ctx, socket, session, counter };
}

const ids = () => ({ deviceId: 'aa:bb:cc:dd:ee:01', clientId: 'client-1', source: 'query' as const });

/** A voice pipeline at its interface: records what the table hands it. */
function recordingVoice(): SessionVoice & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    onAudio: () => calls.push('audio'),
    onListen: (_s, m) => calls.push(`listen:${m.state}`),
    onAbort: (_s, reason) => calls.push(`abort:${reason ?? ''}`),
  };
}

describe('MessageTable', () => {
  it('hands a valid message to its handler with the schema applied', () => {
    const { ctx, socket, session } = connect();
    const got: unknown[] = [];
    ctx.messages.register('probe', {
      schema: z.object({ type: z.literal('probe'), n: z.coerce.number().default(7) }),
      handle: (s, m) => got.push([s, m]),
    });
    socket.receive({ type: 'probe', n: '3' });
    socket.receive({ type: 'probe' });
    assert.deepEqual(got, [
      [session, { type: 'probe', n: 3 }],
      [session, { type: 'probe', n: 7 }],
    ]);
  });

  it('a type registered twice is a start-up error, also among several types', () => {
    const { ctx } = connect();
    const handler = { schema: z.object({}), handle: () => {} };
    ctx.messages.register(['a', 'b'], handler);
    assert.throws(() => ctx.messages.register('b', handler), /message type b is already handled/);
    assert.throws(() => ctx.messages.register('ping', handler), /ping is already handled/);
  });

  it('an unknown type is counted and ignored: no reply, the connection stays', async () => {
    const { socket, session, counter } = connect();
    socket.receive({ type: 'no-such-type', x: 1 });
    assert.equal(await counter('unknownMessages'), 1);
    assert.deepEqual(socket.json(), []);
    assert.equal(session.closed, false);
  });

  it('a message its schema refuses gets one SCHEMA_INVALID error naming the type, and is counted', async () => {
    const { socket, counter } = connect();
    socket.receive({ type: 'listen', state: 'sideways' });
    const [reply] = socket.json();
    assert.equal(reply?.type, 'error');
    assert.equal(reply?.code, 'SCHEMA_INVALID');
    assert.equal(reply?.for, 'listen');
    assert.match(String(reply?.message), /^invalid listen message: /);
    assert.equal(await counter('badFrames', 'schema'), 1);
  });

  it('a handler that throws is logged; the session and the next messages are unaffected', () => {
    const { ctx, socket, session } = connect();
    ctx.messages.register('boom', {
      schema: z.object({ type: z.literal('boom') }),
      handle: () => {
        throw new Error('handler bug');
      },
    });
    assert.doesNotThrow(() => socket.receive({ type: 'boom' }));
    socket.receive({ type: 'ping' });
    assert.deepEqual(socket.json(), [{ type: 'pong' }]);
    assert.equal(session.closed, false);
  });
});

describe('core handlers', () => {
  it('ping and keepalive are answered with pong', () => {
    const { socket } = connect();
    socket.receive({ type: 'ping' });
    socket.receive({ type: 'keepalive' });
    assert.deepEqual(socket.json(), [{ type: 'pong' }, { type: 'pong' }]);
  });

  it('hello: answered with the session id and the real downlink parameters; the session is ready', () => {
    const { socket, session } = connect({ xiaozhi: { audio_params: { sample_rate: 24000, frame_duration: 60 } } });
    const ready: Session[] = [];
    session.ctx.events.on('ready', (s) => ready.push(s));
    socket.receive({
      type: 'hello',
      version: 3,
      features: { emoji: false },
      audio_params: { format: 'opus', sample_rate: 16000, frame_duration: 20 },
    });
    socket.receive({ type: 'hello', version: 3 });
    const [first, second] = socket.json();
    assert.equal(first?.type, 'hello');
    assert.equal(first?.session_id, session.sessionId);
    assert.equal(first?.version, 3);
    assert.equal((first?.audio_params as Record<string, unknown>).sample_rate, 24000, 'not an echo of the client');
    assert.deepEqual(second, first, 'hello is idempotent');
    assert.equal(session.protocolVersion, 3);
    assert.equal(session.features.emoji, false);
    assert.equal(session.uplink.frameDuration, 20);
    assert.equal(session.helloCount, 2);
    assert.equal(session.state, 'ready');
    assert.deepEqual(ready, [session], 'ready once');
  });

  it('listen goes to the voice pipeline; the same start repeated within the debounce window is ignored', () => {
    const { socket, session } = connect();
    const voice = recordingVoice();
    session.voice = voice;
    socket.receive({ type: 'listen', state: 'start', mode: 'manual' });
    socket.receive({ type: 'listen', state: 'start', mode: 'manual' });
    assert.deepEqual(voice.calls, ['listen:start']);
    assert.deepEqual(session.listen, { state: 'listening', mode: 'manual' });
    socket.receive({ type: 'listen', state: 'stop' });
    socket.receive({ type: 'listen', state: 'detect', text: 'hello' });
    assert.deepEqual(voice.calls, ['listen:start', 'listen:stop', 'listen:detect']);
    assert.equal(session.listen.state, 'idle');
    assert.ok(LISTEN_DEBOUNCE_MS > 0);
  });

  it('abort: to the voice pipeline when there is one, else answered with tts stop', () => {
    const { socket, session } = connect();
    socket.receive({ type: 'abort' });
    assert.deepEqual(socket.json(), [{ type: 'tts', state: 'stop', session_id: session.sessionId }]);
    const voice = recordingVoice();
    session.voice = voice;
    socket.receive({ type: 'abort', reason: 'wake_word_detected' });
    assert.deepEqual(voice.calls, ['abort:wake_word_detected']);
    assert.equal(socket.json().length, 1, 'the pipeline sends its own stop');
  });

  it('iot descriptors and states are kept; config_update is acknowledged as a no-op; goodbye closes', () => {
    const { socket, session } = connect();
    socket.receive({
      type: 'iot',
      descriptors: [{ name: 'Lamp', methods: {} }],
      states: [{ name: 'Lamp', state: { on: true } }],
    });
    socket.receive({ type: 'iot', states: [{ name: 'Lamp', state: { level: 3 } }] });
    assert.deepEqual(session.iot.states.get('Lamp'), { on: true, level: 3 });
    assert.equal(session.iot.descriptors.has('Lamp'), true);
    socket.receive({ type: 'config_update', config: { volume: 5 } });
    assert.deepEqual(socket.json(), [{ type: 'config_update', status: 'ok', noop: true }]);
    socket.receive({ type: 'goodbye' });
    assert.equal(session.closed, true);
    assert.deepEqual(socket.closedWith, { code: 1000, reason: 'goodbye' });
  });
});
