import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { FakeOpenAi, refusedPort } from '../../../test/support/fake-openai.js';
import { ProviderError } from '../types.js';
import type { LlmEvent, LlmProvider, LlmRequest } from '../types.js';
import { createLlm } from './index.js';
import { createOpenAiLlm } from './openai.js';

let fake: FakeOpenAi;
let llm: LlmProvider;
before(async () => {
  fake = await FakeOpenAi.start();
});
after(() => fake.stop());
beforeEach(() => {
  llm = createOpenAiLlm('TestLLM', {
    type: 'openai',
    base_url: fake.baseUrl,
    model_name: 'fake-model',
    api_key: 'k',
    max_tokens: 321,
    temperature: 0.3,
  });
});

const req = (over: Partial<LlmRequest> = {}): LlmRequest => ({
  messages: [{ role: 'user', content: 'hi' }],
  signal: new AbortController().signal,
  ...over,
});

async function collect(it: AsyncIterable<LlmEvent>): Promise<{ events: LlmEvent[]; at: number[] }> {
  const t0 = Date.now();
  const events: LlmEvent[] = [];
  const at: number[] = [];
  for await (const e of it) {
    events.push(e);
    at.push(Date.now() - t0);
  }
  return { events, at };
}

const text = (events: LlmEvent[]): string => events.map((e) => (e.type === 'text' ? e.text : '')).join('');

async function rejectsWith(p: Promise<unknown>, kind: ProviderError['kind']): Promise<ProviderError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ProviderError, `expected ProviderError, got ${String(err)}`);
  assert.equal(err.kind, kind, err.message);
  return err;
}

test('streams text deltas in order, as they arrive', async () => {
  fake.chat = { chunks: ['One', ' two', ' three', ' four'], delayMs: 60 };
  const { events, at } = await collect(llm.stream(req()));
  assert.deepEqual(
    events.map((e) => (e.type === 'text' ? e.text : '?')),
    ['One', ' two', ' three', ' four'],
  );
  // Real streaming: the first delta is seen well before the last one was sent.
  assert.ok(at[0]! < at.at(-1)! - 100, `first at ${at[0]} ms, last at ${at.at(-1)} ms`);
  const body = fake.last('/v1/chat/completions').body;
  assert.equal(body.model, 'fake-model');
  assert.equal(body.stream, true);
  assert.equal(body.max_tokens, 321);
  assert.equal(body.temperature, 0.3);
  assert.equal(body.tools, undefined);
});

test('request values override the block ones', async () => {
  fake.chat = { chunks: ['ok'] };
  await collect(llm.stream(req({ maxTokens: 7, temperature: 1.1 })));
  const body = fake.last().body;
  assert.equal(body.max_tokens, 7);
  assert.equal(body.temperature, 1.1);
});

test('think blocks are stripped even when split across chunks', async () => {
  fake.chat = { chunks: ['<thi', 'nk>I should ', 'greet</th', 'ink>Hel', 'lo <', 'b>!'] };
  const { events } = await collect(llm.stream(req()));
  assert.equal(text(events), 'Hello <b>!');
  assert.ok(events.every((e) => e.type !== 'text' || !/think|greet/.test(e.text)));
});

test('tool calls are assembled from streamed deltas into one event at the end', async () => {
  fake.chat = {
    chunks: ['Let me check.'],
    toolCalls: [
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
      { id: 'call_b', name: 'set_light', arguments: '{"on":true}' },
    ],
    argPieces: 4,
  };
  const { events } = await collect(
    llm.stream(
      req({
        messages: [
          { role: 'system', content: 'sys' },
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c0', name: 'x', arguments: '{}' }] },
          { role: 'tool', tool_call_id: 'c0', content: 'done' },
        ],
        tools: [{ name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } }],
      }),
    ),
  );
  assert.deepEqual(events.at(-1), {
    type: 'tool_calls',
    calls: [
      { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
      { id: 'call_b', name: 'set_light', arguments: '{"on":true}' },
    ],
  });
  assert.equal(events.filter((e) => e.type === 'tool_calls').length, 1);
  assert.equal(text(events), 'Let me check.');
  const body = fake.last().body;
  assert.deepEqual(body.tools, [
    {
      type: 'function',
      function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } },
    },
  ]);
  assert.deepEqual((body.messages as unknown[])[2], {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'c0', type: 'function', function: { name: 'x', arguments: '{}' } }],
  });
  assert.deepEqual((body.messages as unknown[])[3], { role: 'tool', tool_call_id: 'c0', content: 'done' });
});

test('abort mid-stream closes the HTTP request and ends the iterator quickly', async () => {
  fake.chat = { chunks: Array.from({ length: 100 }, (_, i) => `w${i} `), delayMs: 50 };
  const n = fake.requests.length;
  const ac = new AbortController();
  const seen: string[] = [];
  let abortedAt = 0;
  const err = await (async () => {
    for await (const e of llm.stream(req({ signal: ac.signal }))) {
      if (e.type === 'text') seen.push(e.text);
      if (seen.length === 2) {
        abortedAt = Date.now();
        ac.abort();
      }
    }
  })().then(
    () => undefined,
    (e: unknown) => e,
  );
  // Unaborted, the stream would run for about 5 s more.
  assert.ok(Date.now() - abortedAt < 1500, `iterator took ${Date.now() - abortedAt} ms to end`);
  assert.ok(err === undefined || (err instanceof Error && err.name === 'AbortError'), `unexpected ${String(err)}`);
  assert.ok(seen.length < 5, `got ${seen.length} chunks after abort`);
  assert.equal(await (await fake.request(n)).closed, true, 'the fake server saw the request close early');
});

test('a consumer that stops iterating also closes the request', async () => {
  fake.chat = { chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), delayMs: 50 };
  const n = fake.requests.length;
  for await (const e of llm.stream(req())) {
    if (e.type === 'text') break;
  }
  assert.equal(await (await fake.request(n)).closed, true);
});

test('a deadline before the first byte gives ProviderError timeout', async () => {
  fake.chat = { hang: true };
  const n = fake.requests.length;
  const t0 = Date.now();
  await rejectsWith(collect(llm.stream(req({ timeoutMs: 200 }))), 'timeout');
  assert.ok(Date.now() - t0 < 1500);
  // On a very busy machine the deadline can pass before the request even reached the server.
  if (fake.requests[n]) assert.equal(await fake.requests[n].closed, true);
});

test('a deadline in the middle of a stream gives ProviderError timeout, not a cut answer', async () => {
  fake.chat = { chunks: Array.from({ length: 20 }, () => 'x'), delayMs: 50 };
  const n = fake.requests.length;
  await rejectsWith(collect(llm.stream(req({ timeoutMs: 250 }))), 'timeout');
  if (fake.requests[n]) assert.equal(await fake.requests[n].closed, true);
});

test('the block timeout_ms applies when the request has none', async () => {
  fake.chat = { hang: true };
  const slow = createOpenAiLlm('T', { base_url: fake.baseUrl, model: 'm', timeout_ms: 150 });
  await rejectsWith(slow.complete(req()), 'timeout');
});

test('HTTP 500 gives ProviderError http with the status', async () => {
  fake.chat = { status: 500 };
  const err = await rejectsWith(collect(llm.stream(req())), 'http');
  assert.match(err.message, /500/);
  fake.chat = { status: 401 };
  assert.match((await rejectsWith(llm.complete(req()), 'http')).message, /401/);
});

test('connection refused gives ProviderError network, naming the socket error code', async () => {
  const port = await refusedPort();
  const dead = createOpenAiLlm('Dead', { url: `http://127.0.0.1:${port}/v1`, model_name: 'm' });
  await rejectsWith(collect(dead.stream(req())), 'network');
  const err = await rejectsWith(dead.complete(req()), 'network');
  assert.match(err.message, /connection failed \(ECONNREFUSED\)/);
});

test('an already aborted signal fails at once with an AbortError', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(collect(llm.stream(req({ signal: ac.signal }))), { name: 'AbortError' });
});

test('complete() returns the whole answer without think blocks', async () => {
  fake.chat = { chunks: ['<think>hmm</think>', 'The answer', ' is 42.'] };
  assert.equal(await llm.complete(req()), 'The answer is 42.');
  assert.ok(!fake.last().body.stream);
});

test('factory: reference key spellings, types and config errors', async () => {
  fake.chat = { chunks: ['ok'] };
  const viaUrl = createLlm('DeepSeekLLM', { type: 'deepseek', url: fake.baseUrl, model: 'deepseek-chat' });
  assert.equal(viaUrl.model, 'deepseek-chat');
  assert.equal(await viaUrl.complete(req()), 'ok');
  // The reference's ollama block gives the bare server URL; the OpenAI API is under /v1.
  const ollama = createLlm('OllamaLLM', {
    type: 'ollama',
    base_url: fake.baseUrl.replace(/\/v1$/, ''),
    model_name: 'qwen2.5',
  });
  assert.equal(await ollama.complete(req()), 'ok');
  assert.equal(fake.last().body.model, 'qwen2.5');
  const full = createLlm('X', { type: 'openai', api_url: `${fake.baseUrl}/chat/completions`, model_name: 'm' });
  assert.equal(await full.complete(req()), 'ok');

  assert.throws(
    () => createLlm('Bad', { type: 'dify', model_name: 'm' }),
    (e: unknown) => e instanceof ProviderError && e.kind === 'config' && /LLM\.Bad\.type/.test(e.message),
  );
  assert.throws(() => createLlm('NoModel', { type: 'openai', base_url: fake.baseUrl }), /LLM\.NoModel\.model_name/);
  assert.throws(() => createLlm('NoKey', { type: 'openai', model_name: 'gpt-4o-mini' }), /LLM\.NoKey\.api_key/);
  assert.throws(
    () =>
      createLlm('Sample', {
        type: 'openai',
        model_name: 'm',
        url: 'https://api.deepseek.com',
        api_key: '你的deepseek web key',
      }),
    /LLM\.Sample\.api_key/,
  );
  assert.throws(() => createLlm('NoUrl', { type: 'vllm', model_name: 'm' }), /LLM\.NoUrl\.base_url/);
  assert.throws(
    () => createLlm('BadNum', { type: 'openai', base_url: fake.baseUrl, model_name: 'm', max_tokens: 'lots' }),
    /LLM\.BadNum\.max_tokens/,
  );
});
