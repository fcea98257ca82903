import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readWav, WavFormatError, writeWav } from './wav.js';

const dir = mkdtempSync(join(tmpdir(), 'linus-wav-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function synth(tool: 'flite' | 'espeak-ng', text: string): Buffer {
  const file = join(dir, `${tool}.wav`);
  if (tool === 'flite') execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', file]);
  else execFileSync('espeak-ng', ['-w', file, text]);
  return readFileSync(file);
}

function peak(samples: Int16Array): number {
  let p = 0;
  for (const s of samples) p = Math.max(p, Math.abs(s));
  return p;
}

/** A WAV header of our own with any format fields, to build the cases the tools do not produce. */
function header(format: number, channels: number, rate: number, bits: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(format, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE((rate * channels * bits) / 8, 28);
  h.writeUInt16LE((channels * bits) / 8, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

describe('readWav', () => {
  it('reads flite output (16 kHz mono)', () => {
    const wav = readWav(synth('flite', 'hello'));
    assert.equal(wav.sampleRate, 16000);
    assert.ok(wav.samples.length > 0.2 * 16000, `only ${wav.samples.length} samples`);
    assert.ok(peak(wav.samples) > 3000, 'flite speech should not be silent');
  });

  it('reads espeak-ng output (22050 Hz mono)', () => {
    const wav = readWav(synth('espeak-ng', 'hello'));
    assert.equal(wav.sampleRate, 22050);
    assert.ok(wav.samples.length > 0.2 * 22050);
    assert.ok(peak(wav.samples) > 3000);
  });

  it('mixes stereo down to the mean of the channels', () => {
    const mono = readWav(synth('flite', 'hello')).samples;
    const body = Buffer.alloc(mono.length * 4);
    for (let i = 0; i < mono.length; i++) {
      body.writeInt16LE(mono[i] ?? 0, i * 4); // left: the speech
      body.writeInt16LE(0, i * 4 + 2); // right: silence
    }
    const wav = readWav(Buffer.concat([header(1, 2, 16000, 16, body.length), body]));
    assert.equal(wav.sampleRate, 16000);
    assert.equal(wav.samples.length, mono.length);
    for (let i = 0; i < mono.length; i += 97) assert.ok(Math.abs((wav.samples[i] ?? 0) - (mono[i] ?? 0) / 2) <= 1);
  });

  it('trusts the bytes present when the data size is a streaming placeholder', () => {
    const body = Buffer.alloc(200);
    const h = header(1, 1, 8000, 16, 0);
    h.writeUInt32LE(0xffffffff, 40);
    assert.equal(readWav(Buffer.concat([h, body])).samples.length, 100);
  });

  it('skips unknown chunks, including odd-sized ones', () => {
    const h = header(1, 1, 16000, 16, 4);
    const list = Buffer.concat([Buffer.from('LIST', 'latin1'), Buffer.from([3, 0, 0, 0]), Buffer.from([1, 2, 3, 0])]);
    const data = Buffer.from([0x10, 0x00, 0xf0, 0xff]);
    const wav = readWav(Buffer.concat([h.subarray(0, 36), list, h.subarray(36), data]));
    assert.deepEqual([...wav.samples], [16, -16]);
  });

  it('rejects non-PCM encodings with a clear error', () => {
    assert.throws(
      () => readWav(Buffer.concat([header(3, 1, 16000, 32, 8), Buffer.alloc(8)])),
      (e: unknown) => e instanceof WavFormatError && /IEEE float/.test(e.message),
    );
    assert.throws(() => readWav(Buffer.concat([header(7, 1, 8000, 8, 4), Buffer.alloc(4)])), /mu-law/);
    assert.throws(() => readWav(Buffer.concat([header(1, 1, 16000, 24, 6), Buffer.alloc(6)])), /24 bits/);
    assert.throws(() => readWav(Buffer.from('not a wav file at all')), /RIFF/);
  });
});

describe('writeWav', () => {
  it('round-trips flite speech exactly', () => {
    const original = readWav(synth('flite', 'hello'));
    const again = readWav(writeWav(original));
    assert.equal(again.sampleRate, original.sampleRate);
    assert.deepEqual(again.samples, original.samples);
  });

  it('round-trips extreme values and other rates', () => {
    const samples = Int16Array.from([-32768, -1, 0, 1, 32767]);
    const wav = readWav(writeWav({ sampleRate: 24000, samples }));
    assert.equal(wav.sampleRate, 24000);
    assert.deepEqual(wav.samples, samples);
    // A view into a larger buffer writes its own samples only.
    const view = Int16Array.from([9, 8, -32768, 32767, 7]).subarray(2, 4);
    assert.deepEqual(readWav(writeWav({ sampleRate: 16000, samples: view })).samples, Int16Array.from([-32768, 32767]));
  });

  it('writes a file that the tools accept (sox reads it back)', { skip: !hasSox() }, () => {
    const file = join(dir, 'ours.wav');
    writeFileSync(file, writeWav({ sampleRate: 16000, samples: new Int16Array(16000) }));
    const info = execFileSync('soxi', [file]).toString();
    assert.match(info, /Sample Rate\s*:\s*16000/);
    assert.match(info, /Duration\s*:\s*00:00:01\.00/);
  });
});

function hasSox(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v soxi'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
