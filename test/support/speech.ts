import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concatPcm } from '../../src/voice/pcm.js';
import { readWav } from '../../src/voice/wav.js';
import type { FakeOpenAi } from './fake-openai.js';

const cache = new Map<string, Int16Array>();

/** 16 kHz mono PCM of `text` spoken by Debian's flite (the voice pocketsphinx recognizes best). */
export function speechPcm(text: string): Int16Array {
  let pcm = cache.get(text);
  if (!pcm) {
    const dir = mkdtempSync(join(tmpdir(), 'linus-speech-'));
    try {
      const file = join(dir, 'speech.wav');
      execFileSync('flite', ['-voice', 'slt', '-t', text, '-o', file]);
      const wav = readWav(readFileSync(file));
      if (wav.sampleRate !== 16000) throw new Error(`flite gave ${wav.sampleRate} Hz`);
      pcm = wav.samples;
      cache.set(text, pcm);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return pcm;
}

export function silence(ms: number): Int16Array {
  return new Int16Array((16000 * ms) / 1000);
}

export const join16 = (...parts: Int16Array[]): Int16Array => concatPcm(parts);

/**
 * Streams PCM as 60 ms Opus frames from the device, paced like the firmware (speed 1 = real time).
 * Resolves when the last frame was sent; `stopWhen` ends it early.
 */
/** A test client that sends microphone audio, over whatever transport. */
export interface AudioSender {
  encodePcm(pcm: Buffer): Buffer[];
  sendOpus(packet: Buffer, timestamp: number): void;
  readonly open: boolean;
}

export async function streamPcm(
  dev: AudioSender,
  pcm: Int16Array,
  opts: { speed?: number; stopWhen?: () => boolean } = {},
): Promise<number> {
  const frameMs = 60 / (opts.speed ?? 1);
  const packets = dev.encodePcm(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  const start = performance.now();
  let sent = 0;
  for (const p of packets) {
    if (opts.stopWhen?.() || !dev.open) break;
    dev.sendOpus(p, Math.round(sent * 60));
    sent++;
    const wait = start + sent * frameMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return sent;
}

/** Server config for a fully offline voice turn: Silero VAD, pocketsphinx, flite, the fake server as LLM. */
export function offlineVoiceConfig(fake: FakeOpenAi, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    selected_module: { VAD: 'SileroVAD', ASR: 'PocketSphinxASR', LLM: 'Fake', TTS: 'FliteTTS' },
    LLM: {
      Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'fake-model', api_key: 'test-key', timeout_ms: 3000 },
    },
    ...extra,
  };
}
