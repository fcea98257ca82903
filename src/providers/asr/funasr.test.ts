import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeFunAsr } from '../../../test/support/fake-funasr.js';
import { refusedPort } from '../../../test/support/fake-openai.js';
import { sleep, waitFor } from '../../../test/support/wait.js';
import { ProviderError } from '../types.js';
import type { AsrProvider } from '../types.js';
import { createFunAsr } from './funasr.js';
import { createAsr } from './index.js';

let fake: FakeFunAsr;
before(async () => {
  fake = await FakeFunAsr.start();
});
after(() => fake.stop());

const opts = (signal = new AbortController().signal) => ({ signal, sessionId: 's1' });
const asr = (extra: Record<string, unknown> = {}): AsrProvider =>
  createFunAsr('FunASRServer', { type: 'fun_server', url: fake.url, ...extra });
/** A ramp, so that lost, reordered or duplicated audio shows up in the bytes. */
const ramp = (n: number, from = 0): Int16Array => Int16Array.from({ length: n }, (_, i) => (from + i) % 30000);

test('sends the config message first, and audio written before and after the socket opens is not lost', async () => {
  fake.script = { final: 'ok', openDelayMs: 150 };
  const s = asr().createStream(opts());
  s.write(ramp(500, 0)); // before open
  await sleep(50);
  s.write(ramp(1700, 500)); // still before open
  await waitFor(() => fake.connections.length > 0 && fake.last().config, 2000, 'the config message');
  s.write(ramp(3000, 2200)); // after open
  assert.deepEqual(await s.finish(), { text: 'ok' });

  const c = fake.last();
  assert.deepEqual(c.config, {
    mode: '2pass',
    chunk_size: [5, 10, 5],
    chunk_interval: 10,
    wav_name: 'linus',
    wav_format: 'pcm',
    audio_fs: 16000,
    is_speaking: true,
    hotwords: '',
    itn: true,
  });
  assert.equal(c.framesBeforeConfig, 0);
  assert.equal(c.pcmBytes, 5200 * 2);
  const pcm = Buffer.concat(c.frames);
  for (let i = 0; i < 5200; i++) assert.equal(pcm.readInt16LE(i * 2), i % 30000, `sample ${i}`);
  // 60 ms steps (chunk_size[1] * 60 / chunk_interval), as the Python server assumes; the last one is the rest.
  assert.deepEqual(
    c.frames.map((f) => f.length),
    [1920, 1920, 1920, 1920, 1920, 800],
  );
  assert.deepEqual(c.texts.at(-1), { is_speaking: false });
  assert.equal(await c.closed, 1000, 'the socket is closed once the answer is in');
});

test('2pass against the C++ server: corrected segments make the text, in-flight segments do not end it early', async () => {
  fake.script = {
    flavour: 'cpp',
    partials: ['今天', '天气'],
    segment: '今天天气，',
    inFlight: { mode: 'segment', text: '不错，' },
    final: '怎么样？',
    finalDelayMs: 100,
  };
  const s = asr().createStream(opts());
  for (let i = 0; i < 4; i++) s.write(ramp(960));
  await waitFor(() => fake.last().frames.length === 4, 2000, 'frames');
  await sleep(50);
  assert.deepEqual(await s.finish(), { text: '今天天气，不错，怎么样？' });
});

test('2pass against the Python server: is_final is inverted there, and a late partial does not end the utterance', async () => {
  fake.script = {
    flavour: 'python',
    partials: ['hello', 'world'],
    inFlight: { mode: 'partial', text: 'again' },
    final: 'hello world again.',
    finalDelayMs: 100,
  };
  const s = asr().createStream(opts());
  s.write(ramp(960 * 3));
  await waitFor(() => fake.last().frames.length === 3, 2000, 'frames');
  await sleep(50);
  assert.deepEqual(await s.finish(), { text: 'hello world again.' });
});

test('online mode concatenates the online results', async () => {
  fake.script = { flavour: 'cpp', partials: ['turn', 'on', 'the', 'light'], final: '' };
  const s = asr({ mode: 'online' }).createStream(opts());
  s.write(ramp(960 * 4));
  await waitFor(() => fake.last().frames.length === 4, 2000, 'frames');
  await sleep(50);
  assert.deepEqual(await s.finish(), { text: 'turn on the light' });
  assert.equal(fake.last().config?.mode, 'online');

  // The Python server never answers the end flag in online mode: a short grace, not the full deadline.
  fake.script = { flavour: 'python', partials: ['你好', '世界'] };
  const p = asr({ mode: 'online', timeout_ms: 5000 }).createStream(opts());
  p.write(ramp(960 * 2));
  await waitFor(() => fake.last().frames.length === 2, 2000, 'frames');
  await sleep(50);
  const t0 = Date.now();
  assert.deepEqual(await p.finish(), { text: '你好世界' });
  assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
});

test('offline mode: one offline result answers the end flag (is_final false on both servers)', async () => {
  for (const flavour of ['cpp', 'python'] as const) {
    fake.script = { flavour, final: 'offline text', finalDelayMs: 30 };
    const s = asr({ mode: 'offline', timeout_ms: 3000 }).createStream(opts());
    s.write(ramp(4000));
    const t0 = Date.now();
    // The C++ 2pass server answers offline mode with is_final true; the fake's python flavour with false.
    assert.deepEqual(await s.finish(), { text: 'offline text' });
    assert.ok(Date.now() - t0 < 1000);
  }
});

test('abort closes the socket and rejects a pending finish() with an AbortError', async () => {
  fake.script = { noFinal: true };
  const s = asr().createStream(opts());
  s.write(ramp(2000));
  await waitFor(() => fake.connections.length && fake.last().pcmBytes > 0, 2000, 'audio');
  const conn = fake.last();
  const pending = s.finish();
  await waitFor(() => conn.endReceived, 2000, 'the end flag');
  s.abort();
  s.abort(); // idempotent
  await assert.rejects(pending, { name: 'AbortError' });
  await conn.closed;
  assert.equal(conn.open, false);
});

test('the caller signal aborts the stream, even before the socket opens', async () => {
  fake.script = { openDelayMs: 100, noFinal: true };
  const ac = new AbortController();
  const before = fake.connections.length;
  const s = asr().createStream(opts(ac.signal));
  s.write(ramp(960));
  ac.abort();
  await assert.rejects(s.finish(), { name: 'AbortError' });
  await sleep(250);
  // The handshake was cut: either no connection reached the server, or it is closed again.
  assert.ok(fake.connections.length === before || !fake.last().open);
});

test('deadline: no answer at all is a timeout; partials heard so far are returned instead', async () => {
  fake.script = { noFinal: true };
  const n = fake.connections.length;
  let s = asr({ timeout_ms: 200 }).createStream(opts());
  s.write(ramp(960));
  const conn = await waitFor(() => (fake.connections[n]?.pcmBytes ? fake.connections[n] : undefined), 2000, 'audio');
  const t0 = Date.now();
  const err = await s.finish().then(
    () => assert.fail('expected a timeout'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProviderError && err.kind === 'timeout', String(err));
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await conn.closed, 1006, 'the socket was cut');

  fake.script = { flavour: 'cpp', partials: ['partial', 'text'], noFinal: true };
  s = asr().createStream({ ...opts(), timeoutMs: 200 }); // the call's deadline, this time
  s.write(ramp(960 * 2));
  await waitFor(() => fake.last().frames.length === 2, 2000, 'frames');
  await sleep(50);
  assert.deepEqual(await s.finish(), { text: 'partial text' });
});

test('connection refused gives ProviderError network from finish()', async () => {
  const s = createFunAsr('F', { host: '127.0.0.1', port: await refusedPort(), is_ssl: false }).createStream(opts());
  s.write(ramp(960));
  await sleep(100);
  const err = await s.finish().then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProviderError && err.kind === 'network', String(err));
  assert.match(err.message, /ECONNREFUSED/);
});

test('reference keys: host/port/is_ssl, api_key header, hotwords, SenseVoice tags stripped', async () => {
  fake.script = { final: '<|en|><|NEUTRAL|><|Speech|><|woitn|>hello there' };
  const port = Number(new URL(fake.url).port);
  const s = createAsr('FunASRServer', {
    type: 'fun_server',
    host: '127.0.0.1',
    port,
    is_ssl: false,
    api_key: 'k1',
    hotwords: { 阿里巴巴: 20 },
    itn: false,
  }).createStream(opts());
  assert.equal(createAsr('F', { type: 'funasr', url: fake.url }).streaming, true);
  s.write(ramp(960));
  assert.deepEqual(await s.finish(), { text: 'hello there' });
  const c = fake.last();
  assert.equal(c.headers.authorization, 'Bearer; k1');
  assert.equal(c.config?.hotwords, '{"阿里巴巴":20}');
  assert.equal(c.config?.itn, false);
  assert.throws(() => createFunAsr('F', { mode: 'fast' }), /ASR\.F\.mode/);
  assert.throws(() => createFunAsr('F', { chunk_size: [5, 0, 5] }), /ASR\.F\.chunk_size/);
  assert.throws(() => createFunAsr('F', { url: 'tcp://x' }), /ASR\.F\.url/);
});
