import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDevice } from '../support/device.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';

describe('one HTTP server, one port (D1, D-5)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answers a plain GET on any WebSocket path with "Server is running" (`/` is the console)', async () => {
    for (const path of ['/xiaozhi/v1/', '/supie/v1/', '/some/other/path?device-id=x']) {
      const res = await fetch(server.url(path));
      assert.equal(res.status, 200, path);
      assert.equal(await res.text(), 'Server is running\n');
    }
  });

  it('upgrades WebSocket connections on any path', async () => {
    for (const [i, path] of ['/xiaozhi/v1/', '/supie/v1/', '/anything/else'].entries()) {
      const dev = await TestDevice.connect({ url: server.url(path, 'ws'), deviceId: `path-${i}` });
      const hello = await dev.hello();
      assert.equal(hello.type, 'hello');
      await dev.close();
    }
  });

  it('serves /health as JSON while serving', async () => {
    const res = await fetch(server.url('/health'));
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.equal(typeof body.connections, 'number');
  });

  it('serves Prometheus metrics: connections, messages by type, bytes, send failures, event-loop lag', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'metrics-dev' });
    await dev.hello();
    dev.send({ type: 'ping' });
    await dev.next('pong');
    const res = await fetch(server.url('/metrics'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /^linus_connections 1$/m);
    assert.match(text, /^linus_messages_in_total\{type="hello"\} [1-9]/m);
    assert.match(text, /^linus_messages_in_total\{type="ping"\} [1-9]/m);
    assert.match(text, /^linus_messages_out_total\{type="pong"\} [1-9]/m);
    assert.match(text, /^linus_bytes_in_total [1-9]/m);
    assert.match(text, /^linus_bytes_out_total [1-9]/m);
    assert.match(text, /^# TYPE linus_send_failures_total counter$/m);
    assert.match(text, /^linus_event_loop_lag_p99_seconds /m);
    await dev.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await metricValue(server, 'linus_connections'), 0);
  });

  it('answers unknown non-GET routes with a JSON 404 and wrong methods with 405', async () => {
    const res = await fetch(server.url('/nope'), { method: 'POST' });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { success: false, error: 'not found' });
    const res2 = await fetch(server.url('/health'), { method: 'DELETE' });
    assert.equal(res2.status, 405);
    assert.equal(res2.headers.get('allow'), 'GET');
  });
});
