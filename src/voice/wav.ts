/**
 * 16-bit PCM WAV read/write. Reading accepts any channel count (mixed down to mono by the mean) and any
 * sample rate; everything that is not 16-bit integer PCM is rejected with a WavFormatError.
 */
import { endianness } from 'node:os';
import type { PcmChunk } from '../providers/types.js';

export class WavFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavFormatError';
  }
}

const FORMAT_PCM = 1;
const LITTLE_ENDIAN = endianness() === 'LE';
const FORMAT_EXTENSIBLE = 0xfffe;
const FORMAT_NAMES: Record<number, string> = {
  3: 'IEEE float',
  6: 'A-law',
  7: 'mu-law',
  0x11: 'IMA ADPCM',
  0x55: 'MP3',
};

export function readWav(data: Buffer): PcmChunk {
  if (data.length < 12 || data.toString('latin1', 0, 4) !== 'RIFF' || data.toString('latin1', 8, 12) !== 'WAVE') {
    throw new WavFormatError('not a RIFF/WAVE file');
  }
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  let offset = 12;
  while (offset + 8 <= data.length) {
    const id = data.toString('latin1', offset, offset + 4);
    const size = data.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16) throw new WavFormatError(`fmt chunk too short (${size} bytes)`);
      let format = data.readUInt16LE(body);
      // WAVE_FORMAT_EXTENSIBLE keeps the real format in the first two bytes of the sub-format GUID.
      if (format === FORMAT_EXTENSIBLE && size >= 40) format = data.readUInt16LE(body + 24);
      fmt = {
        format,
        channels: data.readUInt16LE(body + 2),
        sampleRate: data.readUInt32LE(body + 4),
        bits: data.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new WavFormatError('data chunk before fmt chunk');
      checkFormat(fmt);
      // Streaming writers (espeak-ng --stdout) put 0xFFFFFFFF or a guess here: trust the bytes that are present.
      const end = Math.min(body + size, data.length);
      return { sampleRate: fmt.sampleRate, samples: mixToMono(data.subarray(body, end), fmt.channels) };
    }
    offset = body + size + (size & 1); // chunks are padded to an even length
  }
  throw new WavFormatError(fmt ? 'no data chunk' : 'no fmt chunk');
}

function checkFormat(fmt: { format: number; channels: number; sampleRate: number; bits: number }): void {
  if (fmt.format !== FORMAT_PCM) {
    const name = FORMAT_NAMES[fmt.format] ?? `format tag 0x${fmt.format.toString(16)}`;
    throw new WavFormatError(`unsupported WAV encoding ${name}: only 16-bit integer PCM is supported`);
  }
  if (fmt.bits !== 16)
    throw new WavFormatError(`unsupported WAV sample size ${fmt.bits} bits: only 16-bit PCM is supported`);
  if (fmt.channels < 1) throw new WavFormatError('WAV has no channels');
  if (fmt.sampleRate < 1) throw new WavFormatError('WAV sample rate is 0');
}

function mixToMono(bytes: Buffer, channels: number): Int16Array {
  const frames = Math.floor(bytes.length / (2 * channels));
  const out = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += bytes.readInt16LE((i * channels + c) * 2);
    out[i] = Math.round(sum / channels);
  }
  return out;
}

/** A mono 16-bit PCM WAV file (44-byte header). */
export function writeWav(pcm: PcmChunk): Buffer {
  const dataBytes = pcm.samples.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVEfmt ', 8, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(pcm.sampleRate, 24);
  out.writeUInt32LE(pcm.sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataBytes, 40);
  const s = pcm.samples;
  // WAV is little-endian, like the host almost always: then the samples are one copy, not a call per sample
  // (that loop was 1.4 % of the main thread's CPU with talking devices, issue #13).
  if (LITTLE_ENDIAN) out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), 44);
  else for (let i = 0; i < s.length; i++) out.writeInt16LE(s[i] ?? 0, 44 + i * 2);
  return out;
}
