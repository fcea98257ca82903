import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, test } from 'node:test';
import { FakeOpenAi, refusedPort, tone } from '../../../test/support/fake-openai.js';
import { ProviderError } from '../types.js';
import { createAsr } from './index.js';
import { createOpenAiAsr } from './openai.js';

let fake: FakeOpenAi;
before(async () => {
  fake = await FakeOpenAi.start();
});
after(() => fake.stop());

const opts = (over: { signal?: AbortSignal; timeoutMs?: number } = {}) => ({
  signal: new AbortController().signal,
  sessionId: 's1',
  ...over,
});

test('uploads the utterance as a valid 16 kHz mono WAV of the right length and returns trimmed text', async () => {
  fake.transcription = { text: '  turn on the light \n' };
  const asr = createOpenAiAsr('Whisper', {
    type: 'openai',
    base_url: fake.baseUrl,
    model_name: 'whisper-large',
    language: 'en',
    prompt: 'lights',
  });
  assert.equal(asr.streaming, false);
  const audio = tone(16000 + 123, 16000);
  const stream = asr.createStream(opts());
  // Written in uneven frames, with a reused buffer to prove the provider copies what it keeps.
  const frame = new Int16Array(960);
  for (let i = 0; i < audio.length; i += 960) {
    const part = audio.subarray(i, i + 960);
    frame.set(part);
    stream.write(frame.subarray(0, part.length));
  }
  frame.fill(0);
  assert.deepEqual(await stream.finish(), { text: 'turn on the light' });

  const rec = fake.last('/v1/audio/transcriptions');
  assert.equal(rec.body.model, 'whisper-large');
  assert.equal(rec.body.language, 'en');
  assert.equal(rec.body.prompt, 'lights');
  const file = rec.file!;
  assert.equal(file.length, 44 + audio.length * 2);
  assert.equal(file.toString('ascii', 0, 4), 'RIFF');
  assert.equal(file.readUInt32LE(4), file.length - 8);
  assert.equal(file.toString('ascii', 8, 16), 'WAVEfmt ');
  assert.equal(file.readUInt16LE(20), 1); // PCM
  assert.equal(file.readUInt16LE(22), 1); // mono
  assert.equal(file.readUInt32LE(24), 16000);
  assert.equal(file.readUInt16LE(34), 16);
  assert.equal(file.toString('ascii', 36, 40), 'data');
  assert.equal(file.readUInt32LE(40), audio.length * 2);
  for (const i of [0, 1, 500, 9999, audio.length - 1]) assert.equal(file.readInt16LE(44 + i * 2), audio[i]);
});

test('model defaults to whisper-1; an empty utterance gives empty text without a request', async () => {
  const asr = createOpenAiAsr('W', { url: fake.baseUrl });
  const before = fake.requests.length;
  assert.deepEqual(await asr.createStream(opts()).finish(), { text: '' });
  assert.equal(fake.requests.length, before);
  const s = asr.createStream(opts());
  s.write(new Int16Array(1600));
  await s.finish();
  assert.equal(fake.last().body.model, 'whisper-1');
});

test('the reference api_url with the full endpoint path works', async () => {
  fake.transcription = { text: 'ok' };
  const asr = createAsr('W', { type: 'whisper', api_url: `${fake.baseUrl}/audio/transcriptions`, model: 'w' });
  const s = asr.createStream(opts());
  s.write(new Int16Array(320));
  assert.deepEqual(await s.finish(), { text: 'ok' });
});

test('abort during the upload closes the request and rejects finish() with an AbortError', async () => {
  fake.transcription = { hang: true };
  const asr = createOpenAiAsr('W', { base_url: fake.baseUrl });
  const s = asr.createStream(opts());
  s.write(new Int16Array(16000));
  const n = fake.requests.length;
  const pending = s.finish();
  const rec = await fake.request(n);
  const t0 = Date.now();
  s.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  assert.ok(Date.now() - t0 < 1500);
  assert.equal(await rec.closed, true);
  s.abort(); // idempotent
});

test('the caller signal aborts the upload too', async () => {
  fake.transcription = { hang: true };
  const ac = new AbortController();
  const s = createOpenAiAsr('W', { base_url: fake.baseUrl }).createStream(opts({ signal: ac.signal }));
  s.write(new Int16Array(800));
  const n = fake.requests.length;
  const pending = s.finish();
  const rec = await fake.request(n);
  ac.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  assert.equal(await rec.closed, true);
});

test('errors: timeout, HTTP 500, connection refused', async () => {
  const kind = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => assert.fail('expected a rejection'),
      (x: unknown) => x,
    );
    assert.ok(e instanceof ProviderError, String(e));
    return e;
  };
  fake.transcription = { hang: true };
  let s = createOpenAiAsr('W', { base_url: fake.baseUrl, timeout_ms: 150 }).createStream(opts());
  s.write(new Int16Array(800));
  assert.equal((await kind(s.finish())).kind, 'timeout');

  fake.transcription = { status: 500 };
  s = createOpenAiAsr('W', { base_url: fake.baseUrl }).createStream(opts());
  s.write(new Int16Array(800));
  const http = await kind(s.finish());
  assert.equal(http.kind, 'http');
  assert.match(http.message, /500/);

  s = createOpenAiAsr('W', { base_url: `http://127.0.0.1:${await refusedPort()}/v1` }).createStream(opts());
  s.write(new Int16Array(800));
  assert.equal((await kind(s.finish())).kind, 'network');
});

test('factory rejects unknown types naming the key', () => {
  assert.throws(
    () => createAsr('Nope', { type: 'baidu' }),
    (e: unknown) => e instanceof ProviderError && e.kind === 'config' && /ASR\.Nope\.type/.test(e.message),
  );
});

test('leaves no listener on the session signal once an utterance is done (one per utterance used to pile up)', async () => {
  fake.transcription = { text: 'hello' };
  const asr = createOpenAiAsr('Whisper', { type: 'openai', base_url: fake.baseUrl });
  const session = new AbortController();
  for (let i = 0; i < 5; i++) {
    const stream = asr.createStream(opts({ signal: session.signal }));
    stream.write(tone(8000, 16000));
    assert.deepEqual(await stream.finish(), { text: 'hello' });
  }
  const empty = asr.createStream(opts({ signal: session.signal }));
  assert.deepEqual(await empty.finish(), { text: '' });
  assert.equal(getEventListeners(session.signal, 'abort').length, 0);
});
