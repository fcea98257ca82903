import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../config/load.js';
import { downlinkOpus } from './downlink.js';
import {
  createOpusDecoder,
  createOpusEncoder,
  OpusDecodeError,
  opusBackend,
  type OpusBackend,
  type OpusSettings,
} from './opus.js';
import { createResampler } from './resample.js';
import { readWav } from './wav.js';

let speech16k: Int16Array;
let speech24k: Int16Array;

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'linus-opus-'));
  try {
    const file = join(dir, 'x.wav');
    execFileSync('flite', ['-voice', 'slt', '-t', 'what is the weather like today', '-o', file]);
    const wav = readWav(readFileSync(file));
    assert.equal(wav.sampleRate, 16000);
    speech16k = wav.samples;
    const r = createResampler(16000, 24000);
    const a = r.push(speech16k);
    const b = r.flush();
    speech24k = new Int16Array(a.length + b.length);
    speech24k.set(a);
    speech24k.set(b, a.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Encodes whole frames, decodes them, and returns the packets and the decoded signal. */
function roundTrip(
  backend: OpusBackend,
  rate: number,
  pcm: Int16Array,
  settings: Partial<OpusSettings> = {},
): { packets: Buffer[]; decoded: Int16Array } {
  const encoder = createOpusEncoder(rate, 60, { backend, ...settings });
  const decoder = createOpusDecoder(rate, 1, { backend });
  try {
    const packets: Buffer[] = [];
    const frames: Int16Array[] = [];
    for (let at = 0; at + encoder.frameSize <= pcm.length; at += encoder.frameSize) {
      const packet = encoder.encode(pcm.subarray(at, at + encoder.frameSize));
      packets.push(packet);
      const frame = decoder.decode(packet);
      assert.equal(frame.length, encoder.frameSize);
      frames.push(frame);
    }
    const decoded = new Int16Array(frames.length * encoder.frameSize);
    frames.forEach((f, i) => decoded.set(f, i * encoder.frameSize));
    return { packets, decoded };
  } finally {
    encoder.dispose();
    decoder.dispose();
  }
}

/** Best normalized correlation between a and b delayed by 0..maxLag samples (Opus adds a few ms of delay). */
function bestCorrelation(a: Int16Array, b: Int16Array, maxLag: number): number {
  let best = -1;
  for (let lag = 0; lag <= maxLag; lag++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let i = 0; i + lag < b.length && i < a.length; i++) {
      const x = a[i] ?? 0;
      const y = b[i + lag] ?? 0;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    best = Math.max(best, ab / Math.sqrt(aa * bb || 1));
  }
  return best;
}

/** SNR (dB) of b against a, with b delayed by the lag (0..maxLag samples) that suits it best (Opus adds a few ms). */
function alignedSnr(a: Int16Array, b: Int16Array, maxLag: number): number {
  let best = -Infinity;
  for (let lag = 0; lag <= maxLag; lag++) {
    let signal = 0;
    let noise = 0;
    for (let i = 0; i + lag < b.length && i < a.length; i++) {
      const x = a[i] ?? 0;
      signal += x * x;
      noise += (x - (b[i + lag] ?? 0)) ** 2;
    }
    best = Math.max(best, 10 * Math.log10(signal / (noise || 1)));
  }
  return best;
}

describe('downlink encoder settings', () => {
  it('the default (cheaper) settings decode speech within 1 dB of complexity 5 at 24 kbit/s', () => {
    const backend = opusBackend();
    const snr = (settings: OpusSettings): number =>
      alignedSnr(speech24k, roundTrip(backend, 24000, speech24k, settings).decoded, 400);
    const defaults = downlinkOpus(validateConfig({}).config);
    const reference = snr({ complexity: 5, bitrate: 24_000 });
    const chosen = snr(defaults);
    assert.ok(reference > 15, `reference SNR ${reference.toFixed(1)} dB`);
    assert.ok(
      chosen >= reference - 1,
      `defaults ${JSON.stringify(defaults)}: ${chosen.toFixed(2)} dB vs ${reference.toFixed(2)} dB`,
    );
    // The score tells settings apart: a starved encoder falls far below.
    const starved = snr({ complexity: 0, bitrate: 8000 });
    assert.ok(starved < reference - 3, `8 kbit/s: ${starved.toFixed(2)} dB vs ${reference.toFixed(2)} dB`);
  });
});

for (const backend of ['native', 'wasm'] as const) {
  describe(`opus (${backend})`, () => {
    for (const rate of [16000, 24000]) {
      it(`round-trips speech at ${rate} Hz in 60 ms frames at about 24 kbps`, () => {
        const pcm = rate === 16000 ? speech16k : speech24k;
        const { packets, decoded } = roundTrip(backend, rate, pcm);
        const bytes = packets.reduce((n, p) => n + p.length, 0);
        const kbps = (bytes * 8) / (packets.length * 60);
        assert.ok(kbps > 15 && kbps < 33, `${kbps.toFixed(1)} kbps`);
        const corr = bestCorrelation(pcm, decoded, rate / 50);
        assert.ok(corr > 0.9, `correlation ${corr.toFixed(3)}`);
      });
    }

    it('returns no samples for an empty packet instead of 360 ms of concealment', () => {
      const decoder = createOpusDecoder(16000, 1, { backend });
      assert.equal(decoder.decode(Buffer.alloc(0)).length, 0);
      decoder.dispose();
    });

    it('decodes a 1-byte DTX packet (TOC only) to one frame of comfort noise', () => {
      const decoder = createOpusDecoder(16000, 1, { backend });
      const samples = decoder.decode(Buffer.from([(11 << 3) | 0])); // SILK wideband 60 ms, one empty frame
      assert.equal(samples.length, 960);
      decoder.dispose();
    });

    it('throws OpusDecodeError on a corrupted packet and keeps working afterwards', () => {
      const { packets } = roundTrip(backend, 16000, speech16k.subarray(0, 960 * 3));
      const decoder = createOpusDecoder(16000, 1, { backend });
      assert.equal(decoder.decode(packets[0] ?? Buffer.alloc(0)).length, 960);
      for (const bad of [
        Buffer.from([0xff, 0x00]),
        Buffer.from([0x03]),
        Buffer.from(Array.from({ length: 50 }, (_, i) => (i * 37 + 11) & 255)),
      ]) {
        assert.throws(
          () => decoder.decode(bad),
          (e: unknown) => e instanceof OpusDecodeError && /corrupted/.test(e.message),
        );
      }
      assert.equal(decoder.decode(packets[1] ?? Buffer.alloc(0)).length, 960);
      decoder.reset();
      assert.equal(decoder.decode(packets[2] ?? Buffer.alloc(0)).length, 960);
      decoder.dispose();
      assert.throws(() => decoder.decode(packets[2] ?? Buffer.alloc(0)), /dispose/);
    });

    it('encoder takes exactly one frame and checks its settings', () => {
      const encoder = createOpusEncoder(24000, 60, { backend, complexity: 10 });
      assert.equal(encoder.frameSize, 1440);
      assert.throws(() => encoder.encode(new Int16Array(960)), RangeError);
      assert.ok(encoder.encode(new Int16Array(1440)).length > 0);
      encoder.dispose();
      assert.throws(() => createOpusEncoder(16000, 60, { backend, complexity: 11 }), RangeError);
      assert.throws(() => createOpusEncoder(16000, 30, { backend }), RangeError);
      assert.throws(() => createOpusEncoder(44100, 60, { backend }), RangeError);
    });
  });
}

describe('opus backends', () => {
  const saved = process.env.LINUS_OPUS;
  after(() => {
    if (saved === undefined) delete process.env.LINUS_OPUS;
    else process.env.LINUS_OPUS = saved;
  });

  it('uses native by default here and wasm when LINUS_OPUS=wasm', () => {
    delete process.env.LINUS_OPUS;
    assert.equal(opusBackend(), 'native');
    assert.equal(createOpusDecoder(16000).backend, 'native');
    process.env.LINUS_OPUS = 'wasm';
    assert.equal(opusBackend(), 'wasm');
    assert.equal(createOpusDecoder(16000).backend, 'wasm');
    assert.equal(createOpusEncoder(16000, 60).backend, 'wasm');
  });

  it('falls back to wasm when the native module does not load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linus-opus-'));
    try {
      // A preload that makes require('@discordjs/opus') throw, as a failed node-gyp build would.
      const preload = join(dir, 'no-native.cjs');
      writeFileSync(
        preload,
        `const M = require('node:module'); const load = M._load;
         M._load = function (r, ...a) { if (r === '@discordjs/opus') throw new Error('no native opus'); return load.call(this, r, ...a); };`,
      );
      const opusPath = fileURLToPath(new URL('./opus.ts', import.meta.url));
      const script = `import { opusBackend, opusNativeLoadError, createOpusDecoder, createOpusEncoder } from ${JSON.stringify(opusPath)};
        const e = createOpusEncoder(16000, 60); const d = createOpusDecoder(16000);
        console.log(JSON.stringify({ backend: opusBackend(), encoder: e.backend, samples: d.decode(e.encode(new Int16Array(960))).length, why: String(opusNativeLoadError()) }));`;
      const env = { ...process.env };
      delete env.LINUS_OPUS;
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', '--require', preload, '--input-type=module', '-e', script],
        { env },
      ).toString();
      assert.deepEqual(JSON.parse(out), {
        backend: 'wasm',
        encoder: 'wasm',
        samples: 960,
        why: 'Error: no native opus',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the two backends understand each other', () => {
    const encoder = createOpusEncoder(16000, 60, { backend: 'native' });
    const decoder = createOpusDecoder(16000, 1, { backend: 'wasm' });
    const frame = speech16k.subarray(9600, 9600 + 960);
    assert.equal(decoder.decode(encoder.encode(frame)).length, 960);
    encoder.dispose();
    decoder.dispose();
  });
});
