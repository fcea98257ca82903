import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../observability/log.js';
import { createSileroVad } from '../providers/vad/silero.js';
import { concat, flite, silence } from '../providers/vad/vad-fixtures.js';
import type { VadSpec } from '../providers/types.js';
import {
  AudioEngineClosedError,
  createInlineAudio,
  warmAudio,
  type AudioEngine,
  type UplinkResult,
} from './audio-engine.js';
import { audioWorkerCount, createWorkerAudio } from './audio-workers.js';
import { createOpusDecoder, createOpusEncoder } from './opus.js';

const OPUS = { complexity: 5, bitrate: 24000 };

function packets(pcm: Int16Array): Buffer[] {
  const encoder = createOpusEncoder(16000, 60);
  const out: Buffer[] = [];
  for (let at = 0; at + 960 <= pcm.length; at += 960) out.push(encoder.encode(pcm.slice(at, at + 960)));
  encoder.dispose();
  return out;
}

/** Streams two interleaved utterances through an engine; returns each stream's verdicts and audio length. */
async function run(engine: AudioEngine, spec: VadSpec, a: Buffer[], b: Buffer[]): Promise<string[]> {
  const got: UplinkResult[][] = [[], []];
  const channels = [0, 1].map((i) =>
    engine.openUplink({ rate: 16000, vad: spec }, { onResult: (r) => got[i]!.push(r), onError: (m) => assert.fail(m) }),
  );
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i]) channels[0]!.push(a[i]!, true);
    if (b[i]) channels[1]!.push(b[i]!, true);
    // Let the worker see batches of several sessions' packets, as under load.
    if (i % 8 === 7) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(channels.map((c) => c.whenDrained()));
  for (const c of channels) c.close();
  assert.equal(got[0]!.length, a.length);
  assert.equal(got[1]!.length, b.length);
  return got.map((rs) =>
    rs.map((r) => `${r.speaking ? 'S' : '.'}${r.endOfUtterance ? 'E' : ''}${r.pcm.length}`).join(' '),
  );
}

describe('audio engines', () => {
  let spec: VadSpec;
  let a: Buffer[];
  let b: Buffer[];
  let workers: AudioEngine;

  before(() => {
    spec = createSileroVad('SileroVAD', {}).spec;
    a = packets(concat(silence(0.5), flite('what time is it'), silence(1)));
    b = packets(concat(silence(1), flite('turn the light on'), silence(1)));
    workers = createWorkerAudio(2, silentLogger());
  });
  after(() => workers.close());

  it('worker threads decode and decide exactly as the main thread does', async () => {
    const inline = createInlineAudio();
    const expected = await run(inline, spec, a, b);
    await inline.close();
    assert.match(expected[0]!, /S960.*E960/);
    assert.deepEqual(await run(workers, spec, a, b), expected);
  });

  it('encodes frames off the main thread, in order, into packets that decode to whole frames', async () => {
    const encoder = workers.openEncoder(24000, 60, OPUS);
    const tone = (f: number) =>
      Int16Array.from({ length: 1440 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * f * i) / 24000)));
    const frames = [tone(440), new Int16Array(1440), tone(880)];
    const copies = [...frames, tone(220)].map((f) => f.slice());
    const [first, second] = await Promise.all([encoder.prepare(frames), encoder.prepare([tone(220)])]);
    assert.equal(first.length, 3);
    assert.equal(second.length, 1);
    const decoder = createOpusDecoder(24000);
    for (const p of [...first, ...second]) assert.equal(decoder.decode(encoder.packet(p)).length, 1440);
    decoder.dispose();
    // Byte for byte what the main thread would have sent, in the same order (Opus encoding is deterministic).
    const inline = createInlineAudio();
    const reference = inline.openEncoder(24000, 60, OPUS);
    const expected = copies.map((f) => reference.packet(f));
    assert.deepEqual(
      [...first, ...second].map((p) => encoder.packet(p)),
      expected,
    );
    reference.close();
    await inline.close();
    encoder.close();
  });

  it('while a batch is with the worker, later records wait and go as one message; urgent frames do not wait', async () => {
    const engine = createWorkerAudio(1, silentLogger());
    try {
      const encoder = engine.openEncoder(24000, 60, OPUS);
      const seen: UplinkResult[] = [];
      const uplink = engine.openUplink(
        { rate: 16000 },
        { onResult: (r) => seen.push(r), onError: (m) => assert.fail(m) },
      );
      // Keeps the worker busy (200 frames to encode) while packets come in one event-loop turn at a time.
      const long = encoder.prepare(Array.from({ length: 200 }, () => new Int16Array(1440).fill(3000)));
      for (const p of a.slice(0, 20)) {
        uplink.push(p, false);
        await new Promise((r) => setImmediate(r));
      }
      const first = encoder.prepare([new Int16Array(1440)], true);
      assert.equal((await first).length, 1);
      assert.equal((await long).length, 200);
      await uplink.whenDrained();
      assert.equal(seen.length, 20);
      // One message per turn would be 22; in flight one at a time, the 20 packets wait in a few batches.
      assert.ok(engine.batchesPosted <= 8, `${engine.batchesPosted} messages`);
      uplink.close();
      encoder.close();
    } finally {
      await engine.close();
    }
  });

  it('close() drops work in flight: pending encodes reject, drained streams resolve, later pushes are ignored', async () => {
    const engine = createWorkerAudio(1, silentLogger());
    const encoder = engine.openEncoder(16000, 60, OPUS);
    const seen: UplinkResult[] = [];
    const uplink = engine.openUplink({ rate: 16000 }, { onResult: (r) => seen.push(r), onError: () => {} });
    const rejected = assert.rejects(
      encoder.prepare(Array.from({ length: 50 }, () => new Int16Array(960))),
      AudioEngineClosedError,
    );
    for (const p of a) uplink.push(p, false);
    await engine.close();
    await rejected;
    await uplink.whenDrained();
    const count = seen.length;
    uplink.push(a[0]!, false);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.length, count);
    await engine.close(); // idempotent
  });

  it('warm-up runs a frame through every thread, and reports a VAD model that cannot load', async () => {
    const opts = { rate: 24000, frameMs: 60, opus: OPUS };
    assert.equal(await warmAudio(workers, { ...opts, vad: spec }), undefined);
    const missing = { ...spec, modelPath: '/nonexistent/silero.onnx' } as VadSpec;
    const engine = createWorkerAudio(2, silentLogger());
    try {
      assert.match((await warmAudio(engine, { ...opts, vad: missing })) ?? '', /silero|onnx|model/i);
    } finally {
      await engine.close();
    }
    // The engine stays usable after a warm-up: a new stream decodes and decides as before.
    assert.match((await run(workers, spec, a, b))[0]!, /S960.*E960/);
  });

  it('sizes the pool from the setting: auto keeps a CPU for the main thread', () => {
    assert.equal(audioWorkerCount('auto', 2), 1);
    assert.equal(audioWorkerCount('auto', 1), 1);
    assert.equal(audioWorkerCount('auto', 16), 4);
    assert.equal(audioWorkerCount(0, 8), 0);
    assert.equal(audioWorkerCount(3, 2), 3);
  });
});
