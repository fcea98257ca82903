import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signDeviceToken } from '../../src/protocol/auth-token.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { SqliteMemoryStore } from '../../src/store/memory.js';
import { readWav } from '../../src/voice/wav.js';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { metricValue, startTestServer, tempDir, type TestServer } from '../support/server.js';
import { join16, silence, speechPcm, streamPcm } from '../support/speech.js';
import { sleep, waitFor } from '../support/wait.js';

const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';
/** How long a first utterance may wait for a cold audio worker before the test calls it lost. */
const COLD_AUDIO_MS = 90_000;

function config(fake: FakeOpenAi, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    selected_module: {
      VAD: 'SileroVAD',
      ASR: 'PocketSphinxASR',
      LLM: 'Fake',
      TTS: 'FliteTTS',
      Memory: 'mem_local_short',
    },
    LLM: { Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'fake-model', api_key: 'k', timeout_ms: 5000 } },
    Memory: { mem_local_short: { type: 'mem_local_short' } },
    ...extra,
  };
}

describe('per-session voice state', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['Okay.'] };
    server = await startTestServer(config(fake));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('seed #8: two devices speaking at once each get their own transcript (no shared ASR state)', async () => {
    const a = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'asr-a' });
    const b = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'asr-b' });
    await Promise.all([a.hello(), b.hello()]);
    a.send({ type: 'listen', state: 'start', mode: 'auto' });
    b.send({ type: 'listen', state: 'start', mode: 'auto' });
    await Promise.all([
      streamPcm(a, join16(silence(300), speechPcm('what time is it'), silence(1500)), { speed: 2 }),
      streamPcm(b, join16(silence(300), speechPcm('what is the weather like today'), silence(1500)), { speed: 2 }),
    ]);
    // The first audio after server start waits for the audio worker to load Silero, then two pocketsphinx runs
    // share the CPUs: on a loaded 2-core box that passes 10 s. The wait is a hang guard; the transcripts are the test.
    assert.equal((await a.next('stt', COLD_AUDIO_MS)).text, 'what time is it');
    assert.equal((await b.next('stt', COLD_AUDIO_MS)).text, 'what is the weather like today');
    await Promise.all([a.next(isStop, 10_000), b.next(isStop, 10_000)]);
    await Promise.all([a.close(), b.close()]);
  });

  it('a corrupted Opus packet costs one frame, not the session (B1)', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'corrupt' });
    await dev.hello();
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    const before = await metricValue(server, 'linus_uplink_decode_errors_total');
    dev.sendOpus(Buffer.from([0xff, 0xff, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad]));
    dev.sendOpus(Buffer.alloc(0));
    await streamPcm(dev, join16(silence(300), speechPcm('what time is it'), silence(1500)), { speed: 2 });
    assert.equal((await dev.next('stt', 10_000)).text, 'what time is it');
    assert.ok((await metricValue(server, 'linus_uplink_decode_errors_total')) > before);
    await dev.next(isStop, 10_000);
    await dev.close();
  });
});

describe('dialogue memory (B7, seed #9)', () => {
  it('is saved off the close path, awaited by shutdown, and loaded on the next connection', async () => {
    const fake = await FakeOpenAi.start();
    const dataDir = tempDir();
    let server: TestServer | undefined;
    try {
      server = await startTestServer(config(fake), { dataDir });
      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'memory-dev' });
      await dev.hello();
      fake.chat = { chunks: ['Nice to meet you, Ada.'] };
      dev.send({ type: 'listen', state: 'detect', text: 'my name is Ada and I like tea' });
      await dev.next(isStop, 10_000);
      // The memory summary request is slow; closing must not wait for it, shutdown must.
      fake.chat = { chunks: ['- The user is called Ada and likes tea.'], delayMs: 1500 };
      const requests = fake.requests.length;
      await dev.close();
      // The close did not wait for the memory summary: its request is still running.
      const memoryRequest = await waitFor(() => fake.requests[requests], 3000, 'the memory request');
      assert.equal(
        await Promise.race([memoryRequest.closed.then(() => 'finished'), sleep(50).then(() => 'pending')]),
        'pending',
      );
      await server.close('test');
      const db = openDatabase(dataDir);
      assert.equal(await new SqliteMemoryStore(db).load('memory-dev'), '- The user is called Ada and likes tea.');
      db.close();

      server = await startTestServer(config(fake), { dataDir });
      const again = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'memory-dev' });
      await again.hello();
      fake.chat = { chunks: ['Hello again, Ada.'] };
      again.send({ type: 'listen', state: 'detect', text: 'do you remember me' });
      await again.next(isStop, 10_000);
      const system = (fake.last('/v1/chat/completions').body.messages as { role: string; content: string }[])[0]!;
      assert.match(system.content, /Ada and likes tea/);
      await again.close();
      await server.close('test');
    } finally {
      await server?.close('test');
      await fake.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Runs `linus simulate` against a voice server; returns its exit code and output. */
async function runSimulate(server: TestServer, args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'simulate', ...args], {
    cwd: join(import.meta.dirname, '../..'),
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stdout += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, stdout };
}

describe('linus simulate', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let dir: string;
  before(async () => {
    fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['It is noon.'] };
    // The MQTT + UDP transport on free ports (a Mosquitto may hold 1883 here).
    server = await startTestServer(config(fake, { server: { mqtt: { enabled: true, port: 0 }, udp: { port: 0 } } }));
    dir = tempDir();
  });
  after(async () => {
    await server.stop();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of ['websocket', 'mqtt'] as const) {
    it(`speaks a sentence like a device over ${transport}, prints the replies and saves the reply audio`, async () => {
      const out = join(dir, `reply-${transport}.wav`);
      const url = transport === 'mqtt' ? server.url('/xiaozhi/ota/') : server.url('/xiaozhi/v1/', 'ws');
      const { code, stdout } = await runSimulate(server, [
        '--url',
        url,
        '--transport',
        transport,
        '--say',
        'what time is it',
        '--out',
        out,
        '--protocol',
        '3',
        '--device-id',
        `aa:bb:cc:20:00:0${transport === 'mqtt' ? 1 : 2}`,
      ]);
      assert.equal(code, 0, stdout);
      assert.match(stdout, /stt: what time is it/);
      assert.match(stdout, /tts: It is noon\./);
      assert.ok(existsSync(out));
      const wav = readWav(readFileSync(out));
      assert.equal(wav.sampleRate, 24000);
      assert.ok(wav.samples.length > 24000 * 0.3, 'some reply audio was saved');
    });
  }

  it('over mqtt, a typed turn gets its spoken reply too (the server learns the UDP address first)', async () => {
    const { code, stdout } = await runSimulate(server, [
      '--url',
      server.url('/xiaozhi/ota/'),
      '--transport',
      'mqtt',
      '--type',
      'what time is it',
      '--device-id',
      'aa:bb:cc:20:00:03',
    ]);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /tts: It is noon\./);
    assert.match(stdout, /first reply audio \d+ ms/);
  });
});

describe('linus simulate against a server with device auth', () => {
  const AUTH_KEY = 'simulate-auth-key';
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['Hello there.'] };
    server = await startTestServer(
      config(fake, { server: { auth_key: AUTH_KEY, auth: { enabled: true }, stats_interval_ms: 200 } }),
    );
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  async function simulate(...args: string[]): Promise<{ code: number | null; out: string }> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/index.ts', 'simulate', '--url', server.url('/xiaozhi/v1/', 'ws'), ...args],
      { cwd: join(import.meta.dirname, '../..') },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    return { code, out };
  }

  it('a refused connection prints the reason the server gave', async () => {
    const r = await simulate('--type', 'hello');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /server refused the connection: HTTP 401: authentication failed: \S+/);
  });

  it('--ota gets the token as a device does; server stats print as a readable line', async () => {
    const r = await simulate('--type', 'hello', '--ota', '--device-id', 'sim-ota');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /ota: websocket ws:\/\/127\.0\.0\.1:\d+\/xiaozhi\/v1\/, with a token/);
    assert.match(r.out, /tts: Hello there\./);
    assert.match(r.out, /^server: \d+ devices? online; CPU [\d.]+ %, memory \d+ \/ \d+ MB$/m);
    assert.doesNotMatch(r.out, /^server: \{/m, 'no raw JSON');
  });

  it('--token passes a token made with linus token', async () => {
    const token = signDeviceToken(AUTH_KEY, 'sim-token-sim', 'sim-token', Date.now() / 1000);
    const r = await simulate('--type', 'hello', '--device-id', 'sim-token', '--token', token);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /tts: stop/);
  });
});
