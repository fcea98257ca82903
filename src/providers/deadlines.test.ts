import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FakeOpenAi } from '../../test/support/fake-openai.js';
import { createProviderFactories } from './factories.js';
import { ProviderError, type CallOptions, type LlmRequest } from './types.js';

/**
 * Time-to-first-result deadlines on real providers built by the factories, against a local OpenAI-compatible
 * server that accepts each request and never answers it. The whole-call deadlines are set far beyond the first
 * ones, so only the first-result deadline can end these calls.
 */
let fake: FakeOpenAi;
before(async () => {
  fake = await FakeOpenAi.start();
});
after(() => fake.stop());

const factories = createProviderFactories();
const signal = () => new AbortController().signal;
const req = (): LlmRequest => ({ messages: [{ role: 'user', content: 'hi' }], signal: signal() });
const call = (): CallOptions => ({ signal: signal(), timeoutMs: 60_000 });

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function isTimeout(key: string) {
  return (err: unknown) => err instanceof ProviderError && err.kind === 'timeout' && err.message.includes(key);
}

/** A block of any kind for the fake server; its whole-call deadline far beyond the first-result ones. */
const block = (extra: Record<string, unknown>) => ({
  type: 'openai',
  base_url: fake.baseUrl,
  api_key: 'k',
  timeout_ms: 60_000,
  ...extra,
});
const llmBlock = (extra: Record<string, unknown>) => block({ model_name: 'm', ...extra });

for (const [name, script] of [
  ['no headers at all', { hang: true }],
  ['headers, then no token', { stall: true }],
] as const) {
  test(`LLM ${name}: first_token_timeout_ms cancels the request with a timeout error`, async () => {
    fake.chat = { ...script };
    const llm = await factories.llm('Slow', llmBlock({ first_token_timeout_ms: 300 }));
    const n = fake.requests.length;
    await assert.rejects(drain(llm.stream(req())), isTimeout('LLM.Slow.first_token_timeout_ms'));
    assert.equal(await (await fake.request(n)).closed, true, 'the HTTP request was closed');
  });
}

test('LLM: the first-token deadline does not cut an answer that started in time', async () => {
  // Five chunks 400 ms apart: the whole answer takes longer than the first-token deadline, its first token not.
  fake.chat = { chunks: ['a', 'b', 'c', 'd', 'e'], delayMs: 400 };
  const llm = await factories.llm('Steady', llmBlock({ first_token_timeout_ms: 1500 }));
  const events = await drain(llm.stream(req()));
  assert.equal(events.map((e) => (e.type === 'text' ? e.text : '')).join(''), 'abcde');
});

test('LLM: a tool call whose arguments stream past the first-token deadline is not cut', async () => {
  // The call's head comes at once, its arguments in six pieces 300 ms apart: 1.8 s in all, over the 1 s deadline.
  fake.chat = {
    toolCalls: [{ id: 'c1', name: 'get_time', arguments: '{"zone":"Europe/Berlin"}' }],
    argPieces: 6,
    delayMs: 300,
  };
  const llm = await factories.llm('Tools', llmBlock({ first_token_timeout_ms: 1000 }));
  const events = await drain(llm.stream(req()));
  assert.deepEqual(events.at(-1), {
    type: 'tool_calls',
    calls: [{ id: 'c1', name: 'get_time', arguments: '{"zone":"Europe/Berlin"}' }],
  });
});

test('LLM: first_token_timeout_ms 0 turns it off; a negative value is a config error', async () => {
  fake.chat = { stall: true };
  const llm = await factories.llm('Off', llmBlock({ first_token_timeout_ms: 0, timeout_ms: 300 }));
  // Only the whole-call deadline is left to end it.
  await assert.rejects(
    drain(llm.stream(req())),
    (err: unknown) => err instanceof ProviderError && /300 ms/.test(err.message) && !/first_token/.test(err.message),
  );
  await assert.rejects(
    Promise.resolve().then(() => factories.llm('Bad', llmBlock({ first_token_timeout_ms: -1 }))),
    (err: unknown) => err instanceof ProviderError && err.kind === 'config',
  );
});

test('TTS: first_audio_timeout_ms cancels a request that never answers', async () => {
  fake.speech = { hang: true };
  const tts = await factories.tts('SlowTTS', block({ first_audio_timeout_ms: 300 }));
  const n = fake.requests.length;
  await assert.rejects(drain(tts.synthesize('hello', call())), isTimeout('TTS.SlowTTS.first_audio_timeout_ms'));
  // On a very busy machine the deadline can pass before the request even reached the server.
  if (fake.requests[n]) assert.equal(await fake.requests[n].closed, true, 'the HTTP request was closed');
});

test('ASR: result_timeout_ms cancels a transcription that never answers', async () => {
  fake.transcription = { hang: true };
  const asr = await factories.asr('SlowASR', block({ result_timeout_ms: 300 }));
  const stream = asr.createStream({ ...call(), sessionId: 's' });
  stream.write(new Int16Array(16000));
  const n = fake.requests.length;
  await assert.rejects(stream.finish(), isTimeout('ASR.SlowASR.result_timeout_ms'));
  if (fake.requests[n]) assert.equal(await fake.requests[n].closed, true, 'the upload was closed');
});
