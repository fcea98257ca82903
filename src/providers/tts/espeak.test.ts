import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError } from '../types.js';
import type { PcmChunk } from '../types.js';
import { createEspeakTts } from './espeak.js';

const LONG_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(300);

async function collect(iterable: AsyncIterable<PcmChunk>): Promise<PcmChunk[]> {
  const chunks: PcmChunk[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return chunks;
}

function concat(chunks: PcmChunk[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c.samples, at);
    at += c.samples.length;
  }
  return out;
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

const signal = (): AbortSignal => new AbortController().signal;

test('espeak-ng speaks "what time is it" at 22050 Hz, plausible length, not silence', async (t) => {
  const tts = createEspeakTts('EspeakTTS', {});
  const started = performance.now();
  const chunks = await collect(tts.synthesize('what time is it', { signal: signal() }));
  const ms = performance.now() - started;
  assert.ok(chunks.length >= 1);
  assert.ok(chunks.every((c) => c.sampleRate === 22050));
  const samples = concat(chunks);
  const seconds = samples.length / 22050;
  assert.ok(seconds > 0.6 && seconds < 2.5, `duration ${seconds} s`);
  assert.ok(rms(samples) > 500, `rms ${rms(samples)}`);
  t.diagnostic(`espeak-ng: ${seconds.toFixed(2)} s of audio in ${ms.toFixed(0)} ms, ${chunks.length} chunk(s)`);
});

// The first chunk's time is printed, not asserted: timing belongs to the benches (a loaded box failed a ratio here).
test('the samples stream: a long text yields many chunks as espeak produces them', async (t) => {
  const tts = createEspeakTts('EspeakTTS', {});
  const started = performance.now();
  let first: number | undefined;
  let count = 0;
  for await (const _chunk of tts.synthesize('The quick brown fox jumps over the lazy dog. '.repeat(20), {
    signal: signal(),
  })) {
    first ??= performance.now() - started;
    count++;
  }
  const total = performance.now() - started;
  assert.ok(count > 5, `${count} chunks`);
  assert.ok(first !== undefined, 'a first chunk');
  t.diagnostic(
    `20 sentences: first chunk after ${first?.toFixed(0)} ms, all ${count} chunks after ${total.toFixed(0)} ms`,
  );
});

test('speed changes the length; text starting with "-" is spoken', async () => {
  const tts = (speed: number) => createEspeakTts('EspeakTTS', { voice: 'en-us', speed });
  const slow = concat(await collect(tts(100).synthesize('what time is it', { signal: signal() })));
  const fast = concat(await collect(tts(300).synthesize('what time is it', { signal: signal() })));
  assert.ok(slow.length > fast.length * 1.5, `${slow.length} vs ${fast.length}`);
  const dashed = concat(await collect(tts(175).synthesize('-help me', { signal: signal() })));
  assert.ok(dashed.length / 22050 > 0.3 && rms(dashed) > 500);
});

test('abort kills espeak-ng at once', async () => {
  const tts = createEspeakTts('EspeakTTS', {});
  const controller = new AbortController();
  const before = new Set(children('espeak-ng'));
  const iterator = tts.synthesize(LONG_TEXT, { signal: controller.signal })[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).done, false);
  const pid = children('espeak-ng').find((p) => !before.has(p));
  assert.ok(pid, 'espeak-ng is running');
  controller.abort();
  await assert.rejects(
    async () => {
      while (!(await iterator.next()).done);
    },
    { name: 'AbortError' },
  );
  assert.equal(existsSync(`/proc/${pid}`), false, 'espeak-ng is gone');
});

test('a consumer that stops early (break) ends the process too', async () => {
  const tts = createEspeakTts('EspeakTTS', {});
  const before = new Set(children('espeak-ng'));
  let pid: number | undefined;
  for await (const _chunk of tts.synthesize(LONG_TEXT, { signal: signal() })) {
    pid = children('espeak-ng').find((p) => !before.has(p));
    break;
  }
  assert.ok(pid);
  assert.equal(existsSync(`/proc/${pid}`), false, 'espeak-ng is gone');
});

test('a sentence over timeout_ms fails with kind timeout', async () => {
  const tts = createEspeakTts('EspeakTTS', { timeout_ms: 100 });
  // A consumer slower than the deadline: espeak blocks on the full pipe and the deadline ends it.
  const slow = async () => {
    for await (const _chunk of tts.synthesize(LONG_TEXT, { signal: signal() })) await sleep(20);
  };
  await assert.rejects(slow(), (err: unknown) => err instanceof ProviderError && err.kind === 'timeout');
});

test("an unknown voice is a process error with espeak-ng's message; a missing binary a config error", async () => {
  await assert.rejects(
    collect(createEspeakTts('EspeakTTS', { voice: 'zzzz-nonexist' }).synthesize('hi', { signal: signal() })),
    (err: unknown) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.kind, 'process');
      assert.match(err.message, /voice does not exist/);
      return true;
    },
  );
  await assert.rejects(
    collect(createEspeakTts('EspeakTTS', { binary: '/nonexistent/espeak-ng' }).synthesize('hi', { signal: signal() })),
    (err: unknown) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.kind, 'config');
      assert.match(err.message, /apt-get install espeak-ng/);
      return true;
    },
  );
  assert.throws(
    () => createEspeakTts('EspeakTTS', { speed: 'fast' }),
    (err: unknown) => err instanceof ProviderError && err.kind === 'config',
  );
});
