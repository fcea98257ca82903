import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createOpusDecoder } from '../../src/voice/opus.js';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';
import { join16, offlineVoiceConfig as voiceConfig, silence, speechPcm, streamPcm } from '../support/speech.js';
import { sleep, waitFor } from '../support/wait.js';

const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';

/** Splits what the device received into JSON messages and binary frames, in arrival order. */
function timeline(dev: TestDevice): string[] {
  return dev.received.map((m) => (m.type === 'tts' ? `tts:${String(m.state)}` : String(m.type)));
}

describe('voice turn, fully offline (flite → Opus → Silero → pocketsphinx → fake LLM → flite → paced Opus)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(voiceConfig(fake));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('answers "what time is it" with the right messages in the right order and frames of the advertised size', async () => {
    fake.chat = { chunks: ['It is twelve ', 'o clock. ', 'Have a good lunch!'], delayMs: 10 };
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'offline-1' });
    const hello = await dev.hello();
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    // Count binary frames relative to the JSON stream so we can check they only come between start and stop.
    const order: string[] = [];
    dev.ws.on('message', (data: Buffer, isBinary: boolean) =>
      order.push(
        isBinary
          ? 'frame'
          : String((JSON.parse(data.toString()) as Json).state ?? (JSON.parse(data.toString()) as Json).type),
      ),
    );
    await streamPcm(dev, join16(silence(500), speechPcm('what time is it'), silence(1500)));
    const stt = await dev.next('stt', 10_000);
    assert.equal(stt.text, 'what time is it');
    await dev.next(isStop, 15_000);

    const seq = timeline(dev).filter((t) => t !== 'mcp' && t !== 'server');
    assert.deepEqual(seq.slice(0, 5), ['hello', 'stt', 'tts:start', 'llm', 'tts:sentence_start']);
    assert.equal(seq.at(-1), 'tts:stop');
    assert.deepEqual(
      dev.all((m) => m.state === 'sentence_start').map((m) => m.text),
      ['It is twelve o clock.', 'Have a good lunch!'],
    );
    const first = order.indexOf('start');
    const stop = order.lastIndexOf('stop');
    const frames = order.map((o, i) => (o === 'frame' ? i : -1)).filter((i) => i >= 0);
    assert.ok(frames.length > 10, `${frames.length} frames`);
    assert.ok(
      frames.every((i) => i > first && i < stop),
      'frames only between tts start and tts stop',
    );

    // Every frame decodes to exactly one advertised frame: 24000 Hz × 60 ms = 1440 samples.
    const rate = (hello.audio_params as Json).sample_rate as number;
    const decoder = createOpusDecoder(rate, 1);
    for (const p of dev.receivedOpus()) assert.equal(decoder.decode(p).length, (rate * 60) / 1000);
    decoder.dispose();

    // The LLM got the transcript; the latency report landed in /metrics.
    const msgs = fake.last('/v1/chat/completions').body.messages as { role: string; content: string }[];
    assert.equal(msgs.at(-1)?.content, 'what time is it');
    assert.ok((await metricValue(server, 'linus_turn_stage_seconds', { stage: 'total' })) > 0);
    assert.equal(await metricValue(server, 'linus_turns_total', { outcome: 'completed' }), 1);
    await dev.close();
  });

  it('paces the downlink: no burst beyond the pre-buffer, tts stop only after the audio has played', async () => {
    fake.chat = {
      chunks: [
        'This answer is long enough to need a few seconds of audio. ',
        'And here is a second sentence to be sure.',
      ],
    };
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'pacing-1' });
    await dev.hello();
    const arrivals: number[] = [];
    let stopAt = 0;
    dev.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) arrivals.push(performance.now());
      else if ((JSON.parse(data.toString()) as Json).state === 'stop') stopAt = performance.now();
    });
    dev.send({ type: 'listen', state: 'detect', text: 'tell me something' });
    await dev.next(isStop, 20_000);
    assert.ok(arrivals.length > 30);
    const span = arrivals.at(-1)! - arrivals[0]!;
    // N frames of 60 ms with a 3-frame pre-buffer cannot all arrive in less than (N-3)·60 ms.
    assert.ok(span >= (arrivals.length - 3) * 60 - 60, `${arrivals.length} frames arrived over ${span.toFixed(0)} ms`);
    // Lead: by the time frame i arrives, at most i+4 frames' worth of play time has been handed over.
    for (let i = 0; i < arrivals.length; i++) {
      const elapsed = arrivals[i]! - arrivals[0]!;
      assert.ok((i + 1) * 60 - elapsed <= 4 * 60 + 30, `frame ${i} is ${((i + 1) * 60 - elapsed).toFixed(0)} ms ahead`);
    }
    assert.ok(stopAt - arrivals[0]! >= arrivals.length * 60 - 30, 'tts stop comes after the last frame has played');
    await dev.close();
  });
});

describe('audio on the main thread (server.audio_workers: 0)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(voiceConfig(fake, { server: { audio_workers: 0 } }));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('hears the utterance and answers with whole frames, as with worker threads', async () => {
    fake.chat = { chunks: ['It is noon.'] };
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'inline-1' });
    await dev.hello();
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    await streamPcm(dev, join16(silence(500), speechPcm('what time is it'), silence(1500)));
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    await dev.next(isStop, 15_000);
    const decoder = createOpusDecoder(24000, 1);
    const packets = dev.receivedOpus();
    assert.ok(packets.length > 5, `${packets.length} frames`);
    for (const p of packets) assert.equal(decoder.decode(p).length, 1440);
    decoder.dispose();
    await dev.close();
  });
});

describe('abort, barge-in and failures (D9, B6)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let n = 0;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(
      voiceConfig(fake, { TTS: { FliteTTS: { type: 'flite', voice: 'slt', timeout_ms: 3000 } } }),
    );
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });
  const connect = async (mode: 'auto' | 'realtime' | 'manual' = 'auto', listen = true) => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: `abort-${n++}` });
    await dev.hello();
    if (listen) dev.send({ type: 'listen', state: 'start', mode });
    return dev;
  };
  /** A typed turn that must then work, proving the session survived. */
  const usable = async (dev: TestDevice) => {
    fake.chat = { chunks: ['Still here.'] };
    dev.send({ type: 'listen', state: 'detect', text: 'are you there' });
    await dev.next((m) => m.type === 'tts' && m.state === 'sentence_start' && m.text === 'Still here.', 10_000);
    await dev.next(isStop, 10_000);
  };

  it('abort mid-answer closes the LLM request, answers tts stop at once, and no frame follows', async (t) => {
    fake.chat = { chunks: Array.from({ length: 40 }, (_, i) => `Sentence number ${i}. `), delayMs: 150 };
    const dev = await connect();
    dev.send({ type: 'listen', state: 'detect', text: 'talk for a long time' });
    await dev.next((m) => m.state === 'sentence_start', 10_000);
    await waitFor(() => dev.binary.length > 0, 5000, 'first frame');
    const req = fake.last('/v1/chat/completions');
    const t0 = performance.now();
    dev.send({ type: 'abort' });
    await dev.next(isStop, 1000);
    // Speed is the benchmarks' business; the order is this test's: the stop comes before the answer would have ended.
    t.diagnostic(`tts stop ${(performance.now() - t0).toFixed(1)} ms after abort`);
    assert.ok(dev.all((m) => m.state === 'sentence_start').length < 40, 'the answer was cut, not played out');
    assert.equal(await req.closed, true, 'the LLM HTTP request was closed by the server');
    const framesAtStop = dev.binary.length;
    await sleep(400);
    assert.equal(dev.binary.length, framesAtStop, 'no frame after tts stop');
    assert.equal(dev.all(isStop).length, 1, 'exactly one tts stop');
    await usable(dev);
    await dev.close();
  });

  for (const [name, script] of [
    ['LLM HTTP 500', { status: 500 }],
    ['LLM hang (timeout)', { hang: true }],
  ] as const) {
    it(`${name}: the turn ends with tts stop and the session stays usable`, async () => {
      fake.chat = { ...script };
      const errors = () => metricValue(server, 'linus_provider_errors_total', { kind: 'llm' });
      const before = await errors();
      const dev = await connect();
      dev.send({ type: 'listen', state: 'detect', text: 'hello' });
      await dev.next((m) => m.type === 'stt', 5000);
      await dev.next(isStop, 8000);
      assert.equal(await errors(), before + 1, 'the failure is counted in linus_provider_errors_total{kind="llm"}');
      await usable(dev);
      await dev.close();
    });
  }

  it('a new utterance in realtime mode barges in: tts stop at once, the new words are heard', async () => {
    fake.chat = { chunks: Array.from({ length: 30 }, (_, i) => `Long answer part ${i}. `), delayMs: 100 };
    const dev = await connect('realtime');
    dev.send({ type: 'listen', state: 'detect', text: 'tell me a story' });
    await waitFor(() => dev.binary.length > 5, 10_000, 'the answer is playing');
    fake.chat = { chunks: ['Okay, stopping.'] };
    await streamPcm(dev, join16(speechPcm('what time is it'), silence(1500)), { speed: 2 });
    await dev.next(isStop, 5000);
    const stt = await dev.next((m) => m.type === 'stt' && m.text === 'what time is it', 10_000);
    assert.ok(stt);
    await dev.next(isStop, 10_000);
    await dev.close();
  });

  it('manual mode buffers until listen stop, then answers', async () => {
    fake.chat = { chunks: ['Manual answer.'] };
    const dev = await connect('manual');
    await streamPcm(dev, speechPcm('what time is it'), { speed: 3 });
    await sleep(300);
    assert.equal(dev.all('stt').length, 0, 'nothing happens before listen stop');
    dev.send({ type: 'listen', state: 'stop' });
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    await dev.next(isStop, 10_000);
    await dev.close();
  });

  it('a manual utterance that arrives in one chunk as the pipeline opens is heard: listen stop waits for the VAD', async () => {
    fake.chat = { chunks: ['Burst heard.'] };
    const dev = await connect('manual', false);
    const pcm = speechPcm('what time is it');
    const packets = dev.encodePcm(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    // One write: the first listen builds the voice pipeline, and its VAD lease is still pending for every frame after.
    dev.burst(() => {
      dev.send({ type: 'listen', state: 'start', mode: 'manual' });
      for (const p of packets) dev.sendOpus(p);
      dev.send({ type: 'listen', state: 'stop' });
    });
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    await dev.next(isStop, 10_000);
    await dev.close();
  });

  it('ignores a repeated listen start within 300 ms: the audio before it stays in the utterance', async () => {
    fake.chat = { chunks: ['Debounced.'] };
    const dev = await connect('manual', false);
    // Synthesized and encoded before the first start: under load that work alone can outlast the 300 ms window.
    const pcm = speechPcm('what time is it');
    const packets = dev.encodePcm(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    const half = packets.length >> 1;
    // Sent unpaced in one go: both starts leave together, as the firmware's jittered repeat does.
    dev.send({ type: 'listen', state: 'start', mode: 'manual' });
    for (const p of packets.slice(0, half)) dev.sendOpus(p);
    dev.send({ type: 'listen', state: 'start', mode: 'manual' });
    for (const p of packets.slice(half)) dev.sendOpus(p);
    dev.send({ type: 'listen', state: 'stop' });
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    await dev.next(isStop, 10_000);
    await dev.close();
  });

  it('silence and noise make no turn: the device keeps listening', async () => {
    const dev = await connect();
    await streamPcm(dev, silence(2000), { speed: 4 });
    await sleep(300);
    assert.equal(dev.all('stt').length, 0);
    assert.equal(dev.all('tts').length, 0);
    await dev.close();
  });
});

describe('wake word, typed text, exit and tools (B2, B4, B8)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let n = 0;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(
      voiceConfig(fake, {
        TTS: { FliteTTS: { type: 'flite' } },
        wakeup_words: ['hello linus'],
        exit_commands: ['exit', '退出'],
      }),
    );
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });
  const connect = async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: `talk-${n++}` });
    await dev.hello();
    return dev;
  };

  it('a wake word via detect greets through the LLM; other detect text is a typed turn', async () => {
    fake.chat = { chunks: ['Hi! How can I help?'] };
    const dev = await connect();
    dev.send({ type: 'listen', state: 'detect', text: 'Hello Linus!' });
    assert.equal((await dev.next('stt')).text, 'Hello Linus');
    await dev.next(isStop, 10_000);
    fake.chat = { chunks: ['Typed answer.'] };
    dev.send({ type: 'listen', state: 'detect', text: 'what is two plus two' });
    assert.equal((await dev.next('stt')).text, 'what is two plus two');
    await dev.next((m) => m.state === 'sentence_start' && m.text === 'Typed answer.', 10_000);
    await dev.next(isStop, 10_000);
    const msgs = fake.last('/v1/chat/completions').body.messages as { role: string; content: string }[];
    assert.deepEqual(
      msgs.filter((m) => m.role === 'user').map((m) => m.content),
      ['Hello Linus', 'what is two plus two'],
      'the dialogue history carries over',
    );
    await dev.close();
  });

  it('an exit command says goodbye, ends with tts stop, then closes', async () => {
    const dev = await connect();
    const before = fake.requests.length;
    dev.send({ type: 'listen', state: 'detect', text: 'Exit.' });
    await dev.next((m) => m.state === 'sentence_start' && m.text === 'Goodbye!', 5000);
    await dev.next(isStop, 10_000);
    const closed = await dev.closed;
    assert.equal(closed.code, 1000);
    assert.equal(fake.requests.length, before, 'an exit command needs no LLM');
  });

  it('the LLM exit intent speaks its goodbye and closes after tts stop', async () => {
    fake.chat = {
      toolCalls: [{ id: 'call_1', name: 'handle_exit_intent', arguments: '{"say_goodbye":"See you soon!"}' }],
    };
    const dev = await connect();
    dev.send({ type: 'listen', state: 'detect', text: 'I am done for today' });
    await dev.next((m) => m.state === 'sentence_start' && m.text === 'See you soon!', 10_000);
    await dev.next(isStop, 10_000);
    await dev.closed;
  });

  it('calls a device MCP tool and feeds the result back to the LLM', async () => {
    const dev = await connect();
    const init = await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'initialize');
    dev.send({ type: 'mcp', payload: { jsonrpc: '2.0', id: (init.payload as Json).id, result: {} } });
    const list = await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/list');
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: (list.payload as Json).id,
        result: {
          tools: [
            {
              name: 'self.audio_speaker.set_volume',
              description: 'Set volume',
              inputSchema: { type: 'object', properties: { volume: { type: 'integer' } } },
            },
          ],
        },
      },
    });
    await sleep(50);
    fake.chat = { toolCalls: [{ id: 'call_v', name: 'self_audio_speaker_set_volume', arguments: '{"volume":30}' }] };
    dev.send({ type: 'listen', state: 'detect', text: 'turn the volume down' });
    const call = await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'tools/call', 10_000);
    const payload = call.payload as Json;
    assert.deepEqual(payload.params, { name: 'self.audio_speaker.set_volume', arguments: { volume: 30 } });
    fake.chat = { chunks: ['Volume set to thirty.'] };
    dev.send({
      type: 'mcp',
      payload: {
        jsonrpc: '2.0',
        id: payload.id,
        result: { content: [{ type: 'text', text: 'true' }], isError: false },
      },
    });
    await dev.next((m) => m.state === 'sentence_start' && m.text === 'Volume set to thirty.', 10_000);
    await dev.next(isStop, 10_000);
    const second = fake.last('/v1/chat/completions').body;
    const tools = second.tools as { function: { name: string } }[];
    assert.ok(tools.some((t) => t.function.name === 'self_audio_speaker_set_volume'));
    const messages = second.messages as { role: string; content: string; tool_call_id?: string }[];
    assert.deepEqual(
      messages.find((m) => m.role === 'tool'),
      { role: 'tool', tool_call_id: 'call_v', content: 'true' },
    );
    await dev.close();
  });
});

describe('no LLM configured', () => {
  it('tells the user in speech, once per turn, and still ends with tts stop', async () => {
    const server = await startTestServer({ selected_module: { LLM: '' } });
    try {
      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'no-llm' });
      await dev.hello();
      dev.send({ type: 'listen', state: 'detect', text: 'hello there' });
      const said = await dev.next((m) => m.state === 'sentence_start', 5000);
      assert.match(String(said.text), /No language model is configured/);
      await dev.next(isStop, 10_000);
      assert.equal(dev.all((m) => m.state === 'sentence_start').length, 1);
      assert.ok(dev.binary.length > 0, 'it is spoken, not just shown');
      await dev.close();
    } finally {
      await server.stop();
    }
  });
});

describe('first-result deadlines: a provider that accepts the request and never answers', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let n = 0;
  const fakeBlock = () => ({ base_url: fake.baseUrl, api_key: 'test-key', timeout_ms: 60_000 });
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(
      voiceConfig(fake, {
        selected_module: { VAD: 'SileroVAD', ASR: 'FakeASR', LLM: 'Fake', TTS: 'FliteTTS' },
        LLM: { Fake: { type: 'openai', model_name: 'fake-model', first_token_timeout_ms: 500, ...fakeBlock() } },
        ASR: { FakeASR: { type: 'openai', result_timeout_ms: 500, ...fakeBlock() } },
        TTS: {
          FliteTTS: { type: 'flite', voice: 'slt' },
          FakeTTS: { type: 'openai', first_audio_timeout_ms: 500, ...fakeBlock() },
        },
        system_error_response: 'Sorry, that took too long.',
      }),
    );
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });
  const connect = async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: `deadline-${n++}` });
    await dev.hello();
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    return dev;
  };
  const errors = (kind: string) => metricValue(server, 'linus_provider_errors_total', { kind });

  it('LLM: past first_token_timeout_ms the request is cancelled, counted, the fallback is spoken, then tts stop', async () => {
    fake.chat = { stall: true };
    const before = await errors('llm');
    const dev = await connect();
    const asked = fake.requests.length;
    dev.send({ type: 'listen', state: 'detect', text: 'hello' });
    const said = await dev.next((m) => m.state === 'sentence_start', 10_000);
    assert.equal(said.text, 'Sorry, that took too long.');
    await dev.next(isStop, 10_000);
    assert.ok(dev.binary.length > 0, 'the fallback is heard, not just shown');
    assert.equal(await errors('llm'), before + 1);
    assert.equal(await (await fake.request(asked)).closed, true, 'the LLM request was cancelled');
    const turn = timeline(dev).filter((e) => e === 'stt' || e.startsWith('tts:'));
    assert.deepEqual(turn, ['stt', 'tts:start', 'tts:sentence_start', 'tts:stop']);
    await dev.close();
  });

  it('ASR: past result_timeout_ms the user hears the fallback and the turn ends with tts stop', async () => {
    fake.transcription = { hang: true };
    const before = await errors('asr');
    const dev = await connect();
    await streamPcm(dev, join16(speechPcm('what time is it'), silence(1500)), { speed: 2 });
    const said = await dev.next((m) => m.state === 'sentence_start', 15_000);
    assert.equal(said.text, 'Sorry, that took too long.');
    await dev.next(isStop, 10_000);
    assert.equal(await errors('asr'), before + 1);
    assert.equal(dev.all('stt').length, 0, 'nothing was recognized');
    assert.equal(fake.last('/v1/audio/transcriptions').closedEarly, true, 'the upload was cancelled');
    await dev.close();
  });

  it('TTS: past first_audio_timeout_ms the rest of the answer is shown without waiting again, then tts stop', async () => {
    const base = server.ctx.config.current;
    const own = await startTestServer({
      selected_module: { ...base.selected_module, TTS: 'FakeTTS' },
      LLM: base.LLM,
      ASR: base.ASR,
      TTS: base.TTS,
    });
    try {
      fake.speech = { hang: true };
      fake.chat = { chunks: ['One thing. ', 'Two things. ', 'Three things.'] };
      const before = await metricValue(own, 'linus_provider_errors_total', { kind: 'tts' });
      const speechAsked = fake.requests.filter((r) => r.path === '/v1/audio/speech').length;
      const dev = await TestDevice.connect({ url: own.url('/xiaozhi/v1/', 'ws'), deviceId: 'deadline-tts' });
      await dev.hello();
      dev.send({ type: 'listen', state: 'detect', text: 'count' });
      await dev.next(isStop, 15_000);
      const shown = dev.all((m) => m.state === 'sentence_start').map((m) => m.text);
      assert.deepEqual(shown, ['One thing.', 'Two things.', 'Three things.']);
      assert.equal(await metricValue(own, 'linus_provider_errors_total', { kind: 'tts' }), before + 1);
      assert.equal(
        fake.requests.filter((r) => r.path === '/v1/audio/speech').length - speechAsked,
        1,
        'one wait for the first sentence, none for the others',
      );
      await dev.close();
    } finally {
      await own.stop();
    }
  });
});

describe('a device that goes away while its words are being recognized', () => {
  it('ends the ASR call quietly: no warning, no ASR failure counted', async (t) => {
    const fake = await FakeOpenAi.start();
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const server = await startTestServer(
      voiceConfig(fake, {
        log: { log_level: 'debug' },
        selected_module: { VAD: 'SileroVAD', ASR: 'FakeASR', LLM: 'Fake', TTS: 'FliteTTS' },
        ASR: { FakeASR: { type: 'openai', base_url: fake.baseUrl, api_key: 'k', timeout_ms: 60_000 } },
      }),
      { logger },
    );
    t.after(async () => {
      await server.stop();
      await fake.stop();
    });
    fake.transcription = { hang: true };
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'gone-while-asr' });
    await dev.hello();
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    await streamPcm(dev, join16(silence(500), speechPcm('what time is it'), silence(1500)));
    await waitFor(() => fake.requests.some((r) => r.path === '/v1/audio/transcriptions'), 15_000, 'the ASR request');
    await dev.close();
    await waitFor(() => lines.some((l) => l.msg === 'ASR ended with the session'), 10_000, 'the debug line');
    assert.deepEqual(
      lines.filter((l) => l.level >= 40),
      [],
      'nothing at WARN or above',
    );
    assert.equal(await metricValue(server, 'linus_provider_errors_total', { kind: 'asr' }), 0);
  });
});
