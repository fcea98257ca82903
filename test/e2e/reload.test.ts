import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi, refusedPort } from '../support/fake-openai.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

const isStop = (m: Json) => m.type === 'tts' && m.state === 'stop';
const ADMIN = 'admin-secret-for-tests';

function baseConfig(fake: FakeOpenAi, model: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { ip: '127.0.0.1', port: 0, admin_secret: ADMIN },
    log: { log_level: 'silent' },
    selected_module: { LLM: 'Fake', TTS: 'FliteTTS' },
    LLM: { Fake: { type: 'openai', base_url: fake.baseUrl, model_name: model, api_key: 'k', timeout_ms: 5000 } },
    ...extra,
  };
}

async function adminReload(
  server: TestServer,
  patch?: Record<string, unknown>,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(server.url('/admin/config/reload'), {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(patch ? { patch } : {}),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

describe('hot reload (D12, seed #4, seed #15)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let configPath: string;
  const write = (model: string, extra: Record<string, unknown> = {}) =>
    writeFileSync(configPath, stringify(baseConfig(fake, model, extra)));

  before(async () => {
    fake = await FakeOpenAi.start();
    const dir = (await import('../support/server.js')).tempDir();
    configPath = join(dir, 'config.yaml');
    write('model-1');
    server = await startTestServer(baseConfig(fake, 'model-1'), { dataDir: dir, reload: { configPath, watch: false } });
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  const talk = async (deviceId: string, text: string) => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
    await dev.hello();
    dev.send({ type: 'listen', state: 'detect', text });
    return dev;
  };
  const modelsSeen = () => fake.requests.filter((r) => r.path === '/v1/chat/completions').map((r) => r.body.model);

  it('a changed LLM block: the turn in flight finishes on the old instance, the next turn uses the new one', async () => {
    fake.chat = { chunks: Array.from({ length: 8 }, (_, i) => `Part ${i}. `), delayMs: 120 };
    const a = await talk('reload-a', 'long answer please');
    await a.next((m) => m.state === 'sentence_start', 5000);
    write('model-2');
    const r = await adminReload(server);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(((r.body.data as Json).changed as string[]).includes('LLM.Fake.model_name'));
    fake.chat = { chunks: ['New model here.'] };
    const b = await talk('reload-b', 'hello');
    await b.next(isStop, 10_000);
    await a.next(isStop, 15_000);
    assert.ok(a.all((m) => m.state === 'sentence_start').length >= 8, 'the old turn finished its answer');
    assert.deepEqual(modelsSeen().slice(-2), ['model-1', 'model-2']);
    // Seed #4: no stale instance survives: only the new one remains once the old turn released it.
    await waitFor(() => server.providers.stats().disposed >= 1, 2000, 'old LLM instance disposed');
    assert.equal(server.providers.stats().retiring, 0);
    const c = await talk('reload-c', 'again');
    await c.next(isStop, 10_000);
    assert.equal(modelsSeen().at(-1), 'model-2');
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('an invalid file (bad YAML, bad value) is refused with the reason and the old config keeps serving', async () => {
    const before = server.ctx.config.current;
    writeFileSync(configPath, 'server:\n  port: 8000\n bad: [\n');
    let r = await adminReload(server);
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /YAML syntax error at line/);
    write('model-3', { close_connection_no_voice_time: 'soon' });
    r = await adminReload(server);
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /close_connection_no_voice_time/);
    write('model-3');
    r = await adminReload(server, { selected_module: { LLM: 'Nope' } });
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /selected_module\.LLM is "Nope", but LLM has no block named Nope/);
    assert.equal(server.ctx.config.current, before, 'the snapshot was not touched');
    fake.chat = { chunks: ['Still the old model.'] };
    const d = await talk('reload-d', 'hi');
    await d.next(isStop, 10_000);
    assert.equal(modelsSeen().at(-1), 'model-2');
    await d.close();
    write('model-2');
  });

  it('seed #15: an unreachable manager API fails the reload and keeps the old config', async () => {
    const before = server.ctx.config.current;
    write('model-9', { 'manager-api': { url: `http://127.0.0.1:${await refusedPort()}/xiaozhi`, secret: 's' } });
    const r = await adminReload(server);
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /manager API .*unreachable/);
    assert.equal(server.ctx.config.current, before);
    write('model-2');
  });

  it('update_config from a device: the secret is checked, a patch is validated, then applied', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'console' });
    await dev.hello();
    dev.send({ type: 'server', action: 'update_config', content: { secret: 'wrong' } });
    let reply = await dev.next((m) => m.type === 'server' && m.status !== undefined);
    assert.equal(reply.status, 'error');
    assert.deepEqual(reply.content, { action: 'update_config' });
    dev.send({
      type: 'server',
      action: 'update_config',
      content: { secret: ADMIN, patch: { close_connection_no_voice_time: 'x' } },
    });
    reply = await dev.next((m) => m.type === 'server' && m.status !== undefined);
    assert.equal(reply.status, 'error');
    assert.match(String(reply.message), /close_connection_no_voice_time/);
    assert.equal(server.ctx.config.current.close_connection_no_voice_time, 120);
    dev.send({
      type: 'server',
      action: 'update_config',
      content: { secret: ADMIN, patch: { close_connection_no_voice_time: 321 } },
    });
    reply = await dev.next((m) => m.type === 'server' && m.status !== undefined);
    assert.equal(reply.status, 'success', JSON.stringify(reply));
    assert.ok((reply.changed as string[]).includes('close_connection_no_voice_time'));
    assert.equal(server.ctx.config.current.close_connection_no_voice_time, 321);
    // The new idle limit applies to live sessions at once: they read the snapshot when they need it.
    const session = [...server.sessions].find((s) => s.deviceId === 'console')!;
    assert.equal(session.idleLimitMs(), 321_000);
    await dev.close();
  });

  it('admin calls need the admin token; a port change is reported as needing a restart', async () => {
    const res = await fetch(server.url('/admin/config/reload'), { method: 'POST' });
    assert.equal(res.status, 401);
    const r = await adminReload(server, { server: { port: 1234 } });
    assert.equal(r.status, 200);
    assert.deepEqual((r.body.data as Json).restartRequired, ['server.port']);
    assert.equal(server.ctx.config.current.server.port, 0, 'the bound port is kept');
    const health = await fetch(server.url('/health'));
    assert.equal(health.status, 200);
  });

  it('first_token_timeout_ms is hot-reloadable: the next turn uses the new deadline', async () => {
    const llm = (firstTokenMs: number) => ({
      LLM: {
        Fake: {
          type: 'openai',
          base_url: fake.baseUrl,
          model_name: 'model-2',
          api_key: 'k',
          timeout_ms: 5000,
          first_token_timeout_ms: firstTokenMs,
        },
      },
    });
    // The answer's first token comes after 1.5 s: past a 300 ms deadline, well within a 5 s one.
    fake.chat = { chunks: ['Late answer.'], delayMs: 1500 };
    write('model-2', llm(300));
    assert.equal((await adminReload(server)).status, 200);
    const e = await talk('reload-e', 'are you slow');
    const fallback = await e.next((m) => m.state === 'sentence_start', 10_000);
    assert.equal(fallback.text, server.ctx.config.current.system_error_response);
    await e.next(isStop, 10_000);
    write('model-2', llm(5000));
    const r = await adminReload(server);
    assert.ok(((r.body.data as Json).changed as string[]).includes('LLM.Fake.first_token_timeout_ms'));
    const f = await talk('reload-f', 'are you slow');
    assert.equal((await f.next((m) => m.state === 'sentence_start', 10_000)).text, 'Late answer.');
    await f.next(isStop, 10_000);
    await Promise.all([e.close(), f.close()]);
    write('model-2');
    await adminReload(server);
  });
});

describe('file watch', () => {
  it('reloads once per save of the config file', async () => {
    const fake = await FakeOpenAi.start();
    const dir = (await import('../support/server.js')).tempDir();
    const configPath = join(dir, 'config.yaml');
    writeFileSync(configPath, stringify(baseConfig(fake, 'model-1')));
    const server = await startTestServer(baseConfig(fake, 'model-1'), {
      dataDir: dir,
      reload: { configPath, watch: true },
    });
    try {
      let changes = 0;
      server.ctx.config.on('change', () => changes++);
      await sleep(100);
      writeFileSync(configPath, stringify(baseConfig(fake, 'model-1', { close_connection_no_voice_time: 99 })));
      await waitFor(() => server.ctx.config.current.close_connection_no_voice_time === 99, 3000, 'file reload');
      await sleep(600);
      assert.equal(changes, 1);
      writeFileSync(configPath, 'not: [valid');
      await sleep(700);
      assert.equal(server.ctx.config.current.close_connection_no_voice_time, 99, 'a broken save keeps the config');
    } finally {
      await server.stop();
      await fake.stop();
    }
  });
});
