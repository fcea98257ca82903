import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { FakeOpenAi, refusedPort, tone } from '../../../test/support/fake-openai.js';
import { ProviderError } from '../types.js';
import type { PcmChunk, TtsProvider } from '../types.js';
import { createTts } from './index.js';
import { createOpenAiTts } from './openai.js';

let fake: FakeOpenAi;
before(async () => {
  fake = await FakeOpenAi.start();
});
after(() => fake.stop());

const opts = (over: { signal?: AbortSignal; timeoutMs?: number } = {}) => ({
  signal: new AbortController().signal,
  ...over,
});
const tts = (extra: Record<string, unknown> = {}): TtsProvider =>
  createOpenAiTts('OpenAITTS', { type: 'openai', base_url: fake.baseUrl, api_key: 'k', ...extra });

async function collect(
  it: AsyncIterable<PcmChunk>,
): Promise<{ chunks: PcmChunk[]; samples: Int16Array; at: number[] }> {
  const t0 = Date.now();
  const chunks: PcmChunk[] = [];
  const at: number[] = [];
  for await (const c of it) {
    chunks.push(c);
    at.push(Date.now() - t0);
  }
  const samples = new Int16Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let o = 0;
  for (const c of chunks) {
    samples.set(c.samples, o);
    o += c.samples.length;
  }
  return { chunks, samples, at };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const e = await p.then(
    () => assert.fail('expected a rejection'),
    (x: unknown) => x,
  );
  assert.ok(e instanceof ProviderError, String(e));
  return e;
}

test('pcm: chunks stream as they arrive and concatenate to exactly the scripted audio', async () => {
  fake.speech = { durationMs: 500, sampleRate: 24000, chunkBytes: 4801, delayMs: 40 };
  const { chunks, samples, at } = await collect(tts({ speed: 1.25 }).synthesize('Hello there.', opts()));
  assert.equal(samples.length, 12000);
  assert.deepEqual(samples, tone(12000, 24000), 'odd-sized network chunks are reassembled without a shifted byte');
  assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
  assert.ok(chunks.every((c) => c.sampleRate === 24000));
  assert.ok(at[0]! < at.at(-1)! - 100, 'the first chunk comes before the body has ended');
  assert.deepEqual(fake.last('/v1/audio/speech').body, {
    model: 'tts-1',
    voice: 'alloy',
    input: 'Hello there.',
    response_format: 'pcm',
    speed: 1.25,
  });
});

test('pcm at a configured rate, model and voice from the reference keys', async () => {
  fake.speech = { durationMs: 300, sampleRate: 16000 };
  const t = createTts('T', {
    type: 'openai',
    api_url: `${fake.baseUrl}/audio/speech`,
    model_name: 'kokoro',
    voice: 'af_bella',
    sample_rate: 16000,
  });
  const { chunks, samples } = await collect(t.synthesize('Hi', opts()));
  assert.equal(samples.length, 4800);
  assert.ok(chunks.every((c) => c.sampleRate === 16000));
  const body = fake.last().body;
  assert.equal(body.model, 'kokoro');
  assert.equal(body.voice, 'af_bella');
});

test('wav: the header is parsed even when it arrives in pieces, and its rate is used', async () => {
  fake.speech = { durationMs: 250, sampleRate: 22050, chunkBytes: 7 };
  const { chunks, samples } = await collect(tts({ format: 'wav' }).synthesize('Hi', opts()));
  assert.equal(fake.last().body.response_format, 'wav');
  assert.ok(chunks.every((c) => c.sampleRate === 22050));
  assert.deepEqual(samples, tone(Math.round(0.25 * 22050), 22050));
});

test(
  'wav from the real flite binary',
  { skip: !existsSync('/usr/bin/flite') && 'flite is not installed' },
  async () => {
    fake.speech = { flite: true, chunkBytes: 1000 };
    const { chunks, samples } = await collect(tts({ response_format: 'wav' }).synthesize('Hello from flite.', opts()));
    assert.ok(chunks.every((c) => c.sampleRate === 16000));
    assert.ok(samples.length > 8000, `${samples.length} samples`);
    assert.ok(
      samples.some((s) => Math.abs(s) > 1000),
      'it is speech, not silence or a parsed header',
    );
  },
);

test('abort mid-stream closes the request and ends the iterator quickly with an AbortError', async () => {
  // 200 writes of 100 ms of audio, 30 ms apart: about 6 s unless the abort works.
  fake.speech = { durationMs: 20000, chunkBytes: 4800, delayMs: 30 };
  const n0 = fake.requests.length;
  const ac = new AbortController();
  let n = 0;
  let abortedAt = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of tts().synthesize('A long sentence.', opts({ signal: ac.signal }))) {
        if (++n === 2) {
          abortedAt = Date.now();
          ac.abort();
        }
      }
    })(),
    { name: 'AbortError' },
  );
  assert.ok(Date.now() - abortedAt < 1500);
  assert.ok(n < 5, `${n} chunks`);
  assert.equal(await (await fake.request(n0)).closed, true);
});

test('a consumer that stops early (barge-in) closes the request', async () => {
  fake.speech = { durationMs: 20000, chunkBytes: 4800, delayMs: 30 };
  const n = fake.requests.length;
  for await (const _ of tts().synthesize('A long sentence.', opts())) break;
  assert.equal(await (await fake.request(n)).closed, true);
});

test('errors: HTTP 500, deadline, connection refused', async () => {
  fake.speech = { status: 500 };
  const http = await failure(collect(tts().synthesize('x', opts())));
  assert.equal(http.kind, 'http');
  assert.match(http.message, /500/);

  fake.speech = { hang: true };
  const n = fake.requests.length;
  assert.equal((await failure(collect(tts({ timeout_ms: 150 }).synthesize('x', opts())))).kind, 'timeout');
  // On a very busy machine the deadline can pass before the request even reached the server.
  if (fake.requests[n]) assert.equal(await fake.requests[n].closed, true);

  fake.speech = { durationMs: 3000, delayMs: 50 };
  assert.equal(
    (await failure(collect(tts().synthesize('x', opts({ timeoutMs: 250 }))))).kind,
    'timeout',
    'deadline mid-body',
  );

  const dead = createOpenAiTts('T', { base_url: `http://127.0.0.1:${await refusedPort()}/v1` });
  assert.equal((await failure(collect(dead.synthesize('x', opts())))).kind, 'network');
});

test("the deadline is the provider's time: a consumer slower than it still gets the whole answer", async () => {
  // The whole body arrives at once; the consumer then holds its chunk past the deadline, as a turn does when its
  // audio thread is busy. Charged to the provider, that read timed out (and once hung for good on Node 20's fetch).
  fake.speech = { durationMs: 500, chunkBytes: 24000 };
  let samples = 0;
  for await (const c of tts({ timeout_ms: 200 }).synthesize('x', opts())) {
    samples += c.samples.length;
    await new Promise((r) => setTimeout(r, 600));
  }
  assert.equal(samples, 12000);
});

test('config: compressed formats and unknown types are refused naming the key; empty text makes no request', async () => {
  assert.throws(() => tts({ format: 'mp3' }), /TTS\.OpenAITTS\.format/);
  assert.throws(
    () => createTts('Edge', { type: 'edge' }),
    (e: unknown) => e instanceof ProviderError && e.kind === 'config' && /TTS\.Edge\.type/.test(e.message),
  );
  const n = fake.requests.length;
  assert.equal((await collect(tts().synthesize('  ', opts()))).chunks.length, 0);
  assert.equal(fake.requests.length, n);
});
