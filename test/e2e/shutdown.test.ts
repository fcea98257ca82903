import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestDevice } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { startTestServer } from '../support/server.js';
import { sleep } from '../support/wait.js';

/** Counts of the process's active resources by kind (timers, sockets, servers, child processes...). */
function resources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

describe('close releases everything it started (seed #5)', () => {
  it('after a session with a voice turn, close() leaves no timer, socket, server or child process behind', async () => {
    await sleep(50);
    const before = resources();
    const fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['Fine, thanks.'] };
    const server = await startTestServer({
      selected_module: { LLM: 'Fake', TTS: 'FliteTTS' },
      LLM: { Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'm', api_key: 'k' } },
      server: { ws_ping_interval_ms: 1000 },
    });
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'leak-check' });
    await dev.hello();
    dev.send({ type: 'listen', state: 'detect', text: 'how are you' });
    await dev.next((m) => m.type === 'tts' && m.state === 'stop', 10_000);
    dev.send({ type: 'listen', state: 'start', mode: 'auto' });
    dev.sendOpus(dev.encodePcm(Buffer.alloc(1920))[0]!);
    await server.stop();
    await dev.closed;
    // The provider's HTTP keep-alive pool belongs to Node's global fetch dispatcher; closing the provider
    // endpoint ends those sockets, as it would end for a real provider.
    await fake.stop();
    await sleep(200);
    const after = resources();
    const leaked = [...after]
      .filter(([kind, n]) => n > (before.get(kind) ?? 0))
      .map(([kind, n]) => `${kind} +${n - (before.get(kind) ?? 0)}`);
    assert.deepEqual(leaked, [], `left behind: ${leaked.join(', ')}`);
  });
});
