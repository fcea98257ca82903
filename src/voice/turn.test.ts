import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { defaultConfig, validateConfig } from '../config/load.js';
import { ConfigStore } from '../config/store.js';
import { silentLogger } from '../observability/log.js';
import { Metrics } from '../observability/metrics.js';
import type { Lease } from '../providers/registry.js';
import {
  ProviderError,
  type LlmEvent,
  type LlmProvider,
  type LlmRequest,
  type PcmChunk,
  type TtsProvider,
} from '../providers/types.js';
import { FakeSocket } from '../session/fake-socket.js';
import { Scope } from '../session/scope.js';
import { Sender } from '../session/sender.js';
import { createInlineAudio } from './audio-engine.js';
import { createWorkerAudio } from './audio-workers.js';
import { Dialogue } from './dialogue.js';
import { createDownlinkEncoder } from './downlink.js';
import { createOpusDecoder } from './opus.js';
import { SentenceCache } from './sentence-cache.js';
import { Turn, type TurnInput, type TurnSession } from './turn.js';

type Json = { type: string } & Record<string, unknown>;

const RATE = 16000;
const FRAME_MS = 20;

/** Resolves when `signal` aborts, rejecting as a provider's aborted request does. */
const aborted = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });

/** An LLM at the provider boundary: streams `tokens`, then fails with `failWith` or waits for abort with `hang`. */
function fakeLlm(tokens: string[], end: { failWith?: Error; hang?: boolean } = {}) {
  const calls: LlmRequest[] = [];
  const provider: LlmProvider = {
    name: 'fake-llm',
    model: 'fake',
    async *stream(req): AsyncIterable<LlmEvent> {
      calls.push(req);
      for (const text of tokens) yield { type: 'text', text };
      if (end.failWith) throw end.failWith;
      if (end.hang) await aborted(req.signal);
    },
    complete: async () => tokens.join(''),
    dispose: async () => {},
  };
  return { provider, calls };
}

/** A TTS at the provider boundary: `frames` (2) frames of audio per sentence; one containing `failOn` fails; `hang` waits. */
function fakeTts(opts: { failOn?: string; hang?: boolean; frames?: number } = {}) {
  const spoken: string[] = [];
  const signals: AbortSignal[] = [];
  const provider: TtsProvider = {
    name: 'fake-tts',
    async *synthesize(text, call): AsyncIterable<PcmChunk> {
      spoken.push(text);
      signals.push(call.signal);
      if (opts.failOn && text.includes(opts.failOn)) throw new ProviderError('fake-tts', 'http', 'HTTP 500');
      if (opts.hang) await aborted(call.signal);
      yield { sampleRate: RATE, samples: new Int16Array((RATE * FRAME_MS * (opts.frames ?? 2)) / 1000).fill(1000) };
    },
    dispose: async () => {},
  };
  return { provider, spoken, signals };
}

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A session as a turn sees it: the real send path over a fake socket that keeps up (the device), real Opus
 * encoding, real metrics and config; only the providers are fakes.
 */
function harness(opts: { audioWorkers?: number; sentences?: SentenceCache } = {}) {
  const config = new ConfigStore(validateConfig({ xiaozhi: { audio_params: { frame_duration: FRAME_MS } } }).config);
  const metrics = new Metrics({ defaultMetrics: false });
  const scope = new Scope('session');
  const engine = opts.audioWorkers ? createWorkerAudio(opts.audioWorkers, silentLogger()) : createInlineAudio();
  const encoder = createDownlinkEncoder(engine, RATE, FRAME_MS, { complexity: 0, bitrate: 24000 });
  closers.push(
    () => metrics.close(),
    () => engine.close(),
    () => encoder.dispose(),
    () => scope.close(),
  );
  const socket = new FakeSocket();
  socket.autoFlush = true;
  // One frame in the socket at a time: when the socket stops taking frames, the sender's queue fills at once.
  const send = new Sender(socket, metrics, { highWaterBytes: 1, maxQueuedBytes: () => 1 << 20 });
  /** Every message and audio packet the device was sent, in order. */
  const wire = (): (Json | 'audio')[] =>
    socket.frames.map((f) => (f.binary ? 'audio' : (JSON.parse(String(f.data)) as Json)));
  const closed: string[] = [];
  const session: TurnSession = {
    scope,
    ctx: { config, metrics },
    send,
    log: silentLogger(),
    sessionId: 'session-1',
    features: {},
    privateConfig: undefined,
    speaking: false,
    close: (_code, reason) => closed.push(reason),
  };
  let released = 0;
  const lease = <T>(provider: T): Lease<T> => ({
    provider,
    alias: 'fake',
    stale: false,
    release: () => released++,
  });
  const dialogue = new Dialogue();
  const start = (input: TurnInput, llm?: LlmProvider, tts?: TtsProvider) =>
    new Turn(
      {
        session,
        dialogue,
        llm: llm && lease(llm),
        tts: tts && lease(tts),
        encoder,
        sentences: opts.sentences,
        tools: () => new Map(),
      },
      input,
    );
  const messages = () => wire().filter((m): m is Json => m !== 'audio');
  const stops = () => messages().filter((m) => m.type === 'tts' && m.state === 'stop').length;
  const sentences = () =>
    messages()
      .filter((m) => m.state === 'sentence_start')
      .map((m) => m.text);
  const providerErrors = async (provider: string) =>
    (await metrics.providerErrors.get()).values
      .filter((v) => v.labels.kind === provider)
      .reduce((n, v) => n + v.value, 0);
  /** Resolves once the device has been sent `n` audio packets (the turn is speaking). */
  const audioSent = async (n = 1) => {
    while (wire().filter((m) => m === 'audio').length < n) await new Promise((r) => setImmediate(r));
  };
  return {
    session,
    scope,
    wire,
    dialogue,
    start,
    messages,
    stops,
    sentences,
    providerErrors,
    audioSent,
    closed,
    released: () => released,
    socket,
    send,
    encoder,
  };
}

describe('Turn', () => {
  it('speaks the LLM reply sentence by sentence and ends with exactly one tts stop', async () => {
    const h = harness();
    const llm = fakeLlm(['Hello there. ', 'How are ', 'you?']);
    const tts = fakeTts();
    const turn = h.start({ text: 'hi', echoStt: true }, llm.provider, tts.provider);
    assert.equal(h.session.speaking, true);
    assert.equal(await turn.done, 'completed');
    const types = h.messages().map((m) => `${m.type}:${String(m.state ?? '')}`);
    assert.deepEqual(types.slice(0, 3), ['stt:', 'tts:start', 'llm:']);
    assert.deepEqual(h.sentences(), ['Hello there.', 'How are you?']);
    assert.deepEqual(tts.spoken, ['Hello there.', 'How are you?']);
    assert.equal(h.wire().filter((m) => m === 'audio').length, 4, 'two frames per sentence, real Opus');
    assert.equal(h.stops(), 1);
    assert.deepEqual(h.wire().at(-1), { type: 'tts', state: 'stop', session_id: 'session-1' }, 'stop comes last');
    assert.equal(h.session.speaking, false);
    assert.equal(h.released(), 2, 'both leases are released');
    assert.deepEqual(
      h.dialogue.history.map((m) => m.role),
      ['user', 'assistant'],
    );
    assert.equal(turn.active, false);
  });

  it('abort stops at once: queued audio is dropped, one tts stop is the last thing sent, the providers are aborted', async () => {
    const h = harness();
    const llm = fakeLlm(['First sentence. '], { hang: true });
    const tts = fakeTts({ frames: 20 });
    const turn = h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider);
    await h.audioSent();
    // The device stops reading: paced frames now wait in the sender's queue.
    h.socket.autoFlush = false;
    while (h.send.queuedBytes === 0) await new Promise((r) => setTimeout(r, FRAME_MS));
    turn.abort('barge-in');
    const stop = { type: 'tts', state: 'stop', session_id: 'session-1' };
    assert.equal(h.send.queuedBytes, JSON.stringify(stop).length, 'queued audio dropped; only the stop waits');
    turn.abort('again');
    h.socket.autoFlush = true;
    h.socket.flush();
    assert.equal(await turn.done, 'aborted');
    await new Promise((r) => setTimeout(r, FRAME_MS * 3));
    assert.equal(h.stops(), 1, 'exactly one stop, however many aborts');
    assert.deepEqual(h.wire().at(-1), stop, 'no audio after stop');
    assert.ok(h.wire().filter((m) => m === 'audio').length < 20, 'the queued audio was dropped, not played');
    assert.equal(llm.calls[0]!.signal.aborted, true, 'the LLM stream was aborted for real');
    assert.equal(h.released(), 2);
    assert.equal(await h.providerErrors('llm'), 0, 'an abort is not a provider failure');
  });

  it('an LLM that fails before any text: the turn fails and still ends with one tts stop', async () => {
    const h = harness();
    const llm = fakeLlm([], { failWith: new ProviderError('fake-llm', 'http', 'HTTP 503') });
    const turn = h.start({ text: 'hi', echoStt: true }, llm.provider, fakeTts().provider);
    assert.equal(await turn.done, 'failed');
    assert.equal(h.stops(), 1);
    assert.equal(await h.providerErrors('llm'), 1);
    assert.equal(h.released(), 2);
    assert.equal(h.session.speaking, false);
  });

  it('an LLM that fails mid-reply: what was said is spoken, then the fallback sentence, then one tts stop', async () => {
    const h = harness();
    const llm = fakeLlm(['One full sentence. ', 'And half'], {
      failWith: new ProviderError('fake-llm', 'network', 'reset'),
    });
    const tts = fakeTts();
    const turn = h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider);
    assert.equal(await turn.done, 'failed');
    assert.deepEqual(tts.spoken, ['One full sentence.', defaultConfig().system_error_response]);
    assert.deepEqual(
      h.dialogue.history.filter((m) => m.role === 'assistant').map((m) => m.content),
      ['One full sentence.'],
      "the fallback is not remembered as the model's answer",
    );
    assert.equal(h.stops(), 1);
    assert.deepEqual(h.wire().at(-1), { type: 'tts', state: 'stop', session_id: 'session-1' });
  });

  it('a TTS failure for one sentence: the others are spoken, the turn completes with one tts stop', async () => {
    const h = harness();
    const llm = fakeLlm(['Good one. ', 'Broken one. ', 'Last one.']);
    const tts = fakeTts({ failOn: 'Broken' });
    const turn = h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider);
    assert.equal(await turn.done, 'completed');
    assert.deepEqual(tts.spoken, ['Good one.', 'Broken one.', 'Last one.']);
    assert.equal(h.wire().filter((m) => m === 'audio').length, 4, 'the two good sentences');
    assert.equal(await h.providerErrors('tts'), 1);
    assert.equal(h.stops(), 1);
  });

  it('audio the audio thread cannot encode: not a TTS failure, the turn still ends with one tts stop', async () => {
    const h = harness({ audioWorkers: 1 });
    h.encoder.dispose(); // its worker stream is gone: every encode is refused with AudioEngineClosedError
    const tts = fakeTts();
    const turn = h.start({ text: 'hi', echoStt: false }, fakeLlm(['Hello. ']).provider, tts.provider);
    assert.equal(await turn.done, 'completed');
    assert.deepEqual(tts.spoken, ['Hello.']);
    assert.equal(h.wire().filter((m) => m === 'audio').length, 0);
    assert.equal(await h.providerErrors('tts'), 0);
    assert.equal(h.stops(), 1);
  });

  it('no LLM configured: says so and ends with one tts stop', async () => {
    const h = harness();
    const turn = h.start({ text: 'hi', echoStt: false }, undefined, fakeTts().provider);
    assert.equal(await turn.done, 'no_llm');
    assert.equal(h.sentences().length, 1);
    assert.equal(h.stops(), 1);
  });

  it('the session closing mid-turn ends it with one tts stop and aborts the provider calls', async () => {
    const h = harness();
    const llm = fakeLlm(['Still talking. ', 'More '], { hang: true });
    const tts = fakeTts({ hang: true });
    const turn = h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider);
    while (!tts.signals.length) await new Promise((r) => setImmediate(r));
    h.scope.close();
    assert.equal(await turn.done, 'aborted');
    assert.equal(h.stops(), 1);
    assert.equal(llm.calls[0]!.signal.aborted, true);
    assert.equal(tts.signals[0]!.aborted, true);
    assert.equal(h.released(), 2);
    assert.equal(await h.providerErrors('tts'), 0);
    assert.equal(h.session.speaking, false);
  });

  it('a fixed reply with exitAfter speaks, stops once, then closes the session', async () => {
    const h = harness();
    const tts = fakeTts();
    const turn = h.start(
      { text: 'bye', echoStt: true, fixedReply: 'Goodbye.', exitAfter: true },
      undefined,
      tts.provider,
    );
    assert.equal(await turn.done, 'completed');
    assert.deepEqual(tts.spoken, ['Goodbye.']);
    assert.equal(h.stops(), 1);
    while (!h.closed.length) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(h.closed, ['exit']);
    assert.equal(h.dialogue.history.length, 0, 'a fixed reply is not part of the dialogue');
  });

  for (const audioWorkers of [0, 1]) {
    it(`fixed sentences are synthesized and encoded once, then reused; the model's are not (${audioWorkers ? 'worker' : 'inline'} engine)`, async () => {
      const sentences = new SentenceCache();
      const h = harness({ audioWorkers, sentences });
      const tts = fakeTts({ frames: 3 });
      const audio = () => h.socket.frames.filter((f) => f.binary).map((f) => Buffer.from(f.data as Buffer));
      for (let i = 0; i < 2; i++) {
        const turn = h.start({ text: 'bye', echoStt: false, fixedReply: 'Goodbye.' }, undefined, tts.provider);
        assert.equal(await turn.done, 'completed');
      }
      assert.deepEqual(tts.spoken, ['Goodbye.'], 'one TTS request for two turns');
      assert.equal(sentences.size, 1);
      const rawBytes = 3 * ((RATE * FRAME_MS) / 1000) * 2;
      assert.ok(sentences.bytes < rawBytes / 4, `kept as Opus, not raw frames (${sentences.bytes} of ${rawBytes} B)`);
      const [first, second] = [audio().slice(0, 3), audio().slice(3)];
      assert.equal(second.length, 3);
      assert.deepEqual(second, first, 'the same packets (each time from a fresh encoder state)');
      // A model's sentence is not kept; after the cached audio the session's encoder starts over and still decodes.
      const llm = fakeLlm(['Fine thanks.']);
      assert.equal(await h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider).done, 'completed');
      assert.equal(await h.start({ text: 'hi', echoStt: false }, llm.provider, tts.provider).done, 'completed');
      assert.deepEqual(tts.spoken, ['Goodbye.', 'Fine thanks.', 'Fine thanks.']);
      assert.equal(sentences.size, 1);
      const decoder = createOpusDecoder(RATE);
      for (const p of audio()) assert.equal(decoder.decode(p).length, (RATE * FRAME_MS) / 1000);
      decoder.dispose();
      // Another TTS instance (another voice, or the same after a reload) is not served the first one's audio.
      const other = fakeTts({ frames: 3 });
      await h.start({ text: 'bye', echoStt: false, fixedReply: 'Goodbye.' }, undefined, other.provider).done;
      assert.deepEqual(other.spoken, ['Goodbye.']);
    });
  }

  it('the sentence cache is bounded in entries and bytes, least recently used out first', () => {
    const cache = new SentenceCache(2, 1000);
    const packets = (bytes: number) => [Buffer.alloc(bytes)];
    cache.set('a', packets(100));
    cache.set('b', packets(100));
    assert.ok(cache.get('a'));
    cache.set('c', packets(100)); // 3 entries > 2: b (least recently used) goes
    assert.deepEqual([!!cache.get('a'), !!cache.get('b'), !!cache.get('c')], [true, false, true]);
    cache.set('d', packets(900)); // 1100 bytes > 1000: a, then nothing more
    assert.equal(cache.bytes, 1000);
    assert.deepEqual([!!cache.get('a'), !!cache.get('c'), !!cache.get('d')], [false, true, true]);
    cache.set('huge', packets(2000)); // larger than the whole cache: not kept
    assert.equal(cache.get('huge'), undefined);
  });
});
