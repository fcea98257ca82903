import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createSileroVad } from '../providers/vad/silero.js';
import { concat, flite, MIN_SILENCE_MS, silence } from '../providers/vad/vad-fixtures.js';
import type { VadSpec } from '../providers/types.js';
import { createOpusEncoder } from './opus.js';
import { UplinkProcessor, type UplinkResult } from './uplink.js';

const FRAME = 960; // 60 ms at 16 kHz

function opusPackets(pcm: Int16Array, rate = 16000): Buffer[] {
  const encoder = createOpusEncoder(rate, 60);
  const frame = (rate * 60) / 1000;
  const out: Buffer[] = [];
  for (let at = 0; at + frame <= pcm.length; at += frame) out.push(encoder.encode(pcm.slice(at, at + frame)));
  encoder.dispose();
  return out;
}

const verdicts = (results: UplinkResult[]) =>
  results.map((r) => `${r.speaking ? 'S' : '.'}${r.endOfUtterance ? 'E' : ''}`).join('');

describe('uplink processor (decode → 16 kHz → VAD, batched)', () => {
  let spec: VadSpec;
  let a: Buffer[];
  let b: Buffer[];

  before(() => {
    spec = createSileroVad('SileroVAD', { min_silence_duration_ms: MIN_SILENCE_MS }).spec;
    a = opusPackets(concat(silence(1), flite('what is the weather like today'), silence(1.2)));
    b = opusPackets(
      concat(silence(0.5), flite('please turn on the kitchen light'), silence(1.5), flite('thank you'), silence(1.2)),
    );
  });

  const alone = (packets: Buffer[]): UplinkResult[] => {
    const p = new UplinkProcessor();
    p.open(1, { rate: 16000, vad: spec });
    const out = packets.flatMap((packet) => p.process([{ id: 1, packet, vad: true }]));
    p.dispose();
    return out;
  };

  it('finds the utterances of each stream: speech, then an end of utterance after the silence', () => {
    const ra = verdicts(alone(a));
    const rb = verdicts(alone(b));
    assert.equal(ra.split('E').length - 1, 1, ra);
    assert.equal(rb.split('E').length - 1, 2, rb);
    assert.match(ra, /^\.+S+/);
    for (const r of alone(a)) assert.equal(r.pcm.length, FRAME);
  });

  it('runs the model only on windows that could be speech: digital silence is skipped (pre-gate)', () => {
    const p = new UplinkProcessor();
    p.open(1, { rate: 16000, vad: spec });
    const results = a.flatMap((packet) => p.process([{ id: 1, packet, vad: true }]));
    p.dispose();
    assert.equal(verdicts(results).split('E').length - 1, 1, 'the utterance is still found');
    const windows = Math.floor((a.length * FRAME) / 512);
    // a: 1 s of silence, ~1.9 s of speech, 1.2 s of silence (Opus keeps digital silence silent).
    assert.ok(p.modelWindows < windows - 50, `${p.modelWindows} of ${windows} windows scored`);
    assert.ok(p.modelWindows > 40, `${p.modelWindows} of ${windows} windows scored`);
  });

  it('decides every stream as if alone when many streams share one batch, whatever the batch size', () => {
    const expected = [verdicts(alone(a)), verdicts(alone(b))];
    for (const batchPackets of [2, 6, 32]) {
      const p = new UplinkProcessor();
      p.open(1, { rate: 16000, vad: spec });
      p.open(2, { rate: 16000, vad: spec });
      const got: UplinkResult[][] = [[], []];
      // Interleave the two streams, keeping each stream's own order.
      const interleaved = [];
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        if (a[i]) interleaved.push({ id: 1, packet: a[i]!, vad: true });
        if (b[i]) interleaved.push({ id: 2, packet: b[i]!, vad: true });
      }
      for (let at = 0; at < interleaved.length; at += batchPackets) {
        for (const r of p.process(interleaved.slice(at, at + batchPackets))) got[r.id - 1]!.push(r);
      }
      p.dispose();
      assert.deepEqual(got.map(verdicts), expected, `batches of ${batchPackets} packets`);
    }
  });

  it('survives a corrupted packet: flagged, no audio, and the next packets decode', () => {
    const p = new UplinkProcessor();
    p.open(1, { rate: 16000 });
    const [bad] = p.process([{ id: 1, packet: Buffer.from([0xff, 0xff, 0xff, 0x00, 0x13]), vad: false }]);
    assert.equal(bad?.decodeError, true);
    assert.equal(bad?.pcm.length, 0);
    const [good] = p.process([{ id: 1, packet: a[0]!, vad: false }]);
    assert.equal(good?.decodeError, false);
    assert.equal(good?.pcm.length, FRAME);
    p.dispose();
  });

  it('resamples other uplink rates to 16 kHz and drops empty packets without PLC', () => {
    const p = new UplinkProcessor();
    p.open(1, { rate: 24000 });
    const packets = opusPackets(new Int16Array(24000), 24000);
    const out = p.process(packets.map((packet) => ({ id: 1, packet, vad: false })));
    const total = out.reduce((n, r) => n + r.pcm.length, 0);
    const expected = (packets.length * 1440 * 2) / 3; // 60 ms at 24 kHz → at 16 kHz, less the filter's look-ahead
    assert.ok(total <= expected && total >= expected - 64, `${total} samples, ${expected} expected`);
    assert.equal(p.process([{ id: 1, packet: new Uint8Array(0), vad: false }])[0]?.pcm.length, 0);
    p.dispose();
  });

  it('marks results with the VAD epoch, and forgets closed streams', () => {
    const p = new UplinkProcessor();
    p.open(7, { rate: 16000, vad: spec });
    assert.equal(p.process([{ id: 7, packet: a[0]!, vad: true }])[0]?.epoch, 0);
    p.reset(7);
    assert.equal(p.process([{ id: 7, packet: a[1]!, vad: true }])[0]?.epoch, 1);
    p.close(7);
    assert.equal(p.streams, 0);
    assert.deepEqual(p.process([{ id: 7, packet: a[2]!, vad: true }]), []);
  });
});
