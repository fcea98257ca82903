import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError } from '../types.js';
import type { PcmChunk } from '../types.js';
import { createFliteTts } from './flite.js';

const LONG_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(300); // ~14 s of work for flite

async function collect(iterable: AsyncIterable<PcmChunk>): Promise<PcmChunk[]> {
  const chunks: PcmChunk[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return chunks;
}

function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / Math.max(1, samples.length));
}

/** Our child processes named `comm`, read from /proc (real processes, nothing mocked). */
function children(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && stat.includes(`(${comm})`)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

async function waitFor<T>(probe: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(5);
  }
}

const signal = (): AbortSignal => new AbortController().signal;

test('flite speaks "what time is it" as one 16 kHz chunk of plausible length, not silence', async (t) => {
  const tts = createFliteTts('FliteTTS', {});
  const started = performance.now();
  const chunks = await collect(tts.synthesize('what time is it', { signal: signal() }));
  const ms = performance.now() - started;
  assert.equal(chunks.length, 1);
  const [pcm] = chunks as [PcmChunk];
  assert.equal(pcm.sampleRate, 16000);
  const seconds = pcm.samples.length / pcm.sampleRate;
  assert.ok(seconds > 0.6 && seconds < 2.5, `duration ${seconds} s`);
  assert.ok(rms(pcm.samples) > 500, `rms ${rms(pcm.samples)}`);
  t.diagnostic(`flite: ${seconds.toFixed(2)} s of audio in ${ms.toFixed(0)} ms`);
});

test('a leading "-" is stripped, so the text is spoken and never read as an option', async () => {
  const tts = createFliteTts('FliteTTS', { voice: 'slt' });
  const [pcm] = await collect(tts.synthesize('-help me', { signal: signal() }));
  assert.ok(pcm);
  assert.ok(pcm.samples.length / pcm.sampleRate > 0.3, 'speech, not a usage text');
  assert.ok(rms(pcm.samples) > 500);
  assert.deepEqual(await collect(tts.synthesize(' -- ', { signal: signal() })), []);
});

test('abort kills flite at once and removes the temp file', async () => {
  const tts = createFliteTts('FliteTTS', {});
  const controller = new AbortController();
  const before = new Set(children('flite'));
  const done = collect(tts.synthesize(LONG_TEXT, { signal: controller.signal }));
  const pid = await waitFor(() => children('flite').find((p) => !before.has(p)));
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const wav = args[args.indexOf('-o') + 1] ?? '';
  assert.match(wav, /linus-flite-.*\.wav$/);
  await sleep(100);
  controller.abort();
  const aborted = performance.now();
  await assert.rejects(done, { name: 'AbortError' });
  assert.ok(performance.now() - aborted < 500);
  assert.equal(existsSync(`/proc/${pid}`), false, 'flite is gone');
  assert.equal(existsSync(wav), false, 'temp file removed');
});

test('a sentence over timeout_ms is killed and fails with kind timeout', async () => {
  const tts = createFliteTts('FliteTTS', { timeout_ms: 200 });
  const before = new Set(children('flite'));
  const done = collect(tts.synthesize(LONG_TEXT, { signal: signal(), timeoutMs: 60_000 }));
  const pid = await waitFor(() => children('flite').find((p) => !before.has(p)));
  await assert.rejects(done, (err: unknown) => err instanceof ProviderError && err.kind === 'timeout');
  assert.equal(existsSync(`/proc/${pid}`), false);
});

test('a missing binary is a config error that names the package', async () => {
  const tts = createFliteTts('FliteTTS', { binary: '/nonexistent/flite' });
  await assert.rejects(collect(tts.synthesize('hello', { signal: signal() })), (err: unknown) => {
    assert.ok(err instanceof ProviderError);
    assert.equal(err.kind, 'config');
    assert.match(err.message, /apt-get install flite/);
    return true;
  });
});

test('a bad block is a config error', () => {
  assert.throws(
    () => createFliteTts('FliteTTS', { voice: 5 }),
    (err: unknown) => err instanceof ProviderError && err.kind === 'config',
  );
});
