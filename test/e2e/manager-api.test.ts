import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'manager-secret';

/** A local stand-in for the reference's manager API (`{code,msg,data}` envelopes, Bearer secret). */
class FakeManager {
  readonly calls: { path: string; body: Json; auth: string | undefined }[] = [];
  failNext = 0;
  server!: Server;
  constructor(private readonly llmUrl: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const path = req.url ?? '';
        const body = (raw ? JSON.parse(raw) : {}) as Json;
        this.calls.push({ path, body, auth: req.headers.authorization });
        const send = (status: number, payload: unknown) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
        if (req.headers.authorization !== `Bearer ${SECRET}`) return send(401, { code: 401, msg: 'unauthorized' });
        if (this.failNext > 0) {
          this.failNext--;
          return send(503, { code: 503, msg: 'busy' });
        }
        if (path === '/xiaozhi/config/server-base') {
          return send(200, {
            code: 0,
            data: {
              selected_module: { LLM: 'Remote', TTS: 'FliteTTS' },
              LLM: { Remote: { type: 'openai', base_url: this.llmUrl, model_name: 'remote-model', api_key: 'k' } },
              server: { port: 1 }, // the local server.port must win
            },
          });
        }
        if (path === '/xiaozhi/config/agent-models') {
          if (body.macAddress !== 'priv:dev') return send(200, { code: 0, data: {} });
          return send(200, {
            code: 0,
            data: {
              selected_module: { LLM: 'Private' },
              // The reference sends provider blocks as JSON strings.
              LLM: JSON.stringify({
                Private: { type: 'openai', base_url: this.llmUrl, model_name: 'private-model', api_key: 'k' },
              }),
              prompt: 'You are the private assistant of this device.',
            },
          });
        }
        send(404, { code: 404, msg: 'no such route' });
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/xiaozhi`;
  }
}

describe('manager API config (D12, per-device private config)', () => {
  let fake: FakeOpenAi;
  let manager: FakeManager;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['Hi.'] };
    manager = new FakeManager(fake.baseUrl);
    manager.failNext = 1; // the first call fails with 503: the client retries
    const url = await manager.start();
    const dir = tempDir();
    const configPath = join(dir, 'config.yaml');
    const local = {
      server: { ip: '127.0.0.1', port: 0 },
      log: { log_level: 'silent' },
      'manager-api': { url, secret: SECRET },
    };
    writeFileSync(configPath, stringify(local));
    server = await startTestServer(local, { dataDir: dir, reload: { configPath, watch: false } });
  });
  after(async () => {
    await server.stop();
    await fake.stop();
    manager.server.close();
  });

  it('takes the server config from /config/server-base at start (after a retry), local server.port winning', () => {
    assert.equal(server.ctx.config.current.selected_module.LLM, 'Remote');
    assert.equal(server.ctx.config.current.server.port, 0);
    assert.ok(
      manager.calls.filter((c) => c.path === '/xiaozhi/config/server-base').length >= 2,
      'retried after the 503',
    );
  });

  it('gives a device its private LLM and prompt; other devices use the server config', async () => {
    const own = await TestDevice.connect({
      url: server.url('/xiaozhi/v1/', 'ws'),
      deviceId: 'priv:dev',
      clientId: 'c-priv',
    });
    await own.hello();
    await waitFor(
      () => [...server.sessions].find((s) => s.deviceId === 'priv:dev')?.privateConfig,
      3000,
      'private config',
    );
    const call = manager.calls.find(
      (c) => c.path === '/xiaozhi/config/agent-models' && c.body.macAddress === 'priv:dev',
    )!;
    assert.equal(call.body.clientId, 'c-priv');
    own.send({ type: 'listen', state: 'detect', text: 'who are you' });
    await own.next((m) => m.type === 'tts' && m.state === 'stop', 10_000);
    const body = fake.last('/v1/chat/completions').body;
    assert.equal(body.model, 'private-model');
    assert.equal((body.messages as { content: string }[])[0]!.content, 'You are the private assistant of this device.');

    const other = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'plain:dev' });
    await other.hello();
    other.send({ type: 'listen', state: 'detect', text: 'hello' });
    await other.next((m) => m.type === 'tts' && m.state === 'stop', 10_000);
    assert.equal(fake.last('/v1/chat/completions').body.model, 'remote-model');
    await Promise.all([own.close(), other.close()]);
  });

  it('update_config re-fetches the manager config; a failing manager API keeps the config in force', async () => {
    manager.failNext = 10;
    const before = server.ctx.config.current;
    const r = await server.reload('admin');
    assert.equal(r.ok, false);
    assert.equal(server.ctx.config.current, before);
    manager.failNext = 0;
    const ok = await server.reload('admin');
    assert.equal(ok.ok, true);
  });
});
