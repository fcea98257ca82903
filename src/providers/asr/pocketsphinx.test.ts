import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFliteTts } from '../tts/flite.js';
import { ProviderError } from '../types.js';
import type { AsrProvider, AsrStream } from '../types.js';
import { createPocketsphinxAsr } from './pocketsphinx.js';

/** The offline loop: flite (slt, 16 kHz) → 60 ms chunks, as the pipeline writes them → pocketsphinx. */

const CHUNK = 960; // 60 ms at 16 kHz
const flite = createFliteTts('FliteTTS', {});
const fresh = (): AbortSignal => new AbortController().signal;

async function speak(text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const chunk of flite.synthesize(text, { signal: fresh() })) {
    assert.equal(chunk.sampleRate, 16000, 'flite slt is already 16 kHz: no resampling');
    parts.push(chunk.samples);
  }
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

async function recognize(asr: AsrProvider, pcm: Int16Array): Promise<string> {
  const stream = asr.createStream({ signal: fresh(), sessionId: 'test' });
  for (let i = 0; i < pcm.length; i += CHUNK) {
    stream.write(pcm.subarray(i, i + CHUNK));
    await sleep(1); // let the other stream of a concurrent test write in between
  }
  return (await stream.finish()).text;
}

interface Proc {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
}

/** Every process on the machine, from /proc: real processes, nothing mocked. */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state = '', ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({
        pid: Number(entry),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        state,
        ppid: Number(ppid),
        pgid: Number(pgid),
      });
    } catch {
      // It ended while we looked.
    }
  }
  return out;
}

/** Creates a stream and finds its process group (its sh wrapper is our child and leads the group). */
async function tracked(create: () => AsrStream): Promise<{ stream: AsrStream; pgid: number }> {
  const before = new Set(
    processes()
      .filter((p) => p.ppid === process.pid)
      .map((p) => p.pid),
  );
  const stream = create();
  for (let i = 0; i < 200; i++) {
    const sh = processes().find((p) => p.ppid === process.pid && p.comm === 'sh' && !before.has(p.pid));
    if (sh) return { stream, pgid: sh.pid };
    await sleep(5);
  }
  throw new Error('no sh wrapper appeared');
}

/** Waits until the group has no process left, zombies included (no orphan waits for an init to reap it). */
async function groupGone(pgid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!processes().some((p) => p.pgid === pgid)) return true;
    await sleep(10);
  }
  return false;
}

let dir: string;
let whatTime: Int16Array;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linus-sphinx-'));
  whatTime = await speak('what time is it');
});
after(() => rm(dir, { recursive: true, force: true }));

test('LM mode: flite "what time is it" streamed in 60 ms chunks is recognised exactly', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  assert.equal(asr.streaming, true);
  assert.equal(await recognize(asr, whatTime), 'what time is it');
});

test('JSGF mode: a phrase the LM mishears ("bedroom light") is recognised exactly from the grammar', async () => {
  const grammar = join(dir, 'cmd.gram');
  await writeFile(
    grammar,
    [
      '#JSGF V1.0; grammar cmd; public <cmd> = <action> | <question>;',
      '<action> = turn (on | off) the (kitchen | bedroom) light | turn (on | off) the light in the (kitchen | bedroom);',
      '<question> = what time is it | what is the weather like today | hello;',
    ].join('\n'),
  );
  const asr = createPocketsphinxAsr('PocketSphinxASR', { jsgf: grammar });
  assert.equal(await recognize(asr, await speak('turn off the bedroom light')), 'turn off the bedroom light');
  assert.equal(await recognize(asr, whatTime), 'what time is it');
});

test('two concurrent streams do not mix their audio', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  const weather = await speak('what is the weather like today');
  const [a, b] = await Promise.all([recognize(asr, whatTime), recognize(asr, weather)]);
  assert.equal(a, 'what time is it');
  assert.equal(b, 'what is the weather like today');
});

test('silence gives an empty text', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  assert.equal(await recognize(asr, new Int16Array(16000)), '');
});

test('abort kills pocketsphinx, cat and the sh wrapper at once, and finish() rejects', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  const { stream, pgid } = await tracked(() => asr.createStream({ signal: fresh(), sessionId: 'test' }));
  stream.write(whatTime.subarray(0, CHUNK * 5));
  const group = () =>
    processes()
      .filter((p) => p.pgid === pgid)
      .map((p) => p.comm)
      .sort();
  try {
    // Wait until the pipeline is up: sh, cat and pocketsphinx in one group (a loaded machine takes a while to exec).
    for (let i = 0; i < 1000 && group().join() !== 'cat,pocketsphinx_co,sh'; i++) await sleep(5);
    assert.deepEqual(group(), ['cat', 'pocketsphinx_co', 'sh']);
  } finally {
    stream.abort();
  }
  stream.abort(); // idempotent
  assert.equal(await groupGone(pgid), true, 'every process of the group is gone, zombies included');
  await assert.rejects(stream.finish(), { name: 'AbortError' });
});

test("the caller's signal aborts the stream; dispose() aborts the ones still open", async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  const controller = new AbortController();
  const { stream: first, pgid } = await tracked(() => asr.createStream({ signal: controller.signal, sessionId: 'a' }));
  const finished = first.finish();
  controller.abort();
  await assert.rejects(finished, { name: 'AbortError' });
  assert.equal(await groupGone(pgid), true);

  const { stream: second, pgid: pgid2 } = await tracked(() => asr.createStream({ signal: fresh(), sessionId: 'b' }));
  await asr.dispose();
  await assert.rejects(second.finish(), { name: 'AbortError' });
  assert.equal(await groupGone(pgid2), true);
});

test('an abort at any moment of start-up leaves no process and no zombie behind', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', {});
  for (let delay = 0; delay < 12; delay++) {
    const { stream, pgid } = await tracked(() => asr.createStream({ signal: fresh(), sessionId: 'test' }));
    await sleep(delay);
    stream.abort();
    assert.equal(await groupGone(pgid), true, `abort after ${delay} ms`);
  }
});

test('a process that does not end by timeout_ms is killed and finish() fails with kind timeout', async () => {
  const hang = join(dir, 'hang.sh');
  await writeFile(hang, '#!/bin/sh\nexec sleep 30\n');
  await chmod(hang, 0o755);
  const asr = createPocketsphinxAsr('PocketSphinxASR', { binary: hang, timeout_ms: 300 });
  const { stream, pgid } = await tracked(() =>
    asr.createStream({ signal: fresh(), sessionId: 'test', timeoutMs: 60_000 }),
  );
  stream.write(whatTime);
  const t0 = performance.now();
  await assert.rejects(stream.finish(), (err: unknown) => err instanceof ProviderError && err.kind === 'timeout');
  const waited = performance.now() - t0;
  assert.ok(waited >= 290, `the deadline was honoured, not cut short: ${waited} ms`);
  assert.equal(await groupGone(pgid), true);
});

test('a missing binary is a config error with the apt-get hint', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', { binary: '/nonexistent/pocketsphinx_continuous' });
  const stream = asr.createStream({ signal: fresh(), sessionId: 'test' });
  stream.write(whatTime); // writing into a process that already died must not throw
  await assert.rejects(stream.finish(), (err: unknown) => {
    assert.ok(err instanceof ProviderError);
    assert.equal(err.kind, 'config');
    assert.match(err.message, /apt-get install pocketsphinx pocketsphinx-en-us/);
    return true;
  });
});

test('a missing model file is a config error; a bad block too', async () => {
  const asr = createPocketsphinxAsr('PocketSphinxASR', { hmm: join(dir, 'no-model') });
  const stream = asr.createStream({ signal: fresh(), sessionId: 'test' });
  await assert.rejects(
    stream.finish(),
    (err: unknown) =>
      err instanceof ProviderError && err.kind === 'config' && err.message.includes('no-model is missing'),
  );
  assert.throws(
    () => createPocketsphinxAsr('PocketSphinxASR', { timeout_ms: 'soon' }),
    (err: unknown) => err instanceof ProviderError && err.kind === 'config',
  );
});

test('arguments reach the tool as they are, never through a shell parse', async () => {
  const echo = join(dir, 'echo-args.sh');
  await writeFile(echo, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
  await chmod(echo, 0o755);
  const tricky = join(dir, 'a b; $(touch pwned) `touch pwned2` "q"');
  const asr = createPocketsphinxAsr('PocketSphinxASR', { binary: echo, jsgf: tricky });
  const { text } = await asr.createStream({ signal: fresh(), sessionId: 'test' }).finish();
  assert.ok(text.endsWith(`-jsgf ${tricky}`), text);
  assert.ok(text.startsWith('-infile /dev/stdin -hmm '), text);
  assert.equal(existsSync('pwned') || existsSync('pwned2') || existsSync(join(dir, 'pwned')), false);
});
